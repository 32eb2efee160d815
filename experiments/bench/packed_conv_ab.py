"""Same-process A/B of the packed convolutions (``ops.PackedConvPlan``) on training steps.

Run (mimalloc preloaded, as ``make bench`` runs):
``LD_PRELOAD=$(.venv/bin/python -m src.utils.allocator) MIMALLOC_PURGE_DELAY=10000
.venv/bin/python experiments/bench/packed_conv_ab.py`` with the real SST trees under
``$AUTOATTEND_DATA_DIR`` (default ``../shared/data``). 2 threads. Alternates the packed path
(``PACKED_CONV_MAX_SHARE`` 0.7, the default) and the padded one (0.0) four times each on:

* the retrain step of the published SST-5 architecture (D=256, batch 128), mean over 6 batches;
* a supernet step (16 architectures, D=64, 2 workers), the same architectures for both settings.

Both with ``PACKED_CONV_MAX_SHARE_NARROW`` set alike, so that D=64 is measured too (by default, since
the phrase-batch measurement, it packs only batches packed to at most 0.3 of their rows).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from sst5_setup import paper_supernet, sst5  # noqa: E402
from src.models import mask_cache, ops  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402
from src.pipeline.config import resolve_arch  # noqa: E402

SHARES = (0.7, 0.0)


def set_share(share: float) -> None:
    ops.PACKED_CONV_MAX_SHARE = share
    ops.PACKED_CONV_MAX_SHARE_NARROW = share  # every width packs alike, D=64 included
    mask_cache._entries.table = {}  # plans carry the decision


def main() -> None:
    torch.set_num_threads(2)
    dm = sst5("sentence", "/tmp/packed_conv_ab_cache")
    batches = [b for _, b in zip(range(6), make_loader(dm.train_set, 128, True, 0))]
    real = float(torch.cat([b["mask"].float().mean(1) for b in batches]).mean())
    print(f"torch {torch.__version__}, 2 threads; real tokens are {real:.0%} of the padded batches")

    torch.manual_seed(0)
    child = TextClassifier.child(dm.embeddings, dm.num_classes, resolve_arch("published_sst5"), dim=256, heads=8)
    opt = torch.optim.Adam([p for p in child.parameters() if p.requires_grad], lr=5e-4)
    child.train()

    def retrain_step(b):
        opt.zero_grad()
        F.cross_entropy(child(b["tokens"], b["mask"]), b["labels"]).backward()
        torch.nn.utils.clip_grad_norm_(child.parameters(), 1.0)
        opt.step()

    times = {s: [] for s in SHARES}
    for _ in range(4):
        for share in SHARES:
            set_share(share)
            retrain_step(batches[0])
            start = time.perf_counter()
            for b in batches:
                retrain_step(b)
            times[share].append((time.perf_counter() - start) / len(batches))
    for share in SHARES:
        print(f"retrain step, share {share}: median {statistics.median(times[share]):.3f} s",
              [round(t, 3) for t in times[share]])

    model, space = paper_supernet(dm)
    sopt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-4 / 16)
    model.train()
    b = batches[0]

    def supernet_step(seed):
        sopt.zero_grad()
        backward_archs(model, b["tokens"], b["mask"], b["labels"], space.sample_distinct(16, random.Random(seed)),
                       workers=2)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        sopt.step()

    supernet_step(100)
    times = {s: [] for s in SHARES}
    for rep in range(4):
        for share in SHARES:
            set_share(share)
            start = time.perf_counter()
            supernet_step(rep)
            times[share].append(time.perf_counter() - start)
    for share in SHARES:
        print(f"supernet step, share {share}: median {statistics.median(times[share]):.3f} s",
              [round(t, 3) for t in times[share]])


if __name__ == "__main__":
    main()
