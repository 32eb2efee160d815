"""Small pieces of :mod:`src.pipeline.common` and :mod:`src.pipeline.config` checked directly: what
identifies a run's data (``data.json``), the resumed ``metrics.csv``, the progress lines' wording and
timing, log lines above a terminal's bar, the code's git commit in the run record, the built-in
architectures named in errors and the run directory (mutation audit of 2026-12)."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import open_dict

from src.pipeline import common
from src.pipeline.common import (ResumableCSVLogger, _AboveTheBar, _duration, _KeptRowsWriter, _labels_digest,
                                 check_data_of_run, data_facts, progress_line_due)
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import ROOT


# ---- data.json: what identifies a run's data ---------------------------------------------------

class _Split:
    def __init__(self, labels):
        self.labels = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)


def _text_dm(words=("<pad>", "<unk>", "good", "bad"), train=(0, 1, 1), val=(1, 0), test=(0, 1)):
    return SimpleNamespace(num_classes=2, vocab=SimpleNamespace(to_list=lambda: list(words)),
                           train_set=_Split(train), val_set=_Split(val), test_set=_Split(test))


def test_text_data_facts_record_the_vocabulary_every_splits_size_and_every_splits_labels():
    """A text run's ``data.json``: the classes, the vocabulary's size and a digest of its words one a
    line (the format existing runs recorded: another formula would refuse every earlier run), the
    examples of train, val *and* test, and a digest that changes when any split's labels do."""
    facts = data_facts(_text_dm(), graph=False)
    assert {k: v for k, v in facts.items() if k != "labels_sha256"} == {
        "classes": 2, "vocabulary": 4,
        "vocabulary_sha256": hashlib.sha256("<pad>\n<unk>\ngood\nbad".encode()).hexdigest()[:16],
        "examples": {"train": 3, "val": 2, "test": 2}}
    assert len(facts["labels_sha256"]) == 16
    # words split otherwise are another vocabulary
    assert data_facts(_text_dm(words=("ab", "c")), False)["vocabulary_sha256"] != \
        data_facts(_text_dm(words=("a", "bc")), False)["vocabulary_sha256"]
    # one label edited in the test split alone: other data
    assert data_facts(_text_dm(test=(1, 1)), False)["labels_sha256"] != facts["labels_sha256"]
    assert data_facts(_text_dm(test=(0, 1, 1)), False)["examples"]["test"] == 3


def _graph(nodes, edges, y):
    return {"x": torch.zeros(nodes, 3), "edge_index": torch.zeros(2, edges, dtype=torch.long), "y": y}


def test_graph_data_facts_cover_every_evaluation_graph_and_graphs_read_without_a_whole_graph():
    """An inductive task (PPI: ``dm.graph`` is None) records its evaluation graphs alone, with no
    crash; a label edited in an evaluation graph (not only the first graph's) is other data."""
    labels = torch.arange(8) % 2
    batches = [_graph(8, 5, labels), _graph(6, 4, torch.zeros(6, dtype=torch.long))]
    dm = SimpleNamespace(num_classes=2, num_features=3, graph=None, eval_batches=batches, train_graphs=[1, 2, 3])
    facts = data_facts(dm, graph=True)
    assert {k: v for k, v in facts.items() if k != "labels_sha256"} == {
        "classes": 2, "features": 3, "train_graphs": 3, "nodes": [8, 6], "edges": [5, 4]}
    edited = [batches[0], _graph(6, 4, torch.tensor([0, 0, 0, 1, 0, 0]))]
    assert data_facts(SimpleNamespace(**{**vars(dm), "eval_batches": edited}), True)["labels_sha256"] != \
        facts["labels_sha256"]


def test_the_labels_digest_tells_shapes_apart_and_not_integer_or_float_widths():
    """The same values in another shape (a 0/1 label matrix of other width, labels split otherwise
    between graphs) are other labels; int32 or float64 tensors of the same values are the same
    labels as int64 / float32 ones (a reader that loads another dtype must not refuse the run)."""
    flat = torch.tensor([0, 1, 1, 0], dtype=torch.int64)
    digest = _labels_digest([flat])
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert _labels_digest([flat.view(2, 2)]) != digest
    assert _labels_digest([flat[:1], flat[1:]]) != _labels_digest([flat[:3], flat[3:]])
    assert _labels_digest([flat.to(torch.int32)]) == digest
    matrix = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert _labels_digest([matrix.to(torch.float64)]) == _labels_digest([matrix])
    assert _labels_digest([matrix.t().contiguous().t()]) == _labels_digest([matrix])


