"""A graph of your own for node classification: one file holding one graph, or several, and the split.

``+task=graph_file task.path=/data/my_graph.npz`` runs the graph pipeline (search, retrain,
baselines, ``src.predict``) on it: transductively as on Cora, or, when the file holds several
graphs, inductively as on PPI. The file holds named arrays:

* ``x`` (N, F) node features (any real dtype; read as float32);
* ``edge_index`` (2, E) integer node ids, messages flowing ``edge_index[0] -> edge_index[1]``
  (list both directions of an undirected edge, or set ``task.to_undirected=true``);
* ``y`` (N,) integer class ids from 0; ``-1`` marks an unlabelled node, which no split may hold
  (``src.predict`` classifies it like every other node); or (N, C) 0/1 targets of a multi-label
  task (as PPI's: BCE loss, micro-F1, reported under the ``*_acc`` keys with ``"metric": "micro_f1"``);
* ``train_mask``, ``val_mask``, ``test_mask`` (N,) booleans (or 0/1 integers), disjoint, none empty;
  or, with ``task.split=random``, no masks: a seeded split of the labelled nodes as Planetoid's
  (``train_per_class`` nodes of each class, then ``val_size`` and ``test_size`` of the rest);
* optionally ``batch`` (N,) integers, the graph each node belongs to (PyG's name: a ``Batch``
  saved with ``to_dict()`` holds it): several graphs, no edge between two of them, each graph's
  split nodes all in one split. Training then sees only the training graphs, ``task.batch_size``
  of them merged per step (in a new order every epoch), and validation and test run on their own
  graphs (inductive, as PPI's 20 / 2 / 2 graphs). The split comes from the masks, or with
  ``task.split=random`` whole graphs are drawn: ``task.val_graphs`` and ``task.test_graphs`` of
  them (2 and 2, as PPI), the rest train.

Formats: ``.npz`` (``numpy.savez``; read without pickle) or ``.pt`` / ``.pth``, a dict of tensors
read with ``torch.load(weights_only=True)``, as ``torch.save(data.to_dict(), path)`` writes a PyG
``Data``. The file is read where it is; nothing is written next to it or cached.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from src.choices import GRAPH_FILE_SPLITS
from src.data.planetoid import (GraphDataModule, check_edges, check_graph, class_count, collate_graphs,
                                data_to_batch, row_normalized)
from src.utils.errors import AutoAttendError, DataNotFoundError
from src.utils.memory import binary_size, machine_memory_bytes

log = logging.getLogger(__name__)

SPLITS = ("train_mask", "val_mask", "test_mask")
ARRAYS = ("x", "edge_index", "y", *SPLITS)
GRAPH_IDS = "batch"  # optional: each node's graph (PyG's Batch.batch)
SUFFIXES = (".npz", ".pt", ".pth")
UNLABELLED = -1
# sparse_features=auto: features with fewer non-zeros than this share are kept as a sparse tensor, as
# Planetoid's bag-of-words are (Cora, 1.3 % non-zero: a reduced Cora search took 36 s sparse, 53 s
# dense; experiments/README.md, "Cora from a file")
SPARSE_BELOW = 0.1


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # torch's messages bold some words


class GraphArrays(dict):
    """A graph file's tensors by name; ``others``: the names of its entries that are no arrays of numbers (node
    names, notes), which are not read, listed where a needed array is missing."""

    def __init__(self, tensors: dict[str, torch.Tensor], others: tuple[str, ...] = ()):
        super().__init__(tensors)
        self.others = others


def _as_tensor(value, name: str, path: Path) -> torch.Tensor | None:
    """An entry as a dense tensor of numbers in native byte order; None for one that is no such array (an
    array the graph needs that is not: one line naming it)."""
    needed = name in (*ARRAYS, GRAPH_IDS)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            if needed:
                raise AutoAttendError(f"{path}: {name!r} holds {value.dtype} values; expected numbers")
            return None
        return torch.from_numpy(np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("=")))
    if isinstance(value, torch.Tensor):
        # a sparse x (as Planetoid's features are served): read densely, served as task.sparse_features says
        return value.to_dense() if value.layout != torch.strided else value
    if needed:
        raise AutoAttendError(f"{path}: {name!r} is a {type(value).__name__}, not a tensor; save tensors "
                              f"(torch.as_tensor({name}))")
    return None


def read_arrays(path: Path, given_as: str = "task.path") -> GraphArrays:
    """The arrays of ``path`` (``.npz``, or a ``.pt`` / ``.pth`` dict of tensors) as tensors, by name;
    one clear error for a missing, unreadable or unexpected file (a missing one named as ``given_as``).
    Entries the graph does not need and that are no arrays of numbers are left out (``others``)."""
    if path.is_dir():
        raise AutoAttendError(f"{path}: this path is a folder; expected the graph's .npz or .pt file ({given_as})")
    if path.suffix not in SUFFIXES:
        raise AutoAttendError(f"{path}: expected a .npz file or a .pt / .pth dict of tensors, got a "
                              f"'{path.suffix or 'suffix-less'}' file")
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file ({given_as}: the graph's .npz or .pt file)")
    if path.stat().st_size == 0:
        raise AutoAttendError(f"{path}: an empty file (0 bytes); expected the graph's arrays")
    if path.suffix == ".npz" and not zipfile.is_zipfile(path):  # numpy's own guess is "pickled (object) data"
        raise AutoAttendError(f"{path}: not a .npz archive, or one cut short (numpy.savez(path, x=..., "
                              "edge_index=..., ...) writes one)")
    if path.suffix == ".npz":
        _check_unpacked_size(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                loaded = {}
                for name in archive.files:
                    try:
                        loaded[name] = archive[name]
                    except ValueError as exc:  # an object array, which would need pickle
                        if name in (*ARRAYS, GRAPH_IDS):
                            raise AutoAttendError(f"{path}: {name!r} is an array of Python objects; expected "
                                                  "numbers") from exc
                        loaded[name] = None
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except AutoAttendError:
        raise
    except Exception as exc:  # numpy's, zipfile's or torch's reader, whatever it hit
        text = _TERMINAL_CODES.sub("", str(exc)).strip()
        if "Weights only load failed" in text:  # torch's long advice is about trusting pickles, not this format
            if "Unsupported global" in text and "numpy" in text:  # NumPy arrays saved by torch.save
                raise AutoAttendError(f"{path}: holds NumPy arrays, which are not read; save tensors: "
                                      "torch.save({name: torch.as_tensor(array), ...}, path)") from None
            if "Unsupported global" in text:  # a class pickled by name: torch_geometric's Data, say
                raise AutoAttendError(f"{path}: holds objects other than tensors, which are not read (a PyG Data "
                                      "saved whole?); save a dict of tensors: torch.save(data.to_dict(), path)"
                                      ) from None
            raise AutoAttendError(f"{path}: unreadable (torch.load(weights_only=True) cannot read it: not a file "
                                  "torch.save wrote?)") from None
        reason = text.splitlines()[0][:200] if text else ""
        raise AutoAttendError(f"{path}: unreadable ({type(exc).__name__}: {reason})") from None
    if not isinstance(loaded, dict):
        raise AutoAttendError(f"{path}: expected a dict of tensors (torch.save(data.to_dict(), path)), "
                              f"got {type(loaded).__name__}")
    tensors = {str(k): _as_tensor(v, str(k), path) for k, v in loaded.items()}
    return GraphArrays({k: v for k, v in tensors.items() if v is not None},
                       tuple(k for k, v in tensors.items() if v is None))


def _check_unpacked_size(path: Path) -> None:
    """Refuse a ``.npz`` whose members, decompressed, take more than this machine's memory (a
    ``numpy.savez_compressed`` file can be a thousand times smaller than its arrays), before any is
    read. The sizes are those the archive states, which its reader does not read past."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return  # numpy's reader names what is wrong with the file
    memory = machine_memory_bytes()
    if memory and unpacked > memory:
        raise AutoAttendError(f"{path}: its arrays take {binary_size(unpacked)} decompressed, more than this "
                              f"machine's {binary_size(memory)} of memory")


