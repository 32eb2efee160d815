"""Time (and profile) one paper-supernet training step on SST-5 phrase batches against sentence batches.

The paper trains its supernet on every labelled phrase of the training trees (318,582 examples,
2,489 steps an epoch): its batches are 13 % real tokens (mean longest phrase 32 tokens), against
42 % (46 tokens) for sentence batches, which the ``make bench`` figure uses. Run:
``.venv/bin/python experiments/bench/profile_phrase_step.py THREADS WORKERS [prof]`` with the real SST
trees under ``$AUTOATTEND_DATA_DIR`` (default ``../shared/data``). Prints, for each level, the median
seconds of a step (16 architectures on one batch of 128, forward and backward, no optimizer step)
over the same 6 batches and architectures after one warm-up, and with ``prof`` torch's profiler table
of 2 phrase steps (self CPU time).
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from sst5_setup import paper_supernet, print_profile, sst5  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402


def main() -> None:
    threads, workers = int(sys.argv[1]), int(sys.argv[2])
    profile_it = sys.argv[3:] == ["prof"]
    torch.set_num_threads(threads)
    model = space = None
    for level in ("phrase", "sentence"):
        dm = sst5(level, "/tmp/profile_phrase_cache")
        if model is None:
            model, space = paper_supernet(dm)
            model.train()
        batches = list(itertools.islice(make_loader(dm.train_set, 128, True, 0), 7))
        real = sum(int(b["mask"].sum()) for b in batches) / sum(b["mask"].numel() for b in batches)
        rng = random.Random(0)

        def step(b) -> None:
            model.zero_grad(set_to_none=True)
            backward_archs(model, b["tokens"], b["mask"], b["labels"], space.sample_distinct(16, rng), None, workers)

        step(batches[0])
        times = []
        for b in batches[1:]:
            start = time.perf_counter()
            step(b)
            times.append(time.perf_counter() - start)
        print(f"{level}: {real:.0%} real tokens, longest {statistics.mean(b['mask'].shape[1] for b in batches):.1f} "
              f"on average; median step {statistics.median(times):.3f} s {[round(t, 3) for t in times]}", flush=True)
        if profile_it and level == "phrase":
            print_profile(lambda: [step(b) for b in batches[1:3]], 25)


if __name__ == "__main__":
    main()
