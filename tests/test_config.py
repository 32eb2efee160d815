"""Every config group composes and resolves; budgets and overrides land where expected."""

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF, compose_config

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("entry", ["search", "retrain"])
@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_resolves(entry, group, option):
    primary = OmegaConf.to_container(OmegaConf.load(CONF / f"{entry}.yaml"))
    in_defaults = any(isinstance(d, dict) and group in d for d in primary["defaults"])
    if group != "task" and not in_defaults:
        pytest.skip(f"{entry} does not use the {group} group")
    override = f"+task={option}" if group == "task" else f"{group}={option}"
    extra = [] if group == "task" else ["+task=sst5"]
    cfg = compose_config(entry, [override] + extra)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["task"]["name"] in options("task")


def test_paper_budget_is_the_protocol():
    cfg = compose_config("search", ["+task=sst5"])
    assert (cfg.space.num_layers, cfg.space.sharing, cfg.space.priors) == (24, "full", True)
    assert (cfg.supernet.dim, cfg.supernet.heads, cfg.supernet.archs_per_step, cfg.supernet.epochs) == (64, 8, 16, 10)
    assert (cfg.supernet.batch_size, cfg.supernet.lr, cfg.supernet.clip) == (128, 5e-4, 5.0)
    assert (cfg.strategy.population, cfg.strategy.rounds, cfg.strategy.parents) == (500, 5, 100)
    assert cfg.strategy.mutation_rate == 0.05
    assert (cfg.retrain.dim, cfg.retrain.seeds, cfg.retrain.epochs, cfg.retrain.clip) == (256, 5, 10, 1.0)
    assert cfg.data.train_level == "phrase" and cfg.data.max_len == 64


def test_budget_and_command_line_overrides():
    smoke = compose_config("search", ["+task=sst2", "budget=smoke"])
    assert smoke.space.num_layers < 24 and smoke.strategy.population < 500
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "space.sharing=none", "space.priors=false"])
    assert cfg.space.sharing == "none" and cfg.space.priors is False
    quick = compose_config("search", ["+task=sst2", "budget=quick"])
    assert quick.retrain.seeds >= 1


def test_data_dir_defaults_to_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOATTEND_DATA_DIR", str(tmp_path))
    cfg = compose_config("search", ["+task=sst2"])
    assert cfg.paths.data_dir == str(tmp_path)
    monkeypatch.delenv("AUTOATTEND_DATA_DIR")
    assert compose_config("search", ["+task=sst2"]).paths.data_dir == "./data"


def test_retrain_accepts_a_path_as_arch():
    cfg = compose_config("retrain", ["+task=sst2", "arch=/tmp/x/best_arch.yaml"])
    assert cfg.arch == "/tmp/x/best_arch.yaml"
    assert compose_config("retrain", ["+task=sst5", "arch=published_sst5"]).arch == "published_sst5"


def test_task_is_not_named_in_the_defaults():
    # `+task=...` only works if the defaults list does not name `task`
    for entry in ("search", "retrain"):
        defaults = OmegaConf.to_container(OmegaConf.load(Path(CONF) / f"{entry}.yaml"))["defaults"]
        assert not any(isinstance(d, dict) and "task" in d for d in defaults)


def test_the_timer_adds_up_the_stages_of_every_invocation(tmp_path, caplog):
    """A run directory's ``timing.json`` holds each stage's seconds over all its invocations; a
    stage ended by an exception (Ctrl-C) counts, and a damaged file restarts the count, with a warning."""
    import json as _json

    from src.pipeline.config import Timer

    path = tmp_path / Timer.FILE
    first = Timer(path)
    with first("data"):
        pass
    with pytest.raises(KeyboardInterrupt):
        with first("supernet"):
            raise KeyboardInterrupt
    assert set(first.totals) == {"data", "supernet"} and first.invocations == 1
    recorded = _json.loads(path.read_text())
    assert recorded == {"seconds": first.totals, "invocations": 1}
    recorded["seconds"] = {"data": 2.0, "supernet": 30.0}
    path.write_text(_json.dumps(recorded))
    second = Timer(path)
    assert second.invocations == 0 and second.totals == {}  # read when its first stage starts
    with second("supernet"):
        pass
    assert second.before == {"data": 2.0, "supernet": 30.0} and second.invocations_before == 1
    with second("search"):
        pass
    assert second.invocations == 2 and list(second.totals) == ["data", "supernet", "search"]
    assert second.totals["supernet"] == round(30.0 + second.seconds["supernet"], 1)
    assert _json.loads(path.read_text())["invocations"] == 2
    # a refusable stage (the data checked against the run's) ended by a user error leaves no trace
    from src.utils.errors import AutoAttendError

    refused = Timer(path)
    with pytest.raises(AutoAttendError):
        with refused("data", refusable=True):
            raise AutoAttendError("other data")
    assert refused.seconds == {} and _json.loads(path.read_text())["invocations"] == 2
    with pytest.raises(AutoAttendError):
        with refused("search"):  # any other stage counts, as an interrupted one does
            raise AutoAttendError("bad")
    assert _json.loads(path.read_text())["invocations"] == 3
    path.write_text("{not json")
    third = Timer(path)
    with caplog.at_level(logging.WARNING):  # the count restarts, and says so
        with third("data"):
            pass
    assert list(third.totals) == ["data"] and third.invocations == 1
    assert f"{path} is unreadable: the run's time is counted from this invocation on" in caplog.text


