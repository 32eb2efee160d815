"""Scores of 4 candidates and one training step's gradients (2 architectures, one SST-5 batch) at
the paper supernet, freshly initialised with seed 0, saved to a file for comparing two builds of
the CPU kernels. Run from a checkout's root (its ``src`` is imported):
``AUTOATTEND_DATA_DIR=../shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_<build> .venv/bin/python
experiments/bench/lanes_compare.py /tmp/out.pt``, then compare the two files' ``scores`` and
``grads``."""
import random, sys, os
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "experiments/bench"))
import torch
from sst5_setup import paper_supernet, sst5
from src.estimator import SupernetEstimator
from src.pipeline.common import make_loader
from src.models.multi_arch import backward_archs
torch.set_num_threads(2)
torch.manual_seed(0)
dm = sst5("sentence", "/tmp/profile_scoring_cache")
model, space = paper_supernet(dm)
est = SupernetEstimator(model, make_loader(dm.val_set, 1024, False, 0), "cpu", bucket_size=128, workers=2)
model.eval()
cands = space.sample_distinct(4, random.Random(1))
scores = [est(a) for a in cands]
model.train()
batch = next(iter(make_loader(dm.train_set, 128, True, 0)))
torch.manual_seed(1)
backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], cands[:2], workers=1)
grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
torch.save({"scores": scores, "grads": grads}, sys.argv[1])
print(scores, len(grads))
