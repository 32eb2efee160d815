"""Graph ops, both layer kinds, edge-softmax attention and context-aware sharing for graphs."""

from __future__ import annotations

import math
import random

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from src.data.planetoid import ListDataset, RepeatDataset
from src.lit.graph_modules import GraphChildModule, GraphSupernetModule, graph_score_batch, node_metric, selection_key
from src.models.encoder import SHARING_MODES, sharing_key
from src.models.graph import GRAPH_OPS, EdgeSoftmaxAttention, GraphNet, graph_supernet_op_keys, sparse_linear
from src.space import Architecture, FunctionalSpace, Layer
from src.utils.errors import AutoAttendError
from tests.helpers import ROOT

WEIGHTED = [o for o in GRAPH_OPS if o not in ("zero", "identity")]
HOPS = {"sgc": 2}  # receptive field of one op (SGC propagates K=2 times; Chebyshev K=2 is 1 hop)


pytestmark = pytest.mark.usefixtures("one_intra_op_thread")  # tiny graphs


def path_graph(n: int, components: int = 1) -> torch.Tensor:
    """Undirected paths 0-1-...-(n-1), ``components`` disjoint copies: edge_index (2, E)."""
    edges = []
    for c in range(components):
        base = c * n
        for i in range(n - 1):
            edges += [(base + i, base + i + 1), (base + i + 1, base + i)]
    return torch.tensor(edges, dtype=torch.long).t().contiguous()


def one_layer(kind: str, op: str) -> Architecture:
    if kind == "add":
        return Architecture((Layer("add", 0, op, 0, "zero"),))
    return Architecture((Layer("attn", 0, "linear", 0, op, 0, op),))


def child(arch: Architecture, in_dim: int = 5, classes: int = 3, **kw) -> GraphNet:
    torch.manual_seed(0)
    return GraphNet.child(in_dim, classes, arch, hidden=16, heads=4, dropout=0.0, **kw).eval()


@pytest.mark.parametrize("kind", ["add", "attn"])
@pytest.mark.parametrize("op", WEIGHTED + ["identity"])
def test_every_op_and_kind_shapes_gradients_and_receptive_field(op, kind):
    n = 8
    edge_index = path_graph(n, components=2)
    x = torch.rand(2 * n, 5)
    model = child(one_layer(kind, op))
    out = model(x, edge_index)
    assert out.shape == (2 * n, 3) and torch.isfinite(out).all()
    model.train()
    model(x, edge_index).sum().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None and torch.isfinite(p.grad).all()) == p.requires_grad, name
    model.eval()
    v = 0
    op_hops = 0 if op in ("linear", "identity") else HOPS.get(op, 1)
    hops = op_hops + (1 if kind == "attn" else 0)  # attention adds one hop over the in-neighbours
    with torch.no_grad():
        base = model(x, edge_index)
        for u in range(1, n):
            x2 = x.clone()
            x2[u] += 1.0
            changed = not torch.allclose(model(x2, edge_index)[v], base[v], atol=1e-6)
            assert changed == (u <= hops), f"node {u} at distance {u}: changed={changed}, receptive field {hops}"
        x2 = x.clone()
        x2[n:] += 5.0  # the other component: never connected to v
        assert torch.allclose(model(x2, edge_index)[:n], base[:n], atol=1e-6)


@pytest.mark.parametrize("self_loops", [True, False])
def test_edge_softmax_attention_matches_dense_reference(self_loops):
    torch.manual_seed(0)
    n, d, heads = 7, 8, 2
    # node 6 has no in-neighbour; node 2 has a self loop in the data (kept once either way)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 2, 6], [1, 2, 3, 4, 5, 0, 3, 2, 0]])
    q, k, v = (torch.randn(n, d) for _ in range(3))
    out = EdgeSoftmaxAttention(heads, self_loops=self_loops)(q, k, v, edge_index)
    adj = torch.eye(n, dtype=torch.bool) if self_loops else torch.zeros(n, n, dtype=torch.bool)
    adj[edge_index[1], edge_index[0]] = True  # row i attends to its in-neighbours j (and itself)
    dh = d // heads
    ref = []
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        scores = (q[:, sl] @ k[:, sl].t()) / math.sqrt(dh)
        weights = torch.softmax(scores.masked_fill(~adj, float("-inf")), -1).nan_to_num(0.0)  # no input: 0
        ref.append(weights @ v[:, sl])
    assert torch.allclose(out, torch.cat(ref, -1), atol=1e-5)
    assert self_loops or torch.equal(out[6], torch.zeros(d))  # AutoGL's: a node nobody sends to gets 0


def test_attention_self_loops_reach_children_supernets_and_kept_models(tmp_path):
    from src.models.saved import graph_child_spec, load_child, save_child, weights_of

    arch = Architecture((Layer("attn", 0, "linear", 0, "gcn", 0, "identity"), Layer("add", 1, "sgc", 1, "zero")))
    edge_index, x = path_graph(5), torch.randn(5, 5)
    with_loops, without = child(arch), child(arch, attn_self_loops=False)
    assert with_loops.encoder.attention.self_loops and not without.encoder.attention.self_loops
    assert not torch.allclose(with_loops(x, edge_index), without(x, edge_index))  # same weights (seed 0)
    supernet = GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4, attn_self_loops=False)
    assert not supernet.encoder.attention.self_loops
    settings = dict(hidden=16, heads=4, dropout=0.0, act="tanh", attn_self_loops=False)
    save_child(tmp_path / "model.pt", weights_of(without), graph_child_spec(arch, 5, 3, **settings), {"step": 1})
    loaded, _ = load_child(tmp_path / "model.pt")
    torch.testing.assert_close(loaded(x, edge_index), without(x, edge_index), rtol=0, atol=0)
    del settings["attn_self_loops"]  # a file from before the option: self loops, as then
    save_child(tmp_path / "old.pt", weights_of(with_loops), graph_child_spec(arch, 5, 3, **settings), {"step": 1})
    old, _ = load_child(tmp_path / "old.pt")
    torch.testing.assert_close(old(x, edge_index), with_loops(x, edge_index), rtol=0, atol=0)


def test_attention_respects_edge_direction():
    edge_index = torch.tensor([[0], [1]])  # only 0 -> 1
    q, k, v = (torch.randn(2, 4) for _ in range(3))
    att = EdgeSoftmaxAttention(2)
    v2 = v.clone()
    v2[1] += 3.0
    assert torch.allclose(att(q, k, v, edge_index)[0], att(q, k, v2, edge_index)[0])  # 1 never sends to 0
    v3 = v.clone()
    v3[0] += 3.0
    assert not torch.allclose(att(q, k, v, edge_index)[1], att(q, k, v3, edge_index)[1])


def test_gat_heads_must_divide_the_width_and_identity_needs_equal_widths():
    arch = Architecture((Layer("add", 0, "gat8", 0, "zero"), Layer("add", 1, "gcn", 1, "zero")))
    with pytest.raises(AutoAttendError, match="not divisible by its 8 heads"):
        GraphNet.child(5, 3, arch, hidden=12, readout="last")
    with pytest.raises(AutoAttendError, match="identity cannot map") as err:
        GraphNet.child(5, 3, Architecture((Layer("add", 0, "identity", 0, "zero"),)), hidden=16, readout="last")
    assert "the last layer maps to the classes under readout 'last'" in str(err.value)
    # a first layer reading the raw features (no stem) is not the readout's doing
    last_ok = Layer("add", 1, "gcn", 1, "zero")
    with pytest.raises(AutoAttendError, match="identity cannot map node 0") as err:
        GraphNet.child(5, 3, Architecture((Layer("add", 0, "identity", 0, "zero"), last_ok)), hidden=16,
                       readout="last", stem="none")
    assert "readout" not in str(err.value)
    # under the linear readout the last layer keeps the hidden width, which identity maps to
    GraphNet.child(16, 3, Architecture((Layer("add", 0, "gcn", 0, "zero"), Layer("add", 1, "identity", 1, "zero"))),
                   hidden=16, readout="linear")


@pytest.mark.parametrize("kind", ["add", "attn"])
def test_class_wide_output_layer_takes_any_heads(kind):
    """Under the ``last`` readout the output layer is C wide: GAT ops average their heads (GAT's
    output layer) and an ``attn`` layer uses gcd(heads, C) heads, so C = 3 works with 8 heads."""
    last = (Layer("add", 1, "gat8", 1, "zero") if kind == "add"
            else Layer("attn", 1, "gat8", 1, "gcn", 1, "gat2"))
    arch = Architecture((Layer("add", 0, "gcn", 0, "zero"), last))
    model = GraphNet.child(5, 3, arch, hidden=16, heads=8, readout="last")
    x, edge_index = torch.randn(6, 5), path_graph(6)
    out = model(x, edge_index)
    assert out.shape == (6, 3)
    gat = model.encoder.ops["L1-q-gat8"].conv
    assert not gat.concat and gat.heads == 8 and gat.out_channels == 3
    if kind == "attn":
        assert model.encoder.layer_heads == [8, 1]
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


