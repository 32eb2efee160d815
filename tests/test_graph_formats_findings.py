"""Findings of a graph-formats walk (2026-12-07): the graph loaders on files written as users really have them.

Checked, each file small and written by the test as a real one looks, the loader either reading it right (exact node,
edge and class counts, features, labels, masks) or refusing it in one line naming the file and the array:

- ``+task=graph_file`` (``src/data/graph_file.py``): edge ids of every integer dtype (int8 .. uint64) and a
  Fortran-ordered ``edge_index`` (an (E, 2) array's ``.T``), labels of int32 / int8, masks of uint8 / int32, features
  of float64 / float16 / integer counts: read as the int64 / float32 / bool tensors of the canonical file; an (E, 2)
  ``edge_index`` and a negative node id refused naming ``edge_index``; duplicate edges, self loops and isolated nodes
  kept as given (``task.to_undirected`` merges the duplicates and keeps a self loop once); the same graph as ``.npz``
  (float64 features, int32 edges) and as ``.pt`` (float32, int64) gives the same run records, bit for bit; an (E, 2)
  ``edge_index`` through the command line: status 2, one ``error:`` line, no traceback, no cache written.
  (Covered elsewhere and not repeated: NaN / inf / beyond-float32 features, float labels, masks of other values or
  lengths, overlapping or empty splits, a PyG ``Data`` saved whole or as its dict, a file cut short, several graphs.)
- Planetoid (``src/data/planetoid.py``, PyG's reader): a miniature CiteSeer with test ids missing from the range of
  ``test.index`` (its isolated test nodes: zero features, label 0, in no split, the listed ones in the test split); a
  miniature PubMed with TF-IDF features (rows summing below 1 left as they are, each test row at the id
  ``test.index`` gives it); a graph dict's self loops dropped, duplicates merged, a one-way neighbour kept one way.
- PPI (``src/data/ppi.py``, PyG's reader): each graph's edges are the JSON's links, both ways, numbered from the
  graph's first node.

Findings (first ``xfail(strict=True)`` tests of the correct behaviour; all twelve mended since, session 53):

1. (Mended: read densely, served as ``task.sparse_features`` says.) A ``.pt`` dict whose ``x`` is a sparse tensor
   (``x.to_sparse()``, as Planetoid's features are served) fails with torch's not-implemented error (``aten::ne.Scalar``
   on SparseCPU) and its traceback, in ``_check_arrays``'s ``torch.isfinite(x)`` (``src/data/graph_file.py``); through
   the command line status 1 and a page of dispatcher keys. Fix: densify a sparse ``x`` in ``read_arrays`` (``load``
   serves it sparse again by ``task.sparse_features``), or refuse it in one line naming ``'x'``.
2. (Mended: read in native order.) Arrays of non-native byte order (``>f4``, ``>i8``: MATLAB, Java or HDF5 exports) are
   "unreadable (ValueError: given numpy array has byte order different ...)", naming no array (``torch.from_numpy`` in
   ``read_arrays``). Fix: ``array.astype(array.dtype.newbyteorder("="))`` before ``torch.from_numpy``.
3. (Mended: entries the graph does not need and that are no arrays of numbers are left out, named in the "found:" hint.)
   A ``.npz`` holding, besides the arrays it needs, one the loader never reads (node names as strings, an object array)
   is refused whole ("unreadable (TypeError: can't convert np.ndarray of type numpy.str_ ...)" / "(ValueError: Object
   arrays cannot be loaded ...)"), where a ``.pt``'s extra entries are ignored; a file ``scipy.sparse.save_npz`` wrote
   is "unreadable (TypeError: ... numpy.bytes_ ...)" instead of "no 'x' array". ``read_arrays`` converts every member.
   Fix: read only ``ARRAYS`` and ``batch`` (``np.load`` is lazy), list the others' names for the "found:" hint.
4. (Mended: the entry named; NumPy arrays pickled by ``torch.save`` named as such, which entries unknown.) A ``.pt``
   whose needed entry is not a tensor is misnamed: a dict of NumPy arrays (``torch.save({"x": x_np, ...})``) is told "a
   PyG Data saved whole?; save ... data.to_dict()", which does not apply; ``x`` as a nested list is "no 'x' array
   (found: edge_index, ...)" while the file has one (``read_arrays`` drops non-tensors silently). Fix: name the entry
   and its type ("'x' is a list / NumPy array; save tensors: torch.as_tensor(...)").
5. (Mended.) ``task.path`` naming a folder is "no such file" (a folder named ``g.npz``) or "got a 'suffix-less' file",
   where the Planetoid and PPI readers say "is a folder". Fix: ``path.is_dir()`` first in ``read_arrays``.
6. (Mended.) An empty (0-byte) file is "unreadable (EOFError: )" as ``.pt`` (nothing says what was expected) and "not a
   .npz archive, or one cut short" as ``.npz``; neither says it is empty. Fix: ``path.stat().st_size == 0`` -> "empty
   file".
7. (Mended: a warning.) ``y`` as a one-hot (N, C) matrix (Planetoid's own label format) is taken silently for
   multi-label targets: BCE loss and micro-F1 instead of cross-entropy and accuracy, nodes with no label among the
   scored ones. Documented, but with no word in the log. Fix: a warning naming ``'y'`` when every row holds exactly one
   1 ("class ids: y.argmax(1)").
8. (Mended: ``_bad_raw_file`` checks the ids.) Planetoid: a ``test.index`` id among the training nodes is read silently;
   that node is then in the training and the test split both (PyG's ``index_to_mask``; the project's raw-file check
   compares only counts). A duplicate id gives a 59-node test split for 60 ``tx`` rows, silently. Test ids with gaps in
   a file not named CiteSeer (PyG mends the gaps for CiteSeer alone) fail in PyG with "IndexError: index 599 is out of
   bounds ...", naming the raw folder. Fix: in ``PlanetoidDataModule._bad_raw_file``, refuse naming ``test.index``: ids
   not unique, ids below ``allx``'s rows, gaps (but in CiteSeer).
9. (Mended: and the adjacency dict.) Planetoid: a neighbour id -1 in ``ind.<name>.graph`` is dropped silently (PyG's
   ``coalesce``); one beyond the nodes is refused as "<raw folder>: edge_index refers to node 10000", naming neither the
   file nor its key. Fix: check the adjacency dict's keys and neighbours in ``_bad_raw_file``, naming
   ``ind.<name>.graph`` and the node.
10. (Mended: and the training labels.) Planetoid: a training label row of ``ind.<name>.y`` that is not one-hot (all
   zero, or two ones) is read as class 0 or the first of its classes (PyG's ``argmax``), silently. Fix: refuse it in
   ``_bad_raw_file`` naming the file and the row.
11. (Mended: ``src.data.ppi.numbered_ppi``.) PPI: a graph whose first node has no edge has every edge misnumbered by one
   (PyG's reader numbers a graph's nodes from its smallest node id with an edge: ``edge_index - edge_index.min()``); the
   real PPI has isolated nodes. Fix: after loading, compare each graph's edges with the JSON's (or read the release
   without PyG's ``process``), numbering from the graph's first row.
12. (Mended: ``first_bad_ppi_file`` checks them before PyG reads the files.) PPI: a graph id missing from
   ``<split>_graph_id.npy`` (ids 1, 3: 2 missing) fails in PyG ("RuntimeError: min(): Expected reduction dim ...")
   reported against the whole raw folder; ``<split>_labels.npy`` of another width than the training split's is read, and
   the run fails in validation with torchmetrics' shape error and its traceback; 1-D labels fail with an IndexError and
   its traceback in ``PPIDataModule.load`` (``y.size(1)``); labels other than 0 / 1 (0.5) are read silently, where a
   graph file's are refused. Fix: in ``first_bad_ppi_file``, check graph ids consecutive, labels 2-D, 0/1 and of one
   width across splits, naming the file.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.planetoid import PlanetoidDataModule, row_normalized
from src.data.ppi import PPIDataModule
from src.utils.errors import AutoAttendError
from tests.helpers import cli, write_tiny_planetoid, write_tiny_ppi
from tests.test_graph_file import FEATURES, NODES, graph_arrays, load, write_npz, write_pt

pytestmark = [pytest.mark.usefixtures("one_intra_op_thread")]

SPLITS = ("train_mask", "val_mask", "test_mask")


def refusal(read) -> str:
    """The one-line refusal ``read()`` raises (an ``AutoAttendError``); an AssertionError when it reads the data."""
    try:
        read()
    except AutoAttendError as exc:
        text = str(exc)
        assert "\n" not in text, text
        return text
    raise AssertionError("read without a word")


# ---- graph_file: what is read right ---------------------------------------------------------------------------------

DTYPE_VARIANTS = {
    **{f"edges_{dt.__name__}": (lambda a, dt=dt: {**a, "edge_index": a["edge_index"].astype(dt)})
       for dt in (np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint32, np.uint64)},
    "edges_fortran_order": lambda a: {**a, "edge_index": np.ascontiguousarray(a["edge_index"].T).T},
    "y_int32": lambda a: {**a, "y": a["y"].astype(np.int32)},
    "y_int8": lambda a: {**a, "y": a["y"].astype(np.int8)},
    "masks_uint8": lambda a: {**a, **{m: a[m].astype(np.uint8) for m in SPLITS}},
    "masks_int32": lambda a: {**a, **{m: a[m].astype(np.int32) for m in SPLITS}},
    "x_float64": lambda a: {**a, "x": a["x"].astype(np.float64)},
    "x_float16": lambda a: {**a, "x": a["x"].astype(np.float16)},
    "x_counts_int64": lambda a: {**a, "x": np.round(a["x"] * 3).astype(np.int64)},
}


@pytest.mark.parametrize("fmt", ["npz", "pt"])
@pytest.mark.parametrize("variant", sorted(DTYPE_VARIANTS))
def test_arrays_of_any_integer_or_real_dtype_are_read_as_the_canonical_tensors(tmp_path, variant, fmt):
    """Every dtype a user's arrays come in is served as int64 edges and labels, bool masks, float32 features holding
    the file's values (a float16 / integer ``x`` as those values in float32); a Fortran-ordered (2, E) array (an
    (E, 2) edge list's ``.T``) as its rows."""
    arrays = DTYPE_VARIANTS[variant](graph_arrays())
    assert arrays["edge_index"].shape == (2, 160)
    dm = load((write_npz if fmt == "npz" else write_pt)(tmp_path / f"g.{fmt}", arrays))
    g = dm.graph
    assert (dm.num_features, dm.num_classes, dm.multilabel) == (FEATURES, 3, False)
    assert g["edge_index"].dtype == torch.int64 and g["y"].dtype == torch.int64 and g["x"].dtype == torch.float32
    assert torch.equal(g["edge_index"], torch.from_numpy(arrays["edge_index"].astype(np.int64)))
    assert torch.equal(g["y"], torch.from_numpy(arrays["y"].astype(np.int64)))
    assert torch.equal(g["x"], torch.from_numpy(np.asarray(arrays["x"]).astype(np.float32)))
    for m in SPLITS:
        assert g[m].dtype == torch.bool and torch.equal(g[m], torch.from_numpy(arrays[m].astype(bool)))
    assert [int(g[m].sum()) for m in SPLITS] == [12, 12, 12]


