"""Whole runs: ``search`` (supernet -> evolution -> retrain) and ``retrain`` (a given architecture).

This module and what it imports at the top are free of torch, Lightning and PyG: Hydra's own
config errors, and the checks each run starts with (:func:`_start`), are reported within about a
second; the stages are imported once the config has passed (about 10 s on two cores).
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import resource
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, NoReturn

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.pipeline.checks import CHILD_KEYS, check_config, children_readout, has_key, task_name_line, unfit_folder_name
from src.pipeline.config import (Timer, check_supernet_draws, read_arch, require_task, retrain_space, run_dir_of,
                                 search_space, search_strategy, settings_task, task_family)
from src.pipeline.run_settings import (ADDABLE, SEARCH_ONLY, UNREAD_BY, HydraRecord, check_run_data,
                                       check_run_settings, format_mean_std, has_results, own_data_task, run_settings,
                                       unread_by_retrain, within)
from src.space import live_layers
from src.strategies import SearchStrategy, strategy_settings
from src.utils import interrupt
from src.utils.errors import (AutoAttendError, RunDirInUseError, RunDirLinkError, WorkersFailedError, machine_error,
                              output_reader_gone, quiet_after_reader_gone, user_error_behind)
from src.utils.io import atomic_write_json, read_record
from src.utils.logs import log_to_files_only, print_to_console
from src.utils.memory import binary_size

log = logging.getLogger("src")


def _quiet_lightning() -> None:
    """Keep the run log about the run: no accelerator banners, tips or known-harmless warnings."""
    # torch's fake-tensor cache statistics are logged at INFO when the process exits (after an
    # interrupted run's last line); Lightning's "Received SIGTERM: 15" came before our one line
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.rank_zero", "torch._subclasses.fake_tensor",
                 "lightning.pytorch.trainer.connectors.signal_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # a resumed run reuses its folders on purpose: its metrics.csv rows are kept (pipeline.common)
    # and its checkpoints are its own, so Lightning's warnings about them would only alarm
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty.*")
    # the supernet resumes inside an epoch through its sampler (pipeline.common._LastCheckpoint)
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")


_LIGHTNING_SEED_ENV = {key: os.environ.get(key) for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}


def _holding_the_run_dir(run: Callable[[DictConfig], dict]) -> Callable[[DictConfig], dict]:
    """``run`` (an entry point's job), with the run folder :func:`_start` holds released when it
    returns or raises, also where it is called directly (library use, tests), not from :func:`entry`;
    and the job's cached sparse-feature structures dropped (a sweep's later jobs run in this process)."""
    @functools.wraps(run)
    def holding(cfg: DictConfig) -> dict:
        try:
            return run(cfg)
        finally:
            _release_run_dirs()
            _forget_job_state()

    return holding


def _forget_job_state() -> None:
    """What a job leaves in the process that a sweep's next job must not inherit: the cached
    structures of its sparse features, and Lightning's seed in the environment (a retrain's
    ``seed_everything``; a later job's loaders would get its worker seeding), as the process started."""
    graph = sys.modules.get("src.models.graph")  # imported by graph jobs alone (PyG: seconds)
    if graph is not None:
        graph.forget_sparse_structures()
    for key, value in _LIGHTNING_SEED_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@_holding_the_run_dir
def run_search(cfg: DictConfig) -> dict:
    """Supernet training, architecture search and retraining of the best candidate.

    Graph tasks (``task.family: graph``) run the same three stages from
    :mod:`src.pipeline.graph_stages`, then retrain ``graph.baselines`` in the same run.
    """
    run_dir, timer, record = _start(cfg, "search")
    graph = task_family(cfg) == "graph"
    ranks = bool(cfg.get("ranking")) and int(cfg.ranking.candidates) > 0  # the optional ranking stage
    space = search_space(cfg)
    # refused now, not after the supernet: a space too small for the strategy, a setting it does not read
    strategy = search_strategy(cfg, space)
    check_supernet_draws(cfg, space)
    _refuse_unread_strategy_settings(cfg, strategy)
    if graph:
        _check_baselines(cfg)
    # a strategy setting recorded by an older autoattend, which accepted it and ignored it, changed nothing
    added = check_run_settings(run_dir, run_settings(cfg, "search"), given=_override_keys(),
                               unread=_unread_strategy_settings(cfg, strategy))
    _setup_hardware(cfg)
    from src.pipeline import graph_stages, ranking, stages
    from src.pipeline.common import build_datamodule, data_facts, env_summary, lower_precision
    from src.utils.device import device_of

    st = graph_stages if graph else stages
    log.info("task %s | %r | size %s | run dir %s", cfg.task.name, space, space.size_text(), run_dir)
    with timer("data", refusable=True):
        dm = build_datamodule(cfg)
        _check_classes_setting(cfg, dm)
        if not graph:  # the retrain's settings also train the ranking's candidates
            retrains = cfg.retrain.seeds > 0 or ranks
            stages.check_batch_memory(cfg, dm, {"supernet": space.num_layers,
                                                **({"retrain": space.num_layers} if retrains else {})})
        check_run_data(run_dir, data_facts(dm, graph), own_data_task(cfg.task))
        _build_kernels(cfg, timer)
        record.write(run_dir)
        _record_invocation(cfg, run_dir)
    with timer("supernet"):
        model = st.train_supernet(cfg, dm, space, run_dir)
    with timer("search"):
        best, best_score = st.search(cfg, model, dm, space, run_dir)
    del model
    seeds = cfg.graph.retrain.seeds if graph else cfg.retrain.seeds
    with timer("retrain"):
        results = st.retrain(cfg, best, dm, run_dir) if seeds > 0 else None
    summary = {"task": cfg.task.name, "run_dir": str(run_dir), "best_val_acc_supernet": best_score,
               "retrain": None if results is None else _retrain_summary(results),
               **_timing(timer), "machine": env_summary(device_of(cfg)), "lower_precision": lower_precision(cfg)}
    metric = _metric_name(graph, dm)
    # in %, as src.report shows them (the supernet's score was a fraction beside the test score's %)
    line = f"best supernet val {metric} {100 * best_score:.2f} %"
    if results is not None:
        line += f" | retrained test {metric} {format_mean_std(results)} % over {len(results['seeds'])} seed(s)"
    summary["metric"] = dm.metric
    if graph:
        if seeds > 0 and cfg.graph.get("baselines"):
            with timer("baselines"):
                started_before = [k.split(".", 2)[2] for k in added if k.startswith("graph.retrain.")]
                summary["baselines"] = graph_stages.baselines(cfg, dm, run_dir, started_before)
            summary.update(_timing(timer))
            line += "".join(f" | {name} test {metric} {format_mean_std(b)} %"
                            for name, b in summary["baselines"].items())
    r = None
    if ranks:
        with timer("ranking"):
            r = ranking.measure(cfg, dm, run_dir, graph)
        summary.update(_timing(timer))
    elif (run_dir / "ranking" / "results.json").is_file():
        # measured by an earlier invocation (ranking.* may change on resume): a plain re-run keeps it
        r = read_record(run_dir / "ranking" / "results.json", "the ranking stage's results")
    if r is not None:
        summary["ranking"] = {key: value for key, value in r.items() if key != "candidates"}
        line += f" | ranking: Spearman {ranking.format_with_interval(r['all'])} over {r['all']['n']} candidates"
    summary["machine"] = _machine_of_the_run(run_dir, timer, summary["machine"])
    atomic_write_json(run_dir / "summary.json", summary)
    _finish(run_dir, line, timer, summary["lower_precision"])
    return summary


