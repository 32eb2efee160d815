"""The run report (src/report.py): which settings it shows, how it folds seeds, unfinished runs,
bad input, and the command line. The run directories are written here as the pipeline writes them
(run_settings.json, summary.json, the stage files); a real multirun's report is tested in
test_pipeline.py."""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from src.report import CONF_DIR, _budget_settings, find_runs, load_run, main, report, varying_keys, write_sweep_report
from src.utils.errors import AutoAttendError

ROOT = Path(__file__).resolve().parents[1]

TEXT = {"seed": 0, "space.sharing": "full", "space.ops": ["zero", "gru"], "supernet.dim": 64, "retrain.seeds": 2,
        "strategy.name": "evolution", "graph.space.sharing": "full", "graph.retrain.seeds": 10,
        "task.name": "sst2", "task.family": "text", "task.num_classes": 2, "entry": "search"}


def write_run(path: Path, settings: dict, test: float | None = None, supernet: float | None = 0.8,
              **summary) -> Path:
    path.mkdir(parents=True)
    (path / "run_settings.json").write_text(json.dumps(settings))
    if test is not None or summary:
        retrain = None if test is None else {"test_acc_mean": test, "test_acc_std": 0.01, "val_acc_mean": 0.7,
                                             "seeds": [0, 1], "selection_rule": "..."}
        body = {"task": settings["task.name"], "best_val_acc_supernet": supernet, "retrain": retrain,
                "seconds": {"data": 6.0, "supernet": 54.0}}
        body.update(summary)
        (path / "summary.json").write_text(json.dumps(body))
    return path


def rows(table) -> list[dict]:
    return [dict(zip(table.header, row)) for row in table.rows]


def test_only_the_settings_that_differ_are_columns(tmp_path):
    write_run(tmp_path / "0_a", TEXT, test=0.75)
    write_run(tmp_path / "1_b", {**TEXT, "space.sharing": "none", "task.name": "sst5", "task.num_classes": 5},
              test=0.70)  # task.num_classes follows from task.name: no column
    per_run, grouped = report([tmp_path])
    assert [h for h in per_run.header if "." in h or h == "seed"] == ["space.sharing"]
    got = rows(per_run)
    assert [r["run"] for r in got] == ["0_a", "1_b"]
    assert [r["space.sharing"] for r in got] == ["full", "none"]
    assert [r["test (mean +- std)"] for r in got] == ["75.00 +- 1.00", "70.00 +- 1.00"]
    assert got[0]["supernet val"] == "80.00" and got[0]["minutes"] == "1.0" and got[0]["state"] == "finished"
    assert grouped is None  # the two runs differ in more than their seed


def test_settings_a_task_family_does_not_read_do_not_count(tmp_path):
    """A graph run ignores the text supernet's settings and a text run graph.*: values there that
    differ say nothing about the runs."""
    graph = {**TEXT, "task.name": "cora", "task.family": "graph", "supernet.dim": 32, "graph.retrain.seeds": 3}
    text = {**TEXT, "graph.retrain.seeds": 5}
    runs = [load_run(write_run(tmp_path / "g", graph, test=0.8)), load_run(write_run(tmp_path / "t", text, test=0.7))]
    assert varying_keys(runs) == []
    runs.append(load_run(write_run(tmp_path / "g2", {**graph, "graph.retrain.seeds": 10}, test=0.8)))
    assert varying_keys(runs) == ["graph.retrain.seeds"]
    per_run, _ = report([tmp_path])
    assert [r["graph.retrain.seeds"] for r in rows(per_run)] == ["3", "10", ""]  # empty for the text run


def test_a_datamodule_copy_of_a_task_setting_is_one_column(tmp_path):
    """csv.yaml hands ``task.path`` to its DataModule (``task.datamodule.path: ${task.path}``): a sweep over
    corpora differs in both, shown once; a DataModule value of its own (not the task key's) stays shown."""
    csv = {**TEXT, "task.name": "csv", "task.num_classes": 3}
    runs = [load_run(write_run(tmp_path / name, {**csv, "task.path": f"/{name}", "task.datamodule.path": f"/{name}",
                                                 "task.split": "a", "task.datamodule.split": split}, test=0.7))
            for name, split in (("a", "a"), ("b", "b"))]
    assert varying_keys(runs) == ["task.path", "task.datamodule.split"]
    runs.append(load_run(write_run(tmp_path / "c", {**csv, "task.path": "/c", "task.datamodule.path": "/elsewhere",
                                                    "task.split": "a", "task.datamodule.split": "a"}, test=0.7)))
    assert varying_keys(runs) == ["task.path", "task.datamodule.path", "task.datamodule.split"]


def test_search_settings_a_retrain_holds_but_never_reads_do_not_count(tmp_path):
    """``src.retrain ... budget=smoke`` records the budget's search settings too (``supernet.dim``,
    ``space.num_layers``, ``strategy.*``), which it never reads: it trains the given architecture
    with retrain.*. They showed as the retrain's columns (``space.num_layers`` 3 for a 4-layer
    architecture) and kept two retrains of the same settings apart; a search's are still shown."""
    retrain = {**TEXT, "entry": "retrain", "arch": "best_arch.yaml", "retrain.seeds": 2}
    write_run(tmp_path / "r0", {**retrain, "supernet.dim": 16, "space.num_layers": 3, "strategy.population": 6},
              test=0.75, supernet=None, arch="best_arch.yaml")
    write_run(tmp_path / "r1", {**retrain, "seed": 1}, test=0.77, supernet=None, arch="best_arch.yaml")
    per_run, folded = report([tmp_path])
    assert [h for h in per_run.header if "." in h] == []
    assert [r["runs"] for r in rows(folded)] == ["2"]
    write_run(tmp_path / "s0", TEXT, test=0.7)
    write_run(tmp_path / "s1", {**TEXT, "supernet.dim": 32}, test=0.7)
    per_run, _ = report([tmp_path])
    assert [r["supernet.dim"] for r in rows(per_run)] == ["", "", "64", "32"]  # the searches' own


def test_an_unset_matmul_precision_and_highest_are_one_setting(tmp_path):
    """Runs recorded with hardware.matmul_precision null (hardware=auto, cpu) and "highest"
    (hardware=gpu, or recorded since the two are one) compute the same: not a column, one group."""
    write_run(tmp_path / "a", {**TEXT, "hardware.matmul_precision": None}, test=0.75)
    write_run(tmp_path / "b", {**TEXT, "seed": 1, "hardware.matmul_precision": "highest"}, test=0.77)
    per_run, folded = report([tmp_path])
    assert not [h for h in per_run.header if "matmul" in h]
    assert [r["runs"] for r in rows(folded)] == ["2"]


def test_runs_that_differ_only_in_the_seed_are_folded(tmp_path):
    tests = {1: 0.74, 2: 0.76, 3: 0.81}
    for seed, test in tests.items():
        write_run(tmp_path / f"s{seed}", {**TEXT, "seed": seed}, test=test, supernet=0.7 + seed / 100)
    write_run(tmp_path / "other", {**TEXT, "seed": 1, "space.sharing": "none"}, test=0.5)
    write_run(tmp_path / "unfinished", {**TEXT, "seed": 4})
    per_run, grouped = report([tmp_path])
    assert [h for h in per_run.header if h in ("seed", "space.sharing")] == ["seed", "space.sharing"]
    (row,) = rows(grouped)  # the lone "none" run and the unfinished one make no group
    assert row["space.sharing"] == "full" and row["runs"] == "3" and row["seed"] == "1 2 3"
    mean, std = statistics.mean(tests.values()), statistics.stdev(tests.values())
    assert row["test (mean +- std over runs)"] == f"{100 * mean:.2f} +- {100 * std:.2f} (3)"
    assert row["supernet val (mean +- std)"].startswith("72.00 +- 1.00")
    # another key to fold over: the sharing modes of seed 1 become one group
    _, by_sharing = report([tmp_path], over=("space.sharing", "seed"))
    assert [r["runs"] for r in rows(by_sharing)] == ["4"]  # the unfinished run is not among them
    # the folded keys' column is named by them all, each run's values joined: which runs a row holds
    assert rows(by_sharing)[0]["space.sharing / seed"] == "none,1 full,1 full,2 full,3"


