#!/bin/bash
# Interleaved benches of 2026-12-02, thirteenth series: offloaded float32 moments with recompute,
# 2 and 1 workers, pages handed back once per optimizer step (abf7a7d) or after every chunk of
# parameters (40ac84a); twice each, as `make bench` runs them (mimalloc preloaded,
# MIMALLOC_PURGE_DELAY=10000, 2 threads).
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for c in 40ac84a abf7a7d; do
    for v in offload_recompute offload_recompute_w1; do
      case $v in
        offload_recompute) args="bench.optimizer_offload=true bench.recompute=true" ;;
        offload_recompute_w1) args="bench.optimizer_offload=true bench.recompute=true bench.arch_workers=1" ;;
      esac
      (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 $args hydra.run.dir=/tmp/ibench13/${c}_${v}_r$round > /tmp/ibench13/${c}_${v}_r$round.log 2>&1)
      echo "${c}_${v}_r$round done $(date +%T)"
    done
  done
done
