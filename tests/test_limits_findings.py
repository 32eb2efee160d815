"""Findings of a resource-limits walk (2026-12-07, session 49): the entry points under the limits a shared cluster or a
container sets: a low open-files limit (``ulimit -n``), a process/thread limit (``ulimit -u``, a container's pids
limit), an address-space limit (``ulimit -v``), a CPU-time limit (``ulimit -t``: SIGXCPU), a file-size limit
(``ulimit -f``: EFBIG), a tiny or read-only ``/dev/shm`` (Docker's default is 64 MiB), an unusable HOME or TMPDIR.

The findings were strict xfails asserting the project's rule (one ``error:`` line naming what went wrong and what to do,
status 2, or 128 + the signal's number for a signal; never a traceback, never a hang) and are mended (their docstrings
say "Was: ... Now: ..."); the other tests pin what was found right and nothing tested yet: the default runs pass under
low limits, and a run stopped by a limit resumes to complete records. Every run is a ``budget=smoke`` one on tiny data
with ``hardware.kernels=torch``, as a subprocess through the command line, its limits set with ``resource.setrlimit`` in
the child (a skip where they cannot be set, or where binding them needs root's tools: ``unshare -m`` for ``/dev/shm``,
another user for RLIMIT_NPROC, which binds no process of root's)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, write_tiny_planetoid, write_tiny_sst

SMOKE = ("budget=smoke", "hardware=cpu", "hardware.kernels=torch")
LOADER_WORKERS = ("hardware.num_workers=2",)
GRAPH_WORKERS = ("graph.retrain.workers=2", "graph.hpo.trials=0", "graph.baselines=[]")
NORMAL_RUN_S = 90  # a smoke run takes 5-15 s on two shared cores: one still running after this hangs


@pytest.fixture(scope="module")
def data_folder() -> Path:
    """A tiny SST and a tiny Cora in one folder anyone may read (the process-limit tests run as another user)."""
    root = Path(tempfile.mkdtemp(prefix="limits-data-"))
    root.chmod(0o755)
    write_tiny_sst(root, n_train=300, n_dev=60, n_test=60)
    write_tiny_planetoid(root)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _env(tmp: Path, data: Path, **extra: str) -> dict:
    env = {**os.environ, "AUTOATTEND_DATA_DIR": str(data), "AUTOATTEND_CACHE_DIR": str(tmp / "cache"),
           "AUTOATTEND_OUTPUT_DIR": str(tmp / "out"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}
    return env


class Ran:
    """A finished (or stopped) command: ``returncode`` None when it still ran after the time allowed (then stopped,
    its whole process group killed), the tail of its standard error and how many bytes it wrote there."""

    def __init__(self, returncode, stderr: str, stderr_bytes: int):
        self.returncode, self.stderr, self.stderr_bytes = returncode, stderr, stderr_bytes


def _limited(limits: dict):
    """A ``preexec_fn`` setting ``limits`` ({RLIMIT_*: (soft, hard)}) in the child; skips the test where one cannot
    be set (a hard limit lower than asked, a platform without it)."""
    for which, (soft, hard) in limits.items():
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > current_hard):
            pytest.skip(f"the hard limit {which} is {current_hard}: cannot set {hard}")

    def apply():
        for which, values in limits.items():
            resource.setrlimit(which, values)

    return apply


def _run(module: str, *args: str, env: dict, limits: dict | None = None, prefix: list[str] | None = None,
         timeout: float = NORMAL_RUN_S) -> Ran:
    """``python -m module args`` from the repository root under ``limits``, after ``prefix`` (a wrapper command);
    standard error read as it comes (a command may write gigabytes of it: its last 64 KiB are kept)."""
    command = [*(prefix or []), sys.executable, "-m", module, *args]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_limited(limits) if limits else None)
    tail, total = bytearray(), [0]

    def read():
        for chunk in iter(lambda: proc.stderr.read1(1 << 16), b""):
            total[0] += len(chunk)
            tail.extend(chunk)
            del tail[:-65536]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the command's workers too, finished or not
        except ProcessLookupError:
            pass
        proc.wait()
        reader.join(timeout=10)
    return Ran(returncode, tail.decode("utf-8", "backslashreplace"), total[0])


def _one_error_line(ran: Ran, status: int = 2) -> str:
    """The refusal's line: the command ended, with ``status``, one ``error:`` line and no traceback."""
    assert ran.returncode is not None, f"still running after {NORMAL_RUN_S} s, {ran.stderr_bytes} bytes of stderr"
    assert ran.returncode == status, (ran.returncode, ran.stderr[-2000:])
    assert "Traceback" not in ran.stderr, ran.stderr[-2000:]
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), ran.stderr[-2000:]
    return lines[0]


