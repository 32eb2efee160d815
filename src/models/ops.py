"""The searched sequence ops and the attention kernel.

One tensor layout everywhere: ``x`` is ``(B, T, D)`` (batch, tokens, channels) and ``mask`` is a
``(B, T)`` bool tensor, True at real tokens. Every op returns ``(B, T, D)`` with padded positions
exactly zero, and never lets a padded position influence a real one: that is what makes the
logits independent of the padded tokens and of how much padding a batch carries.
"""

from __future__ import annotations

import math
import threading
import warnings
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from src.models import cpu_kernels, fused_gru
from src.models.linear import linear
from src.models.mask_cache import per_mask

_dropout_rng = threading.local()

# cuDNN warns at each GRU call site that the weights it gets are not one contiguous chunk: the
# unpacked GRU path passes one direction's half of nn.GRU's flat buffer by design, and the copy
# cuDNN makes of those four small tensors is part of the time measured for that path.
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk",
                        category=UserWarning, module=__name__)


@contextmanager
def dropout_generator(generator: torch.Generator | None) -> Iterator[None]:
    """Within the block, dropout masks drawn *in this thread* come from ``generator`` (``None``:
    torch's global RNG, the default). Lets parallel workers draw reproducible masks of their own:
    see :func:`src.models.multi_arch.backward_archs`."""
    previous = getattr(_dropout_rng, "generator", None)
    _dropout_rng.generator = generator
    try:
        yield
    finally:
        _dropout_rng.generator = previous


def replay_dropout_contexts() -> tuple[AbstractContextManager, AbstractContextManager]:
    """``context_fn`` for ``torch.utils.checkpoint``: (forward context, recomputation context) such
    that the recomputation draws the dropout masks the forward drew.

    Called as the checkpointed forward starts; the recomputation (in backward, after the caller's
    :func:`dropout_generator` block has ended) draws from a copy of the thread's generator in its
    state at that moment. Without a generator of its own the thread draws from torch's global
    RNG, which checkpoint's ``preserve_rng_state`` already replays."""
    generator = getattr(_dropout_rng, "generator", None)
    if generator is None:
        return nullcontext(), nullcontext()
    replay = torch.Generator(device=generator.device)
    replay.set_state(generator.get_state())
    return nullcontext(), dropout_generator(replay)


def keep_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """A bool dropout mask of ``shape``: each element True with probability ``1 - p``, drawn from
    the thread's :func:`dropout_generator` (else the global RNG).

    With the fused CPU kernels (:mod:`src.models.cpu_kernels`, for ``like``'s device and dtype) the
    generator gives one 62-bit seed and ``dropout_kernel.cpp`` expands it: the distribution of
    ``torch.rand(shape) >= p`` (24-bit uniforms, ``p`` as float32), about 20x cheaper than
    torch's CPU generator. Other CPU tensors (``hardware.kernels=torch``, kernels that cannot be
    built, autocast) get the same mask from the same seed through :func:`stream_keep`, so the
    backend does not change a training's draws; other devices ``torch.rand(shape) >= p`` from the
    generator. Either way the mask depends only on the generator's state and ``shape``. Uniforms
    for half-precision ``like`` are drawn in float32: bfloat16's 8-bit ones would move the keep
    rate (0.3009 for ``p`` = 0.7).
    """
    if cpu_kernels.use_kernel(like):
        return torch.ops.autoattend.uniform_keep(math.prod(shape), p, _kernel_seed()).view(shape)
    if like.device.type == "cpu":  # the kernel's stream in torch ops: the backend does not move the numbers
        return stream_keep(math.prod(shape), p, _kernel_seed()).view(shape)
    generator = getattr(_dropout_rng, "generator", None)
    dtype = like.dtype if like.dtype == torch.float64 else torch.float32
    return torch.rand(shape, dtype=dtype, device=like.device, generator=generator) >= p


