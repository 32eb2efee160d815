"""Bucket-parallel (one candidate, 2 bucket workers) vs candidate-parallel (2 candidates at once, 1 worker each)."""
import random, sys, time
from pathlib import Path
sys.path.insert(0, str(Path.cwd()))
import torch
from hydra import compose, initialize_config_dir
from src import bench_harness as bench
from src.estimator import SupernetEstimator
from src.models import cpu_kernels
from src.models.text import TextClassifier
from src.pipeline.common import make_loader
from src.space import FunctionalSpace
from src.utils.parallel import thread_map
with initialize_config_dir(config_dir=str(Path.cwd() / "conf"), version_base="1.3"):
    cfg = compose("bench", ["hardware.threads=2", "paths.data_dir=/work/shared/data"])
torch.set_num_threads(2)
cpu_kernels.set_backend("auto"); cpu_kernels.kernel_error()
b = cfg.bench
dm, _ = bench._data(cfg)
space = FunctionalSpace(b.num_layers)
torch.manual_seed(0)
model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=b.dim, heads=b.heads, sharing="full")
val = make_loader(dm.val_set, b.eval_batch_size, False, 0)
est1 = SupernetEstimator(model, val, "cpu", bucket_size=128, workers=1)
est2 = SupernetEstimator(model, val, "cpu", bucket_size=128, workers=2)
model.eval()
cands = space.sample_distinct(12, random.Random(1))
est2(cands[0]); est1(cands[0])  # warm-up (stem caches, kernels)
for r in range(3):
    t0 = time.perf_counter(); s2 = [est2(a) for a in cands]; tb = time.perf_counter() - t0
    def score1(a):
        with torch.inference_mode():
            return est1(a)
    t0 = time.perf_counter(); s1 = list(thread_map(score1, cands, 2)); tc = time.perf_counter() - t0
    print(f"round {r}: bucket-parallel {tb / len(cands):.3f} s/cand, candidate-parallel {tc / len(cands):.3f} s/cand, same scores {s1 == s2}", flush=True)
