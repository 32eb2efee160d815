"""The graph stages (``src/pipeline/graph_stages.py``) in this process, on the tiny Planetoid and PPI
fixtures or with stand-in children: what each stage trains, with which seeds and settings, what its
result files record, and what a re-run reuses. The command-line runs of tests/test_graph_pipeline.py
check that the stages work together; these check the values they leave."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from omegaconf import open_dict

from src.space import Architecture, FunctionalSpace
from tests.conftest import compose_config
from tests.helpers import ROOT, fake_graph_fits, write_tiny_planetoid, write_tiny_ppi

GRAPH_OPS = ("zero", "identity", "gcn", "sage", "gat1", "gat2", "linear", "sgc")
GCN = ROOT / "src" / "space" / "archs" / "gcn.yaml"


@pytest.fixture(scope="module")
def cora(tmp_path_factory):
    """The tiny Cora fixture's DataModule, set up (one full-graph batch)."""
    from src.data.planetoid import PlanetoidDataModule

    root = tmp_path_factory.mktemp("cora")
    dm = PlanetoidDataModule("cora", data_dir=str(write_tiny_planetoid(root / "data")), cache_dir=str(root / "cache"),
                             download=False)
    dm.setup()
    return dm


def _cfg(tmp_path: Path, *overrides: str, task: str = "cora"):
    cfg = compose_config("search", [f"+task={task}", "budget=smoke", "hardware=cpu", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "out")
    return cfg


class _Child:
    """A stand-in for a trained :class:`GraphChildModule`: its selected evaluation and history."""

    def __init__(self, selected: dict, history: list | None = None):
        self._selected, self.history = selected, history or []

    def selected(self) -> dict:
        return self._selected


def _metric_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# ---- supernet ----------------------------------------------------------------------------------

# a resumed supernet reuses its folder on purpose, as the pipeline says to Lightning (src.pipeline.run)
@pytest.mark.filterwarnings(r"ignore:Checkpoint directory .* exists and is not empty")
def test_a_finished_supernet_is_reloaded_and_an_unfinished_one_resumes_at_its_checkpoint(cora, tmp_path, monkeypatch):
    """``train_supernet`` trains ``graph.supernet.steps`` steps (``DONE`` says so) with the
    validation monitor on (``monitor_archs``); a second call with ``DONE`` there reloads the trained
    weights without a Trainer (a resumed run searched with them); without ``DONE`` it resumes from
    ``last.ckpt`` at its step, ``metrics.csv`` keeping the rows logged before it once each."""
    from src.pipeline import graph_stages
    from src.pipeline.config import search_space

    cfg = _cfg(tmp_path, "graph.supernet.steps=4", "graph.supernet.steps_per_epoch=2")
    space = search_space(cfg)
    out = tmp_path / "supernet"
    trained = graph_stages.train_supernet(cfg, cora, space, tmp_path)
    assert (out / "DONE").read_text() == "4\n"
    weights = {k: v.clone() for k, v in trained.state_dict().items()}
    torch.manual_seed(cfg.seed)
    initial = graph_stages.build_supernet(cfg, cora, space).state_dict()
    assert any(not torch.equal(v, initial[k]) for k, v in weights.items())  # it did train
    rows = _metric_rows(out / "metrics.csv")
    assert [r["step"] for r in rows if r.get("val/score_mean")] == ["1", "3"]  # one monitor per epoch

    def no_trainer(*args, **kwargs):
        raise AssertionError("a finished supernet was trained again")

    with monkeypatch.context() as m:
        m.setattr(graph_stages, "make_trainer", no_trainer)
        reloaded = graph_stages.train_supernet(cfg, cora, space, tmp_path)
    assert all(torch.equal(v, weights[k]) for k, v in reloaded.state_dict().items())

    (out / "DONE").unlink()  # as if stopped after its checkpoint: resumed there, up to the new step count
    cfg.graph.supernet.steps = 8
    graph_stages.train_supernet(cfg, cora, space, tmp_path)
    assert (out / "DONE").read_text() == "8\n"
    steps = [int(r["step"]) for r in _metric_rows(out / "metrics.csv") if r.get("train/loss")]
    assert steps == [1, 3, 5, 7]  # the first two epochs' rows kept, the resumed epochs' added, none twice


# ---- search --------------------------------------------------------------------------------------

def test_the_search_scores_the_validation_nodes_and_records_its_best_or_the_reranked_choice(cora, tmp_path,
                                                                                           monkeypatch):
    """``search`` asks the DataModule for its validation batches only, writes the best candidate
    (by supernet validation score) to ``best_arch.yaml`` with that score, and trains nothing with
    ``graph.rerank.topk=0``; with ``topk=2`` the re-ranked choice (here the second candidate, better
    from scratch) is returned and written, with its supernet score and ``rerank_rank`` /
    ``rerank_val_acc``."""
    from src.pipeline import graph_stages
    from src.pipeline.config import search_space
    from src.pipeline.ranking import distinct_ranked

    asked = []

    class Recording:
        def __getattr__(self, name):
            return getattr(cora, name)

        def split_batches(self, split):
            asked.append(split)
            return cora.split_batches(split)

    fits = []
    monkeypatch.setattr(graph_stages, "fit_child", lambda cfg, arch, *a, **k: fits.append(arch) or pytest.fail("fit"))
    cfg = _cfg(tmp_path)
    space = search_space(cfg)
    torch.manual_seed(0)
    model = graph_stages.build_supernet(cfg, cora, space)
    best, score = graph_stages.search(cfg, model, Recording(), space, tmp_path / "plain")
    assert asked == ["val"] and fits == []
    ranked = distinct_ranked(tmp_path / "plain" / "search" / "population.jsonl")
    assert (best, score) == ranked[0]
    written = yaml.safe_load((tmp_path / "plain" / "search" / "best_arch.yaml").read_text())
    assert written == {"val_acc_supernet": score, **best.to_dict()}

    second = ranked[1][0]
    fake_graph_fits(monkeypatch, {a: 0.9 if a == second else 0.1 for a, _ in ranked})
    cfg.graph.rerank.topk, cfg.graph.rerank.seeds = 2, 1
    best, score = graph_stages.search(cfg, model, cora, space, tmp_path / "reranked")
    assert (best, score) == (second, ranked[0][1])  # re-ranking's choice, the best score the search saw
    written = yaml.safe_load((tmp_path / "reranked" / "search" / "best_arch.yaml").read_text())
    assert written == {"val_acc_supernet": ranked[1][1], "rerank_rank": 2, "rerank_val_acc": 0.9, **second.to_dict()}


def test_rerank_resumes_after_an_interruption_and_retrains_from_where_the_ranking_changed(tmp_path, monkeypatch):
    """``rerank.json`` is rewritten as each candidate finishes: a re-run after a failure trains only
    the candidates left; a re-run with another ranking reuses the finished candidates up to the
    first that differs and trains the rest again (none of the old entries kept after it). The
    final file names the chosen rank and the settings every candidate trained with."""
    from src.pipeline import graph_stages

    archs = FunctionalSpace(2, GRAPH_OPS, priors=True, kinds=("add", "attn")).sample_distinct(4, random.Random(0))
    ranked = [(a, 0.9 - 0.1 * i) for i, a in enumerate(archs[:3])]
    cfg = compose_config("search", ["+task=cora", "graph.rerank.topk=3", "graph.rerank.seeds=1"])
    fake_graph_fits(monkeypatch, {archs[0]: 0.5, archs[1]: 0.6})  # the third candidate fails (KeyError)
    with pytest.raises(KeyError):
        graph_stages.rerank(cfg, ranked, None, tmp_path)
    saved = json.loads((tmp_path / "rerank.json").read_text())
    assert [c["arch"] for c in saved["candidates"]] == [archs[0].to_dict(), archs[1].to_dict()]
    assert "chosen" not in saved

    scores = {archs[0]: 0.5, archs[1]: 0.6, archs[2]: 0.55, archs[3]: 0.7}
    trained = fake_graph_fits(monkeypatch, scores)
    assert graph_stages.rerank(cfg, ranked, None, tmp_path) == (archs[1], 0.8, {"rerank_rank": 2,
                                                                                "rerank_val_acc": 0.6})
    assert trained == [(archs[2], 2000)]
    saved = json.loads((tmp_path / "rerank.json").read_text())
    assert saved["chosen"] == 2 and saved["hparams"] == graph_stages._child_settings(cfg, None)
    assert [c["val_acc"] for c in saved["candidates"]] == [0.5, 0.6, 0.55]

    trained.clear()
    changed = [ranked[0], (archs[3], 0.85), ranked[1]]
    assert graph_stages.rerank(cfg, changed, None, tmp_path) == (archs[3], 0.85, {"rerank_rank": 2,
                                                                                  "rerank_val_acc": 0.7})
    assert trained == [(archs[3], 2000), (archs[1], 2000)]
    saved = json.loads((tmp_path / "rerank.json").read_text())
    assert [c["arch"] for c in saved["candidates"]] == [a.to_dict() for a in (archs[0], archs[3], archs[1])]
    assert [c["rank"] for c in saved["candidates"]] == [1, 2, 3]


# ---- HPO ---------------------------------------------------------------------------------------

def _fake_trials(monkeypatch, fail_at: int | None = None) -> list:
    """Stand-in children scored by seed (validation ``seed % 7 / 10``, test ``0.05`` lower, step
    ``seed``); ``fail_at``: that seed raises. Returns the list of ``(seed, hp, model_file)`` fitted."""
    from src.pipeline import graph_stages

    fitted = []

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        if seed == fail_at:
            raise RuntimeError("stopped")
        fitted.append((seed, hp, model_file))
        val = seed % 7 / 10
        return _Child({"val_acc": val, "test_acc": val - 0.05, "step": seed}, [{"step": seed}])

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    return fitted


def test_hpo_draws_from_the_runs_seed_scores_trials_on_validation_and_resumes_the_finished_ones(tmp_path,
                                                                                                 monkeypatch):
    """Trial ``t`` trains seed ``seed + 1000 + t`` (no model kept) and records that fit's selected
    validation score and step; the draws follow the run's seed (the same again, others for another
    seed); ``hpo.json`` is rewritten as each trial finishes, so a re-run after a failure trains only
    the trials left, and a re-run with fewer trials keeps the first ones only."""
    from src.pipeline import graph_stages

    arch = Architecture.load(GCN)
    dm = SimpleNamespace(graph=None)
    cfg = compose_config("search", ["+task=cora", "seed=3", "graph.hpo.trials=4"])
    fitted = _fake_trials(monkeypatch, fail_at=1005)
    with pytest.raises(RuntimeError, match="stopped"):
        graph_stages.hpo(cfg, arch, dm, tmp_path / "a")
    assert [t["trial"] for t in json.loads((tmp_path / "a" / "hpo.json").read_text())["trials"]] == [0, 1]
    fitted = _fake_trials(monkeypatch)
    hp, trials = graph_stages.hpo(cfg, arch, dm, tmp_path / "a")
    assert [seed for seed, _, _ in fitted] == [1005, 1006]  # the two trials left
    assert all(model_file is None for _, _, model_file in fitted)
    assert [(t["trial"], t["seed"], t["val_acc"], t["step"]) for t in trials] == [
        (t, 1003 + t, (1003 + t) % 7 / 10, 1003 + t) for t in range(4)]
    assert hp == trials[3]["hparams"]  # seed 1006: the best validation score (0.5)
    saved = json.loads((tmp_path / "a" / "hpo.json").read_text())
    assert saved["chosen"] == trials[3] and saved["trials"] == trials

    again = graph_stages.hpo(cfg, arch, dm, tmp_path / "b")[1]  # a fresh folder, the same seed
    assert [t["hparams"] for t in again] == [t["hparams"] for t in trials]
    other = graph_stages.hpo(compose_config("search", ["+task=cora", "seed=0", "graph.hpo.trials=4"]), arch, dm,
                             tmp_path / "c")[1]
    assert [t["hparams"] for t in other[1:]] != [t["hparams"] for t in trials[1:]]

    fitted.clear()
    cfg.graph.hpo.trials = 2
    hp, fewer = graph_stages.hpo(cfg, arch, dm, tmp_path / "a")
    assert fitted == [] and fewer == trials[:2] and hp == trials[1]["hparams"]


# ---- retrain and baselines -----------------------------------------------------------------------

def test_retrain_with_given_settings_trains_the_runs_seeds_and_records_them_and_its_protocol(tmp_path, monkeypatch):
    """``retrain`` with ``hparams`` (a hand-designed model's) runs no HPO even with
    ``graph.hpo.trials`` set: it trains seeds ``seed .. seed + graph.retrain.seeds - 1`` with the
    retrain settings updated by ``hparams``, on the DataModule itself (one worker), each keeping its
    model in ``<folder>/seed_<s>/model.pt``; ``seed_<s>.json`` holds the selected evaluation and the
    history; ``results.json`` names the source of the settings and the whole protocol."""
    from src.pipeline import graph_stages
    from src.pipeline.common import lower_precision

    calls = []

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        calls.append((dm, hp, seed, model_file))
        return _Child({"val_acc": 0.5 + seed / 100, "test_acc": 0.4 + seed / 100, "step": seed},
                      [{"step": seed, "val_acc": 0.1}, {"step": 2 * seed, "val_acc": 0.2}])

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    cfg = compose_config("search", ["+task=cora", "seed=3", "graph.retrain.seeds=2", "graph.hpo.trials=3",
                                    "graph.retrain.epoch_cap=50", "graph.retrain.eval_every=5",
                                    "graph.retrain.patience=20", "graph.retrain.workers=1"])
    dm = SimpleNamespace(graph=None, num_features=5, num_classes=3, multilabel=False, metric="accuracy")
    arch = Architecture.load(GCN)
    results = graph_stages.retrain(cfg, arch, dm, tmp_path, hparams={"hidden": 8, "lr": 0.05}, folder="baselines/x",
                                   source="somewhere")
    expected = {**graph_stages._child_settings(cfg, None), "hidden": 8, "lr": 0.05}
    out = tmp_path / "baselines" / "x"
    assert [(d, hp, seed, model_file) for d, hp, seed, model_file in calls] == [
        (dm, expected, s, out / f"seed_{s}" / "model.pt") for s in (3, 4)]
    assert all(d is dm for d, *_ in calls)
    assert results["seeds"] == [3, 4] and results["hpo_trials"] == [] and not (out / "hpo.json").exists()
    assert results["hparams"] == expected and results["hparams_source"] == "somewhere"
    assert results["protocol"] == {**expected, "epoch_cap": 50, "eval_every": 5, "patience": 20, "task": "cora",
                                   "num_features": 5, "num_classes": 3, "lower_precision": lower_precision(cfg)}
    assert json.loads((out / "seed_4.json").read_text()) == {
        "seed": 4, "val_acc": 0.54, "test_acc": 0.44, "step": 4,
        "history": [{"step": 4, "val_acc": 0.1}, {"step": 8, "val_acc": 0.2}], "hparams": expected}
    assert json.loads((out / "results.json").read_text()) == results
    assert graph_stages.retrain(cfg, arch, dm, tmp_path / "f", hparams={})["hparams_source"] == \
        "the architecture file's hparams"
    calls.clear()
    cfg.graph.hpo.trials = 0  # no HPO: the retrain settings as they are, no trial trained
    plain = graph_stages.retrain(cfg, arch, dm, tmp_path / "g")
    assert [seed for _, _, seed, _ in calls] == [3, 4] and plain["hpo_trials"] == []
    assert plain["hparams"] == graph_stages._child_settings(cfg, None) and plain["hparams_source"] == "graph.retrain"
    # one trial would be the retrain settings themselves (trial 0): no search either, as the config says
    # (it trained that trial once more with seed + 1000 and recorded a "random search" of 1 trial)
    calls.clear()
    cfg.graph.hpo.trials = 1
    one = graph_stages.retrain(cfg, arch, dm, tmp_path / "h")
    assert [seed for _, _, seed, _ in calls] == [3, 4] and not list((tmp_path / "h").rglob("hpo.json"))
    assert (one["hparams_source"], one["hpo_trials"], one["hparams"]) == ("graph.retrain", [], plain["hparams"])


def test_a_graph_seed_without_a_test_score_leaves_no_record_and_a_run_again_trains_it(tmp_path, monkeypatch):
    """A seed whose selected evaluation has no test score (NaN: a broken evaluation split) is refused,
    naming it, before its ``seed_<s>.json`` is written; the seeds before it keep theirs, and a run again
    trains only that seed (its record was read back as done, so the run stopped at the guard for ever)."""
    import math

    from src.pipeline import graph_stages

    trained, broken = [], {4}

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        trained.append(seed)
        return _Child({"val_acc": 0.5, "test_acc": math.nan if seed in broken else 0.4, "step": seed})

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    cfg = compose_config("search", ["+task=cora", "seed=3", "graph.retrain.seeds=3", "graph.hpo.trials=0",
                                    "graph.retrain.workers=1"])
    dm = SimpleNamespace(graph=None, num_features=5, num_classes=3, multilabel=False, metric="accuracy")
    with pytest.raises(RuntimeError, match=r"^retrain produced no test accuracy \(seed 4\)$"):
        graph_stages.retrain(cfg, Architecture.load(GCN), dm, tmp_path)
    assert trained == [3, 4] and sorted(p.name for p in (tmp_path / "retrain").glob("*.json")) == ["seed_3.json"]
    broken.clear()
    results = graph_stages.retrain(cfg, Architecture.load(GCN), dm, tmp_path)
    assert trained == [3, 4, 4, 5] and results["test_acc_mean"] == pytest.approx(0.4)


def test_baselines_retrain_each_named_architecture_with_its_files_settings_in_its_own_folder(tmp_path, monkeypatch):
    """Every ``graph.baselines`` entry is read for the run's task (PubMed's GAT: its own model),
    validated against the task's space, retrained with its file's settings (no HPO) in
    ``baselines/<name>/``, and summarised by its results' test mean / std, validation mean and
    settings."""
    from src.pipeline import graph_stages
    from src.pipeline.config import read_arch
    from src.utils.errors import AutoAttendError

    fitted = []

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        fitted.append((arch, hp, seed, out))
        return _Child({"val_acc": 0.5, "test_acc": 0.25 + seed / 10, "step": 1})

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    cfg = compose_config("search", ["+task=pubmed", "graph.retrain.seeds=2", "graph.hpo.trials=2",
                                    "graph.baselines=[gcn,gat]", "graph.retrain.workers=1"])
    dm = SimpleNamespace(graph=None, num_features=5, num_classes=3, multilabel=False, metric="accuracy")
    summary = graph_stages.baselines(cfg, dm, tmp_path)
    files = {name: read_arch(name, "pubmed") for name in ("gcn", "gat")}
    assert files["gat"].arch != read_arch("gat").arch  # PubMed's GAT
    assert fitted == [(files[n].arch, graph_stages._child_settings(cfg, files[n].hparams), s, tmp_path / "baselines" / n)
                      for n in ("gcn", "gat") for s in (0, 1)]
    assert list(summary) == ["gcn", "gat"]
    for name in ("gcn", "gat"):
        results = json.loads((tmp_path / "baselines" / name / "results.json").read_text())
        assert summary[name] == {k: results[k] for k in ("test_acc_mean", "test_acc_std", "val_acc_mean", "seeds", "hparams")}
        assert results["test_acc_mean"] == pytest.approx(0.3)
    assert not (tmp_path / "retrain").exists()
    cfg.graph.space.ops = ["zero", "identity", "gcn"]  # no gat8: the GAT baseline lies outside the space
    with pytest.raises(AutoAttendError, match="gat8"):
        graph_stages.baselines(cfg, dm, tmp_path / "narrow")


# ---- one child -----------------------------------------------------------------------------------

def test_a_full_graph_child_trains_its_capped_epochs_with_its_settings_and_its_own_seed(cora, tmp_path, monkeypatch):
    """``fit_child`` on a full graph runs the plain loop for ``min(epochs, graph.retrain.epoch_cap)``
    epochs, evaluating every ``graph.retrain.eval_every`` epochs with ``graph.retrain.patience``, an
    optimiser with the trial's ``lr`` and ``weight_decay``, and the weights ``seed`` draws (the same
    seed the same, another seed others)."""
    from src.lit.graph_modules import GraphChildModule
    from src.pipeline import graph_stages

    seen = []

    def loop(self, batch, epochs, every, patience):
        seen.append((epochs, every, patience, self.hparams.lr, self.hparams.weight_decay,
                     {k: v.clone() for k, v in self.model.state_dict().items()}))
        self.history.append({"step": 1, "val_acc": 0.5, "test_acc": 0.5})
        return self.history

    monkeypatch.setattr(GraphChildModule, "fit_full_batch", loop)
    cfg = _cfg(tmp_path, "graph.retrain.epoch_cap=7", "graph.retrain.eval_every=3", "graph.retrain.patience=4")
    hp = {**graph_stages._child_settings(cfg, None), "lr": 0.123, "weight_decay": 0.0042}
    arch = Architecture.load(GCN)
    for epochs, seed in ((9, 0), (5, 0), (9, 1)):
        graph_stages.fit_child(cfg, arch, cora, {**hp, "epochs": epochs}, seed, tmp_path, "child")
    assert [s[:5] for s in seen] == [(7, 3, 4, 0.123, 0.0042), (5, 3, 4, 0.123, 0.0042), (7, 3, 4, 0.123, 0.0042)]
    assert all(torch.equal(v, seen[1][5][k]) for k, v in seen[0][5].items())
    assert any(not torch.equal(v, seen[2][5][k]) for k, v in seen[0][5].items())


def test_a_child_trained_through_the_trainer_validates_every_eval_every_epochs_and_at_a_short_fits_end(tmp_path):
    """Without a full graph (PPI) ``fit_child`` trains through a Trainer for the capped epochs,
    validating every ``eval_every`` epochs, but at least once: a fit shorter than ``eval_every``
    validates at its last epoch (else it had no evaluation to select). Its training graphs are
    shuffled with the child's seed."""
    from src.data.ppi import PPIDataModule
    from src.pipeline import graph_stages

    dm = PPIDataModule(data_dir=str(write_tiny_ppi(tmp_path / "d")), cache_dir=str(tmp_path / "cache"),
                       download=False)
    dm.setup()
    loaders = []

    class Recording:
        def __getattr__(self, name):
            return getattr(dm, name)

        def train_loader(self, **kwargs):
            loaders.append(kwargs)
            return dm.train_loader(**kwargs)

    cfg = _cfg(tmp_path, "graph.retrain.epoch_cap=4", "graph.retrain.eval_every=3", task="ppi")
    hp = {**graph_stages._child_settings(cfg, None), "hidden": 8, "epochs": 300}
    arch = Architecture.load(GCN)
    steps = len(dm.train_loader())  # optimizer steps per epoch
    child = graph_stages.fit_child(cfg, arch, Recording(), hp, 5, tmp_path, "capped")
    assert [e["step"] for e in child.history] == [3 * steps]  # epochs 1-4, validated after the third
    assert loaders == [{"seed": 5}]
    short = graph_stages.fit_child(cfg, arch, dm, {**hp, "epochs": 2}, 5, tmp_path, "short")
    assert [e["step"] for e in short.history] == [2 * steps]


def test_a_child_fit_applies_the_jobs_kernels_and_precision_as_in_a_fresh_worker(monkeypatch):
    """The graph children's worker processes (``graph.retrain.workers``) start fresh: a job's
    ``hardware.kernels`` and ``hardware.matmul_precision`` were not applied there, so they trained with
    backend ``auto`` and precision ``highest`` whatever the job asked (sweep-independence walk)."""
    from src.models import cpu_kernels
    from src.pipeline import graph_stages
    from src.pipeline.common import set_float32_precision

    seen = []

    class Fitted:
        history: list = []

        def selected(self) -> dict:
            return {}

    def fit_child(cfg, arch, dm, hp, seed, out, name, model_file=None):
        seen.append((cpu_kernels.get_backend(), torch.get_float32_matmul_precision()))
        return Fitted()

    monkeypatch.setattr(graph_stages, "fit_child", fit_child)
    cfg = compose_config("search", ["+task=cora", "hardware.kernels=torch", "hardware.matmul_precision=medium"])
    backend = cpu_kernels.get_backend()
    cpu_kernels.set_backend("auto")  # a fresh process's
    set_float32_precision(None)
    try:
        graph_stages._fit_job((cfg, None, None, {}, 0, None, "seed_0", False))
    finally:
        cpu_kernels.set_backend(backend)
        set_float32_precision(None)
    assert seen == [("torch", "medium")]
