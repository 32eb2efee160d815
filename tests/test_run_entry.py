"""The run wrapper (``src/pipeline/run.py``) in this process, with the stages replaced by stand-ins
(mutation audit of run.py's non-refusal parts): what ``run_search`` / ``run_retrain`` hand each
stage, what ``summary.json`` and the summary line say, and the small helpers of ``entry`` and
``hydra_entry`` (exit statuses, the one ``error:`` / ``interrupted:`` line). The command-line runs
of tests/test_pipeline.py and tests/test_graph_pipeline.py check the same paths end to end, in
minutes; these take seconds."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from src.pipeline.config import task_family
from src.utils.errors import AutoAttendError, RunDirInUseError
from tests.conftest import compose_config
from tests.helpers import ROOT

ARCHS = ROOT / "src" / "space" / "archs"
DATA_CLASSES = {"sst2": 2, "sst5": 5, "cora": 7, "ppi": 121}  # what the stand-in data hold


def _results(seeds: int, hparams: dict | None = None) -> dict:
    block = {"test_acc_mean": 0.8, "test_acc_std": 0.01, "val_acc_mean": 0.75, "seeds": list(range(seeds)),
             "selection_rule": "best validation", "per_seed": ["not in the summary"]}
    return {**block, "hparams": hparams} if hparams is not None else block


class _Record:
    """Stands in for ``HydraRecord``: notes the folders it is written to."""
    written: list = []

    def __init__(self, cfg):
        pass

    def write(self, run_dir):
        _Record.written.append(Path(run_dir))


@pytest.fixture
def stand_ins(monkeypatch):
    """Every stage, the data and the machine facts replaced: returns the calls, by stage name."""
    from src.pipeline import common, graph_stages, ranking, run, stages

    calls: dict = {}

    def note(name, value=None):
        def stage(*args, **kwargs):
            calls.setdefault(name, []).append((args, kwargs))
            return value(*args, **kwargs) if callable(value) else value
        return stage

    def datamodule(cfg):
        classes = DATA_CLASSES[cfg.task.name]
        if task_family(cfg) == "graph":
            multilabel = cfg.task.name == "ppi"
            return SimpleNamespace(num_classes=classes, metric="micro_f1" if multilabel else "accuracy",
                                   multilabel=multilabel)
        return SimpleNamespace(num_classes=classes, metric="accuracy")  # a text DataModule has no multilabel

    monkeypatch.setattr(common, "build_datamodule", datamodule)
    monkeypatch.setattr(common, "data_facts", lambda dm, graph: {"classes": int(dm.num_classes)})
    monkeypatch.setattr(common, "env_summary", lambda device: {"machine": "stand-in"})
    monkeypatch.setattr(common, "setup_hardware", note("setup_hardware"))
    monkeypatch.setattr(common, "source_commit", lambda: "abc")
    monkeypatch.setattr(run, "HydraRecord", _Record)
    monkeypatch.setattr(_Record, "written", [])
    calls["record"] = _Record.written
    for module in (stages, graph_stages):
        prefix = "graph " if module is graph_stages else ""
        monkeypatch.setattr(module, "train_supernet", note(prefix + "supernet", "a supernet"))
        monkeypatch.setattr(module, "search", note(prefix + "search", (None, 0.8125)))
        monkeypatch.setattr(module, "retrain", note(
            prefix + "retrain", lambda cfg, arch, dm, run_dir, hparams=None, source=None, graph=module is graph_stages:
            _results(2, {"hidden": 16} if graph else None)))  # bound now: text results carry no hparams
    monkeypatch.setattr(stages, "check_batch_memory", note("batch memory"))
    monkeypatch.setattr(graph_stages, "baselines", note("baselines", {"gcn": _results(2)}))
    monkeypatch.setattr(ranking, "measure", note("ranking", {"all": {"n": 5, "spearman": 0.5}, "candidates": [1, 2]}))
    monkeypatch.setattr(ranking, "format_with_interval", lambda block: f"rho {block['spearman']}")
    return calls


def _search_cfg(tmp_path: Path, task: str, *overrides: str):
    return compose_config("search", [f"+task={task}", "budget=smoke", "hardware=cpu", "hardware.kernels=torch",
                                     f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}",
                                     *overrides])


def _summary_line(capsys) -> str:
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("summary: ")]
    return line.removeprefix("summary: ")


def test_a_text_search_hands_each_stage_its_part_and_records_the_retrain_in_its_summary(tmp_path, stand_ins,
                                                                                           capsys):
    """The supernet's score is kept as the fraction it is in summary.json and said in % in the line;
    the retrain's block is the five keys results.json shares (not its per-seed records); the data
    stage checks the memory of the supernet and the retrain, writes the run's .hydra record and
    invocations.json, and the run folder is released when the run returns."""
    from src.pipeline import run
    from src.pipeline.run_settings import INVOCATIONS_FILE

    cfg = _search_cfg(tmp_path, "sst2", "retrain.seeds=2", "ranking.candidates=0")
    summary = run.run_search(cfg)
    run_dir = tmp_path / "run"
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert summary["best_val_acc_supernet"] == 0.8125 and summary["task"] == "sst2"
    assert summary["retrain"] == {"test_acc_mean": 0.8, "test_acc_std": 0.01, "val_acc_mean": 0.75, "seeds": [0, 1],
                                  "selection_rule": "best validation"}
    assert summary["machine"] == {"machine": "stand-in"} and summary["lower_precision"] is None
    assert set(summary["seconds_this_invocation"]) == {"data", "supernet", "search", "retrain"}
    assert "ranking" not in summary and "baselines" not in summary
    assert summary["metric"] == "accuracy"  # as a graph run's: what the scores named acc are
    layers = cfg.space.num_layers
    assert [args[2] for args, _ in stand_ins["batch memory"]] == [{"supernet": layers, "retrain": layers}]
    assert len(stand_ins["supernet"]) == len(stand_ins["search"]) == len(stand_ins["retrain"]) == 1
    assert stand_ins["record"] == [run_dir] and len(stand_ins["setup_hardware"]) == 1
    assert len(json.loads((run_dir / INVOCATIONS_FILE).read_text())["invocations"]) == 1
    assert run._held_run_dirs == []
    line = _summary_line(capsys)
    assert line.startswith("best supernet val acc 81.25 % | retrained test acc 80.00 +- 1.00 % over 2 seed(s) | ")


def test_a_search_without_retrain_seeds_retrains_nothing_and_says_only_the_supernets_score(tmp_path, stand_ins,
                                                                                           capsys):
    from src.pipeline import run

    cfg = _search_cfg(tmp_path, "sst2", "retrain.seeds=0", "ranking.candidates=0")
    summary = run.run_search(cfg)
    assert summary["retrain"] is None and "retrain" not in stand_ins
    assert [args[2] for args, _ in stand_ins["batch memory"]] == [{"supernet": cfg.space.num_layers}]
    assert _summary_line(capsys).startswith("best supernet val acc 81.25 % | ")
    assert "retrained" not in json.dumps(summary)


def test_the_ranking_stage_is_checked_for_memory_measured_and_summarised_without_its_candidates(tmp_path, stand_ins,
                                                                                               capsys):
    """The ranking's candidates train with the retrain's settings: their memory is checked even
    with no retrain seeds; summary.json keeps its correlations, not every candidate, and the stage's
    time; the line says the correlation and how many candidates it is over."""
    from src.pipeline import run

    cfg = _search_cfg(tmp_path, "sst2", "retrain.seeds=0", "ranking.candidates=5")
    summary = run.run_search(cfg)
    layers = cfg.space.num_layers
    assert [args[2] for args, _ in stand_ins["batch memory"]] == [{"supernet": layers, "retrain": layers}]
    ((args, _),) = stand_ins["ranking"]
    assert args[2] == tmp_path / "run" and args[3] is False
    assert summary["ranking"] == {"all": {"n": 5, "spearman": 0.5}}
    assert "ranking" in summary["seconds"] and "ranking" in summary["seconds_this_invocation"]
    assert " | ranking: Spearman rho 0.5 over 5 candidates | " in _summary_line(capsys)


def test_a_plain_rerun_keeps_the_ranking_an_earlier_invocation_measured(tmp_path, stand_ins, capsys):
    """``ranking.*`` may change on a resume: a re-run with the ranking off reads the earlier
    ``ranking/results.json`` back into its summary rather than dropping it."""
    from src.pipeline import run

    (tmp_path / "run" / "ranking").mkdir(parents=True)
    (tmp_path / "run" / "ranking" / "results.json").write_text(json.dumps(
        {"all": {"n": 7, "spearman": 0.25}, "candidates": [1]}))
    summary = run.run_search(_search_cfg(tmp_path, "sst2", "retrain.seeds=0", "ranking.candidates=0"))
    assert "ranking" not in stand_ins and summary["ranking"] == {"all": {"n": 7, "spearman": 0.25}}
    assert " | ranking: Spearman rho 0.25 over 7 candidates | " in _summary_line(capsys)


def test_a_graph_search_retrains_by_the_graph_seeds_then_its_baselines_and_records_its_metric(tmp_path, stand_ins,
                                                                                             capsys):
    """A graph task reads ``graph.retrain.seeds`` (not the text ``retrain.seeds``), records its metric,
    the retrain's settings and every baseline's scores, each in the line; its ranking stage is told
    the task is a graph one."""
    from src.pipeline import run

    cfg = _search_cfg(tmp_path, "cora", "graph.retrain.seeds=2", "graph.baselines=[gcn]", "ranking.candidates=5")
    summary = run.run_search(cfg)
    assert "retrain" not in stand_ins and len(stand_ins["graph retrain"]) == 1
    assert summary["metric"] == "accuracy" and summary["retrain"]["hparams"] == {"hidden": 16}
    assert summary["baselines"] == {"gcn": _results(2)}
    assert "baselines" in summary["seconds"] and "baselines" in summary["seconds_this_invocation"]
    assert stand_ins["ranking"][0][0][3] is True
    line = _summary_line(capsys)
    assert line.startswith("best supernet val acc 81.25 % | retrained test acc 80.00 +- 1.00 % over 2 seed(s) | "
                           "gcn test acc 80.00 +- 1.00 % | ranking: Spearman rho 0.5 over 5 candidates | ")


def test_a_graph_search_without_graph_retrain_seeds_runs_no_retrain_and_no_baselines(tmp_path, stand_ins, capsys):
    from src.pipeline import run

    summary = run.run_search(_search_cfg(tmp_path, "cora", "graph.retrain.seeds=0", "graph.baselines=[gcn]",
                                         "ranking.candidates=0"))
    assert summary["retrain"] is None and "baselines" not in summary
    assert "graph retrain" not in stand_ins and "baselines" not in stand_ins


def test_a_graph_search_checks_its_baselines_before_the_supernet(tmp_path, stand_ins):
    from src.pipeline import run

    with pytest.raises(AutoAttendError, match="^graph.baselines: published_sst5: a text architecture"):
        run.run_search(_search_cfg(tmp_path, "cora", "graph.baselines=[published_sst5]"))
    assert "graph supernet" not in stand_ins


def test_a_multilabel_graph_task_is_scored_in_micro_f1_and_a_text_one_in_accuracy():
    from src.pipeline import run

    assert run._metric_name(True, SimpleNamespace(multilabel=True)) == "micro-F1"
    assert run._metric_name(True, SimpleNamespace(multilabel=False)) == "acc"
    assert run._metric_name(False, SimpleNamespace(multilabel=True)) == "acc"


def test_a_lower_precision_search_is_labelled_in_its_summary_and_its_line(tmp_path, stand_ins, capsys):
    from src.pipeline import run

    summary = run.run_search(_search_cfg(tmp_path, "sst2", "retrain.seeds=0", "ranking.candidates=0",
                                         "hardware.precision=bf16-mixed"))
    assert summary["lower_precision"] == "hardware.precision=bf16-mixed"
    assert " | lower precision: hardware.precision=bf16-mixed | " in _summary_line(capsys)


def _retrain_cfg(tmp_path: Path, task: str, arch: str, *overrides: str):
    return compose_config("retrain", [f"+task={task}", f"arch={arch}", "budget=smoke", "hardware=cpu",
                                      "hardware.kernels=torch", f"paths.output_dir={tmp_path / 'run'}",
                                      f"paths.data_dir={tmp_path / 'data'}", *overrides])


def test_a_text_retrain_checks_the_memory_of_the_live_layers_and_names_the_architecture(tmp_path, stand_ins,
                                                                                        capsys):
    """The published SST-5 architecture has 24 layers of which 5 reach the output: the memory check
    counts those 5. The summary and the line name the architecture as given."""
    from src.pipeline import run

    summary = run.run_retrain(_retrain_cfg(tmp_path, "sst5", "published_sst5", "retrain.seeds=2"))
    assert [args[2] for args, _ in stand_ins["batch memory"]] == [{"retrain": 5}]
    assert summary["arch"] == "published_sst5" and summary["task"] == "sst5"
    assert summary["retrain"] == {"test_acc_mean": 0.8, "test_acc_std": 0.01, "val_acc_mean": 0.75, "seeds": [0, 1],
                                  "selection_rule": "best validation"}
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert stand_ins["record"] == [tmp_path / "run"]
    assert _summary_line(capsys).startswith("published_sst5: test acc 80.00 +- 1.00 % over 2 seed(s) | ")
    assert run._held_run_dirs == []


def test_a_retrain_of_a_search_run_folder_is_named_by_the_file_read_from_it(tmp_path, stand_ins, capsys):
    from src.pipeline import run

    search = tmp_path / "searched"
    (search / "search").mkdir(parents=True)
    shutil.copy(ARCHS / "published_sst5.yaml", search / "search" / "best_arch.yaml")
    summary = run.run_retrain(_retrain_cfg(tmp_path, "sst5", str(search)))
    named = str(search / "search" / "best_arch.yaml")
    assert summary["arch"] == named and _summary_line(capsys).startswith(f"{named}: test acc 80.00 ")


def test_a_graph_retrain_trains_the_files_hparams_with_the_command_lines_in_their_place(tmp_path, stand_ins,
                                                                                        monkeypatch):
    """``arch=gcn graph.retrain.hidden=32``: the retrain gets the file's hparams with hidden 32 and
    says where they come from; run_settings.json records the hparams trained. A command-line key
    that is no child setting (``graph.retrain.seeds``) replaces nothing."""
    from src.pipeline import run

    monkeypatch.setattr(run, "_override_keys", lambda: ["graph.retrain.hidden", "graph.retrain.seeds"])
    run.run_retrain(_retrain_cfg(tmp_path, "cora", "gcn", "graph.retrain.hidden=32", "graph.retrain.seeds=2"))
    ((args, kwargs),) = stand_ins["graph retrain"]
    assert args[4]["hidden"] == 32 and (args[4]["dropout"], args[4]["readout"]) == (0.5, "last")  # the file's
    assert kwargs == {"source": "the architecture file's hparams, with hidden from the command line"}
    recorded = json.loads((tmp_path / "run" / "run_settings.json").read_text())
    assert recorded["arch_hparams"]["hidden"] == 32


def test_an_architecture_outside_the_retrain_space_is_named_by_its_setting(tmp_path, stand_ins):
    """The space's complaint (a source no layer has yet) comes after ``arch=<file>: `` as every
    architecture error does, before any data are read."""
    import re

    from src.pipeline import run

    bad = tmp_path / "bad.yaml"
    bad.write_text("layers:\n  - {kind: add, q_src: 0, q_op: conv1, k_src: 3, k_op: gru}\n")
    with pytest.raises(AutoAttendError, match=rf"^arch={re.escape(str(bad))}: .*k_src"):
        run.run_retrain(_retrain_cfg(tmp_path, "sst2", str(bad)))
    assert stand_ins["record"] == [] and "retrain" not in stand_ins


def test_the_command_line_hparams_replace_only_what_it_gives(monkeypatch):
    from src.pipeline import run

    cfg = compose_config("retrain", ["+task=cora", "arch=gcn", "graph.retrain.hidden=32", "graph.retrain.lr=0.05"])
    assert run._command_line_hparams(cfg, None) == (None, None)  # a text architecture, or no file hparams
    assert run._command_line_hparams(cfg, {"hidden": 16}) == (None, {"hidden": 16})  # nothing given (no Hydra)
    monkeypatch.setattr(run, "_override_keys", lambda: ["graph.retrain.hidden", "graph.retrain.lr", "seed"])
    source, hparams = run._command_line_hparams(cfg, {"hidden": 16, "lr": 0.01, "act": "relu"})
    assert hparams == {"hidden": 32, "lr": 0.05, "act": "relu"}
    assert source == "the architecture file's hparams, with hidden, lr from the command line"


def test_a_class_count_given_on_the_command_line_must_be_the_datas(monkeypatch):
    from src.pipeline import run

    cfg = compose_config("search", ["+task=cora", "task.num_classes=7"])
    run._check_classes_setting(cfg, SimpleNamespace(num_classes=3))  # not given on the command line: not checked
    monkeypatch.setattr(run, "_override_keys", lambda: ["task.num_classes"])
    with pytest.raises(AutoAttendError, match=r"^task.num_classes=7: the data of task cora have 3 classes, which "):
        run._check_classes_setting(cfg, SimpleNamespace(num_classes=3))
    run._check_classes_setting(cfg, SimpleNamespace(num_classes=7))


@pytest.mark.parametrize("entry_point", ["search", "retrain"])
def test_a_class_count_the_data_do_not_have_is_refused_by_both_entry_points(tmp_path, stand_ins, monkeypatch,
                                                                            entry_point):
    from src.pipeline import run

    monkeypatch.setattr(run, "_override_keys", lambda: ["task.num_classes"])
    if entry_point == "search":
        cfg, fn = _search_cfg(tmp_path, "cora", "task.num_classes=3"), run.run_search
    else:
        cfg, fn = _retrain_cfg(tmp_path, "cora", "gcn", "task.num_classes=3"), run.run_retrain
    with pytest.raises(AutoAttendError, match="^task.num_classes=3: the data of task cora have 7 classes, which "):
        fn(cfg)
    assert stand_ins["record"] == [] and "graph supernet" not in stand_ins and "graph retrain" not in stand_ins


def test_the_summarys_times_are_the_runs_and_this_invocations():
    from src.pipeline import run

    timer = SimpleNamespace(totals={"data": 3.0}, invocations=2, seconds={"data": 1.0})
    assert run._timing(timer) == {"seconds": {"data": 3.0}, "invocations": 2, "seconds_this_invocation": {"data": 1.0}}


def test_a_run_counts_its_time_from_the_start_of_its_job(tmp_path, monkeypatch):
    """``entry`` notes when the job started (for its first job, when the process did): the timer
    ``_start`` gives the run starts there, not when the run's checks end."""
    from src.pipeline import run

    monkeypatch.setattr(run, "_job_started", [time.perf_counter() - 100])
    try:
        _, timer, _ = run._start(compose_config("search", ["+task=sst2", f"paths.output_dir={tmp_path}"]), "search")
    finally:
        run._release_run_dirs()
    assert timer.wall_seconds >= 100


