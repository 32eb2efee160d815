"""Disk accumulation walk (2026-12-07, session 48): what piles up on disk over weeks of use (caches shared by many
runs, runs interrupted and resumed, offloaded optimizer snapshots, temporary files), and which of it is a leak.

The leaks were strict xfails and are mended (their docstrings say "Was: ... Now: ..."; the last two, cache entries of
source files changed since kept in paths.cache_dir for good, in session 51). The plain tests protect verified
behaviours that no other test covered."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import (cli, cli_command, cli_interrupted_once, write_tiny_planetoid, write_tiny_ppi,
                           write_tiny_sst)

# an offloaded supernet with a checkpoint after every batch: 400 training sentences, 256 trained, 8 steps an epoch
OFFLOAD = ("+task=sst2", "budget=smoke", "hardware.kernels=torch", "supernet.optimizer_offload=true",
           "supernet.checkpoint_every_min=0", "supernet.epochs=4", "supernet.max_steps=-1", "supernet.train_subset=256",
           "retrain.seeds=1")


@pytest.fixture
def sst400(tmp_path):
    return write_tiny_sst(tmp_path / "data", n_train=400, n_dev=40, n_test=40)


def _snapshots(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("adam_moments.*"))


def _named_snapshot(supernet_dir: Path) -> str:
    import torch

    ckpt = torch.load(supernet_dir / "last.ckpt", map_location="cpu", weights_only=False)
    return ckpt["optimizer_states"][0]["offloaded_moments"]["file"]


@pytest.mark.slow  # the snapshots a finished or killed offloaded supernet keeps: the two tests below
def test_a_resumed_offloaded_supernet_keeps_at_most_the_newest_two_snapshots(sst400, tmp_path):
    """Was: OffloadedMoments.restore sets _snapshots = [restored file] and forgets the interrupted invocation's other
    snapshot (adam_moments.<n-1>.bin), so every resume of an offloaded supernet leaves one snapshot as large as
    Adam's moments (907 MiB for the paper supernet) that nothing reads or removes; fix: on restore, remove (or
    rotate out) the folder's other snapshots. Now: OffloadedMoments.restore removes the folder's other snapshots
    (optim.remove_other_snapshots)."""
    run_dir = tmp_path / "run"
    supernet_dir = run_dir / "supernet"
    proc = cli_interrupted_once(supernet_dir / "adam_moments.5.bin", "src.search", *OFFLOAD, data_dir=sst400,
                                tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert len(_snapshots(supernet_dir)) == 2  # the interrupted invocation's newest two
    proc = cli("src.search", *OFFLOAD, data_dir=sst400, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (supernet_dir / "DONE").exists()
    left = _snapshots(supernet_dir)
    assert _named_snapshot(supernet_dir) in left
    assert len(left) <= 2, left  # now: ['adam_moments.31.bin', 'adam_moments.32.bin', 'adam_moments.4.bin'] or so


def test_a_finished_offloaded_supernet_keeps_only_the_snapshot_its_checkpoint_names(sst400, tmp_path):
    """Was: a finished offloaded supernet keeps two snapshots (OffloadedMoments.snapshot keeps the newest two), but
    last.ckpt names only the newest and nothing writes another checkpoint after DONE: the older one (907 MiB float32
    for the paper supernet) is dead weight, and docs/usage.md's run directory lists no adam_moments file at all;
    fix: keep only the named snapshot once the supernet is DONE (and list it in 'What a run directory holds'). Now:
    train_supernet keeps only the newest snapshot once DONE is written; docs/usage.md says what stays."""
    run_dir = tmp_path / "run"
    proc = cli("src.search", *OFFLOAD, data_dir=sst400, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    supernet_dir = run_dir / "supernet"
    assert (supernet_dir / "DONE").exists()
    assert _snapshots(supernet_dir) == [_named_snapshot(supernet_dir)]


def test_a_killed_snapshot_copy_is_removed_when_the_supernet_resumes(sst400, tmp_path):
    """Was: OffloadedMoments.snapshot copies into adam_moments.<n>.bin.partial before the rename; a process killed
    during that copy (SIGKILL, the OOM killer) leaves the partial file (up to the moments' size) and nothing removes
    it unless a later checkpoint falls on the same step (intra-epoch checkpoints are time-based); fix: remove
    adam_moments.*.bin.partial when the stage resumes in the folder, as last_checkpoint does with
    remove_left_temporaries for last.ckpt. Now: the resume's restore removes every adam_moments.*.bin.partial
    (optim.remove_other_snapshots)."""
    run_dir = tmp_path / "run"
    supernet_dir = run_dir / "supernet"
    args = (*OFFLOAD[:4], "supernet.checkpoint_every_min=null", *OFFLOAD[5:])  # epoch ends: steps 8, 16, 24, 32
    proc = cli_interrupted_once(supernet_dir / "adam_moments.8.bin", "src.search", *args, data_dir=sst400,
                                tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 130, proc.stderr[-3000:]
    # what a SIGKILL inside snapshot(13) leaves (an intra-epoch checkpoint of the killed invocation)
    partial = supernet_dir / "adam_moments.13.bin.partial"
    partial.write_bytes(b"\0" * 4096)
    proc = cli("src.search", *args, data_dir=sst400, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not partial.exists()


def test_a_graph_run_leaves_no_generated_modules_in_tmpdir(tmp_path):
    """Was: PyG's torch_geometric.template.module_from_template writes each MessagePassing class's generated propagate
    module to tempfile.NamedTemporaryFile(delete=False) in $TMPDIR, once per class per process (every worker process
    too), and never removes it: 40+ files (~10 KB each) per graph search, 10,886 files (99 MiB) in /tmp after two
    days of this project's runs; fix: a private temporary folder per process removed at exit, or unlink the file
    once the module is loaded (src/models/graph.py or src/utils). Now: every entry point gives itself a temporary
    folder under TMPDIR, removed at its end (restart.use_private_tempdir)."""
    import tempfile

    data = write_tiny_planetoid(tmp_path / "data")
    # a short TMPDIR, as /tmp is: under a longer one than 35 bytes (this test's tmp_path) no private folder is made,
    # since multiprocessing's sockets under it would pass AF_UNIX's limit (restart.use_private_tempdir)
    tmpdir = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        command = cli_command("src.retrain", "+task=cora", "arch=gcn", "budget=smoke", "hardware.kernels=torch",
                              data_dir=data, tmp=tmp_path, run_dir=tmp_path / "run")
        command["env"]["TMPDIR"] = str(tmpdir)
        proc = subprocess.run(**command, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert sorted(p.name for p in tmpdir.rglob("*")) == []  # nothing left, the private folder neither
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def test_the_sst_cache_drops_an_entry_its_changed_source_can_never_match_again(tmp_path):
    """Was: the SST cache (sst<n>-<digest>.pt) is keyed by the tree files' size, mtime and ctime; once a file changes
    (ctime only moves forward) the old entry can never be read again, yet it stays in paths.cache_dir for good (a
    full copy of the data and word vectors each time), and the docs neither say so nor how to clear it beyond `make
    clean` (./.cache only, not $AUTOATTEND_CACHE_DIR); fix: remove superseded entries of the same source paths when
    writing. Now: writing an entry deletes the entries (of any settings) whose key names a tree or word-vector file
    that now has another stamp; docs/usage.md says so."""
    from src.data.sst import SSTDataModule

    data, cache = tmp_path / "data", tmp_path / "cache"
    write_tiny_sst(data)
    SSTDataModule(str(data), 2, train_level="sentence", cache_dir=str(cache)).prepare_data()
    SSTDataModule(str(data), 5, train_level="sentence", cache_dir=str(cache)).prepare_data()
    write_tiny_sst(data, seed=1)  # the trees replaced (a fixed release, a new copy)
    SSTDataModule(str(data), 2, train_level="sentence", cache_dir=str(cache)).prepare_data()
    assert len(list(cache.glob("sst2-*.pt"))) == 1, sorted(p.name for p in cache.iterdir())
    assert not list(cache.glob("sst5-*.pt"))  # SST-5's entry of the old trees too


def test_the_sst_cache_keeps_the_entries_whose_files_are_as_they_were_and_drops_those_of_changed_word_vectors(
        tmp_path):
    """Only entries built from a file that has changed since go: entries of other settings (SST-5, another
    max_len) and of another data folder built from unchanged files stay and are read again without a rebuild; an
    entry whose GloVe file changed goes when the next entry of that file is written."""
    from src.data.sst import SSTDataModule

    data, other, cache, glove = tmp_path / "data", tmp_path / "other", tmp_path / "cache", tmp_path / "glove.txt"
    write_tiny_sst(data)
    write_tiny_sst(other, seed=2)
    glove.write_text("the " + " ".join(["0.5"] * 300) + "\n")

    def module(folder: Path, **settings) -> SSTDataModule:
        return SSTDataModule(str(folder), settings.pop("num_classes", 2), train_level="sentence",
                             cache_dir=str(cache), **settings)

    kept = [module(data, num_classes=5), module(data, max_len=16), module(other)]
    for m in kept:
        m.prepare_data()
    with_glove = module(data, glove_path=str(glove))
    with_glove.prepare_data()
    assert len(list(cache.glob("sst*.pt"))) == 4
    glove.write_text("the " + " ".join(["0.25"] * 300) + "\n")  # the word vectors replaced
    renewed = module(data, glove_path=str(glove))
    renewed.prepare_data()
    assert sorted(cache.glob("sst*.pt")) == sorted([m.cache_path for m in kept] + [renewed.cache_path])
    for m in kept:
        assert m._read_cache() is not None  # still this module's entry, read as it is



def test_a_source_counts_as_changed_when_its_size_or_either_time_differs_and_not_when_unreadable(tmp_path):
    """sources_changed: a file recorded with its stamp (size, mtime, ctime) has changed when any of the three
    differs now (``cp -p`` over it keeps size and mtime, not ctime); a file that cannot be
    read now (gone, a disk not mounted) decides nothing, nor does a path recorded without a stamp (a GloVe file
    named but missing when the entry was built). Lists and nested dicts are searched."""
    from src.utils.io import file_stamp, source_record, sources_changed

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one")
    b.write_text("two")
    record = source_record([a, Path(os.path.relpath(b))])
    assert [f["path"] for f in record["files"]] == [str(a.resolve()), str(b.resolve())]
    assert not sources_changed(record) and not sources_changed({"nested": [record]})
    stamp = file_stamp(b)
    for field, moved in (("size", 1), ("mtime_ns", 1), ("ctime_ns", 1)):
        assert sources_changed({"x": [{"path": str(b), **{**stamp, field: stamp[field] - moved}}]}), field
    assert not sources_changed({"files": [{"path": str(tmp_path / "gone"), **stamp}]})
    assert not sources_changed({"glove": {"path": str(b)}})


def test_the_superseded_sweeps_leave_the_entry_being_written_and_other_processes_builds(tmp_path):
    """remove_superseded_folders / _files never delete ``keep`` (the entry just written) nor a dot-named entry (a
    build in progress, :data:`BUILD_PREFIX`), whatever their records say; other entries of changed files go."""
    import torch

    from src.utils.io import SOURCES_FILE, remove_superseded_files, remove_superseded_folders

    source = tmp_path / "source.txt"
    source.write_text("v1")
    stale = {"files": [{"path": str(source), "size": 2, "mtime_ns": 1, "ctime_ns": 1}]}
    parent = tmp_path / "cache"
    for name in ("kept", ".building-1.x-kept-abc", "old"):
        (parent / name).mkdir(parents=True)
        (parent / name / SOURCES_FILE).write_text(json.dumps(stale))
    assert remove_superseded_folders(parent, keep=parent / "kept") == [parent / "old"]
    assert sorted(p.name for p in parent.iterdir()) == [".building-1.x-kept-abc", "kept"]
    for name in ("keep.pt", ".keep.pt.tmp.pt", "old.pt"):
        torch.save({"key": stale}, parent / name)
    assert remove_superseded_files(parent, "*.pt", keep=parent / "keep.pt") == [parent / "old.pt"]
    assert sorted(p.name for p in parent.glob("*.pt")) == [".keep.pt.tmp.pt", "keep.pt"]

def test_the_planetoid_cache_drops_a_folder_its_changed_source_can_never_match_again(tmp_path):
    """Was: Planetoid's cache folder planetoid/<stamp>/ is keyed by the raw files' stamps; a changed raw file makes a
    new folder (raw copies + processed data) and the old one, which no setting can read again, stays for good; fix:
    remove superseded stamps of the same set. Now: each folder records its raw files in sources.json, and a run
    deletes the sibling folders whose recorded files have changed since (Planetoid and PPI)."""
    from src.data.planetoid import PlanetoidDataModule

    data, cache = tmp_path / "data", tmp_path / "cache"
    write_tiny_planetoid(data)
    PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False).setup()
    write_tiny_planetoid(data, seed=1)  # the raw files replaced
    PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False).setup()
    assert len([p for p in (cache / "planetoid").iterdir() if not p.name.startswith(".")]) == 1



def test_graph_caches_keep_the_folders_of_unchanged_files_and_drop_those_of_changed_ones(tmp_path):
    """Planetoid's folder of another data folder (files as they were) and a folder written before the source
    record (no sources.json, nothing to tell) stay; PPI's folder of changed raw files goes as Planetoid's does."""
    from src.data.planetoid import PlanetoidDataModule
    from src.data.ppi import PPIDataModule

    data, other, cache = tmp_path / "data", tmp_path / "other", tmp_path / "cache"
    write_tiny_planetoid(data)
    write_tiny_planetoid(other, seed=2)
    PlanetoidDataModule("cora", data_dir=str(other), cache_dir=str(cache), download=False).setup()
    legacy = cache / "planetoid" / "0123456789ab"
    (legacy / "Cora" / "raw").mkdir(parents=True)
    PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False).setup()
    before = {p.name for p in (cache / "planetoid").iterdir()}
    write_tiny_planetoid(data, seed=1)
    PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False).setup()
    after = {p.name for p in (cache / "planetoid").iterdir()}
    assert len(before) == 3 and len(after) == 3 and len(before & after) == 2 and legacy.name in after, (before, after)

    write_tiny_ppi(data)
    PPIDataModule(data_dir=str(data), cache_dir=str(cache), download=False).setup()
    first = {p.name for p in (cache / "ppi").iterdir()}
    write_tiny_ppi(data, seed=1)
    PPIDataModule(data_dir=str(data), cache_dir=str(cache), download=False).setup()
    second = {p.name for p in (cache / "ppi").iterdir()}
    assert len(first) == len(second) == 1 and first != second, (first, second)


def test_a_graph_cache_folder_without_its_source_record_on_a_read_only_disk_is_read_as_it_is(tmp_path, monkeypatch):
    """A Planetoid folder an older autoattend wrote (no sources.json) gets its record on the next run; where the
    cache cannot be written (a shared read-only one) it is read as it is, not refused."""
    import errno

    import src.utils.io
    from src.data.planetoid import PlanetoidDataModule

    data, cache = tmp_path / "data", tmp_path / "cache"
    write_tiny_planetoid(data)
    PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False).setup()
    (record,) = (cache / "planetoid").glob("*/sources.json")
    written = record.read_text()
    record.unlink()
    PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False).setup()
    assert record.read_text() == written
    record.unlink()

    def refused(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(src.utils.io, "atomic_write_json", refused)
    again = PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False)
    again.setup()
    assert not record.exists() and again.num_classes == 3 and again.graph["x"].shape[0] > 0

# ---- verified behaviours -------------------------------------------------------------------------------------------

@pytest.mark.slow  # tests/test_stage_boundary_findings.py: a text seed stopped after its record keeps no checkpoint
def test_a_finished_retrain_seed_interrupted_and_resumed_holds_no_checkpoint(sst400, tmp_path):
    """A retrain seed stopped inside its training (its last.ckpt on disk) and resumed ends with seed_<s>.json and
    seed_<s>/{model.pt, metrics.csv, hparams.yaml}: the checkpoint and any temporary file are gone."""
    run_dir = tmp_path / "run"
    args = ("+task=sst2", "budget=smoke", "hardware.kernels=torch", "retrain.checkpoint_every_min=0",
            "retrain.epochs=4", "retrain.max_steps=-1", "retrain.train_subset=256", "retrain.eval_every=2",
            "retrain.seeds=1")
    proc = cli_interrupted_once(run_dir / "retrain" / "seed_0" / "last.ckpt", "src.search", *args, data_dir=sst400,
                                tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 130, proc.stderr[-3000:]
    proc = cli("src.search", *args, data_dir=sst400, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    retrain = run_dir / "retrain"
    assert sorted(str(p.relative_to(retrain)) for p in retrain.rglob("*")) == [
        "results.json", "seed_0", "seed_0.json", "seed_0/hparams.yaml", "seed_0/metrics.csv", "seed_0/model.pt"]


def test_a_killed_sst_cache_build_is_removed_by_the_next_build(tmp_path):
    """The temporary file of an SST cache write whose process died (``.building-<pid>.<machine>-...``) is removed
    when the cache is next written in that folder."""
    from src.data.sst import SSTDataModule
    from src.utils.io import build_prefix

    data, cache = write_tiny_sst(tmp_path / "data"), tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    left = cache / (build_prefix("sst2-0123456789abcdef.pt").replace(f"-{os.getpid()}.", f"-{pid}.") + "abc")
    left.write_bytes(b"\0" * 1024)
    SSTDataModule(str(data), 2, train_level="sentence", cache_dir=str(cache)).prepare_data()
    assert not left.exists()
    assert [p.name.split("-")[0] for p in cache.iterdir()] == ["sst2"]


@pytest.mark.slow  # the reads are those of tests/test_graph_pipeline.py's evaluate and predict tests
def test_evaluate_and_predict_write_nothing_into_a_graph_run_or_its_cache(tmp_path):
    """``src.evaluate`` and ``src.predict`` (the run's graph and ``--graph FILE``) read a finished run: its folder
    and the data cache are byte for byte as they were."""
    import numpy as np

    data = write_tiny_planetoid(tmp_path / "data")
    run_dir = tmp_path / "run"
    proc = cli("src.retrain", "+task=cora", "arch=gcn", "budget=smoke", "hardware.kernels=torch", data_dir=data,
               tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def listing() -> dict:
        return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for folder in (run_dir, tmp_path / "cache")
                for p in sorted(folder.rglob("*"))}

    before = listing()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "new.npz", x=(rng.random((30, 24)) > 0.7).astype(np.float32),
             edge_index=rng.integers(0, 30, (2, 60)))
    for args in (("src.evaluate", str(run_dir)), ("src.predict", str(run_dir)),
                 ("src.predict", str(run_dir), "--graph", str(tmp_path / "new.npz"))):
        proc = cli(*args, data_dir=data, tmp=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    assert listing() == before


@pytest.mark.slow  # the file unlinked once mapped: tests/test_optim.py::test_offloaded_float32_state_is_exactly_...
def test_an_interrupted_offloaded_supernet_leaves_no_unlinked_moments_file(sst400, tmp_path):
    """The mapped moments file (``.adam_moments.<pid>.<id>.bin``) is unlinked as soon as it is mapped, so neither
    a SIGTERM nor a SIGKILL leaves it in the run's supernet folder."""
    run_dir = tmp_path / "run"
    supernet_dir = run_dir / "supernet"
    for signum, status, step in ((signal.SIGTERM, 143, 3), (signal.SIGKILL, -9, 9)):
        proc = cli_interrupted_once(supernet_dir / f"adam_moments.{step}.bin", "src.search", *OFFLOAD, data_dir=sst400,
                                    tmp=tmp_path, run_dir=run_dir, signum=signum)
        assert proc.returncode == status, proc.stderr[-3000:]
        assert list(supernet_dir.glob(".adam_moments.*")) == []


def test_the_private_temporary_folder_is_made_once_and_not_under_a_long_tmpdir(tmp_path, monkeypatch):
    """``use_private_tempdir`` in a process that has one returns it (no folder inside the folder), and a TMPDIR so
    long that multiprocessing's sockets under a private folder would pass AF_UNIX's 107 bytes is left as it is
    (a graph run's workers failed with "AF_UNIX path too long" under a test's nested temporary folder)."""
    import tempfile

    from src.utils import restart

    monkeypatch.setattr(restart.atexit, "register", lambda *args, **kwargs: None)
    short = Path(tempfile.mkdtemp(dir="/tmp"))  # the test's own tmp_path is too long for the AF_UNIX limit
    try:
        monkeypatch.setenv("TMPDIR", str(short))
        monkeypatch.setattr(tempfile, "tempdir", str(short))
        private = restart.use_private_tempdir()
        assert private is not None and private.parent == short and tempfile.gettempdir() == str(private)
        assert restart.use_private_tempdir() == private
    finally:
        shutil.rmtree(short, ignore_errors=True)
    long = tmp_path / ("x" * 60)
    long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    assert restart.use_private_tempdir() is None and tempfile.gettempdir() == str(long)