@pytest.mark.parametrize("write", [write_npz, write_pt], ids=["npz", "pt"])
def test_an_edge_list_of_e_by_2_or_a_negative_id_is_one_line_naming_edge_index(tmp_path, write):
    arrays = graph_arrays()
    suffix = ".npz" if write is write_npz else ".pt"
    path = write(tmp_path / f"e{suffix}", {**arrays, "edge_index": arrays["edge_index"].T})
    assert refusal(lambda: load(path)) == f"{path}: edge_index must be (2, E), got (160, 2)"
    negative = arrays["edge_index"].copy()
    negative[0, 3] = -1
    path = write(tmp_path / f"n{suffix}", {**arrays, "edge_index": negative})
    assert refusal(lambda: load(path)) == f"{path}: edge_index refers to node -1 but there are 40 nodes (0..39)"


def test_duplicate_edges_self_loops_and_isolated_nodes_are_read_as_given(tmp_path):
    """Not said in docs/graph.md (Planetoid's reader drops self loops and merges duplicates, see below): a graph file's
    edges are served as listed, a duplicate twice and a self loop once; ``task.to_undirected=true`` adds the reversed
    edges and merges the duplicates, a self loop kept once. Isolated nodes stay nodes."""
    arrays = graph_arrays()
    arrays["edge_index"] = arrays["edge_index"][:, np.isin(arrays["edge_index"], [36, 37]).sum(0) == 0]
    e = arrays["edge_index"].shape[1]
    extra = np.array([[0, 0, 5], [1, 1, 5]])  # a duplicated edge 0 -> 1, a self loop at 5
    arrays["edge_index"] = np.concatenate([arrays["edge_index"], extra], axis=1)
    g = load(write_npz(tmp_path / "g.npz", arrays)).graph
    assert g["x"].size(0) == NODES and g["edge_index"].size(1) == e + 3
    assert int(((g["edge_index"][0] == 0) & (g["edge_index"][1] == 1)).sum()) == int(
        ((arrays["edge_index"][0] == 0) & (arrays["edge_index"][1] == 1)).sum()) >= 2
    assert not np.isin(g["edge_index"].numpy(), [36, 37]).any()  # isolated nodes, kept
    undirected = load(tmp_path / "g.npz", to_undirected=True).graph["edge_index"]
    pairs = {tuple(p) for p in arrays["edge_index"].T.tolist()}
    expected = pairs | {(j, i) for i, j in pairs}
    assert sorted(map(tuple, undirected.T.tolist())) == sorted(expected)


