"""Numerical edge-case walk (2026-12-07, session 48): numerically awkward but legitimate input to the models,
the training and the scoring. The first tests were findings, mended since (each docstring says what happened:
a diverging training, non-finite word vectors, a multi-label score with nothing to count; expected a correct
finite result, or one error line and a non-zero exit, never a NaN result recorded as if it were one); the
others pin behaviours checked correct that no other test covered (every graph op on isolated nodes, a one-node
graph, a graph without edges, all-zero feature rows; every text op on one-token sentences, all-unknown
sentences and batches of padding)."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from torch import nn

from src.models import cpu_kernels
from src.models.graph import GRAPH_OPS, GraphNet
from src.models.text import TextClassifier
from src.space import Architecture, FunctionalSpace, Layer
from src.space.space import TEXT_OPS
from tests.helpers import cli, write_tiny_planetoid, write_tiny_sst


pytestmark = pytest.mark.usefixtures("one_intra_op_thread")  # tiny tensors


@pytest.fixture(params=["auto", "torch"])
def backend(request):
    """The fused CPU kernels (``auto``, where they build) and the plain torch ops."""
    before = cpu_kernels.get_backend()
    cpu_kernels.set_backend(request.param)
    yield request.param
    cpu_kernels.set_backend(before)


def _failed_in_one_line(proc, start: str, end: str) -> bool:
    lines = proc.stderr.strip().splitlines()
    return (proc.returncode == 2 and "Traceback" not in proc.stderr and bool(lines) and lines[-1].startswith(start)
            and lines[-1].endswith(end))


# ---------------------------------------------------------------- a diverging training was not noticed
# Each of the four fits went on with a NaN loss, its NaN logits scoring as the class with id 0 everywhere, and
# the run ended with status 0 reporting those scores as results. Now: one error line naming the fit and the
# learning rate to lower, status 2 (check_finite_loss in the modules' steps, diverged_hint in the stages).


@pytest.mark.parametrize("stage", ["supernet", "retrain"])
def test_a_text_fit_whose_loss_becomes_nan_is_an_error(tmp_path, stage):
    """``supernet.lr=1e30``: ``train/loss_epoch`` was nan from the second step on (supernet/metrics.csv), every
    candidate then scored the same (the share of the class with id 0), the evolution picked the first of the
    tie, and the winner was retrained and reported (``summary: best supernet val acc 50.00 %``), exit 0.
    ``retrain.lr=1e30``: the same in retrain/seed_0/metrics.csv; the evaluations of the NaN model (always
    class 0) stayed selectable, the seed was written as done and ``results.json`` reported mean +- std over
    such seeds. ``SupernetModule.training_step`` and ``ChildModule.training_step`` (src/lit/modules.py) did not
    check their loss."""
    data = write_tiny_sst(tmp_path / "data")
    run_dir = tmp_path / "run"
    diverging = (["supernet.lr=1e30", "supernet.epochs=3", "retrain.max_steps=2"] if stage == "supernet" else
                 ["retrain.lr=1e30", "retrain.epochs=4", "retrain.eval_every=1"])
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", "retrain.seeds=1", *diverging,
               data_dir=data, tmp=tmp_path, run_dir=run_dir)
    fit = "supernet" if stage == "supernet" else "retrain seed 0"
    assert _failed_in_one_line(proc, f"error: {fit}: the training loss became nan at step ",
                               f"; lower {stage}.lr (now 1e+30)"), (proc.returncode, proc.stderr[-1500:])
    if stage == "supernet":
        assert not (run_dir / "search" / "best_arch.yaml").exists()
    assert not (run_dir / "retrain" / "results.json").exists()
    assert not (run_dir / "retrain" / "seed_0.json").exists()


def test_a_graph_supernet_whose_loss_becomes_nan_is_an_error(tmp_path):
    """``graph.supernet.lr=1e30`` on a tiny Cora: ``train/loss`` nan at every epoch (supernet/metrics.csv), every
    candidate scores 0.33 (the class-0 share of the validation nodes), exit 0 and a retrained "winner".
    ``GraphSupernetModule.training_step`` (src/lit/graph_modules.py) did not check its loss."""
    data = write_tiny_planetoid(tmp_path / "data")
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=cora", "budget=smoke", "hardware=cpu", "graph.supernet.lr=1e30",
               "graph.hpo.trials=1", "graph.baselines=[]", "graph.retrain.seeds=1", data_dir=data, tmp=tmp_path,
               run_dir=run_dir)
    assert _failed_in_one_line(proc, "error: graph supernet: the training loss became nan at step ",
                               "; lower graph.supernet.lr (now 1e+30)"), (proc.returncode, proc.stderr[-1500:])
    assert not (run_dir / "search" / "best_arch.yaml").exists()


def test_a_graph_retrain_whose_loss_becomes_nan_is_an_error_and_writes_no_nan(tmp_path):
    """``graph.retrain.lr=1e30``: every evaluation of ``GraphChildModule.fit_full_batch`` (src/lit/graph_modules.py)
    had ``val_loss`` NaN, the seed is selected at its first such evaluation (val 0.33, test 0.3167: class 0
    everywhere) and ``retrain/seed_0.json`` is written with a bare ``NaN`` token (not JSON; strict parsers
    refuse it), ``results.json`` reports ``31.67 +- 0.00 %``, exit 0."""
    data = write_tiny_planetoid(tmp_path / "data")
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=cora", "budget=smoke", "hardware=cpu", "graph.retrain.lr=1e30",
               "graph.hpo.trials=1", "graph.baselines=[]", "graph.retrain.seeds=1", data_dir=data, tmp=tmp_path,
               run_dir=run_dir)
    record = run_dir / "retrain" / "seed_0.json"
    if record.exists():  # whatever is kept must be JSON without NaN
        json.loads(record.read_text(), parse_constant=lambda name: pytest.fail(f"{record} holds {name}"))
    assert _failed_in_one_line(proc, "error: retrain/seed_0: the training loss ",
                               "; lower the learning rate it trained with (lr 1e+30)"), (proc.returncode,
                                                                                         proc.stderr[-1500:])
    assert not (run_dir / "retrain" / "results.json").exists()
    assert not record.exists()


# ---------------------------------------------------------------- non-finite word vectors


@pytest.mark.parametrize("value", ["nan", "inf", "1e39"])
def test_a_glove_file_with_a_non_finite_value_is_refused_naming_the_line(tmp_path, value):
    """``_read_glove_text`` (src/data/embeddings.py) checks only that every value parses as a float; ``nan``,
    ``inf`` and ``1e39`` (inf in float32) do. Seen end to end: ``data.glove_path=`` a file whose vector for
    "the" held one ``nan``: ``train/loss_epoch`` nan from the first step, every candidate scored 0.5, the retrain
    reported ``50.00 +- 0.00 %``, exit 0. Now the AutoAttendError the file's other defects get, naming the value."""
    from src.data.embeddings import load_word_vectors
    from src.utils.errors import AutoAttendError

    path = tmp_path / "vectors.txt"
    path.write_text(f"movie 0.1 0.2 0.3\nfilm 0.4 {value} 0.6\n", encoding="utf-8")
    with pytest.raises(AutoAttendError) as refused:
        load_word_vectors(["<pad>", "<unk>", "movie", "film"], str(path))
    assert str(refused.value) == f"{path}, line 2: expected a word followed by 3 finite float32 values, found {value!r}"


