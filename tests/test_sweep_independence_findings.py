"""Is each job of a sweep independent of the jobs before it? Findings of a sweep-independence audit (2026-12-07).

A Hydra multirun runs its jobs one after another in one process. Checked by hand on generated data
(``budget=smoke hardware=cpu``), each sweep job's records against the same job alone (times and paths
aside): ``-m +task=cora,sst2``, ``-m space.sharing=full,none``, ``-m seed=1,0`` (Cora), ``-m seed=1,0``
with ``hardware.num_workers=2``, ``src.retrain -m arch=gat,gcn``, a failed job (CiteSeer missing)
before a good one; and in one process (:func:`src.pipeline.run.run_search` / ``run_retrain`` one after
another, since a sweep refuses jobs that differ only in ``hardware.*``): ``hardware.kernels`` fused
then torch then fused (and torch then fused), ``hardware.precision`` bf16-mixed and 64-true after
float32 jobs, ``hardware.matmul_precision=medium`` then unset, Cora then PPI then SST-2, Cora then
``+task=graph_file`` then ``+task=csv`` then a graph_file retrain, a graph retrain then a text retrain.
Every job's records were its own; each job's log held its own lines alone, no console handler was
doubled, and after each job the run-folder lock, the Ctrl-C hold, the signal handlers, torch's thread
count, float32 precision flags, default dtype and deterministic flag, and the kernel backend were
those of a fresh process (denormals are not flushed once the kernels are loaded).

Found and mended: a graph job's cached sparse-feature structures outlived it; Lightning's
``PL_GLOBAL_SEED`` / ``PL_SEED_WORKERS`` (``pl.seed_everything`` in a retrain) stayed in the environment,
and a later job's supernet loaders got Lightning's worker seeding (no change in any record while the
workers draw no random numbers: ``hardware.num_workers=2`` gave the same records); and, read in the
code, the graph children's worker processes trained without the job's ``hardware.kernels`` and
``hardware.matmul_precision`` (``tests/test_graph_stages.py``).
"""

from __future__ import annotations

import gc
import os
import subprocess
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from tests.conftest import compose_config
from tests.helpers import cli_command, write_tiny_planetoid, write_tiny_sst


# --- findings ------------------------------------------------------------------------------------------


def test_a_graph_job_leaves_none_of_its_tensors_in_the_sparse_product_cache(tmp_path):
    """``sparse_linear`` caches a coalesced COO tensor's CSR structure keyed by its index storage
    (``_csr_pair``) and keeps the index tensor alive so the key cannot be reused; nothing dropped an entry
    but an eviction at the ninth, so after a graph search had returned (its DataModule and models gone)
    its features' indices were still held and the next jobs of a sweep carried them (about 40 MB a
    PubMed job, up to 8 jobs' worth); the job's end now drops them. ``_DERIVED``, the
    cache of what is derived from a graph's edges, is keyed by a weak reference and empties (checked)."""
    from src.models import graph
    from src.pipeline import run

    data = write_tiny_planetoid(tmp_path / "data")
    cfg = compose_config("search", ["+task=cora", "budget=smoke", "hardware=cpu", "graph.retrain.seeds=0"])
    with open_dict(cfg):
        cfg.paths.data_dir, cfg.paths.cache_dir = str(data), str(tmp_path / "cache")
        cfg.paths.output_dir = str(tmp_path / "run")
    graph._CSR_CACHE.clear()
    threads = torch.get_num_threads()
    try:
        run.run_search(cfg)
    finally:
        torch.set_num_threads(threads)
    gc.collect()
    assert not graph._DERIVED  # the edge-derived cache lets the job's graph go
    held = [tuple(pair.indices.shape) for pair in graph._CSR_CACHE.values()]
    assert held == [], f"after the job: {len(held)} sparse index tensor(s) still held, shapes {held}"


# --- confirmed independent, not pinned elsewhere ------------------------------------------------------


def _hardware_state() -> dict:
    from src.models import cpu_kernels

    state = {"threads": torch.get_num_threads(), "matmul": torch.get_float32_matmul_precision(),
             "cudnn_tf32": torch.backends.cudnn.allow_tf32, "cuda_tf32": torch.backends.cuda.matmul.allow_tf32,
             "dtype": torch.get_default_dtype(), "deterministic": torch.are_deterministic_algorithms_enabled(),
             "backend": cpu_kernels.get_backend()}
    for name in ("mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn", "cuda.matmul", "cudnn.conv", "cudnn.rnn"):
        group, op = name.split(".")
        state[name] = getattr(getattr(getattr(torch.backends, group), op, None), "fp32_precision", None)
    return state