# ---- context-aware sharing --------------------------------------------------------------------
SPACE = FunctionalSpace(2, GRAPH_OPS)
ATTN_SAME_OP = Architecture((Layer("add", 0, "gcn", 0, "zero"), Layer("attn", 1, "gcn", 1, "gcn", 1, "gcn")))
ADD_FIRST = Architecture((Layer("add", 0, "gat4", 0, "zero"), Layer("add", 1, "sage", 1, "gcn")))
ATTN_FIRST = Architecture((Layer("attn", 0, "linear", 0, "linear", 0, "linear"), Layer("add", 1, "sage", 1, "gcn")))
ADD_SAGE = Architecture((Layer("add", 0, "gat4", 0, "zero"), Layer("add", 1, "sage", 0, "zero")))
ATTN_SAGE = Architecture((Layer("add", 0, "gat4", 0, "zero"), Layer("attn", 1, "sage", 0, "linear", 0, "linear")))


def keys(model: GraphNet, arch: Architecture) -> dict[tuple[int, str], str]:
    return {(i, slot): key for i, slot, _, _, key in model.encoder.keys_for(arch)}


@pytest.mark.parametrize("mode, kv_shared, across_src_kind, across_role", [
    ("full", False, False, False), ("source", True, False, True), ("target", False, True, False),
    ("none", True, True, True)])
def test_graph_sharing_per_mode(mode, kv_shared, across_src_kind, across_role):
    model = GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4, sharing=mode)
    # K and V of one attn layer, same op and source: one module only when the role is not keyed
    k = keys(model, ATTN_SAME_OP)
    assert (k[(1, "k")] == k[(1, "v")]) == kv_shared
    # gcn on edge 1 -> 2 as addend 2, after an add layer vs after an attn layer (source context)
    assert (keys(model, ADD_FIRST)[(1, "k")] == keys(model, ATTN_FIRST)[(1, "k")]) == across_src_kind
    # sage on edge 1 -> 2 as addend 1 vs as Q (target context), same source kind
    assert (keys(model, ADD_SAGE)[(1, "q")] == keys(model, ATTN_SAGE)[(1, "q")]) == across_role
    # and the module really is the same object when the keys agree
    a, b = keys(model, ADD_SAGE)[(1, "q")], keys(model, ATTN_SAGE)[(1, "q")]
    assert (model.encoder.ops[a] is model.encoder.ops[b]) == across_role


@pytest.mark.parametrize("mode", SHARING_MODES)
def test_graph_supernet_holds_exactly_the_reachable_modules(mode):
    model = GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4, sharing=mode)
    expected = {sharing_key(c, mode) for c in SPACE.contexts() if c.op not in ("zero", "identity")}
    assert set(model.encoder.ops) == expected == set(graph_supernet_op_keys(SPACE, mode))
    rng = random.Random(0)
    for _ in range(50):
        arch = SPACE.sample(rng)
        assert model.encoder.used_module_keys(arch) <= set(model.encoder.ops)


def test_full_sharing_builds_the_most_modules_and_none_the_fewest():
    counts = {m: len(GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4, sharing=m).encoder.ops) for m in SHARING_MODES}
    assert counts["full"] > counts["source"] > counts["none"] and counts["full"] > counts["target"] > counts["none"]


def test_child_has_its_own_module_per_op_application():
    model = GraphNet.child(5, 3, ATTN_SAME_OP, hidden=16, heads=4)
    assert set(model.encoder.ops) == {"L0-q-gcn", "L1-q-gcn", "L1-k-gcn", "L1-v-gcn"}
    assert len({id(m) for m in model.encoder.ops.values()}) == 4


@pytest.mark.parametrize("mode", SHARING_MODES)
def test_adam_step_on_one_arch_leaves_unused_parameters_bit_identical(mode):
    torch.manual_seed(0)
    model = GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4, sharing=mode, dropout=0.0)
    x, edge_index, y = torch.rand(16, 5), path_graph(8, 2), torch.randint(0, 3, (16,))
    arch = ATTN_FIRST
    used = {id(p) for p in model.used_parameters(arch).values()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=5e-4)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x, edge_index, arch), y).backward()
    with_grad = {id(p) for p in model.parameters() if p.grad is not None}
    assert all(p.requires_grad for p in model.used_parameters(arch).values())
    assert with_grad == used
    opt.step()
    for n, p in model.named_parameters():
        if id(p) in used:
            assert not torch.equal(p, before[n]), n
        else:
            assert torch.equal(p, before[n]), n


def _supernet_and_batch() -> tuple[GraphNet, dict]:
    """A small graph supernet (5 features, 3 classes, hidden 16) and a 16-node batch, every node training."""
    torch.manual_seed(0)
    model = GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4, dropout=0.0)
    n = 16
    batch = {"x": torch.rand(n, 5), "edge_index": path_graph(8, 2), "y": torch.randint(0, 3, (n,)),
             "train_mask": torch.ones(n, dtype=torch.bool), "val_mask": torch.arange(n) < 6,
             "test_mask": torch.zeros(n, dtype=torch.bool)}
    return model, batch


def test_supernet_module_single_path_step_and_scorer():
    model, batch = _supernet_and_batch()
    n = batch["x"].size(0)
    module = GraphSupernetModule(model, SPACE, archs_per_step=1, lr=0.01, monitor_archs=0)
    correct, count = graph_score_batch(False)(model.eval(), batch, ATTN_FIRST)
    assert count == 6 and 0 <= correct <= 6
    # multi-label scorer: (2 TP, 2 TP + FP + FN) -> micro-F1 of a perfect prediction is 1
    y = (torch.rand(n, 4) > 0.5).float()

    class Perfect(torch.nn.Module):
        def forward(self, x, edge_index, arch):
            return y * 2 - 1

    num, den = graph_score_batch(True)(Perfect(), {**batch, "y": y}, ATTN_FIRST)
    assert num == den > 0
    assert module.configure_optimizers().param_groups[0]["lr"] == 0.01


def test_graph_supernet_step_trains_only_the_sampled_paths_at_lr_over_archs(tmp_path):
    """One step of the graph supernet: the two architectures its seeded RNG draws are trained
    (every parameter they use, and only those, moves; weight decay too touches nothing else), by
    one Adam step at lr / archs_per_step (Adam's first step moves each element by that rate)."""
    model, batch = _supernet_and_batch()
    module = GraphSupernetModule(model, SPACE, archs_per_step=2, lr=0.01, weight_decay=5e-4, seed=3,
                                 monitor_archs=0)
    archs = SPACE.sample_distinct(2, random.Random(3))  # what the module's seeded RNG draws first
    used = {id(p) for a in archs for p in model.used_parameters(a).values()}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = pl.Trainer(max_steps=1, max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0,
                         accelerator="cpu", default_root_dir=str(tmp_path))
    trainer.fit(module, DataLoader(RepeatDataset(batch, 1), batch_size=None, generator=torch.Generator()))
    moved = []
    for name, p in model.named_parameters():
        if id(p) in used:
            moved.append((p.detach() - before[name]).abs())
        else:
            assert torch.equal(p, before[name]), name
    assert len(moved) == len(used) and all(bool((d > 0).any()) for d in moved)
    largest = max(float(d.max()) for d in moved)
    assert largest == pytest.approx(0.01 / 2, rel=1e-3)


def test_multilabel_metric_reads_logits_even_when_they_all_lie_in_0_1():
    # torchmetrics would take logits all inside [0, 1] for probabilities and threshold them at
    # 0.5; the node metric must predict a label where its logit is > 0, like the search's scorer
    logits = torch.tensor([[0.3, 0.6], [0.2, 0.9], [0.0, 0.1]])
    y = torch.tensor([[1, 1], [1, 1], [0, 1]])
    metric = node_metric(2, multilabel=True)
    metric.update(logits, y)

    class Fixed(torch.nn.Module):
        def forward(self, x, edge_index, arch):
            return logits

    batch = {"x": torch.zeros(3, 1), "edge_index": path_graph(3, 1), "y": y.float(),
             "val_mask": torch.ones(3, dtype=torch.bool)}
    num, den = graph_score_batch(True)(Fixed(), batch, ATTN_FIRST)
    assert num / den == 1.0
    assert metric.compute().item() == 1.0
    # and an ordinary update still counts errors: one false negative of five positives
    metric.reset()
    metric.update(torch.tensor([[2.0, -3.0], [1.5, 4.0], [-1.0, 0.5]]), y)
    assert metric.compute().item() == pytest.approx(2 * 4 / (2 * 4 + 1))


# ---- fast paths equal the straightforward ones ----------------------------------------------

