"""The malloc choice: what ``python -m src.utils.allocator`` tells the Makefile to preload, and what
a process reports as its allocator (``summary.json``, ``bench.json``, the run log)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.utils import allocator

ROOT = Path(__file__).resolve().parents[1]
LINUX = sys.platform.startswith("linux")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_system_choices_preload_nothing():
    for choice in ("system", "none", "glibc"):
        assert allocator.preload(choice) == ""


def test_env_variable_selects(monkeypatch):
    monkeypatch.setenv(allocator.ENV, "system")
    assert allocator.preload() == ""
    monkeypatch.setenv(allocator.ENV, "/no/such/libmalloc.so")
    with pytest.raises(allocator.AllocatorError, match="no such file"):
        allocator.preload()


def test_path_must_exist(tmp_path):
    lib = tmp_path / "libcustom.so"
    with pytest.raises(allocator.AllocatorError, match=str(lib)):
        allocator.preload(str(lib))
    lib.write_bytes(b"")
    assert allocator.preload(str(lib)) == str(lib)


def test_unknown_name_is_an_error():
    with pytest.raises(allocator.AllocatorError, match="ptmalloc3: unknown allocator"):
        allocator.preload("ptmalloc3")


@pytest.mark.skipif(not LINUX, reason="LD_PRELOAD allocators are Linux-only")
def test_missing_named_allocator_says_how_to_install(monkeypatch):
    monkeypatch.setattr(allocator, "find", lambda name: None)
    with pytest.raises(allocator.AllocatorError, match="apt install libjemalloc2"):
        allocator.preload("jemalloc")
    assert allocator.preload("auto") == ""  # auto falls back to the system malloc


@pytest.mark.skipif(not LINUX, reason="LD_PRELOAD allocators are Linux-only")
def test_auto_prefers_mimalloc_then_jemalloc(monkeypatch):
    found = {"mimalloc": None, "jemalloc": "libjemalloc.so.2"}
    monkeypatch.setattr(allocator, "find", lambda name: found[name])
    assert allocator.preload("auto") == "libjemalloc.so.2"
    found["mimalloc"] = "/x/libmimalloc.so"
    assert allocator.preload("auto") == "/x/libmimalloc.so"


def test_active_reads_the_mapped_libraries():
    glibc = ("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
             "7f02-7f03 r--p 00000000 00:00 0 [heap]\n")
    assert allocator.active(glibc) == "system malloc"
    mapped = glibc + "7f04-7f05 r-xp 00000000 08:01 2 /venv/site-packages/cmeel.prefix/lib/libmimalloc.so.3.4\n"
    assert allocator.active(mapped) == "mimalloc"
    assert allocator.active(glibc + "7f06-7f07 r-xp 0 08:01 3 /usr/lib/libjemalloc.so.2\n") == "jemalloc"


def test_cli_prints_the_library_or_fails_with_one_line():
    ok = _run("from src.utils.allocator import main; raise SystemExit(main())", AUTOATTEND_ALLOCATOR="system")
    assert ok.returncode == 0 and ok.stdout == "\n"
    bad = _run("from src.utils.allocator import main; raise SystemExit(main())",
               AUTOATTEND_ALLOCATOR="/no/such/libmalloc.so")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "error: AUTOATTEND_ALLOCATOR=/no/such/libmalloc.so: no such file (expected a malloc shared library)"]


@pytest.mark.skipif(not LINUX, reason="LD_PRELOAD allocators are Linux-only")
def test_preloaded_library_is_the_one_the_process_reports():
    lib = allocator.preload("auto")
    if not lib:
        pytest.skip("no mimalloc or jemalloc here (requirements/cpu.txt installs mimalloc on Linux)")
    code = "import torch; from src.utils.allocator import active; torch.randn(1000, 1000).sum(); print(active())"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                           timeout=120)
    preloaded = _run(code, LD_PRELOAD=lib)
    assert plain.returncode == 0 and preloaded.returncode == 0, plain.stderr + preloaded.stderr
    assert plain.stdout.strip() == "system malloc"
    assert preloaded.stdout.strip() in ("mimalloc", "jemalloc")


TRAINING_DIGEST = """
import hashlib, random, torch
from src.models.multi_arch import backward_archs
from src.models.text import TextClassifier
from src.space import FunctionalSpace
from src.utils.allocator import active
torch.set_num_threads(1)
torch.manual_seed(0)
space = FunctionalSpace(6)
model = TextClassifier.supernet(torch.randn(50, 8), 3, space, dim=16, heads=2, dropout=0.3, attn_dropout=0.3).train()
opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
rng = random.Random(1)
lengths = torch.randint(2, 12, (8,))
mask = torch.arange(12)[None, :] < lengths[:, None]
tokens = torch.randint(1, 50, (8, 12)) * mask
labels = torch.arange(8) % 3
digest = hashlib.sha256()
for step in range(3):
    opt.zero_grad(set_to_none=True)
    loss = backward_archs(model, tokens, mask, labels, space.sample_distinct(4, rng), workers=2)
    opt.step()
    digest.update(loss.detach().numpy().tobytes())
