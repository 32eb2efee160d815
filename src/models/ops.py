"""The searched sequence ops and the attention kernel.

One tensor layout everywhere: ``x`` is ``(B, T, D)`` (batch, tokens, channels) and ``mask`` is a
``(B, T)`` bool tensor, True at real tokens. Every op returns ``(B, T, D)`` with padded positions
exactly zero, and never lets a padded position influence a real one: that is what makes the
logits independent of the padded tokens and of how much padding a batch carries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def zero_padded(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` (B, T, D) with positions where ``mask`` (B, T) is False set to 0."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, num_heads: int,
                     dropout_p: float = 0.0) -> torch.Tensor:
    """Multi-head scaled dot-product attention with a key-padding mask and no projections.

    Heads are channel slices: ``q, k, v`` (B, T, D) are viewed as (B, H, T, D/H). ``mask`` (B, T)
    hides padded keys; ``dropout_p`` is applied to the attention weights (pass 0.0 in eval).
    Returns (B, T, D); rows of padded queries are arbitrary and must be masked by the caller.
    """
    b, t, d = q.shape
    if d % num_heads:
        raise ValueError(f"model dim {d} is not divisible by {num_heads} heads")

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(b, t, num_heads, d // num_heads).transpose(1, 2)

    attn_mask = mask[:, None, None, :]  # (B, 1, 1, T): True = may attend
    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=attn_mask, dropout_p=dropout_p)
    return out.transpose(1, 2).reshape(b, t, d)


class ConvOp(nn.Module):
    """Pre-norm 1-d convolution: LayerNorm -> zero pads -> conv -> zero pads -> ReLU -> dropout."""

    def __init__(self, dim: int, kernel_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # LayerNorm maps a zero vector to its bias, so padded positions are re-zeroed before the
        # kernel reads them as neighbours.
        h = zero_padded(self.norm(x), mask)
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)
        return self.dropout(F.relu(zero_padded(h, mask)))


class MaxPoolOp(nn.Module):
    """Pre-norm max-pool (kernel 3, stride 1); padded neighbours count as -inf, like the sequence ends.

    As in the authors' code it has a LayerNorm but no activation and no dropout.
    """

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).masked_fill(~mask.unsqueeze(-1), float("-inf"))
        h = F.max_pool1d(h.transpose(1, 2), self.kernel_size, stride=1, padding=self.kernel_size // 2)
        return zero_padded(h.transpose(1, 2), mask)


class GRUOp(nn.Module):
    """Pre-norm bidirectional GRU (hidden = D), the two directions summed, then dropout.

    Sequences are packed by length, so the backward direction starts at each sequence's last real
    token rather than at the padding.
    """

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.gru = nn.GRU(dim, dim, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.dim = dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        lengths = mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.norm(x), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
        return self.dropout(out.view(b, t, 2, d).sum(2))


def build_op(name: str, dim: int, dropout: float) -> nn.Module | None:
    """The module for a parametric op; ``None`` for ``zero`` and ``identity`` (no weights)."""
    if name in ("zero", "identity"):
        return None
    if name == "conv1":
        return ConvOp(dim, 1, dropout)
    if name == "conv3":
        return ConvOp(dim, 3, dropout)
    if name == "maxpool3":
        return MaxPoolOp(dim, 3)
    if name == "gru":
        return GRUOp(dim, dropout)
    raise ValueError(f"unknown text op {name!r}")


def apply_op(name: str, module: nn.Module | None, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    """Apply op ``name`` to ``x`` (B, T, D); ``zero`` returns ``None`` so callers can skip it."""
    if name == "zero":
        return None
    if name == "identity":
        return x
    return module(x, mask)
