"""Pieces the search and retrain pipelines share: hardware, data, loaders, trainer, checkpoints
(the torch-free ones, from the config alone, are in :mod:`src.pipeline.config`)."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import logging
import os
import sys
import threading
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig, OmegaConf
from rich.file_proxy import FileProxy
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader, Subset

from src.choices import FULL_PRECISIONS
from src.data.sampling import EpochShuffleSampler
from src.data.text import pad_collate
from src.lit.checkpoint_io import StreamingCheckpointIO
from src.models import cpu_kernels
from src.pipeline.config import note_computing, task_family
from src.utils import allocator, interrupt, lock
from src.utils.cpu import cpu_facts, describe
from src.utils.errors import AutoAttendError, TrainingDivergedError
from src.utils.io import atomic_target, refused_by_weights_only, remove_left_temporaries
from src.utils.logs import log_to_files_only
from src.utils.parallel import check_shared_memory

log = logging.getLogger(__name__)


def set_float32_precision(precision: str | None) -> str:
    """float32 products as ``hardware.matmul_precision`` says; returns the precision set.

    ``None`` or ``highest``: true float32 in matmuls *and* in cuDNN's convolutions and RNNs (torch
    allows TF32 in cuDNN by default, whatever the matmul precision); ``high`` / ``medium``: TF32
    (or bfloat16 passes) allowed in both, a labelled faster option that changes results (on an
    H200: logits 1.6e-3 relative, a candidate's dev score by one sentence in 1,101;
    ``experiments/README.md``, "GPU figures"). On the CPU, ``highest`` is torch's default.
    """
    precision = precision or "highest"
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = precision != "highest"
    return precision


def lower_precision(cfg: DictConfig) -> str | None:
    """The setting that makes a run compute below float32 (``hardware.precision`` a mixed one, or
    ``hardware.matmul_precision`` other than ``highest`` in float32), as ``key=value`` text;
    ``None`` for the paper's float32 (and float64). Such a run is labelled so wherever its figures
    are written."""
    precision = str(cfg.hardware.get("precision") or "32-true")
    if precision not in FULL_PRECISIONS:
        return f"hardware.precision={precision}"
    matmul = cfg.hardware.get("matmul_precision")
    if precision in ("32-true", "32") and matmul not in (None, "highest"):  # float64 products ignore it
        return f"hardware.matmul_precision={matmul}"
    return None


def warn_oversubscribed(threads: int, key: str) -> bool:
    """Warn when ``threads`` is more than the cores this process may run on: torch's threads then
    wait on each other (a ``budget=smoke`` Cora search with ``hardware.threads=64`` on 2 cores took
    43 s instead of 3 s, 2026-12-05), with no word of why. Returns whether it warned."""
    from src.utils.parallel import usable_cores

    cores = usable_cores()
    if threads <= cores:
        return False
    log.warning("%s=%d is more than the %d core(s) this process may run on: the extra threads slow it "
                "down rather than speed it up (null: torch's default)", key, threads, cores)
    return True


# torch's thread count when the process started: a job of a sweep that sets none gets this, whatever
# the jobs before it set (setup_hardware)
STARTING_THREADS = torch.get_num_threads()


def apply_compute_settings(cfg: DictConfig) -> None:
    """The job's float32 precision (:func:`set_float32_precision`) and fused-kernel backend, in this
    process: :func:`setup_hardware`'s, and a graph child's worker process's, which starts fresh."""
    set_float32_precision(cfg.hardware.get("matmul_precision"))
    cpu_kernels.set_backend(cfg.hardware.get("kernels") or "auto")


def setup_hardware(cfg: DictConfig) -> None:
    """Thread count, float32 precision (:func:`set_float32_precision`) and the fused-kernel backend
    from the ``hardware`` group.

    Graph tasks default to ``graph.threads`` when ``hardware.threads`` is unset; with neither, the
    process's thread count as it started (torch's default), so a text job of a sweep run after a
    graph job (``-m +task=cora,sst2``) computes as it does alone, not on the graph job's one thread.
    """
    threads = cfg.hardware.get("threads")
    if not threads and task_family(cfg) == "graph":
        threads = cfg.graph.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
        warn_oversubscribed(int(threads), "hardware.threads" if cfg.hardware.get("threads") else "graph.threads")
    else:
        torch.set_num_threads(STARTING_THREADS)
    apply_compute_settings(cfg)
    lower = lower_precision(cfg)
    if lower is not None:
        log.warning("%s: a labelled lower precision, not the paper's float32 protocol (results.json and "
                    "summary.json record it as lower_precision)", lower)
    malloc = allocator.active()
    if malloc == "system malloc" and sys.platform.startswith("linux"):
        log.info("allocator: system malloc (the entry points restart with mimalloc unless "
                 "AUTOATTEND_ALLOCATOR=system or LD_PRELOAD is set: about 40 % less peak memory at the "
                 'paper\'s supernet size; docs/performance.md)')
    else:
        log.info("allocator: %s", malloc)
    log.info("cpu: %s", describe(cpu_facts()))
    log.info("libraries: %s", lock.describe_differences(lock.differences()))


