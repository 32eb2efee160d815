"""Tables of runs: one row per run directory, and the runs that differ only in their seed folded
into one row (the mean and spread over those searches or retrains).

    python -m src.report outputs/multirun/search/2026-12-03_10-00-00      # a sweep
    python -m src.report outputs/sst2 outputs/sst5 --csv runs.csv --markdown runs.md

A run directory is any folder holding ``run_settings.json`` (every ``src.search`` and
``src.retrain`` run writes one first), or a finished run from before that file existed (its
``.hydra/config.yaml`` and ``summary.json``: settings read from the config); the given folders are
searched recursively. Columns: the
settings that differ between the runs found (from ``run_settings.json``, so defaults count too, not
only what was typed), the run's state when it has not finished, the supernet's best validation
score, the retrained test score (mean +- sample std over its seeds, in %), the graph baselines and
the ranking correlation when the run has them, and the wall clock. Runs of both task families
(text, graph) get a pair of tables each, with the settings that differ among that family's runs.
Runs of several budgets (``budget=quick``, ``paper``: ``.hydra/hydra.yaml``) get a ``budget``
column, which stands for the settings that differ only with it: left out where every run's
``.hydra/`` records name its budget, a budget's file (``conf/budget/``) sets the setting, no run's
typed overrides (``.hydra/overrides.yaml``) touch it, its group's config does not derive it from
other settings (the graph keys that follow the task's protocol), each run's value is the one its
budget and task compose to with nothing typed, and the runs of each budget agree on it
(:func:`budget_keys`); runs of two budgets never fold into one row. ``--wide`` prints one pair of
every run with every setting that differs among them all (and the ``budget`` column), the columns
the ``--csv`` file always has. A Hydra multirun writes this report to its sweep directory
(``report.md``, ``report.csv``) when its jobs end.

Reads JSON and YAML only: no torch, so it answers at once.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import itertools
import json
import os
import re
import statistics
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from src.choices import HPO_MIN_TRIALS
from src.pipeline.run_settings import (SETTINGS_FILE, UNREAD_BY, canonical, format_mean_std, is_number,
                                       unread_by_retrain)
from src.utils.errors import AutoAttendError
from src.utils.io import atomic_target, atomic_write_text, load_config, safe_yaml

# Never shown as settings columns: the entry point and the task get their own columns, and a
# retrain's architecture is named by the `arch` column rather than by its content. The task's other
# keys follow from its name unless overridden (`+task=csv task.path=...`, `task.max_len=...`): they
# are shown only where runs of the same task differ in them.
HIDDEN_KEYS = ("entry", "arch", "architecture", "arch_hparams")
HIDDEN_PREFIXES = ("task.",)
DEFAULT_OVER = ("seed",)


@dataclass
class Run:
    """One run directory: its settings (flat, as ``run_settings.json`` holds them) and, once it
    has finished, its ``summary.json``."""

    path: Path
    settings: dict[str, Any]
    summary: dict[str, Any] | None
    state: str = "finished"
    # an unfinished run's figures so far: its search's best supernet score, the seconds of its stages
    partial: dict[str, Any] = field(default_factory=dict)
    # its budget (conf/budget/<name>.yaml) and the overrides typed for it, from its .hydra/ records
    # and its task's config file (conf/task/<name>.yaml) (:func:`_hydra_record`); None where they do not say
    budget: str | None = None
    overrides: list[str] | None = None
    task_file: str | None = None

    @property
    def entry(self) -> str:
        return str(self.settings.get("entry", "?"))

    @property
    def task(self) -> str:
        return str(self.settings.get("task.name", "?"))

    @property
    def graph(self) -> bool:
        return self.settings.get("task.family") == "graph"

    def test(self) -> float | None:
        retrain = (self.summary or {}).get("retrain")
        return None if not retrain else float(retrain["test_acc_mean"])


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AutoAttendError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); was the run directory "
                              "edited by hand?") from None
    except UnicodeDecodeError:
        raise AutoAttendError(f"{path}: not valid JSON (bytes that are not UTF-8); was the run directory "
                              "edited by hand?") from None
    except OSError as exc:
        raise AutoAttendError(f"{path}: cannot be read ({exc.strerror})") from None


def _check_summary(summary: dict[str, Any], path: Path) -> None:
    """The parts of a ``summary.json`` the report reads have the types a run writes: a hand-edited
    or foreign file (another program's ``summary.json`` in the same outputs folder) is one
    unreadable run, not a traceback that loses the whole report."""
    def bad(key: str, expected: str) -> AutoAttendError:
        return AutoAttendError(f"{path}: {key} is not {expected}; was the run directory edited by hand?")

    def block(key: str, value: Any) -> None:
        if value is None and key == "retrain":
            return
        if not isinstance(value, dict):
            raise bad(key, "an object of results")
        for name in ("test_acc_mean", "test_acc_std") + (("val_acc_mean",) if key == "retrain" else ()):
            if not is_number(value.get(name)):
                raise bad(f"{key}.{name}", "a number")
        if not isinstance(value.get("seeds", []), list) or (key == "retrain" and "seeds" not in value):
            raise bad(f"{key}.seeds", "a list of seeds")  # a baseline's block names none

    seconds = summary.get("seconds")
    if seconds is not None and not (isinstance(seconds, dict) and all(map(is_number, seconds.values()))):
        raise bad("seconds", "an object of stage seconds")
    if summary.get("best_val_acc_supernet") is not None and not is_number(summary["best_val_acc_supernet"]):
        raise bad("best_val_acc_supernet", "a number")
    block("retrain", summary.get("retrain"))
    baselines = summary.get("baselines") or {}
    if not isinstance(baselines, dict):
        raise bad("baselines", "an object of results by baseline")
    for name, value in baselines.items():
        block(f"baselines.{name}", value)
    ranking = summary.get("ranking")
    if ranking is not None:
        every = ranking.get("all") if isinstance(ranking, dict) else None
        n = every.get("n") if isinstance(every, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or not (
                every.get("spearman") is None or is_number(every.get("spearman"))):
            raise bad("ranking.all", "an object with n and spearman")


def _our_summary(path: Path) -> bool:
    """Whether ``summary.json`` is a run's of this project (it names its task), or unreadable (to
    be reported as such); another Hydra program's summary in the same outputs folder is not."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return isinstance(summary, dict) and "task" in summary


