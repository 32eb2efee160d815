"""The SGC op (``src.models.graph.GraphOp``, normalisation cached per graph) against PyG's
``SGConv`` (normalising on every call) on Cora, 64 channels in and out, K=2, 1 thread: median ms of
a forward, and of a forward and backward, and whether the outputs are equal bit for bit.

Run from the repository root: ``.venv/bin/python experiments/bench/sgc_cached_norm.py`` with
``AUTOATTEND_DATA_DIR`` holding planetoid/Cora (default ``/work/shared/data``; copied to /tmp).
"""
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch  # noqa: E402
from torch_geometric.datasets import Planetoid  # noqa: E402
from torch_geometric.nn import SGConv  # noqa: E402

from src.models.graph import GraphOp  # noqa: E402

torch.set_num_threads(1)
data_dir = os.environ.get("AUTOATTEND_DATA_DIR", "/work/shared/data")
shutil.copytree(f"{data_dir}/planetoid/Cora", "/tmp/sgc_cached_norm/Cora", dirs_exist_ok=True)
edge_index = Planetoid("/tmp/sgc_cached_norm", "Cora")[0].edge_index
x = torch.randn(2708, 64, requires_grad=True)
torch.manual_seed(0)
op = GraphOp("sgc", 64, 64, dropout=0.0, attn_dropout=0.0, sgc_k=2)
pyg = SGConv(64, 64, K=2)
pyg.load_state_dict(op.conv.state_dict())


def median_ms(step, reps: int) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            step()
        times.append((time.perf_counter() - start) / reps)
    return statistics.median(times) * 1e3


for name, module in (("PyG SGConv", pyg), ("GraphOp sgc (cached)", op)):
    forward = median_ms(lambda: module(x, edge_index), 200)
    both = median_ms(lambda: module(x, edge_index).sum().backward(), 50)
    print(f"{name}: forward {forward:.2f} ms, forward + backward {both:.2f} ms")
print("equal outputs:", torch.equal(op(x, edge_index), pyg(x, edge_index)))
