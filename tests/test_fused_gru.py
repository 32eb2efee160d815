"""The fused CPU GRU kernel computes what ``nn.GRU`` computes, and the backend switch behaves."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from src.models import fused_gru
from src.models.ops import GRUOp
from src.models.text import TextClassifier
from src.space import FunctionalSpace
from src.utils.errors import AutoAttendError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kernel():
    error = fused_gru.kernel_error()
    if error is not None:
        pytest.skip(f"the fused GRU kernel cannot be built on this machine: {error}")


@pytest.fixture
def backend():
    """Restores the process-wide GRU backend after a test changes it."""
    before = fused_gru.get_backend()
    yield fused_gru.set_backend
    fused_gru.set_backend(before)


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
def test_bidirectional_gru_matches_nn_gru_outputs_and_every_gradient(kernel, dtype, tol):
    torch.manual_seed(0)
    gru = nn.GRU(5, 7, batch_first=True, bidirectional=True).to(dtype)  # input and hidden sizes differ
    x, mask = padded_batch([6, 1, 4, 9, 2, 9, 5], 11, 5, dtype)  # ties, a 1-token row, 2 padded columns
    weights = torch.randn(7, 11, 7, dtype=dtype, generator=torch.Generator().manual_seed(1))
    ref = outputs_and_grads(lambda xi: reference(gru, xi, mask), gru, x, weights)
    got = outputs_and_grads(lambda xi: fused_gru.bidirectional_gru(gru, xi, mask), gru, x, weights)
    assert got[0].shape == (7, 11, 7)
    assert torch.equal(got[0][~mask], torch.zeros(int((~mask).sum()), 7, dtype=dtype))
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
    assert torch.autograd.gradcheck(lambda a, w, b: fused_gru.recurrence(a, w, b, batch_sizes), (gi, w_hh, b_hh))


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


def test_supernet_logits_and_gradients_match_the_torch_backend(kernel, backend):
    space = FunctionalSpace(4, ops=("identity", "conv1", "gru"))
    torch.manual_seed(0)
    emb = torch.randn(30, 12)
    model = TextClassifier.supernet(emb, 3, space, dim=16, heads=2, sharing="full").eval()
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(1, 10, (5,), generator=g)
    mask = torch.arange(9)[None, :] < lengths[:, None]
    tokens = torch.randint(1, 30, (5, 9), generator=g).masked_fill(~mask, 0)
    rng = random.Random(0)
    archs = [a for a in (space.sample(rng) for _ in range(40)) if any("gru" in str(layer) for layer in a.layers)][:4]
    assert archs
    for arch in archs:
        runs = []
        for name in ("auto", "torch"):
            backend(name)
            model.zero_grad()
            logits = model(tokens, mask, arch)
            logits.square().sum().backward()
            runs.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        (la, ga), (lb, gb) = runs
        assert torch.allclose(la, lb, atol=1e-5)
        assert ga.keys() == gb.keys()
        assert any(".gru." in n for n in ga)
        for name in ga:
            assert torch.allclose(ga[name], gb[name], atol=1e-5), name


def test_torch_backend_never_calls_the_kernel(backend, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("kernel called")

    monkeypatch.setattr(fused_gru, "bidirectional_gru", fail)
    backend("torch")
    op = GRUOp(4, dropout=0.0)
    x, mask = padded_batch([3, 2], 3, 4, torch.float32)
    assert op(x, mask).shape == (2, 3, 4)
    assert fused_gru.status() == "torch nn.GRU (hardware.gru=torch)"


def test_backend_errors(backend, kernel):
    with pytest.raises(AutoAttendError, match="unknown GRU backend 'cudnn'"):
        fused_gru.set_backend("cudnn")
    backend("fused")
    with pytest.raises(AutoAttendError, match="float32/float64 tensors on the CPU, got torch.bfloat16"):
        fused_gru.use_kernel(torch.zeros(2, 3, dtype=torch.bfloat16))
    assert fused_gru.use_kernel(torch.zeros(2, 3))
    backend("auto")
    assert not fused_gru.use_kernel(torch.zeros(2, 3, dtype=torch.bfloat16))  # falls back quietly


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
        from src.models import fused_gru
        from src.models.ops import GRUOp
        from src.utils.errors import AutoAttendError
        op = GRUOp(4, dropout=0.0)
        mask = torch.tensor([[True, True, False], [True, True, True]])
        x = torch.randn(2, 3, 4)
        assert torch.allclose(op(x, mask), op(x, mask, path="packed"))
        print("STATUS", fused_gru.status())
        fused_gru.set_backend("fused")
        try:
            op(x, mask)
        except AutoAttendError as err:
            print("FUSED", err)
    """
    # a compiler that does not exist and an empty build folder: the build must fail
    result = run_python(code, {"CXX": str(tmp_path / "no-such-compiler"), "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")})
    assert result.returncode == 0, result.stderr
    assert "fused GRU kernel unavailable, using torch's nn.GRU" in result.stderr
    assert "STATUS torch nn.GRU (kernel unavailable:" in result.stdout
    assert "FUSED hardware.gru=fused: the kernel could not be built:" in result.stdout


def test_a_stale_build_lock_is_removed_and_a_fresh_one_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    first = fused_gru._build_directory("probe")
    assert first.is_dir() and tmp_path in first.parents
    lock = first / "lock"
    lock.write_text("")
    assert fused_gru._build_directory("probe") == first and lock.exists()  # a build may be running
    old = lock.stat().st_mtime - fused_gru.STALE_LOCK_S - 60
    os.utime(lock, (old, old))
    fused_gru._build_directory("probe")
    assert not lock.exists()  # left by a killed build: later loads would wait for it forever
