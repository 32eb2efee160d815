"""What a run needs from its config before any heavy import: the task, the space, the architecture,
the run directory.

Nothing here imports torch or Lightning, so the entry points check a config (this, and
:mod:`src.pipeline.checks`) in a fraction of a second and load the rest only for a valid run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.pipeline.checks import CHILD_KEYS, check_arch_hparams, children_readout
from src.pipeline.run_settings import TIMING_FILE, flatten, may_change
from src.space import Architecture, FunctionalSpace
from src.space.space import last_layer_ops_under
from src.strategies import SearchStrategy, build_strategy, strategy_settings
from src.utils.errors import AutoAttendError
from src.utils.io import atomic_write_json

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
SHIPPED_SPACES = {"text": ("space/text.yaml", None), "graph": ("graph/default.yaml", "space")}


def shipped_space(family: str) -> dict[str, Any]:
    """The search space the shipped config defines for ``family`` (``text``: ``conf/space/text.yaml``;
    ``graph``: the ``space`` node of ``conf/graph/default.yaml``), as the file holds it (interpolations left
    unresolved): the paper's, which ``src.bench`` measures. Not ``TEXT_OPS`` / ``GRAPH_OPS``, every op the code
    knows, to which an extension adds ops (docs/extending.md) without changing the paper's space."""
    file, node = SHIPPED_SPACES[family]
    tree = OmegaConf.to_container(OmegaConf.load(CONF_DIR / file), resolve=False)
    return tree[node] if node is not None else tree
ARCH_DIR = Path(__file__).resolve().parents[1] / "space" / "archs"
JOB_NAME_MAX = 120  # characters of a sweep job's folder name kept as written
NAME_BYTES_MAX = 255  # bytes of a file name (UTF-8), the limit of Linux's and macOS's file systems


def job_folder_name(overrides: str, job_num: int | str = 0) -> str:
    """A sweep job's folder name from Hydra's ``override_dirname`` (``a=1,b=2``): as it is, except
    that a ``/`` (a path in a value, which would nest folders) becomes ``_``, and a name longer
    than :data:`JOB_NAME_MAX` characters is cut there and ends with a digest of the whole (unique,
    and within the file system's limit on a name, :data:`NAME_BYTES_MAX` bytes: a value in another
    script takes two to four UTF-8 bytes a character, so such a name is cut shorter where it has
    to be, on a whole character; a name the file system takes is kept as before). No job number in
    front, so that a sweep re-run in its folder with other swept values (``seed=0,1`` then
    ``seed=1,2``) finds the jobs it already has; the job number only where there are no overrides to
    name the job by."""
    name = overrides.replace("/", "_")
    if not name:
        return str(job_num)
    if len(name) <= JOB_NAME_MAX and len(name.encode("utf-8")) <= NAME_BYTES_MAX:
        return name
    digest = hashlib.sha1(overrides.encode("utf-8")).hexdigest()[:10]
    head = name[:JOB_NAME_MAX - 11].encode("utf-8")[:NAME_BYTES_MAX - 11].decode("utf-8", "ignore")  # whole characters
    return f"{head}-{digest}"


def sweep_excluded_keys(*, _root_: DictConfig) -> list[str]:
    """The override keys left out of a sweep job's folder name (Hydra's ``override_dirname``
    ``exclude_keys``, which it matches exactly): every key of the composed config that a resume may
    change (:func:`src.pipeline.run_settings.may_change`), and the ``hardware`` and ``logger`` groups,
    whose options differ only in such keys. So a sweep re-run with ``hardware.threads=1`` or
    ``ranking.candidates=24`` added finds the folders it already has."""
    tree = OmegaConf.to_container(_root_, resolve=False)
    tree.pop("hydra", None)
    return ["hardware", "logger", *sorted(key for key in flatten(tree) if may_change(key))]


