"""Search strategies on a dummy score: improvement, planted optimum, determinism, resume."""

import json
import random

import pytest

from src.space import FunctionalSpace
from src.strategies import Evolution, RandomSearch, build_strategy


def planted(space, seed=123):
    target = space.sample(random.Random(seed))

    def score(arch):
        return sum((l.kind == t.kind) + (l.k_src == t.k_src) + (l.q_op == t.q_op) + (l.k_op == t.k_op)
                   + (l.v_op == t.v_op) for l, t in zip(arch, target)) / (5 * len(target))

    return target, score


def test_evolution_finds_a_planted_optimum():
    space = FunctionalSpace(2, ops=("zero", "identity", "conv1", "conv3"))
    target, score = planted(space)
    evo = Evolution(space, seed=0, population=40, rounds=60, parents=10, mutation_rate=0.3)
    evo.run(score)
    assert evo.best() == (target, 1.0)


def test_evolution_beats_random_search_at_the_same_budget():
    space = FunctionalSpace(6)
    wins = 0
    for seed in range(5):
        _, score = planted(space, seed=100 + seed)
        evo = Evolution(space, seed=seed, population=50, rounds=20, parents=10, mutation_rate=0.1)
        evo.run(score)
        rnd = RandomSearch(space, seed=seed, budget=evo.budget)
        rnd.run(score)
        assert len(rnd.history) == len(evo.history) == evo.budget
        wins += evo.best()[1] > rnd.best()[1]
    assert wins >= 4


def test_evolution_protocol_counts_and_no_duplicates():
    space = FunctionalSpace(24)
    _, score = planted(space)
    evo = Evolution(space, seed=1)  # the paper's 500 + 5 x 100
    evo.run(score)
    archs = [a for a, _ in evo.history]
    assert len(archs) == evo.budget == 1000
    assert len(set(archs)) == 1000
    for a in archs:
        space.validate(a)
    # each round's children are mutations of the top 100 so far: they are no worse on average than random
    assert sum(s for _, s in evo.history[-100:]) / 100 > sum(s for _, s in evo.history[:500]) / 500


def test_same_seed_same_search_other_seed_other_search():
    space = FunctionalSpace(5)
    _, score = planted(space)
    runs = []
    for seed in (3, 3, 4):
        evo = Evolution(space, seed=seed, population=30, rounds=3, parents=5)
        evo.run(score)
        runs.append(evo.history)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("name", ["evolution", "random"])
def test_resume_continues_exactly_where_it_stopped(name):
    space = FunctionalSpace(5)
    _, score = planted(space)
    kwargs = dict(population=20, rounds=4, parents=6, mutation_rate=0.1)
    full = build_strategy(name, space, 7, **kwargs)
    full.run(score)

    first = build_strategy(name, space, 7, **kwargs)
    stop_after = 33  # in the middle of a mutation round
    n = 0
    while n < stop_after:
        arch = first.ask()[0]
        first.tell(arch, score(arch))
        n += 1
    saved = json.loads(json.dumps(first.state_dict()))  # through JSON, as the run directory stores it

    resumed = build_strategy(name, space, 7, **kwargs)
    resumed.load_state_dict(saved)
    assert len(resumed.history) == stop_after
    resumed.run(score)
    assert resumed.history == full.history


def test_tell_rejects_unknown_candidates_and_state_of_other_strategy():
    space = FunctionalSpace(3)
    evo = Evolution(space, population=4, rounds=1, parents=2)
    evo.ask()
    with pytest.raises(ValueError, match="ask\\(\\) did not propose"):
        evo.tell(space.sample(random.Random(999)), 0.5)
    with pytest.raises(ValueError):
        RandomSearch(space).load_state_dict(evo.state_dict())


def test_random_search_gets_evolution_budget_by_default():
    space = FunctionalSpace(3)
    assert build_strategy("random", space, 0, population=50, rounds=2, parents=10).budget == 70
    assert len(build_strategy("random", space, 0, budget=250).ask()) == 100  # batches of 100 by default


