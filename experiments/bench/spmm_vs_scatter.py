"""One GCN-normalised propagation over Cora (self loops added, 64 channels, 1 thread), forward only:
PyG's gather-scatter (index_select, mul, scatter_add_, as our graph ops run it without
torch-sparse) against one CSR sparse-dense product. Prints the median microseconds of each and its
largest difference to the scatter path.

Run: ``.venv/bin/python experiments/bench/spmm_vs_scatter.py`` with ``AUTOATTEND_DATA_DIR`` holding
planetoid/Cora (default ``/work/shared/data``; copied to /tmp, never written into).
"""
import os
import shutil
import statistics
import time
import warnings

import torch
from torch_geometric.datasets import Planetoid

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
torch.set_num_threads(1)
data_dir = os.environ.get("AUTOATTEND_DATA_DIR", "/work/shared/data")
shutil.copytree(f"{data_dir}/planetoid/Cora", "/tmp/spmm_vs_scatter/Cora", dirs_exist_ok=True)
ds = Planetoid("/tmp/spmm_vs_scatter", "Cora")
ei = ds[0].edge_index
n = ds[0].num_nodes
loops = torch.arange(n)
ei = torch.cat([ei, torch.stack([loops, loops])], 1)
deg = torch.zeros(n).scatter_add_(0, ei[1], torch.ones(ei.size(1)))
w = deg[ei[0]].rsqrt() * deg[ei[1]].rsqrt()
x = torch.randn(n, 64)
def scatter():
    m = x.index_select(0, ei[0]) * w.unsqueeze(1)
    return torch.zeros(n, 64).index_add_(0, ei[1], m)
def scatter_add():
    m = x.index_select(0, ei[0]) * w.unsqueeze(1)
    return torch.zeros(n, 64).scatter_add_(0, ei[1].unsqueeze(1).expand(-1, 64), m)
adj = torch.sparse_coo_tensor(torch.stack([ei[1], ei[0]]), w, (n, n)).coalesce().to_sparse_csr()
def spmm():
    return adj @ x
ref = scatter_add()
for name, f in (("index_select+mul+scatter_add_", scatter_add), ("index_select+mul+index_add_", scatter), ("CSR spmm", spmm)):
    out = f(); assert torch.allclose(out, ref, atol=1e-5)
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(200): f()
        ts.append((time.perf_counter() - t) / 200)
    print(f"{name}: {statistics.median(ts)*1e6:.0f} us per propagation (N={n}, nnz={ei.size(1)}, 64 channels); max diff to scatter_add_ {float((out-ref).abs().max()):.2e}")
