"""``+task=graph_file``: a graph of one's own from a .npz or .pt file (src/data/graph_file.py).

The reader on files the tests write (both formats give the same graph; the options; every bad
input as one line naming the file and the array), then the whole command line: a smoke search
on a graph with unlabelled nodes, ``src.predict`` classifying every node and ``src.evaluate``
reproducing the run from another folder, and a missing ``task.path`` refused before torch loads.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.graph_file import GraphFileDataModule
from src.utils.errors import AutoAttendError, DataNotFoundError
from tests.helpers import ROOT, cli, cli_command, real_cora_dir

NODES, FEATURES, CLASSES, UNLABELLED = 40, 6, 3, 4


def graph_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A small graph whose edges mostly join nodes of one class: ``NODES`` nodes, the last
    ``UNLABELLED`` of them unlabelled (-1) and in no split; 12 / 12 / 12 train / val / test."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, NODES)
    y[:CLASSES] = np.arange(CLASSES)  # every class present
    x = rng.random((NODES, FEATURES)).astype(np.float32)
    x[np.arange(NODES), y] += 1.0
    src = rng.integers(0, NODES, 160)
    same = np.array([rng.choice(np.flatnonzero(y == y[s])) for s in src])
    dst = np.where(rng.random(160) < 0.8, same, rng.integers(0, NODES, 160))
    masks = {name: np.zeros(NODES, bool) for name in ("train_mask", "val_mask", "test_mask")}
    for i, name in enumerate(masks):
        masks[name][12 * i:12 * (i + 1)] = True
    y[NODES - UNLABELLED:] = -1
    return {"x": x, "edge_index": np.stack([src, dst]).astype(np.int64), "y": y.astype(np.int64), **masks}


def write_npz(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


def write_pt(path: Path, arrays: dict) -> Path:
    torch.save({k: torch.as_tensor(v) for k, v in arrays.items()}, path)
    return path


def load(path: Path, **kwargs) -> GraphFileDataModule:
    dm = GraphFileDataModule(path=str(path), **kwargs)
    dm.setup()
    return dm


def test_npz_and_pt_files_give_the_same_graph(tmp_path):
    arrays = graph_arrays()
    a, b = load(write_npz(tmp_path / "g.npz", arrays)), load(write_pt(tmp_path / "g.pt", arrays))
    for dm in (a, b):
        assert (dm.num_features, dm.num_classes) == (FEATURES, CLASSES)
        assert dm.graph["x"].dtype == torch.float32 and not dm.graph["x"].is_sparse
        assert torch.equal(dm.graph["x"], torch.from_numpy(arrays["x"]))
        assert torch.equal(dm.graph["edge_index"], torch.from_numpy(arrays["edge_index"]))
        assert torch.equal(dm.graph["y"], torch.from_numpy(arrays["y"]))
        for split in ("train_mask", "val_mask", "test_mask"):
            assert dm.graph[split].dtype == torch.bool and torch.equal(dm.graph[split], torch.from_numpy(arrays[split]))
        assert dm.eval_batches == [dm.graph] and dm.split_batches("val") == [dm.graph]


def test_a_pyg_data_saved_as_a_dict_is_read(tmp_path):
    """``torch.save(data.to_dict(), path)``, the way the module docstring gives for a PyG ``Data``
    (masks as 0/1 integers, extra entries ignored)."""
    from torch_geometric.data import Data

    arrays = {k: torch.as_tensor(v) for k, v in graph_arrays().items()}
    arrays["train_mask"] = arrays["train_mask"].long()
    data = Data(**arrays, note=torch.zeros(1))
    torch.save(data.to_dict(), tmp_path / "data.pt")
    dm = load(tmp_path / "data.pt")
    assert dm.num_classes == CLASSES and int(dm.graph["train_mask"].sum()) == 12


def multilabel_arrays(labels: int = 5) -> dict[str, np.ndarray]:
    """:func:`graph_arrays` with (N, ``labels``) 0/1 targets, label 0 following the first feature."""
    arrays = graph_arrays()
    rng = np.random.default_rng(1)
    y = (rng.random((NODES, labels)) < 0.3).astype(np.float32)
    y[:, 0] = arrays["x"][:, 0] > 0.5
    return {**arrays, "y": y}


def test_a_multi_label_graph_is_served_as_ppi_is(tmp_path):
    """(N, C) 0/1 targets: a multi-label task (BCE, micro-F1) with C labels, targets as float; the
    random split, per class, is refused for it."""
    arrays = multilabel_arrays()
    dm = load(write_npz(tmp_path / "ml.npz", arrays))
    assert dm.multilabel and dm.metric == "micro_f1" and dm.num_classes == 5
    assert dm.graph["y"].dtype == torch.float32 and torch.equal(dm.graph["y"], torch.from_numpy(arrays["y"]))
    single = load(write_npz(tmp_path / "g.npz", graph_arrays()))
    assert not single.multilabel and single.metric == "accuracy"
    with pytest.raises(AutoAttendError, match="task.split=random draws a per-class split of single-label nodes"):
        load(tmp_path / "ml.npz", split="random")


def test_pygs_karate_club_saved_as_the_readme_says(tmp_path):
    """The README's example: PyG's bundled KarateClub ``Data`` (34 nodes, 4 classes, a training mask
    only) saved with ``to_dict()`` and read with a drawn split: 2 / 10 / the other 16 nodes."""
    from torch_geometric.datasets import KarateClub

    data = KarateClub()[0]
    torch.save(data.to_dict(), tmp_path / "karate.pt")
    with pytest.raises(AutoAttendError, match="no 'val_mask' array"):
        load(tmp_path / "karate.pt")
    dm = load(tmp_path / "karate.pt", split="random", train_per_class=2, val_size=10, test_size=None)
    g = dm.graph
    assert (dm.num_classes, dm.num_features, g["edge_index"].size(1)) == (4, 34, 156)
    assert [int(g[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [8, 10, 16]
    assert torch.equal(g["y"], data.y) and torch.equal(g["edge_index"], data.edge_index)


def test_row_normalize_and_to_undirected(tmp_path):
    arrays = graph_arrays()
    arrays["x"][5] = 0.0  # a node without features stays zero
    arrays["edge_index"] = np.array([[0, 1, 1, 2], [1, 0, 2, 3]])  # 0-1 both ways, 1->2, 2->3
    path = write_npz(tmp_path / "g.npz", arrays)
    dm = load(path, row_normalize=True, to_undirected=True)
    sums = dm.graph["x"].sum(-1)
    assert torch.allclose(sums[torch.arange(NODES) != 5], torch.ones(NODES - 1)) and sums[5] == 0
    edges = {tuple(e) for e in dm.graph["edge_index"].t().tolist()}
    assert edges == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)} and dm.graph["edge_index"].size(1) == 6
    plain = load(path)
    assert plain.graph["edge_index"].size(1) == 4 and not torch.allclose(plain.graph["x"].sum(-1)[:5], torch.ones(5))


@pytest.mark.parametrize("settings", [{}, {"row_normalize": True, "to_undirected": True}, {"sparse_features": True}],
                         ids=["as_read", "normalized_undirected", "sparse"])
def test_another_graph_is_prepared_as_the_file_was(tmp_path, settings):
    """``prepare_graph`` (``src.predict --graph``) gives a graph's raw arrays the task's feature
    preprocessing, edges and sparsity: the file's own arrays come out as the DataModule serves them."""
    arrays = graph_arrays()
    arrays["edge_index"] = arrays["edge_index"][:, :100]
    dm = load(write_npz(tmp_path / "g.npz", arrays), **settings)
    x, edge_index = dm.prepare_graph(torch.from_numpy(arrays["x"]).double(), torch.from_numpy(arrays["edge_index"]),
                                     "other.npz")
    assert x.dtype == torch.float32 and x.is_sparse == dm.graph["x"].is_sparse == settings.get("sparse_features", False)
    assert torch.equal(x.to_dense(), dm.graph["x"].to_dense())
    assert torch.equal(edge_index, dm.graph["edge_index"])
    assert edge_index.size(1) > 100 if settings.get("to_undirected") else edge_index.size(1) == 100


