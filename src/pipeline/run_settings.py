"""The settings a run directory was started with, so that a re-run resumes only the same run.

Every stage resumes from what it left in the run directory (``supernet/last.ckpt``,
``search/state.json``, ``retrain/seed_<s>.json``). That is only sound when the re-run has the
settings that produced those files: a re-run with another seed, architecture or budget would
otherwise report old results under new settings. The first run writes ``run_settings.json``; a
later run in the same directory must match it, except for the keys below, which change where or
how fast a run goes, not what it computes: a few of them (:data:`MOVES_NUMBERS`) can still move its
numbers (float rounding, other dropout draws), which each invocation records.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Collection, Sequence

from omegaconf import DictConfig, OmegaConf

from src.utils.errors import AutoAttendError
from src.utils.io import atomic_write_json, atomic_write_text, is_number

log = logging.getLogger(__name__)

SETTINGS_FILE = "run_settings.json"
TIMING_FILE = "timing.json"  # the stages' seconds over the run's invocations (src.pipeline.config.Timer)
# each invocation's machine settings that can move a run's numbers (src.pipeline.run._record_invocation)
INVOCATIONS_FILE = "invocations.json"
# of those, what a resume may change that can move the numbers (recorded per invocation; src.report)
MOVES_NUMBERS = ("device", "threads", "kernels")
DATA_FILE = "data.json"  # what the run's data looked like (src.pipeline.common.data_facts)

# Dotted keys (or key prefixes) a resumed run may change: paths, the machine settings (which
# compute the same thing; another device draws other dropout masks, and the thread count and the
# kernels round differently, so invocations.json records them), and the name and record of an
# experiment config (`+experiment=cora_default` computes what `+task=cora` does), and the ranking
# analysis, which adds its own folder and changes nothing else; the classes' names only label output;
# the loggers beside metrics.csv (logger=tensorboard) only write what it holds in another format.
# (A CSV task's DataModule takes hardware.progress as task.datamodule.progress.)
MAY_CHANGE = ("paths", "experiment", "hardware.threads", "hardware.num_workers", "hardware.progress",
              "hardware.progress_every_s", "hardware.kernels", "hardware.accelerator",
              "graph.threads", "graph.retrain.workers", "supernet.arch_workers", "supernet.checkpoint_every_min",
              "retrain.checkpoint_every_min", "strategy.score_workers", "strategy.score_bucket_size",
              "strategy.save_every", "ranking", "task.label_names", "task.datamodule.progress", "logger")

# Where a CSV task's files are (task.path, ``${paths.data_dir}/<name>_csv`` for the presets): like
# paths.data_dir, a place, which a resume may change (data.json then checks the files are the run's);
# unlike it, kept in the record and in a sweep job's folder name, so src.report names each run's
# corpus and a sweep over corpora (task.path=/a,/b) runs each in its own folder. Before, a resume
# with paths.data_dir moved (+task=agnews) or the corpus folder moved (+task=csv) was refused.
DATA_LOCATION = ("task.path", "task.datamodule.path")
# The tasks whose data are task.path itself, not a place under paths.data_dir: a CSV corpus folder of
# one's own (+task=csv) and a graph file of one's own (+task=graph_file); for each, what the path
# names, as messages say it: (the data, the kind of path)
OWN_DATA_TASKS = {"csv": ("the corpus", "folder"), "graph_file": ("the graph file", "file")}
OWN_DATA_MODULES = {"src.data.csv_text.CSVTextDataModule": "csv",
                    "src.data.graph_file.GraphFileDataModule": "graph_file"}


def own_data_task(task: Any) -> str | None:
    """Which of :data:`OWN_DATA_TASKS` a run's ``task`` node is, also under a name of its own
    (``+task=csv task.name=reviews``; by name, such a run was told to fix ``paths.data_dir``, which it
    never reads), from its DataModule; ``None`` for the benchmarks, among them csv.yaml's presets
    (``agnews``, ...), whose data are under ``paths.data_dir``."""
    from src.pipeline.config import CONF_DIR

    name = task.get("name")
    if name in OWN_DATA_TASKS:
        return name
    module = OWN_DATA_MODULES.get(str((task.get("datamodule") or {}).get("_target_")))
    presets = {p.stem for p in (CONF_DIR / "task").glob("*.yaml")}
    return module if module is not None and name not in presets else None


# Settings a task family never reads: the text pipeline's groups for graph tasks (which read
# graph.*, where graph.space.sharing / priors repeat space.sharing / priors) and graph.* for text.
UNREAD_BY = {"graph": ("supernet.", "retrain.", "data.", "space."), "text": ("graph.",)}

SEARCH_ONLY = ("supernet", "strategy", "ranking")  # config nodes src.retrain has (the budgets set them) but never reads
# ... and settings of the search's space and graph stages, which src.retrain has but never reads
# (it trains the given architecture: any sources, the space's ops and kinds); graph.retrain's
# act_at and attn_self_loops follow graph.supernet's, which src.retrain therefore reads
RETRAIN_UNREAD = ("space.num_layers", "space.priors", "space.sharing", "graph.space.num_layers", "graph.space.priors",
                  "graph.space.sharing", "graph.rerank", "graph.baselines", "graph.supernet")
RETRAIN_READS = ("graph.supernet.act_at", "graph.supernet.attn_self_loops")

# Nodes whose keys the user chooses, so that a command line may add one (`+graph.hpo.space.hidden=[...]`,
# the HPO's search space: a mapping of child settings, each checked): a key there that a run's record
# lacks is another setting, not an option added to the code since the run started
ADDABLE = ("graph.hpo.space.",)


def recorded_value(value: Any) -> str:
    """One of :data:`MOVES_NUMBERS` as an invocation recorded it, for warnings and reports: ``None``
    (a graph run's kernels before 2026-12-06, when its propagation moved onto them) is ``not recorded``."""
    return "not recorded" if value is None else str(value)


def within(key: str, nodes: Sequence[str]) -> bool:
    """``key`` is one of ``nodes`` or inside one (``a.b`` is within ``a``; ``nodes`` ending in a dot
    hold only what is inside them)."""
    return any(key == n or key.startswith(n if n.endswith(".") else n + ".") for n in nodes)


def unread_by_retrain(key: str) -> bool:
    """Whether ``src.retrain`` never reads the setting ``key``, one of the search's that its config
    also holds (:data:`SEARCH_ONLY`, :data:`RETRAIN_UNREAD`; a budget such as ``budget=smoke`` sets them)."""
    return within(key, SEARCH_ONLY + RETRAIN_UNREAD) and not within(key, RETRAIN_READS)


# Values that compute the same thing, recorded as the second: an unset float32 matmul precision is
# torch's default, "highest" (src.pipeline.common.set_float32_precision), so a run started with
# hardware=auto or cpu (unset) may resume with hardware=gpu, which names it.
SAME_VALUE = {"hardware.matmul_precision": (None, "highest")}


# Settings of a task family that earlier versions recorded but that never changed what a run
# computes, since removed: a record holding one resumes (an option removed since otherwise stops
# the re-run). The text DataModules' batch size sized only their own loaders, which the pipeline
# does not use (supernet.batch_size and retrain.batch_size do; PPI's is its graphs per step).
RETIRED = {"text": ("task.datamodule.batch_size",)}


def unread_by_run(key: str, family: str, entry: str) -> bool:
    """Whether a run of task family ``family`` started by ``src.<entry>`` never reads ``key``: the
    other family's settings (:data:`UNREAD_BY`), and for ``src.retrain`` the search's
    (:func:`unread_by_retrain`)."""
    return within(key, UNREAD_BY.get(family, ())) or (entry == "retrain" and unread_by_retrain(key))


def canonical(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with each :data:`SAME_VALUE` key's equivalent value written one way, and
    without the :data:`RETIRED` keys of its task family (text unless ``task.family`` says), keys
    that a resume may change (recorded before :data:`MAY_CHANGE` named them: a CSV task's
    ``task.datamodule.progress``, until 2026-12-07), or keys the run never reads
    (:func:`unread_by_run`; records before 2026-12-07 hold them: a text run recorded
    ``graph.supernet.lr``, so a changed default of it stopped the resume, and the command line may
    not set it back)."""
    family, entry = settings.get("task.family") or "text", settings.get("entry") or "search"
    retired = RETIRED.get(family, ())
    return {key: SAME_VALUE[key][1] if key in SAME_VALUE and value == SAME_VALUE[key][0] else value
            for key, value in settings.items()
            if key not in retired and not may_change(key) and not unread_by_run(key, family, entry)}


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a.b": 1, "c": [2]}`` (lists stay values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def may_change(key: str) -> bool:
    """Whether ``key`` is one of :data:`MAY_CHANGE` (or under one)."""
    return any(key == k or key.startswith(k + ".") for k in MAY_CHANGE)


def run_settings(cfg: DictConfig, entry: str, extra: dict | None = None) -> dict[str, Any]:
    """The settings that determine a run's results: the resolved config without the keys in
    :data:`MAY_CHANGE` and those the run never reads (:func:`unread_by_run`), the entry point's name
    and ``extra`` (e.g. the architecture's content)."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    settings = canonical({**{k: v for k, v in flatten(tree).items() if not may_change(k)}, "entry": entry})
    for key, value in (extra or {}).items():
        settings[key] = value
    return settings


def _show(value: Any) -> str:
    text = _printable(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _printable(text: str) -> str:
    """``text``, with JSON's escapes where it holds a character a terminal would act on (a record from
    elsewhere may hold escape sequences or line breaks in a value or a key)."""
    return text if text.isprintable() else json.dumps(text)[1:-1]


def _changes(recorded: dict[str, Any], now: dict[str, Any], keys: list[str], absent: str, prefix: str = "") -> str:
    """``"key: recorded -> now; ..."`` for ``keys``, ``absent`` standing for a key either lacks; two
    mappings are compared key by key (``arch_hparams.weight_decay_on: (absent) -> first_layer``: the
    whole mappings, cut to 60 characters, hid what differed)."""
    parts = []
    for k in keys:
        old, new = recorded.get(k, absent), now.get(k, absent)
        if isinstance(old, dict) and isinstance(new, dict) and old and new:
            inner = [i for i in sorted({*old, *new}, key=str) if old.get(i, absent) != new.get(i, absent)]
            parts.append(_changes(old, new, inner, absent, f"{prefix}{k}."))
        else:
            parts.append(f"{prefix}{_printable(str(k))}: {_show(old)} -> {_show(new)}")
    return "; ".join(parts)


# What a resumed stage would reuse: while none of these exists, a run that stopped early (a bad
# value, missing data) left nothing to mix, and a re-run with corrected settings starts afresh.
# A retrain seed's (or a ranking candidate's) mid-training checkpoint counts: a re-run with another
# retrain.lr resumed seed 0 from it under the new settings, mixing the two in one summary.
RESUMABLE = ("supernet/last.ckpt", "search/state.json", "retrain/seed_*.json", "retrain/seed_*/last.ckpt",
             "retrain/hpo.json", "baselines/*/seed_*.json", "search/rerank.json", "ranking/rank_*/result.json",
             "ranking/rank_*/seed_*.json", "ranking/rank_*/seed_*/last.ckpt")


def _fill_settings_before_they_existed(recorded: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """Give a recorded graph architecture's ``arch_hparams`` the values children trained with before those settings
    existed (:data:`src.choices.CHILD_SETTINGS_BEFORE_THEY_EXISTED`) where it lacks them and ``settings`` has them;
    returns the keys filled in."""
    from src.choices import CHILD_SETTINGS_BEFORE_THEY_EXISTED

    then, now = recorded.get("arch_hparams"), settings.get("arch_hparams")
    if not isinstance(then, dict) or not isinstance(now, dict):
        return []
    filled = [k for k in CHILD_SETTINGS_BEFORE_THEY_EXISTED if k not in then and k in now]
    recorded["arch_hparams"] = {**then, **{k: CHILD_SETTINGS_BEFORE_THEY_EXISTED[k] for k in filled}}
    return filled


def _fill_datamodule_settings_before_they_existed(recorded: dict[str, Any], settings: dict[str, Any]) -> None:
    """Give a record (flat keys) the DataModule settings added since its run started, at the value that builds what
    it built then (:func:`src.choices.datamodule_settings_then`), where ``settings`` has them: a
    resume under today's default is then told the value it needs, not resumed on other data."""
    from src.choices import datamodule_settings_then

    def lacks(name: str) -> bool:
        return f"task.datamodule.{name}" in settings and f"task.datamodule.{name}" not in recorded

    for name, old in datamodule_settings_then(recorded.get("task.datamodule._target_"), lacks).items():
        recorded[f"task.datamodule.{name}"] = old


def _settings_in_its_config(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's ``.hydra/config.yaml`` as :func:`run_settings` flattens a config (before the run's checks
    pass, the file is still the earlier invocation's); ``None`` where it cannot be read or resolved."""
    from src.utils.io import load_config

    try:
        config = run_dir / ".hydra" / "config.yaml"
        return canonical(flatten(OmegaConf.to_container(load_config(config), resolve=True)))
    except Exception:  # an unreadable or unresolvable config: the run is adopted as it is, as before
        return None


def has_results(run_dir: Path) -> bool:
    """Whether a stage left anything in ``run_dir`` that a re-run would resume from."""
    return any(next(run_dir.glob(pattern), None) is not None for pattern in RESUMABLE)


def check_run_settings(run_dir: Path, settings: dict[str, Any], given: Sequence[str] = (),
                       unread: Collection[str] = ()) -> list[str]:
    """Record ``settings`` for a run directory, or check a re-run against the recorded ones.

    Raises :class:`AutoAttendError` naming every differing key (first value -> new value) when
    the directory holds results of other settings. A directory without results gets the new
    record; one with results but no record (written before records existed) is adopted as it is.

    A key the record lacks is an option added to the code since the run started (a run on the
    paper's protocol spans days): its default must reproduce what the code did before it existed,
    as every new option's must, so the resume goes on with it and the record gains it, keeping
    its value from then on. Returns those keys (empty for a fresh record or none added); a key
    the settings lack (an option removed since), or one added within :data:`ADDABLE` (a setting
    of the user's), still stops the re-run, as does an added key among ``given`` (the command line's
    keys): a value chosen there need not be the default that reproduces the steps run before. Keys in
    ``unread`` (settings the run never reads, as its strategy's) are not compared.
    """
    path = run_dir / SETTINGS_FILE
    # JSON round trip: the record holds JSON values (tuples become lists, keys strings)
    settings = json.loads(json.dumps(settings, default=str))
    if path.exists() and has_results(run_dir):
        recorded = canonical(_read_record(path, "the settings this run directory was started with"))
        # a record without an entry (older) is read as this entry's: it leaves out what this run never reads
        family, entry = settings.get("task.family") or "text", settings.get("entry") or "search"
        recorded = {k: v for k, v in recorded.items() if not unread_by_run(k, family, entry)}
        before = _fill_settings_before_they_existed(recorded, settings)
        _fill_datamodule_settings_before_they_existed(recorded, settings)
        if recorded.get("entry") not in (None, settings.get("entry")):
            raise AutoAttendError(f"run dir {run_dir} holds a `python -m src.{recorded['entry']}` run, which "
                                  f"src.{settings.get('entry')} cannot resume or add to: give a new hydra.run.dir")
        added = sorted(k for k in set(settings) - set(recorded) if not within(k, ADDABLE))
        chosen = [k for k in added if k in given]
        if chosen:
            raise AutoAttendError(
                f"run dir {run_dir} was started before the option {chosen[0]} existed, and ran as its default does; "
                f"{chosen[0]}={_show(settings[chosen[0]])} given on the command line could mix results of another "
                f"setting with them: re-run without it to resume (the default), or give a new hydra.run.dir")
        moved = [k for k in DATA_LOCATION if k in recorded and k in settings and recorded[k] != settings[k]]
        differ = [k for k in sorted(set(recorded) | (set(settings) - set(added)))
                  if (k not in settings or k not in recorded or recorded[k] != settings[k]) and k not in moved
                  and k not in unread]
        then, now = recorded.get("arch_hparams") or {}, settings.get("arch_hparams") or {}
        changed = sorted(k for k in {*then, *now} if then.get(k) != now.get(k)) if differ == ["arch_hparams"] else []
        if changed and set(changed) <= set(before):  # only settings its file gained since the run started
            raise AutoAttendError(
                f"run dir {run_dir} was started before the architecture {settings.get('arch')}'s file set "
                f"{', '.join(changed)}, and its seeds trained as children did then "
                f"({_changes(recorded, settings, ['arch_hparams'], '(unset)')}); resuming would mix the two in one "
                "mean: give a new hydra.run.dir to retrain it as the file says now")
        if differ:
            shown = _changes(recorded, settings, differ[:6], "(unset)")
            more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
            raise AutoAttendError(
                f"run dir {run_dir} was started with other settings, and resuming would mix their results "
                f"with these: {shown}{more}. Re-run with the recorded settings ({path}) to resume, or give a "
                "new hydra.run.dir")
        if moved:
            log.warning("run dir %s: its data are read from another place than where the run started (%s); "
                        "%s checks they are the same data", run_dir, _changes(recorded, settings, moved[:1], "(unset)"),
                        DATA_FILE)
        if added:
            log.warning("run dir %s was started before these options existed; it resumes with their values now, "
                        "which %s records from here on: %s", run_dir, path.name,
                        "; ".join(f"{k}={_show(settings[k])}" for k in added))
            atomic_write_json(path, {**recorded, **{k: settings[k] for k in added}})
        return added
    if has_results(run_dir):  # results of an autoattend older than the record: its config says what it ran with
        ran = _settings_in_its_config(run_dir)
        if ran is not None:
            _fill_datamodule_settings_before_they_existed(ran, settings)
        differ = sorted(k for k in settings if ran is not None and k in ran and ran[k] != settings[k]
                        and k not in unread and not within(k, DATA_LOCATION))
        if differ:
            raise AutoAttendError(
                f"run dir {run_dir} holds results of other settings (its .hydra/config.yaml; it has no {SETTINGS_FILE}, "
                f"which autoattend writes since 2026-12-02), and resuming would mix them with these: "
                f"{_changes(ran, settings, differ[:6], '(unset)')}. Re-run with the settings of that config to resume, "
                "or give a new hydra.run.dir")
    # a fresh record: what an earlier invocation left (it stopped before any result) is not this run's
    (run_dir / TIMING_FILE).unlink(missing_ok=True)
    (run_dir / INVOCATIONS_FILE).unlink(missing_ok=True)
    atomic_write_json(path, settings)
    return []


def check_run_data(run_dir: Path, facts: dict[str, Any], own: str | None = None) -> None:
    """Record the data a run starts on (``facts``: sizes and a digest, see
    :func:`src.pipeline.common.data_facts`), or check a resume against them. ``own``: which of
    :data:`OWN_DATA_TASKS` the run is, whose data are at ``task.path`` (:func:`own_data_task`).

    The config can be the same while the files behind ``paths.data_dir`` are not (other files, a
    repaired split): a supernet checkpoint of another vocabulary then fails to load, or worse, a
    search scored on the old data resumes on the new. A directory holding results of other data
    stops the re-run with one line naming what differs; one without results gets the new record.
    """
    path = run_dir / DATA_FILE
    facts = json.loads(json.dumps(facts))
    if path.exists() and has_results(run_dir):
        recorded = read_data_record(run_dir)
        differ = describe_data_difference(recorded, facts)
        if differ:
            where = (f"task.path at the run's {OWN_DATA_TASKS[own][0].removeprefix('the ')}" if own in OWN_DATA_TASKS
                     else "paths.data_dir (AUTOATTEND_DATA_DIR) at the run's data")
            raise AutoAttendError(f"run dir {run_dir} was started on other data ({differ}), and resuming would mix "
                                  f"results of the two: point {where}, or give a new hydra.run.dir")
        return
    atomic_write_json(path, facts)


# What data.json's facts are (src.pipeline.common.data_facts): a hand-edited record of another shape
# was compared as it stood, and the data were blamed ("the data at paths.data_dir ... are not the run's")
_DATA_FACT_TYPES = {"classes": "int", "vocabulary": "int", "vocabulary_sha256": "str", "labels_sha256": "str",
                    "examples": "{str: int}", "features": "int", "train_graphs": "int", "nodes": "[int]",
                    "edges": "[int]"}


def _is_fact(value: Any, kind: str) -> bool:
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    return {"int": lambda: whole(value), "str": lambda: isinstance(value, str),
            "{str: int}": lambda: isinstance(value, dict) and all(map(whole, value.values())),
            "[int]": lambda: isinstance(value, list) and all(map(whole, value))}[kind]()


def read_data_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``data.json``, or ``None`` for a run started before runs recorded their data."""
    path = run_dir / DATA_FILE
    if not path.exists():
        return None
    recorded = _read_record(path, "the data this run directory was started on")
    for key, kind in _DATA_FACT_TYPES.items():
        if key in recorded and not _is_fact(recorded[key], kind):
            raise AutoAttendError(f"{path}: {key} is {_show(recorded[key])}, not a record of the data ({kind}); it "
                                  "records the data this run directory was started on: restore it")
    return recorded


def read_invocations(run_dir: Path) -> list[dict[str, Any]] | None:
    """The records of ``invocations.json``, oldest first (``[]`` when the run has none yet);
    ``None`` when the file cannot be read as such a record (damaged)."""
    path = Path(run_dir) / INVOCATIONS_FILE
    if not path.exists():
        return []
    try:
        invocations = json.loads(path.read_text())["invocations"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(invocations, list) or not all(isinstance(i, dict) for i in invocations):
        return None
    return invocations


def _read_record(path: Path, what: str) -> dict[str, Any]:
    """A run record (a JSON object), or one error line saying what it records."""
    try:
        recorded = json.loads(path.read_text())
        if not isinstance(recorded, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AutoAttendError(f"{path} is unreadable ({exc}); it records {what}: restore it, or start a new run "
                              "directory (hydra.run.dir=...)") from None
    return recorded


def describe_data_difference(recorded: dict[str, Any] | None, facts: dict[str, Any]) -> str:
    """``"key: recorded -> now; ..."`` for the facts that differ ("" when none, or no record). A
    fact the record lacks (added to the code since the run started, e.g. ``labels_sha256``) is not
    compared."""
    if recorded is None:
        return ""
    facts = json.loads(json.dumps(facts))
    differ = [k for k in sorted(recorded) if recorded.get(k) != facts.get(k)]
    return _changes(recorded, facts, differ, "(none)")


class HydraRecord:
    """The ``.hydra/`` files of a run (``config.yaml``, ``hydra.yaml``, ``overrides.yaml``, as
    Hydra writes them), written once the invocation is accepted (:meth:`write`) rather than before
    it starts: ``conf/{search,retrain}.yaml`` set ``hydra.output_subdir: null``, since Hydra wrote
    them before the run's checks, so that a re-run refused for other settings or a bad value
    replaced a finished run's config with the refused one (which ``src.evaluate`` then rebuilt the
    data from). The text is taken when the run starts, before any stage touches ``cfg``."""

    FOLDER = ".hydra"

    def __init__(self, cfg: DictConfig):
        from hydra.core.hydra_config import HydraConfig

        self.files: dict[str, str] = {}
        if HydraConfig.initialized():  # a pipeline function called without Hydra (tests) has none
            hydra_cfg = HydraConfig.instance().cfg  # {"hydra": ...}, as Hydra saves it
            self.files = {"config.yaml": OmegaConf.to_yaml(cfg), "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
                          "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task)}

    def write(self, run_dir: Path) -> None:
        for name, text in self.files.items():
            atomic_write_text(Path(run_dir) / self.FOLDER / name, text)


def format_mean_std(block: dict) -> str:
    """``"80.43 +- 1.41"`` (in %) from a results block; the mean alone over one seed, whose
    recorded std of 0 is no spread (a sample std needs two)."""
    mean = f"{100 * block['test_acc_mean']:.2f}"
    return mean if len(block.get("seeds") or ()) == 1 else f"{mean} +- {100 * block['test_acc_std']:.2f}"
