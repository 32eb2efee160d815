"""Where a GPU supernet step goes (issue 5, requirement 4, for `hardware=gpu`).

The bench's supernet step at the paper's configuration (24 layers, D=64, 8 heads, full context,
16 architectures x 128 SST-5 sentences, summed gradients, clip, Adam with every parameter's
state materialised), split into its phases, each synchronised and timed (median of 5 after 3
warm-ups): the 16 architectures' forward + backward (``backward_archs``), gradient clipping,
``opt.step()`` and ``zero_grad``; then ``opt.step()`` alone with torch's three Adam
implementations (for-loop, foreach, fused: the same update to float tolerance); then one step
under ``torch.profiler`` (top operators by self CPU time and by device time, and the number of
kernel launches). Run on a machine with a CUDA device:

    python experiments/bench/gpu_profile.py <data_dir> <out.txt> [device] [layers]

(``cpu`` and fewer layers only to try the script itself on a machine without a GPU.)
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from omegaconf import OmegaConf  # noqa: E402

from src.bench_harness import _data, _timed  # noqa: E402
from src.models.multi_arch import backward_archs  # noqa: E402
from src.models.optim import materialise_adam_state  # noqa: E402
from src.models.text import TextClassifier  # noqa: E402
from src.pipeline.common import make_loader  # noqa: E402
from src.space import FunctionalSpace  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, reps: int = 5, warmup: int = 3) -> float:
    """Median seconds of ``reps`` synchronised calls after ``warmup`` (the bench's timing)."""
    return statistics.median(_timed(fn, reps, warmup, torch.device("cuda" if torch.cuda.is_available() else "cpu")))


def main() -> None:
    data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    gpu = torch.device(sys.argv[3] if len(sys.argv) > 3 else "cuda")
    layers = int(sys.argv[4]) if len(sys.argv) > 4 else 24
    torch.set_float32_matmul_precision("high")  # as hardware=gpu did before 2b9b0ad (TF32)
    dm, _ = _data(OmegaConf.create({"paths": {"data_dir": str(data_dir), "cache_dir": "/tmp/autoattend_cache"},
                                    "seed": 0}))
    space = FunctionalSpace(layers)
    torch.manual_seed(0)
    model = TextClassifier.supernet(dm.embeddings, dm.num_classes, space, dim=64, heads=8, sharing="full").to(gpu)
    params = [p for p in model.parameters() if p.requires_grad]
    batch = {k: v.to(gpu) for k, v in next(iter(make_loader(dm.train_set, 128, True, 0))).items()}
    rng = random.Random(0)
    say(f"{torch.cuda.get_device_name() if gpu.type == 'cuda' else gpu}, {layers} layers, torch {torch.__version__}, {len(params)} parameter tensors, "
        f"{sum(p.numel() for p in params) / 1e6:.1f} M parameters, batch {tuple(batch['tokens'].shape)}")

    def fwd_bwd():
        backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], space.sample_distinct(16, rng))

    def clip():
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)

    model.train()
    if len(sys.argv) > 5 and sys.argv[5] == "one":  # one architecture's forward + backward, profiled
        from torch.profiler import ProfilerActivity, profile

        one = space.sample_distinct(1, rng)
        timed(lambda: backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], one), reps=1)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            backward_archs(model, batch["tokens"], batch["mask"], batch["labels"], one)
            sync()
        events = prof.key_averages()
        say(f"one architecture: {one[0]}")
        say(events.table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60))
        say(events.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60))
        out.write_text("\n".join(lines) + "\n")
        return
    for name in ("foreach", "fused", "for-loop") if gpu.type == "cuda" else ("foreach", "for-loop"):
        kwargs = {"foreach": dict(foreach=True), "fused": dict(fused=True), "for-loop": dict(foreach=False)}[name]
        opt = torch.optim.Adam(params, lr=5e-4 / 16, **kwargs)
        materialise_adam_state(opt)
        if name == "fused":  # fused Adam keeps its step counts on the device
            for state in opt.state.values():
                state["step"] = state["step"].to(gpu)

        def step():
            opt.zero_grad()
            fwd_bwd()
            clip()
            opt.step()

        whole = timed(step)
        fwd_bwd()
        opt_s = timed(opt.step)
        say(f"Adam {name}: whole step {whole:.3f} s; opt.step alone (the grads of one step) {opt_s * 1e3:.1f} ms")
        if name == "foreach":
            opt.zero_grad()
            say(f"  phases: forward+backward of 16 archs {timed(lambda: (opt.zero_grad(), fwd_bwd())):.3f} s, "
                f"clip {timed(clip) * 1e3:.1f} ms, zero_grad {timed(opt.zero_grad) * 1e3:.1f} ms")
            one = space.sample_distinct(1, rng)
            say(f"  one architecture's forward+backward "
                f"{timed(lambda: backward_archs(model, batch['tokens'], batch['mask'], batch['labels'], one)) * 1e3:.1f} ms")
            with torch.no_grad():
                say(f"  one architecture's forward alone {timed(lambda: model(batch['tokens'], batch['mask'], one[0])) * 1e3:.1f} ms")
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                step()
                sync()
            events = prof.key_averages()
            launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
            device_us = sum(e.self_device_time_total for e in events)
            say(f"  profiled step: {launches} kernel launches, {device_us / 1e3:.1f} ms of device time")
            say(events.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=48))
            say(events.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=48))
        del opt
        if gpu.type == "cuda":
            torch.cuda.empty_cache()
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