def _sparse_features(n: int, f: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dense = (torch.rand(n, f, generator=g) < 0.2).float() * torch.rand(n, f, generator=g)
    return dense, dense.to_sparse_coo().coalesce()


def test_sparse_linear_matches_dense_in_values_and_gradients():
    dense, sparse = _sparse_features(40, 25)
    torch.manual_seed(0)
    w, b = torch.randn(7, 25, requires_grad=True), torch.randn(7, requires_grad=True)
    g = torch.randn(40, 7)
    out = sparse_linear(sparse, w, b)
    out.backward(g)
    grads = w.grad.clone(), b.grad.clone()
    w.grad = b.grad = None
    ref = torch.nn.functional.linear(dense, w, b)
    ref.backward(g)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(grads[0], w.grad, atol=1e-6) and torch.allclose(grads[1], b.grad, atol=1e-6)
    # a different pattern of the same size is not confused with the cached one
    dense2, sparse2 = _sparse_features(40, 25, seed=1)
    assert torch.allclose(sparse_linear(sparse2, w), dense2 @ w.t(), atol=1e-6)
    # nor one with the same shape and the same number of stored values (the rows permuted): the
    # cache is keyed by the index storage, a key of shape and count alone would reuse the first's
    dense3 = dense[torch.randperm(40, generator=torch.Generator().manual_seed(2))]
    sparse3 = dense3.to_sparse_coo().coalesce()
    assert sparse3._nnz() == sparse._nnz() and not torch.equal(dense3, dense)
    assert torch.allclose(sparse_linear(sparse3, w), dense3 @ w.t(), atol=1e-6)


@pytest.mark.parametrize("op", ["gcn", "gat4", "linear"])
def test_linear_first_ops_take_sparse_features_like_dense_ones(op):
    dense, sparse = _sparse_features(16, 5)
    edge_index = path_graph(8, 2)
    model = child(Architecture((Layer("add", 0, op, 0, "zero"),)))
    assert model.stem is None  # linear-first ops read the raw features
    out_sparse = model(sparse, edge_index)
    out_sparse.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    out_dense = model(dense, edge_index)
    out_dense.sum().backward()
    assert torch.allclose(out_sparse, out_dense, atol=1e-5)
    assert grads and all(torch.allclose(grads[n], p.grad, atol=1e-5) for n, p in model.named_parameters() if n in grads)


@pytest.mark.parametrize("arch", [
    Architecture((Layer("add", 0, "gcn", 0, "zero"), Layer("attn", 1, "gcn", 1, "gcn", 0, "zero"))),
    Architecture((Layer("add", 0, "zero", 0, "zero"), Layer("add", 1, "linear", 0, "gcn"))),
])
def test_a_zero_op_on_sparse_features_is_dense_zeros(arch):
    """A ``zero`` op (or an ``add`` of two) in a child reading Planetoid's sparse features made
    sparse zeros (``new_zeros`` keeps the layout) and the attention's ``view`` failed on them."""
    dense, sparse = _sparse_features(16, 5)
    edge_index = path_graph(8, 2)
    model = child(arch)
    assert model.stem is None
    assert torch.allclose(model(sparse, edge_index), model(dense, edge_index), atol=1e-5)


def test_gcn_normalisation_cache_follows_the_graph():
    x = torch.rand(16, 5)
    model = child(Architecture((Layer("add", 0, "gcn", 0, "zero"),)))
    first, other = path_graph(8, 2), path_graph(16, 1)
    a = model(x, first)
    b = model(x, other)  # another graph: the cached normalisation must not be reused
    fresh = child(Architecture((Layer("add", 0, "gcn", 0, "zero"),)))
    assert torch.allclose(b, fresh(x, other), atol=1e-6) and not torch.allclose(a, b)
    assert torch.allclose(model(x, first), fresh(x, first), atol=1e-6)


def _tiny_batch(n: int = 24) -> dict:
    dense, sparse = _sparse_features(n, 5, seed=3)
    g = torch.Generator().manual_seed(4)
    return {"x": sparse, "edge_index": path_graph(n // 2, 2), "y": torch.randint(0, 3, (n,), generator=g),
            "train_mask": torch.arange(n) % 3 == 0, "val_mask": torch.arange(n) % 3 == 1,
            "test_mask": torch.arange(n) % 3 == 2}


def _child_module(arch: Architecture) -> GraphChildModule:
    torch.manual_seed(0)
    model = GraphNet.child(5, 3, arch, hidden=16, heads=4, dropout=0.5, attn_dropout=0.3, act="elu")
    return GraphChildModule(model, lr=0.01, weight_decay=5e-4)


@pytest.mark.parametrize("arch", [ATTN_FIRST, Architecture((Layer("add", 0, "gat4", 0, "zero"),
                                                            Layer("add", 1, "gcn", 0, "sage")))])
def test_plain_full_batch_loop_equals_the_trainer(arch, tmp_path):
    """GraphChildModule.fit_full_batch (the pipeline's path) gives the Trainer's history exactly:
    same steps, same dropout draws, same validation and test scores."""
    batch = _tiny_batch()
    torch.manual_seed(123)
    fast = _child_module(arch)
    torch.manual_seed(7)
    fast.fit_full_batch(batch, epochs=12, eval_every=3)
    torch.manual_seed(123)
    slow = _child_module(arch)
    torch.manual_seed(7)
    trainer = pl.Trainer(max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
                         default_root_dir=str(tmp_path))
    # own generators: a DataLoader iterator otherwise draws its base seed from the global RNG
    # (the only difference between the paths: the same dropout distribution, other draws)
    trainer.fit(slow, DataLoader(RepeatDataset(batch, 3), batch_size=None, generator=torch.Generator()),
                DataLoader(ListDataset([batch]), batch_size=None, generator=torch.Generator()))
    assert [h["step"] for h in fast.history] == [3, 6, 9, 12]
    assert fast.history == slow.history
    for p, q in zip(fast.model.parameters(), slow.model.parameters()):
        assert torch.equal(p, q)


def test_early_stopping_keeps_the_selected_evaluation():
    batch = _tiny_batch()
    full = _child_module(ATTN_FIRST)
    torch.manual_seed(7)
    full.fit_full_batch(batch, epochs=60)
    stopped = _child_module(ATTN_FIRST)
    torch.manual_seed(7)
    stopped.fit_full_batch(batch, epochs=60, patience=5)
    best = stopped.selected()
    assert stopped.history == full.history[:len(stopped.history)]
    assert stopped.history[-1]["step"] == min(60, best["step"] + 5)
    # nothing in the first `step + patience` evaluations beats what was selected
    assert max(full.history[:best["step"] + 5], key=selection_key) == best


def test_selection_breaks_accuracy_ties_by_validation_loss():
    history = [{"step": 1, "val_loss": 0.9, "val_acc": 0.8, "test_acc": 0.1},
               {"step": 2, "val_loss": 0.5, "val_acc": 0.8, "test_acc": 0.2},
               {"step": 3, "val_loss": 0.4, "val_acc": 0.7, "test_acc": 0.3},
               {"step": 4, "val_loss": 0.5, "val_acc": 0.8, "test_acc": 0.4}]
    assert max(history, key=selection_key)["step"] == 2


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_activation_after_the_layer_or_on_each_op(act):
    """``act_at="layer"``: act(o1 + o2) and act(attention(Q, K, V)); ``act_at="op"`` (AutoGL's):
    act(o1) + act(o2) and attention(act(Q), act(K), act(V)), computed here from the child's own op
    modules; the class-wide last layer of the ``last`` readout gets no activation either way, so
    GCN's and GAT's two layers (second addend ``zero``) give the same logits in both placements."""
    edge_index = path_graph(6, components=2)
    x = torch.randn(12, 5)
    arch = Architecture((Layer("add", 0, "gcn", 0, "linear"), Layer("attn", 1, "linear", 0, "sage", 0, "gat2")))
    f = {"tanh": torch.tanh, "relu": torch.relu}[act]
    with torch.no_grad():
        for act_at in ("layer", "op"):
            model = child(arch, act=act, act_at=act_at)
            enc, stem = model.encoder, model.stem
            x0 = stem(x) if stem is not None else x
            (_, _, _, _, k_q0), (_, _, _, _, k_k0), (_, _, _, _, k_q1), (_, _, _, _, k_k1), (_, _, _, _, k_v1) = \
                enc.keys_for(arch)
            o1, o2 = enc.ops[k_q0](x0, edge_index), enc.ops[k_k0](x0, edge_index)
            x1 = f(o1 + o2) if act_at == "layer" else f(o1) + f(o2)
            q, k, v = enc.ops[k_q1](x1, edge_index), enc.ops[k_k1](x0, edge_index), enc.ops[k_v1](x0, edge_index)
            if act_at == "op":
                q, k, v = f(q), f(k), f(v)
            x2 = enc.attention(q, k, v, edge_index, enc.layer_heads[1])
            x2 = f(x2) if act_at == "layer" else x2
            expected = model.classifier(x2)
            torch.testing.assert_close(model(x, edge_index), expected, rtol=1e-5, atol=1e-6)
        layer, op = child(arch, act=act), child(arch, act=act, act_at="op")
        assert not torch.allclose(layer(x, edge_index), op(x, edge_index), atol=1e-3)
        for name in ("gcn", "gat"):
            baseline = Architecture.load(ROOT / f"src/space/archs/{name}.yaml")
            logits = [child(baseline, act=act, act_at=at, readout="last", stem="none")(x, edge_index)
                      for at in ("layer", "op")]
            torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0)
    with pytest.raises(AutoAttendError, match="act_at must be one of"):
        child(arch, act_at="sum")


def test_a_kept_model_remembers_where_its_activation_goes(tmp_path):
    from src.models.saved import graph_child_spec, load_child, save_child, weights_of

    arch = Architecture((Layer("add", 0, "gcn", 0, "linear"), Layer("add", 1, "sgc", 1, "identity")))
    edge_index, x = path_graph(5), torch.randn(5, 5)
    model = child(arch, act_at="op")
    settings = dict(hidden=16, heads=4, dropout=0.0, act="tanh", act_at="op")
    save_child(tmp_path / "model.pt", weights_of(model), graph_child_spec(arch, 5, 3, **settings), {"step": 1})
    loaded, _ = load_child(tmp_path / "model.pt")
    torch.testing.assert_close(loaded(x, edge_index), model(x, edge_index), rtol=0, atol=0)
    del settings["act_at"]  # a file from before the option: the placement of that time, after the layer
    save_child(tmp_path / "old.pt", weights_of(model), graph_child_spec(arch, 5, 3, **settings), {"step": 1})
    old, _ = load_child(tmp_path / "old.pt")
    torch.testing.assert_close(old(x, edge_index), child(arch)(x, edge_index), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sparse_linear_under_autocast(dtype):
    """``hardware.precision=bf16-mixed`` / ``16-mixed`` (Lightning's autocast): the sparse product
    runs in float32 (the CPU has no half-precision CSR product; on CUDA a half-precision forward
    left a backward of float32 values by a half-precision gradient), forward and backward, with
    the values and gradients of the float32 product."""
    dense, sparse = _sparse_features(40, 25)
    torch.manual_seed(0)
    w = torch.randn(7, 25, requires_grad=True)
    ref = sparse_linear(sparse, w)
    ref.sum().backward()
    ref_grad, w.grad = w.grad.clone(), None
    with torch.autocast("cpu", dtype=dtype):
        out = sparse_linear(sparse, w)
    out.sum().backward()
    assert out.dtype == torch.float32 and torch.equal(out, ref) and torch.equal(w.grad, ref_grad)


def test_a_repeated_graph_batch_is_copied_to_the_device_once(monkeypatch):
    import lightning.pytorch as pl

    copies = []

    def copy(self, batch, device, dataloader_idx):
        copies.append(device)
        return {k: v.clone() for k, v in batch.items()}

    monkeypatch.setattr(pl.LightningModule, "transfer_batch_to_device", copy)
    module = GraphSupernetModule(GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4), SPACE, monitor_archs=0)
    graph, other = {"x": torch.rand(4, 5)}, {"x": torch.rand(4, 5)}
    gpu = torch.device("meta")  # stands for a GPU: any device but the CPU
    first = module.transfer_batch_to_device(graph, gpu, 0)
    assert module.transfer_batch_to_device(graph, gpu, 0) is first and len(copies) == 1
    assert module.transfer_batch_to_device(other, gpu, 0) is not first and len(copies) == 2  # another batch
    module.transfer_batch_to_device(graph, torch.device("cpu"), 0)
    module.transfer_batch_to_device(graph, torch.device("cpu"), 0)
    assert len(copies) == 4  # on the CPU Lightning's own (a no-op copy) every time


# ---- mutation audit of the models (2026-12-05): dropout placement, readout, stem, ops' settings --

def _dropout_calls(monkeypatch, model: GraphNet, x: torch.Tensor, edge_index: torch.Tensor,
                   arch: Architecture | None = None) -> list[tuple[tuple, float, bool]]:
    """``(shape, p, training)`` of every dropout one forward of ``model`` asks for (stem, ops,
    attention weights, classifier input), in order."""
    import src.models.graph as graph

    calls, real = [], graph.fast_dropout

    def record(t, p, training=True, *args, **kwargs):
        calls.append((tuple(t.shape), p, training))
        return real(t, p, training, *args, **kwargs)

    monkeypatch.setattr(graph, "fast_dropout", record)
    model(x, edge_index, arch)
    monkeypatch.setattr(graph, "fast_dropout", real)
    return calls


def test_dropout_falls_where_the_module_docstring_says(monkeypatch):
    """Training: the stem drops the features, ops reading the stem's output do not drop it again,
    ops reading a hidden node (or a stem-free child's raw features) drop their input, attention
    weights get ``attn_dropout`` and the classifier's input ``dropout``. Evaluation: none of it."""
    x, edge_index = torch.rand(16, 5), path_graph(8, 2)
    torch.manual_seed(0)
    supernet = GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4, dropout=0.6, attn_dropout=0.3).train()
    # ATTN_FIRST: attn layer over three linear ops reading node 0, then sage + gcn reading node 1
    calls = _dropout_calls(monkeypatch, supernet, x, edge_index, ATTN_FIRST)
    assert calls[0] == ((16, 5), 0.6, True)  # the stem, on the features
    assert calls[-1] == ((16, 16), 0.6, True)  # the classifier's input
    assert sorted(p for _, p, _ in calls) == [0.0, 0.0, 0.0, 0.3, 0.6, 0.6, 0.6, 0.6]
    # a stem-free child: gat4 reads the raw features and drops them itself
    torch.manual_seed(0)
    model = GraphNet.child(5, 3, ADD_FIRST, hidden=16, heads=4, dropout=0.6, attn_dropout=0.3).train()
    assert model.stem is None
    calls = _dropout_calls(monkeypatch, model, x, edge_index)
    assert calls[0] == ((16, 5), 0.6, True) and calls[-1] == ((16, 16), 0.6, True)
    assert [p for _, p, _ in calls] == [0.6] * 4  # gat4, sage, gcn, classifier
    # evaluation: the same modules, no draw; the logits are those of the same weights without dropout
    for net, arch, build in ((supernet, ATTN_FIRST, lambda p, a: GraphNet.supernet(5, 3, SPACE, hidden=16, heads=4,
                                                                                 dropout=p, attn_dropout=a)),
                             (model, None, lambda p, a: GraphNet.child(5, 3, ADD_FIRST, hidden=16, heads=4,
                                                                        dropout=p, attn_dropout=a))):
        net.eval()
        assert all(not training for _, _, training in _dropout_calls(monkeypatch, net, x, edge_index, arch))
        torch.manual_seed(0)
        plain = build(0.0, 0.0).eval()
        with torch.no_grad():
            torch.testing.assert_close(net(x, edge_index, arch), plain(x, edge_index, arch), rtol=0, atol=0)


