"""Ops, attention kernel, padding masks, context-aware sharing and supernet steps."""

import csv
import math
import random
import threading
import time

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from src.lit.modules import SupernetModule
from src.models.encoder import SHARING_MODES, sharing_key
from src.models.ops import attention_bias, masked_attention
from src.models import cpu_kernels
from src.models.text import TextClassifier
from src.utils.errors import AutoAttendError
from src.space import Architecture, Context, FunctionalSpace, Layer, arch_contexts

VOCAB, EMB, CLASSES = 50, 12, 3


def embeddings(seed=0):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(VOCAB, EMB, generator=g)
    e[0] = 0
    return e


def batch(b=6, t=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    mask = torch.arange(t)[None, :] < lengths[:, None]
    tokens = torch.randint(2, VOCAB, (b, t), generator=g).masked_fill(~mask, 0)
    return tokens, mask


def supernet(space, sharing="full", dim=16, heads=2, seed=0):
    torch.manual_seed(seed)
    return TextClassifier.supernet(embeddings(), CLASSES, space, dim=dim, heads=heads, sharing=sharing)


def test_masked_attention_matches_reference():
    torch.manual_seed(0)
    b, t, d, h = 3, 7, 8, 2
    q, k, v = (torch.randn(b, t, d) for _ in range(3))
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 4:] = False
    out = masked_attention(q, k, v, mask, h)
    qh, kh, vh = (x.view(b, t, h, d // h).transpose(1, 2) for x in (q, k, v))
    scores = qh @ kh.transpose(-1, -2) / math.sqrt(d // h)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    ref = (scores.softmax(-1) @ vh).transpose(1, 2).reshape(b, t, d)
    assert torch.allclose(out, ref, atol=1e-5)
    # the scoring paths (the fused kernel; without it, baddbmm on CPU, with and without a given
    # bias): rows of padded queries are the caller's to mask, so only real rows are compared
    from src.models import cpu_kernels

    before = cpu_kernels.get_backend()
    try:
        for backend in ("auto", "torch"):
            cpu_kernels.set_backend(backend)
            with torch.inference_mode():
                assert torch.allclose(masked_attention(q, k, v, mask, h)[mask], ref[mask], atol=1e-5)
                assert torch.allclose(masked_attention(q, k, v, mask, h, bias=attention_bias(mask))[mask], ref[mask],
                                      atol=1e-5)
    finally:
        cpu_kernels.set_backend(before)


def test_attention_ignores_padded_keys():
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 6, 8) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    k2, v2 = k.clone(), v.clone()
    k2[0, 3:] += 100.0
    v2[0, 3:] -= 50.0
    a = masked_attention(q, k, v, mask, 2)
    b = masked_attention(q, k2, v2, mask, 2)
    assert torch.allclose(a[0, :3], b[0, :3], atol=1e-5)


@pytest.mark.parametrize("priors", [True, False])
@pytest.mark.parametrize("ops", [("zero", "identity", "conv1", "conv3", "maxpool3", "gru"), ("conv3", "maxpool3"),
                                 ("gru",)])
def test_logits_ignore_padded_tokens_and_padding_length(priors, ops):
    space = FunctionalSpace(5, ops=ops, priors=priors, zero_op="zero")
    model = supernet(space).eval()
    rng = random.Random(0)
    tokens, mask = batch()
    for _ in range(6):
        arch = space.sample(rng)
        ref = model(tokens, mask, arch)
        # other padded token ids
        noisy = tokens.masked_fill(~mask, 7)
        assert torch.equal(model(noisy, mask, arch), ref)
        # five more padded positions
        longer = torch.cat([tokens, torch.full((tokens.shape[0], 5), 9)], 1)
        longer_mask = torch.cat([mask, torch.zeros(mask.shape[0], 5, dtype=torch.bool)], 1)
        assert torch.allclose(model(longer, longer_mask, arch), ref, atol=1e-5)
        # each row alone (no padding at all) gives the same logits as in the batch
        for row in (0, 1):
            n = int(mask[row].sum())
            alone = model(tokens[row:row + 1, :n], mask[row:row + 1, :n], arch)
            assert torch.allclose(alone, ref[row:row + 1], atol=1e-5)


def test_child_logits_ignore_padding():
    arch = FunctionalSpace(4).sample(random.Random(3))
    torch.manual_seed(0)
    child = TextClassifier.child(embeddings(), CLASSES, arch, dim=16, heads=2).eval()
    tokens, mask = batch()
    assert torch.equal(child(tokens.masked_fill(~mask, 5), mask), child(tokens, mask))


def test_an_architecture_outside_the_models_space_is_one_line():
    """A supernet (or child) given an architecture it holds no module for failed with "'NoneType'
    object is not callable"; a negative source index read another node in silence."""
    space = FunctionalSpace(3, ops=("zero", "identity", "conv1", "gru"))
    model = supernet(space).eval()
    tokens, mask = batch()
    # under the priors an attn layer's Q reads only the previous node: no module for conv1 as the Q
    # of layer 2 from node 0
    outside = Architecture((Layer("add", 0, "conv1", 0, "zero"), Layer("add", 1, "conv1", 0, "zero"),
                            Layer("attn", 0, "conv1", 1, "zero", 1, "gru")))
    with pytest.raises(AutoAttendError, match="no module for op 'conv1' .* outside this model's space"):
        model(tokens, mask, outside)
    child = TextClassifier.child(embeddings(), CLASSES, space.sample(random.Random(0)), dim=16, heads=2).eval()
    with pytest.raises(AutoAttendError, match="outside this model's space"):
        child(tokens, mask, outside)
    # a child's layer of kind add has no attention LayerNorm: an attn layer there was a bare KeyError
    adds = Architecture((Layer("add", 0, "conv1", 0, "zero"), Layer("add", 1, "conv1", 0, "zero"),
                         Layer("add", 2, "conv1", 0, "zero")))
    attends = Architecture(adds.layers[:2] + (Layer("attn", 2, "identity", 2, "identity", 2, "identity"),))
    add_child = TextClassifier.child(embeddings(), CLASSES, adds, dim=16, heads=2).eval()
    with pytest.raises(AutoAttendError, match="no attention LayerNorm for layer 2 .* outside this model's space"):
        add_child(tokens, mask, attends)
    negative = Architecture((Layer("add", 0, "conv1", 0, "zero"), Layer("add", 1, "conv1", -1, "gru"),
                             Layer("add", 2, "conv1", 0, "zero")))
    with pytest.raises(AutoAttendError, match=r"layer 1, field 'k_src'.*source -1 is not a node before the layer"):
        model(tokens, mask, negative)
    with pytest.raises(AutoAttendError, match="source -1"):
        TextClassifier.child(embeddings(), CLASSES, negative, dim=16, heads=2)


def ctx(src, layer, op, src_kind, role):
    return Context(src, layer, op, src_kind, role)


@pytest.mark.parametrize("mode, same_kv, same_across_src_kind, same_across_role", [
    ("full", False, False, False),
    ("source", True, False, True),
    ("target", False, True, False),
    ("none", True, True, True),
])
def test_sharing_keys_per_mode(mode, same_kv, same_across_src_kind, same_across_role):
    k = ctx(1, 2, "conv1", "attn", "k")
    v = ctx(1, 2, "conv1", "attn", "v")
    assert (sharing_key(k, mode) == sharing_key(v, mode)) == same_kv
    from_add = ctx(1, 2, "conv1", "add", "k")
    assert (sharing_key(k, mode) == sharing_key(from_add, mode)) == same_across_src_kind
    addend = ctx(1, 2, "conv1", "attn", "addend")
    assert (sharing_key(k, mode) == sharing_key(addend, mode)) == same_across_role
    # different edges or ops never share
    assert sharing_key(k, mode) != sharing_key(ctx(0, 2, "conv1", None, "k"), mode)
    assert sharing_key(k, mode) != sharing_key(ctx(1, 2, "conv3", "attn", "k"), mode)


def _module_of(model, arch, layer, slot):
    return next(key for i, s, _, key in model.encoder.keys_for(arch) if i == layer and s == slot)


@pytest.mark.parametrize("mode", SHARING_MODES)
def test_supernet_modules_shared_as_the_mode_says(mode):
    space = FunctionalSpace(3)
    model = supernet(space, mode)
    # layer 2 reads node 2; node 2 is made by an attn layer in A/C and by an add layer in B
    l0 = Layer("add", 0, "conv1", 0, "identity")
    a = Architecture((l0, Layer("attn", 1, "identity", 0, "identity", 0, "identity"),
                      Layer("attn", 2, "identity", 2, "conv3", 2, "conv3")))
    b = Architecture((l0, Layer("add", 1, "identity", 0, "identity"),
                      Layer("attn", 2, "identity", 2, "conv3", 2, "conv3")))
    c = Architecture((l0, Layer("attn", 1, "identity", 0, "identity", 0, "identity"),
                      Layer("add", 2, "identity", 2, "conv3")))
    k_a, v_a = _module_of(model, a, 2, "k"), _module_of(model, a, 2, "v")
    k_b, add_c = _module_of(model, b, 2, "k"), _module_of(model, c, 2, "k")
    ops = model.encoder.ops
    assert (ops[k_a] is ops[v_a]) == (mode in ("none", "source"))
    assert (ops[k_a] is ops[k_b]) == (mode in ("none", "target"))
    assert (ops[k_a] is ops[add_c]) == (mode in ("none", "source"))
    # the stem output has no source context: every mode shares across kinds of the (absent)
    # producer; a and c differ in their last layer's kind (a and b in the middle one's), so a stem
    # kind taken from any other layer would part their layer-0 modules
    assert _module_of(model, a, 0, "q") == _module_of(model, b, 0, "q") == _module_of(model, c, 0, "q")
    rng = random.Random(mode)
    for arch in [a, b, c] + [space.sample(rng) for _ in range(50)]:
        assert all(ctx.src_kind is None for _, _, ctx in arch_contexts(arch) if ctx.src == 0)


@pytest.mark.parametrize("priors", [True, False])
@pytest.mark.parametrize("mode", SHARING_MODES)
def test_supernet_holds_exactly_the_reachable_modules(mode, priors):
    space = FunctionalSpace(4, priors=priors)
    model = supernet(space, mode)
    used = set()
    rng = random.Random(0)
    for _ in range(3000):
        used |= model.encoder.used_module_keys(space.sample(rng))
    assert used == set(model.encoder.ops.keys())


def test_full_context_builds_fewer_modules_than_all_contexts():
    # Q is read only from the preceding node under prior 1, so Q modules on other edges are never built
    space = FunctionalSpace(24)
    model_keys = {sharing_key(c, "full") for c in space.contexts() if c.op not in ("zero", "identity")}
    all_keys = 300 * 4 * 4 * 2 - 24 * 4 * 4  # edges x weighted ops x roles x source kinds, stem has one kind
    assert len(model_keys) < all_keys


def test_child_has_its_own_module_per_op_application():
    arch = Architecture((Layer("add", 0, "conv1", 0, "conv1"), Layer("attn", 1, "gru", 0, "gru", 0, "gru")))
    child = TextClassifier.child(embeddings(), CLASSES, arch, dim=8, heads=2)
    assert len(child.encoder.ops) == 5
    assert set(child.encoder.attn_norms.keys()) == {"1"}


def _adam_step(model, arch, tokens, mask, labels):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(tokens, mask, arch), labels).backward()
    opt.step()


@pytest.mark.parametrize("mode", SHARING_MODES)
def test_step_on_one_arch_leaves_unused_parameters_bit_identical(mode):
    space = FunctionalSpace(4)
    model = supernet(space, mode)
    arch = space.sample(random.Random(7))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    used = {id(p) for p in model.used_parameters(arch).values()}
    tokens, mask = batch()
    _adam_step(model, arch, tokens, mask, torch.tensor([0, 1, 2, 0, 1, 2]))
    changed = unchanged = 0
    for name, p in model.named_parameters():
        if id(p) in used:
            changed += not torch.equal(p, before[name])
        else:
            assert torch.equal(p, before[name]), f"{name} changed but {arch} does not use it"
            unchanged += 1
    assert changed > 0 and unchanged > 0


def test_used_parameters_are_exactly_those_with_gradients():
    space = FunctionalSpace(4)
    model = supernet(space, "full")
    arch = space.sample(random.Random(8))
    tokens, mask = batch()
    torch.nn.functional.cross_entropy(model(tokens, mask, arch), torch.zeros(6, dtype=torch.long)).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == set(model.used_parameters(arch))


def _tiny_loader(n=24, t=9, seed=0, batch_size=None):
    tokens, mask = batch(n, t, seed)
    labels = (tokens[:, 0] % CLASSES).long()
    rows = [{"tokens": tokens[i], "mask": mask[i], "labels": labels[i]} for i in range(n)]
    collate = lambda items: {k: torch.stack([it[k] for it in items]) for k in items[0]}  # noqa: E731
    return DataLoader(rows, batch_size=batch_size or n, collate_fn=collate)


def test_supernet_epoch_loss_is_the_batch_weighted_mean_of_its_step_losses(tmp_path):
    """``train/loss_epoch`` (kept by the module, so that it survives a resume inside an epoch) is
    each epoch's mean of ``train/loss_step`` weighted by batch size (batches of 10, 10 and 4)."""
    space = FunctionalSpace(3)
    module = SupernetModule(supernet(space, "full"), space, archs_per_step=2, lr=0.3, seed=0, monitor_archs=0)
    trainer = pl.Trainer(max_epochs=2, logger=CSVLogger(str(tmp_path), name="", version=""), log_every_n_steps=1,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, _tiny_loader(batch_size=10))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    for epoch in ("0", "1"):
        steps = [float(r["train/loss_step"]) for r in rows if r["epoch"] == epoch and r["train/loss_step"]]
        (logged,) = [float(r["train/loss_epoch"]) for r in rows if r["epoch"] == epoch and r["train/loss_epoch"]]
        assert len(steps) == 3
        assert logged == pytest.approx((10 * steps[0] + 10 * steps[1] + 4 * steps[2]) / 24, rel=1e-6)
        assert logged != pytest.approx(sum(steps) / 3, rel=1e-6)  # the weighting shows


def test_supernet_module_step_samples_distinct_archs_and_touches_only_their_weights(tmp_path):
    space = FunctionalSpace(4)
    model = supernet(space, "full")
    module = SupernetModule(model, space, archs_per_step=3, lr=0.3, clip=5.0, seed=11, monitor_archs=0)
    archs = space.sample_distinct(3, random.Random(11))  # what the module's seeded RNG draws first
    assert len(set(archs)) == 3
    used = set()
    for a in archs:
        used |= {id(p) for p in model.used_parameters(a).values()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(module, _tiny_loader())
    n_changed = 0
    for name, p in model.named_parameters():
        if id(p) in used:
            n_changed += not torch.equal(p, before[name])
        else:
            assert torch.equal(p, before[name]), name
    assert n_changed > 0
    assert module.rng.getstate() == _rng_after(space, 11, 3)


def test_supernet_module_steps_are_the_same_with_parallel_arch_workers(tmp_path):
    space = FunctionalSpace(4)
    trained = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same intra-op threads for both runs, so the sums round alike
    try:
        for workers in (1, 2):
            model = supernet(space, "full")
            module = SupernetModule(model, space, archs_per_step=4, lr=0.3, clip=5.0, seed=3, monitor_archs=0,
                                    arch_workers=workers)
            pl.seed_everything(5)
            trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                 enable_model_summary=False, default_root_dir=str(tmp_path / str(workers)))
            trainer.fit(module, _tiny_loader())
            trained.append({n: p.detach().clone() for n, p in model.named_parameters()})
    finally:
        torch.set_num_threads(threads)
    assert trained[0].keys() == trained[1].keys()
    for name in trained[0]:
        assert torch.equal(trained[0][name], trained[1][name]), name
    assert any(not torch.equal(trained[0][n], p) for n, p in supernet(space, "full").named_parameters())


def _rng_after(space, seed, k):
    rng = random.Random(seed)
    space.sample_distinct(k, rng)
    return rng.getstate()


def test_supernet_training_lowers_loss():
    space = FunctionalSpace(3)
    model = supernet(space, "full", dim=16)
    tokens, mask = batch(32, 9, seed=3)
    labels = torch.arange(32) % CLASSES
    tokens[:, 0] = 2 + labels  # a class-specific token: learnable through the max-pool readout
    tokens = tokens.masked_fill((tokens < 2 + CLASSES) & (torch.arange(9) > 0), 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = random.Random(0)
    fixed = space.sample_distinct(4, random.Random(99))

    def loss_on_fixed():
        model.eval()
        with torch.no_grad():
            return sum(torch.nn.functional.cross_entropy(model(tokens, mask, a), labels).item() for a in fixed)

    start = loss_on_fixed()
    model.train()
    for _ in range(80):
        opt.zero_grad()
        for a in space.sample_distinct(4, rng):
            torch.nn.functional.cross_entropy(model(tokens, mask, a), labels).backward()
        opt.step()
    assert loss_on_fixed() < 0.7 * start


# --- optimised paths compute what the straightforward paths compute -------------------------------

def test_gru_without_packing_matches_packed_outputs_and_gradients():
    from src.models.ops import GRUOp

    torch.manual_seed(0)
    op = GRUOp(8, dropout=0.0)
    lengths = torch.tensor([7, 1, 4, 7, 2, 5])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    x = torch.randn(6, 7, 8).masked_fill(~mask.unsqueeze(-1), 0.0)
    outs, grads = [], []
    for packed in (True, False):
        xi = x.clone().requires_grad_()
        op.zero_grad()
        out = op(xi, mask, path="packed" if packed else "unpacked")
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append([xi.grad] + [p.grad.clone() for p in op.parameters()])
    assert torch.equal(outs[1].masked_select(~mask.unsqueeze(-1)), torch.zeros(int((~mask).sum()) * 8))
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(op(x, mask, path="unpacked"), outs[0], atol=1e-6)


def test_gru_path_is_the_fused_kernel_where_it_runs_and_unpacked_elsewhere():
    from src.models import cpu_kernels
    from src.models.ops import default_gru_path

    # packing loops over time steps and, on a GPU, syncs with the host: a loss (docs/performance.md)
    assert default_gru_path(torch.empty(2, 3, 8, device="meta")) == "unpacked"
    before = cpu_kernels.get_backend()
    try:
        cpu_kernels.set_backend("torch")
        assert default_gru_path(torch.zeros(2, 3, 8)) == "unpacked"
        if cpu_kernels.kernel_error() is None:
            cpu_kernels.set_backend("auto")
            assert default_gru_path(torch.zeros(2, 3, 8)) == "fused"
    finally:
        cpu_kernels.set_backend(before)


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("window", [None, 4])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_backward_archs_matches_one_forward_per_arch(window, workers):
    """Shared stem and parallel workers change nothing: same losses and gradients as one plain
    forward + backward per architecture with that architecture's dropout generator."""
    from src.models.multi_arch import arch_generators, backward_archs
    from src.models.ops import dropout_generator

    space = FunctionalSpace(4)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2, dropout=0.2, attn_dropout=0.2,
                                    window=window, stride=2).train()
    tokens, mask = batch(6, 9, seed=2)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    archs = space.sample_distinct(5, random.Random(3))
    torch.manual_seed(42)
    plain_total = 0.0
    for arch, generator in zip(archs, arch_generators(len(archs), "cpu")):
        with dropout_generator(generator):
            loss = torch.nn.functional.cross_entropy(model(tokens, mask, arch), labels)
        loss.backward()
        plain_total += loss.item()
    plain = _grads(model)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(42)  # the same generator seeds
    threads = torch.get_num_threads()
    total = backward_archs(model, tokens, mask, labels, archs, workers=workers)
    assert torch.get_num_threads() == threads
    shared = _grads(model)
    assert math.isclose(total.item(), plain_total, rel_tol=1e-5)
    assert plain.keys() == shared.keys() and any(n.startswith("stem.") for n in shared)
    for name in plain:
        assert torch.allclose(plain[name], shared[name], atol=1e-5, rtol=1e-4), name


def test_backward_archs_is_exactly_the_same_for_any_number_of_workers():
    from src.models.multi_arch import backward_archs

    space = FunctionalSpace(6)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2, dropout=0.3,
                                    attn_dropout=0.3).train()
    tokens, mask = batch(8, 10, seed=4)
    labels = torch.arange(8) % CLASSES
    archs = space.sample_distinct(7, random.Random(5))
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # kernels round differently with other intra-op thread counts
    try:
        for workers in (1, 2, 4):
            model.zero_grad(set_to_none=True)
            torch.manual_seed(7)
            total = backward_archs(model, tokens, mask, labels, archs, workers=workers)
            results.append((total, _grads(model)))
    finally:
        torch.set_num_threads(threads)
    (total1, grads1), rest = results[0], results[1:]
    for total, grads in rest:
        assert torch.equal(total, total1)
        assert grads.keys() == grads1.keys()
        for name in grads1:
            assert torch.equal(grads[name], grads1[name]), name
    # a different seed draws different dropout masks, so the gradients do change
    model.zero_grad(set_to_none=True)
    torch.manual_seed(8)
    backward_archs(model, tokens, mask, labels, archs, workers=2)
    assert any(not torch.equal(p.grad, grads1[n]) for n, p in model.named_parameters() if p.grad is not None)