@_holding_the_run_dir
def run_retrain(cfg: DictConfig) -> dict:
    """Retrain a given architecture (built-in name or file) from scratch for several seeds."""
    run_dir, timer, record = _start(cfg, "retrain")
    read = read_arch(cfg.arch, settings_task(cfg))
    arch = read.arch
    graph = task_family(cfg) == "graph"
    _check_arch_family(cfg, arch, graph)
    # Retraining accepts any structurally valid architecture; the priors only shape the search.
    try:
        retrain_space(cfg, len(arch)).validate(arch)
    except AutoAttendError as exc:
        raise AutoAttendError(f"arch={cfg.arch}: {exc}") from None
    if graph and children_readout(cfg) == "last" and cfg.graph.retrain.readout != "last":
        _check_last_layer_readout(cfg, arch)
    if not graph and read.carries:  # they were ignored, in silence
        raise AutoAttendError(f"arch={cfg.arch}: carries hparams, the settings of a graph architecture; a text "
                              "architecture is retrained with retrain.* (e.g. retrain.lr=...): remove them from the "
                              "file")
    hparams = read.hparams if graph else None
    if hparams is not None:
        hpo = next((key for key in _override_keys() if within(key, ("graph.hpo",))), None)
        if hpo is not None:  # it ran no HPO, in silence
            _refuse_unless_sweep(f"{hpo}: arch={cfg.arch} carries its own settings (hparams), so no HPO runs; set one "
                                 "of them with graph.retrain.<key>=... instead", "may run one")
    _setup_hardware(cfg)
    from src.pipeline import graph_stages, stages
    from src.pipeline.common import build_datamodule, data_facts, env_summary, lower_precision
    from src.utils.device import device_of

    source, hparams = _command_line_hparams(cfg, hparams)
    # the architecture's content, not only its name or path: an edited file is another run
    check_run_settings(run_dir, run_settings(cfg, "retrain", {"architecture": arch.to_dict(), "arch_hparams": hparams}),
                       given=_override_keys())
    with timer("data", refusable=True):
        dm = build_datamodule(cfg)
        _check_classes_setting(cfg, dm)
        if not graph:  # the layers that reach the output: the others are not computed
            stages.check_batch_memory(cfg, dm, {"retrain": sum(live_layers(arch))})
        check_run_data(run_dir, data_facts(dm, graph), own_data_task(cfg.task))
        _build_kernels(cfg, timer)
        record.write(run_dir)
        _record_invocation(cfg, run_dir)
    with timer("retrain"):
        results = (graph_stages.retrain(cfg, arch, dm, run_dir, hparams, source=source) if graph
                   else stages.retrain(cfg, arch, dm, run_dir))
    # a search's run directory given as arch= is named by the file read from it: the summary line
    # and src.report's row had read as if the results were that search run's
    named = str(read.path) if Path(str(cfg.arch)).expanduser().is_dir() else str(cfg.arch)
    summary = {"task": cfg.task.name, "run_dir": str(run_dir), "arch": named,
               "retrain": _retrain_summary(results), **_timing(timer), "machine": env_summary(device_of(cfg)),
               "lower_precision": lower_precision(cfg)}
    summary["metric"] = dm.metric  # as the search records it: src.report labelled a PPI retrain's micro-F1 as accuracy
    summary["machine"] = _machine_of_the_run(run_dir, timer, summary["machine"])
    atomic_write_json(run_dir / "summary.json", summary)
    metric = _metric_name(graph, dm)
    _finish(run_dir, f"{named}: test {metric} {format_mean_std(results)} % over {len(results['seeds'])} seed(s)",
            timer, summary["lower_precision"])
    return summary


def _command_line_hparams(cfg: DictConfig, hparams: dict | None) -> tuple[str | None, dict | None]:
    """An architecture file's ``hparams`` (GCN's, GAT's) with the ``graph.retrain.<key>`` settings
    given on the command line in their place (``arch=gcn graph.retrain.hidden=32`` trained hidden 16
    in silence, and src.report showed 32), and where they come from."""
    if hparams is None:
        return None, None
    given = [k.split(".", 2)[2] for k in _override_keys()
             if k.startswith("graph.retrain.") and k.split(".", 2)[2] in CHILD_KEYS]
    if not given:
        return None, hparams
    retrain = OmegaConf.to_container(cfg.graph.retrain, resolve=True)
    replaced = {k: retrain[k] for k in given}
    log.info("arch=%s: the command line's %s replace the architecture file's %s", cfg.arch,
             ", ".join(f"graph.retrain.{k}={v}" for k, v in replaced.items()),
             ", ".join(f"{k}={hparams.get(k)}" for k in given))
    return (f"the architecture file's hparams, with {', '.join(given)} from the command line",
            {**hparams, **replaced})


def _check_baselines(cfg: DictConfig) -> None:
    """Every ``graph.baselines`` entry is a graph architecture that retrains with its own settings,
    checked before the supernet trains rather than when the baselines' turn comes."""
    for name in cfg.graph.get("baselines") or []:
        try:
            read = read_arch(name, settings_task(cfg))
            _check_arch_family(cfg, read.arch, True, named=name)
            try:
                retrain_space(cfg, len(read.arch)).validate(read.arch)
            except AutoAttendError as exc:  # graph.space.ops=[identity,gcn] refused GCN's file for its zero ops
                raise AutoAttendError(f"{exc}; baselines are retrained within the task's space (graph.space.ops, "
                                      "graph.space.kinds): add what they use there, or train none "
                                      "(graph.baselines=[])") from None
            read.hparams  # checked as they are read
        except AutoAttendError as exc:
            message = str(exc)
            for named in (f"arch={name}: ", f"{name}: "):
                message = message.removeprefix(named)
            raise AutoAttendError(f"graph.baselines: {name}: {message}") from None


def _check_last_layer_readout(cfg: DictConfig, arch) -> None:
    """An architecture retrained with ``last`` among the HPO's readouts maps its last layer to the classes in
    those trials, which an ``identity`` op there cannot (the retrain stopped after its first trials)."""
    from src.space.space import arch_contexts

    last = len(arch) - 1
    slot = next((slot for i, slot, ctx in arch_contexts(arch) if i == last and ctx.op == "identity"), None)
    if slot is not None:
        raise AutoAttendError(f"arch={cfg.arch}: layer {last} {slot} is identity, which cannot map to the classes "
                              "under readout 'last' (the last layer maps to them), which graph.hpo.space.readout "
                              "tries; leave last out of it")


def _check_arch_family(cfg: DictConfig, arch, graph: bool, named: str | None = None) -> None:
    """An architecture of the other task family (text ops on a graph task, or the reverse) is named
    as such, not as its first unknown op. ``named``: how the error names it (default ``arch=...``)."""
    from src.space import OP_FAMILIES, op_families

    own, other = ("graph", "text") if graph else ("text", "graph")
    if op_families(arch) == [other]:
        foreign, own_ops = sorted(arch.ops() - set(OP_FAMILIES[own])), OP_FAMILIES[own]
        raise AutoAttendError(f"{named or f'arch={cfg.arch}'}: a {'text' if graph else 'graph'} architecture (ops "
                              f"{', '.join(foreign)}), while task {cfg.task.name} is a {'graph' if graph else 'text'} "
                              f"task; its ops: {', '.join(own_ops)}")


