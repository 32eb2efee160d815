"""Robustness walk (2026-12-07): SIGKILL (the OOM killer, ``kill -9``) at chosen moments of a run,
two processes sharing a cache, unwritable folders found mid-run and files truncated on disk. Each
test reproduces one finding without a full run, by leaving on disk what the killed (or racing)
process leaves; each failed on the code before its mend for the reason its docstring gives (the last, a
SIGKILL between a checkpoint and its epoch's metrics rows, is a known limitation kept as a strict xfail)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import ROOT, write_tiny_planetoid, write_tiny_sst


def _truncate(path: Path) -> None:
    """Cut ``path`` to half its size, as a disk that filled up or a copy cut short leaves it."""
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.truncate(size // 2)


# ---------------------------------------------------------------- damaged stage records on resume


def test_a_damaged_text_seed_record_on_resume_is_one_error_naming_it(tmp_path):
    """``src.evaluate`` says a damaged ``retrain/seed_<s>.json`` in one line, and so does the resume
    for ``search/state.json``; the resume of the run itself ended in a JSONDecodeError traceback
    (seen through the command line: ``python -m src.search`` on a finished run with the file cut)."""
    from src.pipeline import stages

    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu"])
    out = tmp_path / "retrain"
    out.mkdir()
    record = out / "seed_0.json"
    record.write_text(json.dumps({"seed": 0, "val_acc": 0.5, "test_acc": 0.5, "step": 10, "history": []}))
    _truncate(record)
    with pytest.raises(AutoAttendError) as refused:
        stages.train_child(cfg, None, None, out, 0, "retrain seed 0", save_model=True)
    assert str(refused.value).startswith(f"{record}: unreadable (expected ")


@pytest.mark.parametrize("name", ["retrain/seed_0.json", "retrain/hpo.json"])
def test_a_damaged_graph_stage_record_on_resume_is_one_error_naming_it(tmp_path, name):
    from src.pipeline import graph_stages

    trials = 2 if name.endswith("hpo.json") else 1  # 1: no HPO, the seeds' records are read at once
    cfg = compose_config("search", ["+task=cora", "budget=smoke", "hardware=cpu", f"graph.hpo.trials={trials}"])
    record = tmp_path / name
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"seed": 0, "val_acc": 0.5, "test_acc": 0.5, "step": 10, "history": [],
                                  "trials": []}))
    _truncate(record)
    with pytest.raises(AutoAttendError) as refused:
        graph_stages.retrain(cfg, None, None, tmp_path)
    assert str(refused.value).startswith(f"{record}: unreadable (expected ")


@pytest.mark.parametrize("family", ["text", "graph"])
def test_a_seed_record_with_a_quoted_score_on_resume_is_one_error_naming_it(tmp_path, family):
    """A ``seed_<s>.json`` holding ``"val_acc": "0.5"`` (edited by hand, written by another tool) was taken
    by the resume of a retrain (it only asked for the keys) and failed later, in the summary's mean or
    the log line's ``%.4f``: a traceback, or a logging error and then one. ``src.evaluate`` refused it in one
    line; the resume now reads it as ``src.evaluate`` does (``read_seed_record``)."""
    from src.pipeline import graph_stages, stages

    task = "sst2" if family == "text" else "cora"
    cfg = compose_config("search", [f"+task={task}", "budget=smoke", "hardware=cpu", "graph.hpo.trials=1"])
    out = tmp_path / "retrain"
    out.mkdir()
    record = out / "seed_0.json"
    record.write_text(json.dumps({"seed": 0, "val_acc": "0.5", "test_acc": 0.5, "step": 10, "history": []}))
    with pytest.raises(AutoAttendError) as refused:
        if family == "text":
            stages.train_child(cfg, None, None, out, 0, "retrain seed 0", save_model=True)
        else:
            graph_stages.retrain(cfg, None, None, tmp_path)
    assert str(refused.value) == (f"{record}: unreadable (expected the seed's result: step, val_acc, test_acc); "
                                  "restore it, or delete it and re-run the run's command to train that seed again")


# ---------------------------------------------------------------- the Planetoid (Cora) cache


def _processed(cache: Path) -> Path:
    (folder,) = list(cache.rglob("processed"))
    return folder


def test_a_cora_cache_left_by_a_processing_killed_mid_write_is_rebuilt(tmp_path):
    """PyG writes ``processed/data.pt`` in place (no temporary file), then ``pre_transform.pt``. A
    ``kill -9`` between the two (reproduced through the command line by emptying data.pt and removing
    ``pre_*.pt``) made every later run on that cache fail with "<data dir>/planetoid/Cora/raw: not
    readable as Planetoid data ... EOFError": the user's files are fine, the cache is not.
    Expected: the unfinished processing is done again, as a damaged finished one is."""
    from src.data.planetoid import PlanetoidDataModule

    data = write_tiny_planetoid(tmp_path / "data")
    cache = tmp_path / "cache"
    PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False).setup()
    processed = _processed(cache)
    (processed / "pre_transform.pt").unlink()
    (processed / "pre_filter.pt").unlink()
    _truncate(processed / "data.pt")  # what the killed write left
    dm = PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False)
    dm.setup()
    assert (dm.num_features, dm.num_classes) == (24, 3)


def test_two_processes_building_the_cora_cache_at_once_both_load_it(tmp_path, monkeypatch):
    """Two ``+task=cora`` runs started together on a fresh ``paths.cache_dir`` (seen through the
    command line: 2 of 3 tries) ended one of them with "<data dir>/planetoid/Cora/raw: not readable as
    Planetoid data ... UnpicklingError / PytorchStreamReader failed": each processed the raw files
    and wrote ``processed/data.pt`` in place, so one read the file while the other rewrote it. Now
    each processes into a build folder of its own and renames the result into place: reproduced here
    in one process, the other run's complete ``processed`` lands while this one processes; this run
    keeps it, loads it, and leaves no build folder behind."""
    import shutil

    import torch
    from torch_geometric.data.dataset import _repr
    from torch_geometric.datasets import Planetoid

    from src.data.planetoid import PlanetoidDataModule

    data = write_tiny_planetoid(tmp_path / "data")
    cache = tmp_path / "cache"
    process = Planetoid.process
    finals = []

    def process_while_the_other_run_finishes(self):
        process(self)
        ours = Path(self.processed_dir)
        assert ".building-" in str(ours)  # a private folder, not the cache's own
        final = ours.parents[2] / ours.parent.name / "processed"
        if not finals:  # the other run's rename lands first, with its complete copy
            finals.append(final)
            shutil.copytree(ours, final)
            for name in ("pre_transform.pt", "pre_filter.pt"):  # PyG writes these after process()
                torch.save(_repr(None), final / name)
            (final / "theirs").write_text("the other run's copy")

    monkeypatch.setattr(Planetoid, "process", process_while_the_other_run_finishes)
    dm = PlanetoidDataModule("cora", data_dir=str(data), cache_dir=str(cache), download=False)
    dm.setup()
    assert finals and (dm.num_features, dm.num_classes) == (24, 3)
    assert (finals[0] / "theirs").is_file()  # kept, not replaced by this run's
    assert not [p for p in cache.rglob(".building-*")]


# ---------------------------------------------------------------- the SST cache


def test_the_sst_cache_file_gets_an_ordinary_files_mode(tmp_path):
    """Every other cache writer gives its files an ordinary new file's mode (``atomic_target``; the
    CSV cache chmods its folders: "mkdtemp's 0700 would make a shared cache unreadable to other
    users"); the SST cache, built through ``tempfile.mkstemp`` and a rename, stays 0600, so another
    user sharing ``paths.cache_dir`` cannot read it (their run says it is unreadable and rebuilds)."""
    from src.data.sst import SSTDataModule

    data = write_tiny_sst(tmp_path / "data")
    dm = SSTDataModule(data_dir=str(data), num_classes=2, cache_dir=str(tmp_path / "cache"),
                       embedding_source="random")
    dm.setup()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dm.cache_path.stat().st_mode) == 0o666 & ~umask


def test_the_sst_cache_write_removes_what_killed_writes_left(tmp_path):
    """A SIGKILL during the SST cache's write left its temporary file (megabytes) for good. The temporary
    files are named by their process, and a write removes those whose process is gone; another running
    process's write in progress (pid 1 here, always alive) is left alone."""
    from src.data.sst import SSTDataModule
    from src.utils.io import BUILD_PREFIX

    data = write_tiny_sst(tmp_path / "data")
    cache = tmp_path / "cache"
    dm = SSTDataModule(data_dir=str(data), num_classes=2, cache_dir=str(cache), embedding_source="random")
    folder = dm.cache_path.parent
    folder.mkdir(parents=True)
    dead = folder / f"{BUILD_PREFIX}999999999-{dm.cache_path.name}-abc"
    alive = folder / f"{BUILD_PREFIX}1-{dm.cache_path.name}-def"
    dead.write_bytes(b"cut short")
    alive.write_bytes(b"being written")
    dm.setup()
    assert dm.cache_path.is_file() and not dead.exists() and alive.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted([dm.cache_path.name, alive.name])