def test_backward_archs_worker_error_propagates_and_restores_threads():
    from src.models.multi_arch import backward_archs

    space = FunctionalSpace(3)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2).train()
    tokens, mask = batch(4, 6)
    threads = torch.get_num_threads()
    with pytest.raises(IndexError):
        backward_archs(model, tokens, mask, torch.tensor([0, 1, 2, 99]), space.sample_distinct(3, random.Random(0)),
                       workers=2)
    assert torch.get_num_threads() == threads


def test_resolve_workers():
    from src.utils.parallel import resolve_workers

    assert resolve_workers(3, "cpu") == 3 and resolve_workers("2", "cpu") == 2
    assert resolve_workers("auto", "cuda") == 1 and resolve_workers(3, "cuda") == 1
    assert 1 <= resolve_workers("auto", "cpu") <= 4
    for bad in (0, "many", 1.5):
        with pytest.raises(ValueError, match="supernet.arch_workers must be 'auto' or an integer >= 1"):
            resolve_workers(bad, "cpu", "supernet.arch_workers")


def test_thread_map_keeps_order_propagates_errors_and_restores_threads():
    import threading

    from src.utils.parallel import thread_map

    threads = torch.get_num_threads()
    seen = set()

    def slow_first(i):
        seen.add(threading.get_ident())
        if i == 0:
            threading.Event().wait(0.2)  # finishes last, yet comes out first
        return i * i

    assert list(thread_map(slow_first, range(6), 3)) == [i * i for i in range(6)]
    assert len(seen) > 1 and torch.get_num_threads() == threads

    def fails_at_2(i):
        if i == 2:
            raise KeyError("bad item 2")
        return i

    with pytest.raises(KeyError, match="bad item 2"):
        list(thread_map(fails_at_2, range(5), 2))
    assert torch.get_num_threads() == threads
    assert list(thread_map(lambda i: i + 1, [1, 2], 1)) == [2, 3]


