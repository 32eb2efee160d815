"""oneDNN linear products in float32 and in bfloat16 at scoring shapes, one intra-op thread.

What a labelled lower-precision scoring option could buy on a CPU with AVX512_BF16 (issue 5):
the GRU's input projections of a scoring bucket (both directions: N=384), a kernel-1 map (N=64),
one direction's projection (N=192) and one step of the GRU recurrence (2 rows).
Run: ``.venv/bin/python experiments/bench/bf16_linear.py``.
"""
import time

import torch

torch.set_num_threads(1)


def seconds_per_call(fn, calls: int = 200) -> float:
    for _ in range(20):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    return lambda: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


for rows, k, n in [(2369, 64, 384), (2369, 64, 64), (128 * 20, 64, 192), (2, 64, 192)]:
    x, w, b = torch.randn(rows, k), torch.randn(n, k), torch.randn(n)
    t32 = seconds_per_call(linear(x, w, b))
    t16 = seconds_per_call(linear(x.bfloat16(), w.bfloat16(), b.bfloat16()))
    flop = 2 * rows * k * n
    print(f"({rows}x{k}) @ ({k}x{n}): float32 {t32 * 1e6:8.1f} us ({flop / t32 / 1e9:6.1f} GFLOP/s), "
          f"bfloat16 {t16 * 1e6:8.1f} us ({flop / t16 / 1e9:6.1f} GFLOP/s), {t32 / t16:.2f}x")