def _search(task: str, run_dir: Path, *extra: str) -> tuple[str, ...]:
    return ("src.search", f"+task={task}", *SMOKE, *extra, f"hydra.run.dir={run_dir}")


def _assert_complete(run_dir: Path) -> None:
    """A finished run's records, and no temporary file left beside them."""
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["retrain"]["seeds"] == [0, 1]
    for seed in (0, 1):
        assert json.loads((run_dir / "retrain" / f"seed_{seed}.json").read_text())["seed"] == seed
    assert (run_dir / "search" / "best_arch.yaml").is_file()
    left = [str(p.relative_to(run_dir)) for p in run_dir.rglob(".*") if p.is_file() and p.name != ".run.lock"
            and ".hydra" not in p.parts]
    assert left == [], left


# ---- open files (ulimit -n) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["sst2", pytest.param("cora", marks=pytest.mark.slow)])
def test_a_run_without_worker_processes_passes_under_a_low_open_files_limit(data_folder, tmp_path, task):
    """``ulimit -n 16`` (a tenth of the lowest limit a cluster sets): the default run opens few files at once
    (it passes down to 8; at 6 it is an EMFILE traceback)."""
    ran = _run(*_search(task, tmp_path / "run"), env=_env(tmp_path, data_folder),
               limits={resource.RLIMIT_NOFILE: (16, 16)})
    assert ran.returncode == 0, ran.stderr[-2000:]
    _assert_complete(tmp_path / "run")


@pytest.mark.parametrize("nofile", [20, 28])
def test_loader_workers_under_a_low_open_files_limit_are_one_line(data_folder, tmp_path, nofile):
    """``ulimit -n 20`` with ``hardware.num_workers=2`` (hardware=gpu's default): torch sends each batch through a file
    descriptor (its file_descriptor sharing strategy); the workers' sends fail with EMFILE in their queue feeder and
    resource-sharer threads, which print a traceback and go on, while the main process waits for batches that never
    come: the run never ends (in one try from a shell its standard error grew 4.6 GB in 10 minutes). At 24-32 (about
    34 descriptors are open at the peak) it is an OSError 'Too many open files' or torch's RuntimeError 'Too many
    open files. Communication with the workers is no longer possible...' traceback, status 1. Expected: one line
    saying the open-files limit is too low (ulimit -n) or to use hardware.num_workers=0; the run resumes (it does).

    Was: data-loader workers under a low open-files limit: a hang writing gigabytes of tracebacks (20), or a
    traceback (28). Now: the checks raise the soft open-files limit towards the hard one when hardware.num_workers >
    0, and refuse in one line below what the workers need (64 + 32 a worker), naming ulimit -n and
    hardware.num_workers=0."""
    ran = _run(*_search("sst2", tmp_path / "run", *LOADER_WORKERS), env=_env(tmp_path, data_folder),
               limits={resource.RLIMIT_NOFILE: (nofile, nofile)})
    assert ran.stderr_bytes < 100_000, ran.stderr_bytes
    line = _one_error_line(ran)
    assert "open files" in line or "ulimit -n" in line or "num_workers" in line


# ---- /dev/shm (a private mount namespace: root only) ---------------------------------------------------------------

