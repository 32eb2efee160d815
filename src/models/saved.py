"""A retrained model on disk: the weights of a seed's selected evaluation, with what rebuilds it.

``retrain/seed_<s>/model.pt`` holds the child model's ``state_dict`` at the evaluation the
selection rule picks (the highest validation accuracy, earliest on ties), the architecture, the
constructor's settings and that evaluation's step and scores. It is rewritten whenever a seed's
validation accuracy improves, before the checkpoint that records that evaluation, so a resumed
seed leaves the same file as an uninterrupted one. :func:`load_text_child` gives the model back,
ready for ``model(tokens, mask)`` (token ids of the run's vocabulary, ``src.evaluate`` rebuilds it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from src.models.text import TextClassifier
from src.space import Architecture
from src.utils.errors import AutoAttendError
from src.utils.io import atomic_target

MODEL_FILE = "model.pt"
FORMAT = "autoattend.text_child.v1"


def text_child_spec(model: TextClassifier, arch: Architecture, **settings: Any) -> dict[str, Any]:
    """What :func:`load_text_child` needs besides the weights: ``settings`` are the keyword
    arguments :meth:`TextClassifier.child` was built with (dim, heads, dropout, ...)."""
    return {"format": FORMAT, "architecture": arch.to_dict(), "num_classes": model.classifier.out_features,
            "embedding_shape": list(model.embedding.weight.shape), **settings}


def save_text_child(path: Path, model: TextClassifier, spec: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """Write the model's weights (every tensor, frozen embeddings included, so the file stands
    alone), ``spec`` and ``evaluation`` (step, val_acc, test_acc) to ``path`` through a temporary
    file and a rename."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_target(path) as tmp:
        torch.save({"spec": spec, "evaluation": dict(evaluation), "state_dict": state}, tmp)


def read_saved(path: str | Path) -> dict[str, Any]:
    """The saved record; a file that is missing or not one of these is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise AutoAttendError(f"{path}: no saved model (retrain/seed_<s>/{MODEL_FILE} is written while a seed trains)")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise AutoAttendError(f"{path}: not a saved model ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(record, dict) or record.get("spec", {}).get("format") != FORMAT:
        raise AutoAttendError(f"{path}: not a saved model of this project (expected format {FORMAT})")
    return record


def load_text_child(path: str | Path) -> tuple[TextClassifier, dict[str, Any]]:
    """The saved model, in eval mode, and its record (``spec``, ``evaluation``)."""
    record = read_saved(path)
    spec = dict(record["spec"])
    arch = Architecture.from_dict(spec.pop("architecture"), source=str(path))
    shape = spec.pop("embedding_shape")
    num_classes = spec.pop("num_classes")
    spec.pop("format")
    model = TextClassifier.child(torch.zeros(*shape), num_classes, arch, **spec)
    model.load_state_dict(record["state_dict"])
    model.eval()
    return model, {"spec": record["spec"], "evaluation": record["evaluation"]}