@pytest.mark.parametrize("name", ["evolution", "aging", "random"])
def test_every_draw_comes_from_the_strategys_one_seeded_rng(name):
    """The first candidates are drawn from the strategy's own RNG, whose stream the children's draws
    then continue (a fresh generator of the same seed would make the first mutations replay the
    population's random numbers)."""
    space = FunctionalSpace(4)
    strategy = build_strategy(name, space, 11, population=6, rounds=1, parents=2, budget=8, batch=6)
    reference = random.Random(11)
    assert strategy.ask() == space.sample_distinct(6, reference)
    assert strategy.rng.getstate() == reference.getstate()


TINY = FunctionalSpace(2, ops=("zero", "identity"))  # 18 architectures: repeats are likely unless prevented


@pytest.mark.parametrize("seed", range(3))
def test_no_candidate_is_proposed_twice_in_a_tiny_space(seed):
    _, score = planted(TINY, seed=seed)
    evo = Evolution(TINY, seed=seed, population=4, rounds=3, parents=4, mutation_rate=0.5)
    evo.run(score)
    archs = [a for a, _ in evo.history]
    assert len(archs) == evo.budget == 16 and len(set(archs)) == 16  # within a round and across rounds
    rnd = RandomSearch(TINY, seed=seed, budget=18, batch=5)
    rnd.run(score)
    assert len({a for a, _ in rnd.history}) == 18 == TINY.size()  # across batches too


def test_batches_and_stages():
    space = FunctionalSpace(3)
    rnd = build_strategy("random", space, 0, budget=10, batch=4)
    sizes = []
    while batch := rnd.ask():
        sizes.append(len(batch))
        for a in batch:
            rnd.tell(a, 0.0)
    assert sizes == [4, 4, 2] and rnd.stage == 3
    evo = Evolution(space, population=5, rounds=2, parents=3)
    sizes = []
    while batch := evo.ask():
        sizes.append(len(batch))
        for a in batch:
            evo.tell(a, 0.0)
    assert evo.ask() == [] and evo.ask() == []  # asking again after the end proposes nothing and counts no stage
    assert sizes == [5, 3, 3] and evo.stage == 3


def test_children_are_mutated_at_the_configured_rate():
    # at rate 1 every decision of the single parent is re-drawn: each layer of the child flips kind
    space = FunctionalSpace(6)
    evo = build_strategy("evolution", space, 0, population=3, rounds=1, parents=1, mutation_rate=1.0)
    evo.run(lambda a: sum(l.kind == "attn" for l in a))
    parent = max(evo.history[:3], key=lambda h: h[1])[0]  # the best of the population (first on ties)
    child = evo.history[-1][0]
    assert all(c.kind != p.kind for c, p in zip(child, parent))


@pytest.mark.parametrize("population, rounds, parents", [(5, 3, 2), (4, 2, 10), (3, 3, 3), (5, 0, 2)])
def test_budget_is_the_number_of_candidates_scored(population, rounds, parents):
    # with more parents than the population, a round has as many children as candidates scored so far
    space = FunctionalSpace(4)
    evo = Evolution(space, seed=0, population=population, rounds=rounds, parents=parents)
    evo.run(planted(space)[1])
    assert len(evo.history) == evo.budget
    assert build_strategy("random", FunctionalSpace(4), 0, population=population, rounds=rounds,
                          parents=parents).budget == evo.budget


@pytest.mark.parametrize("kwargs", [dict(population=0), dict(parents=0), dict(rounds=-1)])
def test_evolution_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        Evolution(FunctionalSpace(2), **kwargs)


def test_run_reports_each_result_and_ranked_keeps_evaluation_order_on_ties():
    rnd = RandomSearch(FunctionalSpace(3), seed=0, budget=7, batch=3)
    seen = []
    rnd.run(lambda a: 0.5, on_result=lambda a, s: seen.append((a, s)))
    assert seen == rnd.history and len(seen) == 7
    assert rnd.ranked() == rnd.history and rnd.best() == rnd.history[0]


def test_state_is_json_and_survives_a_load_unchanged():
    import numpy as np

    space = FunctionalSpace(3)
    evo = Evolution(space, seed=5, population=6, rounds=2, parents=2)
    for a in evo.ask()[:4]:
        evo.tell(a, np.float32(0.25))  # an estimator may return a numpy scalar
    saved = json.loads(json.dumps(evo.state_dict()))
    other = Evolution(space, seed=99, population=6, rounds=2, parents=2)  # built with another seed
    other.load_state_dict(saved)
    assert other.state_dict() == saved


