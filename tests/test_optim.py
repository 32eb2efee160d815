"""The supernet's Adam: float32 state is torch.optim.Adam; bfloat16 state (the labelled memory
option) is the same update with stochastically rounded moments."""

from __future__ import annotations

import os
import random

import lightning.pytorch as pl
import pytest
import torch

from src.lit.modules import SupernetModule
from src.models.optim import (LowPrecisionStateAdam, OffloadedMoments, check_offload, check_state_dtype,
                              materialise_adam_state, stochastic_round_to_bf16, supernet_adam)
from src.space import FunctionalSpace
from src.utils.errors import AutoAttendError
from tests.test_models import _tiny_loader, supernet


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(40, 30, generator=g).requires_grad_(), torch.randn(7, generator=g).requires_grad_(),
            torch.randn(3, 5, generator=g).requires_grad_()]


def _train(params, opt, steps, seed=1, start=0):
    """Feed ``steps`` gradients (the same sequence for every optimizer; a constant pull plus noise;
    parameter 2 skips every third step, so step counts differ between parameters)."""
    g = torch.Generator().manual_seed(seed)
    for t in range(start + steps):
        grads = [torch.randn(p.shape, generator=g) + 0.5 for p in params]
        if t < start:
            continue
        for i, (p, grad) in enumerate(zip(params, grads)):
            p.grad = None if (i == 2 and t % 3 == 0) else grad
        opt.step()


def test_float32_state_is_exactly_torch_adam():
    ref, ours = _params(), _params()
    _train(ref, torch.optim.Adam(ref, lr=1e-2, weight_decay=1e-3), 40)
    _train(ours, LowPrecisionStateAdam(ours, lr=1e-2, weight_decay=1e-3, state_dtype=torch.float32), 40)
    for a, b in zip(ref, ours):
        assert torch.equal(a, b)
    assert isinstance(supernet_adam(_params(), lr=1e-3), torch.optim.Adam)


def test_bfloat16_state_halves_the_moments_and_stays_close_to_float32_adam():
    ref, ours, start = _params(), _params(), _params()
    opt = supernet_adam(ours, lr=5e-2, weight_decay=1e-3, state_dtype="bfloat16")
    assert isinstance(opt, LowPrecisionStateAdam)
    _train(ref, torch.optim.Adam(ref, lr=5e-2, weight_decay=1e-3), 40)
    _train(ours, opt, 40)
    for p in ours:
        assert opt.state[p]["exp_avg"].dtype == opt.state[p]["exp_avg_sq"].dtype == torch.bfloat16
    assert opt.state[ours[2]]["step"] == 40 - 14  # skipped when it had no gradient
    for a, b, s in zip(ref, ours, start):
        moved = (a - s).abs().max()
        assert moved > 0.5  # the parameters did move ...
        assert (a - b).abs().max() < 0.02 * moved  # ... and both optimizers moved them alike
    fp32 = materialise_adam_state(torch.optim.Adam(_params(), lr=1e-3))
    bf16 = materialise_adam_state(supernet_adam(_params(), lr=1e-3, state_dtype="bfloat16"))
    assert fp32 == 2 * 4 * sum(p.numel() for p in _params()) and bf16 * 2 == fp32


def test_stochastic_rounding_picks_a_neighbour_and_is_unbiased():
    x = torch.tensor([1.0 + 2 ** -10, -(3.0 + 3 * 2 ** -9), 0.3, 1e-20])
    draws = torch.stack([stochastic_round_to_bf16(x.clone(), torch.Generator().manual_seed(s))
                         for s in range(4000)]).float()
    down = x.to(torch.bfloat16).float()
    for i in range(len(x)):
        values = set(draws[:, i].tolist())
        assert len(values) <= 2 and all(abs(v - x[i].item()) <= abs(x[i].item()) * 2 ** -7 for v in values)
        assert draws[:, i].mean().item() == pytest.approx(x[i].item(), rel=2e-4)
    assert down[0].item() == 1.0  # round-to-nearest would lose the 2^-10 entirely


