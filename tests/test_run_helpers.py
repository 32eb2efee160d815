"""The run wrapper's small helpers, checked without running a pipeline (mutation audit 2026-12-05):
the run-folder lock, the summary line, refusals in a sweep, the HPO's capped epochs, and the
retrain stage's line per seed on a resume."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from src.utils.errors import AutoAttendError, RunDirInUseError
from tests.conftest import compose_config


def test_a_held_run_dir_is_refused_to_a_second_holder_until_released(tmp_path, monkeypatch):
    """The lock is held as long as the run: a second hold of the folder (another open of the lock
    file, as another command's) is refused, naming the setting that picks another folder; once
    released, the folder can be held again."""
    from src.pipeline import run

    run_dir = tmp_path / "r"
    run._hold_run_dir(run_dir)
    try:
        assert (run_dir / run.RUN_LOCK_FILE).exists() and len(run._held_run_dirs) == 1
        with pytest.raises(RunDirInUseError, match=rf"^run dir {run_dir} is in use by another command still running: "
                                                   r"wait for it to end \(to resume the run\), or give another "
                                                   r"hydra.run.dir$"):
            run._hold_run_dir(run_dir)
        monkeypatch.setattr(run, "_in_multirun", lambda: True)
        with pytest.raises(RunDirInUseError, match="or give another hydra.sweep.dir$"):
            run._hold_run_dir(run_dir)
        assert len(run._held_run_dirs) == 1  # the refused holds keep nothing open
    finally:
        run._release_run_dirs()
    assert run._held_run_dirs == []
    run._hold_run_dir(run_dir)
    run._release_run_dirs()


def test_a_run_dir_that_cannot_be_written_is_one_error_line(tmp_path):
    from src.pipeline import run

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AutoAttendError, match=rf"^hydra.run.dir: cannot write in {blocker / 'r'} \("):
        run._hold_run_dir(blocker / "r")
    assert run._held_run_dirs == []


def _timer(totals, seconds, invocations, wall_seconds=None, computed=True):
    wall = sum(seconds.values()) if wall_seconds is None else wall_seconds
    return SimpleNamespace(totals=totals, seconds=seconds, invocations=invocations, wall_seconds=wall,
                           computed=computed)


def test_the_summary_line_names_lower_precision_and_the_time_of_every_invocation(tmp_path, capsys):
    from src.pipeline import run

    run._finish(tmp_path, "result", _timer({"data": 2.0, "retrain": 30.4}, {"data": 2.0, "retrain": 30.4}, 1), None)
    assert capsys.readouterr().out.splitlines() == [f"run dir: {tmp_path}", "summary: result | 32 s (data 2 s, retrain 30 s)"]
    run._finish(tmp_path, "result", _timer({"data": 4.0, "retrain": 60.0}, {"data": 2.0, "retrain": 10.0}, 2),
                "hardware.precision=bf16-mixed")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "summary: result | lower precision: hardware.precision=bf16-mixed | 64 s (data 4 s, retrain 60 s) "
        "over 2 invocations, this one 12 s")


def test_the_summary_line_says_when_an_invocation_only_re_read_finished_stages(tmp_path, capsys):
    """A re-run of a finished run said "over 2 invocations, this one 0 s": its stages' seconds (the
    data read, the results re-read), while the command took seconds. "This one" is the invocation's
    own wall time, and a re-run that trained and scored nothing says so."""
    from src.pipeline import run

    run._finish(tmp_path, "result", _timer({"data": 4.0, "retrain": 60.0}, {"data": 0.4, "retrain": 0.0}, 2,
                                           wall_seconds=7.2, computed=False), None)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "summary: result | 64 s (data 4 s, retrain 60 s) over 2 invocations, this one 7 s; every stage had "
        "finished before this invocation, which re-read them")
    run._finish(tmp_path, "result", _timer({"data": 4.0, "retrain": 60.0}, {"data": 2.0, "retrain": 10.0}, 2,
                                           wall_seconds=15.4), None)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "summary: result | 64 s (data 4 s, retrain 60 s) over 2 invocations, this one 15 s")
    # a run whose record of earlier invocations was lost (timing.json unreadable) says it too
    run._finish(tmp_path, "result", _timer({"data": 0.4}, {"data": 0.4}, 1, wall_seconds=5.0, computed=False), None)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "summary: result | 0 s (data 0 s) | this one 5 s; every stage had finished before this invocation, which "
        "re-read them")


def test_a_setting_this_job_does_not_read_is_refused_but_only_warned_about_in_a_sweep(monkeypatch, caplog):
    from src.pipeline import run

    monkeypatch.setattr(run, "_in_multirun", lambda: False)
    with pytest.raises(AutoAttendError, match="^x.y: not read$"):
        run._refuse_unless_sweep("x.y: not read", "may read it")
    monkeypatch.setattr(run, "_in_multirun", lambda: True)
    with caplog.at_level(logging.WARNING, logger="src"):
        run._refuse_unless_sweep("x.y: not read", "may read it")
    assert "x.y: not read (other jobs of the sweep may read it)" in caplog.text


@pytest.mark.parametrize("multirun, given, said", [
    (True, ["hydra.run.dir=/tmp/x"], "hydra.run.dir=/tmp/x is not used by a multirun (-m): its jobs are in "
                                     "hydra.sweep.dir, /s/weep (to resume this sweep: hydra.sweep.dir=/s/weep)"),
    (False, ["hydra.sweep.dir=/tmp/x"], "hydra.sweep.dir=/tmp/x is used only by a multirun (-m): this run is in "
                                        "hydra.run.dir, /r/un (to resume it: hydra.run.dir=/r/un)"),
    (True, ["hydra.sweep.dir=/tmp/x"], None),
    (False, ["hydra.run.dir=/tmp/x"], None),
])
def test_a_folder_setting_hydra_ignores_is_warned_about(monkeypatch, caplog, multirun, given, said):
    """``-m ... hydra.run.dir=D`` put the sweep in a new timestamped folder, and the same command
    typed again to resume started afresh in another, without a word (so did ``hydra.sweep.dir``
    without ``-m``)."""
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from src.pipeline import run

    hydra = SimpleNamespace(overrides=SimpleNamespace(hydra=["hydra.mode=MULTIRUN", *given]),
                            sweep=SimpleNamespace(dir="/s/weep"))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hydra))
    monkeypatch.setattr(run, "_hydra_initialized", lambda: True)
    monkeypatch.setattr(run, "_in_multirun", lambda: multirun)
    monkeypatch.setattr(run, "_folder_setting_warned", [])
    with caplog.at_level(logging.WARNING, logger="src"):
        run._warn_unused_folder_setting(Path("/r/un"))
        run._warn_unused_folder_setting(Path("/r/un2"))  # a sweep's next job: said once, not per job
    assert [r.getMessage() for r in caplog.records] == ([said] if said else [])


def test_an_hpo_trial_line_says_capped_only_above_the_cap():
    from src.pipeline.graph_stages import _as_trained

    cfg = compose_config("search", ["+task=cora", "graph.retrain.epoch_cap=250"])
    assert _as_trained(cfg, {"epochs": 250, "lr": 0.01}) == {"epochs": 250, "lr": 0.01}
    assert _as_trained(cfg, {"epochs": 251}) == {"epochs": "251 (capped at 250)"}
    assert _as_trained(cfg, {"lr": 0.01}) == {"lr": 0.01}
    uncapped = compose_config("search", ["+task=cora", "graph.retrain.epoch_cap=null"])
    assert _as_trained(uncapped, {"epochs": 9000}) == {"epochs": 9000}


def test_the_retrain_line_of_a_seed_says_whether_an_earlier_invocation_trained_it(tmp_path, monkeypatch, caplog):
    """One line a seed; a seed whose result an earlier invocation left says so."""
    from src.pipeline import stages

    class Stop(Exception):
        pass

    def train_child(cfg, arch, dm, out, seed, label, save_model=False, say_done=True):
        assert say_done is False  # the stage's own line reports a seed done before
        return {"val_acc": 0.5, "test_acc": 0.25, "step": 7 + seed}

    def seed_summary(*args):
        raise Stop

    monkeypatch.setattr(stages, "train_child", train_child)
    monkeypatch.setattr(stages, "seed_summary", seed_summary)
    (tmp_path / "retrain").mkdir()
    (tmp_path / "retrain" / "seed_0.json").write_text(json.dumps({"val_acc": 0.5}))
    caplog.set_level(logging.INFO, logger=stages.__name__)
    with pytest.raises(Stop):
        stages.retrain(compose_config("search", ["+task=sst2", "retrain.seeds=2"]), None, None, tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrain: seed")]
    assert lines == ["retrain: seed 0 -> val 0.5000 test 0.2500 (step 7; done before this invocation)",
                     "retrain: seed 1 -> val 0.5000 test 0.2500 (step 8)"]


def _search_lines(caplog, stages, cfg, out):
    from src.space import FunctionalSpace

    caplog.clear()
    stages.run_strategy(cfg, FunctionalSpace(3), lambda arch: 0.5, out, "a constant")
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("search: ")]


def test_an_aging_search_logs_every_100_candidates_and_at_its_end_and_says_when_it_resumes(tmp_path, caplog):
    """Aging evolution proposes one child at a time: its lines come every 100 candidates and at
    the budget (not one per child, and the last one not left out); a search resumed from its state
    says how many candidates were scored before, a fresh one does not."""
    from src.pipeline import stages

    caplog.set_level(logging.INFO, logger=stages.__name__)
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware.progress=false", "strategy=aging",
                                    "strategy.population=20", "strategy.budget=130"])
    lines = _search_lines(caplog, stages, cfg, tmp_path / "search")
    assert [line for line in lines if " scored, best " in line] == [
        "search: 20 / 130 scored, best 0.5000", "search: 100 / 130 scored, best 0.5000",
        "search: 130 / 130 scored, best 0.5000"]
    assert not [line for line in lines if "resuming" in line]
    lines = _search_lines(caplog, stages, cfg, tmp_path / "search")
    assert "search: resuming with 130 candidates already scored" in lines


def test_a_pending_kernel_build_is_seen_from_the_library_file(tmp_path, monkeypatch):
    """``build_pending``: no library, or one older than a source, means the first use compiles."""
    import os

    from src.models import cpu_kernels

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(cpu_kernels, "_loaded", False)
    monkeypatch.setattr(cpu_kernels, "_error", None)
    monkeypatch.setattr(cpu_kernels, "_backend", "auto")
    assert cpu_kernels.build_pending()
    name = cpu_kernels._extension_name()
    library = cpu_kernels._build_directory(name) / f"{name}.so"
    library.write_bytes(b"")
    newest = max(s.stat().st_mtime for s in cpu_kernels.SOURCES)
    os.utime(library, (newest + 10, newest + 10))
    assert not cpu_kernels.build_pending()
    os.utime(library, (newest - 10, newest - 10))
    assert cpu_kernels.build_pending()  # a source changed since the build
    monkeypatch.setattr(cpu_kernels, "_backend", "torch")
    assert not cpu_kernels.build_pending()
    monkeypatch.setattr(cpu_kernels, "_backend", "auto")
    monkeypatch.setattr(cpu_kernels, "_loaded", True)
    assert not cpu_kernels.build_pending()


@pytest.mark.parametrize("overrides, stage", [
    (["+task=sst2"], True),
    (["+task=sst2", "hardware.kernels=torch"], False),
    (["+task=sst2", "hardware.precision=bf16-mixed"], False),
    (["+task=cora"], True),
    (["+task=cora", "hardware.kernels=torch"], False),
])
def test_the_first_runs_kernel_build_is_a_stage_of_its_own(monkeypatch, overrides, stage):
    """The build (30-50 s) was counted in the summary's ``data`` stage; it is now ``kernels``, and
    only where the run would build them (on the CPU in float32, not built yet). A graph run's build
    was counted in its ``supernet`` stage: its propagation runs on the kernels too."""
    from src.models import cpu_kernels
    from src.pipeline import run
    from src.pipeline.config import Timer

    built = []
    monkeypatch.setattr(cpu_kernels, "build_pending", lambda: True)
    monkeypatch.setattr(cpu_kernels, "kernel_error", lambda: built.append(1))
    cfg = compose_config("search", overrides + ["hardware=cpu"])
    timer = Timer()
    run._build_kernels(cfg, timer)
    assert ("kernels" in timer.seconds) is stage and bool(built) is stage
    monkeypatch.setattr(cpu_kernels, "build_pending", lambda: False)
    later = Timer()
    run._build_kernels(cfg, later)
    assert "kernels" not in later.seconds


def test_a_finished_retrain_seed_is_read_back_not_trained_again(tmp_path, monkeypatch):
    from src.pipeline import stages
    from tests.conftest import compose_config

    saved = {"seed": 4, "val_acc": 0.5, "test_acc": 0.25, "step": 9, "history": []}
    (tmp_path / "seed_4.json").write_text(json.dumps(saved))
    monkeypatch.setattr(stages.pl, "seed_everything", lambda *a, **k: pytest.fail("trained again"))
    cfg = compose_config("search", ["+task=sst2"])
    for say_done in (True, False):
        assert stages.train_child(cfg, None, None, tmp_path, 4, "seed 4", say_done=say_done) == saved


def test_the_search_lines_carry_the_best_score_so_far(tmp_path, caplog):
    """The ``best`` of a search line is the running maximum, not the last candidate's score."""
    from src.pipeline import stages
    from src.space import FunctionalSpace

    caplog.set_level(logging.INFO, logger=stages.__name__)
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware.progress=false", "strategy=aging",
                                    "strategy.population=20", "strategy.budget=130"])
    scored = []

    def falling(arch):  # each candidate scores lower than the one before
        scored.append(arch)
        return 1.0 / len(scored)

    stages.run_strategy(cfg, FunctionalSpace(3), falling, tmp_path / "search", "a falling score")
    lines = [r.getMessage() for r in caplog.records if " scored, best " in r.getMessage()]
    assert lines == ["search: 20 / 130 scored, best 1.0000", "search: 100 / 130 scored, best 1.0000",
                     "search: 130 / 130 scored, best 1.0000"]


