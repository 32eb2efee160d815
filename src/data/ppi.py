"""PPI (protein-protein interaction): inductive, multi-label node classification.

20 training graphs, 2 validation, 2 test; 50 features and 121 binary labels per node; scored by
micro-F1. Raw files (``{train,valid,test}_{graph.json,feats.npy,graph_id.npy,labels.npy}``, the
GraphSAGE release PyG reads) are taken from ``<data_dir>/ppi/raw/`` when present -- copied first
to the writable cache -- and downloaded by PyG into the cache otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from itertools import product
from pathlib import Path

import torch

from src.data.hub import local_files_complete
from src.data.planetoid import (GraphDataModule, check_graph, collate_graphs, copy_raw_files, keep_one_version,
                                load_with_fresh_processing, process_privately, pyg_messages_to_log,
                                remove_failed_download)
from src.utils.errors import AutoAttendError, DataNotFoundError
from src.utils.io import file_stamp

log = logging.getLogger(__name__)

PPI_FILES = tuple(f"{s}_{f}" for s, f in product(("train", "valid", "test"),
                                                 ("feats.npy", "graph_id.npy", "graph.json", "labels.npy")))


def first_bad_ppi_file(src: Path) -> tuple[Path, str] | None:
    """The first raw PPI file in ``src`` that cannot be what PyG's reader expects, with why: a
    graph file that is not node-link JSON or has no edges, an array file NumPy cannot read, a
    split whose arrays do not have one row per node of its graph file, graph ids with a gap, or
    labels that are not rows of 0/1 as wide as the training split's."""
    import json

    import numpy as np

    label_width = None
    for split in ("train", "valid", "test"):
        graph_file = src / f"{split}_graph.json"
        try:
            graph = json.loads(graph_file.read_bytes())
            nodes, links = graph["nodes"], graph["links"]
        except (ValueError, KeyError, TypeError) as exc:
            return graph_file, f"not a node-link graph in JSON (keys 'nodes' and 'links'): {type(exc).__name__}: {exc}"
        if not links:
            return graph_file, "the graph has no edges ('links' is empty); node classification needs edges"
        loaded = {}
        for kind in ("feats", "labels", "graph_id"):
            path = src / f"{split}_{kind}.npy"
            try:
                loaded[kind] = np.load(path, allow_pickle=False)
                rows = loaded[kind].shape[0]
            except Exception as exc:  # NumPy raises ValueError, EOFError, OSError... on a damaged file
                return path, f"not readable as a NumPy array file: {type(exc).__name__}: {exc}"
            if rows != len(nodes):
                return path, f"{rows} rows, while {graph_file.name} has {len(nodes)} nodes (one row per node)"
        graph_id = loaded["graph_id"]
        missing = sorted(set(range(int(graph_id.min()), int(graph_id.max()) + 1)) - set(np.unique(graph_id).tolist()))
        if missing:
            return src / f"{split}_graph_id.npy", (f"graph id(s) {', '.join(map(str, missing[:5]))} missing between "
                                                   f"{graph_id.min()} and {graph_id.max()}; a split's graph ids are "
                                                   "consecutive (every graph has nodes)")
        labels_file = src / f"{split}_labels.npy"
        labels = loaded["labels"]
        if labels.ndim != 2:
            return labels_file, (f"labels of shape {labels.shape}; expected one row of 0/1 per node, one column per "
                                 "label (nodes x labels)")
        if not np.isin(labels, (0, 1)).all():
            return labels_file, f"a label of {labels[~np.isin(labels, (0, 1))][0]}; expected 0 or 1 (multi-label)"
        label_width = labels.shape[1] if label_width is None else label_width
        if labels.shape[1] != label_width:
            return labels_file, f"{labels.shape[1]} labels per node, while train_labels.npy has {label_width}"
    return None


# what the cache's processed graphs were built by: 2 numbers each graph's nodes from its first row (numbered
# from its smallest node with an edge by PyG, which shifted every edge of a graph whose first node has none)
PPI_PROCESSING = 2


@functools.cache
def numbered_ppi():
    """PyG's ``PPI`` dataset class with its ``process`` numbering each graph's edges by the graph's own rows.

    PyG's numbers them ``edge_index - edge_index.min()``: right while a graph's first node has an edge, every edge
    one node off (no error) where it has none. Here a node's number is its row among its graph's rows (the release
    numbers a split's nodes by row, each graph's rows in a block), the edges in PyG's order, so a graph PyG reads
    right gives the same tensors."""
    import json

    import numpy as np
    from torch_geometric.data import Data
    from torch_geometric.datasets import PPI
    from torch_geometric.utils import remove_self_loops

    class NumberedPPI(PPI):
        def process(self) -> None:
            import networkx as nx
            from networkx.readwrite import json_graph

            for s, split in enumerate(("train", "valid", "test")):
                raw = Path(self.raw_dir)
                graph = nx.DiGraph(json_graph.node_link_graph(json.loads((raw / f"{split}_graph.json").read_text()),
                                                              edges="links"))
                x = torch.from_numpy(np.load(raw / f"{split}_feats.npy")).to(torch.float)
                y = torch.from_numpy(np.load(raw / f"{split}_labels.npy")).to(torch.float)
                graph_id = torch.from_numpy(np.load(raw / f"{split}_graph_id.npy")).to(torch.long)
                graph_id = graph_id - graph_id.min()
                data_list = []
                position = torch.full((x.size(0),), -1, dtype=torch.long)  # a node's row in its graph
                for i in range(int(graph_id.max()) + 1):
                    mask = graph_id == i
                    rows = mask.nonzero(as_tuple=False).view(-1)
                    edges = list(graph.subgraph(rows.tolist()).edges)
                    if not edges:  # PyG's reader failed there too; node classification needs edges
                        raise ValueError(f"{split} graph {i} (rows {rows[0]}..{rows[-1]}) has no edges")
                    position[rows] = torch.arange(rows.numel())
                    edge_index, _ = remove_self_loops(position[torch.tensor(edges).t()].contiguous())
                    data_list.append(Data(edge_index=edge_index, x=x[mask], y=y[mask]))
                self.save(data_list, self.processed_paths[s])

    return NumberedPPI


