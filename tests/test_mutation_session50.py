"""Mutation round over session 50's source changes (``git diff 334d556..7460061 -- src``: the resource limits said in
one line, process_map(ordered=False) waiting for the items running beside a failure, ``resource`` imported with its
modules, one branch for refused workers): each test pins a changed line whose deliberate mutation (a condition
flipped, a call dropped, a constant changed) no other test caught. Each docstring names the mutation it kills. All
in-process and fast: the limits are stand-ins (``resource.getrlimit``, ``os.statvfs``), not set on this process."""

from __future__ import annotations

import errno
import os
import resource
import signal
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.utils.errors import AutoAttendError, WorkersFailedError


def _limit_of(monkeypatch, which: int, soft: int, hard: int | None = None) -> None:
    """``resource.getrlimit(which)`` answers ``(soft, hard)`` (``hard``: ``soft`` when not given); the other limits are
    the process's."""
    real = resource.getrlimit
    values = (soft, soft if hard is None else hard)
    monkeypatch.setattr(resource, "getrlimit", lambda asked: values if asked == which else real(asked))


# ---- src/pipeline/checks.py: the open-files limit for data-loader workers ----------------------------------------

class _OpenFiles:
    """``RLIMIT_NOFILE`` as a stand-in: ``getrlimit`` answers ``(soft, hard)``; ``setrlimit`` records what it is asked
    and refuses as the kernel does (a soft limit above the hard one: ValueError) or with ``refuse``."""

    def __init__(self, monkeypatch, soft: int, hard: int, refuse: BaseException | None = None):
        self.soft, self.hard, self.refuse, self.asked = soft, hard, refuse, []
        real_get, real_set = resource.getrlimit, resource.setrlimit

        def getrlimit(which):
            return (self.soft, self.hard) if which == resource.RLIMIT_NOFILE else real_get(which)

        def setrlimit(which, values):
            if which != resource.RLIMIT_NOFILE:
                return real_set(which, values)
            self.asked.append(values)
            if self.refuse is not None:
                raise self.refuse
            if values[1] != resource.RLIM_INFINITY and values[0] > values[1]:
                raise ValueError("not allowed to raise maximum limit")
            self.soft = values[0]

        monkeypatch.setattr(resource, "getrlimit", getrlimit)
        monkeypatch.setattr(resource, "setrlimit", setrlimit)


