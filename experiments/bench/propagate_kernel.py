"""The propagate kernel (``src/models/propagate_kernel.cpp``) against PyG's gather-scatter path on
Cora, in one process, 1 thread: ``pyg`` runs the graph ops' propagation through PyG's ``propagate``
(``src.models.graph.use_kernel`` patched to say no), ``kernel`` through the kernel; the project's
other kernels (dropout masks) run in both:

1. the gcn, sgc, sage, arma, cheb and gat8 ops (64 -> 64) on Cora, forward and forward + backward;
2. ``src.bench_graph.graph_figures`` (the ``make bench`` graph figures: supernet step, candidate scoring);
3. two children trained as the retrain trains them (``fit_child``, the default Cora settings,
   seeds 0-2, the two paths in turn): the GCN baseline and the re-ranked winner of
   ``runs/cora_rerank100_relu_last_identity_2026-12-06`` (sgc and gcn ops), seconds and whether
   every evaluation of the two paths is the same;
4. the ops on a new random graph every call (4,700 nodes, 70,000 edges: two PPI graphs' size), as
   mini-batches of graphs meet them: the kernel's CSR view is then made on every call.

Run from the repository root: ``.venv/bin/python experiments/bench/propagate_kernel.py`` with
``AUTOATTEND_DATA_DIR`` holding planetoid/Cora (default ``/work/shared/data``).
"""
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import torch
from omegaconf import open_dict

from src.bench_graph import graph_figures
from src.models import cpu_kernels
import src.models.graph as graph_module
from src.models.graph import GraphOp
from src.pipeline import graph_stages
from src.pipeline.common import build_datamodule
from src.space import Architecture
from tests.conftest import compose_config

torch.set_num_threads(1)
DATA = os.environ.get("AUTOATTEND_DATA_DIR", "/work/shared/data")
PATHS = ("pyg", "kernel")
_use_kernel = graph_module.use_kernel


def set_path(name: str) -> None:
    graph_module.use_kernel = _use_kernel if name == "kernel" else (lambda x: False)
OPS = ("gcn", "sgc", "sage", "arma", "cheb", "gat8")


def median_ms(fn, reps=30, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


cfg = compose_config("search", ["+task=cora"])
with open_dict(cfg):
    cfg.paths.data_dir = DATA
    cfg.paths.cache_dir = "/tmp/propagate_kernel_cache"
dm = build_datamodule(cfg)
dm.setup("fit")
edge_index = dm.graph["edge_index"]
n = dm.graph["x"].size(0)
print(f"Cora: {n} nodes, {edge_index.size(1)} edges; torch {torch.__version__}, threads {torch.get_num_threads()}")
print(f"kernels: {cpu_kernels.kernel_error() or 'built'}")

g = torch.Generator().manual_seed(0)
x = torch.randn(n, 64, generator=g)
print("\n1. one op, 64 -> 64 channels, median of 30")
for op_name in OPS:
    for path in PATHS:
        set_path(path)
        torch.manual_seed(0)
        op = GraphOp(op_name, 64, 64, dropout=0.0, attn_dropout=0.0)
        xg = x.clone().requires_grad_(True)
        fwd = median_ms(lambda: op(x, edge_index))

        def step():
            op(xg, edge_index).sum().backward()

        both = median_ms(step)
        print(f"   {op_name:4s} {path:6s}: forward {fwd:6.3f} ms, forward + backward {both:6.3f} ms")

print("\n2. make bench's graph figures (src.bench_graph.graph_figures, 1 thread, reps 5)")
for path in PATHS:
    set_path(path)
    f = graph_figures(DATA, reps=5, warmup=1, cache_dir="/tmp/propagate_kernel_cache", download=False)
    print(f"   {path:6s}: supernet step {f['graph_supernet_step_s'] * 1e3:.1f} ms, "
          f"candidate scoring {f['graph_candidate_score_s'] * 1e3:.1f} ms")

print("\n3. children trained as the retrain trains them (default Cora settings)")
archs = {"gcn": Architecture.load(ROOT / "src/space/archs/gcn.yaml"),
         "rerank winner": Architecture.load(
             ROOT / "experiments/runs/cora_rerank100_relu_last_identity_2026-12-06/search/best_arch.yaml")}
hp = graph_stages._child_settings(cfg, None)
for name, arch in archs.items():
    results = {}
    for seed in (0, 1, 2):
        for path in PATHS:
            set_path(path)
            t = time.perf_counter()
            m = graph_stages.fit_child(cfg, arch, dm, hp, seed, Path("/tmp/propagate_kernel_fit"), "x")
            seconds = time.perf_counter() - t
            results[path, seed] = m.history
            print(f"   {name} {path:6s} seed {seed}: {seconds:5.2f} s, {len(m.history)} evaluations, "
                  f"selected {m.selected()}")
    same = all(results["pyg", s] == results["kernel", s] for s in (0, 1, 2))
    print(f"   {name}: every evaluation the same on both paths: {same}")

print("\n4. a new graph every call (4,700 nodes, 70,000 random edges), forward + backward, median of 18")
n, e = 4700, 70000
graphs = [torch.randint(0, n, (2, e), generator=g) for _ in range(20)]
x = torch.randn(n, 64, generator=g, requires_grad=True)
for op_name in OPS:
    for path in PATHS:
        set_path(path)
        torch.manual_seed(0)
        op = GraphOp(op_name, 64, 64, dropout=0.0, attn_dropout=0.0)
        times = []
        for edge_index in graphs:
            edge_index = edge_index.clone()  # a new tensor: every cache keyed by the graph starts again
            t = time.perf_counter()
            op(x, edge_index).sum().backward()
            times.append(time.perf_counter() - t)
        print(f"   {op_name:4s} {path:6s}: {1e3 * statistics.median(times[2:]):6.2f} ms")