def test_the_first_jobs_time_counts_from_the_process_start(tmp_path, monkeypatch):
    from src.pipeline import run

    seen = []
    monkeypatch.setattr(run, "_entered", [])
    monkeypatch.setattr(run, "_process_age_s", lambda: 50.0)
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    run.entry(lambda c: seen.append(time.perf_counter() - run._job_started[0]), cfg)
    run.entry(lambda c: seen.append(time.perf_counter() - run._job_started[0]), cfg)  # a sweep's next job
    assert seen[0] >= 50 and seen[1] < 5
    assert run._job_started == []
    run._finished_runs.clear()


def test_the_process_age_is_read_from_proc():
    from src.pipeline import run

    age = run._process_age_s()
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert 0.0 < age < uptime


def test_every_held_run_folder_is_released(tmp_path):
    from src.pipeline import run

    run._hold_run_dir(tmp_path / "a")
    run._hold_run_dir(tmp_path / "b")
    run._release_run_dirs()
    assert run._held_run_dirs == []
    for name in ("a", "b"):  # held again: the locks were dropped
        run._hold_run_dir(tmp_path / name)
    run._release_run_dirs()


def test_a_retrain_refuses_a_search_setting_before_anything_runs(tmp_path, stand_ins, monkeypatch):
    from src.pipeline import run

    monkeypatch.setattr(run, "_override_keys", lambda: ["strategy.population"])
    with pytest.raises(AutoAttendError, match=r"^strategy.population: a setting of the search \(src.search\), which "
                                              r"src.retrain does not read; the retrain's training is set by "):
        run.run_retrain(_retrain_cfg(tmp_path, "sst5", "published_sst5"))
    assert "retrain" not in stand_ins