def test_a_low_open_files_limit_is_raised_to_what_the_workers_need_and_no_further(monkeypatch):
    """Two workers need 64 + 32 * 2 = 128 descriptors: a soft limit of 20 under an unlimited or a higher hard one is
    raised to 128 (not to the hard one) and the check passes; an unlimited soft limit is left alone (never lowered).
    Kills: ``need`` without its 64; ``raised`` the hard limit where it is unlimited (RLIM_INFINITY is -1: nothing
    raised, then refused); ``max(hard, need)`` for ``min``; ``soft = raised`` dropped; ``soft <= need`` refusing at the
    need itself; ``raised < soft``; the ``soft == RLIM_INFINITY`` test dropped (an unlimited soft limit lowered)."""
    from src.pipeline.checks import check_open_files_for_workers

    for hard in (resource.RLIM_INFINITY, 1000):
        limits = _OpenFiles(monkeypatch, 20, hard)
        check_open_files_for_workers(2)
        assert limits.asked == [(128, hard)] and limits.soft == 128
    limits = _OpenFiles(monkeypatch, resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    check_open_files_for_workers(2)
    assert limits.asked == []


def test_an_open_files_limit_that_cannot_be_raised_far_enough_is_one_line_naming_the_limit_reached(monkeypatch):
    """A hard limit of 50 under the 128 two workers need: the soft limit is raised to 50, and the refusal names 50;
    a raise the system refuses (EPERM) is the same refusal naming the limit as it was, not an OSError. Kills:
    ``max(hard, need)`` for ``min`` (refused, the line naming 20); ``except (ValueError, OSError)`` narrowed to
    ValueError."""
    from src.pipeline.checks import check_open_files_for_workers

    limits = _OpenFiles(monkeypatch, 20, 50)
    with pytest.raises(AutoAttendError) as refused:
        check_open_files_for_workers(2)
    assert limits.asked == [(50, 50)]
    assert str(refused.value) == (
        "hardware.num_workers=2: the data-loader workers pass each batch through a file descriptor, and the "
        "open-files limit (ulimit -n) is 50, below the 128 they need: raise it (ulimit -n 1024) or set "
        "hardware.num_workers=0")
    _OpenFiles(monkeypatch, 20, resource.RLIM_INFINITY, refuse=PermissionError(errno.EPERM, "Operation not permitted"))
    with pytest.raises(AutoAttendError, match=r"\(ulimit -n\) is 20, below the 128 they need"):
        check_open_files_for_workers(2)


def test_the_hardware_check_looks_at_the_open_files_limit_for_any_worker_process(monkeypatch):
    """``hardware.num_workers`` of 1 or more has the open-files limit checked with that count; 0 (no worker
    processes) does not. Kills: ``workers > 0`` made ``workers > 1``; the ``check_open_files_for_workers`` call
    dropped."""
    from src.pipeline import checks

    checked = []
    monkeypatch.setattr(checks, "check_open_files_for_workers", checked.append)
    for workers in (0, 1, 3):
        checks.check_hardware(OmegaConf.create({"hardware": {"num_workers": workers}}))
    assert checked == [1, 3]


# ---- src/pipeline/common.py: a text loader's workers check /dev/shm ---------------------------------------------

def test_a_loader_with_worker_processes_checks_shared_memory_naming_num_workers_0(monkeypatch):
    """``make_loader`` with one worker process or more checks ``/dev/shm`` first, naming ``hardware.num_workers=0``
    as the way to run without them; without workers nothing is checked. Kills: ``num_workers > 0`` made
    ``num_workers > 1``; the setting named changed."""
    import torch

    from src.pipeline import common

    checked = []
    monkeypatch.setattr(common, "check_shared_memory", checked.append)
    data = [(torch.tensor([1, 2]), 0), (torch.tensor([3]), 1)]
    for workers in (0, 1):
        assert common.make_loader(data, 2, False, 0, num_workers=workers).num_workers == workers
    assert checked == ["hardware.num_workers=0"]


# ---- src/pipeline/stages.py: the retrain protocol's train_level --------------------------------------------------

def test_the_retrain_protocol_records_the_datamodules_train_level_over_the_configs(tmp_path, monkeypatch):
    """A DataModule that says its ``train_level`` (a phrase-level one under ``data.train_level=sentence``) has that
    recorded in the retrain's protocol. Kills: ``getattr(dm, "train_level", ...)`` replaced by the config's value."""
    from src.pipeline import stages
    from src.space import Architecture
    from tests.conftest import compose_config
    from tests.test_text_stages import SST5, _dm

    def train_child(cfg, arch, dm, out, seed, label, save_model=False, say_done=True):
        return {"seed": seed, "val_acc": 0.5, "test_acc": 0.5, "step": 2, "history": []}

    monkeypatch.setattr(stages, "train_child", train_child)
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "retrain.seeds=1"])
    assert cfg.data.train_level == "sentence"
    dm = _dm()
    dm.train_level = "phrase"
    assert stages.retrain(cfg, Architecture.load(SST5), dm, tmp_path)["protocol"]["train_level"] == "phrase"


# ---- src/utils/errors.py: EFBIG, refused workers -----------------------------------------------------------------

def test_a_write_past_the_file_size_limit_is_a_machine_refusal_naming_the_file_and_ulimit_f():
    """EFBIG about a named file is one line naming it and the file-size limit. Kills: the EFBIG entry of
    ``_MACHINE_ERRORS`` dropped or keyed on another errno."""
    from src.utils.errors import machine_error

    said = machine_error(OSError(errno.EFBIG, "File too large", "/cache/sst2-abc.pt"))
    assert str(said) == ("/cache/sst2-abc.pt: File too large; the file would pass the process's file-size limit "
                         "(ulimit -f, a batch system's): raise it (ulimit -f unlimited) and run the same command to "
                         "resume")


