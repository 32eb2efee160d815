"""Interleaved A/B on CPU with torch's ops (``hardware.kernels=torch``, the path where the fused
kernels cannot be built): the GRU op's ``packed`` against its ``unpacked`` path, the paper
supernet's 16-architecture forward + backward (24 layers, D=64, 8 heads, full context, one SST-5
batch of 128 sentences), 2 workers, 3 rounds alternating the order, each the median of 3 after a
warm-up. Output: ``cpu_gru_paths_ab_2026-12-04.txt``.

    python experiments/bench/cpu_gru_paths_ab.py [data_dir]
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from gpu_ab import use_gru_path  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from src.bench_harness import _data, _timed  # noqa: E402
from src.models import cpu_kernels  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402
from src.space import FunctionalSpace  # noqa: E402


def main() -> None:
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    cpu_kernels.set_backend("torch")
    dm, _ = _data(OmegaConf.create({"paths": {"data_dir": data_dir, "cache_dir": "/tmp/autoattend_cache"}, "seed": 0}))
    space = FunctionalSpace(24)
    torch.manual_seed(0)
    model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8, sharing="full").train()
    batch = next(iter(make_loader(dm.train_set, 128, True, 0)))
    archs = space.sample_distinct(16, random.Random(0))
    print("threads", torch.get_num_threads(), flush=True)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], archs, workers=2)

    for r in range(3):
        for path in ("packed", "unpacked") if r % 2 == 0 else ("unpacked", "packed"):
            use_gru_path(path)
            times = _timed(step, 3, 1, torch.device("cpu"))
            print(f"round {r} {path}: median {statistics.median(times):.2f} s {[round(t, 2) for t in times]}", flush=True)


if __name__ == "__main__":
    main()