def test_the_summary_line_is_also_the_last_line_of_the_log_file(tmp_path, monkeypatch, capsys):
    from src.pipeline import run

    logged = []
    monkeypatch.setattr(run, "log_to_files_only", lambda logger, text, level: logged.append((text, level)))
    timer = SimpleNamespace(totals={"data": 2.0}, seconds={"data": 2.0}, invocations=1, wall_seconds=2.0, computed=True)
    run._finish(tmp_path, "result", timer, None)
    assert logged == [(f"run dir: {tmp_path}", logging.INFO), ("summary: result | 2 s (data 2 s)", logging.INFO)]


def test_the_known_harmless_warnings_are_silenced(recwarn):
    import warnings

    from src.pipeline import run

    with warnings.catch_warnings():
        run._quiet_lightning()
        for message in ("Checkpoint directory /r/supernet exists and is not empty.",
                        "Experiment logs directory /r/x exists and is not empty. Previous log files may be overwritten",
                        "The dataloader does not have many workers which may be a bottleneck."):
            warnings.warn(message, UserWarning)
    assert [str(w.message) for w in recwarn] == []
    assert logging.getLogger("lightning.pytorch.utilities.rank_zero").level == logging.WARNING


@pytest.mark.parametrize("signum, said, status", [(signal.SIGTERM, " (SIGTERM)", 143), (signal.SIGINT, "", 130)])
def test_a_stopping_signal_is_named_and_ends_with_128_plus_its_number(signum, said, status):
    from src.pipeline import run

    assert run._named_signal(signum) == said
    with pytest.raises(SystemExit) as exc:
        run._exit_for_signal(signum)
    assert exc.value.code == status