for p in model.parameters():
    digest.update(p.detach().numpy().tobytes())
print(active(), digest.hexdigest())
"""


@pytest.mark.skipif(not LINUX, reason="LD_PRELOAD allocators are Linux-only")
def test_training_is_bit_identical_under_the_preloaded_allocator():
    lib = allocator.preload("auto")
    if not lib:
        pytest.skip("no mimalloc or jemalloc here (requirements/cpu.txt installs mimalloc on Linux)")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain = subprocess.run([sys.executable, "-c", TRAINING_DIGEST], cwd=ROOT, capture_output=True, text=True,
                           env=env, timeout=300)
    preloaded = _run(TRAINING_DIGEST, LD_PRELOAD=lib, MIMALLOC_PURGE_DELAY="10000")
    assert plain.returncode == 0 and preloaded.returncode == 0, plain.stderr + preloaded.stderr
    (plain_name, plain_digest), (pre_name, pre_digest) = (r.stdout.strip().splitlines()[-1].rsplit(" ", 1)
                                                          for r in (plain, preloaded))
    assert plain_name == "system malloc" and pre_name in ("mimalloc", "jemalloc")
    assert pre_digest == plain_digest  # 3 supernet steps with dropout, 2 workers, Adam: same bits


RESTART_PROBE = ("import os, sys; from src.utils import allocator; allocator.reexec_with_preload(); "
                 "print(allocator.active(), os.environ.get(allocator.REEXEC_MARK), "
                 "os.environ.get('MIMALLOC_PURGE_DELAY'), sys.argv[1:])")


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LD_PRELOAD", allocator.REEXEC_MARK, allocator.ENV, "MIMALLOC_PURGE_DELAY")}
    result = subprocess.run([sys.executable, "-c", RESTART_PROBE, "a1", "+task=x"], cwd=ROOT, capture_output=True,
                            text=True, env={**clean, **env}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(" ", 3)


@pytest.mark.skipif(not LINUX, reason="LD_PRELOAD allocators are Linux-only")
def test_entry_points_restart_once_with_the_allocator_preloaded():
    lib = allocator.preload("auto")
    if not lib:
        pytest.skip("no mimalloc or jemalloc here (requirements/cpu.txt installs mimalloc on Linux)")
    name, mark, delay, argv = _probe()
    assert name in ("mimalloc", "jemalloc") and mark == "1" and delay == "10000"
    assert argv == "['a1', '+task=x']"  # the same command line after the restart
    assert _probe(MIMALLOC_PURGE_DELAY="5")[2] == "5"  # a user's setting is kept
    # no restart: opted out, already preloaded (the make targets), or already restarted once
    assert _probe(AUTOATTEND_ALLOCATOR="system")[:2] == ["system", "malloc"]
    assert _probe(LD_PRELOAD=lib)[1] == "None"
    assert _probe(**{allocator.REEXEC_MARK: "1"})[0] == "system"


@pytest.mark.skipif(not LINUX, reason="LD_PRELOAD allocators are Linux-only")
def test_a_missing_allocator_stops_an_entry_point_with_one_line():
    code = "from src.utils.allocator import entry_point_preload; entry_point_preload(); print('ran')"
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", allocator.REEXEC_MARK)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**env, allocator.ENV: "/no/such/libmalloc.so"})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: AUTOATTEND_ALLOCATOR=/no/such/libmalloc.so: no such file (expected a malloc shared library)"]


@pytest.mark.skipif(not LINUX, reason="LD_PRELOAD allocators are Linux-only")
def test_a_restart_the_system_refuses_runs_on_with_the_system_malloc(monkeypatch, capsys):
    """A sandbox that forbids ``exec`` made every entry point a PermissionError traceback."""
    lib = allocator.preload("auto")
    if not lib:
        pytest.skip("no mimalloc or jemalloc here (requirements/cpu.txt installs mimalloc on Linux)")
    for key in ("LD_PRELOAD", allocator.REEXEC_MARK, allocator.ENV):
        monkeypatch.delenv(key, raising=False)

    def refused(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "execve", refused)
    # an entry point's own temporary folder would be this test process's, under every later test's TMPDIR
    monkeypatch.setattr("src.utils.restart.use_private_tempdir", lambda: None)
    allocator.entry_point_preload()  # returns: the command goes on
    assert capsys.readouterr().err == (f"note: could not restart with {lib} preloaded (Operation not permitted); "
                                       "running with the system malloc\n")


def test_an_empty_choice_is_auto_a_relative_path_is_a_file_and_off_linux_auto_is_nothing(monkeypatch, tmp_path):
    """``AUTOATTEND_ALLOCATOR=`` (empty or blanks, as ``make`` passes an unset variable) means
    ``auto``; a relative path (``libs/libx.so``) is a library file, not an allocator name; on another
    system ``auto`` preloads nothing and a named allocator is refused."""
    monkeypatch.setattr(allocator, "find", lambda name: {"mimalloc": "/x/libmimalloc.so", "jemalloc": None}[name])
    for empty in ("", "  "):
        monkeypatch.setenv(allocator.ENV, empty)
        assert allocator.preload() == "/x/libmimalloc.so"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "libx.so").write_bytes(b"")
    assert allocator.preload("libs/libx.so") == "libs/libx.so"
    with pytest.raises(allocator.AllocatorError, match="AUTOATTEND_ALLOCATOR=libs/liby.so: no such file"):
        allocator.preload("libs/liby.so")
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.preload("auto") == ""
    with pytest.raises(allocator.AllocatorError,
                       match="AUTOATTEND_ALLOCATOR=jemalloc: preloading an allocator is supported on Linux only"):
        allocator.preload("jemalloc")


def test_find_takes_the_pip_wheels_mimalloc_first_and_a_folder_is_no_library(monkeypatch, tmp_path):
    """``find("mimalloc")`` is the ``cmeel-mimalloc`` wheel's library where it is installed, else the
    system's; the other names ask the system only; a folder given as the library is refused."""
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.sys")
    monkeypatch.setattr(allocator, "_pip_mimalloc", lambda: "/venv/libmimalloc.so")
    assert allocator.find("mimalloc") == "/venv/libmimalloc.so"
    assert allocator.find("jemalloc") == "libjemalloc.so.sys"
    monkeypatch.setattr(allocator, "_pip_mimalloc", lambda: None)
    assert allocator.find("mimalloc") == "libmimalloc.so.sys"
    with pytest.raises(allocator.AllocatorError, match="unknown allocator 'ptmalloc3'"):
        allocator.find("ptmalloc3")
    with pytest.raises(allocator.AllocatorError, match=f"AUTOATTEND_ALLOCATOR={tmp_path}: no such file"):
        allocator.preload(str(tmp_path))


def test_active_names_an_allocator_only_for_its_own_library():
    """A mapped library whose name merely contains an allocator's (a profiler's shim) is not it."""
    maps = ("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
            "7f02-7f03 r-xp 00000000 08:01 2 /venv/site-packages/_jemalloc_stats.cpython-311.so\n")
    assert allocator.active(maps) == "system malloc"
    assert allocator.active(maps + "7f04-7f05 r-xp 0 08:01 3 /usr/lib/libtcmalloc_minimal.so.4\n") == "tcmalloc"