def _run_records(tmp_path: Path, name: str, path: Path) -> dict:
    from src.pipeline import run
    from tests.conftest import compose_config

    out = tmp_path / name
    cfg = compose_config("search", ["+task=graph_file", f"task.path={path}", "budget=smoke", "hardware=cpu",
                                    "hardware.kernels=torch", "hardware.threads=1", f"paths.data_dir={tmp_path}",
                                    f"paths.cache_dir={out / 'cache'}", f"paths.output_dir={out / 'run'}"])
    run.run_search(cfg)
    files = ("search/population.jsonl", "search/best_arch.yaml", "supernet/metrics.csv", "retrain/seed_0.json",
             "retrain/seed_1.json", "retrain/results.json", "baselines/gcn/seed_1.json", "data.json")
    records = {f: (out / "run" / f).read_text() for f in files}
    records["model"] = _tensors(torch.load(out / "run" / "retrain/seed_1/model.pt", weights_only=True))
    return records


def _tensors(value, prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a nested dict / list, by their key path."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    return {k: t for key, v in items for k, t in _tensors(v, f"{prefix}/{key}").items()}


@pytest.mark.filterwarnings("ignore:Checkpoint directory")
@pytest.mark.filterwarnings("ignore:Experiment logs directory")
def test_the_same_graph_as_npz_and_as_pt_gives_the_same_run(tmp_path):
    """float64 features and int32 edges in the ``.npz``, float32 and int64 in the ``.pt``: the same values, so the same
    supernet, candidates, retrained seeds (records and kept weights) and baseline, bit for bit."""
    arrays = graph_arrays()
    npz = write_npz(tmp_path / "g.npz", {**arrays, "x": arrays["x"].astype(np.float64),
                                         "edge_index": arrays["edge_index"].astype(np.int32)})
    pt = write_pt(tmp_path / "g.pt", arrays)
    a, b = _run_records(tmp_path, "npz", npz), _run_records(tmp_path, "pt", pt)
    model_a, model_b = a.pop("model"), b.pop("model")
    assert a == b
    assert json.loads(a["data.json"])["nodes"][0] == NODES
    assert model_a.keys() == model_b.keys() and len(model_a) > 2
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)


