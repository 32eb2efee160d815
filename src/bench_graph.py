"""Graph figures for ``make bench`` (called by :func:`src.bench_harness.graph_figures_if_available`).

On Cora (public split), at the default graph supernet (conf/graph/default.yaml: 2 layers, hidden
64, 8 attention heads, the 13 ops, dropout 0.7, Adam 5e-3 / 5e-4):

* ``graph_supernet_step_s``       one single-path supernet step (a sampled architecture, full-batch
                                  forward + backward + Adam), median over ``reps`` after warm-up;
* ``graph_candidate_score_s``     scoring one candidate on the 500 validation nodes with the shared
                                  weights (the search's unit of work), median over ``reps``;
* ``graph_supernet_peak_rss_mb``  peak resident memory while doing both (the process high-water
                                  mark is reset first where Linux allows it, else the process peak);
                                  on a GPU also ``graph_supernet_peak_cuda_mb`` (reset first);
* ``graph_supernet_params``, ``graph_supernet_modules``.

Memory figures are in MB of 10^6 bytes (``src.utils.memory``; ``bench.json``'s ``memory_unit``).

Each rep uses another architecture (a fixed random sequence), so the median is that of a typical
architecture. They run on ``device`` (``hardware``'s device, as the text figures; recorded in
``graph_config``). Timing is never a test assertion.
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from pathlib import Path

import torch

from src.utils.errors import AutoAttendError
from src.utils.memory import kib_to_bytes, peak_rss_bytes, to_mb

log = logging.getLogger("src.bench")


def _reset_peak_rss() -> bool:
    """Reset the process's resident-memory high-water mark (Linux >= 4.0); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb(reset: bool, status: Path = Path("/proc/self/status")) -> float:
    """Peak resident memory in MB of 10^6 bytes: ``VmHWM`` after a reset, else the process's
    ``ru_maxrss`` (both in KiB on Linux)."""
    if reset:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return to_mb(kib_to_bytes(int(line.split()[1])))
    return to_mb(peak_rss_bytes())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn, items: list, warmup: int, device: torch.device = torch.device("cpu")) -> float:
    for item in items[:warmup]:
        fn(item)
    _sync(device)
    times = []
    for item in items[warmup:]:
        t0 = time.perf_counter()
        fn(item)
        _sync(device)  # a GPU's kernels run asynchronously: time them, not their launch
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def graph_figures(data_dir: str, reps: int = 5, warmup: int = 1, seed: int = 0, cache_dir: str = "./.cache/autoattend",
                  sharing: str = "full", threads: int = 1, download: bool = True,
                  device: torch.device | str = "cpu") -> dict:
    """The graph benchmark figures (see the module docstring); ``None`` figures and a
    ``graph_note`` when the Cora files are absent and cannot be downloaded. At least 5 ``reps`` and 1
    ``warmup`` whatever is asked (each takes milliseconds); ``graph_config`` records those used."""
    from src.data.planetoid import PlanetoidDataModule
    from src.estimator import SupernetEstimator
    from src.lit.graph_modules import graph_score_batch, node_loss
    from src.models.graph import GraphNet
    from src.pipeline.config import shipped_space
    from src.space import FunctionalSpace

    reps, warmup = max(5, int(reps)), max(1, int(warmup))
    device = torch.device(device)
    empty = {"graph_supernet_step_s": None, "graph_candidate_score_s": None, "graph_supernet_peak_rss_mb": None}
    dm = PlanetoidDataModule("cora", data_dir=str(data_dir), cache_dir=str(cache_dir), download=download)
    try:
        dm.setup()
    except AutoAttendError as exc:
        log.warning("graph figures skipped: %s", exc)
        return {**empty, "graph_note": f"Cora unavailable: {exc}"}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # as the graph pipeline (graph.threads)
    try:
        paper = shipped_space("graph")  # its ops and kinds; the priors on, the paper's
        space = FunctionalSpace(num_layers=int(paper["num_layers"]), ops=tuple(paper["ops"]), priors=True,
                                kinds=tuple(paper["kinds"]))
        torch.manual_seed(seed)
        model = GraphNet.supernet(dm.num_features, dm.num_classes, space, hidden=64, heads=8, dropout=0.7,
                                  act="tanh", sharing=sharing).to(device)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-3, weight_decay=5e-4)
        batch = {k: v.to(device) for k, v in dm.graph.items()}
        archs = space.sample_distinct(warmup + reps, random.Random(seed))
        reset = _reset_peak_rss()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def step(arch):
            model.train()
            opt.zero_grad()
            node_loss(model(batch["x"], batch["edge_index"], arch), batch["y"], batch["train_mask"], False).backward()
            opt.step()

        step_s = _median_time(step, archs, warmup, device)
        estimator = SupernetEstimator(model, dm.split_batches("val"), device, score_batch=graph_score_batch(False))
        score_s = _median_time(estimator, archs, warmup, device)
        peak = _peak_rss_mb(reset)
        peak_cuda = to_mb(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    finally:
        torch.set_num_threads(before)
    figures = {
        "graph_supernet_step_s": round(step_s, 4),
        "graph_candidate_score_s": round(score_s, 4),
        "graph_supernet_peak_rss_mb": round(peak, 0),
        "graph_supernet_params": sum(p.numel() for p in model.parameters()),
        "graph_supernet_modules": len(model.encoder.ops),
        "graph_config": {"device": str(device), "task": "cora", "hidden": 64, "heads": 8, "layers": 2,
                         "sharing": sharing, "reps": reps,
                         "warmup": warmup, "threads": threads, "peak_rss": "reset before the graph figures" if reset
                         else "process peak"},
    }
    if peak_cuda is not None:
        figures["graph_supernet_peak_cuda_mb"] = round(peak_cuda, 0)
    log.info("graph supernet step: median %.4f s, candidate score: median %.4f s (Cora, %d reps)", step_s, score_s,
             reps)
    return figures
