"""The GRU op's inference path (``bidirectional_gru``, fused kernel) over one scoring bucket, 1 thread.

Run: ``.venv/bin/python experiments/bench/interleaved_2026-12-05_r/gru_micro.py ROOT`` with ROOT a
checkout (its own ``TORCH_EXTENSIONS_DIR`` for another checkout). 128 sentences of random lengths
8-39 (seed 0: 3,130 tokens), D=64; prints the median over 7 rounds of 50 calls, then torch's
profiler table of 50 calls. Output: ``gru_micro_2026-12-05.txt``.
"""
import sys, time, statistics
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
from src.models.fused_gru import bidirectional_gru, PackPlan
torch.set_num_threads(1)
torch.manual_seed(0)
gru = nn.GRU(64, 64, batch_first=True, bidirectional=True)
# a scoring bucket: 128 sentences of lengths like SST-5 dev (mean ~19)
lengths = torch.randint(8, 40, (128,))
T = int(lengths.max())
mask = torch.arange(T)[None] < lengths[:, None]
x = torch.randn(128, T, 64)
plan = PackPlan(mask)
with torch.inference_mode():
    for _ in range(20): bidirectional_gru(gru, x, mask, plan)
    ts = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(50): bidirectional_gru(gru, x, mask, plan)
        ts.append((time.perf_counter() - t) / 50)
n = int(lengths.sum())
t = statistics.median(ts)
print(f"N={n} tokens: {t*1e3:.3f} ms per bidirectional GRU; recurrence {2*n*64*192*2/t/1e9:.1f} GFLOP/s if all time were the step products")
from torch.profiler import profile
with torch.inference_mode(), profile() as p:
    for _ in range(50): bidirectional_gru(gru, x, mask, plan)
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=6))
