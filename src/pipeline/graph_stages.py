"""The stages of a graph AutoAttend run (node classification), resumable like the text stages.

Same run directory layout and result files as :mod:`src.pipeline.stages`::

    supernet/   last.ckpt, metrics.csv, DONE
    search/     population.jsonl, state.json, topk.yaml, best_arch.yaml, rerank.json (graph.rerank.topk > 0)
    retrain/    hpo.json (random hyper-parameter search on validation), seed_<s>.json, results.json
    baselines/<name>/   the hand-designed models (arch=gcn, arch=gat), same files as retrain/

Settings live in the ``graph`` config node (conf/graph/default.yaml): ``graph.space``,
``graph.supernet``, ``graph.rerank``, ``graph.retrain``, ``graph.hpo``, ``graph.baselines``; the search strategy is
the shared ``strategy`` node and ``space.sharing``/``space.priors`` apply to both families.
"""

from __future__ import annotations

import json
import logging
import random
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import lightning.pytorch as pl
import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from src.choices import CHILD_SETTINGS_BEFORE_THEY_EXISTED, HPO_MIN_TRIALS
from src.estimator import SupernetEstimator
from src.lit.graph_modules import GraphChildModule, GraphSupernetModule, graph_score_batch
from src.models.graph import GraphNet
from src.models.saved import MODEL_FILE, graph_child_spec, save_child, weights_of
from src.pipeline.common import (ChildrenProgress, StopAtStep, apply_compute_settings, diverged_hint, last_checkpoint,
                                 lower_precision, make_trainer, read_checkpoint, resume_step)
from src.pipeline.checks import CHILD_KEYS
from src.pipeline.config import note_computing, read_arch, retrain_space, settings_task
from src.pipeline.ranking_plan import HPO_SEED_OFFSET, RERANK_SEED_OFFSET
from src.pipeline.stages import check_test_scores, run_strategy, seed_summary
from src.space import Architecture, FunctionalSpace
from src.utils.device import device_of
from src.utils.errors import AutoAttendError
from src.utils.io import atomic_write_json, atomic_write_text, read_record, read_seed_record
from src.utils.parallel import process_map, resolve_process_workers

log = logging.getLogger(__name__)

SELECTION_RULE = ("test score at the evaluation with the highest validation score (ties: lowest validation "
                  "loss, then earliest); validation and test are evaluated together every "
                  "graph.retrain.eval_every epochs")
MODEL_KEYS = tuple(k for k in CHILD_KEYS if k not in ("lr", "weight_decay", "weight_decay_on", "epochs"))  # GraphNet.child's
SUPERNET_KEYS = tuple(k for k in MODEL_KEYS if k not in ("readout", "stem"))  # GraphNet.supernet's, with sharing


def _score_name(dm) -> str:
    return dm.metric


# ---- supernet --------------------------------------------------------------------------------
def build_supernet(cfg: DictConfig, dm, space: FunctionalSpace) -> GraphNet:
    s = cfg.graph.supernet
    return GraphNet.supernet(dm.num_features, dm.num_classes, space, sharing=cfg.graph.space.sharing,
                             **{k: s[k] for k in SUPERNET_KEYS})


