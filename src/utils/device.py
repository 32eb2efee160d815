"""The device a run computes on, from ``hardware.accelerator``.

Imports torch only (no Lightning or PyG), so that ``hardware=gpu`` on a machine without a GPU is
reported before the heavier imports of a run.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from src.utils.errors import AutoAttendError


def device_of(cfg: DictConfig) -> torch.device:
    """The device the estimator runs on, consistent with the Trainer's accelerator."""
    acc = cfg.hardware.accelerator
    if acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            named = "hardware=gpu" if acc == "gpu" else f"hardware.accelerator={acc}"
            raise AutoAttendError(f"{named} but torch sees no CUDA device (use hardware=cpu or hardware=auto)")
        return torch.device("cuda")
    return torch.device("cpu")