@pytest.mark.parametrize("name", ["evolution", "random"])
def test_resume_in_a_tiny_space_never_proposes_a_scored_candidate_again(name):
    _, score = planted(TINY)
    kwargs = dict(population=4, rounds=3, parents=4, mutation_rate=0.5, budget=16, batch=4)
    full = build_strategy(name, TINY, 2, **kwargs)
    full.run(score)
    first = build_strategy(name, TINY, 2, **kwargs)
    for _ in range(8):  # two whole batches: the next one is proposed after the resume
        arch = first.ask()[0]
        first.tell(arch, score(arch))
    resumed = build_strategy(name, TINY, 2, **kwargs)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    resumed.run(score)
    assert resumed.history == full.history
    assert len({a for a, _ in resumed.history}) == 16


@pytest.mark.parametrize("task, overrides, line", [
    ("sst2", ["space.num_layers=1", "strategy.population=200"],
     "strategy=evolution would score 206 distinct architectures but the space holds 155 (space.num_layers=1): "
     "raise space.num_layers or lower strategy.population, strategy.rounds, strategy.parents"),
    ("sst2", ["space.num_layers=1", "strategy=random", "strategy.budget=400"],
     "strategy=random would score 400 distinct architectures but the space holds 155"),
    ("cora", ["graph.space.num_layers=1", "strategy=aging", "strategy.budget=2000"],
     "holds 1,884 (graph.space.num_layers=1): raise graph.space.num_layers or lower strategy.budget"),
])
def test_a_search_space_too_small_for_the_strategy_is_refused_before_the_supernet(task, overrides, line, smoke_cfg,
                                                                                tmp_path):
    """``space.num_layers=1`` (155 text architectures) with more candidates than that trained the
    supernet, then ended in a RuntimeError traceback from the sampler."""
    from src.pipeline.run import run_search
    from src.utils.errors import AutoAttendError

    cfg = smoke_cfg(task, extra=overrides)
    with pytest.raises(AutoAttendError) as refused:
        run_search(cfg)
    assert line in str(refused.value)
    assert not (tmp_path / "out" / "supernet").exists() and not (tmp_path / "out" / "data.json").exists()


@pytest.mark.parametrize("score, error", [(float("nan"), ValueError), (float("inf"), ValueError), (None, TypeError),
                                          ("0.5", TypeError), (True, TypeError)])
def test_a_score_that_is_not_a_finite_number_is_refused_and_the_candidate_stays_pending(score, error):
    """A NaN sorted anywhere (ranked() put it second and best() returned 0.2 of [0.2, nan, 0.9]), inf
    won, None lost the candidate (removed from the pending batch before float() failed), "0.5" passed."""
    strategy = Evolution(FunctionalSpace(3), seed=0, population=4, rounds=1, parents=2)
    batch = strategy.ask()
    strategy.tell(batch[0], 0.2)
    with pytest.raises(error, match="a candidate's score must be"):
        strategy.tell(batch[1], score)
    assert strategy.pending == batch[1:] and len(strategy.history) == 1
    strategy.tell(batch[1], 0.9)
    assert strategy.best() == (batch[1], 0.9)
    state = strategy.state_dict()
    state["history"][0][1] = float("nan")  # a hand-edited state.json
    with pytest.raises(ValueError, match="must be finite"):
        Evolution(FunctionalSpace(3), seed=0, population=4, rounds=1, parents=2).load_state_dict(state)


def test_a_state_from_another_space_is_refused():
    """A 3-layer search's state loaded into a 4-layer strategy, which then proposed its invalid
    pending candidates."""
    strategy = Evolution(FunctionalSpace(3), seed=0, population=4, rounds=1, parents=2)
    strategy.tell(strategy.ask()[0], 0.5)
    other = Evolution(FunctionalSpace(4), seed=0, population=4, rounds=1, parents=2)
    with pytest.raises(ValueError, match="outside this strategy's space"):
        other.load_state_dict(json.loads(json.dumps(strategy.state_dict())))
    asked = Evolution(FunctionalSpace(3), seed=0, population=4, rounds=1, parents=2)
    asked.ask()  # nothing scored yet: the candidates outside the space are all pending
    with pytest.raises(ValueError, match="outside this strategy's space"):
        other.load_state_dict(json.loads(json.dumps(asked.state_dict())))


