"""The strategy registry (``src.strategies.base.STRATEGIES``): a strategy of one's own, with a setting
of its own, is built from the composed config, checked before torch, and refused settings are named,
all without editing the pipeline (``docs/extending.md`` section 3)."""

from __future__ import annotations

from typing import Any, Mapping
from unittest import mock

import pytest
from omegaconf import open_dict

from src.pipeline.checks import check_config
from src.pipeline.config import search_space, search_strategy
from src.space import Architecture, FunctionalSpace
from src.strategies import STRATEGIES, Evolution, SearchStrategy, build_strategy, register_strategy, strategy_settings
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config


class Batches(SearchStrategy):
    """Random candidates, ``step`` at a time, until ``budget``: a strategy with a setting (``step``)
    that none of the shipped ones reads."""

    name = "batches"
    SETTINGS = ("budget", "step")

    def __init__(self, space: FunctionalSpace, seed: int = 0, budget: int = 12, step: int = 4):
        super().__init__(space, seed)
        self._budget, self.step = budget, step

    @classmethod
    def settings_problem(cls, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        step = settings.get("step")
        if not isinstance(step, int) or step < 1:
            return "step", "an integer >= 1 for strategy=batches"
        return None

    def settings(self) -> dict:
        return {"budget": self._budget, "step": self.step}

    @property
    def budget(self) -> int:
        return self._budget

    def _propose(self) -> list[Architecture]:
        left = self._budget - len(self.history) - len(self.pending)
        return [] if left <= 0 else self.space.sample_distinct(min(self.step, left), self.rng, exclude=set(self.scores))


@pytest.fixture
def batches(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "batches", Batches)
    return Batches


def _config(*overrides: str):
    cfg = compose_config("search", ["+task=sst2", "strategy=random", *overrides])
    with open_dict(cfg):
        cfg.strategy.name = "batches"
        cfg.strategy.step = 3
        cfg.strategy.budget = 7
    return cfg


def test_a_registered_strategy_is_built_from_the_config_with_its_own_setting(batches):
    cfg = _config()
    check_config(cfg, "search")
    strategy = search_strategy(cfg, search_space(cfg))
    assert type(strategy) is Batches and strategy.settings() == {"budget": 7, "step": 3}
    assert "step" in strategy_settings()
    sizes = []
    while batch := strategy.ask():
        sizes.append(len(batch))
        for arch in batch:
            strategy.tell(arch, 0.5)
    assert sizes == [3, 3, 1]


def test_a_registered_strategy_s_own_check_is_run_with_the_config_checks(batches):
    cfg = _config()
    cfg.strategy.step = 0
    with pytest.raises(AutoAttendError) as err:
        check_config(cfg, "search")
    assert str(err.value) == "strategy.step: expected an integer >= 1 for strategy=batches, got 0"


def test_its_setting_given_to_a_strategy_that_does_not_read_it_is_refused(batches):
    """``strategy.step`` is a strategy setting once a registered strategy reads it: given on the
    command line to the evolution, it is refused as unread, as ``strategy.batch`` is."""
    from src.pipeline.run import _refuse_unread_strategy_settings

    cfg = compose_config("search", ["+task=sst2"])
    evolution = search_strategy(cfg, search_space(cfg))
    with mock.patch("src.pipeline.run._override_keys", return_value=["strategy.step"]):
        with pytest.raises(AutoAttendError, match="^strategy.step: a setting strategy=evolution does not read$"):
            _refuse_unread_strategy_settings(cfg, evolution)


def test_an_unknown_strategy_name_is_one_line_naming_the_registered_ones():
    """``strategy.name=foo`` passed the config checks and ended in build_strategy's ValueError traceback."""
    cfg = compose_config("search", ["+task=sst2", "strategy.name=foo"])
    with pytest.raises(AutoAttendError) as err:
        check_config(cfg, "search")
    assert str(err.value) == ("strategy.name: expected one of evolution, aging, random (the strategies registered "
                              "with register_strategy in src/strategies/), got 'foo'")
    with pytest.raises(ValueError, match="^unknown strategy 'foo'; expected one of 'evolution', 'aging', 'random'$"):
        build_strategy("foo", FunctionalSpace(2), 0)


def test_a_second_class_under_a_taken_name_is_refused_and_the_same_class_replaces_itself(monkeypatch):
    monkeypatch.setattr("src.strategies.base.STRATEGIES", dict(STRATEGIES))
    from src.strategies import base

    class Impostor(Evolution):
        name = "evolution"

    with pytest.raises(ValueError, match="^strategy name 'evolution' is taken by src.strategies.evolution.Evolution$"):
        register_strategy(Impostor)
    assert base.STRATEGIES["evolution"] is Evolution
    assert register_strategy(Evolution) is Evolution and base.STRATEGIES["evolution"] is Evolution


@pytest.mark.parametrize("name, overrides, problem", [
    ("evolution", {"budget": 5}, "budget"),
    ("evolution", {"budget": None}, None),
    ("aging", {"population": 6, "budget": 5}, "budget"),
    ("aging", {"population": 6, "budget": 6, "sample_size": 7}, "sample_size"),
    ("aging", {"population": 6, "budget": None, "sample_size": 6}, None),
    ("random", {"budget": 1, "population": 6}, None),
])
def test_the_shipped_strategies_settings_problems(name, overrides, problem):
    found = STRATEGIES[name].settings_problem(overrides)
    assert (found and found[0]) == problem