def test_a_seed_trained_in_this_invocation_is_not_called_done_before(tmp_path, monkeypatch, caplog):
    """As the real ``train_child``, the stand-in writes the seed's file: only a file there before the
    seed started makes its line say "done before this invocation"."""
    from src.pipeline import stages

    class Stop(Exception):
        pass

    def train_child(cfg, arch, dm, out, seed, label, save_model=False, say_done=True):
        (out / f"seed_{seed}.json").write_text("{}")
        return {"val_acc": 0.5, "test_acc": 0.25, "step": 3}

    monkeypatch.setattr(stages, "train_child", train_child)
    monkeypatch.setattr(stages, "seed_summary", lambda *args: (_ for _ in ()).throw(Stop()))
    caplog.set_level(logging.INFO, logger=stages.__name__)
    with pytest.raises(Stop):
        stages.retrain(compose_config("search", ["+task=sst2", "retrain.seeds=1"]), None, None, tmp_path)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrain: seed")] == [
        "retrain: seed 0 -> val 0.5000 test 0.2500 (step 3)"]


def test_the_stage_lines_say_the_sliding_windows():
    """``data.window`` was said only in ``run_settings.json``: the data line gives ``max_len`` alone."""
    from src.pipeline.stages import windows_said

    assert windows_said(compose_config("search", ["+task=sst2"])) == ""
    cfg = compose_config("search", ["+task=sst2", "data.window=64", "data.stride=16"])
    assert windows_said(cfg) == ", in windows of 64 tokens every 16"