def test_sparse_features_by_density_or_setting(tmp_path):
    """``auto``: sparse under 10 % non-zeros (as Planetoid serves its bag-of-words), dense otherwise;
    ``true`` / ``false`` force it; the values are the same either way."""
    arrays = graph_arrays()
    mostly_zero = {**arrays, "x": np.zeros((NODES, 60), np.float32)}  # one non-zero a row: 1.7 %
    mostly_zero["x"][np.arange(NODES), np.arange(NODES)] = 2.0
    sparse_path = write_npz(tmp_path / "sparse.npz", mostly_zero)
    dense_path = write_npz(tmp_path / "dense.npz", arrays)
    assert load(sparse_path).graph["x"].is_sparse and not load(dense_path).graph["x"].is_sparse
    assert not load(sparse_path, sparse_features=False).graph["x"].is_sparse
    forced = load(dense_path, sparse_features=True).graph["x"]
    assert forced.is_sparse and torch.equal(forced.to_dense(), torch.from_numpy(arrays["x"]))
    assert torch.equal(load(sparse_path).graph["x"].to_dense(), torch.from_numpy(mostly_zero["x"]).float())
    with pytest.raises(AutoAttendError, match="task.sparse_features: expected auto, true or false, got 1"):
        GraphFileDataModule(path=str(dense_path), sparse_features=1)
    # one graph: every node's features are the models' input, so its whole x is measured (training rows 20 % set,
    # the others 1 %: 6.7 % in all), not its training rows alone as a file of several graphs is
    uneven = {**arrays, "x": np.zeros((NODES, 100), np.float32)}
    uneven["x"][np.arange(NODES), np.arange(NODES)] = 1.0
    uneven["x"][arrays["train_mask"], 50:69] = 1.0
    assert round(float((uneven["x"] != 0).mean()), 3) == 0.067
    assert load(write_npz(tmp_path / "uneven.npz", uneven)).graph["x"].is_sparse