def _start(cfg: DictConfig, entry_point: str) -> tuple[Path, Timer, HydraRecord]:
    """Check the task and the config values for ``entry_point`` (no torch yet); the run dir, a
    fresh timer and the run's ``.hydra/`` record, written once the run's settings and data pass."""
    refuse_deleted_settings()
    require_task(cfg)
    refuse_added_settings()
    if entry_point == "retrain":
        _refuse_search_settings()
    _refuse_other_family_settings(cfg)
    if cfg.get("experiment") and cfg.experiment.get("multirun") and _hydra_initialized() and not _in_multirun():
        # without -m Hydra ignores the config's sweeper params and runs one job of the default values
        name = cfg.experiment.get("name")
        raise AutoAttendError(f"experiment {name} is a sweep (experiment.multirun): run it with -m, "
                              f"`python -m src.{entry_point} -m +experiment={name}` or `make reproduce EXP={name}`")
    check_config(cfg, entry_point)
    run_dir = run_dir_of(cfg)
    _warn_unused_folder_setting(run_dir)
    _hold_run_dir(run_dir)
    return run_dir, Timer(run_dir / Timer.FILE, started=_job_started[0] if _job_started else None), HydraRecord(cfg)


def _process_age_s() -> float:
    """Seconds since this process started (``/proc``; 0 where it cannot be read). An allocator's
    restart (``os.execve``) keeps the process, so its time before the restart counts too."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def _warn_unused_folder_setting(run_dir: Path) -> None:
    """Hydra ignores ``hydra.run.dir`` in a multirun (``-m``) and ``hydra.sweep.dir`` in a single
    run, in silence: the jobs went to a new timestamped folder, and the same command typed again to
    resume started afresh in another. Said once per invocation (a sweep's jobs share the setting)."""
    if not _hydra_initialized() or _folder_setting_warned:
        return
    from hydra.core.hydra_config import HydraConfig

    given = {o.split("=", 1)[0].lstrip("+"): o.split("=", 1)[1] for o in HydraConfig.get().overrides.hydra if "=" in o}
    if _in_multirun() and "hydra.run.dir" in given:
        sweep = HydraConfig.get().sweep.dir
        log.warning("hydra.run.dir=%s is not used by a multirun (-m): its jobs are in hydra.sweep.dir, %s (to resume "
                    "this sweep: hydra.sweep.dir=%s)", given["hydra.run.dir"], sweep, sweep)
    elif not _in_multirun() and "hydra.sweep.dir" in given:
        log.warning("hydra.sweep.dir=%s is used only by a multirun (-m): this run is in hydra.run.dir, %s (to resume "
                    "it: hydra.run.dir=%s)", given["hydra.sweep.dir"], run_dir, run_dir)
    else:
        return
    _folder_setting_warned.append(True)


RUN_LOCK_FILE = ".run.lock"
_held_run_dirs: list = []  # the open lock files of the run folders this process works in


def _refuse_links(run_dir: Path) -> None:
    """Refuse a run folder holding a symbolic link, before anything is logged or written in it: a run writes its
    files where they are (its log, ``.hydra/``, checkpoints, records), and through a link they would be written
    wherever it leads (a run folder from someone else, whose ``search.log`` leads to ``~/.bashrc``). The folder
    itself may be a link, or lie under one."""
    if not run_dir.is_dir():
        return
    for folder, names, files in os.walk(run_dir):  # links to folders are listed in names, and not followed
        for name in sorted(names + files):
            path = Path(folder) / name
            if path.is_symlink():
                raise RunDirLinkError(f"{path} is a symbolic link (to {os.readlink(path)!r}): a run writes its files "
                                      "where they are, and through a link would write where it leads (a run folder "
                                      "from someone else?); replace the link by a copy of what it leads to, or give "
                                      "a new hydra.run.dir")


def _hold_run_dir(run_dir: Path) -> None:
    """Hold the run folder until the job ends (an advisory lock the system drops when the process
    ends, however it ends): a second command in the same folder, the same resume typed twice or two
    runs started in the same second under the default timestamped folder, wrote into one run."""
    import fcntl

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / RUN_LOCK_FILE, "a")
    except OSError as exc:
        raise AutoAttendError(f"hydra.run.dir: cannot write in {run_dir} ({exc.strerror or exc})") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        setting = "hydra.sweep.dir" if _in_multirun() else "hydra.run.dir"
        raise RunDirInUseError(f"run dir {run_dir} is in use by another command still running: wait for it to end "
                               f"(to resume the run), or give another {setting}") from None
    except OSError as exc:  # a file system without locks (some network mounts): run unguarded, as before
        log.warning("run dir %s cannot be locked (%s): nothing stops a second command from writing into it while "
                    "this one runs", run_dir, exc)
    _held_run_dirs.append(handle)


def _release_run_dirs() -> None:
    while _held_run_dirs:
        _held_run_dirs.pop().close()


SHARED_SPACE_KEYS = ("space.sharing", "space.priors")  # graph.space.sharing / priors interpolate these


def _unread_by_family(key: str, graph: bool) -> bool:
    """Whether a task of that family never reads ``key`` (:data:`src.pipeline.run_settings.UNREAD_BY`: graph tasks
    read ``graph.*``, not the text nodes, but for the shared ``space.sharing`` / ``space.priors``;
    text tasks not ``graph.*``)."""
    return key.startswith(UNREAD_BY["graph" if graph else "text"]) and key not in SHARED_SPACE_KEYS


def _refuse_other_family_settings(cfg: DictConfig) -> None:
    """A text setting given for a graph task (``+task=cora retrain.seeds=3``), or a ``graph.*`` one
    for a text task, was accepted and had no effect (and src.report then showed it as the run's):
    refuse it, naming the key that task reads. In a multirun of both families it is meant for the
    other jobs, so there it is only a warning."""
    graph = task_family(cfg) == "graph"
    for key in _override_keys():
        if not _unread_by_family(key, graph):
            continue
        other = key.split(".", 1)[1] if not graph else f"graph.{key}"
        if has_key(cfg, other):
            hint = f"; it reads {other}"
        elif "." in other and has_key(cfg, other.rsplit(".", 1)[0]):
            hint = f"; its settings are {other.rsplit('.', 1)[0]}.*"
        else:
            hint = ""
        _refuse_unless_sweep(f"{key}: a setting of {'text' if graph else 'graph'} tasks, which "
                             f"{'graph' if graph else 'text'} task {cfg.task.name} does not read{hint}", "may read it")


def _refuse_unless_sweep(message: str, others: str) -> None:
    """Refuse a setting this job does not read; in a multirun it may be meant for the sweep's other
    jobs (``others``: what they may do with it), so there it is only a warning."""
    if not _in_multirun():
        raise AutoAttendError(message)
    log.warning("%s (other jobs of the sweep %s)", message, others)


def _check_classes_setting(cfg: DictConfig, dm) -> None:
    """``task.num_classes`` given on the command line must be the data's class count: for the
    named tasks but ``csv`` and its presets the classes come from the files and the setting only
    describes them (``+task=cora task.num_classes=3`` ran on 7 classes, and src.report showed 3)."""
    if "task.num_classes" in _override_keys() and cfg.task.num_classes != dm.num_classes:
        raise AutoAttendError(f"task.num_classes={cfg.task.num_classes}: the data of task {cfg.task.name} have "
                              f"{dm.num_classes} classes, which this setting does not change (it only describes them)")


# where an override may add a key the config lacks: the groups chosen with +, and ADDABLE
ADDABLE_GROUPS = ("task", "experiment")


