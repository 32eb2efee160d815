"""A graph of your own for node classification: one file holding one graph and its split.

``+task=graph_file task.path=/data/my_graph.npz`` runs the graph pipeline (search, retrain,
baselines, ``src.predict``) on it, transductively as on Cora. The file holds named arrays:

* ``x`` (N, F) node features (any real dtype; read as float32);
* ``edge_index`` (2, E) integer node ids, messages flowing ``edge_index[0] -> edge_index[1]``
  (list both directions of an undirected edge, or set ``task.to_undirected=true``);
* ``y`` (N,) integer class ids from 0; ``-1`` marks an unlabelled node, which no split may hold
  (``src.predict`` classifies it like every other node);
* ``train_mask``, ``val_mask``, ``test_mask`` (N,) booleans (or 0/1 integers), disjoint, none empty.

Formats: ``.npz`` (``numpy.savez``; read without pickle) or ``.pt`` / ``.pth``, a dict of tensors
read with ``torch.load(weights_only=True)``, as ``torch.save(data.to_dict(), path)`` writes a PyG
``Data``. The file is read where it is; nothing is written next to it or cached.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from src.data.planetoid import GraphDataModule, check_graph, data_to_batch
from src.utils.errors import AutoAttendError, DataNotFoundError

log = logging.getLogger(__name__)

ARRAYS = ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")
SPLITS = ("train_mask", "val_mask", "test_mask")
SUFFIXES = (".npz", ".pt", ".pth")
UNLABELLED = -1
# sparse_features=auto: features with fewer non-zeros than this share are kept as a sparse tensor, as
# Planetoid's bag-of-words are (Cora, 1.3 % non-zero: a smoke-sized Cora search 36 s sparse, 53 s dense)
SPARSE_BELOW = 0.1


def read_arrays(path: Path) -> dict[str, torch.Tensor]:
    """The arrays of ``path`` (``.npz``, or a ``.pt`` / ``.pth`` dict of tensors) as tensors, by name;
    one clear error for a missing, unreadable or unexpected file."""
    if path.suffix not in SUFFIXES:
        raise AutoAttendError(f"{path}: expected a .npz file or a .pt / .pth dict of tensors, got a "
                              f"'{path.suffix or 'suffix-less'}' file")
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file (task.path: the graph's .npz or .pt file)")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                return {name: torch.from_numpy(np.array(arrays[name])) for name in arrays.files}
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # numpy's, zipfile's or torch's reader, whatever it hit
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise AutoAttendError(f"{path}: unreadable ({type(exc).__name__}: {reason})") from None
    if not isinstance(loaded, dict):
        raise AutoAttendError(f"{path}: expected a dict of tensors (torch.save(data.to_dict(), path)), "
                              f"got {type(loaded).__name__}")
    return {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}


def _check_arrays(arrays: dict[str, torch.Tensor], where: Path) -> None:
    """Names, shapes and dtypes the module docstring states; raises one line naming the array."""
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise AutoAttendError(f"{where}: no {missing[0]!r} array; expected {', '.join(ARRAYS)} "
                              f"(found: {', '.join(sorted(arrays)) or 'none'})")
    x, edge_index, y = arrays["x"], arrays["edge_index"], arrays["y"]
    if x.dim() != 2 or x.is_complex() or x.dtype == torch.bool:
        raise AutoAttendError(f"{where}: 'x' must be (N, F) real features, got {x.dtype} of shape {tuple(x.shape)}")
    if not torch.isfinite(x.float()).all():
        raise AutoAttendError(f"{where}: 'x' holds NaN or infinite values")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise AutoAttendError(f"{where}: 'edge_index' must hold integer node ids, got {edge_index.dtype}")
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise AutoAttendError(f"{where}: 'y' must be (N,) integer class ids (single-label), got {y.dtype} of shape "
                              f"{tuple(y.shape)}")
    for split in SPLITS:
        mask = arrays[split]
        if mask.dim() != 1 or mask.is_floating_point() or not bool(((mask == 0) | (mask == 1)).all()):
            raise AutoAttendError(f"{where}: '{split}' must be (N,) booleans or 0/1 integers, got {mask.dtype} of "
                                  f"shape {tuple(mask.shape)}")


def _check_split(batch: dict, where: Path) -> int:
    """Splits non-empty and disjoint, every node they hold labelled; returns the class count."""
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
    in_a_split = batch["train_mask"] | batch["val_mask"] | batch["test_mask"]
    bad = in_a_split & (y < 0)
    if bad.any():
        node = int(bad.nonzero()[0])
        raise AutoAttendError(f"{where}: node {node} is in a split but has label {int(y[node])}; labels are class ids "
                              f"from 0 ({UNLABELLED}: unlabelled, outside every split)")
    if bool((y < UNLABELLED).any()):
        raise AutoAttendError(f"{where}: 'y' holds {int(y.min())}; labels are class ids from 0, or {UNLABELLED} for "
                              "an unlabelled node")
    classes = int(y.max()) + 1
    if classes < 2:
        raise AutoAttendError(f"{where}: every labelled node has class 0; node classification needs at least two")
    return classes


class GraphFileDataModule(GraphDataModule):
    """One graph from a file (transductive, one full-graph batch); format in the module docstring.

    ``row_normalize``: each node's features divided by their sum (PyG's ``NormalizeFeatures``, as
    for Planetoid); ``to_undirected``: every edge also added reversed (duplicates merged);
    ``sparse_features``: ``x`` served as a sparse COO tensor (``true``), dense (``false``), or sparse
    when under :data:`SPARSE_BELOW` of its entries are non-zero (``auto``). The same values either
    way; sparse features make the ops that read them faster where most are zero.
    """

    def __init__(self, path: str | None = None, name: str = "graph_file", row_normalize: bool = False,
                 to_undirected: bool = False, sparse_features: bool | str = "auto", **kwargs):
        super().__init__(**kwargs)
        if path is None:
            raise AutoAttendError(f"task {name}: no data given; add task.path=<the graph's .npz or .pt file>")
        if not (isinstance(sparse_features, bool) or sparse_features == "auto"):
            raise AutoAttendError(f"task.sparse_features: expected auto, true or false, got {sparse_features!r}")
        self.path = Path(path).expanduser().resolve()
        self.name, self.row_normalize, self.to_undirected = name, bool(row_normalize), bool(to_undirected)
        self.sparse_features = sparse_features

    def load(self) -> None:
        from torch_geometric.data import Data
        from torch_geometric.utils import to_undirected

        arrays = read_arrays(self.path)
        _check_arrays(arrays, self.path)
        x = arrays["x"].float()
        if self.row_normalize:
            if bool((x < 0).any()):
                raise AutoAttendError(f"{self.path}: task.row_normalize=true needs non-negative features (counts or "
                                      "weights); 'x' has negative values")
            x = x / x.sum(-1, keepdim=True).clamp(min=1e-12)
        edge_index = arrays["edge_index"].long()
        data = Data(x=x, edge_index=edge_index, y=arrays["y"].long(),
                    **{split: arrays[split].bool() for split in SPLITS})
        sparse = (self.sparse_features if isinstance(self.sparse_features, bool)
                  else x.numel() > 0 and float((x != 0).float().mean()) < SPARSE_BELOW)
        batch = data_to_batch(data, sparse_x=sparse)
        check_graph(batch, str(self.path), multilabel=False)
        if self.to_undirected:
            batch["edge_index"] = to_undirected(batch["edge_index"], num_nodes=x.size(0))
        self.num_classes = _check_split(batch, self.path)
        self.num_features = x.size(1)
        self.graph = batch
        self.eval_batches = [batch]
        unlabelled = int((batch["y"] < 0).sum())
        log.info("%s: %d nodes (%d unlabelled), %d edges, %d features (%s), %d classes, split %d / %d / %d",
                 self.path, x.size(0), unlabelled, batch["edge_index"].size(1), self.num_features,
                 "sparse" if sparse else "dense", self.num_classes,
                 int(batch["train_mask"].sum()), int(batch["val_mask"].sum()), int(batch["test_mask"].sum()))