def _val_batches(n=70, t=12, batch_size=16, seed=5):
    """Right-padded batches of random lengths, in data order (not sorted)."""
    tokens, mask = batch(n, t, seed)
    labels = (tokens[:, 0] + tokens[:, -1]) % CLASSES
    out = []
    for s in range(0, n, batch_size):
        m = mask[s:s + batch_size]
        width = int(m.sum(1).max())
        out.append({"tokens": tokens[s:s + batch_size, :width], "mask": m[:, :width], "labels": labels[s:s + batch_size]})
    return out


@pytest.mark.parametrize("window", [None, 5])
@pytest.mark.parametrize("workers", [1, 3])
def test_fast_candidate_scoring_gives_the_plain_scores(window, workers):
    from src.estimator import SupernetEstimator

    space = FunctionalSpace(4)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2, window=window, stride=3).train()
    estimator = SupernetEstimator(model, _val_batches(), "cpu", bucket_size=8, workers=workers)
    assert estimator.fast and estimator.num_examples == 70
    assert sum(len(b["labels"]) for b in estimator.fast_batches) == 70
    archs = space.sample_distinct(12, random.Random(1))
    for arch in archs:
        assert estimator(arch) == estimator.plain(arch)
    assert model.training  # scoring leaves the mode as it found it
    # the cached stem outputs follow the weights: change the stem in place and score again
    with torch.no_grad():
        model.stem.proj.weight.mul_(-1.5)
    for arch in archs[:4]:
        assert estimator(arch) == estimator.plain(arch)
    # the plain scorer is what the fast path reproduces
    from src.estimator import accuracy_on_batch
    model.eval()
    with torch.no_grad():
        num = sum(accuracy_on_batch(model, b, archs[0])[0] for b in _val_batches())
    assert estimator(archs[0]) == num / 70


