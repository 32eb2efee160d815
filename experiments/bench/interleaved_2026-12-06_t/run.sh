#!/bin/bash
# Benches of 2026-12-06, twentieth series, on an AMD EPYC host (family 25, model 17: Zen 4, as
# series s): 2e65de9 (the code after the propagate kernel and the softmax on it) and b4de994
# (about the authors' code), interleaved, as `make bench` runs them (mimalloc preloaded,
# MIMALLOC_PURGE_DELAY=10000, 2 threads). Worktrees at /tmp/wt_<commit>, run with the main
# checkout's virtual environment; nothing else ran.
PRE=$(cd /work/main && AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
OUT=/tmp/ibench20
mkdir -p $OUT
for run in 2e65de9_r1 b4de994_r1 2e65de9_r2 b4de994_r2; do
  c=${run%_r*}
  (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=$OUT/$run > $OUT/$run.log 2>&1)
  echo "$run done $(date +%T) rc $?"
done