def _check_arrays(arrays: dict[str, torch.Tensor], where: Path, masks: bool = True, labels: bool = True) -> None:
    """Names, shapes and dtypes the module docstring states (the masks only with ``masks``; ``y``
    required only with ``labels``, else checked where present); raises one line naming the array."""
    needed = ARRAYS if masks else ARRAYS[:3]
    if not labels:
        needed = tuple(name for name in needed if name != "y")
    missing = [name for name in needed if name not in arrays]
    if missing:
        hint = " (or task.split=random to draw the split)" if missing[0] in SPLITS else ""
        found = sorted({*arrays, *getattr(arrays, "others", ())})
        raise AutoAttendError(f"{where}: no {missing[0]!r} array; expected {', '.join(needed)}{hint} "
                              f"(found: {', '.join(found) or 'none'})")
    x, edge_index, y = arrays["x"], arrays["edge_index"], arrays.get("y")
    if x.dim() != 2 or x.size(1) < 1 or x.is_complex() or x.dtype == torch.bool:
        raise AutoAttendError(f"{where}: 'x' must be (N, F) real features, F >= 1, got {x.dtype} of shape "
                              f"{tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise AutoAttendError(f"{where}: 'x' holds NaN or infinite values")
    if not torch.isfinite(x.float()).all():  # float64 values past float32's range: the features are float32
        largest = torch.finfo(torch.float32).max
        raise AutoAttendError(f"{where}: 'x' holds values beyond float32's range (+-{largest:.4g}), which the "
                              "features are served as; scale them")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise AutoAttendError(f"{where}: 'edge_index' must hold integer node ids, got {edge_index.dtype}")
    if y is not None and y.dim() == 2:
        if y.size(1) < 1 or y.is_complex() or not bool(((y == 0) | (y == 1)).all()):
            raise AutoAttendError(f"{where}: a 2-D 'y' holds multi-label targets, (N, C) zeros and ones; got {y.dtype} "
                                  f"of shape {tuple(y.shape)} with other values")
    elif y is not None and (y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool):
        raise AutoAttendError(f"{where}: 'y' must be (N,) integer class ids, or (N, C) 0/1 multi-label targets; got "
                              f"{y.dtype} of shape {tuple(y.shape)}")
    if GRAPH_IDS in arrays:
        graph_of = arrays[GRAPH_IDS]
        if graph_of.dim() != 1 or graph_of.is_floating_point() or graph_of.dtype == torch.bool:
            raise AutoAttendError(f"{where}: '{GRAPH_IDS}' must be (N,) integer graph ids, one per node; got "
                                  f"{graph_of.dtype} of shape {tuple(graph_of.shape)}")
        if graph_of.numel() != x.size(0):
            raise AutoAttendError(f"{where}: '{GRAPH_IDS}' has {graph_of.numel()} entries for {x.size(0)} nodes "
                                  "(one graph id per row of 'x')")
        if graph_of.numel() and int(graph_of.min()) < 0:
            raise AutoAttendError(f"{where}: '{GRAPH_IDS}' holds {int(graph_of.min())}; graph ids are integers from 0")
    for split in SPLITS if masks else ():
        _check_mask(arrays[split], split, where)


def _check_mask(mask: torch.Tensor, split: str, where: Path) -> None:
    if mask.dim() != 1 or mask.is_floating_point() or not bool(((mask == 0) | (mask == 1)).all()):
        raise AutoAttendError(f"{where}: '{split}' must be (N,) booleans or 0/1 integers, got {mask.dtype} of "
                              f"shape {tuple(mask.shape)}")


def _check_label_range(y: torch.Tensor, where: Path) -> None:
    """Single-label ``y`` (N,): class ids from 0, or ``UNLABELLED``."""
    if bool((y < UNLABELLED).any()):
        raise AutoAttendError(f"{where}: 'y' holds {int(y.min())}; labels are class ids from 0, or {UNLABELLED} for "
                              "an unlabelled node")


def _check_class_count(y: torch.Tensor, where: Path) -> None:
    """No more classes than labelled nodes in a graph to train on (the class count is the largest id + 1, and a
    model gets an output per class: an id of 10^9 asked for gigabytes). Not for a graph to predict, whose ids the
    run's models check."""
    labelled = int((y >= 0).sum())
    if labelled and int(y.max()) + 1 > labelled:
        raise AutoAttendError(f"{where}: 'y' holds class id {int(y.max())}, which makes more classes than the "
                              f"{labelled} labelled nodes; labels are class ids 0 .. C-1 (numbered without gaps)")


def _check_split(batch: dict, where: Path) -> int:
    """Splits non-empty and disjoint, every node they hold labelled; returns the class (or, for
    multi-label targets, label) count."""
    y = batch["y"]
    for split in SPLITS:
        if not batch[split].any():
            raise AutoAttendError(f"{where}: '{split}' selects no node; every split needs at least one")
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1:]:
            both = batch[first] & batch[second]
            if both.any():
                raise AutoAttendError(f"{where}: node {int(both.nonzero()[0])} is in both '{first}' and '{second}'; "
                                      "the splits must be disjoint")
    if y.dim() == 2:
        return y.size(1)
    in_a_split = batch["train_mask"] | batch["val_mask"] | batch["test_mask"]
    bad = in_a_split & (y < 0)
    if bad.any():
        node = int(bad.nonzero()[0])
        raise AutoAttendError(f"{where}: node {node} is in a split but has label {int(y[node])}; labels are class ids "
                              f"from 0 ({UNLABELLED}: unlabelled, outside every split)")
    _check_label_range(y, where)
    _check_class_count(y, where)
    classes = class_count(y, batch["train_mask"], batch["val_mask"], batch["test_mask"], str(where))
    if classes < 2:
        raise AutoAttendError(f"{where}: every training and validation node has class 0; node classification needs "
                              "at least two")
    _warn_of_untrained_classes(y, batch["train_mask"], classes, where)
    return classes