def test_the_class_wide_last_layer_of_the_last_readout_is_not_activated():
    """Under ``readout="last"`` the last layer's ops give the logits: no activation follows them
    (GCN's output layer; with tanh every logit would lie in (-1, 1))."""
    x, edge_index = torch.randn(12, 5), path_graph(6, 2)
    model = child(Architecture.load(ROOT / "src/space/archs/gcn.yaml"), readout="last", stem="none")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
        enc = model.encoder
        (_, _, _, _, first), (_, _, _, _, second) = [k for k in enc.keys_for(model.arch) if k[3] != "zero"]
        expected = enc.ops[second](torch.tanh(enc.ops[first](x, edge_index)), edge_index)
        logits = model(x, edge_index)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-6)
    assert logits.abs().max() > 1.0


def test_a_child_needs_a_stem_only_for_what_reads_node_0():
    """``stem="auto"``: a sage op reading a hidden node does not need one (only node 0's readers count)."""
    later = Architecture((Layer("add", 0, "gcn", 0, "zero"), Layer("add", 1, "sage", 1, "zero")))
    assert GraphNet.child(5, 3, later, hidden=16, heads=4).stem is None
    first = Architecture((Layer("add", 0, "sage", 0, "zero"), Layer("add", 1, "gcn", 1, "zero")))
    assert GraphNet.child(5, 3, first, hidden=16, heads=4).stem is not None


def test_sage_averages_its_in_neighbours():
    """``sage`` is GraphSAGE with the mean aggregator: ``lin_l(mean_j x_j) + lin_r(x_i)``."""
    from src.models.graph import GraphOp

    torch.manual_seed(0)
    op = GraphOp("sage", 4, 3, 0.0, 0.0).eval()
    x = torch.randn(4, 4)
    edge_index = torch.tensor([[1, 2, 3, 0], [0, 0, 0, 1]])  # 1, 2, 3 -> 0 and 0 -> 1
    with torch.no_grad():
        out = op(x, edge_index)
        expected0 = op.conv.lin_l(x[1:].mean(0)) + op.conv.lin_r(x[0])
    torch.testing.assert_close(out[0], expected0, rtol=1e-5, atol=1e-6)