def _natural_key(path: Path) -> list:
    """Sweep jobs ``0_...``, ``1_...``, ``10_...`` in numeric order."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def _folders(root: Path) -> Iterator[tuple[Path, set[str]]]:
    """Every folder at or under ``root`` with the names of its files, following links to folders
    (``Path.rglob`` did not: a run linked into a folder of runs was not found), each real folder once
    (a link back up the tree ends there)."""
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        yield Path(folder), set(files)


def find_runs(roots: list[str | Path]) -> list[Path]:
    """The run directories at or under ``roots``, in natural path order, each once."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if root.is_file():
            raise AutoAttendError(f"{root}: a file; give the run directory (or a folder of them) instead")
        if not root.is_dir():
            raise AutoAttendError(f"{root}: no such directory (expected a run directory or a folder of them)")
        for folder, files in _folders(root):
            if SETTINGS_FILE in files or ((folder / ".hydra" / "config.yaml").is_file()
                                          and (folder / "summary.json").is_file()
                                          and _our_summary(folder / "summary.json")):
                found.add(folder.resolve())
    if not found:
        raise AutoAttendError(f"no run directories ({SETTINGS_FILE}) under {', '.join(map(str, roots))}")
    return sorted(found, key=_natural_key)


def _retrain_seeds(settings: dict[str, Any]) -> int:
    key = "graph.retrain.seeds" if settings.get("task.family") == "graph" else "retrain.seeds"
    value = settings.get(key) or 0
    if not isinstance(value, int):
        raise AutoAttendError(f"the run's settings: {key} is {value!r}, not a number of seeds; was the run "
                              "directory edited by hand?")
    return value


def _state(path: Path, settings: dict[str, Any]) -> str:
    """Where an unfinished run stopped, from the files its stages leave."""
    first_stage = "supernet" if settings.get("entry") == "search" else "retrain"
    if not (path / first_stage).exists():
        return "not started (see its log)"  # stopped before its first stage, e.g. no GPU for hardware=gpu
    if settings.get("entry") == "search":
        if not (path / "supernet" / "DONE").exists():
            return "supernet unfinished"
        if not (path / "search" / "best_arch.yaml").exists():
            # a graph search re-ranking its top candidates: the evolution's topk.yaml is written
            # (the candidates train in memory: no folder of theirs to look for)
            if _count_at_least(settings, "graph.rerank.topk", 1) and (path / "search" / "topk.yaml").exists():
                done = len(_record(path / "search" / "rerank.json").get("candidates") or [])
                return f"rerank {done}/{settings['graph.rerank.topk']} candidates"
            return "search unfinished"
    seeds = _retrain_seeds(settings)
    done = len(list((path / "retrain").glob("seed_*.json")))
    # the HPO runs before the seeds of an architecture that carries no settings of its own
    if (done == 0 and _count_at_least(settings, "graph.hpo.trials", HPO_MIN_TRIALS)
            and settings.get("arch_hparams") is None and (path / "retrain").is_dir()):
        hpo = _record(path / "retrain" / "hpo.json")
        if not hpo.get("chosen"):
            return f"hpo {len(hpo.get('trials') or [])}/{settings['graph.hpo.trials']} trials"
    if done < seeds:
        return f"retrain {done}/{seeds} seeds"
    if (path / "baselines").is_dir():
        total = len(settings.get("graph.baselines") or []) * seeds
        finished = len(list((path / "baselines").glob("*/seed_*.json")))
        if finished < total:
            return f"baselines {finished}/{total} seeds"
    if (path / "ranking").is_dir() and not (path / "ranking" / "results.json").exists():
        return _ranking_state(path)
    return "unfinished"


def _count_at_least(settings: dict[str, Any], key: str, least: int) -> bool:
    """A graph run's count setting (``graph.rerank.topk``, ``graph.hpo.trials``) is at least ``least``:
    the stage it sizes runs."""
    value = settings.get(key)
    return settings.get("task.family") == "graph" and isinstance(value, int) and value >= least


