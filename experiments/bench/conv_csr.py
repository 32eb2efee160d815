"""PyG's convolutions over Cora given ``edge_index`` against a CSR ``adj_t`` (targets as rows, PyG's
torch.sparse input), 64 channels in and out, 1 thread: median ms of a forward and backward pass
over 5 x 50 calls, and how far the two outputs are apart. SGC uncached, as our op runs it.

Run: ``.venv/bin/python experiments/bench/conv_csr.py`` (reads ``/work/shared/data/planetoid/Cora``,
copied to /tmp).
"""
import shutil
import statistics
import time
import warnings

import torch
from torch_geometric.datasets import Planetoid
from torch_geometric.nn import GCNConv, SGConv, SAGEConv, ChebConv, ARMAConv, GATConv
from torch_geometric.utils import to_torch_csr_tensor
warnings.filterwarnings("ignore")
torch.set_num_threads(1)
shutil.copytree("/work/shared/data/planetoid/Cora", "/tmp/conv_csr/Cora", dirs_exist_ok=True)
d = Planetoid("/tmp/conv_csr", "Cora")[0]
n = d.num_nodes
ei = d.edge_index
adj_t = to_torch_csr_tensor(ei.flip(0), size=(n, n))  # rows = targets
x = torch.randn(n, 64, requires_grad=True)
def bench(conv, inp):
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(50):
            out = conv(x, inp); out.sum().backward()
        ts.append((time.perf_counter() - t) / 50)
    return statistics.median(ts) * 1e3
for name, make in (("gcn", lambda: GCNConv(64, 64, cached=True)), ("sgc", lambda: SGConv(64, 64, K=2)),
                   ("sage", lambda: SAGEConv(64, 64)), ("cheb", lambda: ChebConv(64, 64, K=2)),
                   ("arma", lambda: ARMAConv(64, 64)), ("gat8", lambda: GATConv(64, 8, heads=8))):
    torch.manual_seed(0); conv = make()
    try:
        a = conv(x, ei); conv2 = conv
        if hasattr(conv, "_cached_edge_index"): conv._cached_edge_index = None
        if hasattr(conv, "_cached_x"): conv._cached_x = None
        b = conv(x, adj_t)
        diff = float((a - b).abs().max())
        if hasattr(conv, "_cached_edge_index"): conv._cached_edge_index = None; conv._cached_adj_t = None
        if hasattr(conv, "_cached_x"): conv._cached_x = None
        t_ei = bench(conv, ei)
        if hasattr(conv, "_cached_edge_index"): conv._cached_edge_index = None; conv._cached_adj_t = None
        if hasattr(conv, "_cached_x"): conv._cached_x = None
        t_csr = bench(conv, adj_t)
        print(f"{name}: edge_index {t_ei:.2f} ms, CSR adj_t {t_csr:.2f} ms a forward+backward ({t_ei / t_csr:.2f}x); outputs {diff:.1e} apart")
    except Exception as e:
        print(f"{name}: CSR failed: {type(e).__name__}: {str(e).splitlines()[0][:150]}")
