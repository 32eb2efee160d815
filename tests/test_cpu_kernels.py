"""The fused CPU kernels compute what their torch paths compute (the GRU: ``nn.GRU``; attention:
:func:`~src.models.ops.masked_attention` written with ATen ops), and the backend switch behaves."""

from __future__ import annotations

import math
import os
import platform
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from src.models import cpu_kernels, fused_gru
from src.models import linear as linear_mod
from src.models import ops as ops_mod
from src.models.ops import (ConvOp, GRUOp, MaxPoolOp, max_pool_time, _FusedAttention, attention_pair_count, conv_over_time, dropout_generator,
                            fast_dropout, fill_padded, fused_attention, keep_mask, masked_attention, masked_layer_norm,
                            real_rows, STREAM_CHUNK, stream_keep, zero_padded)
from src.models.text import TextClassifier
from src.space import FunctionalSpace
from src.utils.errors import AutoAttendError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kernel():
    error = cpu_kernels.kernel_error()
    if error is not None:
        pytest.skip(f"the fused CPU kernels cannot be built on this machine: {error}")


@pytest.fixture
def backend():
    """Restores the process-wide kernel backend after a test changes it."""
    before = cpu_kernels.get_backend()
    yield cpu_kernels.set_backend
    cpu_kernels.set_backend(before)


def padded_batch(lengths, width, dim, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    x = torch.randn(len(lengths), width, dim, generator=g, dtype=dtype).masked_fill(~mask.unsqueeze(-1), 0.0)
    return x, mask


def reference(gru, x, mask):
    """nn.GRU over the packed sequences, directions summed: the straightforward path."""
    b, t, _ = x.shape
    packed = nn.utils.rnn.pack_padded_sequence(x, mask.sum(1), batch_first=True, enforce_sorted=False)
    out, _ = gru(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
    return out.view(b, t, 2, gru.hidden_size).sum(2)


def outputs_and_grads(fn, module, x, weights):
    xi = x.clone().requires_grad_()
    module.zero_grad()
    out = fn(xi)
    (out * weights).sum().backward()
    return [out.detach(), xi.grad] + [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("in_dim, hidden", [(5, 7), (48, 64), (64, 128)])  # hidden % 64 == 0: the own products
def test_bidirectional_gru_matches_nn_gru_outputs_and_every_gradient(kernel, dtype, tol, in_dim, hidden):
    torch.manual_seed(0)
    gru = nn.GRU(in_dim, hidden, batch_first=True, bidirectional=True).to(dtype)  # input and hidden sizes differ
    # ties, a 1-token row, 2 padded columns, odd numbers of rows at most steps
    x, mask = padded_batch([6, 1, 4, 9, 2, 9, 5], 11, in_dim, dtype)
    weights = torch.randn(7, 11, hidden, dtype=dtype, generator=torch.Generator().manual_seed(1))
    ref = outputs_and_grads(lambda xi: reference(gru, xi, mask), gru, x, weights)
    got = outputs_and_grads(lambda xi: fused_gru.bidirectional_gru(gru, xi, mask), gru, x, weights)
    assert got[0].shape == (7, 11, hidden)
    assert torch.equal(got[0][~mask], torch.zeros(int((~mask).sum()), hidden, dtype=dtype))
    for a, b in zip(ref, got):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=tol, rtol=0), (a - b).abs().max()


@pytest.mark.parametrize("lengths", [[5], [1], [3, 3], [1, 1, 1]])
def test_small_batches_match_and_the_kernel_never_writes_its_inputs(kernel, lengths):
    torch.manual_seed(0)
    gru = nn.GRU(4, 4, batch_first=True, bidirectional=True)
    before = {k: v.clone() for k, v in gru.state_dict().items()}
    x, mask = padded_batch(lengths, max(lengths), 4, torch.float32)
    x_before = x.clone()
    for _ in range(2):  # a second call sees the same weights
        out = fused_gru.bidirectional_gru(gru, x, mask)
        out.sum().backward()
        assert torch.allclose(out, reference(gru, x, mask), atol=1e-6)
    assert torch.equal(x, x_before)
    for k, v in gru.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_recurrence_gradcheck(kernel):
    g = torch.Generator().manual_seed(0)
    d = 3
    batch_sizes = torch.tensor([3, 3, 2, 1])
    n = int(batch_sizes.sum())
    gi = torch.randn(n, 3 * d, dtype=torch.float64, generator=g, requires_grad=True)
    w_hh = torch.randn(3 * d, d, dtype=torch.float64, generator=g, requires_grad=True)
    b_hh = torch.randn(3 * d, dtype=torch.float64, generator=g, requires_grad=True)
    b_ih = torch.randn(3 * d, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, bi, w, b: fused_gru.recurrence(a, bi, w, b, batch_sizes),
                                    (gi, b_ih, w_hh, b_hh))


def test_gru_op_paths_agree_and_padding_changes_nothing(kernel):
    torch.manual_seed(0)
    op = GRUOp(8, dropout=0.0)
    x, mask = padded_batch([7, 1, 4, 7, 2, 5], 7, 8, torch.float32)
    weights = torch.linspace(-1, 1, x.numel()).view_as(x)
    fused = outputs_and_grads(lambda xi: op(xi, mask, path="fused"), op, x, weights)
    packed = outputs_and_grads(lambda xi: op(xi, mask, path="packed"), op, x, weights)
    for a, b in zip(fused, packed):
        assert torch.allclose(a, b, atol=2e-5)
    wider = torch.cat([x, torch.randn(6, 4, 8)], 1)  # padded columns holding garbage
    wider_mask = torch.cat([mask, torch.zeros(6, 4, dtype=torch.bool)], 1)
    assert torch.equal(op(wider, wider_mask, path="fused")[:, :7], fused[0])
    with torch.inference_mode():
        assert torch.allclose(op(x, mask, path="fused"), fused[0], atol=1e-6)  # no saved gates


def small_supernet(ops, heads, rows, width, seed):
    """A 4-layer supernet (D=16, eval mode) and a right-padded batch of ``rows`` token rows."""
    space = FunctionalSpace(4, ops=ops)
    torch.manual_seed(0)
    model = TextClassifier.supernet(torch.randn(30, 12), 3, space, dim=16, heads=heads, sharing="full").eval()
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (rows,), generator=g)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    tokens = torch.randint(1, 30, (rows, width), generator=g).masked_fill(~mask, 0)
    return space, model, tokens, mask


def assert_backends_agree(backend, model, tokens, mask, archs, trained):
    """Logits and every gradient of ``model`` under the kernels equal those under the torch paths,
    for each architecture (each backend from the same global RNG state: the same dropout masks);
    some parameter whose name contains ``trained`` got a gradient."""
    assert archs
    for arch in archs:
        runs = []
        for name in ("auto", "torch"):
            backend(name)
            model.zero_grad()
            torch.manual_seed(11)
            logits = model(tokens, mask, arch)
            logits.square().sum().backward()
            runs.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        (la, ga), (lb, gb) = runs
        assert torch.allclose(la, lb, atol=1e-5)
        assert ga.keys() == gb.keys() and any(trained in n for n in ga)
        for name in ga:
            assert torch.allclose(ga[name], gb[name], atol=1e-5), name


def test_supernet_logits_and_gradients_match_the_torch_backend(kernel, backend):
    space, model, tokens, mask = small_supernet(("identity", "conv1", "gru"), heads=2, rows=5, width=9, seed=2)
    rng = random.Random(0)
    archs = [a for a in (space.sample(rng) for _ in range(40)) if any("gru" in str(layer) for layer in a.layers)][:4]
    assert_backends_agree(backend, model, tokens, mask, archs, ".gru.")


def reference_attention(q, k, v, mask, heads):
    """Attention written out per sequence and head over its real tokens only (the definition)."""
    b, t, d = q.shape
    dh = d // heads
    out = torch.zeros_like(q)
    for i in range(b):
        real = mask[i].nonzero().squeeze(1)
        for h in range(heads):
            c = slice(h * dh, (h + 1) * dh)
            qh, kh, vh = q[i, real, c], k[i, real, c], v[i, real, c]
            weights = (qh @ kh.T / dh ** 0.5).softmax(-1)
            out[i, real, c] = weights @ vh
    return out


def attention_inputs(mask, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*mask.shape, d, generator=g, dtype=dtype) * 2 for _ in range(3)]


