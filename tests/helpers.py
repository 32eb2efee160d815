"""Shared test helpers: tiny well-formed datasets written on the fly, and the real-data location."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Words by sentiment class (0 very negative ... 4 very positive); all are common lower-case
# GloVe 6B words, so pretrained vectors cover them.
SENTIMENT_WORDS = {
    0: ["awful", "terrible", "horrible"],
    1: ["bad", "dull", "boring"],
    3: ["good", "nice", "fun"],
    4: ["great", "brilliant", "wonderful"],
}
FILLER_WORDS = ["the", "movie", "film", "is", "a", "plot", "story", "was", "and", "actors", "very", "this"]


def _word_label(word: str) -> int:
    for label, words in SENTIMENT_WORDS.items():
        if word.lower() in words:
            return label
    return 2


def _span_label(words: list[str]) -> int:
    """The most extreme word sentiment in a span (2 when none)."""
    return max((_word_label(w) for w in words), key=lambda y: (abs(y - 2), y))


def _tree(words: list[str], rng: random.Random, label: int | None = None) -> str:
    """A random binary PTB tree over ``words``; ``label`` overrides the root label."""
    if label is None:
        label = _span_label(words)
    if len(words) == 1:
        return f"({label} {words[0]})"
    cut = rng.randint(1, len(words) - 1)
    return f"({label} {_tree(words[:cut], rng)} {_tree(words[cut:], rng)})"


def _sentence(label: int, rng: random.Random) -> list[str]:
    words = rng.sample(FILLER_WORDS, rng.randint(3, 7))
    if label != 2:
        words += rng.sample(SENTIMENT_WORDS[label], rng.randint(1, 2))
    rng.shuffle(words)
    # Some capitalised first words, as in real sentences (exercises the lower-case lookup).
    if rng.random() < 0.3:
        words[0] = words[0].capitalize()
    return words


def write_tiny_sst(root: Path, n_train: int = 40, n_dev: int = 10, n_test: int = 10, seed: int = 0) -> Path:
    """Write ``root/sst/trees/{train,dev,test}.txt`` with random well-formed binary PTB trees.

    Sentence labels cycle through 0-4 (so every split has every class when n >= 5) and each
    non-neutral sentence contains 1-2 words of its class, so a model can learn something.
    Returns ``root``: pass it as ``SSTDataModule(data_dir=...)``.
    """
    rng = random.Random(seed)
    trees_dir = Path(root) / "sst" / "trees"
    trees_dir.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        labels = [i % 5 for i in range(count)]
        rng.shuffle(labels)
        lines = [_tree(_sentence(y, rng), rng, label=y) for y in labels]
        (trees_dir / f"{name}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Path(root)


def real_data_dir(*required: str) -> Path | None:
    """The folder of real benchmark files: ``$AUTOATTEND_DATA_DIR`` if set, else
    ``<repo>/../shared/data``. None when it is missing or lacks any of the ``required`` relative paths."""
    env = os.environ.get("AUTOATTEND_DATA_DIR")
    path = Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir() or not all((path / rel).exists() for rel in required):
        return None
    return path


def real_cora_dir() -> Path:
    """The data folder holding the real Cora files (:func:`real_data_dir`); skips the calling test,
    saying where to put them, when there is none."""
    data = real_data_dir("planetoid/Cora/raw/ind.cora.graph")
    if data is None:
        pytest.skip("real Cora files not found (set AUTOATTEND_DATA_DIR or put them in "
                    "../shared/data/planetoid/Cora/raw)")
    return data


# ---- graphs ----------------------------------------------------------------------------------

def _tiny_graph(num_nodes: int, num_classes: int, num_features: int, rng, words_per_class: int = 6):
    """Class ids, binary bag-of-words features (3 words of the node's class + 2 random ones) and a
    homophilous undirected edge list (each node links to 2 nodes, of its class 80 % of the time)."""
    import numpy as np

    labels = np.array([i % num_classes for i in range(num_nodes)])
    rng.shuffle(labels)
    feats = np.zeros((num_nodes, num_features), dtype=np.float32)
    for i, c in enumerate(labels):
        own = rng.choice(np.arange(c * words_per_class, (c + 1) * words_per_class), min(3, words_per_class),
                         replace=False)
        feats[i, own] = 1.0
        feats[i, rng.choice(num_features, 2, replace=False)] = 1.0
    by_class = {c: np.flatnonzero(labels == c) for c in range(num_classes)}
    edges = set()
    for i, c in enumerate(labels):
        for _ in range(2):
            j = int(rng.choice(by_class[c])) if rng.random() < 0.8 else int(rng.integers(num_nodes))
            if j != i:
                edges.add((min(i, j), max(i, j)))
    return labels, feats, sorted(edges)


def write_tiny_planetoid(root: Path, name: str = "cora", num_classes: int = 3, train_per_class: int = 5,
                         num_test: int = 60, num_unlabelled: int = 25, num_features: int = 24, edges: bool = True,
                         extra_label_rows: int = 0, seed: int = 0) -> Path:
    """Write ``root/planetoid/<Name>/raw/ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}`` in the
    Planetoid format (pickled scipy CSR features, one-hot numpy labels, adjacency dict, test ids).

    Node order as in the real files: the labelled training nodes, then 500 validation nodes (the
    reader takes the 500 nodes after the training ones), then unlabelled ones, then the test nodes
    (``tx``/``ty``, their ids in ``test.index`` in shuffled order). ``edges=False`` writes an
    adjacency with no edges; ``extra_label_rows`` appends rows to ``ally`` (a feature/label size
    mismatch). Returns ``root`` (pass it as ``paths.data_dir``).
    """
    import pickle
    from collections import defaultdict

    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    num_train = num_classes * train_per_class
    num_all = num_train + 500 + num_unlabelled
    n = num_all + num_test
    labels, feats, edge_list = _tiny_graph(n, num_classes, num_features, rng)
    # the training nodes: exactly train_per_class of each class
    order = np.concatenate([np.flatnonzero(labels == c)[:train_per_class] for c in range(num_classes)])
    rest = np.setdiff1d(np.arange(n), order)
    perm = np.concatenate([order, rest])
    inverse = np.empty(n, dtype=int)
    inverse[perm] = np.arange(n)
    labels, feats = labels[perm], feats[perm]
    edge_list = [(int(inverse[i]), int(inverse[j])) for i, j in edge_list]
    onehot = np.eye(num_classes, dtype=np.int64)[labels]
    test_ids = np.arange(num_all, n)
    shuffled = rng.permutation(test_ids)
    files = {
        "x": sp.csr_matrix(feats[:num_train]), "y": onehot[:num_train],
        "allx": sp.csr_matrix(feats[:num_all]),
        "ally": np.concatenate([onehot[:num_all], onehot[:extra_label_rows]]) if extra_label_rows else onehot[:num_all],
        "tx": sp.csr_matrix(feats[shuffled]), "ty": onehot[shuffled],
    }
    graph = defaultdict(list)
    for i in range(n):
        graph[i] = []
    if edges:
        for i, j in edge_list:
            graph[i].append(j)
            graph[j].append(i)
    raw = Path(root) / "planetoid" / {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}[name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for key, value in {**files, "graph": graph}.items():
        with open(raw / f"ind.{name}.{key}", "wb") as f:
            pickle.dump(value, f, protocol=2)
    # test.index lists each test node's id in the order of the tx/ty rows
    (raw / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in shuffled))
    return Path(root)


def write_tiny_ppi(root: Path, graphs: tuple[int, int, int] = (2, 1, 1), nodes_per_graph: int = 30,
                   num_features: int = 8, num_labels: int = 5, seed: int = 0) -> Path:
    """Write ``root/ppi/raw/{train,valid,test}_{graph.json,feats.npy,graph_id.npy,labels.npy}`` in the
    GraphSAGE PPI format: a node-link JSON graph per split (node ids 0..n-1 matching the rows of the
    .npy files), float features, one graph id per node, 0/1 multi-label targets. Labels 0..C-1 are
    the node's class one-hot, so they are learnable from the features. Returns ``root``."""
    import json

    import numpy as np

    rng = np.random.default_rng(seed)
    raw = Path(root) / "ppi" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    gid = 1
    for split, count in zip(("train", "valid", "test"), graphs):
        feats, labels, ids, links = [], [], [], []
        for _ in range(count):
            y, x, e = _tiny_graph(nodes_per_graph, num_labels, num_features, rng, words_per_class=1)
            offset = len(ids)
            feats.append(x)
            labels.append(np.eye(num_labels, dtype=np.float32)[y])
            ids += [gid] * nodes_per_graph
            links += [{"source": offset + i, "target": offset + j} for i, j in e]
            gid += 1
        nodes = [{"id": i, "test": split == "test", "val": split == "valid"} for i in range(len(ids))]
        (raw / f"{split}_graph.json").write_text(json.dumps(
            {"directed": False, "multigraph": False, "graph": {}, "nodes": nodes, "links": links}))
        np.save(raw / f"{split}_feats.npy", np.concatenate(feats))
        np.save(raw / f"{split}_labels.npy", np.concatenate(labels))
        np.save(raw / f"{split}_graph_id.npy", np.array(ids, dtype=np.int64))
    return Path(root)