def test_other_data_name_the_recorded_and_the_current_value_and_a_graph_file_task_its_file(tmp_path):
    """``src.evaluate`` on other data says ``recorded -> now`` (as a resume refused on other data
    does), and for ``+task=graph_file`` asks for the run's data *file* at ``task.path``."""
    from src.pipeline.run_settings import check_run_data

    dm = SimpleNamespace(num_classes=2, num_features=3, graph=_graph(8, 5, torch.arange(8) % 2), eval_batches=[],
                         train_graphs=[])
    check_data_of_run(tmp_path, compose_config("search", ["+task=cora"]), dm, graph=True)  # no record: passes
    check_run_data(tmp_path, {**data_facts(dm, graph=True), "features": 5})
    cfg = compose_config("search", ["+task=graph_file", "task.path=/b/g.npz"])
    with pytest.raises(AutoAttendError) as err:
        check_data_of_run(tmp_path, cfg, dm, graph=True)
    assert str(err.value) == (f"{tmp_path}: the data at task.path=/b/g.npz are not the run's (features: 5 -> 3); "
                              "give the run's data file (task.path=...)")


# ---- metrics.csv of a resumed fit ---------------------------------------------------------------

def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_resumed_fit_keeps_the_rows_strictly_below_its_step_and_drops_rows_without_a_step(tmp_path, caplog):
    """Resumed at step 5, the rows of steps 4 and below stay and step 5 goes (the resumed fit logs it
    again; kept, it would be in the file twice); a row without a step cannot be placed and goes too
    (no traceback); a file whose every row fits its header is kept without a warning."""
    (tmp_path / "metrics.csv").write_text("step,train/loss_step\n4,0.5\n,0.3\n5,0.25\n")
    with caplog.at_level(logging.WARNING):
        _KeptRowsWriter(str(tmp_path), keep_below=5)
    assert _rows(tmp_path / "metrics.csv") == [{"step": "4", "train/loss_step": "0.5"}]
    assert "left out" not in caplog.text


def test_a_fresh_fit_starts_the_file_afresh_and_a_save_of_nothing_writes_nothing(tmp_path):
    """``keep_below=None`` (a fresh fit) deletes an earlier ``metrics.csv`` as Lightning does, with
    Lightning's warning; a save before anything was logged leaves no file behind."""
    (tmp_path / "metrics.csv").write_text("step,train/loss_step\n0,0.5\n")
    with pytest.warns(UserWarning, match="exists and is not empty"):
        writer = _KeptRowsWriter(str(tmp_path), keep_below=None)
    assert not (tmp_path / "metrics.csv").exists()
    writer.save()
    assert not (tmp_path / "metrics.csv").exists()


def test_the_resumable_logger_hands_its_step_to_the_writer(tmp_path):
    """``ResumableCSVLogger(keep_below=3)`` keeps the earlier fit's rows below step 3 in
    ``<root>/<name>/metrics.csv`` when its writer starts, and appends the resumed fit's after them."""
    folder = tmp_path / "supernet"
    folder.mkdir()
    (folder / "metrics.csv").write_text("step,train/loss_step\n0,0.75\n2,0.5\n3,0.25\n")
    logger = ResumableCSVLogger(str(tmp_path), name="supernet", version="", keep_below=3)
    logger.log_metrics({"train/loss_step": 0.125}, step=3)
    logger.save()
    assert [(row["step"], row["train/loss_step"]) for row in _rows(folder / "metrics.csv")] == [
        ("0", "0.75"), ("2", "0.5"), ("3", "0.125")]


# ---- progress lines -----------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, text", [
    (0, "0 min 00 s"), (14.6, "0 min 15 s"), (59.6, "1 min 00 s"), (605, "10 min 05 s"),
    (3599, "59 min 59 s"), (3600 + 5 * 60 + 20, "1 h 05 min"), (2 * 3600 + 42 * 60, "2 h 42 min"),
])
def test_durations_are_rounded_to_the_second_and_given_in_hours_and_minutes_from_an_hour(seconds, text):
    assert _duration(seconds) == text