def test_bfloat16_second_moment_still_decays():
    """beta2 = 0.999 changes the second moment by less than bfloat16's spacing each step: with
    round-to-nearest it would never decay; with stochastic rounding it decays as in float32."""
    p = torch.zeros(2000, requires_grad=True)
    opt = LowPrecisionStateAdam([p], lr=1e-3, state_dtype=torch.bfloat16)
    p.grad = torch.ones(2000)
    opt.step()
    v0 = opt.state[p]["exp_avg_sq"].float().mean().item()
    p.grad = torch.zeros(2000)
    for _ in range(1000):
        opt.step()
    v = opt.state[p]["exp_avg_sq"].float().mean().item()
    assert v == pytest.approx(v0 * 0.999 ** 1000, rel=0.03)


@pytest.mark.parametrize("flat_before, flat_after", [(True, True), (False, True), (True, False)])
def test_resumed_bfloat16_adam_continues_where_it_stopped(flat_before, flat_after, tmp_path):
    straight = _params()
    _train(straight, LowPrecisionStateAdam(straight, lr=1e-2, seed=5), 20)
    first = _params()
    opt = LowPrecisionStateAdam(first, lr=1e-2, seed=5, flat_state=flat_before)
    _train(first, opt, 10)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    resumed = [p.detach().clone().requires_grad_() for p in first]
    # the seed is overwritten by the saved generator
    opt2 = LowPrecisionStateAdam(resumed, lr=1e-2, seed=99, flat_state=flat_after)
    opt2.load_state_dict(torch.load(tmp_path / "opt.pt"))
    assert all(opt2.state[p]["exp_avg"].dtype == torch.bfloat16 for p in resumed)
    _train(resumed, opt2, 10, start=10)
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)


def test_flat_state_is_one_buffer_per_moment_and_updates_as_lazy_state():
    lazy, flat = _params(), _params()
    lazy_opt = LowPrecisionStateAdam(lazy, lr=1e-2, flat_state=False)
    flat_opt = LowPrecisionStateAdam(flat, lr=1e-2)
    assert not lazy_opt.state and len(flat_opt.state) == len(flat)
    storages = {flat_opt.state[p][key].untyped_storage().data_ptr() for p in flat for key in ("exp_avg", "exp_avg_sq")}
    assert len(storages) == 2
    _train(lazy, lazy_opt, 15)
    _train(flat, flat_opt, 15)
    for a, b in zip(lazy, flat):
        assert torch.equal(a, b)
        assert torch.equal(lazy_opt.state[a]["exp_avg_sq"], flat_opt.state[b]["exp_avg_sq"])


@pytest.mark.parametrize("state_dtype", ["float32", "bfloat16"])
def test_materialised_state_gives_the_same_updates(state_dtype):
    lazy, eager = _params(), _params()
    _train(lazy, supernet_adam(lazy, lr=1e-2, state_dtype=state_dtype), 12)
    opt = supernet_adam(eager, lr=1e-2, state_dtype=state_dtype)
    materialise_adam_state(opt)
    assert all(float(opt.state[p]["step"]) == 0 for p in eager)
    _train(eager, opt, 12)
    for a, b in zip(lazy, eager):
        assert torch.equal(a, b)


def test_unknown_state_dtype_names_the_key():
    with pytest.raises(AutoAttendError, match=r"supernet.optimizer_state: expected one of float32, bfloat16, got 'fp16'"):
        check_state_dtype("fp16")
    with pytest.raises(AutoAttendError, match="bench.optimizer_state"):
        check_state_dtype("half", "bench.optimizer_state")


