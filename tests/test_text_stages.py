"""The text stages (``src/pipeline/stages.py``) in this process, with a stand-in Trainer (or child)
on a few random token sequences (mutation audit 2026-12-07): which settings each stage hands on,
the records it writes and the refusals it says. The command-line runs of tests/test_pipeline.py
check that the stages train together; these check what they are given."""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace

import pytest
import torch
import yaml

from src.pipeline import stages
from src.space import Architecture, FunctionalSpace
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import ROOT

SST5 = ROOT / "src" / "space" / "archs" / "published_sst5.yaml"


def _dm(n_train: int = 50, n_val: int = 12, n_test: int = 10) -> SimpleNamespace:
    """A stand-in text DataModule: random token sequences of 1-11 tokens over a vocabulary of 30."""
    g = torch.Generator().manual_seed(0)

    def split(n):
        return [(torch.randint(1, 30, (int(k),), generator=g), i % 2) for i, k in
                enumerate(torch.randint(1, 12, (n,), generator=g))]

    return SimpleNamespace(embeddings=torch.randn(30, 8, generator=g), num_classes=2, train_set=split(n_train),
                           val_set=split(n_val), test_set=split(n_test),
                           text_encoder=lambda: SimpleNamespace(to_dict=lambda: {"tokenizer": "words", "vocab": 30}))


class _Trainer:
    """A stand-in for the Trainer :func:`make_trainer` builds: records its settings and the fit."""

    def __init__(self, name, **kwargs):
        self.name, self.kwargs, self.fits, self.global_step = name, kwargs, [], 8

    def fit(self, module, train, val, ckpt_path=None):
        self.fits.append(SimpleNamespace(module=module, train=train, val=val, ckpt_path=ckpt_path))


@pytest.fixture
def trainers(monkeypatch) -> list:
    made: list = []

    def make_trainer(cfg, run_dir, name, keep_metrics_below=None, label=None, **kwargs):
        made.append(_Trainer(name, run_dir=run_dir, keep_metrics_below=keep_metrics_below, label=label, **kwargs))
        return made[-1]

    monkeypatch.setattr(stages, "make_trainer", make_trainer)
    return made


def _every_s(trainer) -> float | None:
    (checkpoint,) = [c for c in trainer.kwargs["callbacks"] if hasattr(c, "every_s")]
    return checkpoint.every_s


# ---------------------------------------------------------------------------------- small helpers


def test_checkpoint_minutes_become_seconds_and_zero_is_every_chance():
    node = compose_config("search", ["+task=sst2"]).supernet
    for minutes, seconds in ((None, None), (0, 0.0), (2, 120.0), (0.5, 30.0)):
        node.checkpoint_every_min = minutes
        assert stages.checkpoint_every_s(node) == seconds


def test_an_explicit_subset_wins_over_the_task_default_which_wins_over_all():
    yahoo = compose_config("search", ["+task=yahoo"])
    assert stages.subset_or_task_default(None, yahoo, "supernet_train_subset") == 100000
    assert stages.subset_or_task_default(None, yahoo, "search_val_subset") == 10000
    assert stages.subset_or_task_default(64, yahoo, "supernet_train_subset") == 64
    assert stages.subset_or_task_default(None, compose_config("search", ["+task=sst2"]), "search_val_subset") is None


def test_the_memory_check_reads_each_stages_own_batch_width_and_recompute(monkeypatch):
    """The retrain's batch is refused for the retrain's batch_size, dim and recompute (not the
    supernet's); without the machine's memory or the documents' lengths nothing is refused."""
    import src.utils.memory
    from src.models.text import worst_batch_positions

    lengths = torch.tensor([100_000] * 200 + [50] * 1000)
    dm = SimpleNamespace(train_set=SimpleNamespace(lengths=lengths))
    cfg = compose_config("search", ["+task=yahoo", "data.max_len=100000", "hardware=cpu", "retrain.batch_size=64",
                                    "retrain.dim=32", "retrain.recompute=true"])
    need = worst_batch_positions(lengths, 64, 64, 32) * 3 * 32 * stages.RECOMPUTE_BYTES_FLOOR
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: need)
    stages.check_batch_memory(cfg, dm, {"retrain": 3})  # exactly the recomputed floor: not refused
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: need - 1)
    with pytest.raises(AutoAttendError, match=r"^retrain.batch_size=64: .* \(3 layers x 32 channels\), more than this "
                                              r"machine's .*: lower data.max_len or retrain.batch_size$"):
        stages.check_batch_memory(cfg, dm, {"retrain": 3})
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: None)
    stages.check_batch_memory(cfg, dm, {"retrain": 3, "supernet": 24})
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: 1000)
    stages.check_batch_memory(cfg, SimpleNamespace(train_set=[]), {"retrain": 3})  # a dataset without lengths
    monkeypatch.setattr(stages, "device_of", lambda cfg: torch.device("cuda"))
    stages.check_batch_memory(cfg, dm, {"retrain": 3})  # on a GPU the host's memory does not bound a batch