def train_supernet(cfg: DictConfig, dm, space: FunctionalSpace, run_dir: Path) -> GraphNet:
    """Single-path supernet training for ``graph.supernet.steps`` steps (or resume / reload)."""
    s = cfg.graph.supernet
    out = run_dir / "supernet"
    torch.manual_seed(cfg.seed)
    model = build_supernet(cfg, dm, space)
    log.info("graph supernet: %d op modules, %.2f M parameters, sharing=%s", len(model.encoder.ops),
             sum(p.numel() for p in model.parameters()) / 1e6, cfg.graph.space.sharing)
    module = GraphSupernetModule(model, space, multilabel=dm.multilabel, archs_per_step=s.archs_per_step, lr=s.lr,
                                 weight_decay=s.weight_decay, clip=s.clip, seed=cfg.seed,
                                 monitor_archs=s.monitor_archs)
    ckpt = out / "last.ckpt"
    if (out / "DONE").exists() and ckpt.exists():
        log.info("supernet already trained in %s: reloading", ckpt)
        module.load_state_dict(read_checkpoint(ckpt, "supernet checkpoint")["state_dict"])
        return model
    train = dm.train_loader(steps_per_epoch=s.steps_per_epoch, seed=cfg.seed)
    start = resume_step(ckpt)
    if start is not None:
        log.info("graph supernet: resuming from %s at step %d", ckpt, start)
    trainer = make_trainer(cfg, run_dir, "supernet", keep_metrics_below=start, max_epochs=-1,
                           callbacks=[last_checkpoint(out), StopAtStep(int(s.steps))],
                           enable_checkpointing=True, limit_val_batches=1.0 if s.monitor_archs else 0,
                           log_every_n_steps=1)
    with diverged_hint("graph supernet", f"lower graph.supernet.lr (now {s.lr})"):
        trainer.fit(module, train, dm.eval_loader(), ckpt_path=None if start is None else str(ckpt))
    atomic_write_text(out / "DONE", f"{trainer.global_step}\n")
    return model


# ---- search ----------------------------------------------------------------------------------
def search(cfg: DictConfig, model: GraphNet, dm, space: FunctionalSpace, run_dir: Path) -> tuple[Architecture, float]:
    """Score candidates on the validation nodes with the shared weights; writes search/. Returns the architecture
    to retrain (the best, or re-ranking's choice: ``search/best_arch.yaml`` holds its own supernet score) and the
    best supernet validation score the search saw (a re-ranked choice's may be lower)."""
    out = run_dir / "search"
    out.mkdir(parents=True, exist_ok=True)
    model.to(device_of(cfg))
    estimator = SupernetEstimator(model, dm.split_batches("val"), device_of(cfg),
                                  score_batch=graph_score_batch(dm.multilabel))
    strategy = run_strategy(cfg, space, estimator, out, f"its {_score_name(dm)} on the validation nodes")
    best, best_score = strategy.best()
    log.info("search: best supernet validation %s %.4f: %s", _score_name(dm), best_score, best)
    score, extra = best_score, {}
    if int(cfg.graph.rerank.topk) > 0:
        best, score, extra = rerank(cfg, strategy.ranked(), dm, out)
    atomic_write_text(out / "best_arch.yaml", yaml.safe_dump({"val_acc_supernet": score, **extra, **best.to_dict()},
                                                             sort_keys=False))
    return best, best_score


def rerank(cfg: DictConfig, ranked: list[tuple[Architecture, float]], dm, out: Path) -> tuple[Architecture, float, dict]:
    """Train the ``graph.rerank.topk`` best distinct candidates from scratch and keep the best on validation.

    Each candidate is trained with the retrain settings (``graph.retrain``) for ``graph.rerank.seeds``
    seeds (``seed + 2000 + j``, never a reported seed) and scored by its mean best validation
    score; ties keep the supernet's order. Writes ``search/rerank.json`` (resumable). Returns the
    chosen architecture, its supernet score and ``{"rerank_rank", "rerank_val_acc"}``.
    """
    r = cfg.graph.rerank
    seen, candidates = set(), []
    for arch, score in ranked:
        if arch not in seen:
            seen.add(arch)
            candidates.append((arch, score))
        if len(candidates) == int(r.topk):
            break
    path = out / "rerank.json"
    done = read_record(path, "the re-ranked candidates so far", "candidates") if path.exists() else []
    # reuse finished candidates while they are the ones ranked here (a changed ranking retrains from there)
    matching = 0
    while matching < min(len(done), len(candidates)) and done[matching]["arch"] == candidates[matching][0].to_dict():
        matching += 1
    done = done[:matching]
    hp = _child_settings(cfg, None)
    seeds = [int(cfg.seed) + RERANK_SEED_OFFSET + j for j in range(int(r.seeds))]
    todo = list(enumerate(candidates[len(done):], len(done) + 1))
    jobs = [(arch, hp, seed, out / "rerank", f"rank{rank}_seed{seed}") for rank, (arch, _) in todo for seed in seeds]
    with closing(fit_children(cfg, dm, jobs, label="rerank", unit="candidate seeds",
                              done_before=len(done) * len(seeds))) as fitted:
        for rank, (arch, score) in todo:
            vals = [next(fitted)["selected"]["val_acc"] for _ in seeds]
            done.append({"rank": rank, "val_acc_supernet": score, "val_acc": sum(vals) / len(vals), "seeds": seeds,
                         "arch": arch.to_dict()})
            atomic_write_json(path, {"candidates": done})
            log.info("rerank: candidate %d / %d (supernet %.4f) -> validation %.4f", rank, len(candidates), score,
                     done[-1]["val_acc"])
    chosen = max(done, key=lambda d: (d["val_acc"], -d["rank"]))
    atomic_write_json(path, {"candidates": done, "chosen": chosen["rank"], "hparams": hp})
    arch, score = candidates[chosen["rank"] - 1]
    log.info("rerank: chose candidate %d (validation %.4f): %s", chosen["rank"], chosen["val_acc"], arch)
    return arch, score, {"rerank_rank": chosen["rank"], "rerank_val_acc": chosen["val_acc"]}