def test_a_random_split_is_planetoids_kind_drawn_from_its_own_seed(tmp_path):
    """``split=random``: ``train_per_class`` labelled nodes of each class, then ``val_size`` and
    ``test_size`` (None: the rest) of the other labelled nodes, disjoint, never an unlabelled node;
    the same split for the same ``split_seed`` (whatever the run's seed), another for another; the
    file's masks, when it has them, are not read."""
    arrays = graph_arrays()
    no_masks = {k: v for k, v in arrays.items() if not k.endswith("_mask")}
    path = write_npz(tmp_path / "g.npz", no_masks)
    with pytest.raises(AutoAttendError, match="no 'train_mask' array; .* \\(or task.split=random to draw the split\\)"):
        load(path)
    sizes = {"train_per_class": 3, "val_size": 10, "test_size": 12}
    dm = load(path, split="random", **sizes)
    g = dm.graph
    labelled = torch.from_numpy(arrays["y"]) >= 0
    assert torch.bincount(g["y"][g["train_mask"]], minlength=CLASSES).tolist() == [3] * CLASSES
    assert [int(g[m].sum()) for m in ("val_mask", "test_mask")] == [10, 12]
    assert int((g["train_mask"].long() + g["val_mask"].long() + g["test_mask"].long()).max()) == 1
    assert not (g["train_mask"] | g["val_mask"] | g["test_mask"])[~labelled].any()
    again = load(path, split="random", seed=7, **sizes).graph  # the run's seed does not move it
    other = load(path, split="random", split_seed=1, **sizes).graph
    for split in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(again[split], g[split])
    assert not all(torch.equal(other[s], g[s]) for s in ("train_mask", "val_mask", "test_mask"))
    rest = load(path, split="random", train_per_class=3, val_size=10, test_size=None).graph
    assert int(rest["test_mask"].sum()) == int(labelled.sum()) - 3 * CLASSES - 10
    with_masks = load(write_npz(tmp_path / "m.npz", arrays), split="random", **sizes).graph
    assert torch.equal(with_masks["train_mask"], g["train_mask"])
    counts = torch.bincount(torch.from_numpy(arrays["y"])[labelled])
    with pytest.raises(AutoAttendError, match=f"class {int(counts.argmin())} has {int(counts.min())} labelled node"):
        load(path, split="random", train_per_class=int(counts.min()) + 1, val_size=1, test_size=1)
    with pytest.raises(AutoAttendError, match="27 labelled nodes outside the training split, fewer than "
                                              "task.val_size=20 \\+ task.test_size=20"):
        load(path, split="random", train_per_class=3, val_size=20, test_size=20)
    with pytest.raises(AutoAttendError, match="task.split: expected one of file, random, got 'drawn'"):
        GraphFileDataModule(path=str(path), split="drawn")