# ---------------------------------------------------------------------------------- the supernet


def test_the_supernet_is_built_with_its_nodes_settings(monkeypatch):
    built = []
    monkeypatch.setattr(stages, "TextClassifier", SimpleNamespace(supernet=lambda *a, **k: built.append((a, k))))
    cfg = compose_config("search", ["+task=sst2", "supernet.dim=24", "supernet.heads=3", "supernet.dropout=0.2",
                                    "supernet.attn_dropout=0.3", "space.sharing=none", "data.freeze_embeddings=false",
                                    "data.window=16", "data.stride=8"])
    dm, space = _dm(), FunctionalSpace(3)
    stages.build_supernet(cfg, dm, space)
    ((args, kwargs),) = built
    assert args == (dm.embeddings, 2, space)
    assert kwargs == {"dim": 24, "heads": 3, "dropout": 0.2, "attn_dropout": 0.3, "sharing": "none",
                      "freeze_embeddings": False, "window": 16, "stride": 8}


def _supernet_cfg(*overrides: str):
    return compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", "seed=3", "supernet.recompute=true",
                                     "supernet.weight_decay=0.01", "supernet.checkpoint_every_min=2",
                                     "supernet.train_subset=20", "supernet.val_batch_size=5",
                                     "supernet.limit_val_batches=2", *overrides])


def test_the_supernet_stage_hands_its_settings_to_the_module_the_loaders_and_the_trainer(tmp_path, monkeypatch,
                                                                                        trainers):
    modules = []
    real = stages.SupernetModule

    def module(model, space, **kwargs):
        modules.append(kwargs)
        return real(model, space, **kwargs)

    monkeypatch.setattr(stages, "SupernetModule", module)
    cfg, dm, space = _supernet_cfg(), _dm(), FunctionalSpace(3)
    torch.manual_seed(123)  # the stage seeds the model's weights itself
    model = stages.train_supernet(cfg, dm, space, tmp_path)
    torch.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 stages.build_supernet(cfg, dm, space).state_dict().values()))
    assert model.encoder.recompute is True
    (kwargs,) = modules
    assert {k: kwargs[k] for k in ("archs_per_step", "lr", "clip", "weight_decay", "seed", "monitor_archs",
                                   "optimizer_state", "optimizer_offload_dir")} == {
        "archs_per_step": 2, "lr": 5e-4, "clip": 5.0, "weight_decay": 0.01, "seed": 3, "monitor_archs": 1,
        "optimizer_state": "float32", "optimizer_offload_dir": None}
    (trainer,) = trainers
    assert trainer.name == "supernet" and trainer.kwargs["max_epochs"] == 1
    assert trainer.kwargs["limit_val_batches"] == 2 and trainer.kwargs["keep_metrics_below"] is None
    assert _every_s(trainer) == 120.0
    (fit,) = trainer.fits
    assert len(fit.train.dataset) == 20 and fit.train.batch_size == 32 and fit.val.batch_size == 5
    assert len(fit.val.dataset) == 12 and fit.ckpt_path is None
    assert (tmp_path / "supernet" / "DONE").read_text() == "8\n"
    offloaded = _supernet_cfg("supernet.optimizer_offload=true")
    stages.train_supernet(offloaded, dm, space, tmp_path / "offloaded")
    assert modules[-1]["optimizer_offload_dir"] == str(tmp_path / "offloaded" / "supernet")