def _with_dev_shm(options: str) -> list[str]:
    """A command prefix under which ``/dev/shm`` is a tmpfs mounted with ``options`` (``unshare -m``: for it alone)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -m (root) to mount a /dev/shm of its own")
    return ["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o {options} tmpfs /dev/shm && exec "$@"', "sh"]


@pytest.mark.parametrize("task, shm", [  # each kind of worker and of /dev/shm in the fast suite
    ("sst2", "size=64k"), pytest.param("sst2", "ro,size=1m", marks=pytest.mark.slow),
    pytest.param("cora", "size=64k", marks=pytest.mark.slow), ("cora", "ro,size=1m"),
], ids=["sst2-tiny", "sst2-read-only", "cora-tiny", "cora-read-only"])
def test_workers_with_a_tiny_or_read_only_dev_shm_are_one_line(data_folder, tmp_path, shm, task):
    """Worker processes pass tensors (and their semaphores) through /dev/shm, which a container makes small (Docker: 64
    MiB) or leaves out. A 64 KiB one: the text run's loader workers print 'unable to allocate shared memory(shm) ...
    No space left on device' tracebacks and the main process waits for ever (stopped after 120 s; a SIGTERM then
    says 'a data loader worker process died (... most likely out of memory)', blaming memory); the graph retrain's
    workers (graph.retrain.workers=2) end in the same RuntimeError's traceback, status 1. A read-only one: an
    OSError [Errno 30] traceback (graph, without a file name) or a traceback ending 'RuntimeError: Please call
    `iter(combined_loader)` first.' (text), status 1. Expected: one line naming /dev/shm (too small, or not
    writable) and the setting that runs without workers; each resumes without the limit (they do).

    Was: worker processes with a tiny or read-only /dev/shm: a hang (data loader, tiny) or a traceback, never a line
    naming /dev/shm. Now: before worker processes start (a text loader's, process_map's), /dev/shm is checked
    (check_shared_memory): read-only, or under 8 MiB free, is one line saying how to run without workers."""
    workers = LOADER_WORKERS if task == "sst2" else GRAPH_WORKERS
    ran = _run(*_search(task, tmp_path / "run", *workers), env=_env(tmp_path, data_folder),
               prefix=_with_dev_shm(shm))
    line = _one_error_line(ran)
    assert "/dev/shm" in line or "shared memory" in line


# ---- address space (ulimit -v) ------------------------------------------------------------------------------------

@pytest.mark.parametrize("gib", [1.0, pytest.param(1.5, marks=pytest.mark.slow)])
def test_an_address_space_limit_is_one_line_saying_memory(data_folder, tmp_path, gib):
    """``ulimit -v`` (clusters' login nodes and some schedulers set one): under 2 GiB the run fails where the limit
    happens to bite, each time a traceback, status 1, whose last line does not say memory: 1 GiB 'RuntimeError:
    could not create a primitive' (oneDNN, in the supernet's first step), 1.5 GiB 'ImportError: cannot import name
    NP_SUPPORTED_MODULES from torch._dynamo.utils', 0.8 GiB 'ImportError: ..._fblas...so: failed to map segment from
    shared object', 0.6 GiB 'MemoryError'. Expected: one line saying the process ran out of memory under its
    address-space limit (ulimit -v), what to raise; the run resumes without the limit (it does).

    Was: an address-space limit ends in a traceback whose last line is about something else (ImportError, oneDNN
    primitive), never memory. Now: a crash under an address-space limit is one line saying the run most likely ran
    out of memory under ulimit -v, status 2, its traceback in the run's log (address_space_error); below about 0.7
    GiB the imports themselves can fail before the entry point's handlers, a traceback still."""
    limit = int(gib * 2 ** 30)
    ran = _run(*_search("sst2", tmp_path / "run"), env=_env(tmp_path, data_folder),
               limits={resource.RLIMIT_AS: (limit, limit)})
    line = _one_error_line(ran)
    assert "memory" in line


# ---- CPU time (ulimit -t) ------------------------------------------------------------------------------------------

def test_the_cpu_time_limit_is_said_as_a_stop_with_how_to_resume(data_folder, tmp_path):
    """``ulimit -t`` (soft below hard, as batch systems set it: SIGXCPU at the soft limit, SIGKILL at the hard one):
    SIGXCPU's default action ends the process, status 152, with no line of the program's (the shell adds 'CPU time
    limit exceeded' when there is one) and nothing in search.log, where SIGTERM gets 'interrupted (SIGTERM): what
    finished is kept in ...; run the same command with hydra.run.dir=... to resume'. Expected: the same line for
    SIGXCPU (naming the CPU-time limit), in the log too, status 152; the run resumes (it does).

    Was: SIGXCPU (the soft CPU-time limit) ends the run without a word: no 'interrupted' line, nothing in the run's
    log. Now: SIGXCPU is a stop signal as SIGTERM is (interrupt.STOP_SIGNALS): the interrupted line names the
    CPU-time limit and how to resume, status 152; the kernel's repeats once a CPU second are not taken for a second
    stop."""
    run_dir = tmp_path / "run"
    ran = _run(*_search("sst2", run_dir), env=_env(tmp_path, data_folder),
               limits={resource.RLIMIT_CPU: (3, resource.RLIM_INFINITY)})
    if ran.returncode == 0:
        pytest.skip("the run took under 3 CPU seconds: the limit did not bite")
    # killed by the signal (-24 from Popen) or exiting with a shell's status for it (152): either is right
    assert ran.returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU), (ran.returncode, ran.stderr[-2000:])
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert lines and "CPU" in lines[-1] and f"hydra.run.dir={run_dir}" in lines[-1], ran.stderr[-2000:]
    assert "CPU" in (run_dir / "search.log").read_text()


