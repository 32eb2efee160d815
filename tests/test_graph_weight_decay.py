"""``weight_decay_on`` of a graph child: ``first_layer`` regularises only the parameters that map the
raw features (GCN's paper: weight decay on its first layer alone; ``src/space/archs/gcn.yaml``),
``all`` every parameter (the default)."""

from __future__ import annotations

import pytest
import torch
import yaml

from src.lit.graph_modules import GraphChildModule
from src.models.graph import GraphNet
from src.pipeline.checks import check_config
from src.space import Architecture, FunctionalSpace, Layer
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import ROOT

GCN = Architecture((Layer("add", 0, "gcn", 0, "zero"), Layer("add", 1, "gcn", 1, "zero")))
# a stem (sage reads node 0) and two weighted ops in the first layer
WITH_STEM = Architecture((Layer("add", 0, "sage", 0, "linear"), Layer("attn", 1, "gcn", 1, "gcn", 1, "linear")))


def _child(arch: Architecture, readout: str = "last") -> GraphNet:
    torch.manual_seed(0)
    return GraphNet.child(6, 3, arch, hidden=8, heads=2, dropout=0.0, readout=readout, stem="auto")


def _names(model: GraphNet, params) -> set[str]:
    ids = {id(p) for p in params}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def test_the_first_layer_is_the_stem_and_the_ops_writing_node_1():
    gcn = _child(GCN)
    assert gcn.stem is None
    assert _names(gcn, gcn.first_layer_parameters()) == {"encoder.ops.L0-q-gcn.conv.lin.weight",
                                                         "encoder.ops.L0-q-gcn.conv.bias"}
    stemmed = _child(WITH_STEM, readout="linear")
    assert stemmed.stem is not None
    first = _names(stemmed, stemmed.first_layer_parameters())
    assert {n for n in first if n.startswith("stem.")} == {n for n, _ in stemmed.named_parameters() if n.startswith("stem.")}
    ops = {n.split(".")[2] for n in first if n.startswith("encoder.ops.")}
    assert len(ops) == 2 and all(op.startswith("L0-") for op in ops)
    assert not any(n.startswith("classifier.") for n in first)
    with pytest.raises(ValueError, match="supernet"):
        GraphNet.supernet(6, 3, FunctionalSpace(2, ops=("gcn", "zero", "linear"))).first_layer_parameters()


@pytest.mark.parametrize("decay_on", ["all", "first_layer"])
def test_with_no_loss_gradient_only_the_decayed_parameters_move(decay_on):
    """One Adam step on a zero loss: the gradient is the decay alone, so exactly the decayed
    parameters change (all of them under ``all``; the first layer's under ``first_layer``)."""
    model = _child(GCN)
    module = GraphChildModule(model, lr=0.01, weight_decay=5e-4, weight_decay_on=decay_on)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = module.configure_optimizers()
    opt.zero_grad()
    (0.0 * sum(p.sum() for p in model.parameters())).backward()
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    first = _names(model, model.first_layer_parameters())
    nonzero = {n for n, p in before.items() if p.abs().sum() > 0}  # a zero bias does not decay
    assert moved == (nonzero if decay_on == "all" else first & nonzero)
    assert moved and (decay_on == "all") == bool(moved - first)


def test_an_unknown_weight_decay_on_is_refused_by_the_module_and_the_config():
    with pytest.raises(ValueError, match="weight_decay_on must be one of all, first_layer, got 'last'"):
        GraphChildModule(_child(GCN), weight_decay_on="last")
    cfg = compose_config("search", ["+task=cora", "graph.retrain.weight_decay_on=last"])
    with pytest.raises(AutoAttendError, match=r"^graph.retrain.weight_decay_on: expected one of all, first_layer, "
                                              r"got 'last'$"):
        check_config(cfg, "search")


def test_the_gcn_baseline_decays_its_first_layer_alone_and_gat_everything():
    """GCN's paper regularises the first layer; GAT's every weight (the searched children: all)."""
    hparams = {name: yaml.safe_load((ROOT / "src" / "space" / "archs" / f"{name}.yaml").read_text())["hparams"]
               for name in ("gcn", "gat")}
    assert hparams["gcn"]["weight_decay_on"] == "first_layer"
    assert hparams["gat"].get("weight_decay_on", "all") == "all"
    assert compose_config("search", ["+task=cora"]).graph.retrain.weight_decay_on == "all"


def test_the_retrain_passes_the_setting_to_the_child_module(monkeypatch, tmp_path):
    """``fit_child`` builds the child's optimiser from ``hp['weight_decay_on']`` (an HPO trial
    recorded before the setting existed: ``all``)."""
    from src.pipeline import graph_stages

    seen = []
    monkeypatch.setattr(graph_stages.GraphChildModule, "fit_full_batch",
                        lambda self, *a, **k: seen.append(self.hparams.weight_decay_on))
    cfg = compose_config("search", ["+task=cora", "hardware=cpu"])

    class Data:
        num_features, num_classes, multilabel = 6, 3, False
        graph = {"x": torch.zeros(4, 6), "edge_index": torch.tensor([[0, 1], [1, 0]])}

    hp = graph_stages._child_settings(cfg, {"hidden": 8, "heads": 2, "readout": "last", "stem": "none"})
    graph_stages.fit_child(cfg, GCN, Data(), {**hp, "weight_decay_on": "first_layer"}, 0, tmp_path, "a")
    old = {k: v for k, v in hp.items() if k != "weight_decay_on"}
    graph_stages.fit_child(cfg, GCN, Data(), old, 0, tmp_path, "b")
    assert seen == ["first_layer", "all"]
