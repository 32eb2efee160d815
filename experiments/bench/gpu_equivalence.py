"""The GPU path computes what the CPU path computes (issue 5, requirement 3, for `hardware=gpu`).

The same weights (built once on the CPU, then copied to the GPU), the same architectures and
the same batches give, on each device:

* text, the paper's supernet (24 layers, D=64, 8 heads, full context) on real SST-5 sentences
  (the generated stand-in when the trees are absent): logits of 8 sampled architectures on one
  training batch of 128 (eval mode: no dropout), the summed gradients of the 8 architectures'
  cross-entropy on that batch (``backward_archs``), and the 8 candidates' dev accuracies through
  ``SupernetEstimator`` (the search's scorer, length buckets and stem cache included);
* graph, the default graph supernet on Cora: logits, one backward's gradients and validation
  accuracies of 8 sampled architectures.

Before the copy the weights are trained a little on the CPU (text: 10 steps of 4 architectures;
graph: 100 single-path steps), so the scores compared are not those of an untrained model that
predicts one class everywhere.

Each comparison is made twice: with float32 products on the GPU (TF32 off) and with TF32 on
(``hardware.matmul_precision=high``, the GPU config's setting before 2b9b0ad). Prints one JSON object and
writes it to the path given as the second argument. Run on a machine with a CUDA device:

    python experiments/bench/gpu_equivalence.py <data_dir> <out.json>
"""

from __future__ import annotations

import copy
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from omegaconf import OmegaConf  # noqa: E402

from src.bench_harness import _data  # noqa: E402
from src.estimator import SupernetEstimator  # noqa: E402
from src.models import cpu_kernels  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402
from src.space import GRAPH_OPS, FunctionalSpace  # noqa: E402


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over max |a| (0 where both are zero)."""
    scale = a.abs().max().item()
    return (a - b.to(a.device)).abs().max().item() / scale if scale else 0.0


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters() if p.grad is not None}


def compare_grads(cpu: dict, gpu: dict) -> dict:
    """Same set of parameters with a gradient; the relative L2 difference over all of them, and
    the worst tensor's, among tensors whose gradient norm is at least 1e-3 of the largest (some,
    such as a key projection's bias before a softmax, have a gradient that is rounding noise)."""
    norms = {n: cpu[n].norm().item() for n in cpu}
    top = max(norms.values())
    diff = {n: (cpu[n] - gpu[n]).norm().item() for n in cpu}
    worst = max((diff[n] / norms[n], n) for n in cpu if norms[n] >= 1e-3 * top)
    total = sum(v * v for v in norms.values()) ** 0.5
    return {"same_parameters": sorted(cpu) == sorted(gpu), "tensors": len(cpu),
            "rel_l2_diff_all": sum(v * v for v in diff.values()) ** 0.5 / total,
            "max_rel_l2_diff": worst[0], "worst_tensor": worst[1],
            "tensors_compared": sum(norms[n] >= 1e-3 * top for n in cpu)}


def text_case(data_dir: Path, gpu: torch.device) -> dict:
    dm, source = _data(OmegaConf.create({"paths": {"data_dir": str(data_dir), "cache_dir": "/tmp/autoattend_cache"},
                                         "seed": 0}))
    space = FunctionalSpace(24)
    torch.manual_seed(0)
    # no dropout, so that train mode (which cuDNN's GRU backward needs) computes the same on both devices
    cpu_model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8, sharing="full",
                                        dropout=0.0, attn_dropout=0.0)
    loader = iter(make_loader(dm.train_set, 128, True, 0))
    opt = torch.optim.Adam([p for p in cpu_model.parameters() if p.requires_grad], lr=1e-3)
    rng = random.Random(1)
    for _ in range(10):
        b = next(loader)
        opt.zero_grad()
        backward_archs(cpu_model, b["tokens"], b["mask"], b["labels"], space.sample_distinct(4, rng))
        opt.step()
    gpu_model = copy.deepcopy(cpu_model).to(gpu)
    archs = space.sample_distinct(8, random.Random(0))
    batch = next(loader)
    on = {d: {k: v.to(d) for k, v in batch.items()} for d in ("cpu", gpu)}
    val = list(make_loader(dm.val_set, 1024, False, 0))
    cpu_model.zero_grad()
    backward_archs(cpu_model, on["cpu"]["tokens"], on["cpu"]["mask"], on["cpu"]["labels"], archs)
    cpu_grads = grads(cpu_model)
    cpu_scores = SupernetEstimator(cpu_model, val, "cpu")
    with torch.inference_mode():
        cpu_logits = [cpu_model(on["cpu"]["tokens"], on["cpu"]["mask"], a) for a in archs]
    cpu_acc = [cpu_scores(a) for a in archs]
    result = {"data": source, "archs": len(archs), "batch": list(batch["tokens"].shape),
              "dev_sentences": cpu_scores.num_examples}
    for tf32 in (False, True):
        set_tf32(tf32)
        gpu_model.zero_grad()
        backward_archs(gpu_model, on[gpu]["tokens"], on[gpu]["mask"], on[gpu]["labels"], archs)
        gpu_grads = grads(gpu_model)
        gpu_scores = SupernetEstimator(gpu_model, val, gpu)
        with torch.inference_mode():
            logit_diff = max(max_rel(c, gpu_model(on[gpu]["tokens"], on[gpu]["mask"], a))
                             for c, a in zip(cpu_logits, archs))
            same_argmax = all(torch.equal(c.argmax(-1), gpu_model(on[gpu]["tokens"], on[gpu]["mask"], a).argmax(-1).cpu())
                              for c, a in zip(cpu_logits, archs))
        gpu_acc = [gpu_scores(a) for a in archs]
        result["tf32" if tf32 else "float32"] = {
            "logits_max_rel_diff": logit_diff, "same_predictions_on_batch": same_argmax,
            "grads": compare_grads(cpu_grads, gpu_grads),
            "dev_accuracy_cpu": cpu_acc, "dev_accuracy_gpu": gpu_acc,
            "dev_accuracy_max_abs_diff": max(abs(a - b) for a, b in zip(cpu_acc, gpu_acc))}
    return result


