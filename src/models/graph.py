"""Graph AutoAttend: message-passing ops, edge-softmax attention, supernet and child node classifiers.

Layout: ``x`` (N, F) node features, ``edge_index`` (2, E) long with rows (source j, target i),
messages flow j -> i. Logits are (N, C).

Dimensions. Node 0 is either the raw features (F wide, no stem) or a linear stem's output
``Linear(dropout(x))`` (F -> hidden, no bias, no activation). Every op maps its source's width to
the target's (hidden). The supernet always has the stem: every op is then hidden -> hidden,
``identity`` is possible on every edge, and sparse bag-of-words features are multiplied once per
step instead of once per op reading node 0. A retrained child has no stem (``stem="auto"``)
when every op reading node 0 starts with a linear map of the features (gcn, gat*, linear, zero):
a stem would only factorise that op's first weight into two, which measurably hurts (GCN on
Cora, 3 seeds: 82.4 without, 80.0 with); it keeps the stem when node 0 is read by ``identity``
or by an op that aggregates the F-wide features before its weight (sage, sgc, cheb, arma), which
would otherwise need dense F-wide message passing. Ops reading the stem skip their input dropout
(the stem already dropped the features). The last node feeds the readout:
``linear`` (dropout -> Linear(hidden, C), the searched models) or ``last`` (the last layer's ops
map straight to C and no activation follows: the GCN/GAT papers' output layer).

Layer semantics (the text layer, over a graph):

* ``add``: ``act(o1(x_i) + o2(x_prev))``;
* ``attn``: Q = ``o1(x_i)``, K = ``o2(x_prev)``, V = ``o3(x_prev)``; for every edge j -> i and
  head h, ``alpha = softmax_j(<K_j^h, Q_i^h> / sqrt(d_h))`` over the in-neighbours of i (self
  loops added; ``attn_self_loops=False``: the in-neighbours alone, AutoGL's, where a node without
  any has output 0), output ``act(sum_j alpha V_j^h)``, heads concatenated; no learned projection.

With ``act_at="op"`` (AutoGL's placement) the activation is applied to every op's output instead,
and not after the layer: ``act(o1(x_i)) + act(o2(x_prev))``, and attention over ``act(Q)``,
``act(K)``, ``act(V)``. Layers whose second addend is ``zero`` (GCN, GAT) are the same either way.

Every op with weights drops its input (``dropout``) before the convolution, as GCN and GAT do:
ops reading a hidden node, and those reading the raw features of a stem-free child; only ops
reading the stem's output skip it.

Speed on one CPU thread (Cora): sparse features go through :func:`sparse_linear` (CSR products for
the forward pass and for the weight gradient, 3x cheaper than autograd through a COO product),
what the ops derive from a graph (normalisations, edges with self loops, CSR views) is made once
per graph for all of them (:func:`derived`), every op's message passing runs on the propagate
kernel (:func:`propagate`, :class:`_HeadGatherSum`: PyG's sums bit for bit; a GCN op's forward
and backward about 3x faster), as do GAT's and the attention's softmax reductions and per-edge
products (:func:`edge_softmax`, :class:`_EdgeScores`), and dropout masks come from
:func:`src.models.ops.fast_dropout` (``torch.rand`` or the dropout kernel, not ``bernoulli_``);
the tests check each against the straightforward path.

Module keying is the text encoder's (:func:`src.models.encoder.sharing_key` for the supernet,
:data:`src.models.encoder.CHILD` per op application for a child), so the four context-aware
sharing modes mean exactly what they mean for text.
"""

from __future__ import annotations

import math
import warnings
import weakref
from typing import Callable, TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import ARMAConv, ChebConv, GATConv, GCNConv, MessagePassing, SAGEConv, SGConv
from torch_geometric.nn import Linear as PygLinear
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from src.choices import ACT_POSITIONS, GAT_HEADS, READOUTS
from src.models.encoder import CHILD, build_op_has_weights, module_key, sharing_key
from src.models.cpu_kernels import use_kernel
from src.models.ops import fast_dropout
from src.space import GRAPH_OPS, Architecture, FunctionalSpace, arch_contexts
from src.utils.errors import AutoAttendError

T = TypeVar("T")

# ops that multiply the features by a weight before any message passing: they take sparse F-wide input
LINEAR_FIRST = ("gcn", *GAT_HEADS, "linear")  # every GAT op, as GAT_HEADS names them
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh, "relu": F.relu, "elu": F.elu, "identity": lambda t: t}  # keys: choices.GRAPH_ACTIVATIONS


def any_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """:func:`fast_dropout` for dense or sparse COO ``x`` (N, F); sparse: on the stored values only
    (same distribution as dense dropout of a tensor that is mostly zeros, far cheaper)."""
    if not x.is_sparse:
        return fast_dropout(x, p, training)
    if not training or p == 0.0:
        return x
    return torch.sparse_coo_tensor(x.indices(), fast_dropout(x.values(), p, training), x.shape,
                                   is_coalesced=x.is_coalesced(), check_invariants=False)


class _CsrPair:
    """A sparse (N, F) pattern as CSR, plus the CSR of its transpose and the permutation taking the
    COO (row-major) values to the transpose's order."""

    def __init__(self, indices: torch.Tensor, shape: tuple[int, int]):
        self.indices = indices  # held, so the storage (and the cache key's pointer) cannot be reused
        self.shape = shape
        row, col = indices[0], indices[1]
        self.crow = torch._convert_indices_from_coo_to_csr(row, shape[0])
        self.col = col.contiguous()
        self.perm = torch.argsort(col * shape[0] + row)
        self.crow_t = torch._convert_indices_from_coo_to_csr(col[self.perm], shape[1])
        self.col_t = row[self.perm].contiguous()


_CSR_CACHE: dict[tuple, _CsrPair] = {}


