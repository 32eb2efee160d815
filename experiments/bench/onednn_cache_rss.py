"""Peak RSS after oneDNN products of 1,000 different row counts, with the given cache capacity.

Run: ``.venv/bin/python experiments/bench/onednn_cache_rss.py [CAPACITY]`` (no argument: the
project's default, set by importing ``src.models.linear``; ``1024`` is torch's). Prints the peak
RSS and the time per call for new shapes and for a repeated one.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

if len(sys.argv) > 1:
    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = os.environ["LRU_CACHE_CAPACITY"] = sys.argv[1]
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from src.models.linear import _product  # noqa: E402  (sets the project's default capacity)


def main() -> None:
    torch.set_num_threads(1)
    weight = torch.randn(192, 64)
    start = time.perf_counter()
    for rows in range(1000, 3000, 2):
        _product(torch.randn(rows, 64), weight, None)
    new_us = (time.perf_counter() - start) / 1000 * 1e6
    x = torch.randn(2000, 64)
    start = time.perf_counter()
    for _ in range(1000):
        _product(x, weight, None)
    same_us = (time.perf_counter() - start) / 1000 * 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux: MiB
    print(f"capacity {os.environ['LRU_CACHE_CAPACITY']}: peak RSS {peak:.0f} MiB, "
          f"{new_us:.0f} us a call with a new shape, {same_us:.0f} us with a cached one")


if __name__ == "__main__":
    main()
