"""LightningModules for node classification: the single-path graph supernet and the graph child.

Batches are the dicts of :mod:`src.data.planetoid` (``x``, ``edge_index``, ``y`` and the three
split masks). Single-label tasks use cross-entropy and accuracy, multi-label tasks (PPI) BCE on
logits and micro-F1 (torchmetrics).
"""

from __future__ import annotations

import random
from typing import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MultilabelF1Score

from src.choices import WEIGHT_DECAY_ON
from src.lit.modules import ArchRngCheckpoint
from src.models.graph import GraphNet
from src.space import Architecture, FunctionalSpace
from src.utils.errors import check_finite_loss


def node_loss(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Loss over the nodes in ``mask``: logits (N, C) float, y (N,) long class ids (cross-entropy) or
    (N, C) float 0/1 targets (``multilabel``: BCE on logits), mask (N,) bool -> a 0-d tensor."""
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits[mask], y[mask])
    return F.cross_entropy(logits[mask], y[mask])


class LogitMultilabelF1(MultilabelF1Score):
    """Micro-F1 from logits (N, C): a label is predicted where its logit is > 0, as in
    :func:`graph_score_batch`. torchmetrics applies a sigmoid only when some value lies outside
    [0, 1], so logits that all fell inside it would be read as probabilities (threshold 0.5)."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """``preds`` (N, C) float logits, ``target`` (N, C) long 0/1 labels."""
        super().update((preds > 0).to(preds.dtype), target)


def node_metric(num_classes: int, multilabel: bool) -> Metric:
    """Accuracy (single-label) or micro-F1 (multi-label) over nodes."""
    if multilabel:
        return LogitMultilabelF1(num_labels=num_classes, average="micro")
    return MulticlassAccuracy(num_classes, average="micro")


def graph_score_batch(multilabel: bool):
    """A :class:`~src.estimator.SupernetEstimator` scorer over a batch's ``val_mask`` nodes (batch
    dicts as :class:`GraphSupernetModule`'s; the model's logits (N, C)).

    Single-label: (correct, count) -> accuracy. Multi-label: (2 TP, 2 TP + FP + FN) summed over
    batches is exactly the pooled micro-F1, and 0.0 where both sums are 0 (no positive label among the
    validation nodes and none predicted), as :class:`LogitMultilabelF1` scores it.
    """

    def score(model: GraphNet, batch: dict, arch: Architecture) -> tuple[float, int]:
        logits = model(batch["x"], batch["edge_index"], arch)
        m = batch["val_mask"]
        if multilabel:
            pred, y = logits[m] > 0, batch["y"][m] > 0.5
            tp = (pred & y).sum().item()
            return 2 * tp, 2 * tp + (pred & ~y).sum().item() + (~pred & y).sum().item()
        return (logits[m].argmax(-1) == batch["y"][m]).sum().item(), int(m.sum())

    score.score_of_nothing_counted = 0.0 if multilabel else None
    return score


def selection_key(h: dict) -> tuple:
    """Order of evaluations for model selection: highest validation score, ties (frequent with
    500 validation nodes) broken by the lower validation loss when recorded, then the earlier step."""
    return h["val_acc"], -h.get("val_loss", 0.0), -h["step"]


class GraphSupernetModule(ArchRngCheckpoint, pl.LightningModule):
    """Single-path supernet training: each step samples ``archs_per_step`` distinct architectures
    uniformly (1: AutoGL's protocol), back-propagates each one's loss on the training nodes of the
    batch, optionally clips, and takes one Adam step at ``lr / archs_per_step``. Parameters no
    sampled architecture used get no gradient and are left untouched (also by weight decay).

    Validation logs the mean score of ``monitor_archs`` fixed random architectures.

    Batches are dicts (:func:`~src.data.planetoid.data_to_batch`): ``x`` (N, F) float node features
    (a sparse COO tensor for Planetoid's, and for a graph file's sparse ones), ``edge_index`` (2, E)
    long, ``y`` (N,) long class indices or (N, C) float 0/1 labels (multi-label), ``train_mask`` /
    ``val_mask`` / ``test_mask`` (N,) bool; the loss and the scores read only the nodes of their mask.
    """

    def __init__(self, model: GraphNet, space: FunctionalSpace, multilabel: bool = False, archs_per_step: int = 1,
                 lr: float = 5e-3, weight_decay: float = 5e-4, clip: float | None = None, seed: int = 0,
                 monitor_archs: int = 4):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "space"])
        self.model, self.space = model, space
        self.automatic_optimization = False
        self.rng = random.Random(seed)
        self.monitor = space.sample_distinct(monitor_archs, random.Random(seed + 1)) if monitor_archs else []
        self.val_metrics = torch.nn.ModuleList([node_metric(model.num_classes, multilabel) for _ in self.monitor])

    def configure_optimizers(self):
        return torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=self.hparams.lr / self.hparams.archs_per_step,
                                weight_decay=self.hparams.weight_decay)

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """Off the CPU, a batch the loader hands out again (a transductive graph: the same dict
        every step) is copied to the device once: a fresh copy each step would also empty the
        caches keyed by the graph (GCN's normalisation, the sparse features' CSR form)."""
        if device.type == "cpu":
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        cached = getattr(self, "_on_device", None)
        if cached is not None and cached[0] is batch and cached[1] == device:
            return cached[2]
        moved = super().transfer_batch_to_device(batch, device, dataloader_idx)
        self._on_device = (batch, device, moved)
        return moved

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        opt = self.optimizers()
        opt.zero_grad()
        archs = self.space.sample_distinct(self.hparams.archs_per_step, self.rng)
        total = torch.zeros((), device=self.device)
        for arch in archs:
            logits = self.model(batch["x"], batch["edge_index"], arch)
            loss = node_loss(logits, batch["y"], batch["train_mask"], self.hparams.multilabel)
            self.manual_backward(loss)
            total += loss.detach()
        check_finite_loss(float(total), self.global_step + 1)  # before the step: its NaN would reach every weight
        if self.hparams.clip:
            self.clip_gradients(opt, gradient_clip_val=self.hparams.clip, gradient_clip_algorithm="norm")
        opt.step()
        mean = total / len(archs)
        self.log("train/loss", mean, prog_bar=True, on_step=False, on_epoch=True, batch_size=1)
        return mean

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        m = batch["val_mask"]
        if not m.any():
            return
        for arch, metric in zip(self.monitor, self.val_metrics):
            metric.update(self.model(batch["x"], batch["edge_index"], arch)[m], batch["y"][m].long())

    def on_validation_epoch_end(self) -> None:
        if self.monitor:
            self.log("val/score_mean", torch.stack([m.compute() for m in self.val_metrics]).mean(), prog_bar=True)
            for m in self.val_metrics:
                m.reset()


class GraphChildModule(pl.LightningModule):
    """Trains one architecture from scratch; every evaluation scores validation and test together.

    Each evaluation appends ``{"step", "val_loss", "val_acc", "test_acc"}`` (accuracy, or micro-F1
    for a multi-label task, which records no ``val_loss``: the score keys match the text results)
    to :attr:`history`; :meth:`selected` is the evaluation with the best validation score (ties:
    lower validation loss, then earlier). Full-graph tasks train with :meth:`fit_full_batch`,
    mini-batches of graphs (PPI) through a Trainer. Batches as :class:`GraphSupernetModule`'s
    (``x`` (N, F), ``edge_index`` (2, E), ``y`` (N,) or (N, C), the three (N,) bool masks).
    """

    def __init__(self, model: GraphNet, multilabel: bool = False, lr: float = 5e-3, weight_decay: float = 5e-4,
                 on_new_best: Callable[[dict], None] | None = None, weight_decay_on: str = "all"):
        """``on_new_best(evaluation)``, when given, is called after every evaluation that becomes
        the selected one, while the weights are that evaluation's (the retrain saves them there).
        ``weight_decay_on``: ``all`` parameters, or ``first_layer`` alone
        (:meth:`~src.models.graph.GraphNet.first_layer_parameters`; GCN's paper)."""
        if weight_decay_on not in WEIGHT_DECAY_ON:
            raise ValueError(f"weight_decay_on must be one of {', '.join(WEIGHT_DECAY_ON)}, got {weight_decay_on!r}")
        super().__init__()
        self.save_hyperparameters(ignore=["model", "on_new_best"])
        self.model = model
        self.metrics = torch.nn.ModuleDict({s: node_metric(model.num_classes, multilabel) for s in ("val", "test")})
        self.history: list[dict] = []
        self._val_loss: float | None = None
        self.on_new_best = on_new_best

    def _record(self, evaluation: dict) -> None:
        self.history.append(evaluation)
        if self.on_new_best is not None and self.selected() is evaluation:
            self.on_new_best(evaluation)

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = self.hparams.weight_decay
        if self.hparams.weight_decay_on == "all":
            return torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=decay)
        first = {id(p) for p in self.model.first_layer_parameters()}
        groups = [{"params": [p for p in params if id(p) in first], "weight_decay": decay},
                  {"params": [p for p in params if id(p) not in first], "weight_decay": 0.0}]
        return torch.optim.Adam([g for g in groups if g["params"]], lr=self.hparams.lr)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.model(batch["x"], batch["edge_index"])
        loss = node_loss(logits, batch["y"], batch["train_mask"], self.hparams.multilabel)
        check_finite_loss(float(loss.detach()), self.global_step + 1)
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=1)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.model(batch["x"], batch["edge_index"])
        if not self.hparams.multilabel and batch["val_mask"].any():  # one full-graph batch: its loss is the epoch's
            self._val_loss = node_loss(logits, batch["y"], batch["val_mask"], False).item()
        for split in ("val", "test"):
            m = batch[f"{split}_mask"]
            if m.any():
                self.metrics[split].update(logits[m], batch["y"][m].long())

    def on_validation_epoch_end(self) -> None:
        val, test = (self.metrics[s].compute().item() for s in ("val", "test"))
        for m in self.metrics.values():
            m.reset()
        entry = {"step": int(self.global_step)}
        if self._val_loss is not None:
            entry["val_loss"] = self._val_loss
            self._val_loss = None
        self._record({**entry, "val_acc": val, "test_acc": test})
        self.log_dict({"val/acc": val, "test/acc": test}, prog_bar=True)

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict:
        """One no-grad, eval-mode forward scoring validation and test together:
        ``{"val_loss" (single-label only), "val_acc", "test_acc"}``."""
        was_training = self.model.training
        self.model.eval()
        logits = self.model(batch["x"], batch["edge_index"])
        out = {}
        if not self.hparams.multilabel and batch["val_mask"].any():
            out["val_loss"] = node_loss(logits, batch["y"], batch["val_mask"], False).item()
        for split in ("val", "test"):
            m = batch[f"{split}_mask"]
            metric = self.metrics[split]
            if m.any():
                metric.update(logits[m], batch["y"][m].long())
            out[f"{split}_acc"] = metric.compute().item()
            metric.reset()
        self.model.train(was_training)
        return out

    def fit_full_batch(self, batch: dict, epochs: int, eval_every: int = 1, patience: int | None = None) -> list[dict]:
        """Train on one full graph without a Trainer: ``epochs`` full-batch Adam steps, evaluating
        validation and test after every ``eval_every``-th step (and the last one). ``patience``:
        stop once ``patience`` steps have passed since the evaluation :meth:`selected` would pick
        (the GAT paper's early stopping; ``None``: run every epoch).

        The same optimisation as ``Trainer.fit`` with one step per epoch and validation every
        ``eval_every`` epochs (same optimiser, same dropout draws, same ``history``; the Trainer's
        DataLoaders must have their own generators, else each epoch's iterator takes a seed from
        the global RNG), minus the Trainer's per-step bookkeeping, which costs more than the step
        itself on small graphs (tests/test_graph_models.py checks both paths give the same history).
        """
        opt = self.configure_optimizers()
        self.model.train()
        finite = torch.ones((), dtype=torch.bool, device=batch["x"].device)  # read at evaluations: no sync a step
        for step in range(1, int(epochs) + 1):
            opt.zero_grad()
            logits = self.model(batch["x"], batch["edge_index"])
            loss = node_loss(logits, batch["y"], batch["train_mask"], self.hparams.multilabel)
            loss.backward()
            opt.step()
            finite &= torch.isfinite(loss.detach())
            if step % eval_every == 0 or step == epochs:
                if not finite:  # with an evaluation every step, this step's loss is the one that is not finite
                    check_finite_loss(float(loss.detach()) if eval_every == 1 else float("nan"), step,
                                      by=eval_every > 1)
                scores = self.evaluate(batch)
                self._record({"step": step, **{k: scores[k] for k in ("val_loss", "val_acc", "test_acc") if k in scores}})
                if patience is not None and step - self.selected()["step"] >= patience:
                    break
        return self.history

    def selected(self) -> dict:
        """The evaluation :func:`selection_key` ranks first (highest validation score, then lowest
        validation loss, then earliest)."""
        if not self.history:
            raise RuntimeError("the child was never evaluated")
        return max(self.history, key=selection_key)
