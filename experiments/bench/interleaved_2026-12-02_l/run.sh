#!/bin/bash
# Interleaved benches of 2026-12-02, twelfth series: commit abf7a7d, the memory options: the default
# (float32 Adam state in memory, 2 workers), supernet.recompute, recompute with float32 moments
# offloaded to a file (supernet.optimizer_offload: same arithmetic) with 2 and 1 workers, and
# recompute with bfloat16 moments (the labelled option) for comparison; twice each, as
# `make bench` runs them (mimalloc preloaded, MIMALLOC_PURGE_DELAY=10000, 2 threads).
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
c=abf7a7d
for round in 1 2; do
  for v in default recompute offload_recompute offload_recompute_w1 bf16_recompute; do
    case $v in
      default) args="" ;;
      recompute) args="bench.recompute=true" ;;
      offload_recompute) args="bench.optimizer_offload=true bench.recompute=true" ;;
      offload_recompute_w1) args="bench.optimizer_offload=true bench.recompute=true bench.arch_workers=1" ;;
      bf16_recompute) args="bench.optimizer_state=bfloat16 bench.recompute=true" ;;
    esac
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 $args hydra.run.dir=/tmp/ibench12/${v}_r$round > /tmp/ibench12/${v}_r$round.log 2>&1)
    echo "${v}_r$round done $(date +%T)"
  done
done
