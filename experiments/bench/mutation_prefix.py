"""How many leading layers a mutated child shares with its parent in the paper's evolution.

Run: ``.venv/bin/python experiments/bench/mutation_prefix.py``. Runs the evolution strategy at the
paper's settings (24 layers, 500 random candidates, 5 rounds of 100 children, mutation rate 0.05)
with random scores (the ranking does not change how mutation works) and prints the mean and median
number of leading layers each child has in common with its parent: the part of the child whose
node outputs a scorer could reuse from the parent's.
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from src.space import FunctionalSpace  # noqa: E402
from src.strategies.evolution import Evolution  # noqa: E402


def main() -> None:
    layers = 24
    strategy = Evolution(FunctionalSpace(layers), seed=0)
    scores = random.Random(5)
    shared = []
    while batch := strategy.ask():
        if strategy.stage >= 2:  # a round of children, one per parent in rank order
            parents = [parent for parent, _ in strategy.ranked(strategy.parents)]
            for child, parent in zip(batch, parents):
                k = 0
                while k < layers and child[k] == parent[k]:
                    k += 1
                shared.append(k)
        for arch in batch:
            strategy.tell(arch, scores.random())
    print(f"{len(shared)} children: mean {statistics.mean(shared):.2f}, median {statistics.median(shared)} "
          f"of {layers} leading layers shared with the parent")


if __name__ == "__main__":
    main()