def instantiate_datamodule(cfg: DictConfig, **settings) -> pl.LightningDataModule:
    """The task's DataModule (``task.datamodule``) with the run's folders and seed (``data.seed``, else the run's)
    and ``settings``, not set up.
    The values are given to the class as they are, not through Hydra's ``instantiate``, which merges them into
    a config and resolves them again: a folder named with ``${`` (escaped on the command line as Hydra asks,
    ``\\${``) was an InterpolationKeyError traceback."""
    make = instantiate(cfg.task.datamodule, _partial_=True)
    data_seed = OmegaConf.select(cfg, "data.seed")
    return make(data_dir=cfg.paths.data_dir, cache_dir=cfg.paths.cache_dir,
                seed=cfg.seed if data_seed is None else data_seed, **settings)


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """The task's DataModule with the run's data settings; ``setup()`` already called."""
    if task_family(cfg) == "graph":
        dm = instantiate_datamodule(cfg)
        dm.setup("fit")
        return dm
    dm = instantiate_datamodule(cfg, train_level=cfg.data.train_level, max_len=cfg.data.max_len,
                                glove_path=cfg.data.glove_path, embedding_source=cfg.data.embedding_source,
                                num_workers=cfg.hardware.num_workers)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def data_facts(dm, graph: bool) -> dict:
    """What identifies the data a DataModule (after ``setup()``) serves, for ``data.json``: the
    classes and, for text, the vocabulary (its size and a SHA-256 of its words, which come from
    every split) and each split's number of examples; for graphs, the feature width, the number of
    training graphs and each (evaluation) graph's nodes and edges. Sizes and the vocabulary, not
    every token: cheap on the largest benchmarks, and enough to tell other files apart. The labels
    too, as a SHA-256 of every split's (graph's) labels in order: files with the same words and
    sizes but edited labels made src.evaluate blame the kept models."""
    facts: dict = {"classes": int(dm.num_classes)}
    if graph:
        graphs = ([dm.graph] if dm.graph is not None else []) + list(dm.eval_batches)
        facts.update(features=int(dm.num_features), train_graphs=len(dm.train_graphs),
                     nodes=[int(g["x"].size(0)) for g in graphs], edges=[int(g["edge_index"].size(1)) for g in graphs],
                     labels_sha256=_labels_digest(g["y"] for g in graphs))
        return facts
    words = dm.vocab.to_list()
    digest = hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]
    splits = [getattr(dm, f"{split}_set") for split in ("train", "val", "test")]
    facts.update(vocabulary=len(words), vocabulary_sha256=digest,
                 examples={split: len(data) for split, data in zip(("train", "val", "test"), splits)},
                 labels_sha256=_labels_digest(data.labels for data in splits))
    return facts


def _labels_digest(label_tensors) -> str:
    """The first 16 hex digits of a SHA-256 over the tensors' values (as int64 for class indices,
    float32 for PPI's 0/1 label matrices), in order."""
    sha = hashlib.sha256()
    for labels in label_tensors:
        labels = labels.detach().cpu()
        labels = labels.to(torch.float32 if labels.is_floating_point() else torch.int64).contiguous()
        sha.update(str(tuple(labels.shape)).encode())
        sha.update(labels.numpy().tobytes())
    return sha.hexdigest()[:16]


def check_data_of_run(run_dir: Path, cfg: DictConfig, dm, graph: bool) -> None:
    """For a command that reloads a run's models (``src.evaluate``, ``src.predict``): the data
    rebuilt from ``cfg`` are those the run recorded in ``data.json`` (runs from before that
    record pass), else one error line saying what differs."""
    from src.pipeline.run_settings import OWN_DATA_TASKS, describe_data_difference, own_data_task, read_data_record

    recorded = read_data_record(run_dir)
    differ = "" if recorded is None else describe_data_difference(recorded, data_facts(dm, graph))
    if differ:
        # +task=csv and +task=graph_file read task.path (data of one's own, not under paths.data_dir)
        own = own_data_task(cfg.task)
        where = f"task.path={cfg.task.path}" if own else f"paths.data_dir={cfg.paths.data_dir}"
        kind = OWN_DATA_TASKS[own][1] if own else "folder"
        raise AutoAttendError(f"{run_dir}: the data at {where} are not the run's "
                              f"({differ}); give the run's data {kind} ({where.split('=')[0]}=...)")