def test_sgc_propagates_sgc_k_steps():
    n = 8
    x, edge_index = torch.rand(n, 5), path_graph(n)
    model = child(Architecture((Layer("add", 0, "sgc", 0, "zero"),)), sgc_k=3)
    with torch.no_grad():
        base = model(x, edge_index)[0]
        for u, reached in ((3, True), (4, False)):
            x2 = x.clone()
            x2[u] += 1.0
            assert (not torch.allclose(model(x2, edge_index)[0], base, atol=1e-6)) == reached, u


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sgc_op_with_its_normalisation_cached_computes_what_pygs_sgconv_computes(dtype, monkeypatch):
    """The SGC op normalises the adjacency once per graph (PyG's ``SGConv`` does it on every call):
    the same output and gradients bit for bit, on a second graph too (the
    cache follows the graph, and the dtype), and one normalisation for repeated calls."""
    from torch_geometric.nn import SGConv

    import src.models.graph as graph

    from src.models.graph import GraphOp

    torch.manual_seed(0)
    op = GraphOp("sgc", 6, 4, dropout=0.0, attn_dropout=0.0, sgc_k=2).to(dtype)
    reference = SGConv(6, 4, K=2).to(dtype)
    reference.load_state_dict(op.conv.state_dict())
    calls = []
    real_norm = graph.gcn_norm
    monkeypatch.setattr(graph, "gcn_norm", lambda *a, **k: calls.append(1) or real_norm(*a, **k))
    g = torch.Generator().manual_seed(1)
    graphs = [path_graph(5, components=2), torch.randint(0, 10, (2, 30), generator=g)]
    for edge_index in graphs:
        for _ in range(2):  # the second call reads the cached normalisation
            x = torch.randn(10, 6, dtype=dtype, generator=g)
            x_ref = x.clone().requires_grad_(True)
            x.requires_grad_(True)
            out, expected = op(x, edge_index), reference(x_ref, edge_index)
            assert torch.equal(out, expected)
            out.square().sum().backward()
            expected.square().sum().backward()
            assert torch.equal(x.grad, x_ref.grad)
            for (name, p), q in zip(op.conv.named_parameters(), reference.parameters()):
                assert torch.equal(p.grad, q.grad), name
            op.zero_grad()
            reference.zero_grad()
    assert len(calls) == 2  # once per graph
    with torch.no_grad():  # another dtype: normalised again, in that dtype
        other = torch.float64 if dtype == torch.float32 else torch.float32
        x = torch.randn(10, 6, generator=g)
        assert torch.equal(op.to(other)(x.to(other), graphs[1]), reference.to(other)(x.to(other), graphs[1]))
    assert len(calls) == 3


@pytest.mark.parametrize("op_name", ["gcn", "sgc", "sage", "arma", "cheb", "gat1"])
def test_a_normalisation_cached_in_inference_mode_is_made_again_for_training(op_name):
    """GCN, SGC, ARMA and Chebyshev cache their adjacency's normalisation per graph, GAT its edges
    with self loops, and all of them and SAGE the propagate kernel's CSR view (SAGE with its in-degrees). One made under
    ``torch.inference_mode`` (an op whose first call was an evaluation) made the next training step
    on the same graph raise "Inference tensors cannot be saved for backward"; it is made again
    then, and the results are those of a module that never evaluated."""
    from src.models.graph import GraphOp

    edge_index = path_graph(6)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    evaluated_first = GraphOp(op_name, 4, 3, dropout=0.0, attn_dropout=0.0)
    torch.manual_seed(0)
    trained_only = GraphOp(op_name, 4, 3, dropout=0.0, attn_dropout=0.0)
    with torch.inference_mode():
        evaluated = evaluated_first(x, edge_index)
    outs = []
    for op in (evaluated_first, trained_only):
        out = op(x, edge_index)
        out.square().sum().backward()
        outs.append((out.detach(), [p.grad.clone() for p in op.parameters() if p.requires_grad]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][0], evaluated)
    assert all(torch.equal(a, b) for a, b in zip(outs[0][1], outs[1][1]))
    with torch.inference_mode():  # evaluating again reads the training-made normalisation
        assert torch.equal(evaluated_first(x, edge_index), evaluated)