@pytest.mark.parametrize("error, logged_lines", [
    (AutoAttendError("bad input"), ["error: bad input"]),
    # the log of a folder in use is the running command's: the refused one writes nothing there
    (RunDirInUseError("run dir x is in use"), [])])
def test_a_user_error_is_one_error_line_and_status_2_logged_unless_the_folder_is_in_use(tmp_path, monkeypatch, capsys,
                                                                                        error, logged_lines):
    from src.pipeline import run

    logged = []
    monkeypatch.setattr(run, "log_to_files_only", lambda logger, text, level: logged.append(text))

    def fails(cfg):
        raise error

    with pytest.raises(SystemExit) as exc:
        run.entry(fails, OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}))
    assert exc.value.code == 2 and capsys.readouterr().err == f"error: {error}\n" and logged == logged_lines


def test_an_exit_of_the_run_itself_is_not_taken_for_an_interrupt(tmp_path, capsys):
    from src.pipeline import run

    with pytest.raises(SystemExit) as exc:
        run.entry(lambda cfg: sys.exit(3), OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}))
    assert exc.value.code == 3 and capsys.readouterr().err == ""


def test_an_interrupt_is_logged_with_how_to_resume(tmp_path, monkeypatch, capsys):
    from src.pipeline import run

    logged = []
    monkeypatch.setattr(run, "log_to_files_only", lambda logger, text, level: logged.append((text, level)))

    def stopped(cfg):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exc:
        run.entry(stopped, OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}))
    line = (f"interrupted: what finished is kept in {tmp_path}; run the same command with hydra.run.dir={tmp_path} "
            "to resume")
    assert exc.value.code == 130 and capsys.readouterr().err == line + "\n" and logged == [(line, logging.ERROR)]


