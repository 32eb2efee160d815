"""Node-classification data: the shared graph DataModule and the Planetoid citation graphs.

Every batch is a dict of tensors on one (possibly merged) graph:

* ``x`` (N, F) float features (a sparse COO tensor for Planetoid's bag-of-words features, and for
  a graph file's sparse ones, ``sparse_x`` / ``task.sparse_features``);
* ``edge_index`` (2, E) long, messages flow ``edge_index[0] -> edge_index[1]``;
* ``y`` (N,) long class ids (a graph file's may hold -1 at unlabelled nodes, which no split
  holds), or (N, C) float 0/1 targets for a multi-label task;
* ``train_mask``, ``val_mask``, ``test_mask`` (N,) bool: which nodes each split scores.

Planetoid (Cora, CiteSeer, PubMed) is transductive: one graph, the public split (20 labels per
class, 500 validation, 1,000 test nodes), row-normalised features. Raw files are read from
``<data_dir>/planetoid/<Name>/raw/`` when present -- copied first to the writable cache, since
PyG processes next to the raw folder -- and downloaded by PyG into the cache otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import pickle
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections import Counter
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Callable, TypeVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.hub import local_files_complete
from src.data.sampling import EpochShuffleSampler
from src.utils.errors import AutoAttendError, DataNotFoundError, machine_error
from src.utils.io import build_prefix, file_stamp, refused_by_weights_only, remove_stale_builds

log = logging.getLogger(__name__)
T = TypeVar("T")

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
PLANETOID_FILES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


class _LinesToLog(io.TextIOBase):
    """A text stream that sends each complete line written to it to ``log.info``."""

    def __init__(self, prefix: str):
        self.prefix, self.pending = prefix, ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            if line.strip():
                log.info("%s%s", self.prefix, line.strip())
        return len(text)

    def flush(self) -> None:
        if self.pending.strip():
            log.info("%s%s", self.prefix, self.pending.strip())
        self.pending = ""


@contextmanager
def pyg_messages_to_log(what: str):
    """PyG prints its download and processing messages ('Downloading ...', 'Processing...',
    'Done!') to stderr; inside this block they go to the run log instead, prefixed by ``what``."""
    stream = _LinesToLog(f"{what}: PyG: ")
    try:
        with redirect_stderr(stream):
            yield
    finally:
        stream.flush()


def copy_raw_files(files: list[Path], folder: Path) -> None:
    """Copy the user's raw ``files`` into the cache ``folder``, each through a temporary file and a
    rename: a copy cut short (Ctrl-C, a full disk) leaves no file under the final name, so the next
    run copies it again instead of taking a truncated file for the user's."""
    from src.utils.io import atomic_target

    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        with atomic_target(folder / f.name) as tmp:
            shutil.copyfile(f, tmp)