def test_a_refused_graph_file_through_the_command_line_is_one_error_line_and_caches_nothing(tmp_path):
    arrays = graph_arrays()
    path = write_npz(tmp_path / "e.npz", {**arrays, "edge_index": arrays["edge_index"].T})
    proc = cli("src.search", "+task=graph_file", f"task.path={path}", "budget=smoke", "hardware=cpu",
               "hardware.kernels=torch", data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "run", timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {path}: edge_index must be (2, E), got (160, 2)"], proc.stderr[-2000:]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*"))


# ---- graph_file: findings -------------------------------------------------------------------------------------------

def test_a_pt_file_with_sparse_features_is_read_as_its_dense_values(tmp_path):
    arrays = graph_arrays()
    tensors = {k: torch.as_tensor(v) for k, v in arrays.items()}
    torch.save({**tensors, "x": tensors["x"].to_sparse()}, tmp_path / "sparse.pt")
    for served in (False, True):
        g = load(tmp_path / "sparse.pt", sparse_features=served).graph
        assert g["x"].is_sparse == served and torch.equal(g["x"].to_dense(), tensors["x"])
        assert torch.equal(g["edge_index"], tensors["edge_index"]) and torch.equal(g["y"], tensors["y"])


@pytest.mark.parametrize("name, dtype", [("x", ">f4"), ("edge_index", ">i8"), ("y", ">i4")])
def test_arrays_of_big_endian_byte_order_are_read(tmp_path, name, dtype):
    arrays = graph_arrays()
    path = write_npz(tmp_path / "be.npz", {**arrays, name: arrays[name].astype(dtype)})
    try:
        g = load(path).graph
    except AutoAttendError as exc:
        raise AssertionError(str(exc)) from None
    assert torch.equal(g[name], torch.from_numpy(arrays[name].astype(g[name].numpy().dtype)))


@pytest.mark.parametrize("extra", ["strings", "objects"])
def test_a_npz_with_arrays_it_does_not_need_is_read_as_a_pt_with_extras_is(tmp_path, extra):
    arrays = graph_arrays()
    value = (np.array([f"protein_{i}" for i in range(NODES)]) if extra == "strings"
             else np.array([{"source": "lab"}], dtype=object))
    np.savez(tmp_path / "g.npz", **arrays, node_names=value)
    torch.save({**{k: torch.as_tensor(v) for k, v in arrays.items()}, "node_names": value.tolist()}, tmp_path / "g.pt")
    assert load(tmp_path / "g.pt").num_classes == 3  # a .pt's extras are ignored
    try:
        dm = load(tmp_path / "g.npz")
    except AutoAttendError as exc:
        raise AssertionError(str(exc)) from None
    assert dm.num_classes == 3 and torch.equal(dm.graph["x"], torch.from_numpy(arrays["x"]))


def test_a_scipy_sparse_matrix_file_is_told_it_lacks_x(tmp_path):
    import scipy.sparse as sp

    path = tmp_path / "features.npz"
    sp.save_npz(path, sp.csr_matrix(graph_arrays()["x"]))
    text = refusal(lambda: load(path))
    assert text.startswith(f"{path}: no 'x' array; expected x, edge_index, y"), text
    assert "found: data, format, indices, indptr, shape" in text, text


