"""Re-evaluate a run's retrained models and check them against its recorded numbers.

    python -m src.evaluate outputs/sst2/search/2026-12-03_10-00-00
    python -m src.evaluate RUN_DIR paths.data_dir=/data hardware.threads=1

For every model a run kept (``retrain/seed_<s>/model.pt``, and a graph run's baselines,
``baselines/<name>/seed_<s>/model.pt``: the weights of each seed's selected evaluation,
``src/models/saved.py``), the run's data is rebuilt from its ``.hydra/config.yaml`` (the same
vocabulary and splits; ``key=value`` arguments override that config: where the data now lie, or
a machine setting, never one the results depend on; without ``paths.data_dir=...`` or
``AUTOATTEND_DATA_DIR`` the data are read where the run read them, ``invocations.json``), the model is loaded, and its validation
and test scores are computed again and printed beside the recorded ones. Exit status 0 when every
seed reproduces its record, 1 when one does not, 2 on bad input. Writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from src.pipeline.run_settings import INVOCATIONS_FILE, OWN_DATA_TASKS, own_data_task, read_invocations
from src.utils.errors import AutoAttendError, DataNotFoundError
from src.utils.io import load_config, read_seed_record

TOLERANCE = 1e-6  # the accuracies are fractions of whole examples; this allows float rounding only
# what an evaluation may override besides the keys a resume may change (run_settings.MAY_CHANGE):
# how many test examples go through the model at once, which does not change a prediction
EVALUATION_MAY_CHANGE = ("retrain.eval_batch_size",)


def run_config(run_dir: Path, overrides: list[str], reads_data: bool = True):
    """The run's resolved ``.hydra/config.yaml`` with ``key=value`` ``overrides`` merged in; its data
    paths as the run read them, said in a note where that is not where they lead from here (no note
    where the caller does not read the run's data: ``reads_data=False``)."""
    import yaml
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from src.pipeline.checks import check_hardware, check_int, check_paths, has_key
    from src.pipeline.config import CONF_DIR
    from src.pipeline.run_settings import DATA_LOCATION, may_change, within

    config = run_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        raise AutoAttendError(f"{run_dir}: not a run directory (no .hydra/config.yaml)")
    bad = [o for o in overrides if "=" not in o or o.startswith(("+", "~"))]
    if bad:  # ++paths.data_dir=... was "no such setting ++paths.data_dir"
        raise AutoAttendError(f"{bad[0]}: expected key=value, without Hydra's + or ~ (a setting of the run's config "
                              "to override)")
    try:
        recorded = load_config(config)
        if not isinstance(recorded, DictConfig) or not isinstance(recorded.get("task"), DictConfig):
            raise AutoAttendError(f"{config}: not a run's config (expected a mapping with the task's settings under "
                                  "task:); restore it from the run's command, or re-run that command")
        for key in (o.split("=", 1)[0] for o in overrides):
            # a misspelt key would otherwise be added beside the one it meant, and silently ignored
            if not has_key(recorded, key):
                raise AutoAttendError(f"{key}: no such setting in {config} (override a key the run's config has, "
                                      "e.g. paths.data_dir=...)")
            # task.path: where a CSV task's files are now (a corpus moved; data.json checks them)
            if not may_change(key) and key not in EVALUATION_MAY_CHANGE and not within(key, DATA_LOCATION):
                # data.max_len=3 rebuilt other data and blamed the models; seed=abc gave a traceback
                raise AutoAttendError(f"{key}: a setting the run's results depend on, which is kept as the run had "
                                      "it; override only where things are and how the machine runs (paths.*, "
                                      f"task.path, hardware.threads, hardware.accelerator, {', '.join(EVALUATION_MAY_CHANGE)}, ...)")
        _fill_datamodule_settings_before_they_existed(recorded)
        # caches go where this machine's settings say (as the run's own config, which names AUTOATTEND_CACHE_DIR,
        # would have them), not to a folder a received config names
        if isinstance(recorded.get("paths"), DictConfig):
            recorded.paths.cache_dir = OmegaConf.load(CONF_DIR / "paths" / "default.yaml").cache_dir
        cfg = OmegaConf.merge(recorded, OmegaConf.from_dotlist(overrides))
        given = {o.split("=", 1)[0] for o in overrides}
        last = (read_invocations(run_dir) or [{}])[-1]
        _read_where_the_run_read(cfg, "paths.data_dir", runs_data_dir(last, given), "the data",
                                 f"where the run read them ({INVOCATIONS_FILE}; paths.data_dir=... for another folder)",
                                 reads_data)
        own = OWN_DATA_TASKS.get(own_data_task(cfg.task), ("the data", "path"))[0]
        _read_where_the_run_read(cfg, "task.path", runs_task_path(last, cfg, given), own,
                                 f"where the run read it ({INVOCATIONS_FILE}: its task.path={cfg.task.get('path')} is "
                                 "relative to the folder it started in; task.path=... for another)", reads_data)
        for override in overrides:  # a value that does not resolve is the override's, not the run's file
            try:
                OmegaConf.select(cfg, override.split("=", 1)[0], throw_on_resolution_failure=True)
            except OmegaConfBaseException as exc:
                raise AutoAttendError(f"{override}: {str(exc).splitlines()[0]}") from None
        OmegaConf.resolve(cfg)
    except (OmegaConfBaseException, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AutoAttendError(f"{config}: cannot be read as the run's config ({str(exc).splitlines()[0]})") from None
    check_targets(OmegaConf.to_container(cfg), config)
    with settings_of_the_run(run_dir, cfg):
        check_paths(cfg)
        check_hardware(cfg)
        check_int(cfg, "retrain.eval_batch_size", 1)
    return cfg


def _fill_datamodule_settings_before_they_existed(recorded) -> None:
    """A run's config without a DataModule setting added since it ran gets the value that builds the data it read
    (:func:`src.choices.datamodule_settings_then`), not today's default."""
    from omegaconf import DictConfig

    from src.choices import datamodule_settings_then

    datamodule = recorded.task.get("datamodule")
    if isinstance(datamodule, DictConfig):
        for name, old in datamodule_settings_then(datamodule.get("_target_"), lambda n: n not in datamodule).items():
            datamodule[name] = old


def task_targets() -> set[str]:
    """The DataModule classes this checkout's task configs name (``conf/task/*.yaml``'s ``datamodule._target_``)."""
    import yaml

    from src.pipeline.config import CONF_DIR

    named = set()
    for path in (CONF_DIR / "task").glob("*.yaml"):
        try:
            target = ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("datamodule") or {}).get("_target_")
        except (OSError, ValueError, AttributeError, yaml.YAMLError):
            continue
        if isinstance(target, str):
            named.add(target)
    return named


def check_targets(config: dict, where: Path) -> None:
    """Refuse a run's config whose ``_target_`` (what Hydra would import and call) is anything but one of
    :func:`task_targets` at ``task.datamodule``: a run folder may come from someone else, and its config would
    otherwise run any callable it names (``torch.load`` of bytes it holds, say) when its data are rebuilt."""
    allowed = task_targets()

    def walk(node, key: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                path = f"{key}.{name}" if key else str(name)
                if name == "_target_" and not (path == "task.datamodule._target_" and value in allowed):
                    raise AutoAttendError(
                        f"{where}: {path}: {str(value)[:100]!r} is not what a run's config may name (only "
                        f"task.datamodule._target_, one of the DataModules of this checkout's conf/task/*.yaml: "
                        f"{', '.join(sorted(allowed))}): a run folder's config names code that reading it would run; "
                        "restore the file, or add a task config naming your own DataModule under conf/task/")
                walk(value, path)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{key}[{index}]")

    walk(config, "")


@contextmanager
def settings_of_the_run(run_dir: Path, cfg):
    """Where the run's config is read (its data rebuilt, the machine set up), a setting it lacks is
    one line naming the key and the file (a truncated or hand-edited ``.hydra/config.yaml`` gave
    OmegaConf's traceback from deep inside the data code). A key that is absent may also be a
    setting added to the project after the run was started; the line says so. ``cfg``: the run's config
    (:func:`run_config`), whose task says where its data are."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    config = run_dir / ".hydra" / "config.yaml"
    try:
        yield
    except DataNotFoundError as exc:
        recorded = recorded_data_dir(run_dir)
        task = cfg.get("task")
        if recorded is None or recorded in str(exc) or (task is not None and own_data_task(task) is not None):
            raise  # a task of one's own reads task.path, which the error names, never paths.data_dir
        raise DataNotFoundError(f"{exc} (the run read its data from {recorded}, {INVOCATIONS_FILE}: "
                                f"paths.data_dir={recorded} if it is still there)") from None
    except (ConfigAttributeError, ConfigKeyError) as exc:
        key = getattr(exc, "full_key", None) or str(exc).splitlines()[0]
        raise AutoAttendError(f"{config}: {key}: missing, a setting this version of autoattend reads; either the "
                              "file was edited (restore it from the run's command) or the run was started by a "
                              "version before the setting existed (add it to the file with the value that run "
                              "used; conf/ has its default)") from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or str(exc).splitlines()[0]
        raise AutoAttendError(f"{config}: {key}: not a valid setting ({str(exc).splitlines()[0]}); if the file "
                              "was edited, restore it from the run's command") from None


def _read_where_the_run_read(cfg, key: str, folder: str | None, what: str, why: str, say: bool = True) -> None:
    """Set ``key`` to ``folder`` (``None``: leave it), with a note on stderr (``reading <what> from
    <folder>, <why>``; with ``say``) where that is not where ``key`` already leads from here."""
    from omegaconf import OmegaConf

    if folder is None:
        return
    if say and Path(str(OmegaConf.select(cfg, key))).expanduser().resolve() != Path(folder):
        print(f"note: reading {what} from {folder}, {why}", file=sys.stderr)
    OmegaConf.update(cfg, key, folder)


def _recorded_path(invocation: dict, field: str, file_ok: bool = False) -> str | None:
    """``invocation[field]`` (an ``invocations.json`` entry's folder), if it is still a folder (or,
    with ``file_ok``, a file)."""
    value = invocation.get(field)
    if not value:
        return None
    path = Path(str(value))
    return str(value) if path.is_dir() or (file_ok and path.is_file()) else None


def runs_data_dir(invocation: dict, given: set[str]) -> str | None:
    """The folder to read the data from when neither ``paths.data_dir=...`` (in ``given``, the keys
    overridden) nor ``AUTOATTEND_DATA_DIR`` says: the one the run's last ``invocation`` read, if it
    is still a folder. The run's config keeps ``paths.data_dir`` as
    ``${oc.env:AUTOATTEND_DATA_DIR,./data}``, so a run made with the variable set was evaluated from
    ``./data`` without it (and refused: not found there)."""
    if os.environ.get("AUTOATTEND_DATA_DIR") or "paths.data_dir" in given:
        return None
    return _recorded_path(invocation, "data_dir")


def runs_task_path(invocation: dict, cfg, given: set[str]) -> str | None:
    """A ``+task=csv`` run's corpus folder (a ``+task=graph_file`` run's file) when its config gives
    it relative (``task.path=my_corpus``, relative to the folder the run was started in) and no
    ``task.path=...`` says otherwise: the path the run's last ``invocation`` read, if it is still
    there. Read from the current folder, it was "CSV files not found" wherever src.evaluate was
    started elsewhere."""
    if "task.path" in given or own_data_task(cfg.task) is None:
        return None
    path = cfg.task.get("path")
    if path is None or Path(str(path)).expanduser().is_absolute():
        return None
    return _recorded_path(invocation, "task_path", file_ok=True)


def recorded_data_dir(run_dir: Path) -> str | None:
    """The data folder the run's last invocation read (``invocations.json``); ``None`` when it
    does not say (a run from before the record, or a damaged one)."""
    invocations = read_invocations(run_dir)
    data_dir = invocations[-1].get("data_dir") if invocations else None
    return str(data_dir) if data_dir else None


def saved_models(run_dir: Path) -> list[tuple[str, int, Path]]:
    """``(folder, seed, <folder>/seed_<seed>/model.pt)`` of a run: ``retrain`` first, then the
    graph baselines (``baselines/<name>``), by seed."""
    found = seed_paths(run_dir, "seed_*/model.pt")
    if not found and not (run_dir / "retrain").is_dir() and not (run_dir / "baselines").is_dir():
        raise AutoAttendError(f"{run_dir}: nothing retrained (no retrain/ folder: the run stopped before its retrain "
                              "stage, or ran with retrain.seeds=0; graph tasks: graph.retrain.seeds=0)")
    if not found:
        raise AutoAttendError(f"{run_dir / 'retrain'}: no saved models (retrain/seed_<s>/model.pt; runs retrained "
                              "before models were kept have none)")
    return sorted(found, key=lambda f: (f[0] != "retrain", f[0], f[1]))


def text_scores(model, dm, batch_size: int) -> dict[str, float]:
    """Validation and test accuracy: the fraction of each split's examples whose arg-max logit is
    their label."""
    import torch

    from src.pipeline.common import make_loader

    scores = {}
    with torch.inference_mode():
        for split, dataset in (("val", dm.val_set), ("test", dm.test_set)):
            correct = total = 0
            for batch in make_loader(dataset, batch_size, False, 0):
                predicted = model(batch["tokens"], batch["mask"]).argmax(dim=-1)
                correct += int((predicted == batch["labels"]).sum())
                total += len(batch["labels"])
            scores[f"{split}_acc"] = correct / total
    return scores


def graph_scores(model, dm) -> dict[str, float]:
    """Validation and test score (accuracy, or micro-F1 for a multi-label task) as the retrain
    computed them: one full-graph evaluation, or every evaluation graph (PPI) accumulated."""
    import torch

    from src.lit.graph_modules import GraphChildModule

    module = GraphChildModule(model, dm.multilabel)
    if dm.graph is not None:
        return {k: v for k, v in module.evaluate(dm.graph).items() if k != "val_loss"}
    with torch.inference_mode():
        for batch in dm.eval_loader():
            module.validation_step(batch, 0)
    return {f"{split}_acc": module.metrics[split].compute().item() for split in ("val", "test")}


def evaluate(run_dir: str | Path, overrides: list[str] | None = None) -> list[dict]:
    """Each saved seed's recorded and recomputed validation and test score."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise AutoAttendError(f"{run_dir}: a file; give the run's directory (src.evaluate checks every model it kept)")
    if not run_dir.is_dir():
        raise AutoAttendError(f"{run_dir}: no such directory")
    cfg = run_config(run_dir, list(overrides or []))
    models = saved_models(run_dir)
    from src.models.saved import load_child
    from src.pipeline.common import build_datamodule, check_data_of_run, setup_hardware
    from src.pipeline.config import task_family

    with settings_of_the_run(run_dir, cfg):
        setup_hardware(cfg)
        dm = build_datamodule(cfg)
        graph = task_family(cfg) == "graph"
        check_data_of_run(run_dir, cfg, dm, graph)
        eval_batch_size = None if graph else int(cfg.retrain.eval_batch_size)
    rows = []
    for i, (folder, seed, path) in enumerate(models, 1):
        # the table comes at the end; on a large test set each model takes a while
        print(f"evaluate: {folder} seed {seed} ({i} of {len(models)})", file=sys.stderr, flush=True)
        model, record = load_child(path)
        _check_model_of_run(path, record["spec"], dm, graph)
        seed_file = path.parent.parent / f"seed_{seed}.json"
        recorded = read_seed_record(seed_file) if seed_file.exists() else None
        saved = record["evaluation"]
        if recorded is not None:
            _check_record_of_model(seed_file, recorded, path, saved)
        now = graph_scores(model, dm) if graph else text_scores(model, dm, eval_batch_size)
        row = {"folder": folder, "seed": seed, "step": saved["step"], "finished": recorded is not None,
               "val_recorded": saved["val_acc"], "val": now["val_acc"],
               "test_recorded": saved["test_acc"], "test": now["test_acc"]}
        row["reproduced"] = (abs(row["val"] - row["val_recorded"]) <= TOLERANCE
                             and abs(row["test"] - row["test_recorded"]) <= TOLERANCE)
        rows.append(row)
    kept = {(folder, seed) for folder, seed, _ in models}
    for folder, seed, seed_file in finished_seeds(run_dir):
        if (folder, seed) not in kept:  # finished and recorded, but its model is gone: it cannot be checked
            recorded = read_seed_record(seed_file)
            rows.append({"folder": folder, "seed": seed, "step": recorded["step"], "finished": True,
                         "val_recorded": recorded["val_acc"], "val": None, "test_recorded": recorded["test_acc"],
                         "test": None, "reproduced": False, "missing": True})
    return sorted(rows, key=lambda r: (r["folder"] != "retrain", r["folder"], r["seed"]))


def _check_record_of_model(seed_file: Path, recorded: dict, path: Path, saved: dict) -> None:
    """``seed_<s>.json`` selected the evaluation the kept model holds: the same step, and the same
    scores (what results.json averages is what the model scored)."""
    if recorded["step"] != saved["step"]:
        raise AutoAttendError(f"{path}: holds step {saved['step']}, while {seed_file.name} selected step "
                              f"{recorded['step']} (the file is from another training)")
    for key in ("val_acc", "test_acc"):
        if abs(float(recorded[key]) - float(saved[key])) > TOLERANCE:
            raise AutoAttendError(f"{seed_file}: records {key} {recorded[key]}, while {path} scored {saved[key]} at "
                                  f"the same step {saved['step']} (the record was edited, or is from another "
                                  "training)")


def _check_model_of_run(path: Path, spec: dict, dm, graph: bool) -> None:
    """A kept model's file is of the run's family and fits its data: a text model copied into a
    graph run (or the other way round, or a Cora model into a CiteSeer run) gave an AttributeError
    or a matrix-shape RuntimeError traceback."""
    from src.models.saved import GRAPH_FORMAT

    family = "graph" if spec["format"] == GRAPH_FORMAT else "text"
    if family != ("graph" if graph else "text"):
        raise AutoAttendError(f"{path}: a {family} model, in a run of a {'graph' if graph else 'text'} task: the file "
                              "is from another run")
    fits = [("classes", spec["num_classes"], dm.num_classes)]
    fits.append(("node features", spec["in_dim"], dm.num_features) if graph else
                 ("words in the vocabulary", spec["embedding_shape"][0], dm.embeddings.shape[0]))
    for what, saved, data in fits:
        if int(saved) != int(data):
            raise AutoAttendError(f"{path}: a model of {saved} {what}, where the run's data have {data}: the file is "
                                  "from another run")


def finished_seeds(run_dir: Path) -> list[tuple[str, int, Path]]:
    """``(folder, seed, seed_<seed>.json)`` of every seed the run finished (retrain, baselines)."""
    return seed_paths(run_dir, "seed_*.json")


def seed_paths(run_dir: Path, pattern: str) -> list[tuple[str, int, Path]]:
    """``(folder, seed, path)`` of the files matching ``pattern`` (``seed_*.json``,
    ``seed_*/model.pt``) in ``retrain/`` and each ``baselines/<name>/``, the seed read from the
    ``seed_<s>`` part of the path."""
    found = []
    for folder in [run_dir / "retrain"] + sorted((run_dir / "baselines").glob("*")):
        for path in folder.glob(pattern):
            suffix = path.relative_to(folder).parts[0].removesuffix(".json").removeprefix("seed_")
            if suffix.isdigit():
                found.append((str(folder.relative_to(run_dir)), int(suffix), path))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=os.path.expanduser,  # ~: home, as for a run's paths
                        help="a run's directory (src.search or src.retrain)")
    parser.add_argument("overrides", nargs="*", default=[], help="key=value settings of the run's config to override")
    args = parser.parse_args(argv)
    try:
        rows = evaluate(args.run_dir, args.overrides)
    except AutoAttendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| model | seed | step | val recorded (%) | val now (%) | test recorded (%) | test now (%) | reproduced |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        note = "" if r["finished"] else " (seed unfinished)"
        if r.get("missing"):
            now_val = now_test = "-"
        else:
            now_val, now_test = f"{100 * r['val']:.2f}", f"{100 * r['test']:.2f}"
        verdict = "NO (model.pt missing)" if r.get("missing") else "yes" if r["reproduced"] else "NO"
        print(f"| {r['folder']} | {r['seed']}{note} | {r['step']} | {100 * r['val_recorded']:.2f} | {now_val} | "
              f"{100 * r['test_recorded']:.2f} | {now_test} | {verdict} |")
    missing = [f"{r['folder']} seed {r['seed']}" for r in rows if r.get("missing")]
    failed = [f"{r['folder']} seed {r['seed']}" for r in rows if not r["reproduced"] and not r.get("missing")]
    if missing:
        print(f"error: {', '.join(missing)}: finished, but its model.pt is missing (deleted or not copied with "
              "the run), so it cannot be checked", file=sys.stderr)
    if failed:
        print(f"error: {', '.join(failed)}: the recomputed scores differ from the recorded ones", file=sys.stderr)
    if missing or failed:
        return 1
    unfinished = "" if (Path(args.run_dir) / "summary.json").exists() else (
        " (the run has not finished: these are the models it kept so far)")
    print(f"all {len(rows)} model(s) reproduce their recorded validation and test scores{unfinished}")
    return 0


if __name__ == "__main__":
    from src.utils.errors import exit_status_of
    from src.utils.restart import entry_point_utf8

    entry_point_utf8()
    sys.exit(exit_status_of(main))
