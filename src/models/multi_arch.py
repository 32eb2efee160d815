"""One supernet training step's gradients: several architectures back-propagated on one batch.

The authors' step samples k architectures, back-propagates each one's cross-entropy on the same
mini-batch and sums the gradients. :func:`backward_archs` does exactly that, with two savings:

* the deterministic part of the stem (embedding, norm, projection, ReLU) runs once per batch;
* on CPU, ``workers > 1`` runs the architectures' forward and backward passes in that many
  threads, each with ``threads // workers`` intra-op threads. A step is thousands of small
  kernels (the GRU recurrence above all) that do not use two cores each, so two architectures
  at a time use the cores better (profiled: docs/performance.md).

Results do not depend on ``workers``: each architecture draws its dropout masks from its own
generator, seeded from torch's global RNG in architecture order, and the per-architecture
gradients are added into ``.grad`` in architecture order, as the sequential path's ``backward``
calls add them. ``tests/test_models.py`` checks that the gradients are the same, bit for bit, for
any number of workers at one intra-op thread (kernels round differently with other thread
counts), and the same as one plain ``model(tokens, mask, arch)`` forward and backward per arch.
"""

from __future__ import annotations

from contextlib import closing, nullcontext
from typing import Callable

import torch
import torch.nn.functional as F

from src.models.ops import dropout_generator
from src.models.text import TextClassifier
from src.space import Architecture
from src.utils.parallel import thread_map


def arch_generators(n: int, device: torch.device | str) -> list[torch.Generator]:
    """One dropout generator per architecture, seeded from torch's global RNG (so
    ``torch.manual_seed`` fixes them all), in architecture order."""
    seeds = torch.randint(0, 2**62, (n,)).tolist()
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


def backward_archs(model: TextClassifier, tokens: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                   archs: list[Architecture], backward: Callable[[torch.Tensor], None] | None = None,
                   workers: int = 1) -> torch.Tensor:
    """Back-propagate each architecture's cross-entropy on one batch (gradients summed into
    ``.grad``); returns the sum of the losses (a 0-d tensor).

    ``tokens`` (B, T) long, ``mask`` (B, T) bool, True at real tokens, ``labels`` (B,) long.
    Architecture ``i`` draws its dropout masks from ``arch_generators(len(archs), device)[i]``. ``backward`` (default
    ``loss.backward()``, e.g. Lightning's ``manual_backward``) is used with ``workers == 1``; with
    more workers each thread calls ``torch.autograd.grad`` and the gradients are added in order.
    Every architecture reads a detached copy of the stem output; the summed gradient of that copy is
    back-propagated through the stem once at the end.
    """
    generators = arch_generators(len(archs), tokens.device)
    shares_stem = model.shares_stem(tokens)
    base = leaf = None
    if shares_stem:
        base = model.stem_base(tokens, mask)
        leaf = base.detach().requires_grad_(base.requires_grad)

    def loss_of(i: int) -> torch.Tensor:
        with dropout_generator(generators[i]):
            logits = (model.forward_from_stem(leaf, mask, archs[i]) if shares_stem
                      else model(tokens, mask, archs[i]))
        return F.cross_entropy(logits, labels)

    if workers <= 1 or len(archs) <= 1:
        backward = backward or (lambda loss: loss.backward())
        total = torch.zeros((), device=tokens.device)
        for i in range(len(archs)):
            loss = loss_of(i)
            backward(loss)
            total += loss.detach()
        leaf_grad = leaf.grad if leaf is not None else None
    else:
        total, leaf_grad = _parallel_backward(model, archs, loss_of, leaf, workers, tokens.device.type)
    if leaf_grad is not None:
        # leaf_grad already carries any loss scaling the backward applied
        torch.autograd.backward(base, leaf_grad)
    return total


def _parallel_backward(model: TextClassifier, archs: list[Architecture], loss_of: Callable[[int], torch.Tensor],
                       leaf: torch.Tensor | None, workers: int,
                       device_type: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The architectures' gradients computed by ``workers`` threads and added into ``.grad`` in
    architecture order; returns (loss sum, summed gradient of ``leaf`` or None)."""
    # grad mode and autocast are thread-local: the workers set what the caller has
    autocast_dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None

    def work(i: int) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor | None]]]:
        autocast = torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
        with torch.enable_grad(), autocast:
            loss = loss_of(i)
        inputs = list(model.used_parameters(archs[i]).values())
        if leaf is not None and leaf.requires_grad:
            inputs.append(leaf)
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
        return loss.detach(), list(zip(inputs, grads))

    total, leaf_grad = None, None
    # closing(): an error here still restores the thread count and cancels the pending work at once
    with torch.no_grad(), closing(thread_map(work, range(len(archs)), workers)) as results:
        for loss, pairs in results:  # in architecture order: the sequential path's sums
            total = loss.clone() if total is None else total + loss
            for p, g in pairs:
                if g is None:
                    continue
                if p is leaf:
                    leaf_grad = g if leaf_grad is None else leaf_grad + g
                elif p.grad is None:
                    p.grad = g
                else:
                    p.grad += g
    return total, leaf_grad
