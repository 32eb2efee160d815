"""Small-spaces walk (2026-12-07): the search space (``src/space/``), the strategies (``src/strategies/``: evolution,
aging evolution, random) and ``python -m src.search`` on tiny and degenerate search spaces.

Checked, by direct calls (space and strategy objects, a cheap injective fake score) and a few ``budget=smoke``
command lines (tiny SST written by the tests; tiny Cora by ``write_tiny_planetoid``):

- ``size()`` against a brute-force count of every layer that ``validate`` accepts, out of a universe holding one op
  outside the space, a kind outside it and sources outside 0..i: one-layer spaces of a single op, of ``zero`` /
  ``identity`` alone, priors on and off, kinds ``add`` or ``attn`` alone (text and graph ops), ``last_layer_ops``
  restricted, and two- and three-layer spaces layer by layer; ``sample`` reaches exactly the valid set (so
  validation rejects exactly what sampling never gives), a further 1,812 spaces counted the same way by a scratch
  script (all equal);
- ``mutate`` in spaces of one, two and a dozen architectures: every other architecture reachable, none invalid, the
  parent never returned; with no other architecture it ends (no endless loop) but with a ``RuntimeError`` that
  names a number of tries (finding 2);
- strategies with a population larger than the space (refused before anything is scored), a budget equal to the
  space (every architecture scored once, the true best reported), larger than the space (every architecture scored
  once, then ``SpaceExhaustedError``), a tournament larger than the population, more parents than candidates;
- determinism: the same seed gives the same sequence in processes of different ``PYTHONHASHSEED`` (sets and dicts
  of architectures must not steer a draw); a state saved after every candidate of a search that exhausts a tiny
  space, loaded into a fresh strategy, continues exactly;
- ``run_strategy`` on a space smaller than ``strategy.topk``: ``population.jsonl`` holds each candidate once, in
  order, ``topk.yaml`` the distinct candidates only; a finished search re-run scores nothing again;
- command lines: a one-architecture text space runs end to end (``search/`` records that architecture); an empty
  space (``space.ops=[zero]`` under the priors, ``space.ops=[]``, a graph last layer left only ``identity``) is
  refused with one ``error:`` line, exit status 2, no traceback, before any run file is written; sharing modes
  none / source / target / full on a two-op parameter-free one-layer text space and graph kinds ``add`` or ``attn``
  alone all ran (by hand, not repeated here: the supernets had 0 to 3 op modules).

Findings (first ``xfail(strict=True)`` tests of the correct behaviour; all six mended since, session 53):

1. (Mended: ``check_supernet_draws``.) ``supernet.archs_per_step`` (the distinct architectures each batch trains; smoke:
   2) or ``supernet.monitor_archs`` larger than the space (``graph.supernet.*`` for graphs) passes every check, loads
   the data, builds the supernet and then stops with ``error: could not draw 2 new distinct architectures from
   FunctionalSpace(...)``, naming no setting (``SupernetModule`` / ``GraphSupernetModule`` call
   ``space.sample_distinct``). The strategy's budget is refused up front (``src/pipeline/config.py: search_strategy``);
   these two are not.
2. (Mended: ``SpaceExhaustedError`` saying the space holds 1.) ``FunctionalSpace.mutate`` of the only architecture of a
   space (``ops=[identity] kinds=[add]``, one layer) spins 10,000 draws and raises ``RuntimeError: mutation produced no
   new architecture in 10000 tries (rate=0.05)``, which points at the rate or luck, not at the space; an evolution or
   aging search over such a space ends with it (a space of two gives ``SpaceExhaustedError``, an ``AutoAttendError``).
3. (Mended: ``FunctionalSpace.size_text``.) (Met on the way, a large space rather than a small one.)
   ``space.num_layers=100`` (about 1e377 architectures under the priors; any space past 1e308) passes every check, then
   the run's first log line, ``float(space.size())`` in ``src/pipeline/run.py: run_search``, raises ``OverflowError``: a
   traceback, exit status 1.
4. (Mended: refused whatever the priors.) A graph search with ``graph.retrain.readout=last`` and
   ``graph.space.priors=false`` over ops that leave the last layer only ``zero`` (``graph.space.ops=[zero,identity]`` or
   ``[zero]``) passes the checks, which refuse it only under the priors (``src/pipeline/checks.py:
   _check_last_layer_ops``, ``priors_leave_no_op``), though docs/usage.md lists it among the errors before any work: the
   supernet trains, the search scores, and the retrain ends in ``RuntimeError: element 0 of tensors does not require
   grad`` (a traceback, exit status 1).
5. (Mended: ``GraphNet.child`` refuses it in one line.) The same without a config to blame: ``src.retrain`` of a graph
   architecture whose last layer applies only ``zero``, with ``graph.retrain.readout=last``, ends in that traceback;
   without the priors such architectures lie in any space holding zero, so a search can choose (or re-rank, or rank)
   one.
6. (Mended: a space of at most 200,000 is listed once draws fail.) ``FunctionalSpace.sample_distinct`` gives up after
   ``max_tries`` draws a candidate while the space still holds unseen architectures, when per-decision sampling draws
   them rarely (1 in 122,880 in a five-layer two-op space). The evolutions' fall-back (``src/strategies/evolution.py:
   _unseen_child``) relies on it; by hand: an ``Evolution(population=29000, rounds=1, parents=160)`` over that space, a
   budget of exactly its 29,160 architectures (as ``search_strategy`` accepts), scored 29,000 and raised
   ``SpaceExhaustedError`` (a random search of the whole space finished: its batches of 100 share 1,000,000 tries).

Not covered: ``ranking.candidates`` and ``graph.rerank.topk`` above the distinct candidates (read only: both take what
there is); the supernets' op-module counts per sharing mode on tiny spaces (only that they train).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time

import pytest
import yaml

from src.space import Architecture, FunctionalSpace, Layer
from src.strategies import AgingEvolution, Evolution, RandomSearch, build_strategy
from src.utils.errors import AutoAttendError, SpaceExhaustedError
from tests.conftest import compose_config
from tests.helpers import ROOT, cli, write_tiny_planetoid, write_tiny_sst

# ---- brute force ------------------------------------------------------------------------------------------------


def _candidate_layers(i: int, ops: tuple[str, ...]):
    """Every layer over ``ops`` plus one op outside them, kinds add, attn and an unknown one, sources -1..i+1
    (each outside the valid 0..i by one): a superset of what any space of these ops holds at layer ``i``."""
    outside = "conv3" if "conv3" not in ops else "gru"
    universe = (*ops, outside)
    sources = range(-1, i + 2)
    for kind in ("add", "attn", "mix"):
        for q_src, k_src, q_op, k_op in itertools.product(sources, sources, universe, universe):
            yield Layer(kind, q_src, q_op, k_src, k_op)
            if kind != "add":
                for v_src, v_op in itertools.product(sources, universe):
                    yield Layer(kind, q_src, q_op, k_src, k_op, v_src, v_op)


def _valid_layers(space: FunctionalSpace, i: int) -> set[Layer]:
    """The layers ``validate`` accepts at position ``i`` (the other layers a fixed valid sample)."""
    base = list(space.sample(random.Random(0)))
    valid = set()
    for layer in _candidate_layers(i, space.ops):
        arch = base.copy()
        arch[i] = layer
        if space.is_valid(Architecture(tuple(arch))):
            valid.add(layer)
    return valid


def _every_architecture(space: FunctionalSpace) -> set[Architecture]:
    return {Architecture(layers) for layers in itertools.product(*(_valid_layers(space, i)
                                                                   for i in range(space.num_layers)))}


def _injective_score(space: FunctionalSpace):
    """A score that differs for every architecture of ``space``, seeded apart from the strategies."""
    order = sorted(_every_architecture(space), key=lambda a: a.to_json())
    values = list(range(len(order)))
    random.Random(99).shuffle(values)
    table = {a: v / len(order) for a, v in zip(order, values)}
    return table, table.__getitem__


ONE_LAYER_SPACES = [
    dict(ops=("identity",), kinds=("add",)),  # one architecture
    dict(ops=("identity",), kinds=("attn",)),
    dict(ops=("identity",)),
    dict(ops=("conv1",), priors=False),
    dict(ops=("zero",), priors=False),  # zero alone: allowed without the priors
    dict(ops=("zero",), priors=False, kinds=("attn",)),
    dict(ops=("zero", "identity")),
    dict(ops=("zero", "identity"), priors=False),
    dict(ops=("zero", "identity"), kinds=("add",)),
    dict(ops=("zero", "identity"), kinds=("attn",)),  # zero is never allowed in an attn layer under the priors
    dict(ops=("zero", "identity", "conv1"), kinds=("attn", "add")),
    dict(ops=("zero", "identity", "conv1"), last_layer_ops=("zero", "conv1")),
    dict(ops=("zero", "identity", "conv1"), priors=False, last_layer_ops=("zero",)),
    dict(ops=("gcn",), kinds=("attn",)),
    dict(ops=("zero", "gat8"), kinds=("add",)),
    dict(ops=("zero", "identity", "sage"), priors=False, kinds=("attn",), last_layer_ops=("zero", "sage")),
]


@pytest.mark.parametrize("kwargs", ONE_LAYER_SPACES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_the_size_of_a_one_layer_space_is_its_brute_force_count_and_sampling_reaches_exactly_those(kwargs):
    space = FunctionalSpace(1, **kwargs)
    every = _every_architecture(space)
    assert space.size() == len(every)
    rng = random.Random(0)
    sampled = {space.sample(rng) for _ in range(40 * len(every) + 200)}
    assert sampled == every  # validate accepts exactly what sampling draws


@pytest.mark.parametrize("num_layers, kwargs", [
    (2, dict(ops=("zero", "identity"), kinds=("add",))),
    (2, dict(ops=("identity",), priors=False)),
    (2, dict(ops=("zero", "conv1"), priors=False, kinds=("attn",))),
    (3, dict(ops=("zero", "identity"), last_layer_ops=("zero", "identity"))),
    (3, dict(ops=("zero", "gcn", "identity"), kinds=("add",), last_layer_ops=("zero", "gcn"))),
])
def test_the_size_of_a_deeper_tiny_space_is_the_product_of_its_brute_force_layer_counts(num_layers, kwargs):
    space = FunctionalSpace(num_layers, **kwargs)
    counts = [len(_valid_layers(space, i)) for i in range(num_layers)]
    assert [space.layer_choices(i) for i in range(num_layers)] == counts
    assert space.size() == counts[0] * counts[1] * (counts[2] if num_layers == 3 else 1)


# ---- one architecture, mutation ---------------------------------------------------------------------------------

SINGLETONS = [dict(ops=("identity",), kinds=("add",)), dict(ops=("zero",), priors=False, kinds=("add",)),
              dict(ops=("gcn",), kinds=("attn",)), dict(ops=("conv1",), priors=False, kinds=("add",)),
              dict(ops=("identity", "conv1"), kinds=("add",), last_layer_ops=("conv1",))]


@pytest.mark.parametrize("kwargs", SINGLETONS)
def test_a_space_of_one_architecture_samples_it_and_refuses_a_second_at_once(kwargs):
    space = FunctionalSpace(1, **kwargs)
    assert space.size() == 1
    only = space.sample(random.Random(0))
    assert space.sample_distinct(1, random.Random(5)) == [only]
    start = time.monotonic()
    with pytest.raises(SpaceExhaustedError, match=r"holds 1 \(0 excluded\)"):
        space.sample_distinct(2, random.Random(0))
    with pytest.raises(SpaceExhaustedError, match=r"could not draw 1 new .* holds 1 \(1 excluded\)"):
        space.sample_distinct(1, random.Random(0), exclude={only})
    assert time.monotonic() - start < 1  # said at once, not after max_tries draws


def test_mutating_the_only_architecture_of_a_space_ends_in_an_error():
    """No endless loop: the mutation gives up (10,000 draws, well under a second)."""
    space = FunctionalSpace(1, ops=("identity",), kinds=("add",))
    start = time.monotonic()
    with pytest.raises((RuntimeError, SpaceExhaustedError)):
        space.mutate(space.sample(random.Random(0)), random.Random(0))
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("name", ["evolution", "aging"])
def test_mutating_the_only_architecture_says_the_space_holds_one(name):
    """The correct outcome: ``SpaceExhaustedError`` (as a space of two gives) saying the space holds one
    architecture, from ``mutate`` and from a search whose children need a mutation."""
    space = FunctionalSpace(1, ops=("identity",), kinds=("add",))
    with pytest.raises(SpaceExhaustedError, match="holds 1"):
        space.mutate(space.sample(random.Random(0)), random.Random(0))
    strategy = build_strategy(name, space, 0, population=1, rounds=1, parents=1, budget=2, sample_size=1)
    with pytest.raises(SpaceExhaustedError, match="holds 1"):
        strategy.run(lambda arch: 0.5)


@pytest.mark.parametrize("kwargs", [dict(ops=("identity",)), dict(ops=("zero", "identity"), kinds=("add",)),
                                    dict(ops=("zero", "identity"), priors=False, kinds=("add",)),
                                    dict(ops=("identity", "conv1"), kinds=("attn",))])
def test_mutation_in_a_tiny_space_reaches_every_other_architecture_and_only_valid_ones(kwargs):
    """A tiny space's neighbourhood is the whole space minus the parent: a decision of one choice (the
    priors' sources, a kind alone) must not leave an architecture without a reachable neighbour."""
    space = FunctionalSpace(1, **kwargs)
    every = _every_architecture(space)
    assert 2 <= len(every) <= 12
    rng = random.Random(0)
    for parent in sorted(every, key=lambda a: a.to_json()):
        children = {space.mutate(parent, rng, rate=0.5) for _ in range(400)}
        assert children == every - {parent}