def test_the_timer_knows_whether_its_invocation_computed_anything_and_its_wall_time(tmp_path):
    """``note_computing`` (a fit, a graph stage's children, candidates scored) marks the invocation
    whose stage is running, not one outside a stage; ``wall_seconds`` counts from the invocation's
    start, given or the timer's creation."""
    import time as _time

    from src.pipeline.config import Timer, note_computing

    reread, computed = Timer(tmp_path / "a.json"), Timer(tmp_path / "b.json", started=_time.perf_counter() - 30)
    note_computing()  # outside any stage: nobody's
    with reread("data"):
        pass
    with reread("retrain"):
        pass
    with computed("supernet"):
        note_computing()
    note_computing()
    assert (reread.computed, computed.computed) == (False, True)
    assert 30 <= computed.wall_seconds < 60 and 0 <= reread.wall_seconds < 30


@pytest.mark.parametrize("entry, usage", [("search", "usage: python -m src.search +task=<name>"),
                                          ("retrain", "usage: python -m src.retrain +task=<name> arch=<architecture>")])
def test_help_says_how_to_run_an_entry_point(entry, usage):
    """``--help``: the usage line, that a task is required, the groups to choose from, examples."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", f"src.{entry}", "--help"], cwd=CONF.parent, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith(usage), proc.stdout[:500]
    assert "A task is required" in proc.stdout and "\ntask: agnews, amazon2" in proc.stdout
    assert "Examples:" in proc.stdout and "The options, with comments: conf/*.yaml" in proc.stdout
    # the groups listed are those the entry point reads: src.retrain refuses strategy=... and
    # supernet=... (the search's), so its --help does not offer them
    groups = proc.stdout.split("(group=option)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    listed = [line.split(":")[0] for line in groups]
    assert ("strategy" in listed and "supernet" in listed) == (entry == "search"), listed
    assert {"budget", "hardware", "retrain", "space", "task"} <= set(listed)
    assert "hardware: auto, cpu, gpu" in groups and "logger: csv, tensorboard" in groups


@pytest.mark.parametrize("args", [("src.retrain", "--help"), ("src.search", "+task=sst2", "--cfg", "job")])
def test_help_into_a_closed_pipe_stops_quietly(args):
    """``python -m src.retrain --help | head``: when the reader has gone before Hydra prints, the
    command ends with the status of a process SIGPIPE ended (141) and no BrokenPipeError traceback
    (it ended with one and status 1, as the table commands no longer do)."""
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-m", *args], cwd=CONF.parent, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        proc.stdout.close()  # before the interpreter has even imported Hydra
        err = proc.stderr.read()
        status = proc.wait(timeout=120)
    assert status == 141 and "Traceback" not in err and "BrokenPipeError" not in err, (status, err[-3000:])


BROKEN_OTHER_PIPE = """
import multiprocessing, sys
from src.pipeline import run

def main():
    print("some output")
    a, b = multiprocessing.Pipe()
    b.close()
    a.send(b"x")  # a pipe of the run's own (a worker's) broken: a crash, not the reader leaving

run.run_and_exit(main)
"""


def test_a_broken_pipe_that_is_not_the_output_is_a_crash(tmp_path):
    """Only the reader of standard output going away ends quietly with 141: a BrokenPipeError from
    another pipe (a worker process gone) is a crash, with its traceback and status 1 (it ended with
    status 141 and not a word, the output sent to /dev/null)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "crash.py"
    script.write_text(BROKEN_OTHER_PIPE)
    proc = subprocess.run([sys.executable, str(script)], cwd=CONF.parent, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(CONF.parent)})
    assert proc.returncode == 1 and "BrokenPipeError" in proc.stderr, (proc.returncode, proc.stderr[-3000:])
    assert proc.stdout == "some output\n"