def config_groups_help(*groups: str) -> str:
    """The ``group: option, ...`` lines of ``--help`` for the named config groups (the options are
    ``conf/<group>/*.yaml``), as Hydra's ``$APP_CONFIG_GROUPS`` writes them for every group of the
    conf folder: ``src.retrain`` lists only those it reads (not ``strategy``, ``supernet``)."""
    return "\n".join(f"{group}: {', '.join(sorted(p.stem for p in (CONF_DIR / group).glob('*.yaml')))}"
                     for group in sorted(groups))


if not OmegaConf.has_resolver("config_groups"):
    OmegaConf.register_new_resolver("config_groups", config_groups_help)

# conf/{search,retrain}.yaml name sweep jobs ${job_folder:${hydra.job.override_dirname},${hydra.job.num}};
# registered on import, before the entry points' @hydra.main composes and resolves them
if not OmegaConf.has_resolver("job_folder"):
    OmegaConf.register_new_resolver("job_folder", job_folder_name)
if not OmegaConf.has_resolver("sweep_excluded_keys"):
    OmegaConf.register_new_resolver("sweep_excluded_keys", sweep_excluded_keys)


def require_task(cfg: DictConfig) -> None:
    """Fail with the list of tasks when no ``+task=...`` was given, and when ``+experiment=<name>``
    found no experiment configs: the search-path plugin that adds them (hydra_plugins/autoattend_experiments)
    was not found, and Hydra took the name for a plain value (no task then, or a traceback with one)."""
    experiment = cfg.get("experiment")
    if experiment is not None and not isinstance(experiment, DictConfig):
        raise AutoAttendError(f"+experiment={experiment}: no experiment configs found: they are read from "
                              f"{CONF_DIR.parent / 'experiments' / 'conf' / 'experiment'} through the Hydra plugin "
                              f"hydra_plugins/autoattend_experiments, which the project's install provides "
                              f"(`make install`, or `pip install -e .` in {CONF_DIR.parent})")
    if "task" not in cfg or cfg.task is None:
        tasks = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
        raise AutoAttendError(f"no task selected: add +task=<name> to the command (available: {', '.join(tasks)})")


def task_family(cfg: DictConfig) -> str:
    """``text`` (the default) or ``graph``, from the task's ``family`` key."""
    return str(cfg.task.get("family", "text"))


def settings_task(cfg: DictConfig) -> str:
    """The task whose entries (``task_hparams.<task>``, ``task_arch.<task>``) architecture files give
    this run: the task's protocol's ``name`` where it has one (a graph_file run with
    ``task/protocol=ppi`` trains its baselines as PPI's), else the task's own name."""
    protocol = cfg.task.get("protocol")
    return str((protocol.get("name") if protocol is not None else None) or cfg.task.name)


def _space_node(cfg: DictConfig) -> DictConfig:
    """The config node describing the task's space: ``space`` for text, ``graph.space`` for graphs."""
    return cfg.graph.space if task_family(cfg) == "graph" else cfg.space


def last_layer_ops(cfg: DictConfig) -> tuple[str, ...] | None:
    """The ops a searched model's last layer may use, ``None`` for all of the space's: see
    :func:`~src.space.space.last_layer_ops_under` (a graph child reading out with its last layer,
    ``graph.retrain.readout=last`` or ``last`` among the HPO's readouts: :func:`children_readout`)."""
    if task_family(cfg) != "graph":
        return None
    return last_layer_ops_under(cfg.graph.space.ops, children_readout(cfg))


def search_space(cfg: DictConfig) -> FunctionalSpace:
    """The task's search space."""
    s = _space_node(cfg)
    return FunctionalSpace(num_layers=int(s.num_layers), ops=tuple(s.ops), priors=bool(s.priors),
                           kinds=tuple(s.kinds), last_layer_ops=last_layer_ops(cfg))