def _signed(value: int) -> int:
    """A 64-bit unsigned constant as the int64 with the same bits (torch has no uint64 arithmetic)."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GAMMA, _MIX1, _MIX2 = (_signed(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))
# numbers per pass: int64 temporaries of 512 KB stay in cache (about torch.rand's cost then; 1 << 20
# took twice as long on 2 threads)
STREAM_CHUNK = 1 << 16


def _shifted(z: torch.Tensor, bits: int) -> torch.Tensor:
    """``z >> bits`` as on uint64 (torch shifts int64 arithmetically: the sign bits are cleared)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def stream_keep(count: int, p: float, seed: int) -> torch.Tensor:
    """``dropout_kernel.cpp``'s ``uniform_keep`` in torch ops, bit for bit: number i of the
    SplitMix64 stream started at ``seed``, kept when its top 24 bits, as a uniform on [0, 1), are
    >= ``p`` rounded to float32 (tested against the kernel). int64 products wrap as uint64's do.
    Returns (count,) bool on the CPU."""
    threshold = math.ceil(min(max(float(torch.tensor(p, dtype=torch.float32)), 0.0), 1.0) * 16777216.0)
    keep = torch.empty(count, dtype=torch.bool)
    for start in range(0, count, STREAM_CHUNK):
        z = torch.arange(start + 1, min(start + STREAM_CHUNK, count) + 1, dtype=torch.int64) * _GAMMA + seed
        z = (z ^ _shifted(z, 30)) * _MIX1
        z = (z ^ _shifted(z, 27)) * _MIX2
        z = z ^ _shifted(z, 31)
        keep[start:start + z.numel()] = _shifted(z, 40) >= threshold
    return keep


def _kernel_seed() -> int:
    """One 62-bit seed for a counter-based mask, from the thread's :func:`dropout_generator`."""
    return int(torch.randint(0, 2**62, (1,), generator=getattr(_dropout_rng, "generator", None)))


class _KernelDropout(torch.autograd.Function):
    """:func:`fast_dropout` in one kernel pass (``dropout_kernel.cpp``). Nothing is saved but the
    seed: dropout is linear, so the backward pass is the same kernel on the gradient."""

    @staticmethod
    def forward(ctx, x, rows, row_size, p, seed):
        ctx.save_for_backward(rows)
        ctx.row_size, ctx.p, ctx.seed = row_size, p, seed
        return torch.ops.autoattend.dropout_rows(x, rows, row_size, p, seed)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (rows,) = ctx.saved_tensors
        return torch.ops.autoattend.dropout_rows(grad, rows, ctx.row_size, ctx.p, ctx.seed), None, None, None, None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True, rows: torch.Tensor | None = None,
                 row_size: int | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Inverted dropout: each element kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``.

    The distribution of ``F.dropout``, with the keep mask drawn by :func:`keep_mask` (the
    distribution of ``torch.rand(...) >= p``) instead of ``bernoulli_``, which on CPU costs about
    twice as much as ``torch.rand`` and was 39 % of a retrain step (profiled, docs/performance.md).
    With the CPU kernels the mask is applied in one pass and never stored (the backward pass
    regenerates it from its seed); otherwise autograd keeps only the bool mask, as ``F.dropout``
    does. ``tests/test_models.py`` checks the keep rate, the scaling and the gradient;
    ``tests/test_cpu_kernels.py`` that both paths give the same bits for the same mask.

    ``x`` any shape, float; returns ``x``'s shape and dtype. ``rows``: (R,) long, strictly increasing
    (the kernel refuses others) indices into ``x`` viewed as rows of ``row_size`` elements (default:
    the last dimension); only those rows draw random numbers, every other row comes out 0. For
    callers whose other rows are padding, already zero or never read (see :func:`real_rows`), this
    is the same result at a fraction of the draws, which are the expensive part on CPU.

    Draws come from the thread's :func:`dropout_generator`, else the global RNG. ``keep``: the
    bool mask of ``rows`` (len(rows), row_size), drawn by the caller (:func:`grouped_attention`);
    read only together with ``rows`` (without them a mask is drawn here).
    """
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    size = x.shape[-1] if row_size is None else row_size
    if keep is None and cpu_kernels.use_kernel(x):
        # the same mask as below (keep_mask's stream laid over the rows), without materialising it
        return _KernelDropout.apply(x, rows, size, p, _kernel_seed())
    if rows is None:
        full = keep_mask(tuple(x.shape), p, x)
    else:
        full = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
        full.view(-1, size)[rows] = keep.view(-1, size) if keep is not None else keep_mask((rows.numel(), size), p, x)
    return torch.where(full, x * (1.0 / (1.0 - p)), x.new_zeros(()))


def real_rows(mask: torch.Tensor) -> torch.Tensor | None:
    """Indices (N,) long of the real tokens of ``mask`` (B, T) in (B * T) order, for :func:`fast_dropout`'s
    ``rows`` on (B, T, D) tensors; ``None`` off the CPU, where drawing for every position is cheap
    and an index computation would wait for the device. Computed once per mask (every op's dropout
    asks for it; :func:`src.models.mask_cache.per_mask`)."""
    if mask.device.type != "cpu":
        return None
    return per_mask("real_rows", mask, lambda m: m.reshape(-1).nonzero().squeeze(1))


def real_pairs(mask: torch.Tensor, heads: int) -> torch.Tensor | None:
    """Indices (P,) long of the (query, key) pairs between real tokens in attention weights
    (B, H, T, T), flattened, for :func:`fast_dropout` with ``row_size=1``; ``None`` off the CPU."""
    if mask.device.type != "cpu":
        return None
    b, t = mask.shape
    pairs = (mask[:, None, :, None] & mask[:, None, None, :]).expand(b, heads, t, t)
    return pairs.reshape(-1).nonzero().squeeze(1)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, same distribution) drawing its mask with :func:`fast_dropout`.

    ``rows`` as there; or ``mask`` (B, T) bool for a (B, T, D) ``x``, whose :func:`real_rows` are
    then computed only when the dropout is active (not in evaluation or scoring). Returns ``x``'s
    shape; rows left out of ``rows`` come out 0 (on CPU: the padded positions of ``mask``).
    """

    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if rows is None and mask is not None:
            rows = real_rows(mask)
        return fast_dropout(x, self.p, True, rows)