def test_an_unfinished_run_says_where_it_stopped(tmp_path):
    run = write_run(tmp_path / "r", TEXT)
    assert load_run(run).state == "not started (see its log)"  # stopped before its supernet (no GPU, ...)
    (run / "supernet").mkdir()
    assert load_run(run).state == "supernet unfinished"
    (run / "supernet" / "DONE").write_text("")
    assert load_run(run).state == "search unfinished"
    (run / "search").mkdir()
    (run / "search" / "best_arch.yaml").write_text("layers: []\n")
    (run / "retrain").mkdir()
    (run / "retrain" / "seed_0.json").write_text("{}")
    assert load_run(run).state == "retrain 1/2 seeds"
    retrain = write_run(tmp_path / "rt", {**TEXT, "entry": "retrain", "retrain.seeds": 5})
    assert load_run(retrain).state == "not started (see its log)"
    (retrain / "retrain").mkdir()
    assert load_run(retrain).state == "retrain 0/5 seeds"
    (row,) = [r for r in rows(report([tmp_path / "rt"])[0])]
    assert row["state"] == "retrain 0/5 seeds" and row["test (mean +- std)"] == ""
    # what the unfinished search has measured so far is shown (both columns were blank)
    (row,) = rows(report([tmp_path / "r"])[0])
    assert row["supernet val"] == "" and row["minutes"] == ""
    (run / "search" / "best_arch.yaml").write_text("val_acc_supernet: 0.5469\nlayers: []\n")
    (run / "timing.json").write_text(json.dumps({"seconds": {"data": 6.0, "supernet": 90.0}, "invocations": 2}))
    (row,) = rows(report([tmp_path / "r"])[0])
    assert (row["state"], row["supernet val"], row["minutes"]) == ("retrain 1/2 seeds", "54.69", "1.6")
    # stopped in the ranking stage (it said "unfinished"): the candidates trained of those picked,
    # here 3 of 4 distinct architectures in the population although ranking.candidates is 5
    (run / "retrain" / "seed_1.json").write_text("{}")
    assert load_run(run).state == "unfinished"
    (run / "ranking" / "rank_1" / "seed_3000").mkdir(parents=True)
    assert load_run(run).state == "ranking unfinished"  # no config to say how many
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("seed: 0\nranking:\n  candidates: 5\n  seeds: 2\n")
    archs = [{"layers": [[i]]} for i in (1, 2, 3, 1, 4)]
    (run / "search" / "population.jsonl").write_text("".join(json.dumps({"arch": a, "score": 0.5}) + "\n"
                                                             for a in archs))
    (run / "ranking" / "rank_1" / "seed_3000.json").write_text("{}")
    assert load_run(run).state == "ranking 0/4 candidates"  # one seed of two
    (run / "ranking" / "rank_1" / "seed_3001.json").write_text("{}")
    (run / "ranking" / "rank_3").mkdir()
    (run / "ranking" / "rank_3" / "result.json").write_text(  # a graph candidate's record
        json.dumps({"val_per_seed": [0.5, 0.6], "seeds": [3000, 3001]}))
    assert load_run(run).state == "ranking 2/4 candidates"
    # re-run with ranking.candidates=2 (ranks 1 and 4): rank 3, of the earlier 5, is not one of them
    (run / ".hydra" / "config.yaml").write_text("seed: 0\nranking:\n  candidates: 2\n  seeds: 2\n")
    assert load_run(run).state == "ranking 1/2 candidates"
    # a ranking stage added to a finished run and stopped: its summary is the earlier invocation's
    (run / "summary.json").write_text(json.dumps({"task": "sst2", "best_val_acc_supernet": 0.5, "retrain": None}))
    assert load_run(run).state == "ranking 1/2 candidates"
    (run / "ranking" / "rank_4").mkdir()
    (run / "ranking" / "rank_4" / "result.json").write_text(json.dumps({"val_per_seed": [0.5], "seeds": [3000]}))
    assert load_run(run).state == "ranking 1/2 candidates"  # trained with other seeds: not this stage's
    (run / "ranking" / "rank_4" / "result.json").write_text(json.dumps({"val_per_seed": [0.5, 0.6],
                                                                       "seeds": [3000, 3001]}))
    assert load_run(run).state == "finished"


def test_an_unfinished_graph_run_names_its_rerank_hpo_and_baselines_stages(tmp_path):
    """A graph search stopped in its re-ranking showed "search unfinished", in its HPO "retrain 0/2
    seeds", in its baselines "unfinished": each stage now says how far it got."""
    graph = {**TEXT, "task.name": "cora", "task.family": "graph", "graph.retrain.seeds": 2, "graph.rerank.topk": 3,
             "graph.hpo.trials": 4, "graph.baselines": ["gcn", "gat"],
             "retrain.seeds": 7}  # the text retrain's, which a graph run holds but never reads
    run = write_run(tmp_path / "g", graph)
    (run / "supernet").mkdir()
    (run / "supernet" / "DONE").write_text("")
    (run / "search").mkdir()
    assert load_run(run).state == "search unfinished"
    # the evolution ended (topk.yaml); Planetoid's candidates train in memory, leaving no folder
    (run / "search" / "topk.yaml").write_text("[]\n")
    assert load_run(run).state == "rerank 0/3 candidates"
    (run / "search" / "rerank.json").write_text(json.dumps({"candidates": [{"rank": 1}, {"rank": 2}]}))
    assert load_run(run).state == "rerank 2/3 candidates"
    (run / "search" / "best_arch.yaml").write_text("layers: []\n")
    (run / "retrain").mkdir()
    assert load_run(run).state == "hpo 0/4 trials"
    (run / "retrain" / "hpo.json").write_text(json.dumps({"trials": [{"trial": 0}]}))
    assert load_run(run).state == "hpo 1/4 trials"
    (run / "retrain" / "hpo.json").write_text(json.dumps({"trials": [{"trial": 0}], "chosen": {"trial": 0}}))
    assert load_run(run).state == "retrain 0/2 seeds"
    for seed in (0, 1):
        (run / "retrain" / f"seed_{seed}.json").write_text("{}")
    (run / "baselines" / "gcn").mkdir(parents=True)
    (run / "baselines" / "gcn" / "seed_0.json").write_text("{}")
    assert load_run(run).state == "baselines 1/4 seeds"
    for name, seed in (("gcn", 1), ("gat", 0), ("gat", 1)):
        (run / "baselines" / name).mkdir(exist_ok=True)
        (run / "baselines" / name / f"seed_{seed}.json").write_text("{}")
    assert load_run(run).state == "unfinished"  # every stage's files there: stopped writing the summary
    # src.retrain arch=gcn: its own settings, no HPO whatever graph.hpo.trials says
    gcn = write_run(tmp_path / "gcn", {**graph, "entry": "retrain", "arch_hparams": {"hidden": 16}})
    (gcn / "retrain").mkdir()
    assert load_run(gcn).state == "retrain 0/2 seeds"
    searched = write_run(tmp_path / "file", {**graph, "entry": "retrain", "arch_hparams": None})
    (searched / "retrain").mkdir()
    assert load_run(searched).state == "hpo 0/4 trials"


def test_graph_baselines_ranking_and_retrain_arch_are_shown(tmp_path):
    graph = {**TEXT, "task.name": "cora", "task.family": "graph"}
    baselines = {"gcn": {"test_acc_mean": 0.82, "test_acc_std": 0.005}, "gat": {"test_acc_mean": 0.83,
                                                                                "test_acc_std": 0.006}}
    write_run(tmp_path / "a", graph, test=0.80, baselines=baselines, metric="accuracy",
              ranking={"all": {"spearman": 0.114, "kendall": 0.07, "n": 32}})
    write_run(tmp_path / "b", {**graph, "entry": "retrain"}, test=0.83, supernet=None, arch="gat")
    got = rows(report([tmp_path])[0])
    assert got[0]["gcn test"] == "82.00 +- 0.50" and got[0]["gat test"] == "83.00 +- 0.60"
    assert got[0]["ranking Spearman (n)"] == "+0.11 (32)" and got[0]["arch"] == ""
    assert got[1]["entry"] == "retrain" and got[1]["arch"] == "gat" and got[1]["supernet val"] == ""
    assert got[1]["gcn test"] == "" and got[1]["ranking Spearman (n)"] == ""
    # no correlation (fewer than 3 candidates, or constant scores): shown as such, not a TypeError
    write_run(tmp_path / "a2", {**graph, "seed": 5}, test=0.80, ranking={"all": {"spearman": None, "n": 2}})
    assert rows(report([tmp_path / "a2"])[0])[0]["ranking Spearman (n)"] == "n/a (2)"
    shutil.rmtree(tmp_path / "a2")
    write_run(tmp_path / "c", {**graph, "entry": "retrain", "seed": 1}, test=0.81, supernet=None, arch="gat")
    write_run(tmp_path / "d", {**graph, "entry": "retrain", "seed": 2}, test=0.81, supernet=None, arch="gcn")
    (folded,) = rows(report([tmp_path])[1])  # the same architecture's retrains only
    assert (folded["entry"], folded["arch"], folded["seed"], folded["runs"]) == ("retrain", "gat", "0 1", "2")
    assert folded["test (mean +- std over runs)"] == "82.00 +- 1.41 (2)" and folded["supernet val (mean +- std)"] == ""


