"""What the SST-5 benchmark scripts here share: the real trees, the paper's supernet, a profile.

Each script puts the repository root on ``sys.path`` and then imports this module (scripts run as
``.venv/bin/python experiments/bench/<script>.py``, whose folder Python puts on the path too).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from src.data.sst import SSTDataModule
from src.models.text import TextClassifier
from src.space import FunctionalSpace

ROOT = Path(__file__).resolve().parents[2]


def sst5(train_level: str, cache_dir: str) -> SSTDataModule:
    """SST-5 from the trees under ``$AUTOATTEND_DATA_DIR`` (default ``../shared/data``), set up."""
    data = os.environ.get("AUTOATTEND_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    dm = SSTDataModule(data, 5, train_level=train_level, cache_dir=cache_dir, seed=0)
    dm.prepare_data()
    dm.setup()
    return dm


def paper_supernet(dm: SSTDataModule, seed: int = 0) -> tuple[TextClassifier, FunctionalSpace]:
    """The paper's supernet (24 layers, D=64, 8 heads, full-context sharing), initialised from
    ``seed``, and its space."""
    space = FunctionalSpace(24)
    torch.manual_seed(seed)
    model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8, sharing="full")
    return model, space


def print_profile(run: Callable[[], None], rows: int) -> None:
    """torch's CPU profiler table of ``run()``, the ``rows`` ops with the most self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
