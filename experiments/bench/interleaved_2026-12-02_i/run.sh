#!/bin/bash
# Interleaved benches of 2026-12-02, ninth series: commit 7083295 (the bench now creates Adam's
# state for every parameter before its timed steps, so its peak memory is a long run's), with
# Adam's moments in float32 (the default) and in bfloat16 (the labelled option), and bfloat16 with
# one architecture at a time (bench.arch_workers=1), twice each, as `make bench` runs them
# (mimalloc preloaded, MIMALLOC_PURGE_DELAY=10000, 2 threads).
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
c=7083295
for round in 1 2; do
  for v in float32 bfloat16 bfloat16_w1; do
    case $v in
      float32) args="bench.optimizer_state=float32" ;;
      bfloat16) args="bench.optimizer_state=bfloat16" ;;
      bfloat16_w1) args="bench.optimizer_state=bfloat16 bench.arch_workers=1" ;;
    esac
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 $args hydra.run.dir=/tmp/ibench10/${v}_r$round > /tmp/ibench10/${v}_r$round.log 2>&1)
    echo "${v}_r$round done $(date +%T)"
  done
done