class PPIDataModule(GraphDataModule):
    """PPI: training graphs merged ``batch_size`` at a time; validation and test graphs merged per split."""

    multilabel = True
    metric = "micro_f1"

    def load(self) -> None:
        PPI = numbered_ppi()

        src = self.data_dir / "ppi" / "raw"
        present = local_files_complete({f: src / f for f in PPI_FILES}, PPI_FILES, f"PPI ({src})", "a file")
        if present:
            stamp = hashlib.sha1((f"processing {PPI_PROCESSING};" + "".join(
                f"{f}:{sorted(file_stamp(src / f).items())}" for f in PPI_FILES)).encode()).hexdigest()[:12]
            root = self.cache_dir / "ppi" / stamp
            if not all((root / "raw" / f).is_file() for f in PPI_FILES):
                copy_raw_files([src / f for f in PPI_FILES], root / "raw")
            keep_one_version(root, [src / f for f in PPI_FILES])
        elif not self.download:
            raise DataNotFoundError(f"PPI: no files in {src} and downloading is off (task.datamodule.download=false)")
        else:
            root = self.cache_dir / "ppi" / f"download-v{PPI_PROCESSING}"

        def read() -> dict:
            with pyg_messages_to_log("PPI"):
                return {s: PPI(str(root), split=s) for s in ("train", "val", "test")}

        if present and not (root / "processed" / "pre_transform.pt").is_file():
            bad = first_bad_ppi_file(src)  # before PyG's reader, which took some of these in silence
            if bad is not None:
                raise AutoAttendError(f"{bad[0]}: {bad[1]}")
        try:
            if present:  # a download is processed where PyG puts it
                with pyg_messages_to_log("PPI"):
                    process_privately(root, lambda tmp: PPI(str(tmp), split="train"), nested=False)
            splits = load_with_fresh_processing(read, root / "processed", "PPI")
        except Exception as exc:  # PyG raises whatever its reader or downloader hit
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if present:
                bad = first_bad_ppi_file(src)
                if bad is not None:
                    raise AutoAttendError(f"{bad[0]}: {bad[1]}") from None
                raise AutoAttendError(
                    f"{src}: not readable as PPI data (per split: <split>_graph.json, a node-link graph with edges "
                    f"in every graph; <split>_feats.npy, <split>_labels.npy and <split>_graph_id.npy with one row "
                    f"per node): {reason}") from None
            remove_failed_download(root)
            raise DataNotFoundError(f"PPI: no files in {src}, and the download failed: {reason}; put the PPI "
                                    "release's files (<split>_feats.npy, _graph_id.npy, _graph.json, _labels.npy "
                                    f"for train, valid, test) in {src}, or set AUTOATTEND_DATA_DIR / paths.data_dir "
                                    "to a folder holding ppi/raw/") from None
        where = src if present else f"PPI ({root})"
        graphs = {}
        for split, ds in splits.items():
            if len(ds) == 0:
                raise AutoAttendError(f"{where}: the {split} split has no graphs")
            graphs[split] = []
            for g, data in enumerate(ds):
                if data.x.size(0) != data.y.size(0):
                    raise AutoAttendError(f"{where}: {split} graph {g}: feature/label size mismatch: "
                                          f"{data.x.size(0)} feature rows but {data.y.size(0)} label rows")
                n = data.num_nodes
                for mask, on in (("train_mask", split == "train"), ("val_mask", split == "val"),
                                 ("test_mask", split == "test")):
                    setattr(data, mask, torch.full((n,), on, dtype=torch.bool))
                data.y = data.y.float()
                graphs[split].append(data)
        self.num_features = graphs["train"][0].x.size(1)
        self.num_classes = graphs["train"][0].y.size(1)
        self.train_graphs = graphs["train"]
        self.eval_batches = [collate_graphs(graphs["val"]), collate_graphs(graphs["test"])]
        for split, batch in (("train", collate_graphs(graphs["train"])), ("val", self.eval_batches[0]),
                             ("test", self.eval_batches[1])):
            check_graph(batch, f"{where} ({split} split)", multilabel=True)
        log.info("PPI: %d / %d / %d graphs, %d features, %d labels", len(graphs["train"]), len(graphs["val"]),
                 len(graphs["test"]), self.num_features, self.num_classes)
