"""The graph half end to end through the real command line, on a Planetoid fixture written by the
tests (offline), plus bad input: one ``error:`` line, a non-zero exit and no result files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import yaml

from src.lit.graph_modules import selection_key
from src.space import Architecture, FunctionalSpace
from tests.conftest import compose_config
from tests.helpers import ROOT, cli, fake_graph_fits, smoke_search, write_tiny_planetoid, write_tiny_ppi

GRAPH_OPS = ("zero", "identity", "gcn", "sage", "gat1", "gat2", "gat4", "gat8", "gat16", "linear", "arma", "cheb",
             "sgc")
RESULT_FILES = ("summary.json", "retrain/results.json", "search/best_arch.yaml", "search/population.jsonl",
                "supernet/DONE")


def assert_clean_failure(returncode: int, stderr: str, run_dir: Path, *needles: str) -> None:
    assert returncode == 2
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in stderr
    for result in RESULT_FILES:
        assert not (run_dir / result).exists(), result


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory) -> Path:
    return write_tiny_planetoid(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def smoke_run(fixture_data, tmp_path_factory):
    return smoke_search("cora", fixture_data, tmp_path_factory.mktemp("run"))


def test_smoke_graph_search_writes_every_result(smoke_run):
    _, run_dir, proc = smoke_run
    assert f"run dir: {run_dir}" in proc.stdout and "| gcn " in proc.stdout
    assert (run_dir / "supernet" / "last.ckpt").exists() and (run_dir / "supernet" / "DONE").exists()
    population = [json.loads(line) for line in (run_dir / "search" / "population.jsonl").read_text().splitlines()]
    assert len(population) == 6 + 2 * 3  # smoke: 6 random + 2 rounds x 3 parents
    archs = [Architecture.from_dict(p["arch"]) for p in population]
    assert len(set(archs)) == len(archs)
    space = FunctionalSpace(2, GRAPH_OPS, priors=True, kinds=("add", "attn"))
    for a in archs:
        space.validate(a)
    best = Architecture.load(run_dir / "search" / "best_arch.yaml")
    assert best == Architecture.from_dict(max(population, key=lambda p: (p["score"], -p["index"]))["arch"])
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    assert {"test_acc_mean", "test_acc_std", "per_seed", "selection_rule", "hparams", "hpo_trials"} <= set(results)
    assert results["arch"] == best.to_dict() and results["metric"] == "accuracy"
    assert len(results["per_seed"]) == 2 and len(results["hpo_trials"]) == 2
    assert 0.0 <= results["test_acc_mean"] <= 1.0 and results["test_acc_std"] >= 0.0
    for seed in results["per_seed"]:  # test at the best validation evaluation
        history = json.loads((run_dir / "retrain" / f"seed_{seed['seed']}.json").read_text())["history"]
        chosen = max(history, key=selection_key)
        assert (seed["val_acc"], seed["test_acc"], seed["step"]) == (chosen["val_acc"], chosen["test_acc"],
                                                                     chosen["step"])
        assert history[-1]["step"] <= 10  # smoke caps every child at 10 epochs
    hpo = json.loads((run_dir / "retrain" / "hpo.json").read_text())
    assert hpo["chosen"]["hparams"] == results["hparams"]
    assert [t["seed"] for t in hpo["trials"]] == [1000, 1001]  # seed 0 + the HPO's offset + trial
    gcn = json.loads((run_dir / "baselines" / "gcn" / "results.json").read_text())
    assert gcn["hparams"]["hidden"] == 16 and gcn["hparams"]["readout"] == "last" and gcn["hpo_trials"] == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["retrain"]["test_acc_mean"] == results["test_acc_mean"]
    assert summary["baselines"]["gcn"]["test_acc_mean"] == gcn["test_acc_mean"]
    assert summary["metric"] == "accuracy" and set(summary["seconds"]) >= {"supernet", "search", "retrain",
                                                                            "baselines"}


def test_the_retrained_and_baseline_models_are_kept_and_reproduce_their_records(smoke_run, fixture_data):
    """Every seed of the retrain and of each baseline keeps its selected evaluation's weights;
    ``src.evaluate`` reloads them on the rebuilt graph and gets the recorded scores back."""
    tmp, run_dir, _ = smoke_run
    from src.models.saved import load_child

    kept = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("model.pt"))
    assert kept == [f"{folder}/seed_{s}/model.pt" for folder in ("baselines/gcn", "retrain")
                    for s in (0, 1)]  # none for the HPO trials
    model, record = load_child(run_dir / "retrain" / "seed_1" / "model.pt")
    selected = json.loads((run_dir / "retrain" / "seed_1.json").read_text())
    assert model.arch == Architecture.load(run_dir / "search" / "best_arch.yaml") and not model.training
    assert {k: record["evaluation"][k] for k in ("step", "val_acc", "test_acc")} == {
        k: selected[k] for k in ("step", "val_acc", "test_acc")}
    proc = cli("src.evaluate", str(run_dir), data_dir=fixture_data, tmp=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split(" | ") for line in proc.stdout.strip().splitlines()[2:-1]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [(f"| {f}", str(s), "yes |") for f in ("retrain", "baselines/gcn")
                                                   for s in (0, 1)]
    # another graph behind paths.data_dir (its features 30 wide): a shape traceback before, now one line
    other = write_tiny_planetoid(tmp / "other_graph", num_features=30)
    for module, args in (("src.evaluate", ()), ("src.predict", ("--seed", "0"))):
        proc = cli(module, str(run_dir), *args, data_dir=other, tmp=tmp)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
            f"error: {run_dir}: the data at paths.data_dir={other} are not the run's (features: 24 -> 30); give "
            "the run's data folder (paths.data_dir=...)"), proc.stderr[-2000:]


def test_predict_classifies_every_node_as_the_recorded_evaluation_did(smoke_run, fixture_data):
    """``src.predict <graph run dir>``: a CSV row per node of the rebuilt graph from the seed of best
    recorded validation score, whose predictions on the validation and test nodes give that seed's
    recorded accuracies; a baseline's model file alone (its run found above it) works too."""
    tmp, run_dir, _ = smoke_run
    import csv
    import io

    proc = cli("src.predict", str(run_dir), data_dir=fixture_data, tmp=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = {s: json.loads((run_dir / "retrain" / f"seed_{s}.json").read_text()) for s in (0, 1)}
    best = min(recorded, key=lambda s: (-recorded[s]["val_acc"], s))
    assert proc.stderr.startswith(f"predict: {run_dir / 'retrain' / f'seed_{best}' / 'model.pt'} (step ")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [int(r["node"]) for r in rows] == list(range(len(rows)))
    sizes = {split: sum(r["split"] == split for r in rows) for split in ("train", "val", "test", "")}
    assert sizes["train"] > 0 and sizes["val"] > 0 and sizes["test"] > 0
    for split in ("val", "test"):
        chosen = [r for r in rows if r["split"] == split]
        accuracy = sum(r["prediction"] == r["label"] for r in chosen) / len(chosen)
        assert accuracy == pytest.approx(recorded[best][f"{split}_acc"], abs=1e-6)
    assert all(0.0 < float(r["probability"]) <= 1.0 for r in rows)
    baseline = run_dir / "baselines" / "gcn" / "seed_0" / "model.pt"
    proc = cli("src.predict", str(baseline), "--jsonl", data_dir=fixture_data, tmp=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nodes = [json.loads(line) for line in proc.stdout.splitlines()]
    record = json.loads((run_dir / "baselines" / "gcn" / "seed_0.json").read_text())
    test = [n for n in nodes if n["split"] == "test"]
    assert sum(n["prediction"] == n["label"] for n in test) / len(test) == pytest.approx(record["test_acc"], abs=1e-6)
    assert all(abs(sum(n["probabilities"]) - 1) < 1e-5 for n in nodes)
    # the same from Python (src.predict.predict_nodes), with the overrides the command line had
    from src.predict import predict_nodes

    described, in_python = predict_nodes(baseline, overrides=[f"paths.data_dir={fixture_data}",
                                                              f"paths.cache_dir={tmp / 'cache'}"])
    assert described == [proc.stderr.strip().removeprefix("predict: ")] and in_python == nodes


def test_retrain_cli_gat_baseline(fixture_data, tmp_path):
    run_dir = tmp_path / "r"
    proc = cli("src.retrain", "+task=cora", "arch=gat", "budget=smoke", "hardware=cpu", data_dir=fixture_data,
               tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gat: test acc" in proc.stdout
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    gat = yaml.safe_load((ROOT / "src" / "space" / "archs" / "gat.yaml").read_text())
    assert results["arch"] == gat["arch"]
    assert {k: results["hparams"][k] for k in gat["hparams"]} == gat["hparams"]  # the paper's settings
    assert results["hparams_source"] == "the architecture file's hparams" and results["hpo_trials"] == []
    assert results["seeds"] == [0, 1] and len(results["per_seed"]) == 2


def test_command_line_settings_replace_a_baseline_files_hparams(fixture_data, tmp_path):
    """``src.retrain arch=gcn graph.retrain.hidden=8`` trained GCN's file settings (hidden 16) in
    silence while src.report showed 8: a setting given on the command line now replaces the file's."""
    run_dir = tmp_path / "r"
    proc = cli("src.retrain", "+task=cora", "arch=gcn", "budget=smoke", "hardware=cpu", "graph.retrain.hidden=8",
               "graph.retrain.lr=0.05", "graph.retrain.seeds=1", data_dir=fixture_data, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    gcn = yaml.safe_load((ROOT / "src" / "space" / "archs" / "gcn.yaml").read_text())["hparams"]
    assert {k: results["hparams"][k] for k in gcn} == {**gcn, "hidden": 8, "lr": 0.05}
    assert results["hparams_source"] == "the architecture file's hparams, with hidden, lr from the command line"
    settings = json.loads((run_dir / "run_settings.json").read_text())
    assert settings["arch_hparams"]["hidden"] == 8  # the record (src.report) says what was trained
    assert "the command line's graph.retrain.hidden=8, graph.retrain.lr=0.05 replace the architecture file's " \
           "hidden=16, lr=0.01" in proc.stdout + proc.stderr


def test_a_class_count_the_data_do_not_have_is_refused(fixture_data, tmp_path):
    """``task.num_classes`` only describes a named task's classes (the files decide): a value the
    data do not have ran on the files' classes and src.report showed the given one."""
    proc = cli("src.retrain", "+task=cora", "arch=gcn", "budget=smoke", "hardware=cpu", "task.num_classes=7",
               data_dir=fixture_data, tmp=tmp_path, run_dir=tmp_path / "r")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "error: task.num_classes=7: the data of task cora have 3 classes, which this setting does not change (it "
        "only describes them)"), proc.stderr[-2000:]
    assert not (tmp_path / "r" / "retrain").exists()


def test_the_gat_baseline_on_pubmed_is_the_papers_pubmed_model(tmp_path):
    """The GAT paper's PubMed model has 8 averaged output heads, lr 0.01 and weight decay 1e-3; the
    baseline ran Cora's (1 output head, lr 5e-3, weight decay 5e-4) on every Planetoid set."""
    from src.pipeline.config import resolve_arch

    data = write_tiny_planetoid(tmp_path / "d", name="pubmed")
    run_dir = tmp_path / "r"
    proc = cli("src.retrain", "+task=pubmed", "arch=gat", "budget=smoke", "hardware=cpu", data_dir=data,
               tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    gat = yaml.safe_load((ROOT / "src" / "space" / "archs" / "gat.yaml").read_text())
    assert results["arch"] == gat["task_arch"]["pubmed"] != gat["arch"]
    assert [layer["q_op"] for layer in results["arch"]["layers"]] == ["gat8", "gat8"]
    assert (results["hparams"]["lr"], results["hparams"]["weight_decay"]) == (0.01, 1.0e-3)
    assert results["hparams"]["dropout"] == gat["hparams"]["dropout"]  # the rest as on Cora
    # Cora and CiteSeer keep the paper's model for them: one output head
    for task in ("cora", "citeseer", None):
        assert [layer.q_op for layer in resolve_arch("gat", task)] == ["gat8", "gat1"]


def test_ppi_smoke_search_inductive_multilabel(tmp_path):
    """PPI files in the real format: mini-batches of graphs through the Trainer, micro-F1."""
    data = write_tiny_ppi(tmp_path / "d")
    run_dir = tmp_path / "r"
    proc = cli("src.search", "+task=ppi", "budget=smoke", "hardware=cpu", data_dir=data, tmp=tmp_path,
               run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    assert results["metric"] == "micro_f1" and results["protocol"]["num_classes"] == 5
    assert all(0.0 <= s["test_acc"] <= 1.0 for s in results["per_seed"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "micro_f1" and "gcn" in summary["baselines"]
    # the kept models, evaluated graph by graph as the Trainer did, give the recorded micro-F1 back
    proc = cli("src.evaluate", str(run_dir), data_dir=data, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("all 4 model(s) reproduce")
    # per-node predictions: every node of every graph, in the order train, val, test graphs; the test
    # nodes' label sets give the recorded test micro-F1 back
    proc = cli("src.predict", str(run_dir), "--jsonl", data_dir=data, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nodes = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [n["node"] for n in nodes] == list(range(4 * 30))  # 2 / 1 / 1 graphs of 30 nodes
    assert [n["split"] for n in nodes] == ["train"] * 60 + ["val"] * 30 + ["test"] * 30
    seed = proc.stderr.split("seed_")[1].split("/")[0]
    recorded = json.loads((run_dir / "retrain" / f"seed_{seed}.json").read_text())
    tp = fp = fn = 0
    for node in (n for n in nodes if n["split"] == "test"):
        truth, guess = set(node["label"]), set(node["prediction"])
        tp, fp, fn = tp + len(truth & guess), fp + len(guess - truth), fn + len(truth - guess)
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(recorded["test_acc"], abs=1e-6)


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.slow  # a failed download's line: tests/test_graph_data.py; missing data through the command line:
# tests/test_pipeline.py::test_missing_data
def test_missing_dataset_without_network(tmp_path):
    """No files and no reachable download site (these machines): one line, exit 2, nothing written."""
    run_dir = tmp_path / "r"
    proc = cli("src.search", "+task=citeseer", "budget=smoke", data_dir=tmp_path / "nowhere", tmp=tmp_path,
               run_dir=run_dir)
    assert_clean_failure(proc.returncode, proc.stderr, run_dir, "CiteSeer", str(tmp_path / "nowhere"))


def _run_in_process(capsys, tmp_path, config: str, *overrides: str) -> tuple[int, str]:
    from src.pipeline.run import entry, run_retrain, run_search

    cfg = compose_config(config, ["+task=cora", "budget=smoke", "hardware=cpu", f"paths.output_dir={tmp_path / 'r'}",
                                  f"paths.cache_dir={tmp_path / 'cache'}", *overrides])
    with pytest.raises(SystemExit) as exc:
        entry(run_search if config == "search" else run_retrain, cfg)
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("config", ["search", "retrain"])
def test_graph_without_edges(capsys, tmp_path, config):
    data = write_tiny_planetoid(tmp_path / "d", edges=False)
    code, err = _run_in_process(capsys, tmp_path, config, f"paths.data_dir={data}",
                                *(["arch=gcn"] if config == "retrain" else []))
    assert_clean_failure(code, err, tmp_path / "r", "no edges")


def test_feature_label_size_mismatch(capsys, tmp_path):
    data = write_tiny_planetoid(tmp_path / "d", extra_label_rows=2)
    code, err = _run_in_process(capsys, tmp_path, "search", f"paths.data_dir={data}")
    assert_clean_failure(code, err, tmp_path / "r", "feature/label size mismatch",
                         "542 label rows against 540 feature rows")


@pytest.mark.parametrize("content, needles", [
    ("layers:\n  - {kind: add, q_src: 0, q_op: gcnn, k_src: 0, k_op: zero}\n", ["layer 0", "q_op", "'gcnn'"]),
    # a text op in a graph architecture
    ("layers:\n  - {kind: add, q_src: 0, q_op: gcn, k_src: 0, k_op: conv3}\n", ["layer 0", "k_op", "'conv3'"]),
])
def test_unknown_op_in_architecture_file(capsys, tmp_path, fixture_data, content, needles):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, err = _run_in_process(capsys, tmp_path, "retrain", f"paths.data_dir={fixture_data}", f"arch={bad}")
    assert_clean_failure(code, err, tmp_path / "r", f"error: arch={bad}: invalid architecture", *needles)


def test_rerank_keeps_the_best_validation_of_distinct_candidates_and_resumes(tmp_path, monkeypatch):
    """graph.rerank: the top-k *distinct* candidates are trained (duplicates in the ranking are
    skipped), the best mean validation score wins (ties: the supernet's order), and a second call
    reuses search/rerank.json instead of training again."""
    from src.pipeline import graph_stages

    space = FunctionalSpace(2, GRAPH_OPS, priors=True, kinds=("add", "attn"))
    archs = space.sample_distinct(5, random.Random(0))
    ranked = [(archs[0], 0.9), (archs[0], 0.9), (archs[1], 0.8), (archs[2], 0.8), (archs[3], 0.7), (archs[4], 0.6)]
    # seeds 2000, 2001: mean = val + 0.005
    trained = fake_graph_fits(monkeypatch, {archs[0]: 0.70, archs[1]: 0.75, archs[2]: 0.75, archs[3]: 0.74})
    cfg = compose_config("search", ["+task=cora", "graph.rerank.topk=4", "graph.rerank.seeds=2"])
    arch, score, extra = graph_stages.rerank(cfg, ranked, None, tmp_path)
    assert [a for a, _ in trained] == [archs[0]] * 2 + [archs[1]] * 2 + [archs[2]] * 2 + [archs[3]] * 2
    assert {s for _, s in trained} == {2000, 2001}
    assert arch == archs[1] and score == 0.8 and extra == {"rerank_rank": 2, "rerank_val_acc": pytest.approx(0.755)}
    saved = json.loads((tmp_path / "rerank.json").read_text())
    assert saved["chosen"] == 2 and [c["rank"] for c in saved["candidates"]] == [1, 2, 3, 4]
    trained.clear()
    assert graph_stages.rerank(cfg, ranked, None, tmp_path)[0] == archs[1] and trained == []


def test_nothing_left_to_fit_is_an_empty_iterator_a_caller_may_read_and_close():
    """``fit_children`` with no jobs (every child finished before): reading it to the end and
    closing it are both fine. Through the progress wrapper it raised AttributeError at the end
    (``closing`` called ``close()`` on a tuple iterator); no caller read past its own empty list."""
    from types import SimpleNamespace

    from src.pipeline import graph_stages

    fitted = graph_stages.fit_children(None, SimpleNamespace(graph=None), [])
    assert list(fitted) == []
    fitted.close()
    unread = graph_stages.fit_children(None, SimpleNamespace(graph=None), [])
    unread.close()
    assert next(unread, None) is None


@pytest.mark.slow  # the re-ranked choice written: tests/test_graph_stages.py; re-ranking through the command line:
# test_a_search_reading_out_with_the_last_layer_searches_identity_in_the_other_layers
def test_smoke_search_with_rerank_retrains_the_chosen_candidate(fixture_data, tmp_path):
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=cora", "budget=smoke", "hardware=cpu", "graph.rerank.topk=3",
               "graph.baselines=[]", data_dir=fixture_data, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rerank = json.loads((run_dir / "search" / "rerank.json").read_text())
    assert len(rerank["candidates"]) == 3
    assert len({json.dumps(c["arch"], sort_keys=True) for c in rerank["candidates"]}) == 3
    chosen = max(rerank["candidates"], key=lambda c: (c["val_acc"], -c["rank"]))
    assert rerank["chosen"] == chosen["rank"]
    best = yaml.safe_load((run_dir / "search" / "best_arch.yaml").read_text())
    assert best["rerank_rank"] == chosen["rank"]
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    assert results["arch"] == chosen["arch"] == Architecture.load(run_dir / "search" / "best_arch.yaml").to_dict()


def test_retrain_seeds_in_worker_processes_give_the_same_results(fixture_data, tmp_path, caplog):
    """``graph.retrain.workers=2`` trains the HPO trials and the seeds in two spawned processes:
    per-trial and per-seed results (history included) are those of training them one after the
    other in this process. The progress over them (a line at every finished child here) counts
    the children as they finish, in either process."""
    import logging
    import re

    from omegaconf import open_dict

    from src.data.planetoid import PlanetoidDataModule
    from src.pipeline.graph_stages import retrain

    dm = PlanetoidDataModule("cora", data_dir=str(fixture_data), cache_dir=str(tmp_path / "cache"), download=False)
    dm.setup()
    arch = Architecture.from_dict({"layers": [
        {"kind": "add", "q_src": 0, "q_op": "gcn", "k_src": 0, "k_op": "gat2"},
        {"kind": "attn", "q_src": 1, "q_op": "identity", "k_src": 0, "k_op": "sage", "v_src": 1, "v_op": "linear"}]})
    results = {}
    for workers in (1, 2):
        cfg = compose_config("search", ["+task=cora", "budget=smoke", "hardware=cpu",
                                        f"graph.retrain.workers={workers}", "graph.retrain.seeds=3",
                                        "graph.hpo.trials=3", "hardware.progress=true",
                                        "hardware.progress_every_s=0"])
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / f"out{workers}")
        caplog.clear()
        caplog.set_level(logging.INFO, logger="src.pipeline.common")
        results[workers] = retrain(cfg, arch, dm, tmp_path / f"run{workers}")
        for what in ("hpo: (\\d) / 3 trials", "retrain: (\\d) / 3 seeds"):
            counts = [int(m.group(1)) for r in caplog.records if (m := re.match(what, r.getMessage()))]
            # the first and second children's lines at least (a tick may repeat one); none after the last
            assert {1, 2} <= set(counts) and counts == sorted(counts) and max(counts) < 3, (what, counts)
        for seed in (0, 1, 2):
            assert (tmp_path / f"run{workers}" / "retrain" / f"seed_{seed}.json").exists()
    assert results[1]["per_seed"] == results[2]["per_seed"]
    assert results[1]["test_acc_mean"] == results[2]["test_acc_mean"]
    assert results[1]["hpo_trials"] == results[2]["hpo_trials"] and len(results[1]["hpo_trials"]) == 3
    assert [t["trial"] for t in results[1]["hpo_trials"]] == [0, 1, 2]
    assert len({json.dumps(t["hparams"], sort_keys=True) for t in results[1]["hpo_trials"]}) > 1
    histories = [json.loads((tmp_path / f"run{w}" / "retrain" / "seed_1.json").read_text())["history"] for w in (1, 2)]
    assert histories[0] == histories[1] and len(histories[0]) > 1
    # the seeds trained in worker processes keep the same models
    for seed in (0, 1, 2):
        kept = [torch.load(tmp_path / f"run{w}" / "retrain" / f"seed_{seed}" / "model.pt", weights_only=True)
                for w in (1, 2)]
        assert kept[0]["evaluation"] == kept[1]["evaluation"]
        assert all(torch.equal(v, kept[1]["state_dict"][k]) for k, v in kept[0]["state_dict"].items())
    assert len({s["val_acc"] for s in results[1]["per_seed"]} | {s["test_acc"] for s in results[1]["per_seed"]}) > 1


def test_process_map_keeps_order_and_propagates_errors():
    from src.utils.parallel import process_map, resolve_process_workers

    assert list(process_map(abs, [-3, 1, -2], 2)) == [3, 1, 2]
    with pytest.raises(TypeError):
        list(process_map(abs, [-1, "not a number", 2], 2))
    assert resolve_process_workers(3, "cpu") == 3 and resolve_process_workers("auto", "cuda") == 1
    assert 1 <= resolve_process_workers("auto", "cpu") <= 4


@pytest.mark.parametrize("workers", [1, 2])
def test_process_map_reports_each_item_that_finishes(workers):
    """``on_done`` (the graph stages' progress) is called once per item finished without error,
    in this process or in the workers."""
    from src.utils.parallel import process_map

    done = []
    assert list(process_map(abs, [-3, 1, -2], workers, on_done=lambda: done.append(1))) == [3, 1, 2]
    assert len(done) == 3
    done.clear()
    with pytest.raises(TypeError):
        list(process_map(abs, [-1, "not a number"], workers, on_done=lambda: done.append(1)))
    assert done == [1]


def test_process_map_stops_running_items_when_the_consumer_stops():
    """Ctrl-C or an error in the consumer closes the iterator: the items still running are
    stopped, not waited for (here two one-minute sleeps)."""
    import time

    from src.utils.parallel import process_map

    results = process_map(time.sleep, [0, 60, 60], 2)
    start = time.perf_counter()
    assert next(results) is None
    results.close()
    assert time.perf_counter() - start < 30


def test_hpo_trial_lines_show_the_epochs_a_capped_fit_trains(tmp_path, monkeypatch, caplog):
    """Under ``graph.retrain.epoch_cap`` a trial's line showed the drawn epochs (300) while its fit
    trained 10; it now says both. Uncapped draws are shown as they are."""
    import logging
    from types import SimpleNamespace

    from src.pipeline import graph_stages

    class Fitted:
        history: list = []

        def selected(self):
            return {"val_acc": 0.5, "test_acc": 0.5, "step": 1}

    monkeypatch.setattr(graph_stages, "fit_child", lambda *args, **kwargs: Fitted())
    dm = SimpleNamespace(graph=None, num_features=5, num_classes=3, multilabel=False, metric="accuracy")
    arch = Architecture.load(ROOT / "src/space/archs/gcn.yaml")
    caplog.set_level(logging.INFO, logger=graph_stages.__name__)
    cfg = compose_config("search", ["+task=cora", "graph.hpo.trials=2", "graph.retrain.epoch_cap=250",
                                    "graph.retrain.epochs=300", "graph.hpo.space.epochs=[200,300]"])
    graph_stages.hpo(cfg, arch, dm, tmp_path / "capped")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hpo: trial")]
    drawn = [t["hparams"]["epochs"] for t in json.loads((tmp_path / "capped" / "hpo.json").read_text())["trials"]]
    assert len(lines) == 2
    for line, epochs in zip(lines, drawn):
        shown = "'300 (capped at 250)'" if epochs == 300 else str(epochs)
        assert f"'epochs': {shown}" in line, (line, epochs)
    assert drawn[0] == 300  # trial 0: the defaults, capped


def test_graph_retrain_summarises_every_seed_and_resumes_only_what_is_missing(tmp_path, monkeypatch):
    """``graph_stages.retrain`` with the HPO: the best validation trial's settings are retrained
    (ties: the earlier trial); ``results.json`` holds the mean and sample std of every seed's
    selected test score; a re-run reuses the finished trials (``hpo.json``) and seeds
    (``seed_<s>.json``) and trains only the seed that is missing, to the same results."""
    import statistics
    from types import SimpleNamespace

    from src.pipeline import graph_stages

    # trials train seeds 1000.., retrain seeds 0..: trials 0 and 2 tie on validation
    val = {1000: 0.80, 1001: 0.70, 1002: 0.80, 0: 0.75, 1: 0.78, 2: 0.71}
    test = {0: 0.70, 1: 0.64, 2: 0.79}
    trained = []

    class Fitted:
        history: list = []

        def __init__(self, seed):
            self.seed = seed

        def selected(self):
            return {"val_acc": val[self.seed], "test_acc": test.get(self.seed, 0.0), "step": 10 + self.seed}

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        trained.append((seed, hp))
        return Fitted(seed)

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    cfg = compose_config("search", ["+task=cora", "graph.retrain.seeds=3", "graph.hpo.trials=3"])
    dm = SimpleNamespace(graph=None, num_features=5, num_classes=3, multilabel=False, metric="accuracy")
    arch = Architecture.load(ROOT / "src/space/archs/gcn.yaml")
    results = graph_stages.retrain(cfg, arch, dm, tmp_path)
    assert [seed for seed, _ in trained] == [1000, 1001, 1002, 0, 1, 2]
    trials = results["hpo_trials"]
    assert trials[0]["hparams"] != trials[2]["hparams"]
    assert results["hparams"] == trials[0]["hparams"] and all(hp == trials[0]["hparams"] for _, hp in trained[3:])
    assert [(s["seed"], s["val_acc"], s["test_acc"], s["step"]) for s in results["per_seed"]] == [
        (0, 0.75, 0.70, 10), (1, 0.78, 0.64, 11), (2, 0.71, 0.79, 12)]
    assert results["test_acc_mean"] == pytest.approx(statistics.fmean(test.values()))
    assert results["test_acc_std"] == pytest.approx(statistics.stdev(test.values()))
    assert results["val_acc_mean"] == pytest.approx((0.75 + 0.78 + 0.71) / 3)
    assert json.loads((tmp_path / "retrain" / "results.json").read_text()) == json.loads(json.dumps(results))
    (tmp_path / "retrain" / "seed_1.json").unlink()
    trained.clear()
    again = graph_stages.retrain(cfg, arch, dm, tmp_path)
    assert trained == [(1, trials[0]["hparams"])]
    assert again == results


def _intra_op_threads(_):
    return torch.get_num_threads()


def test_process_map_workers_take_this_processs_intra_op_thread_count():
    from src.utils.parallel import process_map

    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # not a fresh process's default on this machine
    try:
        assert list(process_map(_intra_op_threads, [0, 1], 2)) == [3, 3]
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow  # the preprocessing: tests/test_graph_file.py::test_another_graph_is_prepared_as_the_file_was
def test_predict_on_another_graph_file_applies_the_tasks_preprocessing(smoke_run, fixture_data, tmp_path):
    """``src.predict --graph FILE``: the Cora fixture's raw features (PyG's reader, no
    normalisation) and edges written to a file, without labels or masks, are classified as the run's
    own graph is (Planetoid's row normalisation applied, the same probabilities), the label and
    split columns left empty; the run's data are not read. A file of the wrong width, a text
    option, and a file lacking ``x`` are one line each."""
    import shutil

    import numpy as np
    from torch_geometric.datasets import Planetoid

    tmp, run_dir, _ = smoke_run
    shutil.copytree(fixture_data / "planetoid" / "Cora" / "raw", tmp_path / "pyg" / "Cora" / "raw")
    raw = Planetoid(str(tmp_path / "pyg"), "Cora")[0]
    assert not torch.allclose(raw.x.sum(1), torch.ones(raw.num_nodes))  # normalising matters
    graph = tmp_path / "new.npz"
    np.savez(graph, x=raw.x.numpy(), edge_index=raw.edge_index.numpy())
    own = cli("src.predict", str(run_dir), "--jsonl", data_dir=fixture_data, tmp=tmp)
    new = cli("src.predict", str(run_dir), "--jsonl", "--graph", str(graph), data_dir=tmp_path / "nowhere", tmp=tmp)
    assert own.returncode == 0 and new.returncode == 0, (own.stderr[-2000:], new.stderr[-2000:])
    assert own.stderr.splitlines()[0] == new.stderr.splitlines()[0]  # the same model chosen
    ours, theirs = ([json.loads(line) for line in p.stdout.splitlines()] for p in (new, own))
    assert len(ours) == len(theirs) == raw.num_nodes
    for a, b in zip(ours, theirs):
        assert (a["node"], a["prediction"], a["label"], a["split"]) == (b["node"], b["prediction"], None, "")
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)
    csv_out = cli("src.predict", str(run_dir), "--graph", str(graph), data_dir=tmp_path / "nowhere", tmp=tmp)
    assert csv_out.stdout.splitlines()[1].startswith("0,,,")
    np.savez(tmp_path / "narrow.npz", x=raw.x.numpy()[:, :-1], edge_index=raw.edge_index.numpy())
    np.savez(tmp_path / "no_x.npz", edge_index=raw.edge_index.numpy())
    for args, line in (
            (["--graph", str(tmp_path / "narrow.npz")],
             f"error: {tmp_path / 'narrow.npz'}: 'x' has {raw.num_features - 1} features per node; the run's models "
             f"take {raw.num_features} (the features of its training data)"),
            (["--graph", str(tmp_path / "no_x.npz")], f"error: {tmp_path / 'no_x.npz'}: no 'x' array; expected x, "
                                                      "edge_index (found: edge_index)"),
            (["--graph", str(graph), "some text"], f"error: {run_dir}: a graph run's models classify the nodes of its "
                                                   "graph; give no texts")):
        proc = cli("src.predict", str(run_dir), *args, data_dir=tmp_path / "nowhere", tmp=tmp)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == line, proc.stderr[-2000:]


def test_a_search_reading_out_with_the_last_layer_searches_identity_in_the_other_layers(fixture_data, tmp_path):
    """``graph.retrain.readout=last`` maps a child's last layer to the classes, which ``identity``
    cannot: a Cora search stopped at its ninth re-ranked candidate ("layer 1 q: identity cannot map
    node 1 (width 64) to width 7"), then such searches were refused. The space now leaves identity
    out of the last layer alone: every candidate scored, re-ranked and retrained has none there,
    while the first layer still takes it."""
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=cora", "budget=smoke", "hardware=cpu", "graph.retrain.readout=last",
               "graph.space.ops=[zero,identity,gcn]", "graph.rerank.topk=4", "graph.baselines=[]",
               data_dir=fixture_data, tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "last_layer_ops=('zero', 'gcn')" in proc.stderr + proc.stdout
    population = [Architecture.from_dict(json.loads(line)["arch"])
                  for line in (run_dir / "search" / "population.jsonl").read_text().splitlines()]
    assert len(population) == 12
    last_ops = {op for a in population for op in (a[1].q_op, a[1].k_op, a[1].v_op)}
    first_ops = {op for a in population for op in (a[0].q_op, a[0].k_op, a[0].v_op)}
    assert "identity" not in last_ops and "gcn" in last_ops and "identity" in first_ops
    rerank = json.loads((run_dir / "search" / "rerank.json").read_text())
    assert len(rerank["candidates"]) == 4 and all(c["val_acc"] > 0 for c in rerank["candidates"])
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    assert results["hparams"]["readout"] == "last" and len(results["per_seed"]) == 2