def test_a_supernet_checkpoint_resumes_the_fit_and_only_a_finished_one_is_reloaded(tmp_path, monkeypatch, trainers):
    reloaded = []
    monkeypatch.setattr(stages, "resume_step", lambda path: 5)
    cfg, dm, space = _supernet_cfg(), _dm(), FunctionalSpace(3)
    ckpt = tmp_path / "supernet" / "last.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    stages.train_supernet(cfg, dm, space, tmp_path)  # a checkpoint without DONE: an interrupted fit
    (trainer,) = trainers
    assert trainer.fits[0].ckpt_path == str(ckpt) and trainer.kwargs["keep_metrics_below"] == 5

    def read_checkpoint(path, what):
        reloaded.append(path)
        return {"state_dict": stages.SupernetModule(stages.build_supernet(cfg, dm, space), space).state_dict()}

    monkeypatch.setattr(stages, "read_checkpoint", read_checkpoint)
    stages.train_supernet(cfg, dm, space, tmp_path)  # DONE written by the fit above: reloaded, not trained
    assert reloaded == [ckpt] and len(trainers) == 1
    ckpt.unlink()  # DONE without its checkpoint: trained again
    monkeypatch.setattr(stages, "resume_step", lambda path: None)
    stages.train_supernet(cfg, dm, space, tmp_path)
    assert reloaded == [ckpt] and len(trainers) == 2 and trainers[1].fits[0].ckpt_path is None


def test_the_supernet_and_the_search_read_the_task_presets_subsets(tmp_path, monkeypatch):
    """``+task=yahoo`` trains its supernet on 100,000 examples and scores on 10,000 (task presets),
    unless the budget names its own."""
    loaders = []

    class Stop(Exception):
        pass

    def make_loader(dataset, batch_size, shuffle, seed, subset=None, num_workers=0):
        loaders.append((batch_size, subset))
        raise Stop

    monkeypatch.setattr(stages, "make_loader", make_loader)
    dm, space = _dm(), FunctionalSpace(3)
    for overrides, subsets in (([], (100000, 10000)), (["budget=smoke"], (256, 128))):
        loaders.clear()
        cfg = compose_config("search", ["+task=yahoo", "hardware=cpu", "supernet.dim=16", "supernet.heads=2",
                                        "space.num_layers=3", *overrides])
        with pytest.raises(Stop):
            stages.train_supernet(cfg, dm, space, tmp_path)
        with pytest.raises(Stop):
            stages.search(cfg, torch.nn.Linear(1, 1), dm, space, tmp_path)
        assert loaders == [(cfg.supernet.batch_size, subsets[0]), (cfg.strategy.eval_batch_size, subsets[1])]


# ---------------------------------------------------------------------------------- the search


def test_the_search_records_every_candidate_its_top_k_and_its_final_state(tmp_path, caplog):
    """population.jsonl indexes the candidates from 0, topk.yaml ranks from 1 (strategy.topk of
    them, best first), and the state at the budget is saved (a re-run scores nothing again), also
    for aging evolution, whose batches are single children (strategy.save_every above the budget)."""
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware.progress=false", "strategy=aging",
                                    "strategy.population=10", "strategy.budget=25", "strategy.save_every=1000",
                                    "strategy.topk=4"])
    scores = iter(range(1000))
    stages.run_strategy(cfg, FunctionalSpace(3), lambda arch: next(scores) % 7 / 10, tmp_path, "a made-up score")
    population = [json.loads(line) for line in (tmp_path / "population.jsonl").read_text().splitlines()]
    assert [p["index"] for p in population] == list(range(25))
    topk = yaml.safe_load((tmp_path / "topk.yaml").read_text())
    best = sorted(population, key=lambda p: (-p["score"], p["index"]))[:4]
    assert [(t["rank"], t["val_acc"]) for t in topk] == [(r + 1, p["score"]) for r, p in enumerate(best)]
    strategy = stages.run_strategy(cfg, FunctionalSpace(3), lambda arch: pytest.fail("scored again"), tmp_path, "")
    assert len(strategy.history) == 25


def test_the_search_writes_the_best_architecture_with_its_supernet_score(tmp_path):
    from src.models.text import TextClassifier

    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", "strategy.val_subset=null"])
    space = FunctionalSpace(3)
    torch.manual_seed(0)
    model = TextClassifier.supernet(torch.randn(30, 8), 2, space, dim=16, heads=2)
    model.train()
    best, score = stages.search(cfg, model, _dm(), space, tmp_path)
    assert not model.training  # scored with dropout off
    written = yaml.safe_load((tmp_path / "search" / "best_arch.yaml").read_text())
    assert written == {"val_acc_supernet": score, **best.to_dict()}