def test_classes_without_a_training_node_are_named_in_a_warning(tmp_path, caplog):
    """A class id no training node has (a gap in the numbering, or a class only validation or test nodes hold) is
    named in one warning as the file is read, a gap marked as such; a graph whose training nodes hold every class
    reads without one."""
    caplog.set_level(logging.WARNING, logger="src.data.graph_file")
    load(write_npz(tmp_path / "whole.npz", graph_arrays()))
    assert not caplog.records
    gap = graph_arrays()
    gap["y"][gap["y"] == 1] = CLASSES  # ids 0, 2, 3: nothing of class 1
    load(write_npz(tmp_path / "gap.npz", gap))
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "1 of the 4 classes have no training node: 1 (no labelled node); their nodes cannot be learnt (labels are "
        "class ids 0 .. C-1, numbered without gaps)"]
    caplog.clear()
    held_out = graph_arrays()
    train_of_2 = held_out["train_mask"] & (held_out["y"] == 2)
    held_out["y"][train_of_2] = 0
    assert (held_out["y"][~held_out["train_mask"]] == 2).any()
    load(write_npz(tmp_path / "held_out.npz", held_out))
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'held_out.npz'}: 1 of the 3 classes have no training node: 2; their nodes cannot be learnt "
        "(labels are class ids 0 .. C-1, numbered without gaps)"]


