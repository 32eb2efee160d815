"""Counts behind the README's SST-5 figures (no timing):

* the bench's training batch (``make bench``: the first batch of 128 SST-5 training sentences,
  sentence level, seed 0, as ``src.bench_harness.text_figures`` draws it) and, for comparison, every batch of
  that epoch: the share of real tokens (real / B x T) and of real (query, key) pairs
  (sum of length^2 / B x T^2);
* scoring (``src.estimator.SupernetEstimator``'s fast path on the 1,101 dev sentences, the bench's
  ``eval_batch_size`` 1,024 loader, CPU bucket size 128): the length buckets, their padded positions
  (sum of B x T) and one node output's bytes (x 64 channels x 4 bytes);
* per candidate (the paper supernet, D=64, 8 heads, 24 layers, ``space.sharing=full``, scored on the
  CPU with the fused kernels; ``N`` candidates from ``space.sample_distinct(N, Random(1))``): every op
  the dispatcher sees is recorded; multiply-adds are counted for oneDNN products
  (``mkldnn._linear_pointwise``: rows x in x out), convolutions (``aten.conv2d``: output elements x
  in-channels x kernel), the classifier (``aten.linear``), the GRU kernel's recurrence
  (``autoattend.gru_forward_scatter``: steps x 3D x D) and the attention kernel (``autoattend.attention``:
  2 x D per real (query, key) pair, summed over heads); GRU = its input products (weight 6D x D) +
  its recurrence. LayerNorm, max-pool, ReLU and additions are not multiply-adds and are left out.
  The distinct shapes of the oneDNN products and convolutions over a first and the later scorings
  (the stem's product runs only in the first: its output is cached).

    AUTOATTEND_DATA_DIR=../shared/data .venv/bin/python experiments/bench/sst5_padding_counts.py [N]
"""

import collections
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from src.data.sst import SSTDataModule  # noqa: E402
from src.estimator import SupernetEstimator  # noqa: E402
from src.models import cpu_kernels  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402
from src.space import FunctionalSpace  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
D, HEADS, LAYERS, SEED = 64, 8, 24, 0


def shares(mask: torch.Tensor) -> tuple[float, float]:
    lengths = mask.sum(1).double()
    b, t = mask.shape
    return float(lengths.sum() / (b * t)), float((lengths ** 2).sum() / (b * t * t))


cache = tempfile.mkdtemp(prefix="sst5_counts_")
dm = SSTDataModule(os.environ.get("AUTOATTEND_DATA_DIR", "./data"), 5, train_level="sentence", cache_dir=cache, seed=SEED)
dm.prepare_data()
dm.setup()

loader = make_loader(dm.train_set, 128, True, SEED)
first = next(iter(loader))
tok, pairs = shares(first["mask"])
print(f"bench training batch (first of the epoch, seed {SEED}): B={first['mask'].shape[0]}, T={first['mask'].shape[1]}, "
      f"real tokens {100 * tok:.1f} %, real (query, key) pairs {100 * pairs:.1f} %")
all_shares = [shares(b["mask"]) for b in loader]
print(f"all {len(all_shares)} training batches of that epoch (batch 128): real tokens mean {100 * statistics.mean(s[0] for s in all_shares):.1f} % "
      f"(range {100 * min(s[0] for s in all_shares):.1f}-{100 * max(s[0] for s in all_shares):.1f}), real pairs mean "
      f"{100 * statistics.mean(s[1] for s in all_shares):.1f} % (range {100 * min(s[1] for s in all_shares):.1f}-"
      f"{100 * max(s[1] for s in all_shares):.1f})")