# ---- retraining ------------------------------------------------------------------------------
def _child_settings(cfg: DictConfig, hparams: dict | None) -> dict:
    r = OmegaConf.to_container(cfg.graph.retrain, resolve=True)
    hp = {k: r[k] for k in CHILD_KEYS}
    hp.update(hparams or {})
    return hp


def fit_child(cfg: DictConfig, arch: Architecture, dm, hp: dict, seed: int, out: Path, name: str,
              model_file: Path | None = None) -> GraphChildModule:
    """Train ``arch`` from scratch with settings ``hp``; returns the module (its ``history``). With
    ``model_file``, the selected evaluation's weights are kept there (``src/models/saved.py``):
    held in memory while the selection changes (dozens of times a seed) and written once at the
    end, since a graph seed is never resumed inside its training."""
    r = cfg.graph.retrain
    pl.seed_everything(seed, workers=True, verbose=False)
    settings = {k: hp[k] for k in MODEL_KEYS}
    model = GraphNet.child(dm.num_features, dm.num_classes, arch, **settings)
    kept: dict = {}

    def keep(evaluation: dict) -> None:
        kept.update(weights=weights_of(model), evaluation=evaluation)

    module = GraphChildModule(model, dm.multilabel, lr=hp["lr"], weight_decay=hp["weight_decay"],
                              weight_decay_on=hp.get("weight_decay_on",
                                                     CHILD_SETTINGS_BEFORE_THEY_EXISTED["weight_decay_on"]),
                              on_new_best=keep if model_file is not None else None)
    epochs = int(hp["epochs"]) if r.epoch_cap is None else min(int(hp["epochs"]), int(r.epoch_cap))
    every = max(1, min(int(r.eval_every), epochs))
    with diverged_hint(f"{out.name}/{name}", f"lower the learning rate it trained with (lr {hp['lr']})"):
        if dm.graph is not None:
            # one full-graph step per epoch: a plain loop (GraphChildModule.fit_full_batch), since the
            # Trainer's per-step and per-validation bookkeeping costs several times the step on Cora
            device = device_of(cfg)
            module.to(device)
            patience = None if r.get("patience") is None else int(r.patience)
            module.fit_full_batch({k: v.to(device) for k, v in dm.graph.items()}, epochs, every, patience)
        else:
            trainer = make_trainer(cfg, out, name, enable_checkpointing=False, log_every_n_steps=1,
                                   max_epochs=epochs, check_val_every_n_epoch=every)
            trainer.fit(module, dm.train_loader(seed=seed), dm.eval_loader())
    if model_file is not None:
        spec = graph_child_spec(arch, dm.num_features, dm.num_classes, dm.multilabel, **settings)
        save_child(model_file, kept["weights"], spec, kept["evaluation"])
    return module


