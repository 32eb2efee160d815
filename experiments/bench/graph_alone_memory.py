"""The graph supernet's memory measured alone (the README's "Performance": `make bench`'s
``graph_supernet_peak_rss_mb`` comes after the text figures, in the same process): the same
function, :func:`src.bench_graph.graph_figures` (Cora, public split, the default graph supernet,
bench.reps=5 after 1 warm-up, 1 thread, CPU), called in a fresh process. Prints resident memory
(VmRSS) before it, its ``graph_supernet_peak_rss_mb`` (the high-water mark VmHWM, reset just before
the supernet's steps, so it includes torch, PyG and the data loaded before), and the process peak.

    AUTOATTEND_DATA_DIR=../shared/data .venv/bin/python experiments/bench/graph_alone_memory.py
    LD_PRELOAD=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator) MIMALLOC_PURGE_DELAY=10000 \
      AUTOATTEND_DATA_DIR=../shared/data .venv/bin/python experiments/bench/graph_alone_memory.py   # as make bench
"""

import json
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def rss_mib() -> float:  # VmRSS is in KiB ('kB'): / 1024 gives MiB
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


import torch  # noqa: E402

from src.bench_graph import graph_figures  # noqa: E402

print(f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r}, torch {torch.__version__}")
print(f"rss after imports: {rss_mib():.0f} MiB")
with tempfile.TemporaryDirectory() as cache:
    figures = graph_figures(os.environ.get("AUTOATTEND_DATA_DIR", "./data"), reps=5, warmup=1, seed=0,
                            cache_dir=cache, download=False)
print(json.dumps(figures))
print(f"graph_supernet_peak_rss_mb {figures['graph_supernet_peak_rss_mb']:.0f} MB (10^6 bytes); rss after: "
      f"{rss_mib():.0f} MiB; process peak (ru_maxrss) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