# what the Planetoid release's pickles name (Python 2 pickles of scipy CSR matrices, numpy arrays and an
# adjacency defaultdict(list); _codecs.encode rebuilds their bytes): nothing else is rebuilt from them
PLANETOID_PICKLE_GLOBALS = frozenset({
    ("__builtin__", "list"), ("builtins", "list"), ("collections", "defaultdict"), ("_codecs", "encode"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"),
})


class _ForeignObject(pickle.UnpicklingError):
    """A pickle names an object outside :data:`PLANETOID_PICKLE_GLOBALS`."""


class _PlanetoidUnpickler(pickle.Unpickler):
    """Unpickles only :data:`PLANETOID_PICKLE_GLOBALS`: a pickle naming anything else (a function to call, as a
    crafted file does) is refused before anything in it runs."""

    def find_class(self, module: str, name: str):
        if (module, name) not in PLANETOID_PICKLE_GLOBALS:
            raise _ForeignObject(f"it names {module}.{name}, which a Planetoid file never does")
        return super().find_class(module, name)


def check_planetoid_pickle(path: Path) -> str | None:
    """Why the pickled Planetoid file ``path`` is not one (it names other objects than the release's, or is not a
    pickle), or ``None``: read with :class:`_PlanetoidUnpickler` before PyG reads it with ``pickle.load``."""
    try:
        with open(path, "rb") as handle:
            _PlanetoidUnpickler(handle, encoding="latin1").load()
    except _ForeignObject as exc:
        return f"not loaded ({exc}; unpickling it could run code)"
    except Exception as exc:
        return f"unreadable ({type(exc).__name__})"
    return None


def keep_one_version(root: Path, files: list[Path]) -> None:
    """Record in the cache folder ``root`` (keyed by the stamps of the user's raw ``files``) which files those
    are, and delete its siblings whose files changed since: a changed raw file makes a new folder, and the old
    one (raw copies and processed data) could never be read again."""
    from src.utils.io import SOURCES_FILE, atomic_write_json, remove_superseded_folders, source_record

    if not (root / SOURCES_FILE).is_file():  # a folder of an older autoattend gets its record
        try:
            atomic_write_json(root / SOURCES_FILE, source_record(files))
        except OSError:  # a cache one may read but not write (a shared, read-only one) is used as it is
            return
    for folder in remove_superseded_folders(root.parent, keep=root):
        log.info("removed the cache %s: its raw files have changed since", folder)


def remove_failed_download(folder: Path) -> None:
    """Remove what a failed download left in the cache (empty folders, partial files), so that no
    half-written dataset stays behind; the next run downloads again. Only ever a cache folder."""
    shutil.rmtree(folder, ignore_errors=True)


def process_privately(folder: Path, make: Callable[[Path], object], nested: bool) -> None:
    """Have PyG process ``folder``'s raw files (``folder/raw``) into ``folder/processed`` so that the folder
    appears only complete. PyG writes ``processed/data.pt`` in place: a run killed while writing it left a
    damaged file that every later run read (and blamed on the raw files), and two runs processing at once
    read each other's half-written file. ``make(root)`` builds the dataset on a private copy: ``root`` a
    temporary build folder beside ``folder`` holding ``raw`` (a link to ``folder/raw``) at ``root/<folder
    name>/raw`` when ``nested`` (Planetoid's layout), else at ``root/raw`` (PPI's). Its ``processed`` folder
    is then renamed into place, unless another run's complete one got there first. Nothing happens when
    ``folder/processed`` is complete (PyG writes ``pre_transform.pt`` after the data files); its leftovers
    from a killed processing are replaced."""
    processed = folder / "processed"
    if (processed / "pre_transform.pt").is_file():
        return
    remove_stale_builds(folder.parent)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=build_prefix(folder.name)))
    try:
        work = tmp / folder.name if nested else tmp
        work.mkdir(exist_ok=True)
        (work / "raw").symlink_to((folder / "raw").resolve(), target_is_directory=True)
        make(tmp)
        if (processed / "pre_transform.pt").is_file():  # another run finished first: its copy stays
            return
        if processed.exists():  # a killed processing's files: moved aside in one step, then deleted
            os.rename(processed, tmp / "stale")
        try:
            os.rename(work / "processed", processed)
        except OSError:
            if not (processed / "pre_transform.pt").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def drop_unsafe_processing(processed: Path, what: str) -> None:
    """Delete PyG's ``processed`` folder (so that the raw files are processed again) when one of its files does not
    load with ``torch.load(weights_only=True)``: PyG reads some of them as full pickles, whose objects run code as
    they are rebuilt, and a cache folder may be shared or copied; PyG's own files hold tensors, dicts and its
    registered classes only."""
    import torch_geometric  # noqa: F401  (registers its classes as safe to load)

    for path in sorted(processed.glob("*.pt")) if processed.is_dir() else ():
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:
            if refused_by_weights_only(exc):
                log.warning("%s: %s holds objects PyG's processing never writes; not loaded (rebuilding them could "
                            "run code), processing the raw files again", what, path)
            else:
                log.warning("%s: the processed cache %s is unreadable (%s); processing the raw files again", what,
                            processed, type(exc).__name__)
            shutil.rmtree(processed, ignore_errors=True)
            return