@pytest.mark.parametrize("kind", ["numpy", "list"])
def test_a_pt_whose_x_is_no_tensor_is_told_so_naming_x(tmp_path, kind):
    arrays = graph_arrays()
    tensors = {k: torch.as_tensor(v) for k, v in arrays.items()}
    saved = dict(arrays) if kind == "numpy" else {**tensors, "x": arrays["x"].tolist()}
    torch.save(saved, tmp_path / "g.pt")
    text = refusal(lambda: load(tmp_path / "g.pt"))
    said = text.removeprefix(f"{tmp_path / 'g.pt'}: ")  # the words after the file's name
    assert "PyG Data" not in said and "no 'x' array" not in said, text
    # NumPy arrays pickled by torch.save are not unpickled (weights_only): which entries they are is not known
    assert ("NumPy" in said and "torch.as_tensor" in said) if kind == "numpy" else ("'x'" in said and "list" in said)


@pytest.mark.parametrize("name", ["g.npz", "graphs"])
def test_a_folder_at_task_path_is_named_as_a_folder(tmp_path, name):
    (tmp_path / name).mkdir()
    text = refusal(lambda: load(tmp_path / name))
    assert text.startswith(f"{tmp_path / name}: ") and "is a folder" in text.removeprefix(f"{tmp_path / name}: "), text


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_an_empty_file_is_said_to_be_empty(tmp_path, suffix):
    path = tmp_path / f"g{suffix}"
    path.write_bytes(b"")
    text = refusal(lambda: load(path))
    assert text.startswith(f"{path}: ") and "empty" in text.removeprefix(f"{path}: "), text


def test_one_hot_labels_read_as_multi_label_targets_are_named_in_a_warning(tmp_path, caplog):
    arrays = graph_arrays()
    labelled = arrays["y"] >= 0
    onehot = np.zeros((NODES, 3), np.int64)
    onehot[np.flatnonzero(labelled), arrays["y"][labelled]] = 1
    path = write_npz(tmp_path / "onehot.npz", {**arrays, "y": onehot})
    with caplog.at_level(logging.WARNING):
        dm = load(path)
    assert dm.multilabel and dm.metric == "micro_f1" and dm.num_classes == 3  # as documented
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(str(path) in m and "'y'" in m and ("one-hot" in m or "class ids" in m) for m in said), said


# ---- Planetoid ------------------------------------------------------------------------------------------------------

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}


def _raw(root: Path, name: str) -> Path:
    return root / "planetoid" / PLANETOID[name] / "raw"


def _unpickle(path: Path):
    return pickle.loads(path.read_bytes(), encoding="latin1")


def _repickle(path: Path, value) -> None:
    path.write_bytes(pickle.dumps(value, protocol=2))


