"""Graph DataModules on files in the real formats: a Planetoid fixture and small PPI files written
by the tests and read by the real readers offline, plus the real Cora files when present."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.planetoid import PLANETOID_FILES, PlanetoidDataModule, check_graph
from src.data.ppi import PPIDataModule
from src.utils.errors import AutoAttendError, DataNotFoundError
from tests.helpers import real_cora_dir, write_tiny_planetoid, write_tiny_ppi


@pytest.fixture(scope="module")
def tiny_planetoid(tmp_path_factory):
    return write_tiny_planetoid(tmp_path_factory.mktemp("planetoid"))


def _files(root, name="cora"):
    folder = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}[name]
    return {f: (root / "planetoid" / folder / "raw" / f"ind.{name}.{f}") for f in PLANETOID_FILES}


def test_planetoid_fixture_through_the_real_reader(tiny_planetoid, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in (tiny_planetoid / "planetoid").rglob("*")}
    dm = PlanetoidDataModule("cora", data_dir=str(tiny_planetoid), cache_dir=str(tmp_path / "cache"), download=False)
    dm.setup()
    g = dm.graph
    n = 15 + 500 + 25 + 60
    assert (dm.num_features, dm.num_classes) == (24, 3)
    assert g["x"].is_sparse and tuple(g["x"].shape) == (n, 24)
    assert [int(g[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [15, 500, 60]
    assert torch.bincount(g["y"][g["train_mask"]]).tolist() == [5, 5, 5]  # 5 labels per class
    assert g["test_mask"][540:].all() and not g["test_mask"][:540].any()
    # row-normalised features: every non-empty row sums to 1
    sums = torch.sparse.sum(g["x"], 1).to_dense()
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    # undirected edges, inside the node range
    ei = g["edge_index"]
    assert ei.size(1) > n and int(ei.max()) < n
    assert set(map(tuple, ei.t().tolist())) == set(map(tuple, ei.flip(0).t().tolist()))
    # the test rows were put back at their nodes: a node's features carry its class's words
    dense = g["x"].to_dense()
    own = torch.stack([dense[i, 6 * int(g["y"][i]):6 * int(g["y"][i]) + 6].gt(0).sum() for i in range(n)])
    assert bool((own >= 3).all())
    # the data directory is read only; processing happened in the cache
    assert {p: p.stat().st_mtime_ns for p in (tiny_planetoid / "planetoid").rglob("*")} == before
    assert list((tmp_path / "cache" / "planetoid").rglob("processed"))
    assert dm.split_batches("val") == [g] and dm.split_batches("test") == [g]


def test_pyg_messages_go_to_the_log_not_the_console(tiny_planetoid, tmp_path, monkeypatch, caplog, capfd):
    # PyG stays quiet under pytest (it checks this variable); a user's run has no such variable
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    caplog.set_level("INFO", logger="src.data.planetoid")
    dm = PlanetoidDataModule("cora", data_dir=str(tiny_planetoid), cache_dir=str(tmp_path / "cache"), download=False)
    dm.setup()
    assert "Processing" not in capfd.readouterr().err
    logged = [r.getMessage() for r in caplog.records]
    assert "Cora: PyG: Processing..." in logged and "Cora: PyG: Done!" in logged


def _failing_download(written: list):
    """Stands in for a download that fetches two files, then loses the network."""
    def fetch(url, folder, *args, **kwargs):
        if len(written) == 2:
            raise OSError(f"<urlopen error [Errno -3] Temporary failure in name resolution> ({url})")
        print(f"Downloading {url}", file=sys.stderr)
        target = Path(folder) / str(url).rsplit("/", 1)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"partial")
        written.append(target)
        return str(target)
    return fetch


def test_failed_planetoid_download_leaves_no_partial_cache(tmp_path, monkeypatch, caplog):
    import torch_geometric.io.fs as pyg_fs

    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    caplog.set_level("INFO", logger="src.data.planetoid")
    written = []
    monkeypatch.setattr(pyg_fs, "cp", _failing_download(written))
    cache = tmp_path / "cache"
    dm = PlanetoidDataModule("cora", data_dir=str(tmp_path / "nowhere"), cache_dir=str(cache), download=True)
    with pytest.raises(DataNotFoundError, match="no files in .*nowhere.* the download failed: OSError") as err:
        dm.setup()
    # what to do about it, as the SST and CSV readers say (it said only where it had looked)
    raw = tmp_path / "nowhere" / "planetoid" / "Cora" / "raw"
    assert str(err.value).endswith(f"; put the Planetoid release's raw files (ind.cora.x, .tx, .allx, .y, .ty, .ally, "
                                   f".graph, .test.index) in {raw}, or set AUTOATTEND_DATA_DIR / paths.data_dir to "
                                   "a folder holding planetoid/Cora/raw/"), str(err.value)
    assert len(written) == 2 and written[0].parent.is_relative_to(cache)
    assert not (cache / "planetoid" / "download" / "Cora").exists()
    assert any(r.getMessage().startswith("Cora: PyG: Downloading") for r in caplog.records)


def test_planetoid_incomplete_files(tmp_path):
    root = write_tiny_planetoid(tmp_path / "d")
    _files(root)["ty"].unlink()
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    raw = root / "planetoid" / "Cora" / "raw"
    with pytest.raises(DataNotFoundError, match=rf"^Planetoid Cora \({raw}\): incomplete files, {raw / 'ind.cora.ty'} "
                                                r"missing \(while ind.cora.x, .* are there\); add the missing file"):
        dm.setup()


def test_planetoid_folder_in_a_files_place(tmp_path):
    """A folder where a raw file belongs was reported as that file missing; it is named as a folder."""
    root = write_tiny_planetoid(tmp_path / "d")
    graph = _files(root)["graph"]
    graph.unlink()
    graph.mkdir()
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match=rf"{graph} is a folder; expected Planetoid's graph file$"):
        dm.setup()


def test_planetoid_missing_with_download_off(tmp_path):
    dm = PlanetoidDataModule("citeseer", data_dir=str(tmp_path / "nowhere"), cache_dir=str(tmp_path / "c"),
                             download=False)
    with pytest.raises(DataNotFoundError, match="no Planetoid files .* downloading is off"):
        dm.setup()


def test_planetoid_without_edges(tmp_path):
    root = write_tiny_planetoid(tmp_path / "d", edges=False)
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    with pytest.raises(AutoAttendError, match="no edges") as err:
        dm.setup()
    # the user's folder is named, not the processing cache
    assert str(err.value).startswith(str(_files(root)["x"].parent))


def test_planetoid_unreadable_file_is_named(tmp_path):
    root = write_tiny_planetoid(tmp_path / "d")
    _files(root)["graph"].write_bytes(b"not a pickle")
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    with pytest.raises(AutoAttendError) as err:
        dm.setup()
    assert str(err.value).startswith(f"{_files(root)['graph']}: unreadable (UnpicklingError); expected the pickled "
                                     "Cora files of the Planetoid release")


@pytest.mark.parametrize("damage, needle", [
    # PyG read a test.index cut short without complaint: a smaller test split, scored as the whole
    ("test.index", "test.index: 40 test node ids against 60 feature rows in ind.cora.tx (one of them "
     "cut short"),
    ("ty", "ty: feature/label size mismatch: 50 label rows against 60 feature rows in ind.cora.tx"),
    # PyG takes the training nodes from ind.cora.y's rows: cut short, a smaller training split
    ("y", "y: feature/label size mismatch: 10 label rows against 15 feature rows in ind.cora.x"),
    ("graph", "graph: expected the adjacency dict (node -> neighbours), got ndarray"),
])
def test_planetoid_files_that_disagree_are_named(tmp_path, damage, needle):
    """A raw file cut short or swapped for another: one line naming it and what it disagrees with,
    before any processing (a cut ``test.index`` ran on 500 of Cora's 1,000 test nodes, exit 0)."""
    import pickle

    root = write_tiny_planetoid(tmp_path / "d", num_test=60)
    files = _files(root)
    if damage == "test.index":
        lines = files["test.index"].read_text().splitlines()
        files["test.index"].write_text("".join(f"{line}\n" for line in lines[:40]))
    elif damage in ("ty", "y"):
        files[damage].write_bytes(pickle.dumps(pickle.loads(files[damage].read_bytes())[:-5 if damage == "y" else 50]))
    else:
        files["graph"].write_bytes(files["y"].read_bytes())
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    with pytest.raises(AutoAttendError) as err:
        dm.setup()
    assert str(err.value).startswith(f"{files[damage].parent}/ind.cora.{needle}"), str(err.value)
    assert not list((tmp_path / "cache").rglob("processed/*.pt"))  # nothing processed from them


def test_planetoid_with_one_class_is_refused(tmp_path):
    import pickle

    root = write_tiny_planetoid(tmp_path / "d")
    for name in ("y", "ty", "ally"):
        labels = pickle.loads(_files(root)[name].read_bytes())
        labels[:] = 0
        labels[:, 0] = 1
        _files(root)[name].write_bytes(pickle.dumps(labels))
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    with pytest.raises(AutoAttendError, match="every node has label 0 .* at least two"):
        dm.setup()


def test_planetoid_test_labels_add_no_class(tmp_path):
    """A Planetoid release whose labels have a fourth column that only one test node holds is refused in one line
    naming the node (the models' class count is the training and validation nodes'); with that column empty the
    class count stays 3."""
    import pickle

    import numpy as np

    for holder in (None, 0):
        root = write_tiny_planetoid(tmp_path / f"d{holder}")
        for name in ("y", "ty", "ally"):
            labels = pickle.loads(_files(root)[name].read_bytes())
            labels = np.concatenate([labels, np.zeros((len(labels), 1), labels.dtype)], axis=1)
            if name == "ty" and holder is not None:
                labels[holder] = [0, 0, 0, 1]
            _files(root)[name].write_bytes(pickle.dumps(labels))
        dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / f"cache{holder}"), download=False)
        if holder is None:
            dm.setup()
            assert dm.num_classes == 3
        else:
            with pytest.raises(AutoAttendError, match=r"test node \d+ has class 3, which no training or validation "
                                                      r"node holds \(theirs are 0 .. 2\)"):
                dm.setup()


