"""Where the supernet's training memory goes: resident memory (VmRSS) after each stage of
`make bench`'s supernet figure (imports, SST-5 data, the full-context paper supernet, Adam's state
for every parameter, training steps), and the bytes autograd saves for one architecture's backward.

    LD_PRELOAD=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator) MIMALLOC_PURGE_DELAY=10000 \
      AUTOATTEND_DATA_DIR=../shared/data .venv/bin/python experiments/bench/memory_breakdown.py STATE WORKERS STEPS [recompute]

STATE is float32 or bfloat16 (Adam's moments), WORKERS the architectures back-propagated at a time;
``recompute`` sets ``encoder.recompute`` (``supernet.recompute``).
"""

import collections
import os
import random
import resource
import sys
from pathlib import Path


def rss_mib() -> float:  # VmRSS is in KiB ('kB'): / 1024 gives MiB
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:  # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(name: str) -> None:
    print(f"{name:<40} rss {rss_mib():7.0f} MiB   peak {peak_mib():7.0f} MiB", flush=True)


stage("python")
import torch  # noqa: E402

stage("import torch")
import lightning.pytorch  # noqa: E402,F401

stage("import lightning.pytorch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch.nn.functional as F  # noqa: E402

from src.data.sst import SSTDataModule  # noqa: E402
from src.models import cpu_kernels  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.models.optim import materialise_adam_state, supernet_adam  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402
from src.space import FunctionalSpace  # noqa: E402

state_dtype, workers, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
recompute = sys.argv[4:] == ["recompute"]
torch.set_num_threads(2)
cpu_kernels.kernel_error()
stage("project imports + kernels")
data_dir = os.environ.get("AUTOATTEND_DATA_DIR", "../shared/data")
dm = SSTDataModule(data_dir, 5, train_level="sentence", cache_dir="/tmp/memory_breakdown_cache", seed=0)
dm.prepare_data()
dm.setup()
batch = next(iter(make_loader(dm.train_set, 128, True, 0)))
stage("SST-5 data, one batch of 128")
space = FunctionalSpace(24)
torch.manual_seed(0)
model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8, sharing="full")
model.encoder.recompute = recompute
params = sum(p.numel() for p in model.parameters() if p.requires_grad)
stage(f"supernet ({params / 1e6:.1f} M params, {params * 4 / 2**20:.0f} MiB)")
opt = supernet_adam([p for p in model.parameters() if p.requires_grad], lr=5e-4 / 16, state_dtype=state_dtype)
state = materialise_adam_state(opt)
stage(f"Adam state, {state_dtype} ({state / 2**20:.0f} MiB)")
rng = random.Random(0)
model.train()
for step in range(steps):
    opt.zero_grad()
    backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], space.sample_distinct(16, rng),
                   workers=workers)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    stage(f"after step {step} ({workers} worker(s){', recompute' if recompute else ''})")

# bytes autograd keeps for one architecture's backward, by tensor shape
print(f"\nsaved for backward, one architecture at a time (batch {tuple(batch['tokens'].shape)}):")
totals, by_shape = [], collections.Counter()
for arch in space.sample_distinct(8, random.Random(1)):
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen[storage.data_ptr()] = storage.nbytes()
            by_shape[(tuple(t.shape), str(t.dtype).replace("torch.", ""))] += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(batch["tokens"], batch["mask"], arch), batch["labels"])
    totals.append(sum(seen.values()) / 2**20)
    loss.backward()
    model.zero_grad(set_to_none=True)
print("  per architecture (MiB):", ", ".join(f"{t:.0f}" for t in totals))
print("  largest shapes over the 8 (MiB):")
for (shape, dtype), nbytes in by_shape.most_common(6):
    print(f"    {str(shape):<22} {dtype:<8} {nbytes / 2**20:7.1f}")
