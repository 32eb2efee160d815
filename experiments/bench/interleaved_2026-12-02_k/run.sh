#!/bin/bash
# Interleaved benches of 2026-12-02, eleventh series: commit 7fb433d, Adam's moments as 8-bit codes
# (bench.optimizer_state=int8, the second labelled option) with recompute, 2 and 1 workers, and
# bfloat16 moments with recompute and 1 worker for comparison; twice each, as `make bench` runs
# them (mimalloc preloaded, MIMALLOC_PURGE_DELAY=10000, 2 threads).
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
c=7fb433d
for round in 1 2; do
  for v in int8_recompute int8_recompute_w1 bf16_recompute_w1; do
    case $v in
      int8_recompute) args="bench.optimizer_state=int8 bench.recompute=true" ;;
      int8_recompute_w1) args="bench.optimizer_state=int8 bench.recompute=true bench.arch_workers=1" ;;
      bf16_recompute_w1) args="bench.optimizer_state=bfloat16 bench.recompute=true bench.arch_workers=1" ;;
    esac
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 $args hydra.run.dir=/tmp/ibench12/${v}_r$round > /tmp/ibench12/${v}_r$round.log 2>&1)
    echo "${v}_r$round done $(date +%T)"
  done
done