def test_planetoid_feature_label_mismatch(tmp_path):
    root = write_tiny_planetoid(tmp_path / "d", extra_label_rows=3)
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    with pytest.raises(AutoAttendError, match=r"ind\.cora\.ally: feature/label size mismatch: 543 label rows "
                                              r"against 540 feature rows in ind\.cora\.allx"):
        dm.setup()


def test_unknown_planetoid_name():
    with pytest.raises(AutoAttendError, match="unknown Planetoid set 'coraa'"):
        PlanetoidDataModule("coraa")
    # the name in any case, as PyG and the papers write it
    assert [PlanetoidDataModule(n).name for n in ("CiteSeer", "PUBMED", "cora")] == ["CiteSeer", "PubMed", "Cora"]


def test_a_node_without_features_keeps_a_zero_row(tmp_path):
    """Row normalisation of a node with no words (CiteSeer's test nodes missing from its files):
    the row stays zero, not 0/0 = NaN, which would reach every neighbour's aggregate."""
    import pickle

    root = write_tiny_planetoid(tmp_path / "d")
    allx = _files(root)["allx"]
    feats = pickle.loads(allx.read_bytes()).tolil()
    feats[530] = 0  # an unlabelled node
    allx.write_bytes(pickle.dumps(feats.tocsr(), protocol=2))
    dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    dm.setup()
    dense = dm.graph["x"].to_dense()
    assert torch.isfinite(dense).all()
    assert not dense[530].any() and torch.allclose(dense[:530].sum(1), torch.ones(530))