def _override_keys() -> list[str]:
    """The dotted keys of the command line's overrides (``+a.b=1`` -> ``a.b``); none without Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [override.lstrip("+~").split("=", 1)[0] for override in HydraConfig.get().overrides.task]


def _refuse_search_settings() -> None:
    """A search setting given to ``src.retrain`` (``supernet.dim=128``, ``graph.baselines=[gat]``,
    ``space.num_layers=4``) would be accepted, since the config holds those nodes for both entry
    points, and have no effect: refuse it instead."""
    for key in _override_keys():
        if unread_by_retrain(key):
            raise AutoAttendError(_search_setting_line(key))


# what a `~key` override may delete: settings every reader takes as optional (Hydra's own are Hydra's to check)
DELETABLE = ("task.label_names", "ranking")


def refuse_deleted_settings() -> None:
    """A ``~key`` override deleting a setting the run reads (``~seed``, ``~supernet.dim``,
    ``~graph.retrain.seeds``) was a ConfigAttributeError traceback wherever the key was first read: in
    the checks, or after the supernet and the search had run. Refuse it, but for :data:`DELETABLE` and
    Hydra's own settings."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    for override in HydraConfig.get().overrides.task:
        if not override.startswith("~"):
            continue
        key = override[1:].split("=", 1)[0]
        if within(key, DELETABLE) or key.startswith("hydra.") or key.startswith("hydra/"):
            continue
        raise AutoAttendError(f"{override}: deletes {key}, a setting the run reads; give it a value instead "
                              f"({key}=...; only {', '.join(DELETABLE)} may be deleted)")


def refuse_added_settings() -> None:
    """An override that adds a key the config lacks (``+supernet.dimm=32``, which Hydra's message for
    ``supernet.dimm=32`` suggests) ran with nothing reading it: refuse it, but where a key may be
    added (:data:`ADDABLE_GROUPS`, :data:`ADDABLE`)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    for override in HydraConfig.get().overrides.task:
        if not override.startswith("+"):
            continue
        key = override.lstrip("+").split("=", 1)[0]
        if key in ADDABLE_GROUPS or within(key, ADDABLE):
            continue
        if override.startswith("++"):  # sets a key the config has, or adds one: which, Hydra does not say
            raise AutoAttendError(f"{override}: ++ may add a key nothing reads; set a setting the config has with "
                                  f"{key}=... (without +)")
        raise AutoAttendError(f"{override}: adds {key}, which the config does not have, so nothing would read it "
                              "(a misspelt setting?); the command with --cfg job in place of this override lists "
                              "the settings")


def _refuse_unread_strategy_settings(cfg: DictConfig, strategy: SearchStrategy) -> None:
    """A ``strategy.*`` setting the chosen strategy never reads, given on the command line
    (``strategy=random strategy.mutation_rate=0.9``; with ``strategy.budget`` set, the evolution
    settings that otherwise size the budget) ran with no effect: refuse it. What it reads is its
    :meth:`~src.strategies.base.SearchStrategy.settings`, and the evolution settings while they
    size its budget."""
    unread = _unread_strategy_settings(cfg, strategy)
    for key in _override_keys():
        if key in unread:
            sized = (" (with strategy.budget set, it no longer sizes the budget)"
                     if key.removeprefix("strategy.") in STRATEGY_SIZING else "")
            _refuse_unless_sweep(f"{key}: a setting strategy={cfg.strategy.name} does not read{sized}", "may read it")


STRATEGY_SIZING = ("population", "rounds", "parents")  # the evolution settings that size its budget when none is set


def _unread_strategy_settings(cfg: DictConfig, strategy: SearchStrategy) -> set[str]:
    """The ``strategy.<key>`` settings the chosen strategy never reads: what it reads is its
    :meth:`~src.strategies.base.SearchStrategy.settings`, and the evolution settings while they size its budget."""
    read = set(strategy.settings()) | (set(STRATEGY_SIZING) if cfg.strategy.get("budget") is None else set())
    return {f"strategy.{setting}" for setting in strategy_settings() if setting not in read}


def _search_setting_line(key: str) -> str:
    return (f"{key}: a setting of the search (src.search), which src.retrain does not read; the retrain's "
            "training is set by retrain.* (graph tasks: graph.retrain.*)")


def _search_node_missing(exc: ConfigCompositionException) -> str | None:
    """The override key when Hydra could not apply it because its search-only node is absent: the
    paper budget leaves ``supernet`` / ``strategy`` out of src.retrain's config, and Hydra's
    message ("To append to your config use +supernet.dim=32") sent the user to a setting that
    would have no effect."""
    cause = exc.__cause__
    match = re.match(r"Could not override '([^']+)'", str(exc))
    full = getattr(cause, "full_key", None) if isinstance(cause, OmegaConfBaseException) else None
    if not match or not isinstance(full, str):
        return None
    # the smoke and quick budgets give src.retrain part of those nodes: Hydra then names the missing key in
    # them (strategy.budget), which for src.search would be a misspelt setting of its own
    if full in SEARCH_ONLY or (Path(sys.argv[0]).stem == "retrain" and within(full, SEARCH_ONLY)):
        return match.group(1)
    return None


def _build_kernels(cfg: DictConfig, timer: Timer) -> None:
    """A run that is the first on its checkout and CPU kind compiles the fused kernels (30-50 s
    on 2 cores): inside the ``data`` stage once the data are known to be there and the run's (a
    missing file is said before the build, not after it), timed as a stage of its own (``kernels``
    in the summary, :meth:`Timer.aside`) and recorded with ``data``: a run that stage refuses records
    neither, nor the invocation."""
    from src.pipeline.common import kernels_in_use, kernels_to_build
    from src.utils.device import device_of

    device = device_of(cfg)
    if kernels_to_build(cfg, device):
        with timer.aside("kernels"):
            kernels_in_use(cfg, device)


def _timing(timer: Timer) -> dict:
    """The summary's times: ``seconds`` per stage over every invocation of the run directory, and
    this invocation's own."""
    return {"seconds": timer.totals, "invocations": timer.invocations, "seconds_this_invocation": timer.seconds}


