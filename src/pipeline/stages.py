"""The three stages of an AutoAttend run, each resumable from what it left in the run directory.

Run directory layout::

    supernet/   last.ckpt (Lightning checkpoint), metrics.csv, DONE once training finished
    search/     population.jsonl (every candidate and its score), state.json (strategy state),
                topk.yaml, best_arch.yaml
    retrain/    seed_<s>/metrics.csv, seed_<s>/model.pt (the selected weights), seed_<s>.json per
                finished seed, results.json
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from pathlib import Path
from typing import Callable

import lightning.pytorch as pl
import torch
import yaml
from omegaconf import DictConfig
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from src.estimator import SupernetEstimator
from src.lit.modules import ChildModule, SupernetModule
from src.models.optim import check_offload, check_state_dtype, remove_other_snapshots
from src.models.saved import MODEL_FILE, save_child, text_child_spec, weights_of
from src.models.text import TextClassifier
from src.pipeline.common import (StopAtStep, console_logs_above, diverged_hint, last_checkpoint, lower_precision,
                                  make_loader, make_trainer, read_checkpoint, resume_step, shows_bars)
from src.pipeline.config import note_computing, search_strategy
from src.space import Architecture, FunctionalSpace
from src.strategies import SearchStrategy
from src.utils.device import device_of
from src.utils.errors import AutoAttendError
from src.utils.io import atomic_write_json, atomic_write_text, read_seed_record, remove_left_temporaries
from src.utils.parallel import resolve_workers

log = logging.getLogger(__name__)

SELECTION_RULE = ("test accuracy at the evaluation with the highest validation accuracy (earliest on ties); "
                  "validation and test are evaluated together every retrain.eval_every optimizer steps, and at "
                  "the last step when retrain.max_steps ends training between two of those")


def window_args(cfg: DictConfig) -> dict:
    """Sliding-window settings of the text model (``data.window`` null = plain truncation)."""
    return {"window": cfg.data.get("window"), "stride": cfg.data.get("stride", 32)}


def windows_said(cfg: DictConfig) -> str:
    """The sliding windows for a stage's first line (``''`` without them): the data line says only
    ``max_len``, and long documents read in windows were told apart only in ``run_settings.json``."""
    windows = window_args(cfg)
    return f", in windows of {windows['window']} tokens every {windows['stride']}" if windows["window"] else ""


# Bytes autograd keeps per token position, layer and channel while training, at the least: four
# float32 (B, T, D) tensors a layer. Measured 36-64 over six sampled paper-supernet architectures
# (experiments/bench/activation_bytes.py), so a batch this refuses needs at least twice what it states.
# With `recompute` only each layer's input is kept (one tensor, 4 bytes) and the layer runs again in backward.
ACTIVATION_BYTES_FLOOR = 16
RECOMPUTE_BYTES_FLOOR = 4


def check_batch_memory(cfg: DictConfig, dm, trains: dict[str, int]) -> None:
    """Refuse, before any training on the CPU, a batch no machine of this memory can train: ``trains``
    maps a stage's settings node (``supernet``, ``retrain``: its ``batch_size``, ``dim`` and
    ``recompute``) to the layers it computes. The costliest batch (the longest training sequences, cut to ``data.max_len``, in
    sliding windows when ``data.window`` is set) times :data:`ACTIVATION_BYTES_FLOOR` (with the node's
    ``recompute``: :data:`RECOMPUTE_BYTES_FLOOR`) per position, layer and channel is a floor of one
    architecture's activations; ``data.max_len=100000`` with windows was killed by the kernel at 24 GB,
    after minutes and without a word. On a GPU the host's memory is not what bounds a batch."""
    from src.models.text import worst_batch_positions
    from src.utils.memory import binary_size, machine_memory_bytes

    if device_of(cfg).type != "cpu":
        return
    total = machine_memory_bytes()
    lengths = getattr(dm.train_set, "lengths", None)
    if total is None or lengths is None:
        return
    windows = window_args(cfg)
    for node, layers in trains.items():
        batch_size, channels = int(cfg[node].batch_size), int(cfg[node].dim)
        recompute = bool(cfg[node].get("recompute", False))
        positions = worst_batch_positions(lengths, batch_size, **windows)
        need = positions * layers * channels * (RECOMPUTE_BYTES_FLOOR if recompute else ACTIVATION_BYTES_FLOOR)
        if need > total:
            cut = f"in windows of {windows['window']} every {windows['stride']}, " if windows["window"] else ""
            lower = f"data.max_len or {node}.batch_size" + ("" if recompute else f" (or set {node}.recompute=true)")
            raise AutoAttendError(
                f"{node}.batch_size={batch_size}: a training batch of the longest documents (data.max_len="
                f"{cfg.data.max_len}, {cut}{positions:,} token positions) needs at least {binary_size(need)} "
                f"for one architecture's activations ({layers} layers x {channels} channels), more than this "
                f"machine's {binary_size(total)}: lower {lower}")