def test_a_run_from_before_run_settings_is_read_from_its_config(tmp_path):
    """Older finished runs have ``.hydra/config.yaml`` and ``summary.json`` only: their settings
    are the config's, flattened and resolved, without the keys a resume may change (paths, ...);
    an option they predate is absent and does not count as a difference. An unfinished one (no
    summary) is not a run to report, and a config that does not parse is one clear error."""
    old = tmp_path / "old"
    (old / ".hydra").mkdir(parents=True)
    (old / ".hydra" / "config.yaml").write_text(
        "seed: 0\npaths:\n  data_dir: ${oc.env:NO_SUCH_VARIABLE_HERE,./data}\nspace:\n  sharing: full\n"
        "supernet:\n  dim: 64\n  lr: ${supernet.dim}\ntask:\n  name: sst2\n  family: text\n")
    (old / "summary.json").write_text(json.dumps({"task": "sst2", "best_val_acc_supernet": 0.7,
                                                  "retrain": None, "seconds": {"supernet": 60.0}}))
    run = load_run(old)
    assert run.settings == {"seed": 0, "space.sharing": "full", "supernet.dim": 64, "supernet.lr": 64,
                            "task.name": "sst2", "task.family": "text", "entry": "search"}
    write_run(tmp_path / "new", {**TEXT, "supernet.recompute": False, "supernet.dim": 32}, test=0.7)
    unfinished = tmp_path / "unfinished" / ".hydra"
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text("seed: 0\n")
    per_run, _ = report([tmp_path])
    got = rows(per_run)
    assert [r["run"] for r in got] == ["new", "old"]
    assert [h for h in per_run.header if "." in h] == ["supernet.dim"]  # not supernet.recompute
    assert [r["supernet.dim"] for r in got] == ["32", "64"] and got[1]["supernet val"] == "70.00"
    (old / ".hydra" / "config.yaml").write_text("seed: [unclosed\n")
    with pytest.raises(AutoAttendError, match=r"old/.hydra/config.yaml: cannot be read as a run's config"):
        report([tmp_path])
    # emptied: one unreadable run, not "--over seed: no run has such a setting" (--over was not given)
    (old / ".hydra" / "config.yaml").write_text("")
    with pytest.raises(AutoAttendError, match=r"old/.hydra/config.yaml: cannot be read as a run's config \(not a "
                                              r"mapping with the task's settings\)"):
        report([old])
    shutil.rmtree(tmp_path / "new")
    (old / ".hydra" / "config.yaml").write_text("task:\n  name: sst2\n")  # a run without a seed
    assert [r["run"] for r in rows(report([tmp_path])[0])] == ["old"]


def test_sweep_jobs_in_numeric_order_and_each_run_once(tmp_path):
    for job in (10, 2, 1):
        write_run(tmp_path / f"{job}_job", {**TEXT, "seed": job}, test=0.7)
    runs = find_runs([tmp_path, tmp_path / "2_job"])
    assert [p.name for p in runs] == ["1_job", "2_job", "10_job"]


def test_runs_linked_into_a_folder_are_found_once_and_a_loop_ends(tmp_path):
    """A run linked into a folder of runs (``ln -s /tmp/run d/r``) was not found: "no run directories"."""
    real = write_run(tmp_path / "elsewhere" / "run", TEXT, test=0.7)
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "r").symlink_to(real)
    (folder / "twice").symlink_to(real)
    (folder / "up").symlink_to(folder)  # a link back up the tree
    assert find_runs([folder]) == [real.resolve()]
    assert [r["run"] for r in rows(report([folder])[0])] == ["run"]


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(AutoAttendError, match="nope: no such directory"):
        find_runs([tmp_path / "nope"])
    with pytest.raises(AutoAttendError, match=r"no run directories \(run_settings.json\) under"):
        find_runs([tmp_path])
    run = write_run(tmp_path / "r", TEXT, test=0.7)
    (run / "summary.json").write_text('{"task": ')
    with pytest.raises(AutoAttendError, match=r"r/summary.json: not valid JSON"):
        report([tmp_path])
    (run / "summary.json").unlink()
    with pytest.raises(AutoAttendError, match=r"--over sed: no run has such a setting"):
        report([tmp_path], over=("sed",))


def test_a_repeated_run_is_marked_in_the_folded_table(tmp_path):
    """Two runs with the same settings and seed (a command run twice) were folded as two
    independent seeds, their spread taken as seed variation."""
    write_run(tmp_path / "a", TEXT, test=0.75)
    write_run(tmp_path / "b", TEXT, test=0.75)
    write_run(tmp_path / "c", {**TEXT, "seed": 1}, test=0.77)
    (row,) = rows(report([tmp_path])[1])
    assert (row["runs"], row["seed"]) == ("3 (1 repeat)", "0 0 1")


def test_runs_computed_with_other_threads_or_kernels_are_not_repeats(tmp_path):
    """Runs whose settings agree but which ran with other threads or kernels (machine settings a
    resume may change, which can move the numbers) were folded as repeats of one another, and a
    run resumed with other ones showed nothing of it."""
    def invocation(threads, kernels):
        return {"started": "2026-12-05T05:00:00+0000", "argv": [], "device": "cpu", "threads": threads,
                "kernels": kernels, "data_dir": "/data", "commit": None}

    for name, invocations in (("a", [invocation(1, "fused")]), ("b", [invocation(1, "fused")]),
                              ("c", [invocation(1, "fused"), invocation(2, "torch"), invocation(2, "fused")]),
                              ("e", [invocation(2, "fused"), invocation(1, "fused"), invocation(2, "fused")])):
        run = write_run(tmp_path / name, TEXT, test=0.75)
        (run / "invocations.json").write_text(json.dumps({"invocations": invocations}))
    write_run(tmp_path / "d", TEXT, test=0.75)  # from before the record: not a difference
    write_run(tmp_path / "f", {**TEXT, "seed": 1}, test=0.77)
    per_run, folded = report([tmp_path])
    got = {r["run"]: (r["machine.threads"], r["machine.kernels"]) for r in rows(per_run)}
    assert got == {"a": ("1", "fused"), "b": ("1", "fused"), "c": ("1 -> 2", "fused -> torch -> fused"),
                   "d": ("", ""), "e": ("2 -> 1 -> 2", "fused"), "f": ("", "")}
    assert "machine.device" not in per_run.header  # the same in every run
    # one configuration over seeds 0 and 1: only a and b (same seed, same machine settings) repeat
    (row,) = rows(folded)
    assert "machine.threads" not in folded.header and (row["runs"], row["seed"]) == ("6 (1 repeat)", "0 0 0 0 0 1")


def test_one_seed_shows_its_mean_without_a_spread(tmp_path):
    """A sample std needs two seeds: one seed's recorded std of 0 was shown as "+- 0.00"."""
    run = write_run(tmp_path / "one", TEXT, test=0.5568)
    summary = json.loads((run / "summary.json").read_text())
    summary["retrain"].update(seeds=[0], test_acc_std=0.0)
    (run / "summary.json").write_text(json.dumps(summary))
    write_run(tmp_path / "two", {**TEXT, "seed": 1}, test=0.75)
    table = report([tmp_path])[0]
    assert [r["test (mean +- std)"] for r in rows(table)] == ["55.68", "75.00 +- 1.00"]
    got = list(csv.DictReader(io.StringIO(table.csv())))
    assert [(r["test mean"], r["test std"]) for r in got] == [("55.68", ""), ("75.00", "1.00")]
    shutil.rmtree(tmp_path / "two")
    got = list(csv.DictReader(io.StringIO(report([tmp_path])[0].csv())))  # a column of one-seed runs only
    assert [(r["test mean"], r["test std"]) for r in got] == [("55.68", "")]


