"""Findings of an ablation walk-through (sharing modes and design priors over seeds, Hydra sweeps,
``src.report``; session 46): each test failed on the code before its mend for the reason its docstring gives."""

from __future__ import annotations

import json

import pytest

from src.report import main, report
from tests.helpers import GRAPH_SEARCH_SETTINGS, run_toy_sweep, write_finished_run


def rows(table) -> list[dict]:
    return [dict(zip(table.header, row)) for row in table.rows]


def test_over_space_sharing_folds_the_sharing_modes_of_graph_runs(tmp_path):
    """``python -m src.search -m +task=cora space.sharing=full,none seed=0,1`` (graph.md's way to pick the
    mode) then ``src.report --over seed,space.sharing`` (usage.md's example): the graph runs differ in
    ``graph.space.sharing``, which follows ``space.sharing``, so they stayed in one row per mode under a
    heading "Runs whose settings differ at most in seed, space.sharing"."""
    tests = {("full", 0): 0.80, ("full", 1): 0.82, ("none", 0): 0.78, ("none", 1): 0.79}
    for (sharing, seed), test in tests.items():
        settings = {**GRAPH_SEARCH_SETTINGS, "seed": seed, "space.sharing": sharing, "graph.space.sharing": sharing}
        write_finished_run(tmp_path / f"{sharing}_{seed}", settings, test)
    _, by_seed = report([tmp_path])
    assert [r["graph.space.sharing"] for r in rows(by_seed)] == ["full", "none"]  # the default: one row per mode
    _, folded = report([tmp_path], over=("seed", "space.sharing"))
    (row,) = rows(folded)
    assert row["runs"] == "4"
    assert "graph.space.sharing" not in folded.header


def test_an_empty_over_is_refused(tmp_path, capsys):
    """``--over ""`` (an unset shell variable, say) printed a folded table of repeats with a column named
    "" under "Runs whose settings differ at most in  (their code may differ)"; other bad --over values are one
    ``error: --over ...`` line and exit status 2."""
    write_finished_run(tmp_path / "a", GRAPH_SEARCH_SETTINGS, 0.8)
    write_finished_run(tmp_path / "b", GRAPH_SEARCH_SETTINGS, 0.8)
    assert main([str(tmp_path), "--over", ""]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: --over")


def test_a_sweep_with_a_crashed_job_still_writes_its_report(tmp_path):
    """Hydra runs the sweep's other jobs after one raises, then re-raises that job's exception from its
    sweeper: ``hydra_entry``'s ``_report_sweeps`` after ``main()`` is never reached, so the finished jobs'
    report (usage.md: "Every multirun ends with this report for its sweep folder"; a job that stopped on
    an error listed after the tables) is neither printed nor written, and a report.md already in the folder
    from an earlier invocation is left as it was."""
    done = run_toy_sweep(tmp_path, crash=(1,))
    sweep = tmp_path / "sweep"
    assert done.returncode == 1, done.stderr[-2000:]  # a crash: its traceback and status 1, as before
    assert "RuntimeError: boom 1" in done.stderr
    assert all((sweep / str(seed) / "summary.json").exists() for seed in (0, 2, 3))  # the others ran
    report_md = sweep / "report.md"
    assert report_md.exists()
    text = report_md.read_text()
    assert "+seed=1" in text and "crashed: RuntimeError: boom 1" in text  # the crashed job, named with its error
    assert "| 0 | search | sst2 | 0 | finished |" in text and "| 3 | search | sst2 | 3 | finished |" in text


def test_retrains_of_an_edited_architecture_file_are_not_folded_together(tmp_path):
    """``src.retrain arch=/tmp/my.yaml seed=0,1``, the file edited (another op), then ``seed=2,3`` into the same
    sweep folder: run_settings.json records each run's ``architecture`` (a resume with another one is refused),
    but the report hides that key and groups by the ``arch`` path alone, so the four runs of two architectures were
    one row, "4 | 0 1 2 3", their spread taken as seed variation."""
    base = {"seed": 0, "task.name": "sst2", "task.family": "text", "entry": "retrain", "retrain.seeds": 2,
            "arch": "/tmp/my.yaml", "arch_hparams": None}
    gru = {"layers": [{"kind": "add", "q_src": 0, "q_op": "gru", "k_src": 0, "k_op": "zero"}]}
    conv = {"layers": [{"kind": "add", "q_src": 0, "q_op": "conv3", "k_src": 0, "k_op": "zero"}]}
    for seed, architecture in ((0, gru), (1, gru), (2, conv), (3, conv)):
        run = tmp_path / f"seed={seed}"
        run.mkdir()
        (run / "run_settings.json").write_text(json.dumps({**base, "seed": seed, "architecture": architecture}))
        retrain = {"test_acc_mean": 0.7 + seed / 100, "test_acc_std": 0.01, "val_acc_mean": 0.7,
                   "seeds": [seed, seed + 1]}
        (run / "summary.json").write_text(json.dumps({"task": "sst2", "arch": "/tmp/my.yaml", "retrain": retrain,
                                                      "best_val_acc_supernet": None, "seconds": {"retrain": 3.0}}))
    _, folded = report([tmp_path])
    assert sorted((r["arch"], r["runs"], r["seed"]) for r in rows(folded)) == [
        ("/tmp/my.yaml (content 1)", "2", "0 1"), ("/tmp/my.yaml (content 2)", "2", "2 3")]