def _record_invocation(cfg: DictConfig, run_dir: Path) -> None:
    """Add this invocation's machine settings that can move a run's numbers to ``invocations.json``
    (with its start time, command line and code commit), and warn when a resume changes them: the
    settings a resume may change (``hardware.threads``, ``hardware.kernels``, the device) keep the
    results valid, but not always equal to an uninterrupted run's. Another device draws other
    dropout masks (the same distribution), and float sums round differently with another thread
    count or kernel backend, which many training steps can carry into other selected checkpoints."""
    import torch
    from hydra.core.hydra_config import HydraConfig

    from src.pipeline.common import kernels_in_use, source_commit
    from src.pipeline.run_settings import INVOCATIONS_FILE, MOVES_NUMBERS, read_invocations, recorded_value
    from src.utils.device import device_of

    device = device_of(cfg)
    now = {"device": str(device), "threads": torch.get_num_threads(), "kernels": kernels_in_use(cfg, device)}
    path = run_dir / INVOCATIONS_FILE
    earlier = read_invocations(run_dir)
    if earlier is None:
        log.warning("%s: unreadable; the record of invocations starts again from this one", path)
        earlier = []
    last = earlier[-1] if earlier else None
    changed = [key for key in MOVES_NUMBERS if last is not None and last.get(key) != now[key]]
    if changed:
        log.warning("this invocation computes with %s; the run's last one with %s: what it trains from here on, "
                    "if anything, is valid but may not equal an uninterrupted run's numbers (another device draws "
                    "other dropout masks; another thread count or kernel backend rounds sums differently)",
                    ", ".join(f"{key} {now[key]}" for key in changed),
                    ", ".join(f"{key} {recorded_value(last.get(key))}" for key in changed))
    commit = source_commit()
    if last is not None and last.get("commit") and commit and last["commit"] != commit:
        log.warning("this invocation runs autoattend at commit %s; the run's last one ran %s: what it computes from "
                    "here on comes from other code (its settings are the run's; its numbers may differ from an "
                    "uninterrupted run's of either): give a new hydra.run.dir for a run of one version",
                    *(c[:12] + ("+changes" if c.endswith("+changes") else "") for c in (commit, str(last["commit"]))))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data_dir = str(Path(cfg.paths.data_dir).expanduser().resolve())
    # a CSV task's corpus folder, resolved: a relative task.path is relative to where the run started
    # (src.evaluate, started elsewhere, reads it from here)
    task_path = cfg.task.get("path")
    where = {"task_path": str(Path(str(task_path)).expanduser().resolve())} if task_path else {}
    # a sweep's command line is the whole sweep's: the job's own overrides say which job this is
    job = list(HydraConfig.get().overrides.task) if _in_multirun() else None
    atomic_write_json(path, {"invocations": [*earlier, {"started": started, "argv": sys.argv[1:],
                                                        **({"job_overrides": job} if job is not None else {}),
                                                        **now, "data_dir": data_dir, **where,
                                                        "commit": commit}]})


def _setup_hardware(cfg: DictConfig) -> None:
    """Threads, kernels and allocator from ``hardware``; the first import of torch and Lightning."""
    from src.utils.device import device_of

    device = device_of(cfg)  # hardware=gpu without a GPU: say so before Lightning and PyG load
    precision = str(cfg.hardware.get("precision", "32-true"))
    if device.type == "cpu" and precision in ("16-mixed", "16"):
        # Lightning warns and runs bfloat16 instead, while the run records float16
        raise AutoAttendError(f"hardware.precision={precision}: float16 mixed precision runs on a GPU; on the CPU "
                              "use hardware.precision=bf16-mixed")
    from src.pipeline.common import setup_hardware

    setup_hardware(cfg)


def _retrain_summary(results: dict) -> dict:
    """The part of ``retrain/results.json`` that ``summary.json`` repeats (a graph retrain's ``hparams``,
    the settings it trained with, included)."""
    keys = ("test_acc_mean", "test_acc_std", "val_acc_mean", "seeds", "selection_rule", "hparams")
    return {k: results[k] for k in keys if k in results}


def _machine_of_the_run(run_dir: Path, timer: Timer, now: dict) -> dict:
    """The machine facts ``summary.json`` records: this invocation's (``now``), unless it computed
    nothing (every stage had finished before): then it is marked so in ``invocations.json``, which
    ``src.report`` reads, and the summary keeps the facts of the invocations that computed the
    results (a re-read with ``hardware.threads=1`` recorded the run as computed on one thread)."""
    from src.pipeline.run_settings import INVOCATIONS_FILE, read_invocations

    if timer.computed:
        return now
    invocations = read_invocations(run_dir)
    if invocations:
        invocations[-1]["computed"] = False
        atomic_write_json(run_dir / INVOCATIONS_FILE, {"invocations": invocations})
    try:
        earlier = json.loads((run_dir / "summary.json").read_text()).get("machine")
    except (OSError, ValueError, AttributeError):
        earlier = None
    return earlier if isinstance(earlier, dict) else now


def _metric_name(graph: bool, dm) -> str:
    return "micro-F1" if graph and dm.multilabel else "acc"


def _finish(run_dir, line: str, timer: Timer, lower: str | None) -> None:
    if lower is not None:
        line += f" | lower precision: {lower}"
    totals = timer.totals
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in totals.items())
    line += f" | {sum(totals.values()):.0f} s ({stages})"
    if timer.invocations > 1:
        line += f" over {timer.invocations} invocations, this one {timer.wall_seconds:.0f} s"
    if not timer.computed:  # its stages' seconds were those of reading the data and the results back
        line += ("; " if timer.invocations > 1 else f" | this one {timer.wall_seconds:.0f} s; ") + \
            "every stage had finished before this invocation, which re-read them"
    for text in (f"run dir: {run_dir}", f"summary: {line}"):
        print_to_console(text)
        log_to_files_only(log, text, logging.INFO)  # the log file ends with the run's result too


def _exit_for_signal(signum: int) -> None:
    """``sys.exit(128 + signum)``. A KeyboardInterrupt raised inside code that ``exec`` ran (the
    dataclasses module builds methods so, e.g. while torch is imported) sets CPython's "unhandled
    KeyboardInterrupt" flag, which ends the process by SIGINT (status 130) whatever ``sys.exit``
    says: a SIGTERM then ended with 130. Running any string through ``exec`` resets the flag."""
    exec("pass")
    sys.exit(128 + int(signum))


def _named_signal(signum: int) -> str:
    """What an ``interrupted:`` line adds after "interrupted" for the stopping signal (Ctrl-C: nothing)."""
    return interrupt.signal_name(signum)


