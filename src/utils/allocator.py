"""The C allocator (malloc) behind torch's CPU tensors: which one runs, which one to preload.

A supernet step allocates and frees tens of thousands of CPU tensors of many sizes (every
architecture's activations, the GRU recurrence's per-step buffers). glibc's malloc fragments on
that pattern, so the process's peak resident memory ends up far above what is live. mimalloc
reuses freed memory far better: at the paper's supernet configuration it cut the peak RSS of 5
supernet steps from 4.3-4.4 GB to 2.4-2.6 GB (2 architecture workers) and from 3.0 GB to 2.0 GB
(1 worker), at the same speed (docs/performance.md). Its default purge delay (freed pages go
back to the system after 10 ms) made the retrain step 35-45 % slower than glibc, since the pages
were faulted in again every step; the Makefile sets ``MIMALLOC_PURGE_DELAY=10000``.

The allocator has to be in place before the process starts, through ``LD_PRELOAD`` (Linux). The
Makefile targets ask this module which library to preload::

    LD_PRELOAD="$(python -m src.utils.allocator)" python -m src.search +task=sst2

and the entry points (``python -m src.search``, ``src.retrain``, ``src.bench``) restart themselves
once with it preloaded (:func:`reexec_with_preload`), so that direct calls run as the make targets
do.

``AUTOATTEND_ALLOCATOR`` chooses: ``auto`` (default: mimalloc, installed on Linux by
``requirements/cpu.txt``, else jemalloc if the system has it, else nothing), ``mimalloc``,
``jemalloc``, ``tcmalloc``, ``system`` (preload nothing) or the path of a shared library.
Results do not depend on the allocator; only memory and time do.
"""

from __future__ import annotations

import ctypes.util
import importlib.metadata
import os
import sys
from pathlib import Path

ENV = "AUTOATTEND_ALLOCATOR"
KNOWN = ("mimalloc", "jemalloc", "tcmalloc")
SYSTEM = ("system", "none", "glibc")
INSTALL_HINTS = {"mimalloc": "pip install cmeel-mimalloc", "jemalloc": "apt install libjemalloc2",
                 "tcmalloc": "apt install libtcmalloc-minimal4"}


class AllocatorError(ValueError):
    """The requested allocator cannot be found."""


def _pip_mimalloc() -> str | None:
    """``libmimalloc.so`` from the ``cmeel-mimalloc`` wheel, if installed."""
    try:
        dist = importlib.metadata.distribution("cmeel-mimalloc")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if Path(str(f)).name == "libmimalloc.so":
            path = Path(dist.locate_file(f))
            if path.is_file():
                return str(path)
    return None


def find(name: str) -> str | None:
    """A preloadable library for allocator ``name`` (a path or a soname), or None."""
    if name not in KNOWN:
        raise AllocatorError(f"unknown allocator {name!r}; expected one of {KNOWN + SYSTEM} or a library path")
    if name == "mimalloc" and (path := _pip_mimalloc()):
        return path
    return ctypes.util.find_library(name)


def preload(choice: str | None = None) -> str:
    """The value for ``LD_PRELOAD`` that selects ``choice`` (default: ``$AUTOATTEND_ALLOCATOR`` or
    ``auto``); ``""`` where nothing is to be preloaded (``system``, or ``auto`` finding nothing,
    or not Linux). Raises :class:`AllocatorError` when a named allocator or a path is missing."""
    choice = (choice if choice is not None else os.environ.get(ENV, "auto")).strip() or "auto"
    if choice in SYSTEM:
        return ""
    if "/" in choice:
        if any(c.isspace() or c == ":" for c in choice):  # ld.so splits LD_PRELOAD at them
            raise AllocatorError(f"{ENV}={choice}: LD_PRELOAD cannot hold a path with a space or ':'; link or copy "
                                 "the library to a path without")
        if not Path(choice).is_file():
            raise AllocatorError(f"{ENV}={choice}: no such file (expected a malloc shared library)")
        return choice
    if choice != "auto" and choice not in KNOWN:
        raise AllocatorError(f"{ENV}={choice}: unknown allocator; expected auto, one of {KNOWN + SYSTEM} "
                             "or a library path")
    if not sys.platform.startswith("linux"):
        if choice == "auto":
            return ""
        raise AllocatorError(f"{ENV}={choice}: preloading an allocator is supported on Linux only")
    if choice == "auto":
        return next((lib for lib in map(find, ("mimalloc", "jemalloc")) if lib), "")
    lib = find(choice)
    if lib is None:
        raise AllocatorError(f"{ENV}={choice}: no lib{choice} found (install: {INSTALL_HINTS[choice]})")
    return lib


def active(maps: str | None = None) -> str:
    """The allocator this process runs on: a name of :data:`KNOWN` when one of them is mapped
    (``maps``: the text of ``/proc/self/maps``, read when None), else ``"system malloc"``."""
    if maps is None:
        try:  # a library's path may be any bytes (a venv in ~/Thèse/), whatever the locale
            maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return "system malloc"
    libs = {Path(line.split()[-1]).name for line in maps.splitlines() if "/" in line}
    for name in KNOWN:
        if any(lib.startswith(f"lib{name}") for lib in libs):
            return name
    return "system malloc"


REEXEC_MARK = "AUTOATTEND_ALLOCATOR_REEXEC"


def reexec_with_preload() -> None:
    """Restart this process (same interpreter, same command line) with the allocator of
    :func:`preload` in ``LD_PRELOAD`` and ``MIMALLOC_PURGE_DELAY=10000`` unless set, and in Python's
    UTF-8 mode where the locale's encoding is not UTF-8 (:func:`src.utils.restart.utf8_mode_changes`);
    returns without restarting where there is nothing to do: UTF-8 already, and not Linux, nothing to
    preload (``system``, or ``auto`` finding nothing), ``LD_PRELOAD`` already set (the make targets, or
    a user's own choice), or a restart already done (``AUTOATTEND_ALLOCATOR_REEXEC``, so a library the
    loader refuses cannot loop). Called by the entry points before their heavy imports, so a restart
    costs well under a second. Raises :class:`AllocatorError` for a named allocator that is missing."""
    from src.utils.restart import UTF8_REFUSED, restart_with, utf8_mode_changes

    changes = utf8_mode_changes()
    lib = None
    if sys.platform.startswith("linux") and not os.environ.get(REEXEC_MARK) and not os.environ.get("LD_PRELOAD"):
        lib = preload()
    if lib:
        changes.update({REEXEC_MARK: "1", "LD_PRELOAD": lib})
        if "MIMALLOC_PURGE_DELAY" not in os.environ:
            changes["MIMALLOC_PURGE_DELAY"] = "10000"
        restart_with(changes, f"could not restart with {lib} preloaded", "running with the system malloc")
    elif changes:
        restart_with(changes, *UTF8_REFUSED)


def entry_point_preload() -> None:
    """:func:`reexec_with_preload` for a command-line entry point (after
    :func:`src.utils.restart.mend_closed_output`; then :func:`src.utils.restart.use_private_tempdir`): a missing
    allocator is one error line and exit status 2, as for the Makefile's preload."""
    from src.utils.restart import mend_closed_output, use_private_tempdir

    mend_closed_output()
    try:
        reexec_with_preload()
    except AllocatorError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    use_private_tempdir()


def main() -> int:
    try:
        print(preload())
    except AllocatorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
