"""Findings of a walk through the Makefile's targets as a user types them (2026-12-07): ``help``, ``search``,
``retrain``, ``reproduce``, ``experiments``, ``report``, ``evaluate``, ``predict``, ``bench``, ``test``/``test-full``,
``clean``, ``lock`` and ``install-locked``, given values holding spaces, quotes, ``=``, ``$`` or ``~``; paths that are
relative, missing or hold a space; an unknown TASK; ARGS with quoted Hydra overrides; ``make -C <repo>`` and
``make -f <repo>/Makefile`` from another folder; a ``VENV=`` with a space; bad ``ALLOCATOR=`` values; ``make -n``; and
the exit status and stderr of each failure, against what README.md, docs/usage.md, docs/install.md and ``make help``
say.

The rule asserted is the project's: a failing target exits non-zero with one ``error:`` line saying what went wrong
(then make's own ``make: *** [...] Error 2``, which no recipe can silence), never a shell's or a tool's message, and
a value is taken as the user wrote it. The 14 findings were mended in session 50 (their docstrings say "Was: ... Now:
..."); the other tests pin what was found right and no other test covers (the argument checks that need no
interpreter are in tests/test_experiments.py). The interpreter is this one, given to make as ``PY=`` with ``-o`` so
no virtualenv is built; where a target would create a virtualenv, ``PYTHON=`` is a stand-in that records its
arguments and fails, so nothing is ever installed. Three tests train (``budget=smoke`` on tiny SST,
``hardware.kernels=torch``, 4-5 s each)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from src.utils import allocator
from tests.helpers import ROOT, write_finished_run, write_tiny_sst

PY = sys.executable
SMOKE_ARGS = "hardware=cpu hardware.kernels=torch"
# what a make run started by `make test` inherits and a user's shell does not
# make's own variables and the Makefile's settings (``?=``): a ``make test ARGS=...`` exports its ARGS to the tests'
# environment, where every make the tests run took it
MAKEFILE_SETTINGS = tuple(re.findall(r"^([A-Z_]+) *\?=", (ROOT / "Makefile").read_text(), re.MULTILINE))
UNSET = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "LD_PRELOAD", allocator.ENV, allocator.REEXEC_MARK, *MAKEFILE_SETTINGS)


def _env(tmp: Path, data: Path | None = None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "AUTOATTEND_DATA_DIR": str(data or tmp / "nodata"), "AUTOATTEND_CACHE_DIR": str(tmp / "cache"),
                "AUTOATTEND_OUTPUT_DIR": str(tmp / "out"), **extra})
    return env


def _make(*args: str, tmp: Path, data: Path | None = None, cwd: Path = ROOT, interpreter: bool = True,
          timeout: int = 120, **kwargs) -> subprocess.CompletedProcess:
    """``make <args>`` as a user types it (``interpreter``: with this Python as ``PY=``, which make must not build)."""
    argv = ["make", "--no-print-directory", *(("-o", PY, f"PY={PY}") if interpreter else ()), *args]
    return subprocess.run(argv, cwd=cwd, env=kwargs.pop("env", None) or _env(tmp, data), capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def _one_error_line(proc: subprocess.CompletedProcess, start: str) -> bool:
    """Status 2, and stderr is the ``error:`` line starting ``start`` then make's own ``make: ***`` line."""
    lines = proc.stderr.strip().splitlines()
    return proc.returncode == 2 and len(lines) == 2 and lines[0].startswith(start) and lines[1].startswith("make: ***")