# ---------------------------------------------------------------- the CSV cache


class _FinishedByTheOtherRunRightAfterTheCheck(type(Path())):
    """The final folder of a CSV cache build that another run renames into place just after this
    build has checked that it is not there yet (the first ``exists()`` answers no, then it is)."""

    def exists(self, *args, **kwargs) -> bool:
        if getattr(_FinishedByTheOtherRunRightAfterTheCheck, "checked", False):
            return super().exists(*args, **kwargs)
        _FinishedByTheOtherRunRightAfterTheCheck.checked = True
        super().mkdir()
        (self / "meta.json").write_text('{"key": "theirs"}')
        return False


def test_a_csv_cache_build_losing_the_race_by_a_hair_keeps_one_complete_copy(tmp_path):
    """Two runs building the same CSV cache: ``_building`` keeps the copy of the one that finished
    first (``if final.exists()``), but the check and the ``os.rename`` are two steps; when the other
    build's rename lands between them, renaming a folder onto a non-empty one raises
    ``OSError(ENOTEMPTY)``, a traceback. Expected: one complete copy in place, no temporary folder left."""
    from src.data import csv_text

    _FinishedByTheOtherRunRightAfterTheCheck.checked = False
    final = _FinishedByTheOtherRunRightAfterTheCheck(tmp_path / "csv-ids-0123")
    with csv_text._building(final) as tmp:
        (tmp / "meta.json").write_text('{"key": "ours"}')
    assert _FinishedByTheOtherRunRightAfterTheCheck.checked
    assert json.loads((tmp_path / "csv-ids-0123" / "meta.json").read_text())["key"] in ("theirs", "ours")
    assert [p.name for p in tmp_path.iterdir()] == ["csv-ids-0123"]