def make_loader(dataset, batch_size: int, shuffle: bool, seed: int, subset: int | None = None,
                num_workers: int = 0) -> DataLoader:
    """A padded-batch loader; ``subset`` keeps a seeded random subset of that many examples.
    Shuffled loaders draw each epoch's order from ``(seed, epoch)``, so a resumed run repeats it."""
    if subset is not None and subset < len(dataset):
        g = torch.Generator().manual_seed(seed)
        dataset = Subset(dataset, torch.randperm(len(dataset), generator=g)[:subset].tolist())
    sampler = EpochShuffleSampler(len(dataset), seed) if shuffle else None
    if num_workers > 0:
        check_shared_memory("hardware.num_workers=0")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=pad_collate,
                      num_workers=num_workers)


class _KeptRowsWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` keeps its rows logged before
    step ``keep_below`` instead of being deleted (Lightning starts every fit with an empty file),
    and that every save replaces the file atomically (see :meth:`save`)."""

    def __init__(self, log_dir: str, keep_below: int | None):
        self.keep_below = keep_below
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.keep_below is None or not path.is_file():
            return super()._check_log_dir_exists()
        header, rows = self._read_rows(path)
        self._write_rows(path, header, [row for row in rows if row.get("step") and
                                        int(float(row["step"])) < self.keep_below])

    def save(self) -> None:
        """Write the buffered rows: the whole file (its rows, then the new ones, under the union of
        their columns, sorted as Lightning sorts them) goes to a temporary file that replaces
        ``metrics.csv``. Lightning's own save rewrites the header in place and then appends; a
        Ctrl-C between the two (its teardown saves again) left rows with more fields than the
        header, which no reader can place, and the resume failed on them."""
        if not self.metrics:
            return
        path = Path(self.metrics_file_path)
        header, rows = self._read_rows(path) if path.is_file() else ([], [])
        keys = sorted(set(self.metrics_keys).union(header, *self.metrics))
        self._write_rows(path, keys, rows + self.metrics)
        self.metrics = []

    def _read_rows(self, path: Path) -> tuple[list[str], list[dict]]:
        """The header and rows of ``path``; a row with more fields than the header (written by an
        earlier version interrupted mid-save) is left out with a warning."""
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            header = list(reader.fieldnames or [])
        placed = [row for row in rows if None not in row]
        if len(placed) < len(rows):
            log.warning("%s: %d row(s) with more fields than the header left out (an interrupted write)", path,
                        len(rows) - len(placed))
        return header, placed

    def _write_rows(self, path: Path, keys: list[str], rows: list[dict]) -> None:
        with atomic_target(path) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = keys


class ResumableCSVLogger(CSVLogger):
    """A CSV logger for a fit resumed from a checkpoint at step ``keep_below``: the rows an earlier
    fit logged before that step stay in ``metrics.csv`` (those after it are logged again by the
    resumed fit). ``keep_below=None``: a fresh file, as Lightning's logger."""

    def __init__(self, *args, keep_below: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._keep_below = keep_below

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeptRowsWriter(self.log_dir, self._keep_below)
        return self._experiment


class StopAtStep(Callback):
    """Ends training once ``max_steps`` optimizer steps are done (``None`` or negative: never).

    Used instead of ``Trainer(max_steps=...)``: with ``max_steps`` set, Lightning 2.6 resumes a
    checkpoint written at an epoch end as if that epoch were unfinished, and runs one epoch (its
    steps) fewer than an uninterrupted fit. Stopping here lets the epoch end as usual (its
    validation and checkpoint run). The fit's last step is logged whichever limit ends it."""

    def __init__(self, max_steps: int | None):
        self.max_steps = max_steps

    def _check(self, trainer: pl.Trainer) -> None:
        if self.max_steps is not None and self.max_steps >= 0 and trainer.global_step >= self.max_steps:
            trainer.should_stop = True

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._check(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        self._check(trainer)

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch, batch_idx: int) -> None:
        # Lightning logs a step every log_every_n_steps or once should_stop is set (a stop at max_steps): a fit
        # whose epochs run out never sets it, and one of under 50 steps logged no train/loss_step at all
        epochs = trainer.max_epochs
        last_epoch = epochs is not None and 0 < epochs <= trainer.current_epoch + 1
        if last_epoch and batch_idx + 1 >= trainer.num_training_batches:
            trainer.log_every_n_steps = 1


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


FIRST_PROGRESS_LINE_S = 10.0


def progress_line_due(now: float, start: float, last_line: float | None, every_s: float, estimated: bool) -> bool:
    """Whether a progress line is due (the rule of :class:`LogProgress` and :class:`ChildrenProgress`):
    the first once :data:`FIRST_PROGRESS_LINE_S` seconds have passed with an ``estimated`` time left,
    or ``every_s`` seconds without one; then at most every ``every_s`` seconds."""
    if last_line is not None:
        return now - last_line >= every_s
    if now - start >= every_s:
        return True
    return estimated and now - start >= min(FIRST_PROGRESS_LINE_S, every_s)


def say_progress(text: str, files_only: bool) -> None:
    """A progress line: in the run's log files alone beside a terminal's bar (``files_only``), else
    on the console too."""
    if files_only:
        log_to_files_only(log, text)
    else:
        log.info("%s", text)


class LogProgress(Callback):
    """Progress as log lines: one line
    ``<label>: step s / total (p %), <elapsed> elapsed, about <eta> left; <latest metrics>``,
    checked after every step and every validation (so the metrics are often a fresh validation's):
    the first once :data:`FIRST_PROGRESS_LINE_S` seconds have passed and a step after the first has
    ended (so it carries an estimate), then at most every ``every_s`` seconds. Without a terminal
    (a log file, a batch job) these lines are the progress display; with one, ``files_only`` writes
    them to the run's log file alone, beside the console's bar, for whoever follows that file.
    The rate is measured from the end of this process's first step, so a resumed fit's estimate is
    its own, and the first step's one-off costs (building the CPU kernels, oneDNN's primitives)
    do not make a fresh run's first estimate hours long."""

    def __init__(self, label: str, every_s: float = 60.0, clock=time.monotonic, files_only: bool = False):
        self.label, self.every_s, self.clock, self.files_only = label, every_s, clock, files_only
        self.total: int | None = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        total = trainer.estimated_stepping_batches
        for cb in trainer.callbacks:
            if isinstance(cb, StopAtStep) and cb.max_steps is not None and cb.max_steps >= 0:
                total = min(total, cb.max_steps)
        self.total = int(total) if total != float("inf") else None
        self.start_time = self.clock()
        self.last_line: float | None = None  # when the latest line was written
        self.rate_from: tuple[int, float] | None = None  # (step, time) at the end of the first step

    def line(self, trainer: pl.Trainer, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        step = trainer.global_step
        text = f"{self.label}: step {step:,}"
        if self.total:
            text += f" / {self.total:,} ({100 * step / self.total:.1f} %)"
        text += f", {_duration(now - self.start_time)} elapsed"
        if self.total and self.rate_from is not None and self.rate_from[0] < step < self.total:
            from_step, from_time = self.rate_from
            text += f", about {_duration((now - from_time) / (step - from_step) * (self.total - step))} left"
        logged = trainer.callback_metrics
        # a metric logged on step and epoch appears as `m`, `m_step` and `m_epoch`: show the last two
        metrics = {k: float(v) for k, v in sorted(logged.items()) if isinstance(v, torch.Tensor) and v.numel() == 1
                   and f"{k}_step" not in logged}
        if metrics:
            text += "; " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        return text

    def _due(self, trainer: pl.Trainer, now: float) -> bool:
        estimated = self.rate_from is not None and trainer.global_step > self.rate_from[0]
        return progress_line_due(now, self.start_time, self.last_line, self.every_s, estimated)

    def _maybe_log(self, trainer: pl.Trainer, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if self._due(trainer, now):
            self.last_line = now
            say_progress(self.line(trainer, now), self.files_only)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        now = self.clock()
        if self.rate_from is None:
            self.rate_from = (trainer.global_step, now)
        self._maybe_log(trainer, now)

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._maybe_log(trainer)


class _AboveTheBar(io.TextIOBase):
    """A stream whose every whole line ``console.out`` prints above a live display, unwrapped (a
    log line keeps its one line, where Rich's own proxy would break it at the console's width)."""

    def __init__(self, console):
        self.console, self.pending = console, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.console.out(line, highlight=False)
        return len(text)


@contextlib.contextmanager
def console_logs_above(progress: Progress):
    """While ``progress`` shows a live bar in a terminal, the console's log lines print above it.

    Rich redirects ``sys.stdout`` / ``sys.stderr`` through the live display, but a logging handler
    holds the stream it was configured with (Hydra's console handler: the real ``sys.stdout``), so
    its lines were written straight after the bar, on the bar's own line, leaving a stale bar
    fragment before every "search: N / M scored" line. Such handlers write above the bar for the
    duration (the search's bar, and the training bars of :class:`LabelledRichProgressBar`)."""
    originals = [s.rich_proxied_file for s in (sys.stdout, sys.stderr) if isinstance(s, FileProxy)]
    moved = []
    if not progress.disable and originals:
        above = _AboveTheBar(progress.console)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                    and any(handler.stream is original for original in originals):
                moved.append((handler, handler.setStream(above)))
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


class LabelledRichProgressBar(RichProgressBar):
    """Lightning's Rich bar, its description naming the stage as the log lines do (``supernet``,
    ``retrain seed 1``) and counting epochs from 1: Lightning's own said ``Epoch 0/3`` for the first
    of four epochs, the same for the supernet and every retrain seed, and ``Epoch 1/-2`` for a fit
    ended by its steps (``max_epochs=-1``: the graph supernet)."""

    def __init__(self, label: str, **kwargs):
        super().__init__(**kwargs)
        self.label = label
        self._logs_above = None  # the console's log lines printed above the bar while it shows

    def get_metrics(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict:
        """The bar's metrics under short names (``loss`` for ``train/loss_step``, ``val acc`` for
        ``val/acc_mean``), the epoch aggregates and the logger's version number left out: at 80
        columns Lightning's bar had room for ``train/loss_s…`` alone. The log lines keep the full names."""
        shown = {}
        for name, value in super().get_metrics(trainer, module).items():
            if name == "v_num" or name.endswith("_epoch"):
                continue
            shown[name.removeprefix("train/").removesuffix("_step").removesuffix("_mean").replace("/", " ")] = value
        return shown

    def _init_progress(self, trainer: pl.Trainer) -> None:
        super()._init_progress(trainer)
        # a line logged during a fit (a checkpoint, Lightning's own) was written on the bar's line
        if self.progress is not None and not self._progress_stopped and self._logs_above is None:
            self._logs_above = console_logs_above(self.progress)
            self._logs_above.__enter__()

    def __getstate__(self) -> dict:
        state = super().__getstate__()  # Lightning's leaves out the console and the live display
        state["_logs_above"] = None  # as this, their redirection
        return state

    def _stop_progress(self) -> None:
        if self._logs_above is not None:
            self._logs_above.__exit__(None, None, None)
            self._logs_above = None
        super()._stop_progress()

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"{self.label}: epoch {current_epoch + 1}"
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs > 0:
            text += f"/{max_epochs}"
        # as Lightning's: padded to the validation bar's description, so the bar does not jump
        return f"{text:{len(self.validation_description)}}"


@contextlib.contextmanager
def diverged_hint(what: str, remedy: str):
    """A fit inside whose training loss stopped being finite (:class:`TrainingDivergedError`, raised by
    the modules' training steps) as one line that says which fit (``what``: ``supernet``, ``retrain seed
    0``) and what to do (``remedy``: ``lower supernet.lr (now 0.05)``): a NaN loss had gone on, its NaN
    logits scoring every candidate and seed as the class with id 0, and the run ended as if it had worked."""
    try:
        yield
    except TrainingDivergedError as exc:
        raise TrainingDivergedError(f"{what}: {exc}; {remedy}") from None


def read_checkpoint(path: Path, what: str = "checkpoint") -> dict:
    """``torch.load`` of a Lightning checkpoint (tensors memory-mapped, not read) or one clear error
    naming the file. Weights only: the project's checkpoints hold tensors and plain values, and a run folder
    may come from someone else (a pickle's objects run code as they are rebuilt)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise ValueError("no state_dict in it")
        return checkpoint
    except Exception as exc:
        if refused_by_weights_only(exc):
            raise AutoAttendError(f"{path}: holds objects other than tensors and plain values, which this project's "
                                  f"{what}s never do (not one of its checkpoints, or changed since); it is not "
                                  "loaded, as rebuilding such objects can run code: delete it to start that stage "
                                  "again, or use a new hydra.run.dir") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise AutoAttendError(f"{path} is unreadable ({type(exc).__name__}: {first}): the {what} is damaged "
                              f"(e.g. the run was killed while writing it); delete it to start that stage again, "
                              f"or use a new hydra.run.dir") from None


def resume_step(path: Path, what: str = "supernet checkpoint") -> int | None:
    """The global step a resumed fit continues from (``None``: no checkpoint, a fresh fit)."""
    return int(read_checkpoint(path, what)["global_step"]) if path.exists() else None


def shows_bars(cfg: DictConfig) -> bool:
    """Whether the stages show progress bars: with ``hardware.progress`` on and a terminal. Without
    one (a log file, a pipe) log lines are the progress, and a bar would be printed once, frozen."""
    return bool(cfg.hardware.get("progress", True)) and sys.stdout.isatty()


class ChildrenProgress:
    """Progress over the children a stage trains one by one or side by side in worker processes (a
    graph run's HPO trials, retrain and baseline seeds, re-ranked and ranking candidates), counted
    as each child finishes: ``<label>: N / M <unit> finished, <elapsed> elapsed, about <eta> left``.
    A Cora child is one plain loop of seconds to minutes, often in another process, so finished
    children and the time elapsed are the granularity (per-epoch reports across processes would
    cost more than they tell).

    Shown as the training stages show theirs (:func:`make_trainer`): with a terminal and
    ``hardware.progress`` a Rich bar (``bar=False``: none, where each child shows a Lightning bar
    of its own), its lines in the run's log file alone; without a terminal, log lines on the
    console. The first line once :data:`FIRST_PROGRESS_LINE_S` seconds have passed and a child has
    finished (so it carries an estimate), or once ``hardware.progress_every_s`` seconds have passed
    without one (the first children still training), then at most every that many seconds; checked
    as each child finishes and every ``tick_s`` seconds between (a thread: the children's loops are
    not touched). No line once the last child has finished (its own line follows). The estimate is
    this invocation's time per finished child times the children left; ``done_before`` children
    (finished by an earlier invocation) count as finished but not in the rate."""

    def __init__(self, cfg: DictConfig, label: str, total: int, unit: str, done_before: int = 0, bar: bool = True,
                 clock=time.monotonic, tick_s: float | None = 1.0):
        every = cfg.hardware.get("progress_every_s", 60)
        on = bool(cfg.hardware.get("progress", True))
        self.every_s = float(every) if on and every is not None else None  # None: no lines
        self.files_only = shows_bars(cfg)  # a terminal's bar beside the lines: they go to the log files alone
        self.show_bar = bar and self.files_only
        self.label, self.total, self.unit, self.done = label, int(total), unit, int(done_before)
        self.done_before, self.clock, self.tick_s = int(done_before), clock, tick_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Progress | None = None
        self._above = None
        self.start_time: float | None = None
        self.last_line: float | None = None

    def __enter__(self) -> "ChildrenProgress":
        self.start_time = self.clock()
        if self.show_bar:
            self._progress = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                      TextColumn(f"{self.unit} finished"), TimeElapsedColumn(),
                                      TextColumn("{task.fields[left]}"), transient=False, refresh_per_second=2)
            self._progress.__enter__()
            self._above = console_logs_above(self._progress)
            self._above.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total, completed=self.done, left="")
        if self.tick_s is not None and (self.every_s is not None or self.show_bar):
            self._thread = threading.Thread(target=self._tick, name="autoattend-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self.start_time = None  # a child reported after this (a worker stopped late) changes nothing
            if self._progress is not None:
                self._above.__exit__(None, None, None)
                self._progress.__exit__(None, None, None)
                self._progress = None

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.check()

    def advance(self) -> None:
        """One more child finished (called from whichever thread learns it)."""
        with self._lock:
            if self.start_time is None:
                return
            self.done += 1
            self._show(self.clock())

    def check(self) -> None:
        """Refresh the bar's estimate, and write a line if one is due."""
        with self._lock:
            if self.start_time is not None:
                self._show(self.clock())

    def left(self, now: float) -> float | None:
        """Seconds left by this invocation's pace, ``None`` before a child of it has finished."""
        finished = self.done - self.done_before
        if finished <= 0 or self.done >= self.total:
            return None
        return (now - self.start_time) / finished * (self.total - self.done)

    def line(self, now: float) -> str:
        text = (f"{self.label}: {self.done} / {self.total} {self.unit} finished, "
                f"{_duration(now - self.start_time)} elapsed")
        left = self.left(now)
        return text if left is None else text + f", about {_duration(left)} left"

    def _due(self, now: float) -> bool:
        if self.every_s is None or self.done >= self.total:
            return False
        return progress_line_due(now, self.start_time, self.last_line, self.every_s, self.done > self.done_before)

    def _show(self, now: float) -> None:
        if self._progress is not None:
            left = self.left(now)
            self._progress.update(self._task, completed=self.done,
                                  left="" if left is None else f"about {_duration(left)} left")
        if self._due(now):
            self.last_line = now
            say_progress(self.line(now), self.files_only)


def make_trainer(cfg: DictConfig, run_dir: Path, name: str, keep_metrics_below: int | None = None,
                 label: str | None = None, **kwargs) -> pl.Trainer:
    """A Trainer whose logs and checkpoints live in ``run_dir/name``; ``keep_metrics_below``: a
    resumed fit's step (``metrics.csv`` keeps the rows logged before it). Progress lines
    (:class:`LogProgress`, ``label``, default ``name``; at most every ``hardware.progress_every_s``
    seconds): with a terminal beside a progress bar naming the same stage, in the run's log file
    alone; without one on the console too, and no bar."""
    note_computing()
    progress = cfg.hardware.get("progress", True)
    interactive = shows_bars(cfg)
    every = cfg.hardware.get("progress_every_s", 60)
    lines = [LogProgress(label or name, every, files_only=interactive)] if progress and every is not None else []
    progress_cb = ([LabelledRichProgressBar(label or name)] if interactive else []) + lines
    loggers = [ResumableCSVLogger(str(run_dir), name=name, version="", keep_below=keep_metrics_below,
                                  flush_logs_every_n_steps=1)]
    if cfg.get("logger", {}).get("tensorboard", False):  # beside metrics.csv, which the project reads
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name=name, version="tensorboard", default_hp_metric=False))
    return pl.Trainer(
        default_root_dir=str(run_dir / name),
        logger=loggers,
        accelerator=cfg.hardware.accelerator,
        devices=cfg.hardware.devices,
        precision=cfg.hardware.precision,
        callbacks=progress_cb + kwargs.pop("callbacks", []),
        enable_progress_bar=bool(interactive),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        plugins=[StreamingCheckpointIO()],
        **kwargs,
    )


class _LastCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` that holds Ctrl-C (:mod:`src.utils.interrupt`) from each save to the
    next training batch or the end of training, so the rows Lightning logs after a save (the
    step's or the epoch's loss, the validation) are in ``metrics.csv`` whenever the checkpoint is.

    ``every_s``: also save inside an epoch once that many seconds have passed since the last save:
    after a training batch in fits validated at epoch ends, after a validation in fits validated
    every N steps (``save_on_train_epoch_end=True``; a save after the batch would come before that
    batch's validation, which a resume skips). Never after an epoch's last batch: the epoch-end
    save follows. A fit resumed from such a checkpoint continues inside the epoch:
    :meth:`on_train_start` tells the training loader's :class:`~src.data.sampling.EpochShuffleSampler`
    how many of the epoch's examples are done, and the module must carry whatever it accumulates
    over an epoch (Lightning restarts its own epoch aggregates), as the modules of
    :mod:`src.lit.modules` do."""

    def __init__(self, *args, every_s: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.every_s = every_s
        self.after_validations = kwargs.get("save_on_train_epoch_end") is True
        self._saved_at = time.monotonic()

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        interrupt.hold()
        super()._save_checkpoint(trainer, filepath)
        self._saved_at = time.monotonic()

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        super().on_train_start(trainer, module)
        self._saved_at = time.monotonic()
        loop = trainer.fit_loop
        progress = loop.epoch_loop.batch_progress
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        # saved after a batch (restarted_on_train_batch_end) or after a validation (restarted_on_last)
        within = (loop.restarted_mid_epoch and not progress.is_last_batch
                  and (loop.epoch_loop.restarted_on_train_batch_end or loop.epoch_loop.restarted_on_last))
        if within:
            if not isinstance(sampler, EpochShuffleSampler):
                raise AutoAttendError(f"cannot resume inside an epoch: the training loader's sampler is "
                                      f"{type(sampler).__name__}, not EpochShuffleSampler")
            # the checkpoint was written after batch `processed` of the epoch (counted from 1)
            sampler.resume_within(trainer.current_epoch, progress.current.processed * loader.batch_size)
        if (isinstance(sampler, EpochShuffleSampler) and getattr(loader, "num_workers", 0) > 0
                and (within or sampler.epoch != loop.epoch_progress.current.processed)):
            self._restart_worker_iterator(trainer, sampler)
        if within:
            # making the loader's iterator drew its base seed from torch's RNG after the checkpoint's
            # state was restored; an uninterrupted run drew it at the epoch's start, before that state
            state = getattr(module, "restored_torch_rng_state", None)
            if state is not None:
                torch.set_rng_state(state)

    @staticmethod
    def _restart_worker_iterator(trainer: pl.Trainer, sampler: EpochShuffleSampler) -> None:
        """A resumed fit's loader with worker processes: Lightning made its iterator (``setup_data``) before
        this hook and before it sets the sampler's epoch, and the workers' first batches have already
        read that iterator's order, of epoch 0 and without the resume's offset. Make it again with the
        epoch Lightning is about to set, and torch's RNG as the first making left it (making one draws
        the workers' base seed from it)."""
        sampler.set_epoch(trainer.fit_loop.epoch_progress.current.processed)
        state = torch.get_rng_state()
        iter(trainer.fit_loop._data_fetcher)
        torch.set_rng_state(state)

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        interrupt.release()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        super().on_train_batch_end(trainer, module, *args)
        if not self.after_validations:
            self._save_inside_epoch(trainer)

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, module)
        if self.after_validations and trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._save_inside_epoch(trainer)

    def _save_inside_epoch(self, trainer: pl.Trainer) -> None:
        if (self.every_s is not None and time.monotonic() - self._saved_at >= self.every_s
                and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch):
            self._save_checkpoint(trainer, str(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}"))

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        super().on_train_end(trainer, module)
        interrupt.release()

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, module, exception)
        interrupt.release(raise_pending=False)  # the fit is ending on an exception already: do not mask it


