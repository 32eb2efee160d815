"""Checks of the composed config before any work starts: a bad value is one line naming its key.

Hydra checks the structure (groups, key names); these check values: types, ranges and choices,
so that ``supernet.dim=15`` (not divisible by the heads) or ``strategy.population=0`` fail at once
with the key and what was expected, not as a traceback after the data has loaded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from src.choices import (ACCELERATORS, ACT_POSITIONS, EMBEDDING_SOURCES, FULL_PRECISIONS, GAT_HEADS,
                         GRAPH_ACTIVATIONS, GRAPH_FILE_SPLITS, HPO_MIN_TRIALS, KERNEL_BACKENDS, OPTIMIZER_STATES,
                         PRECISIONS, READOUTS, UNUSED_GRADS, WEIGHT_DECAY_ON)
from src.space import GRAPH_OPS, SHARING_MODES, TEXT_OPS
from src.space.space import last_layer_ops_under, priors_leave_no_op
from src.space.architecture import LAYER_KINDS
from src.strategies import STRATEGIES, strategy_settings
from src.utils.errors import AutoAttendError
from src.utils.workers import parse_workers

_ABSENT = object()
MATMUL_PRECISIONS = ("highest", "high", "medium")
# a graph child's settings (``graph.retrain``, an architecture file's ``hparams``, ``graph.hpo.space``'s keys)
CHILD_KEYS = ("hidden", "heads", "dropout", "attn_dropout", "attn_self_loops", "act", "act_at", "readout", "stem",
              "sgc_k", "lr", "weight_decay", "weight_decay_on", "epochs")


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=_ABSENT)


def has_key(cfg: DictConfig, key: str) -> bool:
    """Whether the config has the dotted ``key`` (a value that does not resolve counts as there)."""
    return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=False) is not _ABSENT


def _fail(key: str, expected: str, value: Any) -> None:
    raise AutoAttendError(f"{key}: expected {expected}, got {value!r}")


SEED_MAX = 2**31 - 1  # room below numpy's 2**32 for the stages' seed offsets
THREADS_MAX = 1024  # hardware.threads=9999 crashed the OpenMP runtime (SIGSEGV) at the supernet's first step


def check_int(cfg: DictConfig, key: str, low: int, none_ok: bool = False, also: Sequence[int] = (),
              high: int | None = None) -> None:
    """``key`` is an integer >= ``low`` (and <= ``high``; or one of ``also``, or null when
    ``none_ok``); absent keys pass."""
    value = _get(cfg, key)
    if value is _ABSENT or (value is None and none_ok):
        return
    above = isinstance(value, int) and high is not None and value > high
    if isinstance(value, bool) or not isinstance(value, int) or ((value < low or above) and value not in also):
        extra = "".join(f" or {a}" for a in also) + (" or null" if none_ok else "")
        bounds = f"from {low} to {high}" if above else f">= {low}"
        _fail(key, f"an integer {bounds}{extra}", value)


def check_float(cfg: DictConfig, key: str, low: float, high: float | None = None, low_open: bool = False,
                high_open: bool = False, none_ok: bool = False) -> None:
    """``key`` is a number in the interval (``low_open``/``high_open``: bound excluded)."""
    value = _get(cfg, key)
    if value is _ABSENT or (value is None and none_ok):
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
        _fail(key, f"a number in {interval}" + (" or null" if none_ok else ""), value)


def check_choice(cfg: DictConfig, key: str, choices: Sequence[Any], none_ok: bool = False) -> None:
    value = _get(cfg, key)
    if value is _ABSENT or (value is None and none_ok) or value in choices:
        return
    _fail(key, "one of " + ", ".join(map(str, choices)) + (" or null" if none_ok else ""), value)


def check_bool(cfg: DictConfig, key: str) -> None:
    """``key`` is true or false; absent keys pass."""
    value = _get(cfg, key)
    if value is not _ABSENT and not isinstance(value, bool):
        _fail(key, "true or false", value)


def check_workers(cfg: DictConfig, key: str) -> None:
    """``key`` is ``auto`` (or null) or an integer >= 1: a worker count; absent keys pass."""
    value = _get(cfg, key)
    if value is _ABSENT:
        return
    try:
        parse_workers(value, key)
    except ValueError:
        _fail(key, "auto or an integer >= 1", value)


def check_subset(cfg: DictConfig, key: str, choices: Sequence[str]) -> None:
    """``key`` is a non-empty list of distinct values from ``choices``."""
    value = _get(cfg, key)
    if value is _ABSENT:
        return
    items = list(value) if isinstance(value, (list, tuple, ListConfig)) else None
    if not items or len(set(items)) != len(items) or any(v not in choices for v in items):
        unknown = [v for v in (items or []) if v not in choices]
        why = f" (unknown: {', '.join(map(str, unknown))})" if unknown else ""
        _fail(key, f"a non-empty list of distinct values from {', '.join(choices)}{why}",
              OmegaConf.to_container(value) if isinstance(value, ListConfig) else value)


def check_label_names(cfg: DictConfig) -> None:
    """``task.label_names``: null, or one distinct name for each of ``task.num_classes`` classes."""
    value, num_classes = _get(cfg, "task.label_names"), _get(cfg, "task.num_classes")
    if value is _ABSENT or value is None:
        return
    names = list(value) if isinstance(value, ListConfig) else None
    size = f"{num_classes} " if isinstance(num_classes, int) else ""
    if not names or any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        _fail("task.label_names", f"null or a list of {size}distinct non-empty names (one per class, in label order)",
              OmegaConf.to_container(value) if isinstance(value, ListConfig) else value)
    if isinstance(num_classes, int) and len(names) != num_classes:  # either key may be the one given
        raise AutoAttendError(f"task.label_names has {len(names)} names and task.num_classes is {num_classes}: one "
                              f"name per class, in label order (got {names})")


def _check_heads(cfg: DictConfig, node: str, width: str) -> None:
    dim, heads = _get(cfg, f"{node}.{width}"), _get(cfg, f"{node}.heads")
    if isinstance(dim, int) and isinstance(heads, int) and heads > 0 and dim % heads:
        raise AutoAttendError(f"{node}.{width}={dim} is not divisible by {node}.heads={heads}: each head takes "
                              f"{width}/heads channels")




def check_open_files_for_workers(workers: int) -> None:
    """Data-loader workers pass each batch to the run through a file descriptor (torch's sharing strategy): under a
    low open-files limit their sends failed with EMFILE in background threads, which printed a traceback each and
    went on while the run waited for batches that never came (a hang writing gigabytes to stderr; a traceback a
    little higher). The soft limit is raised towards the hard one; below what the workers need, one line."""
    import resource

    need = 64 + 32 * workers  # 2 workers held about 34 descriptors at once on a tiny run
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    raised = need if hard == resource.RLIM_INFINITY else min(hard, need)
    if raised > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft < need:
        raise AutoAttendError(f"hardware.num_workers={workers}: the data-loader workers pass each batch through a "
                              f"file descriptor, and the open-files limit (ulimit -n) is {soft}, below the {need} "
                              f"they need: raise it (ulimit -n 1024) or set hardware.num_workers=0")


def check_hardware(cfg: DictConfig) -> None:
    """Raise :class:`AutoAttendError` on the first bad value of the ``hardware`` group."""
    check_int(cfg, "hardware.threads", 1, none_ok=True, also=(0,), high=THREADS_MAX)
    check_int(cfg, "hardware.num_workers", 0)
    workers = _get(cfg, "hardware.num_workers")
    if isinstance(workers, int) and not isinstance(workers, bool) and workers > 0:
        check_open_files_for_workers(workers)
    devices = _get(cfg, "hardware.devices")
    if devices is not _ABSENT and (isinstance(devices, bool) or not isinstance(devices, int) or devices != 1):
        # estimator and scoring run on one device (src.utils.device.device_of); a GPU is picked
        # with CUDA_VISIBLE_DEVICES
        _fail("hardware.devices", "1 (runs use one device; choose a GPU with CUDA_VISIBLE_DEVICES)",
              OmegaConf.to_container(devices) if isinstance(devices, ListConfig) else devices)
    check_float(cfg, "hardware.progress_every_s", 0.0, low_open=True, none_ok=True)
    precision = _get(cfg, "hardware.precision")
    if precision is not _ABSENT and (isinstance(precision, bool) or str(precision) not in PRECISIONS):
        _fail("hardware.precision", "one of " + ", ".join(PRECISIONS) + " (float32, float64 or a mixed precision)",
              precision)
    check_choice(cfg, "hardware.accelerator", ACCELERATORS)
    check_choice(cfg, "hardware.matmul_precision", MATMUL_PRECISIONS, none_ok=True)
    check_choice(cfg, "hardware.kernels", KERNEL_BACKENDS)
    if _get(cfg, "hardware.kernels") == "fused":
        accelerator = _get(cfg, "hardware.accelerator")
        causes = ([f"hardware.accelerator={accelerator}"] if accelerator in ("gpu", "cuda") else []) + (
            [f"hardware.precision={precision}"]
            if precision is not _ABSENT and str(precision) not in FULL_PRECISIONS else [])
        if causes:
            raise AutoAttendError(f"hardware.kernels=fused: the fused kernels run float32/float64 on the CPU, not "
                                  f"with {' and '.join(causes)} (use hardware.kernels=auto)")


TENSORBOARD_WRITERS = ("tensorboardX", "tensorboard")  # Lightning's TensorBoardLogger writes with either


def check_logger(cfg: DictConfig) -> None:
    """The ``logger`` group: ``logger.tensorboard`` true or false, and when true a package that writes the
    event files installed (found by its metadata, without importing it), else the run would fail at its first
    training stage."""
    check_bool(cfg, "logger.tensorboard")
    if _get(cfg, "logger.tensorboard") is True:
        from src.utils.lock import installed_metadata  # by the packages' metadata, as Lightning decides

        if not any(installed_metadata(name) for name in TENSORBOARD_WRITERS):
            raise AutoAttendError("logger=tensorboard: TensorBoard files are written with the tensorboardX or "
                                  "tensorboard package, and neither is installed (pip install -e .[tensorboard], or "
                                  "pip install tensorboardX); or leave logger=csv")


def _check_nonzero_op(cfg: DictConfig, node: str) -> None:
    """Under the priors Q, K and V take an op other than ``zero``: ``ops=[zero]`` leaves them none."""
    ops, priors = _get(cfg, f"{node}.ops"), _get(cfg, f"{node}.priors")
    if isinstance(ops, ListConfig) and priors_leave_no_op(list(ops), priors is True):
        raise AutoAttendError(f"{node}.ops={list(ops)}: under the design priors ({node}.priors=true) Q, K and V "
                              "take an op other than zero; add one, or set the priors off")


def _check_strategy(cfg: DictConfig) -> None:
    """``strategy.name`` names a registered strategy, whose own check of its settings passes
    (:meth:`~src.strategies.base.SearchStrategy.settings_problem`)."""
    name = _get(cfg, "strategy.name")
    if name is _ABSENT:
        return
    if not isinstance(name, str) or name not in STRATEGIES:
        _fail("strategy.name", "one of " + ", ".join(STRATEGIES) + " (the strategies registered with "
              "register_strategy in src/strategies/)", name)
    settings = {k: v for k in strategy_settings() if (v := _get(cfg, f"strategy.{k}")) is not _ABSENT}
    problem = STRATEGIES[name].settings_problem(settings)
    if problem is not None:
        key, expected = problem
        _fail(f"strategy.{key}", expected, _get(cfg, f"strategy.{key}"))


def check_config(cfg: DictConfig, entry: str) -> None:
    """Raise :class:`AutoAttendError` on the first bad value of the ``search`` or ``retrain`` config."""
    wanted = _get(cfg, "experiment.entry")
    if wanted is not _ABSENT and wanted != entry:
        raise AutoAttendError(f"experiment {_get(cfg, 'experiment.name')} is run by `python -m src.{wanted}`, "
                              f"not src.{entry} (experiment.entry; or `make reproduce EXP=...`)")
    # numpy's generators take seeds below 2**32, and the stages add offsets (retrain seed + i, HPO
    # + 1000, re-ranking + 2000, ranking + 3000): a larger seed failed after the supernet
    check_int(cfg, "seed", 0, high=SEED_MAX)
    check_int(cfg, "data.seed", 0, none_ok=True, high=SEED_MAX)
    check_paths(cfg)
    check_hardware(cfg)
    check_logger(cfg)
    # switches the code reads with bool(): "maybe" or "flase" would silently count as true
    for key in ("hardware.progress", "space.priors", "data.freeze_embeddings", "task.datamodule.download"):
        check_bool(cfg, key)
    check_choice(cfg, "space.sharing", SHARING_MODES)
    check_int(cfg, "space.num_layers", 1)
    check_subset(cfg, "space.ops", TEXT_OPS)
    _check_nonzero_op(cfg, "space")
    check_subset(cfg, "space.kinds", LAYER_KINDS)
    check_int(cfg, "data.max_len", 1)
    check_int(cfg, "data.window", 1, none_ok=True)
    check_int(cfg, "data.stride", 1)
    window, stride = _get(cfg, "data.window"), _get(cfg, "data.stride")
    if isinstance(window, int) and isinstance(stride, int) and stride > window:
        raise AutoAttendError(f"data.stride={stride} is larger than data.window={window}: sliding windows would skip "
                              f"tokens (use data.stride <= data.window)")
    max_len = _get(cfg, "data.max_len")
    if isinstance(window, int) and window >= max_len:  # the model slides windows only over longer inputs
        raise AutoAttendError(f"data.window={window} is not below data.max_len={max_len}: no text is longer than a "
                              f"window once cut to max_len, so no window would slide and the run would be plain "
                              f"truncation recorded as windows (use data.window=null, or a data.max_len above the "
                              f"window)")
    check_choice(cfg, "data.train_level", ("phrase", "sentence"))
    check_choice(cfg, "data.embedding_source", EMBEDDING_SOURCES)
    _check_task_name(cfg)
    _check_csv_task(cfg)
    check_label_names(cfg)
    if entry == "search":
        s = "supernet"
        for key in ("dim", "heads", "archs_per_step", "epochs", "batch_size", "val_batch_size"):
            check_int(cfg, f"{s}.{key}", 1)
        check_int(cfg, f"{s}.max_steps", 1, also=(-1,))
        check_int(cfg, f"{s}.monitor_archs", 0)
        limit = _get(cfg, f"{s}.limit_val_batches")  # Lightning's: a fraction of the batches, or a count
        if limit is not _ABSENT and (isinstance(limit, bool) or not (
                (isinstance(limit, int) and limit >= 0) or (isinstance(limit, float) and 0.0 <= limit <= 1.0))):
            _fail(f"{s}.limit_val_batches", "a fraction in [0.0, 1.0] or a number of batches >= 0", limit)
        check_float(cfg, f"{s}.checkpoint_every_min", 0, none_ok=True)
        check_choice(cfg, f"{s}.optimizer_state", OPTIMIZER_STATES)
        check_choice(cfg, f"{s}.unused_grads", UNUSED_GRADS)
        check_bool(cfg, f"{s}.optimizer_offload")
        check_workers(cfg, f"{s}.arch_workers")
        _check_text_training(cfg, s)
        check_int(cfg, "ranking.candidates", 0)
        check_int(cfg, "ranking.seeds", 1)
        st = "strategy"
        for key in ("population", "parents", "topk", "eval_batch_size", "save_every"):
            check_int(cfg, f"{st}.{key}", 1)
        check_int(cfg, f"{st}.rounds", 0)
        check_int(cfg, f"{st}.budget", 1, none_ok=True)
        check_int(cfg, f"{st}.val_subset", 1, none_ok=True)
        check_int(cfg, f"{st}.sample_size", 1, none_ok=True)
        check_int(cfg, f"{st}.score_bucket_size", 1, none_ok=True)
        check_workers(cfg, f"{st}.score_workers")
        check_float(cfg, f"{st}.mutation_rate", 0, 1, low_open=True)  # 0 could never make a new child
        _check_strategy(cfg)
    r = "retrain"
    for key in ("dim", "heads", "epochs", "batch_size", "eval_batch_size", "eval_every"):
        check_int(cfg, f"{r}.{key}", 1)
    check_int(cfg, f"{r}.seeds", 0 if entry == "search" else 1)
    check_int(cfg, f"{r}.max_steps", 1, also=(-1,))
    check_float(cfg, f"{r}.checkpoint_every_min", 0, none_ok=True)
    _check_text_training(cfg, r)
    _check_graph(cfg, entry)


BENCH_KEYS = ("seed", "bench", "paths", "hardware", "space")  # conf/bench.yaml's nodes


def check_bench_config(cfg: DictConfig) -> None:
    """Raise :class:`AutoAttendError` on the first bad value of the ``bench`` config (``src.bench``)."""
    unknown = [str(key) for key in cfg if key not in BENCH_KEYS]
    if unknown:  # `+task=sst2` or `+budget=smoke` would be added, unread, and the full bench would run
        raise AutoAttendError(f"{', '.join(unknown)}: not settings of src.bench (added by an override such as "
                              f"+task=... or +budget=...); it measures the paper's supernet configuration, set by "
                              f"{', '.join(BENCH_KEYS)}")
    check_int(cfg, "seed", 0, high=SEED_MAX)  # as src.search: the bench seeds cfg.seed + 1 too
    check_paths(cfg)
    check_hardware(cfg)
    check_choice(cfg, "space.sharing", SHARING_MODES)
    _check_bench_reads(cfg)
    for key in ("num_layers", "dim", "heads", "archs_per_step", "batch_size", "eval_batch_size", "retrain_dim", "reps"):
        check_int(cfg, f"bench.{key}", 1)
    check_int(cfg, "bench.warmup", 0)
    check_int(cfg, "bench.score_bucket_size", 1, none_ok=True)
    for key in ("arch_workers", "score_workers"):
        check_workers(cfg, f"bench.{key}")
    check_choice(cfg, "bench.optimizer_state", OPTIMIZER_STATES)
    for key in ("recompute", "optimizer_offload"):
        check_bool(cfg, f"bench.{key}")
    for node, width in (("bench", "dim"), ("bench", "retrain_dim")):
        _check_heads(cfg, node, width)


def as_override(value: Any) -> str:
    """``value`` as a Hydra override writes it (``false``, ``null``, ``[conv1,gru]``), for lines that quote a
    setting back to the command line that gave it (Python's ``False`` and ``['conv1', 'gru']`` are not)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(as_override(item) for item in value) + "]"
    return str(value)


def _check_bench_reads(cfg: DictConfig) -> None:
    """The bench composes the text space and the hardware group but measures the paper's space at
    ``bench.num_layers`` layers, in float32: another ``space.num_layers`` / ``ops`` / ``kinds`` /
    ``priors`` or ``hardware.precision`` was accepted and not applied (nor recorded in bench.json)."""
    from src.pipeline.config import CONF_DIR, SHIPPED_SPACES, shipped_space

    space_file = CONF_DIR / SHIPPED_SPACES["text"][0]
    for key, value in shipped_space("text").items():
        given = _get(cfg, f"space.{key}")
        given = OmegaConf.to_container(given) if isinstance(given, (DictConfig, ListConfig)) else given
        if key != "sharing" and given is not _ABSENT and given != value:
            raise AutoAttendError(f"space.{key}={as_override(given)}: src.bench measures the paper's space "
                                  f"({space_file}: {key} {as_override(value)}); of the space it takes space.sharing, "
                                  "and bench.num_layers for the supernet's depth")
    precision = _get(cfg, "hardware.precision")
    if precision is not _ABSENT and str(precision) not in ("32-true", "32"):
        raise AutoAttendError(f"hardware.precision={precision}: src.bench measures in float32 (32-true); of the "
                              "precision settings it takes hardware.matmul_precision")


def _check_task_name(cfg: DictConfig) -> None:
    """``task.name`` (``task.name=reviews`` for a corpus of one's own) names the run's output folder and
    the data cache: an empty one left the task out of both, one with ``/`` nested folders."""
    if not isinstance(_get(cfg, "task"), DictConfig):  # no task chosen: said where the task is required
        return
    name = _get(cfg, "task.name")
    if name is _ABSENT:  # ~task.name: a traceback where the run first named its task
        raise AutoAttendError("task.name: removed (~task.name), but the task's folders and log lines need a name; "
                              "give one with task.name=<name>")
    if isinstance(name, (int, float)) and not isinstance(name, bool):  # task.name=2024 reads as a number
        raise AutoAttendError(f"task.name={name}: read as a number; quote it to name the task: task.name='{name}'")
    if not isinstance(name, str) or unfit_folder_name(name):
        raise AutoAttendError(task_name_line(name))


def unfit_folder_name(name: str) -> bool:
    """Whether ``name`` cannot name one folder: empty, ``.`` or ``..``, or holding a path separator."""
    return not name.strip() or "/" in name or "\\" in name or name.strip() in (".", "..")


def task_name_line(name: Any) -> str:
    """The refusal of a ``task.name`` that cannot name the task's folders."""
    return f"task.name: expected a name for the task's folders, not empty and without / (e.g. task.name=reviews), " \
           f"got {name!r}"


def unfit_folder(path: Path) -> str | None:
    """Why no folder can be at ``path``, else None: a file at it or at one of its parents, a link (there or
    above) to what is not there (a disk not mounted: the checks passed, and the stage's ``mkdir`` then failed
    with a message blaming the run folder), or a name the file system refuses (too long)."""
    try:
        for folder in (path, *path.parents):
            if folder.is_symlink() and not folder.exists():
                return f"{folder} is a link to {os.readlink(folder)}, which is not there (a disk not mounted?)"
            if folder.exists():
                return f"{folder} is a file, where a folder is needed" if not folder.is_dir() else None
    except OSError as exc:  # ENAMETOOLONG: Path.exists() raises it
        return f"{exc.strerror or exc}"
    return None


def check_paths(cfg: DictConfig) -> None:
    """``paths.*`` are non-empty: an empty ``AUTOATTEND_DATA_DIR=`` would otherwise mean the current
    directory, not the default ``./data``, and an empty output folder the root (the entry points refuse
    that one before Hydra makes the run folder: :func:`src.pipeline.run.unfit_folder_setting`)."""
    for key in ("data_dir", "cache_dir", "output_dir"):
        value = _get(cfg, f"paths.{key}")
        if value is _ABSENT:
            continue
        if not isinstance(value, str) or not value.strip():
            variable = {"data_dir": "AUTOATTEND_DATA_DIR", "output_dir": "AUTOATTEND_OUTPUT_DIR"}.get(key)
            why = f" (an empty {variable}= gives this: unset it or name a folder)" if variable else ""
            _fail(f"paths.{key}", f"a folder{why}", value)
        # a file there (or above it) failed later with a NotADirectoryError traceback
        unfit = unfit_folder(Path(str(value)).expanduser())
        if unfit is not None:
            raise AutoAttendError(f"paths.{key}={value}: {unfit}")


def _check_csv_task(cfg: DictConfig) -> None:
    """A task read by the CSV reader (``+task=csv`` and its presets): the values its DataModule
    needs, with the messages it would give after torch and Lightning had loaded."""
    target = _get(cfg, "task.datamodule._target_")
    if not (isinstance(target, str) and target.endswith(".CSVTextDataModule")):
        return
    name = _get(cfg, "task.name")
    no_classes = _get(cfg, "task.num_classes") is None
    no_data = _get(cfg, "task.path") is None and _get(cfg, "task.hub_name") in (None, _ABSENT)
    if no_classes and no_data:  # both at once, rather than one run per missing setting
        raise AutoAttendError(f"task {name}: num_classes is not set and no data given; add "
                              f"task.num_classes=<number of classes> task.path=<folder holding train.csv and test.csv>")
    if no_classes:
        raise AutoAttendError(f"task {name}: num_classes is not set; add task.num_classes=<number of classes>")
    check_int(cfg, "task.num_classes", 2)
    if no_data:
        raise AutoAttendError(f"task {name}: no data given; add task.path=<folder holding train.csv and test.csv>")
    check_int(cfg, "task.text_fields", 1, none_ok=True)
    check_bool(cfg, "task.header")
    check_float(cfg, "task.val_fraction", 0, 1, low_open=True, high_open=True)
    check_int(cfg, "task.val_seed", 0)
    check_int(cfg, "task.max_vocab", 3, none_ok=True)
    check_int(cfg, "task.min_freq", 1)
    check_bool(cfg, "task.lowercase")
    check_int(cfg, "task.num_proc", 0, none_ok=True)
    for key in ("supernet_train_subset", "search_val_subset"):
        check_int(cfg, f"task.{key}", 1, none_ok=True)


def _check_text_training(cfg: DictConfig, node: str) -> None:
    """What the text ``supernet`` and ``retrain`` nodes share: subset, optimiser, dropout, heads."""
    check_int(cfg, f"{node}.train_subset", 1, none_ok=True)
    check_float(cfg, f"{node}.lr", 0, low_open=True)
    check_float(cfg, f"{node}.weight_decay", 0)
    check_float(cfg, f"{node}.clip", 0, low_open=True, none_ok=True)
    check_bool(cfg, f"{node}.recompute")
    for key in ("dropout", "attn_dropout"):
        check_float(cfg, f"{node}.{key}", 0, 1, high_open=True)
    _check_heads(cfg, node, "dim")


def _check_graph_model(cfg: DictConfig, node: str) -> None:
    """What graph supernets and children share: widths, optimiser, dropout, activation and its
    placement, attention self loops."""
    for key in ("hidden", "heads", "sgc_k"):
        check_int(cfg, f"{node}.{key}", 1)
    check_float(cfg, f"{node}.lr", 0, low_open=True)
    check_float(cfg, f"{node}.weight_decay", 0)
    for key in ("dropout", "attn_dropout"):
        check_float(cfg, f"{node}.{key}", 0, 1, high_open=True)
    _check_heads(cfg, node, "hidden")
    check_choice(cfg, f"{node}.act", sorted(GRAPH_ACTIVATIONS))
    check_choice(cfg, f"{node}.act_at", ACT_POSITIONS)
    check_bool(cfg, f"{node}.attn_self_loops")


def check_graph_child(cfg: DictConfig, node: str) -> None:
    """The settings of a graph child (``graph.retrain`` or an architecture file's ``hparams``)."""
    _check_graph_model(cfg, node)
    check_int(cfg, f"{node}.epochs", 1)
    check_choice(cfg, f"{node}.readout", READOUTS)
    check_choice(cfg, f"{node}.stem", ("auto", "linear", "none"))
    check_choice(cfg, f"{node}.weight_decay_on", WEIGHT_DECAY_ON)


def check_arch_hparams(hparams: Any, source: str) -> None:
    """An architecture file's ``hparams`` (after its ``task_hparams``): a mapping of valid child
    settings; errors name the file and the key."""
    if not isinstance(hparams, dict):
        raise AutoAttendError(f"{source}: hparams: expected a mapping of settings, got {hparams!r}")
    try:
        check_graph_child(OmegaConf.create({"hparams": hparams}), "hparams")
    except AutoAttendError as exc:
        raise AutoAttendError(f"{source}: {exc}") from None


def _check_graph_file_task(cfg: DictConfig) -> None:
    """``+task=graph_file`` (a graph of one's own, :mod:`src.data.graph_file`): its file named, its
    switches booleans, its split settings in range; said before torch and PyG load rather than
    after the run has started (the DataModule checks the same for callers from Python)."""
    target = _get(cfg, "task.datamodule._target_")
    if not (isinstance(target, str) and target.endswith(".GraphFileDataModule")):
        return
    path = _get(cfg, "task.path")
    if path is None or (isinstance(path, str) and not path.strip()):
        raise AutoAttendError(f"task {_get(cfg, 'task.name')}: no data given; add task.path=<the graph's .npz or "
                              ".pt file>")
    if not isinstance(path, str):
        _fail("task.path", "the path of a .npz or .pt file", path)
    for key in ("task.row_normalize", "task.to_undirected"):
        check_bool(cfg, key)
    sparse = _get(cfg, "task.sparse_features")
    if sparse is not _ABSENT and not (isinstance(sparse, bool) or sparse == "auto"):
        _fail("task.sparse_features", "auto, true or false", sparse)
    check_choice(cfg, "task.split", GRAPH_FILE_SPLITS)
    check_int(cfg, "task.train_per_class", 1)
    check_int(cfg, "task.val_size", 1)
    check_int(cfg, "task.test_size", 1, none_ok=True)
    check_int(cfg, "task.split_seed", 0, high=SEED_MAX)
    check_int(cfg, "task.batch_size", 1)
    check_int(cfg, "task.val_graphs", 1)
    check_int(cfg, "task.test_graphs", 1)


PPI_DATAMODULE = "src.data.ppi.PPIDataModule"


def _check_protocol(cfg: DictConfig) -> None:
    """``task.protocol``, where a task has one (``graph_file``, ``ppi``), is a config group's node:
    ``task.protocol=ppi``, for ``task/protocol=ppi``, made it a string, and the first reader failed
    with an AttributeError traceback. PPI takes only its own (``task/protocol=planetoid`` ended in a traceback)."""
    from src.pipeline.config import CONF_DIR

    protocol = _get(cfg, "task.protocol")
    if isinstance(protocol, DictConfig) and _get(cfg, "task.datamodule._target_") == PPI_DATAMODULE \
            and protocol.get("name") != "ppi":
        # PPI's DataModule reads the protocol's batch size (graphs a step), which only PPI's protocol has
        raise AutoAttendError("task/protocol: +task=ppi takes PPI's protocol (conf/task/protocol/ppi.yaml); choosing "
                              "another is for +task=graph_file, whose default is planetoid")
    if protocol is _ABSENT or isinstance(protocol, DictConfig):
        return
    names = sorted(p.stem for p in (CONF_DIR / "task" / "protocol").glob("*.yaml"))
    raise AutoAttendError(f"task.protocol={protocol}: a protocol is chosen as a config group, task/protocol=<name> "
                          f"(one of {', '.join(names)}), not set as a value")


def _check_graph(cfg: DictConfig, entry: str) -> None:
    g = "graph"
    _check_protocol(cfg)
    _check_graph_file_task(cfg)
    precision = _get(cfg, "hardware.precision")
    if _get(cfg, "task.family") == "graph" and precision is not _ABSENT and str(precision) not in ("32-true", "32"):
        # bf16-mixed and 64-true failed in the supernet's first step on the CPU (no bfloat16 sparse
        # product for Planetoid's features; float32 data in a float64 model), with a traceback
        raise AutoAttendError(f"hardware.precision={precision}: graph tasks train in float32 (32-true); the sparse "
                              "feature products have no other precision here")
    check_int(cfg, f"{g}.threads", 1, none_ok=True, high=THREADS_MAX)
    check_int(cfg, f"{g}.space.num_layers", 1)
    check_subset(cfg, f"{g}.space.ops", GRAPH_OPS)
    _check_nonzero_op(cfg, f"{g}.space")
    check_subset(cfg, f"{g}.space.kinds", LAYER_KINDS)
    _check_graph_model(cfg, f"{g}.supernet")  # first: graph.retrain.act_at and attn_self_loops repeat its values
    check_graph_child(cfg, f"{g}.retrain")
    if entry == "search":
        _check_gat_widths(cfg)
        _check_last_layer_ops(cfg)
    for key in ("steps", "steps_per_epoch", "archs_per_step"):
        check_int(cfg, f"{g}.supernet.{key}", 1)
    check_int(cfg, f"{g}.supernet.monitor_archs", 0)
    check_float(cfg, f"{g}.supernet.clip", 0, low_open=True, none_ok=True)
    check_int(cfg, f"{g}.retrain.seeds", 0 if entry == "search" else 1)
    check_int(cfg, f"{g}.retrain.eval_every", 1)
    check_int(cfg, f"{g}.retrain.patience", 1, none_ok=True)
    check_int(cfg, f"{g}.retrain.epoch_cap", 1, none_ok=True)
    check_int(cfg, f"{g}.rerank.topk", 0)
    check_int(cfg, f"{g}.rerank.seeds", 1)
    check_int(cfg, f"{g}.hpo.trials", 0)
    check_workers(cfg, f"{g}.retrain.workers")
    _check_hpo_space(cfg, f"{g}.hpo.space")
    baselines = _get(cfg, f"{g}.baselines")
    if baselines is not _ABSENT and baselines is not None and not (
            isinstance(baselines, ListConfig) and all(isinstance(b, str) and b for b in baselines)):
        _fail(f"{g}.baselines", "a list of architecture names or files (e.g. [gcn, gat]) or []",
              OmegaConf.to_container(baselines) if isinstance(baselines, ListConfig) else baselines)


def _search_trains_children(cfg: DictConfig) -> bool:
    """A graph search trains children with the retrain's settings: its seeds, the re-ranking or the
    ranking stage."""
    return any(isinstance(v, int) and v > 0 for v in (_get(cfg, "graph.retrain.seeds"), _get(cfg, "graph.rerank.topk"),
                                                      _get(cfg, "ranking.candidates")))


def _hpo_runs(cfg: DictConfig) -> bool:
    """Whether a graph run's retrain runs its HPO: it trains seeds and ``graph.hpo.trials`` >= HPO_MIN_TRIALS."""
    trials, seeds = _get(cfg, "graph.hpo.trials"), _get(cfg, "graph.retrain.seeds")
    return isinstance(trials, int) and trials >= HPO_MIN_TRIALS and isinstance(seeds, int) and seeds > 0


def children_readout(cfg: DictConfig) -> str | None:
    """``last`` where some child a graph search trains may read out with its last layer: under
    ``graph.retrain.readout=last``, or with ``last`` among ``graph.hpo.space.readout`` where the HPO runs
    (the retrain trains seeds and ``graph.hpo.trials`` >= HPO_MIN_TRIALS); else ``graph.retrain.readout``."""
    readout, tried = _get(cfg, "graph.retrain.readout"), _get(cfg, "graph.hpo.space.readout")
    if _hpo_runs(cfg) and isinstance(tried, ListConfig) and "last" in tried:
        return "last"
    return readout if isinstance(readout, str) else None


def _check_last_layer_ops(cfg: DictConfig) -> None:
    """Children that read out with their last layer (``graph.retrain.readout=last``, or ``last`` among
    the HPO's readouts) have that layer map to the classes, which an ``identity`` op cannot, so the
    search leaves identity out of its last layer (:func:`~src.space.space.last_layer_ops_under`);
    refused where that leaves the last layer no op at all."""
    ops, priors = _get(cfg, "graph.space.ops"), _get(cfg, "graph.space.priors")
    last = last_layer_ops_under(ops, children_readout(cfg)) if isinstance(ops, ListConfig) else None
    if last is None:
        return
    # without the priors zero is an op like the others: a last layer of zero alone outputs a constant
    only_zero = bool(last) and set(last) == {"zero"}
    if only_zero or (len(last) < len(ops) and (not last or priors_leave_no_op(last, priors is True))):
        setting, other = (("graph.retrain.readout=last", "keep graph.retrain.readout=linear")
                          if _get(cfg, "graph.retrain.readout") == "last" else
                          ("graph.hpo.space.readout holding last", "leave last out of graph.hpo.space.readout"))
        cannot = ("identity cannot (it keeps its input's width)" if "identity" in ops else
                  "zero cannot (its output is a constant)")
        raise AutoAttendError(f"{setting}: the searched model's last layer maps to the classes, which {cannot}, "
                              f"and graph.space.ops={list(ops)} leave that layer no other op"
                              f"{' but zero' if last and 'identity' in ops else ''}; add one (gcn, ...) or {other}")


def _check_gat_widths(cfg: DictConfig) -> None:
    """A search's hidden widths split evenly into the heads of every GAT op of ``graph.space.ops``
    (concatenated, each head takes hidden/heads channels): ``graph.supernet.hidden=24`` with gat16
    was refused by the model, naming no setting, once the data had loaded."""
    ops = _get(cfg, "graph.space.ops")
    heads = sorted({GAT_HEADS[op] for op in ops if op in GAT_HEADS}) if isinstance(ops, ListConfig) else []
    # a child's width-hidden nodes: all but the last under the `last` readout (it averages its heads)
    child_hidden = _get(cfg, "graph.retrain.readout") != "last" or _get(cfg, "graph.space.num_layers") != 1
    children = _search_trains_children(cfg)
    # the HPO runs in the retrain, before its seeds
    hpo, hpo_hidden = _hpo_runs(cfg), _get(cfg, "graph.hpo.space.hidden")
    widths = [("graph.supernet.hidden", _get(cfg, "graph.supernet.hidden"))]
    if child_hidden and children:
        widths.append(("graph.retrain.hidden", _get(cfg, "graph.retrain.hidden")))
        if isinstance(hpo_hidden, ListConfig) and hpo:
            widths += [("graph.hpo.space.hidden", value) for value in hpo_hidden]
    for key, width in widths:
        split = [h for h in heads if isinstance(width, int) and width % h]
        if split:
            raise AutoAttendError(f"{key}={width} is not divisible by {split[-1]}, the heads of op gat{split[-1]} "
                                  f"in graph.space.ops: each head takes hidden/heads channels (use a multiple of "
                                  f"{math.lcm(*heads)}, or leave gat{split[-1]} out of the ops)")


def _check_hpo_space(cfg: DictConfig, key: str) -> None:
    """A mapping from graph child settings to non-empty lists of values each valid for that setting."""
    space = _get(cfg, key)
    if space is _ABSENT:
        return
    if not isinstance(space, DictConfig):
        _fail(key, f"a mapping from settings ({', '.join(CHILD_KEYS)}) to lists of values", space)
    for name, values in space.items():
        if name not in CHILD_KEYS:
            raise AutoAttendError(f"{key}.{name}: not a setting of a graph child; expected some of "
                                  f"{', '.join(CHILD_KEYS)}")
        if not isinstance(values, ListConfig) or not values:
            _fail(f"{key}.{name}", "a non-empty list of values", values)
        for i, value in enumerate(values):
            try:
                check_graph_child(OmegaConf.create({"value": {name: value}}), "value")
            except AutoAttendError as exc:
                raise AutoAttendError(str(exc).replace(f"value.{name}:", f"{key}.{name}[{i}]:", 1)) from None