space = FunctionalSpace(LAYERS)
torch.manual_seed(SEED)
model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=D, heads=HEADS, sharing="full")
val = make_loader(dm.val_set, 1024, False, SEED)
est = SupernetEstimator(model, val, "cpu")
model.eval()
buckets = est.fast_batches
padded = sum(b["mask"].numel() for b in buckets)
sizes = ", ".join(f"{b['mask'].shape[0]}x{b['mask'].shape[1]}" for b in buckets)
real = sum(int(b["mask"].sum()) for b in buckets)
print(f"scoring: {est.num_examples} dev sentences in {len(buckets)} length buckets of {est.bucket_size} "
      f"(B x T: {sizes}); "
      f"padded positions {padded:,}, real tokens {real:,}; one node output {padded} x {D} x 4 bytes = "
      f"{padded * D * 4 / 1e6:.2f} MB ({padded * D * 4 / 2**20:.2f} MiB)")
print(f"kernels: {cpu_kernels.kernel_error() or 'loaded'}")


class Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.macs = collections.Counter()
        self.shapes = set()
        self.calls = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = str(func.overloadpacket)
        self.calls[name] += 1
        if name == "mkldnn._linear_pointwise":
            x, w = args[0], args[1]
            rows = x.numel() // x.shape[-1]
            kind = "gru input" if w.shape[0] == 6 * D else "stem" if w.shape[1] != D else "conv1 (product)"
            self.macs[kind] += rows * w.shape[0] * w.shape[1]
            self.shapes.add(("oneDNN product", tuple(x.shape), tuple(w.shape)))
        elif name == "aten.conv2d":
            x, w = args[0], args[1]
            self.macs[f"conv {w.shape[2]}x{w.shape[3]}"] += out.numel() * w.shape[1] * w.shape[2] * w.shape[3]
            self.shapes.add(("convolution", tuple(x.shape), tuple(w.shape)))
        elif name == "aten.linear":
            x, w = args[0], args[1]
            self.macs["classifier"] += (x.numel() // x.shape[-1]) * w.shape[0] * w.shape[1]
        elif name == "autoattend.gru_forward_scatter":
            gi, w_hh = args[0], args[3]
            self.macs["gru recurrence"] += gi.shape[0] * w_hh.shape[0] * w_hh.shape[1]
        elif name == "autoattend.attention":
            q, mask = args[0], args[3]
            lengths = mask.reshape(mask.shape[0], -1).sum(1).double()
            self.macs["attention"] += int((lengths ** 2).sum()) * 2 * q.shape[-1]
        return out


first_rec = Recorder()
archs = space.sample_distinct(N + 1, random.Random(1))
with first_rec:
    est(archs[0])
print(f"first scoring (stem computed and cached): distinct shapes {len(first_rec.shapes)}")
totals, gru_shares, later_shapes = [], [], set()
per_kind = collections.Counter()
for arch in archs[1:]:
    rec = Recorder()
    with rec:
        est(arch)
    total = sum(rec.macs.values())
    gru = rec.macs["gru input"] + rec.macs["gru recurrence"]
    totals.append(total)
    gru_shares.append(gru / total if total else 0.0)
    per_kind.update(rec.macs)
    later_shapes |= rec.shapes
print(f"{N} later candidates: multiply-adds per candidate median {statistics.median(totals) / 1e9:.1f} G, mean "
      f"{statistics.mean(totals) / 1e9:.1f} G (range {min(totals) / 1e9:.1f}-{max(totals) / 1e9:.1f} G); GRU share of "
      f"the summed multiply-adds {100 * sum(t * s for t, s in zip(totals, gru_shares)) / sum(totals):.0f} % "
      f"(per candidate median {100 * statistics.median(gru_shares):.0f} %)")
print("mean per candidate by kind: " + ", ".join(f"{k} {v / N / 1e9:.2f} G" for k, v in per_kind.most_common()))
all_shapes = first_rec.shapes | later_shapes
print(f"distinct oneDNN product and convolution shapes: first scoring {len(first_rec.shapes)}, later scorings "
      f"{len(later_shapes)}, all {len(all_shapes)} ({collections.Counter(s[0] for s in all_shapes)}; weights "
      f"{sorted({s[2] for s in all_shapes})})")