def test_workers_refused_is_a_refused_thread_or_a_forks_eagain_and_found_behind_the_clean_ups_error():
    """Python's ``can't start new thread`` and a fork's EAGAIN (no file name) are refused workers, each alone, also
    behind the follow-on error of the clean-up (``cannot join thread before it is started``); the follow-on error
    alone, or an EAGAIN about a named file (a non-blocking read), is not. Kills: the thread case dropped; EAGAIN
    taken for ENOMEM; the file-name test dropped; ``not (thread and fork)``; ``workers_refused`` dropped from
    ``user_error_behind``."""
    from src.utils.errors import user_error_behind, workers_refused

    for refused in (RuntimeError("can't start new thread"),
                    BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")):
        said = workers_refused(refused)
        assert isinstance(said, WorkersFailedError)
        assert "hardware.num_workers=0 and graph.retrain.workers=1" in str(said), str(said)
    for other in (RuntimeError("cannot join thread before it is started"),
                  BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable", "/data/a-fifo")):
        assert workers_refused(other) is None
    try:
        try:
            raise RuntimeError("can't start new thread")
        finally:
            raise RuntimeError("cannot join thread before it is started")
    except RuntimeError as exc:
        follow_on = exc
    assert isinstance(user_error_behind(follow_on), WorkersFailedError)


# ---- src/utils/io.py: a write at the file-size limit --------------------------------------------------------------

def test_a_runtime_error_in_an_atomic_write_at_the_file_size_limit_is_efbig_naming_the_target(tmp_path, monkeypatch):
    """torch.save's RuntimeError (``unexpected pos``) with the temporary within a page of the file-size limit is an
    OSError EFBIG naming the target, the temporary removed; a page or more below the limit, or a ValueError, comes
    as it was. Kills: ``too_large`` dropped or not raised; ENOSPC and EFBIG swapped; ``!= RLIM_INFINITY`` flipped;
    the page of slack dropped; the size read after the temporary is removed; ``too_large`` for any Exception."""
    from src.utils import io

    _limit_of(monkeypatch, resource.RLIMIT_FSIZE, 10_000)
    monkeypatch.setattr(io, "_nearly_full", lambda folder: False)
    target = tmp_path / "model.pt"
    with pytest.raises(OSError) as refused:
        with io.atomic_target(target) as tmp:
            tmp.write_bytes(b"x" * 6_000)  # 10 000 - 4 096 <= 6 000: within a page of the limit
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6000 vs 5000")
    assert refused.value.errno == errno.EFBIG and refused.value.filename == str(target)
    assert isinstance(refused.value.__cause__, RuntimeError)
    assert list(tmp_path.iterdir()) == []
    for size, error in ((5_000, RuntimeError), (9_000, ValueError)):
        with pytest.raises(error, match="^as it came$"):
            with io.atomic_target(target) as tmp:
                tmp.write_bytes(b"x" * size)
                raise error("as it came")
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_read_is_not_at_the_file_size_limit(tmp_path, monkeypatch):
    """A missing file is not at the limit (``except OSError`` answers False). Kills: the ``except OSError`` answering
    True."""
    from src.utils.io import _at_file_size_limit

    _limit_of(monkeypatch, resource.RLIMIT_FSIZE, 10_000)
    assert _at_file_size_limit(tmp_path / "missing") is False


# ---- src/pipeline/run.py: a crash under an address-space limit --------------------------------------------------

def test_the_address_space_line_names_the_soft_limit_in_gib_and_the_errors_first_line(monkeypatch):
    """Under a soft limit of 1.5 GiB (the hard one unlimited) the line names 1.5 GiB and the crash's first line, cut
    at 200 characters; without a soft limit there is none. Kills: ``== RLIM_INFINITY`` flipped; the hard limit read
    for the soft one; GiB computed as MiB; the whole message, or more than 200 characters of it, kept."""
    from src.pipeline.run import address_space_error

    _limit_of(monkeypatch, resource.RLIMIT_AS, 3 * 2**29, resource.RLIM_INFINITY)
    said = address_space_error(ImportError("x" * 300 + "\nfailed to map segment from shared object"))
    assert str(said) == (f"the run failed under an address-space limit of 1.5 GiB (ulimit -v), most likely out of "
                         f"memory there (ImportError: {'x' * 200}; a traceback in the run's log): raise it (ulimit -v "
                         f"unlimited) and run the same command to resume")
    _limit_of(monkeypatch, resource.RLIMIT_AS, resource.RLIM_INFINITY)
    assert address_space_error(MemoryError()) is None


def test_an_address_space_limit_under_a_gib_is_named_in_mib(monkeypatch):
    """A soft limit of 600 MiB (where imports themselves begin to fail) is named "600.0 MiB", not rounded to a GiB
    figure ("0.6 GiB"; 40 MiB read "0.0 GiB")."""
    from src.pipeline.run import address_space_error

    _limit_of(monkeypatch, resource.RLIMIT_AS, 600 * 2**20, resource.RLIM_INFINITY)
    assert "an address-space limit of 600.0 MiB (ulimit -v)" in str(address_space_error(MemoryError()))


def test_a_crash_in_a_job_under_an_address_space_limit_is_one_error_line_and_status_2(tmp_path, monkeypatch, capsys):
    """``entry``: a crash (oneDNN's RuntimeError) under ``ulimit -v`` is the one ``error:`` line saying so, status 2.
    Kills: ``error = address_space_error(exc)`` dropped from ``entry``."""
    from src.pipeline.run import entry

    _limit_of(monkeypatch, resource.RLIMIT_AS, 2**30)

    def job(cfg):
        raise RuntimeError("could not create a primitive")

    with pytest.raises(SystemExit) as ended:
        entry(job, OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}))
    assert ended.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "error: the run failed under an address-space limit of 1.0 GiB (ulimit -v), most likely out of memory there "
        "(RuntimeError: could not create a primitive;")


