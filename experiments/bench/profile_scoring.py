"""Time or profile candidate scoring on the SST-5 dev set at the paper's supernet configuration.

Run: ``.venv/bin/python experiments/bench/profile_scoring.py THREADS WORKERS time|prof`` with the real
SST trees under ``$AUTOATTEND_DATA_DIR`` (default ``../shared/data``). The supernet is freshly
initialised (scoring costs the same with trained weights). ``time`` prints the median seconds per
candidate over 11 candidates; ``prof`` prints torch's profiler table for 5 candidates (after one
warm-up candidate), whose last line is the total CPU time.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from sst5_setup import paper_supernet, print_profile, sst5  # noqa: E402
from src.estimator import SupernetEstimator  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402


def main() -> None:
    threads, workers, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(threads)
    dm = sst5("sentence", "/tmp/profile_scoring_cache")
    model, space = paper_supernet(dm)
    estimator = SupernetEstimator(model, make_loader(dm.val_set, 1024, False, 0), "cpu", bucket_size=128,
                                  workers=workers)
    model.eval()
    candidates = space.sample_distinct(12, random.Random(1))
    estimator(candidates[0])
    if mode == "time":
        times = []
        for arch in candidates[1:]:
            start = time.perf_counter()
            estimator(arch)
            times.append(time.perf_counter() - start)
        print(f"median {statistics.median(times):.3f} s per candidate", [round(t, 3) for t in times])
        return
    print_profile(lambda: [estimator(arch) for arch in candidates[1:6]], 30)


if __name__ == "__main__":
    main()