# float32: the kernel is built with -march=native -ffast-math, so its summation order follows the
# CPU's vector width (2.2e-6 on an AVX-512 machine for outputs of magnitude ~5, a few ulps)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("d, heads", [(64, 8), (12, 3), (8, 1), (32, 8)])
def test_attention_kernel_matches_the_definition(kernel, dtype, tol, d, heads):
    lengths = torch.tensor([7, 1, 4, 7, 2, 0])  # ties, a 1-token row, an empty row
    mask = torch.arange(9)[None, :] < lengths[:, None]
    mask[2, 1] = False  # a hole: the kernel takes any mask, not only prefixes
    q, k, v = attention_inputs(mask, d, dtype)
    with torch.inference_mode():
        got = torch.ops.autoattend.attention(q, k, v, mask, heads)
    want = reference_attention(q, k, v, mask, heads)
    assert got.shape == q.shape and got.dtype == dtype
    assert torch.equal(got[~mask], torch.zeros(int((~mask).sum()), d, dtype=dtype))  # padded queries: 0
    assert torch.allclose(got, want, atol=tol, rtol=0), (got - want).abs().max()


def test_attention_kernel_ignores_padded_keys_and_non_contiguous_inputs(kernel):
    mask = torch.arange(10)[None, :] < torch.tensor([10, 6, 3])[:, None]
    q, k, v = attention_inputs(mask, 16, torch.float32)
    garbage = [x.masked_fill(~mask.unsqueeze(-1), 1e4) for x in (q, k, v)]  # padded positions hold garbage
    strided = [x.transpose(1, 2).contiguous().transpose(1, 2) for x in garbage]
    with torch.inference_mode():
        clean = torch.ops.autoattend.attention(q, k, v, mask, 4)
        assert torch.equal(torch.ops.autoattend.attention(*garbage, mask, 4)[mask], clean[mask])
        assert torch.equal(torch.ops.autoattend.attention(*strided, mask, 4), torch.ops.autoattend.attention(*garbage, mask, 4))
    with pytest.raises(RuntimeError, match="divisible by heads"):
        torch.ops.autoattend.attention(q, k, v, mask, 3)
    with pytest.raises(RuntimeError, match="bool"):
        torch.ops.autoattend.attention(q, k, v, mask.float(), 4)


def test_attention_kernels_subtract_the_largest_score_of_every_key(kernel):
    """The softmax subtracts each query's largest score over all its real keys, so scores hundreds
    above the others stay finite in float32 (exp overflows past 88): here the last real key of each
    sequence, with an even number of keys (the maximum's pairwise loop leaves the last row of an odd
    count to a tail step; dropping that step went unseen with scores of a few units, mutation audit
    of the kernels 2026-12-05). Inference and training kernels, outputs and gradients, against the
    definition."""
    mask = torch.arange(8)[None, :] < torch.tensor([4, 2, 8, 6])[:, None]
    q, k, v = attention_inputs(mask, 16, torch.float32, seed=6)
    q = q.abs() + 1
    for i, n in enumerate(mask.sum(1).tolist()):
        k[i, n - 1] = 15.0  # scores of about 110 (beyond exp's float32 range) against a few units
    want = reference_attention(q, k, v, mask, 2)
    with torch.inference_mode():
        got = torch.ops.autoattend.attention(q, k, v, mask, 2)
    assert torch.isfinite(got).all() and torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()
    weights = torch.randn(q.shape, generator=torch.Generator().manual_seed(7))
    grads = []
    for fn in (lambda a, b, c: reference_attention(a, b, c, mask, 2),
               lambda a, b, c: _FusedAttention.apply(a, b, c, mask, 2, torch.empty(0, dtype=torch.bool), 1.0)):
        inputs = [x.clone().requires_grad_() for x in (q, k, v)]
        out = fn(*inputs)
        (out * weights).sum().backward()
        grads.append([out.detach()] + [x.grad for x in inputs])
    for a, b in zip(*grads):
        # float32 scores of ~110 carry rounding of ~1e-5 into the gradients; the unstable softmax gives inf/NaN
        assert torch.isfinite(b).all() and torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def reference_attention_with_keep(q, k, v, mask, heads, keep, scale):
    """The definition with dropout factors: ``keep`` in (sequence, head, real query, real key) order."""
    b, t, d = q.shape
    dh = d // heads
    out = torch.zeros_like(q)
    at = 0
    for i in range(b):
        real = mask[i].nonzero().squeeze(1)
        n = len(real)
        for h in range(heads):
            c = slice(h * dh, (h + 1) * dh)
            weights = (q[i, real, c] @ k[i, real, c].T / dh ** 0.5).softmax(-1)
            if keep.numel():
                weights = weights * keep[at:at + n * n].view(n, n).to(q.dtype) * scale
            at += n * n
            out[i, real, c] = weights @ v[i, real, c]
    return out