# ---------------------------------------------------------------------------------- the retrain


class _Child:
    """A stand-in for :class:`ChildModule`: its settings, its selected evaluation and history."""

    made: list = []

    def __init__(self, model, lr=None, weight_decay=None, on_new_best=None):
        self.model, self.lr, self.weight_decay, self.on_new_best = model, lr, weight_decay, on_new_best
        self.history = [{"step": 3, "val_acc": 0.75, "test_acc": 0.5}, {"step": 4, "val_acc": 0.5, "test_acc": 0.25}]
        _Child.made.append(self)

    def selected(self):
        return self.history[0]


def test_a_retrain_seed_hands_on_its_settings_and_writes_the_selected_evaluation(tmp_path, monkeypatch, trainers,
                                                                                 caplog):
    children = []
    real_child = stages.TextClassifier.child

    def child(*args, **kwargs):
        children.append(kwargs)
        return real_child(*args, **kwargs)

    monkeypatch.setattr(stages.TextClassifier, "child", child)
    monkeypatch.setattr(stages, "ChildModule", _Child)
    _Child.made = []
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", "retrain.attn_dropout=0.3",
                                    "retrain.weight_decay=0.01", "retrain.recompute=true", "retrain.train_subset=20",
                                    "retrain.batch_size=4", "retrain.eval_batch_size=7", "retrain.max_steps=4",
                                    "retrain.eval_every=5", "retrain.clip=2.5", "retrain.checkpoint_every_min=1",
                                    "data.window=16", "data.stride=8"])
    arch = Architecture.load(SST5)
    result = stages.train_child(cfg, arch, _dm(), tmp_path, 7, "seed 7")
    assert children == [{"dim": 16, "heads": 2, "dropout": 0.1, "attn_dropout": 0.3, "freeze_embeddings": True,
                         "window": 16, "stride": 8}]
    (module,) = _Child.made
    assert (module.lr, module.weight_decay, module.on_new_best) == (5e-4, 0.01, None)
    assert module.model.encoder.recompute is True
    (trainer,) = trainers
    assert trainer.name == "seed_7" and trainer.kwargs["label"] == "seed 7" and trainer.kwargs["max_epochs"] == 1
    # evaluated at the last step when max_steps (4, of 5 batches) ends the fit before eval_every (5)
    assert trainer.kwargs["val_check_interval"] == 4 and trainer.kwargs["gradient_clip_val"] == 2.5
    assert _every_s(trainer) == 60.0
    (fit,) = trainer.fits
    assert len(fit.train.dataset) == 20 and fit.train.batch_size == 4
    assert [(len(e.dataset), e.batch_size) for e in fit.val] == [(12, 7), (10, 7)]
    assert result == {"seed": 7, "val_acc": 0.75, "test_acc": 0.5, "step": 3, "history": module.history}
    assert json.loads((tmp_path / "seed_7.json").read_text()) == result
    caplog.set_level(logging.INFO, logger=stages.__name__)
    for say_done, lines in ((False, []), (True, ["seed 7 already done (val 0.7500)"])):
        caplog.clear()
        assert stages.train_child(cfg, arch, _dm(), tmp_path, 7, "seed 7", say_done=say_done) == result
        assert [r.getMessage() for r in caplog.records] == lines


def test_a_seed_without_a_test_score_leaves_no_record_and_no_checkpoint_behind(tmp_path, monkeypatch, trainers):
    """A seed whose selected evaluation has no test score (NaN: a broken evaluation split) is refused
    before ``seed_<s>.json`` is written, and its last checkpoint (evaluations of that split) is dropped,
    so that a run again trains the seed anew instead of reading it back as done and stopping again."""
    class NoTestScore(_Child):
        def selected(self):
            return {"step": 3, "val_acc": 0.75, "test_acc": math.nan}

    monkeypatch.setattr(stages, "ChildModule", NoTestScore)
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", "retrain.max_steps=4"])
    ckpt = tmp_path / "seed_7" / "last.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"written by the fit")
    monkeypatch.setattr(stages, "resume_step", lambda path, what: None)
    with pytest.raises(RuntimeError, match=r"^retrain produced no test accuracy \(seed 7\)$"):
        stages.train_child(cfg, Architecture.load(SST5), _dm(), tmp_path, 7, "seed 7")
    assert not (tmp_path / "seed_7.json").exists() and not ckpt.exists()
    assert len(trainers) == 1


