"""Resident memory that imports add (the README's memory paragraph: torch, Lightning, and within
Lightning ``torch._dynamo``, which ``lightning.fabric`` imports, and ``scipy.signal``, which
torchmetrics imports). Each case runs in a fresh python process: VmRSS after ``import torch``, then
after importing the case's modules, and whether the modules the README names are in
``sys.modules`` after importing lightning.fabric / torchmetrics alone. Median of 3 processes a case.

    .venv/bin/python experiments/bench/import_rss.py
"""

import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024  # VmRSS is in KiB ('kB'): MiB
base = rss()
import torch
after_torch = rss()
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps({"python": base, "torch": after_torch, "after": rss(),
                  "loaded": {m: m in sys.modules for m in ("torch._dynamo", "scipy.signal", "lightning.fabric", "torchmetrics")}}))
"""

CASES = [
    ("torch._dynamo",),
    ("scipy.signal",),
    ("torch._dynamo", "scipy.signal"),
    ("lightning.fabric",),
    ("torchmetrics",),
    ("lightning.pytorch",),
    ("torch._dynamo", "scipy.signal", "lightning.pytorch"),
]

for case in CASES:
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, *case], capture_output=True, text=True,
                                      check=True).stdout.splitlines()[-1]) for _ in range(3)]
    torch_mb = statistics.median(r["torch"] - r["python"] for r in runs)
    added = statistics.median(r["after"] - r["torch"] for r in runs)
    deltas = ", ".join(f"{r['after'] - r['torch']:.0f}" for r in runs)
    print(f"import torch, then {' + '.join(case):<52} torch adds {torch_mb:4.0f} MiB, then +{added:4.0f} MiB "
          f"(runs: {deltas}); loaded after: {', '.join(m for m, v in runs[0]['loaded'].items() if v)}")