def search_strategy(cfg: DictConfig, space: FunctionalSpace) -> SearchStrategy:
    """The ``strategy`` node's search over ``space``, refused when it would score more distinct
    architectures than the space holds (``space.num_layers=1`` with the paper's 1,000 candidates
    trained the supernet, then ended in a traceback from the sampler)."""
    c = cfg.strategy
    strategy = build_strategy(c.name, space, cfg.seed, **{k: c[k] for k in strategy_settings() if k in c})
    if strategy.budget > space.size():
        node = "graph.space" if task_family(cfg) == "graph" else "space"
        budget = "strategy.budget" if c.get("budget") and "budget" in strategy.SETTINGS else \
            "strategy.population, strategy.rounds, strategy.parents"
        raise AutoAttendError(f"strategy={c.name} would score {strategy.budget:,} distinct architectures but the space "
                              f"holds {space.size():,} ({node}.num_layers={space.num_layers}): raise "
                              f"{node}.num_layers or lower {budget}")
    return strategy


def check_supernet_draws(cfg: DictConfig, space: FunctionalSpace) -> None:
    """Refuse a supernet that would draw more distinct architectures at once (each step's, the monitored ones)
    than ``space`` holds: the supernet stage ended in the sampler's error, naming no setting, after the data."""
    node = "graph.supernet" if task_family(cfg) == "graph" else "supernet"
    space_node = "graph.space" if task_family(cfg) == "graph" else "space"
    for key in ("archs_per_step", "monitor_archs"):
        value = OmegaConf.select(cfg, f"{node}.{key}")
        if value is not None and int(value) > space.size():
            raise AutoAttendError(f"{node}.{key}={value}: more distinct architectures than the space holds "
                                  f"({space.size():,}, {space_node}.num_layers={space.num_layers}); lower it or "
                                  f"raise {space_node}.num_layers")


def retrain_space(cfg: DictConfig, num_layers: int) -> FunctionalSpace:
    """What a retrained architecture must lie in: the task's ops and kinds, any sources (the priors
    only shape the search)."""
    s = _space_node(cfg)
    return FunctionalSpace(num_layers, ops=tuple(s.ops), priors=False, kinds=tuple(s.kinds))


def arch_file(spec: str, key: str | None = "arch") -> Path:
    """The file ``arch=<spec>`` names: a YAML/JSON file, a search's run directory (its
    ``search/best_arch.yaml``) or ``search/`` folder, or a built-in name (``src/space/archs/<name>.yaml``).
    Errors name the setting as ``<key>=<spec>`` (``key=None``: the bare ``spec``, for a command's argument)."""
    named = f"{key}={spec}" if key else str(spec)
    if spec is None or not str(spec).strip():  # arch= (make retrain ARCH=) named the current directory
        raise AutoAttendError(f"no architecture given: add arch=<name or path> (built-ins: {_builtin_names()})")
    path = Path(str(spec)).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in (path / "search" / "best_arch.yaml", path / "best_arch.yaml"):
            if candidate.is_file():
                return candidate
        if (path / "retrain" / "results.json").is_file():  # a src.retrain run: src.show reads it from there
            results = path / "retrain" / "results.json"
            raise AutoAttendError(f"{named}: a src.retrain run directory, without search/best_arch.yaml; the "
                                  f"architecture it retrained, with its settings: arch={results}")
        raise AutoAttendError(f"{named}: a directory without search/best_arch.yaml (a search's run directory "
                              f"holds it once its search has finished)")
    builtin = ARCH_DIR / f"{spec}.yaml"
    if builtin.is_file():
        return builtin
    raise AutoAttendError(f"{named}: no such file and no built-in architecture of that name "
                          f"(built-ins: {_builtin_names()})")


def _builtin_names() -> str:
    return ", ".join(sorted(p.stem for p in ARCH_DIR.glob("*.yaml")))


# Top-level keys of an architecture file: the architecture (``layers``, or under ``arch``), the
# settings a hand-designed one carries, and what a search's best_arch.yaml records beside it
ARCH_FILE_KEYS = ("layers", "arch", "hparams", "task_hparams", "task_arch", "val_acc_supernet", "rerank_rank",
                  "rerank_val_acc")


