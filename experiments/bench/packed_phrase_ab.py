"""Same-process A/B of packed convolutions at D=64 on the paper supernet's phrase batches.

The paper trains its supernet on every labelled phrase of the SST-5 training trees: batches of
128 phrases are 13 % real tokens, and packing their sequences end to end (``ops.PackedConvPlan``)
leaves 0.10-0.28 of the padded rows, against 0.36-0.56 for sentence batches, on which packing at
D=64 bought nothing (``packed_conv_ab.py``). Run (mimalloc preloaded, as ``make bench`` runs):
``LD_PRELOAD=$(.venv/bin/python -m src.utils.allocator) MIMALLOC_PURGE_DELAY=10000
.venv/bin/python experiments/bench/packed_phrase_ab.py THREADS WORKERS`` with the real SST trees
under ``$AUTOATTEND_DATA_DIR`` (default ``../shared/data``). Alternates packed
(``PACKED_CONV_MAX_SHARE_NARROW`` 0.3, the default) and padded (0.0) convolutions three times
each, every time over the same 5 phrase batches with the same 16 architectures each (forward and
backward of a supernet step, no optimizer step), after one warm-up of each; prints the mean
seconds a step of every round and the medians.
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

from sst5_setup import paper_supernet, sst5  # noqa: E402
from src.models import mask_cache, ops  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402

SHARES = {"packed": 0.3, "padded": 0.0}


def main() -> None:
    threads, workers = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    dm = sst5("phrase", "/tmp/packed_phrase_ab_cache")
    model, space = paper_supernet(dm)
    model.train()
    batches = list(itertools.islice(make_loader(dm.train_set, 128, True, 0), 5))
    archs = [space.sample_distinct(16, random.Random(i)) for i in range(len(batches))]
    shares = [ops.PackedConvPlan(b["mask"], 1).share for b in batches]
    print(f"{threads} threads, {workers} workers; packed share of the batches (kernel 3): "
          f"{min(shares):.2f}-{max(shares):.2f}", flush=True)

    def seconds_a_step(setting: str) -> float:
        ops.PACKED_CONV_MAX_SHARE_NARROW = SHARES[setting]
        mask_cache._entries.table = {}  # plans are cached per mask
        start = time.perf_counter()
        for batch, step_archs in zip(batches, archs):
            model.zero_grad(set_to_none=True)
            backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], step_archs, None, workers)
        return (time.perf_counter() - start) / len(batches)

    for setting in SHARES:
        seconds_a_step(setting)
    times = {setting: [] for setting in SHARES}
    for round_ in range(3):
        for setting in SHARES:
            times[setting].append(seconds_a_step(setting))
            print(f"round {round_ + 1} {setting}: {times[setting][-1]:.3f} s a step", flush=True)
    print("median: " + ", ".join(f"{s} {statistics.median(t):.3f} s" for s, t in times.items()))


if __name__ == "__main__":
    main()