def test_pyg_messages_are_logged_by_whole_lines():
    """A line PyG writes in pieces (a progress message, then its end) is one log line; a last line
    without its newline is logged when the block ends."""
    import logging as logging_module

    from src.data.planetoid import pyg_messages_to_log

    records = []
    handler = logging_module.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging_module.getLogger("src.data.planetoid")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging_module.INFO)
    try:
        with pyg_messages_to_log("Cora"):
            print("Downloading ", end="", file=sys.stderr)
            print("ind.cora.x\nProcessing...", file=sys.stderr)
            print("Done!", end="", file=sys.stderr)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records == ["Cora: PyG: Downloading ind.cora.x", "Cora: PyG: Processing...", "Cora: PyG: Done!"]


def test_check_graph_catches_bad_batches():
    base = {"x": torch.rand(4, 3), "y": torch.zeros(4, dtype=torch.long), "edge_index": torch.tensor([[0, 1], [1, 2]]),
            **{m: torch.ones(4, dtype=torch.bool) for m in ("train_mask", "val_mask", "test_mask")}}
    check_graph(base, "ok", multilabel=False)
    cases = [({"y": torch.zeros(5, dtype=torch.long)}, "feature/label size mismatch"),
             ({"edge_index": torch.zeros(2, 0, dtype=torch.long)}, "no edges"),
             ({"edge_index": torch.tensor([[0, 4], [1, 2]])}, r"refers to node 4 but there are 4 nodes \(0\.\.3\)"),
             ({"edge_index": torch.tensor([[0, -1], [3, 2]])}, "refers to node -1 but"),
             ({"val_mask": torch.ones(3, dtype=torch.bool)}, "val_mask has 3 entries"),
             ({"test_mask": torch.ones(5, dtype=torch.bool)}, "test_mask has 5 entries"),
             ({"edge_index": torch.zeros(3, 2, dtype=torch.long)}, r"edge_index must be \(2, E\), got \(3, 2\)"),
             ({}, "multi-label task needs")]
    for change, message in cases:
        with pytest.raises(AutoAttendError, match=message):
            check_graph({**base, **change}, "bad", multilabel=not change)