def subset_or_task_default(value: int | None, cfg: DictConfig, task_key: str) -> int | None:
    """A budget's explicit subset size, else the task preset's (large corpora), else None (all)."""
    return value if value is not None else cfg.task.get(task_key)


def build_supernet(cfg: DictConfig, dm, space: FunctionalSpace) -> TextClassifier:
    s = cfg.supernet
    return TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=s.dim, heads=s.heads,
                                   dropout=s.dropout, attn_dropout=s.attn_dropout, sharing=cfg.space.sharing,
                                   freeze_embeddings=cfg.data.freeze_embeddings, **window_args(cfg))


def train_supernet(cfg: DictConfig, dm, space: FunctionalSpace, run_dir: Path) -> TextClassifier:
    """Train (or resume, or reload) the supernet; returns the trained model."""
    s = cfg.supernet
    optimizer_state = check_state_dtype(s.get("optimizer_state", "float32"))
    offload = check_offload(s.get("optimizer_offload", False))
    out = run_dir / "supernet"
    torch.manual_seed(cfg.seed)
    model = build_supernet(cfg, dm, space)
    model.encoder.recompute = bool(s.get("recompute", False))
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    unused_grads = s.get("unused_grads", "none")
    unused = "; parameters a step does not use move by their Adam moments (supernet.unused_grads=zeros, torch 1.x)"
    log.info("supernet: %d op modules, %.1f M trainable parameters, sharing=%s, Adam state %s%s, recompute %s%s%s",
             len(model.encoder.ops), n_params / 1e6, cfg.space.sharing, optimizer_state,
             f" offloaded to {out}" if offload else "", model.encoder.recompute, windows_said(cfg),
             unused if unused_grads == "zeros" else "")
    module = SupernetModule(model, space, archs_per_step=s.archs_per_step, lr=s.lr, clip=s.clip,
                            weight_decay=s.weight_decay, seed=cfg.seed, monitor_archs=s.monitor_archs,
                            arch_workers=resolve_workers(s.get("arch_workers", "auto"), device_of(cfg),
                                                         "supernet.arch_workers"),
                            optimizer_state=optimizer_state, optimizer_offload_dir=str(out) if offload else None,
                            unused_grads=unused_grads)
    ckpt = out / "last.ckpt"
    if (out / "DONE").exists() and ckpt.exists():
        log.info("supernet already trained in %s: reloading", ckpt)
        module.load_state_dict(read_checkpoint(ckpt, "supernet checkpoint")["state_dict"])
        return model
    train = make_loader(dm.train_set, s.batch_size, True, cfg.seed,
                        subset_or_task_default(s.train_subset, cfg, "supernet_train_subset"), cfg.hardware.num_workers)
    # the monitor architectures' validation runs in training-size batches: batches of
    # strategy.eval_batch_size (1,024 sentences) held about 380 MB more than a training step
    val = make_loader(dm.val_set, s.get("val_batch_size", s.batch_size), False, cfg.seed, None,
                      cfg.hardware.num_workers)
    start = resume_step(ckpt)
    if start is not None:
        log.info("supernet: resuming from %s at step %d", ckpt, start)
    trainer = make_trainer(cfg, run_dir, "supernet", keep_metrics_below=start, max_epochs=s.epochs,
                           callbacks=[last_checkpoint(out, every_s=checkpoint_every_s(s)), StopAtStep(s.max_steps)],
                           enable_checkpointing=True, limit_val_batches=s.limit_val_batches)
    with diverged_hint("supernet", f"lower supernet.lr (now {s.lr})"):
        trainer.fit(module, train, val, ckpt_path=None if start is None else str(ckpt))
    atomic_write_text(out / "DONE", f"{trainer.global_step}\n")
    remove_other_snapshots(out)  # optimizer_offload: no later checkpoint reads the one before last.ckpt's
    return model


