"""``supernet.unused_grads``: ``none`` (torch 2's ``zero_grad``: a parameter no sampled architecture
used in a step has no gradient and Adam leaves it alone) or ``zeros`` (torch 1.x's, under which the
authors' supernet script ran in 2021: once used, a parameter keeps a zero gradient and Adam moves it by
its moments at every later step). Checked against a plain torch loop with ``zero_grad(set_to_none=False)``,
through a resume, for both Adam implementations, and through the supernet's module."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from src.lit.modules import SupernetModule
from src.models.optim import fill_unused_grads, supernet_adam
from src.pipeline.checks import check_config
from src.space import FunctionalSpace
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.test_models import _tiny_loader, supernet

# which of three parameters each step's loss reads: b is used at step 1 only, c first at step 3
USED = [("a", "b"), ("a",), ("a", "c"), ("a",)]


def _params() -> dict[str, torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return {k: torch.nn.Parameter(torch.randn(3, generator=g)) for k in "abc"}


def _loss(params: dict, used: tuple[str, ...], step: int) -> torch.Tensor:
    return sum(((params[k] - step) ** 2).sum() for k in used)


def _torch_1x(steps: list) -> dict:
    """The authors' loop as torch 1.x ran it: gradients zeroed, never set to None."""
    params = _params()
    opt = torch.optim.Adam(params.values(), lr=0.1)
    for step, used in enumerate(steps, 1):
        opt.zero_grad(set_to_none=False)
        _loss(params, used, step).backward()
        opt.step()
    return {k: p.detach().clone() for k, p in params.items()}


def _filled(steps: list, state_dtype: str = "float32", resume_after: int | None = None, fill: bool = True) -> dict:
    """Gradients set to None every step, then :func:`fill_unused_grads`; ``resume_after``: the
    optimizer and the parameters rebuilt from their saved states after that step (grads lost)."""
    params = _params()
    opt = supernet_adam(params.values(), lr=0.1, state_dtype=state_dtype)
    for step, used in enumerate(steps, 1):
        opt.zero_grad(set_to_none=True)
        _loss(params, used, step).backward()
        if fill:
            fill_unused_grads(opt)
        opt.step()
        if step == resume_after:
            saved, values = opt.state_dict(), {k: p.detach().clone() for k, p in params.items()}
            params = {k: torch.nn.Parameter(v) for k, v in values.items()}
            opt = supernet_adam(params.values(), lr=0.1, state_dtype=state_dtype)
            opt.load_state_dict(saved)
    return {k: p.detach().clone() for k, p in params.items()}


def test_filling_equals_torch_1x_zero_grad_and_differs_from_leaving_unused_parameters_alone():
    reference = _torch_1x(USED)
    filled = _filled(USED)
    assert all(torch.equal(filled[k], reference[k]) for k in "abc")
    left_alone = _filled(USED, fill=False)
    after_first = _filled(USED[:1], fill=False)
    assert torch.equal(left_alone["b"], after_first["b"])  # untouched after step 1
    assert not torch.equal(filled["b"], after_first["b"])  # moved by its moments at steps 2-4
    assert torch.equal(filled["a"], left_alone["a"])  # used every step: the same either way


def test_a_resumed_run_fills_the_same_parameters_as_an_uninterrupted_one():
    """The kept zero gradients are lost with the process; the optimizer's state says which to fill."""
    reference = _torch_1x(USED)
    resumed = _filled(USED, resume_after=1)
    assert all(torch.equal(resumed[k], reference[k]) for k in "abc")


def test_the_bfloat16_moments_count_their_steps_too():
    params = _params()
    opt = supernet_adam(params.values(), lr=0.1, state_dtype="bfloat16")
    (params["a"] ** 2).sum().backward()
    assert fill_unused_grads(opt) == 0  # b and c: never stepped (their state exists, at step 0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    (params["c"] ** 2).sum().backward()
    assert fill_unused_grads(opt) == 1 and torch.equal(params["a"].grad, torch.zeros(3)) and params["b"].grad is None


def _supernet_fit(unused_grads: str, tmp_path) -> list[int]:
    """How many parameters each of 3 steps changed (4 of 48 architectures sampled a step)."""
    space = FunctionalSpace(4)
    model = supernet(space, "full")
    module = SupernetModule(model, space, archs_per_step=2, lr=0.05, clip=5.0, seed=3, monitor_archs=0,
                            unused_grads=unused_grads)
    changed: list[int] = []

    class Count(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.before = [p.detach().clone() for p in model.parameters()]

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            changed.append(sum(not torch.equal(p, b) for p, b in zip(model.parameters(), self.before)))

    pl.seed_everything(5, verbose=False)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path / unused_grads), callbacks=[Count()])
    trainer.fit(module, _tiny_loader(batch_size=8))
    return changed


def test_the_supernet_module_keeps_moving_parameters_used_before_only_with_zeros(tmp_path):
    none, zeros = _supernet_fit("none", tmp_path), _supernet_fit("zeros", tmp_path)
    assert none[0] == zeros[0]  # the first step: nothing was used before
    assert zeros[1] > none[1] and zeros[2] > none[2]  # later: also every parameter used before
    assert zeros[2] >= zeros[1] >= zeros[0]  # and the set only grows


def test_an_unknown_setting_is_refused_by_the_module_and_the_config():
    space = FunctionalSpace(2)
    with pytest.raises(ValueError, match="unused_grads must be one of none, zeros, got 'zero'"):
        SupernetModule(supernet(space, "full"), space, unused_grads="zero")
    with pytest.raises(AutoAttendError, match=r"^supernet.unused_grads: expected one of none, zeros, got 'zero'$"):
        check_config(compose_config("search", ["+task=sst2", "supernet.unused_grads=zero"]), "search")
    assert compose_config("search", ["+task=sst2"]).supernet.unused_grads == "none"
