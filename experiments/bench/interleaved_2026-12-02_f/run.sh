#!/bin/bash
# Interleaved benches of 2026-12-02, sixth series: b4de994 (before the speed work), 03e6ab2 (the
# fifth series' newest) and 0176c73 (the GRU's inference gather/scatter in the kernel, LayerNorm and fills
# without autograd nodes at inference, oneDNN caches capped at 64), twice each, as
# `make bench ARGS=hardware.threads=2` runs them (mimalloc preloaded); each commit in its own
# worktree and kernel build folder.
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for c in b4de994 03e6ab2 0176c73; do
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench7/${c}_r$round > /tmp/ibench7/${c}_r$round.log 2>&1)
    echo "${c}_r$round done $(date +%T)"
  done
done
