"""A retrained model on disk: the weights of a seed's selected evaluation, with what rebuilds it.

``retrain/seed_<s>/model.pt`` (graph baselines: ``baselines/<name>/seed_<s>/model.pt``) holds the
child model's ``state_dict`` at the evaluation the selection rule picks, the architecture, the
constructor's settings and that evaluation's step and scores. A text seed rewrites it whenever its
selected evaluation changes, before the checkpoint that records that evaluation, so a resumed
seed leaves the same file as an uninterrupted one; a graph seed (never resumed inside its
training) keeps the weights in memory and writes the file once, when it ends. :func:`load_child` gives the model back in eval
mode: a :class:`TextClassifier` for ``model(tokens, mask)`` (token ids (B, T) of the run's
vocabulary, mask (B, T) True at real tokens -> logits (B, C)) or a :class:`GraphNet` for
``model(x, edge_index)`` ((N, F) features, (2, E) edges -> logits (N, C)); ``src.evaluate``
rebuilds the run's data and checks them against the recorded scores.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from src.models.text import TextClassifier
from src.space import Architecture
from src.utils.errors import AutoAttendError
from src.utils.io import atomic_target, refused_by_weights_only, remove_left_temporaries

if TYPE_CHECKING:  # imported where a graph model is built: PyG takes over a second to import
    from src.models.graph import GraphNet

MODEL_FILE = "model.pt"
TEXT_FORMAT = "autoattend.text_child.v1"
GRAPH_FORMAT = "autoattend.graph_child.v1"


def text_child_spec(model: TextClassifier, arch: Architecture, text_input: dict[str, Any] | None = None,
                    label_names: list[str] | None = None, **settings: Any) -> dict[str, Any]:
    """What :func:`load_child` needs besides the weights: ``settings`` are the keyword arguments
    :meth:`TextClassifier.child` was built with (dim, heads, dropout, ...). ``text_input``
    (:meth:`TextEncoder.to_dict <src.data.raw_text.TextEncoder.to_dict>`) and ``label_names`` let
    ``src.predict`` classify new text with the file alone."""
    spec = {"format": TEXT_FORMAT, "architecture": arch.to_dict(), "num_classes": model.classifier.out_features,
            "embedding_shape": list(model.embedding.weight.shape), **settings}
    if text_input is not None:
        spec["text_input"] = text_input
    if label_names is not None:
        spec["label_names"] = list(label_names)
    return spec


def graph_child_spec(arch: Architecture, in_dim: int, num_classes: int, multilabel: bool = False,
                     **settings: Any) -> dict[str, Any]:
    """As :func:`text_child_spec` for :meth:`GraphNet.child` (hidden, heads, dropout, act, ...);
    ``multilabel``: its ``num_classes`` outputs are independent labels (sigmoid), not classes, which
    ``src.predict --graph`` needs to know without the run's data."""
    return {"format": GRAPH_FORMAT, "architecture": arch.to_dict(), "in_dim": in_dim, "num_classes": num_classes,
            "multilabel": bool(multilabel), **settings}


def weights_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of every tensor of the model's ``state_dict`` (a text model's frozen embeddings
    included, so that a saved file stands alone)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_child(path: Path, weights: dict[str, torch.Tensor], spec: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """Write ``weights`` (:func:`weights_of`), ``spec`` and ``evaluation`` (step, val_acc,
    test_acc, ...) to ``path`` through a temporary file and a rename. Temporary files an earlier write of
    ``path`` left when killed are removed first (a seed's model is written by that seed's process alone)."""
    remove_left_temporaries(path)
    with atomic_target(path) as tmp:
        torch.save({"spec": spec, "evaluation": dict(evaluation), "state_dict": weights}, tmp)


def read_saved(path: str | Path) -> dict[str, Any]:
    """The saved record; a file that is missing or not one of these is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise AutoAttendError(f"{path}: no saved model (retrain/seed_<s>/{MODEL_FILE} is written while a seed trains)")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; torch.load's own message is about mmap
        what = "an empty file" if path.stat().st_size == 0 else "not a file torch.save wrote"
        raise AutoAttendError(f"{path}: not a saved model ({what}; expected retrain/seed_<s>/{MODEL_FILE})")
    try:
        # mapped, not read: a caller that wants only the spec does not pay for the weights
        record = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        if refused_by_weights_only(exc):  # torch's advice (in terminal colours) is to trust the file
            raise AutoAttendError(f"{path}: not a saved model (it holds objects other than tensors and plain values, "
                                  "which this project's models never do; not loaded, as rebuilding them could run "
                                  "code)") from None
        raise AutoAttendError(f"{path}: not a saved model ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(record, dict) or record.get("spec", {}).get("format") not in (TEXT_FORMAT, GRAPH_FORMAT):
        raise AutoAttendError(f"{path}: not a saved model of this project (expected format {TEXT_FORMAT} or "
                              f"{GRAPH_FORMAT})")
    return record


def load_child(path: str | Path) -> tuple[TextClassifier | GraphNet, dict[str, Any]]:
    """The saved model, in eval mode, and its record (``spec``, ``evaluation``)."""
    record = read_saved(path)
    spec = dict(record["spec"])
    arch = Architecture.from_dict(spec.pop("architecture"), source=str(path))
    num_classes = spec.pop("num_classes")
    for about_input_output in ("text_input", "label_names", "multilabel"):
        spec.pop(about_input_output, None)
    if spec.pop("format") == TEXT_FORMAT:
        model = TextClassifier.child(torch.zeros(*spec.pop("embedding_shape")), num_classes, arch, **spec)
    else:
        from src.models.graph import GraphNet

        model = GraphNet.child(spec.pop("in_dim"), num_classes, arch, **spec)
    model.load_state_dict(record["state_dict"])
    model.eval()
    return model, {"spec": record["spec"], "evaluation": record["evaluation"]}