class _Ended(Exception):
    """``exit_after_the_run`` (or ``os._exit``) called: ``args[0]`` the status."""


def _run_and_exit(monkeypatch, raised: BaseException) -> int:
    """``run_and_exit`` over a main that raises ``raised``: the status it ends with."""
    from src.pipeline import run

    def exit_after_the_run(status=0):
        raise _Ended(status)

    def main():
        raise raised

    monkeypatch.setattr(run, "exit_after_the_run", exit_after_the_run)
    monkeypatch.setattr(run, "hydra_entry", lambda main: main())
    with pytest.raises(_Ended) as ended:
        run.run_and_exit(main)
    return ended.value.args[0]


def test_a_crash_outside_a_job_under_an_address_space_limit_is_one_error_line_and_status_2(monkeypatch, capsys):
    """``run_and_exit``: an Exception under ``ulimit -v`` is the ``error:`` line and status 2; a BaseException that is
    no Exception (a KeyboardInterrupt come this far) keeps its traceback and status 1, and so does a crash where
    the line itself cannot be made (MemoryError); with no limit, a crash is a traceback and status 1. Kills: the
    ``address_space_error`` call dropped; its ``isinstance(exc, Exception)`` test dropped; ``except Exception``
    narrowed; status 1 for the line; ``== RLIM_INFINITY`` flipped."""
    from src.pipeline import run

    _limit_of(monkeypatch, resource.RLIMIT_AS, 2**30)
    assert _run_and_exit(monkeypatch, RuntimeError("could not create a primitive")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the run failed under an address-space limit of 1.0 GiB") and "Traceback" not in err
    assert _run_and_exit(monkeypatch, KeyboardInterrupt()) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "KeyboardInterrupt"

    def short_of_memory(exc):
        raise MemoryError

    monkeypatch.setattr(run, "address_space_error", short_of_memory)
    assert _run_and_exit(monkeypatch, RuntimeError("a bug")) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "RuntimeError: a bug"
    monkeypatch.undo()
    _limit_of(monkeypatch, resource.RLIMIT_AS, resource.RLIM_INFINITY)
    assert _run_and_exit(monkeypatch, RuntimeError("a bug")) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "RuntimeError: a bug"


# ---- src/pipeline/run.py and src/utils/interrupt.py: SIGXCPU and its repeats --------------------------------------

XCPU_NAMED = " (SIGXCPU: the CPU-time limit, ulimit -t, was reached)"


def test_a_repeated_sigxcpu_in_a_job_is_one_stop_held_until_the_checkpoint_is_written(tmp_path, capsys):
    """The kernel sends SIGXCPU again every CPU second: in ``entry``, a repeat while a checkpoint holds the stop is
    not a second stop (which cuts the hold short); the stop is raised at the release, said naming the CPU-time
    limit, status 152. Kills: the ``interrupt.repeats`` test dropped from ``entry``'s handler; ``_named_signal``
    back to naming SIGTERM alone."""
    from src.pipeline.run import entry
    from src.utils import interrupt

    went_on = []

    def job(cfg):
        interrupt.hold()
        try:
            signal.raise_signal(signal.SIGXCPU)
            signal.raise_signal(signal.SIGXCPU)  # the repeat
            went_on.append(True)
        finally:
            interrupt.release()

    with pytest.raises(SystemExit) as ended:
        entry(job, OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}))
    assert went_on == [True] and ended.value.code == 128 + signal.SIGXCPU
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted{XCPU_NAMED}: what finished is kept in {tmp_path}; run the same command with "
        f"hydra.run.dir={tmp_path} to resume")


