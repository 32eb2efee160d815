"""Mutation round 47: behaviour of the recent changes that no other test pinned (the strategy
registry and each strategy's ``from_settings``/``settings_problem``, the run-settings refusal's
key-by-key comparison of mappings, a graph child's ``weight_decay_on`` optimiser groups,
``setup_hardware``'s starting thread count, and ``supernet.unused_grads`` through a resume and
``train_supernet``)."""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import open_dict

from src.pipeline.checks import check_config
from src.pipeline.config import search_space, search_strategy
from src.pipeline.run_settings import _changes
from src.space import FunctionalSpace
from src.strategies import STRATEGIES, Evolution, build_strategy, register_strategy, strategy_settings
from tests.conftest import compose_config

# --- the strategy registry ---------------------------------------------------------------------


def test_settings_given_as_none_take_each_strategy_s_defaults():
    """``None`` means the constructor's default (``build_strategy``'s docstring), for the settings
    the base ``from_settings`` passes and those the aging and random ones pass through ``_given``."""
    space = FunctionalSpace(3)
    unset = dict.fromkeys(("population", "rounds", "parents", "mutation_rate"))
    evo = build_strategy("evolution", space, 0, **unset)
    assert evo.settings() == {"population": 500, "rounds": 5, "parents": 100, "mutation_rate": 0.05}
    rnd = build_strategy("random", space, 0, budget=7, batch=None, population=None, rounds=None, parents=None)
    assert rnd.settings() == {"budget": 7, "batch": 100}
    assert build_strategy("random", space, 0, budget=None, batch=3, **unset | {"mutation_rate": 0.5}).budget == 1000
    aging = build_strategy("aging", space, 0, sample_size=None, budget=None, **unset)
    assert aging.settings() == {"population": 500, "sample_size": 100, "budget": 1000, "mutation_rate": 0.05}


def test_a_class_of_the_same_name_from_another_module_is_refused(monkeypatch):
    """Two classes are the same strategy only with the same module *and* qualified name."""
    from src.strategies import base

    monkeypatch.setattr(base, "STRATEGIES", dict(STRATEGIES))
    impostor = type("Evolution", (Evolution,), {"name": "evolution", "__module__": "my_strategies"})
    with pytest.raises(ValueError, match="^strategy name 'evolution' is taken by src.strategies.evolution.Evolution$"):
        register_strategy(impostor)
    assert base.STRATEGIES["evolution"] is Evolution


def test_the_same_class_imported_anew_replaces_the_registered_one(monkeypatch):
    from src.strategies import base

    monkeypatch.setattr(base, "STRATEGIES", dict(STRATEGIES))
    again = type("Evolution", (Evolution,), {"name": "evolution", "__module__": Evolution.__module__})
    assert again is not Evolution and register_strategy(again) is again
    assert base.STRATEGIES["evolution"] is again


def test_strategy_settings_are_sorted_and_the_first_unknown_setting_is_named():
    assert list(strategy_settings()) == sorted(strategy_settings())
    with pytest.raises(TypeError) as err:
        build_strategy("evolution", FunctionalSpace(3), 0, zz=1, aa=2)
    assert str(err.value) == f"build_strategy: unknown setting 'aa'; expected some of {', '.join(strategy_settings())}"


def test_an_aging_sample_of_a_fifth_of_the_population_is_rounded_and_at_least_one():
    space = FunctionalSpace(3)
    assert build_strategy("aging", space, 0, population=8, budget=10).sample_size == 2  # round(1.6)
    assert build_strategy("aging", space, 0, population=2, budget=10).sample_size == 1  # round(0.4) = 0 -> 1


def test_settings_problems_leave_types_and_an_absent_population_to_the_other_checks():
    """A bool is no integer here (check_int refuses it with the other checks); a sample size with no
    population given is measured against nothing (the default 500 is the constructor's); the
    evolution refuses any budget that is not null, 0 included."""
    aging = STRATEGIES["aging"]
    assert aging.settings_problem({"budget": True, "population": 6}) is None
    assert aging.settings_problem({"sample_size": 2, "population": True}) is None
    assert aging.settings_problem({"sample_size": 5}) is None
    assert aging.settings_problem({"sample_size": 5, "population": None}) is None
    assert STRATEGIES["evolution"].settings_problem({"budget": 0})[0] == "budget"


def test_a_strategy_setting_absent_from_the_config_is_not_given_to_the_strategy_s_check():
    """Only the settings the config has reach ``settings_problem``: the evolution's conf without its
    ``budget: null`` line is no budget."""
    cfg = compose_config("search", ["+task=sst2"])
    with open_dict(cfg):
        del cfg.strategy["budget"]
    check_config(cfg, "search")


def test_search_strategy_passes_every_registered_setting_the_config_has():
    cfg = compose_config("search", ["+task=sst2", "strategy=random", "strategy.budget=12"])
    with open_dict(cfg):
        cfg.strategy.batch = 5
    strategy = search_strategy(cfg, search_space(cfg))
    assert strategy.settings() == {"budget": 12, "batch": 5} and len(strategy.ask()) == 5


# --- run settings: two mappings compared key by key ------------------------------------------------