def test_sweep_job_folders_leave_out_only_the_settings_a_resume_may_change():
    """A sweep job's folder is named by the overrides a resume may not change (so a re-run with a
    machine setting or the ranking analysis added finds its folders), for both entry points; the
    list is built from MAY_CHANGE and the composed config, so a new such key cannot be forgotten
    (the two config files carried a hand-kept copy of 20 keys)."""
    from hydra import compose, initialize_config_dir

    import src.pipeline.config  # noqa: F401  (registers the resolvers, as the entry points do)
    from src.pipeline.run_settings import may_change

    may = ["hardware.threads=1", "hardware=cpu", "paths.cache_dir=/tmp/c", "graph.retrain.workers=2",
           "task.label_names=[a,b]", "retrain.checkpoint_every_min=5"]
    search_only = ["strategy.score_workers=1", "ranking.candidates=24", "ranking.seeds=2", "supernet.arch_workers=1"]
    kept = ["seed=3", "retrain.seeds=2"]
    for entry in ("search", "retrain"):
        overrides = ["+task=sst2", *kept, *may, *(search_only if entry == "search" else [])]
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name=entry, overrides=overrides, return_hydra_config=True)
        assert cfg.hydra.job.override_dirname == "+task=sst2,retrain.seeds=2,seed=3", entry
        excluded = list(cfg.hydra.job.config.override_dirname.exclude_keys)
        assert excluded[0] == "hardware" and all(may_change(key) for key in excluded[1:]), entry
        assert {"hardware.kernels", "paths.output_dir", "retrain.checkpoint_every_min"} <= set(excluded)


def test_sweep_job_folder_names_stay_one_folder_within_the_name_limit():
    """A value with a path in it nested the job's folder (a/b/c), and a dozen overrides made a name
    longer than the file system allows (``File name too long``, a traceback after the first job)."""
    from src.pipeline.config import JOB_NAME_MAX, job_folder_name

    assert job_folder_name("+task=sst2,budget=smoke,seed=0") == "+task=sst2,budget=smoke,seed=0"  # as before
    assert job_folder_name("task.path=/data/x.csv,seed=1") == "task.path=_data_x.csv,seed=1"
    long = ",".join(f"supernet.key_{i}={i}" for i in range(20))
    names = {job_folder_name(long + ",seed=0"), job_folder_name(long + ",seed=1")}
    assert len(names) == 2 and all(len(n) == JOB_NAME_MAX and "/" not in n for n in names)
    for entry in ("search", "retrain"):
        subdir = OmegaConf.load(CONF / f"{entry}.yaml").hydra.sweep._get_node("subdir")._value()
        assert subdir == "${job_folder:${hydra.job.override_dirname},${hydra.job.num}}"
    assert job_folder_name("seed=1", 4) == "seed=1"  # no job number: a re-run of the sweep finds its folder
    assert job_folder_name("", 4) == "4"  # no overrides to name the job by


def test_a_timing_record_of_another_shape_is_unreadable_and_restarts_the_count(tmp_path, caplog):
    """``timing.json`` without its keys, or with seconds that are no mapping of numbers, is read as
    no record (the count restarts, with the warning), never a traceback."""
    from src.pipeline.config import Timer, read_timing

    path = tmp_path / Timer.FILE
    for text in ('{"invocations": 2}', '{"seconds": {"data": 1.0}}', '{"seconds": [1, 2], "invocations": 2}',
                 '{"seconds": {"data": "x"}, "invocations": 1}', "[]", "{not json"):
        path.write_text(text)
        assert read_timing(path) is None, text
        timer = Timer(path)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            with timer("data"):
                pass
        assert list(timer.totals) == ["data"] and timer.invocations == 1, text
        assert caplog.messages == [f"{path} is unreadable: the run's time is counted from this invocation on"], text
    fresh = Timer(tmp_path / "new" / Timer.FILE)  # a first invocation: nothing to say
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        with fresh("data"):
            pass
    assert caplog.messages == [] and fresh.invocations == 1
    path.write_text('{"seconds": {"data": 2, "search": 3.5}, "invocations": "2"}')
    assert read_timing(path) == ({"data": 2.0, "search": 3.5}, 2)


