"""Ctrl-C held back while a checkpoint and the metrics of its step are written.

An epoch-end checkpoint is written before Lightning logs that epoch's last metrics rows (the
epoch's mean loss, the validation row). A Ctrl-C in between left a checkpoint whose resume could
never log those rows again, so the resumed ``metrics.csv`` lacked them. The entry point's SIGINT
handler asks :func:`defer` whether to hold the interrupt; the checkpoint callback holds it from
the moment it saves until the next point where training's state and its log agree (the next
training batch, or the end of training), and raises it there (:func:`release`). A second Ctrl-C
is never held.
"""

from __future__ import annotations


class _Hold:
    active = False
    pending = False


_hold = _Hold()


def hold() -> None:
    """From now on, :func:`defer` holds an interrupt instead of letting it be raised."""
    _hold.active = True


def defer() -> bool:
    """Called by the SIGINT handler: True (and the interrupt recorded) when held."""
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
