"""Candidate scoring with the supernet's shared weights (eval mode, no gradients)."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from src.space import Architecture

# (model, batch, arch) -> (number correct or metric numerator, number of examples)
ScoreBatch = Callable[[nn.Module, dict, Architecture], tuple[float, int]]


def accuracy_on_batch(model: nn.Module, batch: dict, arch: Architecture) -> tuple[float, int]:
    """Text batches: ``tokens`` (B, T), ``mask`` (B, T), ``labels`` (B,) -> (correct, B)."""
    logits = model(batch["tokens"], batch["mask"], arch)
    return (logits.argmax(-1) == batch["labels"]).sum().item(), len(batch["labels"])


class SupernetEstimator:
    """Scores an architecture on fixed batches with the supernet's weights.

    ``batches`` (dicts of tensors) are moved to ``device`` once, so scoring 1,000 candidates
    does not re-collate 1,000 times. ``score_batch`` turns one batch into (numerator, count);
    the score is sum(numerators) / sum(counts) -- accuracy for the default text scorer. Other
    tasks (graphs, multi-label) pass their own ``score_batch``.
    """

    def __init__(self, model: nn.Module, batches: Iterable[dict], device: torch.device | str = "cpu",
                 score_batch: ScoreBatch = accuracy_on_batch):
        self.model = model
        self.device = torch.device(device)
        self.batches = [{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in b.items()} for b in batches]
        self.score_batch = score_batch
        if not self.batches:
            raise ValueError("the estimator got no validation batches")

    @property
    def num_examples(self) -> int:
        return sum(len(b["labels"]) for b in self.batches if "labels" in b)

    @torch.inference_mode()
    def __call__(self, arch: Architecture) -> float:
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        for b in self.batches:
            num, n = self.score_batch(self.model, b, arch)
            total += num
            count += n
        self.model.train(was_training)
        return total / count