def masked_batch(lengths, width, d, dtype, seed=0, hole=None):
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    if hole is not None:
        mask[hole] = False
    return (*attention_inputs(mask, d, dtype, seed), mask)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_training_attention_kernel_matches_the_definition_and_passes_gradcheck(kernel, dropout):
    q, k, v, mask = masked_batch([5, 1, 3, 0, 4], 6, 6, torch.float64, hole=(4, 1))
    heads = 2
    count = attention_pair_count(mask, heads)
    assert count == heads * (25 + 1 + 9 + 0 + 9)
    keep = torch.rand(count, generator=torch.Generator().manual_seed(1)) >= dropout
    scale = 1.0 / (1.0 - dropout)
    keep_arg = keep if dropout else torch.empty(0, dtype=torch.bool)
    out, lse = torch.ops.autoattend.attention_train_forward(q, k, v, mask, heads, keep_arg, scale)
    assert torch.allclose(out, reference_attention_with_keep(q, k, v, mask, heads, keep_arg, scale), atol=1e-12)
    assert lse.shape == (5, heads, 6)
    inputs = tuple(x.clone().requires_grad_() for x in (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: _FusedAttention.apply(a, b, c, mask, heads, keep_arg, scale),
                                    inputs)


@pytest.mark.parametrize("d, heads", [(64, 8), (12, 3)])
def test_training_attention_gradients_match_autograd_of_the_definition(kernel, d, heads):
    lengths = [37, 1, 17, 16, 33, 40, 2, 29]  # more than one block of 16 queries and keys
    q, k, v, mask = masked_batch(lengths, 40, d, torch.float32, seed=3, hole=(2, 5))
    keep = torch.rand(attention_pair_count(mask, heads), generator=torch.Generator().manual_seed(4)) >= 0.1
    weights = torch.randn(q.shape, generator=torch.Generator().manual_seed(5))
    grads = []
    for fn in (lambda a, b, c: reference_attention_with_keep(a, b, c, mask, heads, keep, 1 / 0.9),
               lambda a, b, c: _FusedAttention.apply(a, b, c, mask, heads, keep, 1 / 0.9)):
        inputs = [x.clone().requires_grad_() for x in (q, k, v)]
        out = fn(*inputs)
        (out * weights).sum().backward()
        grads.append([out.detach()] + [x.grad for x in inputs])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=2e-5), (a - b).abs().max()
    assert torch.equal(grads[1][1][~mask], torch.zeros(int((~mask).sum()), d))  # padded rows get no gradient


def test_fused_attention_draws_its_dropout_from_the_thread_generator(kernel):
    q, k, v, mask = masked_batch([4, 2, 3], 4, 8, torch.float32)
    runs = []
    for _ in range(2):
        with dropout_generator(torch.Generator().manual_seed(7)):
            runs.append(fused_attention(q, k, v, mask, 2, 0.5))
    assert torch.equal(runs[0], runs[1])
    with dropout_generator(torch.Generator().manual_seed(8)):
        assert not torch.equal(fused_attention(q, k, v, mask, 2, 0.5), runs[0])
    with dropout_generator(torch.Generator().manual_seed(7)):
        keep = keep_mask((attention_pair_count(mask, 2),), 0.5, q)
    assert torch.allclose(runs[0], reference_attention_with_keep(q, k, v, mask, 2, keep, 2.0), atol=1e-6)
    assert torch.equal(fused_attention(q, k, v, mask, 2, 0.0), torch.ops.autoattend.attention(q, k, v, mask, 2))
    with pytest.raises(RuntimeError, match="keep must be"):
        torch.ops.autoattend.attention_train_forward(q, k, v, mask, 2, keep[:-1], 2.0)


@pytest.mark.parametrize("dropout, attn_dropout", [(0.0, 0.0), (0.3, 0.2)])
def test_supernet_training_logits_and_gradients_match_the_torch_backend(kernel, backend, dropout, attn_dropout):
    """Training logits and gradients agree across backends, also with dropout on (the stem's, every
    op's, the attention weights'): the torch paths draw the kernels' masks (the same stream, one
    attention draw per layer in the same order). Before, they drew from torch's generator: the same
    distribution, other masks, other numbers (a resume with another hardware.kernels, or a machine
    where the kernels cannot be built, trained differently)."""
    space, model, tokens, mask = small_supernet(("identity", "conv1", "gru", "conv3", "maxpool3"), heads=4, rows=9,
                                                width=11, seed=4)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = dropout
    model.encoder.attn_dropout = attn_dropout
    model.train()
    rng = random.Random(5)
    archs = [a for a in (space.sample(rng) for _ in range(60)) if sum(layer.kind == "attn" for layer in a.layers) >= 2][:4]
    assert_backends_agree(backend, model, tokens, mask, archs, "attn_norms")