def load_with_fresh_processing(load: Callable[[], T], processed: Path, what: str) -> T:
    """``load()`` (a PyG dataset); when it fails while PyG's processed files of a finished
    processing exist (in the cache, from an earlier run: a disk filled up, a file damaged), they
    are removed and ``load()`` runs once more from the raw files, so a damaged cache is rebuilt
    rather than reported as the user's data. A second failure is the raw files' own."""
    # PyG writes pre_transform.pt once processing has finished: without it there was nothing
    # complete to read, and a failure is the processing's own
    drop_unsafe_processing(processed, what)
    completed = (processed / "pre_transform.pt").is_file()
    try:
        return load()
    except AutoAttendError:
        raise
    except Exception as exc:  # PyG raises whatever its reader hit
        if not completed:
            raise
        log.warning("%s: the processed cache %s is unreadable (%s); processing the raw files again", what, processed,
                    type(exc).__name__)
        shutil.rmtree(processed, ignore_errors=True)
        return load()


def check_graph(batch: dict, source: str, multilabel: bool) -> None:
    """Raise one clear line when a graph cannot be used for node classification."""
    x, y, edge_index = batch["x"], batch["y"], batch["edge_index"]
    n = x.size(0)
    if y.size(0) != n:
        raise AutoAttendError(f"{source}: feature/label size mismatch: {n} feature rows but {y.size(0)} labels")
    for split in ("train_mask", "val_mask", "test_mask"):
        if batch[split].size(0) != n:
            raise AutoAttendError(f"{source}: {split} has {batch[split].size(0)} entries for {n} nodes")
    if edge_index.numel() == 0:
        raise AutoAttendError(f"{source}: the graph has no edges; node classification needs a graph with edges")
    check_edges(edge_index, n, source)
    if multilabel and y.dim() != 2:
        raise AutoAttendError(f"{source}: a multi-label task needs (N, C) 0/1 targets, got shape {tuple(y.shape)}")


def class_count(y: torch.Tensor, train_mask: torch.Tensor, val_mask: torch.Tensor, test_mask: torch.Tensor,
                source: str) -> int:
    """The class count of single-label ``y`` (N,) (masks (N,) bool): the largest class id a training or validation
    node holds, + 1. The test split's labels must not set the models' width (one output more changes every
    softmax and the classifier's initial draw, so training and every choice after it): a test node of a larger
    class id is refused."""
    chosen = train_mask | val_mask
    classes = int(y[chosen].max()) + 1 if chosen.any() else 0
    beyond = test_mask & (y >= classes)
    if beyond.any():
        node = int(beyond.nonzero()[0])
        raise AutoAttendError(f"{source}: test node {node} has class {int(y[node])}, which no training or validation "
                              f"node holds (theirs are 0 .. {classes - 1}); the test labels may not add a class to "
                              "the models: give the class training nodes, or leave its nodes out of the test split")
    return classes


def check_edges(edge_index: torch.Tensor, n: int, source: str, name: str = "edge_index") -> None:
    """``edge_index`` is (2, E) and names nodes 0..n-1 only (E may be 0); one line otherwise, calling
    the array ``name``."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise AutoAttendError(f"{source}: {name} must be (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel():
        lowest, highest = int(edge_index.min()), int(edge_index.max())
        if lowest < 0 or highest >= n:
            bad = lowest if lowest < 0 else highest
            raise AutoAttendError(f"{source}: {name} refers to node {bad} but there are {n} nodes (0..{n - 1})")


def row_normalized(x: torch.Tensor) -> torch.Tensor:
    """Planetoid's features ``x`` (N, F) row-normalised as PyG's NormalizeFeatures does on features whose
    smallest value is 0 (it subtracts the smallest first; Cora's and CiteSeer's 0/1 words): each row divided
    by its sum clamped to at least 1, so a row of 0/1 features (Cora, CiteSeer) sums to 1 and a row
    summing to less than 1 is left as it is; an all-zero row, as CiteSeer's test nodes missing from
    its files, stays zero. -> (N, F), ``x``'s dtype."""
    return x / x.sum(-1, keepdim=True).clamp(min=1.0)


