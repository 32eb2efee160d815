"""Which candidates and seeds the ranking stage (:mod:`src.pipeline.ranking`) trains, without torch:
``src.report`` works out how far a stopped ranking stage got from the same rule."""

from __future__ import annotations

# Seeds of the trainings no result reports, apart from each other and from the retrain's (seed + i):
HPO_SEED_OFFSET = 1000  # a graph HPO trial t trains with seed + 1000 + t
RERANK_SEED_OFFSET = 2000  # a graph re-ranking candidate's seed j is seed + 2000 + j
SEED_OFFSET = 3000  # the ranking stage's seed j: seed + 3000 + j


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