# ---------------------------------------------------------------- metrics.csv after a SIGKILL


_FIT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.demos.boring_classes import BoringModel
    from src.pipeline.common import ResumableCSVLogger, last_checkpoint

    class EpochLoss(BoringModel):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            self.log("loss", out["loss"], on_step=True, on_epoch=True)
            return out

    class KilledAfterTheFirstCheckpoint(ResumableCSVLogger):
        def after_save_checkpoint(self, checkpoint_callback):
            os._exit(137)  # kill -9: nothing runs after the file is there

    folder, kill = Path(sys.argv[1]), sys.argv[2] == "kill"
    ckpt = folder / "ckpt" / "last.ckpt"
    start = int(torch.load(ckpt, weights_only=False)["global_step"]) if ckpt.exists() else None
    logger = (KilledAfterTheFirstCheckpoint if kill else ResumableCSVLogger)(
        str(folder), name="log", version="", keep_below=start)
    trainer = pl.Trainer(default_root_dir=folder, max_epochs=2, limit_train_batches=4, limit_val_batches=0,
                         logger=logger, log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[last_checkpoint(folder / "ckpt", on_train_epoch_end=True)])
    torch.manual_seed(0)
    trainer.fit(EpochLoss(), ckpt_path=None if start is None else str(ckpt))
