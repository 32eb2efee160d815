"""Does the labelled ``supernet.optimizer_state=bfloat16`` option train the paper supernet as float32 Adam
does? Trains the full-context paper supernet (24 layers, D=64, 8 heads, 16 architectures x 128 SST-5
sentences a step) from the same initial weights, on the same batches and architecture samples, once
with each optimizer state, and prints the mean training loss every 10 steps and the dev accuracy of 8
fixed random architectures at the end.

    LD_PRELOAD=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator) MIMALLOC_PURGE_DELAY=10000 \
      AUTOATTEND_DATA_DIR=../shared/data .venv/bin/python experiments/bench/optimizer_state_ab.py STEPS [OTHER]

OTHER is the optimizer state compared with float32 (default bfloat16; int8 was the option of commit
7fb433d, reverted: see experiments/README.md).
"""

import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch  # noqa: E402

from src.data.sst import SSTDataModule  # noqa: E402
from src.estimator import SupernetEstimator  # noqa: E402
from src.models import cpu_kernels  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.models.optim import supernet_adam  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402
from src.space import FunctionalSpace  # noqa: E402

steps = int(sys.argv[1])
other = sys.argv[2] if len(sys.argv) > 2 else "bfloat16"
torch.set_num_threads(2)
cpu_kernels.kernel_error()
dm = SSTDataModule(os.environ.get("AUTOATTEND_DATA_DIR", "../shared/data"), 5, train_level="sentence",
                   cache_dir="/tmp/optimizer_state_ab_cache", seed=0)
dm.prepare_data()
dm.setup()
space = FunctionalSpace(24)
fixed = space.sample_distinct(8, random.Random(123))
trained = {}
for state_dtype in ("float32", other):
    torch.manual_seed(0)
    model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8, sharing="full")
    opt = supernet_adam([p for p in model.parameters() if p.requires_grad], lr=5e-4 / 16, state_dtype=state_dtype)
    rng, losses, start = random.Random(0), [], time.time()
    batches = iter(make_loader(dm.train_set, 128, True, 0))
    model.train()
    for step in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(make_loader(dm.train_set, 128, True, step))
            batch = next(batches)
        opt.zero_grad()
        total = backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], space.sample_distinct(16, rng),
                               workers=2)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(total.item() / 16)
        if (step + 1) % 10 == 0:
            print(f"{state_dtype:<9} step {step + 1:4d}  mean loss of the last 10 steps {statistics.mean(losses[-10:]):.4f}",
                  flush=True)
    model.eval()
    estimator = SupernetEstimator(model, make_loader(dm.val_set, 1024, False, 0), "cpu")
    accs = [estimator(a) for a in fixed]
    print(f"{state_dtype:<9} after {steps} steps ({time.time() - start:.0f} s): dev accuracy of 8 fixed architectures "
          f"mean {100 * statistics.mean(accs):.2f} % ({', '.join(f'{100 * a:.1f}' for a in accs)})", flush=True)
    trained[state_dtype] = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    del model, opt, estimator
torch.manual_seed(0)
initial = [p for p in TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8,
                                              sharing="full").parameters() if p.requires_grad]
moved = max((a - i).abs().max().item() for a, i in zip(trained["float32"], initial))
apart = max((a - b).abs().max().item() for a, b in zip(trained["float32"], trained[other]))
print(f"largest parameter change from the initial weights (float32 run) {moved:.3e}; largest difference "
      f"between the float32 and {other} runs {apart:.3e}", flush=True)
