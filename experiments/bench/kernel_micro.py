"""Micro-benchmarks of the kernels changed on 2026-12-02 (experiments/README.md), for one checkout.

Run: ``.venv/bin/python experiments/bench/kernel_micro.py [ROOT]`` with ROOT a checkout of the
project (default: this one) and, for another checkout, its own ``TORCH_EXTENSIONS_DIR``. One
intra-op thread. Prints medians of:

* scoring attention, one layer over the SST-5 dev set in the estimator's length buckets (real
  trees under ``$AUTOATTEND_DATA_DIR``; skipped without them);
* training attention (dropout 0.1) forward + backward on a (128, 47, 64) batch of random lengths;
* the max-pool op's pool forward + backward on that batch (whatever path the checkout takes);
* the GRU op forward + backward on that batch.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]).resolve()
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from src.models import cpu_kernels  # noqa: E402
from src.models.ops import GRUOp, MaxPoolOp, attention_pair_count, fused_attention  # noqa: E402


def median_ms(fn, reps: int = 7, inner: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner * 1e3)
    return statistics.median(times)


def scoring_attention_ms() -> float | None:
    data = Path(os.environ.get("AUTOATTEND_DATA_DIR", ROOT.parent / "shared" / "data"))
    if not (data / "sst" / "trees" / "dev.txt").is_file():
        return None
    from src.data.sst import SSTDataModule
    from src.estimator import length_buckets
    from src.pipeline.common import make_loader

    dm = SSTDataModule(str(data), 5, train_level="sentence", cache_dir="/tmp/kernel_micro_cache", seed=0)
    dm.prepare_data()
    dm.setup()
    buckets = length_buckets(list(make_loader(dm.val_set, 1024, False, 0)), 128)
    g = torch.Generator().manual_seed(0)
    inputs = [(tuple(torch.randn(*b["mask"].shape, 64, generator=g) for _ in range(3)), b["mask"]) for b in buckets]

    def layer():
        for (q, k, v), m in inputs:
            torch.ops.autoattend.attention(q, k, v, m, 8)

    with torch.inference_mode():
        return median_ms(layer, inner=10)


def main() -> None:
    torch.set_num_threads(1)
    cpu_kernels.require_loaded()
    print(f"checkout {ROOT}, torch {torch.__version__}, 1 thread")
    score = scoring_attention_ms()
    print("scoring attention, one layer over the SST-5 dev set:",
          "no SST trees" if score is None else f"{score:.2f} ms")

    b, t, d = 128, 47, 64
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, t + 1, (b,), generator=g)
    lengths[0] = t
    mask = torch.arange(t)[None] < lengths[:, None]
    q, k, v = (torch.randn(b, t, d, generator=g).requires_grad_() for _ in range(3))
    upstream = torch.randn(b, t, d, generator=g)
    pairs = attention_pair_count(mask, 8)

    def attention_step():
        (fused_attention(q, k, v, mask, 8, 0.1, pairs) * upstream).sum().backward()

    print(f"training attention forward + backward: {median_ms(attention_step):.2f} ms")

    torch.manual_seed(0)
    pool = MaxPoolOp(d)
    gru = GRUOp(d, 0.1).train()
    x = torch.randn(b, t, d, generator=g).requires_grad_()

    def pool_step():
        (pool(x, mask) * upstream).sum().backward()

    def gru_step():
        (gru(x, mask) * upstream).sum().backward()

    print(f"max-pool op (LayerNorm + pool) forward + backward: {median_ms(pool_step):.2f} ms")
    print(f"GRU op forward + backward: {median_ms(gru_step):.2f} ms")


if __name__ == "__main__":
    main()