def zero_padded(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` (B, T, D) with positions where ``mask`` (B, T) is False set to 0."""
    return fill_padded(x, mask, 0.0)


def fill_padded(x: torch.Tensor, mask: torch.Tensor, value: float) -> torch.Tensor:
    """``x`` (B, T, D) with positions where ``mask`` (B, T) is False set to ``value``.

    With the CPU kernels one copy pass (``padding_kernel.cpp``; ATen's ``masked_fill`` with a
    broadcast mask is not vectorised and cost about 7x as much), else ``masked_fill``. The gradient
    is the output gradient with the padded positions zeroed, either way.
    """
    if cpu_kernels.use_kernel(x):
        if torch.is_grad_enabled() and x.requires_grad:
            return _FillPadded.apply(x, mask, value)
        return torch.ops.autoattend.fill_padded(x, mask, value)  # no autograd node to build
    return x.masked_fill(~mask.unsqueeze(-1), value)


class _FillPadded(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.save_for_backward(mask)
        return torch.ops.autoattend.fill_padded(x, mask, value)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return torch.ops.autoattend.fill_padded(grad, mask, 0.0), None, None


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """Additive key-padding bias (B, 1, 1, T): 0 at real keys, -inf at padded ones.

    Built once per forward and shared by every attention layer, instead of each layer turning
    the bool mask into a bias (and checking it for fully masked rows) again.
    """
    bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(~mask, float("-inf"))
    return bias[:, None, None, :]


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, num_heads: int,
                     dropout_p: float = 0.0, bias: torch.Tensor | None = None,
                     dropout_pairs: torch.Tensor | None = None, dropout_keep: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head scaled dot-product attention with a key-padding mask and no projections.

    Heads are channel slices: ``q, k, v`` (B, T, D) float are viewed as (B, H, T, D/H). ``mask``
    (B, T) bool, True at real tokens, hides padded keys; ``dropout_p`` is applied to the attention
    weights (pass 0.0 in eval). ``bias``: :func:`attention_bias` of ``mask``, if the caller already
    has it. ``dropout_pairs``: :func:`real_pairs` of ``mask``, if the caller has it: dropout then
    draws only for weights between real tokens (the others are 0 or in rows of padded queries,
    which the caller masks); ``dropout_keep``: their mask, if the caller drew it.
    Returns (B, T, D); rows of padded queries are arbitrary and must be masked by the caller.

    Without autograd and dropout (scoring) this is the fused CPU kernel of
    ``attention_kernel.cpp`` (see :mod:`src.models.cpu_kernels`; padded query rows come out 0), or
    where that does not run, PyTorch's SDPA kernel, except on CPU, where scores + bias in one
    ``baddbmm`` -> softmax -> ``bmm`` is faster. While training
    it is the same math written out (scores + bias -> softmax -> dropout -> @ V): with 8-channel
    heads on CPU, SDPA falls back to that math anyway, plus per-call mask conversion and checks.
    The dropout on the weights is :func:`fast_dropout` (SDPA's distribution, cheaper draws).
    """
    b, t, d = q.shape
    if d % num_heads:
        raise ValueError(f"model dim {d} is not divisible by {num_heads} heads")

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(b, t, num_heads, d // num_heads).transpose(1, 2)

    if dropout_p == 0.0 and not torch.is_grad_enabled() and cpu_kernels.use_kernel(q):
        # scoring on CPU: the fused kernel (one pass per sequence and head, real tokens only)
        return torch.ops.autoattend.attention(q, k, v, mask, num_heads)
    if dropout_p == 0.0 and not torch.is_grad_enabled() and q.device.type == "cpu":
        # without the kernel: one baddbmm puts scale and padding bias into the scores; 25 % faster
        # than SDPA's CPU kernel with 8-channel heads (SST-5 bucket of 128, 1 thread: 4.1 vs 5.6 ms)
        if bias is None:
            bias = attention_bias(mask)
        bh, dh = b * num_heads, d // num_heads
        qh, kh, vh = (heads(x).reshape(bh, t, dh) for x in (q, k, v))
        bias_rows = bias.expand(b, num_heads, 1, t).reshape(bh, 1, t).expand(bh, t, t)
        weights = torch.baddbmm(bias_rows, qh, kh.transpose(1, 2), alpha=1.0 / math.sqrt(dh)).softmax(-1)
        out = torch.bmm(weights, vh).view(b, num_heads, t, dh)
    elif dropout_p == 0.0 and not torch.is_grad_enabled():
        attn_mask = mask[:, None, None, :]  # (B, 1, 1, T): True = may attend
        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=attn_mask)
    else:
        if bias is None:
            bias = attention_bias(mask)
        scores = torch.matmul(heads(q), heads(k).transpose(-1, -2) * (1.0 / math.sqrt(d // num_heads))) + bias
        weights = scores.softmax(-1)
        if dropout_p > 0.0:
            weights = fast_dropout(weights, dropout_p, rows=dropout_pairs, row_size=1, keep=dropout_keep)
        out = torch.matmul(weights, heads(v))
    return out.transpose(1, 2).reshape(b, t, d)


def attention_pair_count(mask: torch.Tensor, num_heads: int) -> int:
    """Number of (head, real query, real key) triples of ``mask`` (B, T): the dropout draws of
    :func:`fused_attention`."""
    lengths = mask.sum(1)
    return int(num_heads * (lengths * lengths).sum())


class _FusedAttention(torch.autograd.Function):
    """``attention_kernel.cpp``'s training forward and backward (weights recomputed in backward)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, heads, keep, scale):
        out, lse = torch.ops.autoattend.attention_train_forward(q, k, v, mask, heads, keep, scale)
        ctx.save_for_backward(q, k, v, mask, keep, out, lse)
        ctx.heads, ctx.scale = heads, scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        q, k, v, mask, keep, out, lse = ctx.saved_tensors
        dq, dk, dv = torch.ops.autoattend.attention_train_backward(grad, q, k, v, mask, ctx.heads, keep, ctx.scale,
                                                                   out, lse)
        return dq, dk, dv, None, None, None, None


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, num_heads: int,
                    dropout_p: float = 0.0, pair_count: int | None = None) -> torch.Tensor:
    """:func:`masked_attention` with autograd and dropout through the fused CPU kernel.

    ``q, k, v`` (B, T, D) float CPU tensors, ``mask`` (B, T) True at real tokens. Dropout keeps each
    weight between real tokens with probability ``1 - dropout_p`` (scaled by ``1 / (1 - p)``), one
    :func:`keep_mask` draw per weight in (sequence, head, query, key) order: :func:`fast_dropout`'s
    distribution over the same weights. ``pair_count``: :func:`attention_pair_count` of ``mask``, if the caller has it. Returns
    (B, T, D), zero at padded query rows. The backward pass recomputes the weights instead of
    keeping them: besides ``q, k, v``, ``mask`` and the output it saves only the bool dropout mask
    and one float per (sequence, head, query) (the log-sum-exp, (B, H, T)), never the (B, H, T, T)
    weights.
    """
    if dropout_p > 0.0:
        count = attention_pair_count(mask, num_heads) if pair_count is None else pair_count
        keep = keep_mask((count,), dropout_p, q)
        scale = 1.0 / (1.0 - dropout_p)
    else:
        keep, scale = torch.empty(0, dtype=torch.bool, device=q.device), 1.0
    return _FusedAttention.apply(q, k, v, mask, num_heads, keep, scale)


# Length groups of a CPU training attention (:class:`AttentionPlan`): on an SST-5 batch of 128
# (D=64, 8 heads), forward + backward 35 -> 17 ms with 4 groups (2 groups: 18-20 ms).
ATTENTION_LENGTH_GROUPS = 4


class AttentionPlan:
    """How a training forward runs its attention layers on CPU without the fused kernel
    (:func:`fused_attention`; ``hardware.kernels=torch``, or where it cannot be built): the batch
    split into ``ATTENTION_LENGTH_GROUPS`` groups of similar length, each cut to its own longest sequence
    (attention costs T^2 per sequence, so padding to the batch's longest wastes most of it),
    with each group's padding bias and, for dropout, its real (query, key) pairs and where their
    draws sit in :func:`fused_attention`'s one draw for the whole batch (so both draw the same
    mask). Built once per forward from ``mask`` (B, T) bool, True at real tokens (right padding),
    and shared by every attention layer; see :func:`grouped_attention`."""

    def __init__(self, mask: torch.Tensor, num_heads: int, dropout: bool, groups: int = ATTENTION_LENGTH_GROUPS):
        lengths = mask.sum(1)
        order = torch.argsort(lengths, stable=True)
        self.width = mask.shape[1]
        self.inverse = torch.argsort(order)
        # sequence b's draws: num_heads * L_b^2 in a row, in (head, query, key) order, after those of b - 1
        per_sequence = num_heads * lengths * lengths
        self.pair_count = int(per_sequence.sum())
        starts = torch.cumsum(per_sequence, 0) - per_sequence
        self.groups = []
        for rows in order.tensor_split(min(groups, mask.shape[0])):
            if rows.numel() == 0:
                continue
            t = max(int(lengths[rows].max()), 1)
            m = mask[rows, :t]
            draws = None
            if dropout:
                sizes = per_sequence[rows]
                draws = (torch.repeat_interleave(starts[rows] - (torch.cumsum(sizes, 0) - sizes), sizes)
                         + torch.arange(int(sizes.sum())))
            self.groups.append((rows, t, m, attention_bias(m), real_pairs(m, num_heads) if dropout else None, draws))


def grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan, num_heads: int,
                      dropout_p: float = 0.0) -> torch.Tensor:
    """:func:`masked_attention` of ``q, k, v`` (B, T, D) group by group as ``plan`` says -> (B, T, D).

    The same values at real query positions as one call over the whole batch (a query sees only
    its own sequence's keys, tested); padded query rows are 0 or arbitrary, as there.
    """
    keep = keep_mask((plan.pair_count,), dropout_p, q) if dropout_p > 0.0 else None  # one draw, as fused_attention's
    parts = []
    for rows, t, m, bias, pairs, draws in plan.groups:
        out = masked_attention(q[rows, :t], k[rows, :t], v[rows, :t], m, num_heads, dropout_p, bias, pairs,
                               None if keep is None else keep[draws])
        parts.append(F.pad(out, (0, 0, 0, plan.width - t)))
    return torch.cat(parts)[plan.inverse]


class ConvOp(nn.Module):
    """Pre-norm 1-d convolution: LayerNorm -> zero pads -> conv -> zero pads -> ReLU -> dropout.

    Kernel 1 runs as a linear map (:func:`src.models.linear.linear`) with the conv's own weight
    (position-wise, so the first re-zeroing is not needed: padded rows are zeroed after the map
    instead). With the CPU kernels, a heavily padded batch (a training batch) is convolved over its
    sequences laid end to end (:class:`PackedConvPlan`): the same values at the real rows without
    computing the padding (tested).
    """

    def __init__(self, dim: int, kernel_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        if kernel_size > 1:
            # the weight kept as (out, kernel, in) in memory: the channels-last layout in which
            # conv_over_time's convolution reads it and returns its gradient, so neither is
            # reordered (otherwise every backward copies the gradient to the parameter's layout)
            self.conv.weight.data = self.conv.weight.data.transpose(1, 2).contiguous().transpose(1, 2)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) float; mask: (B, T) bool, True at real tokens -> (B, T, D), zero at padded positions."""
        # LayerNorm maps a zero vector to its bias, so padded positions are re-zeroed before the
        # kernel reads them as neighbours.
        reach = self.conv.kernel_size[0] // 2
        # narrow widths pack only training batches: scoring buckets are cut to similar lengths, so
        # building their plan (once per bucket and candidate, inference masks are not cached) is waste
        packable = cpu_kernels.use_kernel(x) and (self.training or x.shape[-1] >= PACKED_CONV_WIDE_DIM)
        plan = packed_plan(mask, reach) if packable else None
        if plan is not None and plan.share <= packed_share_limit(x.shape[-1]):
            h = plan.apply(self.conv, masked_layer_norm(self.norm, x, mask))
            rows = real_rows(mask) if self.training and self.dropout.p > 0 else None
            return self.dropout(F.relu(h), rows) if rows is not None else F.relu(h)
        if self.conv.kernel_size[0] == 1:
            # kernel 1: a position-wise linear map; no neighbours, so no re-zeroing before it, and
            # in (B, T, D) layout it needs no transposes (the same weights as the conv; tested)
            h = linear(masked_layer_norm(self.norm, x, mask), self.conv.weight.squeeze(-1), self.conv.bias)
        else:
            h = conv_over_time(masked_layer_norm(self.norm, x, mask), self.conv)
        rows = real_rows(mask) if self.training and self.dropout.p > 0 else None
        if rows is not None:
            # a dropout that draws only for the real rows zeroes the padded ones, and ReLU keeps 0
            return self.dropout(F.relu(h), rows)
        return self.dropout(F.relu(zero_padded(h, mask)), mask=mask)


# A convolution is computed over the packed sequences when the packing holds at most a share of the
# padded batch's rows that depends on the width (training batches padded to their longest example;
# not the scoring buckets, which are already cut to similar lengths). From D=128 up to 0.7: the
# retrain step of the published SST-5 architecture (D=256, sentence batches packed to 0.36-0.56)
# took 0.295 -> 0.256 s and 0.321 -> 0.246 s. Narrower, the copies in and out cost about what the
# padding did for sentence batches (D=64 supernet step unchanged beyond noise;
# experiments/bench/packed_conv_ab.py), but phrase batches, the paper's supernet data (packed to
# 0.10-0.28: 13 % real tokens), ran 2.40 -> 1.99 s a supernet step (2 threads, 2 workers;
# experiments/bench/packed_phrase_ab.py), hence up to 0.3 there.
PACKED_CONV_MAX_SHARE = 0.7
PACKED_CONV_MAX_SHARE_NARROW = 0.3
PACKED_CONV_WIDE_DIM = 128


def packed_share_limit(dim: int) -> float:
    """The largest packed share of a batch's rows at which width ``dim`` convolves it packed."""
    return PACKED_CONV_MAX_SHARE if dim >= PACKED_CONV_WIDE_DIM else PACKED_CONV_MAX_SHARE_NARROW


class PackedConvPlan:
    """The sequences of a padded batch laid end to end for a convolution of half-width ``reach``.

    ``mask`` (B, T): each sequence's rows up to its last real token, followed by ``reach`` zero
    rows (and ``reach`` zero rows first), so every real token sees the same neighbours as in the
    padded batch (its sequence's rows, zeros beyond them) while the padding after each sequence is
    not computed. ``src_rows`` / ``src_pos``: flat (B * T) rows copied in and where they go;
    ``real_rows`` / ``real_pos``: the real tokens' flat rows and packed positions; ``share``: the
    packed length over B * T.
    """

    def __init__(self, mask: torch.Tensor, reach: int):
        b, t = mask.shape
        positions = torch.arange(t, device=mask.device)
        spans = torch.where(mask, positions, -1).amax(1) + 1 if t else mask.new_zeros(b, dtype=torch.long)
        ends = torch.cumsum(spans + reach, 0)
        starts = ends - spans
        self.length = int(reach + ends[-1]) if b else 0
        keep = positions.unsqueeze(0) < spans.unsqueeze(1)
        flat = (torch.arange(b, device=mask.device) * t).unsqueeze(1) + positions
        packed = starts.unsqueeze(1) + positions
        self.reach, self.rows = reach, b * t
        self.src_rows, self.src_pos = flat[keep], packed[keep]
        self.real_rows, self.real_pos = flat[mask], packed[mask]
        self.share = self.length / self.rows if self.rows else 1.0

    def apply(self, conv: nn.Conv1d, h: torch.Tensor) -> torch.Tensor:
        """``conv`` (same padding) over ``h`` (B, T, D), padded rows zero -> (B, T, out_channels),
        padded rows zero: the values of the convolution over the padded batch at the real rows."""
        b, t, d = h.shape
        flat = h.reshape(b * t, d)
        if self.reach == 0:
            y = linear(flat.index_select(0, self.real_rows), conv.weight.squeeze(-1), conv.bias)
        else:
            packed = flat.new_zeros(self.length, d).index_copy(0, self.src_pos, flat.index_select(0, self.src_rows))
            y = conv_over_time(packed.unsqueeze(0), conv).squeeze(0).index_select(0, self.real_pos)
        return flat.new_zeros(b * t, y.shape[1]).index_copy(0, self.real_rows, y).view(b, t, -1)


def packed_plan(mask: torch.Tensor, reach: int) -> PackedConvPlan:
    """:class:`PackedConvPlan` of ``mask``, built once per mask and reach (:func:`per_mask`)."""
    return per_mask(f"packed_conv_{reach}", mask, lambda m: PackedConvPlan(m, reach))


def masked_layer_norm(norm: nn.LayerNorm, x: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """``norm(x)`` at the real positions of ``x`` (B, T, D), ``fill`` at the padded ones (mask (B, T)
    False): :func:`fill_padded` of ``norm(x)``.

    With the CPU kernels one pass that normalises only the real rows (``layernorm_kernel.cpp``;
    ATen's LayerNorm plus the fill was about 7 % of a supernet step), else those two torch ops.
    Gradients (``x``, weight, bias) are those of the torch ops: padded rows get none and give none.
    """
    if cpu_kernels.use_kernel(x) and norm.weight is not None and norm.bias is not None and x.dim() == 3:
        if torch.is_grad_enabled() and (x.requires_grad or norm.weight.requires_grad or norm.bias.requires_grad):
            return _MaskedLayerNorm.apply(x, mask, norm.weight, norm.bias, norm.eps, fill)
        return torch.ops.autoattend.masked_layer_norm(x, mask, norm.weight, norm.bias, norm.eps, fill)[0]
    return fill_padded(norm(x), mask, fill)


class _MaskedLayerNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, weight, bias, eps, fill):
        y, mean, rstd = torch.ops.autoattend.masked_layer_norm(x, mask, weight, bias, eps, fill)
        ctx.save_for_backward(x, mask, mean, rstd, weight)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, mask, mean, rstd, weight = ctx.saved_tensors
        dx, dw, db = torch.ops.autoattend.masked_layer_norm_backward(grad, x, mask, mean, rstd, weight)
        return dx, None, dw, db, None, None


def conv_over_time(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """``conv`` (same padding, odd kernel) along the tokens of ``x`` (B, T, D) -> (B, T, out_channels).

    Runs as a 2-d convolution of a (B, D, 1, T) channels-last view of ``x``: oneDNN then reads and
    writes the (B, T, D) layout itself, where ``conv(x.transpose(1, 2)).transpose(1, 2)`` copies
    both ways and leaves a strided output that makes the ReLU after it slow. About 2x faster
    forward + backward on CPU at the supernet's sizes (docs/performance.md); tested against
    ``conv1d``.
    """
    b, t, _ = x.shape
    k = conv.kernel_size[0]
    out = F.conv2d(x.unsqueeze(1).permute(0, 3, 1, 2), conv.weight.unsqueeze(2), conv.bias, padding=(0, k // 2))
    return out.permute(0, 2, 3, 1).reshape(b, t, -1)


class MaxPoolOp(nn.Module):
    """Pre-norm max-pool (kernel 3, stride 1); padded neighbours count as -inf, like the sequence ends.

    As in the authors' code it has a LayerNorm but no activation and no dropout.
    """

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) float; mask: (B, T) bool, True at real tokens -> (B, T, D), zero at padded positions."""
        h = masked_layer_norm(self.norm, x, mask, float("-inf"))
        k = self.kernel_size
        if cpu_kernels.use_kernel(h):
            return max_pool_time(h, mask, k // 2)
        # as a 2-d pool of a (B, D, 1, T) channels-last view, like conv_over_time: ATen's
        # channels-last pool reads the (B, T, D) layout itself (the same values and gradients as
        # max_pool1d on the transposed tensor, tested; about 1.3x faster forward + backward)
        b, t, _ = h.shape
        h = F.max_pool2d(h.unsqueeze(1).permute(0, 3, 1, 2), (1, k), stride=1, padding=(0, k // 2))
        return zero_padded(h.permute(0, 2, 3, 1).reshape(b, t, -1), mask)


class _MaxPoolTime(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, reach):
        out, arg = torch.ops.autoattend.max_pool_time(x, mask, reach, True)
        ctx.save_for_backward(arg, mask)
        ctx.reach = reach
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        arg, mask = ctx.saved_tensors
        return torch.ops.autoattend.max_pool_time_backward(grad, arg, mask, ctx.reach), None, None


def max_pool_time(x: torch.Tensor, mask: torch.Tensor, reach: int) -> torch.Tensor:
    """Max-pool of ``x`` (B, T, D) along T through ``pool_kernel.cpp``: kernel ``2 * reach + 1``, stride 1,
    padded (``mask`` (B, T) False) and out-of-range neighbours ignored; padded rows of the output 0.

    The values and gradients of ``max_pool1d`` on ``x`` with its padded positions at -inf, then
    zeroed (ties go to the first position, as there; tested). ATen's channels-last pool took about
    5 ns an element; saved for backward: one int8 offset per element.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _MaxPoolTime.apply(x, mask, reach)
    return torch.ops.autoattend.max_pool_time(x, mask, reach, False)[0]


def reverse_within_length(mask: torch.Tensor) -> torch.Tensor:
    """Index (B, T) that reverses each right-padded sequence within its own length.

    Position ``p < length`` maps to ``length - 1 - p``; padded positions map to themselves. The
    map is its own inverse, so gathering with it twice restores the order.
    """
    n = mask.sum(1, keepdim=True)
    pos = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    return torch.where(pos < n, n - 1 - pos, pos)


def default_gru_path(h: torch.Tensor) -> str:
    """The :class:`GRUOp` path for input ``h`` when the caller names none: ``fused`` where the CPU
    kernels run, else ``unpacked`` (on a GPU, and on CPU with ``hardware.kernels=torch``)."""
    return "fused" if cpu_kernels.use_kernel(h) else "unpacked"


class GRUOp(nn.Module):
    """Pre-norm bidirectional GRU (hidden = D), the two directions summed, then dropout.

    The backward direction starts at each sequence's last real token, never at the padding. Three
    exact ways to get there (``path``; ``None`` picks by device and ``hardware.kernels``,
    :func:`default_gru_path`):

    * ``"fused"`` (the CPU default): the fused kernel over the sequences packed by length;
    * ``"packed"``: ``nn.GRU`` over the sequences packed by length;
    * ``"unpacked"`` (the default elsewhere: a GPU, or CPU with ``hardware.kernels=torch``): no
      packing. The forward direction runs on the right-padded batch (a real position only sees
      earlier positions); the backward direction runs forward over each sequence reversed within
      its length, and its output is reversed back.

    ``tests/test_models.py`` and ``tests/test_cpu_kernels.py`` check all three give the same outputs
    and gradients. The fused kernel takes about a third of the time of the other two on CPU. Packing
    costs more than the padding it saves: it sorts, packs and unpacks one time step at a time, and
    on a GPU sends the lengths to the host (a synchronisation). Unpacked, the paper supernet's
    16-architecture forward + backward took 4.39 -> 1.98 s on an H200 and 12.8-13.1 -> 9.6-10.1 s
    on 2 CPU cores with torch's ops (interleaved A/B), a candidate's scoring 0.47 -> 0.34 s on the
    H200 and 0.99 -> 0.93 s on the CPU (``experiments/README.md``, "GPU: the GRU unpacked ...").
    """

    PATHS = ("fused", "packed", "unpacked")

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.gru = nn.GRU(dim, dim, batch_first=True, bidirectional=True)
        self.dropout = Dropout(dropout)
        self.dim = dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor, path: str | None = None) -> torch.Tensor:
        """x: (B, T, D), mask: (B, T) True at real tokens -> (B, T, D), zero at padded positions."""
        h = masked_layer_norm(self.norm, x, mask)  # padded rows never reach a real position (any fill would do)
        if path is None:
            path = default_gru_path(h)
        if path == "fused":
            out = fused_gru.bidirectional_gru(self.gru, h, mask)
        elif path == "packed":
            out = self._packed(h, mask)
        elif path == "unpacked":
            out = self._unpacked(h, mask)
        else:
            raise ValueError(f"unknown GRU path {path!r} (expected one of {self.PATHS})")
        return self.dropout(out, mask=mask)

    def _packed(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        lengths = mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
        return out.view(b, t, 2, d).sum(2)

    def _unpacked(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        g = self.gru
        h0 = h.new_zeros(1, b, d)
        fwd, _ = torch.gru(h, h0, [g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0],
                           True, 1, 0.0, self.training, False, True)
        idx = reverse_within_length(mask).unsqueeze(-1).expand(b, t, d)
        bwd, _ = torch.gru(h.gather(1, idx), h0,
                           [g.weight_ih_l0_reverse, g.weight_hh_l0_reverse, g.bias_ih_l0_reverse, g.bias_hh_l0_reverse],
                           True, 1, 0.0, self.training, False, True)
        return zero_padded(fwd + bwd.gather(1, idx), mask)


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
    """Apply op ``name`` to ``x`` (B, T, D) with ``mask`` (B, T) bool, True at real tokens -> (B, T, D);
    ``zero`` returns ``None`` so callers can skip it, ``identity`` returns ``x`` itself."""
    if name == "zero":
        return None
    if name == "identity":
        return x
    return module(x, mask)