def forget_sparse_structures() -> None:
    """Drop the cached CSR structures of sparse features (:func:`_csr_pair`), each holding its features'
    index tensor: called when a job ends, so the later jobs of a sweep (one process) do not carry them."""
    _CSR_CACHE.clear()


def _csr_pair(x: torch.Tensor) -> _CsrPair:
    """The (cached) CSR structure of a coalesced COO ``x``, keyed by its index storage."""
    idx = x.indices()
    key = (idx.data_ptr(), idx.device, x._nnz(), tuple(x.shape))
    pair = _CSR_CACHE.get(key)
    if pair is None:
        if len(_CSR_CACHE) >= 8:
            _CSR_CACHE.pop(next(iter(_CSR_CACHE)))
        pair = _CSR_CACHE[key] = _CsrPair(idx, tuple(x.shape))
    return pair


class _SparseMatmul(torch.autograd.Function):
    """``A @ W`` for a constant sparse ``A`` (N, F) given by its values, ``W`` (F, H); the gradient of
    ``W`` is ``A^T @ grad`` through the transpose's CSR (far cheaper than autograd through a COO mm)."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, weight: torch.Tensor, pair: _CsrPair) -> torch.Tensor:
        ctx.pair = pair
        ctx.save_for_backward(values)
        a = torch.sparse_csr_tensor(pair.crow, pair.col, values, pair.shape, check_invariants=False)
        return a @ weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (values,) = ctx.saved_tensors
        pair = ctx.pair
        if not ctx.needs_input_grad[1]:
            return None, None, None
        a_t = torch.sparse_csr_tensor(pair.crow_t, pair.col_t, values[pair.perm], pair.shape[::-1],
                                      check_invariants=False)
        return None, a_t @ grad.contiguous(), None


def sparse_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` for sparse COO features ``x`` (N, F) (no gradient w.r.t. ``x``), weight (H, F),
    bias (H,) -> (N, H) dense."""
    if x.values().requires_grad:
        raise ValueError("sparse_linear: sparse features must not require a gradient")
    if not x.is_coalesced():
        x = x.coalesce()
    # autocast off (bf16-mixed / 16-mixed): the features and weights stay in their own (float32)
    # dtype; the CPU's CSR product has no bfloat16 kernel, and on CUDA autocast would run the forward
    # in half precision while the backward multiplies the float32 values by a half-precision gradient
    with warnings.catch_warnings(), torch.autocast(x.device.type, enabled=False):  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        out = _SparseMatmul.apply(x.values(), weight.t(), _csr_pair(x))
    return out if bias is None else out + bias


class SparseInputLinear(PygLinear):
    """PyG's ``Linear`` that also takes sparse COO input (through :func:`sparse_linear`); the first
    map of GCNConv and GATConv is switched to it so raw bag-of-words features stay sparse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, in_channels) float, dense or sparse COO -> (N, out_channels)."""
        return sparse_linear(x, self.weight, self.bias) if x.is_sparse else super().forward(x)


