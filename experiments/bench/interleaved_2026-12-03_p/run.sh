#!/bin/bash
# Benches of 2026-12-03, sixteenth series, on an AVX2-only host (AMD EPYC family 25, model 1; torch
# reports AVX2): the current code (e3ca0e0) and b4de994 (about the authors' code), interleaved, as
# `make bench` runs them (mimalloc preloaded, MIMALLOC_PURGE_DELAY=10000, 2 threads). Worktrees at
# /tmp/wt_<commit> (`git worktree add --detach`), run with the main checkout's virtual environment.
PRE=$(cd /work/main && AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
OUT=/tmp/ibench16
mkdir -p $OUT
for run in e3ca0e0_r1 b4de994_r1 e3ca0e0_r2 b4de994_r2; do
  c=${run%_r*}
  (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=$OUT/$run > $OUT/$run.log 2>&1)
  echo "$run done $(date +%T) rc $?"
done
