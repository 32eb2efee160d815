"""A synthetic graph file of PPI's size (24 graphs: 20 / 2 / 2; 56,944 nodes, 818,716 directed
edges, 50 features, 121 labels), for timing +task=graph_file at that scale. Labels depend on the
node's features and its neighbours' (so there is something to learn); not PPI's data."""
import sys

import numpy as np

rng = np.random.default_rng(0)
graphs, nodes_total, edges_total, features, labels = 24, 56_944, 818_716, 50, 121
sizes = rng.multinomial(nodes_total - graphs * 500, np.ones(graphs) / graphs) + 500
x, edges, graph_of, offset = [], [], [], 0
for g, n in enumerate(sizes):
    e = int(edges_total * n / nodes_total) // 2
    src = rng.integers(0, n, e)
    dst = (src + rng.geometric(0.01, e)) % n  # mostly local edges
    both = np.concatenate([np.stack([src, dst]), np.stack([dst, src])], axis=1) + offset
    edges.append(both)
    x.append(rng.standard_normal((n, features)).astype(np.float32))
    graph_of.append(np.full(n, g))
    offset += n
x = np.concatenate(x)
edge_index = np.concatenate(edges, axis=1).astype(np.int64)
w = rng.standard_normal((features, labels)).astype(np.float32)
agg = np.zeros_like(x)
np.add.at(agg, edge_index[1], x[edge_index[0]])
deg = np.bincount(edge_index[1], minlength=len(x)).clip(1)[:, None]
y = ((x + agg / deg) @ w > 0.5).astype(np.float32)
batch = np.concatenate(graph_of)
split = np.where(batch < 20, 0, np.where(batch < 22, 1, 2))
np.savez(sys.argv[1], x=x, edge_index=edge_index, y=y, batch=batch,
         train_mask=split == 0, val_mask=split == 1, test_mask=split == 2)
print(len(x), edge_index.shape[1], y.mean())
