"""GAT (1 and 8 heads) and the edge-softmax attention (8 heads) with their sums over in-edges on the
propagate kernel (``kernel``) or PyG's path (``pyg``: ``src.models.graph.use_kernel`` patched to say no),
on a random graph of Cora's size (2,708 nodes, 10,556 edges), 64 channels, 1 thread: inference forward
and training forward + backward, median of 40 after 5, in three rounds that alternate the paths
(the host's noise shows between rounds).

Run from the repository root: ``.venv/bin/python experiments/bench/propagate_kernel_attention.py``.
"""
import sys, time, statistics; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch
import src.models.graph as gm
torch.set_num_threads(1)
real = gm.use_kernel
g = torch.Generator().manual_seed(0)
n = 2708
ei = torch.randint(0, n, (2, 10556), generator=g)
x = torch.randn(n, 64, generator=g)
def med(fn, reps=40):
    for _ in range(5): fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)
res = {}
for rnd in range(3):
    for path in ("pyg", "kernel"):
        gm.use_kernel = real if path == "kernel" else (lambda t: False)
        for name in ("gat8", "gat1", "attention"):
            torch.manual_seed(0)
            if name == "attention":
                att = gm.EdgeSoftmaxAttention(heads=8).train()
                q, k, v = (x.clone().requires_grad_(True) for _ in range(3))
                f = lambda: att(q, k, v, ei).sum().backward()
                fi = lambda: att(q.detach(), k.detach(), v.detach(), ei)
            else:
                op = gm.GraphOp(name, 64, 64, 0.0, 0.0).train()
                xg = x.clone().requires_grad_(True)
                f = lambda: op(xg, ei).sum().backward()
                fi = lambda: op(x, ei)
            with torch.inference_mode():
                tf = med(fi)
            res.setdefault((name, path), []).append((tf, med(f)))
for (name, path), v in sorted(res.items()):
    print(f"{name:9s} {path:6s} inference fwd " + " / ".join(f"{a:.2f}" for a, _ in v) + " ms; train fwd+bwd " + " / ".join(f"{b:.2f}" for _, b in v) + " ms")
