#!/bin/bash
# Benches of 2026-12-02, fifteenth series, on the afternoon's Zen 4 host (AMD family 25, model 17):
# the current code (102b80c, whose bench.json names the CPU) and b4de994 (about the authors' code),
# interleaved, as `make bench` runs them (mimalloc preloaded, MIMALLOC_PURGE_DELAY=10000, 2 threads).
PRE=$(cd /work/main && AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
mkdir -p /tmp/ibench15
for run in 102b80c_r1 b4de994_r1 102b80c_r2 b4de994_r2; do
  c=${run%_r*}
  (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench15/$run > /tmp/ibench15/$run.log 2>&1)
  echo "$run done $(date +%T) rc $?"
done
