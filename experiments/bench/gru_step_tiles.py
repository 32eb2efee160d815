"""Time the fused GRU's forward recurrence (no saved gates) at scoring's shapes: D=64, a bucket of
128 sentences of lengths 10-59 (4,544 rows). Prints the median ms per direction over 7 x 50 calls
and a checksum of the states (equal checksums: the same states).

Usage: ``TORCH_EXTENSIONS_DIR=<dir> PYTHONPATH=<checkout> python gru_step_tiles.py THREADS``, once per
checkout to compare (each builds its own kernels). Used on 2026-12-06 for step products over 3, 4
and 6 rows at a time against the kernel's 2 (``gru_step_tiles_2026-12-06.txt``), and with the step
products left out to time the gates alone.
"""
import statistics, sys, time
import torch
from src.models import cpu_kernels
torch.set_num_threads(int(sys.argv[1]))
assert cpu_kernels.require_loaded() is None
g = torch.Generator().manual_seed(0)
D, B = 64, 128
lengths = torch.sort(torch.randint(10, 60, (B,), generator=g), descending=True).values
steps = int(lengths[0])
batch_sizes = torch.tensor([int((lengths > s).sum()) for s in range(steps)])
N = int(batch_sizes.sum())
gi = torch.randn(N, 3 * D, generator=g)
b_ih, b_hh = torch.randn(3 * D, generator=g), torch.randn(3 * D, generator=g)
w_hh = torch.randn(3 * D, D, generator=g) / 8
h, _ = torch.ops.autoattend.gru_forward(gi, b_ih, w_hh, b_hh, batch_sizes, False)
times = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(50):
        torch.ops.autoattend.gru_forward(gi, b_ih, w_hh, b_hh, batch_sizes, False)
    times.append((time.perf_counter() - t) / 50)
print(f"N={N} rows, median {statistics.median(times)*1e3:.3f} ms per direction; checksum {float(h.double().sum()):.6f}")
