"""The GRU op through the fused CPU recurrence kernel (``gru_kernel.cpp``, built and switched
by :mod:`src.models.cpu_kernels`).

torch's CPU GRU runs every time step as about ten small kernels, each recorded for autograd; on
the text supernet's batches (D=64, about 50 steps, a few thousand real tokens) that dispatch is
most of the op's cost, and the GRU was about 40 % of a supernet step in the profiler. The kernel
runs a step as one matrix product plus one loop over the gates, with the backward pass written
out; the input projections (:func:`src.models.linear.linear`) and the packing stay outside the kernel,
so autograd covers them, and the recurrent weights' gradient is one product over all steps
(:func:`src.models.linear.weight_grad`).

``tests/test_cpu_kernels.py`` checks it against ``nn.GRU``: outputs and every gradient (float64 to
1e-12, float32 to float tolerance), with padding of any amount.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from src.models import cpu_kernels
from src.models.linear import linear, weight_grad
from src.models.mask_cache import per_mask


class _Recurrence(torch.autograd.Function):
    """The kernel's recurrence over a packed batch: gi (N, 3D), b_ih (3D) -> h (N, D)."""

    @staticmethod
    def forward(ctx, gi, b_ih, w_hh, b_hh, batch_sizes):
        h, saved = torch.ops.autoattend.gru_forward(gi, b_ih, w_hh, b_hh, batch_sizes, True)
        ctx.save_for_backward(h, saved, w_hh, batch_sizes)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        h, saved, w_hh, batch_sizes = ctx.saved_tensors
        dgi, dgh, h_prev = torch.ops.autoattend.gru_backward(grad_h, h, saved, w_hh, batch_sizes)
        return dgi, dgi.sum(0), weight_grad(dgh, h_prev), dgh.sum(0), None


def recurrence(gi: torch.Tensor, b_ih: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor,
               batch_sizes: torch.Tensor) -> torch.Tensor:
    """One GRU direction's recurrence over a packed batch (layout in ``gru_kernel.cpp``).

    gi: (N, 3D) input projections ``W_ih x`` of the N tokens, step-major, without their bias
    ``b_ih`` (3D), which the kernel adds; w_hh: (3D, D), b_hh: (3D), of gi's dtype (float32 or
    float64, CPU); batch_sizes: (steps,) int64 on the CPU. Returns h: (N, D).
    Nothing is saved for backward when no input needs a gradient.
    """
    cpu_kernels.require_loaded()
    gi = gi.contiguous()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (gi, b_ih, w_hh, b_hh)):
        return _Recurrence.apply(gi, b_ih, w_hh, b_hh, batch_sizes)
    return torch.ops.autoattend.gru_forward(gi, b_ih, w_hh, b_hh, batch_sizes, False)[0]


class PackPlan:
    """Where each direction reads its tokens in a right-padded batch, packed step-major.

    mask: (B, T) bool, True at real tokens (each row's real tokens first). ``batch_sizes`` (steps,)
    int64 on the CPU: sequences still running at each step. ``forward_index`` and
    ``backward_index`` (N,) long index the flattened (B * T) positions: step s of the forward direction
    reads position s of each sequence longer than s (longest first); the backward direction reads
    position ``length - 1 - s``, so it starts at each sequence's last real token, never at padding.
    """

    def __init__(self, mask: torch.Tensor):
        b, t = mask.shape
        lengths = mask.sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order]
        steps = torch.arange(int(sorted_lengths[0]) if b else 0, device=mask.device).unsqueeze(1)
        active = sorted_lengths.unsqueeze(0) > steps  # (steps, B)
        base = (order * t).unsqueeze(0)
        self.batch_sizes = active.sum(1).cpu()
        self.forward_index = (base + steps)[active]
        self.backward_index = (base + sorted_lengths.unsqueeze(0) - 1 - steps)[active]
        self._backward_in_forward: torch.Tensor | None = None

    @property
    def backward_in_forward(self) -> torch.Tensor:
        """(N,): for each row of the backward direction's packing, the row of the same token in the
        forward direction's packing (computed on first use)."""
        if self._backward_in_forward is None:
            where = torch.empty(int(self.forward_index.max()) + 1 if len(self.forward_index) else 0,
                                dtype=torch.long, device=self.forward_index.device)
            where[self.forward_index] = torch.arange(len(self.forward_index), device=self.forward_index.device)
            self._backward_in_forward = where[self.backward_index]
        return self._backward_in_forward


def pack_plan(mask: torch.Tensor) -> PackPlan:
    """:class:`PackPlan` of ``mask``, built once per mask (:func:`src.models.mask_cache.per_mask`):
    a forward pass runs every GRU op of an architecture over one mask (about 15 per candidate on
    the paper's supernet), and building the plan (a sort, index arithmetic and a boolean gather)
    was about 4 % of candidate scoring."""
    return per_mask("pack_plan", mask, PackPlan)


def bidirectional_gru(gru: nn.GRU, x: torch.Tensor, mask: torch.Tensor, plan: PackPlan | None = None) -> torch.Tensor:
    """``gru`` (one layer, bidirectional, batch_first) over ``x`` (B, T, D) float, the directions summed.

    mask: (B, T) bool, True at real tokens, each row's real tokens first. Returns (B, T, H) with
    H = ``gru.hidden_size`` (D in the GRU op), zero at padded positions. Computes what ``nn.GRU`` over the packed sequences computes, through the
    fused kernel.
    """
    b, t, _ = x.shape
    plan = plan or pack_plan(mask)
    flat = x.reshape(b * t, x.shape[-1])
    out = x.new_zeros(b * t, gru.hidden_size)
    if not (torch.is_grad_enabled() and any(p.requires_grad for p in (x, *gru.parameters()))):
        # inference: one gather of the real tokens, one product for both directions' input
        # projections, and the kernel writes (forward) then adds (backward) each state into out
        # itself: no second gather and no scatters
        cpu_kernels.require_loaded()
        gi = linear(flat.index_select(0, plan.forward_index), torch.cat([gru.weight_ih_l0, gru.weight_ih_l0_reverse]))
        width = gi.shape[1] // 2
        for rows, index, suffix, accumulate in ((None, plan.forward_index, "", False),  # row r reads row r
                                                (plan.backward_in_forward, plan.backward_index, "_reverse", True)):
            torch.ops.autoattend.gru_forward_scatter(
                gi[:, width:] if accumulate else gi[:, :width], rows, getattr(gru, "bias_ih_l0" + suffix),
                getattr(gru, "weight_hh_l0" + suffix), getattr(gru, "bias_hh_l0" + suffix), plan.batch_sizes,
                out, index, accumulate)
        return out.view(b, t, gru.hidden_size)
    for index, suffix in ((plan.forward_index, ""), (plan.backward_index, "_reverse")):
        gi = linear(flat.index_select(0, index), getattr(gru, "weight_ih_l0" + suffix))  # bias: in the kernel
        h = recurrence(gi, getattr(gru, "bias_ih_l0" + suffix), getattr(gru, "weight_hh_l0" + suffix),
                       getattr(gru, "bias_hh_l0" + suffix), plan.batch_sizes)
        out.index_add_(0, index, h)  # in place: out is a fresh buffer, so autograd allows it
    return out.view(b, t, gru.hidden_size)
