"""Restarting an entry point's process once, before its heavy imports, with a changed environment.

Two reasons, each done at most once (the changed environment is what tells a restarted process):

- the allocator to preload (:func:`src.utils.allocator.reexec_with_preload`: ``src.search``, ``src.retrain``,
  ``src.bench``);
- Python's UTF-8 mode (:func:`utf8_mode_changes`: every entry point), where the locale's encoding is not
  UTF-8 (``LANG=C`` with ``PYTHONUTF8=0``, a Latin-1 locale): Python then decodes the command line and
  standard input in that encoding and writes standard output and ``open()``'s files in it, so that
  ``src.predict "café"`` classified ``caf\\udcc3\\udca9`` (pieces of unknown words), printing a class name
  or a text of ``--file`` outside ASCII was a UnicodeEncodeError traceback, the run's log dropped every line
  naming a non-ASCII folder, and a run in such a folder could not be read or resumed (torch encodes paths as
  UTF-8). The project's files are UTF-8 whatever the locale; in UTF-8 mode the command line and the output
  are too.
"""

from __future__ import annotations

import atexit
import codecs
import locale
import os
import shutil
import sys
import tempfile
from pathlib import Path


def utf8_mode_changes() -> dict[str, str]:
    """``{"PYTHONUTF8": "1"}`` where Python runs outside its UTF-8 mode under a locale whose encoding is
    not UTF-8, else ``{}``."""
    if sys.flags.utf8_mode:
        return {}
    try:
        encoding = codecs.lookup(locale.getpreferredencoding(False)).name
    except LookupError:
        encoding = "unknown"
    return {} if encoding == "utf-8" else {"PYTHONUTF8": "1"}


UTF8_REFUSED = ("could not restart in Python's UTF-8 mode", "running on in the locale's encoding")


def restart_with(changes: dict[str, str], refused: str, then: str) -> None:
    """Replace this process by the same command (same interpreter, options and arguments) with ``changes``
    in its environment; returns only where the system refuses the ``exec`` (a sandbox, say), after printing
    ``note: <refused> (<why>); <then>``, and the command runs on as it is."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None: the descriptor was closed (`2>&-`)
            stream.flush()
    try:
        # the arguments are given back as they came: str decoded with surrogateescape encodes to the same bytes
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **changes})
    except OSError as exc:
        if sys.stderr is not None:
            print(f"note: {refused} ({exc.strerror}); {then}", file=sys.stderr)


def mend_closed_output() -> None:
    """Standard output closed (``>&-``, a daemon's start): Python's ``sys.stdout`` is then None, and the
    entry points' flushes were AttributeError tracebacks, after a search's whole work too. Its output goes to
    ``/dev/null`` instead (the descriptor taken is 1, the lowest free one, so child processes get it too)."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")


AF_UNIX_PATH_MAX = 107  # bytes of a socket's path (Linux's sun_path, less its terminating zero)
AF_UNIX_TAIL = len("/pymp-12345678/listener-12345678")  # where multiprocessing puts its listener's socket


def use_private_tempdir() -> Path | None:
    """Give this process, and the processes it starts, a temporary folder of its own under the system's
    (``$TMPDIR``), removed when it exits; one a killed process left is removed by the next command's call
    (:func:`src.utils.io.remove_stale_builds`). PyG writes each MessagePassing class's generated ``propagate``
    module there (``torch_geometric.template``, ``delete=False``) in every process, workers included, and
    never removes it: 40-odd files a graph search, 10,886 files (99 MiB) in /tmp after two days of runs.
    Called after any restart (:func:`restart_with` replaces the process, which would leave it behind).
    Returns the folder, or None where the system's temporary folder cannot be written or its path is so long that
    multiprocessing's socket paths under the new folder would pass their limit (the folder is then left as it is)."""
    from src.utils.io import build_prefix, remove_stale_builds

    base = Path(tempfile.gettempdir())
    if base.name.startswith(build_prefix("tmp")):  # called again in this process: the folder it has
        return base
    # multiprocessing puts its sockets (AF_UNIX: 107 bytes a path) two folders deeper: leave a long TMPDIR as it is
    if len(os.fsencode(base)) + len(build_prefix("tmp")) + 9 + AF_UNIX_TAIL > AF_UNIX_PATH_MAX:
        return None
    try:
        remove_stale_builds(base)
        private = tempfile.mkdtemp(prefix=build_prefix("tmp"), dir=base)
    except OSError:  # an unwritable or missing TMPDIR: each library says so, as before
        return None
    os.environ["TMPDIR"] = private  # the processes this one starts (graph workers, compilers) inherit it
    tempfile.tempdir = private
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    return Path(private)


def entry_point_utf8() -> None:
    """For an entry point that preloads nothing (``src.predict``, ``src.evaluate``, ``src.show``,
    ``src.report``): :func:`mend_closed_output`, then restart once in Python's UTF-8 mode where
    :func:`utf8_mode_changes` says so, then :func:`use_private_tempdir`."""
    mend_closed_output()
    changes = utf8_mode_changes()
    if changes:
        restart_with(changes, *UTF8_REFUSED)
    use_private_tempdir()
