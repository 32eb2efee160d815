"""Probe retraining recipes the pipeline cannot express: first-layer-only weight decay, separate
input/hidden dropout (a diagnosis companion to ``probe.py``, same usage, same output line).

usage: python experiments/runs/cora_space_probe/probe_recipe.py specs.yaml SEEDS
(``AUTOATTEND_DATA_DIR`` must hold planetoid/Cora). Specs as ``probe.py``'s (``name``, ``layers``,
optional ``hp`` over the same base settings, GAT's published recipe), plus three keys of this
script, read from ``hp`` and never passed to the pipeline:

* ``wd_first``: weight decay of the first layer's parameters (every op module writing node 1, i.e.
  the ops of layer 0 reading the raw features, and the stem if there is one); ``weight_decay``
  then applies to every other parameter only. Kipf & Welling's GCN recipe is ``wd_first: 5.0e-4,
  weight_decay: 0``. How: ``GraphChildModule.configure_optimizers`` (src/lit/graph_modules.py, one
  Adam over all parameters with one ``weight_decay``) is replaced, in this process only, by one
  building two Adam param groups from the child's module keys (``graph_child_op_keys``: module key
  -> (op, source node, target node)); Adam's ``weight_decay`` is the coupled L2 term, the gradient
  of TF's ``wd * l2_loss`` in the GCN code.
* ``in_dropout`` / ``hidden_dropout``: input dropout of the ops reading node 0 (the raw features)
  / of every other op and of the linear readout's classifier; each defaults to ``dropout``. How:
  ``GraphNet.child`` is wrapped (the name ``fit_child`` calls, in src.pipeline.graph_stages) so
  that after the pipeline builds the child each ``GraphOp.dropout.p`` (which its forward reads)
  is set by the op's source node. The dropout masks are drawn in the same order either way.

Nothing under src/ changes; early stopping (patience 100) and the selection rule (test at the best
validation epoch) are the pipeline's (conf/graph/default.yaml). Prints mean best-validation
accuracy and test accuracy at that epoch (mean +- population std). A diagnosis tool: it reads test
accuracy, so nothing it prints may select a reported model.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import probe  # noqa: E402  (puts the repository root on sys.path too)
import torch  # noqa: E402

import src.pipeline.graph_stages as graph_stages  # noqa: E402
from src.lit.graph_modules import GraphChildModule  # noqa: E402
from src.models.graph import GraphNet, graph_child_op_keys  # noqa: E402

EXTRA = ("wd_first", "in_dropout", "hidden_dropout")  # this script's keys, kept from the pipeline
recipe: dict = {}  # the current spec's EXTRA keys, read by the two patches below


def first_layer_parameters(model: GraphNet) -> set[int]:
    """ids of the parameters of the stem and of every op module writing node 1 (layer 0)."""
    keys = [k for k, (_, _, target) in graph_child_op_keys(model.arch).items() if target == 1]
    params = [p for k in keys for p in model.encoder.ops[k].parameters()]
    if model.stem is not None:
        params += list(model.stem.parameters())
    return {id(p) for p in params}


def configure_optimizers(self):
    params = [p for p in self.model.parameters() if p.requires_grad]
    if recipe.get("wd_first") is None:
        return torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
    first = first_layer_parameters(self.model)
    groups = [{"params": [p for p in params if id(p) in first], "weight_decay": float(recipe["wd_first"])},
              {"params": [p for p in params if id(p) not in first], "weight_decay": self.hparams.weight_decay}]
    assert groups[0]["params"], "no first-layer parameters found"
    return torch.optim.Adam(groups, lr=self.hparams.lr)


class RecipeGraphNet(GraphNet):
    @classmethod
    def child(cls, *args, **kwargs):
        model = GraphNet.child(*args, **kwargs)
        p_in, p_hidden = recipe.get("in_dropout"), recipe.get("hidden_dropout")
        for key, (_, src, _) in graph_child_op_keys(model.arch).items():
            p = p_in if src == 0 else p_hidden
            if p is not None:
                model.encoder.ops[key].dropout.p = float(p)
        if p_hidden is not None:
            model.dropout.p = float(p_hidden)  # the linear readout's input dropout (unused by readout: last)
        if p_in is not None and model.stem is not None:
            model.stem.p = float(p_in)
        return model


def use_recipe(extra: dict) -> None:
    recipe.clear()
    recipe.update(extra)


GraphChildModule.configure_optimizers = configure_optimizers
graph_stages.GraphNet = RecipeGraphNet

if __name__ == "__main__":
    probe.main(sys.argv[1], int(sys.argv[2]), own_keys=EXTRA, on_spec=use_recipe)