def test_stage_seconds_leave_out_their_asides_add_up_and_a_refusable_stage_counts_unless_refused(monkeypatch,
                                                                                                tmp_path):
    """On a fake clock: the time set aside inside a stage (every aside, not only the last) counts
    for the aside's stage only, a later stage is not charged for it, a stage run twice adds up; a
    refusable stage ended by something other than a user error (Ctrl-C) is recorded like any stage;
    once a stage has ended, ``note_computing`` marks no timer."""
    import json as _json
    import time as _time

    from src.pipeline.config import Timer, note_computing

    now = [100.0]
    monkeypatch.setattr(_time, "perf_counter", lambda: now[0])
    timer = Timer(None)
    with timer("data"):
        with timer.aside("build"):
            now[0] += 4
        with timer.aside("build"):
            now[0] += 3
        now[0] += 2
    assert timer.seconds == {"data": 2.0, "build": 7.0}
    with timer("supernet"):
        now[0] += 5
    with timer("supernet"):
        now[0] += 1
    assert timer.seconds == {"data": 2.0, "build": 7.0, "supernet": 6.0} and timer.wall_seconds == 15.0
    note_computing()
    assert Timer.current is None and not timer.computed
    path = tmp_path / Timer.FILE
    stopped = Timer(path)
    with pytest.raises(KeyboardInterrupt):
        with stopped("data", refusable=True):
            now[0] += 8
            raise KeyboardInterrupt
    assert stopped.seconds == {"data": 8.0}
    assert _json.loads(path.read_text()) == {"seconds": {"data": 8.0}, "invocations": 1}


def test_a_sweep_job_folder_name_is_cut_only_past_the_limit_and_its_digest_tells_paths_apart():
    """A name of exactly :data:`JOB_NAME_MAX` characters is kept as written; two long override lists
    that differ only in ``/`` against ``_`` (the same folder name once ``/`` is replaced) still get
    folders of their own: the digest is of the overrides as given."""
    from src.pipeline.config import JOB_NAME_MAX, job_folder_name

    exact = "seed=" + "1" * (JOB_NAME_MAX - 5)
    assert job_folder_name(exact) == exact
    assert len(job_folder_name(exact + "2")) == JOB_NAME_MAX and job_folder_name(exact + "2") != exact[:JOB_NAME_MAX]
    long = ",".join(f"supernet.key_{i}={i}" for i in range(10))
    slash, underscore = job_folder_name(long + ",task.path=/d/x.csv"), job_folder_name(long + ",task.path=_d_x.csv")
    assert slash != underscore and slash[:JOB_NAME_MAX - 11] == underscore[:JOB_NAME_MAX - 11]


def test_help_lists_the_config_groups_in_order_with_their_options():
    """The ``group: option, ...`` lines of ``--help`` (``${config_groups:...}``), groups and options sorted."""
    from src.pipeline.config import config_groups_help

    lines = config_groups_help("task", "hardware", "budget").splitlines()
    assert [line.split(":")[0] for line in lines] == ["budget", "hardware", "task"]
    assert lines[1] == "hardware: auto, cpu, gpu" and lines[2].startswith("task: agnews, amazon2")


def test_a_sweep_job_folder_name_of_non_ascii_values_stays_within_the_name_limit_in_bytes(tmp_path):
    """The file system's limit is 255 bytes: 90 CJK characters (270 bytes in UTF-8) were kept as
    written, under the 120-character limit, and the job failed with ``File name too long`` (as did a
    long name cut at 109 such characters). A name the file system takes is kept as it was named
    (a re-run of the sweep finds its folder); a cut one ends on a whole character."""
    from src.pipeline.config import job_folder_name

    assert job_folder_name("task.path=" + "評" * 40) == "task.path=" + "評" * 40  # 130 bytes: as before
    for overrides in ("task.path=" + "評" * 90, "task.path=_" + "評" * 120, "seed=1,task.path=_d_" + "ü" * 200):
        name = job_folder_name(overrides)
        assert len(name.encode("utf-8")) <= 255 and name.startswith(overrides[:10]), overrides
        (tmp_path / name).mkdir()
    assert job_folder_name("task.path=" + "評" * 90) == "task.path=" + "評" * 78 + "-" + \
        job_folder_name("task.path=" + "評" * 90)[-10:]
    assert job_folder_name("task.path=_" + "評" * 120).startswith("task.path=_" + "評" * 77 + "-")
    assert job_folder_name("task.path=" + "評" * 90) != job_folder_name("task.path=" + "評" * 91)