def test_a_stop_while_a_checkpoint_is_ahead_of_its_metrics_is_held_back(tmp_path, monkeypatch):
    """While ``interrupt`` holds a stop (a checkpoint written, its metrics not yet), the handler
    ``entry`` installs records it without raising: the job goes on to where it is raised."""
    from src.pipeline import run

    monkeypatch.setattr(run.interrupt, "defer", lambda: True)

    def job(cfg):
        signal.raise_signal(signal.SIGINT)
        return {"went on": True}

    assert run.entry(job, OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})) == {"went on": True}
    run._finished_runs.clear()


def test_each_job_quiets_lightnings_banners_and_known_warnings(tmp_path, monkeypatch):
    from src.pipeline import run

    quieted = []
    monkeypatch.setattr(run, "_quiet_lightning", lambda: quieted.append(1))
    run.entry(lambda cfg: {}, OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}))
    assert quieted == [1]
    run._finished_runs.clear()


def test_an_invocation_records_its_arguments_without_the_program(tmp_path, monkeypatch):
    from src.pipeline import run
    from src.pipeline.run_settings import INVOCATIONS_FILE

    monkeypatch.setattr(sys, "argv", ["/repo/src/search.py", "+task=sst2", "seed=3"])
    run._record_invocation(compose_config("search", ["+task=sst2", "hardware.kernels=torch", "seed=3"]), tmp_path)
    (invocation,) = json.loads((tmp_path / INVOCATIONS_FILE).read_text())["invocations"]
    assert invocation["argv"] == ["+task=sst2", "seed=3"] and "job_overrides" not in invocation


