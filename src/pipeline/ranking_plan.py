"""Which candidates and seeds the ranking stage (:mod:`src.pipeline.ranking`) trains, without torch:
``src.report`` works out how far a stopped ranking stage got from the same rule."""

from __future__ import annotations

SEED_OFFSET = 3000  # retrain seeds are seed + i, the HPO's seed + 1000 + i, re-ranking's seed + 2000 + j


def evenly_spaced(count: int, n: int) -> list[int]:
    """``n`` indices into ``range(count)`` at even spacing, the first and the last included (all
    of them when ``n >= count``)."""
    if n >= count:
        return list(range(count))
    if n == 1:
        return [0]
    return sorted({round(i * (count - 1) / (n - 1)) for i in range(n)})


def picked_ranks(distinct: int, candidates: int) -> list[int]:
    """The supernet ranks (1 = best) of the ``candidates`` picked among ``distinct`` architectures."""
    return [i + 1 for i in evenly_spaced(distinct, candidates)]


def ranking_seeds(seed: int, count: int) -> list[int]:
    """The seeds each picked candidate is trained with from scratch."""
    return [int(seed) + SEED_OFFSET + j for j in range(int(count))]