# ---- strategies at and beyond the space's size -------------------------------------------------------------------

SIX = FunctionalSpace(1, ops=("zero", "identity", "conv1"), kinds=("add",))  # 2 x 3 = 6 architectures


@pytest.mark.parametrize("make", [
    lambda: Evolution(SIX, seed=0, population=7, rounds=0, parents=1),
    lambda: AgingEvolution(SIX, seed=0, population=7, sample_size=2, budget=7),
    lambda: RandomSearch(SIX, seed=0, budget=7, batch=7),
], ids=["evolution", "aging", "random"])
def test_a_population_larger_than_the_space_is_refused_before_anything_is_scored(make):
    strategy = make()
    with pytest.raises(SpaceExhaustedError, match=r"could not draw 7 new distinct .* holds 6"):
        strategy.ask()
    assert strategy.history == [] and strategy.pending == [] and strategy.stage == 0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("make", [
    lambda s: Evolution(SIX, seed=s, population=3, rounds=1, parents=5, mutation_rate=0.3),  # 3 + min(5, 3)
    lambda s: Evolution(SIX, seed=s, population=2, rounds=2, parents=2, mutation_rate=0.05),
    lambda s: AgingEvolution(SIX, seed=s, population=2, sample_size=9, budget=6),  # tournament > population
    lambda s: AgingEvolution(SIX, seed=s, population=6, sample_size=1, budget=6),
    lambda s: RandomSearch(SIX, seed=s, budget=6, batch=4),
], ids=["evolution-parents>population", "evolution", "aging-tournament>population", "aging", "random"])
def test_a_budget_of_the_whole_space_scores_each_architecture_once_and_finds_the_true_best(make, seed):
    table, score = _injective_score(SIX)
    strategy = make(seed)
    assert strategy.budget == SIX.size() == 6
    calls = []
    strategy.run(lambda arch: calls.append(arch) or score(arch))
    assert len(calls) == 6 and set(calls) == set(table)
    assert [a for a, _ in strategy.history] == calls
    assert strategy.best() == max(table.items(), key=lambda kv: kv[1])
    assert [s for _, s in strategy.ranked()] == sorted(table.values(), reverse=True)
    assert strategy.ask() == []