def _record(path: Path) -> dict:
    """A stage's JSON record (rewritten as the stage goes), or ``{}`` when it is not there yet."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _ranking_state(path: Path) -> str:
    """``ranking 5/24 candidates`` (:func:`_ranking_progress`), or ``ranking unfinished`` where its
    records cannot tell."""
    progress = _ranking_progress(path)
    return "ranking unfinished" if progress is None else f"ranking {progress[0]}/{progress[1]} candidates"


def _ranking_progress(path: Path) -> tuple[int, int] | None:
    """``(done, picked)``: of the candidates the ranking stage picks with the run's settings
    (:func:`src.pipeline.ranking_plan.picked_ranks` over the search's distinct architectures), those
    trained from scratch with every one of its seeds (a graph candidate's ``result.json`` with those
    seeds, a text candidate's ``seed_<s>.json`` each); candidates of an earlier ``ranking.candidates``
    do not count. The settings come from the run's ``.hydra/config.yaml`` (``run_settings.json`` leaves
    out ``ranking.*``, which a resume may change); ``None`` where the records cannot tell."""
    import yaml

    from src.pipeline.ranking_plan import picked_ranks, ranking_seeds

    try:
        config = safe_yaml((path / ".hydra" / "config.yaml").read_text())
        k = config["ranking"]
        wanted, seeds = int(k["candidates"]), ranking_seeds(config["seed"], k["seeds"])
        with open(path / "search" / "population.jsonl") as f:
            distinct = len({json.dumps(json.loads(line)["arch"], sort_keys=True) for line in f if line.strip()})
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError):
        return None
    picked = picked_ranks(distinct, wanted)

    def trained(rank: int) -> bool:
        folder = path / "ranking" / f"rank_{rank}"
        if (folder / "result.json").exists():
            return _record(folder / "result.json").get("seeds") == seeds
        return all((folder / f"seed_{seed}.json").exists() for seed in seeds)

    return sum(map(trained, picked)), len(picked)


def _settings_from_config(path: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """A finished run from before ``run_settings.json``: the same keys, from its composed config
    (keys added to the code since then are absent, and not counted as differences); the entry
    point from its ``summary`` (a retrain's names its ``arch``)."""
    import yaml
    from omegaconf import DictConfig
    from omegaconf.errors import OmegaConfBaseException

    from src.pipeline.run_settings import run_settings

    config = path / ".hydra" / "config.yaml"
    try:
        composed = load_config(config)
        if not isinstance(composed, DictConfig) or "task" not in composed:
            raise ValueError("not a mapping with the task's settings")
        return run_settings(composed, "retrain" if "arch" in summary else "search")
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as exc:
        raise AutoAttendError(f"{config}: cannot be read as a run's config ({str(exc).splitlines()[0]})") from None


def load_run(path: Path) -> Run:
    summary_file = path / "summary.json"
    summary = _read_json(summary_file) if summary_file.exists() else None
    if summary is not None and not isinstance(summary, dict):
        raise AutoAttendError(f"{summary_file}: expected a JSON object")
    if summary is not None:
        _check_summary(summary, summary_file)
        if "metric" not in summary:  # a graph retrain's before 2026-12-06 22:01: its seeds' record names it
            results = path / "retrain" / "results.json"
            recorded = _read_json(results).get("metric") if results.is_file() else None
            if isinstance(recorded, str):
                summary["metric"] = recorded
    if (path / SETTINGS_FILE).exists():
        settings = _read_json(path / SETTINGS_FILE)
        if not isinstance(settings, dict):
            raise AutoAttendError(f"{path / SETTINGS_FILE}: expected a JSON object of settings")
        settings = canonical(settings)  # as a resume compares them: matmul_precision null is "highest"
    else:  # find_runs lists such a run only once it has finished
        settings = _settings_from_config(path, summary)
    settings = {**settings, **_machine_settings(path)}
    record = dict(zip(("budget", "overrides", "task_file"), _hydra_record(path)))
    if summary is not None:
        # a ranking stage added to the finished run, stopped: its summary is the earlier invocation's
        progress = _ranking_progress(path) if (path / "ranking").is_dir() else None
        if progress is not None and progress[0] < progress[1]:
            return Run(path, settings, summary, state=f"ranking {progress[0]}/{progress[1]} candidates", **record)
        return Run(path, settings, summary, **record)
    return Run(path, settings, None, state=_state(path, settings), partial=_partial(path), **record)


def _dig(tree: Any, *keys: str) -> Any:
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def _read_yaml(path: Path) -> Any:
    """``path``'s YAML, or ``None`` where it cannot be read (missing, undecodable, not YAML, or a
    ``ValueError`` such as the date 2026-13-45)."""
    import yaml

    try:  # the C loader where there is one: a hydra.yaml is some 170 lines
        return safe_yaml(path.read_text(encoding="utf-8"), fast=True)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return None


@functools.lru_cache(maxsize=None)
def _conf_tree(path: Path) -> Any:
    """A file of the project's own ``conf/``, read once per process (:func:`_read_yaml`)."""
    return _read_yaml(path)


def _hydra_record(path: Path) -> tuple[str | None, list[str] | None, str | None]:
    """The run's budget (``hydra.runtime.choices.budget`` in ``.hydra/hydra.yaml``), the overrides
    typed for it (``.hydra/overrides.yaml``, else ``hydra.overrides.task`` there) and its task's file
    (``choices.task``); ``None`` for what its records do not say (none written, or damaged: not an
    error, nothing is folded)."""
    hydra = _read_yaml(path / ".hydra" / "hydra.yaml")
    choice = functools.partial(_dig, hydra, "hydra", "runtime", "choices")
    budget, task_file = choice("budget"), choice("task")
    overrides = _read_yaml(path / ".hydra" / "overrides.yaml")
    if not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        overrides = _dig(hydra, "hydra", "overrides", "task")
    if not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        overrides = None
    return ((budget if isinstance(budget, str) and budget else None), overrides,
            (task_file if isinstance(task_file, str) and task_file else None))


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
BUDGET_DIR = CONF_DIR / "budget"


@functools.lru_cache(maxsize=None)
def _budget_sets(name: str) -> tuple[str, ...]:
    """The dotted keys ``conf/budget/<name>.yaml`` sets (a ``_global_`` file); none for a budget
    without a readable file there."""
    from src.pipeline.run_settings import flatten

    tree = _conf_tree(BUDGET_DIR / f"{name}.yaml")
    return tuple(flatten(tree)) if isinstance(tree, dict) else ()


@functools.lru_cache(maxsize=None)
def _derived(key: str) -> bool:
    """Whether a config file of the key's group (``conf/<group>/*.yaml``) gives it as an
    interpolation (``graph.supernet.steps: ${oc.select:task.protocol.supernet_steps,2000}``): its
    value then follows other settings too (the task's protocol, ``+task.protocol.seeds=5``), not the
    budget alone."""
    group, _, rest = key.partition(".")
    for path in sorted((CONF_DIR / group).glob("*.yaml")) if rest else ():
        tree = _conf_tree(path)
        if tree is None:
            return True  # unknown: never folded
        value = _dig(tree, *rest.split("."))
        if isinstance(value, str) and "${" in value:
            return True
    return False


_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    return b is not _ABSENT and json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@functools.lru_cache(maxsize=None)
def _budget_settings(entry: str, task_file: str | None, budget: str) -> dict[str, Any] | None:
    """The settings (flat, canonical, as ``run_settings.json`` holds them) of ``python -m
    src.<entry> +task=<task_file> budget=<budget>`` with nothing else typed, composed from the
    project's ``conf/`` as it is now; ``None`` where that cannot be composed (an unknown entry, task
    or budget, a config that needs a setting typed)."""
    if entry not in ("search", "retrain") or task_file is None:
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.initialize import get_gh_backup, restore_gh_from_backup
    from omegaconf.errors import OmegaConfBaseException

    import src.pipeline.config  # noqa: F401  (registers the resolver conf/ uses)
    from src.pipeline.run_settings import run_settings

    outer = get_gh_backup()  # inside a Hydra app (a multirun's report): its state is put back after
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return canonical(run_settings(compose(entry, [f"+task={task_file}", f"budget={budget}"]), entry))
    except (HydraException, OmegaConfBaseException, AutoAttendError, ValueError, KeyError):
        return None
    finally:
        restore_gh_from_backup(outer)


EVERY_KEY = ""  # what an override that may set any key touches


def _override_paths(override: str) -> list[str]:
    """The config paths a typed override touches: ``a.b=1``, ``+a.b=1``, ``++a.b=1``, ``~a.b`` set
    ``a.b``; a group's (``strategy=aging``, ``graph/supernet=x``, ``supernet@graph.supernet=x``) its
    name (and package); ``experiment=...`` (its file sets anything) or a ``_global_`` package every key."""
    group, _, package = override.split("=", 1)[0].strip().lstrip("~+").partition("@")
    paths = [group.replace("/", ".")] + ([package] if package else [])
    return [EVERY_KEY if p in ("experiment", "_global_") else p.removeprefix("_global_.") for p in paths]


def _touches(path: str, key: str) -> bool:
    """A config path and a setting are one, or one is inside the other."""
    return path == EVERY_KEY or key == path or key.startswith(path + ".") or path.startswith(key + ".")


def budget_column(runs: list[Run]) -> bool:
    """Whether the runs are of more than one budget (a run whose records name none does not count)."""
    return len({run.budget for run in runs} - {None}) > 1


def budget_keys(runs: list[Run], varying: list[str]) -> list[str]:
    """Of the ``varying`` settings, those that vary only with the runs' budget, which a ``budget``
    column then stands for: runs of several budgets, each run's budget and typed overrides known;
    a key that one of those budgets' files sets (``conf/budget/``), no run's overrides touch
    (``supernet.dim=128``, ``strategy=aging``, ``+experiment=...``), whose group's config does not
    derive it from other settings (:func:`_derived`: the graph keys that follow the task's protocol),
    on which every run that reads it has the value its budget and task give with nothing typed
    (:func:`_budget_settings`: the records of runs from before ``a18b2db`` may be those of a refused
    re-run, not of the run) and on which the runs of each budget that read it agree. None otherwise: a
    user's own override is never hidden."""
    if not budget_column(runs) or any(run.budget is None or run.overrides is None for run in runs):
        return []
    set_by_budgets = {key for name in {run.budget for run in runs} for key in _budget_sets(name)}
    typed = {path for run in runs for override in run.overrides for path in _override_paths(override)}
    candidates = [key for key in varying if any(_touches(path, key) for path in set_by_budgets)
                  and not any(_touches(path, key) for path in typed) and not _derived(key)]
    if not candidates:
        return []  # nothing to compose the budgets' settings for
    expected = {id(run): _budget_settings(run.entry, run.task_file, run.budget) for run in runs}
    if any(values is None for values in expected.values()):
        return []

    def of_the_budget(key: str) -> bool:
        values: dict[str, set[str]] = {}
        for run in runs:
            if key in run.settings and reads(run, key):
                if not _same(run.settings[key], expected[id(run)].get(key, _ABSENT)):
                    return False  # not what its budget gives, whatever its records say was typed
                values.setdefault(run.budget, set()).add(json.dumps(run.settings[key], sort_keys=True))
        return all(len(seen) == 1 for seen in values.values())

    return [key for key in candidates if of_the_budget(key)]


MACHINE_PREFIX = "machine."


def _machine_settings(path: Path) -> dict[str, Any]:
    """What the run's invocations computed with that can move its numbers (``invocations.json``:
    device, threads, kernels; see ``src.pipeline.run._record_invocation``), as settings
    ``machine.<key>``: one value, or the values of its invocations in order where a resume changed
    it (consecutive equal values once). Shown where runs differ in them; runs that differ in them
    are not repeats of each other, but still fold into one configuration's row over seeds. Nothing
    for a run from before the record (or a damaged one), nor for a key none of its invocations
    recorded (graph runs recorded no kernels before 2026-12-06): a key some runs lack is not a
    difference; where some invocations recorded it, the others are ``not recorded``."""
    from src.pipeline.run_settings import MOVES_NUMBERS, read_invocations, recorded_value

    # an invocation that found every stage finished computed nothing (src.pipeline.run._machine_of_the_run)
    invocations = [i for i in read_invocations(path) or [] if i.get("computed", True) is not False]
    values = {key: [i.get(key) for i in invocations] for key in MOVES_NUMBERS}
    # consecutive invocations with the same value are one step (1, 1, 2, 1: "1 -> 2 -> 1")
    return {f"{MACHINE_PREFIX}{key}": " -> ".join(recorded_value(value) for value, _ in itertools.groupby(seen))
            for key, seen in values.items() if any(value is not None for value in seen)}


def _partial(path: Path) -> dict[str, Any]:
    """What an unfinished run has measured so far: ``best_val_acc_supernet`` once its search has
    chosen (``search/best_arch.yaml``; re-ranked: ``search/rerank.json``'s rank 1) and ``seconds`` of its stages
    (``timing.json``); records that cannot be read are left out (the run is unfinished: they may be mid-write)."""
    import yaml

    from src.pipeline.config import read_timing
    from src.pipeline.run_settings import TIMING_FILE

    partial: dict[str, Any] = {}
    try:
        best = safe_yaml((path / "search" / "best_arch.yaml").read_text())
        if "rerank_rank" in best:  # the file holds re-ranking's choice; its rank 1 is the search's best
            best = json.loads((path / "search" / "rerank.json").read_text())["candidates"][0]
        partial["best_val_acc_supernet"] = float(best["val_acc_supernet"])
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError, IndexError):
        pass
    timing = read_timing(path / TIMING_FILE)
    if timing is not None:
        partial["seconds"] = timing[0]
    return partial


def reads(run: Run, key: str) -> bool:
    """Whether ``run``'s task family and entry point read the setting ``key``: a ``src.retrain`` run
    holds the search's settings too (``budget=smoke`` sets ``supernet.dim``, ``space.num_layers``, ...),
    which it never reads (it showed ``space.num_layers`` 3 for a 4-layer architecture)."""
    if run.entry == "retrain" and unread_by_retrain(key):
        return False
    return not key.startswith(UNREAD_BY["graph" if run.graph else "text"])


DATAMODULE_PREFIX = "task.datamodule."


def varying_keys(runs: list[Run]) -> list[str]:
    """The settings whose values are not the same in every run that has them and reads them, in
    the order of the first run's settings. A run without a key (one of another entry point, or
    from before the option existed) does not make it vary: its column is empty there. A ``task.*``
    key varies only when runs of the same task differ in it (between tasks it follows from the name).
    ``task.datamodule.<k>`` equal to ``task.<k>`` in every run is that key's copy: not shown twice."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.settings))
    by_task: dict[str, list[Run]] = {}
    for run in runs:
        by_task.setdefault(run.task, []).append(run)

    def differ(among: list[Run], key: str) -> bool:
        return len({json.dumps(run.settings[key], sort_keys=True) for run in among
                    if key in run.settings and reads(run, key)}) > 1

    varying = []
    for key in keys:
        if key in HIDDEN_KEYS:
            continue
        if key.startswith(HIDDEN_PREFIXES):  # a task key: only where one task's runs differ in it
            if any(differ(among, key) for among in by_task.values()):
                varying.append(key)
        elif differ(runs, key):
            varying.append(key)
    # a DataModule's copy of a task key (csv.yaml's task.datamodule.path: ${task.path}) says nothing more
    copies = {key for key in varying if key.startswith(DATAMODULE_PREFIX)
              and (task_key := "task." + key.removeprefix(DATAMODULE_PREFIX)) in varying
              and all(run.settings.get(key) == run.settings.get(task_key) for run in runs)}
    return [key for key in varying if key not in copies]


def _setting(run: Run, key: str) -> str:
    return _show_value(run.settings[key]) if key in run.settings and reads(run, key) else ""


def _show_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _mean_std(block: dict | None) -> str:
    return format_mean_std(block) if block else ""


def _seconds(summary: dict | None) -> str:
    if not summary or not summary.get("seconds"):
        return ""
    return f"{sum(summary['seconds'].values()) / 60:.1f}"


_MEAN_STD = re.compile(r"(-?[\d.]+) \+- ([\d.]+)")
RANKING_COLUMN = "ranking Spearman (n)"
_RHO_N = re.compile(r"([+-][\d.]+|n/a) \((\d+)\)")  # "+0.77 (4)", "n/a (2)": rho (none below 3) and candidates


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    # the varying settings left out for its `budget` column (:func:`budget_keys`)
    budget_keys: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        return "\n".join([line(self.header), line(["---"] * len(self.header))] + [line(r) for r in self.rows])

    def csv(self) -> str:
        """The table as CSV with numbers in cells of their own: a column of ``mean +- std`` cells
        becomes two, ``<name> mean`` and ``<name> std``; the ranking's ``+0.77 (4)`` two, ``ranking
        Spearman`` (empty where there is no correlation) and ``ranking n``."""
        # the mean of one seed stands alone ("55.68"): its std cell is then empty
        split = [name.endswith("(mean +- std)") or any(_MEAN_STD.fullmatch(row[i]) for row in self.rows)
                 for i, name in enumerate(self.header)]
        header: list[str] = []
        for name, two in zip(self.header, split):
            base = name.removesuffix(" (mean +- std)")
            header += (["ranking Spearman", "ranking n"] if name == RANKING_COLUMN else
                       [f"{base} mean", f"{base} std"] if two else [name])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in self.rows:
            cells: list[str] = []
            for name, cell, two in zip(self.header, row, split):
                if name == RANKING_COLUMN:
                    match = _RHO_N.fullmatch(cell)
                    cells += [match[1].replace("n/a", ""), match[2]] if match else ["", ""]
                    continue
                match = _MEAN_STD.fullmatch(cell)
                cells += ([match[1], match[2]] if match else [cell, ""]) if two else [cell]
            writer.writerow(cells)
        return out.getvalue()


def _baseline_names(runs: list[Run]) -> list[str]:
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys((run.summary or {}).get("baselines") or {}))
    return list(names)


def _common_root(paths: list[Path]) -> Path:
    parents = [p.parent for p in paths]
    root = parents[0]
    while not all(p == root or root in p.parents for p in parents):
        root = root.parent
    return root


def runs_table(runs: list[Run], fold: bool = True) -> Table:
    """One row per run: its path (relative to the runs' common folder), entry point, task, its
    budget where the runs' budgets differ, the varying settings (``fold``: without those the budget
    column stands for, :func:`budget_keys`), state, scores in % and minutes."""
    varying = varying_keys(runs)
    left_out = budget_keys(runs, varying) if fold else []
    varying = [k for k in varying if k not in left_out]
    any_budget = budget_column(runs)
    baselines = _baseline_names(runs)
    any_ranking = any((r.summary or {}).get("ranking") for r in runs)
    any_arch = any(r.entry == "retrain" for r in runs)
    metrics = {(r.summary or {}).get("metric", "accuracy") for r in runs if r.summary}
    root = _common_root([r.path for r in runs])
    header = (["run", "entry", "task"] + (["arch"] if any_arch else []) + (["budget"] if any_budget else []) + varying
              + ["state", "supernet val", "test (mean +- std)", "seeds", "retrain val"]
              + (["metric"] if metrics - {"accuracy"} else [])
              + [f"{name} test" for name in baselines] + ([RANKING_COLUMN] if any_ranking else [])
              + ["minutes"])
    rows = []
    for run in runs:
        summary = run.summary or {}
        retrain = summary.get("retrain")
        ranking = (summary.get("ranking") or {}).get("all")
        row = [str(run.path.relative_to(root)), run.entry, run.task]
        if any_arch:
            row.append(str(summary.get("arch", "")) if run.entry == "retrain" else "")
        row += ([run.budget or ""] if any_budget else []) + [_setting(run, k) for k in varying]
        row += [run.state, _pct(summary.get("best_val_acc_supernet", run.partial.get("best_val_acc_supernet"))),
                _mean_std(retrain),
                str(len(retrain["seeds"])) if retrain else "", _pct(retrain["val_acc_mean"]) if retrain else ""]
        if metrics - {"accuracy"}:
            row.append(summary.get("metric", "accuracy") if run.summary else "")
        row += [_mean_std((summary.get("baselines") or {}).get(name)) for name in baselines]
        if any_ranking:
            if not ranking:
                row.append("")
            else:  # no correlation below 3 candidates or with constant scores (rank_correlations)
                rho = ranking.get("spearman")
                row.append(f"{'n/a' if rho is None else f'{rho:+.2f}'} ({ranking['n']})")
        row.append(_seconds(run.summary or run.partial))
        rows.append(row)
    return Table(header, rows, left_out)


# the graph space's settings that follow the text space's (conf/graph/default.yaml: ${space.sharing}): a graph
# run reads the copy, so folding over space.sharing folds over it too
GRAPH_COPIES = {"space.priors": "graph.space.priors", "space.sharing": "graph.space.sharing"}


def _read_key(run: Run, key: str) -> str:
    """``key``, or the graph copy of it that a graph run reads (:data:`GRAPH_COPIES`)."""
    copy = GRAPH_COPIES.get(key)
    return copy if copy is not None and run.graph and copy in run.settings else key


def _content(run: Run) -> str:
    """What a ``src.retrain`` run trained, beyond its ``arch`` name or path: the architecture and its
    hyper-parameters, as ``run_settings.json`` records them (a file edited between two runs differs)."""
    return json.dumps([run.settings.get("architecture"), run.settings.get("arch_hparams")], sort_keys=True)


def groups_table(runs: list[Run], over: tuple[str, ...] = DEFAULT_OVER, fold: bool = True) -> Table | None:
    """Finished runs whose settings differ only in the keys ``over`` (the seed, by default), one
    row per group of two or more: the mean and sample std over the runs of their retrained test
    score and supernet score, in %. Runs of different budgets are never one group (a ``budget``
    column; ``fold``: as :func:`runs_table`). ``None`` when no group has two finished runs."""
    finished = [r for r in runs if r.summary is not None]
    folded = over + tuple(GRAPH_COPIES[k] for k in over if k in GRAPH_COPIES and GRAPH_COPIES[k] not in over)
    varying = [k for k in varying_keys(finished) if k not in folded] if finished else []
    # what the runs computed with (threads, ...) tells repeats apart but does not split a configuration's group
    machine = [k for k in varying if k.startswith(MACHINE_PREFIX)]
    varying = [k for k in varying if k not in machine]
    left_out = budget_keys(finished, varying) if fold else []
    varying = [k for k in varying if k not in left_out]
    any_budget = budget_column(finished)
    groups: dict[tuple, list[Run]] = {}
    for run in finished:
        key = (run.entry, run.task, str(run.summary.get("arch", "")), (run.budget or "") if any_budget else "",
               tuple(_setting(run, k) for k in varying), _content(run))
        groups.setdefault(key, []).append(run)
    groups = {k: g for k, g in groups.items() if len(g) >= 2}
    if not groups:
        return None
    # one arch name or path that trained several contents for one entry and task (a file edited between runs;
    # a built-in's task_arch differs between tasks, which the task column tells apart): told apart
    contents: dict[tuple[str, str, str], list[str]] = {}
    for entry, task, arch, _, _, content in groups:
        seen = contents.setdefault((entry, task, arch), [])
        if content not in seen:
            seen.append(content)

    def label(entry: str, task: str, arch: str, content: str) -> str:
        seen = contents[(entry, task, arch)]
        return arch if len(seen) == 1 else f"{arch} (content {seen.index(content) + 1})"

    groups = {(entry, task, label(entry, task, arch, c), budget, values): group
              for (entry, task, arch, budget, values, c), group in groups.items()}
    any_arch = any(arch for _, _, arch, _, _ in groups)
    header = (["entry", "task"] + (["arch"] if any_arch else []) + (["budget"] if any_budget else []) + varying
              + ["runs", " / ".join(over), "supernet val (mean +- std)", "test (mean +- std over runs)"])
    rows = []
    for (entry, task, arch, budget, values), group in groups.items():
        tests = [r.test() for r in group if r.test() is not None]
        supernet = [float(r.summary["best_val_acc_supernet"]) for r in group
                    if r.summary.get("best_val_acc_supernet") is not None]
        labels = [",".join(_show_value(r.settings.get(_read_key(r, k))) for k in over) for r in group]
        # a run whose folded settings equal another's (the same command run twice, on the same
        # machine settings) is a repeat, not an independent replicate: said beside the count
        repeats = len(group) - len({(label, tuple(_setting(r, k) for k in machine))
                                    for label, r in zip(labels, group)})
        count = f"{len(group)} ({repeats} repeat{'s' if repeats > 1 else ''})" if repeats else str(len(group))
        rows.append([entry, task] + ([arch] if any_arch else []) + ([budget] if any_budget else []) + list(values)
                    + [count, " ".join(labels), _spread(supernet), _spread(tests)])
    return Table(header, rows, left_out)


def _spread(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} +- {100 * statistics.stdev(values):.2f} ({len(values)})"


FAMILY_TITLES = {"text": "Text tasks", "graph": "Graph tasks"}


def family_of(run: Run) -> str:
    """``graph`` or ``text``: the task family, whose runs read the same settings."""
    return "graph" if run.graph else "text"


@dataclass
class Report:
    """The report's tables. ``per_run`` and ``grouped`` hold every run, with a column for every
    setting that differs anywhere among them (the ``--csv`` file's table, and what ``--wide``
    prints); ``sections`` are the same runs by task family, each with only the settings that differ
    among that family's runs, less those its ``budget`` column stands for (:func:`budget_keys`;
    one untitled section when the runs are all of one family). Unpacks as ``per_run, grouped``
    (and ``[0]``, ``[1]`` are those two)."""

    per_run: Table
    grouped: Table | None
    sections: list[tuple[str, Table, Table | None]]

    def __iter__(self):
        return iter((self.per_run, self.grouped))

    def __getitem__(self, index: int) -> Table | None:
        return (self.per_run, self.grouped)[index]


def report(roots: list[str | Path], over: tuple[str, ...] = DEFAULT_OVER,
           unreadable: list[tuple[Path, str]] | None = None) -> Report:
    """The per-run table and the table over ``over`` of the runs at or under ``roots``, whole and
    by task family (:class:`Report`). With an ``unreadable`` list, a run directory whose records
    cannot be read is added to it as ``(path, error)`` and left out, instead of stopping the whole
    report (unless no run is left)."""
    runs = []
    for path in find_runs(roots):
        try:
            runs.append(load_run(path))
        except AutoAttendError as exc:
            if unreadable is None:
                raise
            unreadable.append((path, str(exc)))
    if not runs:
        raise AutoAttendError(f"no readable run directory under {', '.join(map(str, roots))}: "
                              + "; ".join(error for _, error in (unreadable or [])))
    if not over:  # --over "" folded over nothing: a column named "" and "differ at most in  (...)"
        raise AutoAttendError("--over: no setting given; expected comma-separated dotted keys of "
                              f"{SETTINGS_FILE} (e.g. seed, or seed,space.sharing)")
    # the default (seed) is not the user's word: runs without it are simply not folded
    # (a graph run's record holds the graph copy of space.sharing and space.priors alone: GRAPH_COPIES)
    unknown = [k for k in over if k not in DEFAULT_OVER and not any(_read_key(run, k) in run.settings for run in runs)]
    if unknown:
        raise AutoAttendError(f"--over {','.join(unknown)}: no run has such a setting (dotted keys of "
                              f"{SETTINGS_FILE}, e.g. seed or space.sharing)")
    families: dict[str, list[Run]] = {}
    for run in runs:
        families.setdefault(family_of(run), []).append(run)
    sections = [(FAMILY_TITLES[family] if len(families) > 1 else "", runs_table(members), groups_table(members, over))
                for family, members in sorted(families.items(), key=lambda item: list(FAMILY_TITLES).index(item[0]))]
    return Report(runs_table(runs, fold=False), groups_table(runs, over, fold=False), sections)


def render(tables: Report, over: tuple[str, ...] = DEFAULT_OVER,
           unreadable: list[tuple[Path, str]] | None = None, wide: bool = False) -> str:
    """The report as markdown: a per-run table and a folded one for each task family among the
    runs, each with the settings that differ within that family; ``wide``: one pair of tables for
    every run, with every setting that differs anywhere among them (as the CSV)."""
    sections = [("", tables.per_run, tables.grouped)] if wide else tables.sections
    note = ("\nScores in % (the supernet's on the validation split; test: mean +- sample std over the seeds; "
            "retrain val: the seeds' mean), time in minutes; a ranking's Spearman correlation is a plain number.\n")
    text = ""
    for title, per_run, grouped in sections:
        if title:
            runs = len(per_run.rows)
            text += ("\n" if text else "") + f"## {title} ({runs} run{'' if runs == 1 else 's'})\n\n"
        text += per_run.markdown() + "\n" + (note if len(sections) == 1 else "")
        if grouped is not None:
            text += (f"\nRuns whose settings differ at most in {', '.join(over)} (their code may differ), folded "
                     "(mean +- sample std over the runs of each one's score):\n\n" + grouped.markdown() + "\n")
    if len(sections) > 1:
        text += note + ("Each family's tables show the settings that differ among its runs; `--wide` prints one "
                        "table of every run with every setting that differs among them all, as the `--csv` file "
                        "holds it.\n")
    left_out = list(dict.fromkeys(key for _, per_run, grouped in sections
                                  for key in per_run.budget_keys + (grouped.budget_keys if grouped else [])))
    if left_out:
        shown = ", ".join(left_out[:4]) + (", ..." if len(left_out) > 4 else "")
        text += (f"\nSettings that differ only with the budget are left out ({len(left_out)}: {shown}); the `budget` "
                 "column stands for them, `--wide` and the `--csv` file show them.\n")
    return text + _unreadable_listing(unreadable)


def _unreadable_listing(unreadable: list[tuple[Path, str]] | None) -> str:
    """The markdown lines after the tables naming each run directory left out, and why."""
    if not unreadable:
        return ""
    return (f"\nRun directories left out, their records unreadable ({len(unreadable)}):\n\n"
            + "".join(f"- `{path}`: {error}\n" for path, error in unreadable))


def write_sweep_report(sweep_dir: str | Path, failed: list[tuple[str, str]] | None = None) -> Path | None:
    """After a multirun: the report of its jobs printed and written to ``<sweep_dir>/report.md`` and
    ``report.csv``; the markdown file's path, or ``None`` when no job left a run directory and
    none failed. ``failed``: ``(the job's overrides, its error)`` of each job that stopped on a
    user error or crashed, listed after the tables (a job stopped by a bad value leaves no run directory that
    reports count: only Hydra's ``.hydra/`` and a log holding its error line)."""
    sweep_dir = Path(sweep_dir)
    failed = list(failed or [])
    unreadable: list[tuple[Path, str]] = []
    try:
        tables = report([sweep_dir], unreadable=unreadable)
    except AutoAttendError as exc:
        if not failed:
            print(f"sweep report: none ({exc})")
            return None
        tables = None
    # with no readable run, the jobs that failed and the run directories left out are the report
    text = render(tables, unreadable=unreadable) if tables is not None else _unreadable_listing(unreadable).lstrip("\n")
    if failed:
        text += ("\n" if text else "") + f"Failed jobs ({len(failed)}):\n\n"
        text += "".join(f"- `{overrides}`: {error}\n" for overrides, error in failed)
    if tables is not None:
        atomic_write_text(sweep_dir / "report.csv", tables.per_run.csv())
    path = atomic_write_text(sweep_dir / "report.md", text)
    print(text, end="")
    print(f"sweep report: {path}")
    return path


def _check_outputs(outputs: dict[str, str]) -> None:
    """``--csv`` / ``--markdown`` name files: not a folder, and not both the same file (the
    markdown silently replaced the CSV)."""
    for flag, path in outputs.items():
        if Path(path).is_dir():
            raise AutoAttendError(f"{flag} {path}: a folder; give a file name")
    if len(outputs) == 2 and len({Path(p).resolve() for p in outputs.values()}) == 1:
        raise AutoAttendError(f"--csv and --markdown name the same file, {outputs['--csv']}: give two")


def _write_outputs(outputs: dict[str, tuple[str, Any]]) -> None:
    """Write each ``flag: (path, content())`` through a temporary file, all renamed into place only
    once every one is written: a ``--markdown`` that could not be written left the ``--csv`` behind."""
    with ExitStack() as stack:
        for flag, (path, content) in outputs.items():
            try:
                tmp = stack.enter_context(atomic_target(path))
                tmp.write_text(content(), encoding="utf-8")
            except (FileExistsError, NotADirectoryError):  # creating its folder where a file is
                raise AutoAttendError(f"{flag} {path}: cannot be written (a file stands where its folder "
                                      "goes)") from None
            except OSError as exc:  # named by the path given, not the temporary file beside it
                raise AutoAttendError(f"{flag} {path}: cannot be written ({exc.strerror})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=os.path.expanduser,  # ~: home, as for a run's paths
                        help="run directories, or folders (sweeps) holding them")
    parser.add_argument("--csv", help="also write the per-run table as CSV to this file")
    parser.add_argument("--markdown", help="also write the report (markdown) to this file")
    parser.add_argument("--wide", action="store_true",
                        help="one table of every run, with every setting that differs among them all (the "
                             "--csv file's columns), instead of a table for each task family")
    parser.add_argument("--over", default=",".join(DEFAULT_OVER),
                        help="settings to average over: runs differing only in these are folded into "
                             "one row (comma-separated dotted keys; default: seed)")
    args = parser.parse_args(argv)
    over = tuple(k for k in args.over.split(",") if k)
    unreadable: list[tuple[Path, str]] = []
    outputs = {"--csv": args.csv, "--markdown": args.markdown}
    try:
        _check_outputs({flag: path for flag, path in outputs.items() if path})
        tables = report(args.dirs, over, unreadable)
        text = render(tables, over, unreadable, wide=args.wide)
        contents = {"--csv": lambda: tables.per_run.csv(), "--markdown": lambda: text}
        _write_outputs({flag: (path, contents[flag]) for flag, path in outputs.items() if path})
    except AutoAttendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    if unreadable:
        print(f"error: {len(unreadable)} run director{'y' if len(unreadable) == 1 else 'ies'} left out of the report "
              "(records unreadable; listed after the tables)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from src.utils.errors import exit_status_of
    from src.utils.restart import entry_point_utf8

    entry_point_utf8()
    sys.exit(exit_status_of(main))
