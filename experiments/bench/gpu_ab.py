"""GPU A/B probes for the supernet step and candidate scoring (issue 5, the GPU side).

The GPU profile (``gpu_profile.py``, ``experiments/README.md`` "GPU figures") found the supernet
step bound by the host: one architecture's forward + backward was 214 ms of host time for 31 ms
of device time, with cuDNN's GRU on packed sequences (whose packing and unpacking loop over the
time steps, and whose lengths go to the host, a synchronisation, every call) the largest part.
This script measures, at the paper's supernet configuration (24 layers, D=64, 8 heads, full
context, 16 architectures x 128 SST-5 sentences), on one device, float32 throughout:

* the GRU op's ``packed`` path (the GPU default) against its ``unpacked`` path (two cuDNN calls
  on the padded batch, the backward direction over each sequence reversed within its length): the
  same logits and gradients (relative differences printed), and the 16 architectures' forward +
  backward (``backward_archs``) with each, medians of 5 after 2 warm-ups, synchronised;
* the 16 architectures' forward + backward in 2 and 4 threads (``workers``; the CPU's
  ``supernet.arch_workers``, which the GPU path does not use yet): host work of one architecture
  can overlap another's;
* candidate scoring (the estimator's fast path, 1,101 dev sentences) with length buckets of 128,
  512 and 2,048 sentences (one bucket for the whole dev set), with each GRU path: seconds per
  candidate (median over 7 candidates after 2 warm-ups) and the scores, which must be identical.

    python experiments/bench/gpu_ab.py <data_dir> <out.json> [device] [layers]

(``cpu`` and fewer layers only to try the script itself on a machine without a GPU.)
"""

from __future__ import annotations

import json
import random
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from omegaconf import OmegaConf  # noqa: E402

from src.bench_harness import _data, _timed  # noqa: E402
from src.estimator import SupernetEstimator  # noqa: E402
from src.models import ops  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader, set_float32_precision  # noqa: E402
from src.space import FunctionalSpace  # noqa: E402

_gru_forward = ops.GRUOp.forward


def use_gru_path(path: str) -> None:
    """Every GRU op takes ``path`` unless its caller names one."""
    def forward(self, x, mask, path_arg=None):
        return _gru_forward(self, x, mask, path_arg or path)
    ops.GRUOp.forward = forward


def main() -> None:
    data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    device = torch.device(sys.argv[3] if len(sys.argv) > 3 else "cuda")
    layers = int(sys.argv[4]) if len(sys.argv) > 4 else 24
    results: dict = {"torch": torch.__version__, "device": str(device), "layers": layers,
                     "float32_precision": set_float32_precision("highest")}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name()

    def timed(fn, reps: int = 5, warmup: int = 2) -> float:
        """Median seconds of ``reps`` synchronised calls after ``warmup`` (the bench's timing)."""
        return round(statistics.median(_timed(fn, reps, warmup, device)), 4)

    def say(key: str, value) -> None:
        results[key] = value
        print(f"{key}: {value}", flush=True)
        out.write_text(json.dumps(results, indent=1) + "\n")

    dm, source = _data(OmegaConf.create({"paths": {"data_dir": str(data_dir), "cache_dir": "/tmp/autoattend_cache"},
                                         "seed": 0}))
    say("data", source)
    space = FunctionalSpace(layers)
    torch.manual_seed(0)
    model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8, sharing="full").to(device)
    batch = {k: v.to(device) for k, v in next(iter(make_loader(dm.train_set, 128, True, 0))).items()}
    say("batch", list(batch["tokens"].shape))
    archs = [a for a in space.sample_distinct(64, random.Random(0)) if any(
        layer.q_op == "gru" or layer.k_op == "gru" or getattr(layer, "v_op", None) == "gru" for layer in a)][:16]
    model.train()

    # same logits and gradients through both GRU paths (one architecture, the same dropout masks)
    grads = {}
    for path in ("packed", "unpacked"):
        use_gru_path(path)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        loss = backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], archs[:1])
        grads[path] = (loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    (la, ga), (lb, gb) = grads["packed"], grads["unpacked"]
    num = sum(float((ga[n] - gb[n]).pow(2).sum()) for n in ga)
    den = sum(float(ga[n].pow(2).sum()) for n in ga)
    say("gru_paths_same", {"loss_packed": la, "loss_unpacked": lb, "same_grad_names": sorted(ga) == sorted(gb),
                           "grad_rel_l2": (num / den) ** 0.5 if den else None})
    model.zero_grad(set_to_none=True)

    def fwd_bwd(workers: int) -> None:
        model.zero_grad(set_to_none=True)
        backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], archs, workers=workers)

    for path, workers in (("packed", 1), ("unpacked", 1), ("unpacked", 2), ("unpacked", 4), ("packed", 2)):
        use_gru_path(path)
        say(f"fwd_bwd_16_archs_s[{path},workers={workers}]", timed(lambda: fwd_bwd(workers)))
    model.zero_grad(set_to_none=True)

    model.eval()
    val = make_loader(dm.val_set, 1024, False, 0)
    candidates = space.sample_distinct(9, random.Random(1))
    scores = {}
    for path in ("packed", "unpacked"):
        use_gru_path(path)
        for bucket in (128, 512, 2048):
            estimator = SupernetEstimator(model, val, device, bucket_size=bucket)
            it = iter(candidates)
            seconds = timed(lambda: estimator(next(it)), reps=7, warmup=2)
            scores[f"{path},{bucket}"] = [estimator(c) for c in candidates]
            say(f"score_s[{path},bucket={bucket}]", seconds)
    say("scores_identical", len({tuple(s) for s in scores.values()}) == 1)
    say("scores", scores[f"packed,128"])
    if device.type == "cuda":
        say("peak_cuda_mib", round(torch.cuda.max_memory_allocated() / 2**20))


if __name__ == "__main__":
    main()