def _warn_of_untrained_classes(y: torch.Tensor, train_mask: torch.Tensor, classes: int, where: Path) -> None:
    """A warning naming the class ids 0 .. ``classes``-1 no training node has (``y`` (N,), ``train_mask`` (N,) bool):
    a gap in the numbering, or a class only validation or test nodes hold. The model keeps an output for each, which
    training never rewards, so every node of such a class is misclassified; a gap usually means ids not renumbered."""
    missing = sorted(set(range(classes)) - set(y[train_mask].tolist()))
    if not missing:
        return
    unused = set(range(classes)) - set(y[y >= 0].tolist())
    shown = ", ".join(f"{c} (no labelled node)" if c in unused else str(c) for c in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    log.warning("%s: %d of the %d classes have no training node: %s%s; their nodes cannot be learnt (labels are "
                "class ids 0 .. C-1, numbered without gaps)", where, len(missing), classes, shown, more)


def random_split(y: torch.Tensor, train_per_class: int, val_size: int, test_size: int | None, seed: int,
                 where: Path) -> dict[str, torch.Tensor]:
    """A split of the labelled nodes (``y`` (N,) >= 0) as Planetoid's public one is made: in one
    random order drawn with ``seed``, the first ``train_per_class`` nodes of each class train, the
    next ``val_size`` of the rest validate and the ``test_size`` after them (``None``: all the
    rest) test. -> the three (N,) bool masks by name."""
    _check_class_count(y, where)
    n = y.numel()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    order = order[y[order] >= 0]
    masks = {split: torch.zeros(n, dtype=torch.bool) for split in SPLITS}
    for c in range(int(y.max()) + 1):
        of_class = order[y[order] == c]
        if len(of_class) < train_per_class:
            raise AutoAttendError(f"{where}: class {c} has {len(of_class)} labelled node(s), fewer than "
                                  f"task.train_per_class={train_per_class}")
        masks["train_mask"][of_class[:train_per_class]] = True
    rest = order[~masks["train_mask"][order]]
    if len(rest) < val_size + (test_size or 1):
        test = f"task.test_size={test_size}" if test_size else "at least one test node"
        wanted = f"task.val_size={val_size} + {test}"
        raise AutoAttendError(f"{where}: {len(rest)} labelled nodes outside the training split, fewer than {wanted}")
    masks["val_mask"][rest[:val_size]] = True
    masks["test_mask"][rest[val_size:None if test_size is None else val_size + test_size]] = True
    return masks


def random_graph_split(y: torch.Tensor, graph_of: torch.Tensor, val_graphs: int, test_graphs: int, seed: int,
                       where: Path) -> tuple[dict[str, torch.Tensor], tuple[list[int], ...]]:
    """A split of a file's graphs (``graph_of`` (N,) each node's graph id): in one random order drawn
    with ``seed``, the first ``val_graphs`` graphs validate, the next ``test_graphs`` test and the
    rest train; each graph's labelled nodes (``y`` (N,) >= 0, or every node of (N, C) multi-label
    targets) are in its split. -> (the three (N,) bool masks by name, the (train, val, test) graph ids)."""
    ids = graph_of.unique()
    if len(ids) < val_graphs + test_graphs + 1:
        raise AutoAttendError(f"{where}: {len(ids)} graphs ('{GRAPH_IDS}'), too few for task.val_graphs={val_graphs} "
                              f"+ task.test_graphs={test_graphs} and at least one training graph")
    order = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(int(seed)))]
    chosen = {"val_mask": order[:val_graphs], "test_mask": order[val_graphs:val_graphs + test_graphs],
              "train_mask": order[val_graphs + test_graphs:]}
    labelled = torch.ones_like(graph_of, dtype=torch.bool) if y.dim() == 2 else y >= 0
    masks = {split: torch.isin(graph_of, chosen[split]) & labelled for split in SPLITS}
    return masks, tuple(sorted(chosen[split].tolist()) for split in SPLITS)