def test_scoring_buckets_default_by_device_and_give_the_same_scores_at_any_size():
    from src.estimator import SupernetEstimator, default_bucket_size

    assert default_bucket_size("cpu") == 128 and default_bucket_size("cuda") == 512
    space = FunctionalSpace(3)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2).eval()
    assert SupernetEstimator(model, _val_batches(), "cpu").bucket_size == 128
    archs = space.sample_distinct(6, random.Random(2))
    scores = []
    for size in (1, 8, 70, 128):
        estimator = SupernetEstimator(model, _val_batches(), "cpu", bucket_size=size)
        assert len(estimator.fast_batches) == -(-70 // size)
        scores.append([estimator(a) for a in archs])
    assert all(s == scores[0] for s in scores) and scores[0] == [estimator.plain(a) for a in archs]
    for bad in (0, -4, 2.5):
        with pytest.raises(ValueError, match="bucket size must be an integer >= 1"):
            SupernetEstimator(model, _val_batches(), "cpu", bucket_size=bad)


def test_scoring_switches_modes_only_for_a_training_model(monkeypatch):
    from src.estimator import SupernetEstimator

    space = FunctionalSpace(3)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2)
    estimator = SupernetEstimator(model, _val_batches(), "cpu", bucket_size=8)
    arch = space.sample(random.Random(0))
    switches = []
    real_train = model.train
    monkeypatch.setattr(model, "train", lambda mode=True: switches.append(mode) or real_train(mode))
    model.train()
    switches.clear()
    score = estimator(arch)
    assert switches == [False, True] and model.training  # eval for scoring, then back
    assert all(m.training for m in model.modules())
    model.eval()
    switches.clear()
    assert estimator(arch) == score and estimator.plain(arch) == score
    assert switches == [] and not any(m.training for m in model.modules())  # never walked


def test_fast_scoring_logits_match_plain_logits():
    from src.estimator import length_buckets

    space = FunctionalSpace(5)
    model = supernet(space).eval()
    batches = _val_batches(n=40, batch_size=13)
    buckets = length_buckets(batches, 7)
    tokens = torch.cat([torch.nn.functional.pad(b["tokens"], (0, 12 - b["tokens"].shape[1])) for b in batches])
    mask = torch.cat([torch.nn.functional.pad(b["mask"], (0, 12 - b["mask"].shape[1])) for b in batches])
    rng = random.Random(2)
    for _ in range(4):
        arch = space.sample(rng)
        with torch.inference_mode():
            ref = model(tokens, mask, arch)
            # each bucket row is some original row: find it by its tokens and compare logits
            for b in buckets:
                out = model.head(model.encoder(model.features(b["tokens"], b["mask"]), b["mask"], arch), b["mask"])
                for row, n in zip(range(len(b["labels"])), b["mask"].sum(1).tolist()):
                    match = [i for i in range(len(tokens)) if int(mask[i].sum()) == n
                             and torch.equal(tokens[i, :n], b["tokens"][row, :n])]
                    assert match and torch.allclose(out[row], ref[match[0]], atol=1e-5)