def data_to_batch(data, train: bool = False, val: bool = False, test: bool = False, sparse_x: bool = False) -> dict:
    """A PyG ``Data``/``Batch`` -> the batch dict (layout in the module docstring: ``x`` (N, F)
    float, sparse COO when ``sparse_x``; ``edge_index`` (2, E) long; ``y`` as ``data`` holds it;
    the three (N,) bool masks from ``data``, or all True/False per flag where it has none)."""
    n = data.num_nodes
    masks = {}
    for split, flag in (("train_mask", train), ("val_mask", val), ("test_mask", test)):
        mask = getattr(data, split, None)
        masks[split] = mask.bool() if mask is not None else torch.full((n,), flag, dtype=torch.bool)
    x = data.x.float()
    return {"x": x.to_sparse_coo().coalesce() if sparse_x else x, "edge_index": data.edge_index.long(),
            "y": data.y, **masks}


def collate_graphs(graphs: list, sparse_x: bool = False) -> dict:
    """Merge graphs into one disjoint graph (PyG ``Batch``) -> batch dict (train/val/test flags kept;
    ``x`` sparse COO when ``sparse_x``)."""
    from torch_geometric.data import Batch

    return data_to_batch(Batch.from_data_list(graphs), sparse_x=sparse_x)


class RepeatDataset(Dataset):
    """The same full-graph batch ``times`` times: one epoch of ``times`` full-batch steps."""

    def __init__(self, batch: dict, times: int):
        self.batch, self.times = batch, max(1, int(times))

    def __len__(self) -> int:
        return self.times

    def __getitem__(self, i: int) -> dict:
        return self.batch


