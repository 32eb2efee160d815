"""``+task=graph_file`` with several graphs in the file (a ``batch`` array): inductive, as PPI.

The reader against PyG's own subgraph extraction, on a file whose graphs' rows are interleaved;
PPI's graphs written to one file serve the same batches as ``+task=ppi`` and search the same, bit
for bit; every bad input as one line; the command line with ``src.predict`` numbering the nodes
as the file's rows and giving the recorded test accuracy back.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

from src.data.graph_file import GraphFileDataModule
from src.utils.errors import AutoAttendError
from tests.helpers import cli, write_tiny_ppi
from tests.test_graph_file import load, write_npz, write_pt

CLASSES, FEATURES = 3, 5
# graph id -> split: three training graphs, one validation, two test; ids need not be 0..G-1
GRAPH_SPLITS = {0: "train_mask", 2: "train_mask", 5: "train_mask", 7: "val_mask", 8: "test_mask", 11: "test_mask"}
MASKS = ("train_mask", "val_mask", "test_mask")


def several_graphs(seed: int = 0, unlabelled: int = 2) -> dict[str, np.ndarray]:
    """Six small graphs (:data:`GRAPH_SPLITS`) whose edges mostly join nodes of one class, written
    with their rows and their edges shuffled (a graph's nodes and edges are not contiguous in the
    file); in every graph the last ``unlabelled`` nodes have label -1 and no split."""
    rng = np.random.default_rng(seed)
    xs, ys, edges, graph_of, masks, offset = [], [], [], [], {m: [] for m in MASKS}, 0
    for g, split in GRAPH_SPLITS.items():
        n = 9 + g
        y = rng.integers(0, CLASSES, n)
        y[:CLASSES] = np.arange(CLASSES)
        x = rng.random((n, FEATURES)).astype(np.float32)
        x[np.arange(n), y] += 1.0
        src = rng.integers(0, n, 4 * n)
        dst = np.array([rng.choice(np.flatnonzero(y == y[s])) for s in src])
        edges.append(np.stack([src, dst]) + offset)
        labelled = np.arange(n) < n - unlabelled
        y[~labelled] = -1
        xs.append(x), ys.append(y), graph_of.append(np.full(n, g))
        for m in MASKS:
            masks[m].append(labelled & (m == split))
        offset += n
    perm = rng.permutation(offset)  # row perm[i] of the file holds node i
    inverse = np.argsort(perm)
    arrays = {"x": np.concatenate(xs), "y": np.concatenate(ys), "batch": np.concatenate(graph_of),
              **{m: np.concatenate(v) for m, v in masks.items()}}
    arrays = {k: v[inverse] for k, v in arrays.items()}
    edge_index = np.concatenate(edges, axis=1)
    arrays["edge_index"] = perm[edge_index[:, rng.permutation(edge_index.shape[1])]].astype(np.int64)  # graphs mixed
    return arrays


def test_several_graphs_are_served_inductively(tmp_path):
    """Each graph as PyG's ``Data.subgraph`` extracts it from the whole file; training graphs merged
    ``batch_size`` at a time, a new order each epoch; validation and test graphs in one batch each;
    :meth:`node_batches` numbers every node as its row in the file."""
    from torch_geometric.data import Data

    arrays = several_graphs()
    dm = load(write_npz(tmp_path / "g.npz", arrays), batch_size=2)
    assert dm.graph is None and (dm.num_features, dm.num_classes) == (FEATURES, CLASSES)
    whole = Data(**{k: torch.from_numpy(v) for k, v in arrays.items()})
    whole.y = whole.y.long()
    expected = {m: [whole.subgraph(whole.batch == g) for g, s in GRAPH_SPLITS.items() if s == m] for m in MASKS}
    assert len(dm.train_graphs) == 3
    for ours, pygs in zip(dm.train_graphs, expected["train_mask"]):
        for key in ("x", "edge_index", "y", *MASKS):
            assert torch.equal(ours[key], pygs[key].bool() if key in MASKS else pygs[key]), key
        assert ours.train_mask.any() and not (ours.val_mask.any() or ours.test_mask.any())
    for batch, split in zip(dm.eval_batches, ("val_mask", "test_mask")):
        graphs = expected[split]
        assert batch["x"].size(0) == sum(g.num_nodes for g in graphs)
        assert torch.equal(batch["y"], torch.cat([g.y for g in graphs]))
        assert torch.equal(batch[split], torch.cat([g[split] for g in graphs]).bool())
        assert not batch["train_mask"].any()
    assert dm.split_batches("val") == [dm.eval_batches[0]] and dm.split_batches("test") == [dm.eval_batches[1]]
    ids = []
    for nodes, batch in dm.node_batches():
        assert torch.equal(batch["x"], whole.x[nodes]) and torch.equal(batch["y"], whole.y[nodes])
        ids.append(nodes)
    assert sorted(torch.cat(ids).tolist()) == list(range(whole.num_nodes))
    orders = set()
    loader = dm.train_loader(seed=3)
    for epoch in range(6):
        loader.sampler.set_epoch(epoch)
        steps = list(loader)
        assert [int(b["x"].size(0)) > 0 for b in steps] == [True, True]  # 3 graphs, 2 a step
        assert sum(int(b["train_mask"].sum()) for b in steps) == int(whole.train_mask.sum())
        orders.add(tuple(int(b["x"].size(0)) for b in steps))
    assert len(orders) > 1
    one = load(tmp_path / "g.npz")
    assert len(list(one.train_loader(seed=3))) == 3  # batch_size 1: a graph a step


def test_sparse_features_with_several_graphs(tmp_path):
    arrays = several_graphs()
    dense = load(write_npz(tmp_path / "g.npz", arrays))
    sparse = load(tmp_path / "g.npz", sparse_features=True, batch_size=3)
    assert not dense.eval_batches[0]["x"].is_sparse
    for a, b in zip(dense.eval_batches, sparse.eval_batches):
        assert b["x"].is_sparse and torch.equal(b["x"].to_dense(), a["x"])
    (step,) = list(sparse.train_loader(seed=0))
    assert step["x"].is_sparse and step["x"].size(0) == sum(g.num_nodes for g in dense.train_graphs)


@pytest.mark.slow  # several graphs from one file: the tests above and test_several_graphs_through_the_command_line
def test_ppi_written_to_one_file_serves_and_searches_as_ppi(tmp_path):
    """PPI's graphs (the tiny PPI-format fixture through PyG's reader) written to one .pt file with
    graph ids (the training graphs one id each; the validation batch one id, as is the test batch:
    a merged batch is one graph of disjoint parts) serve the batches ``+task=ppi`` serves, and a
    smoke search with PPI's protocol gives its supernet metrics, candidate scores and retrained
    seeds bit for bit."""
    from torch_geometric.data import Data

    from src.data.ppi import PPIDataModule

    data = write_tiny_ppi(tmp_path / "d", graphs=(3, 1, 2))
    ppi = PPIDataModule(data_dir=str(data), cache_dir=str(tmp_path / "cache"), download=False, batch_size=2)
    ppi.setup()
    graphs = [*ppi.train_graphs, *(Data(**batch) for batch in ppi.eval_batches)]
    arrays, offset = {k: [] for k in ("x", "edge_index", "y", "batch", *MASKS)}, 0
    for g, graph in enumerate(graphs):
        for key in ("x", "y", *MASKS):
            arrays[key].append(graph[key])
        arrays["edge_index"].append(graph.edge_index + offset)
        arrays["batch"].append(torch.full((graph.num_nodes,), g))
        offset += graph.num_nodes
    merged = {k: torch.cat(v, dim=1 if k == "edge_index" else 0) for k, v in arrays.items()}
    path = write_pt(tmp_path / "ppi.pt", merged)
    dm = load(path, batch_size=2)
    assert dm.multilabel and dm.metric == "micro_f1" and dm.num_classes == ppi.num_classes == 5
    assert len(dm.train_graphs) == 3
    for ours, theirs in zip(dm.train_graphs, ppi.train_graphs):
        for key in ("x", "edge_index", "y", *MASKS):
            assert torch.equal(ours[key], theirs[key]), key
    for ours, theirs in zip(dm.eval_batches, ppi.eval_batches):
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    runs = {"ppi": tmp_path / "ppi", "file": tmp_path / "file"}
    file_task = ["+task=graph_file", f"task.path={path}", "task/protocol=ppi"]
    for name, task in (("ppi", ["+task=ppi"]), ("file", file_task)):
        proc = cli("src.search", *task, "budget=smoke", "hardware=cpu", data_dir=data, tmp=tmp_path, run_dir=runs[name])
        assert proc.returncode == 0, proc.stderr[-3000:]
    for record in ("supernet/metrics.csv", "search/population.jsonl"):
        assert (runs["ppi"] / record).read_text() == (runs["file"] / record).read_text(), record
    for record in ("retrain/results.json", "baselines/gcn/results.json"):  # the baselines with PPI's settings too
        a, b = (json.loads((runs[name] / record).read_text()) for name in ("ppi", "file"))
        assert (a.pop("protocol").pop("task"), b.pop("protocol").pop("task")) == ("ppi", "graph_file")
        assert a == b, record
    assert json.loads((runs["file"] / "baselines/gcn/results.json").read_text())["hparams"]["hidden"] == 256


def _with(arrays: dict, **changes) -> dict:
    return {**{k: v.copy() for k, v in arrays.items()}, **changes}


def test_bad_several_graph_files_are_one_line_naming_the_file(tmp_path):
    arrays = several_graphs()
    g = arrays["batch"]
    first_val, first_train = int(np.flatnonzero(g == 7)[0]), int(np.flatnonzero(g == 0)[0])
    across = _with(arrays, edge_index=np.concatenate([arrays["edge_index"], [[first_train], [first_val]]], axis=1))
    both = _with(arrays)
    both["test_mask"][first_val] = True
    both["val_mask"][first_val] = False
    nowhere = _with(arrays)
    for m in MASKS:
        nowhere[m][g == 2] = False
    edge = arrays["edge_index"].shape[1]
    cases = {
        "across": (across, f"edge {edge} joins node {first_train} (graph 0) and node {first_val} (graph 7); with a "
                           "'batch' array every edge stays within one graph"),
        "two_splits": (both, "graph 7 ('batch') has nodes in 'val_mask' and 'test_mask'; with several graphs each "
                             "graph's nodes are in one split"),
        "no_split": (nowhere, "graph 2 ('batch') has no node in train_mask, val_mask or test_mask"),
        "float_ids": (_with(arrays, batch=g.astype(np.float32)), "'batch' must be (N,) integer graph ids"),
        "short_ids": (_with(arrays, batch=g[:-1]), f"'batch' has {len(g) - 1} entries for {len(g)} nodes"),
        "negative_id": (_with(arrays, batch=np.where(g == 11, -3, g)), "'batch' holds -3; graph ids are integers"),
    }
    for name, (bad, message) in cases.items():
        path = write_npz(tmp_path / f"{name}.npz", bad)
        with pytest.raises(AutoAttendError) as err:
            load(path)
        text = str(err.value)
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, (name, text)
    path = write_npz(tmp_path / "g.npz", arrays)
    with pytest.raises(AutoAttendError, match="task.batch_size: expected an integer >= 1, got 0"):
        GraphFileDataModule(path=str(path), batch_size=0)
    with pytest.raises(AutoAttendError, match="task.test_graphs: expected an integer >= 1, got 0"):
        GraphFileDataModule(path=str(path), test_graphs=0)
    n = len(arrays["y"])
    for name, short in (("several", _with(arrays, y=arrays["y"][:-1])),
                        ("one", {k: v for k, v in _with(arrays, y=arrays["y"][:-1]).items() if k != "batch"})):
        short_path = write_npz(tmp_path / f"short_{name}.npz", short)
        with pytest.raises(AutoAttendError, match=f"feature/label size mismatch: {n} feature rows but {n - 1} labels"):
            load(short_path, split="random", train_per_class=1, val_size=1, test_size=1, val_graphs=1, test_graphs=1)
    with pytest.raises(AutoAttendError, match="6 graphs \\('batch'\\), too few for task.val_graphs=3 \\+ "
                                              "task.test_graphs=3 and at least one training graph"):
        load(path, split="random", val_graphs=3, test_graphs=3)


def test_a_random_split_of_several_graphs_draws_whole_graphs(tmp_path):
    """``split=random`` with a ``batch`` array: ``val_graphs`` and ``test_graphs`` whole graphs drawn
    from ``split_seed``, the rest train; every labelled node of a graph in its graph's split, the
    unlabelled in none; the file's masks unused; multi-label targets too."""
    arrays = several_graphs()
    g, labelled = torch.from_numpy(arrays["batch"]), torch.from_numpy(arrays["y"]) >= 0
    without_masks = {k: v for k, v in arrays.items() if k not in MASKS}
    path = write_npz(tmp_path / "g.npz", without_masks)
    splits = {}
    for seed in range(4):
        dm = load(path, split="random", split_seed=seed, val_graphs=1, test_graphs=2)
        whole = {m: torch.cat([d[m] for d in dm.train_graphs] + [b[m] for b in dm.eval_batches]) for m in MASKS}
        order = dm.node_ids
        held = {}
        for m in MASKS:
            held[m] = sorted(set(g[order][whole[m]].tolist()))
            for graph in held[m]:  # all of the graph's labelled nodes, in this split only
                assert torch.equal(whole[m][g[order] == graph], labelled[order][g[order] == graph])
        assert [len(held[m]) for m in MASKS] == [3, 1, 2] and not set(held["val_mask"]) & set(held["test_mask"])
        assert sorted(sum(held.values(), [])) == sorted(GRAPH_SPLITS)
        splits[seed] = held
        again = load(path, split="random", split_seed=seed, val_graphs=1, test_graphs=2)
        assert all(torch.equal(a.x, b.x) for a, b in zip(again.train_graphs, dm.train_graphs))
    assert len({tuple(h["test_mask"]) for h in splits.values()}) > 1  # the seed draws
    ignored = load(write_npz(tmp_path / "m.npz", arrays), split="random", split_seed=0, val_graphs=1, test_graphs=2)
    assert torch.equal(ignored.node_ids, load(path, split="random", split_seed=0, val_graphs=1, test_graphs=2).node_ids)
    multi = {**without_masks, "y": (np.random.default_rng(1).random((len(g), 4)) < 0.4).astype(np.float32)}
    dm = load(write_npz(tmp_path / "ml.npz", multi), split="random", val_graphs=2, test_graphs=2)
    assert dm.multilabel and len(dm.train_graphs) == 2 and all(bool(d.train_mask.all()) for d in dm.train_graphs)