@dataclass(frozen=True)
class _FullGraph:
    """What :func:`fit_child` reads of a full-batch graph DataModule; small enough to send to a
    worker process."""

    graph: dict
    num_features: int
    num_classes: int
    multilabel: bool


def _fit_job(job: tuple) -> dict:
    cfg, arch, dm, hp, seed, out, name, keep_model = job
    apply_compute_settings(cfg)  # a worker process starts fresh
    module = fit_child(cfg, arch, dm, hp, seed, out, name, model_file=out / name / MODEL_FILE if keep_model else None)
    return {"selected": module.selected(), "history": module.history}


def fit_children(cfg: DictConfig, dm, jobs: list[tuple[Architecture, dict, int, Path, str]],
                 keep_models: bool = False, label: str = "children", unit: str = "fits",
                 done_before: int = 0, in_order: bool = True) -> Iterator:
    """:func:`fit_child` for each ``(arch, hparams, seed, out, name)`` job, in order: yields
    ``{"selected": module.selected(), "history": module.history}``. ``keep_models``: each job's
    selected weights are kept in ``out/name/model.pt``. ``in_order=False``: ``(job index, result)``
    as the jobs finish, those finished or running beside a failing one given before its error (for
    a caller that records each job on its own: what finished is kept for a resume).

    While they train, the stage's progress over them (:class:`~src.pipeline.common.ChildrenProgress`:
    ``<label>: N / M <unit> finished``, ``done_before`` of them finished by an earlier invocation)
    shows as a bar in a terminal and as log lines otherwise; a bar only for full-batch graphs, whose
    children show none of their own.

    Full-batch graphs on CPU train in ``graph.retrain.workers`` processes (``auto``: the cores the
    run's thread count leaves free, e.g. 2 on two cores with ``graph.threads=1``). Every job seeds
    torch itself (:func:`fit_child`), so the results are those of training one after the other in
    this process (tested).
    """
    workers = 1
    if getattr(dm, "graph", None) is not None and jobs:
        workers = resolve_process_workers(cfg.graph.retrain.get("workers", "auto"), device_of(cfg),
                                          "graph.retrain.workers")
    data = _FullGraph(dm.graph, dm.num_features, dm.num_classes, dm.multilabel) if workers > 1 else dm
    items = [(cfg, arch, data, hp, seed, out, name, keep_models) for arch, hp, seed, out, name in jobs]
    if not jobs:  # nothing to train (all finished before): no progress to show
        return (result for result in ())  # a generator, as below: callers may close() it
    note_computing()
    progress = ChildrenProgress(cfg, label, done_before + len(jobs), unit, done_before,
                                bar=getattr(dm, "graph", None) is not None)
    return _showing(progress, lambda: process_map(_fit_job, items, workers, on_done=progress.advance,
                                                  setting="graph.retrain.workers", ordered=in_order))


def _showing(progress: ChildrenProgress, start) -> Iterator[dict]:
    """The results of ``start()`` with ``progress`` shown from the first request to the last
    (or the consumer closing the iterator)."""
    with progress, closing(start()) as results:
        yield from results


def _as_trained(cfg: DictConfig, settings: dict) -> dict:
    """A trial's settings for its log line, ``epochs`` as its fit trains them under
    ``graph.retrain.epoch_cap`` (``'300 (capped at 10)'``: the line showed 300)."""
    cap = cfg.graph.retrain.epoch_cap
    if "epochs" in settings and cap is not None and int(settings["epochs"]) > int(cap):
        return {**settings, "epochs": f"{settings['epochs']} (capped at {cap})"}
    return settings