def test_a_sweep_job_in_the_folder_of_another_job_is_refused(monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    from src.pipeline import run

    overrides = []
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: SimpleNamespace(
        overrides=SimpleNamespace(task=list(overrides)))))
    monkeypatch.setattr(run, "_job_folders", {})
    overrides[:] = ["seed=1", "hardware.threads=1"]
    run._claim_job_folder(Path("/s/seed=1"))
    run._claim_job_folder(Path("/s/seed=1"))  # the same job again (a resume): its own folder
    overrides[:] = ["seed=1", "hardware.threads=2"]
    with pytest.raises(AutoAttendError, match=r"^this job \(seed=1 hardware.threads=2\) has the folder of an earlier "
                                              r"job of the sweep \(seed=1 hardware.threads=1\), /s/seed=1: "):
        run._claim_job_folder(Path("/s/seed=1"))


def _composition_error(message: str, cause: BaseException | None = None):
    from hydra.errors import ConfigCompositionException

    exc = ConfigCompositionException(message)
    exc.__cause__ = cause
    return exc


def test_a_config_error_is_one_line_with_its_cause_and_its_list_joined(monkeypatch):
    from omegaconf.errors import ConfigKeyError

    from src.pipeline import run

    monkeypatch.setattr(sys, "argv", ["x"])
    exc = _composition_error("Could not load 'task/nope'.\nAvailable options in 'task':\n\tagnews\n\tcora",
                             ConfigKeyError("Key 'x' is not in struct"))
    assert run.config_error_line(exc) == ("Could not load 'task/nope'. Available options in 'task': agnews, cora; "
                                          "Key 'x' is not in struct")
    exc = _composition_error("Could not load 'task/nope'.\nConfig search path:\n\tprovider=hydra, path=pkg://x")
    assert run.config_error_line(exc) == "Could not load 'task/nope'."