def last_checkpoint(out: Path, on_train_epoch_end: bool | None = None, every_s: float | None = None) -> ModelCheckpoint:
    """Keeps ``out/last.ckpt`` current: rewritten at every epoch end (after its validation), so an
    interrupted run resumes from its last finished epoch. (``save_last=True`` with ``save_top_k=0``
    writes it only when training ends: Lightning saves "last" only after a top-k save.)
    ``on_train_epoch_end=True`` for fits validated every N steps: Lightning would otherwise save
    after every validation. ``every_s``: also rewritten inside an epoch every that many seconds
    (after a batch, or with ``on_train_epoch_end=True`` after a validation; see
    :class:`_LastCheckpoint`). Ctrl-C is held from each save until that step's or epoch's metrics
    are logged. A temporary file that a killed write of ``last.ckpt`` left (SIGKILL: ``last.ckpt`` itself is
    whole, written through a rename) is removed here, by the stage that resumes in ``out``."""
    for left in remove_left_temporaries(out / "last.ckpt"):
        log.info("removed %s, left by a checkpoint write that was killed", left)
    return _LastCheckpoint(dirpath=str(out), filename="last", save_top_k=1, enable_version_counter=False,
                           save_on_train_epoch_end=on_train_epoch_end, every_s=every_s)


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit of the code running (``<sha>+changes`` when tracked files differ from it);
    ``None`` outside a git checkout of this project or without git. Read once per process (the
    first invocation record), so a checkout changed during a long run is not what it records."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # git status must not take the index lock

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=True, env=env).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:  # this code copied into another repository
            return None
        sha, changed = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    if not sha:
        return None
    return f"{sha}+changes" if changed else sha