@pytest.mark.parametrize("make", [
    lambda: Evolution(SIX, seed=1, population=4, rounds=3, parents=1),  # 7 > 6, one child a round
    lambda: AgingEvolution(SIX, seed=1, population=4, sample_size=2, budget=9),
    lambda: RandomSearch(SIX, seed=1, budget=9, batch=2),
], ids=["evolution", "aging", "random"])
def test_a_budget_beyond_the_space_scores_each_architecture_once_then_says_the_space_is_exhausted(make):
    """The strategies themselves accept it (the command line refuses it first, ``search_strategy``); what they
    do with it: score the whole space, no candidate twice, then ``SpaceExhaustedError`` (not an endless loop).
    (A batch is proposed whole: an evolution round of 4 children in a space with 2 left fails before scoring them.)"""
    table, score = _injective_score(SIX)
    strategy = make()
    calls = []
    with pytest.raises(SpaceExhaustedError, match="holds 6"):
        strategy.run(lambda arch: calls.append(arch) or score(arch))
    assert len(calls) == 6 and set(calls) == set(table) and len(strategy.history) == 6
    assert strategy.best() == max(table.items(), key=lambda kv: kv[1])


# ---- determinism and resume ---------------------------------------------------------------------------------------

_HISTORY_SCRIPT = """
import json, random
from src.space import FunctionalSpace
from src.strategies import build_strategy
space = FunctionalSpace(2, ops=("identity", "conv1"), kinds=("add",))  # 4 x 8 = 32 architectures
out = {}
for name in ("evolution", "aging", "random"):
    strategy = build_strategy(name, space, 3, population=4, rounds=7, parents=4, budget=32, batch=5, sample_size=3,
                              mutation_rate=0.2)
    strategy.run(lambda arch: random.Random(arch.to_json()).random())
    out[name] = [a.to_json() for a, _ in strategy.history]
print(json.dumps(out))
"""