def test_check_graph_catches_what_each_array_can_get_wrong():
    """Each check on every array it covers: a negative id among the targets (not only the sources),
    an out-of-range source, an ``edge_index`` with two entries but not (2, E) (a flat pair, or a
    (2, E, 1) stack: indexing rows of those runs, then fails far from the file), a short
    ``train_mask``, fewer labels than nodes, and multi-label targets that are not (N, C)."""
    base = {"x": torch.rand(4, 3), "y": torch.zeros(4, dtype=torch.long), "edge_index": torch.tensor([[0, 1], [1, 2]]),
            **{m: torch.ones(4, dtype=torch.bool) for m in ("train_mask", "val_mask", "test_mask")}}
    cases = [({"edge_index": torch.tensor([[0, 1], [-2, 2]])}, r"refers to node -2 but there are 4 nodes"),
             ({"edge_index": torch.tensor([[0, 5], [1, 2]])}, r"refers to node 5 but there are 4 nodes"),
             ({"edge_index": torch.tensor([0, 1])}, r"edge_index must be \(2, E\), got \(2,\)"),
             ({"edge_index": torch.zeros(2, 3, 1, dtype=torch.long)}, r"edge_index must be \(2, E\), got \(2, 3, 1\)"),
             ({"train_mask": torch.ones(3, dtype=torch.bool)}, "train_mask has 3 entries for 4 nodes"),
             ({"y": torch.zeros(3, dtype=torch.long)}, "feature/label size mismatch: 4 feature rows but 3 labels"),
             ({"y": torch.zeros(4, 2, 1)}, r"multi-label task needs \(N, C\) 0/1 targets, got shape \(4, 2, 1\)")]
    for change, message in cases:
        with pytest.raises(AutoAttendError, match=message):
            check_graph({**base, **change}, "bad", multilabel="y" in change and change["y"].dim() > 1)
    check_graph({**base, "y": torch.zeros(4, 2)}, "ok", multilabel=True)
    # each message calls the array what its caller calls it (a graph file's arrays are quoted)
    from src.data.planetoid import check_edges

    for edges, message in ((torch.zeros(3, 2, dtype=torch.long), r"f.npz: 'edge_index' must be \(2, E\)"),
                           (torch.tensor([[0], [9]]), r"f.npz: 'edge_index' refers to node 9 but there are 4 nodes")):
        with pytest.raises(AutoAttendError, match=message):
            check_edges(edges, 4, "f.npz", name="'edge_index'")


