#!/bin/bash
# Benches of 2026-12-02, fourteenth series: commit 689b7d6, whose bench writes one checkpoint (weights
# and Adam's state, as the pipeline's trainer writes them) before reading the supernet's peak memory:
# the default, and recompute with offloaded float32 moments with 2 and 1 workers; as `make bench`
# runs them (mimalloc preloaded, MIMALLOC_PURGE_DELAY=10000, 2 threads).
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
c=689b7d6
for round in 1 2; do
  for v in offload_recompute_w1 offload_recompute default; do
    [ $round = 2 ] && [ $v != offload_recompute_w1 ] && continue
    case $v in
      default) args="" ;;
      offload_recompute) args="bench.optimizer_offload=true bench.recompute=true" ;;
      offload_recompute_w1) args="bench.optimizer_offload=true bench.recompute=true bench.arch_workers=1" ;;
    esac
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 $args hydra.run.dir=/tmp/ibench14/${v}_r$round > /tmp/ibench14/${v}_r$round.log 2>&1)
    echo "${v}_r$round done $(date +%T)"
  done
done