# ---------------------------------------------------------------- multi-label scoring with nothing to count


class _ConstantLogits(nn.Module):
    """A stand-in graph model: logits ``value`` everywhere, (N, C)."""

    def __init__(self, classes: int, value: float):
        super().__init__()
        self.classes, self.value = classes, value

    def forward(self, x, edge_index, arch=None):
        return torch.full((x.size(0), self.classes), self.value)


def test_multilabel_scoring_with_no_positive_label_and_none_predicted_is_zero_not_an_error():
    """``graph_score_batch(multilabel=True)`` (src/lit/graph_modules.py) returns the micro-F1 as (2 TP,
    2 TP + FP + FN); with no positive label on the validation nodes (a legitimate multi-label graph file, a
    small validation split) and a candidate predicting none, both are 0, and ``SupernetEstimator._plain``
    (src/estimator.py) raised ValueError: a crash with a traceback in the search, and a message blaming an
    empty validation mask that is not empty. ``LogitMultilabelF1`` scores the same predictions 0.0, and now
    the estimator too; an accuracy with nothing counted is still the error."""
    from src.estimator import SupernetEstimator
    from src.lit.graph_modules import LogitMultilabelF1, graph_score_batch

    n, classes = 6, 3
    batch = {"x": torch.rand(n, 4), "edge_index": torch.tensor([[0, 1], [1, 0]]), "y": torch.zeros(n, classes),
             "val_mask": torch.ones(n, dtype=torch.bool)}
    model = _ConstantLogits(classes, -1.0)
    metric = LogitMultilabelF1(num_labels=classes, average="micro")
    metric.update(model(batch["x"], None), batch["y"].long())
    assert metric.compute().item() == 0.0
    arch = Architecture((Layer("add", 0, "gcn", 0, "zero"),))
    estimator = SupernetEstimator(model, [batch], score_batch=graph_score_batch(True))
    assert estimator(arch) == 0.0
    empty = {**batch, "y": torch.zeros(n, dtype=torch.long), "val_mask": torch.zeros(n, dtype=torch.bool)}
    with pytest.raises(ValueError, match="hold no example to score"):
        SupernetEstimator(model, [empty], score_batch=graph_score_batch(False))(arch)