def awkward_graph(n: int, edges: int, seed: int) -> torch.Tensor:
    """Random edges in random order with repeated edges, self loops and nodes without in-edges."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n - 2, (2, edges), generator=g)  # the last two nodes get no edge
    edge_index = torch.cat([edge_index, edge_index[:, :7], torch.arange(3).repeat(2, 1)], dim=1)
    return edge_index[:, torch.randperm(edge_index.size(1), generator=g)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("op_name", ["gcn", "sgc", "sage", "arma", "cheb"])
@pytest.mark.parametrize("kernels", ["auto", "torch"])
def test_propagating_ops_compute_pygs_convolutions_bit_for_bit(op_name, kernels, dtype, monkeypatch):
    """GCN, SGC, SAGE, ARMA and Chebyshev sum their neighbours with the propagate kernel (on CPU
    float tensors, unless ``hardware.kernels=torch``), with their normalisations made once per
    graph: the same outputs and every gradient bit for bit as PyG's ``GCNConv``, ``SGConv``,
    ``SAGEConv``, ``ARMAConv`` and ``ChebConv``, on features whose rows differ by twelve orders of
    magnitude (so the order of the sums shows), on one thread and two; the CSR view is made
    once per graph."""
    from torch import nn
    from torch_geometric.nn import ARMAConv, ChebConv, GCNConv, SAGEConv, SGConv

    import src.models.graph as graph
    from src.models import cpu_kernels

    if kernels == "auto" and cpu_kernels.kernel_error() is not None:
        pytest.skip(f"the fused CPU kernels cannot be built here: {cpu_kernels.kernel_error()}")
    monkeypatch.setattr(cpu_kernels, "_backend", kernels)
    calls, builds = [], []
    real_apply, real_init = graph._GatherSum.apply, graph.EdgeCsr.__init__
    monkeypatch.setattr(graph._GatherSum, "apply", lambda *a: calls.append(1) or real_apply(*a))
    monkeypatch.setattr(graph.EdgeCsr, "__init__", lambda self, *a: builds.append(1) or real_init(self, *a))
    torch.manual_seed(0)
    op = graph.GraphOp(op_name, 12, 9, dropout=0.0, attn_dropout=0.0).to(dtype)
    reference = {"gcn": lambda: GCNConv(12, 9), "sgc": lambda: SGConv(12, 9, K=2),
                 "sage": lambda: SAGEConv(12, 9, aggr="mean"), "cheb": lambda: ChebConv(12, 9, K=2),
                 "arma": lambda: ARMAConv(12, 9, num_stacks=1, num_layers=1, act=nn.ReLU())}[op_name]().to(dtype)
    reference.load_state_dict(op.conv.state_dict())
    g = torch.Generator().manual_seed(2)
    n = 60
    graphs = [awkward_graph(n, 400, seed=3), awkward_graph(n, 250, seed=4)]
    scale = torch.logspace(-6, 6, n, dtype=dtype)[torch.randperm(n, generator=g)].unsqueeze(1)
    threads = torch.get_num_threads()
    try:
        for edge_index in graphs:
            for thread_count in (1, 2):
                torch.set_num_threads(thread_count)
                x = torch.randn(n, 12, dtype=dtype, generator=g) * scale
                x_ref = x.clone().requires_grad_(True)
                x.requires_grad_(True)
                out, expected = op(x, edge_index), reference(x_ref, edge_index)
                assert torch.equal(out, expected)
                upstream = torch.randn(out.shape, dtype=dtype, generator=g) * 1e3
                out.backward(upstream)
                expected.backward(upstream)
                assert torch.equal(x.grad, x_ref.grad)
                for (name, p), q in zip(op.conv.named_parameters(), reference.parameters()):
                    assert (p.grad is None) == (q.grad is None) and (p.grad is None or torch.equal(p.grad, q.grad)), name
                op.zero_grad()
                reference.zero_grad()
    finally:
        torch.set_num_threads(threads)
    steps = {"sgc": 2}.get(op_name, 1)
    assert len(calls) == (2 * 2 * steps if kernels == "auto" else 0)
    assert len(builds) == (2 if kernels == "auto" else 0)  # once per graph


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layer", ["gat4", "gat4_averaged", "attention"])
@pytest.mark.parametrize("kernels", ["auto", "torch"])
def test_edge_attention_sums_compute_pygs_path_bit_for_bit(layer, kernels, dtype, monkeypatch):
    """GAT and the edge-softmax attention sum ``alpha * x_j`` over in-edges with the propagate
    kernel, weights per edge and head, take their softmax's maximum and sum from it, and add their
    self loops once per graph: the same outputs
    and every gradient bit for bit as PyG's ``GATConv`` and as the attention's ``propagate`` (with
    attention dropout, drawn the same), on one thread and two, twice on each graph (the second
    call reads what the first cached)."""
    from torch_geometric.nn import GATConv

    import src.models.graph as graph
    from src.models import cpu_kernels

    if kernels == "auto" and cpu_kernels.kernel_error() is not None:
        pytest.skip(f"the fused CPU kernels cannot be built here: {cpu_kernels.kernel_error()}")
    monkeypatch.setattr(cpu_kernels, "_backend", kernels)
    calls, softmaxes = [], []
    real_apply, real_softmax = graph._HeadGatherSum.apply, graph.edge_softmax
    monkeypatch.setattr(graph._HeadGatherSum, "apply", lambda *a: calls.append(1) or real_apply(*a))
    monkeypatch.setattr(graph, "edge_softmax", lambda *a: softmaxes.append(1) or real_softmax(*a))
    torch.manual_seed(0)
    if layer == "attention":
        ours = graph.EdgeSoftmaxAttention(heads=4, attn_dropout=0.3).to(dtype).train()
        reference = graph.EdgeSoftmaxAttention(heads=4, attn_dropout=0.3).to(dtype).train()
        real_use_kernel = graph.use_kernel
        monkeypatch.setattr(graph, "use_kernel", lambda x: False if x.data_ptr() in pyg_inputs else real_use_kernel(x))
    else:
        ours = graph.GraphOp("gat4", 12, 8, dropout=0.0, attn_dropout=0.3,
                             average_heads=layer == "gat4_averaged").to(dtype).train()
        reference = GATConv(12, 8 if layer == "gat4_averaged" else 2, heads=4, concat=layer == "gat4",
                            dropout=0.3).to(dtype).train()
        reference.load_state_dict(ours.conv.state_dict())
    g = torch.Generator().manual_seed(5)
    n = 60
    scale = torch.logspace(-4, 4, n, dtype=dtype)[torch.randperm(n, generator=g)].unsqueeze(1)
    threads = torch.get_num_threads()
    try:
        for edge_index in (awkward_graph(n, 400, seed=6), awkward_graph(n, 250, seed=7)):
            for thread_count in (1, 2, 2):
                torch.set_num_threads(thread_count)
                if layer == "attention":
                    inputs = [torch.randn(n, 8, dtype=dtype, generator=g) * scale for _ in range(3)]
                else:
                    inputs = [torch.randn(n, 12, dtype=dtype, generator=g) * scale]
                mine = [t.clone().requires_grad_(True) for t in inputs]
                theirs = [t.clone().requires_grad_(True) for t in inputs]
                pyg_inputs = {t.data_ptr() for t in theirs}
                torch.manual_seed(11)
                out = ours(*mine, edge_index)
                if layer == "attention":  # the views the attention hands on, to find them in use_kernel
                    pyg_inputs = {t.data_ptr() for t in theirs}
                torch.manual_seed(11)
                expected = reference(*theirs, edge_index)
                assert torch.equal(out, expected)
                upstream = torch.randn(out.shape, dtype=dtype, generator=g)
                out.backward(upstream)
                expected.backward(upstream)
                for a, b in zip(mine, theirs):
                    assert torch.equal(a.grad, b.grad)
                for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
                    assert torch.equal(p.grad, q.grad), name
                ours.zero_grad()
                reference.zero_grad()
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == len(softmaxes) == (6 if kernels == "auto" else 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_softmax_kernels_give_torchs_maximum_sum_and_products(dtype, monkeypatch):
    """``segment_max`` is ``scatter_reduce_(..., "amax", include_self=False)`` on zeros (a NaN wins,
    of +0 and -0 the first stays, a node without in-edges gets 0), the kernel's per-node sum is
    ``scatter_add_``'s (values twelve orders of magnitude apart, so the order shows) and
    ``edge_products`` is ``a[ia] * b[ib]``: equal bit for bit, NaNs in the same places."""
    import src.models.graph as graph
    from src.models import cpu_kernels

    monkeypatch.setattr(cpu_kernels, "_backend", "auto")  # whatever an earlier test in this process chose
    if cpu_kernels.kernel_error() is not None:
        pytest.skip(f"the fused CPU kernels cannot be built here: {cpu_kernels.kernel_error()}")
    g = torch.Generator().manual_seed(12)
    n, heads = 40, 3
    edge_index = awkward_graph(n, 300, seed=13)
    e = edge_index.size(1)
    target = edge_index[1]
    scores = torch.randn(e, heads, dtype=dtype, generator=g) * torch.logspace(-6, 6, e, dtype=dtype)[
        torch.randperm(e, generator=g)].unsqueeze(1)
    scores[5, 0], scores[9, 1] = float("nan"), float("-inf")
    first = int((target == target[20]).nonzero()[0])  # +0 then -0 at one node: the first is kept
    scores[first, 2] = 0.0
    scores[target == target[20], 2] = torch.where(torch.arange(e)[target == target[20]] == first, 0.0, -0.0).to(dtype)
    csr = graph.EdgeCsr(edge_index, None, n)
    expected = torch.zeros(n, heads, dtype=dtype).scatter_reduce_(0, target.unsqueeze(1).expand(e, heads), scores,
                                                                  "amax", include_self=False)
    peak = torch.ops.autoattend.segment_max(scores, csr.rowptr, csr.by_target)
    assert torch.equal(peak.isnan(), expected.isnan()) and expected.isnan().any()
    assert torch.equal(peak.nan_to_num(), expected.nan_to_num())
    assert torch.equal(peak.signbit(), expected.signbit()) and peak[n - 1].eq(0).all()
    values = scores.nan_to_num(0.0, 0.0, 0.0)
    summed = graph._SegmentSum.apply(values, csr)
    assert torch.equal(summed, torch.zeros(n, heads, dtype=dtype).index_add_(0, target, values))
    assert torch.equal(summed, torch.zeros(n, heads, dtype=dtype).scatter_add_(
        0, target.unsqueeze(1).expand(e, heads), values))
    a, b = (torch.randn(n, 8, dtype=dtype, generator=g) for _ in range(2))
    products = torch.ops.autoattend.edge_products(a, b, target, edge_index[0])
    assert torch.equal(products, a.index_select(0, target) * b.index_select(0, edge_index[0]))


def test_the_attention_made_its_graph_in_inference_mode_and_then_trains():
    """The edge-softmax attention keeps its edges with self loops (and their CSR view) per graph;
    ones made under ``torch.inference_mode`` are made again for training, with the results of a
    module that never evaluated."""
    edge_index = path_graph(6)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(6, 8, generator=g) for _ in range(3))
    evaluated_first, trained_only = EdgeSoftmaxAttention(heads=2), EdgeSoftmaxAttention(heads=2)
    with torch.inference_mode():
        evaluated = evaluated_first(q, k, v, edge_index)
    results = []
    for attention in (evaluated_first, trained_only):
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        out = attention(*leaves, edge_index)
        out.square().sum().backward()
        results.append((out.detach(), [t.grad for t in leaves]))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][0], evaluated)
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def test_what_ops_derive_from_a_graph_is_made_once_for_all_of_them_and_goes_with_the_graph(monkeypatch):
    """Normalisations, edges with self loops and CSR views are made once per graph however many op
    modules read it (a supernet has about 140), and dropped when the graph's edge tensor is (a
    mini-batch that has gone holds no memory): the same outputs as each op alone."""
    import gc

    import src.models.graph as graph
    from src.models import cpu_kernels

    monkeypatch.setattr(cpu_kernels, "_backend", "auto")  # whatever an earlier test in this process chose
    made = []
    real_norm, real_init = graph.gcn_norm, graph.EdgeCsr.__init__
    monkeypatch.setattr(graph, "gcn_norm", lambda *a, **k: made.append("gcn_norm") or real_norm(*a, **k))
    monkeypatch.setattr(graph.EdgeCsr, "__init__", lambda self, *a: made.append("csr") or real_init(self, *a))
    torch.manual_seed(0)
    ops = [graph.GraphOp(name, 6, 4, 0.0, 0.0) for name in ("gcn", "gcn", "sgc", "gat2", "gat4", "sage", "arma", "cheb")]
    attention = graph.EdgeSoftmaxAttention(heads=2)
    edge_index = awkward_graph(30, 120, seed=8)
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        outs = [op(x, edge_index) for op in ops] + [attention(x[:, :4], x[:, 2:], x[:, 1:5], edge_index)]
        again = [op(x, edge_index) for op in ops] + [attention(x[:, :4], x[:, 2:], x[:, 1:5], edge_index)]
    assert all(torch.equal(a, b) for a, b in zip(outs, again))
    assert made.count("gcn_norm") == 2  # gcn twice and sgc: one normalisation; arma's without self loops
    # CSR views: gcn's normalisation, arma's, cheb's, the graph with self loops (gat2, gat4 and the
    # attention), the graph itself (sage)
    assert made.count("csr") == (5 if cpu_kernels.kernel_error() is None else 0)
    slot = id(edge_index)
    assert slot in graph._DERIVED
    del edge_index
    gc.collect()
    assert slot not in graph._DERIVED


def test_the_propagate_kernel_refuses_an_edge_outside_the_graph(monkeypatch):
    """An edge to a node the features do not have: one clear error (PyG's path raised an
    IndexError from inside its gather)."""
    from src.models import cpu_kernels
    from src.models.graph import EdgeCsr, GraphOp

    monkeypatch.setattr(cpu_kernels, "_backend", "auto")  # whatever an earlier test in this process chose

    with pytest.raises(AutoAttendError, match=r"edge_index refers to nodes outside 0\.\.4"):
        EdgeCsr(torch.tensor([[0, 5], [1, 2]]), None, 5)
    if cpu_kernels.kernel_error() is None:
        with pytest.raises(AutoAttendError, match="outside 0..3"):
            GraphOp("sage", 3, 2, 0.0, 0.0)(torch.randn(4, 3), torch.tensor([[0, 4], [1, 1]]))


# ---- mutation audit (2026-12-05): the graph LightningModules -----------------------------------

def test_node_loss_reads_only_the_masked_nodes():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(10, 3, generator=g), torch.randint(0, 3, (10,), generator=g)
    mask = torch.arange(10) % 3 == 0
    from src.lit.graph_modules import node_loss

    assert node_loss(logits, y, mask, False) == torch.nn.functional.cross_entropy(logits[mask], y[mask])
    assert node_loss(logits, y, mask, False) != torch.nn.functional.cross_entropy(logits, y)
    labels = (torch.rand(10, 4, generator=g) > 0.5).float()
    multi = torch.randn(10, 4, generator=g)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(multi[mask], labels[mask])
    assert node_loss(multi, labels, mask, True) == expected
    assert expected != torch.nn.functional.binary_cross_entropy_with_logits(multi, labels)


def test_multilabel_scorer_counts_false_negatives_and_false_positives():
    """(2 TP, 2 TP + FP + FN): one true positive, one false positive, two false negatives -> 2 / 5."""
    y = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    logits = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])

    class Fixed(torch.nn.Module):
        def forward(self, x, edge_index, arch):
            return logits

    batch = {"x": torch.zeros(3, 1), "edge_index": path_graph(3), "y": y, "val_mask": torch.ones(3, dtype=torch.bool)}
    assert graph_score_batch(True)(Fixed(), batch, ATTN_FIRST) == (2, 2 + 1 + 2)


def _fit_supernet(module: GraphSupernetModule, batch: dict, steps: int, tmp_path) -> pl.Trainer:
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         accelerator="cpu", default_root_dir=str(tmp_path))
    trainer.fit(module, DataLoader(RepeatDataset(batch, 1), batch_size=None, generator=torch.Generator()))
    return trainer


def _grads_of(model: GraphNet, batch: dict, archs: list[Architecture]) -> dict[str, torch.Tensor]:
    """The summed gradients of ``archs``' training losses (dropout 0: deterministic)."""
    from src.lit.graph_modules import node_loss

    model.zero_grad()
    for arch in archs:
        node_loss(model(batch["x"], batch["edge_index"], arch), batch["y"], batch["train_mask"], False).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return grads


