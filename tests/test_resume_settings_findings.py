"""What a re-run in the same run directory may change: findings of a resume-settings audit (2026-12-07).

Checked by hand on tiny generated data (``budget=smoke``), each resumed run compared record by record with an
uninterrupted one (``tests/test_determinism_findings.py``'s ``result_files``):

- accepted, and ending as an uninterrupted run: a supernet interrupted inside an epoch resumed with other
  ``supernet.checkpoint_every_min``, ``retrain.checkpoint_every_min``, ``hardware.progress``,
  ``hardware.progress_every_s``, ``strategy.save_every``, ``strategy.score_bucket_size``, ``strategy.score_workers``,
  ``supernet.arch_workers``, ``task.label_names``, ``paths.cache_dir``, ``hardware.kernels=torch``, ``hardware=auto``
  and ``logger=tensorboard`` (only its event files added); a search interrupted after its first candidate resumed with
  other ``save_every``, ``score_bucket_size`` and ``score_workers``; a ``src.retrain`` seed interrupted inside an epoch
  resumed with ``retrain.checkpoint_every_min=null``, progress, ``logger=tensorboard`` and ``hardware.kernels=torch``
  (losses equal to float tolerance, evaluations equal; the kernels' change warned about and recorded); a Cora search
  interrupted in its retrain resumed with ``graph.retrain.workers=2``, ``graph.threads=2``, progress and TensorBoard;
  a run started in one working directory with a relative ``hydra.run.dir`` and ``paths.data_dir`` resumed from another
  (the folder given relative to there); ``hardware.threads`` warned about and recorded in ``invocations.json``;
- refused with one ``error:`` line naming ``key: old -> new``, exit status 2, nothing but the log touched: ``seed``,
  ``budget``, ``space.sharing``, ``strategy``, ``supernet.unused_grads``, ``supernet.recompute``, ``retrain.lr``,
  ``data.max_len``, ``hardware.precision``, ``hardware.matmul_precision``, ``graph.retrain.weight_decay_on``,
  ``graph.supernet.lr``, ``graph.retrain.seeds``, ``graph.space.sharing``.

The findings, each mended with its test below made plain (each failed on the code before): a resume inside an epoch
with ``hardware.num_workers`` > 0 (the default of ``hardware=gpu``) trained the epoch's first batches again (and one
at an epoch end trained the next epoch in epoch 0's order); an option "added since the run started" was accepted with
any value, not only the default that keeps what the code did before (now refused when the command line gives it);
re-reading a finished run with other machine settings recorded it as computed with them; and a run whose record held
another value of a setting its task family never reads (a default of the other family changed since) could never be
resumed.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.helpers import ROOT, cli, cli_interrupted_once, write_tiny_sst_and_planetoid
from tests.test_determinism_findings import result_files

# a text search whose supernet trains 3 epochs of 8 steps (so a Ctrl-C can land inside one)
TEXT = ("+task=sst2", "budget=smoke", "hardware=cpu", "supernet.max_steps=-1", "supernet.epochs=3",
        "hardware.threads=2")
GRAPH = ("+task=cora", "budget=smoke", "hardware=cpu")
# records that differ between invocations by design (times, the command lines, the machine of the last one)
NOT_COMPARED = {"timing.json", "invocations.json", "summary.json", "run_settings.json"}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_sst_and_planetoid(tmp_path_factory.mktemp("data"))


def _finished(tiny_data: Path, tmp_path_factory, family: str, args) -> Path:
    """The run folder of an uninterrupted search with ``args``."""
    tmp = tmp_path_factory.mktemp(family)
    proc = cli("src.search", *args, data_dir=tiny_data, tmp=tmp, run_dir=tmp / "straight")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "straight"


@pytest.fixture(scope="module")
def finished_text(tiny_data, tmp_path_factory) -> Path:
    """An uninterrupted text search with :data:`TEXT`."""
    return _finished(tiny_data, tmp_path_factory, "text", TEXT)


@pytest.fixture(scope="module")
def finished_graph(tiny_data, tmp_path_factory) -> Path:
    """An uninterrupted graph search with :data:`GRAPH`."""
    return _finished(tiny_data, tmp_path_factory, "graph", GRAPH)


def _copy(run: Path, tmp: Path) -> Path:
    copy = tmp / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".run.lock"))
    return copy


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder but its log and lock, by content."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.suffix != ".log" and p.name != ".run.lock"}


def _compared(run_dir: Path) -> dict:
    return {k: v for k, v in result_files(run_dir).items() if k not in NOT_COMPARED and "tensorboard" not in k}


def _edit_record(run_dir: Path, **changes) -> None:
    """Edit ``run_settings.json``: a value of None drops the key (a run started before it existed)."""
    path = run_dir / "run_settings.json"
    record = json.loads(path.read_text())
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    path.write_text(json.dumps(record))


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------------
# confirmed behaviour no other test covers


def test_a_supernet_resumed_with_the_settings_that_may_change_ends_as_an_uninterrupted_run(finished_text, tiny_data,
                                                                                          tmp_path):
    """Ctrl-C inside the supernet's first epoch (a checkpoint after every step), then a resume with every setting
    the documents say does not change results changed at once: the checkpoint intervals, progress, the search's
    save interval and length buckets, the classes' names, the cache folder. Every record but the time and command
    line ones equals the uninterrupted run's."""
    stopped = tmp_path / "stopped"
    proc = cli_interrupted_once(stopped / "supernet" / "last.ckpt", "src.search", *TEXT,
                                "supernet.checkpoint_every_min=0", data_dir=tiny_data, tmp=tmp_path, run_dir=stopped)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert torch.load(stopped / "supernet" / "last.ckpt", weights_only=False)["global_step"] < 8
    proc = cli("src.search", *TEXT, "supernet.checkpoint_every_min=10", "retrain.checkpoint_every_min=0",
               "hardware.progress=true", "hardware.progress_every_s=0.01", "strategy.save_every=1",
               "strategy.score_bucket_size=8", "task.label_names=[neg,pos]", f"paths.cache_dir={tmp_path / 'cache2'}",
               data_dir=tiny_data, tmp=tmp_path, run_dir=stopped)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "supernet: resuming from" in proc.stdout + proc.stderr
    assert _compared(stopped) == _compared(finished_text)