def test_the_same_seed_gives_the_same_search_whatever_the_hash_seed():
    """Sets and dicts of architectures (``seen``, ``exclude``, ``scores``) are hashed by their strings, whose hashes
    change with ``PYTHONHASHSEED``: a draw steered by their order would differ from process to process. The
    searches exhaust the space, so the random fall-back of ``_unseen_child`` runs too."""
    runs = []
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", _HISTORY_SCRIPT], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout))
    assert runs[0] == runs[1]
    assert all(len(set(h)) == 32 for h in runs[0].values())
    assert runs[0]["evolution"] != runs[0]["aging"] != runs[0]["random"]


@pytest.mark.parametrize("name", ["evolution", "aging", "random"])
def test_a_state_saved_after_any_candidate_of_a_search_exhausting_a_tiny_space_resumes_exactly(name):
    """Stopped after each candidate in turn (inside the random start, inside a batch of children, where the
    children fall back to random unseen architectures), saved as JSON and loaded into a fresh strategy."""
    _, score = _injective_score(SIX)
    kwargs = dict(population=3, rounds=1, parents=5, budget=6, batch=4, sample_size=2, mutation_rate=0.2)
    full = build_strategy(name, SIX, 4, **kwargs)
    full.run(score)
    assert len({a for a, _ in full.history}) == 6
    for stop in range(1, 6):
        first = build_strategy(name, SIX, 4, **kwargs)
        while len(first.history) < stop:
            arch = first.ask()[0]
            first.tell(arch, score(arch))
        resumed = build_strategy(name, SIX, 4, **kwargs)
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
        resumed.run(score)
        assert resumed.history == full.history, stop


