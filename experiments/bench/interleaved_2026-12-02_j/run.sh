#!/bin/bash
# Interleaved benches of 2026-12-02, tenth series: commit 520097f, the memory options: the default
# (float32 Adam state, 2 workers), supernet.recompute (layers recomputed in backward: same
# results), and recompute with Adam's moments in bfloat16 (the labelled option, now one buffer per
# moment) with 2 and 1 workers; twice each, as `make bench` runs them (mimalloc preloaded,
# MIMALLOC_PURGE_DELAY=10000, 2 threads).
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
c=520097f
for round in 1 2; do
  for v in default recompute bf16_recompute bf16_recompute_w1; do
    case $v in
      default) args="" ;;
      recompute) args="bench.recompute=true" ;;
      bf16_recompute) args="bench.optimizer_state=bfloat16 bench.recompute=true" ;;
      bf16_recompute_w1) args="bench.optimizer_state=bfloat16 bench.recompute=true bench.arch_workers=1" ;;
    esac
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 $args hydra.run.dir=/tmp/ibench11/${v}_r$round > /tmp/ibench11/${v}_r$round.log 2>&1)
    echo "${v}_r$round done $(date +%T)"
  done
done