def test_supernet_module_trains_with_bfloat16_state_and_touches_only_sampled_weights(tmp_path):
    space = FunctionalSpace(4)
    model = supernet(space, "full")
    module = SupernetModule(model, space, archs_per_step=3, lr=0.3, clip=5.0, seed=11, monitor_archs=0,
                            optimizer_state="bfloat16")
    used = set()
    for a in space.sample_distinct(3, random.Random(11)):  # what the module's seeded RNG draws first
        used |= {id(p) for p in model.used_parameters(a).values()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(module, _tiny_loader())
    opt = trainer.optimizers[0]
    assert isinstance(opt, LowPrecisionStateAdam)
    changed = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        assert opt.state[p]["exp_avg"].dtype == torch.bfloat16, name  # allocated for all at once
        if opt.state[p]["step"]:
            assert id(p) in used and opt.state[p]["step"] == 1, name
            changed += not torch.equal(p, before[name])
        else:
            assert torch.equal(p, before[name]), name
    assert changed > 0


def _resident_kb_of_offloaded_moments() -> int:
    """Resident kB of this process's mappings of offloaded moments (files ``.adam_moments.*``)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        first = line.split(maxsplit=1)[0]
        if "-" in first and not first.endswith(":"):
            inside = ".adam_moments." in line
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_offloaded_float32_state_is_exactly_torch_adam_and_leaves_no_page_resident(tmp_path):
    ref, ours = _params(), _params()
    opt = supernet_adam(ours, lr=1e-2, weight_decay=1e-3, offload_dir=tmp_path)
    assert isinstance(opt, LowPrecisionStateAdam) and opt.state_dtype == torch.float32
    assert list(tmp_path.iterdir()) == []  # the mapped file is unlinked at once
    baseline = _resident_kb_of_offloaded_moments()
    opt.state[ours[0]]["exp_avg"].add_(0)  # touching the moments maps their pages in ...
    assert _resident_kb_of_offloaded_moments() > baseline
    opt.state[ours[0]]["exp_avg"].zero_()
    _train(ref, torch.optim.Adam(ref, lr=1e-2, weight_decay=1e-3), 40)
    _train(ours, opt, 40)
    assert _resident_kb_of_offloaded_moments() == baseline  # ... and a step hands them back
    for a, b in zip(ref, ours):
        assert torch.equal(a, b)
    assert torch.count_nonzero(opt.state[ours[1]]["exp_avg_sq"]) == 7  # the values stayed in the file


@pytest.mark.parametrize("state_dtype", ["float32", "bfloat16"])
def test_offloaded_state_resumes_from_its_snapshot(state_dtype, tmp_path):
    straight = _params()
    _train(straight, supernet_adam(straight, lr=1e-2, state_dtype=state_dtype, seed=5), 30)
    first = _params()
    opt = supernet_adam(first, lr=1e-2, state_dtype=state_dtype, seed=5, offload_dir=tmp_path / "run")
    _train(first, opt, 10)
    opt.state_dict()
    _train(first, opt, 5, start=10)
    opt.state_dict()
    _train(first, opt, 5, start=15)
    torch.save(opt.state_dict(), tmp_path / "run" / "opt.pt")
    # the checkpoint names a snapshot instead of holding the moments; the newest two are kept
    assert sorted(p.name for p in (tmp_path / "run").glob("adam_moments.*")) == ["adam_moments.15.bin",
                                                                                  "adam_moments.20.bin"]
    assert (tmp_path / "run" / "opt.pt").stat().st_size < 20_000
    _train(first, opt, 5, start=20)  # later steps must not leak into the saved state
    saved = torch.load(tmp_path / "run" / "opt.pt")
    assert saved["offloaded_moments"]["file"] == "adam_moments.20.bin"
    assert all(set(entry) == {"step"} for entry in saved["state"].values())
    resumed = _params()
    _train(resumed, supernet_adam(resumed, lr=1e-2, state_dtype=state_dtype, seed=5), 20)
    opt2 = supernet_adam(resumed, lr=1e-2, state_dtype=state_dtype, seed=99, offload_dir=tmp_path / "run")
    opt2.load_state_dict(saved)
    _train(resumed, opt2, 10, start=20)
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)


def test_offloaded_optimizer_loads_an_in_memory_checkpoint(tmp_path):
    straight, first = _params(), _params()
    _train(straight, torch.optim.Adam(straight, lr=1e-2), 20)
    opt = LowPrecisionStateAdam(first, lr=1e-2, state_dtype=torch.float32)
    _train(first, opt, 10)
    opt2 = supernet_adam(first, lr=1e-2, offload_dir=tmp_path)
    opt2.load_state_dict(opt.state_dict())
    assert _resident_kb_of_offloaded_moments() == 0
    _train(first, opt2, 10, start=10)
    for a, b in zip(straight, first):
        assert torch.equal(a, b)


def test_offloaded_state_errors_name_the_problem(tmp_path):
    params = _params()
    opt = supernet_adam(params, lr=1e-2, offload_dir=tmp_path / "a")
    _train(params, opt, 3)
    saved = opt.state_dict()
    with pytest.raises(AutoAttendError, match="supernet.optimizer_offload=true"):
        supernet_adam(_params(), lr=1e-2, state_dtype="bfloat16").load_state_dict(saved)
    with pytest.raises(AutoAttendError, match=r"adam_moments\.3\.bin is missing"):
        supernet_adam(_params(), lr=1e-2, offload_dir=tmp_path / "b").load_state_dict(saved)
    with pytest.raises(AutoAttendError, match="2444 torch.float32 values; this optimizer has 2444 torch.bfloat16"):
        supernet_adam(_params(), lr=1e-2, state_dtype="bfloat16", offload_dir=tmp_path / "a").load_state_dict(saved)
    (tmp_path / "a" / "adam_moments.3.bin").write_bytes(b"short")
    with pytest.raises(AutoAttendError, match="holds 5 bytes, expected 9776"):
        supernet_adam(_params(), lr=1e-2, offload_dir=tmp_path / "a").load_state_dict(saved)
    with pytest.raises(AutoAttendError, match="not a snapshot name"):
        OffloadedMoments(tmp_path / "c", 4, torch.float32).restore("../opt.pt")
    with pytest.raises(AutoAttendError, match="supernet.optimizer_offload: expected true or false, got 'yes'"):
        check_offload("yes")


def test_low_precision_adam_refuses_other_state_dtypes_and_supernet_adam_checks_the_name():
    """Protects the constructor's dtype check (only bfloat16 and float32 moments) and
    ``supernet_adam``'s check of the configured name (an unknown name is not silently bfloat16)."""
    with pytest.raises(ValueError, match=r"state_dtype must be torch.bfloat16 or torch.float32, got torch.float16"):
        LowPrecisionStateAdam(_params(), state_dtype=torch.float16)
    with pytest.raises(AutoAttendError, match=r"supernet.optimizer_state: expected one of float32, bfloat16, got 'fp16'"):
        supernet_adam(_params(), lr=1e-2, state_dtype="fp16")
    with pytest.raises(AutoAttendError, match=r"supernet.optimizer_offload: expected true or false, got 1"):
        check_offload(1)  # an integer is not a boolean setting
    assert check_offload(False) is False


def test_offloading_refuses_non_cpu_parameters_and_implies_flat_state(tmp_path):
    """Protects the CPU-only check of ``offload_dir`` and that offloading allocates the flat state in
    the mapped file even with ``flat_state=False`` (else the moments would live in process memory)."""
    with pytest.raises(AutoAttendError, match=r"keeps CPU parameters' moments in a file; got parameters on meta"):
        LowPrecisionStateAdam([torch.zeros(3, device="meta", requires_grad=True)], offload_dir=tmp_path / "m")
    params = _params()
    opt = LowPrecisionStateAdam(params, lr=1e-2, flat_state=False, offload_dir=tmp_path / "o")
    assert len(opt.state) == len(params)
    mapped = opt._offload.buffer.untyped_storage().data_ptr()
    assert all(opt.state[p][key].untyped_storage().data_ptr() == mapped for p in params
               for key in ("exp_avg", "exp_avg_sq"))


def test_lazy_bfloat16_state_is_bfloat16():
    """Protects the dtype of lazily created moments (``flat_state=False``): bfloat16, half the bytes of
    float32 ones, not float32 buffers that merely hold rounded values."""
    params = _params()
    opt = LowPrecisionStateAdam(params, lr=1e-2, flat_state=False)
    _train(params, opt, 2)
    assert all(opt.state[p][key].dtype == torch.bfloat16 for p in params for key in ("exp_avg", "exp_avg_sq"))
    lazy = LowPrecisionStateAdam(_params(), lr=1e-2, flat_state=False)
    assert materialise_adam_state(lazy) == 2 * 2 * sum(p.numel() for p in _params())


def test_loading_a_state_without_a_parameter_zeroes_its_flat_moments():
    """Protects ``load_state_dict``'s reset of a flat-state parameter the loaded state has no entry
    for: its moments go back to zero (a fresh parameter), not the values of the earlier steps."""
    params = _params()
    opt = LowPrecisionStateAdam(params, lr=1e-2)
    _train(params, opt, 3)
    assert torch.count_nonzero(opt.state[params[0]]["exp_avg"]) > 0
    opt.load_state_dict(LowPrecisionStateAdam(_params(), lr=1e-2, flat_state=False).state_dict())
    for p in params:
        assert opt.state[p]["step"] == 0
        assert torch.count_nonzero(opt.state[p]["exp_avg"]) == torch.count_nonzero(opt.state[p]["exp_avg_sq"]) == 0


def test_materialising_keeps_the_state_a_trained_optimizer_has():
    """Protects ``materialise_adam_state``'s ``if not state``: it creates only missing state and never
    resets the moments and steps of parameters that already trained."""
    params = _params()
    opt = torch.optim.Adam(params, lr=1e-2)
    _train(params, opt, 3)
    before = {id(p): opt.state[p]["exp_avg"].clone() for p in params}
    assert materialise_adam_state(opt) == 2 * 4 * sum(p.numel() for p in params)
    for p in params:
        assert float(opt.state[p]["step"]) > 0 and torch.equal(opt.state[p]["exp_avg"], before[id(p)])


def test_offloaded_snapshots_after_a_restore_keep_the_newest_two_and_copy_in_pieces(tmp_path, monkeypatch):
    """Protects :meth:`OffloadedMoments.restore`: it takes only exact snapshot names and counts the
    restored file among the two kept (two later snapshots delete it); and ``_copy_range``'s offsets,
    so a copy that ``copy_file_range`` does in several short pieces is still the whole file."""

    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda src, dst, count, a, b: real(src, dst, min(count, 100), a, b))
    params = _params()
    opt = supernet_adam(params, lr=1e-2, offload_dir=tmp_path)
    _train(params, opt, 3)
    saved = opt.state_dict()
    moments = opt._offload.buffer.clone()
    assert (tmp_path / "adam_moments.3.bin").read_bytes() == moments.numpy().tobytes()
    resumed = _params()
    opt2 = supernet_adam(resumed, lr=1e-2, offload_dir=tmp_path)
    opt2.load_state_dict(saved)
    assert torch.equal(opt2._offload.buffer, moments)
    with pytest.raises(AutoAttendError, match=r"'adam_moments.3.bin.partial' is not a snapshot name"):
        opt2._offload.restore("adam_moments.3.bin.partial")
    opt2._offload.snapshot(4)
    opt2._offload.snapshot(5)
    assert sorted(p.name for p in tmp_path.glob("adam_moments.*")) == ["adam_moments.4.bin", "adam_moments.5.bin"]


def test_an_offloaded_file_descriptor_is_closed_with_its_moments(tmp_path):
    """Protects the finaliser that closes the (unlinked) mapped file's descriptor when the moments go."""
    import gc

    moments = OffloadedMoments(tmp_path, 16, torch.float32)
    fd = moments._fd
    os.fstat(fd)
    del moments
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_a_failed_snapshot_leaves_the_earlier_file_of_that_name_whole(tmp_path, monkeypatch):
    """Protects :meth:`OffloadedMoments.snapshot`'s copy through a ``.partial`` file and a rename: a
    copy that fails leaves an earlier snapshot of the same name as it was."""
    import src.models.optim as optim

    moments = OffloadedMoments(tmp_path, 16, torch.float32)
    moments.buffer.copy_(torch.arange(16.0))
    moments.snapshot(3)
    moments.buffer.zero_()

    def failing(source, target, nbytes):
        os.write(target, b"\0" * 8)
        raise OSError("disk full")

    monkeypatch.setattr(optim, "_copy_range", failing)
    with pytest.raises(OSError, match="disk full"):
        moments.snapshot(3)
    assert (tmp_path / "adam_moments.3.bin").read_bytes() == torch.arange(16.0).numpy().tobytes()