@pytest.mark.parametrize("argv, said", [
    (["+task=cora", "+task=sst2"], "+task given 2 times (+task=cora, +task=sst2): give one"),
    (["+experiment=cora_default", "+task=sst2"], "write task=<name>, without the +, to replace it)"),
    (["+task=cora"], "Multiple values for task"),
])
def test_a_task_given_twice_is_said_for_what_the_command_line_did(monkeypatch, argv, said):
    from src.pipeline import run

    monkeypatch.setattr(sys, "argv", ["x", *argv])
    line = run.config_error_line(_composition_error("Multiple values for task. To override a value use 'override"))
    assert said in line


def test_an_override_of_a_search_node_src_retrain_lacks_is_named_as_a_search_setting():
    from omegaconf.errors import ConfigAttributeError

    from src.pipeline import run

    absent = ConfigAttributeError("Key 'supernet' is not in struct")
    absent.full_key = "supernet"
    assert run._search_node_missing(_composition_error("Could not override 'supernet.dim'. To append", absent)) == \
        "supernet.dim"
    other = ConfigAttributeError("Key 'retrain' is not in struct")
    other.full_key = "retrain.seedz"
    assert run._search_node_missing(_composition_error("Could not override 'retrain.seedz'. To append", other)) is None


@pytest.mark.parametrize("message, said", [
    ("Could not override 'retrain.seedz'. To append to your config use +retrain.seedz=3",
     "error: retrain.seedz: no such setting (misspelt, or one of a task or option not chosen?); the command with "
     "--cfg job in place of this override lists the settings"),
    ("Could not override 'graph.hpo.space.wd'. To append to your config use +graph.hpo.space.wd=[0.1]",
     "error: graph.hpo.space.wd: not in the config yet; add it with +graph.hpo.space.wd=[0.1]"),
])
def test_hydras_advice_to_append_is_kept_only_for_a_setting_that_may_be_added(quiet_hydra_entry, capsys, message,
                                                                              said):
    import os

    def main():
        raise _composition_error(message)

    with pytest.raises(SystemExit) as exc:
        quiet_hydra_entry.hydra_entry(main)
    assert exc.value.code == 2 and capsys.readouterr().err == said + "\n"
    assert os.environ["HYDRA_FULL_ERROR"] == "1"  # Hydra raises its errors, for this line, instead of printing them


@pytest.mark.parametrize("finished, said", [(False, "none finished"), (True, "the others finished")])
def test_a_sweep_with_a_failed_job_ends_with_status_2_saying_whether_others_finished(quiet_hydra_entry, capsys,
                                                                                      finished, said):
    run = quiet_hydra_entry

    def main():
        run._failed_jobs.append(("seed=1", "bad"))
        if finished:
            run._finished_jobs.append("/s/seed=2")

    with pytest.raises(SystemExit) as exc:
        run.hydra_entry(main)
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"error: 1 job(s) of the sweep failed, each reported above; {said}\n"
    run._failed_jobs.clear()
    run._finished_jobs.clear()


def test_a_stop_some_library_code_swallowed_still_ends_the_process_as_one(quiet_hydra_entry, capsys):
    """A SIGTERM whose KeyboardInterrupt was caught while Hydra composed (the handler noted it) and
    no job ran: the process still ends with the interrupted line and 143, not status 0."""
    run = quiet_hydra_entry
    with pytest.raises(SystemExit) as exc:
        run.hydra_entry(lambda: run._outside_signals.append(signal.SIGTERM))
    assert exc.value.code == 143
    assert capsys.readouterr().err == "interrupted (SIGTERM) before the run started: nothing was run\n"