""")


def _fit(folder: Path, mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", _FIT, str(folder), mode], cwd=ROOT, env=env,
                          capture_output=True, timeout=120).returncode


def _epoch_rows(folder: Path) -> list[str]:
    import csv

    with open(folder / "log" / "metrics.csv", newline="") as file:
        return [row["step"] for row in csv.DictReader(file) if row.get("loss_epoch")]


@pytest.mark.slow  # a known limit, not a guarded behaviour: make test-full still checks it stays so
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="a SIGKILL right after an epoch-end checkpoint loses that epoch's metrics.csv rows for good")
def test_a_fit_killed_right_after_an_epoch_end_checkpoint_resumes_with_that_epochs_metrics(tmp_path):
    """The epoch-end ``last.ckpt`` is written before Lightning logs the epoch's rows (its mean loss;
    the supernet's ``train/loss_epoch``). Ctrl-C and SIGTERM are held until the rows are written
    (``src/utils/interrupt.py``), but SIGKILL cannot be: the resume continues after the checkpoint
    and never logs them, so ``metrics.csv`` differs from an uninterrupted run's (it lacks epoch 0's
    row). Expected: the resumed file has every epoch's row, as the uninterrupted one."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert _fit(whole, "whole") == 0
    assert _epoch_rows(whole) == ["3", "7"]
    assert _fit(killed, "kill") == 137
    assert _fit(killed, "resume") == 0
    assert _epoch_rows(killed) == _epoch_rows(whole)


# ---------------------------------------------------------------- a checkpoint write killed midway


def test_the_temporary_file_of_a_checkpoint_write_killed_midway_is_removed_by_the_resume(tmp_path):
    """``last.ckpt`` is written through ``atomic_target`` (a ``.last.ckpt.<random>`` file renamed into
    place), so a ``kill -9`` during the write leaves ``last.ckpt`` whole; but the temporary file stays
    for good (seen through the command line: a supernet killed while writing its first checkpoint,
    resumed, finished with ``supernet/.last.ckpt.mbp5195g`` still there). For the paper supernet
    that is up to its parameters and Adam moments, about 1.4 GB, per kill. Expected: the stage that
    resumes in the folder (which the run lock holds for it alone) removes it."""
    from src.data.planetoid import PlanetoidDataModule
    from src.pipeline import graph_stages
    from src.pipeline.config import search_space

    cfg = compose_config("search", ["+task=cora", "budget=smoke", "hardware=cpu", "graph.supernet.steps=2",
                                    "graph.supernet.steps_per_epoch=2"])
    dm = PlanetoidDataModule("cora", data_dir=str(write_tiny_planetoid(tmp_path / "data")),
                             cache_dir=str(tmp_path / "cache"), download=False)
    dm.setup()
    left = tmp_path / "run" / "supernet" / ".last.ckpt.mbp5195g"  # what the killed write left
    left.parent.mkdir(parents=True)
    left.write_bytes(b"PK\x03\x04" + b"\0" * 1000)
    graph_stages.train_supernet(cfg, dm, search_space(cfg), tmp_path / "run")
    assert (tmp_path / "run" / "supernet" / "DONE").exists()
    assert sorted(p.name for p in left.parent.iterdir() if p.name.startswith(".")) == []
