"""Benchmark harness behind ``python -m src.bench`` (``make bench``; the entry point checks the settings
before this module, torch and the models are imported).

Measures, at the paper's supernet configuration (D=64, 8 heads, 24 layers, ``space.sharing``,
16 sampled architectures x one batch of 128 SST-5 sentences, summed gradients, clip, Adam):

* ``supernet_step_s``       one supernet training step (median of ``bench.reps`` after warm-up)
* ``supernet_build_s``      building the supernet; ``supernet_modules`` / ``supernet_params``
* ``supernet_peak_rss_mb``  peak resident memory of the process after supernet training steps
  (``bench.arch_workers`` architectures at a time: compare ``bench.arch_workers=1`` in its own
  process, as peak memory only grows), with Adam's moments created for every parameter before
  the steps, as a long run holds them (``supernet_adam_state_mb``; ``bench.optimizer_state``
  float32, the default, or the labelled bfloat16 option; ``bench.recompute`` as ``supernet.recompute``;
  ``bench.optimizer_offload`` as ``supernet.optimizer_offload``: the moments in a file in the run
  directory, mapped in only while a step updates them)
  and one checkpoint written as the pipeline writes them (``supernet_checkpoint_s``)
* ``candidate_score_s``     scoring one candidate on the 1,101 SST-5 dev sentences
* ``retrain_step_s``        one training step of the published SST-5 architecture (D=256, batch 128)
* ``graph_*``               the graph supernet on Cora, when the graph half is installed (on the same device)

Memory figures (``*_mb``) are in MB of 10^6 bytes, as ``memory_unit`` in ``bench.json`` says
(files without that key, written before, hold MiB of 2^20 bytes under the same names).

Batches come from the real SST-5 trees when ``paths.data_dir`` holds them, else from a generated
stand-in with SST-5's sentence-length distribution. Figures are printed and written to
``<run dir>/bench.json``; the path of that file is printed last. Timing is never a test assertion.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import shutil
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from src.estimator import SupernetEstimator
from src.models import cpu_kernels
from src.models.multi_arch import backward_archs
from src.models.optim import check_offload, check_state_dtype, materialise_adam_state, supernet_adam
from src.lit.checkpoint_io import StreamingCheckpointIO
from src.models.text import TextClassifier
from src.pipeline.common import make_loader, set_float32_precision, warn_oversubscribed
from src.pipeline.config import resolve_arch, run_dir_of, shipped_space
from src.space import FunctionalSpace
from src.utils import allocator
from src.utils.cpu import cpu_facts, describe
from src.utils.device import device_of
from src.utils.io import atomic_write_json
from src.utils.memory import MEMORY_UNIT, peak_rss_bytes, to_mb
from src.utils.parallel import resolve_workers

log = logging.getLogger("src.bench")

# SST-5 train sentence lengths (tokens): used only when the real trees are absent.
SST5_LENGTH_MEAN, SST5_LENGTH_STD, SST5_MAX_LEN = 19.1, 9.3, 56


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, reps: int, warmup: int, device: torch.device) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _peak_rss_mb() -> float:
    """Peak resident memory in MB of 10^6 bytes (``ru_maxrss`` is KiB on Linux)."""
    return to_mb(peak_rss_bytes())


class _StandIn:
    """Generated SST-5-like data: 5 classes, 20k-word vocabulary, 50-d vectors, real length profile."""

    num_classes = 5

    def __init__(self, seed: int = 0, n_train: int = 1024, n_val: int = 1101):
        g = torch.Generator().manual_seed(seed)
        self.embeddings = torch.randn(20_000, 50, generator=g)
        self.embeddings[0] = 0

        def split(n):
            lengths = (torch.randn(n, generator=g) * SST5_LENGTH_STD + SST5_LENGTH_MEAN).round().clamp(1, SST5_MAX_LEN)
            return [(torch.randint(2, 20_000, (int(t),), generator=g), int(torch.randint(0, 5, (1,), generator=g)))
                    for t in lengths]

        self.train_set, self.val_set = split(n_train), split(n_val)


def _data(cfg: DictConfig):
    from src.data.sst import SSTDataModule

    trees = Path(cfg.paths.data_dir) / "sst" / "trees"
    if all((trees / f).is_file() for f in ("train.txt", "dev.txt", "test.txt")):
        dm = SSTDataModule(cfg.paths.data_dir, 5, train_level="sentence", cache_dir=cfg.paths.cache_dir, seed=cfg.seed)
        dm.prepare_data()
        dm.setup()
        return dm, f"real SST-5 trees ({trees})"
    return _StandIn(cfg.seed), "generated stand-in with SST-5's length distribution"


def text_figures(cfg: DictConfig) -> dict:
    b = cfg.bench
    device = device_of(cfg)
    dm, data_source = _data(cfg)
    train_batch = next(iter(make_loader(dm.train_set, b.batch_size, True, cfg.seed)))
    train_batch = {k: v.to(device) for k, v in train_batch.items()}
    figures: dict = {"data": data_source, "batch_max_len": int(train_batch["tokens"].shape[1])}

    paper = shipped_space("text")  # the space _check_bench_reads compares the command's space.* with
    space = FunctionalSpace(b.num_layers, ops=tuple(paper["ops"]), priors=bool(paper["priors"]),
                            kinds=tuple(paper["kinds"]))
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=b.dim, heads=b.heads,
                                    sharing=cfg.space.sharing).to(device)
    figures["supernet_build_s"] = round(time.perf_counter() - t0, 2)
    model.encoder.recompute = figures["supernet_recompute"] = bool(b.get("recompute", False))
    figures["supernet_modules"] = len(model.encoder.ops)
    figures["supernet_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("supernet built: %d op modules, %.1f M parameters, %.1f s", figures["supernet_modules"],
             figures["supernet_params"] / 1e6, figures["supernet_build_s"])
    state_dtype = check_state_dtype(b.get("optimizer_state", "float32"), "bench.optimizer_state")
    offload = check_offload(b.get("optimizer_offload", False), "bench.optimizer_offload")
    run_dir = run_dir_of(cfg)
    opt = supernet_adam([p for p in model.parameters() if p.requires_grad], lr=5e-4 / b.archs_per_step,
                        state_dtype=state_dtype, seed=cfg.seed,
                        offload_dir=run_dir / "adam_state" if offload else None)
    # Adam's moments as a long run holds them (every op module sampled), not as after a few steps
    figures["supernet_optimizer_state"] = state_dtype
    figures["supernet_optimizer_offload"] = offload
    figures["supernet_adam_state_mb"] = round(to_mb(materialise_adam_state(opt)), 2)
    rng = random.Random(cfg.seed)
    workers = resolve_workers(b.get("arch_workers", "auto"), device, "bench.arch_workers")
    figures["supernet_arch_workers"] = workers

    def supernet_step() -> None:
        opt.zero_grad()
        backward_archs(model, train_batch["tokens"], train_batch["mask"], train_batch["labels"],
                       space.sample_distinct(b.archs_per_step, rng), workers=workers)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    model.train()
    times = _timed(supernet_step, b.reps, b.warmup, device)
    figures["supernet_step_s"] = round(statistics.median(times), 3)
    figures["supernet_sentence_archs_per_s"] = round(b.batch_size * b.archs_per_step / figures["supernet_step_s"], 1)
    # a training run also writes checkpoints (weights and Adam's state, as the pipeline's trainer does)
    checkpoint = run_dir / "supernet_checkpoint.ckpt"
    t0 = time.perf_counter()
    StreamingCheckpointIO().save_checkpoint({"state_dict": model.state_dict(), "optimizer_states": [opt.state_dict()]},
                                            checkpoint)
    figures["supernet_checkpoint_s"] = round(time.perf_counter() - t0, 2)
    checkpoint.unlink()
    if offload:
        shutil.rmtree(run_dir / "adam_state")
    figures["supernet_peak_rss_mb"] = round(_peak_rss_mb(), 0)
    if device.type == "cuda":
        figures["supernet_peak_cuda_mb"] = round(to_mb(torch.cuda.max_memory_allocated()), 0)
    log.info("supernet step: median %.2f s over %d reps", figures["supernet_step_s"], b.reps)

    val = make_loader(dm.val_set, b.eval_batch_size, False, cfg.seed)
    score_workers = resolve_workers(b.get("score_workers", "auto"), device, "bench.score_workers")
    figures["candidate_score_workers"] = score_workers
    estimator = SupernetEstimator(model, val, device, bucket_size=b.get("score_bucket_size"),
                                  workers=score_workers)
    model.eval()  # as the search stage does, once for all candidates
    candidates = iter(space.sample_distinct(b.reps + b.warmup, random.Random(cfg.seed + 1)))
    times = _timed(lambda: estimator(next(candidates)), b.reps, b.warmup, device)
    figures["candidate_score_s"] = round(statistics.median(times), 3)
    figures["candidate_score_examples"] = estimator.num_examples
    figures["candidate_score_bucket_size"] = estimator.bucket_size
    log.info("candidate scoring: median %.2f s on %d examples", figures["candidate_score_s"], estimator.num_examples)
    del model, opt, estimator

    arch = resolve_arch("published_sst5")
    torch.manual_seed(cfg.seed)
    child = TextClassifier.child(dm.embeddings, dm.num_classes, arch, dim=b.retrain_dim, heads=b.heads).to(device)
    copt = torch.optim.Adam([p for p in child.parameters() if p.requires_grad], lr=5e-4)

    def retrain_step():
        copt.zero_grad()
        F.cross_entropy(child(train_batch["tokens"], train_batch["mask"]), train_batch["labels"]).backward()
        torch.nn.utils.clip_grad_norm_(child.parameters(), 1.0)
        copt.step()

    child.train()
    times = _timed(retrain_step, b.reps, b.warmup, device)
    figures["retrain_step_s"] = round(statistics.median(times), 3)
    log.info("retrain step (published SST-5, D=%d): median %.2f s", b.retrain_dim, figures["retrain_step_s"])
    return figures


def graph_figures_if_available(cfg: DictConfig) -> dict:
    """The graph figures, or ``None`` for each with a note where PyG (imported by the graph code
    only when it runs) or the graph bench cannot be imported: the text figures are still written."""
    import importlib.util

    try:
        from src.bench_graph import graph_figures
        installed = importlib.util.find_spec("torch_geometric") is not None
    except ImportError:
        installed = False
    if not installed:
        return {"graph_supernet_step_s": None, "graph_candidate_score_s": None,
                "graph_note": "graph half not installed"}
    return graph_figures(cfg.paths.data_dir, reps=cfg.bench.reps, warmup=cfg.bench.warmup, seed=cfg.seed,
                         cache_dir=cfg.paths.cache_dir, device=device_of(cfg))


def kernels_fact(device: torch.device) -> str:
    """What the GRU and attention ops run on, for the machine facts. On the CPU the fused kernels are
    built (or fail) here, before any timing; on a GPU they never run (they take CPU tensors only),
    so nothing is built."""
    if device.type == "cpu" and cpu_kernels.get_backend() != "torch":
        cpu_kernels.kernel_error()
    return cpu_kernels.status_on(device)


def measure(cfg: DictConfig) -> None:
    """Print the machine facts, measure every figure, write ``bench.json`` (settings already checked
    by :func:`src.bench.run_bench`)."""
    device = device_of(cfg)
    if cfg.hardware.get("threads"):
        torch.set_num_threads(int(cfg.hardware.threads))
        warn_oversubscribed(int(cfg.hardware.threads), "hardware.threads")
    precision = set_float32_precision(cfg.hardware.get("matmul_precision"))
    cpu_kernels.set_backend(cfg.hardware.get("kernels") or "auto")
    machine_kernels = kernels_fact(device)
    run_dir = run_dir_of(cfg)
    machine = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
               "cpu": cpu_facts(), "python": platform.python_version(),
               "allocator": allocator.active(), "kernels": machine_kernels, "float32_precision": precision}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()
    print("machine: " + ", ".join(f"{k}={describe(v) if k == 'cpu' else v}" for k, v in machine.items()))
    figures = {"machine": machine, "config": {"sharing": cfg.space.sharing, **dict(cfg.bench)},
               "memory_unit": MEMORY_UNIT}
    figures.update(text_figures(cfg))
    figures.update(graph_figures_if_available(cfg))
    for key, value in figures.items():
        if key not in ("machine", "config"):
            print(f"{key}: {value}")
    path = atomic_write_json(run_dir / "bench.json", figures)
    print(json.dumps({"bench_json": str(path)}))
    print(path)