@pytest.mark.parametrize("kernel", [1, 3])
def test_conv_op_matches_a_plain_conv1d(kernel):
    from src.models.ops import ConvOp

    torch.manual_seed(0)
    op = ConvOp(8, kernel, dropout=0.0)
    lengths = torch.tensor([6, 2, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    x = torch.randn(3, 6, 8).masked_fill(~mask.unsqueeze(-1), 0.0).requires_grad_()
    out = op(x, mask)
    h = op.norm(x).masked_fill(~mask.unsqueeze(-1), 0.0)
    ref = torch.nn.functional.conv1d(h.transpose(1, 2), op.conv.weight, op.conv.bias, padding=kernel // 2)
    ref = torch.relu(ref.transpose(1, 2)).masked_fill(~mask.unsqueeze(-1), 0.0)
    assert torch.allclose(out, ref, atol=1e-6)
    g_out = torch.autograd.grad(out.sum(), [x, op.conv.weight])
    g_ref = torch.autograd.grad(ref.sum(), [x, op.conv.weight])
    for a, b in zip(g_out, g_ref):
        assert torch.allclose(a, b, atol=1e-5)
    # the weight's gradient comes in the parameter's own layout, so accumulating it copies nothing
    assert g_out[1].stride() == op.conv.weight.stride()
    copy = ConvOp(8, kernel, dropout=0.0)
    copy.load_state_dict(op.state_dict())  # a checkpoint restores values into that layout
    assert copy.conv.weight.stride() == op.conv.weight.stride() and torch.equal(copy(x, mask), out)


def test_training_attention_matches_sdpa_and_the_written_out_dropout():
    from src.models.ops import attention_bias, fast_dropout

    torch.manual_seed(0)
    b, t, d, h = 4, 9, 16, 4
    lengths = torch.tensor([9, 3, 1, 6])
    mask = torch.arange(t)[None, :] < lengths[:, None]
    q, k, v = (torch.randn(b, t, d, requires_grad=True) for _ in range(3))

    def heads(x):
        return x.view(b, t, h, d // h).transpose(1, 2)

    def sdpa():  # no dropout: PyTorch's kernel is the reference
        out = torch.nn.functional.scaled_dot_product_attention(*map(heads, (q, k, v)), attn_mask=mask[:, None, None, :])
        return out.transpose(1, 2).reshape(b, t, d)

    def written_out(p):  # dropout: the straightforward math with the same draws
        scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(d // h)
        weights = scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)
        return (fast_dropout(weights, p) @ heads(v)).transpose(1, 2).reshape(b, t, d)

    for p, reference in ((0.0, sdpa), (0.3, lambda: written_out(0.3))):
        for fn in (lambda: masked_attention(q, k, v, mask, h, p),
                   lambda: masked_attention(q, k, v, mask, h, p, attention_bias(mask))):
            torch.manual_seed(7)
            ref = reference()
            g_ref = torch.autograd.grad(ref[mask].sum(), [q, k, v])
            torch.manual_seed(7)
            out = fn()
            g_out = torch.autograd.grad(out[mask].sum(), [q, k, v])
            assert torch.allclose(out[mask], ref[mask], atol=1e-5)
            for a, c in zip(g_out, g_ref):
                assert torch.allclose(a, c, atol=1e-5)
    # the scoring path (no autograd, no dropout) is the fused kernel: same values as the written-out path
    with torch.no_grad():
        fused = masked_attention(q, k, v, mask, h)
    assert torch.allclose(fused[mask], masked_attention(q, k, v, mask, h)[mask], atol=1e-5)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fast_dropout_has_the_distribution_of_f_dropout(p):
    """fast_dropout draws its mask differently from F.dropout (torch.rand instead of bernoulli_):
    the keep rate is 1 - p (within 5 sigma over 10^6 elements), kept elements are scaled by
    1 / (1 - p), the rest are exactly 0, the gradient is the same mask times the scale, and
    both are the identity in eval mode."""
    from src.models.ops import Dropout, fast_dropout

    torch.manual_seed(0)
    n = 1_000_000
    x = (torch.rand(n) + 0.5).requires_grad_()
    y = fast_dropout(x, p)
    kept = y != 0
    rate = kept.double().mean().item()
    assert abs(rate - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    (g,) = torch.autograd.grad(y.sum(), [x])
    assert torch.equal(g, kept.float() / (1 - p))
    # the reference: F.dropout's keep rate on the same size agrees with ours within sampling error
    ref_rate = (torch.nn.functional.dropout(x.detach(), p) != 0).double().mean().item()
    assert abs(rate - ref_rate) < 7 * math.sqrt(p * (1 - p) / n)
    module = Dropout(p)
    assert module.p == p and torch.equal(module.eval()(x), x) and torch.equal(fast_dropout(x, p, False), x)
    assert torch.equal(fast_dropout(x, 0.0), x) and not fast_dropout(x, 1.0).any()


@pytest.mark.parametrize("ops", [("zero", "identity", "conv1", "conv3", "maxpool3", "gru"), ("gru",)])
def test_training_dropout_draws_only_for_real_tokens(ops):
    """On CPU every dropout (stem, ops, add and attention layers, attention weights) draws random
    numbers only for real tokens / real (query, key) pairs: with the same seed, a training-mode
    forward and backward give the same logits and gradients however much padding the batch has,
    which a draw over the padded tensor could not."""
    space = FunctionalSpace(5, ops=ops, priors=False, zero_op="zero")
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2, dropout=0.3,
                                    attn_dropout=0.3).train()
    tokens, mask = batch()
    longer = torch.cat([tokens, torch.full((tokens.shape[0], 5), 9)], 1)
    longer_mask = torch.cat([mask, torch.zeros(mask.shape[0], 5, dtype=torch.bool)], 1)
    rng = random.Random(1)
    changed = []
    for _ in range(4):
        arch = space.sample(rng)
        runs = []
        for t, m in ((tokens, mask), (longer, longer_mask)):
            model.zero_grad(set_to_none=True)
            torch.manual_seed(5)
            logits = model(t, m, arch)
            logits.pow(2).sum().backward()
            runs.append((logits.detach(), _grads(model)))
        assert torch.allclose(runs[0][0], runs[1][0], atol=1e-5)
        assert runs[0][1].keys() == runs[1][1].keys()
        for name in runs[0][1]:
            assert torch.allclose(runs[0][1][name], runs[1][1][name], atol=1e-5), name
        torch.manual_seed(6)
        changed.append(not torch.allclose(model(tokens, mask, arch), runs[0][0]))
    assert any(changed)  # other draws do change training-mode logits (dropout is active)


def test_fast_dropout_rows_draw_only_the_listed_rows():
    from src.models.ops import fast_dropout, real_pairs, real_rows

    torch.manual_seed(0)
    x = torch.rand(1000, 300) + 0.5
    rows = torch.arange(0, 1000, 3)
    y = fast_dropout(x, 0.25, rows=rows)
    listed = torch.zeros(1000, dtype=torch.bool)
    listed[rows] = True
    assert not y[~listed].any()
    kept = y[listed] != 0
    n = kept.numel()
    assert abs(kept.double().mean().item() - 0.75) < 5 * math.sqrt(0.25 * 0.75 / n)
    assert torch.allclose(y[listed][kept], x[listed][kept] / 0.75)
    # the same draws as dropping the listed rows on their own
    torch.manual_seed(1)
    a = fast_dropout(x, 0.25, rows=rows)[rows]
    torch.manual_seed(1)
    assert torch.equal(a, fast_dropout(x[rows], 0.25))
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert real_rows(mask).tolist() == [0, 1, 3]
    pairs = torch.zeros(2 * 2 * 3 * 3, dtype=torch.bool)
    pairs[real_pairs(mask, 2)] = True
    expected = (mask[:, None, :, None] & mask[:, None, None, :]).expand(2, 2, 3, 3).reshape(-1)
    assert torch.equal(pairs, expected) and int(expected.sum()) == 2 * (4 + 1)


def test_grouped_attention_matches_one_call_over_the_batch():
    """Training attention by length group (AttentionPlan, CPU) gives the values and gradients of
    one masked_attention call over the padded batch at every real query position."""
    from src.models.ops import AttentionPlan, grouped_attention

    torch.manual_seed(0)
    b, t, d, h = 9, 11, 16, 4
    lengths = torch.tensor([11, 3, 1, 6, 11, 2, 8, 5, 7])
    mask = torch.arange(t)[None, :] < lengths[:, None]
    q, k, v = (torch.randn(b, t, d, requires_grad=True) for _ in range(3))
    weights = torch.randn(b, t, d).masked_fill(~mask.unsqueeze(-1), 0.0)
    plan = AttentionPlan(mask, h, dropout=False)
    assert len(plan.groups) == 4 and sorted(int(r) for g in plan.groups for r in g[0]) == list(range(b))
    assert [g[1] for g in plan.groups] == sorted(g[1] for g in plan.groups) and plan.groups[-1][1] == 11
    ref = masked_attention(q, k, v, mask, h)
    out = grouped_attention(q, k, v, plan, h)
    assert out.shape == ref.shape and torch.allclose(out[mask], ref[mask], atol=1e-5)
    g_ref = torch.autograd.grad((ref * weights).sum(), [q, k, v])
    g_out = torch.autograd.grad((out * weights).sum(), [q, k, v])
    for a, c in zip(g_out, g_ref):
        assert torch.allclose(a, c, atol=1e-5)
    # a batch smaller than the number of groups
    small = AttentionPlan(mask[:2], h, dropout=True)
    assert len(small.groups) == 2 and all(g[4] is not None for g in small.groups)
    assert torch.allclose(grouped_attention(q[:2], k[:2], v[:2], small, h)[mask[:2]],
                          masked_attention(q[:2], k[:2], v[:2], mask[:2], h)[mask[:2]], atol=1e-5)


@pytest.mark.parametrize("state_dtype, moment_bytes, recompute, offload",
                         [("float32", 4, False, False), ("bfloat16", 2, True, False), ("float32", 4, True, True)])
def test_bench_text_figures_on_a_tiny_configuration(tmp_path, state_dtype, moment_bytes, recompute, offload):
    """``make bench``'s text figures, shrunk, with parallel workers; Adam's state is created for
    every parameter before the timed steps (as a long run holds it); a checkpoint is written and
    removed again."""
    from omegaconf import open_dict

    from conftest import compose_config
    from helpers import write_tiny_sst
    from src.bench_harness import text_figures

    cfg = compose_config("bench", ["hardware=cpu", "bench.num_layers=3", "bench.dim=16", "bench.heads=2",
                                   "bench.archs_per_step=3", "bench.batch_size=8", "bench.retrain_dim=16",
                                   "bench.reps=2", "bench.warmup=0", "bench.arch_workers=2",
                                   "bench.score_workers=2", f"bench.optimizer_state={state_dtype}",
                                   f"bench.recompute={recompute}", f"bench.optimizer_offload={offload}"])
    with open_dict(cfg):
        cfg.paths.data_dir = str(write_tiny_sst(tmp_path / "data", n_train=20, n_dev=12, n_test=5))
        cfg.paths.cache_dir = str(tmp_path / "cache")
        cfg.paths.output_dir = str(tmp_path / "out")
    figures = text_figures(cfg)
    assert figures["supernet_checkpoint_s"] >= 0 and figures["supernet_optimizer_offload"] is offload
    assert list((tmp_path / "out").iterdir()) == []  # the checkpoint and any snapshot are removed again
    assert figures["data"].startswith("real SST-5 trees")
    assert figures["supernet_arch_workers"] == 2 and figures["candidate_score_workers"] == 2
    for key in ("supernet_step_s", "candidate_score_s", "retrain_step_s", "supernet_peak_rss_mb"):
        assert figures[key] > 0, key
    assert figures["candidate_score_examples"] == 12
    assert figures["supernet_optimizer_state"] == state_dtype
    assert figures["supernet_recompute"] is recompute
    # MB of 10^6 bytes, as every ``*_mb`` figure (was MiB under the same name)
    assert figures["supernet_adam_state_mb"] == round(2 * moment_bytes * figures["supernet_params"] / 1e6, 2) > 0


def test_layers_that_cannot_reach_the_output_are_skipped_without_changing_anything(monkeypatch):
    from src.models import encoder as encoder_mod
    from src.pipeline.config import resolve_arch

    arch = resolve_arch("published_sst5")  # no priors: layer 21 adds two zero ops, so 0 and 3-20 are dead
    live = encoder_mod.live_layers(arch)
    assert [i for i, on in enumerate(live) if on] == [1, 2, 21, 22, 23]
    assert all(encoder_mod.live_layers(FunctionalSpace(6).sample(random.Random(s))) == (True,) * 6 for s in range(20))
    torch.manual_seed(0)
    model = TextClassifier.child(embeddings(), CLASSES, arch, dim=16, heads=2, dropout=0.0, attn_dropout=0.0)
    tokens, mask = batch()
    labels = torch.arange(6) % CLASSES
    calls = []
    for module in model.encoder.ops.values():
        module.register_forward_hook(lambda *args: calls.append(1))

    def run():
        calls.clear()
        model.zero_grad()
        model.train()
        logits = model(tokens, mask)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.eval()
        with torch.no_grad():
            scored = model(tokens, mask)
        return logits.detach(), grads, scored, len(calls)

    skipped = run()
    monkeypatch.setattr(encoder_mod, "live_layers", lambda a: (True,) * len(a))
    computed = run()
    assert skipped[3] < computed[3]  # fewer op modules ran
    assert torch.equal(skipped[0], computed[0]) and torch.equal(skipped[2], computed[2])
    assert skipped[1].keys() == computed[1].keys()
    for name, grad in skipped[1].items():
        assert torch.equal(grad, computed[1][name]), name


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("workers", [1, 2])
def test_recomputed_layers_give_the_same_logits_and_gradients(backend, workers):
    """``encoder.recompute``: each layer runs again in backward (same dropout masks, drawn from the
    architecture's generator or, in a plain forward, torch's global RNG): the same loss and every
    gradient bit for bit, for a fraction of what autograd keeps from the forward."""
    from src.models import cpu_kernels
    from src.models.multi_arch import backward_archs

    space = FunctionalSpace(5)
    model = supernet(space, "full", dim=16, heads=2)
    model.train()
    tokens, mask = batch(6, 9, seed=2)
    labels = torch.arange(6) % CLASSES
    archs = space.sample_distinct(4, random.Random(3))
    before = cpu_kernels.get_backend()
    cpu_kernels.set_backend(backend)
    try:
        results = []
        for recompute in (False, True):
            model.encoder.recompute = recompute
            model.zero_grad(set_to_none=True)
            torch.manual_seed(7)
            total = backward_archs(model, tokens, mask, labels, archs, workers=workers)
            torch.manual_seed(8)  # a plain forward: dropout from the global RNG
            torch.nn.functional.cross_entropy(model(tokens, mask, archs[0]), labels).backward()
            results.append((total, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
            saved = []
            with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
                model(tokens, mask, archs[1]).sum()
            results[-1] += (sum(saved),)
    finally:
        cpu_kernels.set_backend(before)
        model.encoder.recompute = False
    (loss_a, grads_a, saved_a), (loss_b, grads_b, saved_b) = results
    assert torch.equal(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for name in grads_a:
        assert torch.equal(grads_a[name], grads_b[name]), name
    assert saved_b < 0.5 * saved_a


def test_cpu_autocast_runs_the_torch_ops_and_fused_refuses_it():
    # under CPU autocast (hardware.precision=bf16-mixed) q comes out of a product in bfloat16 while
    # v may come from `identity` in float32: the kernels, one dtype each, must step aside
    space = FunctionalSpace(num_layers=3)
    model = supernet(space, dim=16, heads=2).train()
    tokens, mask = batch()
    arch = Architecture.from_dict({"layers": [
        {"kind": "attn", "q_src": 0, "q_op": "conv3", "k_src": 0, "k_op": "gru", "v_src": 0, "v_op": "identity"},
        {"kind": "add", "q_src": 1, "q_op": "conv3", "k_src": 0, "k_op": "identity"},
        {"kind": "attn", "q_src": 2, "q_op": "conv1", "k_src": 1, "k_op": "maxpool3", "v_src": 1, "v_op": "identity"}]})
    before = cpu_kernels.get_backend()
    try:
        cpu_kernels.set_backend("auto")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(tokens, mask, arch)
        logits.float().sum().backward()
        assert torch.isfinite(logits.float()).all()
        assert all(p.grad is not None for p in model.used_parameters(arch).values())
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.isfinite(model.eval()(tokens, mask, arch).float()).all()
        cpu_kernels.set_backend("fused")
        with pytest.raises(AutoAttendError, match="without autocast"), torch.autocast("cpu", dtype=torch.bfloat16):
            model.train()(tokens, mask, arch)
    finally:
        cpu_kernels.set_backend(before)


def test_dropout_masks_of_half_precision_tensors_are_drawn_in_float32():
    from src.models.ops import keep_mask
    before = cpu_kernels.get_backend()
    try:
        cpu_kernels.set_backend("torch")
        masks = []
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            torch.manual_seed(3)
            masks.append(keep_mask((400, 300), 0.7, torch.zeros(1, dtype=dtype)))
        assert torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])
        assert abs(masks[1].float().mean().item() - 0.3) < 0.005
    finally:
        cpu_kernels.set_backend(before)


# ---- mutation audit of the models (2026-12-05): the supernet step and its validation ----------

def _summed_grads(model, tokens, mask, labels, archs):
    model.zero_grad()
    for a in archs:
        torch.nn.functional.cross_entropy(model(tokens, mask, a), labels).backward()
    grads = _grads(model)
    model.zero_grad()
    return grads


def _fit_text_supernet(module, steps, root):
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(root))
    trainer.fit(module, _tiny_loader())
    return trainer


def test_supernet_step_zeroes_clips_and_logs_the_mean_loss(tmp_path):
    """A step's gradients are its own architectures' summed (zeroed first: after two steps they are
    the second step's alone), their global norm clipped to ``clip`` (the direction kept), the loss
    logged is the mean over the step's architectures, and Adam's rate is ``lr / archs_per_step``.
    lr 0 keeps the weights, so the gradients can be recomputed afterwards; dropout 0."""
    space = FunctionalSpace(3)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2, dropout=0.0, attn_dropout=0.0)
    (batch_,) = list(_tiny_loader())
    tokens, mask, labels = batch_["tokens"], batch_["mask"], batch_["labels"]
    rng = random.Random(4)
    first, second = space.sample_distinct(2, rng), space.sample_distinct(2, rng)  # the module's draws
    with torch.no_grad():
        losses = [torch.nn.functional.cross_entropy(model(tokens, mask, a), labels).item() for a in first]
    expected = _summed_grads(model, tokens, mask, labels, second)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in expected.values()]))
    assert norm > 0.01

    def module(clip):
        return SupernetModule(model, space, archs_per_step=2, lr=0.0, clip=clip, seed=4, monitor_archs=0)

    assert SupernetModule(model, space, archs_per_step=4, lr=0.2).configure_optimizers().param_groups[0]["lr"] == 0.05
    trainer = _fit_text_supernet(module(1e6), 1, tmp_path / "one")
    assert float(trainer.callback_metrics["train/loss_step"]) == pytest.approx(sum(losses) / 2, rel=1e-5)
    _fit_text_supernet(module(1e6), 2, tmp_path / "two")
    got = _grads(model)
    assert got.keys() == expected.keys()
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-7)
    model.zero_grad()
    _fit_text_supernet(module(0.01), 2, tmp_path / "clipped")
    clipped = _grads(model)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in clipped.values()]))
    assert float(total) == pytest.approx(0.01, rel=1e-4)
    for name in clipped:
        torch.testing.assert_close(clipped[name], expected[name] * (0.01 / norm), rtol=1e-3, atol=1e-9)


