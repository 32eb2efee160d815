"""Time or profile one Cora child's training as the re-ranking and the retrain run it
(``src.pipeline.graph_stages.fit_child``), under the probe's recipe (``+experiment=cora_probe_recipe``),
on 1 thread, for the architecture in ARCH_FILE.

Run from the repository root: ``.venv/bin/python experiments/bench/profile_graph_child.py ARCH_FILE time|prof``
with ``AUTOATTEND_DATA_DIR`` holding planetoid/Cora (default ``/work/shared/data``). ``time``: three
seeds, seconds and epochs each; ``prof``: torch's profiler table of seed 1 after a warm-up seed.
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch
from omegaconf import open_dict
from tests.conftest import compose_config
from src.pipeline.common import build_datamodule
from src.pipeline import graph_stages
from src.pipeline.graph_stages import fit_child
from src.space import Architecture
torch.set_num_threads(1)
cfg = compose_config("search", ["+experiment=cora_probe_recipe"])
with open_dict(cfg):
    cfg.paths.data_dir = os.environ.get("AUTOATTEND_DATA_DIR", "/work/shared/data")
    cfg.paths.cache_dir = "/tmp/profile_graph_child_cache"
dm = build_datamodule(cfg)
arch = Architecture.load(sys.argv[1])
hp = graph_stages._child_settings(cfg, None)
print("hp", hp)
mode = sys.argv[2]
if mode == "time":
    for seed in (0, 1, 2):
        t = time.perf_counter()
        m = fit_child(cfg, arch, dm, hp, seed, Path("/tmp/profile_graph_child"), "x")
        print(f"seed {seed}: {time.perf_counter() - t:.2f} s, {m.history[-1]['step']} epochs, val {m.selected()['val_acc']:.3f}")
else:
    from torch.profiler import profile, ProfilerActivity
    fit_child(cfg, arch, dm, hp, 0, Path("/tmp/profile_graph_child"), "x")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        m = fit_child(cfg, arch, dm, hp, 1, Path("/tmp/profile_graph_child"), "x")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