def test_a_repeated_sigxcpu_outside_a_job_is_not_a_second_stop(quiet_hydra_entry, monkeypatch, capsys):
    """In ``hydra_entry`` (no job's handler yet), a SIGXCPU whose KeyboardInterrupt library code swallowed, then its
    repeat: the repeat raises nothing where it lands; the stop ends the process once ``main`` returns, status 152.
    Kills: the ``interrupt.repeats`` test dropped from ``hydra_entry``'s handler."""
    monkeypatch.setattr(quiet_hydra_entry, "_outside_signals", [])  # the stop recorded there: not left to later tests
    went_on = []

    def main():
        try:
            signal.raise_signal(signal.SIGXCPU)
        except KeyboardInterrupt:  # swallowed, as while Hydra composes the config
            pass
        signal.raise_signal(signal.SIGXCPU)  # the repeat
        went_on.append(True)

    with pytest.raises(SystemExit) as ended:
        quiet_hydra_entry.hydra_entry(main)
    assert went_on == [True] and ended.value.code == 128 + signal.SIGXCPU
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"interrupted{XCPU_NAMED}")


def test_a_stop_while_the_process_exits_after_a_cpu_time_stop_says_the_run_was_stopped(monkeypatch, capsys):
    """``exit_after_the_run(152)`` (the run stopped by SIGXCPU): a SIGTERM during the exit says the run was stopped,
    not that it failed; after status 2 it failed. Kills: ``status - 128 in interrupt.STOP_SIGNALS`` back to SIGINT and
    SIGTERM alone."""
    import atexit

    from src.pipeline import run
    from src.utils import interrupt

    handlers = []

    def os_exit(status):
        raise _Ended(status)

    monkeypatch.setattr(interrupt, "install", handlers.append)
    monkeypatch.setattr(threading, "_shutdown", lambda: None, raising=False)
    monkeypatch.setattr(threading, "enumerate", lambda: [threading.main_thread()])
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: None)
    monkeypatch.setattr(os, "_exit", os_exit)
    for status, ended in ((128 + signal.SIGXCPU, "was stopped"), (2, "failed")):
        with pytest.raises(_Ended, match=f"^{status}$"):
            run.exit_after_the_run(status)
        with pytest.raises(_Ended, match="^143$"):
            handlers[-1](signal.SIGTERM, None)
        assert capsys.readouterr().err == f"interrupted (SIGTERM) while the process exited after the run {ended}\n"


# ---- src/utils/parallel.py: /dev/shm, refused workers --------------------------------------------------------------

def _shm(monkeypatch, free_blocks: int, read_only: bool = False, bfree: int | None = None) -> None:
    """``os.statvfs`` answers a file system of 4 KiB blocks, ``free_blocks`` of them free for this user
    (``bfree``: free counting root's reserve, ``free_blocks`` unless given), read-only when ``read_only``."""
    stats = os.statvfs_result((4096, 4096, 1 << 20, free_blocks if bfree is None else bfree, free_blocks, 0, 0, 0,
                               os.ST_RDONLY if read_only else 0, 255))
    monkeypatch.setattr(os, "statvfs", lambda folder: stats)