def _check_arch_file_keys(path: Path, data, task: str | None) -> None:
    """Refuse a top-level key no reader knows (``hparam:`` for ``hparams:`` ran the HPO instead of the
    file's settings, in silence) and a ``task_hparams`` / ``task_arch`` entry for no task (``Cora:``;
    the tasks are the presets and ``task``, the run's own name, e.g. ``+task=csv task.name=reviews``;
    not checked without a task).
    A retrain's ``results.json`` (read for its ``arch``) is a record of its own, not checked."""
    if not isinstance(data, dict) or "per_seed" in data:
        return
    unknown = sorted(set(data) - set(ARCH_FILE_KEYS), key=str)
    if unknown:
        raise AutoAttendError(f"{path}: unknown top-level key {unknown[0]!r}; expected some of {', '.join(ARCH_FILE_KEYS)}")
    if task is None:  # no run to read it for: which task names a file may carry is the run's question
        return
    tasks = sorted({p.stem for p in (CONF_DIR / "task").glob("*.yaml")} | {task})
    for key in ("task_hparams", "task_arch"):
        per_task = data.get(key)
        if isinstance(per_task, dict):
            for name in per_task:
                if name not in tasks:
                    raise AutoAttendError(f"{path}: {key}.{name}: no such task (tasks: {', '.join(tasks)})")


@dataclass(frozen=True)
class ArchFile:
    """What ``arch=<spec>`` names, read once: its ``path``, the architecture (for a task, the file's
    ``task_arch.<task>`` when it has one), the file's parsed ``data`` and the ``task`` it is read
    for. :attr:`hparams` and :attr:`carries` say what settings it holds."""

    path: Path
    arch: Architecture
    data: Any
    task: str | None

    @property
    def carries(self) -> bool:
        """The file holds settings (``hparams`` or ``task_hparams``, for any task)."""
        return isinstance(self.data, dict) and bool(self.data.get("hparams") or self.data.get("task_hparams"))

    @property
    def hparams(self) -> dict | None:
        """The graph child settings it carries for its task: ``hparams`` with ``task_hparams.<task>``
        over them, checked; ``None`` when it carries none for the task (a searched architecture;
        ``hparams: null``), so the HPO or ``graph.retrain`` decides."""
        data, path = self.data, self.path
        if not isinstance(data, dict):
            return None
        hp, per_task = data.get("hparams"), data.get("task_hparams")
        if not isinstance(hp or {}, dict) or not isinstance(per_task or {}, dict) or \
                not isinstance((per_task or {}).get(self.task) or {}, dict):
            raise AutoAttendError(f"{path}: hparams and task_hparams.<task> must be mappings of settings")
        merged = {**(hp or {}), **((per_task or {}).get(self.task) or {})}
        if not merged:
            return None
        unknown = set(merged) - set(CHILD_KEYS)
        if unknown:
            raise AutoAttendError(f"{path}: unknown hparams key {sorted(unknown)[0]!r}; expected some of {CHILD_KEYS}")
        check_arch_hparams(merged, str(path))
        return merged


def read_arch(spec: str, task: str | None = None) -> ArchFile:
    """Read the file ``arch=<spec>`` names (:func:`arch_file`); errors name the file and the key. The
    GAT paper's PubMed model has 8 output heads where its Cora model has 1: ``task_arch``."""
    path = arch_file(spec)
    arch, data = Architecture.read(path)
    _check_arch_file_keys(path, data, task)
    if isinstance(data, dict) and task is not None and data.get("task_arch") is not None:
        per_task = data["task_arch"]
        if not isinstance(per_task, dict):
            raise AutoAttendError(f"{path}: task_arch must map task names to architectures")
        if task in per_task:
            arch = Architecture.from_dict(per_task[task], source=f"{path} task_arch.{task}")
    return ArchFile(path, arch, data, task)


def resolve_arch(spec: str, task: str | None = None) -> Architecture:
    """The architecture ``arch=<spec>`` names (:func:`read_arch`)."""
    return read_arch(spec, task).arch