def test_graph_supernet_step_zeroes_clips_and_logs_the_mean_loss(tmp_path):
    """Each step starts from zero gradients (the second step's are its own architectures' alone),
    clips their global norm to ``clip`` when set, and logs the mean of its architectures' losses.
    lr 0 keeps the weights, so the gradients can be recomputed afterwards."""
    from src.lit.graph_modules import node_loss

    model, batch = _supernet_and_batch()
    rng = random.Random(5)
    first, second = SPACE.sample_distinct(2, rng), SPACE.sample_distinct(2, rng)  # the module's draws
    with torch.no_grad():
        losses = [float(node_loss(model(batch["x"], batch["edge_index"], a), batch["y"], batch["train_mask"], False))
                  for a in first]
    expected = _grads_of(model, batch, second)
    module = GraphSupernetModule(model, SPACE, archs_per_step=2, lr=0.0, weight_decay=0.0, seed=5, monitor_archs=0)
    trainer = _fit_supernet(module, batch, 1, tmp_path / "one")
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(sum(losses) / 2, rel=1e-6)
    _fit_supernet(GraphSupernetModule(model, SPACE, archs_per_step=2, lr=0.0, weight_decay=0.0, seed=5,
                                      monitor_archs=0), batch, 2, tmp_path / "two")
    got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == expected.keys()
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-7)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in expected.values()]))
    assert norm > 0.01
    model.zero_grad()
    _fit_supernet(GraphSupernetModule(model, SPACE, archs_per_step=2, lr=0.0, weight_decay=0.0, clip=0.01, seed=5,
                                      monitor_archs=0), batch, 2, tmp_path / "clipped")
    clipped = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in clipped.values()]))
    assert float(total) == pytest.approx(0.01, rel=1e-4)
    for name in clipped:  # the direction kept: every gradient scaled by the same factor
        torch.testing.assert_close(clipped[name], expected[name] * (0.01 / norm), rtol=1e-4, atol=1e-9)


def test_graph_supernet_validation_is_the_mean_over_monitor_archs_of_the_validation_nodes(tmp_path):
    model, batch = _supernet_and_batch()
    module = GraphSupernetModule(model, SPACE, monitor_archs=3, seed=2)
    model.eval()
    scores = [graph_score_batch(False)(model, batch, arch) for arch in module.monitor]
    expected = sum(c / n for c, n in scores) / len(scores)
    whole = {**batch, "val_mask": torch.ones_like(batch["val_mask"])}
    assert expected != sum(c / n for c, n in (graph_score_batch(False)(model, whole, a) for a in module.monitor)) / 3
    assert expected != max(c / n for c, n in scores)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", default_root_dir=str(tmp_path))
    (logged,) = trainer.validate(module, DataLoader(ListDataset([batch]), batch_size=None))
    assert logged["val/score_mean"] == pytest.approx(expected, rel=1e-6)


def test_full_batch_fit_evaluates_the_last_epoch_and_calls_on_new_best_only_for_new_bests():
    batch = _tiny_batch()
    calls = []
    module = _child_module(ATTN_FIRST)
    module.on_new_best = calls.append
    torch.manual_seed(7)
    module.fit_full_batch(batch, epochs=40, eval_every=3)
    assert [h["step"] for h in module.history] == list(range(3, 40, 3)) + [40]
    best, expected = None, []
    for h in module.history:
        if best is None or selection_key(h) > selection_key(best):
            best = h
            expected.append(h)
    assert calls == expected and len(calls) < len(module.history)


def test_an_evaluation_counts_only_its_own_batch():
    """:meth:`GraphChildModule.evaluate` resets its metrics: a second batch's scores are not
    pooled with the first's (here the second batch's labels are the model's own predictions)."""
    first = _tiny_batch()
    module = _child_module(ATTN_FIRST)
    with torch.no_grad():
        predicted = module.model.eval()(first["x"], first["edge_index"]).argmax(-1)
    second = {**first, "y": predicted}
    scores = module.evaluate(first)
    assert scores["val_acc"] < 1.0 and scores["test_acc"] < 1.0
    assert module.evaluate(second) == {**_child_module(ATTN_FIRST).evaluate(second), "val_acc": 1.0, "test_acc": 1.0}


def test_the_graph_child_optimiser_has_the_weight_decay():
    group = _child_module(ATTN_FIRST).configure_optimizers().param_groups[0]
    assert group["lr"] == 0.01 and group["weight_decay"] == 5e-4


def test_arma_ops_do_not_share_a_module_across_models():
    """PyG's ``ARMAConv`` defaults to one ``ReLU`` instance for every conv (a default argument): one
    model's ``eval()`` put it in eval mode inside every other model, which Lightning then warned of
    ("modules in eval mode at the start of training"). Each ARMA op has its own."""
    from src.models.graph import GraphOp

    first, second = GraphOp("arma", 4, 3, 0.0, 0.0), GraphOp("arma", 4, 3, 0.0, 0.0)
    assert first.conv.act is not second.conv.act
    first.eval()
    assert all(m.training for m in second.modules())
    x, edge_index = torch.rand(4, 4), path_graph(4)
    assert bool((first(x, edge_index) >= 0).all())  # still ReLU-activated


# ---- mutation audit (2026-12-06, session 42): the propagate-kernel path

