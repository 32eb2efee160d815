"""Findings of an audit of how the config groups combine (entry x task x budget x strategy x hardware x
logger x key overrides, and the experiment configs): what each combination does before any data or
torch training (``check_config``, the space and strategy builders, the architecture files, the
run-settings record and the pre-data refusals of ``src/pipeline/run.py``).

Both findings are mended, their tests made plain: ``src.retrain`` under ``budget=smoke`` / ``quick`` called a
search setting misspelt, and a strategy's budget near a tiny space's size ended the search in an error after
the supernet had trained. The plain
test pins that every (task, budget, strategy) combination of the shipped config groups either passes
the checks and builds its space, strategy and run record, or is refused with an ``AutoAttendError``.
"""

from __future__ import annotations

import random
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import open_dict

from src.pipeline.checks import check_config
from src.pipeline.config import search_space, search_strategy
from src.pipeline.run_settings import run_settings
from src.utils.errors import AutoAttendError
from tests.conftest import CONF, compose_config

TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
# the keys +task=csv and +task=graph_file require (nothing is read: the checks run before any data)
TASK_EXTRA = {"csv": ["task.path=/nonexistent/corpus", "task.num_classes=3"],
              "graph_file": ["task.path=/nonexistent/graph.npz"]}
BUDGETS = ("paper", "quick", "smoke")
STRATEGIES = ("evolution", "aging", "random")
SEARCH_LINE = "a setting of the search (src.search), which src.retrain does not read"


def _composition_error(entry: str, overrides: list[str]) -> ConfigCompositionException:
    """The error Hydra raises composing ``conf/<entry>.yaml`` with ``overrides``, as the command line would."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            with pytest.raises(ConfigCompositionException) as caught:
                compose(config_name=entry, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()
    return caught.value


@pytest.mark.parametrize("budget, override", [
    ("smoke", "strategy.budget=5"),
    ("quick", "strategy.budget=5"),
    ("smoke", "supernet.unused_grads=zeros"),
    ("quick", "strategy.mutation_rate=0.1"),
])
def test_retrain_under_a_budget_names_a_search_setting_as_the_searchs(quiet_hydra_entry, capsys, monkeypatch, budget,
                                                                       override):
    """``python -m src.retrain +task=sst2 arch=published_sst5 budget=smoke strategy.budget=5`` said
    ``error: strategy.budget: no such setting (misspelt, or one of a task or option not chosen?)``;
    with ``budget=paper`` the same override is, rightly, ``a setting of the search (src.search), which
    src.retrain does not read``. Hydra's own error, composed for real, is given to ``hydra_entry``."""
    args = ["+task=sst2", "arch=published_sst5", f"budget={budget}", override]
    error = _composition_error("retrain", args)
    monkeypatch.setattr(sys, "argv", [str(CONF.parent / "src" / "retrain.py"), *args])  # as `python -m src.retrain`

    def main():
        raise error

    with pytest.raises(SystemExit) as exc:
        quiet_hydra_entry.hydra_entry(main)
    key = override.split("=", 1)[0]
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: {key}: {SEARCH_LINE}")


def test_retrain_under_the_paper_budget_names_a_search_setting_as_the_searchs(quiet_hydra_entry, capsys, monkeypatch):
    """The contrast of the test above, which passes: without a budget that adds the node, the same line."""
    args = ["+task=sst2", "arch=published_sst5", "budget=paper", "strategy.budget=5"]
    error = _composition_error("retrain", args)
    monkeypatch.setattr(sys, "argv", [str(CONF.parent / "src" / "retrain.py"), *args])

    def main():
        raise error

    with pytest.raises(SystemExit) as exc:
        quiet_hydra_entry.hydra_entry(main)
    assert exc.value.code == 2 and capsys.readouterr().err.startswith(f"error: strategy.budget: {SEARCH_LINE}")


@pytest.mark.parametrize("overrides", [
    ["strategy=evolution", "strategy.population=150", "strategy.rounds=1", "strategy.parents=5"],
    ["strategy=evolution", "strategy.population=100", "strategy.rounds=5", "strategy.parents=10"],
    ["strategy=aging", "strategy.population=100", "strategy.budget=150"],
])
def test_a_strategy_the_space_can_hold_is_refused_up_front_or_finishes(overrides):
    """``+task=sst2 budget=smoke space.num_layers=1`` (155 architectures) with an evolution of 150 or 155
    candidates was accepted by every check, then failed in the search stage (after the supernet had trained
    and most candidates were scored): children had to be unseen mutations of the top parents, which the
    nearly exhausted space no longer had. Now such a child is a random unseen architecture, and the search
    finishes (with any scores; three seeds)."""
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "space.num_layers=1", *overrides])
    check_config(cfg, "search")
    space = search_space(cfg)
    for seed in range(3):
        with open_dict(cfg):
            cfg.seed = seed
        try:
            strategy = search_strategy(cfg, space)
        except AutoAttendError:
            continue  # refused up front: the mend
        scores = random.Random(seed)
        strategy.run(lambda arch: scores.random())
        assert len(strategy.history) == strategy.budget


def _task_overrides(task: str) -> list[str]:
    return [f"+task={task}", *TASK_EXTRA.get(task, [])]


@pytest.mark.parametrize("task", TASKS)
def test_every_task_budget_strategy_combination_builds_or_is_refused(task):
    """Each (task, budget, strategy) composes, and either passes ``check_config`` and builds its space,
    strategy and run-settings record, or is refused with an ``AutoAttendError`` (no other exception). The
    built strategy scores at least its population and at most what the space holds."""
    for budget in BUDGETS:
        for strategy_name in STRATEGIES:
            cfg = compose_config("search", [*_task_overrides(task), f"budget={budget}", f"strategy={strategy_name}"])
            try:
                check_config(cfg, "search")
                space = search_space(cfg)
                strategy = search_strategy(cfg, space)
            except AutoAttendError:
                continue
            assert strategy.name == strategy_name
            assert strategy.budget <= space.size()
            assert strategy.budget >= int(cfg.strategy.population)
            assert run_settings(cfg, "search")["entry"] == "search"