def _planetoid(tmp_path: Path, name: str = "cora", damage=None, **kwargs) -> tuple[PlanetoidDataModule, Path]:
    """A tiny Planetoid folder (:func:`write_tiny_planetoid`: 15 training nodes, 500 validation, 25 unlabelled, 60
    test; 600 nodes), ``damage(raw folder, "ind.<name>")`` applied, and its DataModule (not set up)."""
    root = write_tiny_planetoid(tmp_path / "data", name=name, **kwargs)
    raw = _raw(root, name)
    if damage is not None:
        damage(raw, f"ind.{name}")
    dm = PlanetoidDataModule(name, data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    return dm, raw


def _drop_test_nodes(raw: Path, stem: str, ranks=(5, 6, 20)) -> list[int]:
    """Remove the test nodes of the given ranks (in id order) from ``tx``, ``ty`` and ``test.index``, as CiteSeer's
    isolated test nodes are missing; -> their ids."""
    ids = [int(i) for i in (raw / f"{stem}.test.index").read_text().split()]
    gone = {sorted(ids)[r] for r in ranks}
    keep = [k for k, i in enumerate(ids) if i not in gone]
    for key in ("tx", "ty"):
        _repickle(raw / f"{stem}.{key}", _unpickle(raw / f"{stem}.{key}")[keep])
    (raw / f"{stem}.test.index").write_text("".join(f"{ids[k]}\n" for k in keep))
    return sorted(gone)


def test_citeseers_missing_test_ids_become_zero_featured_nodes_in_no_split(tmp_path):
    gone = []
    dm, raw = _planetoid(tmp_path, "citeseer", lambda raw, stem: gone.extend(_drop_test_nodes(raw, stem)))
    dm.setup()
    g, x = dm.graph, dm.graph["x"].to_dense()
    assert x.shape == (600, 24) and dm.num_classes == 3 and g["edge_index"].size(1) == 2376
    assert [int(g[m].sum()) for m in SPLITS] == [15, 500, 57]
    assert [int(i) for i in (x.abs().sum(1) == 0).nonzero().flatten()] == gone
    assert g["y"][gone].tolist() == [0, 0, 0] and not any(bool(g[m][gone].any()) for m in SPLITS)
    ids = torch.tensor([int(i) for i in (raw / "ind.citeseer.test.index").read_text().split()])
    tx = torch.tensor(_unpickle(raw / "ind.citeseer.tx").todense(), dtype=torch.float32)
    ty = torch.tensor(_unpickle(raw / "ind.citeseer.ty")).argmax(1)
    assert torch.equal(x[ids], row_normalized(tx)) and torch.equal(g["y"][ids], ty)
    assert bool(g["test_mask"][ids].all())


def test_pubmeds_tf_idf_features_are_served_at_their_ids_unscaled_below_a_row_sum_of_one(tmp_path):
    def tf_idf(raw: Path, stem: str) -> None:
        rng = np.random.default_rng(1)
        for key in ("x", "allx", "tx"):
            m = _unpickle(raw / f"{stem}.{key}").astype(np.float64)
            m.data = rng.random(m.data.size) * 0.15  # at most 5 words a row: sums below 1
            _repickle(raw / f"{stem}.{key}", m)

    dm, raw = _planetoid(tmp_path, "pubmed", tf_idf, num_features=30)
    dm.setup()
    g, x = dm.graph, dm.graph["x"].to_dense()
    assert x.shape == (600, 30) and dm.num_classes == 3 and [int(g[m].sum()) for m in SPLITS] == [15, 500, 60]
    allx = torch.tensor(_unpickle(raw / "ind.pubmed.allx").todense(), dtype=torch.float32)
    tx = torch.tensor(_unpickle(raw / "ind.pubmed.tx").todense(), dtype=torch.float32)
    ids = torch.tensor([int(i) for i in (raw / "ind.pubmed.test.index").read_text().split()])
    assert float(allx.sum(1).max()) < 1 and torch.equal(x[:540], allx) and torch.equal(x[ids], tx)
    assert torch.equal(g["y"][ids], torch.tensor(_unpickle(raw / "ind.pubmed.ty")).argmax(1))


def test_a_graph_dicts_self_loops_are_dropped_duplicates_merged_and_one_way_neighbours_kept_one_way(tmp_path):
    """PyG's reader (``edge_index_from_dict``): what the Planetoid tasks serve, unlike a graph file (above)."""
    base, _ = _planetoid(tmp_path / "base")
    base.setup()
    before = {tuple(p) for p in base.graph["edge_index"].T.tolist()}
    chosen = {}

    def damage(raw: Path, stem: str) -> None:
        graph = _unpickle(raw / f"{stem}.graph")
        j = graph[3][0]
        chosen["j"] = j
        graph[3] += [3, j]  # a self loop and a duplicate of 3 -> j
        graph[j].remove(3)  # j no longer lists 3: 3 -> j one way
        _repickle(raw / f"{stem}.graph", graph)

    dm, _ = _planetoid(tmp_path / "changed", damage=damage)
    dm.setup()
    after = [tuple(p) for p in dm.graph["edge_index"].T.tolist()]
    j = chosen["j"]
    assert len(after) == len(set(after)) == len(before) - 1 and set(after) == before - {(j, 3)}


def _test_ids(raw: Path, stem: str, change) -> None:
    path = raw / f"{stem}.test.index"
    ids = [int(i) for i in path.read_text().split()]
    change(ids)
    path.write_text("".join(f"{i}\n" for i in ids))


@pytest.mark.parametrize("case", ["a_training_node", "a_repeated_id", "a_gap"])
def test_bad_test_index_ids_are_refused_naming_the_file(tmp_path, case):
    changes = {"a_training_node": lambda ids: ids.__setitem__(0, 2),  # node 2: a training node
               "a_repeated_id": lambda ids: ids.__setitem__(1, ids[0])}

    def damage(raw: Path, stem: str) -> None:
        if case == "a_gap":
            _drop_test_nodes(raw, stem, ranks=(5,))
        else:
            _test_ids(raw, stem, changes[case])

    dm, raw = _planetoid(tmp_path, damage=damage)
    text = refusal(dm.setup)
    assert text.startswith(f"{raw / 'ind.cora.test.index'}: "), text


@pytest.mark.parametrize("neighbour", [-1, 10_000])
def test_a_neighbour_outside_the_nodes_is_refused_naming_the_graph_file(tmp_path, neighbour):
    def damage(raw: Path, stem: str) -> None:
        graph = _unpickle(raw / f"{stem}.graph")
        graph[3].append(neighbour)
        _repickle(raw / f"{stem}.graph", graph)

    dm, raw = _planetoid(tmp_path, damage=damage)
    text = refusal(dm.setup)
    assert text.startswith(f"{raw / 'ind.cora.graph'}: ") and str(neighbour) in text.removeprefix(str(raw)), text


@pytest.mark.parametrize("row", ["all_zero", "two_classes"])
def test_a_training_label_row_that_is_not_one_hot_is_refused_naming_the_file(tmp_path, row):
    def damage(raw: Path, stem: str) -> None:
        for key in ("y", "ally"):  # the same node, row 2 of both
            labels = _unpickle(raw / f"{stem}.{key}")
            labels[2] = 0 if row == "all_zero" else 1
            _repickle(raw / f"{stem}.{key}", labels)

    dm, raw = _planetoid(tmp_path, damage=damage)
    text = refusal(dm.setup)
    assert text.startswith(f"{raw / 'ind.cora.y'}: "), text


# ---- PPI ------------------------------------------------------------------------------------------------------------

def _ppi(tmp_path: Path, damage=None) -> tuple[PPIDataModule, Path]:
    """A tiny PPI folder (:func:`write_tiny_ppi`: 2 / 1 / 1 graphs of 30 nodes, 8 features, 5 labels),
    ``damage(raw folder)`` applied, and its DataModule (not set up)."""
    root = write_tiny_ppi(tmp_path / "data")
    raw = root / "ppi" / "raw"
    if damage is not None:
        damage(raw)
    return PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False), raw


