"""End to end through the real command line: search, resume, retrain, bad input."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shutil
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from src.space import Architecture, FunctionalSpace
from src.utils import lock
from tests.conftest import compose_config
from tests.helpers import cli, cli_command, cli_interrupted_once, real_data_dir, smoke_search, write_tiny_sst


def read_population(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "search" / "population.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_tiny_sst(root, n_train=300, n_dev=60, n_test=60)
    return root


@pytest.fixture(scope="module")
def smoke_run(tiny_data, tmp_path_factory):
    """The smoke search, shared by this module's tests; some invoke it again in its folder, so its
    log as the first invocation left it is kept beside the folder (``first_search.log``)."""
    tmp, run_dir, proc = smoke_search("sst2", tiny_data, tmp_path_factory.mktemp("run"))
    shutil.copyfile(run_dir / "search.log", tmp / "first_search.log")
    return tmp, run_dir, proc


def test_smoke_search_writes_every_result(smoke_run):
    tmp, run_dir, proc = smoke_run
    assert f"run dir: {run_dir}" in proc.stdout
    assert "summary: best supernet val acc" in proc.stdout and "retrained test acc" in proc.stdout
    summary_line = next(line for line in proc.stdout.splitlines() if line.startswith("summary: "))
    # one unit, said: the supernet's score was a fraction beside the test score's unlabelled %
    assert re.fullmatch(r"summary: best supernet val acc \d+\.\d\d % \| retrained test acc \d+\.\d\d \+- \d+\.\d\d % "
                        r"over 2 seed\(s\) \| \d+ s \((kernels \d+ s, )?data \d+ s, supernet \d+ s, search \d+ s, retrain \d+ s\)",
                        summary_line), summary_line
    # the log file ends as the console does: where the results are and the headline numbers
    log_tail = (tmp / "first_search.log").read_text().splitlines()[-2:]
    assert [line.split("] - ", 1)[1] for line in log_tail] == [f"run dir: {run_dir}", summary_line]
    assert "Warning" not in proc.stderr, proc.stderr  # nothing for a user to wonder about
    assert (run_dir / "supernet" / "last.ckpt").exists() and (run_dir / "supernet" / "DONE").exists()
    population = read_population(run_dir)
    assert len(population) == 6 + 2 * 3  # smoke: 6 random + 2 rounds x 3 parents
    archs = [Architecture.from_dict(p["arch"]) for p in population]
    assert len(set(archs)) == len(archs)
    space = FunctionalSpace(3)
    for a in archs:
        space.validate(a)
    best = Architecture.load(run_dir / "search" / "best_arch.yaml")
    top = max(population, key=lambda p: (p["score"], -p["index"]))
    assert best == Architecture.from_dict(top["arch"])
    topk = yaml.safe_load((run_dir / "search" / "topk.yaml").read_text())
    assert [t["val_acc"] for t in topk] == sorted((p["score"] for p in population), reverse=True)[:3]
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    assert {"test_acc_mean", "test_acc_std", "per_seed", "selection_rule"} <= set(results)
    assert len(results["per_seed"]) == 2 and 0.0 <= results["test_acc_mean"] <= 1.0
    for seed in results["per_seed"]:
        history = json.loads((run_dir / "retrain" / f"seed_{seed['seed']}.json").read_text())["history"]
        best_val = max(h["val_acc"] for h in history)
        assert seed["val_acc"] == best_val
        assert seed["test_acc"] == next(h["test_acc"] for h in history if h["val_acc"] == best_val)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["retrain"]["test_acc_mean"] == results["test_acc_mean"]
    # the record names the CPU it ran on (hosts differ; timings compare only on the same kind)
    assert summary["machine"]["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "cpu: " in (run_dir / "search.log").read_text()
    # and whether its libraries are the lock's (requirements/cpu-lock.txt), in the log too
    assert summary["machine"]["lock_differences"] == lock.differences()
    assert f"libraries: {lock.describe_differences(lock.differences())}\n" in (tmp / "first_search.log").read_text()
    assert (run_dir / ".hydra" / "config.yaml").exists()


def test_rerun_in_the_same_dir_resumes_instead_of_recomputing(smoke_run, tiny_data):
    tmp, run_dir, _ = smoke_run
    before = json.loads((run_dir / "retrain" / "results.json").read_text())
    first = json.loads((run_dir / "summary.json").read_text())
    assert first["invocations"] == 1 and first["seconds"] == first["seconds_this_invocation"]
    population = read_population(run_dir)
    (run_dir / "retrain" / "seed_1.json").unlink()
    (run_dir / "retrain" / "results.json").unlink()
    # a machine setting (threads) may change on resume; results do not depend on it
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", "hardware.threads=1", data_dir=tiny_data,
               tmp=tmp, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr  # Lightning's about reused folders: their contents are kept
    log = (run_dir / "search.log").read_text()
    assert "supernet already trained" in log
    assert "resuming with 12 candidates already scored" in log
    # said after the line that says what the search is (it came before it)
    assert log.rindex("search: evolution over") < log.rindex("resuming with 12 candidates")
    # one line for the seed an earlier invocation trained (there were two: "already done", then its scores)
    assert re.search(r"retrain: seed 0 -> val [\d.]+ test [\d.]+ \(step \d+; done before this invocation\)", log)
    assert "seed 0 already done" not in log and "seed 1 -> val" in log and "seed 1 already" not in log
    assert read_population(run_dir) == population
    after = json.loads((run_dir / "retrain" / "results.json").read_text())
    # seed 1 was retrained from scratch with the same seed: the same numbers come back
    assert after["per_seed"] == before["per_seed"]
    # the run's time is that of both invocations (the second alone reloaded most of it)
    second = json.loads((run_dir / "summary.json").read_text())
    assert second["invocations"] == 2
    # a stage one invocation had alone (the kernels' build, where this test built them) counts once
    stages = first["seconds"].keys() | second["seconds_this_invocation"].keys()
    assert second["seconds"] == {k: round(first["seconds"].get(k, 0) + second["seconds_this_invocation"].get(k, 0), 1)
                                 for k in stages}
    # "this one": the invocation's own wall time, its stages' seconds and more (Python, imports)
    this_one = int(re.search(r"over 2 invocations, this one (\d+) s\n", proc.stdout).group(1))
    assert this_one >= round(sum(second["seconds_this_invocation"].values()))
    # a third invocation finds every stage finished: it says so (it said "this one 0 s")
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", data_dir=tiny_data, tmp=tmp,
               run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"over 3 invocations, this one [1-9]\d* s; every stage had finished before this invocation, "
                     r"which re-read them\n", proc.stdout), proc.stdout
    assert json.loads((run_dir / "retrain" / "results.json").read_text())["per_seed"] == before["per_seed"]


def test_rerun_with_other_settings_is_refused_naming_the_keys(smoke_run, tiny_data):
    """A finished run directory re-run with another seed or budget would report its old results
    under the new settings: the re-run stops before touching anything and names what differs.
    Its ``.hydra/`` record is untouched too (Hydra rewrote it before the check, and src.evaluate
    then rebuilt the run's data from the refused settings); so it is by a refused bad value."""
    tmp, run_dir, _ = smoke_run
    files = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log"}
    assert run_dir / ".hydra" / "config.yaml" in files and run_dir / ".hydra" / "overrides.yaml" in files
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", "seed=1", "supernet.max_steps=9",
               data_dir=tiny_data, tmp=tmp, run_dir=run_dir)
    _assert_clean_failure(proc, run_dir, "was started with other settings", "seed: 0 -> 1",
                          "supernet.max_steps: 8 -> 9", "run_settings.json", fresh=False)
    assert proc.returncode == 2
    assert {p: p.read_bytes() for p in files} == files
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", "data.max_len=0", data_dir=tiny_data,
               tmp=tmp, run_dir=run_dir)
    assert proc.returncode == 2 and "data.max_len" in proc.stderr, proc.stderr[-2000:]
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log"} == files


