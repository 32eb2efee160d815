"""Shuffling that a resumed run repeats: the order of epoch ``e`` depends only on (seed, e)."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """A random permutation of ``range(n)`` per epoch, drawn from a generator seeded with
    ``(seed, epoch)``.

    A ``DataLoader(shuffle=True, generator=g)`` draws epoch ``e``'s order from ``g``'s state after
    ``e`` earlier epochs, which a run resumed from a checkpoint does not have: it would see the
    first epoch's order again. Lightning calls :meth:`set_epoch` at the start of every epoch
    (also after a resume), so here epoch ``e`` gets the same order either way.
    """

    def __init__(self, n: int, seed: int):
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())