def splitmix_top24(count, seed):
    """The top 24 bits of SplitMix64 of seed + (i + 1) * gamma, i < count, as float64 (numpy)."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64)


def splitmix_keep(count, p, seed):
    """uniform_keep's definition in numpy: the top 24 bits u of SplitMix64 of seed + (i + 1) * gamma,
    kept when u * 2^-24 >= float32(p)."""
    import numpy as np

    return torch.from_numpy(splitmix_top24(count, seed) * 2.0 ** -24 >= float(np.float32(p)))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.3])
def test_uniform_keep_is_its_definition_with_the_distribution_of_torch_rand(kernel, p):
    n = 1_000_000
    keep = torch.ops.autoattend.uniform_keep(n, p, 12345)
    assert keep.dtype == torch.bool and keep.shape == (n,)
    assert torch.equal(keep, splitmix_keep(n, p, 12345))
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(keep.double().mean().item() - (1 - p)) < 5 * sigma
    pairs = (keep[:-1] & keep[1:]).double().mean().item()  # neighbours are independent
    assert abs(pairs - (1 - p) ** 2) < 5 * math.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / n)
    assert torch.equal(keep, torch.ops.autoattend.uniform_keep(n, p, 12345))
    assert not torch.equal(keep[:1000], torch.ops.autoattend.uniform_keep(1000, p, 12346))
    assert torch.ops.autoattend.uniform_keep(100, 0.0, 1).all() and not torch.ops.autoattend.uniform_keep(100, 1.0, 1).any()
    assert torch.ops.autoattend.uniform_keep(0, p, 1).shape == (0,)


def test_uniform_keep_drops_a_number_just_below_a_p_between_two_24_bit_steps(kernel):
    """A float32 ``p`` finer than 2^-24 (any p < 0.5) lies between two 24-bit uniforms: the number
    just below it is dropped (as ``torch.rand >= p`` drops it), so the kernel's threshold is p x
    2^24 rounded up; rounded down it kept that number, one draw in 2^24 too many, which the
    million-draw test above does not see (mutation audit of the kernels 2026-12-05)."""
    import numpy as np

    u = int(splitmix_top24(1, 12345)[0])  # the first number of seed 12345
    assert u < 2**23
    p = (u + 0.5) / 2**24  # exact in float32 below 0.5
    assert float(np.float32(p)) == p
    for count in (1, 40):  # 40: the first number within a longer draw
        keep = torch.ops.autoattend.uniform_keep(count, p, 12345)
        assert torch.equal(keep, splitmix_keep(count, p, 12345)) and not keep[0]
        assert torch.equal(keep, stream_keep(count, p, 12345))
    assert torch.ops.autoattend.uniform_keep(1, u / 2**24, 12345).tolist() == [True]
    x = torch.ones(1, 1)
    assert torch.ops.autoattend.dropout_rows(x, None, 1, p, 12345).item() == 0.0  # the dropout's own threshold
    assert torch.ops.autoattend.dropout_rows(x, None, 1, u / 2**24, 12345).item() > 0.0


def test_keep_mask_follows_the_thread_generator_and_the_torch_paths_draw_the_same_stream(kernel, backend):
    like = torch.zeros(1)
    masks = []
    for seed in (3, 3, 4):
        with dropout_generator(torch.Generator().manual_seed(seed)):
            masks.append(keep_mask((50, 40), 0.25, like))
    assert masks[0].shape == (50, 40) and torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])
    backend("torch")
    with dropout_generator(torch.Generator().manual_seed(3)):
        fallback = keep_mask((50, 40), 0.25, like)
    assert torch.equal(fallback, masks[0])  # the kernel's stream in torch ops, bit for bit
    for count, p, seed in ((1, 0.5, 7), (STREAM_CHUNK + 3, 0.7, 2**61 + 5), (1000, 0.0, 1), (1000, 1.0, 1)):
        assert torch.equal(stream_keep(count, p, seed), torch.ops.autoattend.uniform_keep(count, p, seed))
    assert stream_keep(0, 0.5, 1).shape == (0,)


def where_dropout(x, p, rows, generator_seed):
    """fast_dropout's straightforward path with the kernel's mask: keep_mask laid over the drawing
    rows, then ``torch.where``."""
    with dropout_generator(torch.Generator().manual_seed(generator_seed)):
        if rows is None:
            keep = keep_mask(tuple(x.shape), p, x)
        else:
            keep = torch.zeros(x.shape, dtype=torch.bool)
            keep.view(-1, x.shape[-1])[rows] = keep_mask((rows.numel(), x.shape[-1]), p, x)
    return torch.where(keep, x * (1.0 / (1.0 - p)), x.new_zeros(()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_rows", [True, False])
def test_dropout_kernel_is_the_where_path_bit_for_bit(kernel, dtype, with_rows):
    x, mask = padded_batch([7, 1, 9, 4], 9, 16, dtype, seed=3)
    x.requires_grad_()
    rows = real_rows(mask) if with_rows else None
    with dropout_generator(torch.Generator().manual_seed(11)):
        out = fast_dropout(x, 0.3, True, rows)
    ref = where_dropout(x, 0.3, rows, 11)
    assert torch.equal(out, ref)
    if with_rows:
        assert (out[~mask] == 0).all()
    weight = torch.randn(x.shape, dtype=dtype)
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    (ref_grad,) = torch.autograd.grad((ref * weight).sum(), x)
    assert torch.equal(grad, ref_grad)
    dropped = 1 - (out[mask] != 0).double().mean().item()
    assert abs(dropped - 0.3) < 0.1


def test_dropout_kernel_rejects_rows_out_of_order(kernel):
    x = torch.randn(4, 3)
    with pytest.raises(RuntimeError, match="strictly increasing"):
        torch.ops.autoattend.dropout_rows(x, torch.tensor([2, 1]), 3, 0.5, 1)
    with pytest.raises(RuntimeError, match="strictly increasing"):
        torch.ops.autoattend.dropout_rows(x, torch.tensor([0, 4]), 3, 0.5, 1)
    with pytest.raises(RuntimeError, match="does not divide"):
        torch.ops.autoattend.dropout_rows(x, None, 5, 0.5, 1)


@pytest.mark.parametrize("value", [0.0, float("-inf")])
def test_fill_padded_kernel_is_masked_fill_for_any_strides(kernel, backend, value):
    _, mask = padded_batch([5, 2, 6], 6, 8, torch.float32)
    dense = torch.randn(3, 6, 8)
    strided = torch.randn(3, 8, 6).transpose(1, 2)  # a conv output's layout
    for x in (dense, strided, dense[:, :, ::2].repeat_interleave(2, dim=2)):
        x = x.clone().requires_grad_()
        weight = torch.randn(x.shape)
        results = []
        for name in ("fused", "torch"):
            backend(name)
            out = fill_padded(x, mask, value)
            (grad,) = torch.autograd.grad((out.clamp(min=-10) * weight).sum(), x)
            results.append((out.detach(), grad))
        assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
        assert results[0][0].is_contiguous()
        assert torch.equal(results[1][0], x.detach().masked_fill(~mask.unsqueeze(-1), value))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("fill", [0.0, float("-inf")])
def test_masked_layer_norm_kernel_is_layer_norm_then_fill(kernel, backend, dtype, tol, fill):
    torch.manual_seed(0)
    norm = nn.LayerNorm(64).to(dtype)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    # 72 rows: more than one of the kernel's 64-row chunks, with real rows on both sides of the
    # boundary (rows 63 and 64; a chunk one row short went unseen with 36 rows)
    x, mask = padded_batch([9, 1, 6, 3, 9, 2, 7, 5], 9, 64, dtype, seed=5)
    x = (x * 3 + 1).masked_fill(~mask.unsqueeze(-1), 7.0).transpose(0, 1).contiguous().transpose(0, 1)
    x.requires_grad_()
    weight = torch.randn(x.shape, dtype=dtype)
    results = []
    for name in ("fused", "torch"):
        backend(name)
        out = masked_layer_norm(norm, x, mask, fill)
        loss = (out.clamp(min=-50) * weight).sum()
        results.append((out.detach(), torch.autograd.grad(loss, [x, norm.weight, norm.bias])))
    # the reference is LayerNorm then the fill, written out here: the torch backend's result alone
    # would be compared with the kernel's own if the backend switch were broken
    direct = nn.functional.layer_norm(x, (64,), norm.weight, norm.bias, norm.eps).masked_fill(~mask.unsqueeze(-1), fill)
    direct_grads = torch.autograd.grad((direct.clamp(min=-50) * weight).sum(), [x, norm.weight, norm.bias])
    results.append((direct.detach(), direct_grads))
    (out, grads), (ref, ref_grads), (exact, exact_grads) = results
    assert out.is_contiguous() and (out[~mask] == fill).all()
    for other, other_grads in ((ref, ref_grads), (exact, exact_grads)):
        assert torch.allclose(out[mask], other[mask], atol=tol, rtol=tol)
        for a, b in zip(grads, other_grads):
            assert torch.allclose(a, b, atol=tol * 10, rtol=tol)
    assert (ref[~mask] == fill).all() and torch.allclose(ref[mask], exact[mask], atol=tol, rtol=tol)
    assert (grads[0][~mask] == 0).all()
    # without autograd (scoring) the kernel's other entry point: the same values and the same fill
    backend("fused")
    with torch.no_grad():
        assert torch.equal(masked_layer_norm(norm, x, mask, fill), out)


def test_masked_layer_norm_gradcheck(kernel):
    torch.manual_seed(0)
    x, mask = padded_batch([3, 1, 2], 3, 5, torch.float64, seed=1)
    x.requires_grad_()
    weight = torch.randn(5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)

    norm = nn.LayerNorm(5).double()
    del norm.weight, norm.bias  # plain tensors in their place, so that gradcheck can vary them

    def functional(x, weight, bias):
        norm.weight, norm.bias = weight, bias
        return masked_layer_norm(norm, x, mask)

    assert torch.autograd.gradcheck(functional, (x, weight, bias))


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_conv_over_time_is_conv1d_on_the_transposed_input(kernel_size):
    torch.manual_seed(0)
    conv = nn.Conv1d(8, 8, kernel_size, padding=kernel_size // 2).double()
    x = torch.randn(3, 7, 8, dtype=torch.float64, requires_grad=True)
    out = conv_over_time(x, conv)
    ref = conv(x.transpose(1, 2)).transpose(1, 2)
    assert out.shape == (3, 7, 8) and out.is_contiguous()
    assert torch.allclose(out, ref, atol=1e-12)
    weight = torch.randn(out.shape, dtype=torch.float64)
    grads = torch.autograd.grad((out * weight).sum(), [x, conv.weight, conv.bias])
    ref_grads = torch.autograd.grad((ref * weight).sum(), [x, conv.weight, conv.bias])
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-12)


def test_max_pool_op_is_max_pool1d_on_the_transposed_input(kernel, backend):
    torch.manual_seed(0)
    op = MaxPoolOp(8)
    x, mask = padded_batch([6, 1, 4], 6, 8, torch.float32, seed=3)
    x.requires_grad_()
    for name in ("fused", "torch"):
        backend(name)
        out = op(x, mask)
        h = op.norm(x).masked_fill(~mask.unsqueeze(-1), float("-inf"))
        ref = nn.functional.max_pool1d(h.transpose(1, 2), 3, stride=1, padding=1).transpose(1, 2)
        ref = ref.masked_fill(~mask.unsqueeze(-1), 0.0)
        assert torch.allclose(out, ref, atol=1e-6) and (out[~mask] == 0).all()
        weight = torch.randn(out.shape)
        for a, b in zip(torch.autograd.grad((out * weight).sum(), [x, op.norm.weight]),
                        torch.autograd.grad((ref * weight).sum(), [x, op.norm.weight])):
            assert torch.allclose(a, b, atol=1e-5)


def pooled_reference(h, mask, kernel_size):
    """max_pool1d over T with the padded positions at -inf, padded rows of the output zeroed."""
    h = h.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    ref = nn.functional.max_pool1d(h.transpose(1, 2), kernel_size, stride=1, padding=kernel_size // 2)
    return ref.transpose(1, 2).masked_fill(~mask.unsqueeze(-1), 0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_max_pool_kernel_is_max_pool1d_values_and_gradients(kernel, dtype, kernel_size):
    x, mask = padded_batch([6, 1, 4, 2, 5], 6, 8, dtype, seed=kernel_size)
    mask[4, 1] = False  # not only prefix masks: a padded position inside a sequence is skipped too
    # ties: equal values in one window, whose gradient goes to the first of them, as in max_pool1d
    x[0, 1:4, :3] = 0.5
    x[3, 0:2, 5] = -0.25
    x.requires_grad_()
    out = max_pool_time(x, mask, kernel_size // 2)
    ref = pooled_reference(x, mask, kernel_size)
    assert torch.equal(out, ref)
    upstream = torch.randn(out.shape, dtype=dtype)
    (got,) = torch.autograd.grad((out * upstream).sum(), [x])
    (want,) = torch.autograd.grad((ref * upstream).sum(), [x])
    assert torch.equal(got, want)
    with torch.inference_mode():
        assert torch.equal(max_pool_time(x.detach(), mask, kernel_size // 2), ref.detach())
    with pytest.raises(RuntimeError, match="reach must be"):
        torch.ops.autoattend.max_pool_time(x.detach(), mask, -1, False)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_conv_op_training_skips_a_zeroing_without_changing_anything(kernel, kernel_size, backend):
    """In training the dropout zeroes the padded rows, so ConvOp leaves out the zeroing before
    the ReLU: the same outputs and gradients as with it, under both backends."""
    torch.manual_seed(1)
    op = ConvOp(8, kernel_size, dropout=0.2).train()
    x, mask = padded_batch([6, 2, 5], 6, 8, torch.float32, seed=2)
    x.requires_grad_()

    def with_zeroing():
        if kernel_size == 1:
            h = nn.functional.linear(op.norm(x), op.conv.weight.squeeze(-1), op.conv.bias)
        else:
            h = op.conv(zero_padded(op.norm(x), mask).transpose(1, 2)).transpose(1, 2)
        return op.dropout(nn.functional.relu(zero_padded(h, mask)), mask=mask)

    for name in ("fused", "torch"):
        backend(name)
        outs = []
        for fn in (lambda: op(x, mask), with_zeroing):
            with dropout_generator(torch.Generator().manual_seed(5)):
                out = fn()
            outs.append((out, torch.autograd.grad(out.pow(2).sum(), [x, op.conv.weight, op.norm.weight])))
        (out, grads), (ref, ref_grads) = outs
        assert (out[~mask] == 0).all() and (out[mask] == 0).any()
        assert torch.allclose(out, ref, atol=1e-6)
        for a, b in zip(grads, ref_grads):
            assert torch.allclose(a, b, atol=1e-5)


def test_masked_attention_uses_the_kernel_only_for_cpu_inference(kernel, backend, monkeypatch):
    mask = torch.arange(6)[None, :] < torch.tensor([6, 2, 4])[:, None]
    q, k, v = attention_inputs(mask, 16, torch.float32)
    with torch.inference_mode():
        backend("torch")
        aten = masked_attention(q, k, v, mask, 4)
        backend("auto")
        fused = masked_attention(q, k, v, mask, 4)
    assert torch.allclose(fused[mask], aten[mask], atol=2e-6)
    calls = []
    real = torch.ops.autoattend

    class Spy:  # counts the inference kernel's calls, passes the other ops through
        def __getattr__(self, name):
            return getattr(real, name)

        def attention(self, *args):
            calls.append(1)
            return real.attention(*args)

    monkeypatch.setattr(torch.ops, "autoattend", Spy())
    with torch.inference_mode():
        masked_attention(q, k, v, mask, 4)
    assert calls == [1]
    with torch.no_grad():
        masked_attention(q, k, v, mask, 4, dropout_p=0.1)  # dropout: never the kernel
    masked_attention(q.requires_grad_(), k, v, mask, 4)  # autograd: never the kernel
    backend("torch")
    with torch.inference_mode():
        masked_attention(q, k, v, mask, 4)
    assert calls == [1]


def test_supernet_scoring_logits_match_the_torch_backend(kernel, backend):
    space, model, tokens, mask = small_supernet(("identity", "conv1", "gru", "conv3"), heads=4, rows=9, width=11,
                                                seed=3)
    rng = random.Random(1)
    archs = [a for a in (space.sample(rng) for _ in range(40)) if sum(layer.kind == "attn" for layer in a.layers) >= 2][:5]
    assert archs
    for arch in archs:
        with torch.inference_mode():
            backend("auto")
            fused = model(tokens, mask, arch)
            backend("torch")
            plain = model(tokens, mask, arch)
        assert torch.allclose(fused, plain, atol=1e-5), (fused - plain).abs().max()


def test_torch_backend_never_calls_the_kernel(kernel, backend, monkeypatch):
    """``hardware.kernels=torch``: no op of the extension runs, in training (forward and backward,
    dropout on) or in inference, over architectures that use every op and both layer kinds; the
    same calls under ``auto`` do reach it (so the spy sees them). Spying on the GRU entry point
    alone let the layer norm, attention, padding, pooling and dropout kernels through."""
    calls = []
    real = torch.ops.autoattend

    class Spy:  # records every kernel op called through torch.ops.autoattend
        def __getattr__(self, name):
            op = getattr(real, name)

            def counted(*args, **kwargs):
                calls.append(name)
                return op(*args, **kwargs)
            return counted

    space, model, tokens, mask = small_supernet(("identity", "conv1", "conv3", "maxpool3", "gru"), heads=4, rows=9,
                                                width=11, seed=2)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(12)]
    assert {layer.kind for a in archs for layer in a.layers} == {"add", "attn"}
    monkeypatch.setattr(torch.ops, "autoattend", Spy())

    def run_all():
        for arch in archs:
            model.train()
            model(tokens, mask, arch).sum().backward()
            model.eval()
            with torch.inference_mode():
                model(tokens, mask, arch)

    backend("torch")
    run_all()
    assert calls == [] and cpu_kernels.status() == "torch ops (hardware.kernels=torch)"
    backend("auto")
    run_all()
    assert {"attention", "masked_layer_norm", "fill_padded"} <= set(calls), sorted(set(calls))


def test_backend_errors(backend, kernel):
    with pytest.raises(AutoAttendError, match="unknown backend 'cudnn'"):
        cpu_kernels.set_backend("cudnn")
    backend("fused")
    with pytest.raises(AutoAttendError, match="float32/float64 tensors on the CPU without autocast, got torch.bfloat16"):
        cpu_kernels.use_kernel(torch.zeros(2, 3, dtype=torch.bfloat16))
    assert cpu_kernels.use_kernel(torch.zeros(2, 3))
    with pytest.raises(AutoAttendError, match=r"without autocast, under CPU autocast \(hardware.precision mixed\)"), \
            torch.autocast("cpu", dtype=torch.bfloat16):
        cpu_kernels.use_kernel(torch.zeros(2, 3))
    backend("auto")
    assert not cpu_kernels.use_kernel(torch.zeros(2, 3, dtype=torch.bfloat16))  # falls back quietly


def test_loading_the_kernel_keeps_denormals(kernel):
    # built with -ffast-math at compile time only: linking crtfastmath.o would set flush-to-zero
    # for the whole process and change every other computation's results
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    assert (tiny * 0.5).item() != 0.0


def run_python(code: str, env_extra: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_auto_falls_back_to_nn_gru_when_the_kernel_cannot_be_built(tmp_path):
    code = """
        import logging, torch
        logging.basicConfig(level=logging.WARNING)
        from src.models import cpu_kernels
        from src.models.ops import GRUOp, masked_attention
        from src.utils.errors import AutoAttendError
        op = GRUOp(4, dropout=0.0)
        mask = torch.tensor([[True, True, False], [True, True, True]])
        x = torch.randn(2, 3, 4)
        assert torch.allclose(op(x, mask), op(x, mask, path="packed"))
        with torch.inference_mode():
            q = torch.randn(2, 3, 4)
            out = masked_attention(q, q, q, mask, 2)  # the torch path
        print("STATUS", cpu_kernels.status())
        cpu_kernels.set_backend("fused")
        try:
            op(x, mask)
        except AutoAttendError as err:
            print("FUSED", err)
    """
    # a compiler that does not exist and an empty build folder: the build must fail
    result = run_python(code, {"CXX": str(tmp_path / "no-such-compiler"), "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")})
    assert result.returncode == 0, result.stderr
    assert "fused CPU kernels unavailable, using the torch paths" in result.stderr
    assert "STATUS torch ops (kernels unavailable:" in result.stdout
    assert "FUSED hardware.kernels=fused: the kernels could not be built:" in result.stdout


def test_the_lock_of_an_interrupted_build_is_removed_at_once(tmp_path, monkeypatch):
    """A build stopped by Ctrl-C leaves torch's ``lock`` file: the next load removes it at once
    (no live process holds the build's OS lock) instead of waiting on it."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    folder = cpu_kernels._build_directory("probe")
    assert folder.is_dir() and tmp_path in folder.parents
    (folder / "lock").write_text("")
    with cpu_kernels._build_owner(folder):
        assert not (folder / "lock").exists()


@pytest.mark.skipif(cpu_kernels.fcntl is None, reason="OS locks need fcntl")
def test_a_running_build_is_waited_for_and_its_lock_kept(tmp_path, caplog):
    """While another process holds the build's OS lock (it is building), a load waits for it and
    leaves that build's torch lock alone."""
    folder = tmp_path / "probe"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time, pathlib\n"
        f"folder = pathlib.Path({str(folder)!r})\n"
        "owner = open(folder / 'owner.lock', 'a'); fcntl.flock(owner, fcntl.LOCK_EX)\n"
        "(folder / 'lock').write_text(''); print('held', flush=True); time.sleep(1.5)\n"
        "(folder / 'lock').unlink()\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.perf_counter()
    with caplog.at_level("INFO", logger=cpu_kernels.log.name), cpu_kernels._build_owner(folder):
        waited = time.perf_counter() - start
    holder.wait(timeout=30)
    assert waited > 0.5 and holder.returncode == 0  # the holder removed its own lock: it was not taken
    assert "waiting for another process building" in caplog.text
    assert "removing the build lock" not in caplog.text


@pytest.fixture
def onednn():
    if not linear_mod.onednn_available():
        pytest.skip("this torch build has no oneDNN linear op")


@pytest.mark.parametrize("shape", [(37, 64), (3, 11, 24), (0, 8)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_onednn_linear_matches_f_linear_values_and_gradients(onednn, backend, shape, with_bias):
    backend("auto")
    g = torch.Generator().manual_seed(len(shape))
    x = torch.randn(*shape, generator=g, requires_grad=True)
    weight = torch.randn(48, shape[-1], generator=g, requires_grad=True)
    bias = torch.randn(48, generator=g, requires_grad=True) if with_bias else None
    out = linear_mod.linear(x, weight, bias)
    ref = nn.functional.linear(x, weight, bias)
    assert out.shape == ref.shape == (*shape[:-1], 48)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
    upstream = torch.randn(out.shape, generator=g)
    params = [x, weight] + ([bias] if with_bias else [])
    grads = torch.autograd.grad((out * upstream).sum(), params)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), params)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-5), (a - b).abs().max()


