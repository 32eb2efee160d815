"""Findings of a scale walk (large graphs and corpora; 2026-12-07, session 48): memory or work that grew worse
than the data must, shown without timing anything. Mended since; each docstring says what it was."""

from __future__ import annotations

import torch


def _storage_bytes(value, seen: set) -> int:
    """Bytes of the tensors in ``value`` (a tensor, a tuple / list of them, or an object holding them), each
    storage counted once."""
    if isinstance(value, torch.Tensor):
        key = value.untyped_storage().data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return value.untyped_storage().nbytes()
    if isinstance(value, (tuple, list)):
        return sum(_storage_bytes(v, seen) for v in value)
    if hasattr(value, "__dict__") and not callable(value):
        return sum(_storage_bytes(v, seen) for v in vars(value).values())
    return 0


def _derived_state() -> tuple[int, int]:
    """(entries, bytes) of every graph's cache of derived structures (:func:`src.models.graph.derived`)."""
    from src.models import graph

    seen: set = set()
    entries = nbytes = 0
    for _, table in list(graph._DERIVED.values()):
        entries += len(table)
        nbytes += sum(_storage_bytes(v, seen) for v in table.values())
    return entries, nbytes


def test_scoring_in_inference_mode_reuses_what_training_derived_from_the_graph():
    """What the ops derive from a graph (GCN's normalisation, SAGE's in-degrees, the edges with self
    loops of GAT and the attention, the propagate kernel's CSR views) is made once per graph for all
    op modules. The supernet trains with gradients, then the search scores every candidate under
    ``torch.inference_mode`` on the same graph: the scoring built and kept a second set (``derived`` keyed
    its cache by the mode; 169 -> 338 MiB for a 50k-node, 500k-edge graph_file whose edge_index is 8 MiB);
    now it reads the structures training made (tensors made outside inference mode can be read inside it)."""
    from src.models import graph
    from src.models.graph import EdgeSoftmaxAttention, GraphOp

    n, width = 300, 8
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, n, (2, 3000), generator=g)
    x = torch.randn(n, width, generator=g)
    torch.manual_seed(0)
    ops = [GraphOp(op, width, width, dropout=0.0, attn_dropout=0.0) for op in ("gcn", "sgc", "sage", "gat2", "cheb")]
    attention = EdgeSoftmaxAttention(heads=2)

    def forward() -> torch.Tensor:
        h = sum(op(x, edge_index) for op in ops)
        return attention(h, h, h, edge_index)

    before = _derived_state()
    forward().square().sum().backward()  # a supernet step
    trained = _derived_state()
    assert trained[0] > before[0]  # the graph's structures were made (and are cached)
    with torch.inference_mode():  # scoring a candidate on the same graph
        forward()
    scored = _derived_state()
    edge_bytes = edge_index.numel() * edge_index.element_size()
    assert (scored[0] - trained[0], scored[1] - trained[1]) == (0, 0), (
        f"scoring added {scored[0] - trained[0]} cached structures ({(scored[1] - trained[1]) / edge_bytes:.1f}x the "
        f"edge_index's {edge_bytes} bytes) to the {trained[0] - before[0]} training made "
        f"({(trained[1] - before[1]) / edge_bytes:.1f}x)")
    assert id(edge_index) in graph._DERIVED