def read_graph_to_classify(path: Path) -> dict[str, torch.Tensor]:
    """A graph (or several, merged) whose nodes a run's models are to classify (``src.predict
    --graph``), from a file in the module's format: ``x`` (N, F) and ``edge_index`` (2, E) required
    (no edge is needed), ``y`` and any of the masks optional (the output shows them), ``batch``
    ignored (messages never cross graphs that no edge joins). -> the arrays by name, each checked."""
    arrays = read_arrays(path, given_as="the graph to classify, --graph")
    _check_arrays(arrays, path, masks=False, labels=False)
    masks = [name for name in SPLITS if name in arrays]
    for name in masks:
        _check_mask(arrays[name], name, path)
    n = arrays["x"].size(0)
    check_edges(arrays["edge_index"], n, str(path), name="'edge_index'")
    for name in ("y", *masks):
        if name in arrays and arrays[name].size(0) != n:
            raise AutoAttendError(f"{path}: '{name}' has {arrays[name].size(0)} rows for {n} nodes (one per row "
                                  "of 'x')")
    if "y" in arrays and arrays["y"].dim() == 1:
        _check_label_range(arrays["y"], path)
    return {name: arrays[name] for name in ("x", "edge_index", "y", *masks) if name in arrays}


def split_into_graphs(batch: dict, graph_of: torch.Tensor, where: Path) -> dict[str, list[tuple[torch.Tensor, object]]]:
    """The graphs of a file with several, by split: for ``train_mask``, ``val_mask`` and
    ``test_mask``, in the order of their graph ids, pairs of (the graph's node ids in the file (n,),
    a PyG ``Data`` of it, nodes numbered from 0 in the file's order, edges in the file's order).
    ``batch`` holds the whole file (dense ``x``); ``graph_of`` (N,) each node's graph id. Refuses an
    edge between two graphs, and a graph whose nodes are in no split or in more than one."""
    from torch_geometric.data import Data

    edge_index = batch["edge_index"]
    across = (graph_of[edge_index[0]] != graph_of[edge_index[1]]).nonzero().flatten()
    if across.numel():
        edge = int(across[0])
        a, b = edge_index[:, edge].tolist()
        raise AutoAttendError(f"{where}: edge {edge} joins node {a} (graph {int(graph_of[a])}) and node {b} (graph "
                              f"{int(graph_of[b])}); with a '{GRAPH_IDS}' array every edge stays within one graph")
    ids, graph, nodes_per_graph = graph_of.unique(return_inverse=True, return_counts=True)
    in_split = torch.stack([torch.bincount(graph[batch[split]], minlength=ids.numel()) > 0 for split in SPLITS])
    splits_held = in_split.sum(0)
    if bool((splits_held == 0).any()):
        g = int((splits_held == 0).nonzero()[0])
        raise AutoAttendError(f"{where}: graph {int(ids[g])} ('{GRAPH_IDS}') has no node in train_mask, val_mask or "
                              "test_mask; every graph of a file with several is trained, validated or tested on")
    if bool((splits_held > 1).any()):
        g = int((splits_held > 1).nonzero()[0])
        held = " and ".join(f"'{SPLITS[i]}'" for i in in_split[:, g].nonzero().flatten().tolist())
        raise AutoAttendError(f"{where}: graph {int(ids[g])} ('{GRAPH_IDS}') has nodes in {held}; with several graphs "
                              "each graph's nodes are in one split (inductive: unseen graphs are validated and tested)")
    n = graph_of.numel()
    node_order = torch.argsort(graph, stable=True)
    first_of_graph = nodes_per_graph.cumsum(0) - nodes_per_graph
    local = torch.empty_like(node_order)
    local[node_order] = torch.arange(n) - first_of_graph.repeat_interleave(nodes_per_graph)
    edge_graph = graph[edge_index[0]]
    edges = local[edge_index[:, torch.argsort(edge_graph, stable=True)]]
    edges_per_graph = torch.bincount(edge_graph, minlength=ids.numel())
    by_split: dict[str, list] = {split: [] for split in SPLITS}
    for g, (nodes, graph_edges) in enumerate(zip(node_order.split(nodes_per_graph.tolist()),
                                                 edges.split(edges_per_graph.tolist(), dim=1))):
        split = SPLITS[int(in_split[:, g].nonzero()[0])]
        data = Data(x=batch["x"][nodes], edge_index=graph_edges, y=batch["y"][nodes],
                    **{name: batch[name][nodes] for name in SPLITS})
        by_split[split].append((nodes, data))
    return by_split