def test_onednn_linear_runs_only_for_cpu_float32_outside_the_torch_backend(onednn, backend, monkeypatch):
    calls = []
    real = linear_mod._product
    monkeypatch.setattr(linear_mod, "_product", lambda *a: calls.append(1) or real(*a))
    w = torch.randn(6, 5)
    backend("auto")
    linear_mod.linear(torch.randn(4, 5), w)
    assert calls == [1]
    linear_mod.linear(torch.randn(4, 5, dtype=torch.float64), w.double())  # oneDNN has no float64
    backend("torch")
    linear_mod.linear(torch.randn(4, 5), w)
    assert calls == [1]
    backend("auto")
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)  # the user switched oneDNN off
    linear_mod.linear(torch.randn(4, 5), w)
    assert calls == [1]
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", True)
    # only the weight needs a gradient: the backward pass gives it and nothing for x
    backend("auto")
    w.requires_grad_(True)
    x = torch.randn(4, 5)
    (dw,) = torch.autograd.grad(linear_mod.linear(x, w).sum(), [w])
    assert torch.allclose(dw, torch.ones(4, 6).t() @ x, atol=1e-5)
    # only the bias needs one (weight and input frozen): the product still records a backward
    # (mutation audit of the kernels 2026-12-05: a check of x and weight alone left the bias without)
    bias = torch.randn(6, requires_grad=True)
    upstream = torch.randn(4, 6)
    out = linear_mod.linear(x, w.detach(), bias)
    assert torch.allclose(out, nn.functional.linear(x, w.detach(), bias), atol=1e-5)
    (db,) = torch.autograd.grad((out * upstream).sum(), [bias])
    assert torch.allclose(db, upstream.sum(0), atol=1e-5)