# ---- PPI ------------------------------------------------------------------------------------

def test_ppi_files_through_the_real_reader(tmp_path):
    root = write_tiny_ppi(tmp_path / "d", graphs=(3, 1, 2))
    before = {p: p.stat().st_mtime_ns for p in (root / "ppi").rglob("*")}
    dm = PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False, batch_size=2)
    dm.setup()
    assert (dm.num_features, dm.num_classes, dm.multilabel) == (8, 5, True)
    assert len(dm.train_graphs) == 3 and dm.graph is None
    val, test = dm.eval_batches
    assert val["x"].shape == (30, 8) and test["x"].shape == (60, 8)
    assert val["val_mask"].all() and not val["test_mask"].any() and test["test_mask"].all()
    assert not val["train_mask"].any() and not test["val_mask"].any() and not test["train_mask"].any()
    # architecture scoring sees the validation graphs only, never a test node
    assert dm.split_batches("val") == [val] and dm.split_batches("test") == [test]
    assert test["y"].dtype == torch.float32 and test["y"].shape == (60, 5)
    # labels are the one-hot classes the writer drew: every node has exactly one
    assert torch.equal(test["y"].sum(1), torch.ones(60))
    # the two test graphs are merged as disjoint graphs: no edge crosses node 30
    ei = test["edge_index"]
    assert bool(((ei[0] < 30) == (ei[1] < 30)).all())
    batches = list(dm.train_loader(seed=0))
    assert [b["x"].size(0) for b in batches] == [60, 30] and all(b["train_mask"].all() for b in batches)
    # the training graphs come in the order the run's seed draws (EpochShuffleSampler), one per step
    from src.data.sampling import EpochShuffleSampler

    dm.batch_size = 1
    for seed in (1, 2, 3):
        order = list(EpochShuffleSampler(3, seed))
        got = [b["x"] for b in dm.train_loader(seed=seed)]
        assert all(torch.equal(x, dm.train_graphs[i].x) for x, i in zip(got, order)), (seed, order)
    # the data directory is read only; processing happened in the cache
    assert {p: p.stat().st_mtime_ns for p in (root / "ppi").rglob("*")} == before
    assert list((tmp_path / "cache" / "ppi").rglob("processed"))
    raw = tmp_path / "d" / "ppi" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{s}_{f}" for s in ("train", "valid", "test")
                                                          for f in ("feats.npy", "graph_id.npy", "graph.json",
                                                                    "labels.npy"))


def test_ppi_incomplete_and_missing(tmp_path):
    root = write_tiny_ppi(tmp_path / "d")
    (root / "ppi" / "raw" / "valid_labels.npy").unlink()
    raw = root / "ppi" / "raw"
    with pytest.raises(DataNotFoundError, match=rf"^PPI \({raw}\): incomplete files, {raw / 'valid_labels.npy'} missing"):
        PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / "c")).setup()
    (raw / "valid_labels.npy").mkdir()  # a folder where the file belongs is named as one
    with pytest.raises(DataNotFoundError, match=rf"{raw / 'valid_labels.npy'} is a folder; expected a file$"):
        PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / "c")).setup()
    with pytest.raises(DataNotFoundError, match="downloading is off"):
        PPIDataModule(data_dir=str(tmp_path / "none"), cache_dir=str(tmp_path / "c"), download=False).setup()


def test_failed_ppi_download_leaves_no_partial_cache(tmp_path, monkeypatch):
    import torch_geometric.datasets.ppi as pyg_ppi

    def partial_zip(url, folder, *args, **kwargs):  # the PPI release is one zip, cut off half-way
        (Path(folder) / "ppi.zip").write_bytes(b"PK partial")
        raise OSError(f"connection reset while fetching {url}")
    monkeypatch.setattr(pyg_ppi, "download_url", partial_zip)
    cache = tmp_path / "c"
    with pytest.raises(DataNotFoundError, match="PPI: no files in .* the download failed: OSError") as err:
        PPIDataModule(data_dir=str(tmp_path / "none"), cache_dir=str(cache)).setup()
    assert str(err.value).endswith("or set AUTOATTEND_DATA_DIR / paths.data_dir to a folder holding ppi/raw/")
    assert (cache / "ppi").is_dir() and list((cache / "ppi").iterdir()) == []