class ListDataset(Dataset):
    """Fixed, already-built batches."""

    def __init__(self, batches: list[dict]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        return self.batches[i]


class GraphDataModule(pl.LightningDataModule, ABC):
    """Base of the graph DataModules: loaders and the properties the pipeline reads.

    :meth:`load` sets ``num_features``, ``num_classes``, ``eval_batches`` (batch dicts holding
    every validation and test node) and either ``graph`` (one full-graph batch, transductive) or
    ``train_graphs`` (PyG ``Data`` objects merged ``batch_size`` at a time, inductive; their ``x``
    served sparse when ``sparse_x``). ``node_ids``, when set, numbers the nodes of
    :meth:`node_batches` as their source does (a graph file's rows); else they are numbered in order.
    """

    multilabel = False
    metric = "accuracy"
    sparse_x = False

    def __init__(self, data_dir: str = "./data", cache_dir: str = "./.cache/autoattend", seed: int = 0,
                 download: bool = True, batch_size: int = 1, **_ignored):
        super().__init__()
        self.data_dir, self.cache_dir = Path(data_dir).expanduser(), Path(cache_dir).expanduser()
        self.seed, self.download, self.batch_size = seed, download, batch_size
        self.num_features = self.num_classes = 0
        self.graph: dict | None = None
        self.train_graphs: list = []
        self.eval_batches: list[dict] = []
        self.node_ids: torch.Tensor | None = None
        self._loaded = False

    @abstractmethod
    def load(self) -> None:
        """Read the data (see the class docstring for what it must set)."""

    def setup(self, stage: str | None = None) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def split_batches(self, split: str) -> list[dict]:
        """The evaluation batches holding nodes of ``split`` (``val`` or ``test``)."""
        return [b for b in self.eval_batches if b[f"{split}_mask"].any()]

    def train_loader(self, steps_per_epoch: int = 1, seed: int = 0) -> DataLoader:
        """Transductive: ``steps_per_epoch`` full-graph steps per epoch. Inductive: every training
        graph once per epoch, ``batch_size`` graphs merged per step, shuffled with ``seed``."""
        if self.graph is not None:
            return DataLoader(RepeatDataset(self.graph, steps_per_epoch), batch_size=None, shuffle=False)
        return DataLoader(self.train_graphs, batch_size=self.batch_size,
                          collate_fn=functools.partial(collate_graphs, sparse_x=self.sparse_x),
                          sampler=EpochShuffleSampler(len(self.train_graphs), seed))

    def eval_loader(self) -> DataLoader:
        """Every validation and test batch, in a fixed order."""
        return DataLoader(ListDataset(self.eval_batches), batch_size=None, shuffle=False)

    def prepare_graph(self, x: torch.Tensor, edge_index: torch.Tensor, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Another graph's raw ``x`` (N, F) and ``edge_index`` (2, E) made what this task's models
        were trained on (``src.predict --graph``): the task's feature preprocessing and edges, ``x``
        float32, sparse COO where the task serves it sparse. Here: as read."""
        return x.float(), edge_index.long()

    def node_batches(self) -> list[tuple[torch.Tensor, dict]]:
        """Every node once, as (node ids (n,), the batch dict of its n nodes) pairs: the full graph,
        or the training graphs merged and then each evaluation batch. The ids are ``node_ids``
        (the source's numbering) where :meth:`load` set it, else the nodes' order here."""
        if self.graph is not None:
            batches = [self.graph]
        else:
            batches = [collate_graphs(self.train_graphs, sparse_x=self.sparse_x), *self.eval_batches]
        sizes = [int(b["x"].size(0)) for b in batches]
        ids = self.node_ids if self.node_ids is not None else torch.arange(sum(sizes))
        return list(zip(ids.split(sizes), batches))


def _first_label_row_not_one_hot(labels: torch.Tensor, path: Path) -> tuple[Path, str] | None:
    """A training label row that is not one 1 among 0s (PyG's argmax read an empty row as class 0 and a row of two
    classes as the first)."""
    bad = ((labels != 0) & (labels != 1)).any(1) | (labels.sum(1) != 1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        return path, f"label row {row} is {labels[row].tolist()}; expected one 1 (its class) among 0s"
    return None


class PlanetoidDataModule(GraphDataModule):
    """Cora / CiteSeer / PubMed, public split, row-normalised features (transductive, one graph)."""

    def __init__(self, name: str = "cora", **kwargs):
        super().__init__(**kwargs)
        if name.lower() not in PLANETOID_NAMES:
            raise AutoAttendError(f"task.datamodule.name: unknown Planetoid set {name!r}; "
                                  f"expected one of {sorted(PLANETOID_NAMES)}")
        self.name = PLANETOID_NAMES[name.lower()]

    def _root(self) -> Path:
        """The PyG root in the cache, with the raw files copied in when the data dir has them."""
        src = self.data_dir / "planetoid" / self.name / "raw"
        by_suffix = {f: src / f"ind.{self.name.lower()}.{f}" for f in PLANETOID_FILES}
        files = list(by_suffix.values())
        if not local_files_complete(by_suffix, PLANETOID_FILES, f"Planetoid {self.name} ({src})",
                                    "Planetoid's {} file"):
            if not self.download:
                raise DataNotFoundError(f"{self.name}: no Planetoid files in {src} and downloading is off "
                                        f"(task.datamodule.download=false)")
            return self.cache_dir / "planetoid" / "download"
        # keyed by the raw files' sizes and times, so a changed source never reuses a stale cache
        stamp = hashlib.sha1("".join(f"{f.name}:{sorted(file_stamp(f).items())}" for f in files)
                             .encode()).hexdigest()[:12]
        root = self.cache_dir / "planetoid" / stamp
        raw = root / self.name / "raw"
        if not all((raw / f.name).is_file() for f in files):
            copy_raw_files(files, raw)
        keep_one_version(root, files)
        return root

    def _bad_raw_file(self, root: Path, check_sizes: bool = True) -> tuple[Path, str] | None:
        """The first raw file that is unreadable, of the wrong kind, or whose size disagrees with
        the files it pairs with, and why; None when they agree. PyG reads a ``test.index`` cut short
        without complaint (a 500-node test split on Cora, scored as if it were the 1,000)."""
        from torch_geometric.io.planetoid import read_file

        stem = f"ind.{self.name.lower()}"
        raw = self.data_dir / "planetoid" / self.name / "raw"
        path = {suffix: raw / f"{stem}.{suffix}" for suffix in PLANETOID_FILES}
        read = {}
        for suffix in PLANETOID_FILES:
            if suffix != "test.index":  # the pickles: checked before PyG unpickles them
                refused = check_planetoid_pickle(root / self.name / "raw" / f"{stem}.{suffix}")
                if refused is not None:
                    return path[suffix], refused
            try:
                read[suffix] = read_file(str(root / self.name / "raw"), self.name.lower(), suffix)
            except Exception as exc:
                return path[suffix], f"unreadable ({type(exc).__name__})"
        if not isinstance(read["graph"], dict):
            kind = type(read["graph"]).__name__
            return path["graph"], f"expected the adjacency dict (node -> neighbours), got {kind}"
        if not check_sizes:
            return None
        rows = {suffix: int(read[suffix].shape[0]) for suffix in PLANETOID_FILES if suffix != "graph"}
        for suffix, other in (("test.index", "tx"), ("ty", "tx"), ("y", "x"), ("ally", "allx")):
            if rows[suffix] != rows[other]:
                what = ("test node ids against" if suffix == "test.index"
                        else "label rows against")  # the labels' file against its features'
                mismatch = "" if suffix == "test.index" else "feature/label size mismatch: "
                return path[suffix], (f"{mismatch}{rows[suffix]} {what} {rows[other]} feature rows in {stem}.{other} "
                                      "(one of them cut short or from another release?)")
        return (self._bad_test_ids(read["test.index"], rows["allx"], rows["tx"], path["test.index"])
                or self._bad_neighbours(read["graph"], read["test.index"], rows["allx"], rows["tx"], path["graph"])
                or _first_label_row_not_one_hot(read["y"], path["y"]))

    def _bad_test_ids(self, ids: torch.Tensor, allx_rows: int, tx_rows: int, path: Path) -> tuple[Path, str] | None:
        """PyG places ``tx``'s rows at the ``test.index`` ids after ``allx``'s: a repeated id, one among ``allx``'s
        nodes (then in the training and the test split both) or a gap (but CiteSeer's, which PyG fills with empty
        nodes) was read in silence or failed deep in PyG."""
        ids = ids.flatten().tolist()
        counts = Counter(ids)
        repeated = next((i for i, n in counts.items() if n > 1), None)
        if repeated is not None:
            return path, f"test node id {repeated} appears {counts[repeated]} times; each test node once"
        low = [i for i in ids if i < allx_rows]
        if low:
            return path, (f"test node id {low[0]} is among the first {allx_rows} nodes (allx's rows: training, "
                          "validation and unlabelled nodes); test ids follow them")
        if self.name.lower() != "citeseer" and sorted(ids) != list(range(allx_rows, allx_rows + tx_rows)):
            gap = next(i for i in range(allx_rows, allx_rows + tx_rows) if i not in counts)
            return path, (f"test node ids skip {gap}: expected {allx_rows}..{allx_rows + tx_rows - 1}, one per row of "
                          "tx (only CiteSeer's release has gaps)")
        return None

    @staticmethod
    def _bad_neighbours(graph: dict, ids: torch.Tensor, allx_rows: int, tx_rows: int,
                        path: Path) -> tuple[Path, str] | None:
        """A node or neighbour id outside the graph's nodes (a -1 was dropped in silence by PyG's ``coalesce``)."""
        nodes = max(allx_rows + tx_rows, int(ids.max()) + 1 if ids.numel() else 0)
        def outside(n) -> bool:
            return not isinstance(n, (int, np.integer)) or not 0 <= n < nodes

        for node, neighbours in graph.items():
            if outside(node):
                return path, f"node id {node!r}; expected node ids 0..{nodes - 1}"
            for n in neighbours:
                if outside(n):
                    return path, f"node {node} lists neighbour {n!r}; expected node ids 0..{nodes - 1}"
        return None

    def prepare_graph(self, x: torch.Tensor, edge_index: torch.Tensor, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Planetoid's preprocessing: features row-normalised, served sparse; edges as given."""
        return row_normalized(x.float()).to_sparse_coo().coalesce(), edge_index.long()

    def load(self) -> None:
        from torch_geometric.datasets import Planetoid

        root = self._root()
        from_files = root.name != "download"
        source = self.data_dir / "planetoid" / self.name / "raw"

        def read() -> Planetoid:
            with pyg_messages_to_log(self.name):
                return Planetoid(str(root), self.name, split="public")

        if from_files and not (root / self.name / "processed").is_dir():  # the processed cache: checked already
            bad = self._bad_raw_file(root)
            if bad is not None:
                raise AutoAttendError(f"{bad[0]}: {bad[1]}; expected the pickled {self.name} files of the Planetoid "
                                      "release, consistent with each other")
        try:
            if from_files:  # a download is processed where PyG puts it
                with pyg_messages_to_log(self.name):
                    process_privately(root / self.name, lambda tmp: Planetoid(str(tmp), self.name, split="public"),
                                      nested=True)
            dataset = load_with_fresh_processing(read, root / self.name / "processed", self.name)
        except AutoAttendError:
            raise
        except Exception as exc:  # PyG raises whatever its reader or downloader hit
            refused = machine_error(exc, str(root))  # the cache's disk full, say: not the data's fault
            if refused is not None:
                raise refused from None
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if from_files:
                bad = self._bad_raw_file(root, check_sizes=False)
                raise AutoAttendError(f"{bad[0] if bad else source}: not readable as Planetoid data "
                                      f"(the pickled ind.{self.name.lower()}.* files of the Planetoid release, "
                                      f"consistent with each other): {reason}") from None
            remove_failed_download(root / self.name)
            stem = f"ind.{self.name.lower()}"
            raise DataNotFoundError(f"{self.name}: no files in {source}, and the download failed: {reason}; put the "
                                    f"Planetoid release's raw files ({stem}.x, .tx, .allx, .y, .ty, .ally, .graph, "
                                    f".test.index) in {source}, or set AUTOATTEND_DATA_DIR / paths.data_dir to a "
                                    f"folder holding planetoid/{self.name}/raw/") from None
        data = dataset[0]
        where = source if from_files else f"{self.name} ({root})"
        if data.x.size(0) != data.y.size(0):
            stem = f"ind.{self.name.lower()}"
            raise AutoAttendError(f"{where}: feature/label size mismatch: {data.x.size(0)} feature rows but "
                                  f"{data.y.size(0)} labels ({stem}.allx + {stem}.tx rows against {stem}.ally + "
                                  f"{stem}.ty rows)")
        data.x = row_normalized(data.x)
        self.num_features = data.x.size(1)
        self.num_classes = class_count(data.y, data.train_mask, data.val_mask, data.test_mask, str(where))
        if self.num_classes < 2:
            raise AutoAttendError(f"{where}: every node has label 0 (ind.{self.name.lower()}.y / .ally / .ty hold "
                                  "one class); node classification needs at least two")
        batch = data_to_batch(data, sparse_x=True)
        check_graph(batch, where, multilabel=False)
        self.graph = batch
        self.eval_batches = [batch]
        log.info("%s: %d nodes, %d edges, %d features, %d classes, split %d / %d / %d", self.name, data.num_nodes,
                 data.edge_index.size(1), self.num_features, self.num_classes, int(batch["train_mask"].sum()),
                 int(batch["val_mask"].sum()), int(batch["test_mask"].sum()))