# ---- file size (ulimit -f) -----------------------------------------------------------------------------------------

# torch.save's error at the limit: tests/test_mutation_session50.py::test_a_runtime_error_in_an_atomic_write_...
@pytest.mark.parametrize("kib, file", [(10, "data cache"), pytest.param(100, "supernet checkpoint",
                                                                        marks=pytest.mark.slow)])
def test_the_file_size_limit_is_one_line_naming_the_file(data_folder, tmp_path, kib, file):
    """``ulimit -f`` (Python ignores SIGXFSZ, so a write past the limit fails with EFBIG): the data cache's write (12
    KiB) is an 'OSError: [Errno 27] File too large: <cache>/sst2-<hash>.pt' traceback, the supernet checkpoint's
    (1.6 MiB) a 'RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos ...' traceback
    (torch.save), status 1; errors.machine_error knows ENOSPC and EDQUOT but not EFBIG, and atomic_target turns
    torch.save's RuntimeError into an OSError only on a nearly full disk. Expected: one line naming the file and the
    file-size limit; nothing half-written is left and the run resumes (both hold).

    Was: EFBIG (the file-size limit) is no machine refusal: a traceback, for a checkpoint one ending 'unexpected
    pos'. Now: EFBIG is a machine refusal naming the file and ulimit -f, and atomic_target turns torch.save's
    RuntimeError into EFBIG when the temporary reached the limit."""
    ran = _run(*_search("sst2", tmp_path / "run"), env=_env(tmp_path, data_folder),
               limits={resource.RLIMIT_FSIZE: (kib * 1024, kib * 1024)})
    line = _one_error_line(ran)
    assert str(tmp_path) in line and ("size" in line or "ulimit -f" in line)


# ---- a run stopped by a limit resumes ----------------------------------------------------------------------------

@pytest.mark.parametrize("limit", ["cpu", pytest.param("file size", marks=pytest.mark.slow),
                                   pytest.param("address space", marks=pytest.mark.slow)])
def test_a_run_stopped_by_a_limit_resumes_to_complete_records(data_folder, tmp_path, limit):
    """Whatever the limit stopped (a SIGXCPU mid-checkpoint leaves the temporary .last.ckpt.* behind; EFBIG; a
    failed allocation in the supernet's first step), the same command without it finishes, its records complete
    and no temporary file left."""
    limits = {"cpu": {resource.RLIMIT_CPU: (3, resource.RLIM_INFINITY)},
              "file size": {resource.RLIMIT_FSIZE: (100 * 1024, 100 * 1024)},
              "address space": {resource.RLIMIT_AS: (2 ** 30, 2 ** 30)}}[limit]
    run_dir = tmp_path / "run"
    stopped = _run(*_search("sst2", run_dir), env=_env(tmp_path, data_folder), limits=limits)
    assert stopped.returncode not in (0, None), stopped.stderr[-2000:]
    resumed = _run(*_search("sst2", run_dir), env=_env(tmp_path, data_folder))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_complete(run_dir)


# ---- processes and threads (ulimit -u: binds another user than root) -----------------------------------------------