def entry(fn: Callable[[DictConfig], dict], cfg: DictConfig) -> dict:
    """Run ``fn``; a user error becomes one ``error:`` line on stderr and exit status 2, Ctrl-C
    (SIGINT) or SIGTERM one ``interrupted:`` line saying how to resume and exit status 128 + the
    signal's number (130, 143)."""
    # this invocation's start, for the summary's "this one N s": the process's, for its first job
    # (starting Python, imports, composing the config), else this job's
    _job_started[:] = [time.perf_counter() - (0.0 if _entered else _process_age_s())]
    _entered.append(True)
    _quiet_lightning()
    interrupted = []

    def on_interrupt(signum, frame):
        if interrupt.repeats(signum, interrupted):
            return
        # Lightning turns a KeyboardInterrupt inside fit into a silent sys.exit(1): remember it
        interrupted.append(signum)
        if interrupt.defer():  # a checkpoint is ahead of its metrics: raised once they are written
            return
        raise KeyboardInterrupt

    previous = interrupt.install(on_interrupt)
    if _outside_signals:
        # a stop while Hydra composed the config, whose KeyboardInterrupt some library code swallowed
        # (the run went on, and ended with status 0): stop here, before the run starts
        interrupt.restore(previous)
        _stopped_outside_a_job(_outside_signals[0], False)
    if _in_multirun():
        from hydra.core.hydra_config import HydraConfig

        _sweep_dirs.setdefault(str(HydraConfig.get().sweep.dir))
    made_for_this_run = not _in_multirun() and made_by_this_process(run_dir_of(cfg))
    try:
        _refuse_links(run_dir_of(cfg))
        if _in_multirun():
            _claim_job_folder(run_dir_of(cfg))
        result = fn(cfg)
        if not _in_multirun():
            _finished_runs.append(str(run_dir_of(cfg)))
        else:
            _finished_jobs.append(str(run_dir_of(cfg)))
        return result
    except (KeyboardInterrupt, SystemExit) as exc:
        if isinstance(exc, SystemExit) and not interrupted:
            raise
        interrupt.install(signal.SIG_IGN)  # a second stop must not cut the report and the line short
        signum = interrupted[0] if interrupted else signal.SIGINT  # a KeyboardInterrupt raised in code
        by = _named_signal(signum)
        if _in_multirun():  # the sweep stops here: its report of the jobs so far, and how to resume them all
            from hydra.core.hydra_config import HydraConfig

            _report_sweeps()
            kept, setting = HydraConfig.get().sweep.dir, "hydra.sweep.dir"
        else:
            kept, setting = run_dir_of(cfg), "hydra.run.dir"
        message = (f"interrupted{by}: what finished is kept in {kept}; run the same command with "
                   f"{setting}={kept} to resume")
        log_to_files_only(log, message, logging.ERROR)
        print(message, file=sys.stderr)
        _exit_for_signal(signum)
    except Exception as exc:
        error = user_error_behind(exc)  # Hydra's instantiate wraps a DataModule's errors
        if error is None:  # a crash (a bug, memory): its traceback in the run's log, beside the console's
            first_line = (str(exc).strip().splitlines() or [""])[0]
            log_to_files_only(log, f"crashed: {type(exc).__name__}: {first_line}", logging.ERROR,
                              exc_info=(type(exc), exc, exc.__traceback__))
            error = address_space_error(exc)
        if error is None:
            if _in_multirun():  # Hydra runs the other jobs, then re-raises the first crash alone; the report names each
                from hydra.core.hydra_config import HydraConfig

                crash = f"crashed: {type(exc).__name__}: {first_line} (its traceback is in the job's log)"
                _failed_jobs.append((" ".join(HydraConfig.get().overrides.task), crash))
            raise
        if isinstance(error, WorkersFailedError):  # the system's doing: the run resumes from its folder
            error = WorkersFailedError(f"{error} (hydra.run.dir={run_dir_of(cfg)})")
        if not isinstance(error, (RunDirInUseError, RunDirLinkError)):  # that log is the running command's
            log_to_files_only(log, f"error: {error}", logging.ERROR)
        print(f"error: {error}", file=sys.stderr)
        if made_for_this_run:
            remove_if_only_its_log(run_dir_of(cfg))
        if _in_multirun():
            from hydra.core.hydra_config import HydraConfig

            _failed_jobs.append((" ".join(HydraConfig.get().overrides.task), str(error)))
            # returned, not raised: Hydra would print its own "Error executing job with overrides"
            # line for the first failed job after the sweep; hydra_entry reports every one and exits 2
            return {}
        sys.exit(2)
    finally:
        interrupt.restore(previous)
        _job_started.clear()


def made_by_this_process(folder: Path, hydra_record: bool = False) -> bool:
    """Whether ``folder`` was made after this process started (by Hydra, for this command's run), not a folder of
    the user's, and holds nothing yet (``hydra_record``: nothing but what Hydra writes as src.bench's job starts,
    ``.hydra/`` and an empty log file; a folder of the user's that was empty cannot be told from one Hydra made
    then, as Hydra's writing changed its time)."""
    try:
        entries = list(folder.iterdir())
        if hydra_record:
            entries = [entry for entry in entries if entry.name != ".hydra"
                       and not (entry.suffix == ".log" and entry.is_file() and entry.stat().st_size == 0)]
        return not entries and folder.stat().st_ctime >= _PROCESS_STARTED
    except OSError:
        return False


def remove_if_only_its_log(run_dir: Path) -> None:
    """Remove the run folder Hydra made for a command refused before it wrote anything: all it holds is the log of
    the refusal, said on the console too, and Hydra's ``.hydra/`` record of the command where Hydra wrote one
    (before, every mistyped command left such a folder under outputs/)."""
    try:
        entries = list(run_dir.iterdir())
        logs = [entry for entry in entries if entry.suffix == ".log" and entry.is_file() and not entry.is_symlink()]
        record = [entry for entry in entries if entry.name == ".hydra" and entry.is_dir() and not entry.is_symlink()]
        if len(logs) == 1 and len(entries) == 1 + len(record):
            logs[0].unlink()
            if record:
                shutil.rmtree(record[0])
            run_dir.rmdir()
    except OSError:  # a file written there meanwhile, a folder not ours to remove: kept
        pass


_PROCESS_STARTED = time.time() - 0.1  # before Hydra makes the run folder (st_ctime: a coarser clock, hence the slack)
_job_started: list[float] = []  # time.perf_counter() at the start of the job entry() runs (see _start)
_entered: list[bool] = []  # one item per job entry() (or src.bench's main) has started in this process


def note_job_started() -> None:
    """For an entry point whose jobs do not run through :func:`entry` (``src.bench``): its job has started, so
    that :func:`hydra_entry` reports what it raises as a crash, not as one of Hydra's flag errors."""
    _entered.append(True)
_failed_jobs: list[tuple[str, str]] = []  # (overrides, user error) of a multirun's failed jobs, in order
_folder_setting_warned: list[bool] = []  # whether this invocation said a folder setting is ignored
_sweep_dirs: dict[str, None] = {}  # the sweep folder of a multirun's jobs (one, in practice), for its report
_finished_runs: list[str] = []  # the run folder of a single run whose job returned (Hydra may still be tearing down)
_finished_jobs: list[str] = []  # the run folders of a multirun's jobs that returned
_job_folders: dict[str, str] = {}  # run folder -> overrides of the multirun job that ran in it
_outside_signals: list[int] = []  # SIGINT / SIGTERM that came while no job's handler was installed


def run_and_exit(main: Callable[[], None]) -> NoReturn:
    """An entry point's ``__main__``: :func:`hydra_entry`, then :func:`exit_after_the_run` with its
    status, whether the run finished, failed (2), was stopped (130 / 143) or crashed (1, after its
    traceback)."""
    try:
        hydra_entry(main)
    except SystemExit as exc:
        code = exc.code
        if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python reports it
            print(code, file=sys.stderr)
            code = 1
        exit_after_the_run(code or 0)
    except BrokenPipeError:
        if not output_reader_gone():  # another pipe (a worker's): a crash, as below
            traceback.print_exc()
            exit_after_the_run(1)
        # the reader of the output went away (`--help | head`, `--cfg job | head`): stop quietly with
        # the status a shell gives a process SIGPIPE ended, as the table commands do (exit_status_of)
        exit_after_the_run(quiet_after_reader_gone())
    except BaseException as exc:  # a crash: its traceback, and status 1, as Python gives them
        try:
            error = address_space_error(exc) if isinstance(exc, Exception) else None
        except Exception:  # short of memory even for that: Python's traceback, as before
            error = None
        if error is None:
            traceback.print_exc()
            exit_after_the_run(1)
        print(f"error: {error}", file=sys.stderr)
        exit_after_the_run(2)
    exit_after_the_run(0)


def address_space_error(exc: BaseException) -> AutoAttendError | None:
    """A crash under an address-space limit (``ulimit -v``) as one line saying so, else None: there a run fails
    wherever an allocation or a library's mapping is refused (a MemoryError, an ImportError "failed to map
    segment", oneDNN's "could not create a primitive"), each a traceback whose last line said nothing of memory.
    ``resource`` is imported with the module: imported here, under the limit, it failed to map itself."""
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    return AutoAttendError(f"the run failed under an address-space limit of {binary_size(limit)} (ulimit -v), "
                           f"most likely out of memory there ({type(exc).__name__}: {first_line}; a traceback in the "
                           f"run's log): raise it (ulimit -v unlimited) and run the same command to resume")


