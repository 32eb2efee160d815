#!/bin/bash
# Second half of series r (same host, right after run.sh): eacd3e4 (the kernels built with
# -mprefer-vector-width=512) against 760a323, interleaved, as run.sh runs them.
PRE=$(cd /work/main && AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
OUT=/tmp/ibench18
mkdir -p $OUT
for run in eacd3e4_r1 760a323_r3 eacd3e4_r2 760a323_r4; do
  c=${run%_r*}
  (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=$OUT/$run > $OUT/$run.log 2>&1)
  echo "$run done $(date +%T) rc $?"
done