class GraphFileDataModule(GraphDataModule):
    """One graph from a file (transductive, one full-graph batch), or several (inductive: the
    training graphs merged ``batch_size`` at a time, one batch of validation and one of test
    graphs); format in the module docstring.

    ``row_normalize``: each node's features divided by their sum clamped at 1, as for Planetoid
    (:func:`~src.data.planetoid.row_normalized`: a row summing below 1 is left as it is); ``to_undirected``:
    every edge also added reversed (duplicates merged);
    ``sparse_features``: ``x`` served as a sparse COO tensor (``true``), dense (``false``), or sparse
    when under :data:`SPARSE_BELOW` of its entries (of several graphs: the training graphs') are
    non-zero (``auto``). The same values either
    way; sparse features make the ops that read them faster where most are zero. ``split``:
    ``file`` (the file's masks) or ``random`` (:func:`random_split` with ``train_per_class``,
    ``val_size``, ``test_size`` and ``split_seed``, which is the data's, not the run's seed).
    ``batch_size``: training graphs merged per step when the file holds several (else unused);
    with several and ``split=random``, :func:`random_graph_split` with ``val_graphs`` and
    ``test_graphs`` (PPI's 2 and 2) draws which graphs validate and test.
    """

    def __init__(self, path: str | None = None, name: str = "graph_file", row_normalize: bool = False,
                 to_undirected: bool = False, sparse_features: bool | str = "auto", split: str = "file",
                 train_per_class: int = 20, val_size: int = 500, test_size: int | None = 1000, split_seed: int = 0,
                 batch_size: int = 1, val_graphs: int = 2, test_graphs: int = 2, **kwargs):
        super().__init__(batch_size=batch_size, **kwargs)
        for key, value in (("batch_size", batch_size), ("val_graphs", val_graphs), ("test_graphs", test_graphs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AutoAttendError(f"task.{key}: expected an integer >= 1, got {value!r}")
        if path is None:
            raise AutoAttendError(f"task {name}: no data given; add task.path=<the graph's .npz or .pt file>")
        if not (isinstance(sparse_features, bool) or sparse_features == "auto"):
            raise AutoAttendError(f"task.sparse_features: expected auto, true or false, got {sparse_features!r}")
        self.path = Path(path).expanduser().resolve()
        self.name, self.row_normalize, self.to_undirected = name, bool(row_normalize), bool(to_undirected)
        self.sparse_features = sparse_features
        if split not in GRAPH_FILE_SPLITS:
            raise AutoAttendError(f"task.split: expected one of {', '.join(GRAPH_FILE_SPLITS)}, got {split!r}")
        self.split, self.split_seed = split, split_seed
        self.split_sizes = (train_per_class, val_size, test_size)
        self.graph_split_sizes = (val_graphs, test_graphs)

    def _features(self, x: torch.Tensor, where: Path | str) -> torch.Tensor:
        """(N, F) features as float32, row-normalised with ``row_normalize`` (:func:`row_normalized`)."""
        x = x.float()
        if self.row_normalize:
            if bool((x < 0).any()):
                raise AutoAttendError(f"{where}: task.row_normalize=true needs non-negative features (counts or "
                                      "weights); 'x' has negative values")
            x = row_normalized(x)  # as documented: PyG's NormalizeFeatures (a sum clamped at 1), not sum to 1
        return x

    def _sparse(self, x: torch.Tensor) -> bool:
        """Whether features ``x`` are served sparse (``sparse_features``, or by density)."""
        if isinstance(self.sparse_features, bool):
            return self.sparse_features
        return x.numel() > 0 and float((x != 0).float().mean()) < SPARSE_BELOW

    def prepare_graph(self, x: torch.Tensor, edge_index: torch.Tensor, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The file's preprocessing: ``row_normalize``, ``to_undirected``, sparse by ``sparse_features``."""
        from torch_geometric.utils import to_undirected

        x, edge_index = self._features(x, where), edge_index.long()
        if self.to_undirected:
            edge_index = to_undirected(edge_index, num_nodes=x.size(0))
        return (x.to_sparse_coo().coalesce() if self._sparse(x) else x), edge_index

    def load(self) -> None:
        from torch_geometric.data import Data
        from torch_geometric.utils import to_undirected

        arrays = read_arrays(self.path)
        from_file = self.split == "file"
        _check_arrays(arrays, self.path, masks=from_file)
        x = self._features(arrays["x"], self.path)
        edge_index = arrays["edge_index"].long()
        multilabel = arrays["y"].dim() == 2
        y = arrays["y"].float() if multilabel else arrays["y"].long()
        if multilabel and y.size(1) > 1 and bool((y.sum(1) <= 1).all()):
            log.warning("%s: its 2-D 'y' gives no node two labels, as one-hot class labels would: it is read as "
                        "multi-label targets (binary cross-entropy, micro-F1); for single-label classes (cross-"
                        "entropy, accuracy) save class ids, y.argmax(1) with -1 for unlabelled nodes", self.path)
        several = GRAPH_IDS in arrays
        if multilabel and not from_file and not several:
            raise AutoAttendError(f"{self.path}: task.split=random draws a per-class split of single-label nodes; "
                                  "give a multi-label graph its train_mask, val_mask and test_mask")
        if not from_file and y.size(0) != x.size(0):  # a drawn split indexes y by node (with masks: check_graph)
            raise AutoAttendError(f"{self.path}: feature/label size mismatch: {x.size(0)} feature rows but "
                                  f"{y.size(0)} labels")
        if from_file:
            masks = {split: arrays[split].bool() for split in SPLITS}
        elif several:
            masks, drawn = random_graph_split(y, arrays[GRAPH_IDS].long(), *self.graph_split_sizes,
                                              seed=self.split_seed, where=self.path)
            log.info("%s: split drawn (task.split=random, seed %d): graphs %d / %d / %d", self.path, self.split_seed,
                     *map(len, drawn))
        else:
            masks = random_split(y, *self.split_sizes, seed=self.split_seed, where=self.path)
            log.info("%s: split drawn (task.split=random, seed %d): %d per class / %d / %d%s", self.path,
                     self.split_seed, self.split_sizes[0], int(masks["val_mask"].sum()), int(masks["test_mask"].sum()),
                     "; the file's masks are not used" if any(k in arrays for k in SPLITS) else "")
        data = Data(x=x, edge_index=edge_index, y=y, **masks)
        # several graphs: the training graphs' density alone, so that the test graphs decide nothing
        sparse = self._sparse(x[masks["train_mask"]] if several else x)
        batch = data_to_batch(data, sparse_x=sparse and not several)
        check_graph(batch, str(self.path), multilabel=multilabel)
        if self.to_undirected:
            batch["edge_index"] = to_undirected(batch["edge_index"], num_nodes=x.size(0))
        self.num_classes = _check_split(batch, self.path)
        self.multilabel, self.metric = multilabel, "micro_f1" if multilabel else "accuracy"
        self.num_features = x.size(1)
        if several:
            graphs = split_into_graphs(batch, arrays[GRAPH_IDS].long(), self.path)
            self.sparse_x = sparse
            self.train_graphs = [data for _, data in graphs["train_mask"]]
            self.eval_batches = [collate_graphs([data for _, data in graphs[split]], sparse_x=sparse)
                                 for split in ("val_mask", "test_mask")]
            self.node_ids = torch.cat([nodes for split in SPLITS for nodes, _ in graphs[split]])
            for split, merged in (("training", collate_graphs(self.train_graphs)), ("validation", self.eval_batches[0]),
                                  ("test", self.eval_batches[1])):
                check_graph(merged, f"{self.path} ({split} graphs)", multilabel=multilabel)
            shape = "{} graphs ({} / {} / {} train / val / test)".format(
                sum(map(len, graphs.values())), *(len(graphs[split]) for split in SPLITS))
        else:
            self.graph = batch
            self.eval_batches = [batch]
            shape = "one graph"
        unlabelled = 0 if multilabel else int((batch["y"] < 0).sum())
        log.info("%s: %s, %d nodes (%d unlabelled), %d edges, %d features (%s), %d %s, split %d / %d / %d nodes",
                 self.path, shape, x.size(0), unlabelled, batch["edge_index"].size(1), self.num_features,
                 "sparse" if sparse else "dense", self.num_classes, "labels (multi-label)" if multilabel else "classes",
                 int(batch["train_mask"].sum()), int(batch["val_mask"].sum()), int(batch["test_mask"].sum()))