@pytest.mark.parametrize("damage, needle", [
    ("supernet/last.ckpt", "last.ckpt is unreadable"),
    ("search/state.json", "state.json is unreadable"),
])
def test_a_damaged_resume_file_is_named(smoke_run, tiny_data, tmp_path, damage, needle):
    """A checkpoint or search state cut short (a run killed while writing it): one line naming the
    file and what to do, not a traceback from torch or json."""
    tmp, run_dir, _ = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for later in ("summary.json", "retrain/results.json", "search/best_arch.yaml"):
        (copy / later).unlink()
    data = (copy / damage).read_bytes()
    (copy / damage).write_bytes(data[: len(data) // 2])
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", data_dir=tiny_data, tmp=tmp,
               run_dir=copy)
    _assert_clean_failure(proc, copy, f"error: {copy / damage}", needle, "delete it")
    assert proc.returncode == 2


def test_retrain_in_a_run_dir_of_another_architecture_is_refused(tiny_data, tmp_path):
    arch_file = tmp_path / "arch.yaml"
    arch_file.write_text("layers:\n  - {kind: add, q_src: 0, q_op: conv1, k_src: 0, k_op: zero}\n")
    out = tmp_path / "r"
    args = ("+task=sst2", "budget=smoke", "hardware=cpu", "retrain.seeds=1", "retrain.max_steps=2")
    proc = cli("src.retrain", *args, f"arch={arch_file}", data_dir=tiny_data, tmp=tmp_path, run_dir=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the same path with other content is another architecture
    arch_file.write_text("layers:\n  - {kind: add, q_src: 0, q_op: gru, k_src: 0, k_op: zero}\n")
    proc = cli("src.retrain", *args, f"arch={arch_file}", data_dir=tiny_data, tmp=tmp_path, run_dir=out)
    _assert_clean_failure(proc, out, "was started with other settings", "architecture.layers:", fresh=False)


@pytest.mark.slow  # a supernet resumed: test_a_supernet_interrupted_inside_an_epoch_resumes_there and
# tests/test_resume_settings_findings.py
def test_an_interrupted_supernet_resumes_to_the_results_of_an_uninterrupted_run(tiny_data, tmp_path):
    """Ctrl-C during supernet training: one line saying how to resume, exit 130; the re-run
    continues from the last finished epoch and ends with the same steps, metrics history and
    search as a run never interrupted (same architectures, batches and dropout masks)."""
    args = ("+task=sst2", "budget=smoke", "hardware=cpu", "supernet.max_steps=-1", "supernet.epochs=12",
            "retrain.seeds=0")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli("src.search", *args, data_dir=tiny_data, tmp=tmp_path, run_dir=straight).returncode == 0
    proc = cli_interrupted_once(stopped / "supernet" / "last.ckpt", "src.search", *args, data_dir=tiny_data,
                                tmp=tmp_path, run_dir=stopped)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (f"interrupted: what finished is kept in {stopped}; run the "
                                                    f"same command with hydra.run.dir={stopped} to resume")
    assert "Traceback" not in proc.stderr and not (stopped / "supernet" / "DONE").exists()
    proc = cli("src.search", *args, data_dir=tiny_data, tmp=tmp_path, run_dir=stopped)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "supernet: resuming from" in proc.stdout + proc.stderr
    for name in ("supernet/DONE", "supernet/metrics.csv", "search/population.jsonl"):
        assert (stopped / name).read_text() == (straight / name).read_text(), name
    assert (straight / "supernet" / "DONE").read_text() == "96\n"


def test_a_supernet_interrupted_inside_an_epoch_resumes_there(tiny_data, tmp_path, monkeypatch, caplog):
    """``supernet.checkpoint_every_min=0``: ``last.ckpt`` is rewritten after every batch but an
    epoch's last. Ctrl-C before the 22nd step (the sixth of epoch 2: 8 batches an epoch) leaves
    the checkpoint of step 21; the re-run continues inside epoch 2 with its remaining batches and
    ends with the steps, ``metrics.csv`` rows (the epoch's mean loss included) and search
    candidates of a run never interrupted."""
    from src.lit.modules import SupernetModule
    from src.pipeline.run import entry, run_search

    def config(run_dir: Path):
        return compose_config("search", [
            "+task=sst2", "budget=smoke", "hardware=cpu", "supernet.max_steps=-1", "supernet.epochs=4",
            "supernet.checkpoint_every_min=0", "retrain.seeds=0", f"paths.data_dir={tiny_data}",
            f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={run_dir}"])

    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    entry(run_search, config(straight))
    steps_trained, pressed = [], []
    train_step = SupernetModule.training_step

    def ctrl_c_before_step_22(module, batch, batch_idx):
        if module.global_step == 21 and not pressed:
            pressed.append(True)
            signal.raise_signal(signal.SIGINT)
        steps_trained.append(module.global_step)
        return train_step(module, batch, batch_idx)

    monkeypatch.setattr(SupernetModule, "training_step", ctrl_c_before_step_22)
    with pytest.raises(SystemExit) as exc:
        entry(run_search, config(stopped))
    assert exc.value.code == 130 and steps_trained == list(range(21))
    assert torch.load(stopped / "supernet" / "last.ckpt", weights_only=False)["global_step"] == 21
    steps_trained.append("resumed")
    with caplog.at_level(logging.INFO, logger="src"):
        entry(run_search, config(stopped))
    assert f"supernet: resuming from {stopped / 'supernet' / 'last.ckpt'} at step 21" in caplog.text
    assert steps_trained[22:] == list(range(21, 32))  # the rest of epoch 2 (batches 6-8), then epoch 3
    for name in ("supernet/DONE", "supernet/metrics.csv", "search/population.jsonl"):
        assert (stopped / name).read_text() == (straight / name).read_text(), name
    assert (straight / "supernet" / "DONE").read_text() == "32\n"
    epoch_rows = [row for row in csv.DictReader((straight / "supernet" / "metrics.csv").open()) if row["train/loss_epoch"]]
    assert [row["epoch"] for row in epoch_rows] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("every_min", [pytest.param("null", marks=pytest.mark.slow), "0"])
def test_an_interrupted_retrain_seed_resumes_to_the_results_of_an_uninterrupted_one(tiny_data, tmp_path, every_min):
    """Ctrl-C during a retrain seed once its checkpoint exists: after the first epoch
    (``retrain.checkpoint_every_min=null``) or, with ``0``, after the first evaluation, inside the
    first epoch. The re-run continues from that checkpoint and ends with the same evaluations and
    metrics (the epochs' mean losses included) as a seed never interrupted (same batches and dropout
    masks); ``retrain.max_steps`` that ends the third epoch early still stops at that step, which
    is evaluated too, and the finished seed leaves no checkpoint behind."""
    args = ("+task=sst5", "arch=published_sst5", "budget=smoke", "hardware=cpu", "retrain.seeds=1",
            "retrain.epochs=3", "retrain.max_steps=23", "retrain.eval_every=4")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli("src.retrain", *args, data_dir=tiny_data, tmp=tmp_path, run_dir=straight).returncode == 0
    ckpt = stopped / "retrain" / "seed_0" / "last.ckpt"
    args = (*args, f"retrain.checkpoint_every_min={every_min}")
    # with 0, a SIGTERM (a scheduler's stop): Lightning's "Received SIGTERM: 15" line came before ours
    signum = signal.SIGTERM if every_min == "0" else signal.SIGINT
    proc = cli_interrupted_once(ckpt, "src.retrain", *args, data_dir=tiny_data, tmp=tmp_path, run_dir=stopped,
                                signum=signum)
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    assert [line for line in proc.stderr.splitlines() if "SIGTERM" in line or "interrupted" in line] == [
        f"interrupted{' (SIGTERM)' if signum == signal.SIGTERM else ''}: what finished is kept in {stopped}; run the "
        f"same command with hydra.run.dir={stopped} to resume"]
    assert "Received SIGTERM" not in proc.stdout + (stopped / "retrain.log").read_text()
    assert not (stopped / "retrain" / "seed_0.json").exists()
    stopped_at = torch.load(ckpt, weights_only=False)["global_step"]
    # 10 batches an epoch, an evaluation every 4 steps; the Ctrl-C comes once the first save exists
    assert stopped_at == 10 if every_min == "null" else stopped_at in (4, 8)
    proc = cli("src.retrain", *args, data_dir=tiny_data, tmp=tmp_path, run_dir=stopped)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"retrain seed 0: resuming from {ckpt} at step {stopped_at}" in proc.stdout + proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr  # Lightning's about the reused folder: its contents are kept
    for name in ("retrain/seed_0.json", "retrain/seed_0/metrics.csv", "retrain/results.json"):
        assert (stopped / name).read_text() == (straight / name).read_text(), name
    steps = [h["step"] for h in json.loads((straight / "retrain" / "seed_0.json").read_text())["history"]]
    assert steps == [4, 8, 12, 16, 20, 23]  # 10 batches an epoch: stopped in the third, at step 23
    rows = list(csv.DictReader((straight / "retrain" / "seed_0" / "metrics.csv").open()))
    assert [row["epoch"] for row in rows if row["train/loss_epoch"]] == ["0", "1", "2"]
    assert not ckpt.exists() and not (straight / "retrain" / "seed_0" / "last.ckpt").exists()
    # the kept model is the selected evaluation's, whichever side of the Ctrl-C that came
    kept = [torch.load(run / "retrain" / "seed_0" / "model.pt", weights_only=True) for run in (straight, stopped)]
    selected = json.loads((straight / "retrain" / "seed_0.json").read_text())
    for record in kept:
        assert record["evaluation"] == {k: selected[k] for k in ("step", "val_acc", "test_acc")}
    assert kept[0]["state_dict"].keys() == kept[1]["state_dict"].keys()
    assert all(torch.equal(kept[0]["state_dict"][k], kept[1]["state_dict"][k]) for k in kept[0]["state_dict"])


def test_the_retrained_models_are_kept_and_reproduce_their_records(smoke_run, tiny_data):
    """Each seed keeps the weights of its selected evaluation (retrain/seed_<s>/model.pt);
    ``src.evaluate`` rebuilds the run's data, reloads them and gets the recorded validation and
    test accuracy back. A model whose weights are not the recorded ones is caught (exit 1)."""
    tmp, run_dir, _ = smoke_run
    from src.models.saved import load_child

    for seed in (0, 1):
        model, record = load_child(run_dir / "retrain" / f"seed_{seed}" / "model.pt")
        selected = json.loads((run_dir / "retrain" / f"seed_{seed}.json").read_text())
        assert record["evaluation"] == {k: selected[k] for k in ("step", "val_acc", "test_acc")}
        assert model.arch == Architecture.load(run_dir / "search" / "best_arch.yaml") and not model.training
    proc = cli("src.evaluate", str(run_dir), data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert "| val recorded (%) | val now (%) | test recorded (%) | test now (%) |" in lines[0]  # bare numbers: the unit
    assert [line.split(" | ")[:2] + line.split(" | ")[-1:] for line in lines[2:4]] == [["| retrain", "0", "yes |"],
                                                                                      ["| retrain", "1", "yes |"]]
    assert lines[-1] == "all 2 model(s) reproduce their recorded validation and test scores"
    # the same run with seed 1's weights changed: the recomputed accuracy no longer matches
    copy = tmp / "evaluate_tampered"
    shutil.copytree(run_dir, copy)
    path = copy / "retrain" / "seed_1" / "model.pt"
    record = torch.load(path, weights_only=True)
    head = [k for k in record["state_dict"] if k.startswith("classifier.")]
    for k in head:
        record["state_dict"][k] = torch.randn_like(record["state_dict"][k]) * 10
    record["evaluation"]["val_acc"] = record["evaluation"]["test_acc"] = 2.0  # no accuracy can match
    torch.save(record, path)
    seed_file = copy / "retrain" / "seed_1.json"  # the record agrees with the file: only the weights are off
    seed_file.write_text(json.dumps({**json.loads(seed_file.read_text()), "val_acc": 2.0, "test_acc": 2.0}))
    proc = cli("src.evaluate", str(copy), data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "evaluate: retrain seed 0 (1 of 2)", "evaluate: retrain seed 1 (2 of 2)",
        "error: retrain seed 1: the recomputed scores differ from the recorded ones"]
    assert proc.stdout.splitlines()[3].endswith("| NO |")
    # a finished seed whose model file is gone was left out, and the rest reported as "all" reproducing
    (copy / "retrain" / "seed_1" / "model.pt").unlink()
    proc = cli("src.evaluate", str(copy), data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        "error: retrain seed 1: finished, but its model.pt is missing (deleted or not copied with the run), so it "
        "cannot be checked")
    assert proc.stdout.splitlines()[3].endswith("| - | NO (model.pt missing) |")
    # a run that has not finished says so beside its verdict
    (copy / "summary.json").unlink()
    shutil.rmtree(copy / "retrain" / "seed_1")
    (copy / "retrain" / "seed_1.json").unlink()
    proc = cli("src.evaluate", str(copy), data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == (
        "all 1 model(s) reproduce their recorded validation and test scores (the run has not finished: these are "
        "the models it kept so far)")


@pytest.mark.slow  # data.json's facts and check: tests/test_common_config.py, tests/test_checks.py; refused through
# the command line: tests/test_walk_findings.py (a resume), tests/test_graph_pipeline.py (src.evaluate)
def test_a_run_resumed_or_reloaded_on_other_data_is_refused(smoke_run, tiny_data, tmp_path):
    """``data.json`` records the data a run started on. Re-running its command with other files
    behind ``paths.data_dir`` failed loading the supernet checkpoint (a size-mismatch traceback), or
    resumed a search scored on the old data; ``src.evaluate`` on a graph run gave a shape traceback.
    Now both stop with one line, before anything is trained or written."""
    tmp, run_dir, _ = smoke_run
    recorded = json.loads((run_dir / "data.json").read_text())
    assert recorded["classes"] == 2 and recorded["examples"]["val"] == recorded["examples"]["test"] == 48  # no neutral
    other = write_tiny_sst(tmp_path / "other", n_train=300, n_dev=59, n_test=60, seed=1)
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", data_dir=other, tmp=tmp_path, run_dir=copy)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith(f"error: run dir {copy} was started on other data (examples.val: "), last
    assert "vocabulary_sha256: " in last and last.endswith("and resuming would mix results of the two: point "
                                                           "paths.data_dir (AUTOATTEND_DATA_DIR) at the run's data, "
                                                           "or give a new hydra.run.dir")
    for kept in ("data.json", "timing.json", "search/population.jsonl", "retrain/results.json"):
        assert (copy / kept).read_bytes() == (run_dir / kept).read_bytes(), kept
    proc = cli("src.evaluate", str(run_dir), data_dir=other, tmp=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        f"error: {run_dir}: the data at paths.data_dir={other} are not the run's (examples.val: "), proc.stderr[-2000:]


def test_predict_on_raw_text_reproduces_the_recorded_validation_accuracy(smoke_run, tiny_data):
    """The validation sentences as plain text through ``src.predict``: the chosen model (the seed
    of best recorded validation score) gives the predictions and probabilities it gives the encoded
    validation set, and so its recorded validation accuracy; ``--ensemble`` averages the seeds'
    probabilities; a model file kept without its text settings has them rebuilt from the run."""
    tmp, run_dir, _ = smoke_run
    from src.data.ptb import read_tree_file
    from src.evaluate import run_config
    from src.models.saved import load_child
    from src.pipeline.common import build_datamodule, make_loader
    from src.predict import predict

    # SST-2 keeps the sentences that are not neutral, in file order
    trees = [t for t in read_tree_file(tiny_data / "sst" / "trees" / "dev.txt") if t.label != 2]
    texts = [" ".join(t.leaves()) for t in trees]
    (tmp / "dev_sentences.txt").write_text("\n".join(texts) + "\n")
    proc = cli("src.predict", str(run_dir), "--file", str(tmp / "dev_sentences.txt"), "--jsonl", data_dir=tiny_data,
               tmp=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    recorded = {s: json.loads((run_dir / "retrain" / f"seed_{s}.json").read_text()) for s in (0, 1)}
    best = min(recorded, key=lambda s: (-recorded[s]["val_acc"], s))
    assert proc.stderr.splitlines() == [
        f"predict: {run_dir / 'retrain' / f'seed_{best}' / 'model.pt'} (step {recorded[best]['step']}: "
        f"validation {100 * recorded[best]['val_acc']:.2f} %, test {100 * recorded[best]['test_acc']:.2f} %)"]
    dm = build_datamodule(run_config(run_dir, [f"paths.data_dir={tiny_data}", f"paths.cache_dir={tmp / 'cache'}"]))
    assert [t.label // 3 for t in trees] == dm.val_set.labels.tolist()
    model, _ = load_child(run_dir / "retrain" / f"seed_{best}" / "model.pt")
    with torch.inference_mode():
        expected = torch.cat([torch.softmax(model(b["tokens"], b["mask"]), -1)
                              for b in make_loader(dm.val_set, 7, False, 0)])
    got = torch.tensor([list(r["probabilities"].values()) for r in rows])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # "prediction", as a graph run's rows name it ("label" there is the node's true class)
    assert [r["prediction"] for r in rows] == expected.argmax(-1).tolist() and all("label" not in r for r in rows)
    assert [r["name"] for r in rows] == [["negative", "positive"][r["prediction"]] for r in rows]
    correct = sum(r["prediction"] == y for r, y in zip(rows, dm.val_set.labels.tolist()))
    assert correct / len(rows) == pytest.approx(recorded[best]["val_acc"], abs=1e-6)  # recorded in float32
    assert all(r["unknown_words"] == 0 and r["words"] == len(t.leaves()) for r, t in zip(rows, trees))

    each = [torch.tensor([list(r["probabilities"].values()) for r in predict(run_dir, texts, seed=s)[1]])
            for s in (0, 1)]
    described, ensemble = predict(run_dir, texts, ensemble=True)
    assert len(described) == 2
    torch.testing.assert_close(torch.tensor([list(r["probabilities"].values()) for r in ensemble]),
                               (each[0] + each[1]) / 2, rtol=0, atol=1e-6)

    old = tmp / "predict_old_model_file"
    shutil.copytree(run_dir, old)
    path = old / "retrain" / "seed_1" / "model.pt"
    record = torch.load(path, weights_only=True)
    del record["spec"]["text_input"], record["spec"]["label_names"]
    torch.save(record, path)
    proc = cli("src.predict", str(path), texts[0], texts[1], data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "predates stored text settings; rebuilding them from" in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["| # | prediction | probability | unknown words | text |", "| --- | --- | --- | --- | --- |"]
    for i, (line, row) in enumerate(zip(lines[2:], predict(run_dir, texts[:2], seed=1)[1]), 1):
        assert line == (f"| {i} | {row['name']} | {row['probabilities'][row['name']]:.3f} | 0 of {row['words']} | "
                        f"{row['text']} |")


def test_predict_into_a_closed_pipe_stops_quietly(smoke_run, tiny_data):
    """``src.predict RUN --file F | head -1``: when the reader goes away the command ends with the
    status of a process SIGPIPE ended (141) and writes nothing to stderr but its usual line (no
    BrokenPipeError traceback)."""
    tmp, run_dir, _ = smoke_run
    (tmp / "many_texts.txt").write_text("a film with good moments\n" * 20000)  # a table of > 1 MB, past any pipe buffer
    command = cli_command("src.predict", str(run_dir), "--file", str(tmp / "many_texts.txt"), data_dir=tiny_data,
                          tmp=tmp)
    with subprocess.Popen(**command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline() == "| # | prediction | probability | unknown words | text |\n"
        proc.stdout.close()
        err = proc.stderr.read()
        status = proc.wait(timeout=120)
    assert status == 141 and err.startswith("predict: ") and len(err.splitlines()) == 1, err[-3000:]


def test_evaluate_bad_input_is_one_clear_line(smoke_run, tiny_data):
    tmp, run_dir, _ = smoke_run
    cases = {str(tmp / "nowhere"): f"error: {tmp / 'nowhere'}: no such directory",
             str(tmp): f"error: {tmp}: not a run directory (no .hydra/config.yaml)",
             str(run_dir / "summary.json"): f"error: {run_dir / 'summary.json'}: a file; give the run's directory "
                                            "(src.evaluate checks every model it kept)"}
    bare = tmp / "evaluate_no_models"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("model.pt"))
    cases[str(bare)] = (f"error: {bare / 'retrain'}: no saved models (retrain/seed_<s>/model.pt; runs retrained "
                        "before models were kept have none)")
    unretrained = tmp / "evaluate_not_retrained"
    shutil.copytree(run_dir, unretrained, ignore=shutil.ignore_patterns("retrain"))
    cases[str(unretrained)] = (f"error: {unretrained}: nothing retrained (no retrain/ folder: the run stopped before "
                               "its retrain stage, or ran with retrain.seeds=0; graph tasks: graph.retrain.seeds=0)")
    for target, line in cases.items():
        proc = cli("src.evaluate", target, data_dir=tiny_data, tmp=tmp)
        assert proc.returncode == 2 and proc.stderr.strip() == line, proc.stderr
    proc = cli("src.evaluate", str(run_dir), "hardware.threads", data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 2 and "hardware.threads: expected key=value" in proc.stderr
    # a misspelt key is refused, not added beside the one it meant (and the run's data read from the old place)
    proc = cli("src.evaluate", str(run_dir), "paths.datadir=/elsewhere", data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: paths.datadir: no such setting in {run_dir / '.hydra' / 'config.yaml'} (override a key the run's "
        "config has, e.g. paths.data_dir=...)")
    # a damaged seed record (a JSONDecodeError traceback)
    damaged = tmp / "evaluate_damaged_seed"
    shutil.copytree(run_dir, damaged)
    (damaged / "retrain" / "seed_0.json").write_text("{")
    proc = cli("src.evaluate", str(damaged), data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"error: {damaged / 'retrain' / 'seed_0.json'}: unreadable (expected the seed's result: step, val_acc, "
        "test_acc); restore it, or delete it and re-run the run's command to train that seed again"), proc.stderr
    # a setting the results depend on rebuilt other data and blamed the models (data.max_len=3), or
    # gave a traceback (seed=abc); a machine setting's value is checked as the search checks it
    for override in ("data.max_len=3", "seed=abc"):
        proc = cli("src.evaluate", str(run_dir), override, data_dir=tiny_data, tmp=tmp)
        assert proc.returncode == 2 and proc.stderr.strip() == (
            f"error: {override.split('=')[0]}: a setting the run's results depend on, which is kept as the run had "
            "it; override only where things are and how the machine runs (paths.*, task.path, hardware.threads, "
            "hardware.accelerator, retrain.eval_batch_size, ...)"), proc.stderr[-2000:]
    proc = cli("src.evaluate", str(run_dir), "hardware.threads=-2", data_dir=tiny_data, tmp=tmp)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: hardware.threads: expected an integer >= 1 or 0 or null, got -2"), proc.stderr[-2000:]


@pytest.mark.parametrize("arch_path", [
    "search/best_arch.yaml",
    pytest.param(".", marks=pytest.mark.slow),  # a run folder as arch=: tests/test_checks.py, make retrain ARCH=
])
def test_retrain_cli_on_the_searched_architecture(smoke_run, tiny_data, arch_path):
    """``arch=`` the search's ``best_arch.yaml`` or the search's run directory itself."""
    tmp, run_dir, _ = smoke_run
    out = tmp / f"retrain_run_{arch_path.replace('/', '_')}"
    proc = cli("src.retrain", "+task=sst2", f"arch={(run_dir / arch_path).resolve()}", "budget=smoke",
               "hardware=cpu", "retrain.seeds=1", data_dir=tiny_data, tmp=tmp, run_dir=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "retrain" / "results.json").read_text())
    assert results["arch"] == Architecture.load(run_dir / "search" / "best_arch.yaml").to_dict()
    # named by the file retrained, also when given the search's run directory (read as that run's results)
    best = run_dir.resolve() / "search" / "best_arch.yaml"
    assert f"summary: {best}: test acc" in proc.stdout
    assert json.loads((out / "summary.json").read_text())["arch"] == str(best)
    assert results["protocol"]["lower_precision"] is None and "lower precision" not in proc.stdout
    assert json.loads((out / "summary.json").read_text())["lower_precision"] is None


def test_a_lower_precision_run_is_labelled_where_its_figures_are(smoke_run, tiny_data):
    """``hardware.precision=bf16-mixed`` was recorded only in the run's settings: its summary line,
    summary.json and results.json read as a float32 run's."""
    tmp, run_dir, _ = smoke_run
    out = tmp / "retrain_bf16"
    proc = cli("src.retrain", "+task=sst2", f"arch={run_dir / 'search' / 'best_arch.yaml'}", "budget=smoke",
               "hardware=cpu", "hardware.precision=bf16-mixed", "retrain.seeds=1", "retrain.max_steps=2",
               "retrain.eval_every=2", data_dir=tiny_data, tmp=tmp, run_dir=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    label = "hardware.precision=bf16-mixed"
    assert f"| lower precision: {label} |" in proc.stdout
    assert f"{label}: a labelled lower precision, not the paper's float32 protocol" in proc.stdout + proc.stderr
    assert json.loads((out / "summary.json").read_text())["lower_precision"] == label
    assert json.loads((out / "retrain" / "results.json").read_text())["protocol"]["lower_precision"] == label


@pytest.mark.slow  # the same gradients: tests/test_models.py; retrain.recompute reaching the child: test_text_stages.py
def test_retrain_with_recomputed_layers_gives_the_same_results(smoke_run, tiny_data):
    """``retrain.recompute=true`` changes memory, not results: every evaluation of the seed equal."""
    tmp, run_dir, _ = smoke_run
    histories = []
    for recompute in ("false", "true"):
        out = tmp / f"retrain_recompute_{recompute}"
        proc = cli("src.retrain", "+task=sst2", f"arch={run_dir / 'search' / 'best_arch.yaml'}", "budget=smoke",
                   "hardware=cpu", "retrain.seeds=1", "retrain.eval_every=2", f"retrain.recompute={recompute}",
                   data_dir=tiny_data, tmp=tmp, run_dir=out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"recompute {recompute.capitalize()}" in proc.stdout + proc.stderr
        histories.append((json.loads((out / "retrain" / "seed_0.json").read_text())["history"],
                          (out / "retrain" / "seed_0" / "metrics.csv").read_text()))
    (history, metrics), (history_recomputed, metrics_recomputed) = histories
    assert history == history_recomputed and len(history) >= 4
    assert metrics == metrics_recomputed and "train/loss" in metrics  # the training loss to the last bit


@pytest.mark.slow  # the published child built and trained: tests/test_models.py; a built-in arch= retrained:
# tests/test_graph_pipeline.py::test_retrain_cli_gat_baseline
def test_retrain_published_architecture_builds(tiny_data, tmp_path):
    proc = cli("src.retrain", "+task=sst5", "arch=published_sst5", "budget=smoke", "hardware=cpu",
               "retrain.seeds=1", "retrain.max_steps=2", "retrain.eval_every=2", data_dir=tiny_data, tmp=tmp_path,
               run_dir=tmp_path / "r")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "r" / "retrain" / "results.json").read_text())
    assert len(results["arch"]["layers"]) == 24


# ---- bad input: one clear line, non-zero exit, no result files --------------------------------

def _assert_clean_failure(proc, run_dir: Path, *needles: str, fresh: bool = True):
    """One ``error:`` line holding ``needles``, no traceback; ``fresh``: no result was written."""
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert err, "nothing on stderr"
    text = proc.stderr
    for needle in needles:
        assert needle in text, text[-2000:]
    assert "Traceback" not in text
    for line in err:
        if line.startswith("error: "):
            message = line[len("error: "):]
            console = (proc.stdout + proc.stderr).splitlines()
            repeats = [other for other in console if message in other]
            assert len(repeats) == 1, f"the error is repeated on the console: {repeats}"
    for result in ("summary.json", "retrain/results.json", "search/best_arch.yaml"):
        assert not (fresh and (run_dir / result).exists())


def test_a_run_dir_in_use_by_another_command_is_refused(tiny_data, tmp_path):
    """Two commands in one run folder (a resume typed twice, two runs started in the same second
    under the default timestamped folder) both wrote into it; the second is refused while the
    first holds the folder, and the folder is free again once that process has ended."""
    import sys

    from src.pipeline import run

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); time.sleep(120)", str(run_dir / run.RUN_LOCK_FILE)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = cli("src.search", "+task=sst2", "budget=smoke", data_dir=tiny_data, tmp=tmp_path, run_dir=run_dir)
        _assert_clean_failure(proc, run_dir, f"error: run dir {run_dir} is in use by another command still running: "
                                             "wait for it to end (to resume the run), or give another hydra.run.dir")
        assert proc.returncode == 2 and not (run_dir / "run_settings.json").exists()
        # the log in that folder is the running command's: the refused command neither writes into it
        # nor creates it (the folder had none)
        assert not list(run_dir.glob("*.log"))
    finally:
        holder.kill()
        holder.wait()

    run._hold_run_dir(run_dir)  # free once the holder's process is gone, killed or not
    run._release_run_dirs()


@pytest.mark.parametrize("entry", ["src.search", "src.retrain"])
@pytest.mark.parametrize("job_logging", ["stdout", "disabled"])
def test_hydra_job_logging_options_other_than_the_default_compose(entry, job_logging, tiny_data, tmp_path):
    """The log file's delayed opening was merged into whichever ``hydra/job_logging`` was chosen:
    Hydra's own ``stdout`` (console only) and ``disabled`` have no ``file`` handler, so the merged
    one had no class and every command ended in a ``logging.config`` traceback. They compose again;
    the default still writes its log file."""
    run_dir = tmp_path / "r"
    proc = cli(entry, "+task=sst2", "hardware.progress=nope", f"hydra/job_logging={job_logging}",
               data_dir=tiny_data, tmp=tmp_path, run_dir=run_dir)
    _assert_clean_failure(proc, run_dir, "error: hardware.progress: expected true or false, got 'nope'")
    assert proc.returncode == 2 and not list(run_dir.glob("*.log"))
    proc = cli(entry, "+task=sst2", "hardware.progress=nope", data_dir=tiny_data, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 2
    assert "expected true or false, got 'nope'" in (run_dir / f"{entry.split('.')[1]}.log").read_text()


def test_unknown_task(tiny_data, tmp_path):
    proc = cli("src.search", "+task=imdb", data_dir=tiny_data, tmp=tmp_path, run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", "task/imdb", "sst2")


def test_no_task(tiny_data, tmp_path):
    proc = cli("src.search", data_dir=tiny_data, tmp=tmp_path, run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", "error: no task selected", "+task=")
    assert proc.returncode == 2


@pytest.mark.parametrize("content, needles", [
    ("layers:\n  - {kind: add, q_src: 0, q_op: conv1, k_src: 0, k_op: conv7}\n", ["layer 0", "k_op", "conv7"]),
    ("layers:\n  - {kind: add, q_src: 0, q_op: conv1, k_src: 3, k_op: gru}\n", ["layer 0", "k_src"]),
    ("layers: [{kind: add, q_src: 0", ["not valid YAML, line 1, column 30 (expected ',' or '}', but got '<stream end>')"]),
    # a graph architecture on a text task is named as such, not by its first op
    ("layers:\n  - {kind: add, q_src: 0, q_op: gcn, k_src: 0, k_op: sage}\n",
     ["a graph architecture (ops gcn, sage), while task sst2 is a text task; its ops: zero, identity, conv1"]),
    # search/topk.yaml: candidates, not one architecture
    ("- rank: 1\n  val_acc: 0.5\n  arch: {layers: []}\n- rank: 2\n  val_acc: 0.4\n  arch: {layers: []}\n",
     ["a list of 2 candidates, not one architecture; give search/best_arch.yaml (or the run directory)"]),
])
def test_invalid_architecture_file(tiny_data, tmp_path, content, needles):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    proc = cli("src.retrain", "+task=sst2", f"arch={bad}", "budget=smoke", data_dir=tiny_data, tmp=tmp_path,
               run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", "error:", *needles)
    assert proc.returncode == 2


def test_smoke_search_with_the_memory_options(tiny_data, tmp_path):
    """``supernet.optimizer_state=bfloat16 supernet.recompute=true`` through the real command line:
    the run completes, says what it used, and its checkpoint holds bfloat16 moments."""
    import torch

    run_dir = tmp_path / "r"
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", "supernet.optimizer_state=bfloat16",
               "supernet.recompute=true", data_dir=tiny_data, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Adam state bfloat16, recompute True" in proc.stdout + proc.stderr
    ckpt = torch.load(run_dir / "supernet" / "last.ckpt", map_location="cpu", weights_only=False)
    states = ckpt["optimizer_states"][0]["state"].values()
    assert states and all(s["exp_avg"].dtype == s["exp_avg_sq"].dtype == torch.bfloat16 for s in states)
    assert any(s["step"] > 0 for s in states) and "rounding_rng" in ckpt["optimizer_states"][0]
    assert json.loads((run_dir / "retrain" / "results.json").read_text())["per_seed"]


@pytest.mark.slow  # snapshot, resume, missing snapshot: tests/test_optim.py; offloaded through the command line and
# resumed: tests/test_disk_findings.py
def test_offloaded_adam_state_through_the_command_line_and_a_resume(tiny_data, tmp_path):
    """``supernet.optimizer_offload=true``: the checkpoint names a snapshot of the moments next to
    it (and holds no moments); a run stopped after its first epoch resumes from that snapshot; a
    missing snapshot is one clear error."""
    import torch

    run_dir = tmp_path / "r"
    args = ("+task=sst2", "budget=smoke", "hardware=cpu", "supernet.optimizer_offload=true", "supernet.recompute=true",
            "supernet.max_steps=-1")
    proc = cli("src.search", *args, data_dir=tiny_data, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    supernet_dir = run_dir / "supernet"
    assert f"Adam state float32 offloaded to {supernet_dir}, recompute True" in proc.stdout + proc.stderr
    ckpt = torch.load(supernet_dir / "last.ckpt", map_location="cpu", weights_only=False)
    saved = ckpt["optimizer_states"][0]
    assert all(set(entry) == {"step"} for entry in saved["state"].values())
    steps = ckpt["global_step"]
    assert steps == 8 and saved["offloaded_moments"]["file"] == f"adam_moments.{steps}.bin"
    assert sorted(p.name for p in supernet_dir.glob("*adam_moments*")) == [f"adam_moments.{steps}.bin"]

    # as if a run of two epochs had stopped after its first: its record says epochs=2, nothing
    # after the supernet's first epoch exists
    (supernet_dir / "DONE").unlink()
    for later in ("search", "retrain"):
        shutil.rmtree(run_dir / later)
    record = json.loads((run_dir / "run_settings.json").read_text())
    (run_dir / "run_settings.json").write_text(json.dumps({**record, "supernet.epochs": 2}))
    proc = cli("src.search", *args, "supernet.epochs=2", data_dir=tiny_data, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(supernet_dir / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2 * steps
    assert ckpt["optimizer_states"][0]["offloaded_moments"]["file"] == f"adam_moments.{2 * steps}.bin"
    assert max(entry["step"] for entry in ckpt["optimizer_states"][0]["state"].values()) == 2 * steps

    # the checkpoint alone, without its snapshot, in a fresh run directory
    moved = tmp_path / "moved"
    (moved / "supernet").mkdir(parents=True)
    shutil.copy(supernet_dir / "last.ckpt", moved / "supernet" / "last.ckpt")
    proc = cli("src.search", *args, "supernet.epochs=3", data_dir=tiny_data, tmp=tmp_path, run_dir=moved)
    _assert_clean_failure(proc, moved, f"adam_moments.{2 * steps}.bin is missing")


@pytest.mark.parametrize("override, needles", [
    ("supernet.optimizer_state=fp16", ("error: supernet.optimizer_state", "float32, bfloat16", "'fp16'")),
    ("supernet.optimizer_offload=yes", ("error: supernet.optimizer_offload: expected true or false, got 'yes'",)),
])
def test_unknown_optimizer_state(override, needles, tiny_data, tmp_path):
    proc = cli("src.search", "+task=sst2", "budget=smoke", override, data_dir=tiny_data,
               tmp=tmp_path, run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", *needles)
    assert proc.returncode == 2 and not (tmp_path / "r" / "supernet").exists()


def test_an_error_raised_while_building_the_datamodule_is_one_line(tiny_data, tmp_path):
    """Hydra's instantiate wraps what a DataModule's constructor raises; the user still sees the
    project's one line and exit status 2."""
    needle = "error: task.datamodule.name: unknown Planetoid set 'nope'; expected one of ['citeseer', 'cora', 'pubmed']"
    proc = cli("src.search", "+task=cora", "task.datamodule.name=nope", "budget=smoke", data_dir=tiny_data,
               tmp=tmp_path, run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", needle)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_gpu_requested_without_one_fails_before_loading_data(tmp_path, monkeypatch):
    """Said before the data is looked for, and before Lightning and PyG are imported (the
    interpreter's import log, PYTHONPROFILEIMPORTTIME): torch alone answers it."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=gpu", data_dir=tmp_path / "nowhere",
               tmp=tmp_path, run_dir=tmp_path / "r")
    assert proc.returncode == 2 and "error: hardware=gpu but torch sees no CUDA device" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "supernet").exists()
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported and "lightning" not in imported and "torch_geometric" not in imported
    assert "SST" not in proc.stdout + proc.stderr.replace("error: ", "")  # no data was looked for


@pytest.mark.parametrize("module, args, needle", [
    ("src.search", ("+task=nope",), "error: In 'search': Could not find 'task/nope'; Available options in 'task': "
                                    "agnews, amazon2"),
    # Hydra's message advised +retrain.seedz=3, which would add a setting nothing reads
    ("src.search", ("+task=sst2", "retrain.seedz=3"), "error: retrain.seedz: no such setting (misspelt, or one of a task or option not chosen"),
    ("src.retrain", ("task=sst2",), "To append to your default list use +task=sst2"),
    ("src.search", ("+task=sst2", "seed=[1"), "error: cannot parse the override 'seed=[1': no viable alternative "
                                              "at input '[1' (quote a value with special characters"),
    ("src.search", ("+experiment=cora_default", "+task=sst2"), "write task=<name>, without the +"),
    # no experiment: Hydra's "To override a value use 'override task: sst2'" is a config file's syntax
    ("src.search", ("+task=cora", "+task=sst2"), "error: +task given 2 times (+task=cora, +task=sst2): give one"),
    ("src.search", ("+experiment=nope",), "Could not find 'experiment/nope'; Available options in 'experiment': "
                                          "cora_autogl, cora_default"),
    ("src.retrain", ("+experiment=cora_default",), "error: experiment cora_default is run by `python -m src.search`"),
])
def test_hydra_config_errors_are_one_line(module, args, needle, tmp_path):
    proc = cli(module, *args, data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "r")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_builtin_architecture(tiny_data, tmp_path):
    proc = cli("src.retrain", "+task=sst2", "arch=nonexistent", data_dir=tiny_data, tmp=tmp_path,
               run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", "arch=nonexistent", "published_sst5")


def test_missing_data(tmp_path):
    proc = cli("src.search", "+task=sst5", "budget=smoke", data_dir=tmp_path / "nowhere", tmp=tmp_path,
               run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", "error:", str(tmp_path / "nowhere"), "SetFit/sst5")
    assert proc.returncode == 2


def test_wrong_embedding_file_format(tiny_data, tmp_path):
    bad = tmp_path / "vectors.txt"
    bad.write_text("good 0.1 0.2 0.3\nbad 0.1 zero 0.3\n")
    proc = cli("src.search", "+task=sst2", "budget=smoke", f"data.glove_path={bad}", data_dir=tiny_data,
               tmp=tmp_path, run_dir=tmp_path / "r")
    _assert_clean_failure(proc, tmp_path / "r", "error:", str(bad), "line 2")
    assert proc.returncode == 2


# ---- the real SST files ----------------------------------------------------------------------

def test_smoke_search_on_real_sst(tmp_path):
    data = real_data_dir()
    if data is None or not (data / "sst" / "trees" / "train.txt").exists():
        pytest.skip("real SST trees not found (set AUTOATTEND_DATA_DIR or put them in ../shared/data/sst/trees)")
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=sst5", "budget=smoke", "hardware=cpu", data_dir=data, tmp=tmp_path,
               run_dir=run_dir, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    assert results["protocol"]["val_examples"] == 1101 and results["protocol"]["test_examples"] == 2210
    assert 0.0 < results["test_acc_mean"] <= 1.0


def test_a_failed_job_does_not_stop_the_sweep(tiny_data, tmp_path):
    """A user error in one job of a multirun is reported on its line; the other jobs run; the
    exit status says that something failed."""
    sweep = tmp_path / "sweep"
    proc = cli("src.search", "-m", "+task=sst2", "budget=smoke", "hardware=cpu", "supernet.dim=15,16",
               "retrain.seeds=1", f"hydra.sweep.dir={sweep}", data_dir=tiny_data, tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: supernet.dim=15 is not divisible by supernet.heads=2" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("error: 1 job(s) of the sweep failed, each reported above; "
                                                    "the others finished")
    assert "Traceback" not in proc.stderr
    assert "Error executing job" not in proc.stderr  # Hydra's line, naming only the first failed job
    finished = [json.loads(p.read_text())["run_dir"] for p in sweep.glob("*/summary.json")]
    assert len(finished) == 1 and "supernet.dim=16" in finished[0]
    # the sweep's report still comes, before the error line, with the job that finished
    assert proc.stdout.strip().splitlines()[-1] == f"sweep report: {sweep / 'report.md'}"
    (job,) = list(csv.DictReader(io.StringIO((sweep / "report.csv").read_text())))
    assert "supernet.dim=16" in job["run"] and job["state"] == "finished" and float(job["test mean"]) > 0
    # and names the job that failed, with its error (it left no run directory a report lists)
    report = (sweep / "report.md").read_text()
    assert report.endswith("Failed jobs (1):\n\n- `+task=sst2 budget=smoke hardware=cpu supernet.dim=15 "
                           "retrain.seeds=1`: supernet.dim=15 is not divisible by supernet.heads=2: each head takes "
                           "dim/heads channels\n")
    assert report in proc.stdout
    # a sweep whose every job failed does not speak of "the others" as finished
    proc = cli("src.search", "-m", "+task=sst2", "budget=smoke", "hardware=cpu", "supernet.dim=15,17",
               f"hydra.sweep.dir={tmp_path / 'all_failed'}", data_dir=tiny_data, tmp=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "error: 2 job(s) of the sweep failed, each reported above; none finished"), proc.stderr[-2000:]


def test_multirun_sweeps_seeds_into_separate_run_dirs(tiny_data, tmp_path):
    sweep = tmp_path / "sweep"
    proc = cli("src.search", "-m", "+task=sst2", "budget=smoke", "hardware=cpu", "seed=1,2", "retrain.seeds=1",
               f"hydra.sweep.dir={sweep}", data_dir=tiny_data, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.parent.parent for p in sweep.glob("*/retrain/results.json"))
    assert len(runs) == 2
    seeds = [json.loads((r / "retrain" / "results.json").read_text())["seeds"] for r in runs]
    assert sorted(seeds) == [[1], [2]]
    populations = [read_population(r) for r in runs]
    assert populations[0] != populations[1]  # a different seed searches differently
    # each job's record of its invocation names the job's overrides, not only the sweep's command line
    for run_dir, seed in zip(runs, (1, 2)):
        (invocation,) = json.loads((run_dir / "invocations.json").read_text())["invocations"]
        assert f"seed={seed}" in invocation["job_overrides"] and "seed=1,2" in invocation["argv"]
    # the sweep ends with its report: a row per job, the seed the only setting shown, then the two
    # folded into one row (mean and spread over the seeds)
    report = (sweep / "report.md").read_text()
    assert proc.stdout.strip().splitlines()[-1] == f"sweep report: {sweep / 'report.md'}" and report in proc.stdout
    table = list(csv.DictReader(io.StringIO((sweep / "report.csv").read_text())))
    assert [row["seed"] for row in table] == ["1", "2"] and [k for k in table[0] if "." in k] == []
    tests = [json.loads((r / "summary.json").read_text())["retrain"]["test_acc_mean"] for r in runs]
    assert [row["test mean"] for row in table] == [f"{100 * t:.2f}" for t in tests]
    assert "| search | sst2 | 2 | 1 2 |" in report
    assert sorted(p.name for p in runs) == ["+task=sst2,budget=smoke,retrain.seeds=1,seed=1",
                                            "+task=sst2,budget=smoke,retrain.seeds=1,seed=2"]  # no job number

    # the sweep again in its folder with other seeds: the seed-2 job finds its folder (it was job 1,
    # now job 0: with the job number in the name it started again in a new one); jobs that differ
    # only in a setting left out of folder names (hardware.threads) are refused, not run in one folder
    stamp = (sweep / runs[1].name / "retrain" / "seed_2.json").stat().st_mtime_ns
    proc = cli("src.search", "-m", "+task=sst2", "budget=smoke", "hardware=cpu", "seed=2,3", "retrain.seeds=1",
               "hardware.threads=1,2", f"hydra.sweep.dir={sweep}", data_dir=tiny_data, tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [
        "+task=sst2,budget=smoke,retrain.seeds=1,seed=1", "+task=sst2,budget=smoke,retrain.seeds=1,seed=2",
        "+task=sst2,budget=smoke,retrain.seeds=1,seed=3"]
    assert (sweep / runs[1].name / "retrain" / "seed_2.json").stat().st_mtime_ns == stamp  # not trained again
    assert json.loads((sweep / "+task=sst2,budget=smoke,retrain.seeds=1,seed=3" / "retrain" / "results.json")
                      .read_text())["seeds"] == [3]
    refused = [line for line in proc.stderr.splitlines() if "has the folder of an earlier job of the sweep" in line]
    assert len(refused) == 2 and all("hardware.threads=2" in line for line in refused), proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == ("error: 2 job(s) of the sweep failed, each reported above; "
                                                    "the others finished")


@pytest.mark.parametrize("damage, line", [
    # a Windows path typed into the data path: YAML's escape rules (a ScannerError traceback)
    (lambda text: text.replace("data_dir: ", 'data_dir: "D:\\data\\x"\n_was: '), "cannot be read as the run's config"),
    (lambda text: text.encode() + b"\xff\n", "cannot be read as the run's config"),
    (lambda text: "task: 5\n" + text.split("\ntask:")[0], "not a run's config (expected a mapping"),
    # a section deleted by hand (OmegaConf's ConfigAttributeError traceback from the machine set-up)
    (lambda text: re.sub(r"(?m)^hardware:\n(?:[ ].*\n)*", "", text), "hardware: missing, a setting this version"),
    # ... or a setting added after the run was started: the line says both
    (lambda text: re.sub(r"(?m)^  max_len: .*\n", "", text),
     "data.max_len: missing, a setting this version of autoattend reads; either the file was edited (restore it "
     "from the run's command) or the run was started by a version before the setting existed"),
    (lambda text: re.sub(r"(?m)^  max_len: .*\n", "  max_len: ???\n", text), "data.max_len: not a valid setting"),
])
def test_evaluate_on_a_damaged_run_config_is_one_line(damage, line, smoke_run, tmp_path, capsys):
    """``src.evaluate`` (and ``src.predict`` where it rebuilds data) on a truncated, garbled or
    hand-edited ``.hydra/config.yaml``: one line naming the file, exit status 2, not a traceback."""
    from src.evaluate import main

    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run[1], run_dir)
    config = run_dir / ".hydra" / "config.yaml"
    damaged = damage(config.read_text())
    config.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
    assert main([str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {config}: ") and line in err, err


def test_evaluate_blames_what_is_wrong_not_the_data_or_the_run_config(smoke_run, tiny_data, tmp_path, capsys):
    """An override whose value does not resolve was blamed on the run's .hydra/config.yaml; a
    hand-edited data.json ("classes": "two") on the data at paths.data_dir."""
    from src.evaluate import main

    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run[1], run_dir)
    assert main([str(run_dir), "paths.data_dir=${oc.env:AUTOATTEND_NO_SUCH_VARIABLE}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "error: paths.data_dir=${oc.env:AUTOATTEND_NO_SUCH_VARIABLE}: ")
    record = json.loads((run_dir / "data.json").read_text())
    (run_dir / "data.json").write_text(json.dumps({**record, "classes": "two"}))
    assert main([str(run_dir), f"paths.data_dir={tiny_data}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {run_dir / 'data.json'}: classes is two, not a record of the data (int); it records the data this "
        "run directory was started on: restore it")


def test_evaluate_names_a_kept_model_from_another_run(smoke_run, tiny_data, tmp_path, capsys):
    """A graph model copied into a text run (or a model of other classes or another vocabulary)
    gave an AttributeError or a matrix-shape traceback; an empty model.pt a message about mmap."""
    from src.evaluate import main
    from src.models.graph import GraphNet
    from src.models.saved import graph_child_spec, save_child, weights_of

    graph_arch = Architecture.from_dict({"layers": [{"kind": "add", "q_src": 0, "q_op": "gcn", "k_src": 0,
                                                     "k_op": "zero"}]})
    graph_model = GraphNet.child(1433, 7, graph_arch, hidden=16)
    for name, line in [
        ("graph", "a graph model, in a run of a text task: the file is from another run"),
        ("classes", "a model of 7 classes, where the run's data have 2"),
        ("vocabulary", "a model of 10 words in the vocabulary, where the run's data have"),
    ]:
        run_dir = tmp_path / name
        shutil.copytree(smoke_run[1], run_dir)
        model = run_dir / "retrain" / "seed_0" / "model.pt"
        record = torch.load(model, weights_only=True)
        spec, weights = dict(record["spec"]), dict(record["state_dict"])
        if name == "graph":
            spec, weights = graph_child_spec(graph_arch, 1433, 7, hidden=16), weights_of(graph_model)
        elif name == "classes":  # another task's head
            spec["num_classes"] = 7
            weights = {k: (torch.zeros(7, *v.shape[1:]) if k.startswith("classifier.") else v) for k, v in weights.items()}
        else:  # another run's vocabulary
            spec["embedding_shape"] = [10, spec["embedding_shape"][1]]
            weights = {k: (v[:10] if k == "embedding.weight" else v) for k, v in weights.items()}
        save_child(model, weights, spec, record["evaluation"])
        assert main([str(run_dir), f"paths.data_dir={tiny_data}"]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error: {model}: {line}"), name
    model.write_bytes(b"")
    assert main([str(run_dir), f"paths.data_dir={tiny_data}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {model}: not a saved model (an empty file; expected retrain/seed_<s>/model.pt)")


def test_the_selected_evaluation_is_the_best_validation_earliest_on_ties():
    """A text seed's result is the evaluation of highest validation accuracy; of several with that
    accuracy, the earliest (not the last, nor the one of best test accuracy)."""
    from src.lit.modules import ChildModule
    from src.models.text import TextClassifier

    arch = Architecture.load(Path(__file__).resolve().parents[1] / "src/space/archs/published_sst5.yaml")
    module = ChildModule(TextClassifier.child(torch.randn(6, 8), 2, arch, dim=16, heads=2))
    module.history = [{"step": 4, "val_acc": 0.70, "test_acc": 0.90},
                      {"step": 8, "val_acc": 0.80, "test_acc": 0.60},
                      {"step": 12, "val_acc": 0.75, "test_acc": 0.95},
                      {"step": 16, "val_acc": 0.80, "test_acc": 0.70},
                      {"step": 20, "val_acc": 0.65, "test_acc": 0.50}]
    assert module.selected() == {"step": 8, "val_acc": 0.80, "test_acc": 0.60}


def test_a_child_fitted_with_one_evaluation_loader_says_it_needs_two(tmp_path):
    """ChildModule scores validation and test together: fitted from Python with only a validation
    loader it recorded test accuracy 0.0 (torchmetrics' warning only)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from src.data.text import pad_collate
    from src.lit.modules import ChildModule
    from src.models.text import TextClassifier
    from src.utils.errors import AutoAttendError

    arch = FunctionalSpace(2).sample(__import__("random").Random(0))
    torch.manual_seed(0)
    module = ChildModule(TextClassifier.child(torch.randn(6, 8), 2, arch, dim=16, heads=2))
    examples = [(torch.tensor([2, 3, 4]), 1), (torch.tensor([5]), 0)]
    loader = DataLoader(examples, batch_size=2, collate_fn=pad_collate)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path)
    with pytest.raises(AutoAttendError, match="fit it with two validation dataloaders, \\[validation, test\\]; no batch "
                                              "of the test split came"):
        trainer.fit(module, loader, loader)
    assert not any(m.update_called for m in module.metrics)  # a fit again counts none of the refused one's batches
    module.train()  # the refusal came inside validation, which had put the model in eval mode
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(module, loader, [loader, loader])
    assert module.history[-1]["val_acc"] == module.history[-1]["test_acc"]


def test_the_seed_summary_is_the_mean_and_sample_std_over_every_seed():
    """``retrain/results.json``: the mean and the sample standard deviation (n - 1) of the seeds'
    selected test scores, the mean of their validation scores, every seed listed without its
    history; one seed has a std of 0."""
    import statistics

    from src.pipeline.stages import SELECTION_RULE, seed_summary

    arch = Architecture.load(Path(__file__).resolve().parents[1] / "src/space/archs/published_sst5.yaml")
    tests, vals = [0.5, 0.6, 0.9], [0.7, 0.8, 0.6]
    per_seed = [{"seed": s, "val_acc": v, "test_acc": t, "step": 10 * s, "history": [{"step": 1}]}
                for s, (v, t) in enumerate(zip(vals, tests))]
    summary = seed_summary(arch, [0, 1, 2], per_seed, SELECTION_RULE)
    assert summary["test_acc_mean"] == pytest.approx(2.0 / 3.0)
    assert summary["test_acc_std"] == pytest.approx(statistics.stdev(tests)) == pytest.approx(0.2081666)
    assert summary["val_acc_mean"] == pytest.approx(0.7)
    assert summary["per_seed"] == [{k: v for k, v in s.items() if k != "history"} for s in per_seed]
    assert summary["seeds"] == [0, 1, 2] and summary["arch"] == arch.to_dict()
    assert summary["selection_rule"] == SELECTION_RULE
    one = seed_summary(arch, [0], per_seed[:1], SELECTION_RULE)
    assert (one["test_acc_mean"], one["test_acc_std"], one["val_acc_mean"]) == (0.5, 0.0, 0.7)


def test_evaluate_reads_a_moved_csv_corpus_from_task_path(tmp_path, monkeypatch):
    """``src.evaluate <run> task.path=<the corpus's new folder>`` was refused as "a setting the run's
    results depend on": a CSV run whose corpus moved could not be evaluated (data.json still checks
    that the files there are the run's); a setting the results depend on is still refused."""
    from omegaconf import OmegaConf

    from src.evaluate import run_config
    from src.utils.errors import AutoAttendError

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    (tmp_path / ".hydra").mkdir()
    cfg = compose_config("search", ["+task=csv", "task.num_classes=3", "task.path=/a/mine", "budget=smoke"])
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    moved = run_config(tmp_path, ["task.path=/b/mine"])
    assert moved.task.path == "/b/mine" and moved.task.datamodule.path == "/b/mine"
    with pytest.raises(AutoAttendError, match=r"^data.max_len: a setting the run's results depend on.*task.path"):
        run_config(tmp_path, ["data.max_len=3"])


def test_evaluate_reads_a_relative_csv_corpus_where_the_run_read_it(tmp_path, monkeypatch, capsys):
    """A run started in /data with ``task.path=my_corpus`` recorded that relative path, and
    ``src.evaluate`` started elsewhere looked for the corpus under its own folder ("CSV files not
    found"): it now reads the folder the run read (invocations.json), saying so; task.path=... wins."""
    from omegaconf import OmegaConf

    from src.evaluate import run_config

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    corpus = tmp_path / "started_here" / "my_corpus"
    corpus.mkdir(parents=True)
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    cfg = compose_config("search", ["+task=csv", "task.num_classes=3", "task.path=my_corpus", "budget=smoke"])
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / "invocations.json").write_text(json.dumps({"invocations": [
        {"started": "2026-12-05T10:00:00+0000", "argv": [], "data_dir": str(tmp_path), "task_path": str(corpus)}]}))
    monkeypatch.chdir(tmp_path)
    assert run_config(run_dir, []).task.datamodule.path == str(corpus)
    assert f"note: reading the corpus from {corpus}, where the run read it" in capsys.readouterr().err
    assert run_config(run_dir, ["task.path=/b/mine"]).task.datamodule.path == "/b/mine"
    corpus.rmdir()  # the recorded folder is gone: the config's path stands, and is reported as not found
    assert run_config(run_dir, []).task.datamodule.path == "my_corpus"


def test_evaluate_says_nothing_of_the_corpus_started_where_the_run_started(tmp_path, monkeypatch, capsys):
    """Started in the folder the run started in, the relative ``task.path`` is the recorded folder:
    the note "reading the corpus from ..." was printed anyway (the data folder's note is not)."""
    from omegaconf import OmegaConf

    from src.evaluate import run_config

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    started = tmp_path / "started_here"
    (started / "my_corpus").mkdir(parents=True)
    (started / "data").mkdir()
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    cfg = compose_config("search", ["+task=csv", "task.num_classes=3", "task.path=my_corpus", "budget=smoke"])
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / "invocations.json").write_text(json.dumps({"invocations": [
        {"started": "2026-12-05T10:00:00+0000", "argv": [], "data_dir": str((started / "data").resolve()),
         "task_path": str((started / "my_corpus").resolve())}]}))
    monkeypatch.chdir(started)
    assert run_config(run_dir, []).task.datamodule.path == str((started / "my_corpus").resolve())
    assert capsys.readouterr().err == ""


def test_evaluate_reproduces_only_scores_equal_to_the_record(tmp_path, monkeypatch, capsys):
    """``src.evaluate`` calls a seed reproduced only when both its recomputed validation and test
    accuracies equal the recorded ones (float rounding aside): one example of 60 more or fewer
    right, on either split, is a failure (exit 1); a model file of another training (its step not
    the one ``seed_<s>.json`` selected) is one error line (exit 2)."""
    import src.evaluate as evaluate_module
    import src.models.saved
    import src.pipeline.common

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("task:\n  name: sst2\nretrain:\n  eval_batch_size: 8\n")
    for seed in (0, 1):
        (run_dir / "retrain" / f"seed_{seed}").mkdir(parents=True)
        (run_dir / "retrain" / f"seed_{seed}" / "model.pt").write_bytes(b"")
    recorded = {"step": 30, "val_acc": 42 / 60, "test_acc": 39 / 60}
    for seed in (0, 1):  # as the retrain writes them
        (run_dir / "retrain" / f"seed_{seed}.json").write_text(json.dumps({"seed": seed, **recorded, "history": []}))
    now = {}
    monkeypatch.setattr(src.pipeline.common, "setup_hardware", lambda cfg: None)
    dm = SimpleNamespace(num_classes=2, embeddings=torch.zeros(50, 4))
    spec = {"format": src.models.saved.TEXT_FORMAT, "num_classes": 2, "embedding_shape": [50, 4]}
    monkeypatch.setattr(src.pipeline.common, "build_datamodule", lambda cfg: dm)
    monkeypatch.setattr(src.models.saved, "load_child", lambda path: (path, {"spec": spec, "evaluation": dict(recorded)}))
    monkeypatch.setattr(evaluate_module, "text_scores", lambda model, dm, batch_size: dict(now[model.parent.name]))

    now.update(seed_0={"val_acc": 42 / 60 + 1e-8, "test_acc": 39 / 60}, seed_1={"val_acc": 42 / 60, "test_acc": 39 / 60})
    assert [r["reproduced"] for r in evaluate_module.evaluate(run_dir)] == [True, True]
    assert evaluate_module.main([str(run_dir)]) == 0
    for split, other in (("val_acc", 41 / 60), ("test_acc", 40 / 60)):
        now["seed_1"] = {**now["seed_0"], split: other}
        rows = evaluate_module.evaluate(run_dir)
        assert [(r["seed"], r["reproduced"]) for r in rows] == [(0, True), (1, False)], split
        capsys.readouterr()
        assert evaluate_module.main([str(run_dir)]) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            "error: retrain seed 1: the recomputed scores differ from the recorded ones")
    (run_dir / "retrain" / "seed_1.json").write_text(json.dumps({"seed": 1, **recorded, "step": 20}))
    assert evaluate_module.main([str(run_dir)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {run_dir / 'retrain' / 'seed_1' / 'model.pt'}: holds step 30, while seed_1.json selected step 20 "
        "(the file is from another training)")
    # the same step, an edited score: results.json averages the record, src.evaluate checked only the model
    (run_dir / "retrain" / "seed_1.json").write_text(json.dumps({"seed": 1, **recorded, "test_acc": 0.9}))
    assert evaluate_module.main([str(run_dir)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {run_dir / 'retrain' / 'seed_1.json'}: records test_acc 0.9, while "
        f"{run_dir / 'retrain' / 'seed_1' / 'model.pt'} scored {39 / 60} at the same step 30 (the record was edited, "
        "or is from another training)")


def test_a_keyboard_interrupt_raised_in_code_ends_like_ctrl_c(tmp_path, capsys):
    from omegaconf import OmegaConf

    from src.pipeline.run import entry

    def stopped(cfg) -> dict:
        raise KeyboardInterrupt  # not through a signal: no handler recorded a signal number

    with pytest.raises(SystemExit) as exc:
        entry(stopped, OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}))
    assert exc.value.code == 130
    assert capsys.readouterr().err.startswith(f"interrupted: what finished is kept in {tmp_path}")


def test_an_earlier_sweeps_failures_do_not_fail_a_later_invocation(monkeypatch):
    from src.pipeline import run

    run._failed_jobs.append(("seed=1", "an earlier sweep's bad value"))
    monkeypatch.setattr(run, "_report_sweeps", lambda: None)
    run.hydra_entry(lambda: None)  # a run that fails nothing: returns, no SystemExit(2)
    assert run._failed_jobs == []


def test_an_interrupted_sweep_reports_its_jobs_and_resumes_from_its_folder(tiny_data, tmp_path):
    """Ctrl-C during a multirun's first job: the sweep's report of the jobs so far, one line naming
    hydra.sweep.dir (a job's hydra.run.dir would not resume a sweep), exit status 130; the same
    command with that folder finishes both jobs."""
    import time

    sweep = tmp_path / "sweep"
    args = ("-m", "+task=sst2", "budget=smoke", "hardware=cpu", "seed=1,2", "retrain.seeds=1",
            "supernet.max_steps=-1", "supernet.epochs=12", f"hydra.sweep.dir={sweep}")
    command = cli_command("src.search", *args, data_dir=tiny_data, tmp=tmp_path)
    with subprocess.Popen(**command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 240
        while not list(sweep.glob("*/supernet/last.ckpt")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == (f"interrupted: what finished is kept in {sweep}; run the same command "
                                            f"with hydra.sweep.dir={sweep} to resume")
    assert out.strip().splitlines()[-1] == f"sweep report: {sweep / 'report.md'}"
    (job,) = list(csv.DictReader(io.StringIO((sweep / "report.csv").read_text())))
    assert "seed=1" in job["run"] and job["state"] == "supernet unfinished"
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    # resumed with settings a resume may change added: the same job folders (they were new ones,
    # named by every override, and the sweep started again from scratch there)
    proc = cli("src.search", *args, "hardware.threads=1", "supernet.checkpoint_every_min=5", data_dir=tiny_data,
               tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 1 and jobs[0] in after and len(after) == 2  # the stopped job's folder, then the second job
    assert len(list(sweep.glob("*/summary.json"))) == 2 and "supernet: resuming from" in proc.stdout + proc.stderr


@pytest.mark.parametrize("signum, phase", [(signal.SIGTERM, "between jobs"), (signal.SIGINT, "between jobs"),
                                           (signal.SIGTERM, "before the run"), (signal.SIGINT, "sweep report"),
                                           (signal.SIGTERM, "after the run"), (signal.SIGTERM, "swallowed"),
                                           (signal.SIGINT, "process exit"), (signal.SIGTERM, "process exit")])
def test_a_stop_outside_any_job_ends_with_the_interrupted_line(tmp_path, signum, phase):
    """SIGTERM (or Ctrl-C) while Hydra works outside a job: between two jobs of a sweep (the
    sweep's report and how to resume it), before a run starts (nothing ran), while the sweep's
    report is written after its last job, or while Hydra tears down a finished single run (said as
    such, not as "between two jobs" or "nothing was run"), and exit status 128 + the signal's number.
    Before, SIGTERM there killed the process with no line, and Ctrl-C gave a KeyboardInterrupt
    traceback. A stop whose KeyboardInterrupt library code swallowed while Hydra composed the
    config let the run go on (status 0); one in the second the process takes to exit after a
    finished run gave "Exception ignored in atexit callback" and status 0, or 143 with no line."""
    import sys
    import textwrap

    from tests.helpers import ROOT

    script = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from omegaconf import OmegaConf
        from src.pipeline import run

        def stop():
            os.kill(os.getpid(), {int(signum)})
            time.sleep(30)

        real_report, reports = run._report_sweeps, []

        def report():  # the first report (after the last job) is stopped halfway
            reports.append(1)
            if {phase!r} == "sweep report" and len(reports) == 1:
                stop()
            real_report()

        run._report_sweeps = report

        def main():
            if {phase!r} in ("between jobs", "sweep report"):  # a finished job registered its sweep folder
                run._sweep_dirs.setdefault({str(tmp_path)!r})
            if {phase!r} in ("after the run", "process exit"):  # the job returned; Hydra is tearing down
                run._finished_runs.append({str(tmp_path)!r})
            if {phase!r} == "swallowed":
                try:
                    stop()
                except KeyboardInterrupt:  # library code that catches everything, while Hydra composes
                    pass
                run.entry(lambda cfg: print("the run ran"), OmegaConf.create({{"paths": {{"output_dir": "x"}}}}))
            if {phase!r} not in ("sweep report", "swallowed", "process exit"):
                stop()

        run.hydra_entry(main)
        if {phase!r} == "process exit":
            import atexit
            atexit.register(stop)  # the stop comes while the process ends
            run.exit_after_the_run()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    by = " (SIGTERM)" if signum == signal.SIGTERM else ""
    assert done.returncode == 128 + int(signum), done.stderr[-2000:]
    expected = {
        "between jobs": f"interrupted{by} between two jobs of the sweep: what finished is kept in {tmp_path}; run the "
                        f"same command with hydra.sweep.dir={tmp_path} to resume",
        "sweep report": f"interrupted{by} while the sweep's report was written: every job had ended; the jobs and the "
                        f"report are in {tmp_path}",
        "before the run": f"interrupted{by} before the run started: nothing was run",
        "after the run": f"interrupted{by} after the run finished: its results are in {tmp_path}",
        "swallowed": f"interrupted{by} before the run started: nothing was run",
        "process exit": f"interrupted{by} while the process exited after the run finished: its results are in "
                        f"{tmp_path}",
    }[phase]
    assert done.stderr.strip().splitlines() == [expected]
    assert "the run ran" not in done.stdout
    if phase in ("between jobs", "sweep report"):  # the report is written in full all the same
        assert done.stdout.strip().splitlines()[-1].startswith("sweep report: none")


def test_a_sigterm_inside_exec_ran_code_still_exits_143(tmp_path):
    """A SIGTERM whose KeyboardInterrupt is raised inside code run by ``exec`` (the dataclasses
    module builds methods so, as torch is imported) set CPython's unhandled-KeyboardInterrupt flag:
    a process started with -m ended with 130, under a line saying SIGTERM."""
    import sys
    import textwrap

    from tests.helpers import ROOT

    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import hydra.core.hydra_config, hydra.types  # as in a run: imported before the job starts
        from omegaconf import OmegaConf
        from src.pipeline import run

        def job(cfg):
            exec("import os, signal, time\\nos.kill(os.getpid(), signal.SIGTERM)\\ntime.sleep(30)")

        run.entry(job, OmegaConf.create({{"paths": {{"output_dir": {str(tmp_path)!r}}}}}))
    """)
    # run as the entry points run, with -m: CPython checks the flag after a module's SystemExit
    (tmp_path / "exec_stop.py").write_text(script)
    done = subprocess.run([sys.executable, "-m", "exec_stop"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 143, (done.returncode, done.stderr[-2000:])
    assert done.stderr.strip().splitlines()[-1].startswith(f"interrupted (SIGTERM): what finished is kept in {tmp_path}")


def test_a_second_stop_while_a_job_reports_its_interrupt_is_ignored(tmp_path):
    """Two SIGTERMs in a row during a run: the first one's line (how to resume) and 143, not a
    second message from outside the job claiming that nothing ran."""
    import sys
    import textwrap

    from tests.helpers import ROOT

    script = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from omegaconf import OmegaConf
        from src.pipeline import run
        import src.pipeline.run as r

        def job(cfg):
            original = r.log_to_files_only
            def second_stop(*args):  # the second signal arrives while the first is reported
                os.kill(os.getpid(), signal.SIGTERM)
                original(*args)
            r.log_to_files_only = second_stop
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)

        run.hydra_entry(lambda: run.entry(job, OmegaConf.create({{"paths": {{"output_dir": {str(tmp_path)!r}}}}})))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 143, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"interrupted (SIGTERM): what finished is kept in {tmp_path}; run the same command with "
        f"hydra.run.dir={tmp_path} to resume"]


def test_the_process_ends_after_the_run_as_a_normal_exit_would(tmp_path):
    """``exit_after_the_run`` ends the process itself (Python's shutdown put the default handlers
    back before tearing torch down, so a SIGTERM in that second killed it with no word): status 0,
    output flushed, ``atexit`` functions and other threads run to their end."""
    import sys
    import textwrap

    from tests.helpers import ROOT

    marker = tmp_path / "marker"
    script = textwrap.dedent(f"""
        import atexit, sys, threading, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from src.pipeline import run

        atexit.register(lambda: Path({str(marker)!r}).write_text(Path({str(marker)!r}).read_text() + "atexit"))
        threading.Thread(target=lambda: (time.sleep(0.5), Path({str(marker)!r}).write_text("thread,"))).start()
        print("the run's last line", end="")  # no newline: flushed by the exit, not by print
        run.exit_after_the_run()
        print("never")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "the run's last line" and done.stderr == "", done.stderr[-2000:]
    assert marker.read_text() == "thread,atexit"


@pytest.mark.parametrize("ending, status, late_stop", [
    ("print('error: bad input', file=sys.stderr); sys.exit(2)", 2, "interrupted (SIGTERM) while the process exited "
                                                                   "after the run failed"),
    ("sys.exit('a message')", 1, None),
    ("pass", 0, "interrupted (SIGTERM) while the process exited after the run finished"),
    # an idle thread pool left open: joining its workers before threading's exit hooks woke them hung
    ("pool = ThreadPoolExecutor(2); pool.submit(int).result(); pools.append(pool); "
     "print('error: bad input', file=sys.stderr); sys.exit(2)", 2, None),
    # a crash: its traceback and status 1, as Python's own exit gives them
    ("raise RuntimeError('a bug')", 1, "interrupted (SIGTERM) while the process exited after the run failed"),
])
def test_an_entry_point_ends_the_process_itself_whatever_the_runs_status(ending, status, late_stop, tmp_path):
    """``run_and_exit`` (every Hydra entry point's ``__main__``) ends through ``exit_after_the_run``
    with the run's status: a failed run went through Python's slow shutdown, where a SIGTERM killed
    it with no word (status -15); ``atexit`` functions still run."""
    import sys
    import textwrap

    from tests.helpers import ROOT

    marker = tmp_path / "marker"
    for stop in (False, True):
        script = textwrap.dedent(f"""
            import atexit, os, signal, sys
            sys.path.insert(0, {str(ROOT)!r})
            from concurrent.futures import ThreadPoolExecutor
            from pathlib import Path
            from src.pipeline import run

            pools = []

            atexit.register(lambda: Path({str(marker)!r}).write_text("atexit"))
            if {stop}:
                atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))

            def main():
                {ending}

            run.run_and_exit(main)
        """)
        marker.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        if stop and late_stop:
            assert done.returncode == 143 and done.stderr.strip().splitlines()[-1] == late_stop, done.stderr[-2000:]
        elif not stop:
            assert done.returncode == status, done.stderr[-2000:]
            if "RuntimeError" in ending:
                assert done.stderr.startswith("Traceback") and done.stderr.strip().endswith("RuntimeError: a bug")
            else:
                assert done.stderr.strip() == {2: "error: bad input", 1: "a message", 0: ""}[status]
            assert marker.read_text() == "atexit"


def test_a_single_run_that_returned_is_remembered_for_a_stop_during_teardown(tmp_path):
    """``entry`` notes the run folder of a single run whose job returned, which a stop while Hydra
    tears down then names (see the test above); a failed run is not noted."""
    from omegaconf import OmegaConf

    from src.pipeline import run
    from src.utils.errors import AutoAttendError

    run._finished_runs.clear()
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    assert run.entry(lambda c: {"done": True}, cfg) == {"done": True}
    assert run._finished_runs == [str(tmp_path)]

    def fails(c):
        raise AutoAttendError("bad input")

    with pytest.raises(SystemExit):
        run.entry(fails, OmegaConf.create({"paths": {"output_dir": str(tmp_path / "other")}}))
    assert run._finished_runs == [str(tmp_path)]
    run._finished_runs.clear()


@pytest.mark.parametrize("bucket_size", [None, 5])
def test_the_search_scores_in_the_configured_length_buckets_with_the_same_results(tmp_path, monkeypatch, bucket_size):
    """``strategy.score_bucket_size`` reaches the estimator (null: the device's default, 128 on CPU),
    and the search it runs ranks the candidates as with the default: scores do not depend on it."""
    import src.pipeline.stages as stages
    from src.data.text import pad_collate
    from src.estimator import SupernetEstimator
    from src.models.text import TextClassifier
    from src.space import FunctionalSpace

    built = []

    class Recording(SupernetEstimator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self.bucket_size)

    monkeypatch.setattr(stages, "SupernetEstimator", Recording)
    overrides = ["+task=sst2", "budget=smoke", "hardware=cpu", "space.num_layers=3", "strategy.val_subset=null"]
    if bucket_size is not None:
        overrides.append(f"strategy.score_bucket_size={bucket_size}")
    cfg = compose_config("search", overrides)
    g = torch.Generator().manual_seed(0)
    val = [(torch.randint(1, 30, (int(n),), generator=g), int(n) % 2) for n in torch.randint(1, 12, (40,), generator=g)]
    dm = type("DM", (), {"val_set": val})()
    space = FunctionalSpace(3)
    torch.manual_seed(0)
    model = TextClassifier.supernet(torch.randn(30, 8), 2, space, dim=16, heads=2)
    best, score = stages.search(cfg, model, dm, space, tmp_path)
    assert built == [bucket_size or 128]
    plain = SupernetEstimator(model, [pad_collate(val)], "cpu", fast=False)
    assert score == plain.plain(best)


def test_evaluate_without_the_data_names_the_folder_the_run_read(smoke_run, tiny_data, tmp_path, capsys):
    """The run's config keeps paths.data_dir as ${oc.env:AUTOATTEND_DATA_DIR,./data}: evaluated
    with another (or no) AUTOATTEND_DATA_DIR it said the data were not found, not where they were."""
    from src.evaluate import main

    assert main([str(smoke_run[1]), f"paths.data_dir={tmp_path / 'empty'}"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: ") and line.endswith(
        f"(the run read its data from {tiny_data.resolve()}, invocations.json: paths.data_dir={tiny_data.resolve()} "
        "if it is still there)"), line


def test_evaluate_reads_the_data_where_the_run_read_them_unless_told(smoke_run, tiny_data, tmp_path, monkeypatch,
                                                                     capsys):
    """The run's config keeps paths.data_dir as ${oc.env:AUTOATTEND_DATA_DIR,./data}: evaluated
    without the variable it looked in ./data; it now reads the folder the run read (invocations.json),
    while the variable or paths.data_dir=... still choose another."""
    from src.evaluate import run_config

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./data here
    assert run_config(smoke_run[1], []).paths.data_dir == str(tiny_data.resolve())
    assert capsys.readouterr().err == (f"note: reading the data from {tiny_data.resolve()}, where the run read them "
                                       "(invocations.json; paths.data_dir=... for another folder)\n")
    assert run_config(smoke_run[1], [f"paths.data_dir={tmp_path}"]).paths.data_dir == str(tmp_path)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("AUTOATTEND_DATA_DIR", str(tmp_path / "elsewhere"))
    assert run_config(smoke_run[1], []).paths.data_dir == str(tmp_path / "elsewhere")


def _child_fit_parts(lr: float = 5e-4, weight_decay: float = 0.0, on_new_best=None):
    """A small text ChildModule and three loaders of two-token-long examples (pad_collate batches)."""
    import random as random_

    from torch.utils.data import DataLoader

    from src.data.text import pad_collate
    from src.lit.modules import ChildModule
    from src.models.text import TextClassifier

    arch = FunctionalSpace(2).sample(random_.Random(0))
    torch.manual_seed(0)
    module = ChildModule(TextClassifier.child(torch.randn(12, 8), 2, arch, dim=16, heads=2), lr=lr,
                         weight_decay=weight_decay, on_new_best=on_new_best)
    g = torch.Generator().manual_seed(1)

    def loader(n: int, batch_size: int = 10) -> DataLoader:
        examples = [(torch.randint(1, 12, (1 + i % 3,), generator=g), int(torch.randint(0, 2, (), generator=g)))
                    for i in range(n)]
        return DataLoader(examples, batch_size=batch_size, collate_fn=pad_collate)

    return module, loader


def _child_trainer(root, **kwargs):
    import lightning.pytorch as pl

    return pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=root, **kwargs)


def test_child_evaluations_count_each_split_once_and_skip_the_sanity_check(tmp_path):
    """Each evaluation scores its own validation and test batches only (the metrics restart), the
    sanity check adds no evaluation to the history, ``on_new_best`` is called only for an
    evaluation that becomes the selected one (lr 0: every evaluation ties, so only the first), and
    the optimiser has the weight decay."""
    calls = []
    module, loader = _child_fit_parts(lr=0.0, weight_decay=1e-3, on_new_best=calls.append)
    assert module.configure_optimizers().param_groups[0]["weight_decay"] == 1e-3
    train, first, second = loader(20), loader(30), loader(30)
    _child_trainer(tmp_path, max_epochs=3, num_sanity_val_steps=1).fit(module, train, [first, second])
    assert [h["step"] for h in module.history] == [2, 4, 6]
    assert len({(h["val_acc"], h["test_acc"]) for h in module.history}) == 1
    assert calls == [module.history[0]]

    def accuracy(data):
        module.model.eval()
        with torch.no_grad():
            hits = [(module.model(b["tokens"], b["mask"]).argmax(-1) == b["labels"]) for b in data]
        return torch.cat(hits).float().mean().item()

    expected = accuracy(second), accuracy(first)
    assert expected[0] != expected[1]
    _child_trainer(tmp_path).validate(module, [second, first])
    assert (module.history[-1]["val_acc"], module.history[-1]["test_acc"]) == pytest.approx(expected)


def test_child_epoch_loss_is_the_batch_weighted_mean_of_its_step_losses(tmp_path):
    """Batches of 10, 10 and 4: ``train/loss_epoch`` weighs each step's loss by its batch's size."""
    from lightning.pytorch.loggers import CSVLogger

    module, loader = _child_fit_parts(lr=1e-2)
    trainer = _child_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0, log_every_n_steps=1,
                             limit_val_batches=0)
    trainer.logger = CSVLogger(str(tmp_path), name="", version="")
    trainer.fit(module, loader(24))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    steps = [float(r["train/loss_step"]) for r in rows if r["train/loss_step"]]
    (logged,) = [float(r["train/loss_epoch"]) for r in rows if r["train/loss_epoch"]]
    assert len(steps) == 3
    assert logged == pytest.approx((10 * steps[0] + 10 * steps[1] + 4 * steps[2]) / 24, rel=1e-6)
    assert logged != pytest.approx(sum(steps) / 3, rel=1e-6)


def test_evaluate_reads_a_relative_graph_file_where_the_run_read_it(tmp_path, monkeypatch, capsys):
    """As a CSV corpus, a ``+task=graph_file`` run's relative ``task.path`` is read where the run's
    last invocation read it, though it is a file, not a folder (only folders were taken from the
    record), and the note says "the graph file"; a relative ``task.path=...`` given is the user's,
    not replaced by the recorded one (mutation audit 2026-12-06)."""
    from omegaconf import OmegaConf

    from src.evaluate import run_config

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    started, before = tmp_path / "started_here", tmp_path / "started_before"
    for folder in (started, before):
        (folder / "data").mkdir(parents=True)
        (folder / "mine.npz").write_bytes(b"")
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    cfg = compose_config("search", ["+task=graph_file", "task.path=mine.npz", "budget=smoke"])
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / "invocations.json").write_text(json.dumps({"invocations": [
        {"started": "2026-12-06T10:00:00+0000", "argv": [], "data_dir": str(folder / "data"),
         "task_path": str(folder / "mine.npz")} for folder in (before, started)]}))
    monkeypatch.chdir(tmp_path)
    read = run_config(run_dir, [])
    assert (read.task.path, read.paths.data_dir) == (str(started / "mine.npz"), str(started / "data"))
    assert f"note: reading the graph file from {started / 'mine.npz'}, where the run read it" in capsys.readouterr().err
    assert run_config(run_dir, ["task.path=other.npz"]).task.path == "other.npz"


def test_the_recorded_data_folder_is_read_only_while_it_is_a_folder(tmp_path, monkeypatch):
    """``paths.data_dir`` is taken from the record only where it is still a folder (a file there, or
    an empty entry, which ``Path`` reads as the current folder, is not), and never over
    ``paths.data_dir=...`` or ``AUTOATTEND_DATA_DIR`` (mutation audit 2026-12-06)."""
    from src.evaluate import runs_data_dir

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    (tmp_path / "a_file").write_text("")
    assert runs_data_dir({"data_dir": str(tmp_path)}, set()) == str(tmp_path)
    for recorded in ({"data_dir": str(tmp_path / "a_file")}, {"data_dir": ""}, {"data_dir": None}, {}):
        assert runs_data_dir(recorded, set()) is None, recorded
    assert runs_data_dir({"data_dir": str(tmp_path)}, {"paths.data_dir"}) is None
    monkeypatch.setenv("AUTOATTEND_DATA_DIR", str(tmp_path / "elsewhere"))
    assert runs_data_dir({"data_dir": str(tmp_path)}, set()) is None


def test_saved_models_are_the_retrain_seeds_first_then_each_baseline_by_seed(tmp_path):
    """``src.evaluate`` checks the retrained seeds first, then the graph baselines by name, each
    by seed as a number (seed 10 after seed 2) (mutation audit 2026-12-06)."""
    from src.evaluate import saved_models

    for folder, seed in (("baselines/gcn", 1), ("retrain", 10), ("baselines/gat", 3), ("retrain", 2),
                         ("baselines/gat", 0)):
        (tmp_path / folder / f"seed_{seed}").mkdir(parents=True)
        (tmp_path / folder / f"seed_{seed}" / "model.pt").write_bytes(b"")
    assert [(folder, seed) for folder, seed, _ in saved_models(tmp_path)] == [
        ("retrain", 2), ("retrain", 10), ("baselines/gat", 0), ("baselines/gat", 3), ("baselines/gcn", 1)]


def test_evaluate_says_nothing_of_a_data_folder_the_run_gave_from_home(tmp_path, monkeypatch, capsys):
    """A run whose config gives ``paths.data_dir`` as ``~/data`` read the folder recorded in
    invocations.json: no note that the data are read from elsewhere (``~`` is expanded before the
    comparison) (mutation audit 2026-12-06)."""
    from omegaconf import OmegaConf

    from src.evaluate import run_config

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data").mkdir()
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    cfg = compose_config("search", ["+task=sst2", "budget=smoke"])
    OmegaConf.update(cfg, "paths.data_dir", "~/data")
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / "invocations.json").write_text(json.dumps({"invocations": [
        {"started": "2026-12-06T10:00:00+0000", "argv": [], "data_dir": str((tmp_path / "data").resolve())}]}))
    monkeypatch.chdir(run_dir)
    assert run_config(run_dir, []).paths.data_dir == str((tmp_path / "data").resolve())
    assert capsys.readouterr().err == ""
