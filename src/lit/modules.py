"""LightningModules: the weight-sharing supernet and the fixed-architecture child."""

from __future__ import annotations

import random
from typing import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from src.choices import UNUSED_GRADS
from src.models.multi_arch import backward_archs
from src.models.optim import fill_unused_grads, supernet_adam
from src.models.text import TextClassifier
from src.space import Architecture, FunctionalSpace
from src.utils.errors import AutoAttendError, check_finite_loss


class TorchRngCheckpoint:
    """Mixin: torch's global RNG (the dropout masks, or the seeds of each step's dropout
    generators) travels with the checkpoint, so a resumed fit draws what an uninterrupted one would.
    On a GPU the dropout masks of tensors there come from the CUDA generators, which travel too
    (``torch_cuda_rng_states``, when the run has used CUDA). The loaded CPU state stays in
    ``restored_torch_rng_state`` for a resume inside an epoch to apply again
    (:class:`~src.pipeline.common._LastCheckpoint`)."""

    restored_torch_rng_state: torch.Tensor | None = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["torch_cuda_rng_states"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            self.restored_torch_rng_state = checkpoint["torch_rng_state"]
            torch.set_rng_state(self.restored_torch_rng_state)
        cuda_states = checkpoint.get("torch_cuda_rng_states")
        if cuda_states and torch.cuda.is_available():
            for index, state in enumerate(cuda_states[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(state, index)


class EpochLossCheckpoint:
    """Mixin: the epoch's mean training loss, kept by the module so that it travels with a
    checkpoint: a fit resumed inside an epoch logs the ``train/loss_epoch`` an uninterrupted one
    would (Lightning's own epoch aggregates restart empty). Subclasses call :meth:`record_loss`
    once per step; ``EPOCH_LOSS_KEY`` names the checkpoint entry."""

    EPOCH_LOSS_KEY = "epoch_loss"
    epoch_loss: dict

    def record_loss(self, loss: float, examples: int) -> None:
        """Adds one step's mean loss over ``examples`` examples to the epoch's running sums."""
        self.epoch_loss["sum"] += loss * examples
        self.epoch_loss["examples"] += examples

    def on_train_epoch_start(self) -> None:  # not called when a fit resumes inside the epoch
        self.epoch_loss = {"sum": 0.0, "examples": 0}

    def on_train_epoch_end(self) -> None:
        if self.epoch_loss["examples"]:
            self.log("train/loss_epoch", self.epoch_loss["sum"] / self.epoch_loss["examples"], on_epoch=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[self.EPOCH_LOSS_KEY] = dict(self.epoch_loss)
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.epoch_loss = dict(checkpoint.get(self.EPOCH_LOSS_KEY, {"sum": 0.0, "examples": 0}))
        super().on_load_checkpoint(checkpoint)


class ArchRngCheckpoint(TorchRngCheckpoint):
    """Mixin for supernet modules: the architecture sampler's RNG (``self.rng``) travels with the
    checkpoint too, so a resumed run samples the architectures an uninterrupted one would."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["arch_rng_state"] = self.rng.getstate()
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "arch_rng_state" in checkpoint:
            self.rng.setstate(checkpoint["arch_rng_state"])
        super().on_load_checkpoint(checkpoint)


class SupernetModule(EpochLossCheckpoint, ArchRngCheckpoint, pl.LightningModule):
    """Trains a supernet with ``archs_per_step`` distinct architectures per mini-batch.

    Each step (the authors' protocol): sample k distinct architectures uniformly, back-propagate
    each one's cross-entropy on the same batch (gradients summed), clip the global norm once,
    take one Adam step with learning rate ``lr / k``. Parameters no sampled architecture used get
    no gradient (``None``) and are left untouched by Adam; ``unused_grads="zeros"``: those used in an
    earlier step get a zero gradient, so Adam moves them by their moments, as the authors' script did
    under torch 1.x (:func:`~src.models.optim.fill_unused_grads`).

    ``arch_workers``: threads that back-propagate the architectures of a step in parallel on CPU
    (:func:`~src.models.multi_arch.backward_archs`; the gradients do not depend on it). With more
    than one, the workers call ``torch.autograd.grad`` instead of ``manual_backward``, so
    Lightning's ``on_before_backward`` / ``on_after_backward`` hooks are not called. Ignored on
    other devices.

    ``optimizer_state``: ``"float32"`` (``torch.optim.Adam``, the authors' protocol) or
    ``"bfloat16"`` (Adam's moments stored in bfloat16, stochastically rounded: half the optimizer
    memory; a labelled option, see :mod:`src.models.optim`). ``optimizer_offload_dir``: keep the
    moments in a file there instead of in memory (same arithmetic; checkpoints then name a snapshot
    file in that folder, see :class:`~src.models.optim.OffloadedMoments`).

    Validation logs the mean accuracy of ``monitor_archs`` fixed random architectures.

    Batches are :func:`~src.data.text.pad_collate` dicts: ``tokens`` (B, T) long, ``mask`` (B, T)
    bool, True at real tokens, ``labels`` (B,) long.

    Logs ``train/loss_step`` (a step's mean loss over its architectures) and, at each epoch end,
    ``train/loss_epoch`` (their mean over the epoch's steps, weighted by batch size; kept by the
    module, :class:`EpochLossCheckpoint`).
    """

    EPOCH_LOSS_KEY = "supernet_epoch_loss"

    def __init__(self, model: TextClassifier, space: FunctionalSpace, archs_per_step: int = 16, lr: float = 5e-4,
                 clip: float = 5.0, weight_decay: float = 0.0, seed: int = 0, monitor_archs: int = 4,
                 arch_workers: int = 1, optimizer_state: str = "float32", optimizer_offload_dir: str | None = None,
                 unused_grads: str = "none"):
        super().__init__()
        if unused_grads not in UNUSED_GRADS:
            raise ValueError(f"unused_grads must be one of {', '.join(UNUSED_GRADS)}, got {unused_grads!r}")
        self.save_hyperparameters(ignore=["model", "space"])
        self.model = model
        self.space = space
        self.automatic_optimization = False
        self.rng = random.Random(seed)
        self.monitor = space.sample_distinct(monitor_archs, random.Random(seed + 1)) if monitor_archs else []
        self.val_acc = torch.nn.ModuleList(
            [MulticlassAccuracy(model.classifier.out_features, average="micro") for _ in self.monitor])
        self.epoch_loss = {"sum": 0.0, "examples": 0}

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return supernet_adam(params, lr=self.hparams.lr / self.hparams.archs_per_step,
                             weight_decay=self.hparams.weight_decay, state_dtype=self.hparams.optimizer_state,
                             seed=self.hparams.seed, offload_dir=self.hparams.optimizer_offload_dir)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        opt = self.optimizers()
        zeros = self.hparams.unused_grads == "zeros"
        opt.zero_grad(set_to_none=not zeros)
        archs = self.space.sample_distinct(self.hparams.archs_per_step, self.rng)
        workers = self.hparams.arch_workers if self.device.type == "cpu" else 1
        total = backward_archs(self.model, batch["tokens"], batch["mask"], batch["labels"], archs,
                               self.manual_backward, workers)
        mean = total / len(archs)
        value = float(mean)
        check_finite_loss(value, self.global_step + 1)  # before the step: its NaN would reach every weight
        if zeros:  # the gradients kept as zeros; after a resume, those of the parameters stepped before it
            fill_unused_grads(opt.optimizer)
        self.clip_gradients(opt, gradient_clip_val=self.hparams.clip, gradient_clip_algorithm="norm")
        opt.step()
        examples = len(batch["labels"])
        self.record_loss(value, examples)
        self.log("train/loss_step", mean, prog_bar=True, on_step=True, on_epoch=False, batch_size=examples)
        return mean

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        for arch, metric in zip(self.monitor, self.val_acc):
            metric.update(self.model(batch["tokens"], batch["mask"], arch), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        if self.monitor:
            accs = torch.stack([m.compute() for m in self.val_acc])
            self.log("val/acc_mean", accs.mean(), prog_bar=True)
            for m in self.val_acc:
                m.reset()


class ChildModule(EpochLossCheckpoint, TorchRngCheckpoint, pl.LightningModule):
    """Trains one architecture from scratch; evaluates validation and test together.

    Batches as :class:`SupernetModule`'s (``tokens``, ``mask``, ``labels``; :func:`~src.data.text.pad_collate`).
    Dataloader 0 of validation is the validation split, dataloader 1 the test split. Every
    evaluation appends ``{"step", "val_acc", "test_acc"}`` to :attr:`history`, so the test
    accuracy at the best validation point can be read off afterwards (:meth:`selected`).
    Logs ``train/loss_step`` and ``train/loss_epoch`` (the epoch's mean, weighted by batch size).
    The history, the epoch's running loss sums (:class:`EpochLossCheckpoint`) and torch's global
    RNG (the dropout masks) travel with a checkpoint, so a fit resumed from one, at an epoch end or
    after an evaluation inside an epoch, ends as an uninterrupted one.
    """

    EPOCH_LOSS_KEY = "child_epoch_loss"

    def __init__(self, model: TextClassifier, lr: float = 5e-4, weight_decay: float = 0.0,
                 on_new_best: Callable[[dict], None] | None = None):
        """``on_new_best(evaluation)``, when given, is called after every evaluation that becomes
        the selected one (:meth:`selected`), while the weights are that evaluation's (the
        retrain saves them there: ``src/models/saved.py``)."""
        super().__init__()
        self.save_hyperparameters(ignore=["model", "on_new_best"])
        self.model = model
        n = model.classifier.out_features
        self.metrics = torch.nn.ModuleList([MulticlassAccuracy(n, average="micro") for _ in range(2)])
        self.history: list[dict] = []
        self.epoch_loss = {"sum": 0.0, "examples": 0}
        self.on_new_best = on_new_best

    @property
    def arch(self) -> Architecture:
        return self.model.arch

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = F.cross_entropy(self.model(batch["tokens"], batch["mask"]), batch["labels"])
        examples = len(batch["labels"])
        value = float(loss.detach())
        check_finite_loss(value, self.global_step + 1)
        self.record_loss(value, examples)
        self.log("train/loss_step", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=examples)
        return loss

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.metrics[dataloader_idx].update(self.model(batch["tokens"], batch["mask"]), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        unseen = next((name for name, m in zip(("validation", "test"), self.metrics) if not m.update_called), None)
        if unseen is not None:  # its accuracy was computed over nothing: 0.0, with only torchmetrics' warning
            for m in self.metrics:  # a fit again with the right loaders starts from nothing
                m.reset()
            raise AutoAttendError(f"ChildModule evaluates two splits together, so fit it with two validation "
                                  f"dataloaders, [validation, test]; no batch of the {unseen} split came")
        val, test = (m.compute().item() for m in self.metrics)
        for m in self.metrics:
            m.reset()
        if not self.trainer.sanity_checking:
            self.history.append({"step": int(self.global_step), "val_acc": val, "test_acc": test})
            if self.on_new_best is not None and self.selected() is self.history[-1]:
                self.on_new_best(self.history[-1])
        self.log_dict({"val/acc": val, "test/acc": test}, prog_bar=True, add_dataloader_idx=False)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["child_history"] = list(self.history)
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint.get("child_history", []))
        super().on_load_checkpoint(checkpoint)

    def selected(self) -> dict:
        """The evaluation with the highest validation accuracy (earliest on ties)."""
        if not self.history:
            raise RuntimeError("the child was never evaluated")
        return max(self.history, key=lambda h: (h["val_acc"], -h["step"]))
