"""Time candidate scoring alone, as src.bench does it: the paper supernet (seed 0), the SST-5 dev set,
model.eval() once, 5 candidates after 1 warm-up (the bench's candidates), 2 threads, auto workers.
Run from a checkout's root; prints one JSON line."""
import json, random, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path.cwd()))
import torch
from hydra import compose, initialize_config_dir
from src import bench_harness as bench
from src.estimator import SupernetEstimator
try:
    from src.models import cpu_kernels
except ImportError:  # b4de994: before the CPU kernels
    cpu_kernels = None
from src.models.text import TextClassifier
from src.pipeline.common import make_loader
from src.space import FunctionalSpace
try:
    from src.utils.parallel import resolve_workers
except ImportError:
    resolve_workers = None
with initialize_config_dir(config_dir=str(Path.cwd() / "conf"), version_base="1.3"):
    cfg = compose("bench", ["hardware.threads=2", "paths.data_dir=/work/shared/data"])
torch.set_num_threads(2)
if cpu_kernels is not None:
    cpu_kernels.set_backend("auto")
    cpu_kernels.kernel_error()
b = cfg.bench
dm, _ = bench._data(cfg)
space = FunctionalSpace(b.num_layers)
torch.manual_seed(cfg.seed)
model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=b.dim, heads=b.heads, sharing=cfg.space.sharing)
workers = resolve_workers("auto", torch.device("cpu"), "w") if resolve_workers else 1
extra = {"workers": workers} if resolve_workers else {}
est = SupernetEstimator(model, make_loader(dm.val_set, b.eval_batch_size, False, cfg.seed), "cpu",
                        bucket_size=b.score_bucket_size, **extra)
model.eval()
cands = space.sample_distinct(b.reps + b.warmup, random.Random(cfg.seed + 1))
times, scores = [], []
for a in cands:
    t0 = time.perf_counter(); scores.append(est(a)); times.append(time.perf_counter() - t0)
print(json.dumps({"median_s": round(statistics.median(times[b.warmup:]), 4), "times": [round(t, 4) for t in times],
                  "scores": scores, "workers": workers}))