def test_run_strategy_on_a_space_smaller_than_topk_records_each_candidate_once(tmp_path):
    """``strategy.topk`` (10) above the candidates (6, the whole space): ``topk.yaml`` lists the 6, best first;
    ``population.jsonl`` each candidate once, its index its line; run again, the finished search scores nothing."""
    from src.pipeline.stages import run_strategy

    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "strategy=random", "strategy.budget=6",
                                    "strategy.topk=10", "strategy.save_every=4", "hardware.progress=false"])
    table, score = _injective_score(SIX)
    strategy = run_strategy(cfg, SIX, score, tmp_path, "a fake score")
    records = [json.loads(line) for line in (tmp_path / "population.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(6))
    assert [(Architecture.from_dict(r["arch"]), r["score"]) for r in records] == strategy.history
    assert {Architecture.from_dict(r["arch"]) for r in records} == set(table)
    topk = yaml.safe_load((tmp_path / "topk.yaml").read_text())
    assert [t["rank"] for t in topk] == [1, 2, 3, 4, 5, 6]
    assert [t["val_acc"] for t in topk] == sorted(table.values(), reverse=True)
    before = (tmp_path / "population.jsonl").read_text()
    again = run_strategy(cfg, SIX, lambda arch: pytest.fail("a scored candidate was scored again"), tmp_path, "x")
    assert again.history == strategy.history and (tmp_path / "population.jsonl").read_text() == before


# ---- the command line and the pipeline ----------------------------------------------------------------------------

ONE_TEXT_ARCH = ["space.num_layers=1", "space.ops=[identity]", "space.kinds=[add]", "strategy.population=1",
                 "strategy.rounds=0"]


def test_a_search_over_a_space_of_one_architecture_runs_and_records_it(tmp_path):
    """``budget=smoke`` with a one-architecture text space (``supernet.archs_per_step=1``: see finding 1):
    exit 0, that architecture scored once and chosen, ``topk.yaml`` (topk 3) of one entry."""
    data = write_tiny_sst(tmp_path / "data")
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", "hardware.kernels=torch",
               *ONE_TEXT_ARCH, "supernet.archs_per_step=1", "retrain.seeds=1", data_dir=data, tmp=tmp_path,
               run_dir=run_dir, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    only = Architecture((Layer("add", 0, "identity", 0, "identity"),))
    lines = (run_dir / "search" / "population.jsonl").read_text().splitlines()
    assert [Architecture.from_dict(json.loads(line)["arch"]) for line in lines] == [only]
    assert Architecture.load(run_dir / "search" / "best_arch.yaml") == only
    assert len(yaml.safe_load((run_dir / "search" / "topk.yaml").read_text())) == 1


@pytest.mark.parametrize("task, overrides, line", [
    ("sst2", ["space.ops=[zero]"],
     "error: space.ops=['zero']: under the design priors (space.priors=true) Q, K and V take an op other than zero"),
    ("sst2", ["space.ops=[]"], "error: space.ops: expected a non-empty list of distinct values from zero, identity"),
    ("cora", ["graph.space.ops=[identity]", "graph.retrain.readout=last"],
     "error: graph.retrain.readout=last: the searched model's last layer maps to the classes, which identity cannot"),
], ids=["zero-under-the-priors", "no-op", "graph-last-layer-identity-only"])
def test_a_config_that_leaves_the_space_empty_is_one_error_line_before_any_work(tmp_path, task, overrides, line):
    run_dir = tmp_path / "run"
    proc = cli("src.search", f"+task={task}", "budget=smoke", "hardware=cpu", "hardware.kernels=torch", *overrides,
               data_dir=tmp_path / "data", tmp=tmp_path, run_dir=run_dir, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (run_dir / "data.json").exists() and not (run_dir / "supernet").exists()


@pytest.mark.filterwarnings("ignore:Checkpoint directory")
@pytest.mark.parametrize("task, overrides, key", [
    ("sst2", ONE_TEXT_ARCH, "supernet.archs_per_step"),  # smoke: 2 a step
    ("sst2", [*ONE_TEXT_ARCH, "supernet.archs_per_step=1", "supernet.monitor_archs=3"], "supernet.monitor_archs"),
    ("cora", ["graph.space.num_layers=1", "graph.space.ops=[zero,gcn]", "graph.space.kinds=[add]",
              "strategy.population=1", "strategy.rounds=0", "graph.baselines=[]", "graph.supernet.archs_per_step=3"],
     "graph.supernet.archs_per_step"),
    ("cora", ["graph.space.num_layers=1", "graph.space.ops=[zero,gcn]", "graph.space.kinds=[add]",
              "strategy.population=1", "strategy.rounds=0", "graph.baselines=[]", "graph.supernet.monitor_archs=3"],
     "graph.supernet.monitor_archs"),
])
def test_more_architectures_a_supernet_step_than_the_space_holds_is_refused_before_the_data(smoke_cfg, tmp_path, task,
                                                                                           overrides, key):
    """The correct behaviour: refused with the strategy's budget (``search_strategy``), naming the setting, before
    the data is read or the supernet built. Today: ``error: could not draw 2 new distinct architectures from
    FunctionalSpace(...) ... a larger space (num_layers) or fewer candidates`` from the supernet stage."""
    from src.pipeline.run import run_search

    data = write_tiny_sst(tmp_path / "data") if task == "sst2" else write_tiny_planetoid(tmp_path / "data")
    cfg = smoke_cfg(task, extra=["hardware.kernels=torch", *overrides], data_dir=data)
    with pytest.raises(AutoAttendError) as refused:
        run_search(cfg)
    assert key in str(refused.value), str(refused.value)
    assert not (tmp_path / "out" / "data.json").exists() and not (tmp_path / "out" / "supernet").exists()


class _DataReached(Exception):
    """Raised in place of reading the data: the run got past its start-up."""


def test_a_search_of_the_papers_space_gets_past_its_start_up_to_the_data(smoke_cfg, monkeypatch):
    """The contrast of the test below, which passes: 24 layers (about 2e76 architectures) reach the data."""
    import src.pipeline.common
    from src.pipeline.run import run_search

    def reached(cfg):
        raise _DataReached

    monkeypatch.setattr(src.pipeline.common, "build_datamodule", reached)
    with pytest.raises(_DataReached):
        run_search(smoke_cfg("sst2", extra=["hardware.kernels=torch", "space.num_layers=24"]))


def test_a_space_of_more_architectures_than_a_float_holds_starts_its_search(smoke_cfg, monkeypatch):
    """``space.num_layers=100`` (about 1e377 text architectures under the priors) passes the checks; the run's
    first log line (``src/pipeline/run.py``: ``size %.3g`` of ``float(space.size())``) must not end it."""
    import src.pipeline.common
    from src.pipeline.run import run_search

    def reached(cfg):
        raise _DataReached

    monkeypatch.setattr(src.pipeline.common, "build_datamodule", reached)
    cfg = smoke_cfg("sst2", extra=["hardware.kernels=torch", "space.num_layers=100"])
    assert FunctionalSpace(100).size() > 10 ** 308
    with pytest.raises(_DataReached):
        run_search(cfg)


def _refusal(overrides: list[str]) -> str | None:
    """The ``AutoAttendError`` line of the checks, space and strategy builders for a search config, else None."""
    from src.pipeline.checks import check_config
    from src.pipeline.config import search_space, search_strategy

    cfg = compose_config("search", overrides)
    try:
        check_config(cfg, "search")
        search_strategy(cfg, search_space(cfg))
    except AutoAttendError as exc:
        return str(exc)
    return None


def test_a_graph_last_layer_left_only_identity_or_zero_under_the_priors_is_refused():
    """The contrast of the test below, which passes: under the priors (zero never alone) it is refused."""
    base = ["+task=cora", "budget=smoke", "graph.retrain.readout=last", "strategy=random", "strategy.budget=10",
            "graph.baselines=[]"]
    line = _refusal([*base, "graph.space.ops=[zero,identity]"])
    assert line is not None and line.startswith("graph.retrain.readout=last: the searched model's last layer maps")
    assert _refusal([*base, "graph.space.ops=[zero,identity,gcn]", "graph.space.priors=false"]) is None


@pytest.mark.parametrize("ops", ["[zero,identity]", "[zero]"])
def test_a_graph_last_layer_left_only_zero_without_the_priors_is_refused(ops):
    """docs/usage.md: a graph search whose children read out with their last layer over ops that leave that layer
    nothing but identity or zero fails before any work. Without the priors zero is an op like any other, so
    ``graph.space.ops=[zero,identity] graph.space.priors=false graph.retrain.readout=last`` passed: every
    architecture's last layer is zero alone, the children's output a constant, and the search's retrain ended in
    ``RuntimeError: element 0 of tensors does not require grad`` (exit status 1, a traceback) after the supernet
    and the search."""
    line = _refusal(["+task=cora", "budget=smoke", f"graph.space.ops={ops}", "graph.space.priors=false",
                     "graph.retrain.readout=last", "strategy=random", "strategy.budget=2", "graph.baselines=[]"])
    assert line is not None and line.startswith("graph.retrain.readout=last: the searched model's last layer maps")


def test_retraining_a_graph_architecture_whose_last_layer_is_zero_alone_is_one_error_line(tmp_path):
    """Without the priors such architectures lie in the search space too (``add(zero, zero)`` as the last layer,
    ops with gcn beside zero), so a search with ``graph.retrain.readout=last`` could choose one, or re-rank or rank
    one. Correct: refused before training with one ``error:`` line naming the layer and the readout (exit status
    2), as ``identity`` there is."""
    data = write_tiny_planetoid(tmp_path / "data")
    arch = tmp_path / "zero_last.yaml"
    arch.write_text(yaml.safe_dump({"layers": [
        {"kind": "add", "q_src": 0, "q_op": "gcn", "k_src": 0, "k_op": "identity"},
        {"kind": "add", "q_src": 0, "q_op": "zero", "k_src": 1, "k_op": "zero"}]}))
    proc = cli("src.retrain", "+task=cora", f"arch={arch}", "budget=smoke", "hardware=cpu", "hardware.kernels=torch",
               "graph.retrain.readout=last", "graph.retrain.seeds=1", data_dir=data, tmp=tmp_path,
               run_dir=tmp_path / "run", timeout=240)
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def _two_op_space_and_its_architectures() -> tuple[FunctionalSpace, list[Architecture]]:
    """Five layers over zero and identity under the priors: per layer an ``add`` with addend 2 zero or identity, or
    an ``attn`` (identity alone), from each earlier node: 3 x 2 x 3 x 4 x 5 x 3 x ... = 29,160 architectures."""
    space = FunctionalSpace(5, ops=("zero", "identity"))
    per_layer = [[layer for k in range(i + 1) for layer in (Layer("add", i, "identity", k, "zero"),
                                                            Layer("add", i, "identity", k, "identity"),
                                                            Layer("attn", i, "identity", k, "identity", k, "identity"))]
                 for i in range(5)]
    every = [Architecture(layers) for layers in itertools.product(*per_layer)]
    assert len(set(every)) == space.size() == 29_160 and all(space.is_valid(a) for a in every[::97])
    return space, every


def test_the_last_unseen_architecture_is_found_when_it_is_a_likely_one():
    """The contrast of the test below, which passes: the last unseen architecture, all ``attn`` (drawn with
    probability 1/3,840 per draw: a kind of two, then one source of i + 1), is found within the tries."""
    space, every = _two_op_space_and_its_architectures()
    last = Architecture(tuple(Layer("attn", i, "identity", 0, "identity", 0, "identity") for i in range(5)))
    assert space.sample_distinct(1, random.Random(0), exclude=set(every) - {last}) == [last]


def test_the_last_unseen_architecture_is_found_however_rarely_sampling_draws_it():
    """``sample_distinct`` draws per decision, not per architecture: an all-``add`` architecture with addend 2 zero
    (a kind of two, a source of i + 1, an op of two, each layer) comes once in 122,880 draws, past the 10,000 tries a
    candidate. With every other architecture excluded it said ``could not draw 1 new distinct architectures ...
    holds 29,160 (29,159 excluded)``. The evolution's and aging evolution's fall-back (``_unseen_child``: a random
    unseen architecture when the parent's mutations are all seen, "so the search still scores its whole budget,
    which the config checks keep within the space's size") and the random search rely on it: a budget the config
    accepts (at most the space's size) can still end the search in this error, after the supernet has trained.
    Correct: the unseen architecture is returned (enumerating what is left once random draws fail, say)."""
    space, every = _two_op_space_and_its_architectures()
    rare = Architecture(tuple(Layer("add", i, "identity", 0, "zero") for i in range(5)))
    assert space.sample_distinct(1, random.Random(0), exclude=set(every) - {rare}) == [rare]


def test_the_listed_fallback_draws_among_the_unseen_at_random():
    """Once draws fail (``max_tries=1``), the unseen architectures are drawn from at random, not in the listing's
    order: two rare unseen ones each come first under some seed."""
    space, every = _two_op_space_and_its_architectures()
    rare = [Architecture(tuple(Layer("add", i, "identity", k, "zero") for i in range(5))) for k in (0, 0)]
    rare[1] = Architecture((*rare[0][:4], Layer("add", 4, "identity", 4, "zero")))
    firsts = {space.sample_distinct(1, random.Random(seed), exclude=set(every) - set(rare), max_tries=1)[0]
              for seed in range(12)}
    assert firsts == set(rare)


@pytest.mark.parametrize("space", [
    FunctionalSpace(2, ops=("zero", "identity", "gcn"), priors=False, kinds=("add", "attn")),
    FunctionalSpace(2, ops=("identity", "gcn"), priors=False, kinds=("attn",)),
    FunctionalSpace(3, ops=("zero", "identity"), priors=True, kinds=("add", "attn")),
    FunctionalSpace(2, ops=("zero", "identity", "gcn"), priors=True, last_layer_ops=("zero", "gcn")),
], ids=["no_priors", "attn_no_priors", "priors", "last_layer_ops"])
def test_a_spaces_listing_is_its_architectures_each_once(space):
    listed = list(space.architectures())
    assert len(listed) == len(set(listed)) == space.size() and all(space.is_valid(a) for a in listed)


def test_a_graph_child_whose_last_layer_keeps_a_non_zero_op_is_built_under_the_last_readout():
    """Only a last layer whose output is zero whatever its input is refused: ``add`` of one zero addend and a gcn,
    or ``attn`` with zero Q and K (uniform attention over V), map to the classes; ``attn`` with a zero V does not."""
    from src.models.graph import GraphNet

    first = Layer("add", 0, "gcn", 0, "identity")
    for last in (Layer("add", 1, "zero", 1, "gcn"), Layer("add", 1, "gcn", 0, "zero"),
                 Layer("attn", 1, "zero", 1, "zero", 1, "gcn")):
        GraphNet.child(5, 3, Architecture((first, last)), hidden=8, readout="last")
    with pytest.raises(AutoAttendError, match="layer 1: its output is zero whatever the input"):
        GraphNet.child(5, 3, Architecture((first, Layer("attn", 1, "gcn", 1, "gcn", 1, "zero"))), hidden=8,
                       readout="last")