def run_dir_of(cfg: DictConfig) -> Path:
    """The Hydra run directory (Hydra 1.3 does not chdir, so everything is written under it)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def read_timing(path: Path) -> tuple[dict[str, float], int] | None:
    """A run's ``timing.json`` (written by :class:`Timer`): the seconds of each stage over the run's
    invocations, and how many invocations ran one; ``None`` when it is absent or cannot be read
    (damaged, or being written)."""
    try:
        recorded = json.loads(Path(path).read_text())
        return {str(k): float(v) for k, v in recorded["seconds"].items()}, int(recorded["invocations"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def note_computing() -> None:
    """Tell the running stage's :class:`Timer` that this invocation computes something (a fit, the
    children of a graph stage, candidates scored), not only re-reading what an earlier one finished:
    the summary line says which (a re-run of a finished run said "this one 0 s")."""
    if Timer.current is not None:
        Timer.current.computed = True


class Timer:
    """Wall-clock seconds per named stage, for the run summary.

    With a ``path`` (the run's ``timing.json``) the stages' seconds add up over every invocation
    of the run directory: a run resumed after Ctrl-C (or re-run to finish it) reports the time all
    its invocations took, not only the last one's, which may have reloaded finished stages in
    seconds. The file is rewritten as each stage ends, interrupted or not.
    """

    FILE = TIMING_FILE
    current: "Timer | None" = None  # the timer whose stage is running (see note_computing)

    def __init__(self, path: Path | None = None, started: float | None = None):
        self.seconds: dict[str, float] = {}  # this invocation's
        self.path = path
        # time.perf_counter() at this invocation's start (default: now); see wall_seconds
        self.started = time.perf_counter() if started is None else started
        self.computed = False  # whether a stage of this invocation trained or scored anything
        self._aside = 0.0  # seconds of the running stage counted as another (aside)
        self.before: dict[str, float] = {}
        self.invocations_before = 0
        self._loaded = False

    def _load(self) -> None:
        # read when the first stage starts, after the run's settings were checked: a directory
        # whose earlier invocation left no results starts afresh, and its record with it
        self._loaded = True
        recorded = read_timing(self.path) if self.path is not None else None
        if recorded is not None:
            self.before, self.invocations_before = recorded
        elif self.path is not None and self.path.exists():  # said: the run's total time restarts here
            logging.getLogger(__name__).warning("%s is unreadable: the run's time is counted from this invocation on",
                                                self.path)

    @property
    def totals(self) -> dict[str, float]:
        """Seconds per stage over every invocation (this one's stages last, in their order)."""
        names = list(self.before) + [k for k in self.seconds if k not in self.before]
        return {k: round(self.before.get(k, 0.0) + self.seconds.get(k, 0.0), 1) for k in names}

    @property
    def wall_seconds(self) -> float:
        """This invocation's own wall-clock seconds so far, from its start (what the stages' seconds
        leave out: starting Python, imports, reading the settings, writing the summary)."""
        return time.perf_counter() - self.started

    @property
    def invocations(self) -> int:
        """How many invocations ran a stage, this one included once it has."""
        return self.invocations_before + (1 if self.seconds else 0)

    @contextmanager
    def aside(self, name: str):
        """Time spent inside the running stage that counts as stage ``name`` instead (the first
        run's kernel build, done inside ``data`` once the data are known to be the run's); recorded
        with that stage, so a stage refused later records neither."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - t0
            self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 1)
            self._aside += spent

    def _record(self) -> None:
        if self.path is not None:
            atomic_write_json(self.path, {"seconds": self.totals, "invocations": self.invocations})

    def __call__(self, name: str, refusable: bool = False):
        """A stage's context. ``refusable``: a stage that checks whether the run may go on (the
        data against the run's record): ended by a user error, it was no work of the run and is not
        recorded (nor the invocation, if it is the first stage)."""
        timer = self

        class _Stage:
            def __enter__(self):
                if not timer._loaded:
                    timer._load()
                Timer.current = timer
                timer._aside = 0.0
                self.t0 = time.perf_counter()

            def __exit__(self, exc_type, exc, tb):
                Timer.current = None
                if refusable and exc_type is not None and issubclass(exc_type, AutoAttendError):
                    return
                spent = time.perf_counter() - self.t0 - timer._aside
                timer.seconds[name] = round(timer.seconds.get(name, 0.0) + spent, 1)
                timer._record()

        return _Stage()
