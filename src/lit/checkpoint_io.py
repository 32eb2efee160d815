"""Checkpoint writing without a second copy of the checkpoint in memory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.pytorch.plugins.io import TorchCheckpointIO


class StreamingCheckpointIO(TorchCheckpointIO):
    """Lightning's :class:`TorchCheckpointIO`, except that a checkpoint on the local file system is
    written by ``torch.save`` straight into a temporary file in its folder, then renamed into place
    (as atomic as Lightning's save). Lightning first serialises the whole checkpoint into an
    in-memory buffer and then writes that: for the paper supernet (453 MB of parameters) the process
    would hold the parameters a second time at every checkpoint. Other file systems: Lightning's way.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        fs, local = fsspec.core.url_to_fs(str(path))
        if storage_options is not None or not isinstance(fs, LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(local)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary new file (mkstemp makes it private)
        try:
            torch.save(checkpoint, tmp)  # a path: torch writes each tensor from its own memory
            os.replace(tmp, target)
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