def test_setup_hardware_leaves_no_setting_of_the_job_before():
    """A job's hardware set-up gives the same torch and kernel state whatever job came before: after a
    job with one thread, ``matmul_precision=medium`` and ``kernels=torch``, a text job with none of them
    set computes with the process's starting threads, float32 ``highest`` (TF32 off in cuDNN too, and
    oneDNN's matmul in IEEE float32) and the ``auto`` backend, as when it runs first."""
    from src.pipeline.common import setup_hardware

    before = _hardware_state()
    plain = compose_config("search", ["+task=sst2", "hardware=cpu"])
    other = compose_config("search", ["+task=sst2", "hardware=cpu", "hardware.threads=1",
                                      "hardware.matmul_precision=medium", "hardware.kernels=torch"])
    try:
        setup_hardware(plain)
        first = _hardware_state()
        setup_hardware(other)
        changed = _hardware_state()
        assert changed["threads"] == 1 and changed["matmul"] == "medium" and changed["backend"] == "torch"
        setup_hardware(plain)
        assert _hardware_state() == first
    finally:
        setup_hardware(plain)
        torch.set_num_threads(before["threads"])


def test_each_job_of_a_sweep_with_a_failed_job_logs_to_its_own_file_alone(tmp_path):
    """``-m supernet.dim=15,16``: the first job is refused (15 is not a multiple of the heads), the second
    runs. The refused job's log holds its ``error:`` line and none of the second job's lines; the second
    job's log holds its own lines (its run folder, its summary), no line of the first, once each; the
    console shows each job's summary once (no console handler doubled by the second job's logging)."""
    data = tmp_path / "data"
    write_tiny_sst(data, n_train=60, n_dev=20, n_test=20)
    sweep = tmp_path / "sweep"
    command = cli_command("src.search", "-m", "+task=sst2", "budget=smoke", "hardware=cpu", "retrain.seeds=1",
                          "supernet.dim=15,16", f"hydra.sweep.dir={sweep}", data_dir=data, tmp=tmp_path)
    proc = subprocess.run(**command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (bad,) = [p for p in sweep.iterdir() if p.name.endswith("supernet.dim=15")]
    (good,) = [p for p in sweep.iterdir() if p.name.endswith("supernet.dim=16")]
    bad_log, good_log = ((p / "search.log").read_text() for p in (bad, good))
    assert "error: " in bad_log and str(good) not in bad_log and "summary: " not in bad_log
    assert "error: " not in good_log and str(bad) not in good_log
    assert good_log.count(f"run dir: {good}") == 1 and good_log.count("summary: ") == 1
    lines = good_log.splitlines()
    assert len(lines) == len(set(lines)), "a line written twice to the job's log"
    assert proc.stdout.count("summary: ") == 1 and proc.stdout.count(f"run dir: {good}") == 1
    assert os.path.isfile(good / "summary.json") and not (bad / "summary.json").exists()


def test_a_job_leaves_lightnings_seed_in_the_environment_as_the_process_started(monkeypatch):
    """``pl.seed_everything`` (a retrain's seeds) writes ``PL_GLOBAL_SEED`` / ``PL_SEED_WORKERS`` to the
    environment, and a later job's loaders got Lightning's worker seeding from it; each job now ends with
    them as the process started (absent here; a value the user set is put back)."""
    import lightning.pytorch as pl

    from src.pipeline import run

    monkeypatch.setattr(run, "_LIGHTNING_SEED_ENV", {"PL_GLOBAL_SEED": None, "PL_SEED_WORKERS": "0"})
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.setenv("PL_SEED_WORKERS", "0")

    @run._holding_the_run_dir
    def job(cfg):
        pl.seed_everything(7, workers=True, verbose=False)
        assert os.environ["PL_GLOBAL_SEED"] == "7" and os.environ["PL_SEED_WORKERS"] == "1"
        return {}

    job(None)
    assert "PL_GLOBAL_SEED" not in os.environ and os.environ["PL_SEED_WORKERS"] == "0"
