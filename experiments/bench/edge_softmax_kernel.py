"""GAT (8 and 1 heads) and the edge-softmax attention (8 heads) on a random graph of Cora's size
(2,708 nodes, 10,556 edges), 64 channels, 1 thread, the code of the repository this file is run
from (``sys.argv[1]``: its root): inference forward and training forward + backward (dropout 0.6 on
the attention weights, as the Cora protocol trains GAT), median of 40 after 5 warm-up calls.

Run from the repository root: ``.venv/bin/python experiments/bench/edge_softmax_kernel.py <root>``
for the current code and a worktree of an older commit, alternately (``experiments/README.md``,
"The softmax on the propagate kernel").
"""
import statistics
import sys
import time

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402

import src.models.graph as gm  # noqa: E402

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
n = 2708
edge_index = torch.randint(0, n, (2, 10556), generator=g)
x = torch.randn(n, 64, generator=g)


def median_ms(fn, reps=40):
    for _ in range(5):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


for name in ("gat8", "gat1", "attention"):
    torch.manual_seed(0)
    if name == "attention":
        att = gm.EdgeSoftmaxAttention(heads=8, attn_dropout=0.6).train()
        q, k, v = (x.clone().requires_grad_(True) for _ in range(3))
        train = lambda: att(q, k, v, edge_index).sum().backward()  # noqa: E731
        infer = lambda: att.eval()(x, x, x, edge_index)  # noqa: E731
    else:
        op = gm.GraphOp(name, 64, 64, 0.6, 0.6).train()
        xg = x.clone().requires_grad_(True)
        train = lambda: op.train()(xg, edge_index).sum().backward()  # noqa: E731
        infer = lambda: op.eval()(x, edge_index)  # noqa: E731
    with torch.inference_mode():
        inference = median_ms(infer)
    training = median_ms(train)
    print(f"{sys.argv[1]:12s} {name:9s} inference fwd {inference:6.2f} ms; train fwd+bwd {training:6.2f} ms", flush=True)