def test_the_sparse_features_csr_cache_stays_bounded():
    """``sparse_linear`` caches the CSR structure of each sparse feature matrix it sees (keyed by
    its index storage, which the entry holds alive): it keeps at most 8, the oldest going first,
    however many matrices (mini-batches of sparse features) pass through, and still computes
    every product right."""
    import src.models.graph as graph

    w = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    for seed in range(12):
        dense, sparse = _sparse_features(10, 6, seed=seed)
        assert torch.allclose(sparse_linear(sparse, w), dense @ w.t(), atol=1e-6)
        assert len(graph._CSR_CACHE) <= 8


@pytest.mark.parametrize("needs", ["q", "k", "v"])
def test_attention_gradients_reach_an_input_that_alone_needs_one(needs, monkeypatch):
    """The kernel path's autograd functions (``_EdgeScores``, ``_HeadGatherSum``) compute only the
    gradients their inputs need (``ctx.needs_input_grad``). Where a layer's query or key op is
    ``zero`` only some of q, k, v carry gradients (with q and k constant, the weights alpha carry
    none): the one that does must get the torch path's gradient bit for bit, not ``None`` (a
    gradient gated on another input's flag drops it silently)."""
    from src.models import cpu_kernels

    monkeypatch.setattr(cpu_kernels, "_backend", "auto")  # whatever an earlier test in this process chose
    if cpu_kernels.kernel_error() is not None:
        pytest.skip(f"the fused CPU kernels cannot be built here: {cpu_kernels.kernel_error()}")
    edge_index = awkward_graph(20, 80, seed=21)
    g = torch.Generator().manual_seed(22)
    inputs = [torch.randn(20, 8, dtype=torch.float64, generator=g) for _ in range(3)]
    upstream = torch.randn(20, 8, dtype=torch.float64, generator=g)
    grads = {}
    for kernels in ("auto", "torch"):
        monkeypatch.setattr(cpu_kernels, "_backend", kernels)
        leaves = [t.clone().requires_grad_(name == needs) for name, t in zip("qkv", inputs)]
        EdgeSoftmaxAttention(heads=2)(*leaves, edge_index).backward(upstream)
        grads[kernels] = dict(zip("qkv", (t.grad for t in leaves)))
    assert grads["torch"][needs] is not None
    assert grads["auto"][needs] is not None, f"{needs} lost its gradient on the kernel path"
    assert torch.equal(grads["auto"][needs], grads["torch"][needs])


def test_propagate_keeps_the_gradient_of_edge_weights_that_need_one(monkeypatch):
    """The propagate kernel reads the edge weights from the CSR view, made once per graph as
    constants: weights that need a gradient (learned edge weights, any future op) go through
    PyG's ``propagate`` instead, with the same values and their gradient, not none."""
    from torch_geometric.nn import GCNConv

    import src.models.graph as graph
    from src.models import cpu_kernels

    monkeypatch.setattr(cpu_kernels, "_backend", "auto")
    edge_index = awkward_graph(12, 40, seed=23)
    g = torch.Generator().manual_seed(24)
    x = torch.randn(12, 4, generator=g)
    weight = torch.rand(edge_index.size(1), generator=g)
    conv = GCNConv(4, 4)
    mine, theirs = weight.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    out = graph.propagate(conv, x, edge_index, mine, lambda: graph.EdgeCsr(edge_index, mine.detach(), 12))
    expected = conv.propagate(edge_index, x=x, edge_weight=theirs)
    assert torch.equal(out, expected)
    upstream = torch.randn(out.shape, generator=g)
    out.backward(upstream)
    expected.backward(upstream)
    assert mine.grad is not None and torch.equal(mine.grad, theirs.grad)


def test_what_is_derived_from_a_graph_follows_its_node_count_and_dtype(monkeypatch):
    """The per-graph cache (:func:`derived`) is keyed by the node count and dtype besides the edge
    tensor: the same ``edge_index`` over 8 nodes after 6 (two more without edges, which need their
    own self loops and CSR rows), and SAGE's in-degrees in float32 after float64, give what the
    same modules give on a fresh copy of the edge tensor (nothing cached). A key without ``n``
    served the 6-node self loops or CSR view; one without the dtype, float64 degrees to float32
    features (a dtype error in ``lin_l``)."""
    from src.models import cpu_kernels
    from src.models.graph import GraphOp

    monkeypatch.setattr(cpu_kernels, "_backend", "auto")
    torch.manual_seed(0)
    ops = [GraphOp(name, 4, 4, 0.0, 0.0).eval() for name in ("gat2", "sage", "gcn")]
    attention = EdgeSoftmaxAttention(heads=2)

    def run(edges: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        return [op(x, edges) for op in ops] + [attention(x, x.flip(1), 2 * x, edges)]

    edge_index = path_graph(6)
    g = torch.Generator().manual_seed(25)
    with torch.no_grad():
        for n in (6, 8):
            x = torch.randn(n, 4, generator=g)
            for got, fresh in zip(run(edge_index, x), run(edge_index.clone(), x)):
                assert got.shape == fresh.shape and torch.equal(got, fresh), n
        sage, other = ops[1], path_graph(8)
        x = torch.randn(8, 4, generator=g)
        for dtype in (torch.float64, torch.float32):
            sage.to(dtype)
            got = sage(x.to(dtype), other)
            assert got.dtype == dtype and torch.equal(got, sage(x.to(dtype), other.clone()))


def test_the_graph_cache_never_serves_a_dead_graphs_values_under_a_reused_id():
    """:func:`derived` keys its table by ``id(edge_index)``, and an id is reused once a tensor is
    freed. An entry whose graph is gone (its weak reference dead) is replaced, not read, by a new
    graph under that id; and a gone graph's clean-up callback, should it run after a new graph
    took the slot, leaves the new graph's entry in place."""
    import weakref

    import src.models.graph as graph

    edge_index = path_graph(4)
    slot = id(edge_index)
    gone = torch.zeros(1)
    dead = weakref.ref(gone)
    del gone
    assert dead() is None
    graph._DERIVED[slot] = (dead, {("probe", False): "the gone graph's"})
    try:
        assert graph.derived(edge_index, ("probe",), lambda: "this graph's") == "this graph's"
        ref = graph._DERIVED[slot][0]
        assert ref() is edge_index
        ref.__callback__(dead)  # the gone graph's clean-up, late
        assert graph._DERIVED[slot][0] is ref
        assert graph.derived(edge_index, ("probe",), lambda: "made again") == "this graph's"
    finally:
        graph._DERIVED.pop(slot, None)


def test_the_propagate_kernels_refuse_indices_outside_their_tensors():
    """``gather_sum``, ``segment_max`` and ``edge_products`` are public torch ops fed index
    tensors (a CSR's columns, a permutation, the edge rows); :class:`EdgeCsr` checks the graph,
    but each kernel also checks every index it reads and raises instead of reading past (or
    before) its tensor."""
    from src.models import cpu_kernels

    if cpu_kernels.kernel_error() is not None:
        pytest.skip(f"the fused CPU kernels cannot be built here: {cpu_kernels.kernel_error()}")
    ops = torch.ops.autoattend
    x = torch.randn(3, 4)
    rowptr = torch.tensor([0, 1, 2])
    for bad in (3, -1):
        with pytest.raises(RuntimeError, match="gather_sum: column .* out of range"):
            ops.gather_sum(x, rowptr, torch.tensor([0, bad]), None)
        with pytest.raises(RuntimeError, match="segment_max: edge .* out of range"):
            ops.segment_max(torch.randn(2, 1), rowptr, torch.tensor([0, 2 if bad > 0 else -1]))
        with pytest.raises(RuntimeError, match="edge_products: row .* out of range"):
            ops.edge_products(x, x, torch.tensor([0, bad]), torch.tensor([0, 1]))
        with pytest.raises(RuntimeError, match="edge_products: row .* out of range"):
            ops.edge_products(x, x, torch.tensor([0, 1]), torch.tensor([bad, 1]))


def test_a_graph_model_file_says_whether_its_outputs_are_labels_or_classes(tmp_path):
    """A graph model's file records ``multilabel`` (``src.predict --graph`` reads sigmoid label sets
    or arg-max classes from it without the run's data) and still loads (mutation audit 2026-12-06)."""
    from src.models.saved import graph_child_spec, load_child, save_child, weights_of

    arch = Architecture((Layer("attn", 0, "linear", 0, "gcn", 0, "identity"), Layer("add", 1, "sgc", 1, "zero")))
    model, x, edge_index = child(arch), torch.randn(5, 5), path_graph(5)
    assert graph_child_spec(arch, 5, 3, hidden=16)["multilabel"] is False
    for multilabel in (False, True):
        path = tmp_path / f"{multilabel}.pt"
        save_child(path, weights_of(model), graph_child_spec(arch, 5, 3, multilabel=multilabel, hidden=16, heads=4,
                                                              dropout=0.0), {"step": 1})
        loaded, record = load_child(path)
        assert record["spec"]["multilabel"] is multilabel
        torch.testing.assert_close(loaded(x, edge_index), model(x, edge_index), rtol=0, atol=0)
