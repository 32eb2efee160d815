"""Aging (regularised) evolution: the population ages, the tournament picks its best, the budget
and no-duplicate rules hold, it improves on its random start, resumes exactly, and runs through the
pipeline's search stage and config."""

from __future__ import annotations

import json
import random

import pytest

from src.pipeline.checks import check_config
from src.space import FunctionalSpace
from src.strategies import AgingEvolution, Evolution, build_strategy
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.test_strategies import planted


def record_parents(strategy, monkeypatch) -> list:
    """Every parent the strategy mutates, in order."""
    parents, mutate = [], strategy.space.mutate

    def spy(arch, rng, rate=0.05, **kwargs):
        parents.append(arch)
        return mutate(arch, rng, rate, **kwargs)

    monkeypatch.setattr(strategy.space, "mutate", spy)
    return parents


def test_the_oldest_member_leaves_and_the_tournament_takes_the_best(monkeypatch):
    """Scores fall with the order of scoring, so the best member is always the oldest. With a
    tournament at least as large as the population (every member is in it), the parent of each
    child must be the best of the *last* ``population`` candidates, never an earlier, better one
    that has aged out (which plain evolution would keep choosing)."""
    space = FunctionalSpace(4)
    aging = AgingEvolution(space, seed=0, population=5, sample_size=500, budget=30, mutation_rate=0.2)
    parents = record_parents(aging, monkeypatch)
    while batch := aging.ask():
        for arch in batch:
            aging.tell(arch, 1.0 - len(aging.history) / 100)
        if len(aging.history) > 5:
            assert aging.members() == aging.history[-5:]
    assert len(parents) == 25
    for child_index, parent in enumerate(parents, start=5):
        window = aging.history[child_index - 5:child_index]
        assert parent == max(window, key=lambda m: m[1])[0] == window[0][0]


def test_a_tie_in_the_tournament_goes_to_the_youngest_member(monkeypatch):
    """As the class says: of equally scored members drawn, the youngest is the parent."""
    space = FunctionalSpace(4)
    aging = AgingEvolution(space, seed=0, population=5, sample_size=5, budget=8, mutation_rate=0.2)
    parents = record_parents(aging, monkeypatch)
    aging.run(lambda arch: 0.5)  # every member in every tournament, all tied
    assert parents == [aging.history[i - 1][0] for i in range(5, 8)]


def test_build_strategy_gives_aging_evolution_its_defaults_and_mutation_rate(monkeypatch):
    """Without settings: AutoGL's 500 members and tournaments of 100, at evolution's 1,000
    evaluations. A mutation rate given is the children's (at rate 1 every layer flips kind)."""
    space = FunctionalSpace(6)
    default = build_strategy("aging", space, 0)
    assert (default.population, default.sample_size, default.budget) == (500, 100, 1000)
    assert len(default.ask()) == 500
    aging = build_strategy("aging", space, 0, population=3, budget=5, mutation_rate=1.0)
    parents = record_parents(aging, monkeypatch)
    aging.run(lambda arch: sum(l.kind == "attn" for l in arch))
    for parent, (child, _) in zip(parents, aging.history[3:], strict=True):
        assert all(p.kind != c.kind for p, c in zip(parent, child))


def test_a_tournament_of_one_draws_parents_from_the_whole_population(monkeypatch):
    space = FunctionalSpace(4)
    aging = AgingEvolution(space, seed=1, population=20, sample_size=1, budget=220, mutation_rate=0.2)
    parents = record_parents(aging, monkeypatch)
    aging.run(lambda arch: random.Random(hash(arch)).random())
    ages = []
    for child_index, parent in enumerate(parents, start=20):
        window = [a for a, _ in aging.history[child_index - 20:child_index]]
        assert parent in window
        ages.append(window.index(parent))
    assert len(set(ages)) > 15  # not always the best, the oldest or the youngest


def test_budget_validity_and_no_duplicates():
    space = FunctionalSpace(8)
    _, score = planted(space)
    aging = build_strategy("aging", space, 3, population=50, rounds=2, parents=25, mutation_rate=0.1)
    assert (aging.budget, aging.population, aging.sample_size) == (100, 50, 10)  # a fifth of the population
    aging.run(score)
    archs = [a for a, _ in aging.history]
    assert len(archs) == len(set(archs)) == 100
    for arch in archs:
        space.validate(arch)
    assert aging.ask() == [] and aging.ask() == []