def test_a_npz_whose_arrays_outgrow_the_memory_decompressed_is_refused_before_reading(tmp_path, monkeypatch):
    """A ``numpy.savez_compressed`` graph whose arrays, decompressed, take more than the machine's memory is refused
    in one line naming the file and both sizes, before numpy allocates any array; under the memory it is read."""
    import src.data.graph_file as graph_file

    arrays = graph_arrays()
    arrays["x"] = np.zeros((NODES, 50_000), np.float32)  # 8 MB of zeros, some 8 KB compressed
    path = tmp_path / "g.npz"
    np.savez_compressed(path, **arrays)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(graph_file, "machine_memory_bytes", lambda: 2 ** 30 // 256)  # 4 MiB
    allocated, load = [], np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: allocated.append(a) or load(*a, **k))
    with pytest.raises(AutoAttendError) as err:
        graph_file.read_arrays(path)
    assert str(err.value) == f"{path}: its arrays take 7.6 MiB decompressed, more than this machine's 4.0 MiB of memory"
    assert not allocated
    monkeypatch.setattr(graph_file, "machine_memory_bytes", lambda: 2 ** 30 // 64)  # 16 MiB
    assert graph_file.read_arrays(path)["x"].shape == (NODES, 50_000) and allocated


def _bad(arrays: dict, change) -> dict:
    arrays = dict(arrays)
    change(arrays)
    return arrays


BAD_ARRAYS = {
    "missing": (lambda a: a.pop("val_mask"), "no 'val_mask' array; expected x, edge_index, y, train_mask, val_mask"),
    "x_1d": (lambda a: a.update(x=a["x"][:, 0]), "'x' must be (N, F) real features"),
    "x_nan": (lambda a: a["x"].__setitem__((3, 2), np.nan), "'x' holds NaN or infinite values"),
    # finite in the file's float64, infinite as the float32 features: it was called NaN or infinite
    "x_beyond_float32": (lambda a: a.update(x=np.where(np.arange(a["x"].size).reshape(a["x"].shape) == 7, 1e39,
                                                       a["x"].astype(np.float64))),
                         "'x' holds values beyond float32's range (+-3.403e+38), which the features are served as"),
    "edges_float": (lambda a: a.update(edge_index=a["edge_index"].astype(np.float32)),
                    "'edge_index' must hold integer node ids"),
    "multilabel_values": (lambda a: a.update(y=np.full((NODES, CLASSES), 2, np.int64)),
                          "a 2-D 'y' holds multi-label targets, (N, C) zeros and ones"),
    "y_3d": (lambda a: a.update(y=np.zeros((NODES, 2, 2), np.int64)),
             "'y' must be (N,) integer class ids, or (N, C) 0/1 multi-label targets"),
    "y_float": (lambda a: a.update(y=a["y"].astype(np.float32)),
                "'y' must be (N,) integer class ids, or (N, C) 0/1 multi-label targets"),
    "mask_values": (lambda a: a.update(val_mask=a["val_mask"].astype(np.int64) * 2),
                    "'val_mask' must be (N,) booleans or 0/1 integers"),
    "mask_length": (lambda a: a.update(test_mask=a["test_mask"][:-1]), "test_mask has 39 entries for 40 nodes"),
    "labels_length": (lambda a: a.update(y=a["y"][:-2]), "feature/label size mismatch: 40 feature rows but 38 labels"),
    "overlap": (lambda a: a["test_mask"].__setitem__(0, True), "node 0 is in both 'train_mask' and 'test_mask'"),
    "empty_split": (lambda a: a.update(val_mask=np.zeros(NODES, bool)), "'val_mask' selects no node"),
    "unlabelled_in_split": (lambda a: a["y"].__setitem__(13, -1), "node 13 is in a split but has label -1"),
    "label_below": (lambda a: a["y"].__setitem__(NODES - 1, -2), "'y' holds -2"),
    "one_class": (lambda a: a.update(y=np.where(a["y"] >= 0, 0, -1)), "every training and validation node has class 0"),
    "no_edges": (lambda a: a.update(edge_index=np.zeros((2, 0), np.int64)), "the graph has no edges"),
    "edge_range": (lambda a: a["edge_index"].__setitem__((1, 7), NODES),
                   "edge_index refers to node 40 but there are 40"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
@pytest.mark.parametrize("write", [write_npz, write_pt], ids=["npz", "pt"])
def test_bad_arrays_are_one_line_naming_the_file(tmp_path, case, write):
    change, message = BAD_ARRAYS[case]
    arrays = {k: v.copy() for k, v in graph_arrays().items()}
    path = write(tmp_path / ("g.npz" if write is write_npz else "g.pt"), _bad(arrays, change))
    with pytest.raises(AutoAttendError) as err:
        load(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_bad_files_are_one_line_naming_the_file(tmp_path):
    arrays = graph_arrays()
    with pytest.raises(DataNotFoundError, match="no such file"):
        load(tmp_path / "absent.npz")
    (tmp_path / "g.csv").write_text("1,2\n")
    with pytest.raises(AutoAttendError, match=r"g\.csv: expected a \.npz file or a \.pt / \.pth dict of tensors"):
        load(tmp_path / "g.csv")
    (tmp_path / "cut.npz").write_bytes(write_npz(tmp_path / "whole.npz", arrays).read_bytes()[:200])
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    for name in ("cut.npz", "text.npz"):  # numpy's own word was "pickled (object) data" for the text
        with pytest.raises(AutoAttendError) as err:
            load(tmp_path / name)
        assert str(err.value) == (f"{tmp_path / name}: not a .npz archive, or one cut short (numpy.savez(path, x=..., "
                                  "edge_index=..., ...) writes one)")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(AutoAttendError, match=r"list\.pt: expected a dict of tensors .* got list"):
        load(tmp_path / "list.pt")
    np.savez(tmp_path / "objects.npz", **{**arrays, "x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(AutoAttendError, match=r"objects\.npz: 'x' is an array of Python objects; expected numbers"):
        load(tmp_path / "objects.npz")  # never unpickled
    negative = {**arrays, "x": arrays["x"] - 2.0}
    with pytest.raises(AutoAttendError, match="row_normalize=true needs non-negative features"):
        load(write_npz(tmp_path / "neg.npz", negative), row_normalize=True)
    with pytest.raises(AutoAttendError, match=r"task graph_file: no data given; add task\.path="):
        GraphFileDataModule(path=None)


def test_a_graph_to_classify_needs_only_features_and_edges(tmp_path):
    """``read_graph_to_classify`` (``src.predict --graph``): ``x`` and ``edge_index`` suffice (no
    edge, no label, no split needed), what else is there is checked and kept, and a bad array is one
    line naming the file."""
    from src.data.graph_file import read_graph_to_classify

    arrays = graph_arrays()
    bare = read_graph_to_classify(write_npz(tmp_path / "bare.npz", {"x": arrays["x"],
                                                                     "edge_index": np.zeros((2, 0), np.int64)}))
    assert set(bare) == {"x", "edge_index"} and bare["edge_index"].shape == (2, 0)
    some = read_graph_to_classify(write_npz(tmp_path / "some.npz", {k: arrays[k] for k in ("x", "edge_index", "y",
                                                                                           "test_mask")}))
    assert set(some) == {"x", "edge_index", "y", "test_mask"} and torch.equal(some["y"], torch.from_numpy(arrays["y"]))
    bad = {
        "edges": ({"edge_index": np.array([[0], [NODES]])}, f"'edge_index' refers to node {NODES} but there are {NODES}"),
        "edge_shape": ({"edge_index": np.zeros((3, 2), np.int64)}, "'edge_index' must be (2, E), got (3, 2)"),
        "y_rows": ({"y": arrays["y"][:-1]}, f"'y' has {NODES - 1} rows for {NODES} nodes"),
        "mask": ({"val_mask": np.full(NODES, 2)}, "'val_mask' must be (N,) booleans or 0/1 integers"),
        "label": ({"y": np.full(NODES, -5)}, "'y' holds -5"),
        "no_edges": ({"edge_index": None}, "no 'edge_index' array; expected x, edge_index (found: x)"),
    }
    for name, (change, message) in bad.items():
        changed = {"x": arrays["x"], "edge_index": arrays["edge_index"], **change}
        path = write_npz(tmp_path / f"{name}.npz", {k: v for k, v in changed.items() if v is not None})
        with pytest.raises(AutoAttendError) as err:
            read_graph_to_classify(path)
        assert str(err.value).startswith(f"{path}: ") and message in str(err.value), (name, str(err.value))


@pytest.mark.slow  # a graph file searched: tests/test_test_isolation_findings.py; predict and evaluate of a graph run:
# tests/test_graph_pipeline.py
def test_search_predict_and_evaluate_on_a_graph_file(tmp_path):
    """The whole pipeline on a file given relative to the folder the run started in; src.predict
    classifies every node (the unlabelled ones too, label -1) and its predictions give the recorded
    accuracies; src.evaluate, started elsewhere, finds the file where the run read it."""
    start = tmp_path / "start"
    start.mkdir()
    write_npz(start / "mine.npz", graph_arrays())
    run_dir = tmp_path / "run"
    command = ["src.search", "+task=graph_file", "task.path=mine.npz", "budget=smoke", "hardware=cpu"]
    spec = cli_command(*command, data_dir=tmp_path / "no_data", tmp=tmp_path, run_dir=run_dir)
    spec["env"]["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(spec["args"], cwd=start, env=spec["env"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "accuracy" and len(summary["baselines"]) >= 1
    data = json.loads((run_dir / "data.json").read_text())
    assert data["classes"] == CLASSES and data["features"] == FEATURES and data["nodes"][0] == NODES

    proc = cli("src.predict", str(run_dir), data_dir=tmp_path / "no_data", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [int(r["node"]) for r in rows] == list(range(NODES))
    unlabelled = [r for r in rows if r["label"] == "-1"]
    assert len(unlabelled) == UNLABELLED and all(r["split"] == "" and 0 <= int(r["prediction"]) < CLASSES
                                                  for r in unlabelled)
    seed = proc.stderr.split("seed_")[1].split("/")[0]
    recorded = json.loads((run_dir / "retrain" / f"seed_{seed}.json").read_text())
    test = [r for r in rows if r["split"] == "test"]
    assert sum(r["prediction"] == r["label"] for r in test) / len(test) == pytest.approx(recorded["test_acc"], abs=1e-6)

    proc = cli("src.evaluate", str(run_dir), data_dir=tmp_path / "no_data", tmp=tmp_path)  # cwd: the repository
    assert proc.returncode == 0 and "reproduce their recorded validation and test scores" in proc.stdout, \
        proc.stderr[-3000:]
    edited = graph_arrays()
    edited["y"][0] = (edited["y"][0] + 1) % CLASSES
    other = write_npz(tmp_path / "edited.npz", edited)
    proc = cli("src.evaluate", str(run_dir), f"task.path={other}", data_dir=tmp_path / "no_data", tmp=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().startswith(
        f"error: {run_dir}: the data at task.path={other} are not the run's (labels_sha256: "), proc.stderr[-2000:]
    assert proc.stderr.strip().endswith("give the run's data file (task.path=...)")


@pytest.mark.slow  # multi-label: test_a_multi_label_graph_is_served_as_ppi_is; PPI's smoke search
def test_a_multi_label_graph_file_through_the_command_line(tmp_path):
    """Search, retrain and baseline in micro-F1 (PPI's metric, under the ``*_acc`` keys), models
    that src.evaluate reproduces; src.predict's label sets give the recorded test micro-F1."""
    path = write_npz(tmp_path / "ml.npz", multilabel_arrays())
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=graph_file", f"task.path={path}", "budget=smoke", "hardware=cpu",
               data_dir=tmp_path, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "retrained test micro-F1" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "micro_f1" and 0.0 <= summary["retrain"]["test_acc_mean"] <= 1.0
    assert json.loads((run_dir / "retrain" / "results.json").read_text())["metric"] == "micro_f1"
    proc = cli("src.evaluate", str(run_dir), data_dir=tmp_path, tmp=tmp_path)
    assert proc.returncode == 0 and "reproduce their recorded validation and test scores" in proc.stdout, \
        proc.stderr[-3000:]
    proc = cli("src.predict", str(run_dir), "--jsonl", data_dir=tmp_path, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nodes = [json.loads(line) for line in proc.stdout.splitlines()]
    seed = proc.stderr.split("seed_")[1].split("/")[0]
    recorded = json.loads((run_dir / "retrain" / f"seed_{seed}.json").read_text())
    targets = multilabel_arrays()["y"]
    tp = fp = fn = 0
    for node in nodes:
        assert node["label"] == np.flatnonzero(targets[node["node"]]).tolist()
        assert node["prediction"] == [i for i, p in enumerate(node["probabilities"]) if p > 0.5]
        if node["split"] == "test":
            truth, guess = set(node["label"]), set(node["prediction"])
            tp, fp, fn = tp + len(truth & guess), fp + len(guess - truth), fn + len(truth - guess)
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(recorded["test_acc"], abs=1e-6)
    proc = cli("src.predict", str(run_dir), data_dir=tmp_path, tmp=tmp_path)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == "node,split,labels,predictions"
    first = next(n for n in nodes if len(n["label"]) > 1)
    assert proc.stdout.splitlines()[1 + first["node"]].split(",")[2] == ";".join(map(str, first["label"]))
    # --graph: the features and edges alone (no labels) get the same label sets; a model file saved
    # before its spec said it is multi-label is read as one from the run's recorded metric
    unlabelled = {k: v for k, v in multilabel_arrays().items() if k in ("x", "edge_index")}
    other = write_npz(tmp_path / "other.npz", unlabelled)
    model_file = run_dir / "retrain" / f"seed_{seed}" / "model.pt"
    for older in (False, True):
        if older:
            record = torch.load(model_file, weights_only=False)
            assert record["spec"].pop("multilabel") is True
            torch.save(record, model_file)
        proc = cli("src.predict", str(run_dir), "--jsonl", "--graph", str(other), data_dir=tmp_path, tmp=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        again = [json.loads(line) for line in proc.stdout.splitlines()]
        expected = [(None, "", n["prediction"]) for n in nodes]
        assert [(n["label"], n["split"], n["prediction"]) for n in again] == expected
    proc = cli("src.predict", str(run_dir), "--graph", str(other), data_dir=tmp_path, tmp=tmp_path)
    assert proc.stdout.splitlines()[1 + first["node"]].split(",")[2] == ""


def test_a_graph_file_task_without_a_path_is_refused_before_the_run(tmp_path):
    proc = cli("src.search", "+task=graph_file", "budget=smoke", data_dir=tmp_path, tmp=tmp_path,
               run_dir=tmp_path / "run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: task graph_file: no data given; add task.path=<the graph's .npz or .pt file>"]
    assert not (tmp_path / "run" / "run_settings.json").exists()
    proc = cli("src.search", "+task=graph_file", "task.path=g.npz", "task.to_undirected=maybe", "budget=smoke",
               data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "run2")
    assert proc.returncode == 2 and "error: task.to_undirected: expected true or false, got 'maybe'" in proc.stderr
    proc = cli("src.search", "+task=graph_file", "task.path=g.npz", "task.split=drawn", "budget=smoke",
               data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "run4")
    assert proc.returncode == 2 and "error: task.split: expected one of file, random, got 'drawn'" in proc.stderr
    proc = cli("src.search", "+task=graph_file", "task.path=g.npz", "task.sparse_features=sometimes",
               "budget=smoke", data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "run3")
    assert proc.returncode == 2 and "error: task.sparse_features: expected auto, true or false, got 'sometimes'" in \
        proc.stderr


def test_cora_written_to_a_file_searches_as_cora_does(tmp_path):
    """Real data: Cora as the Planetoid module serves it, written to a .npz, reads back as the same
    graph (its features sparse too, 1.3 % non-zero), and a smoke search on the file gives the
    ``+task=cora`` run's supernet metrics, candidate scores and retrained seeds, bit for bit."""
    from src.data.planetoid import PlanetoidDataModule

    data = real_cora_dir()
    cora = PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(tmp_path / "cache"), download=False)
    cora.setup()
    arrays = {k: (v.to_dense() if v.is_sparse else v).numpy() for k, v in cora.graph.items()}
    path = write_npz(tmp_path / "cora.npz", arrays)
    dm = load(path)
    assert (dm.num_features, dm.num_classes) == (cora.num_features, cora.num_classes) == (1433, 7)
    assert dm.graph["x"].is_sparse
    for key, value in cora.graph.items():
        assert torch.equal(dm.graph[key].to_dense() if key == "x" else dm.graph[key],
                           value.to_dense() if value.is_sparse else value), key
    runs = {}
    for name, task in (("cora", ["+task=cora"]), ("file", ["+task=graph_file", f"task.path={path}"])):
        runs[name] = tmp_path / name
        proc = cli("src.search", *task, "budget=smoke", "hardware=cpu", data_dir=data, tmp=tmp_path,
                   run_dir=runs[name])
        assert proc.returncode == 0, proc.stderr[-3000:]
    for record in ("supernet/metrics.csv", "search/population.jsonl"):
        assert (runs["cora"] / record).read_text() == (runs["file"] / record).read_text(), record
    for record in ("retrain/results.json", "baselines/gcn/results.json"):
        a, b = (json.loads((runs[name] / record).read_text()) for name in ("cora", "file"))
        assert (a.pop("protocol").pop("task"), b.pop("protocol").pop("task")) == ("cora", "graph_file")
        assert a == b, record


@pytest.mark.parametrize("override, message", [
    ("task.test_size=0", "task.test_size: expected an integer >= 1 or null, got 0"),
    ("task.val_size=null", "task.val_size: expected an integer >= 1, got None"),
    ("task.train_per_class=two", "task.train_per_class: expected an integer >= 1, got 'two'"),
    ("task.split_seed=-1", "task.split_seed: expected an integer"),
    ("task.row_normalize=1", "task.row_normalize: expected true or false, got 1"),
    ("task.path=3", "task.path: expected the path of a .npz or .pt file, got 3"),
    # said here, before torch, not first by the DataModule (the command line's line is the same)
    ("task.sparse_features=sometimes", "task.sparse_features: expected auto, true or false, got 'sometimes'"),
    ("task.split_seed=2147483648", "task.split_seed: expected an integer from 0 to 2147483647, got 2147483648"),
    ("task.path=' '", "task graph_file: no data given; add task.path=<the graph's .npz or .pt file>"),
])
def test_graph_file_settings_are_checked_before_torch_loads(override, message):
    from src.pipeline.checks import check_config
    from tests.conftest import compose_config

    cfg = compose_config("search", ["+task=graph_file", "task.path=g.npz", override])
    with pytest.raises(AutoAttendError) as err:
        check_config(cfg, "search")
    assert str(err.value).startswith(message), str(err.value)
    check_config(compose_config("search", ["+task=graph_file", "task.path=g.npz", "task.test_size=null"]), "search")


def test_a_pt_file_cut_short_is_unreadable_not_said_to_be_an_npz(tmp_path):
    """The archive check is the ``.npz`` reader's: a ``.pt`` file cut short is torch's to read, and said
    unreadable in torch's words (not "not a .npz archive")."""
    write_pt(tmp_path / "whole.pt", graph_arrays())
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:200])
    with pytest.raises(AutoAttendError, match=r"cut\.pt: unreadable \(RuntimeError: PytorchStreamReader failed "
                                              r"reading zip archive"):
        load(tmp_path / "cut.pt")


def test_a_pt_file_that_is_no_torch_file_is_not_said_to_hold_a_pyg_data(tmp_path):
    """A text file named ``.pt`` is not "objects other than tensors (a PyG Data saved whole?)": the advice to
    save ``data.to_dict()`` is for a pickled class (torch's weights-only reader fails on any file, and every
    failure was taken for one)."""
    (tmp_path / "text.pt").write_text("x,y\n1,2\n")
    with pytest.raises(AutoAttendError) as err:
        load(tmp_path / "text.pt")
    assert str(err.value) == (f"{tmp_path / 'text.pt'}: unreadable (torch.load(weights_only=True) cannot read it: "
                              "not a file torch.save wrote?)")


def test_terminal_codes_of_torchs_message_are_left_out_of_the_line(tmp_path, monkeypatch):
    """torch bolds words of its messages with terminal codes: the one line keeps the words, not the codes."""
    path = write_pt(tmp_path / "g.pt", graph_arrays())

    def fail(*args, **kwargs):
        raise RuntimeError("\x1b[1;31mPytorchStreamReader failed\x1b[0m reading zip archive\nsecond line")

    monkeypatch.setattr(torch, "load", fail)
    with pytest.raises(AutoAttendError) as err:
        load(path)
    assert str(err.value) == f"{path}: unreadable (RuntimeError: PytorchStreamReader failed reading zip archive)"
