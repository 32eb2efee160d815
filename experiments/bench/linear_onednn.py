"""MKL (torch's F.linear / mm on CPU) against oneDNN (src.models.linear) on the project's products.

Run: ``.venv/bin/python experiments/bench/linear_onednn.py`` (one intra-op thread). Prints, per
shape, the median time of forward ``x W^T``, ``dx = dy W`` and ``dW = dy^T x`` (``weight_grad``) both
ways, and the largest difference between the two results.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from src.models.linear import _product, onednn_available, weight_grad  # noqa: E402

SHAPES = {  # (rows M, in K, out N): where each appears
    "GRU input projection, supernet (D=64, a scoring bucket)": (2450, 64, 192),
    "conv1 / kernel-1 map, supernet (D=64)": (2450, 64, 64),
    "stem projection (300 -> 64, a training batch)": (128 * 47, 300, 64),
    "GRU input projection, retrain (D=256, a training batch)": (128 * 47, 256, 768),
}


def median_us(fn, reps: int = 30) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    torch.set_num_threads(1)
    if not onednn_available():
        sys.exit("this torch build has no oneDNN linear op")
    print(f"torch {torch.__version__}, 1 thread")
    for name, (m, k, n) in SHAPES.items():
        g = torch.Generator().manual_seed(0)
        x, w, dy = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g), torch.randn(m, n, generator=g)
        wt = w.t().contiguous()
        flop = 2 * m * k * n
        pairs = {
            "forward": (lambda: F.linear(x, w), lambda: _product(x, w, None)),
            "dx": (lambda: dy @ w, lambda: _product(dy, wt, None)),
            "dW": (lambda: dy.t() @ x, lambda: weight_grad(dy, x)),
        }
        print(f"\n{name}: M={m} K={k} N={n}")
        for part, (mkl, onednn) in pairs.items():
            a, b = median_us(mkl), median_us(onednn)
            diff = (mkl() - onednn()).abs().max().item()
            print(f"  {part:8s} MKL {a:8.0f} us ({flop / a / 1e3:4.0f} GFLOP/s)   oneDNN {b:8.0f} us "
                  f"({flop / b / 1e3:4.0f} GFLOP/s)   x{a / b:.2f}   max diff {diff:.1e}")


if __name__ == "__main__":
    main()