def exit_after_the_run(status: int = 0) -> NoReturn:
    """End an entry point's process once :func:`hydra_entry` has ended, with ``status`` (0: the run
    finished and reported); a Ctrl-C or SIGTERM meanwhile is one ``interrupted:`` line saying how the
    run had ended, and 128 + the signal's number. What a normal exit does that matters is done
    here (other threads joined, ``atexit`` functions run, output flushed), then ``os._exit``:
    Python's own shutdown puts the default signal handlers back before it tears torch and Lightning
    down (about 0.65 s), so a signal then killed the process with no word (status -15), and before
    that gave "Exception ignored in atexit callback ... KeyboardInterrupt" and status 0. Not for a
    process that goes on (tests call :func:`hydra_entry` in-process)."""

    def late(signum, frame):
        if status == 0:
            ended = "finished" + (f": its results are in {_finished_runs[-1]}" if _finished_runs else "")
        else:
            ended = "was stopped" if status - 128 in interrupt.STOP_SIGNALS else "failed"
        sys.stdout.flush()
        print(f"interrupted{_named_signal(signum)} while the process exited after the run {ended}",
              file=sys.stderr, flush=True)
        os._exit(128 + int(signum))

    interrupt.install(late)
    # as Python's shutdown: threading's exit hooks first (concurrent.futures wakes its idle workers
    # there, or joining them would wait for ever), then the other threads joined
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # logging's flush among them; the interpreter would run them next
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _claim_job_folder(run_dir: Path) -> None:
    """Refuse a sweep job whose folder an earlier job of the same sweep has: a job folder leaves out
    the settings a resume may change (``hardware.threads``, ...), so jobs that differ only in those
    would run, or resume, in one folder."""
    from hydra.core.hydra_config import HydraConfig

    overrides = " ".join(HydraConfig.get().overrides.task)
    earlier = _job_folders.setdefault(str(run_dir), overrides)
    if earlier != overrides:
        raise AutoAttendError(f"this job ({overrides}) has the folder of an earlier job of the sweep ({earlier}), "
                              f"{run_dir}: they differ only in settings left out of job folder names, which a resume "
                              "may change (src/pipeline/run_settings.py MAY_CHANGE, and the hardware group); "
                              "sweep those in separate multiruns, each with its own hydra.sweep.dir")
    if not has_results(run_dir):
        _warn_of_an_old_job_folder(run_dir)


def _warn_of_an_old_job_folder(run_dir: Path) -> None:
    """Name the folder an autoattend before 2026-12-04 20:38 gave this job in the same sweep folder
    (``<job number>_<every override>``, the hardware and resumable settings included), which this job
    does not resume: it starts afresh in ``run_dir``, and the old folder stays beside it."""
    from hydra.core.hydra_config import HydraConfig

    from src.pipeline.config import job_folder_name

    if not run_dir.parent.is_dir():
        return
    excluded = set(HydraConfig.get().job.config.override_dirname.exclude_keys)
    for folder in sorted(run_dir.parent.iterdir()):
        numbered = re.fullmatch(r"\d+_(.+)", folder.name)
        if folder == run_dir or numbered is None or not folder.is_dir():
            continue
        kept = [o for o in numbered.group(1).split(",")
                if o.split("=", 1)[0] not in excluded and not o.startswith(("hardware.", "logger."))]
        if job_folder_name(",".join(kept)) == run_dir.name:
            log.warning("%s is this job's folder as an autoattend before 2026-12-04 named it: this job does not "
                        "resume it and runs afresh in %s; stop it and move that folder there (mv) to resume it",
                        folder, run_dir)


def _hydra_initialized() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized()


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def config_error_line(exc: BaseException) -> str:
    """Hydra's multi-line composition error as one line: list entries joined with commas, the
    config search path dropped."""
    text = str(exc)
    if isinstance(exc.__cause__, OmegaConfBaseException):
        text += "\n" + str(exc.__cause__)
    segments: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Config search path"):
            break
        if not line:
            continue
        if raw[:1] in ("\t", " ") and segments:  # an entry of the list the previous line opened
            segments[-1] += (" " if segments[-1].endswith(":") else ", ") + line
        else:
            segments.append(line)
    line = " ".join(seg if seg.endswith((".", ":")) else seg + ";" for seg in segments).rstrip(";")
    if "Multiple values for task" in line:
        tasks = [arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("+task=")]
        if any(arg.startswith("+experiment=") for arg in sys.argv[1:]):
            line += (" (an +experiment=... config already selects a task: write task=<name>, without the +, to "
                     "replace it)")
        elif len(tasks) > 1:  # Hydra's advice ("use 'override task: ...'") is for a config file's defaults list
            line = f"+task given {len(tasks)} times ({', '.join('+task=' + t for t in tasks)}): give one"
    return line


FOLDER_SETTINGS = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "paths.output_dir")


def unfit_folder_setting(argv: list[str], environ: Mapping[str, str]) -> str | None:
    """The line refusing a folder setting among the command's overrides that Hydra would make a folder of
    before the config is checked, or a Hydra setting the runs do not follow (``hydra.job.chdir``,
    ``hydra.output_subdir``), else ``None``: an empty one (``hydra.run.dir=$RUN`` with ``RUN`` unset: the
    current folder, where a whole run was written into the checkout; an empty output folder: the root,
    ``/<task>/search/<time>``), an empty ``AUTOATTEND_OUTPUT_DIR=`` the command does not replace, or a
    ``task.name`` that cannot name one folder (``a/b`` nested folders, ``..`` one beside the output folder)."""
    given = {}
    for arg in argv:
        key, equals, value = arg.partition("=")
        if equals:
            given[key.lstrip("+~")] = value.strip().strip("'\"")
    for key in FOLDER_SETTINGS:
        if key in given and not given[key].strip():
            return f"{key}: expected a folder, got an empty value (an unset shell variable?)"
        if key in given and given[key].startswith("~"):
            return _tilde_line(key, given[key])
    if given.get("hydra.job.chdir", "false").lower() not in ("false", "null", "none"):
        # the run's relative paths (./data, ./.cache, arch=file.yaml, task.path=) are the starting folder's
        return ("hydra.job.chdir: the run stays in the folder it was started in (its relative paths, the default "
                "./data and ./.cache, arch= and task.path=, are read from there); the run's outputs go to "
                "hydra.run.dir either way: leave hydra.job.chdir out")
    if given.get("hydra.output_subdir", "null").lower() not in ("null", "none"):
        # Hydra writes it before the checks: a refused re-run replaced a finished run's record
        return ("hydra.output_subdir: the run writes its .hydra/ record itself, once its settings are checked (so "
                "that a refused re-run leaves a finished run's record alone); leave hydra.output_subdir out")
    if "task.name" in given and unfit_folder_name(given["task.name"]):
        return task_name_line(given["task.name"])
    if "paths.output_dir" not in given and not environ.get("AUTOATTEND_OUTPUT_DIR", "x").strip():
        return ("AUTOATTEND_OUTPUT_DIR is set but empty: unset it (outputs/ is the default) or name a folder; the "
                "runs would go under /")
    if "paths.output_dir" not in given and environ.get("AUTOATTEND_OUTPUT_DIR", "").startswith("~"):
        return _tilde_line("AUTOATTEND_OUTPUT_DIR", environ["AUTOATTEND_OUTPUT_DIR"])
    return None


def _tilde_line(key: str, value: str) -> str:
    """The refusal of a folder setting starting with ``~``: Hydra makes the run folder from it as it stands, a
    folder named ``~`` in the current folder (which ``rm -r ~`` would then mistake for the home folder)."""
    return (f"{key}={value}: a leading ~ is not expanded in this setting (Hydra would make a folder named '~' in the "
            f"current folder); give the folder in full, or as $HOME/{value[1:].lstrip('/')} for the shell to expand")


