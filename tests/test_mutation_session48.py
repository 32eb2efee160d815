"""Mutation round over session 48's source changes (``git diff ba0613d..57c8440 -- src conf``): each test pins a
changed line whose deliberate mutation (a condition flipped, a call dropped, a constant changed) no other test
caught. Each docstring names the mutation it kills. All in-process and fast but the last, which runs
``src.report`` under an ASCII locale."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import ROOT, write_finished_run


# ---- src/utils/io.py: atomic_target's errors on a full disk -----------------------------------------------------

def test_an_oserror_without_a_file_name_in_an_atomic_write_names_the_target(tmp_path):
    """A write's flush at close on a full disk raises an ENOSPC OSError without a file name, which
    ``machine_error`` leaves as a traceback; ``atomic_target`` re-raises it naming the target, with the same errno,
    and leaves no temporary file. Kills: the ``exc.filename is None`` branch dropped."""
    from src.utils.errors import machine_error
    from src.utils.io import atomic_target

    path = tmp_path / "seed_0.json"
    with pytest.raises(OSError) as caught:
        with atomic_target(path):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert str(machine_error(caught.value)).startswith(f"{path}: No space left on device; the disk is full")
    assert list(tmp_path.iterdir()) == []


def test_a_runtime_error_in_an_atomic_write_is_a_full_disk_only_when_the_disk_is_nearly_full(tmp_path, monkeypatch):
    """``torch.save`` on a full disk raises RuntimeError ("unexpected pos ..."): with under 1 MiB left it becomes an
    ENOSPC OSError naming the target; with room left it stays the RuntimeError it was. Kills: ``_nearly_full``
    always False (or its comparison flipped)."""
    from src.utils import io

    path = tmp_path / "model.pt"
    for free_blocks, full in ((10, True), (10 ** 6, False)):
        monkeypatch.setattr(io.os, "statvfs", lambda folder: SimpleNamespace(f_bavail=free_blocks, f_frsize=4096))
        with pytest.raises((OSError, RuntimeError)) as caught:
            with io.atomic_target(path):
                raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0")
        if full:
            assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
            assert caught.value.filename == str(path)
        else:
            assert type(caught.value) is RuntimeError and "unexpected pos" in str(caught.value)
        assert list(tmp_path.iterdir()) == []


# ---- src/predict.py: choose_models reads the seeds' records strictly ----------------------------------------------

@pytest.mark.parametrize("val_acc", ['"0.9"', "true"])
def test_predict_refuses_a_seed_record_with_a_quoted_or_boolean_score(tmp_path, val_acc):
    """``choose_models`` reads ``seed_<s>.json`` with ``read_seed_record`` (numbers as written), as ``src.evaluate``
    does: a hand-edited ``"val_acc": "0.9"`` passed ``float()`` and made that seed the chosen model. Kills:
    ``choose_models`` reading the records with a plain ``read_record`` (keys only) or ``json.loads``."""
    from src.predict import choose_models

    retrain = tmp_path / "retrain"
    for seed, val in ((0, "0.7"), (1, val_acc)):
        (retrain / f"seed_{seed}").mkdir(parents=True)
        (retrain / f"seed_{seed}" / "model.pt").write_bytes(b"")
        (retrain / f"seed_{seed}.json").write_text(f'{{"seed": {seed}, "step": 9, "val_acc": {val}, "test_acc": 0.5}}')
    with pytest.raises(AutoAttendError) as refused:
        choose_models(tmp_path)
    assert str(refused.value) == (f"{retrain / 'seed_1.json'}: unreadable (expected the seed's result: step, val_acc, "
                                  "test_acc); restore it, or delete it and re-run the run's command to train that "
                                  "seed again")


# ---- src/utils/logs.py: print_to_console ------------------------------------------------------------------------

def test_print_to_console_goes_quiet_once_the_reader_has_gone_and_raises_otherwise(tmp_path, monkeypatch):
    """The summary's print with standard output's reader gone (``| head``): no BrokenPipeError, and standard output
    is then ``/dev/null``; a BrokenPipeError while the reader is still there (another pipe) is raised. Kills:
    ``print_to_console`` always raising, or always swallowing."""
    from src.utils.logs import print_to_console

    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "w")
    try:
        monkeypatch.setattr(sys, "stdout", stream)
        print_to_console("run dir: x")  # no BrokenPipeError
        assert os.fstat(write).st_rdev == os.stat(os.devnull).st_rdev  # the descriptor now writes to /dev/null
    finally:
        monkeypatch.undo()
        stream.close()

    class BrokenElsewhere:
        """A stream whose writes fail with EPIPE while its descriptor (a plain file) has no reader gone."""

        def __init__(self, fd):
            self.fd = fd

        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return self.fd

    with open(tmp_path / "out.txt", "w") as plain:
        monkeypatch.setattr(sys, "stdout", BrokenElsewhere(plain.fileno()))
        with pytest.raises(BrokenPipeError):
            print_to_console("summary: x")


# ---- src/utils/parallel.py and src/pipeline/graph_stages.py: the workers' setting -------------------------------

@pytest.mark.parametrize("code", [errno.EAGAIN, errno.ENOMEM])
def test_workers_that_cannot_start_name_the_setting_to_lower(monkeypatch, code):
    """EAGAIN and ENOMEM alike (a process limit, memory) when the workers start: a WorkersFailedError telling to set
    the given setting to 1. Kills: ENOMEM dropped from the codes; the message not naming ``setting``."""
    import multiprocessing.context

    from src.utils.errors import WorkersFailedError
    from src.utils.parallel import process_map

    def refused(process_obj):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "_Popen", staticmethod(refused))
    with pytest.raises(WorkersFailedError) as caught:
        list(process_map(abs, [-1, -2], 2, setting="graph.retrain.workers"))
    assert str(caught.value) == (f"cannot start worker processes ({os.strerror(code)}: a limit on processes, or "
                                 "memory); run the same command with graph.retrain.workers=1 (no worker processes)")


def test_graph_children_name_graph_retrain_workers_to_process_map(monkeypatch, tmp_path):
    """``fit_children`` passes ``setting="graph.retrain.workers"``, so that a killed graph worker's line names the
    setting to lower, not "the number of workers". Kills: the ``setting=`` argument dropped."""
    from src.pipeline import graph_stages

    calls = []

    def fake_process_map(fn, items, workers, on_done=None, setting="the number of workers", ordered=True):
        calls.append(setting)
        yield from ()

    monkeypatch.setattr(graph_stages, "process_map", fake_process_map)
    monkeypatch.setattr(graph_stages, "note_computing", lambda: None)
    cfg = compose_config("search", ["+task=cora", "budget=smoke", "hardware=cpu"])
    assert list(graph_stages.fit_children(cfg, SimpleNamespace(), [(None, {}, 0, tmp_path, "seed_0")])) == []
    assert calls == ["graph.retrain.workers"]


# ---- src/pipeline/run.py: refusals before the run -----------------------------------------------------------------

def _hydra_overrides(monkeypatch, overrides: list[str]) -> None:
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: SimpleNamespace(
        overrides=SimpleNamespace(task=overrides))))


@pytest.mark.parametrize("override", ["~ranking", "~task.label_names", "~hydra.job.env_set.FOO", "seed=3"])
def test_deleting_an_optional_or_hydra_setting_is_accepted(monkeypatch, override):
    """``~ranking`` and ``~task.label_names`` (run.DELETABLE) and Hydra's own ``~hydra.*`` are not refused. Kills:
    ``ranking`` dropped from DELETABLE; the ``hydra.`` exemption dropped."""
    from src.pipeline.run import refuse_deleted_settings

    _hydra_overrides(monkeypatch, ["+task=sst2", override])
    refuse_deleted_settings()  # no error


def test_deleting_a_read_setting_is_refused_naming_it_and_what_may_be_deleted(monkeypatch):
    from src.pipeline.run import refuse_deleted_settings

    _hydra_overrides(monkeypatch, ["+task=sst2", "~supernet.dim"])
    with pytest.raises(AutoAttendError) as refused:
        refuse_deleted_settings()
    assert str(refused.value) == ("~supernet.dim: deletes supernet.dim, a setting the run reads; give it a value "
                                  "instead (supernet.dim=...; only task.label_names, ranking may be deleted)")


@pytest.mark.parametrize("value", ["false", "False", "null", "None"])
def test_hydra_job_chdir_false_or_null_and_output_subdir_null_are_accepted(value: str):
    """``hydra.job.chdir=false`` (Hydra's default, given explicitly) and ``hydra.output_subdir=null`` (the project's)
    change nothing: not refused; ``hydra.job.chdir=true`` is. Kills: any ``hydra.job.chdir`` given refused."""
    from src.pipeline.run import unfit_folder_setting

    assert unfit_folder_setting(["+task=sst2", f"hydra.job.chdir={value}"], {}) is None
    if value.lower() in ("null", "none"):
        assert unfit_folder_setting(["+task=sst2", f"hydra.output_subdir={value}"], {}) is None
    assert unfit_folder_setting(["+task=sst2", "hydra.job.chdir=true"], {}).startswith("hydra.job.chdir: the run "
                                                                                        "stays in the folder")


def test_a_value_error_from_hydra_before_any_job_is_one_line_but_one_in_a_job_is_a_crash(quiet_hydra_entry, capsys,
                                                                                        monkeypatch):
    """Hydra's own flags raising ValueError before any job (``-m`` with ``--cfg``): one ``error:`` line, status 2;
    the same error raised inside a job (``note_job_started``, as ``entry`` notes it) is a crash that keeps its
    traceback. Kills: ``len(_entered) > jobs_before`` replaced by False."""
    run = quiet_hydra_entry
    monkeypatch.setattr(run, "_entered", [])

    def flags():
        raise ValueError("--cfg cannot be used with --multirun\nsecond line")

    with pytest.raises(SystemExit) as exc:
        run.hydra_entry(flags)
    assert exc.value.code == 2
    assert capsys.readouterr().err == ("error: --cfg cannot be used with --multirun (ValueError from Hydra, before "
                                       "any run started)\n")

    def job():
        run.note_job_started()
        raise ValueError("a bug in the job")

    with pytest.raises(ValueError, match="a bug in the job"):
        run.hydra_entry(job)
    assert "error:" not in capsys.readouterr().err


# ---- src/pipeline/checks.py: unfit_folder ------------------------------------------------------------------------

def test_a_folder_name_too_long_is_said_by_the_checks_naming_the_setting(tmp_path):
    """``Path.is_symlink()`` raises ENAMETOOLONG on such a path: ``unfit_folder`` returns the system's reason
    instead, and ``check_paths`` refuses the setting by name (the entry point's machine_error otherwise said the
    path without the key). Kills: the ``except OSError`` of ``unfit_folder`` dropped."""
    from omegaconf import open_dict

    from src.pipeline.checks import check_paths, unfit_folder

    long = tmp_path / ("x" * 300) / "cache"
    assert unfit_folder(long) == os.strerror(errno.ENAMETOOLONG)
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu"])
    with open_dict(cfg):
        cfg.paths.cache_dir = str(long)
    with pytest.raises(AutoAttendError) as refused:
        check_paths(cfg)
    assert str(refused.value) == f"paths.cache_dir={long}: File name too long"


# ---- src/models/optim.py: remove_other_snapshots -----------------------------------------------------------------

def test_remove_other_snapshots_keeps_the_numerically_newest_and_removes_partial_copies(tmp_path):
    """The newest snapshot by step number (10 after 9, not by name: "10" < "9"), or ``keep``; every ``.partial``
    copy goes, other files stay. Kills: the snapshots sorted by name; ``.partial`` copies kept."""
    from src.models.optim import remove_other_snapshots

    names = ["adam_moments.9.bin", "adam_moments.10.bin", "adam_moments.11.bin.partial", "last.ckpt"]
    for name in names:
        (tmp_path / name).write_bytes(b"\0")
    removed = remove_other_snapshots(tmp_path)
    assert sorted(p.name for p in removed) == ["adam_moments.11.bin.partial", "adam_moments.9.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adam_moments.10.bin", "last.ckpt"]
    (tmp_path / "adam_moments.12.bin").write_bytes(b"\0")
    assert [p.name for p in remove_other_snapshots(tmp_path, keep="adam_moments.10.bin")] == ["adam_moments.12.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adam_moments.10.bin", "last.ckpt"]


# ---- src/space/architecture.py: Layer interns its names ----------------------------------------------------------

def test_a_layer_pickles_to_the_same_bytes_however_its_names_were_made():
    """``Layer.__post_init__`` interns its op names: a layer whose ``q_op`` and ``k_op`` are equal but separate
    strings (read from YAML) pickled to other bytes than the same layer sampled from the space's tuples (one string
    object, memoised once by pickle), so a seed's model.pt differed across invocations. Kills: the interning
    dropped."""
    from src.space import Layer

    shared = "gcn"
    sampled = Layer("add", 0, shared, 0, shared, 0, shared)
    read = Layer("".join(["a", "dd"]), 0, "".join(["g", "cn"]), 0, "".join(["gc", "n"]), 0, "".join(["g", "c", "n"]))
    assert read.q_op is read.k_op is read.v_op
    assert pickle.dumps(read) == pickle.dumps(sampled)


# ---- src/models/graph.py: derived() keeps one value for training and evaluation ----------------------------------

def test_what_is_derived_from_a_graph_is_made_once_for_evaluation_and_training():
    """``derived`` makes a value once, outside inference mode and autograd, and serves it to evaluation and training
    alike (a cache per mode doubled its memory). Kills: the key extended by ``torch.is_inference_mode_enabled()``
    again."""
    from src.models.graph import derived

    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    made = []

    def make():
        made.append(torch.is_inference_mode_enabled())
        return edge_index.flip(0).contiguous().float()

    with torch.inference_mode():
        first = derived(edge_index, ("probe", 3), make)
    again = derived(edge_index, ("probe", 3), make)
    assert again is first and made == [False]
    assert not first.is_inference() and not first.requires_grad


# ---- src/report.py: the CSV's ranking columns --------------------------------------------------------------------

def test_report_csv_leaves_the_spearman_cell_empty_where_there_is_no_correlation():
    """The ranking column's ``n/a (2)`` (fewer than 3 candidates: no correlation) is an empty ``ranking Spearman``
    cell beside ``ranking n`` 2, not the text ``n/a`` in a numeric column; a run without a ranking has both empty.
    Kills: ``.replace("n/a", "")`` dropped."""
    from src.report import RANKING_COLUMN, Table

    table = Table(["run", RANKING_COLUMN], [["a", "+0.77 (4)"], ["b", "n/a (2)"], ["c", ""]])
    assert table.csv() == "run,ranking Spearman,ranking n\na,+0.77,4\nb,,2\nc,,\n"


# ---- src/data/embeddings.py: values parsed as float64 ------------------------------------------------------------

def test_a_glove_value_beyond_float32_is_refused_without_an_overflow_warning(tmp_path):
    """``1e39`` is parsed as float64 and refused by the finiteness check, not cast to float32 first (numpy's
    "overflow encountered in cast" RuntimeWarning on the user's console). Kills: the parse in float32."""
    from src.data.embeddings import load_word_vectors

    path = tmp_path / "vectors.txt"
    path.write_text("movie 0.1 0.2 0.3\nfilm 0.4 1e39 0.6\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AutoAttendError, match=r"line 2: expected a word followed by 3 finite float32 values, "
                                                  r"found '1e39'$"):
            load_word_vectors(["<pad>", "<unk>", "movie", "film"], str(path))


# ---- src/utils/restart.py: use_private_tempdir -------------------------------------------------------------------

def test_the_private_temporary_folder_reaches_child_processes_and_replaces_a_killed_ones(monkeypatch):
    """``use_private_tempdir`` sets ``TMPDIR`` for the processes it starts (graph workers, compilers), removes the
    private folder a killed process left (its PID gone) and registers the removal of its own at exit. Kills:
    ``os.environ["TMPDIR"]`` not set; ``remove_stale_builds`` not called; the ``atexit`` registration dropped."""
    from src.utils import restart
    from src.utils.io import BUILD_PREFIX, machine_tag

    at_exit = []
    monkeypatch.setattr(restart.atexit, "register", lambda *args, **kwargs: at_exit.append((args, kwargs)))
    short = Path(tempfile.mkdtemp(dir="/tmp"))  # a test's tmp_path is too long for the AF_UNIX limit
    try:
        monkeypatch.setenv("TMPDIR", str(short))
        monkeypatch.setattr(tempfile, "tempdir", str(short))
        stale = short / f"{BUILD_PREFIX}99999999.{machine_tag()}-tmp-abc"  # no such PID: a killed process's
        (stale / "tmpmodule.py").parent.mkdir()
        (stale / "tmpmodule.py").write_text("")
        private = restart.use_private_tempdir()
        assert private is not None and os.environ["TMPDIR"] == str(private)
        assert not stale.exists() and [p.name for p in short.iterdir()] == [private.name]
        assert at_exit == [((shutil.rmtree, str(private)), {"ignore_errors": True})]
    finally:
        shutil.rmtree(short, ignore_errors=True)


# ---- src/report.py's entry point: UTF-8 mode under an ASCII locale -----------------------------------------------

def test_report_writes_a_csv_naming_non_ascii_run_folders_under_an_ascii_locale(tmp_path):
    """``python -m src.report`` restarts in Python's UTF-8 mode (``entry_point_utf8``): under ``LANG=C`` with the
    UTF-8 mode off, the run folder ``café`` reached it as surrogates, and ``--csv``'s UTF-8 write was a
    UnicodeEncodeError traceback. Kills: ``entry_point_utf8()`` dropped from src/report.py."""
    settings = {"seed": 0, "task.name": "cora", "task.family": "graph", "entry": "search", "graph.retrain.seeds": 2}
    write_finished_run(tmp_path / "runs" / "café", settings, test=0.8)
    out = tmp_path / "report.csv"
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    proc = subprocess.run([sys.executable, "-m", "src.report", str(tmp_path / "runs"), "--csv", str(out)], cwd=ROOT,
                          env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("café,search,cora,finished,")
    assert "café" in proc.stdout.decode("utf-8")