def test_a_file_where_the_run_folder_goes_is_one_line_naming_it(quiet_hydra_entry, capsys):
    def main():
        raise FileExistsError(17, "File exists", "/r/un")

    with pytest.raises(SystemExit) as exc:
        quiet_hydra_entry.hydra_entry(main)
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: cannot create the folder /r/un: File exists (a file stands ")


@pytest.fixture
def stop_outside(monkeypatch):
    """``_stopped_outside_a_job`` without touching this process's signal handlers; the sweep
    reports it writes are counted."""
    from src.pipeline import run

    reports = []
    monkeypatch.setattr(run.interrupt, "install", lambda handler: None)
    monkeypatch.setattr(run, "_report_sweeps", lambda: reports.append(1))
    monkeypatch.setattr(run, "_sweep_dirs", {})
    monkeypatch.setattr(run, "_finished_runs", [])
    return run, reports


@pytest.mark.parametrize("every_job_ended, said", [
    (True, "interrupted (SIGTERM) while the sweep's report was written: every job had ended; the jobs and the "
           "report are in /s"),
    (False, "interrupted (SIGTERM) between two jobs of the sweep: what finished is kept in /s; run the same command "
            "with hydra.sweep.dir=/s to resume"),
])
def test_a_stop_outside_a_sweeps_jobs_writes_its_report_and_says_where_it_stopped(stop_outside, capsys,
                                                                                  every_job_ended, said):
    run, reports = stop_outside
    run._sweep_dirs["/s"] = None
    with pytest.raises(SystemExit) as exc:
        run._stopped_outside_a_job(signal.SIGTERM, every_job_ended)
    assert exc.value.code == 143 and capsys.readouterr().err == said + "\n" and reports == [1]


def test_a_stop_after_runs_finished_names_the_last_ones_folder(stop_outside, capsys):
    run, reports = stop_outside
    run._finished_runs.extend(["/r/first", "/r/last"])
    with pytest.raises(SystemExit) as exc:
        run._stopped_outside_a_job(signal.SIGINT, False)
    assert exc.value.code == 130 and reports == []
    assert capsys.readouterr().err == "interrupted after the run finished: its results are in /r/last\n"


def test_the_sweep_report_is_given_the_failed_jobs(monkeypatch):
    import src.report
    from src.pipeline import run

    written = []
    monkeypatch.setattr(src.report, "write_sweep_report", lambda sweep_dir, failed: written.append((sweep_dir, failed)))
    monkeypatch.setattr(run, "_sweep_dirs", {"/s": None})
    monkeypatch.setattr(run, "_failed_jobs", [("seed=1", "bad")])
    run._report_sweeps()
    assert written == [("/s", [("seed=1", "bad")])]


def test_an_exit_with_a_message_is_said_and_ends_with_status_1(monkeypatch, capsys):
    from src.pipeline import run

    class Ended(Exception):
        pass

    def exit_after_the_run(status=0):
        raise Ended(status)

    monkeypatch.setattr(run, "exit_after_the_run", exit_after_the_run)
    monkeypatch.setattr(run, "hydra_entry", lambda main: main())
    with pytest.raises(Ended) as exc:
        run.run_and_exit(lambda: sys.exit("a message"))
    assert exc.value.args == (1,) and capsys.readouterr().err == "a message\n"
    with pytest.raises(Ended) as exc:
        run.run_and_exit(lambda: sys.exit(2))
    assert exc.value.args == (2,)


def test_a_graph_retrain_records_its_metric_as_a_graph_search_does(tmp_path, stand_ins, capsys):
    """``src.report`` reads a run's metric from summary.json (``accuracy`` where it has none): a PPI
    retrain, scored in micro-F1 (its own line says so), must record it as a PPI search does, and the
    settings it trained with (it recorded neither, so the report labelled its micro-F1 accuracy)."""
    from src.pipeline import run

    searched = run.run_search(_search_cfg(tmp_path / "s", "ppi", "graph.retrain.seeds=1", "graph.baselines=[]",
                                          "ranking.candidates=0"))
    assert searched["metric"] == "micro_f1"
    retrained = run.run_retrain(_retrain_cfg(tmp_path / "r", "ppi", "gcn", "graph.retrain.seeds=1"))
    assert "test micro-F1 " in capsys.readouterr().out
    assert retrained.get("metric") == "micro_f1" and retrained["retrain"]["hparams"] == {"hidden": 16}
    assert json.loads((tmp_path / "r" / "run" / "summary.json").read_text()) == retrained
