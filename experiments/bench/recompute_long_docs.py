"""What ``retrain.recompute`` buys on long documents: one training step (forward, backward, Adam) of a
24-layer child at D=256, 8 heads, on a batch of 64 generated documents of up to 512 tokens (Yelp's
max_len), with and without recomputation; each setting in a fresh process so its peak RSS is its own.

    LD_PRELOAD=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator) MIMALLOC_PURGE_DELAY=10000 \
      .venv/bin/python experiments/bench/recompute_long_docs.py
"""

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def one(recompute: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch
    import torch.nn.functional as F

    from src.models import cpu_kernels
    from src.models.text import TextClassifier
    from src.space import FunctionalSpace

    torch.set_num_threads(2)
    cpu_kernels.kernel_error()
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(200, 513, (64,), generator=g)
    mask = torch.arange(512)[None, :] < lengths[:, None]
    tokens = torch.randint(2, 20_000, (64, 512), generator=g).masked_fill(~mask, 0)
    labels = torch.randint(0, 2, (64,), generator=g)
    arch = FunctionalSpace(24).sample(random.Random(0))
    torch.manual_seed(0)
    model = TextClassifier.child(torch.randn(20_000, 50), 2, arch, dim=256, heads=8)
    model.encoder.recompute = recompute
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        opt.zero_grad()
        torch.manual_seed(1)
        loss = F.cross_entropy(model(tokens, mask), labels)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return {"recompute": recompute, "loss": loss.item(), "step_s": [round(t, 2) for t in times],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),  # KiB on Linux
            "real_tokens": int(mask.sum()), "arch": arch.to_dict()}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(one(sys.argv[1] == "recompute")))
    else:
        for setting in ("keep", "recompute"):
            out = subprocess.run([sys.executable, __file__, setting], capture_output=True, text=True, env=os.environ)
            print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else out.stderr[-2000:], flush=True)
