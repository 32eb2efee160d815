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
    (also after a resume), so here epoch ``e`` gets the same order either way. A run resumed
    part-way through an epoch calls :meth:`resume_within` first, and gets the rest of that order.
    """

    def __init__(self, n: int, seed: int):
        self.n = n
        self.seed = seed
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_within(self, epoch: int, done: int) -> None:
        """The next pass over epoch ``epoch`` leaves out the first ``done`` indices of its order
        (those an interrupted run had already trained on)."""
        if not 0 <= done <= self.n:
            raise ValueError(f"cannot resume after {done} of {self.n} examples")
        self._resume = (epoch, done)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        if self._resume is not None and self._resume[0] == self.epoch:
            order = order[self._resume[1]:]
            self._resume = None
        return iter(order)
