"""Time torch.optim.Adam's implementations on the paper supernet's parameters, as a step uses them.

Run: ``.venv/bin/python experiments/bench/adam_foreach.py`` (2 threads). Builds the 24-layer
full-context supernet (D=64, 8 heads, 7,100 op modules), draws 4 steps' worth of 16 distinct
architectures, gives the parameters each step's architectures use a gradient (about 3,100 tensors,
10 M values) and the others none, creates Adam's state for every parameter (a long run holds it),
then times ``optimizer.step()`` 3 times over the 4 steps for the per-tensor loop (CPU's default,
the supernet's), the multi-tensor implementation (``foreach=True``: the same arithmetic bit for
bit) and the fused kernel (``fused=True``: last-bit differences). Prints the median and every time.
On 2026-12-03 (quiet machine, output ``adam_foreach_2026-12-03.txt``): 0.156, 0.150 and 0.043 s, of
a phrase-batch supernet step of about 2.1 s: neither was adopted (the multi-tensor step is no
faster; the fused one would save about 5 % and give up bit-for-bit equality with the offloaded
and bfloat16-state optimizers' float32 references).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from src.models.optim import materialise_adam_state  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.space import FunctionalSpace  # noqa: E402

IMPLEMENTATIONS = {"per-tensor loop": {"foreach": False}, "multi-tensor": {"foreach": True}, "fused": {"fused": True}}


def main() -> None:
    torch.set_num_threads(2)
    space = FunctionalSpace(24)
    torch.manual_seed(0)
    model = TextClassifier.supernet(torch.randn(1000, 50), 5, space, dim=64, heads=8, sharing="full")
    params = [p for p in model.parameters() if p.requires_grad]
    rng = random.Random(0)
    steps = []
    for _ in range(4):
        used = {}
        for arch in space.sample_distinct(16, rng):
            used.update({id(p): p for p in model.used_parameters(arch).values()})
        steps.append([(p, torch.randn_like(p) * 1e-3) for p in used.values()])
    print(f"{len(params)} parameter tensors; with a gradient per step: {[len(s) for s in steps]} tensors, "
          f"{[round(sum(p.numel() for p, _ in s) / 1e6, 1) for s in steps]} M values", flush=True)
    for name, options in IMPLEMENTATIONS.items():
        optimizer = torch.optim.Adam(params, lr=5e-4 / 16, **options)
        materialise_adam_state(optimizer)
        times = []
        for _ in range(3):
            for step in steps:
                for p in params:
                    p.grad = None
                for p, grad in step:
                    p.grad = grad
                start = time.perf_counter()
                optimizer.step()
                times.append(time.perf_counter() - start)
        print(f"{name}: median {statistics.median(times):.3f} s a step {[round(t, 3) for t in times]}", flush=True)
        del optimizer


if __name__ == "__main__":
    main()