def test_supernet_validation_logs_the_mean_accuracy_of_every_monitor_arch(tmp_path):
    space = FunctionalSpace(3)
    model = supernet(space, "full")
    module = SupernetModule(model, space, monitor_archs=4, seed=6)
    tokens, mask = batch(24, 9, seed=2)
    labels = (tokens[:, 0] % CLASSES).long()
    model.eval()
    with torch.no_grad():
        accs = [(model(tokens, mask, a).argmax(-1) == labels).float().mean().item() for a in module.monitor]
    assert len(set(accs)) > 1  # the mean differs from any one architecture's
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path))
    (logged,) = trainer.validate(module, _tiny_loader(seed=2))
    assert logged["val/acc_mean"] == pytest.approx(sum(accs) / len(accs), rel=1e-6)


def test_a_child_gives_the_same_op_in_the_same_slot_of_two_layers_two_modules():
    """Child keys carry the layer: conv1 as addend 1 of layers 0 and 1 is two modules, not one."""
    arch = Architecture((Layer("add", 0, "conv1", 0, "zero"), Layer("add", 1, "conv1", 0, "zero")))
    child = TextClassifier.child(embeddings(), CLASSES, arch, dim=8, heads=2)
    assert len(child.encoder.ops) == 2
    first, second = (key for _, _, op, key in child.encoder.keys_for(arch) if op == "conv1")
    assert child.encoder.ops[first] is not child.encoder.ops[second]