def _stand_in_python(tmp: Path) -> tuple[Path, Path]:
    """A ``PYTHON=`` that appends its arguments (a JSON list a line) to a log and fails: what make would have run."""
    script, log = tmp / "stand-in-python", tmp / "calls.jsonl"
    script.write_text(f"#!{PY}\nimport json, sys\nwith open({str(log)!r}, 'a') as f:\n"
                      "    f.write(json.dumps(sys.argv[1:]) + '\\n')\nsys.exit(1)\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_tiny_sst(tmp_path_factory.mktemp("make-data"))


@pytest.fixture(scope="module")
def searched(tmp_path_factory, data) -> tuple[Path, Path]:
    """``make search TASK=sst2 BUDGET=smoke`` into a run folder whose name holds a space, given as a quoted Hydra
    override in ARGS, with the Makefile's own allocator preload; returns ``(tmp, run dir)``."""
    tmp = tmp_path_factory.mktemp("make-walk")
    run = tmp / "my run"
    proc = _make("search", "TASK=sst2", "BUDGET=smoke", f"ARGS={SMOKE_ARGS} 'hydra.run.dir={run}'", tmp=tmp,
                 data=data, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, run


# ---------------------------------------------------------------------------------------------- found right


def test_make_search_with_a_quoted_override_holding_a_space_runs_into_that_folder(searched):
    """ARGS reaches the shell as written: ``'hydra.run.dir=<tmp>/my run'`` is one override, the run is there."""
    _, run = searched
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "sst2" and (run / "retrain" / "seed_0" / "model.pt").is_file()


def test_make_evaluate_and_predict_take_folders_and_files_with_spaces_and_standard_input(searched, data):
    tmp, run = searched
    texts = tmp / "my texts.txt"
    texts.write_text("a great film\nawful movie\n")
    proc = _make("evaluate", f"DIR={run}", tmp=tmp, data=data)
    assert proc.returncode == 0 and "all 2 model(s) reproduce" in proc.stdout, proc.stderr[-2000:]
    proc = _make("predict", f"DIR={run}", f"FILE={texts}", "ARGS=--jsonl --ensemble", tmp=tmp, data=data)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [json.loads(line)["text"] for line in proc.stdout.splitlines()[1:]] == ["a great film", "awful movie"]
    proc = _make("predict", f"DIR={run}", "FILE=-", tmp=tmp, data=data, input="great film\n")
    assert proc.returncode == 0 and "| great film |" in proc.stdout, proc.stderr[-2000:]


def test_make_retrain_takes_a_search_run_folder_with_a_space_as_arch(searched, data):
    tmp, run = searched
    out = tmp / "retrained"
    proc = _make("retrain", "TASK=sst2", "BUDGET=smoke", f"ARCH={run}", f"ARGS={SMOKE_ARGS} hydra.run.dir={out}",
                 tmp=tmp, data=data, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["task"] == "sst2"


@pytest.mark.parametrize("args, start", [
    (("search", "TASK=nope"), "error: In 'search': Could not find 'task/nope'; Available options in 'task': "),
    (("search", "BUDGET=huge"), "error: In 'search': Could not find 'budget/huge'"),
    # the allocator is refused before the run starts: no Hydra message follows
    (("search", "TASK=nope", "ALLOCATOR=bogus"), "error: AUTOATTEND_ALLOCATOR=bogus: unknown allocator"),
    (("bench", "ARGS=bench.reps=0"), "error: bench.reps: expected an integer >= 1, got 0"),
    # ARCH with no TASK: the default task's, refused for a graph architecture
    (("retrain", "ARCH=gcn"), "error: arch=gcn: a graph architecture (ops gcn), while task sst2 is a text task"),
])
def test_make_failures_are_one_error_line_and_status_2(args, start, tmp_path):
    proc = _make(*args, tmp=tmp_path)
    assert _one_error_line(proc, start), (proc.returncode, proc.stderr[-2000:])


def test_make_dry_run_shows_the_command_as_the_shell_gets_it_and_runs_nothing(tmp_path):
    fake, log = _stand_in_python(tmp_path)
    proc = _make("-n", "-o", str(fake), f"PY={fake}", "retrain", "TASK=sst5", "ARCH=published_sst5",
                 "ARGS='hydra.run.dir=/x y' seed=1", tmp=tmp_path, interpreter=False)
    assert proc.returncode == 0 and not _calls(log), proc.stderr
    assert proc.stdout.splitlines()[-1].endswith(
        f"{fake} -m src.retrain +task=sst5 'arch=\"published_sst5\"' budget=quick 'hydra.run.dir=/x y' seed=1")



@pytest.mark.parametrize("name, command", [
    ("cora_default", "-m src.search '+experiment=cora_default'"),
    ("cora_ranking_sharing", "-m src.search -m '+experiment=cora_ranking_sharing'"),
])
def test_make_dry_run_of_reproduce_shows_the_entry_point_and_multirun_flag_it_runs(name, command, tmp_path):
    """Was: ``make -n reproduce`` showed ``-m src.$(sed -n 's/^  entry: *//p' ...) $(grep -q ...)``, the shell
    code that finds the entry point, not the command. Now: make reads the experiment's entry and multirun flag
    when it expands the command, which ``make -n`` shows as it will run."""
    proc = _make("-n", "reproduce", f"EXP={name}", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert " ".join(proc.stdout.splitlines()[-1].split()).endswith(command), proc.stdout

def test_make_test_and_test_full_pass_the_workers_and_the_slow_mark(tmp_path):
    def command(*args):
        return " ".join(_make("-n", *args, tmp=tmp_path).stdout.split())

    assert command("test") == f'{PY} -m pytest -q -n auto --maxprocesses 4 -m "not slow"'
    assert command("test", "TEST_WORKERS=0") == f'{PY} -m pytest -q -n 0 -m "not slow"'
    assert command("test-full", "TEST_WORKERS=2", "TEST_WORKERS_MAX=1") == f"{PY} -m pytest -q -n 2 --maxprocesses 1"


def test_make_clean_deletes_what_it_says_and_nothing_else(tmp_path):
    """help and README: "delete outputs/ (every run in it), multirun/ and .cache/ (the data caches)" (and pytest's
    cache); the data, the virtualenv and other files stay. Run in a folder of the test's (``-f``), not the checkout."""
    for name in ("outputs/sst2/search/x", "multirun/y", ".cache/autoattend", ".pytest_cache/v", "data/sst", ".venv"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("kept")
    proc = _make("-f", str(ROOT / "Makefile"), "clean", tmp=tmp_path, cwd=tmp_path, interpreter=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".venv", "data", "notes.txt"]


def test_make_install_locked_refuses_an_existing_folder_and_gives_a_new_one_to_venv(tmp_path):
    """An existing VENV: one line, status 2, no Python run. A new one: ``python -m venv <dir>`` (the stand-in then
    fails, so nothing is installed, and make stops there)."""
    fake, log = _stand_in_python(tmp_path)
    (tmp_path / "old").mkdir()
    proc = _make("install-locked", f"VENV={tmp_path / 'old'}", f"PYTHON={fake}", tmp=tmp_path, interpreter=False)
    assert _one_error_line(proc, f"error: {tmp_path / 'old'} exists; make install-locked builds a new virtualenv")
    assert not _calls(log)
    proc = _make("install-locked", f"VENV={tmp_path / 'new'}", f"PYTHON={fake}", tmp=tmp_path, interpreter=False)
    assert proc.returncode == 2 and _calls(log) == [["-m", "venv", str(tmp_path / "new")]]


def _stand_in_venv_maker(tmp: Path) -> tuple[Path, Path]:
    """A ``PYTHON=`` whose ``-m venv DIR`` makes ``DIR/bin/python``, a stand-in that appends its arguments to a log
    and succeeds: every pip call make would run, recorded, nothing installed."""
    log = tmp / "pip-calls.jsonl"
    venv_python = (f"#!{PY}\nimport json, sys\nwith open({str(log)!r}, 'a') as f:\n"
                   "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n")
    maker = tmp / "python-making-venvs"
    maker.write_text(f"#!{PY}\nimport os, sys\nbin = os.path.join(sys.argv[3], 'bin')\nos.makedirs(bin)\n"
                     f"path = os.path.join(bin, 'python')\nopen(path, 'w').write({venv_python!r})\n"
                     "os.chmod(path, 0o755)\n")
    maker.chmod(maker.stat().st_mode | stat.S_IXUSR)
    return maker, log


def test_a_locked_virtualenv_is_brought_up_to_date_from_the_lock_not_from_cpu_txt(tmp_path):
    """Was: ``make install-locked VENV=.venv-locked`` built it from the lock, but once requirements/cpu.txt or
    pyproject.toml was newer than its python (a pull), any target run with ``VENV=.venv-locked`` (docs/install.md:
    "make VENV=.venv-locked test tests it") ran ``pip install -r requirements/cpu.txt`` into it: newer releases in
    the locked virtualenv, said nowhere. Now: install-locked marks the virtualenv, and make brings a marked one up to
    date from the lock alone (also when the lock changes); an unmarked one from requirements/cpu.txt, as before."""
    maker, log = _stand_in_venv_maker(tmp_path)
    locked, plain = tmp_path / "locked", tmp_path / "plain"
    proc = _make("install-locked", f"VENV={locked}", f"PYTHON={maker}", tmp=tmp_path, interpreter=False)
    assert proc.returncode == 0 and (locked / "autoattend-locked").is_file(), proc.stderr
    from_lock = [["-m", "pip", "install", "--quiet", "--no-deps", "-r", "requirements/cpu-lock.txt"],
                 ["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", "."],
                 ["-m", "pip", "check"]]
    assert _calls(log)[1:] == from_lock
    for newer in ("requirements/cpu.txt", "pyproject.toml", "requirements/cpu-lock.txt"):
        log.unlink()
        proc = _make("-W", newer, "install", f"VENV={locked}", tmp=tmp_path, interpreter=False)
        assert proc.returncode == 0 and _calls(log) == [["-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                                                        *from_lock], (newer, proc.stderr)
    assert _make("install", f"VENV={plain}", f"PYTHON={maker}", tmp=tmp_path, interpreter=False).returncode == 0
    log.unlink()
    assert _make("-W", "requirements/cpu-lock.txt", "install", f"VENV={plain}", tmp=tmp_path,
                 interpreter=False).returncode == 0 and not log.exists()  # the lock is no concern of a plain one
    proc = _make("-W", "pyproject.toml", "install", f"VENV={plain}", tmp=tmp_path, interpreter=False)
    assert proc.returncode == 0 and _calls(log)[1:] == [["-m", "pip", "install", "--quiet", "-r",
                                                         "requirements/cpu.txt"]], proc.stderr


def test_make_lock_writes_the_file_named_by_lock(tmp_path):
    out = tmp_path / "lock.txt"
    proc = _make("lock", f"LOCK={out}", tmp=tmp_path)
    assert proc.returncode == 0 and re.search(rf"{re.escape(str(out))}: \d+ packages", proc.stdout), proc.stderr
    assert out.read_text().startswith("# Exact versions of everything cpu.txt installs")


def test_make_C_from_another_folder_runs_in_the_checkout(tmp_path):
    here = _make("experiments", tmp=tmp_path, interpreter=False).stdout
    proc = _make("-C", str(ROOT), "experiments", tmp=tmp_path, cwd=tmp_path, interpreter=False)
    assert proc.returncode == 0 and proc.stdout == here and "cora_default" in here
    proc = _make("-C", str(ROOT), "reproduce", "EXP=nope", tmp=tmp_path, cwd=tmp_path)
    assert _one_error_line(proc, "error: no experiment nope (experiments/conf/experiment/nope.yaml does not exist)")


# ---------------------------------------------------------------------------------------------- findings


def test_make_search_allocator_system_runs_on_the_system_malloc(tmp_path, data):
    """The Makefile asks ``src.utils.allocator`` with ``AUTOATTEND_ALLOCATOR=system`` in that one command's environment
    only, so it gets ``""`` and starts ``LD_PRELOAD="" python -m src.search``; the entry point sees no LD_PRELOAD
    and no AUTOATTEND_ALLOCATOR, takes ``auto`` and restarts itself with mimalloc: the run log says "allocator:
    mimalloc", and so does ``summary.json``'s ``machine.allocator``. Expected (help: "ALLOCATOR=jemalloc|
    system|/path/lib.so to change"; docs/usage.md: "make ... ALLOCATOR= picks"): "system malloc". (make retrain and
    make bench preload the same way.)

    Was: make search ALLOCATOR=system runs on mimalloc: the entry point's own preload does not see the choice. Now:
    the Makefile gives its ALLOCATOR choice to the command too (AUTOATTEND_ALLOCATOR beside LD_PRELOAD), so the
    entry point preloads nothing of its own."""
    if not allocator.preload("auto"):
        pytest.skip("auto finds no allocator here: the system malloc either way")
    run = tmp_path / "run"
    proc = _make("search", "TASK=sst2", "BUDGET=smoke", "ALLOCATOR=system", f"ARGS={SMOKE_ARGS} hydra.run.dir={run}",
                 tmp=tmp_path, data=data, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["machine"]["allocator"] == "system malloc"


@pytest.mark.parametrize("quoted", [False, True], ids=["as-typed", "quoted"])
def test_make_allocator_path_with_a_space_is_one_error_line(quoted, tmp_path):
    """``ALLOCATOR=<tmp>/my lib/libx.so`` (the file exists): as typed, the shell splits the unquoted
    ``AUTOATTEND_ALLOCATOR=$(ALLOCATOR)`` and says "/bin/sh: 1: lib/libx.so: not found" (status 2); quoted by the
    user (``ALLOCATOR="'...'"``), ``src.utils.allocator`` accepts the path and prints it, and LD_PRELOAD, which
    splits on spaces, makes ld.so print "ERROR: ld.so: object '<tmp>/my' from LD_PRELOAD cannot be preloaded"
    (twice) and the run go on with the system malloc. Expected: one ``error: AUTOATTEND_ALLOCATOR=...`` line (a path
    LD_PRELOAD cannot hold), status 2, before any run (here ``TASK=nope``, which would fail at once).

    Was: an ALLOCATOR path holding a space: a shell error, or ld.so's errors and a run on the system malloc. Now:
    src.utils.allocator refuses a path holding a space or ':' (ld.so splits LD_PRELOAD at them) in one line, and the
    Makefile passes ALLOCATOR as one shell word."""
    lib = tmp_path / "my lib" / "libx.so"
    lib.parent.mkdir()
    lib.write_bytes(b"")
    proc = _make("search", "TASK=nope", f"ALLOCATOR='{lib}'" if quoted else f"ALLOCATOR={lib}", tmp=tmp_path)
    assert _one_error_line(proc, "error: AUTOATTEND_ALLOCATOR="), proc.stderr[-2000:]


@pytest.mark.parametrize("target", ["search", "install-locked"])
def test_make_venv_with_a_space_is_one_folder_or_one_error_line(target, tmp_path):
    """``make search VENV="<tmp>/my venv"``: ``$(PY)`` is two make targets, and the shell runs ``python -m venv
    <tmp>/my venv`` (after "test: <tmp>/my: unexpected operator"): two virtualenvs, ``<tmp>/my`` and ``venv/`` in
    the checkout (the stand-in ``PYTHON=`` records the call and stops make). ``make install-locked`` with it says
    "/bin/sh: 1: test: <tmp>/my: unexpected operator" then "error: <tmp>/my venv exists", which it does not.
    Expected: the virtualenv made in ``<tmp>/my venv``, or one ``error:`` line saying VENV cannot hold a space,
    before any Python.

    Was: VENV holding a space: two virtualenvs asked for (one of them venv/ in the checkout), or install-locked's
    false 'exists'. Now: the Makefile refuses a VENV holding a space in one error line before any target runs (make
    cannot name such a file)."""
    fake, log = _stand_in_python(tmp_path)
    venv = tmp_path / "my venv"
    proc = _make(target, f"VENV={venv}", f"PYTHON={fake}", tmp=tmp_path, interpreter=False)
    calls = _calls(log)
    assert not venv.exists()
    refused = not calls and proc.stderr.startswith("error:") and "exists" not in proc.stderr
    assert calls[:1] == [["-m", "venv", str(venv)]] or refused, (calls, proc.stderr)


def test_make_install_locked_with_an_empty_venv_says_it_needs_one(tmp_path):
    """``VENV=`` (empty): ``test ! -e`` is false, so the error is "error:  exists; make install-locked builds a new
    virtualenv: remove it or give VENV=<new dir>", naming nothing that exists. Expected: one line saying make
    install-locked needs VENV=<new dir>.

    Was: make install-locked VENV= says 'error:  exists'. Now: install-locked checks VENV is given first."""
    fake, log = _stand_in_python(tmp_path)
    proc = _make("install-locked", "VENV=", f"PYTHON={fake}", tmp=tmp_path, interpreter=False)
    assert not _calls(log) and _one_error_line(proc, "error: make install-locked needs VENV="), proc.stderr


def test_make_report_reads_a_run_folder_with_a_space(searched, data):
    """``make report DIR="<tmp>/my run"`` runs ``python -m src.report <tmp>/my run`` unquoted: "error: <tmp>/my: no
    such directory (expected a run directory or a folder of them)", status 2. Expected: the run's table, as ``make
    evaluate`` and ``make predict`` read that folder (and as help's "DIR=<folder>" says: one folder).

    Was: make report splits a DIR holding a space (evaluate and predict quote it). Now: the Makefile passes DIR,
    FILE, ARCH and EXP to their commands as one shell word each."""
    tmp, run = searched
    proc = _make("report", f"DIR={run}", tmp=tmp, data=data)
    assert proc.returncode == 0 and "| my run | search | sst2 | finished |" in proc.stdout, proc.stderr[-2000:]


def test_make_report_defaults_to_where_the_runs_are_written(tmp_path):
    """With ``AUTOATTEND_OUTPUT_DIR`` set, ``make search`` writes under it, but ``make report`` (README: "a table of
    every run under outputs/") reads ``DIR ?= outputs``: "error: outputs: no such directory" in a checkout without
    ./outputs, another folder's runs in one with it. Expected: the runs under ``$AUTOATTEND_OUTPUT_DIR``, which
    paths.output_dir and the run directories follow.

    Was: make report reads ./outputs where AUTOATTEND_OUTPUT_DIR sends the runs. Now: make report without DIR reads
    $AUTOATTEND_OUTPUT_DIR where it is set, else outputs/."""
    write_finished_run(tmp_path / "out" / "sst2" / "search" / "2026-12-07_00-00-00",
                       {"task.name": "sst2", "seed": 0}, test=0.8)
    proc = _make("report", tmp=tmp_path)
    assert proc.returncode == 0 and "2026-12-07_00-00-00" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize("args", [
    ("evaluate", 'DIR=/nowhere/a"b'), ("predict", "DIR=/nowhere", 'FILE=/nowhere/a"b'),
    ("retrain", 'ARCH=/nowhere/a"b'), ("report", 'DIR=/nowhere/a"b'), ("reproduce", 'EXP=a"b'),
    ("reproduce", "EXP=cora_default x"),
], ids=["evaluate", "predict", "retrain", "report", "reproduce", "reproduce-space"])
def test_make_values_with_quotes_are_one_error_line(args, tmp_path):
    """A value with ``"`` breaks the recipe's quoting: "/bin/sh: 1: Syntax error: Unterminated quoted string" (or '"("
    unexpected', '";" unexpected'), status 2, from the argument check or the command; ``EXP="cora_default x"`` gives
    "/bin/sh: 1: test: experiments/conf/experiment/cora_default: unexpected operator" before its error line.
    Expected: the one ``error:`` line the command gives for that missing path or name.

    Was: a double quote in a make value is a /bin/sh syntax error; a space in EXP adds 'test: unexpected operator'.
    Now: each value is one shell word, single-quoted (src.retrain's arch= a Hydra double-quoted string inside it)."""
    proc = _make(*args, tmp=tmp_path)
    assert _one_error_line(proc, "error:"), proc.stderr[-2000:]


def test_make_retrain_takes_an_arch_folder_with_an_apostrophe(tmp_path):
    """``ARCH=<tmp>/bob's run`` (a folder) becomes ``"arch='<tmp>/bob's run'"``: "error: cannot parse the override
    "arch='<tmp>/bob's run'": mismatched input 's' expecting <EOF> (quote a value with special characters ...)",
    which make's users cannot do. Expected: the project's check of the folder, as for one holding a space or ``=``:
    "error: arch=<tmp>/bob's run: a directory without search/best_arch.yaml ...".

    Was: ARCH holding a single quote is a Hydra parse error of an override the user did not write. Now: ARCH reaches
    Hydra as a double-quoted string (its double quotes escaped), inside one single-quoted shell word."""
    folder = tmp_path / "bob's run"
    folder.mkdir()
    proc = _make("retrain", "PRELOAD=", f"ARCH={folder}", f"ARGS=hydra.run.dir={tmp_path / 'r'}", tmp=tmp_path)
    assert _one_error_line(proc, f"error: arch={folder}: a directory without search/best_arch.yaml"), proc.stderr


def test_make_evaluate_takes_a_folder_with_a_dollar_sign(tmp_path):
    """``DIR=<tmp>/run$$1`` for the folder ``<tmp>/run$1`` (make's own spelling of a ``$``: ``DIR=<tmp>/run$1`` is
    make's variable ``1``, empty, before any recipe runs) becomes ``$1``, which the shell expands inside the
    recipe's double quotes: "<tmp>/run" is read, "error: <tmp>/run: no such directory". Expected: the folder named,
    "error: <tmp>/run$1: not a run directory (no .hydra/config.yaml)".

    Was: a '$' in DIR is expanded twice (make, then the shell): another path is read. Now: DIR reaches the shell
    single-quoted, so what make gives is read as it is."""
    folder = tmp_path / "run$1"
    folder.mkdir()
    proc = _make("evaluate", f"DIR={tmp_path}/run$$1", tmp=tmp_path)
    assert _one_error_line(proc, f"error: {folder}: not a run directory"), proc.stderr


@pytest.mark.parametrize("target", ["evaluate", "predict"])
def test_make_evaluate_and_predict_expand_a_tilde(target, tmp_path):
    """``DIR=~/run`` as zsh or sh pass it (bash expands ``~`` after ``=`` itself): the recipe's double quotes keep the
    ``~`` and src.evaluate / src.predict do not expand it: "error: ~/run: no such directory" ("... no such run
    directory or model file" from predict), though the folder exists (make report DIR=~/run reads it: its recipe
    does not quote DIR; src.retrain's arch= expands ``~``). Expected: ``$HOME/run`` read: "error: <home>/run: not a
    run directory ..." for this empty folder.

    Was: make evaluate and predict leave a '~' in DIR unexpanded; report and retrain's ARCH expand it. Now:
    src.evaluate, src.predict (the target, --file, --graph) and src.report take a leading ~ as the home folder, as a
    run's paths do."""
    (tmp_path / "run").mkdir()
    texts = tmp_path / "texts.txt"
    texts.write_text("a film\n")
    args = ("DIR=~/run", f"FILE={texts}") if target == "predict" else ("DIR=~/run",)
    proc = _make(target, *args, tmp=tmp_path, env=_env(tmp_path, HOME=str(tmp_path)))
    assert _one_error_line(proc, f"error: {tmp_path / 'run'}: not a run directory"), proc.stderr


def test_make_experiments_fails_when_it_lists_nothing(tmp_path):
    """``make -f <repo>/Makefile experiments`` from another folder: "awk: cannot open
    experiments/conf/experiment/*.yaml (No such file or directory)", nothing listed, status 0 (the loop's status is
    the last pipeline's, its awk's). Expected: the listing (the configs are the checkout's), or a non-zero status
    with one error line.

    Was: make experiments exits 0 when its listing fails (make -f from another folder). Now: make experiments
    finding no config is one error line, status 2."""
    proc = _make("-f", str(ROOT / "Makefile"), "experiments", tmp=tmp_path, cwd=tmp_path, interpreter=False)
    assert (proc.returncode == 0) == ("cora_default" in proc.stdout) and "awk:" not in proc.stderr, proc.stderr


def test_make_experiments_into_a_closed_pipe_is_quiet(tmp_path):
    """The listing piped into ``head -1``: once head has gone, the loop's next write dies of SIGPIPE and make says
    "make: *** [Makefile:87: experiments] Error 141" (status 2), where the project's commands end quietly on a
    closed output. Expected: no make error. (A folder of 200 configs keeps the loop writing after head has read its
    line.)

    Was: make experiments | head: 'make: *** [Makefile:..: experiments] Error 141'. Now: the listing's status 141
    (SIGPIPE: its reader gone) is taken as success."""
    configs = tmp_path / "configs"
    configs.mkdir()
    for i in range(200):
        (configs / f"c{i:03d}.yaml").write_text(f"# @package _global_\n# Config {i}. More.\nseed: {i}\n")
    proc = subprocess.run(f"make --no-print-directory experiments EXP_DIR={configs} | head -1", shell=True, cwd=ROOT,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["c000", "Config", "0."] and "make: ***" not in proc.stderr, proc.stderr


def test_make_test_passes_args_to_pytest(tmp_path):
    """Every other target hands ARGS to its command; ``make test ARGS='-k allocator'`` runs ``pytest -q -n auto
    --maxprocesses 4 -m "not slow"``, the whole fast suite (6-11 min), saying nothing. Expected: ARGS on the pytest
    command line (or the target refusing it).

    Was: make test ARGS=... ignores ARGS and runs the whole suite. Now: make test and make test-full add ARGS to
    pytest's command line."""
    proc = _make("-n", "test", "ARGS=-k allocator", tmp=tmp_path)
    assert proc.returncode == 0 and "-k allocator" in proc.stdout, proc.stdout


def test_make_help_names_every_target_a_user_runs():
    """``make help`` names each target but ``install`` (README: "PIP_EXTRA_INDEX_URL=... make install"; lock.py: "make
    lock ... (after make install)"). Expected: every phony target other than help and the ``-args`` checks.

    Was: make help leaves out make install, which README and docs/install.md use. Now: make help names make install."""
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", text, re.M).group(1).split()
    shown = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                           env=_env(Path("/nonexistent")), check=True).stdout
    named = set(re.findall(r"make ([\w-]+)", shown))
    assert sorted(t for t in phony if t != "help" and not t.endswith("-args") and t not in named) == []


def test_the_make_tests_do_not_take_the_settings_of_the_make_that_runs_them(tmp_path, monkeypatch):
    """Was: ``make test ARGS=--durations=25`` exports ARGS (a command-line variable) to the tests' environment, and
    every make a test ran passed it on: 17 tests failed ('unrecognized arguments: --durations=25'). Now: the tests'
    environment leaves out the Makefile's settings (its ``?=`` variables)."""
    monkeypatch.setenv("ARGS", "--durations=25")
    monkeypatch.setenv("TASK", "cora")
    proc = _make("-n", "search", tmp=tmp_path)
    assert proc.returncode == 0 and "+task=sst2" in proc.stdout and "--durations" not in proc.stdout, proc.stdout
    assert {"ARGS", "TASK", "BUDGET", "DIR", "TEST_WORKERS"} <= set(MAKEFILE_SETTINGS)