def test_build_strategy_refuses_an_unknown_setting_and_an_empty_budget():
    """``populaton=10`` ran the default population of 500; ``budget=0`` meant the default budget."""
    space = FunctionalSpace(3)
    with pytest.raises(TypeError, match="unknown setting 'populaton'"):
        build_strategy("evolution", space, 0, populaton=10)
    with pytest.raises(ValueError, match="budget >= 1"):
        build_strategy("random", space, 0, budget=0)
    assert build_strategy("random", space, 0, budget=7).budget == 7
    assert build_strategy("random", space, 0, population=5, rounds=1, parents=2).budget == 7


def test_a_state_saved_under_other_settings_is_refused():
    """Only the strategy's name was checked: a state of a population-4 evolution loaded into a
    population-6 one went on as a search neither of them is. States saved before settings were
    recorded still load."""
    from src.strategies import AgingEvolution

    space = FunctionalSpace(3)
    for make, other in ((lambda **kw: Evolution(space, seed=0, population=4, rounds=1, parents=2, **kw),
                         {"mutation_rate": 0.5}),
                        (lambda **kw: AgingEvolution(space, seed=0, population=4, sample_size=2, budget=8, **kw),
                         {"mutation_rate": 0.5}),
                        (lambda **kw: RandomSearch(space, seed=0, budget=8, **kw), {"batch": 3})):
        strategy = make()
        strategy.tell(strategy.ask()[0], 0.5)
        state = json.loads(json.dumps(strategy.state_dict()))
        with pytest.raises(ValueError, match=r"state is for \w+ with"):
            make(**other).load_state_dict(state)
        resumed = make()
        resumed.load_state_dict(state)
        assert resumed.state_dict() == strategy.state_dict()
        del state["settings"]
        make(**other).load_state_dict(state)


def test_the_search_space_and_strategy_are_those_the_config_names():
    """``search_space`` and ``search_strategy`` carry every setting of the config over: the priors
    off, aging's tournament size and mutation rate (not the defaults)."""
    from src.pipeline.config import search_space, search_strategy
    from tests.conftest import compose_config

    cfg = compose_config("search", ["+task=sst2", "space.num_layers=3", "space.priors=false", "strategy=aging",
                                    "strategy.population=20", "strategy.sample_size=7", "strategy.mutation_rate=0.5",
                                    "strategy.budget=40"])
    space = search_space(cfg)
    assert (space.num_layers, space.priors) == (3, False)
    strategy = search_strategy(cfg, space)
    assert strategy.name == "aging"
    assert strategy.settings() == {"population": 20, "sample_size": 7, "budget": 40, "mutation_rate": 0.5}


def test_a_budget_of_exactly_the_spaces_size_is_accepted_and_a_default_budget_names_its_settings():
    """The refusal is for more distinct architectures than the space holds (155 at one text layer):
    all 155 may be scored. A random search's budget left to its default (population + rounds x
    parents) is lowered through those settings, not ``strategy.budget``."""
    from src.pipeline.config import search_space, search_strategy
    from src.utils.errors import AutoAttendError
    from tests.conftest import compose_config

    cfg = compose_config("search", ["+task=sst2", "space.num_layers=1", "strategy=random", "strategy.budget=155"])
    space = search_space(cfg)
    assert space.size() == 155 and search_strategy(cfg, space).budget == 155
    cfg = compose_config("search", ["+task=sst2", "space.num_layers=1", "strategy=random", "strategy.population=200"])
    with pytest.raises(AutoAttendError) as refused:
        search_strategy(cfg, search_space(cfg))
    assert str(refused.value) == (
        "strategy=random would score 700 distinct architectures but the space holds 155 (space.num_layers=1): "
        "raise space.num_layers or lower strategy.population, strategy.rounds, strategy.parents")