def hydra_entry(main: Callable[[], None]) -> None:
    """Call a ``@hydra.main`` function; Hydra's own config errors (an unknown group option, a key
    not in the config, an override that does not parse) become one ``error:`` line and exit status
    2, as the project's errors. ``HYDRA_FULL_ERROR=1`` (set whatever the user set: with 0, Hydra printed its
    own 20-line message and exit status 1) makes Hydra raise them instead of printing several lines; an error
    inside a run still shows its traceback.
    In a multirun (``-m``) a job's user error is reported and the other jobs still run; the exit
    status is then 2. A multirun ends with the report of its jobs (``src/report.py``), printed and
    written to the sweep folder, failed jobs or not; a job that crashed (not a user error) is named in it
    with its exception (each crash's traceback is in its job's log; Hydra then raises the first crash's:
    its traceback and exit status 1).

    Ctrl-C or SIGTERM outside a job (while Hydra composes the config, between two jobs of a sweep,
    during the sweep's report, while Hydra tears down a finished run; inside a job :func:`entry`
    handles them) ends with one ``interrupted:`` line saying which of those it was and exit status
    130 / 143 too: a sweep's report of the jobs so far and how to resume it. Before, SIGTERM there
    killed the process without a word."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # also over a user's 0: the errors below are caught from Hydra's raise
    _failed_jobs.clear()  # this invocation's sweep only (a caller may run several in one process)
    _sweep_dirs.clear()
    _folder_setting_warned.clear()
    _finished_runs.clear()
    _finished_jobs.clear()
    _job_folders.clear()
    _outside_signals.clear()
    interrupted = _outside_signals
    main_returned = False

    def on_interrupt(signum, frame):
        if interrupt.repeats(signum, interrupted):
            return
        interrupted.append(signum)
        raise KeyboardInterrupt

    empty = unfit_folder_setting(sys.argv[1:], os.environ)
    if empty is not None:  # Hydra would make the run folder before any check: in the current one, or under /
        print(f"error: {empty}", file=sys.stderr)
        sys.exit(2)
    previous = interrupt.install(on_interrupt)
    jobs_before = len(_entered)
    try:
        try:
            main()
        except Exception:
            if _sweep_dirs:  # a job crashed (Hydra re-raises it after the other jobs): their report first
                _report_sweeps()
            raise
        main_returned = True
        _report_sweeps()
        if interrupted:  # raised where something swallowed it: the stop still ends the process as one
            raise KeyboardInterrupt
    except (ConfigCompositionException, MissingConfigException, OverrideParseException) as exc:
        line = config_error_line(exc)
        if isinstance(exc, ConfigCompositionException) and (key := _search_node_missing(exc)):
            line = _search_setting_line(key)
        elif wrong := re.match(r"In 'experiment/([^']+)': Could not override '([^']+)'\. No match in the defaults", line):
            # an experiment of the other entry point: its defaults name a group this config lacks
            line = (f"experiment {wrong.group(1)} chooses a {wrong.group(2)} option, which this entry point does not "
                    f"have: run it with the entry point its experiment.entry names, or `make reproduce "
                    f"EXP={wrong.group(1)}`")
        elif (option := re.match(r"Could not override '([^']+)'\. No match in the defaults list\.?[;\s]*To append to "
                                 r"your default list use \+(\S+)", line)) and option.group(1) in SEARCH_ONLY:
            # strategy=random given to src.retrain: Hydra's +strategy=random would add a group it never reads
            entry_point = Path(sys.argv[0]).stem
            line = (_search_setting_line(option.group(2)) if entry_point == "retrain" else
                    f"{option.group(2)}: a setting of the search (src.search), which src.{entry_point} does not read "
                    f"(its settings: python -m src.{entry_point} --help)")
        elif added := re.match(r"Could not override '([^']+)'\. To append to your config use \+(.+?)(?:; Key '|$)", line):
            # Hydra's advice would add a key nothing reads (refused since, see refuse_added_settings)
            key = added.group(1)
            if within(key, ADDABLE) or key.startswith("hydra."):  # Hydra's own: hydra.job.env_set.X adds a variable
                line = f"{key}: not in the config yet; add it with +{added.group(2)}"
            else:
                line = (f"{key}: no such setting (misspelt, or one of a task or option not chosen?); the command "
                        "with --cfg job in place of this override lists the settings")
        if isinstance(exc, OverrideParseException):
            # name the argument; a value holding '=' or brackets needs quoting in the grammar
            line = (f"cannot parse the override {exc.override!r}: {line.split('; See ')[0]} (quote a value with "
                    "special characters: key='value', see https://hydra.cc/docs/advanced/override_grammar/basic)")
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except (FileExistsError, NotADirectoryError) as exc:
        # Hydra creating the run (or sweep) folder where a file is: a traceback from its run_job
        where = exc.filename if exc.filename is not None else str(exc)
        print(f"error: cannot create the folder {where}: {exc.strerror or exc} (a file stands where the run's folder "
              "goes: see hydra.run.dir, hydra.sweep.dir, paths.output_dir)", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # Hydra creating the run folder where it may not (permissions, a read-only disk)
        refused = machine_error(exc)
        if refused is None:
            raise
        print(f"error: {refused}", file=sys.stderr)
        sys.exit(2)
    except (ValueError, OmegaConfBaseException) as exc:
        if len(_entered) > jobs_before:  # raised in a job: a crash, its traceback as Python gives it
            raise
        # Hydra's own flags before any job (`--cfg hydra --resolve`, whose hydra.run.dir names job settings;
        # `-m` with `--cfg`; `--shell-completion` without its subcommand): their message, not a traceback
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"error: {first_line} ({type(exc).__name__} from Hydra, before any run started)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        _stopped_outside_a_job(interrupted[0] if interrupted else signal.SIGINT, main_returned)
    finally:
        interrupt.restore(previous)
    if _failed_jobs:
        others = "the others finished" if _finished_jobs else "none finished"
        print(f"error: {len(_failed_jobs)} job(s) of the sweep failed, each reported above; {others}",
              file=sys.stderr)
        sys.exit(2)


def _stopped_outside_a_job(signum: int, every_job_ended: bool) -> None:
    """The ``interrupted:`` line and exit status for a stop that no job's :func:`entry` saw:
    before a run, between two jobs of a sweep, while the sweep's report is written
    (``every_job_ended``), or while Hydra tears down a single run that finished."""
    interrupt.install(signal.SIG_IGN)  # the report and the line are short: let them finish
    by = _named_signal(signum)
    if _sweep_dirs:
        _report_sweeps()
        kept = next(iter(_sweep_dirs))
        if every_job_ended:
            message = (f"interrupted{by} while the sweep's report was written: every job had ended; the jobs and "
                       f"the report are in {kept}")
        else:
            message = (f"interrupted{by} between two jobs of the sweep: what finished is kept in {kept}; run the "
                       f"same command with hydra.sweep.dir={kept} to resume")
    elif _finished_runs:
        message = f"interrupted{by} after the run finished: its results are in {_finished_runs[-1]}"
    else:
        message = f"interrupted{by} before the run started: nothing was run"
    print(message, file=sys.stderr)
    _exit_for_signal(signum)


def _report_sweeps() -> None:
    from src.report import write_sweep_report

    for sweep_dir in _sweep_dirs:
        write_sweep_report(sweep_dir, _failed_jobs)