def checkpoint_every_s(node: DictConfig) -> float | None:
    """``checkpoint_every_min`` of a ``supernet`` or ``retrain`` node in seconds (null: at epoch ends only)."""
    minutes = node.get("checkpoint_every_min")
    return None if minutes is None else 60.0 * float(minutes)


def _write_population(path: Path, history: list[tuple[Architecture, float]]) -> None:
    lines = [json.dumps({"index": i, "score": s, "arch": a.to_dict()}, separators=(",", ":"))
             for i, (a, s) in enumerate(history)]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def run_strategy(cfg: DictConfig, space: FunctionalSpace, score, out: Path, what: str) -> SearchStrategy:
    """Run the ``strategy`` node's search over ``space`` with ``score(arch) -> float``, resumably.

    Shared by text and graph runs. Writes ``out/population.jsonl`` (every candidate, in order),
    ``out/state.json`` (the strategy's state, every ``strategy.save_every`` candidates and at the
    end of each batch) and ``out/topk.yaml``; resumes from ``state.json`` when it exists. ``what``
    describes the scoring data for the log. Returns the strategy, its history complete.
    """
    c = cfg.strategy
    strategy = search_strategy(cfg, space)
    state_path = out / "state.json"
    if state_path.exists():
        try:
            strategy.load_state_dict(json.loads(state_path.read_text()))
        except Exception as exc:  # a damaged file, or one from another space or strategy
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise AutoAttendError(f"{state_path} is unreadable ({type(exc).__name__}: {first}): delete it to search "
                                  "again from the start, or use a new hydra.run.dir") from None
    # population.jsonl is rewritten from the strategy state, so lines scored after the last saved
    # state (an interrupted run) are dropped rather than duplicated.
    _write_population(out / "population.jsonl", strategy.history)
    log.info("search: %s over %d candidates, each scored by %s", c.name, strategy.budget, what)
    if strategy.history:  # after the line that says what the search is
        log.info("search: resuming with %d candidates already scored", len(strategy.history))

    columns = [TextColumn("search"), BarColumn(), MofNCompleteColumn(), TextColumn("best {task.fields[best]:.4f}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not shows_bars(cfg), transient=False) as progress, \
            console_logs_above(progress), open(out / "population.jsonl", "a") as pop:
        best = max([s for _, s in strategy.history], default=float("nan"))  # kept as a running maximum
        task = progress.add_task("search", total=strategy.budget, completed=len(strategy.history), best=best)
        while batch := strategy.ask():
            note_computing()
            for n, arch in enumerate(batch, 1):
                value = score(arch)
                strategy.tell(arch, value)
                pop.write(json.dumps({"index": len(strategy.history) - 1, "score": value, "arch": arch.to_dict()},
                                     separators=(",", ":")) + "\n")
                pop.flush()
                best = value if math.isnan(best) else max(best, value)
                progress.update(task, advance=1, best=best)
                scored = len(strategy.history)
                # a batch of one (aging evolution's children) is saved every save_every candidates
                if n % c.save_every == 0 or scored % c.save_every == 0 or scored >= strategy.budget \
                        or (n == len(batch) > 1):
                    atomic_write_json(state_path, strategy.state_dict())
                # at each batch's end and every 100 candidates inside one: the paper's first batch
                # (500 random candidates) was minutes without a line in a log file
                if (n == len(batch) > 1) or scored % 100 == 0 or scored >= strategy.budget:
                    log.info("search: %d / %d scored, best %.4f", scored, strategy.budget, best)
    atomic_write_text(out / "topk.yaml", yaml.safe_dump(
        [{"rank": r + 1, "val_acc": s, "arch": a.to_dict()} for r, (a, s) in enumerate(strategy.ranked(c.topk))],
        sort_keys=False))
    return strategy


def search(cfg: DictConfig, model: TextClassifier, dm, space: FunctionalSpace, run_dir: Path) -> tuple[Architecture, float]:
    """Score candidates with the shared weights; writes the search/ folder; returns the best."""
    c = cfg.strategy
    out = run_dir / "search"
    out.mkdir(parents=True, exist_ok=True)
    device = device_of(cfg)
    model.to(device)
    val = make_loader(dm.val_set, c.eval_batch_size, False, cfg.seed,
                      subset_or_task_default(c.val_subset, cfg, "search_val_subset"))
    workers = resolve_workers(c.get("score_workers", "auto"), device, "strategy.score_workers")
    model.eval()  # once for every candidate (the estimator would otherwise switch modes per call)
    estimator = SupernetEstimator(model, val, device, bucket_size=c.get("score_bucket_size"), workers=workers)
    strategy = run_strategy(cfg, space, estimator, out, f"its accuracy on {estimator.num_examples} validation examples")
    best, score = strategy.best()
    atomic_write_text(out / "best_arch.yaml", yaml.safe_dump(
        {"val_acc_supernet": score, **best.to_dict()}, sort_keys=False))
    log.info("search: best supernet validation accuracy %.4f", score)
    return best, score


def check_test_scores(per_seed: list[dict]) -> None:
    """Refuses seed results without a test score (NaN: only from a broken evaluation split), naming the seeds.
    Called before a seed's record is written too, so that a run again trains such a seed instead of reading
    the record back as done."""
    missing = [s["seed"] for s in per_seed if math.isnan(s["test_acc"])]
    if missing:
        raise RuntimeError(f"retrain produced no test accuracy (seed {', '.join(map(str, missing))})")


def seed_summary(arch: Architecture, seeds: list[int], per_seed: list[dict], selection_rule: str) -> dict:
    """The common part of ``retrain/results.json``: mean and sample std of the per-seed selected
    test / validation scores, the per-seed results without their histories, and the rule.
    A seed without a test score (NaN) is an error here, before the sample std (which fails on NaN)."""
    tests, vals = [s["test_acc"] for s in per_seed], [s["val_acc"] for s in per_seed]
    check_test_scores(per_seed)
    return {
        "arch": arch.to_dict(),
        "test_acc_mean": statistics.fmean(tests),
        "test_acc_std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
        "val_acc_mean": statistics.fmean(vals),
        "std_definition": "sample standard deviation over seeds (n-1); 0 for one seed",
        "seeds": seeds,
        "per_seed": [{k: v for k, v in s.items() if k != "history"} for s in per_seed],
        "selection_rule": selection_rule,
    }


def train_child(cfg: DictConfig, arch: Architecture, dm, out: Path, seed: int, label: str,
                save_model: bool = False, say_done: bool = True) -> dict:
    """Train ``arch`` from scratch with the ``retrain`` settings for one seed; writes (or, when a
    finished seed left it, reads back) ``out/seed_<seed>.json``: the selected evaluation's
    ``val_acc``, ``test_acc`` and ``step``, and the whole ``history``. With ``save_model``, the
    selected evaluation's weights are kept in ``out/seed_<seed>/model.pt`` (``src/models/saved.py``).
    ``say_done``: log a line when the seed was done already (off where the caller reports it).

    ``out/seed_<seed>/last.ckpt`` is rewritten at every epoch end while the seed trains and, inside
    an epoch, at the first evaluation after every ``retrain.checkpoint_every_min`` minutes (removed
    when the seed is done), so an interrupted seed resumes from there and ends as an uninterrupted
    one (same batches, dropout masks and evaluations)."""
    r = cfg.retrain
    seed_file = out / f"seed_{seed}.json"
    ckpt = out / f"seed_{seed}" / "last.ckpt"
    if seed_file.exists():
        result = read_seed_record(seed_file)
        # a stop between the seed's record and the removal of its checkpoint left it: the seed is done
        ckpt.unlink(missing_ok=True)
        remove_left_temporaries(ckpt)
        if say_done:
            log.info("%s already done (val %.4f)", label, result["val_acc"])
        return result
    pl.seed_everything(seed, workers=True, verbose=False)
    # built from these, and saved with them: model.pt rebuilds the model it holds
    settings = dict(dim=r.dim, heads=r.heads, dropout=r.dropout, attn_dropout=r.attn_dropout,
                    freeze_embeddings=cfg.data.freeze_embeddings, **window_args(cfg))
    model = TextClassifier.child(dm.embeddings, dm.num_classes, arch, **settings)
    model.encoder.recompute = bool(r.get("recompute", False))
    saver = _model_saver(cfg, model, arch, dm, settings, out / f"seed_{seed}" / MODEL_FILE) if save_model else None
    module = ChildModule(model, lr=r.lr, weight_decay=r.weight_decay, on_new_best=saver)
    train = make_loader(dm.train_set, r.batch_size, True, seed, r.train_subset, cfg.hardware.num_workers)
    evals = [make_loader(split, r.eval_batch_size, False, seed, None, cfg.hardware.num_workers)
             for split in (dm.val_set, dm.test_set)]
    total_steps = len(train) * r.epochs if r.max_steps in (None, -1) else min(r.max_steps, len(train) * r.epochs)
    start = resume_step(ckpt, f"{label} checkpoint")
    if start is not None:
        log.info("%s: resuming from %s at step %d", label, ckpt, start)
    trainer = make_trainer(cfg, out, f"seed_{seed}", keep_metrics_below=start, label=label, max_epochs=r.epochs,
                           callbacks=[last_checkpoint(ckpt.parent, on_train_epoch_end=True, every_s=checkpoint_every_s(r)),
                                      StopAtStep(r.max_steps)],
                           gradient_clip_val=r.clip, val_check_interval=max(1, min(r.eval_every, total_steps)),
                           check_val_every_n_epoch=None, enable_checkpointing=True)
    with diverged_hint(label, f"lower retrain.lr (now {r.lr})"):
        trainer.fit(module, train, evals, ckpt_path=None if start is None else str(ckpt))
    chosen = module.selected()
    result = {"seed": seed, "val_acc": chosen["val_acc"], "test_acc": chosen["test_acc"], "step": chosen["step"],
              "history": module.history}
    if math.isnan(result["test_acc"]):
        ckpt.unlink(missing_ok=True)  # its evaluations are of the broken split: a run again trains the seed anew
    check_test_scores([result])
    atomic_write_json(seed_file, result)
    ckpt.unlink(missing_ok=True)  # the seed's result is written; its last weights are not the selected model
    return result


def _model_saver(cfg: DictConfig, model: TextClassifier, arch: Architecture, dm, settings: dict,
                 path: Path) -> Callable[[dict], None]:
    """``evaluation -> None``: writes ``model``'s weights, as they are, with that evaluation to ``path``
    (and the ``settings`` it was built with, and what encodes new text for it: the task's tokenizer
    and vocabulary, its class names)."""
    names = cfg.task.get("label_names")
    spec = text_child_spec(model, arch, text_input=dm.text_encoder().to_dict(),
                           label_names=None if names is None else list(names), **settings)
    return lambda evaluation: save_child(path, weights_of(model), spec, evaluation)


def retrain(cfg: DictConfig, arch: Architecture, dm, run_dir: Path) -> dict:
    """Train ``arch`` from scratch for ``retrain.seeds`` seeds; writes retrain/results.json."""
    r = cfg.retrain
    out = run_dir / "retrain"
    out.mkdir(parents=True, exist_ok=True)
    seeds = [cfg.seed + i for i in range(r.seeds)]
    log.info("retrain: %d seed(s), D=%d, %d heads, recompute %s%s", len(seeds), r.dim, r.heads,
             bool(r.get("recompute", False)), windows_said(cfg))
    per_seed = []
    for seed in seeds:
        earlier = (out / f"seed_{seed}.json").exists()
        result = train_child(cfg, arch, dm, out, seed, f"retrain seed {seed}", save_model=True, say_done=False)
        per_seed.append(result)
        # one line a seed, also for one an earlier invocation trained (it had two, one after the other)
        log.info("retrain: seed %d -> val %.4f test %.4f (step %d%s)", seed, result["val_acc"], result["test_acc"],
                 result["step"], "; done before this invocation" if earlier else "")
    # what the examples were (a document task ignores data.train_level); a DataModule of one's own may not say
    level = getattr(dm, "train_level", cfg.data.train_level)
    results = {
        **seed_summary(arch, seeds, per_seed, SELECTION_RULE),
        "protocol": {"dim": r.dim, "heads": r.heads, "epochs": r.epochs, "lr": r.lr, "clip": r.clip,
                     "batch_size": r.batch_size, "eval_every": r.eval_every, "train_level": level,
                     "train_examples": len(dm.train_set) if r.train_subset is None else min(r.train_subset, len(dm.train_set)),
                     "val_examples": len(dm.val_set), "test_examples": len(dm.test_set),
                     "lower_precision": lower_precision(cfg)},
    }
    atomic_write_json(out / "results.json", results)
    return results