@pytest.mark.parametrize("name, damage, why", [
    ("test_labels.npy", lambda p: np.save(p, np.load(p)[:-4]), "26 rows, while test_graph.json has 30 nodes"),
    ("train_graph_id.npy", lambda p: np.save(p, np.load(p)[:-5]), "55 rows, while train_graph.json has 60 nodes"),
    ("valid_graph.json", lambda p: p.write_text(p.read_text()[:40]), "not a node-link graph in JSON"),
    ("valid_graph.json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "links": []})),
     "the graph has no edges ('links' is empty)"),
    ("train_feats.npy", lambda p: p.write_bytes(p.read_bytes()[:60]), "not readable as a NumPy array file"),
])
def test_a_bad_ppi_file_is_named_with_what_is_wrong(tmp_path, caplog, name, damage, why):
    """PyG's reader failed with its own error (an IndexError on mask shapes, a JSONDecodeError, a
    RuntimeError of min() for a graph without edges), reported against the whole folder."""
    root = write_tiny_ppi(tmp_path / "d")
    path = root / "ppi" / "raw" / name
    damage(path)
    dm = PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / "c"), download=False)
    with pytest.raises(AutoAttendError) as err, caplog.at_level(logging.WARNING):
        dm.setup()
    assert str(err.value).startswith(f"{path}: {why}"), str(err.value)
    assert "processed cache" not in caplog.text  # nothing was processed before: no cache to blame


@pytest.mark.parametrize("kind", ["planetoid", "ppi"])
def test_a_damaged_processed_cache_is_rebuilt_from_the_raw_files(tmp_path, caplog, kind):
    """A damaged ``processed/`` file in the cache was reported, run after run, as the user's raw
    files being unreadable."""
    if kind == "planetoid":
        root = write_tiny_planetoid(tmp_path / "d")
        make = lambda: PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / "c"), download=False)
    else:
        root = write_tiny_ppi(tmp_path / "d")
        make = lambda: PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / "c"), download=False)
    first = make()
    first.setup()
    processed = sorted((tmp_path / "c").rglob("processed/*.pt"))
    assert processed
    for path in processed:
        path.write_bytes(path.read_bytes()[:100])
    again = make()
    with caplog.at_level(logging.WARNING):
        again.setup()
    assert "is unreadable" in caplog.text and "processing the raw files again" in caplog.text
    assert len(first.train_graphs) == len(again.train_graphs) and len(first.eval_batches) == len(again.eval_batches)
    for a, b in zip(first.eval_batches, again.eval_batches):  # the same data as before the damage
        for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
            dense = (lambda t: t.to_dense() if t.is_sparse else t)
            assert torch.equal(dense(a[key]), dense(b[key])), key


# ---- the real Cora files ---------------------------------------------------------------------

