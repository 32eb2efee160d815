"""The supernet's Adam: float32 state is torch.optim.Adam; bfloat16 state (the labelled memory
option) is the same update with stochastically rounded moments."""

from __future__ import annotations

import random

import lightning.pytorch as pl
import pytest
import torch

from src.lit.modules import SupernetModule
from src.models.optim import (LowPrecisionStateAdam, check_state_dtype, materialise_adam_state,
                              stochastic_round_to_bf16, supernet_adam)
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