def test_mask_derived_plans_are_reused_only_for_the_same_unmodified_mask():
    mask = torch.tensor([[True, True, False], [True, True, True]])
    plan = fused_gru.pack_plan(mask)
    assert fused_gru.pack_plan(mask) is plan
    assert torch.equal(plan.forward_index, fused_gru.PackPlan(mask).forward_index)
    other = mask.clone()
    assert fused_gru.pack_plan(other) is not plan
    other[0, 2] = True  # in place: the version counter moves, so the plan is rebuilt
    rebuilt = fused_gru.pack_plan(other)
    assert rebuilt.batch_sizes.tolist() == [2, 2, 2]
    with torch.inference_mode():
        fresh = torch.tensor([[True, False]])  # an inference tensor: no version counter, never cached
        assert fused_gru.pack_plan(fresh).batch_sizes.tolist() == [1]
    # real_rows: the same cache, a separate entry
    rows = real_rows(other)
    assert real_rows(other) is rows and fused_gru.pack_plan(other) is rebuilt
    assert rows.tolist() == [0, 1, 2, 3, 4, 5]
    other[1, 0] = False
    assert real_rows(other).tolist() == [0, 1, 2, 4, 5]


def test_onednn_cache_capacity_defaults_to_the_project_value_unless_exported():
    code = ("import os; os.environ['LRU_CACHE_CAPACITY'] = '7'; import src.models.linear as L; "
            "print(os.environ['LRU_CACHE_CAPACITY'], os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'], "
            "L.ONEDNN_CACHE_CAPACITY)")
    env = {k: v for k, v in os.environ.items() if k not in ("LRU_CACHE_CAPACITY", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    exported, primitive, default = out.stdout.split()
    assert exported == "7" and primitive == default == "64"


@pytest.mark.parametrize("hidden", [8, 64])
def test_gru_inference_path_gathers_once_and_scatters_in_the_kernel(kernel, hidden):
    torch.manual_seed(hidden)
    gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
    x, mask = padded_batch([5, 1, 3, 5, 2], 6, hidden, torch.float32, seed=hidden)
    with torch.no_grad():
        scored = fused_gru.bidirectional_gru(gru, x, mask)
    trained = fused_gru.bidirectional_gru(gru, x.clone().requires_grad_(), mask)  # the autograd path
    ref = reference(gru, x, mask)
    assert torch.allclose(scored, trained, atol=1e-5) and torch.allclose(scored, ref.masked_fill(~mask[..., None], 0), atol=2e-5)
    assert (scored[~mask] == 0).all()
    plan = fused_gru.PackPlan(mask)
    assert torch.equal(plan.forward_index[plan.backward_in_forward], plan.backward_index)
    gi = torch.zeros(len(plan.forward_index), 3 * hidden)
    out = torch.zeros(mask.numel(), hidden)
    with pytest.raises(RuntimeError, match="out_rows out of range"):
        torch.ops.autoattend.gru_forward_scatter(gi, None, gru.bias_ih_l0, gru.weight_hh_l0, gru.bias_hh_l0,
                                                 plan.batch_sizes, out, plan.forward_index + mask.numel(), False)


def test_narrow_convolutions_pack_phrase_batches_but_not_sentence_batches():
    """At D < 128 only a batch whose packing is at most 0.3 of its rows is packed: SST-5 phrase
    batches (13 % real tokens: 0.10-0.28) are, sentence batches (42 %: 0.36-0.56) are not; from
    D=128 both are."""
    def mask_of(lengths, width=48):
        return torch.arange(width) < torch.tensor(lengths).unsqueeze(1)

    phrases = ops_mod.PackedConvPlan(mask_of([48] + [4] * 127), 1)  # 13 % real, like a phrase batch
    sentences = ops_mod.PackedConvPlan(mask_of([48] + [20] * 127), 1)  # 43 % real
    assert phrases.share <= ops_mod.packed_share_limit(64) < sentences.share <= ops_mod.packed_share_limit(128)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("holes", [False, True])
def test_conv_op_over_packed_sequences_matches_the_padded_batch(kernel, kernel_size, holes, monkeypatch):
    """A heavily padded batch runs its convolutions over the sequences laid end to end
    (ops.PackedConvPlan); outputs and every gradient are those of the padded batch."""
    x, mask = padded_batch([9, 1, 2, 3, 1], 9, 8, torch.float64, seed=kernel_size)
    if holes:  # not only prefix masks: a padded position inside a sequence stays a zero neighbour
        mask[0, 4] = False
        mask[3, 1] = False
    assert ops_mod.packed_plan(mask, kernel_size // 2).share <= ops_mod.PACKED_CONV_MAX_SHARE
    torch.manual_seed(0)
    op = ConvOp(8, kernel_size, dropout=0.2).double().train()
    upstream = torch.randn(x.shape, dtype=torch.float64)
    results = {}
    for share in (ops_mod.PACKED_CONV_MAX_SHARE, 0.0):  # packed (at D=8 too), then the padded batch
        monkeypatch.setattr(ops_mod, "PACKED_CONV_MAX_SHARE_NARROW", share)
        xi = x.clone().requires_grad_()
        with dropout_generator(torch.Generator().manual_seed(3)):
            out = op(xi, mask)
        params = [xi, op.norm.weight, op.norm.bias, op.conv.weight, op.conv.bias]
        results[share] = (out, torch.autograd.grad((out * upstream).sum(), params))
        mask = mask.clone()  # a fresh mask: the plan cache keys on the tensor
    (packed, packed_grads), (padded, padded_grads) = results.values()
    assert torch.allclose(packed, padded, atol=1e-12) and (packed[~mask] == 0).all()
    for a, b in zip(packed_grads, padded_grads):
        assert torch.allclose(a, b, atol=1e-12)


def test_each_checkout_builds_its_kernels_in_its_own_folder(monkeypatch):
    """The build file names the sources by absolute path: two checkouts sharing one build folder
    would rebuild each other's kernels every time, so the folder's name depends on the checkout
    (and on nothing else that varies between two calls)."""
    here = cpu_kernels._extension_name()
    assert here == cpu_kernels._extension_name()
    monkeypatch.setattr(cpu_kernels, "SOURCES", tuple(Path("/elsewhere/src/models") / p.name
                                                      for p in cpu_kernels.SOURCES))
    assert cpu_kernels._extension_name() != here and cpu_kernels._extension_name().startswith("autoattend_kernels_")


def test_a_new_compile_flag_builds_in_a_new_folder(monkeypatch):
    """A library built with other flags (before ``-mprefer-vector-width=512``) is not the one asked
    for: the folder's name depends on the flags, so the first run after a change builds afresh. On
    every machine: outside x86 there is no ``-mprefer`` flag to drop (the test failed there), so the
    last flag is dropped and one is added, each a new folder."""
    here = cpu_kernels._extension_name()
    monkeypatch.setattr(cpu_kernels, "CFLAGS", cpu_kernels.CFLAGS[:-1])
    dropped = cpu_kernels._extension_name()
    monkeypatch.setattr(cpu_kernels, "CFLAGS", [*cpu_kernels.CFLAGS, "-DAUTOATTEND_TEST_FLAG"])
    assert len({here, dropped, cpu_kernels._extension_name()}) == 3


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="an x86 compiler flag")
def test_loops_the_compiler_vectorises_are_built_a_whole_avx512_register_wide():
    """GCC's tuning for Intel's AVX-512 cores vectorised the kernels' own loops 256 bits wide; the
    GRU's gates ran half as wide as its step products (scoring 12 % slower, experiments/README.md)."""
    assert "-mprefer-vector-width=512" in cpu_kernels.CFLAGS and "-march=native" in cpu_kernels.CFLAGS


def test_a_rebuild_after_the_sources_changed_is_said(monkeypatch, tmp_path, caplog):
    """ninja rebuilds the kernels silently when a source is newer than the library (after a pull):
    that takes a while, so the log says why; an up-to-date library loads without a word."""
    import logging

    import torch.utils.cpp_extension as cpp_extension

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", lambda **kwargs: None)
    build_dir = cpu_kernels._build_directory(cpu_kernels._extension_name())
    library = build_dir / f"{cpu_kernels._extension_name()}.so"
    library.write_bytes(b"")
    newest = max(s.stat().st_mtime for s in cpu_kernels.SOURCES)
    for age, said in ((-100, True), (+100, False)):
        os.utime(library, (newest + age, newest + age))
        monkeypatch.setattr(cpu_kernels, "_loaded", False)
        monkeypatch.setattr(cpu_kernels, "_error", None)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=cpu_kernels.__name__):
            assert cpu_kernels.kernel_error() is None
        assert ("rebuilding the fused CPU kernels" in caplog.text) == said, caplog.text


def test_stream_keep_keeps_a_number_exactly_at_the_threshold():
    """A number of the stream whose top 24 bits equal ``p`` x 2^24 is kept (``>=``, as
    ``torch.rand(shape) >= p``): the first number of seed 12345 is made the threshold. Checked
    against SplitMix64 in plain Python, without the kernel (mutation audit 2026-12-05)."""
    mask = (1 << 64) - 1
    z = (12345 + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    top = (z ^ (z >> 31)) >> 40
    p = top / 16777216.0  # exact in float32: a 24-bit numerator
    assert stream_keep(1, p, 12345).tolist() == [True]
    assert stream_keep(1, (top + 1) / 16777216.0, 12345).tolist() == [False]


def test_keep_mask_draws_half_precision_uniforms_in_float32_off_the_cpu(monkeypatch):
    """On another device the mask is ``torch.rand(shape) >= p`` in float32 for half-precision
    ``like`` (bfloat16's 8-bit uniforms moved the keep rate: 0.3009 for p = 0.7), float64 for
    float64. Checked on the meta device, whose tensors take the GPU's path (mutation audit 2026-12-05)."""
    drawn = []
    real_rand = torch.rand

    def rand(*args, dtype=None, **kwargs):
        drawn.append(dtype)
        return real_rand(*args, dtype=dtype, **kwargs)

    monkeypatch.setattr(torch, "rand", rand)
    for dtype, expected in ((torch.bfloat16, torch.float32), (torch.float16, torch.float32),
                            (torch.float32, torch.float32), (torch.float64, torch.float64)):
        drawn.clear()
        keep = keep_mask((4, 3), 0.7, torch.zeros(1, dtype=dtype, device="meta"))
        assert drawn == [expected] and keep.shape == (4, 3) and keep.dtype == torch.bool, dtype


def test_mask_derived_plans_are_kept_per_thread():
    """Protects ``per_mask``'s per-thread table: another thread builds its own value for the same
    mask (the table is never shared between threads), and its entry does not replace this one's."""
    import threading

    from src.models.mask_cache import per_mask

    mask = torch.tensor([[True, False]])
    builds = []

    def build(m):
        builds.append(threading.get_ident())
        return object()

    mine = per_mask("test_per_thread", mask, build)
    theirs = []
    worker = threading.Thread(target=lambda: theirs.extend([per_mask("test_per_thread", mask, build),
                                                            per_mask("test_per_thread", mask, build)]))
    worker.start()
    worker.join()
    assert len(builds) == 2 and builds[0] != builds[1]
    assert theirs[0] is theirs[1] and theirs[0] is not mine
    assert per_mask("test_per_thread", mask, build) is mine and len(builds) == 2


def test_a_build_shared_read_only_is_loaded_not_given_up(kernel, tmp_path):
    """A current build in a folder this process cannot write (an image's, another user's, a read-only mount):
    torch's ``load()`` creates its ``lock`` file in the build folder first, which failed, and the run went on
    with the torch paths and a warning. Now the library is loaded as it is (nothing is to be built). The
    folder is made read-only by a bind mount in a private mount namespace (root ignores file modes)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -m (root) to mount the build folder read-only")
    name = cpu_kernels._extension_name()
    built = cpu_kernels._build_directory(name)
    root = tmp_path / "extensions"
    shared = root / built.parent.name / name
    shutil.copytree(built, shared)  # copy2: the library's mtime (newer than the sources) is kept
    (shared / "lock").unlink(missing_ok=True)
    probe = "from src.models import cpu_kernels; print(cpu_kernels.kernel_error()); print(cpu_kernels.status())"
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(shared), sys.executable, "-c", probe],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TORCH_EXTENSIONS_DIR": str(root), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0] == "None", proc.stdout + proc.stderr[-2000:]
    assert "unavailable" not in proc.stderr and not (shared / "lock").exists()