def test_real_cora(tmp_path):
    data = real_cora_dir()
    dm = PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(tmp_path / "cache"), download=False)
    dm.setup()
    g = dm.graph
    assert (g["x"].size(0), dm.num_features, dm.num_classes) == (2708, 1433, 7)
    assert g["edge_index"].size(1) == 10556
    assert [int(g[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [140, 500, 1000]
    assert torch.bincount(g["y"][g["train_mask"]]).tolist() == [20] * 7


def test_bench_graph_figures_on_the_fixture(tiny_planetoid, tmp_path):
    """``make bench``'s graph figures: medians of >= 5 reps, peak memory, the supernet's size."""
    from src.bench_graph import graph_figures

    figures = graph_figures(str(tiny_planetoid), reps=2, warmup=1, cache_dir=str(tmp_path / "cache"))
    assert figures["graph_config"]["reps"] == 5  # never fewer than 5 timed reps
    assert figures["graph_supernet_step_s"] > 0 and figures["graph_candidate_score_s"] > 0
    assert figures["graph_supernet_peak_rss_mb"] > 0 and figures["graph_supernet_modules"] == 165
    assert figures["graph_config"]["device"] == "cpu" and "graph_supernet_peak_cuda_mb" not in figures
    missing = graph_figures(str(tmp_path / "nowhere"), cache_dir=str(tmp_path / "c2"), download=False)
    assert missing["graph_supernet_step_s"] is None and "Cora unavailable" in missing["graph_note"]


@pytest.mark.parametrize("kind", ["planetoid", "ppi"])
def test_a_copy_cut_short_is_copied_again(tmp_path, monkeypatch, kind):
    """A Ctrl-C (or a full disk) in the middle of copying the user's raw files into the cache
    leaves no truncated file under a raw file's name: the next run copies again and reads the data
    as a run never interrupted does."""
    import shutil

    root = write_tiny_planetoid(tmp_path / "d") if kind == "planetoid" else write_tiny_ppi(tmp_path / "d")

    def loaded(cache: str) -> dict:
        if kind == "planetoid":
            dm = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(tmp_path / cache), download=False)
        else:
            dm = PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / cache), download=False)
        dm.setup()
        return dm.graph if kind == "planetoid" else dm.eval_batches[1]

    copies, copyfile = [], shutil.copyfile

    def cut_short(src, dst, **kwargs):
        copies.append(src)
        if len(copies) == 3:  # half of the third file written, then the interrupt
            Path(dst).write_bytes(Path(src).read_bytes()[: Path(src).stat().st_size // 2])
            raise KeyboardInterrupt
        return copyfile(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", cut_short)
    with pytest.raises(KeyboardInterrupt):
        loaded("cache")
    monkeypatch.setattr(shutil, "copyfile", copyfile)
    cached = sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert [p.read_bytes() for p in cached] == [Path(s).read_bytes() for s in sorted(copies[:2])]
    again, reference = loaded("cache"), loaded("uninterrupted")
    for key in ("y", "edge_index", "val_mask", "test_mask"):
        assert torch.equal(again[key], reference[key]), key


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Write ``data`` (the file's size) over ``path`` and set its modification time back, as
    ``cp -p`` / ``rsync -a`` of a corrected file do: only its change time moves."""
    import os

    before = path.stat()
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("keep_stamp", [False, True])
def test_changed_graph_files_are_not_served_from_a_stale_cache(tmp_path, keep_stamp):
    """A changed raw file is read again, not served from the cache; also one fixed in place with its
    size and modification time kept (``cp -p``, ``rsync -a``): the caches are keyed by the change
    time too (``file_stamp``)."""
    import io
    import pickle

    def rewrite(path: Path, data: bytes) -> None:
        if keep_stamp:
            _rewrite_keeping_size_and_mtime(path, data)
        else:
            path.write_bytes(data)

    cache = tmp_path / "cache"
    root = write_tiny_planetoid(tmp_path / "d")
    first = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(cache), download=False)
    first.setup()
    for name in ("y", "ty", "ally"):  # class c becomes class 2 - c
        path = _files(root)[name]
        rewrite(path, pickle.dumps(pickle.loads(path.read_bytes())[:, ::-1].copy(), protocol=2))
    second = PlanetoidDataModule("cora", data_dir=str(root), cache_dir=str(cache), download=False)
    second.setup()
    assert torch.equal(second.graph["y"], 2 - first.graph["y"])

    ppi = write_tiny_ppi(tmp_path / "p")
    old = PPIDataModule(data_dir=str(ppi), cache_dir=str(cache), download=False)
    old.setup()
    labels = ppi / "ppi" / "raw" / "test_labels.npy"
    buffer = io.BytesIO()
    np.save(buffer, 1 - np.load(labels))
    rewrite(labels, buffer.getvalue())
    new = PPIDataModule(data_dir=str(ppi), cache_dir=str(cache), download=False)
    new.setup()
    assert torch.equal(new.eval_batches[1]["y"], 1 - old.eval_batches[1]["y"])