# ---------------------------------------------------------------- verified: graph ops on awkward graphs


# name -> (number of nodes, edges as (sources, targets)): isolated nodes, a self loop and a duplicate edge; one node;
# no edge. The edge tensors are made in each test: made at collection, they lived (and the graph caches keyed by
# them, src.models.graph._DERIVED) for the whole session, which a sweep-independence test then found
AWKWARD_GRAPHS = {"isolated_selfloop_duplicate": (5, ([0, 1, 1, 2, 0], [0, 2, 2, 1, 1])), "one_node": (1, ([], [])),
                  "one_node_self_loop": (1, ([0], [0])), "no_edges": (4, ([], []))}


def _awkward_graphs(names=tuple(AWKWARD_GRAPHS)):
    """``(name, number of nodes, edge_index (2, E) long)`` of each named graph of :data:`AWKWARD_GRAPHS`."""
    return [(name, AWKWARD_GRAPHS[name][0], torch.tensor(AWKWARD_GRAPHS[name][1], dtype=torch.long).view(2, -1))
            for name in names]


@pytest.mark.parametrize("name", list(AWKWARD_GRAPHS))
@pytest.mark.parametrize("self_loops", [True, False], ids=["attn_self_loops", "no_attn_self_loops"])
def test_every_graph_op_is_finite_on_awkward_graphs_and_zero_feature_rows(backend, name, self_loops):
    """Edge softmax over an empty set of in-edges, GCN/ARMA/Cheb normalisation of degree-0 nodes (1/sqrt(0)),
    SAGE's mean over no neighbour and all-zero feature rows: finite logits and finite gradients for every op,
    in an ``add`` layer and as K and V of an attention layer, with and without attention self loops."""
    ((_, n, edge_index),) = _awkward_graphs((name,))
    torch.manual_seed(0)
    x = torch.rand(n, 6)
    x[-1] = 0.0  # an all-zero feature row (CiteSeer's missing test nodes)
    for op in (o for o in GRAPH_OPS if o != "zero"):
        for arch in (Architecture((Layer("add", 0, op, 0, "zero"),)),
                     Architecture((Layer("attn", 0, "linear", 0, op, 0, op),))):
            torch.manual_seed(0)
            model = GraphNet.child(6, 3, arch, hidden=16, heads=4, dropout=0.0, attn_self_loops=self_loops).train()
            out = model(x, edge_index)
            out.square().sum().backward()
            assert out.shape == (n, 3) and torch.isfinite(out).all(), (op, arch)
            for name, p in model.named_parameters():
                assert p.grad is None or torch.isfinite(p.grad).all(), (op, name)


@pytest.mark.parametrize("name", list(AWKWARD_GRAPHS)[:2])
def test_a_graph_supernet_scores_awkward_graphs_finitely(backend, name):
    """The supernet (stem, every module) on isolated nodes and on a one-node graph: finite logits for 20 drawn
    architectures of the whole op list."""
    ((_, n, edge_index),) = _awkward_graphs((name,))
    space = FunctionalSpace(2, ops=GRAPH_OPS)
    torch.manual_seed(0)
    model = GraphNet.supernet(6, 3, space, hidden=16, heads=4, dropout=0.0).eval()
    x = torch.rand(n, 6)
    x[0] = 0.0
    with torch.no_grad():
        for arch in space.sample_distinct(20, random.Random(0)):
            assert torch.isfinite(model(x, edge_index, arch)).all(), arch


# ---------------------------------------------------------------- verified: text ops on awkward sentences