class Stem(nn.Module):
    """Features (N, F), dense or sparse COO -> dropout -> Linear(F, hidden, no bias) -> node 0 (N, hidden)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden, bias=False)
        self.p = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = any_dropout(x, self.p, self.training)
        return sparse_linear(x, self.proj.weight) if x.is_sparse else self.proj(x)


def child_needs_stem(arch: Architecture) -> bool:
    """``stem="auto"``: whether some op reading node 0 cannot take the raw (sparse) features directly."""
    return any(ctx.src == 0 and ctx.op not in LINEAR_FIRST + ("zero",) for _, _, ctx in arch_contexts(arch))


class EdgeCsr:
    """Both CSR views of a weighted edge list, for :func:`propagate`: rows by target (the forward
    sums) and rows by source (their gradient), each row's edges in edge-list order (a stable
    sort), the order in which PyG's ``scatter_add_`` and autograd's ``index_add_`` add them up.

    ``edge_index`` (2, E) long, rows (source j, target i); ``weight`` (E,) or ``None`` (all 1, or
    weights given per call: :class:`_HeadGatherSum`); ``num_nodes`` N.
    """

    def __init__(self, edge_index: torch.Tensor, weight: torch.Tensor | None, num_nodes: int):
        source, target = edge_index[0], edge_index[1]
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
            raise AutoAttendError(f"edge_index refers to nodes outside 0..{num_nodes - 1}")
        by_target = torch.sort(target, stable=True).indices
        by_source = torch.sort(source, stable=True).indices
        # copies, not views: a view would keep edge_index alive from the per-graph cache (derived)
        self.source, self.target = source.clone(), target.clone()
        self.by_target, self.by_source = by_target, by_source
        self.rowptr = _row_pointers(target, num_nodes)
        self.col = source[by_target].contiguous()
        self.weight = None if weight is None else weight[by_target].contiguous()
        self.rowptr_t = _row_pointers(source, num_nodes)
        self.col_t = target[by_source].contiguous()
        self.weight_t = None if weight is None else weight[by_source].contiguous()

    def sum_at_targets(self, x: torch.Tensor, per_edge: torch.Tensor) -> torch.Tensor:
        """``out[i] = sum over edges e = j -> i, in edge order, of per_edge[e] * x[j]``: ``x`` (N, D),
        ``per_edge`` (E, H) in edge-list order with H dividing D (head h weighs its D / H channels) -> (N, D)."""
        return torch.ops.autoattend.gather_sum(x, self.rowptr, self.col, per_edge.index_select(0, self.by_target))

    def sum_at_sources(self, x: torch.Tensor, per_edge: torch.Tensor) -> torch.Tensor:
        """``out[j] = sum over edges e = j -> i, in edge order, of per_edge[e] * x[i]``, the same over the
        source view (the gradients of :meth:`sum_at_targets`' products): ``x`` (N, D), ``per_edge`` (E, H)
        in edge-list order -> (N, D)."""
        return torch.ops.autoattend.gather_sum(x, self.rowptr_t, self.col_t, per_edge.index_select(0, self.by_source))


def _row_pointers(rows: torch.Tensor, num_nodes: int) -> torch.Tensor:
    return torch.cat([rows.new_zeros(1), torch.bincount(rows, minlength=num_nodes).cumsum(0)])


class _GatherSum(torch.autograd.Function):
    """``out[i] = sum over edges j -> i of w * x[j]`` by the propagate kernel, and its gradient
    ``grad_x[j] = sum over edges j -> i of w * grad[i]`` by the same kernel over the other view."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, csr: EdgeCsr) -> torch.Tensor:
        ctx.csr = csr
        return torch.ops.autoattend.gather_sum(x, csr.rowptr, csr.col, csr.weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        csr = ctx.csr
        return torch.ops.autoattend.gather_sum(grad.contiguous(), csr.rowptr_t, csr.col_t, csr.weight_t), None


class _HeadGatherSum(torch.autograd.Function):
    """``out[i, h] = sum over edges e = j -> i of alpha[e, h] * x[j, h]`` (GAT's and the edge-softmax
    attention's aggregation, PyG's ``scatter_add_`` of ``alpha * x_j``) by the propagate kernel,
    with weights per edge and head that carry gradients. ``x`` (N, H, C), ``alpha`` (E, H) in
    edge-list order -> (N, H, C). Gradients as autograd computes them through PyG's path, bit for
    bit: ``x``'s by the kernel over the source view, ``alpha``'s as ``(grad[i] * x[j]).sum(-1)``
    per edge, the products by the kernel (``edge_products``, without the two (E, H, C) gathers),
    their sum by torch as autograd takes it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, csr: EdgeCsr) -> torch.Tensor:
        ctx.csr = csr
        ctx.save_for_backward(x, alpha)
        n, heads, width = x.shape
        return csr.sum_at_targets(x.reshape(n, heads * width), alpha).view(n, heads, width)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        csr = ctx.csr
        x, alpha = ctx.saved_tensors
        n, heads, width = x.shape
        grad = grad.contiguous()
        grad_x = grad_alpha = None
        if ctx.needs_input_grad[0]:
            grad_x = csr.sum_at_sources(grad.view(n, heads * width), alpha).view(n, heads, width)
        if ctx.needs_input_grad[1]:  # autograd's products, made without gathering both sides first; its sum
            products = torch.ops.autoattend.edge_products(grad.view(n, heads * width), x.reshape(n, heads * width),
                                                          csr.target, csr.source)
            grad_alpha = products.view(-1, heads, width).sum(-1)
        return grad_x, grad_alpha, None


class _SegmentSum(torch.autograd.Function):
    """``out[i] = sum over edges e = j -> i of values[e]``: ``values`` (E, H) in edge-list order ->
    (N, H), PyG's ``scatter(values, index, reduce="sum")`` (``scatter_add_``, which adds in edge
    order) by the propagate kernel over the target view; its gradient ``grad[index]``, the gather
    that autograd takes for ``scatter_add_``."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, csr: EdgeCsr) -> torch.Tensor:
        ctx.csr = csr
        return torch.ops.autoattend.gather_sum(values.contiguous(), csr.rowptr, csr.by_target, None)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.index_select(0, ctx.csr.target), None


class _EdgeScores(torch.autograd.Function):
    """``out[e, h] = sum over c of q[i, h, c] * k[j, h, c]`` for each edge e = j -> i: ``q``, ``k``
    (N, H, C) -> (E, H) in edge-list order, the attention's ``(q_i * k_j).sum(-1)`` without
    gathering both sides: the products by the kernel (``edge_products``), their sum by torch. Its
    gradients are autograd's through that path bit for bit: ``q``'s is the sum over each node's
    in-edges, in edge order (``index_add_``'s), of ``grad[e, h] * k[j]``, by the propagate kernel over
    the target view, ``k``'s the same over the source view."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, csr: EdgeCsr) -> torch.Tensor:
        n, heads, width = q.shape
        q2, k2 = q.reshape(n, heads * width), k.reshape(n, heads * width)
        ctx.csr = csr
        ctx.save_for_backward(q2, k2)
        products = torch.ops.autoattend.edge_products(q2, k2, csr.target, csr.source)
        return products.view(-1, heads, width).sum(-1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        csr = ctx.csr
        q2, k2 = ctx.saved_tensors
        shape = (q2.size(0), grad.size(1), -1)  # (N, H, C)
        grad_q = csr.sum_at_targets(k2, grad).view(shape) if ctx.needs_input_grad[0] else None
        grad_k = csr.sum_at_sources(q2, grad).view(shape) if ctx.needs_input_grad[1] else None
        return grad_q, grad_k, None


def edge_softmax(score: torch.Tensor, csr: EdgeCsr) -> torch.Tensor:
    """PyG's ``softmax(score, index, num_nodes=N)`` over each node's in-edges, with its reductions
    on the propagate kernel: ``score`` (E, H) in edge-list order -> (E, H). The per-node maximum
    (``segment_max``, as ``scatter_reduce_`` finds it, and like it detached) and sum (in edge order,
    as ``scatter_add_`` adds) come from the CSR view; the shift, ``exp``, division and gathers are
    PyG's own torch ops on the same tensors, so the same values and gradients bit for bit
    (``tests/test_graph_models.py``)."""
    peak = torch.ops.autoattend.segment_max(score.detach(), csr.rowptr, csr.by_target)
    out = (score - peak.index_select(0, csr.target)).exp()
    total = _SegmentSum.apply(out, csr) + 1e-16
    return out / total.index_select(0, csr.target)


class KernelGATConv(GATConv):
    """PyG's ``GATConv`` whose softmax's reductions (:func:`edge_softmax`) and sum of ``alpha * x_j``
    over in-edges run on the propagate kernel
    (:class:`_HeadGatherSum`; PyG's values bit for bit, ``tests/test_graph_models.py``) for CPU
    float tensors, over a CSR view made once per edge tensor (:func:`edge_csr`); the same parameters, and PyG's own
    path elsewhere and under ``hardware.kernels=torch``. :class:`GraphOp` builds it without
    GATConv's own self loops, which it adds once per graph instead (GATConv removes and adds them
    on every call, a new edge tensor each time)."""

    def edge_updater(self, edge_index, size=None, **kwargs):
        """GATConv's attention weights per edge and head (E, H): ``GATConv.edge_update`` step by
        step, its softmax's reductions on the propagate kernel (:func:`edge_softmax`)."""
        alpha, edge_attr = kwargs.get("alpha"), kwargs.get("edge_attr")
        source, target = alpha if isinstance(alpha, tuple) else (alpha, None)
        if (size is not None or edge_attr is not None or not isinstance(edge_index, torch.Tensor) or source is None
                or not use_kernel(source) or set(kwargs) != {"alpha", "edge_attr"} or edge_index.size(1) == 0):
            return super().edge_updater(edge_index, size=size, **kwargs)
        scores = source.index_select(0, edge_index[0])
        if target is not None:
            scores = scores + target.index_select(0, edge_index[1])
        scores = F.leaky_relu(scores, self.negative_slope)
        weights = edge_softmax(scores, edge_csr(edge_index, source.size(0)))
        return F.dropout(weights, p=self.dropout, training=self.training)

    def propagate(self, edge_index, size=None, **kwargs):
        """GATConv's sum of ``alpha * x_j`` over in-edges: ``x`` (N, H, C) per head, ``alpha`` (E, H) from
        :meth:`edge_updater`, ``edge_index`` (2, E) -> (N, H, C); on the propagate kernel
        (:class:`_HeadGatherSum`) for CPU float tensors, else PyG's own."""
        x, alpha = kwargs.get("x"), kwargs.get("alpha")
        source = x[0] if isinstance(x, tuple) else x
        if (size is not None or alpha is None or not isinstance(edge_index, torch.Tensor) or source is None
                or not use_kernel(source) or set(kwargs) != {"x", "alpha"}):
            return super().propagate(edge_index, size=size, **kwargs)
        return _HeadGatherSum.apply(source, alpha, edge_csr(edge_index, source.size(0)))


def propagate(conv: MessagePassing, x: torch.Tensor, edge_index: torch.Tensor, weight: torch.Tensor,
              csr: Callable[[], EdgeCsr]) -> torch.Tensor:
    """PyG's weighted sum propagation of ``conv`` (GCN's, SGC's, ARMA's and Chebyshev's: message
    ``weight * x_j``, summed at the target): ``x`` (N, D), or ARMA's (1, N, D), to the same shape;
    ``edge_index`` (2, E) long, ``weight`` (E,) one per edge, of ``x``'s dtype.
    On CPU float tensors through the propagate kernel over ``csr()`` (made on demand; the caller
    caches it per graph), which computes PyG's values bit for bit, forward and backward
    (``tests/test_graph_models.py``); elsewhere, and under ``hardware.kernels=torch``, through
    ``conv.propagate``."""
    if weight.requires_grad or not use_kernel(x):
        if isinstance(conv, ChebConv):
            return conv.propagate(edge_index, x=x, norm=weight)
        return conv.propagate(edge_index, x=x, edge_weight=weight)
    if x.dim() == 3 and x.size(0) == 1:  # ARMA's (stacks, N, D) with its one stack
        return _GatherSum.apply(x[0], csr()).unsqueeze(0)
    return _GatherSum.apply(x, csr())


_DERIVED: dict[int, tuple[weakref.ref, dict]] = {}


def derived(edge_index: torch.Tensor, key: tuple, make: Callable[[], T]) -> T:
    """``make()``, something derived from the graph ``edge_index`` alone (a normalisation, the edges
    with self loops, a CSR view), once per graph, ``key`` and mode, shared by every op that reads
    the graph and dropped with its edge tensor: one copy per graph, not one per op module (a
    supernet has about 140 that propagate), and none kept for a mini-batch that has gone.

    ``make()`` runs outside ``torch.inference_mode`` and autograd, so its tensors serve training and
    evaluation alike: one made under inference mode would be an inference tensor, which autograd cannot
    save for backward (a module whose first call was an evaluation raised on its first training step on
    the same graph, before 2026-12-06), and keeping one set per mode doubled the cache (scoring the
    candidates of a 50k-node, 500k-edge graph took it from 169 to 338 MiB). A value must not hold
    ``edge_index`` itself or a view of it: the cache would then keep the graph alive."""
    slot = id(edge_index)
    entry = _DERIVED.get(slot)
    if entry is None or entry[0]() is not edge_index:
        def forget(ref: weakref.ref, slot: int = slot, table: dict = _DERIVED) -> None:
            if slot in table and table[slot][0] is ref:  # not a newer graph's entry under a reused id
                del table[slot]

        entry = _DERIVED[slot] = (weakref.ref(edge_index, forget), {})
    if key not in entry[1]:
        with torch.inference_mode(False), torch.no_grad():
            entry[1][key] = make()
    return entry[1][key]


def self_looped(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """``edge_index`` with its self loops removed and one added to every one of the ``n`` nodes
    (``GATConv``'s edge list, and the attention's), once per graph."""
    def make() -> torch.Tensor:
        edges, _ = remove_self_loops(edge_index)
        return add_self_loops(edges, num_nodes=n)[0]

    return derived(edge_index, ("self_looped", n), make)


def edge_csr(edges: torch.Tensor, n: int) -> EdgeCsr:
    """The propagate kernel's CSR views of ``edges`` with no weights of their own (SAGE's graph,
    GAT's and the attention's edges with self loops), once per edge tensor."""
    return derived(edges, ("csr", n), lambda: EdgeCsr(edges, None, n))


def normalised(edge_index: torch.Tensor, n: int, key: tuple, normalise: Callable[[], tuple[torch.Tensor, torch.Tensor]],
               ) -> tuple[torch.Tensor, torch.Tensor, Callable[[], EdgeCsr]]:
    """A normalisation of the graph (``normalise()``: edges, weights) named by ``key``, once per
    graph, with its CSR view on demand (made once as well): -> (edges (2, E') long, weights (E',),
    the CSR view's maker), E' the normalised graph's edges (self loops added or removed)."""
    def make() -> tuple[torch.Tensor | None, torch.Tensor]:
        edges, weights = normalise()
        return (None if edges is edge_index else edges), weights  # gcn_norm without self loops keeps the graph's

    edges, weights = derived(edge_index, key, make)
    edges = edge_index if edges is None else edges
    return edges, weights, lambda: derived(edge_index, key + ("csr",), lambda: EdgeCsr(edges, weights, n))


class GraphOp(nn.Module):
    """Dropout on the input, then one message-passing (or linear) layer: (N, in) -> (N, out).

    Sparse input (raw features at node 0 of a stem-free child) goes straight into the ops that
    start with a linear map (:data:`LINEAR_FIRST`) and is densified for the others.

    ``average_heads``: a GAT op averages its heads' ``out_dim``-wide outputs instead of
    concatenating ``out_dim / heads``-wide ones (the GAT paper's output layer; used where the
    output is the class logits, whose count the heads need not divide).
    """

    def __init__(self, op: str, in_dim: int, out_dim: int, dropout: float, attn_dropout: float, sgc_k: int = 2,
                 average_heads: bool = False):
        super().__init__()
        self.op = op
        self.dropout = nn.Dropout(dropout)
        self.uses_edges = op != "linear"
        if op == "gcn":
            self.conv = GCNConv(in_dim, out_dim)
        elif op == "sage":
            self.conv = SAGEConv(in_dim, out_dim, aggr="mean")
        elif op in GAT_HEADS:
            heads = GAT_HEADS[op]
            if average_heads:
                self.conv = KernelGATConv(in_dim, out_dim, heads=heads, concat=False, dropout=attn_dropout,
                                          add_self_loops=False)
            elif out_dim % heads:
                raise AutoAttendError(f"op {op}: output width {out_dim} is not divisible by its {heads} heads")
            else:
                self.conv = KernelGATConv(in_dim, out_dim // heads, heads=heads, concat=True, dropout=attn_dropout,
                                          add_self_loops=False)
        elif op == "linear":
            self.conv = nn.Linear(in_dim, out_dim)
        elif op == "arma":
            # its own ReLU: PyG's default is one instance shared by every ARMAConv (a default argument),
            # so one model's eval() switched it in every other model
            self.conv = ARMAConv(in_dim, out_dim, num_stacks=1, num_layers=1, act=nn.ReLU())
            # PyG builds the recursion weight even for one ARMA layer, which never uses it
            self.conv.weight.requires_grad_(False)
        elif op == "cheb":
            self.conv = ChebConv(in_dim, out_dim, K=2)
        elif op == "sgc":
            self.conv = SGConv(in_dim, out_dim, K=sgc_k)
        else:
            raise AutoAttendError(f"unknown graph op {op!r}; expected one of {GRAPH_OPS}")
        if op in LINEAR_FIRST and op != "linear":
            # same parameters and initialisation; only sparse input takes the CSR path
            self.conv.lin.__class__ = SparseInputLinear

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x`` (N, in) dense or sparse COO, ``edge_index`` (2, E) -> (N, out)."""
        x = any_dropout(x, self.dropout.p, self.training)
        if x.is_sparse and self.op not in LINEAR_FIRST:
            x = x.to_dense()
        if not self.uses_edges:
            return sparse_linear(x, self.conv.weight, self.conv.bias) if x.is_sparse else self.conv(x)
        if self.op == "sgc":
            return self._sgc(x, edge_index)
        if self.op == "gcn":
            return self._gcn(x, edge_index)
        if self.op == "sage":
            return self._sage(x, edge_index)
        if self.op == "arma":
            return self._arma(x, edge_index)
        if self.op == "cheb":
            return self._cheb(x, edge_index)
        if self.op in GAT_HEADS:  # GATConv's own self loops, once per graph (see KernelGATConv)
            return self.conv(x, self_looped(edge_index, x.size(0)))
        return self.conv(x, edge_index)

    def _gcn_normalised(self, edge_index: torch.Tensor, x: torch.Tensor, self_loops: bool):
        """PyG's ``gcn_norm`` of the graph (symmetric, not improved) and its CSR view, once per
        graph and dtype (:func:`normalised`)."""
        n, flow = x.size(self.conv.node_dim), self.conv.flow
        return normalised(edge_index, n, ("gcn_norm", n, x.dtype, self_loops, flow), lambda: gcn_norm(
            edge_index, None, n, False, self_loops, flow, dtype=x.dtype))

    def _gcn(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``GCNConv.forward`` with its normalisation made once per graph (:func:`derived`; GCNConv's
        ``cached=True`` kept one per module) and its propagation through :func:`propagate`: the
        same operations on the same values, so the same output bit for bit."""
        conv = self.conv
        edges, weights, csr = self._gcn_normalised(edge_index, x, conv.add_self_loops)
        out = propagate(conv, conv.lin(x), edges, weights, csr)
        return out if conv.bias is None else out + conv.bias

    def _sage(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``SAGEConv.forward`` (mean aggregation, root weight) with the neighbour sums through the
        propagate kernel, divided by the in-degrees (at least 1) as PyG's mean divides them: the
        same output bit for bit; PyG's own path off CPU float tensors."""
        conv = self.conv
        if not use_kernel(x):
            return conv(x, edge_index)
        n = x.size(0)
        degree = derived(edge_index, ("in_degree", n, x.dtype), lambda: torch.zeros(n, dtype=x.dtype).scatter_add_(
            0, edge_index[1], torch.ones(edge_index.size(1), dtype=x.dtype)).clamp(min=1).view(-1, 1))
        mean = _GatherSum.apply(x, edge_csr(edge_index, n)) / degree
        return conv.lin_l(mean) + conv.lin_r(x)

    def _sgc(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``SGConv.forward`` with the symmetric normalisation made once per graph (and dtype) and
        its propagation through :func:`propagate`: the same operations on the same values, so the
        same output bit for bit. PyG's own ``cached=True`` keeps the propagated features instead,
        which holds only for a fixed input."""
        conv = self.conv
        edges, weights, csr = self._gcn_normalised(edge_index, x, conv.add_self_loops)
        for _ in range(conv.K):
            x = propagate(conv, x, edges, weights, csr)
        return conv.lin(x)

    def _arma(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``ARMAConv.forward`` for its one stack and one layer, with the normalisation (no self
        loops) made once per graph and the propagation through :func:`propagate`: the same
        operations on the same values, so the same output bit for bit."""
        conv = self.conv
        edges, weights, csr = self._gcn_normalised(edge_index, x, False)
        x = x.unsqueeze(-3)  # (stacks = 1, N, in)
        out = propagate(conv, x @ conv.init_weight, edges, weights, csr)
        out = out + F.dropout(x, p=conv.dropout, training=conv.training) @ conv.root_weight[0]
        if conv.bias is not None:
            out = out + conv.bias[0]
        return conv.act(out).mean(dim=-3)

    def _cheb(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``ChebConv.forward`` (K = 2: ``lins[0](x) + lins[1](L x)``, L the scaled normalised
        Laplacian) with L made once per graph and its product through :func:`propagate`: the same
        operations on the same values, so the same output bit for bit."""
        conv = self.conv
        n = x.size(conv.node_dim)
        edges, weights, csr = normalised(edge_index, n, ("chebyshev", n, x.dtype, conv.normalization),
                                         lambda: conv.__norm__(edge_index, n, None, conv.normalization, None,
                                                               dtype=x.dtype))
        out = conv.lins[0](x)
        if len(conv.lins) > 1:
            out = out + conv.lins[1](propagate(conv, x, edges, weights, csr))
        return out if conv.bias is None else out + conv.bias


class EdgeSoftmaxAttention(MessagePassing):
    """Multi-head dot-product attention restricted to edges, with no learned projections.

    For edge j -> i and head h: ``score = <K_j^h, Q_i^h> / sqrt(d_h)``, softmax over the
    in-neighbours of i (and i itself with ``self_loops``: its self loop is added once, so no node
    is left without input; without, the graph's edges as given, AutoGL's choice, and a node with
    no in-neighbour gets 0), dropout on the weights, output ``sum_j alpha V_j^h``; heads are
    channel slices.
    """

    def __init__(self, heads: int, attn_dropout: float = 0.0, self_loops: bool = True):
        super().__init__(aggr="add", node_dim=0)
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.self_loops = self_loops

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, edge_index: torch.Tensor,
                heads: int | None = None) -> torch.Tensor:
        """``q``, ``k``, ``v`` (N, D), ``edge_index`` (2, E) -> (N, D); ``heads`` overrides ``self.heads``."""
        n, d = q.shape
        heads = self.heads if heads is None else heads
        if d % heads:
            raise AutoAttendError(f"attention width {d} is not divisible by {heads} heads")
        if self.self_loops:
            edge_index = self_looped(edge_index, n)
        dh = d // heads
        q, k, v = q.view(n, heads, dh), k.view(n, heads, dh), v.view(n, heads, dh)
        if not use_kernel(v):
            return self.propagate(edge_index, q=q, k=k, v=v, size=(n, n)).reshape(n, d)
        # PyG's propagate step by step (the same scores, softmax and dropout), its per-edge scores,
        # softmax reductions and sum of alpha * v_j over in-edges on the propagate kernel: the same
        # values bit for bit
        csr = edge_csr(edge_index, n)
        score = _EdgeScores.apply(q, k, csr) / math.sqrt(dh)
        alpha = fast_dropout(edge_softmax(score, csr), self.attn_dropout, self.training)
        return _HeadGatherSum.apply(v, alpha, csr).reshape(n, d)

    def message(self, q_i: torch.Tensor, k_j: torch.Tensor, v_j: torch.Tensor, index: torch.Tensor,
                ptr: torch.Tensor | None, size_i: int | None) -> torch.Tensor:
        """Per edge: q_i, k_j, v_j (E, H, d_h) -> alpha * v_j (E, H, d_h)."""
        score = (q_i * k_j).sum(-1) / math.sqrt(q_i.size(-1))
        alpha = softmax(score, index, ptr, size_i)
        alpha = fast_dropout(alpha, self.attn_dropout, self.training)
        return v_j * alpha.unsqueeze(-1)


def layer_widths(num_layers: int, in_dim: int, hidden: int, num_classes: int, readout: str, stem: bool) -> list[int]:
    """Width of every node 0..L: F (no stem) or hidden, then hidden, the last one C under the ``last`` readout."""
    if readout not in READOUTS:
        raise AutoAttendError(f"readout must be one of {READOUTS}, got {readout!r}")
    widths = [hidden if stem else in_dim] + [hidden] * num_layers
    if readout == "last":
        widths[-1] = num_classes
    return widths


class GraphEncoder(nn.Module):
    """Runs an :class:`Architecture` over node features.

    Args:
        widths: width of each node 0..L (see :func:`layer_widths`). heads: heads of ``attn`` layers.
        dropout: input dropout of every op with weights, except those reading node 0 when
        ``stem`` (the stem's output, already dropped); with ``stem=False`` the ops reading the raw
        features drop them. attn_dropout: dropout on attention weights.
        act: activation after every layer (not after the last one under the ``last`` readout).
        An ``attn`` layer uses ``heads`` heads; the last one under the ``last`` readout, whose width
        is the number of classes C, uses ``gcd(heads, C)`` (GAT's output layer has a single head),
        and GAT ops writing that layer average their heads (the GAT paper's output layer).
        keying: a sharing mode (supernet) or ``"child"``.
        op_keys: ``{module key: (op, source node, target node)}`` for every op module to build.
        sgc_k: propagation steps K of ``sgc`` ops.
        final_act: whether the last layer is followed by ``act``.
        stem: whether node 0 is a stem's output (its readers then skip their input dropout).
        act_at: ``"layer"``: ``act`` after each layer's sum or attention; ``"op"``: on each op's
        output instead (AutoGL), the last layer's too unless ``final_act`` is false.
        attn_self_loops: whether ``attn`` layers also attend from each node to itself
        (:class:`EdgeSoftmaxAttention`; False: AutoGL's).
    """

    def __init__(self, widths: list[int], heads: int, dropout: float, attn_dropout: float, act: str, keying: str,
                 op_keys: dict[str, tuple[str, int, int]], sgc_k: int = 2, final_act: bool = True, stem: bool = True,
                 act_at: str = "layer", attn_self_loops: bool = True):
        super().__init__()
        if act not in ACTIVATIONS:
            raise AutoAttendError(f"activation must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        if act_at not in ACT_POSITIONS:
            raise AutoAttendError(f"act_at must be one of {ACT_POSITIONS}, got {act_at!r}")
        self.act_at = act_at
        self.widths, self.num_layers, self.heads = widths, len(widths) - 1, heads
        self.keying, self.final_act = keying, final_act
        self.act = ACTIVATIONS[act]
        self.ops = nn.ModuleDict()
        for key, (op, src, target) in sorted(op_keys.items()):
            self.ops[key] = GraphOp(op, widths[src], widths[target], 0.0 if src == 0 and stem else dropout,
                                    attn_dropout, sgc_k, average_heads=target == self.num_layers and not final_act)
        self.attention = EdgeSoftmaxAttention(heads, attn_dropout, attn_self_loops)
        # heads per layer: the class-wide output layer of the ``last`` readout takes as many as divide C
        self.layer_heads = [heads] * (self.num_layers - 1) + [heads if final_act else math.gcd(heads, widths[-1])]

    def keys_for(self, arch: Architecture) -> list[tuple[int, str, int, str, str]]:
        """``(layer, slot, source node, op, module key)`` for each op application of ``arch``."""
        return [(i, slot, ctx.src, ctx.op, module_key(i, slot, ctx, self.keying)) for i, slot, ctx in arch_contexts(arch)]

    def used_module_keys(self, arch: Architecture) -> set[str]:
        return {key for *_, key in self.keys_for(arch) if key in self.ops}

    def used_parameters(self, arch: Architecture) -> dict[str, nn.Parameter]:
        """``{qualified name: parameter}`` of every op module ``arch`` uses."""
        return {f"ops.{key}.{name}": p for key in self.used_module_keys(arch)
                for name, p in self.ops[key].named_parameters() if p.requires_grad}

    def _apply_op(self, op: str, key: str, x: torch.Tensor, edge_index: torch.Tensor, width: int) -> torch.Tensor | None:
        if op == "zero":
            return None
        if op == "identity":
            if x.size(-1) != width:
                raise AutoAttendError(f"identity cannot map width {x.size(-1)} to {width}")
            return x
        if key not in self.ops:
            raise AutoAttendError(f"no module for op {op!r} (key {key}); the architecture is outside this model's space")
        return self.ops[key](x, edge_index)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """``x`` (N, widths[0]) node 0, ``edge_index`` (2, E) -> last node (N, widths[-1])."""
        if len(arch) != self.num_layers:
            raise AutoAttendError(f"architecture has {len(arch)} layers, the model has {self.num_layers}")
        per_layer: list[dict[str, tuple[int, str, str]]] = [{} for _ in arch]
        for i, slot, src, op, key in self.keys_for(arch):
            per_layer[i][slot] = (src, op, key)
        nodes = [x]
        for i, layer in enumerate(arch):
            width = self.widths[i + 1]
            # dense even where node 0 is Planetoid's sparse feature matrix (new_zeros keeps its layout)
            zeros = torch.zeros(x.size(0), width, dtype=x.dtype, device=x.device)
            outs = {slot: self._apply_op(op, key, nodes[src], edge_index, width)
                    for slot, (src, op, key) in per_layer[i].items()}
            activate = i < self.num_layers - 1 or self.final_act
            if activate and self.act_at == "op":
                outs = {slot: None if t is None else self.act(t) for slot, t in outs.items()}
            if layer.kind == "add":
                parts = [t for t in (outs["q"], outs["k"]) if t is not None]
                h = sum(parts[1:], parts[0]) if parts else zeros
            else:
                q, k, v = (outs[s] if outs[s] is not None else zeros for s in "qkv")
                h = self.attention(q, k, v, edge_index, self.layer_heads[i])
            if activate and self.act_at == "layer":
                h = self.act(h)
            nodes.append(h)
        return nodes[-1]


def graph_supernet_op_keys(space: FunctionalSpace, mode: str) -> dict[str, tuple[str, int, int]]:
    """``{module key: (op, source node, target node)}`` for every reachable context of ``space`` under ``mode``."""
    return {sharing_key(ctx, mode): (ctx.op, ctx.src, ctx.layer + 1) for ctx in space.contexts()
            if build_op_has_weights(ctx.op)}


def graph_child_op_keys(arch: Architecture) -> dict[str, tuple[str, int, int]]:
    """``{module key: (op, source node, target node)}``: one module per op application of ``arch``."""
    return {module_key(i, slot, ctx, CHILD): (ctx.op, ctx.src, i + 1) for i, slot, ctx in arch_contexts(arch)
            if build_op_has_weights(ctx.op)}


class GraphNet(nn.Module):
    """Node features (N, F) + edges (2, E) [+ architecture] -> logits (N, C).

    Build with :meth:`supernet` (every module of a space, keyed by a sharing mode) or
    :meth:`child` (one architecture, its own module per op application).
    """

    def __init__(self, in_dim: int, encoder: GraphEncoder, num_classes: int, dropout: float, readout: str,
                 arch: Architecture | None = None, stem: bool = True):
        super().__init__()
        self.stem = Stem(in_dim, encoder.widths[0], dropout) if stem else None
        self.encoder = encoder
        self.num_classes = num_classes
        self.readout = readout
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.widths[-1], num_classes) if readout == "linear" else None
        self.arch = arch

    @classmethod
    def supernet(cls, in_dim: int, num_classes: int, space: FunctionalSpace, hidden: int = 64, heads: int = 8,
                 dropout: float = 0.7, attn_dropout: float = 0.0, act: str = "tanh", sharing: str = "full",
                 sgc_k: int = 2, act_at: str = "layer", attn_self_loops: bool = True) -> "GraphNet":
        """The weight-sharing supernet over ``space``: a stem (features (N, in_dim) -> node 0 (N,
        hidden)), every op module a context can reach under ``sharing``, a linear readout to
        ``num_classes``; its forward takes an architecture."""
        widths = layer_widths(space.num_layers, in_dim, hidden, num_classes, "linear", stem=True)
        encoder = GraphEncoder(widths, heads, dropout, attn_dropout, act, sharing,
                               graph_supernet_op_keys(space, sharing), sgc_k, act_at=act_at,
                               attn_self_loops=attn_self_loops)
        return cls(in_dim, encoder, num_classes, dropout, "linear")

    @classmethod
    def child(cls, in_dim: int, num_classes: int, arch: Architecture, hidden: int = 64, heads: int = 8,
              dropout: float = 0.5, attn_dropout: float = 0.0, act: str = "tanh", readout: str = "linear",
              sgc_k: int = 2, stem: str = "auto", act_at: str = "layer",
              attn_self_loops: bool = True) -> "GraphNet":
        """One module per op application; ``stem``: ``auto`` (see the module docstring), ``linear`` or ``none``."""
        if stem not in ("auto", "linear", "none"):
            raise AutoAttendError(f"stem must be auto, linear or none, got {stem!r}")
        use_stem = child_needs_stem(arch) if stem == "auto" else stem == "linear"
        widths = layer_widths(len(arch), in_dim, hidden, num_classes, readout, use_stem)
        for i, slot, ctx in arch_contexts(arch):
            if ctx.op == "identity" and widths[ctx.src] != widths[i + 1]:
                why = (" (the last layer maps to the classes under readout 'last': the readout "
                       "'linear' takes identity there)" if readout == "last" and i == len(arch) - 1 else "")
                raise AutoAttendError(f"layer {i} {slot}: identity cannot map node {ctx.src} (width "
                                      f"{widths[ctx.src]}) to width {widths[i + 1]}{why}")
        last = arch[len(arch) - 1]
        outputs_zero = last.v_op == "zero" if last.kind == "attn" else last.q_op == last.k_op == "zero"
        if readout == "last" and outputs_zero:
            raise AutoAttendError(f"layer {len(arch) - 1}: its output is zero whatever the input ({last.kind} of "
                                  f"{'a zero V' if last.kind == 'attn' else 'two zero addends'}), and under readout "
                                  "'last' it is the model's output: use another op there, or the readout 'linear'")
        encoder = GraphEncoder(widths, heads, dropout, attn_dropout, act, CHILD, graph_child_op_keys(arch), sgc_k,
                               final_act=readout == "linear", stem=use_stem, act_at=act_at,
                               attn_self_loops=attn_self_loops)
        return cls(in_dim, encoder, num_classes, dropout, readout, arch, stem=use_stem)

    def first_layer_parameters(self) -> list[nn.Parameter]:
        """A child's parameters that map the raw features: its stem's, when it has one, and those of
        the ops of its first layer (those writing node 1). GCN's paper regularises only these
        (``weight_decay_on: first_layer``)."""
        if self.arch is None:
            raise ValueError("first_layer_parameters: a supernet has no first layer of its own (a child's method)")
        first = [key for key, (_, _, target) in graph_child_op_keys(self.arch).items() if target == 1]
        stem = list(self.stem.parameters()) if self.stem is not None else []
        return stem + [p for key in first for p in self.encoder.ops[key].parameters()]

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        """``x`` (N, F) float, dense or sparse COO; ``edge_index`` (2, E) long -> logits (N, C).

        ``arch`` defaults to the child's own; a child runs an ``arch`` passed in (it does not ignore
        it), raising ``AutoAttendError`` where that needs a module the child lacks."""
        arch = arch if arch is not None else self.arch
        if arch is None:
            raise ValueError("a supernet needs an architecture")
        h = self.encoder(self.stem(x) if self.stem is not None else x, edge_index, arch)
        return self.classifier(any_dropout(h, self.dropout.p, self.training)) if self.classifier is not None else h

    def used_parameters(self, arch: Architecture | None = None) -> dict[str, nn.Parameter]:
        """Parameters ``arch`` (default: the child's own) uses: its op modules, the stem and the classifier."""
        arch = arch if arch is not None else self.arch
        out = {f"stem.{k}": p for k, p in self.stem.named_parameters()} if self.stem is not None else {}
        out.update({f"encoder.{k}": p for k, p in self.encoder.used_parameters(arch).items()})
        if self.classifier is not None:
            out.update({f"classifier.{k}": p for k, p in self.classifier.named_parameters()})
        return out