def hpo(cfg: DictConfig, arch: Architecture, dm, out: Path) -> tuple[dict, list[dict]]:
    """Random search over ``graph.hpo.space`` on the validation split (trial 0: the defaults).

    Each trial trains one seed (``seed + 1000 + trial``, never a reported seed) and is scored by
    its best validation score; the best trial's settings (earliest on ties) are returned. Trials
    train side by side like the seeds (:func:`fit_children`; the same results as one after the
    other) and ``hpo.json`` is rewritten as each finishes, in order, so a re-run keeps them.
    """
    h = cfg.graph.hpo
    base = _child_settings(cfg, None)
    path = out / "hpo.json"
    done = read_record(path, "the HPO trials so far", "trials") if path.exists() else []
    for trial in done:  # trials an older autoattend recorded: the settings they trained with
        if isinstance(trial, dict) and isinstance(trial.get("hparams"), dict):
            missing = {k: v for k, v in CHILD_SETTINGS_BEFORE_THEY_EXISTED.items() if k not in trial["hparams"]}
            trial["hparams"] = {**trial["hparams"], **missing}  # a trial of today's unchanged, its keys' order too
    rng = random.Random(cfg.seed)
    grid = OmegaConf.to_container(h.space, resolve=True)
    settings = [base] + [{**base, **{k: rng.choice(v) for k, v in sorted(grid.items())}} for _ in range(h.trials - 1)]
    trials = list(done[:len(settings)])
    todo = range(len(trials), len(settings))
    jobs = [(arch, settings[t], cfg.seed + HPO_SEED_OFFSET + t, out / "hpo", f"trial_{t}") for t in todo]
    with closing(fit_children(cfg, dm, jobs, label="hpo", unit="trials", done_before=len(trials))) as fitted:
        for t, (_, _, seed, _, _), child in zip(todo, jobs, fitted):
            best = child["selected"]
            trials.append({"trial": t, "seed": seed, "hparams": settings[t], "val_acc": best["val_acc"],
                           "step": best["step"]})
            atomic_write_json(path, {"trials": trials})
            log.info("hpo: trial %d %s -> val %.4f", t, _as_trained(cfg, {k: settings[t][k] for k in grid}),
                     best["val_acc"])
    chosen = max(trials, key=lambda tr: (tr["val_acc"], -tr["trial"]))
    atomic_write_json(path, {"trials": trials, "chosen": chosen})
    return chosen["hparams"], trials


def _as_the_seeds_trained(out: Path, hp: dict, finished: dict[int, dict], started_before: Sequence[str]) -> dict:
    """The settings a folder's finished seeds trained with, which its other seeds take too (one setting in its
    mean), saying so where they are not ``hp``: each seed record's ``hparams`` (recorded since 2026-12-07), else
    ``hp`` with the values children trained with before the settings ``started_before`` (those the run's record
    lacked) existed; a built-in architecture's file may have changed since (GCN's ``weight_decay_on``)."""
    before = {k: v for k, v in CHILD_SETTINGS_BEFORE_THEY_EXISTED.items() if k in started_before}
    now = json.loads(json.dumps(hp))
    trained = [json.loads(json.dumps(record.get("hparams") or {**hp, **before})) for record in finished.values()]
    if all(t == now for t in trained):
        return hp
    if any(t != trained[0] for t in trained):
        raise AutoAttendError(f"{out}: its seeds trained with different settings (seed_<s>.json's hparams); give a "
                              "new hydra.run.dir")
    changed = "; ".join(f"{k}: {trained[0].get(k)} (its seeds) / {now.get(k)} (now)"
                        for k in sorted({*trained[0], *now}) if trained[0].get(k) != now.get(k))
    log.warning("%s: its finished seeds trained with other settings than those of now (%s: an older autoattend's, "
                "or an architecture file changed since); its other seeds train as they did, so that its mean is of "
                "one setting: give a new hydra.run.dir to train it as set now", out.relative_to(out.parent.parent),
                changed)
    return trained[0]