def test_every_layer_drops_its_output_in_training():
    """``dropout`` after every add and attn layer (the encoder's Dropout runs once per live layer,
    on the layer's sum or attention output), none of it in evaluation."""
    arch = Architecture((Layer("add", 0, "conv1", 0, "zero"), Layer("attn", 1, "conv3", 1, "identity", 1, "conv1"),
                         Layer("add", 2, "identity", 1, "conv3")))
    torch.manual_seed(0)
    model = TextClassifier.child(embeddings(), CLASSES, arch, dim=16, heads=2, dropout=0.5, attn_dropout=0.0)
    tokens, mask = batch()
    dropped = []
    model.encoder.dropout.register_forward_hook(lambda module, args, out: dropped.append(not torch.equal(args[0], out)))
    model.train()
    model(tokens, mask)
    assert dropped == [True, True, True]
    dropped.clear()
    model.eval()
    model(tokens, mask)
    assert dropped == [False, False, False]


def test_the_classifier_starts_near_zero():
    """Classifier weights drawn from N(0, 0.02), bias 0: the first logits are near uniform."""
    torch.manual_seed(0)
    model = TextClassifier.supernet(torch.randn(VOCAB, EMB), CLASSES, FunctionalSpace(2), dim=256, heads=2)
    assert torch.equal(model.classifier.bias, torch.zeros(CLASSES))
    assert float(model.classifier.weight.detach().std()) == pytest.approx(0.02, rel=0.1)


def test_embeddings_train_only_when_not_frozen():
    arch = Architecture((Layer("add", 0, "conv1", 0, "zero"),))
    frozen = TextClassifier.child(embeddings(), CLASSES, arch, dim=8, heads=2)
    tuned = TextClassifier.child(embeddings(), CLASSES, arch, dim=8, heads=2, freeze_embeddings=False)
    assert not frozen.embedding.weight.requires_grad and "embedding.weight" not in frozen.used_parameters()
    assert tuned.embedding.weight.requires_grad and "embedding.weight" in tuned.used_parameters()


def test_each_architecture_of_a_step_draws_its_own_dropout_masks():
    """``arch_generators``: one generator per architecture, each seeded differently from torch's
    global RNG (the same seeds after the same ``torch.manual_seed``)."""
    from src.models.multi_arch import arch_generators

    def first_draws():
        return [torch.rand(8, generator=g) for g in arch_generators(3, "cpu")]

    torch.manual_seed(1)
    draws = first_draws()
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    torch.manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(draws, first_draws()))


