#!/bin/bash
# Interleaved benches of 2026-12-02, fourth series (experiments/README.md): commit b4de994 (before
# the speed work), 2f6105b (the third series' d041b84 plus a lock-free check for loaded kernels)
# and fac5046 (one-pass dropout, fills and LayerNorm, channels-last conv and pool, the GRU's own
# step products), twice, one after the other, each as `make bench ARGS=hardware.threads=2` runs it
# (mimalloc preloaded). Each commit was checked out with `git worktree add /tmp/wt_<commit> <commit>`
# and given its own kernel build folder, so that no run rebuilds another's kernels.
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for c in b4de994 2f6105b fac5046; do
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench4/${c}_r$round > /tmp/ibench4_${c}_r$round.log 2>&1)
    echo "${c}_r$round done $(date +%T)"
  done
done