@pytest.fixture
def shared_tmp() -> Path:
    """A folder another user may write (tmp_path lies in root's private pytest folder), held by one test at a time
    across the parallel test processes: ``ulimit -u`` counts every process and thread of the user, so two runs as
    uid 65534 at once (one in each test process) would count each other's."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / "autoattend-tests-uid-65534.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder = Path(tempfile.mkdtemp(prefix="limits-run-"))
        folder.chmod(0o777)
        yield folder
        shutil.rmtree(folder, ignore_errors=True)


def _as_another_user(stage: Path) -> list[str]:
    """For root, a command prefix running as uid 65534 (RLIMIT_NPROC binds no process of root's), with the folder
    holding this Python made reachable in a private mount namespace where an ancestor is private (``/root``);
    nothing for another user, whom the limit binds."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None or shutil.which("unshare") is None:
        pytest.skip("root without setpriv and unshare: RLIMIT_NPROC cannot be made to bind")
    real = Path(os.path.realpath(sys.executable))
    hidden = next((p for p in reversed(real.parents) if not p.stat().st_mode & 0o001), None)
    setup = "true"
    if hidden is not None:
        keep = hidden / real.relative_to(hidden).parts[0]
        stage.mkdir(mode=0o755)
        setup = (f"mount --bind '{keep}' '{stage}' && mount -t tmpfs -o mode=755 tmpfs '{hidden}' && "
                 f"mkdir -p '{keep}' && mount --bind '{stage}' '{keep}'")
    prefix = ["unshare", "-m", "sh", "-c", f'{setup} && exec "$@"', "sh",
              "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*prefix, sys.executable, "-c", "import torch"], capture_output=True).returncode:
        pytest.skip("cannot run this Python as uid 65534")
    return prefix


def test_a_run_without_worker_processes_passes_under_a_low_process_limit(data_folder, shared_tmp):
    """``ulimit -u 4`` with one intra-op thread: the default run starts no process and few threads (it passes
    down to 2)."""
    prefix = _as_another_user(shared_tmp / "stage")
    ran = _run(*_search("sst2", shared_tmp / "run"), env=_env(shared_tmp, data_folder, HOME=str(shared_tmp)),
               limits={resource.RLIMIT_NPROC: (4, 4)}, prefix=prefix)
    assert ran.returncode == 0, ran.stderr[-2000:]
    _assert_complete(shared_tmp / "run")


# process_map's refused thread: tests/test_mutation_session50.py::test_a_refused_thread_is_one_line_naming_...
@pytest.mark.parametrize("task", ["sst2", pytest.param("cora", marks=pytest.mark.slow)])
def test_workers_under_a_low_process_limit_are_one_line(data_folder, shared_tmp, task):
    """``ulimit -u 4``: starting the workers' threads fails with 'RuntimeError: can't start new thread', and the
    clean-up then raises a second error that ends the traceback, status 1: graph.retrain.workers=2 'RuntimeError:
    cannot join thread before it is started' (parallel.process_map's pool.shutdown; it turns a fork's EAGAIN into
    WorkersFailedError but not a thread's RuntimeError), hardware.num_workers=2 'RuntimeError: Please call
    `iter(combined_loader)` first.' (Lightning). Expected: one line saying the workers could not start (a process
    limit) and the setting that runs without them, as process_map says for EAGAIN; the run resumes (it does).

    Was: worker processes under a process limit: a traceback ending in a follow-on error ('cannot join thread before
    it is started', 'Please call iter(combined_loader) first'). Now: a refused thread (can't start new thread) or
    fork (EAGAIN) behind the crash is one line saying how to run without worker processes (errors.workers_refused),
    and process_map's shutdown no longer masks it."""
    prefix = _as_another_user(shared_tmp / "stage")
    workers = LOADER_WORKERS if task == "sst2" else GRAPH_WORKERS
    ran = _run(*_search(task, shared_tmp / "run", *workers), env=_env(shared_tmp, data_folder, HOME=str(shared_tmp)),
               limits={resource.RLIMIT_NPROC: (4, 4)}, prefix=prefix)
    line = _one_error_line(ran)
    assert "workers" in line


# ---- HOME and TMPDIR -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernels", [pytest.param("torch", marks=pytest.mark.slow), "auto"])
def test_a_run_passes_with_home_unusable(data_folder, tmp_path, kernels):
    """HOME a file (a service account's, or one pointing at an unmounted home): nothing the run needs is under it;
    kernels=auto cannot make its build folder there (~/.cache/torch_extensions) and runs the torch ops, saying so."""
    home = tmp_path / "home"
    home.write_text("not a folder\n")
    ran = _run(*_search("sst2", tmp_path / "run", f"hardware.kernels={kernels}"),
               env=_env(tmp_path, data_folder, HOME=str(home)))
    assert ran.returncode == 0, ran.stderr[-2000:]
    _assert_complete(tmp_path / "run")


# graph workers under a limit in the fast suite: the /dev/shm test's cora case
@pytest.mark.parametrize("task", ["sst2", pytest.param("cora", marks=pytest.mark.slow)])
def test_worker_processes_run_with_tmpdir_unusable(data_folder, tmp_path, task):
    """TMPDIR a missing folder: the workers (loader, graph) and the caches do without it."""
    workers = LOADER_WORKERS if task == "sst2" else GRAPH_WORKERS
    ran = _run(*_search(task, tmp_path / "run", *workers),
               env=_env(tmp_path, data_folder, TMPDIR=str(tmp_path / "missing" / "tmp")))
    assert ran.returncode == 0, ran.stderr[-2000:]