def test_one_unreadable_run_is_listed_and_the_others_reported(tmp_path, capsys):
    """A damaged record in one run directory stopped the whole report (exit 2, no table)."""
    from src.report import main

    write_run(tmp_path / "a", TEXT, test=0.75)
    damaged = write_run(tmp_path / "b", {**TEXT, "seed": 1}, test=0.77)
    (damaged / "summary.json").write_text('{"task": ')
    assert main([str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert [r["run"] for r in rows(report([tmp_path / "a"])[0])] == ["a"] and "| a |" in out and "| b |" not in out
    assert out.strip().splitlines()[-1].startswith(f"- `{damaged}`: {damaged / 'summary.json'}: not valid JSON")
    assert "\nRun directories left out, their records unreadable (1):\n\n- `" in out
    assert err == ("error: 1 run directory left out of the report (records unreadable; listed after the tables)\n")
    path = write_sweep_report(tmp_path)  # a sweep's report lists it too
    assert f"- `{damaged}`: " in path.read_text()
    (tmp_path / "a" / "summary.json").write_text("[]")
    assert main([str(tmp_path)]) == 2  # none left: an error, as before
    assert capsys.readouterr().err.startswith(f"error: no readable run directory under {tmp_path}: ")


@pytest.mark.parametrize("edit, reason", [
    ({"seconds": 12.5}, "seconds is not an object of stage seconds"),
    ({"retrain": "x"}, "retrain is not an object of results"),
    ({"retrain": {"test_acc_mean": "abc", "test_acc_std": 0.1, "val_acc_mean": 0.7, "seeds": [0]}},
     "retrain.test_acc_mean is not a number"),
    ({"retrain": {"test_acc_mean": 0.7, "test_acc_std": 0.1, "val_acc_mean": 0.7, "seeds": 3}},
     "retrain.seeds is not a list of seeds"),
    ({"best_val_acc_supernet": "high"}, "best_val_acc_supernet is not a number"),
    ({"baselines": [1]}, "baselines is not an object of results by baseline"),
    ({"ranking": {"all": {"n": 3, "spearman": "x"}}}, "ranking.all is not an object with n and spearman"),
    # a flag is not a score (shown as "100.00"), nor a count of candidates
    ({"best_val_acc_supernet": True}, "best_val_acc_supernet is not a number"),
    ({"ranking": {"all": {"n": "32", "spearman": 0.1}}}, "ranking.all is not an object with n and spearman"),
    ({"ranking": {"all": {"n": True, "spearman": 0.1}}}, "ranking.all is not an object with n and spearman"),
    ({"seconds": {"data": "6"}}, "seconds is not an object of stage seconds"),
    # every field the tables read is there: a KeyError when the row was built
    ({"retrain": {"test_acc_mean": 0.7, "val_acc_mean": 0.7, "seeds": [0]}}, "retrain.test_acc_std is not a number"),
    ({"retrain": {"test_acc_mean": 0.7, "test_acc_std": 0.1, "val_acc_mean": 0.7}},
     "retrain.seeds is not a list of seeds"),
    # only the retrain block may be null (no retrain seeds); a baseline's is always results
    ({"baselines": {"gcn": None}}, "baselines.gcn is not an object of results"),
])
def test_a_summary_of_the_wrong_shape_is_one_unreadable_run(edit, reason, tmp_path, capsys):
    """Wrong types in a hand-edited summary.json were tracebacks (``'float' object has no attribute
    'values'``, ``Unknown format code 'f'``) that lost the whole report."""
    from src.report import main

    write_run(tmp_path / "a", TEXT, test=0.75)
    edited = write_run(tmp_path / "b", {**TEXT, "seed": 1}, test=0.77, **edit)
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "| a |" in out and out.strip().splitlines()[-1] == (
        f"- `{edited}`: {edited / 'summary.json'}: {reason}; was the run directory edited by hand?")


def test_foreign_and_undecodable_records_do_not_stop_the_report(tmp_path, capsys):
    """Another Hydra program's run in the same outputs folder (``.hydra/config.yaml`` and its own
    ``summary.json``) was reported as a finished search of task ``?``, or crashed the report; a
    byte that is not UTF-8, or a hand-edited seed count, was a traceback."""
    from src.report import main

    write_run(tmp_path / "a", TEXT, test=0.75)
    foreign = tmp_path / "other_app"
    (foreign / ".hydra").mkdir(parents=True)
    (foreign / ".hydra" / "config.yaml").write_text("lr: 0.1\n")
    (foreign / "summary.json").write_text('{"accuracy": 0.91, "seconds": 12.5}')
    assert main([str(tmp_path)]) == 0
    assert "other_app" not in capsys.readouterr().out
    garbled = write_run(tmp_path / "b", {**TEXT, "seed": 1}, test=0.77)
    (garbled / "summary.json").write_bytes(b'{"task": "sst2\xff"}')
    unfinished = write_run(tmp_path / "c", {**TEXT, "seed": 2, "retrain.seeds": "two"})
    (unfinished / "supernet").mkdir()
    (unfinished / "supernet" / "DONE").write_text("")
    (unfinished / "search").mkdir()
    (unfinished / "search" / "best_arch.yaml").write_text("layers: []\n")
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"- `{garbled}`: {garbled / 'summary.json'}: not valid JSON (bytes that are not UTF-8)" in out
    assert f"- `{unfinished}`: the run's settings: retrain.seeds is 'two', not a number of seeds" in out


def test_the_sweep_report_files(tmp_path, capsys):
    write_run(tmp_path / "0_x", TEXT, test=0.75)
    write_run(tmp_path / "1_y", {**TEXT, "seed": 1}, test=0.77)
    path = write_sweep_report(tmp_path)
    assert path == tmp_path / "report.md"
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"sweep report: {path}"
    assert path.read_text() in out and "76.00 +- 1.41 (2)" in path.read_text()
    table = list(csv.DictReader(io.StringIO((tmp_path / "report.csv").read_text())))
    # numbers in cells of their own: "75.00 +- 1.00" in the markdown is a mean and a std in the CSV
    assert [(r["run"], r["seed"], r["test mean"], r["test std"]) for r in table] == [("0_x", "0", "75.00", "1.00"),
                                                                                  ("1_y", "1", "77.00", "1.00")]
    assert "test (mean +- std)" not in table[0]
    # jobs that failed beside those that ran: listed after the tables, the CSV still written
    (tmp_path / "report.csv").unlink()
    path = write_sweep_report(tmp_path, [("seed=2 supernet.dim=15", "supernet.dim=15 is not divisible")])
    text = path.read_text()
    assert text.startswith("| run |") and "76.00 +- 1.41 (2)" in text
    assert text.endswith("\nFailed jobs (1):\n\n- `seed=2 supernet.dim=15`: supernet.dim=15 is not divisible\n")
    assert (tmp_path / "report.csv").read_text().splitlines()[1].startswith("0_x,search,sst2,")
    capsys.readouterr()
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.csv").unlink()
    # a sweep whose every job failed before writing a run directory: a line, no files, no error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_sweep_report(empty) is None and not list(empty.iterdir())
    assert "sweep report: none (no run directories" in capsys.readouterr().out
    # ... unless the jobs' errors are given: then they are the report
    path = write_sweep_report(empty, [("seed=1 supernet.dim=15", "supernet.dim=15 is not divisible")])
    assert path.read_text() == "Failed jobs (1):\n\n- `seed=1 supernet.dim=15`: supernet.dim=15 is not divisible\n"
    assert [p.name for p in empty.iterdir()] == ["report.md"]


def test_command_line(tmp_path):
    write_run(tmp_path / "runs" / "a", TEXT, test=0.75)
    out_csv = tmp_path / "out" / "t.csv"
    proc = subprocess.run([sys.executable, "-m", "src.report", str(tmp_path / "runs"), "--csv", str(out_csv),
                           "--markdown", str(tmp_path / "t.md")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2].startswith("| a | search | sst2 |")
    # the columns' unit is said under the table (its cells are bare numbers)
    assert "Scores in % (the supernet's on the validation split; test: mean +- sample std" in proc.stdout
    assert out_csv.read_text().splitlines()[1].startswith("a,search,sst2,")
    assert (tmp_path / "t.md").read_text() == proc.stdout
    bad = subprocess.run([sys.executable, "-m", "src.report", str(tmp_path / "missing")], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: {tmp_path / 'missing'}: no such directory " \
                                                         "(expected a run directory or a folder of them)"


def test_the_report_does_not_import_torch(tmp_path):
    write_run(tmp_path / "a", TEXT, test=0.75)
    old = tmp_path / "old"  # read from its config, through the settings code of the pipeline
    (old / ".hydra").mkdir(parents=True)
    (old / ".hydra" / "config.yaml").write_text("seed: 1\ntask:\n  name: sst2\n")
    (old / "summary.json").write_text(json.dumps({"task": "sst2", "retrain": None}))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "src.report", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "src.pipeline.run_settings" in imported and "torch" not in imported


def test_main_reports_an_unwritable_output(tmp_path, capsys):
    write_run(tmp_path / "a", TEXT, test=0.75)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([str(tmp_path / "a"), "--csv", str(blocker / "t.csv")]) == 2
    assert capsys.readouterr().err.startswith(f"error: --csv {blocker / 't.csv'}: cannot be written (")
    # a folder named a temporary file beside it; the same file for both silently kept the markdown
    assert main([str(tmp_path / "a"), "--csv", str(tmp_path / "a")]) == 2
    assert capsys.readouterr() == ("", f"error: --csv {tmp_path / 'a'}: a folder; give a file name\n")
    assert main([str(tmp_path / "a"), "--csv", str(tmp_path / "r"), "--markdown", str(tmp_path / "." / "r")]) == 2
    assert capsys.readouterr().err == f"error: --csv and --markdown name the same file, {tmp_path / 'r'}: give two\n"
    up = tmp_path / "a" / ".." / "r"  # the same file through a folder and back
    assert main([str(tmp_path / "a"), "--csv", str(tmp_path / "r"), "--markdown", str(up)]) == 2
    assert capsys.readouterr().err == f"error: --csv and --markdown name the same file, {tmp_path / 'r'}: give two\n"
    assert not (tmp_path / "r").exists()
    # a markdown file that cannot be written: no CSV either (it was left written while the command failed)
    assert main([str(tmp_path / "a"), "--csv", str(tmp_path / "t.csv"), "--markdown", str(blocker / "r.md")]) == 2
    assert capsys.readouterr().err.startswith(f"error: --markdown {blocker / 'r.md'}: cannot be written (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "file"]
    assert main([str(tmp_path / "a"), "--markdown", str(blocker / "r.md")]) == 2
    assert capsys.readouterr().err == (f"error: --markdown {blocker / 'r.md'}: cannot be written (a file stands where "
                                       "its folder goes)\n")
    assert main([str(tmp_path / "a" / "summary.json")]) == 2  # said "no such directory"
    assert capsys.readouterr().err == (f"error: {tmp_path / 'a' / 'summary.json'}: a file; give the run directory "
                                       "(or a folder of them) instead\n")
    assert main([str(tmp_path / "a"), "--csv", str(tmp_path / "t.csv"), "--markdown", str(tmp_path / "r.md")]) == 0
    assert "test mean" in (tmp_path / "t.csv").read_text() and "| a |" in (tmp_path / "r.md").read_text()


def test_the_retrain_columns_and_a_run_with_every_seed_done(tmp_path):
    """The per-run table's ``seeds`` (how many the test score averages) and ``retrain val`` (the
    mean selected validation score, not the test one); a run whose seeds are all done but that
    wrote no summary yet is ``unfinished``, not ``retrain 2/2 seeds``."""
    run = write_run(tmp_path / "a", TEXT, test=0.75)
    summary = json.loads((run / "summary.json").read_text())
    summary["retrain"].update(seeds=[0, 1, 2], val_acc_mean=0.7125)
    (run / "summary.json").write_text(json.dumps(summary))
    (row,) = rows(report([run])[0])
    assert (row["test (mean +- std)"], row["seeds"], row["retrain val"]) == ("75.00 +- 1.00", "3", "71.25")
    done = write_run(tmp_path / "b", TEXT)
    for stage in ("supernet/DONE", "search/best_arch.yaml", "retrain/seed_0.json", "retrain/seed_1.json"):
        (done / stage).parent.mkdir(exist_ok=True)
        (done / stage).write_text("{}")
    assert load_run(done).state == "unfinished"


def test_a_task_setting_overridden_in_a_sweep_is_a_column_and_separates_the_groups(tmp_path):
    """``-m +task=csv task.path=/a,/b seed=0,1``: runs of one task that differ in one of its keys
    (another corpus, max_len, ...) show that key, and only the runs of the same corpus are folded;
    task keys that differ only between tasks (they follow from the name) stay hidden."""
    csv_task = {**TEXT, "task.name": "csv", "task.num_classes": 4}
    for i, (path, seed, test) in enumerate([("/a", 0, 0.90), ("/a", 1, 0.92), ("/b", 0, 0.50), ("/b", 1, 0.52)]):
        write_run(tmp_path / f"{i}_job", {**csv_task, "seed": seed, "task.path": path}, test=test)
    write_run(tmp_path / "4_job", TEXT, test=0.8)
    per_run, grouped = report([tmp_path])
    assert [h for h in per_run.header if h.startswith("task.") or h == "seed"] == ["seed", "task.path"]
    assert [r["task.path"] for r in rows(per_run)] == ["/a", "/a", "/b", "/b", ""]
    assert [(r["task.path"], r["runs"], r["test (mean +- std over runs)"]) for r in rows(grouped)] == [
        ("/a", "2", "91.00 +- 1.41 (2)"), ("/b", "2", "51.00 +- 1.41 (2)")]


def test_runs_of_both_task_families_get_a_table_each_with_their_own_columns(tmp_path, capsys):
    """A folder of text and graph runs of several budgets printed one table of the union of their
    settings (about 43 columns over experiments/runs); each family now gets its own tables, with
    the settings that differ among its runs only. The whole table stays: the report's ``per_run``,
    the --csv file and --wide."""
    quick = {**TEXT, "supernet.dim": 32, "retrain.seeds": 2}
    write_run(tmp_path / "sst2_quick", quick, test=0.77)
    write_run(tmp_path / "sst2_paper", {**TEXT, "supernet.dim": 64, "retrain.seeds": 10}, test=0.80)
    write_run(tmp_path / "sst5_quick", {**quick, "task.name": "sst5", "task.num_classes": 5}, test=0.40)
    graph = {**TEXT, "task.name": "cora", "task.family": "graph", "task.num_classes": 7,
             "graph.supernet.steps": 1000}
    write_run(tmp_path / "cora_default", graph, test=0.81, baselines={
        "gcn": {"test_acc_mean": 0.8, "test_acc_std": 0.01}})
    write_run(tmp_path / "cora_long", {**graph, "graph.supernet.steps": 8000, "graph.space.sharing": "none"},
              test=0.82)
    write_run(tmp_path / "cora_long_s1", {**graph, "graph.supernet.steps": 8000, "graph.space.sharing": "none",
                                          "seed": 1}, test=0.83)

    tables = report([tmp_path])
    settings = lambda table: [h for h in table.header if "." in h or h == "seed"]  # noqa: E731
    # the whole table: every setting that differs anywhere, every run (what --csv and --wide give)
    # (in the order the runs, by name, first hold them: a run's record leaves out its other family's settings)
    assert settings(tables.per_run) == ["seed", "graph.space.sharing", "graph.supernet.steps", "supernet.dim",
                                        "retrain.seeds"]
    assert "gcn test" in tables.per_run.header and len(tables.per_run.rows) == 6
    (text_title, text, text_folded), (graph_title, graph_table, graph_folded) = tables.sections
    assert (text_title, graph_title) == ("Text tasks", "Graph tasks")
    assert settings(text) == ["supernet.dim", "retrain.seeds"] and "gcn test" not in text.header
    assert [r["run"] for r in rows(text)] == ["sst2_paper", "sst2_quick", "sst5_quick"]
    assert settings(graph_table) == ["seed", "graph.space.sharing", "graph.supernet.steps"]
    assert "gcn test" in graph_table.header
    assert [r["run"] for r in rows(graph_table)] == ["cora_default", "cora_long", "cora_long_s1"]
    assert text_folded is None and rows(graph_folded)[0]["runs"] == "2"  # the two seeds of cora_long

    assert main([str(tmp_path), "--csv", str(tmp_path / "all.csv")]) == 0
    out = capsys.readouterr().out
    assert "## Text tasks (3 runs)" in out and "## Graph tasks (3 runs)" in out
    header_lines = [line for line in out.splitlines() if line.startswith("| run |")]
    assert len(header_lines) == 2 and "graph.supernet.steps" not in header_lines[0]
    assert "supernet.dim" not in header_lines[1]
    csv_header = next(csv.reader(io.StringIO((tmp_path / "all.csv").read_text())))
    assert {"supernet.dim", "graph.supernet.steps", "gcn test mean"} <= set(csv_header)
    assert main([str(tmp_path), "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "## " not in wide and [line for line in wide.splitlines() if line.startswith("| run |")] == [
        tables.per_run.markdown().splitlines()[0]]


def test_runs_of_one_family_print_as_before(tmp_path, capsys):
    """One family: one table, no family heading, the same with and without --wide."""
    write_run(tmp_path / "a", TEXT, test=0.75)
    write_run(tmp_path / "b", {**TEXT, "space.sharing": "none"}, test=0.70)
    assert len(report([tmp_path]).sections) == 1
    assert main([str(tmp_path)]) == 0
    narrow = capsys.readouterr().out
    assert main([str(tmp_path), "--wide"]) == 0
    assert capsys.readouterr().out == narrow and "## " not in narrow


# settings as budget=quick and budget=paper (the defaults) set them for +task=sst2 (conf/budget/quick.yaml;
# paper: the groups' defaults, conf/retrain/default.yaml's 5 seeds)
BUDGETS = {"quick": {**TEXT, "supernet.dim": 32, "retrain.seeds": 2, "strategy.population": 100},
           "paper": {**TEXT, "supernet.dim": 64, "retrain.seeds": 5, "strategy.population": 500}}


def budget_run(path: Path, budget: str, *overrides: str, test: float = 0.75, **settings) -> Path:
    """A run of ``budget`` (its settings, updated by ``settings``) with the ``.hydra/`` records a run
    writes: ``hydra.yaml`` naming its budget, and the ``overrides`` typed after ``+task=sst2 budget=...``."""
    run = write_run(path, {**BUDGETS[budget], **settings}, test=test)
    task = settings.get("task.name", "sst2")
    (run / ".hydra").mkdir()
    (run / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    choices:\n      budget: {budget}\n"
                                               f"      task: {task}\n")
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in (f"+task={task}", f"budget={budget}",
                                                                                  *overrides)))
    return run


def section_settings(tmp_path) -> list[str]:
    """The budget and settings columns of the (one-family) report's per-run table."""
    ((_, per_run, _),) = report([tmp_path]).sections
    return [h for h in per_run.header if "." in h or h in ("seed", "budget")]


def test_runs_of_several_budgets_get_a_budget_column_instead_of_its_settings(tmp_path, capsys):
    """``budget=quick`` and ``budget=paper`` runs showed a column for each setting the budget sets
    (conf/budget/quick.yaml sets 20); a ``budget`` column stands for them, unless the user typed one.
    The whole table (--wide, --csv) keeps them, with the budget column."""
    budget_run(tmp_path / "q", "quick")
    budget_run(tmp_path / "p0", "paper")
    budget_run(tmp_path / "p1", "paper", "seed=1", seed=1)
    assert section_settings(tmp_path) == ["budget", "seed"]
    ((_, per_run, _),) = report([tmp_path]).sections
    assert [(r["run"], r["budget"], r["seed"]) for r in rows(per_run)] == [("p0", "paper", "0"), ("p1", "paper", "1"),
                                                                           ("q", "quick", "0")]
    assert per_run.budget_keys == ["supernet.dim", "retrain.seeds", "strategy.population"]
    whole = report([tmp_path]).per_run
    assert [h for h in whole.header if "." in h or h in ("seed", "budget")] == [
        "budget", "seed", "supernet.dim", "retrain.seeds", "strategy.population"]
    whole_folded = report([tmp_path]).grouped  # --wide's folded table: the same columns, the paper seeds' row
    assert [h for h in whole_folded.header if "." in h or h == "budget"] == [
        "budget", "supernet.dim", "retrain.seeds", "strategy.population"] and whole_folded.budget_keys == []
    assert main([str(tmp_path), "--csv", str(tmp_path / "all.csv")]) == 0
    out = capsys.readouterr().out
    assert "Settings that differ only with the budget are left out (3: supernet.dim, retrain.seeds, " in out
    assert "| supernet.dim |" not in out
    assert {"budget", "supernet.dim"} <= set(next(csv.reader(io.StringIO((tmp_path / "all.csv").read_text()))))
    assert main([str(tmp_path), "--wide"]) == 0
    assert "| budget | seed | supernet.dim | retrain.seeds | strategy.population |" in capsys.readouterr().out


def test_a_setting_a_run_was_given_is_shown_beside_the_budget(tmp_path):
    """A user's own override (``supernet.dim=128`` in one paper run; ``++retrain.seeds=5``, the
    budget's value) is never hidden behind the budget column."""
    budget_run(tmp_path / "q", "quick")
    budget_run(tmp_path / "p0", "paper")
    budget_run(tmp_path / "p1", "paper", "supernet.dim=128", "++retrain.seeds=5", **{"supernet.dim": 128})
    assert section_settings(tmp_path) == ["budget", "supernet.dim", "retrain.seeds"]
    ((_, per_run, _),) = report([tmp_path]).sections
    assert [r["supernet.dim"] for r in rows(per_run)] == ["64", "128", "32"]


def test_a_setting_other_than_its_budget_gives_is_shown_whatever_the_records_say(tmp_path, monkeypatch):
    """Before ``a18b2db`` a refused re-run rewrote a finished run's ``.hydra/`` records: a quick run
    given ``supernet.dim=48`` could then record no override at all. Its 48 is not what
    ``budget=quick`` gives (32), so it is shown, beside the keys that do follow the budget; the same
    for a paper run whose ``retrain.seeds`` (7) no budget gives. A run whose budget and task
    cannot be composed (``conf/budget/huge.yaml`` does not exist) folds nothing."""
    budget_run(tmp_path / "q0", "quick")
    budget_run(tmp_path / "q1", "quick", **{"supernet.dim": 48})
    budget_run(tmp_path / "p", "paper")
    _budget_settings.cache_clear()
    with warnings.catch_warnings():  # composed from any folder without Hydra's warning of a missing search path
        warnings.simplefilter("error")
        monkeypatch.chdir(tmp_path)
        assert section_settings(tmp_path) == ["budget", "supernet.dim"]
    ((_, per_run, _),) = report([tmp_path]).sections
    assert per_run.budget_keys == ["retrain.seeds", "strategy.population"]
    assert [r["supernet.dim"] for r in rows(per_run)] == ["64", "32", "48"]
    shutil.rmtree(tmp_path / "q1")
    budget_run(tmp_path / "p1", "paper", **{"retrain.seeds": 7})
    assert section_settings(tmp_path) == ["budget", "retrain.seeds"]
    shutil.rmtree(tmp_path / "p1")
    # as a multirun's report is, inside a Hydra app: the app's own Hydra is left as it was
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    _budget_settings.cache_clear()
    with initialize_config_dir(config_dir=str(CONF_DIR / "task"), version_base="1.3"):
        assert section_settings(tmp_path) == ["budget"]  # composed there too: every difference folded
        assert GlobalHydra.instance().is_initialized() and compose("cora")["name"] == "cora"
    huge = budget_run(tmp_path / "h", "paper")
    (huge / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      budget: huge\n"
                                                "      task: sst2\n")
    assert section_settings(tmp_path) == ["budget", "supernet.dim", "retrain.seeds", "strategy.population"]


def test_a_run_of_unknown_budget_folds_nothing(tmp_path):
    """A run without ``.hydra/hydra.yaml`` (or without its overrides) among runs of two budgets: its
    budget cell is empty and every differing setting is shown, as before."""
    budget_run(tmp_path / "q", "quick")
    budget_run(tmp_path / "p", "paper")
    write_run(tmp_path / "x", BUDGETS["paper"], test=0.7)
    assert section_settings(tmp_path) == ["budget", "supernet.dim", "retrain.seeds", "strategy.population"]
    ((_, per_run, _),) = report([tmp_path]).sections
    assert [r["budget"] for r in rows(per_run)] == ["paper", "quick", ""]
    shutil.rmtree(tmp_path / "x")
    (budget_run(tmp_path / "x", "paper") / ".hydra" / "overrides.yaml").unlink()  # what was typed is not known
    assert section_settings(tmp_path) == ["budget", "supernet.dim", "retrain.seeds", "strategy.population"]
    # damaged records (YAML reads 2026-13-45 as a date, which fails with a ValueError): not known either
    (tmp_path / "x" / ".hydra" / "overrides.yaml").write_text("- 2026-13-45\n")
    (tmp_path / "x" / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      budget: 2026-02-30\n")
    assert section_settings(tmp_path) == ["budget", "supernet.dim", "retrain.seeds", "strategy.population"]


def test_a_setting_that_follows_the_task_protocol_is_not_put_down_to_the_budget(tmp_path):
    """``graph.supernet.steps`` is the task protocol's (``${oc.select:task.protocol.supernet_steps,2000}``)
    where no budget sets it: a paper run given ``+task.protocol.supernet_steps=1000`` beside a quick
    run (500) showed the budget column alone, the override nowhere. The strategy's population,
    which only the budget sets, is still left out."""
    graph = {"task.name": "cora", "task.family": "graph"}
    budget_run(tmp_path / "q", "quick", **graph, **{"graph.supernet.steps": 500})
    budget_run(tmp_path / "p", "paper", "+task.protocol.supernet_steps=1000", **graph,
               **{"graph.supernet.steps": 1000})
    assert section_settings(tmp_path) == ["budget", "graph.supernet.steps"]
    ((_, per_run, _),) = report([tmp_path]).sections
    assert per_run.budget_keys == ["strategy.population"]
    assert [r["graph.supernet.steps"] for r in rows(per_run)] == ["1000", "500"]
    # nothing typed: the paper run's 2000 is still the protocol's (the task could change it), shown
    shutil.rmtree(tmp_path / "p")
    budget_run(tmp_path / "p", "paper", **graph, **{"graph.supernet.steps": 2000})
    assert section_settings(tmp_path) == ["budget", "graph.supernet.steps"]


def test_a_group_override_keeps_its_settings_shown(tmp_path):
    """``strategy=aging`` sets every ``strategy.*`` key (here to the budget's population): they stay
    columns; ``+experiment=...`` may set any key, so nothing is left out."""
    budget_run(tmp_path / "q", "quick")
    budget_run(tmp_path / "p0", "paper")
    budget_run(tmp_path / "p1", "paper", "strategy=aging", **{"strategy.name": "aging"})
    assert section_settings(tmp_path) == ["budget", "strategy.name", "strategy.population"]
    shutil.rmtree(tmp_path / "p1")
    budget_run(tmp_path / "p1", "paper", "+experiment=sst2_paper")
    assert section_settings(tmp_path) == ["budget", "supernet.dim", "retrain.seeds", "strategy.population"]


def test_runs_of_two_budgets_never_fold_together(tmp_path):
    """Seeds of a quick and of a paper run with the same settings (their budget's own overridden to
    one value, say) were folded into one row of both budgets' runs; each budget is its own row."""
    for budget in ("quick", "paper"):
        for seed in (0, 1):
            budget_run(tmp_path / f"{budget}_{seed}", budget, f"seed={seed}", test=0.7 + seed / 100,
                       **{**BUDGETS["paper"], "seed": seed})
    ((_, _, folded),) = report([tmp_path]).sections
    assert [(r["budget"], r["runs"], r["seed"]) for r in rows(folded)] == [("paper", "2", "0 1"), ("quick", "2", "0 1")]
    assert [r["budget"] for r in rows(report([tmp_path]).grouped)] == ["paper", "quick"]  # --wide's too
    for budget in ("quick", "paper"):  # the budgets' own settings: a row each, without them
        for seed in (0, 1):
            shutil.rmtree(tmp_path / f"{budget}_{seed}")
            budget_run(tmp_path / f"{budget}_{seed}", budget, f"seed={seed}", seed=seed)
    ((_, _, folded),) = report([tmp_path]).sections
    assert [h for h in folded.header if "." in h or h == "budget"] == ["budget"]
    assert [(r["budget"], r["runs"]) for r in rows(folded)] == [("paper", "2"), ("quick", "2")]


def test_an_old_run_with_an_unreadable_summary_is_listed_not_dropped(tmp_path, capsys):
    """A run from before ``run_settings.json`` is found by its ``.hydra/config.yaml`` and
    ``summary.json``; a summary that cannot be parsed may still be this project's: it is listed as
    unreadable, not silently taken for another program's and left out of the report."""
    write_run(tmp_path / "a", TEXT, test=0.75)
    old = tmp_path / "old"
    (old / ".hydra").mkdir(parents=True)
    (old / ".hydra" / "config.yaml").write_text("seed: 0\ntask:\n  name: sst2\n")
    (old / "summary.json").write_text('{"task": ')
    assert find_runs([tmp_path]) == [(tmp_path / "a").resolve(), old.resolve()]
    assert main([str(tmp_path)]) == 1
    assert f"- `{old.resolve()}`: {old.resolve() / 'summary.json'}: not valid JSON" in capsys.readouterr().out


def test_records_that_are_not_objects_are_named_in_the_listing(tmp_path, capsys):
    """A ``summary.json`` or ``run_settings.json`` holding a list is one unreadable run, named by
    its file (a list of settings was a traceback)."""
    write_run(tmp_path / "a", TEXT, test=0.75)
    summary = write_run(tmp_path / "b", {**TEXT, "seed": 1}, test=0.77)
    (summary / "summary.json").write_text("[]")
    settings = write_run(tmp_path / "c", {**TEXT, "seed": 2}, test=0.77)
    (settings / "run_settings.json").write_text('[["seed", 2]]')
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"- `{summary}`: {summary / 'summary.json'}: expected a JSON object\n" in out
    assert f"- `{settings}`: {settings / 'run_settings.json'}: expected a JSON object of settings\n" in out


def test_the_hpo_and_rerank_states_need_a_graph_run_with_such_a_stage(tmp_path):
    """``hpo 0/0 trials`` for a graph run without HPO (``graph.hpo.trials`` 0 or 1), or ``hpo 0/4
    trials`` for a text run that holds the graph settings it never reads, would name a stage the run
    never has: each is waiting for its retrain seeds (or its search)."""
    graph = {**TEXT, "task.name": "cora", "task.family": "graph", "graph.retrain.seeds": 2,
             "graph.rerank.topk": 0, "graph.hpo.trials": 0}
    for name, settings, seeds in (("g", graph, 2), ("t", {**TEXT, "graph.hpo.trials": 4, "graph.rerank.topk": 3}, 2),
                                  ("g1", {**graph, "graph.hpo.trials": 1}, 2)):  # one trial: no HPO either
        run = write_run(tmp_path / name, settings)
        (run / "supernet").mkdir()
        (run / "supernet" / "DONE").write_text("")
        (run / "search").mkdir()
        (run / "search" / "topk.yaml").write_text("[]\n")
        assert load_run(run).state == "search unfinished"
        (run / "search" / "best_arch.yaml").write_text("layers: []\n")
        (run / "retrain").mkdir()
        assert load_run(run).state == f"retrain 0/{seeds} seeds"


def test_overrides_read_from_hydra_yaml_where_overrides_yaml_is_missing(tmp_path):
    """A run whose ``.hydra/`` has no ``overrides.yaml`` has its typed overrides in ``hydra.yaml``
    (``hydra.overrides.task``): its budget's settings still fold, and one typed there is still shown."""
    for name, budget, typed in (("q", "quick", []), ("p0", "paper", []), ("p1", "paper", ["seed=1"])):
        run = budget_run(tmp_path / name, budget, *typed, **({"seed": 1} if typed else {}))
        (run / ".hydra" / "overrides.yaml").unlink()
        (run / ".hydra" / "hydra.yaml").write_text(
            f"hydra:\n  overrides:\n    task: [+task=sst2, budget={budget}{''.join(', ' + o for o in typed)}]\n"
            f"  runtime:\n    choices:\n      budget: {budget}\n      task: sst2\n")
    assert section_settings(tmp_path) == ["budget", "seed"]
    (tmp_path / "p1" / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  overrides:\n    task: [+task=sst2, budget=paper, seed=1, supernet.dim=64]\n"
        "  runtime:\n    choices:\n      budget: paper\n      task: sst2\n")
    assert section_settings(tmp_path) == ["budget", "seed", "supernet.dim"]


def test_no_budget_column_unless_two_budgets_are_named(tmp_path):
    """Runs of one budget, with or without a run whose records name none (or an empty one), have
    no ``budget`` column, and every setting that differs is shown."""
    budget_run(tmp_path / "q0", "quick")
    budget_run(tmp_path / "q1", "quick", "seed=1", seed=1)
    assert section_settings(tmp_path) == ["seed"]
    write_run(tmp_path / "x", BUDGETS["paper"], test=0.7)  # no .hydra/: its budget unknown
    assert section_settings(tmp_path) == ["seed", "supernet.dim", "retrain.seeds", "strategy.population"]
    shutil.rmtree(tmp_path / "x")
    empty = budget_run(tmp_path / "x", "paper")
    (empty / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      budget: ''\n"
                                                 "      task: sst2\n")
    assert section_settings(tmp_path) == ["seed", "supernet.dim", "retrain.seeds", "strategy.population"]
    assert [r["run"] for r in rows(report([tmp_path]).sections[0][1])] == ["q0", "q1", "x"]


def test_a_value_other_than_its_budget_gives_is_shown_when_each_budget_agrees(tmp_path):
    """A quick run recording ``supernet.dim`` 48 (given on the command line, its records rewritten
    by a refused re-run before ``a18b2db``) beside a paper run: each budget's runs agree, but 48 is
    not what ``budget=quick`` gives, so it is shown rather than put down to the budget."""
    budget_run(tmp_path / "q", "quick", **{"supernet.dim": 48})
    budget_run(tmp_path / "p", "paper")
    assert section_settings(tmp_path) == ["budget", "supernet.dim"]
    ((_, per_run, _),) = report([tmp_path]).sections
    assert per_run.budget_keys == ["retrain.seeds", "strategy.population"]


@pytest.mark.parametrize("override, shown", [
    ("~strategy.population", ["strategy.population"]),  # deleted (and so set by the user): not the budget's
    ("+preset@strategy=big", ["strategy.population"]),  # a group put in the strategy package sets strategy.*
    ("+preset@_global_=big", ["supernet.dim", "retrain.seeds", "strategy.population"]),  # may set anything
    ("+preset@_global_.supernet=big", ["supernet.dim"]),
])
def test_every_form_of_a_typed_override_keeps_its_settings_shown(override, shown, tmp_path):
    """What an override touches, whatever its form (``~key``, ``group@package=...``, a ``_global_``
    package): its settings stay columns beside the budget even where their values are the budget's."""
    budget_run(tmp_path / "q", "quick")
    budget_run(tmp_path / "p0", "paper")
    budget_run(tmp_path / "p1", "paper", override)
    assert section_settings(tmp_path) == ["budget"] + shown


def test_an_override_of_a_list_element_keeps_the_list_shown(tmp_path):
    """``graph.baselines.0=gcn`` (Hydra sets one element of the list, here to the value it had) is
    the user's word on ``graph.baselines``: shown beside the budget, not put down to it."""
    graph = {"task.name": "cora", "task.family": "graph"}
    budget_run(tmp_path / "q", "quick", **graph, **{"graph.baselines": []})
    budget_run(tmp_path / "p0", "paper", **graph, **{"graph.baselines": ["gcn", "gat"]})
    budget_run(tmp_path / "p1", "paper", "graph.baselines.0=gcn", **graph, **{"graph.baselines": ["gcn", "gat"]})
    assert section_settings(tmp_path) == ["budget", "graph.baselines"]
    shutil.rmtree(tmp_path / "p1")  # nothing typed: the budget's
    assert section_settings(tmp_path) == ["budget"]


def test_the_whole_runs_hidden_keys_are_never_settings_columns(tmp_path):
    """The entry point, the architecture (``arch``, its content, a baseline's ``arch_hparams``) have
    columns of their own or none: retrains of two architectures show them once, in ``arch``."""
    graph = {**TEXT, "task.name": "cora", "task.family": "graph", "entry": "retrain"}
    write_run(tmp_path / "a", {**graph, "arch": "gcn", "arch_hparams": {"hidden": 16}}, test=0.8, supernet=None,
              arch="gcn")
    write_run(tmp_path / "b", {**graph, "arch": "gat", "arch_hparams": {"hidden": 8},
                               "architecture": {"layers": [[1]]}}, test=0.8, supernet=None, arch="gat")
    write_run(tmp_path / "c", {**TEXT, "architecture": {"layers": [[2]]}}, test=0.8)
    per_run = report([tmp_path]).per_run
    assert [h for h in per_run.header if "arch" in h or h == "entry"] == ["entry", "arch"]
    assert [(r["entry"], r["arch"]) for r in rows(per_run)] == [("retrain", "gcn"), ("retrain", "gat"), ("search", "")]


def test_long_values_are_cut_and_pipes_escaped(tmp_path, capsys):
    """A setting's value is shown up to 40 characters (a longer one cut to 37 and ``...``), and a
    ``|`` in it does not end the markdown cell."""
    ops = ["zero", "gru", "conv3", "conv5", "conv7", "attention", "max_pool"]
    write_run(tmp_path / "a", {**TEXT, "space.ops": ops, "task.path": "/data/a|b.csv"}, test=0.75)
    write_run(tmp_path / "b", {**TEXT, "space.ops": ops[:4], "task.path": "/data/c.csv"}, test=0.75)
    got = rows(report([tmp_path]).per_run)
    assert [r["space.ops"] for r in got] == [json.dumps(ops)[:37] + "...", '["zero", "gru", "conv3", "conv5"]']
    forty = ["zero", "gru", "conv3", "conv5", "max"]
    assert len(json.dumps(forty)) == 40
    shutil.rmtree(tmp_path / "b")
    write_run(tmp_path / "b", {**TEXT, "space.ops": forty, "task.path": "/data/c.csv"}, test=0.75)
    assert rows(report([tmp_path]).per_run)[1]["space.ops"] == json.dumps(forty)  # 40: whole
    assert main([str(tmp_path)]) == 0
    assert "| /data/a\\|b.csv |" in capsys.readouterr().out


def test_a_metric_column_where_a_run_scores_other_than_accuracy(tmp_path):
    """PPI's scores are micro-F1: runs of it beside accuracy runs get a ``metric`` column (empty for
    an unfinished run); runs all scored by accuracy get none."""
    graph = {**TEXT, "task.family": "graph"}
    write_run(tmp_path / "a", {**graph, "task.name": "cora"}, test=0.8, metric="accuracy")
    write_run(tmp_path / "b", {**graph, "task.name": "ppi"}, test=0.9, metric="micro_f1")
    write_run(tmp_path / "c", {**graph, "task.name": "ppi", "seed": 1})
    table = report([tmp_path]).per_run
    assert table.header[table.header.index("retrain val") + 1] == "metric"
    assert [r["metric"] for r in rows(table)] == ["accuracy", "micro_f1", ""]
    shutil.rmtree(tmp_path / "b")
    assert "metric" not in report([tmp_path]).per_run.header


def test_runs_at_different_depths_are_named_from_their_common_folder(tmp_path):
    """A sweep's job and a single run given together: each named by its path under the folder
    that holds them both."""
    write_run(tmp_path / "a" / "0_x", TEXT, test=0.75)
    write_run(tmp_path / "b", {**TEXT, "seed": 1}, test=0.75)
    assert [r["run"] for r in rows(report([tmp_path / "a", tmp_path / "b"]).per_run)] == ["a/0_x", "b"]


def test_the_markdown_of_two_families_and_of_folded_keys(tmp_path, capsys):
    """Each family's heading counts its runs (``1 run``), the note on units is said once, after
    every table, the folded table names the keys folded over (``--over``, a trailing comma
    allowed), and settings left out for the budget are named, the first four then ``...``."""
    write_run(tmp_path / "t0", TEXT, test=0.75)
    write_run(tmp_path / "t1", {**TEXT, "seed": 1, "space.sharing": "none"}, test=0.77)
    write_run(tmp_path / "g", {**TEXT, "task.name": "cora", "task.family": "graph"}, test=0.8)
    assert main([str(tmp_path), "--over", "space.sharing,seed,"]) == 0
    out = capsys.readouterr().out
    assert "## Text tasks (2 runs)\n\n" in out and "\n## Graph tasks (1 run)\n\n" in out
    assert out.count("Scores in % (") == 1 and out.index("Scores in % (") > out.rindex("| cora |")
    assert "\nRuns whose settings differ at most in space.sharing, seed (their code may differ)" in out
    # runs as budget=quick and budget=paper compose them: 15 of their settings differ, all the budget's
    shutil.rmtree(tmp_path)
    quick, paper = (_budget_settings("search", "sst2", budget) for budget in ("quick", "paper"))
    budget_run(tmp_path / "q", "quick", **quick)
    budget_run(tmp_path / "p", "paper", **paper)
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("\nSettings that differ only with the budget are left out (15: supernet.dim, retrain.seeds, "
            "strategy.population, data.train_level, ...); the `budget` column stands for them") in out


def test_a_sweep_with_no_readable_run_and_a_failed_job_still_names_the_unreadable_one(tmp_path, capsys):
    """A sweep whose one run directory holds a damaged ``summary.json`` and whose other job failed:
    the report listed the failed job only, and the damaged run was named nowhere (without a failed
    job it is named in the "sweep report: none (...)" line)."""
    run = write_run(tmp_path / "0_job", TEXT, test=0.75)
    (run / "summary.json").write_text('{"task": ')
    path = write_sweep_report(tmp_path, [("seed=1 supernet.dim=15", "supernet.dim=15 is not divisible")])
    assert path.read_text() == (
        "Run directories left out, their records unreadable (1):\n\n"
        f"- `{run}`: {run / 'summary.json'}: not valid JSON (Expecting value at line 1); was the run directory "
        "edited by hand?\n\nFailed jobs (1):\n\n- `seed=1 supernet.dim=15`: supernet.dim=15 is not divisible\n")
    assert capsys.readouterr().out == path.read_text() + f"sweep report: {path}\n"
    assert not (tmp_path / "report.csv").exists()