def test_a_kept_model_carries_what_encodes_new_text_and_the_class_names(tmp_path):
    from src.models.saved import read_saved
    from src.models.text import TextClassifier

    arch = Architecture.load(SST5)
    dm = _dm()
    settings = {"dim": 16, "heads": 2, "dropout": 0.1, "attn_dropout": 0.1, "freeze_embeddings": True,
                "window": None, "stride": 32}
    model = TextClassifier.child(dm.embeddings, 2, arch, **settings)
    for task, names in (("sst2", ["negative", "positive"]), ("csv", None)):
        cfg = compose_config("search", [f"+task={task}", "task.num_classes=2"] if task == "csv" else ["+task=sst2"])
        path = tmp_path / task / "model.pt"
        stages._model_saver(cfg, model, arch, dm, settings, path)({"step": 3, "val_acc": 0.5})
        spec = read_saved(path)["spec"]
        assert spec.get("label_names") == names and spec["text_input"] == {"tokenizer": "words", "vocab": 30}
        assert {k: spec[k] for k in settings} == settings


def test_the_retrain_results_count_from_the_run_seed_and_record_its_protocol(tmp_path, monkeypatch):
    calls = []

    def train_child(cfg, arch, dm, out, seed, label, save_model=False, say_done=True):
        calls.append((seed, label, save_model, say_done))
        return {"seed": seed, "val_acc": 0.5 + seed / 100, "test_acc": test_acc[seed], "step": 2, "history": []}

    monkeypatch.setattr(stages, "train_child", train_child)
    test_acc = {5: 0.5, 6: 0.7}
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "seed=5", "retrain.train_subset=1000",
                                    "retrain.lr=0.002", "retrain.clip=2.5", "retrain.eval_every=6"])
    arch = Architecture.load(SST5)
    results = stages.retrain(cfg, arch, _dm(), tmp_path)
    assert calls == [(5, "retrain seed 5", True, False), (6, "retrain seed 6", True, False)]
    assert results["seeds"] == [5, 6] and results["test_acc_mean"] == pytest.approx(0.6)
    assert results["protocol"] == {"dim": 16, "heads": 2, "epochs": 1, "lr": 0.002, "clip": 2.5, "batch_size": 32,
                                   "eval_every": 6, "train_level": "sentence", "train_examples": 50,
                                   "val_examples": 12, "test_examples": 10, "lower_precision": None}
    assert json.loads((tmp_path / "retrain" / "results.json").read_text()) == results
    test_acc[5] = math.nan  # one seed without a test score: no results
    (tmp_path / "retrain" / "results.json").unlink()
    with pytest.raises(RuntimeError, match="retrain produced no test accuracy"):
        stages.retrain(compose_config("search", ["+task=sst2", "budget=smoke", "seed=5", "retrain.seeds=1"]), arch,
                       _dm(), tmp_path)
    assert not (tmp_path / "retrain" / "results.json").exists()


@pytest.mark.parametrize("seeds", [1, 2])
def test_a_retrain_without_a_test_score_is_said_for_any_number_of_seeds(seeds):
    """The guard ("retrain produced no test accuracy") names the seed also with several seeds, where
    the sample std of a NaN score was a traceback (AttributeError: 'float' object has no attribute
    'numerator', Python 3.11) from ``statistics.stdev``."""
    per_seed = [{"seed": s, "val_acc": 0.5, "test_acc": 0.5, "step": 1} for s in range(seeds - 1)]
    per_seed.append({"seed": seeds - 1, "val_acc": 0.5, "test_acc": math.nan, "step": 1})
    with pytest.raises(RuntimeError, match=rf"^retrain produced no test accuracy \(seed {seeds - 1}\)$"):
        stages.seed_summary(Architecture.load(SST5), list(range(seeds)), per_seed, stages.SELECTION_RULE)


def test_the_test_score_guard_names_every_seed_without_one():
    """Several seeds without a test score are named together, in their order; seeds with one pass."""
    per_seed = [{"seed": s, "val_acc": 0.5, "test_acc": 0.5 if s == 3 else math.nan, "step": 1} for s in (2, 3, 4)]
    with pytest.raises(RuntimeError, match=r"^retrain produced no test accuracy \(seed 2, 4\)$"):
        stages.check_test_scores(per_seed)
    stages.check_test_scores([per_seed[1]])