def library_versions() -> dict[str, str | None]:
    """Python's and the libraries' versions a run's numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for package in ("torch", "lightning", "torch_geometric", "torchmetrics", "numpy", "datasets", "hydra-core"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def kernels_in_use(cfg: DictConfig, device: torch.device | str) -> str:
    """``fused`` or ``torch``: what a run's kernel-backed ops (a text run's GRU, attention and dropout
    masks; a graph run's propagation, edge softmax and GCN products) compute with on ``device``,
    building the kernels if ``auto`` needs to know (they are built at the first step anyway)."""
    if not _kernels_wanted(cfg, device):
        return "torch"
    return "fused" if str(cfg.hardware.get("kernels") or "auto") == "fused" or cpu_kernels.kernel_error() is None \
        else "torch"


def _kernels_wanted(cfg: DictConfig, device: torch.device | str) -> bool:
    """Whether a run's settings let its ops use the fused kernels (CPU, float32/64, backend not
    ``torch``): autocast hands the ops mixed dtypes, which the kernels leave to torch."""
    backend = str(cfg.hardware.get("kernels") or "auto")
    precision = str(cfg.hardware.get("precision") or "32-true")
    return backend != "torch" and torch.device(device).type == "cpu" and precision in FULL_PRECISIONS


def kernels_to_build(cfg: DictConfig, device: torch.device | str) -> bool:
    """Whether this run's first use of the kernels will compile them (:func:`cpu_kernels.build_pending`),
    so that the run times the build as a stage of its own."""
    return _kernels_wanted(cfg, device) and cpu_kernels.build_pending()


def env_summary(device: torch.device | str = "cpu") -> dict:
    """The machine facts a run records (``summary.json``): for a run on a GPU (``device``) that GPU's
    name, and what its ops ran on (the fused kernels take CPU tensors only); the float32 precision
    the run computed in (:func:`set_float32_precision`); the libraries' versions, those that differ
    from ``requirements/cpu-lock.txt`` and the code's git commit (:func:`library_versions`,
    :func:`lock.differences`, :func:`source_commit`)."""
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    facts = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
             "cpu_count": os.cpu_count(), "cpu": cpu_facts(), "allocator": allocator.active(),
             "kernels": cpu_kernels.status_on(device),
             "float32_precision": torch.get_float32_matmul_precision(), "cudnn_tf32": torch.backends.cudnn.allow_tf32,
             "versions": library_versions(), "lock_differences": lock.differences(), "commit": source_commit()}
    if on_gpu:
        facts["gpu"] = torch.cuda.get_device_name(device)
    return facts