def _json_edges(raw: Path, split: str, first: int, last: int) -> set:
    """The links of ``<split>_graph.json`` among nodes ``first``..``last``-1, both ways, numbered from ``first``."""
    links = json.loads((raw / f"{split}_graph.json").read_text())["links"]
    pairs = {(link["source"] - first, link["target"] - first) for link in links if first <= link["source"] < last}
    return {p for p in pairs | {(j, i) for i, j in pairs} if p[0] != p[1]}


def test_each_ppi_graphs_edges_are_its_json_links_both_ways(tmp_path):
    dm, raw = _ppi(tmp_path)
    dm.setup()
    for g, data in enumerate(dm.train_graphs):
        assert data.num_nodes == 30
        assert set(map(tuple, data.edge_index.T.tolist())) == _json_edges(raw, "train", 30 * g, 30 * (g + 1))


def _isolate_first_node(raw: Path) -> None:
    path = raw / "train_graph.json"
    graph = json.loads(path.read_text())
    graph["links"] = [link for link in graph["links"] if 0 not in (link["source"], link["target"])]
    path.write_text(json.dumps(graph))


def test_a_ppi_graph_whose_first_node_has_no_edge_keeps_its_edges_numbering(tmp_path):
    dm, raw = _ppi(tmp_path, _isolate_first_node)
    dm.setup()
    first = dm.train_graphs[0]
    assert first.num_nodes == 30 and _json_edges(raw, "train", 0, 30)
    assert set(map(tuple, first.edge_index.T.tolist())) == _json_edges(raw, "train", 0, 30)


def test_ppi_graphs_pyg_numbers_right_are_read_as_pygs_reader_reads_them(tmp_path):
    """Where every graph's first node has an edge (PyG's reader right), ``numbered_ppi``'s processing gives PyG's
    tensors exactly, edge order included (results of runs before the mend stay reproducible)."""
    import shutil

    from torch_geometric.datasets import PPI

    from src.data.ppi import numbered_ppi

    raw = write_tiny_ppi(tmp_path / "data") / "ppi" / "raw"
    for name in ("pyg", "ours"):
        shutil.copytree(raw, tmp_path / name / "raw")
    for split in ("train", "val", "test"):
        theirs, ours = PPI(str(tmp_path / "pyg"), split=split), numbered_ppi()(str(tmp_path / "ours"), split=split)
        assert len(theirs) == len(ours) > 0
        for a, b in zip(theirs, ours):
            assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def _renumber_last_graph(raw: Path) -> None:
    ids = np.load(raw / "train_graph_id.npy")
    ids[ids == ids.max()] += 1  # graph ids 1, 3: id 2 missing
    np.save(raw / "train_graph_id.npy", ids)


def _narrow(split: str):
    def damage(raw: Path) -> None:
        np.save(raw / f"{split}_labels.npy", np.load(raw / f"{split}_labels.npy")[:, :4])
    return damage


def _halve(raw: Path) -> None:
    np.save(raw / "train_labels.npy", np.load(raw / "train_labels.npy") * 0.5)


PPI_CASES = {
    "graph_id_missing": (_renumber_last_graph, "train_graph_id.npy"),
    "valid_labels_narrower": (_narrow("valid"), "valid_labels.npy"),
    "test_labels_narrower": (_narrow("test"), "test_labels.npy"),
    "labels_not_0_or_1": (_halve, "train_labels.npy"),
}


@pytest.mark.parametrize("case", sorted(PPI_CASES))
def test_bad_ppi_files_are_one_line_naming_the_file(tmp_path, case):
    damage, name = PPI_CASES[case]
    dm, raw = _ppi(tmp_path, damage)
    text = refusal(dm.setup)
    assert text.startswith(f"{raw / name}: "), text


