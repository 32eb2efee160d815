"""Bytes autograd keeps per token position, layer and channel while the paper supernet trains.

Used to choose ``src.pipeline.stages.ACTIVATION_BYTES_FLOOR``: six architectures sampled from the
paper's text space (24 layers, D=64, 8 heads, full-context sharing), one training-mode forward each
on a batch of 32 x 64 tokens, every tensor saved for backward counted once by its storage.

    python experiments/bench/activation_bytes.py
"""

from __future__ import annotations

import random

import torch

from src.models.text import TextClassifier
from src.space import FunctionalSpace

BATCH, LENGTH, LAYERS, DIM = 32, 64, 24, 64


def saved_bytes(model: TextClassifier, tokens: torch.Tensor, mask: torch.Tensor, arch) -> int:
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(tokens, mask, arch)
    return sum(storages.values())


def main() -> None:
    torch.manual_seed(0)
    space = FunctionalSpace(num_layers=LAYERS, ops=("zero", "identity", "conv1", "conv3", "maxpool3", "gru"),
                            priors=True, kinds=("add", "attn"))
    model = TextClassifier.supernet(torch.randn(1000, 300), 5, space, dim=DIM, heads=8, dropout=0.1,
                                    attn_dropout=0.1, sharing="full").train()
    tokens = torch.randint(1, 1000, (BATCH, LENGTH))
    mask = torch.ones(BATCH, LENGTH, dtype=torch.bool)
    rng = random.Random(0)
    for i in range(6):
        arch = space.sample(rng)
        total = saved_bytes(model, tokens, mask, arch)
        print(f"architecture {i}: {total / 1e6:.1f} MB saved, "
              f"{total / (BATCH * LENGTH * LAYERS * DIM):.1f} bytes per position, layer and channel")


if __name__ == "__main__":
    main()