def test_shared_memory_under_8_mib_free_or_read_only_is_one_line_naming_the_setting(monkeypatch):
    """8 MiB free passes; 4 MiB is refused saying how much is free and needed; a read-only one is refused with
    plenty free; free space counts what this user may take (``f_bavail``, not root's reserve too); each line names
    the folder and the setting that runs without workers. Kills: ``free <= NEEDED``; NEEDED made 1 MiB; the
    read-only test dropped; ``f_bfree`` for ``f_bavail``."""
    from src.utils.parallel import check_shared_memory

    shm = Path("/dev/shm")
    _shm(monkeypatch, 2048)  # 8 MiB
    check_shared_memory("hardware.num_workers=0", shm)
    for free_blocks, kwargs, problem in (
            (1024, {}, "has 4.00 MiB free (worker processes need 8 MiB)"),
            (1024, {"bfree": 1 << 20}, "has 4.00 MiB free (worker processes need 8 MiB)"),
            (1 << 20, {"read_only": True}, "is read-only")):
        _shm(monkeypatch, free_blocks, **kwargs)
        with pytest.raises(WorkersFailedError) as refused:
            check_shared_memory("hardware.num_workers=0", shm)
        assert str(refused.value) == (
            f"worker processes pass their tensors through /dev/shm, which {problem}: run the same command with "
            f"hardware.num_workers=0 (no worker processes), or give the container more shared memory (docker run "
            f"--shm-size=1g)")


def test_shared_memory_that_cannot_be_looked_at_is_not_checked(tmp_path):
    """A folder ``statvfs`` cannot read for any reason (here a path through a file: ENOTDIR) is not checked. Kills:
    ``except OSError`` narrowed to FileNotFoundError."""
    from src.utils.parallel import check_shared_memory

    (tmp_path / "a-file").write_text("")
    assert check_shared_memory("hardware.num_workers=0", tmp_path / "a-file" / "shm") is None


def test_process_map_checks_shared_memory_before_it_starts_workers(monkeypatch):
    """With worker processes, ``/dev/shm`` is checked first, naming ``<setting>=1``, and its refusal is raised before
    any pool is made; in this process (one worker) nothing is checked. Kills: the ``check_shared_memory`` call
    dropped from ``process_map``."""
    from src.utils import parallel

    checked = []

    def refuse(without):
        checked.append(without)
        raise WorkersFailedError("/dev/shm is read-only")

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was made")

    monkeypatch.setattr(parallel, "check_shared_memory", refuse)
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", no_pool)
    assert list(parallel.process_map(abs, [-1, -2], 1)) == [1, 2]
    with pytest.raises(WorkersFailedError, match="read-only"):
        list(parallel.process_map(abs, [-1, -2], 2, setting="graph.retrain.workers"))
    assert checked == ["graph.retrain.workers=1"]


class _Pool:
    """A ProcessPoolExecutor stand-in: ``submit`` raises ``refuse`` (a refused thread) or returns a finished future;
    ``shutdown`` raises ``cannot join thread before it is started`` when ``join_fails``, as after a refused thread."""

    def __init__(self, refuse: BaseException | None, join_fails: bool):
        self.refuse, self.join_fails = refuse, join_fails

    def submit(self, fn, item):
        if self.refuse is not None:
            raise self.refuse
        future: Future = Future()
        future.set_result(fn(item))
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        if self.join_fails:
            raise RuntimeError("cannot join thread before it is started")


@pytest.mark.parametrize("ordered", [True, False])
def test_a_refused_thread_is_one_line_naming_the_setting_not_the_shutdowns_follow_on_error(monkeypatch, ordered):
    """A pool that cannot start its thread (``can't start new thread``), whose shutdown then fails to join it: a
    WorkersFailedError naming the refusal and ``<setting>=1``, raised from the refusal; a shutdown that fails after
    items that ran well is raised as it is. Kills: ``failing = True`` dropped; ``workers_refused`` dropped from
    ``process_map``; ``reason`` read as ``strerror`` of a RuntimeError; ``except RuntimeError`` narrowed; ``if not
    failing`` flipped."""
    from src.utils import parallel

    monkeypatch.setattr(parallel, "check_shared_memory", lambda without: None)
    refused = RuntimeError("can't start new thread")
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", lambda *args, **kwargs: _Pool(refused, True))
    with pytest.raises(WorkersFailedError) as said:
        list(parallel.process_map(abs, [-1, -2], 2, setting="graph.retrain.workers", ordered=ordered))
    assert str(said.value) == ("cannot start worker processes (can't start new thread: a limit on processes, or "
                               "memory); run the same command with graph.retrain.workers=1 (no worker processes)")
    assert said.value.__cause__ is refused
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", lambda *args, **kwargs: _Pool(None, True))
    with pytest.raises(RuntimeError, match="^cannot join thread before it is started$"):
        list(parallel.process_map(abs, [-1, -2], 2, ordered=ordered))