def test_one_dimensional_ppi_labels_are_one_line_naming_the_file(tmp_path):
    def flatten(raw: Path) -> None:
        for split in ("train", "valid", "test"):
            np.save(raw / f"{split}_labels.npy", np.load(raw / f"{split}_labels.npy").argmax(1))

    dm, raw = _ppi(tmp_path, flatten)
    text = refusal(dm.setup)
    assert text.startswith(f"{raw / 'train_labels.npy'}: "), text


def test_a_needed_array_of_strings_is_named_with_its_type(tmp_path):
    """``y`` saved as class names (strings) is refused naming ``'y'`` and its dtype, not "no 'y' array"."""
    arrays = graph_arrays()
    names = np.array(["class_a", "class_b", "class_c"])[np.clip(arrays["y"], 0, 2)]
    path = write_npz(tmp_path / "names.npz", {**arrays, "y": names})
    text = refusal(lambda: load(path))
    assert text == f"{path}: 'y' holds {names.dtype} values; expected numbers", text


def test_a_repeated_test_index_id_is_named_as_repeated(tmp_path):
    """Not only refused (a gap follows from it too) but said: the id and how often it appears."""
    def repeat_first(raw: Path, stem: str) -> None:
        _test_ids(raw, stem, lambda ids: ids.__setitem__(1, ids[0]))

    dm, raw = _planetoid(tmp_path, damage=repeat_first)
    text = refusal(dm.setup)
    assert text.startswith(f"{raw / 'ind.cora.test.index'}: test node id ") and "appears 2 times" in text, text


@pytest.mark.parametrize("case, said", [
    ("a_training_node", "test node id 2 is among the first 540 nodes"),
    ("a_node_key_outside", "node id 600; expected node ids 0..599"),
    ("a_float_neighbour", "node 3 lists neighbour 4.0; expected node ids 0..599"),
    ("a_half_label", "label row 2 is [0.5, 0.5, 0.0]; expected one 1"),
])
def test_each_planetoid_raw_file_check_says_what_it_found(tmp_path, case, said):
    """Each check's own words (a repeated or misplaced test id also leaves a gap, which another check names)."""
    def damage(raw: Path, stem: str) -> None:
        if case == "a_training_node":
            _test_ids(raw, stem, lambda ids: ids.__setitem__(0, 2))
        elif case == "a_half_label":
            labels = _unpickle(raw / f"{stem}.y").astype(np.float64)
            labels[2] = 0
            labels[2, :2] = 0.5
            _repickle(raw / f"{stem}.y", labels)
        else:
            graph = _unpickle(raw / f"{stem}.graph")
            if case == "a_node_key_outside":
                graph[600] = [1]
            else:
                graph[3].append(4.0)
            _repickle(raw / f"{stem}.graph", graph)

    dm, raw = _planetoid(tmp_path, damage=damage)
    assert said in refusal(dm.setup)


def test_one_dimensional_ppi_labels_are_named_by_their_shape(tmp_path):
    def binary(raw: Path) -> None:
        for split in ("train", "valid", "test"):
            np.save(raw / f"{split}_labels.npy", np.load(raw / f"{split}_labels.npy")[:, 0])

    dm, raw = _ppi(tmp_path, binary)
    assert refusal(dm.setup) == (f"{raw / 'train_labels.npy'}: labels of shape (60,); expected one row of 0/1 per "
                                 "node, one column per label (nodes x labels)")


def test_a_ppi_graph_without_edges_among_others_is_refused_naming_it(tmp_path):
    def isolate_graph_1(raw: Path) -> None:
        path = raw / "train_graph.json"
        graph = json.loads(path.read_text())
        graph["links"] = [link for link in graph["links"] if link["source"] < 30 and link["target"] < 30]
        path.write_text(json.dumps(graph))

    dm, raw = _ppi(tmp_path, isolate_graph_1)
    assert "train graph 1 (rows 30..59) has no edges" in refusal(dm.setup)


def test_ppi_caches_of_another_processing_are_not_read(tmp_path, monkeypatch):
    """The processed graphs' cache folder names the processing (``PPI_PROCESSING``): the graphs an older autoattend
    processed from the same files (PyG's numbering) are not read by this one."""
    import src.data.ppi

    dm, _ = _ppi(tmp_path)
    dm.setup()
    before = {p.name for p in (tmp_path / "cache" / "ppi").iterdir()}
    monkeypatch.setattr(src.data.ppi, "PPI_PROCESSING", src.data.ppi.PPI_PROCESSING + 1)
    PPIDataModule(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), download=False).setup()
    after = {p.name for p in (tmp_path / "cache" / "ppi").iterdir()}
    assert len(before) == 1 and len(after - before) == 1  # a folder of its own, not the other processing's