@pytest.mark.parametrize("key", ["batch_size", "val_graphs", "test_graphs"])
def test_the_several_graph_settings_are_checked_before_torch_loads(key):
    from src.pipeline.checks import check_config
    from tests.conftest import compose_config

    cfg = compose_config("search", ["+task=graph_file", "task.path=g.npz", f"task.{key}=0"])
    with pytest.raises(AutoAttendError, match=f"task.{key}: expected an integer >= 1, got 0"):
        check_config(cfg, "search")


def test_several_graphs_through_the_command_line(tmp_path):
    """Search, retrain and baseline on a file of six graphs; ``src.predict`` gives a row per row of
    the file (the unlabelled nodes too), whose test rows give the recorded test accuracy; and
    ``src.evaluate`` reproduces the run."""
    arrays = several_graphs()
    path = write_npz(tmp_path / "g.npz", arrays)
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=graph_file", f"task.path={path}", "task.batch_size=2", "budget=smoke",
               "hardware=cpu", data_dir=tmp_path, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 graphs (3 / 1 / 2 train / val / test)" in proc.stderr + proc.stdout
    data = json.loads((run_dir / "data.json").read_text())
    assert data["train_graphs"] == 3 and data["classes"] == CLASSES
    proc = cli("src.predict", str(run_dir), data_dir=tmp_path, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [int(r["node"]) for r in rows] == list(range(len(arrays["y"])))
    assert [int(r["label"]) for r in rows] == arrays["y"].tolist()
    for name in ("train", "val", "test"):
        assert [r["split"] == name for r in rows] == arrays[f"{name}_mask"].tolist()
    seed = proc.stderr.split("seed_")[1].split("/")[0]
    recorded = json.loads((run_dir / "retrain" / f"seed_{seed}.json").read_text())
    test = [r for r in rows if r["split"] == "test"]
    assert sum(r["prediction"] == r["label"] for r in test) / len(test) == pytest.approx(recorded["test_acc"], abs=1e-6)
    proc = cli("src.evaluate", str(run_dir), data_dir=tmp_path, tmp=tmp_path)
    assert proc.returncode == 0 and "reproduce their recorded validation and test scores" in proc.stdout, \
        proc.stderr[-3000:]


def test_task_protocol_ppi_gives_a_file_ppis_protocol():
    """``task/protocol=ppi`` (the README's way to run a file of graphs as PPI) composes the graph
    settings ``+task=ppi`` has, PPI's 2 graphs a step, and the baselines' PPI settings; without it a
    graph_file run has Planetoid's protocol, as Cora."""
    from omegaconf import OmegaConf

    from src.pipeline.checks import check_config
    from src.pipeline.config import read_arch, settings_task
    from tests.conftest import compose_config
    from tests.helpers import ROOT

    assert "+task=graph_file task.path=<file> task/protocol=ppi" in " ".join((ROOT / "README.md").read_text().split())
    ours = compose_config("search", ["+task=graph_file", "task.path=g.npz", "task/protocol=ppi"])
    check_config(ours, "search")
    ppi, cora = compose_config("search", ["+task=ppi"]), compose_config("search", ["+task=cora"])
    assert OmegaConf.to_container(ours.graph, resolve=True) == OmegaConf.to_container(ppi.graph, resolve=True)
    assert ours.task.datamodule.batch_size == ppi.task.datamodule.batch_size == 2
    assert settings_task(ours) == settings_task(ppi) == "ppi"
    assert read_arch("gcn", settings_task(ours)).hparams["hidden"] == 256
    plain = compose_config("search", ["+task=graph_file", "task.path=g.npz"])
    assert OmegaConf.to_container(plain.graph, resolve=True) == OmegaConf.to_container(cora.graph, resolve=True)
    assert plain.task.datamodule.batch_size == 1 and settings_task(plain) == "graph_file"
    assert read_arch("gcn", settings_task(plain)).hparams["hidden"] == 16


def test_many_graph_protocol_trains_on_every_core():
    """PPI's protocol leaves ``graph.threads`` to torch (every core: its children train in this
    process, no worker processes beside them); Planetoid's keeps one thread a process."""
    from tests.conftest import compose_config

    for task in (["+task=ppi"], ["+task=graph_file", "task.path=g.npz", "task/protocol=ppi"]):
        assert compose_config("search", task).graph.threads is None
    for task in (["+task=cora"], ["+task=graph_file", "task.path=g.npz"]):
        assert compose_config("search", task).graph.threads == 1