@pytest.mark.parametrize("now, last_line, estimated, due", [
    (9.9, None, True, False), (10.0, None, True, True),  # the first with an estimate: after 10 s
    (59.9, None, False, False), (60.0, None, False, True),  # without one: after every_s
    (130.0, 70.1, True, False), (130.0, 70.0, False, True),  # then every every_s, to the second
])
def test_progress_lines_are_due_at_the_documented_moments(now, last_line, estimated, due):
    assert progress_line_due(now, 0.0, last_line, 60.0, estimated) is due


def test_lines_above_the_bar_are_whole_uncoloured_and_written_once_complete():
    """A stream's writes in pieces print as whole lines once their newline comes, without Rich's
    highlighting (which coloured the numbers of every log line in a terminal); ``write`` returns the
    characters taken, as a text stream's does."""
    from rich.console import Console

    out = io.StringIO()
    stream = _AboveTheBar(Console(file=out, force_terminal=True, color_system="standard", width=20))
    assert stream.writable() and stream.write("search: 6 / 12 ") == 15
    assert out.getvalue() == ""
    stream.write("scored, best 0.5000 among 1,234 candidates\nhpo: 1 / 2")
    stream.write(" trials\nhpo: 2 / 2 trials\n")
    assert out.getvalue() == ("search: 6 / 12 scored, best 0.5000 among 1,234 candidates\nhpo: 1 / 2 trials\n"
                              "hpo: 2 / 2 trials\n")


def test_shows_bars_needs_a_terminal_on_stdout_and_progress_on(monkeypatch):
    cfg = compose_config("search", ["+task=sst2", "hardware=cpu"])
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: True, raising=False)
    assert common.shows_bars(cfg)
    with open_dict(cfg):
        del cfg.hardware["progress"]
        assert common.shows_bars(cfg)  # a config without the key: on, as the default says
        cfg.hardware.progress = False
    assert not common.shows_bars(cfg)


# ---- the code's git commit ---------------------------------------------------------------------

@pytest.fixture
def fake_git(monkeypatch):
    """``subprocess.run`` answering ``source_commit``'s git calls from ``answers`` (a value or an
    exception per git subcommand); the calls are recorded in ``calls``."""
    state = SimpleNamespace(calls=[], answers={"--show-toplevel": str(ROOT), "HEAD": "a" * 40, "status": ""})

    def run(args, **kwargs):
        state.calls.append((args, kwargs))
        key = "status" if "status" in args else args[-1]
        answer = state.answers[key]
        if isinstance(answer, BaseException):
            raise answer
        return subprocess.CompletedProcess(args, 0, answer + "\n", "")

    common.source_commit.cache_clear()
    monkeypatch.setattr(subprocess, "run", run)
    yield state
    common.source_commit.cache_clear()


def test_the_commit_is_heads_and_says_when_tracked_files_changed(fake_git):
    assert common.source_commit() == "a" * 40
    assert common.source_commit() == "a" * 40 and len(fake_git.calls) == 3  # read once per process
    args = [call[0] for call in fake_git.calls]
    assert all(a[:3] == ["git", "-C", str(ROOT)] for a in args)
    assert args[2][3:] == ["status", "--porcelain", "--untracked-files=no"]  # untracked files are no change
    assert all(call[1]["env"]["GIT_OPTIONAL_LOCKS"] == "0" for call in fake_git.calls)  # takes no index lock
    common.source_commit.cache_clear()
    fake_git.answers["status"] = " M src/pipeline/common.py"
    assert common.source_commit() == "a" * 40 + "+changes"


@pytest.mark.parametrize("answers", [
    {"--show-toplevel": "/somewhere/else"},  # this code copied into another repository
    {"HEAD": ""},
    {"--show-toplevel": subprocess.CalledProcessError(128, "git")},  # not a git checkout
    {"--show-toplevel": FileNotFoundError("git")},  # no git
    {"HEAD": subprocess.TimeoutExpired("git", 10)},
])
def test_no_commit_outside_a_checkout_of_this_project(fake_git, answers):
    fake_git.answers.update(answers)
    assert common.source_commit() is None


