#!/bin/bash
# Benches of 2026-12-05, nineteenth series, on an AMD EPYC host (family 25, model 17: Zen 4,
# AVX-512 and AVX512_BF16; GCC 12 takes it for znver3): a302b68 (the code when the series began)
# and b4de994 (about the authors' code), interleaved, as `make bench` runs them (mimalloc
# preloaded, MIMALLOC_PURGE_DELAY=10000, 2 threads). Worktrees at /tmp/wt_<commit>, run with the
# main checkout's virtual environment; nothing else ran.
PRE=$(cd /work/main && AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
OUT=/tmp/ibench19
mkdir -p $OUT
for run in a302b68_r1 b4de994_r1 a302b68_r2 b4de994_r2; do
  c=${run%_r*}
  (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=$OUT/$run > $OUT/$run.log 2>&1)
  echo "$run done $(date +%T) rc $?"
done
