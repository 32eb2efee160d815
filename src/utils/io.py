"""Atomic file writes: a reader (or a crashed run) never sees a half-written result."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """A temporary path in ``path``'s folder to write; renamed to ``path`` when the block ends, removed
    if it raises. The file gets an ordinary new file's mode (``mkstemp`` would make it private)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux reports it (setting and restoring
    it would briefly affect files other threads create)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_target(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def file_stamp(path: str | Path) -> dict[str, int]:
    """What keys a cache built from the file at ``path``: its size and its modification and change
    times. The change time too, because ``cp -p``, ``rsync -a``, ``tar x`` and ``touch -r`` carry a
    modification time over (a label fixed in place, same size, kept the stale cache) while the
    change time can only move forward."""
    status = Path(path).stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "ctime_ns": status.st_ctime_ns}
