"""Dense products ``x @ W^T + b`` through oneDNN on the CPU.

torch sends a float32 ``F.linear`` / ``mm`` on the CPU to MKL's sgemm, and MKL runs its AVX2 code
on AMD processors: about 95 GFLOP/s on one core of this project's machine (AMD EPYC, AVX-512).
oneDNN, which torch also ships (its convolutions already run there), picks its kernels by
instruction set and reaches about 210 GFLOP/s on the same products (the GRU op's input projection,
2,450 x 64 by 64 x 192: 661 -> 285 us, ``experiments/bench/linear_onednn_2026-12-02.txt``, made by
``experiments/bench/linear_onednn.py``).

:func:`linear` calls oneDNN through ``torch.ops.mkldnn._linear_pointwise`` (the op torch's own
compiler uses for CPU linear layers) with a plain weight, forward and backward:

* ``y = x W^T + b``;
* ``dx = dy W`` (the same op with ``W^T`` as its weight);
* ``dW = dy^T x`` (the same op on transposed views), ``db`` = the column sums of ``dy``.

It is used for float32 CPU tensors when the kernel backend is not ``torch``
(:mod:`src.models.cpu_kernels`) and torch has oneDNN; otherwise it is ``F.linear``. Callers: the
stem's projection, the kernel-1 convolution, the GRU op's input projections, and (through
:func:`weight_grad`) the gradient of the GRU's recurrent weights. ``tests/test_cpu_kernels.py``
checks values and gradients against ``F.linear``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from src.models import cpu_kernels

# oneDNN builds (JIT-compiles) a primitive for every new product shape, and torch keeps up to
# 1,024 in each of two caches, about 1 MB a shape: with the many row counts of a training run
# (every batch has its own) RSS grew by 950 MiB over 1,000 shapes, against 0 with MKL
# (``experiments/bench/onednn_cache_rss_2026-12-02.txt``). 64 holds a scoring pass's working set
# (36 shapes: products and convolutions of nine length buckets) and a training step's; a new
# shape costs about 0.7 ms. Read at the first primitive, so set here, before any model runs; a
# value the user exported wins.
ONEDNN_CACHE_CAPACITY = "64"
for _name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
    os.environ.setdefault(_name, ONEDNN_CACHE_CAPACITY)

_available: bool | None = None


def onednn_available() -> bool:
    """Whether this torch build has the oneDNN linear op (checked once)."""
    global _available
    if _available is None:
        try:
            _available = bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        except (AttributeError, RuntimeError):
            _available = False
    return _available


def use_onednn(x: torch.Tensor) -> bool:
    """Whether :func:`linear` runs ``x`` through oneDNN: CPU float32 outside autocast (under it
    ``F.linear`` takes autocast's precision), backend not ``torch``, and oneDNN neither missing nor
    switched off (``torch.backends.mkldnn.enabled = False``)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and cpu_kernels.get_backend() != "torch"
            and not torch.is_autocast_enabled("cpu") and onednn_available() and torch.backends.mkldnn.enabled)


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x`` (M, K) @ ``weight`` (N, K)^T [+ ``bias`` (N)] -> (M, N) in oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x2, weight, bias):
        ctx.save_for_backward(x2, weight)
        ctx.has_bias = bias is not None
        return _product(x2, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, weight = ctx.saved_tensors
        grad = grad.contiguous()
        dx = _product(grad, weight.t().contiguous(), None) if ctx.needs_input_grad[0] else None
        dw = weight_grad(grad, x2) if ctx.needs_input_grad[1] else None
        db = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


def weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The weight gradient of a linear map: ``grad`` (M, N)^T @ ``x`` (M, K) -> (N, K).

    In oneDNN where :func:`use_onednn` says so (both float32), else ``mm``. oneDNN's input must be
    row-major, so one of the two transposed operands is copied: the narrower one (as ``(x^T grad)^T``
    when ``x`` is: the GRU's (M, 64) inputs against (M, 192) gate gradients).
    """
    if use_onednn(x) and grad.dtype == torch.float32 and x.shape[0] > 0:
        if x.shape[1] < grad.shape[1]:
            return _product(x.t().contiguous(), grad.t(), None).t().contiguous()
        return _product(grad.t().contiguous(), x.t(), None)
    return grad.t().mm(x)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``: ``x`` (..., K), ``weight`` (N, K), ``bias`` (N) -> (..., N).

    Through oneDNN where :func:`use_onednn` says so (the same values within float32 rounding, and
    the same gradients), else ``F.linear``.
    """
    if not (use_onednn(x) and weight.dtype == torch.float32 and x.shape[-1] == weight.shape[1]):
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    if x2.shape[0] == 0:
        return F.linear(x, weight, bias)
    weight = weight.contiguous()
    needs_grad = x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    if torch.is_grad_enabled() and needs_grad:
        out = _OneDnnLinear.apply(x2, weight, bias)
    else:
        out = _product(x2, weight, bias)
    return out.view(*lead, weight.shape[0])