@pytest.mark.parametrize("family, override, shown", [
    ("text", "seed=1", "seed: 0 -> 1"),
    ("text", "supernet.unused_grads=zeros", "supernet.unused_grads: none -> zeros"),
    ("text", "strategy=random", "strategy.name: evolution -> random"),
    ("text", "data.max_len=32", "data.max_len: 64 -> 32"),
    ("text", "retrain.lr=0.1", "retrain.lr: 0.0005 -> 0.1"),
    ("text", "hardware.precision=bf16-mixed", "hardware.precision: 32-true -> bf16-mixed"),
    ("graph", "graph.retrain.weight_decay_on=first_layer", "graph.retrain.weight_decay_on: all -> first_layer"),
    ("graph", "graph.supernet.lr=0.01", "graph.supernet.lr: 0.005 -> 0.01"),
])
def test_a_setting_that_must_not_change_is_refused_in_one_line_leaving_the_run_as_it_was(
        family, override, shown, finished_text, finished_graph, tiny_data, tmp_path):
    run = _copy(finished_text if family == "text" else finished_graph, tmp_path)
    before = _files(run)
    proc = cli("src.search", *(TEXT if family == "text" else GRAPH), override, data_dir=tiny_data, tmp=tmp_path,
               run_dir=run)
    assert proc.returncode == 2
    lines = _error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(f"error: run dir {run} was started with other settings"), lines
    assert shown in lines[0]
    assert _files(run) == before


# ---------------------------------------------------------------------------------------------------------------
# findings


@pytest.mark.slow  # the fit's side in the fast suite: test_a_fit_resumed_at_an_epoch_end_with_loader_workers_...
def test_a_supernet_resumed_inside_an_epoch_with_loader_workers_ends_as_an_uninterrupted_run(finished_text, tiny_data,
                                                                                            tmp_path):
    """The documents: the worker counts do not change results, and a supernet (or retrain seed) resumed inside an
    epoch trains that epoch's remaining batches, ending as a run never interrupted. With ``hardware.num_workers=1``
    (``hardware=gpu`` sets 2) the resumed supernet's ``metrics.csv`` and the search's candidates differ from the
    uninterrupted run's (which ``hardware.num_workers=1`` alone leaves as they were). ``src.retrain`` the same,
    with ``retrain.checkpoint_every_min=0``. Lightning made the loader's iterator (``fit_loop.setup_data``) before
    ``on_train_start``, and a multi-process iterator had already read the whole epoch's order from
    ``EpochShuffleSampler`` when ``_LastCheckpoint.on_train_start`` called ``resume_within``; now it is made again."""
    stopped = tmp_path / "stopped"
    args = (*TEXT, "supernet.checkpoint_every_min=0", "hardware.num_workers=1")
    proc = cli_interrupted_once(stopped / "supernet" / "last.ckpt", "src.search", *args, data_dir=tiny_data,
                                tmp=tmp_path, run_dir=stopped)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert torch.load(stopped / "supernet" / "last.ckpt", weights_only=False)["global_step"] < 8
    proc = cli("src.search", *args, data_dir=tiny_data, tmp=tmp_path, run_dir=stopped)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("supernet/metrics.csv", "search/population.jsonl"):
        assert (stopped / name).read_text() == (finished_text / name).read_text(), name