def retrain(cfg: DictConfig, arch: Architecture, dm, run_dir: Path, hparams: dict | None = None,
            folder: str = "retrain", source: str | None = None, started_before: Sequence[str] = ()) -> dict:
    """Train ``arch`` from scratch for ``graph.retrain.seeds`` seeds; writes ``<folder>/results.json``.

    ``hparams`` (a hand-designed architecture's published settings) skip the HPO; otherwise
    ``graph.hpo.trials`` >= :data:`~src.choices.HPO_MIN_TRIALS` picks the settings on the
    validation split first. ``source`` says
    where ``hparams`` came from (default: the architecture file). Seeds already finished keep the
    settings they trained with (:func:`_as_the_seeds_trained`; ``started_before``: the child settings the
    run's record lacked).
    """
    r = cfg.graph.retrain
    out = run_dir / folder
    out.mkdir(parents=True, exist_ok=True)
    trials: list[dict] = []
    if hparams is None and cfg.graph.hpo.trials >= HPO_MIN_TRIALS:
        hp, trials = hpo(cfg, arch, dm, out)
        source = f"random search over graph.hpo.space ({len(trials)} trials on the validation split)"
    else:
        hp = _child_settings(cfg, hparams)
        source = (source or "the architecture file's hparams") if hparams is not None else "graph.retrain"
    cap = r.epoch_cap  # applies to the HPO trials too (fit_child)
    capped = (f"; every fit capped at {cap} epochs (graph.retrain.epoch_cap)"
              if cap is not None and int(hp["epochs"]) > int(cap) else "")
    log.info("%s: settings %s (from %s)%s", folder, hp, source, capped)
    seeds = [cfg.seed + i for i in range(int(r.seeds))]
    finished = {s: read_seed_record(out / f"seed_{s}.json")
                for s in seeds if (out / f"seed_{s}.json").exists()}
    if finished:
        hp = _as_the_seeds_trained(out, hp, finished, started_before)
    todo = [s for s in seeds if s not in finished]
    jobs = [(arch, hp, s, out, f"seed_{s}") for s in todo]
    with closing(fit_children(cfg, dm, jobs, keep_models=True, label=folder, unit="seeds",
                              done_before=len(finished), in_order=False)) as fitted:
        for index, child in fitted:
            seed = todo[index]
            chosen = child["selected"]
            result = {"seed": seed, "val_acc": chosen["val_acc"], "test_acc": chosen["test_acc"],
                      "step": chosen["step"], "history": child["history"], "hparams": hp}
            check_test_scores([result])
            atomic_write_json(out / f"seed_{seed}.json", result)
            finished[seed] = result
            log.info("%s: seed %d -> val %.4f test %.4f (step %d)", folder, seed, result["val_acc"],
                     result["test_acc"], result["step"])
    per_seed = [finished[s] for s in seeds]
    results = {
        **seed_summary(arch, seeds, per_seed, SELECTION_RULE),
        "metric": _score_name(dm),
        "hparams": hp,
        "hparams_source": source,
        "hpo_trials": trials,
        "protocol": {**hp, "epoch_cap": r.epoch_cap, "eval_every": r.eval_every, "patience": r.get("patience"),
                     "task": cfg.task.name, "num_features": dm.num_features, "num_classes": dm.num_classes,
                     "lower_precision": lower_precision(cfg)},
    }
    atomic_write_json(out / "results.json", results)
    return results


def baselines(cfg: DictConfig, dm, run_dir: Path, started_before: Sequence[str] = ()) -> dict:
    """Retrain every ``graph.baselines`` architecture (with its own hparams) in this run, same seeds
    (``started_before``: :func:`retrain`'s)."""
    out = {}
    for name in cfg.graph.get("baselines") or []:
        read = read_arch(name, settings_task(cfg))
        retrain_space(cfg, len(read.arch)).validate(read.arch)
        res = retrain(cfg, read.arch, dm, run_dir, hparams=read.hparams, folder=f"baselines/{name}",
                      started_before=started_before)
        out[name] = {k: res[k] for k in ("test_acc_mean", "test_acc_std", "val_acc_mean", "seeds", "hparams")}
    return out
