"""A split of token-id sequences read straight from a memory-mapped Arrow file.

The large text benchmarks (Amazon: 3.6M documents) must not be copied into Python lists or int64
tensors: items are sliced from the file's int32 id buffers on demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset


def read_arrow_table(path: str | Path) -> pa.Table:
    """A memory-mapped table of an Arrow IPC stream file (the format ``datasets`` writes)."""
    return pa.ipc.open_stream(pa.memory_map(str(path))).read_all()


class TokenIdSplit(Dataset):
    """Items ``(LongTensor token ids (len,), int label)`` of Arrow files (read in order, one split)
    with columns ``ids: list<int32>`` and ``label: int64``. Every sequence has length >= 1.

    Pickles by path (DataLoader workers reopen the files instead of copying them).
    """

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [Path(p) for p in paths]
        self._open()

    def _open(self) -> None:
        table = pa.concat_tables([read_arrow_table(p) for p in self.paths])
        chunks = [c for c in table.column("ids").chunks if len(c)]
        # Offsets are absolute into each chunk's (unsliced) values buffer.
        self._values = [c.values.to_numpy(zero_copy_only=True) for c in chunks]
        self._offsets = [c.offsets.to_numpy(zero_copy_only=True) for c in chunks]
        self._starts = np.cumsum([0] + [len(c) for c in chunks])
        self.labels = torch.from_numpy(table.column("label").to_numpy().astype(np.int64))

    def __getstate__(self) -> dict:
        return {"paths": self.paths}

    def __setstate__(self, state: dict) -> None:
        self.paths = state["paths"]
        self._open()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        """``(token_ids LongTensor (len,), label)``."""
        n = len(self)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"index {idx} out of range for a split of {n}")
        k = int(np.searchsorted(self._starts, idx, side="right")) - 1
        i = idx - int(self._starts[k])
        start, end = self._offsets[k][i], self._offsets[k][i + 1]
        return torch.from_numpy(self._values[k][start:end].astype(np.int64)), int(self.labels[idx])

    @property
    def lengths(self) -> torch.Tensor:
        """LongTensor (n,) of sequence lengths."""
        parts = [np.diff(o).astype(np.int64) for o in self._offsets]
        return torch.from_numpy(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