def test_a_run_refused_after_its_kernel_build_records_no_invocation(tmp_path, monkeypatch):
    """A re-run refused by the data stage (other data than the run's) is "no work of the run": its
    time and invocation are not recorded. The kernel build before it, a stage of its own, recorded
    both (timing.json counted an invocation that invocations.json never had)."""
    from src.models import cpu_kernels
    from src.pipeline import run
    from src.pipeline.config import Timer

    monkeypatch.setattr(cpu_kernels, "build_pending", lambda: True)
    monkeypatch.setattr(cpu_kernels, "kernel_error", lambda: None)
    cfg = compose_config("search", ["+task=sst2", "hardware=cpu"])
    timer = Timer(tmp_path / "timing.json")
    with pytest.raises(AutoAttendError):
        with timer("data", refusable=True):
            run._build_kernels(cfg, timer)
            raise AutoAttendError("other data")
    assert not (tmp_path / "timing.json").exists()
    timer = Timer(tmp_path / "timing.json")  # one that goes on records the build with its data stage
    with timer("data", refusable=True):
        run._build_kernels(cfg, timer)
    recorded = json.loads((tmp_path / "timing.json").read_text())
    assert list(recorded["seconds"]) == ["kernels", "data"] and recorded["invocations"] == 1


def test_time_set_aside_in_a_stage_counts_for_the_other_stage_only(tmp_path):
    """The kernel build inside the data stage: its seconds go to ``kernels``, not to ``data`` too."""
    import time as time_

    from src.pipeline.config import Timer

    timer = Timer(tmp_path / "timing.json")
    with timer("data"):
        with timer.aside("kernels"):
            time_.sleep(0.3)
    assert timer.seconds["kernels"] >= 0.3 and timer.seconds["data"] < 0.1
    with timer("supernet"):  # the next stage starts with nothing set aside
        time_.sleep(0.2)
    assert timer.seconds["supernet"] >= 0.2


def test_missing_data_is_said_before_the_first_runs_kernel_build(tmp_path, monkeypatch):
    """The kernel build (30-50 s) comes once the data are there: a first run with a missing file
    waited for the build before it was told."""
    from src.models import cpu_kernels
    from src.pipeline import common, run
    from src.utils.errors import DataNotFoundError

    builds = []
    monkeypatch.setattr(cpu_kernels, "build_pending", lambda: True)
    monkeypatch.setattr(cpu_kernels, "kernel_error", lambda: builds.append(1))
    monkeypatch.setattr(common, "build_datamodule", lambda cfg: (_ for _ in ()).throw(DataNotFoundError("no files")))
    cfg = compose_config("search", ["+task=sst2", "hardware=cpu", f"paths.output_dir={tmp_path}"])
    with pytest.raises(DataNotFoundError, match="no files"):
        run.run_search(cfg)
    assert builds == []
