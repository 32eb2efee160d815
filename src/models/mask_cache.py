"""Values derived from a padding mask, reused while the same, unmodified mask comes back.

A forward pass applies dozens of ops to one (B, T) mask, and several of them derive the same
index structures from it (the GRU's packing plan, the real rows a dropout draws for). Each such
value is kept once per thread, for the last mask it was asked for; the entry holds the mask
itself, so its key (identity and in-place version counter) cannot be reused by another tensor.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

import torch

V = TypeVar("V")

_entries = threading.local()


def per_mask(name: str, mask: torch.Tensor, build: Callable[[torch.Tensor], V]) -> V:
    """``build(mask)``, computed once for each unmodified ``mask`` per ``name`` and thread.

    Inference tensors have no version counter; for them ``build`` runs every time.
    """
    try:
        version = mask._version
    except RuntimeError:
        return build(mask)
    table = getattr(_entries, "table", None)
    if table is None:
        table = _entries.table = {}
    cached = table.get(name)
    if cached is not None and cached[0] is mask and cached[1] == version:
        return cached[2]
    value = build(mask)
    table[name] = (mask, version, value)
    return value