def graph_case(data_dir: Path, gpu: torch.device) -> dict:
    from src.data.planetoid import PlanetoidDataModule
    from src.lit.graph_modules import graph_score_batch, node_loss
    from src.models.graph import GraphNet

    dm = PlanetoidDataModule("cora", data_dir=str(data_dir), cache_dir="/tmp/autoattend_cache", download=False)
    dm.setup()
    space = FunctionalSpace(num_layers=2, ops=GRAPH_OPS, priors=True, kinds=("add", "attn"))
    torch.manual_seed(0)
    cpu_model = GraphNet.supernet(dm.num_features, dm.num_classes, space, hidden=64, heads=8, dropout=0.7,
                                  act="tanh", sharing="full")
    on = {d: {k: v.to(d) for k, v in dm.graph.items()} for d in ("cpu", gpu)}
    opt = torch.optim.Adam([p for p in cpu_model.parameters() if p.requires_grad], lr=5e-3, weight_decay=5e-4)
    for a in space.sample_distinct(100, random.Random(1)):
        opt.zero_grad()
        node_loss(cpu_model(on["cpu"]["x"], on["cpu"]["edge_index"], a), on["cpu"]["y"], on["cpu"]["train_mask"],
                  False).backward()
        opt.step()
    cpu_model.eval()
    gpu_model = copy.deepcopy(cpu_model).to(gpu)
    archs = space.sample_distinct(8, random.Random(0))
    val = dm.split_batches("val")

    def run(model, device):
        # gradients first: a GCN layer caches its normalised edges, which must not be inference tensors
        model.zero_grad()
        for a in archs:
            node_loss(model(on[device]["x"], on[device]["edge_index"], a), on[device]["y"],
                      on[device]["train_mask"], False).backward()
        with torch.inference_mode():
            logits = [model(on[device]["x"], on[device]["edge_index"], a).cpu() for a in archs]
        acc = [SupernetEstimator(model, val, device, score_batch=graph_score_batch(False))(a) for a in archs]
        return logits, acc, grads(model)

    cpu_logits, cpu_acc, cpu_grads = run(cpu_model, "cpu")
    result = {"archs": len(archs), "nodes": int(dm.graph["x"].shape[0])}
    for tf32 in (False, True):
        set_tf32(tf32)
        gpu_logits, gpu_acc, gpu_grads = run(gpu_model, gpu)
        result["tf32" if tf32 else "float32"] = {
            "logits_max_rel_diff": max(max_rel(c, g) for c, g in zip(cpu_logits, gpu_logits)),
            "same_predictions": all(torch.equal(c.argmax(-1), g.argmax(-1)) for c, g in zip(cpu_logits, gpu_logits)),
            "grads": compare_grads(cpu_grads, gpu_grads),
            "val_accuracy_cpu": cpu_acc, "val_accuracy_gpu": gpu_acc,
            "val_accuracy_max_abs_diff": max(abs(a - b) for a, b in zip(cpu_acc, gpu_acc))}
    return result


def main() -> None:
    data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device: this script compares the CPU with a GPU")
    gpu = torch.device("cuda")
    cpu_kernels.set_backend("torch")  # the CPU reference is torch's ops (the fused kernels' own equivalence is tested)
    t0 = time.perf_counter()
    result = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "threads": torch.get_num_threads(),
              "text": text_case(data_dir, gpu), "graph": graph_case(data_dir, gpu)}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