def write_tiny_sst_and_planetoid(root: Path) -> Path:
    """A tiny SST (300 / 60 / 60 sentences) and a tiny Cora in one data folder (a sweep may span both
    task families); returns ``root``."""
    write_tiny_sst(root, n_train=300, n_dev=60, n_test=60)
    write_tiny_planetoid(root)
    return root


def cli_command(module: str, *args: str, data_dir: Path, tmp: Path, run_dir: Path | None = None) -> dict:
    """``subprocess`` arguments of ``python -m <module> <args> [hydra.run.dir=<run_dir>]`` from the
    repository root, offline, with data from ``data_dir`` and cache and outputs under ``tmp``."""
    env = {**os.environ, "AUTOATTEND_DATA_DIR": str(data_dir), "AUTOATTEND_CACHE_DIR": str(tmp / "cache"),
           "AUTOATTEND_OUTPUT_DIR": str(tmp / "out"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    argv = [sys.executable, "-m", module, *args]
    if run_dir is not None:
        argv.append(f"hydra.run.dir={run_dir}")
    return {"args": argv, "cwd": ROOT, "env": env}


def cli(module: str, *args: str, data_dir: Path, tmp: Path, run_dir: Path | None = None,
        timeout: int = 300) -> subprocess.CompletedProcess:
    """Run :func:`cli_command` to the end; output captured as text."""
    return subprocess.run(**cli_command(module, *args, data_dir=data_dir, tmp=tmp, run_dir=run_dir),
                          capture_output=True, text=True, timeout=timeout)


def cli_interrupted_once(path: Path, module: str, *args: str, data_dir: Path, tmp: Path, run_dir: Path,
                         wait: float = 240, signum: int = signal.SIGINT) -> subprocess.CompletedProcess:
    """Start :func:`cli_command`, press Ctrl-C (``signum``: SIGINT) as soon as ``path`` exists (or the
    command ended, or ``wait`` seconds passed) and return the finished process with its output as text."""
    command = cli_command(module, *args, data_dir=data_dir, tmp=tmp, run_dir=run_dir)
    with subprocess.Popen(**command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + wait
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def smoke_search(task: str, data_dir: Path, tmp: Path) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """``python -m src.search +task=<task> budget=smoke hardware=cpu`` into ``tmp/run``; asserts it
    succeeded and returns ``(tmp, run_dir, completed process)``."""
    run_dir = tmp / "run"
    proc = cli("src.search", f"+task={task}", "budget=smoke", "hardware=cpu", data_dir=data_dir, tmp=tmp,
               run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, run_dir, proc


def fake_graph_fits(monkeypatch, val_acc: dict) -> list:
    """Replace ``graph_stages.fit_child`` by a stand-in whose child reaches validation score
    ``val_acc[arch] + 0.01 * (seed % 2)`` (so two consecutive seeds average ``val_acc + 0.005``);
    returns the list of ``(arch, seed)`` it is called with, in order."""
    from src.pipeline import graph_stages

    trained: list = []

    class Fitted:
        history: list = []

        def __init__(self, arch, seed):
            self.score = val_acc[arch] + 0.01 * (seed % 2)

        def selected(self):
            return {"val_acc": self.score}

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        trained.append((arch, seed))
        return Fitted(arch, seed)

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    return trained


# a graph search's settings as run_settings.json holds them: space.* (the text keys, which graph runs
# record but never read) and graph.space.* (``${space.sharing}`` in conf/graph/default.yaml)
GRAPH_SEARCH_SETTINGS = {"seed": 0, "space.sharing": "full", "space.priors": True, "graph.space.sharing": "full",
                         "graph.space.priors": True, "graph.retrain.seeds": 2, "task.name": "cora",
                         "task.family": "graph", "entry": "search"}


def write_finished_run(path: Path, settings: dict, test: float) -> Path:
    """A finished run's folder as ``src.report`` reads it: ``run_settings.json`` and a ``summary.json`` with the
    retrained test score ``test`` (a fraction) over seeds 0 and 1."""
    path.mkdir(parents=True)
    (path / "run_settings.json").write_text(json.dumps(settings))
    retrain = {"test_acc_mean": test, "test_acc_std": 0.01, "val_acc_mean": 0.7, "seeds": [0, 1],
               "selection_rule": "..."}
    (path / "summary.json").write_text(json.dumps({"task": settings["task.name"], "best_val_acc_supernet": 0.5,
                                                   "retrain": retrain, "seconds": {"data": 6.0}}))
    return path


# A Hydra app whose jobs write the records src.report reads (text runs, seeds as swept), some crashing with an
# exception (``crash``: their seeds; the message "boom <seed>" + ``second``) or stopped by a SIGINT (``interrupt``),
# run through src.pipeline.run.entry as the real entry points are: the sweep paths of hydra_entry without a model.
TOY_SWEEP_APP = """
import json, os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import hydra
from hydra.core.hydra_config import HydraConfig
from src.pipeline import run


def job(cfg):
    out = Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_settings.json").write_text(json.dumps({{"seed": cfg.seed, "task.name": "sst2", "task.family": "text",
                                                       "entry": "search", "retrain.seeds": 2}}))
    if cfg.seed in {crash}:
        raise RuntimeError(f"boom {{cfg.seed}}{second}")
    if cfg.seed in {interrupt}:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    retrain = {{"test_acc_mean": 0.7, "test_acc_std": 0.01, "val_acc_mean": 0.7, "seeds": [0, 1]}}
    (out / "summary.json").write_text(json.dumps({{"task": "sst2", "best_val_acc_supernet": 0.8, "retrain": retrain,
                                                  "seconds": {{"data": 1.0}}}}))
    return {{}}

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    return run.entry(job, cfg)

if __name__ == "__main__":
    run.run_and_exit(app)
"""


def run_toy_sweep(tmp_path: Path, crash: tuple, interrupt: tuple = (), second: str = "") -> subprocess.CompletedProcess:
    """:data:`TOY_SWEEP_APP` over seeds 0-3 into ``tmp_path/sweep``: the finished process."""
    app = TOY_SWEEP_APP.format(root=str(ROOT), crash=crash, interrupt=interrupt, second=second)
    (tmp_path / "app.py").write_text(textwrap.dedent(app))
    return subprocess.run([sys.executable, "app.py", "-m", "+seed=0,1,2,3", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
