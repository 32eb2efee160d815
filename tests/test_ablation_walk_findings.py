"""Findings of an ablation walk-through (sharing modes and design priors over seeds, Hydra sweeps,
``src.report``; session 46): each test failed on the code before its mend for the reason its docstring gives."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from src.report import main, report

ROOT = Path(__file__).resolve().parents[1]

# a graph search's settings as run_settings.json holds them: space.* (the text keys, which graph runs
# record but never read) and graph.space.* (``${space.sharing}`` in conf/graph/default.yaml)
GRAPH = {"seed": 0, "space.sharing": "full", "space.priors": True, "graph.space.sharing": "full",
         "graph.space.priors": True, "graph.retrain.seeds": 2, "task.name": "cora", "task.family": "graph",
         "entry": "search"}


def write_run(path: Path, settings: dict, test: float) -> Path:
    path.mkdir(parents=True)
    (path / "run_settings.json").write_text(json.dumps(settings))
    retrain = {"test_acc_mean": test, "test_acc_std": 0.01, "val_acc_mean": 0.7, "seeds": [0, 1],
               "selection_rule": "..."}
    (path / "summary.json").write_text(json.dumps({"task": settings["task.name"], "best_val_acc_supernet": 0.5,
                                                   "retrain": retrain, "seconds": {"data": 6.0}}))
    return path


def rows(table) -> list[dict]:
    return [dict(zip(table.header, row)) for row in table.rows]
def test_over_space_sharing_folds_the_sharing_modes_of_graph_runs(tmp_path):
    """``python -m src.search -m +task=cora space.sharing=full,none seed=0,1`` (graph.md's way to pick the
    mode) then ``src.report --over seed,space.sharing`` (usage.md's example): the graph runs differ in
    ``graph.space.sharing``, which follows ``space.sharing``, so they stayed in one row per mode under a
    heading "Runs whose settings differ at most in seed, space.sharing"."""
    tests = {("full", 0): 0.80, ("full", 1): 0.82, ("none", 0): 0.78, ("none", 1): 0.79}
    for (sharing, seed), test in tests.items():
        write_run(tmp_path / f"{sharing}_{seed}", {**GRAPH, "seed": seed, "space.sharing": sharing,
                                                   "graph.space.sharing": sharing}, test)
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
    write_run(tmp_path / "a", GRAPH, 0.8)
    write_run(tmp_path / "b", GRAPH, 0.8)
    assert main([str(tmp_path), "--over", ""]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: --over")


APP = """
import json, sys
from pathlib import Path
sys.path.insert(0, {root!r})
import hydra
from hydra.core.hydra_config import HydraConfig
from src.pipeline import run

def job(cfg):
    out = Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_settings.json").write_text(json.dumps({{"seed": cfg.seed, "task.name": "sst2", "task.family": "text",
                                                       "entry": "search", "retrain.seeds": 2}}))
    if cfg.seed == 1:
        raise RuntimeError("boom: not a user error")  # a crash inside the job (a bug, out of memory, ...)
    retrain = {{"test_acc_mean": 0.7, "test_acc_std": 0.01, "val_acc_mean": 0.7, "seeds": [0, 1]}}
    (out / "summary.json").write_text(json.dumps({{"task": "sst2", "best_val_acc_supernet": 0.8, "retrain": retrain,
                                                  "seconds": {{"data": 1.0}}}}))
    return {{}}

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    return run.entry(job, cfg)

if __name__ == "__main__":
    run.run_and_exit(app)
"""
def test_a_sweep_with_a_crashed_job_still_writes_its_report(tmp_path):
    """Hydra runs the sweep's other jobs after one raises, then re-raises that job's exception from its
    sweeper: ``hydra_entry``'s ``_report_sweeps`` after ``main()`` is never reached, so the finished jobs'
    report (usage.md: "Every multirun ends with this report for its sweep folder"; a job that stopped on
    an error listed after the tables) is neither printed nor written, and a report.md already in the folder
    from an earlier invocation is left as it was."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP.format(root=str(ROOT))))
    sweep = tmp_path / "sweep"
    done = subprocess.run([sys.executable, "app.py", "-m", "+seed=0,1,2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]  # a crash: its traceback and status 1, as before
    assert "RuntimeError: boom" in done.stderr
    assert (sweep / "0" / "summary.json").exists() and (sweep / "2" / "summary.json").exists()  # the others ran
    report_md = sweep / "report.md"
    assert report_md.exists()
    text = report_md.read_text()
    assert "+seed=1" in text and "boom: not a user error" in text  # the crashed job, named with its error
    assert "| 0 | search | sst2 | 0 | finished |" in text and "| 2 | search | sst2 | 2 | finished |" in text
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