def test_aging_evolution_improves_on_its_random_start():
    space = FunctionalSpace(6)
    for seed in range(3):
        _, score = planted(space, seed=200 + seed)
        aging = AgingEvolution(space, seed=seed, population=50, sample_size=10, budget=400, mutation_rate=0.1)
        aging.run(score)
        start = max(s for _, s in aging.history[:50])
        assert aging.best()[1] > start
        assert sum(s for _, s in aging.history[-50:]) / 50 > sum(s for _, s in aging.history[:50]) / 50


def test_resume_continues_exactly_where_it_stopped():
    space = FunctionalSpace(5)
    _, score = planted(space)
    kwargs = dict(population=20, rounds=4, parents=6, mutation_rate=0.1, sample_size=4)
    full = build_strategy("aging", space, 7, **kwargs)
    full.run(score)
    for stop_after in (13, 27):  # inside the random start, then among the children
        first = build_strategy("aging", space, 7, **kwargs)
        while len(first.history) < stop_after:
            arch = first.ask()[0]
            first.tell(arch, score(arch))
        resumed = build_strategy("aging", space, 7, **kwargs)
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
        resumed.run(score)
        assert resumed.history == full.history
    with pytest.raises(ValueError):
        Evolution(space).load_state_dict(full.state_dict())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="budget >= population"):
        AgingEvolution(FunctionalSpace(3), population=10, budget=5)
    for strategy in (AgingEvolution, Evolution):
        with pytest.raises(ValueError, match="mutation_rate must be in"):
            strategy(FunctionalSpace(3), mutation_rate=0.0)
    cfg = compose_config("search", ["+task=sst2", "strategy=aging", "strategy.budget=100"])
    with pytest.raises(AutoAttendError, match=r"strategy.budget: expected null or an integer >= strategy.population "
                                              r"\(500\) for aging evolution, got 100"):
        check_config(cfg, "search")
    cfg = compose_config("search", ["+task=cora", "strategy=aging", "strategy.sample_size=0"])
    with pytest.raises(AutoAttendError, match="strategy.sample_size: expected an integer >= 1 or null, got 0"):
        check_config(cfg, "search")
    # a tournament larger than the population drew all of it, in silence (always the best member)
    cfg = compose_config("search", ["+task=cora", "strategy=aging", "strategy.population=6", "strategy.sample_size=100"])
    with pytest.raises(AutoAttendError, match=r"strategy.sample_size: expected null or an integer <= "
                                              r"strategy.population \(6\): .*, got 100"):
        check_config(cfg, "search")
    check_config(compose_config("search", ["+task=cora", "strategy=aging", "strategy.population=6",
                                           "strategy.sample_size=6"]), "search")
    check_config(compose_config("search", ["+task=cora", "strategy=aging"]), "search")
    # evolution takes no budget (its evaluations are population + rounds x parents): a budget was
    # accepted and the full 1,000 candidates scored
    cfg = compose_config("search", ["+task=sst2", "strategy.budget=300"])
    with pytest.raises(AutoAttendError, match=r"strategy.budget: expected null for strategy=evolution \(it scores "
                                              r"strategy.population \+ strategy.rounds x strategy.parents"):
        check_config(cfg, "search")
    check_config(compose_config("search", ["+task=sst2", "strategy=random", "strategy.budget=300"]), "search")


def test_the_search_stage_runs_aging_evolution_and_resumes(tmp_path):
    """Through ``run_strategy`` (text and graph searches share it): ``strategy=aging`` at the smoke
    budget scores population + rounds x parents candidates, writes them all, and a run stopped
    after its state was saved mid-way ends with the same population file."""
    from src.pipeline.stages import run_strategy

    cfg = compose_config("search", ["+task=cora", "budget=smoke", "strategy=aging", "strategy.save_every=4",
                                    "hardware.progress=false"])
    space = FunctionalSpace(3, ops=("zero", "identity", "gcn", "sage", "gat2"))
    _, score = planted(space)
    full = run_strategy(cfg, space, score, tmp_path / "full", "a planted score")
    budget = cfg.strategy.population + cfg.strategy.rounds * cfg.strategy.parents
    lines = (tmp_path / "full" / "population.jsonl").read_text().splitlines()
    assert len(full.history) == len(lines) == budget and full.name == "aging"

    calls = []

    def interrupted(arch):
        if len(calls) == 9:  # state saved after 8; the 9th candidate is lost with the interruption
            raise KeyboardInterrupt
        calls.append(arch)
        return score(arch)

    with pytest.raises(KeyboardInterrupt):
        run_strategy(cfg, space, interrupted, tmp_path / "resumed", "a planted score")
    assert len(json.loads((tmp_path / "resumed" / "state.json").read_text())["history"]) == 8
    run_strategy(cfg, space, score, tmp_path / "resumed", "a planted score")
    assert (tmp_path / "resumed" / "population.jsonl").read_text().splitlines() == lines