def test_length_buckets_sort_longest_first_keep_ties_in_order_and_trim_each_bucket():
    from src.estimator import length_buckets

    batches = _val_batches(n=40, batch_size=13)
    buckets = length_buckets(batches, 7)
    lengths = torch.cat([b["mask"].sum(1) for b in buckets]).tolist()
    assert lengths == sorted(lengths, reverse=True)
    for b in buckets:
        assert b["tokens"].shape[1] == int(b["mask"].sum(1).max())  # padded to its own longest only
    # ties in input order: the rows of each length come in the order they had
    rows = [(int(n), t[:int(n)].tolist()) for b in batches for t, n in zip(b["tokens"], b["mask"].sum(1))]
    out = [(int(n), t[:int(n)].tolist()) for b in buckets for t, n in zip(b["tokens"], b["mask"].sum(1))]
    assert out == sorted(rows, key=lambda r: -r[0])
    bad = dict(batches[0], mask=batches[0]["mask"].flip(1))  # left-padded: not a prefix mask
    with pytest.raises(ValueError, match="right-padded"):
        length_buckets([bad], 7)


def test_a_custom_scorer_takes_the_plain_path():
    from src.estimator import SupernetEstimator

    space = FunctionalSpace(3)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2).eval()
    calls = []

    def first_label_count(model, batch, arch):
        calls.append(len(batch["labels"]))
        return float((batch["labels"] == 0).sum()), len(batch["labels"])

    batches = _val_batches()
    estimator = SupernetEstimator(model, batches, "cpu", first_label_count)
    assert not estimator.fast
    arch = space.sample(random.Random(0))
    expected = sum(int((b["labels"] == 0).sum()) for b in batches) / 70
    assert estimator(arch) == pytest.approx(expected) and calls == [len(b["labels"]) for b in batches]


def test_the_cached_stem_follows_the_embedding_and_worker_threads_score_without_autograd():
    from src.estimator import SupernetEstimator

    space = FunctionalSpace(4)
    torch.manual_seed(0)
    model = TextClassifier.supernet(embeddings(), CLASSES, space, dim=16, heads=2).eval()
    estimator = SupernetEstimator(model, _val_batches(), "cpu", bucket_size=8, workers=3)
    archs = space.sample_distinct(4, random.Random(1))
    modes = []
    model.encoder.register_forward_hook(lambda *args: modes.append(torch.is_inference_mode_enabled()))
    before = [estimator(a) for a in archs]
    assert modes and all(modes)
    with torch.no_grad():
        model.embedding.weight.copy_(torch.randn_like(model.embedding.weight))
    after = [estimator(a) for a in archs]
    assert after == [estimator.plain(a) for a in archs] and after != before


def test_thread_map_divides_the_intra_op_threads_and_runs_one_worker_in_the_calling_thread(monkeypatch):
    from src.utils import parallel

    assert list(parallel.thread_map(lambda i: threading.get_ident(), [1, 2, 3], 1)) == [threading.get_ident()] * 3
    assert list(parallel.thread_map(lambda i: threading.get_ident(), [1], 4)) == [threading.get_ident()]
    calls = []
    monkeypatch.setattr(parallel.torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr(parallel.torch, "set_num_threads", calls.append)
    assert list(parallel.thread_map(abs, [-1, -2, -3], 3)) == [1, 2, 3]
    assert calls == [2, 8]  # 8 // 3 threads each while it runs, then 8 again


def test_thread_map_cancels_the_items_not_started_when_one_fails():
    from src.utils.parallel import thread_map

    ran = []

    def fn(i):
        ran.append(i)
        if i == 0:
            raise KeyError("first")
        time.sleep(0.05)
        return i

    with pytest.raises(KeyError):
        list(thread_map(fn, range(40), 2))
    time.sleep(0.2)
    assert len(ran) < 10  # not the 40 a pool left to finish its queue runs


def test_each_timed_bench_step_is_the_whole_step(tmp_path, monkeypatch):
    """What ``make bench`` times is the work its figures name: each supernet step back-propagates
    ``archs_per_step`` distinct architectures, clips at 5.0 and takes Adam's step (and the weights
    move); each retrain step clips at 1.0 and steps; each scoring call scores a new candidate on the
    whole dev set. A timed region that silently dropped one of them would still give figures > 0."""
    from omegaconf import open_dict

    import src.bench_harness as harness
    from conftest import compose_config
    from helpers import write_tiny_sst

    cfg = compose_config("bench", ["hardware=cpu", "bench.num_layers=3", "bench.dim=16", "bench.heads=2",
                                   "bench.archs_per_step=3", "bench.batch_size=8", "bench.retrain_dim=16",
                                   "bench.reps=2", "bench.warmup=1", "bench.arch_workers=1", "bench.score_workers=1"])
    with open_dict(cfg):
        cfg.paths.data_dir = str(write_tiny_sst(tmp_path / "data", n_train=20, n_dev=12, n_test=5))
        cfg.paths.cache_dir = str(tmp_path / "cache")
        cfg.paths.output_dir = str(tmp_path / "out")
    events: list = []
    backward_archs, clip = harness.backward_archs, torch.nn.utils.clip_grad_norm_
    supernet_adam, adam_step = harness.supernet_adam, torch.optim.Adam.step
    timed, estimator_cls = harness._timed, harness.SupernetEstimator

    def recorded_backward(model, tokens, mask, labels, archs, **kw):
        events.append(("backward", len({repr(a) for a in archs})))
        return backward_archs(model, tokens, mask, labels, archs, **kw)

    def recorded_supernet_adam(params, **kw):
        opt = supernet_adam(params, **kw)
        first, step = params[0], opt.step

        def stepped(*args, **kwargs):
            before = first.detach().clone()
            out = step(*args, **kwargs)
            events.append(("supernet adam", not torch.equal(before, first.detach())))
            return out
        opt.step = stepped
        return opt

    class RecordedEstimator(estimator_cls):
        def __call__(self, arch):
            events.append(("score", repr(arch), self.num_examples))
            return super().__call__(arch)

    monkeypatch.setattr(harness, "backward_archs", recorded_backward)
    monkeypatch.setattr(harness, "supernet_adam", recorded_supernet_adam)
    monkeypatch.setattr(harness, "SupernetEstimator", RecordedEstimator)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, max_norm, **kw: (
        events.append(("clip", max_norm)), clip(params, max_norm, **kw))[1])
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **kw: (events.append(("adam",)),
                                                                          adam_step(self, *a, **kw))[1])
    monkeypatch.setattr(harness, "_timed", lambda fn, reps, warmup, device: timed(
        lambda: (events.append("["), fn(), events.append("]")), reps, warmup, device))
    harness.text_figures(cfg)
    calls, current = [], None
    for event in events:
        if event == "[":
            current = []
        elif event == "]":
            calls.append(current)
            current = None
        elif current is not None:
            current.append(event)
    assert len(calls) == 3 * (1 + 2)  # supernet, scoring, retrain: one warm-up and two timed calls each
    supernet, scoring, retrain = calls[0:3], calls[3:6], calls[6:9]
    # (the float32 supernet optimizer is torch's Adam: its step is recorded as "adam" inside "supernet adam")
    assert all([e for e in c if e != ("adam",)] == [("backward", 3), ("clip", 5.0), ("supernet adam", True)]
               for c in supernet), supernet
    assert all(len(c) == 1 and c[0][0] == "score" and c[0][2] == 12 for c in scoring), scoring
    assert len({c[0][1] for c in scoring}) == 3  # a new candidate each call
    assert all(c == [("clip", 1.0), ("adam",)] for c in retrain), retrain
