"""Ctrl-C (or SIGTERM, SIGXCPU) held back while a checkpoint and the metrics of its step are written.

An epoch-end checkpoint is written before Lightning logs that epoch's last metrics rows (the
epoch's mean loss, the validation row). A Ctrl-C in between left a checkpoint whose resume could
never log those rows again, so the resumed ``metrics.csv`` lacked them. The entry point's SIGINT
handler asks :func:`defer` whether to hold the interrupt; the checkpoint callback holds it from
the moment it saves until the next point where training's state and its log agree (the next
training batch, or the end of training), and raises it there (:func:`release`). A second Ctrl-C
is never held.

SIGTERM (``kill``, a batch scheduler's preemption or time limit) takes the same path: the entry
point installs its handler for both signals (:func:`install`). Before, a SIGTERM during a fit met
only Lightning's handler, which ends the fit at its next check with exit status 0 and no word on
resuming; Lightning's handler calls the one it found before its own, so ours still runs then.
"""

from __future__ import annotations

import signal
from typing import Callable

# SIGXCPU: the soft CPU-time limit (ulimit -t, a batch system's) reached; its default action ended
# the process with no word, where SIGTERM got the line saying how to resume. The kernel sends it
# again every CPU second until the hard limit's SIGKILL: a repeat is the same stop (see repeats).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGXCPU)


def install(handler: Callable) -> dict:
    """Make ``handler`` the handler of SIGINT, SIGTERM and SIGXCPU; returns the previous ones for
    :func:`restore`."""
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def repeats(signum: int, seen: list[int]) -> bool:
    """Whether ``signum`` is the kernel's repeat of a CPU-time limit's SIGXCPU already in ``seen``
    (the signals a handler recorded): not a second stop, which would cut a held checkpoint short."""
    return signum == signal.SIGXCPU and signum in seen


def signal_name(signum: int) -> str:
    """What an ``interrupted:`` line adds after "interrupted" for the stopping signal (Ctrl-C: nothing)."""
    if signum == signal.SIGTERM:
        return " (SIGTERM)"
    if signum == signal.SIGXCPU:
        return " (SIGXCPU: the CPU-time limit, ulimit -t, was reached)"
    return ""


def restore(previous: dict) -> None:
    """Undo :func:`install`."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


class _Hold:
    active = False
    pending = False


_hold = _Hold()


def hold() -> None:
    """From now on, :func:`defer` holds an interrupt instead of letting it be raised."""
    _hold.active = True


def defer() -> bool:
    """Called by the entry point's SIGINT / SIGTERM handler: True (and the interrupt recorded) when held."""
    if _hold.active and not _hold.pending:
        _hold.pending = True
        return True
    return False


def release(raise_pending: bool = True) -> None:
    """End the hold; raise ``KeyboardInterrupt`` if an interrupt came during it (unless
    ``raise_pending`` is False: the fit is already ending on another exception)."""
    pending = _hold.pending
    _hold.active = _hold.pending = False
    if pending and raise_pending:
        raise KeyboardInterrupt