# ---- config: built-in architectures, the run directory -----------------------------------------

def test_an_unknown_architecture_lists_every_built_in_by_name_in_order():
    from src.pipeline.config import ARCH_DIR, arch_file

    names = sorted(p.stem for p in ARCH_DIR.glob("*.yaml"))
    assert {"gat", "gcn", "published_sst5"} <= set(names)
    with pytest.raises(AutoAttendError) as err:
        arch_file("no_such_arch")
    assert str(err.value) == ("arch=no_such_arch: no such file and no built-in architecture of that name "
                              f"(built-ins: {', '.join(names)})")


def test_the_run_directory_is_hydras_job_folder_else_the_configs_output_dir():
    """Under Hydra the run directory is the job's ``runtime.output_dir`` (a sweep job's folder, not
    the sweep's ``run.dir``); called as a library function, ``paths.output_dir``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from src.pipeline.config import run_dir_of
    from tests.conftest import CONF

    hydra, saved = HydraConfig.instance(), HydraConfig.instance().cfg
    hydra.cfg = None
    try:
        cfg = compose_config("search", ["+task=sst2", "paths.output_dir=/o/out"])
        assert run_dir_of(cfg) == Path("/o/out")
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="search", overrides=["+task=sst2", "paths.output_dir=/o/out"],
                          return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.run.dir = "/o/sweep"
            cfg.hydra.runtime.output_dir = "/o/sweep/job_1"
        hydra.set_config(cfg)
        assert run_dir_of(cfg) == Path("/o/sweep/job_1")
    finally:
        hydra.cfg = saved



# ---- known bugs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["+task=graph_file task.path=g.npz", "+task=ppi"])
def test_a_task_protocol_given_as_a_value_is_one_error_line(task):
    """``task.protocol=ppi``, easily typed for ``task/protocol=ppi``, made the protocol a string and
    ``settings_task`` failed with an AttributeError traceback; the config check now names it."""
    from src.pipeline.checks import check_config

    cfg = compose_config("retrain", [*task.split(), "task.protocol=ppi", "arch=gcn"])
    with pytest.raises(AutoAttendError) as err:
        check_config(cfg, "retrain")
    assert str(err.value) == ("task.protocol=ppi: a protocol is chosen as a config group, task/protocol=<name> "
                              "(one of planetoid, ppi), not set as a value")


def test_other_data_of_a_csv_task_under_its_own_name_name_task_path(tmp_path):
    """A ``+task=csv`` run under a name of its own (``task.name=reviews``) reads ``task.path``: it was
    told to give ``paths.data_dir``, which it never reads (the task was recognised by its name)."""
    from src.pipeline.run_settings import check_run_data

    check_run_data(tmp_path, {**data_facts(_text_dm(), graph=False), "classes": 5})
    cfg = compose_config("search", ["+task=csv", "task.name=reviews", "task.num_classes=2", "task.path=/b/mine",
                                    "paths.data_dir=/b"])
    with pytest.raises(AutoAttendError) as err:
        check_data_of_run(tmp_path, cfg, _text_dm(), graph=False)
    assert str(err.value).startswith(f"{tmp_path}: the data at task.path=/b/mine are not the run's"), str(err.value)
    assert str(err.value).endswith("; give the run's data folder (task.path=...)")


@pytest.mark.parametrize("overrides, own", [
    (["+task=csv"], "csv"), (["+task=csv", "task.name=reviews"], "csv"),
    (["+task=graph_file"], "graph_file"), (["+task=graph_file", "task.name=my_graph"], "graph_file"),
    (["+task=agnews"], None), (["+task=yelp5"], None), (["+task=sst2"], None), (["+task=cora"], None)])
def test_a_task_of_ones_own_data_is_known_by_its_datamodule_under_any_name(overrides, own):
    """Which tasks read data of one's own at ``task.path`` (``OWN_DATA_TASKS``): ``+task=csv`` and
    ``+task=graph_file`` under their names or one of the user's; not the benchmarks, nor csv.yaml's
    presets, whose data are under ``paths.data_dir``."""
    from src.pipeline.run_settings import own_data_task

    assert own_data_task(compose_config("search", overrides).task) == own
