"""Candidate scoring with the supernet's shared weights (eval mode, no gradients)."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from src.space import Architecture


class SupernetEstimator:
    """Scores an architecture by its accuracy on fixed batches with the supernet's weights.

    ``batches`` are dicts with ``tokens`` (B, T), ``mask`` (B, T) and ``labels`` (B,); they are
    moved to ``device`` once, so scoring 1,000 candidates does not re-collate 1,000 times.
    """

    def __init__(self, model: nn.Module, batches: Iterable[dict], device: torch.device | str = "cpu"):
        self.model = model
        self.device = torch.device(device)
        self.batches = [{k: v.to(self.device) for k, v in b.items()} for b in batches]
        self.num_examples = sum(len(b["labels"]) for b in self.batches)
        if self.num_examples == 0:
            raise ValueError("the estimator got no validation examples")

    @torch.inference_mode()
    def __call__(self, arch: Architecture) -> float:
        was_training = self.model.training
        self.model.eval()
        correct = 0
        for b in self.batches:
            logits = self.model(b["tokens"], b["mask"], arch)
            correct += (logits.argmax(-1) == b["labels"]).sum().item()
        self.model.train(was_training)
        return correct / self.num_examples