def _awkward_batches():
    one = (torch.tensor([[1]]), torch.tensor([[True]]))  # one sentence of one unknown word
    unknown = (torch.ones(3, 4, dtype=torch.long),
               torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool))  # every word <unk>
    tokens = torch.zeros(4, 9, dtype=torch.long)
    tokens[0] = torch.arange(2, 11)
    tokens[1:, 0] = 5
    padded = (tokens, tokens != 0)  # three one-word rows padded to nine positions beside a full one
    return [("one_word_batch_of_one", *one), ("all_unknown", *unknown), ("mostly_padding", *padded)]


@pytest.mark.parametrize("batch", _awkward_batches(), ids=lambda b: b[0])
def test_every_text_op_is_finite_on_one_word_unknown_and_padded_sentences(backend, batch):
    """Zero word vectors (``<pad>``, ``<unk>``) through the stem's LayerNorm (variance 0), attention over a
    single real key, max-pool and GRU over one token: finite logits in evaluation and finite gradients in
    training, for 25 architectures over every text op; logits of a row do not change with the batch's padding."""
    _, tokens, mask = batch
    torch.manual_seed(0)
    emb = torch.randn(20, 8)
    emb[:2] = 0.0
    space = FunctionalSpace(2, ops=TEXT_OPS)
    model = TextClassifier.supernet(emb, 3, space, dim=8, heads=2)
    for arch in space.sample_distinct(25, random.Random(0)):
        model.train()
        model.zero_grad()
        out = model(tokens, mask, arch)
        out.square().sum().backward()
        assert torch.isfinite(out).all(), arch
        for name, p in model.named_parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), (arch, name)
        model.eval()
        with torch.no_grad():
            full = model(tokens, mask, arch)
            alone = model(tokens[-1:, :int(mask[-1].sum())], mask[-1:, :int(mask[-1].sum())], arch)
        assert torch.isfinite(full).all() and torch.allclose(full[-1:], alone, atol=1e-5), arch


def test_one_seed_reports_a_standard_deviation_of_zero_not_nan():
    """``seed_summary`` over one seed: std 0.0 (documented), finite mean, never NaN."""
    from src.pipeline.stages import seed_summary

    arch = Architecture((Layer("add", 0, "conv1", 0, "zero"),))
    summary = seed_summary(arch, [0], [{"seed": 0, "val_acc": 0.5, "test_acc": 0.25, "step": 3}], "rule")
    assert summary["test_acc_std"] == 0.0 and summary["test_acc_mean"] == 0.25
    assert all(math.isfinite(summary[k]) for k in ("test_acc_mean", "test_acc_std", "val_acc_mean"))


def test_a_record_holding_nan_is_refused_and_not_written(tmp_path):
    """``atomic_write_json`` wrote ``NaN`` as a bare token (Python's json default), which strict JSON readers
    refuse (seen in a graph seed's ``seed_0.json`` before the loss checks): a NaN reaching a record is a bug
    upstream, so it is a ValueError and the record is not written, nor any temporary file left."""
    from src.utils.io import atomic_write_json

    path = tmp_path / "seed_0.json"
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
            atomic_write_json(path, {"val_acc": value})
        assert list(tmp_path.iterdir()) == []


def test_a_graph_fit_evaluated_every_few_steps_names_the_evaluation_it_found_the_nan_by():
    """``fit_full_batch`` reads the loss's finiteness at its evaluations only (no device sync a step): with
    ``eval_every=3`` a loss that became NaN at step 1 is reported "by step 3", and nothing is recorded of it."""
    from src.lit.graph_modules import GraphChildModule
    from src.utils.errors import TrainingDivergedError

    torch.manual_seed(0)
    n = 8
    batch = {"x": torch.rand(n, 4), "edge_index": torch.tensor([[0, 1, 2], [1, 2, 3]]), "y": torch.arange(n) % 2,
             "train_mask": torch.ones(n, dtype=torch.bool), "val_mask": torch.ones(n, dtype=torch.bool),
             "test_mask": torch.ones(n, dtype=torch.bool)}
    batch["x"][0, 0] = float("nan")
    model = GraphNet.child(4, 2, Architecture((Layer("add", 0, "linear", 0, "zero"),)), hidden=8)
    module = GraphChildModule(model, False, lr=0.01)
    with pytest.raises(TrainingDivergedError, match=r"^the training loss was not finite by step 3 \(the training "
                                                    r"diverged: a learning rate too high for the data, or non-finite "
                                                    r"inputs\)$"):
        module.fit_full_batch(batch, epochs=10, eval_every=3)
    assert module.history == []