# ---- src/utils/parallel.py: _as_finished ----------------------------------------------------------------------------

class _Given:
    """An executor handing out the futures it was made with, one a submit, whatever the item."""

    def __init__(self, *futures: Future):
        self.futures = iter(futures)

    def submit(self, fn, item):
        return next(self.futures)


def test_as_finished_skips_a_future_the_pool_cancelled():
    """A future the executor cancelled and handed over (``shutdown(cancel_futures=True)``: CANCELLED_AND_NOTIFIED,
    which ``as_completed`` yields as finished) is skipped, not read; the others are given. Kills: the ``if
    future.cancelled(): continue`` dropped (its ``exception()`` raised CancelledError)."""
    from src.utils import parallel

    cancelled, done = Future(), Future()
    cancelled.cancel()
    cancelled.set_running_or_notify_cancel()  # as the executor does with a pending item it cancelled
    done.set_result("a")
    assert list(parallel._as_finished(_Given(cancelled, done), None, ["cancelled", "done"])) == [(1, "a")]


def test_as_finished_raises_the_first_failure_when_an_item_running_beside_it_fails_too():
    """An item still running at the first failure is waited for; when it fails as well, nothing is given for it and
    the first failure is raised (not the later one). Kills: the ``other.exception() is None`` test dropped (the
    running item's ``result()`` raised its own error in place of the first)."""
    from src.utils import parallel

    first, running = Future(), Future()
    first.set_exception(ValueError("the first failure"))
    running.set_running_or_notify_cancel()
    timer = threading.Timer(0.2, running.set_exception, args=(ValueError("a later failure"),))
    timer.start()
    given = []
    try:
        with pytest.raises(ValueError, match="^the first failure$"):
            for pair in parallel._as_finished(_Given(first, running), None, ["fails", "fails later"]):
                given.append(pair)
    finally:
        timer.cancel()
        timer.join()
    assert given == [] and running.done()


# ---- src/bench.py: a swallowed SIGXCPU (a finding) --------------------------------------------------------------

def test_a_cpu_time_stop_swallowed_in_the_bench_still_ends_it(tmp_path, monkeypatch, capsys):
    """A SIGXCPU whose KeyboardInterrupt code in the benchmark swallowed, then the kernel's repeat a CPU second later:
    the bench still ends as stopped (the ``interrupted`` line naming the CPU-time limit, status 152), as a run does
    (``hydra_entry`` raises a swallowed stop once ``main`` returns). Kills: src.bench's handler ignoring the kernel's
    repeat (``interrupt.repeats``) again.

    Was: src.bench: a SIGXCPU stop whose KeyboardInterrupt something swallowed is lost: its repeats are ignored
    (interrupt.repeats) and nothing raises it once the figures return, as hydra_entry does once main returns; the
    bench measures on to its end (or to the hard limit's SIGKILL, with no word). Now: src.bench's handler takes
    every SIGXCPU as a stop (it holds no checkpoint a repeat could cut short), so the repeat ends the bench."""
    from types import SimpleNamespace

    from src import bench

    def run_bench(cfg, checked=None):
        try:
            signal.raise_signal(signal.SIGXCPU)
        except KeyboardInterrupt:  # swallowed by code the figures run
            pass
        signal.raise_signal(signal.SIGXCPU)  # the repeat

    monkeypatch.setattr(bench, "run_bench", run_bench)
    monkeypatch.setattr(bench, "note_job_started", lambda: None)
    monkeypatch.setattr(bench, "HydraConfig", SimpleNamespace(
        get=lambda: SimpleNamespace(runtime=SimpleNamespace(output_dir=str(tmp_path)))))
    with pytest.raises(SystemExit) as ended:
        bench.main(OmegaConf.create({}))
    assert ended.value.code == 128 + signal.SIGXCPU
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted{XCPU_NAMED}: the benchmark stopped before its last figure; no bench.json was written")