def test_an_option_added_since_the_run_started_resumes_only_with_its_default(finished_text, tiny_data, tmp_path):
    """A run started before ``supernet.unused_grads`` existed trained as ``none`` does. Re-run with
    ``supernet.unused_grads=zeros`` it was accepted (a warning), its record now says ``zeros`` for the whole run, and
    an interrupted one went on training with zeros after steps trained without (checked by hand: every record
    differed from the uninterrupted run's; a Cora run likewise with ``graph.retrain.weight_decay_on=first_layer``
    after seed 0 trained with ``all``). Now an added option given on the command line is refused in one line."""
    run = _copy(finished_text, tmp_path)
    _edit_record(run, supernet__unused_grads=None)
    before = _files(run)
    proc = cli("src.search", *TEXT, "supernet.unused_grads=zeros", data_dir=tiny_data, tmp=tmp_path, run_dir=run)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = _error_lines(proc)
    assert len(lines) == 1 and "supernet.unused_grads" in lines[0] and "zeros" in lines[0], lines
    assert _files(run) == before


def test_rereading_a_finished_run_with_other_machine_settings_does_not_record_them_as_the_runs(finished_text,
                                                                                              tiny_data, tmp_path):
    """The documents: src.report shows what the run computed with, ``1 -> 2`` where a resume changed it. A finished
    run re-run with ``hardware.threads=1`` computes nothing (every stage had finished, it says), yet its report row
    reads ``2 -> 1`` and ``summary.json``'s ``machine.threads`` is 1. Now the invocation is marked ``computed: false``
    in ``invocations.json``, which the report skips, and the summary keeps the computing invocations' facts."""
    run = _copy(finished_text, tmp_path)
    proc = cli("src.search", *TEXT, "hardware.threads=1", data_dir=tiny_data, tmp=tmp_path, run_dir=run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "every stage had finished before this invocation" in proc.stdout + proc.stderr
    assert json.loads((run / "summary.json").read_text())["machine"]["threads"] == 2
    assert json.loads((run / "invocations.json").read_text())["invocations"][-1]["computed"] is False
    report = subprocess.run([sys.executable, "-m", "src.report", str(run), str(finished_text)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    rows = [line for line in report.stdout.splitlines() if "| search | sst2 | finished |" in line]
    assert len(rows) == 2 and not any("->" in row for row in rows), report.stdout


@pytest.mark.parametrize("family, key, old", [("text", "graph.supernet.lr", 0.01), ("graph", "supernet.lr", 0.001)])
def test_a_run_resumes_after_a_default_of_the_other_task_family_changed(family, key, old, finished_text,
                                                                       finished_graph, tiny_data, tmp_path):
    """A text run's record holds ``graph.supernet.lr`` as it was when the run started. Once the code's default of
    it changes, the plain re-run is refused ("graph.supernet.lr: 0.01 -> 0.005 ... Re-run with the recorded
    settings"), and the re-run with the recorded value is refused too ("a setting of graph tasks, which text task
    sst2 does not read"): the run can never be resumed, for a setting it never read. A graph run the same with
    ``supernet.lr``. (The same records make a text run's refusal for ``budget=quick`` name six graph.* keys and hide
    the 23 it reads behind "and 23 more".) The records now leave out what the run never reads (``UNREAD_BY``, and for
    ``src.retrain`` the search's settings), and a resume does not compare them."""
    run = _copy(finished_text if family == "text" else finished_graph, tmp_path)
    _edit_record(run, **{key.replace(".", "__"): old})
    proc = cli("src.search", *(TEXT if family == "text" else GRAPH), data_dir=tiny_data, tmp=tmp_path, run_dir=run)
    assert proc.returncode == 0, proc.stderr[-3000:]


class _Order(pl.LightningModule):
    """Records the examples of each training batch, by epoch."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: dict[int, list[list[int]]] = {}

    def training_step(self, batch, batch_idx):
        self.seen.setdefault(self.current_epoch, []).append(batch[:, 0].long().tolist())
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _ordered_fit(folder, epochs: int, resume: bool = False) -> dict:
    from torch.utils.data import DataLoader

    from src.data.sampling import EpochShuffleSampler
    from src.pipeline.common import last_checkpoint

    data = torch.arange(12, dtype=torch.float32).unsqueeze(1)
    loader = DataLoader(data, batch_size=4, sampler=EpochShuffleSampler(12, seed=3), num_workers=1)
    module = _Order()
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(folder), callbacks=[last_checkpoint(folder / "ckpt", on_train_epoch_end=True)])
    trainer.fit(module, loader, ckpt_path=str(folder / "ckpt" / "last.ckpt") if resume else None)
    return module.seen


@pytest.mark.filterwarnings("ignore:.*Checkpoint directory.*exists and is not empty.*")
def test_a_fit_resumed_at_an_epoch_end_with_loader_workers_sees_the_next_epochs_orders(tmp_path):
    """Lightning makes the loader's iterator before it sets the sampler's epoch; with worker processes the
    iterator reads its order at once, so a fit resumed from an epoch-end checkpoint trained its next epoch
    in epoch 0's order. Now it is made again with the epoch's own."""
    whole = _ordered_fit(tmp_path / "whole", 3)
    _ordered_fit(tmp_path / "parts", 1)
    resumed = _ordered_fit(tmp_path / "parts", 3, resume=True)
    assert sorted(resumed) == [1, 2]
    assert resumed == {e: whole[e] for e in (1, 2)} and whole[1] != whole[0]
