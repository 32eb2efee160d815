#!/bin/bash
# How long the first run of a checkout spends building the fused CPU kernels (the README's Quick
# start; src/models/cpu_kernels.py, kernel_error(), which compiles them with
# torch.utils.cpp_extension.load into $TORCH_EXTENSIONS_DIR): the build into an empty, temporary
# TORCH_EXTENSIONS_DIR, timed around kernel_error() inside python (torch already imported), $REPS
# times (default 1); with the load average before and after each build, since the machine's other work
# changes it.
#   experiments/bench/kernel_build_timing.sh
cd "$(dirname "$0")/../.."
for ((i = 0; i < ${REPS:-1}; i++)); do
  dir=$(mktemp -d /tmp/kernel_build_XXXX)
  before=$(cut -d' ' -f1-3 /proc/loadavg)
  TORCH_EXTENSIONS_DIR="$dir" PYTHONPATH="$PWD" .venv/bin/python - <<'PY'
import os, time
import torch
from src.models import cpu_kernels
start = time.perf_counter()
error = cpu_kernels.kernel_error()
wall = time.perf_counter() - start
print(f"build {wall:.1f} s wall, error {error}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
      f"built: {sorted(p.name for p in __import__('pathlib').Path(os.environ['TORCH_EXTENSIONS_DIR']).rglob('*.so'))}")
PY
  echo "load average before: $before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -rf "$dir"
done