def test_changes_compare_non_empty_mappings_key_by_key_at_every_depth():
    absent = "(unset)"
    # an empty mapping on either side is shown whole
    assert _changes({"k": {}}, {"k": {"a": 1}}, ["k"], absent) == 'k: {} -> {"a": 1}'
    assert _changes({"k": {"a": 1}}, {"k": {}}, ["k"], absent) == 'k: {"a": 1} -> {}'
    # nested mappings keep the whole path
    assert _changes({"a": {"b": {"c": 1, "d": 0}}}, {"a": {"b": {"c": 2, "d": 0}}}, ["a"], absent) == "a.b.c: 1 -> 2"
    # a key recorded as null and now absent differs inside a mapping too
    assert _changes({"k": {"a": None, "b": 1}}, {"k": {"b": 2}}, ["k"], absent) == "k.a: null -> (unset); k.b: 1 -> 2"


# --- graph children: weight_decay_on ---------------------------------------------------------------


def test_first_layer_decay_keeps_the_learning_rate_and_decay_and_groups_the_first_layer_exactly():
    from src.lit.graph_modules import GraphChildModule
    from tests.test_graph_weight_decay import WITH_STEM, _child

    model = _child(WITH_STEM, readout="linear")
    opt = GraphChildModule(model, lr=0.02, weight_decay=5e-4, weight_decay_on="first_layer").configure_optimizers()
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.02]
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]
    first = {id(p) for p in model.first_layer_parameters()}
    assert any(p.dim() == 1 for p in model.first_layer_parameters())  # biases belong to the first layer too
    assert {id(p) for p in opt.param_groups[0]["params"]} == first
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.parameters()}


# --- setup_hardware ----------------------------------------------------------------------------------


def test_a_job_that_sets_no_thread_count_gets_the_process_s_starting_one():
    from src.pipeline import common
    from src.pipeline.run import _setup_hardware

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2 if common.STARTING_THREADS == 1 else 1)  # as a graph job before it left them
        _setup_hardware(compose_config("search", ["+task=sst2", "hardware=cpu"]))
        assert torch.get_num_threads() == common.STARTING_THREADS
    finally:
        torch.set_num_threads(before)


# --- supernet.unused_grads ---------------------------------------------------------------------------


@pytest.mark.parametrize("adam", ["supernet", "torch"])
def test_a_frozen_parameter_is_not_given_a_zero_gradient(adam):
    from src.models.optim import fill_unused_grads, supernet_adam

    a, b = (torch.nn.Parameter(torch.randn(3)) for _ in range(2))
    opt = supernet_adam([a, b], lr=0.1) if adam == "supernet" else torch.optim.Adam([a, b], lr=0.1)
    (a.sum() + b.sum()).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    b.requires_grad_(False)  # stepped before, frozen now
    assert fill_unused_grads(opt) == 1 and a.grad is not None and b.grad is None


def test_a_resumed_supernet_fit_with_zeros_moves_the_parameters_stepped_before_the_resume(tmp_path):
    """The zero gradients kept by ``zero_grad(set_to_none=False)`` are lost with the process; the
    module fills them from the optimizer's restored state (``fill_unused_grads``), so the first step
    after a resume moves more parameters with ``zeros`` than with ``none``, from the same checkpoint."""
    from src.lit.modules import SupernetModule
    from tests.test_models import _tiny_loader, supernet

    space = FunctionalSpace(4)

    def trainer(steps: int, root: str, callbacks=()):
        return pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, default_root_dir=str(tmp_path / root), callbacks=list(callbacks))

    def module(unused_grads: str):
        return SupernetModule(supernet(space, "full"), space, archs_per_step=2, lr=0.05, clip=5.0, seed=3,
                              monitor_archs=0, unused_grads=unused_grads)

    pl.seed_everything(5, verbose=False)
    first = trainer(3, "first")  # one epoch of 3 batches: a checkpoint at an epoch's end
    first.fit(module("none"), _tiny_loader(batch_size=8))
    ckpt = tmp_path / "one_epoch.ckpt"
    first.save_checkpoint(ckpt)

    changed: dict[str, list[int]] = {}
    for mode in ("none", "zeros"):
        resumed = module(mode)
        counts = changed.setdefault(mode, [])

        class Count(pl.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                self.before = [p.detach().clone() for p in resumed.model.parameters()]

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                counts.append(sum(not torch.equal(p, b) for p, b in zip(resumed.model.parameters(), self.before)))

        pl.seed_everything(5, verbose=False)
        trainer(4, mode, [Count()]).fit(resumed, _tiny_loader(batch_size=8), ckpt_path=str(ckpt))
    assert len(changed["none"]) == len(changed["zeros"]) == 1
    assert changed["zeros"][0] > changed["none"][0]


def test_train_supernet_passes_unused_grads_to_the_module_and_says_zeros(monkeypatch, tmp_path, caplog):
    from src.pipeline import stages
    from tests.test_models import supernet

    class Built(Exception):
        pass

    seen: dict = {}

    def module(*args, **kwargs):
        seen.update(kwargs)
        raise Built

    space = FunctionalSpace(2)
    monkeypatch.setattr(stages, "build_supernet", lambda cfg, dm, space: supernet(space, "full"))
    monkeypatch.setattr(stages, "SupernetModule", module)
    for mode in ("zeros", "none"):
        cfg = compose_config("search", ["+task=sst2", "hardware=cpu", f"supernet.unused_grads={mode}"])
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="src.pipeline.stages"), pytest.raises(Built):
            stages.train_supernet(cfg, None, space, tmp_path / mode)
        assert seen["unused_grads"] == mode
        (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("supernet: ")]
        assert ("supernet.unused_grads=zeros" in line) == (mode == "zeros"), line
