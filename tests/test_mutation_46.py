"""Mutation audit of session 46's changes (as_override, check_logger, the estimator's and the text model's input
checks, make_trainer's TensorBoard logger, src.report's graph copies and contents, read_record and its callers,
remove_left_temporaries, pid_alive, remove_stale_builds, process_privately): each test kills a mutant that the
tests before it let survive, by stating the intended behaviour exactly."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest
import torch

from src.pipeline.checks import as_override, check_bench_config, check_config
from src.space import GRAPH_OPS, Architecture, FunctionalSpace
from src.utils.errors import AutoAttendError
from src.utils.io import pid_alive, read_record, remove_left_temporaries, remove_stale_builds
from tests.conftest import compose_config
from tests.helpers import GRAPH_SEARCH_SETTINGS, write_finished_run
from tests.test_run_entry import _search_cfg, stand_ins  # noqa: F401  (stand_ins: a fixture)

# ---------------------------------------------------------------- checks: as_override, the bench, the logger


def test_as_override_writes_each_value_as_a_hydra_override_does():
    assert as_override(None) == "null"
    assert (as_override(True), as_override(False)) == ("true", "false")
    assert as_override([True, None, "gru"]) == "[true,null,gru]"  # each item as an override too
    assert as_override(("conv1", 3)) == "[conv1,3]"  # a tuple is a list
    assert as_override([]) == "[]"
    assert (as_override(3), as_override("add")) == ("3", "add")


def test_the_bench_refusal_quotes_the_papers_value_as_an_override_too():
    with pytest.raises(AutoAttendError) as refused:
        check_bench_config(compose_config("bench", ["space.ops=[conv1,gru]"]))
    assert "text.yaml: ops [zero,identity,conv1,conv3,maxpool3,gru]); of the space it takes" in str(refused.value)


@pytest.mark.parametrize("missing", ["tensorboardX", "tensorboard"])
def test_tensorboard_needs_only_one_of_its_two_writer_packages(monkeypatch, missing):
    import importlib.metadata

    real = importlib.metadata.distribution

    def one_missing(name):
        if name == missing:
            raise importlib.metadata.PackageNotFoundError(name)
        return real("torch") if name in ("tensorboardX", "tensorboard") else real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", one_missing)
    check_config(compose_config("search", ["+task=sst2", "logger=tensorboard"]), "search")  # no refusal


# ---------------------------------------------------------------- the estimator and the text model


def _text_model():
    from src.models.text import TextClassifier

    torch.manual_seed(0)
    arch = Architecture.from_dict({"layers": [
        {"kind": "add", "q_src": 0, "q_op": "conv1", "k_src": 0, "k_op": "zero"},
        {"kind": "attn", "q_src": 1, "q_op": "identity", "k_src": 0, "k_op": "conv3", "v_src": 0,
         "v_op": "identity"}]})
    return TextClassifier.child(torch.randn(20, 6), 3, arch, dim=8, heads=2).eval(), arch


@pytest.fixture
def torch_backend():
    from src.models import cpu_kernels

    before = cpu_kernels.get_backend()
    cpu_kernels.set_backend("torch")
    yield
    cpu_kernels.set_backend(before)


def test_the_fast_estimator_with_no_example_to_score_is_a_clear_error(torch_backend):
    from src.estimator import SupernetEstimator

    model, arch = _text_model()
    empty = {"tokens": torch.zeros(0, 3, dtype=torch.long), "mask": torch.zeros(0, 3, dtype=torch.bool),
             "labels": torch.zeros(0, dtype=torch.long)}
    estimator = SupernetEstimator(model, [empty])
    assert estimator.fast
    with pytest.raises(ValueError, match=r"^the estimator's batches hold no example to score$"):
        estimator(arch)


def test_the_fast_estimator_scores_a_single_example(torch_backend):
    from src.estimator import SupernetEstimator

    model, arch = _text_model()
    tokens, mask = torch.tensor([[2, 3, 4]]), torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        predicted = model(tokens, mask, arch).argmax(-1)
    estimator = SupernetEstimator(model, [{"tokens": tokens, "mask": mask, "labels": predicted}])
    assert estimator.fast
    assert estimator(arch) == 1.0 == estimator.plain(arch)


def test_a_mask_of_another_shape_than_the_tokens_is_refused(torch_backend):
    model, arch = _text_model()
    tokens = torch.tensor([[2, 3, 4], [5, 6, 0]])
    with pytest.raises(ValueError, match=r"got tokens of shape \(2, 3\) and mask torch.bool of shape \(2, 2\)$"):
        model(tokens, torch.ones(2, 2, dtype=torch.bool))


# ---------------------------------------------------------------- make_trainer's TensorBoard logger


@pytest.mark.filterwarnings("ignore:.*Checkpoint directory.*exists")
def test_tensorboard_files_of_a_module_with_hyperparameters_hold_no_hp_metric(tmp_path):
    """The Lightning modules save their hyper-parameters; TensorBoardLogger's default ``hp_metric`` (-1, a value
    metrics.csv does not hold) stays out of the event files."""
    import lightning.pytorch as pl

    from src.pipeline.common import make_trainer
    from tests.test_logger import LoggingModel, read_events

    class WithHyperparameters(LoggingModel):
        def __init__(self, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()

    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", "logger=tensorboard"])
    pl.seed_everything(0)
    trainer = make_trainer(cfg, tmp_path, "supernet", max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                           log_every_n_steps=1, enable_checkpointing=False)
    trainer.fit(WithHyperparameters())
    tags = {tag for tag, _, _ in read_events(tmp_path / "supernet" / "tensorboard")}
    assert tags - {"epoch"} == {"train/loss", "val/acc"}


# ---------------------------------------------------------------- src.report: graph copies and contents


def _rows(table) -> list[dict]:
    return [dict(zip(table.header, row)) for row in table.rows]


def test_over_space_priors_folds_the_priors_of_graph_runs(tmp_path):
    from src.report import report

    for priors in (True, False):
        for seed in (0, 1):
            write_finished_run(tmp_path / f"{priors}_{seed}", {**GRAPH_SEARCH_SETTINGS, "seed": seed, "space.priors": priors,
                                                       "graph.space.priors": priors}, 0.8)
    _, folded = report([tmp_path], over=("seed", "space.priors"))
    (row,) = _rows(folded)
    assert row["runs"] == "4" and "graph.space.priors" not in folded.header
    assert sorted(row["seed / space.priors"].split()) == ["0,false", "0,true", "1,false", "1,true"]


def test_a_graph_runs_folded_label_shows_the_graph_copy_it_read(tmp_path):
    """``graph.space.sharing=none`` given directly: the graph run read none, whatever the text key says."""
    from src.report import report

    for sharing in ("full", "none"):
        for seed in (0, 1):
            write_finished_run(tmp_path / f"{sharing}_{seed}", {**GRAPH_SEARCH_SETTINGS, "seed": seed, "graph.space.sharing": sharing}, 0.8)
    _, folded = report([tmp_path], over=("seed", "space.sharing"))
    (row,) = _rows(folded)
    assert row["runs"] == "4"
    assert sorted(row["seed / space.sharing"].split()) == ["0,full", "0,none", "1,full", "1,none"]


def test_retrains_of_one_architecture_with_other_hyperparameters_are_not_folded_together(tmp_path):
    from src.report import report

    base = {"seed": 0, "task.name": "sst2", "task.family": "text", "entry": "retrain", "retrain.seeds": 2,
            "arch": "/tmp/my.yaml"}
    gru = {"layers": [{"kind": "add", "q_src": 0, "q_op": "gru", "k_src": 0, "k_op": "zero"}]}
    for seed, hparams in ((0, {"lr": 0.1}), (1, {"lr": 0.1}), (2, {"lr": 0.5}), (3, {"lr": 0.5})):
        run = tmp_path / f"seed={seed}"
        run.mkdir()
        (run / "run_settings.json").write_text(json.dumps({**base, "seed": seed, "architecture": gru,
                                                           "arch_hparams": hparams}))
        retrain = {"test_acc_mean": 0.7, "test_acc_std": 0.01, "val_acc_mean": 0.7, "seeds": [seed, seed + 1]}
        (run / "summary.json").write_text(json.dumps({"task": "sst2", "arch": "/tmp/my.yaml", "retrain": retrain,
                                                      "best_val_acc_supernet": None, "seconds": {"retrain": 3.0}}))
    _, folded = report([tmp_path])
    assert sorted((r["arch"], r["runs"], r["seed"]) for r in _rows(folded)) == [
        ("/tmp/my.yaml (content 1)", "2", "0 1"), ("/tmp/my.yaml (content 2)", "2", "2 3")]


# ---------------------------------------------------------------- read_record and its callers


def _unreadable(path: Path, what: str) -> str:
    return (f"^{re.escape(str(path))}: unreadable \\(expected {re.escape(what)}\\); restore it, or delete it and "
            f"re-run the run's command \\(with the settings that made it\\) to compute it again$")


@pytest.mark.parametrize("content", [b'{"other": []}', b"[1, 2]", b"\xff\xfe\x00garbage", b'{"trials": '])
def test_read_record_says_any_damaged_record_in_one_line(tmp_path, content):
    """A missing key (KeyError), a record of another type (TypeError), bytes that are no text (UnicodeDecodeError)
    and cut JSON are each one error line naming the file."""
    path = tmp_path / "hpo.json"
    path.write_bytes(content)
    with pytest.raises(AutoAttendError, match=_unreadable(path, "the HPO trials so far")):
        read_record(path, "the HPO trials so far", "trials")


def test_read_record_returns_the_record_or_its_key(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"trials": [1, 2], "n": 3}))
    assert read_record(path, "x", "trials") == [1, 2]
    assert read_record(path, "x") == {"trials": [1, 2], "n": 3}


def test_a_damaged_rerank_record_on_resume_is_one_error_naming_it(tmp_path):
    from src.pipeline import graph_stages

    cfg = compose_config("search", ["+task=cora", "budget=smoke", "hardware=cpu"])
    (tmp_path / "rerank.json").write_text('{"candidates": [{"arch"')
    with pytest.raises(AutoAttendError, match=_unreadable(tmp_path / "rerank.json", "the re-ranked candidates so far")):
        graph_stages.rerank(cfg, [], None, tmp_path)


def test_a_damaged_ranking_candidate_record_on_resume_is_one_error_naming_it(tmp_path):
    from src.pipeline import ranking

    cfg = compose_config("search", ["+task=cora", "budget=smoke", "hardware=cpu", "ranking.candidates=3"])
    space, rng, archs = FunctionalSpace(2, ops=GRAPH_OPS), random.Random(0), []
    while len(archs) < 3:
        arch = space.sample(rng)
        if arch not in archs:
            archs.append(arch)
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "population.jsonl").write_text(
        "".join(json.dumps({"arch": a.to_dict(), "score": 0.5 - i / 10}) + "\n" for i, a in enumerate(archs)))
    for rank in (1, 2, 3):
        (tmp_path / "ranking" / f"rank_{rank}").mkdir(parents=True)
        (tmp_path / "ranking" / f"rank_{rank}" / "result.json").write_text('{"seeds": [0], "val_per')
    with pytest.raises(AutoAttendError, match=_unreadable(tmp_path / "ranking" / "rank_1" / "result.json",
                                                          "the candidate's from-scratch scores")):
        ranking.measure(cfg, None, tmp_path, graph=True)


def test_a_plain_rerun_with_a_damaged_ranking_result_is_one_error_naming_it(tmp_path, stand_ins):  # noqa: F811
    from src.pipeline import run

    path = tmp_path / "run" / "ranking" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"all": {"n": 7, "spear')
    with pytest.raises(AutoAttendError, match=_unreadable(path, "the ranking stage's results")):
        run.run_search(_search_cfg(tmp_path, "sst2", "retrain.seeds=0", "ranking.candidates=0"))


# ---------------------------------------------------------------- temporaries and build folders


def test_remove_left_temporaries_removes_and_returns_those_of_that_file_alone(tmp_path):
    for name in (".last.ckpt.b2x", ".last.ckpt.a1y", "last.ckpt", ".other.ckpt.c3z", "last.ckpt.d4"):
        (tmp_path / name).write_text("x")
    assert remove_left_temporaries(tmp_path / "last.ckpt") == [tmp_path / ".last.ckpt.a1y", tmp_path / ".last.ckpt.b2x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ckpt.c3z", "last.ckpt", "last.ckpt.d4"]
    assert remove_left_temporaries(tmp_path / "absent" / "last.ckpt") == []


def test_pid_alive_counts_another_users_process_as_alive(monkeypatch):
    def kill(pid, signal):
        raise PermissionError(1, "Operation not permitted") if pid == 1 else ProcessLookupError(3, "No such process")

    monkeypatch.setattr(os, "kill", kill)
    assert pid_alive(1) is True
    assert pid_alive(2) is False


DEAD = 4194305  # above Linux's largest pid: no process has it


def test_remove_stale_builds_removes_a_dead_process_build_alone(tmp_path):
    dead, ours = tmp_path / f".building-{DEAD}-Cora-x1", tmp_path / f".building-{os.getpid()}-Cora-x2"
    odd, other = tmp_path / ".building-abc-Cora-x3", tmp_path / f"Cora-{DEAD}"
    for folder in (dead, ours, odd, other):
        (folder / "raw").mkdir(parents=True)
    remove_stale_builds(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, odd.name, other.name])


def _raw(folder: Path) -> Path:
    (folder / "raw").mkdir(parents=True)
    (folder / "raw" / "a.txt").write_text("raw data")
    return folder


def _processing(marker: str, also=None):
    """A stand-in for PyG: reads the linked raw file, writes ``processed`` (``pre_transform.pt`` last)."""
    def make(root: Path) -> None:
        work = root / "Cora"
        assert (work / "raw" / "a.txt").read_text() == "raw data"
        (work / "processed").mkdir()
        (work / "processed" / "data.pt").write_text(marker)
        (work / "processed" / "pre_transform.pt").write_text("done")
        if also is not None:
            also()
    return make


def test_process_privately_renames_a_private_processing_into_place_and_clears_stale_builds(tmp_path):
    from src.data.planetoid import process_privately

    folder = _raw(tmp_path / "Cora")
    stale = tmp_path / f".building-{DEAD}-Cora-abc"
    stale.mkdir()
    process_privately(folder, _processing("ours"), nested=True)
    assert (folder / "processed" / "data.pt").read_text() == "ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Cora"]  # the stale build and its own are gone

    def never(root):
        raise AssertionError("a complete processing is not done again")

    process_privately(folder, never, nested=True)


def test_process_privately_keeps_the_complete_processing_another_run_finished_first(tmp_path):
    from src.data.planetoid import process_privately

    folder = _raw(tmp_path / "Cora")

    def theirs_lands():
        (folder / "processed").mkdir()
        (folder / "processed" / "data.pt").write_text("theirs")
        (folder / "processed" / "pre_transform.pt").write_text("done")

    process_privately(folder, _processing("ours", theirs_lands), nested=True)
    assert (folder / "processed" / "data.pt").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Cora"]


def test_process_privately_raises_when_the_processing_left_nothing_to_rename(tmp_path):
    from src.data.planetoid import process_privately

    folder = _raw(tmp_path / "Cora")
    with pytest.raises(FileNotFoundError):
        process_privately(folder, lambda root: None, nested=True)
    assert not (folder / "processed").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Cora"]


def test_ppi_files_are_processed_in_a_private_build_folder(tmp_path, monkeypatch):
    from src.data.ppi import PPIDataModule, numbered_ppi
    from tests.helpers import write_tiny_ppi

    PPI = numbered_ppi()  # PyG's PPI with its own processing (one class for the process)

    process, processed_in = PPI.process, []

    def noting(self):
        processed_in.append(str(self.processed_dir))
        process(self)

    monkeypatch.setattr(PPI, "process", noting)
    root = write_tiny_ppi(tmp_path / "d")
    PPIDataModule(data_dir=str(root), cache_dir=str(tmp_path / "cache"), download=False).setup()
    assert len(processed_in) == 1 and ".building-" in processed_in[0]
    assert not list((tmp_path / "cache").rglob(".building-*"))
