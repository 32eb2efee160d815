#!/bin/bash
# Interleaved benches of 2026-12-02, third series (experiments/README.md): commit b4de994 (before
# the speed work), 0ad650f (fused training attention) and d041b84 (counter-based dropout masks), twice,
# one after the other, each as `make bench ARGS=hardware.threads=2` runs it (mimalloc preloaded).
# Each commit was checked out with `git worktree add /tmp/wt_<commit> <commit>`.
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for c in b4de994 0ad650f d041b84; do
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench3/${c}_r$round > /tmp/ibench3_${c}_r$round.log 2>&1)
    echo "${c}_r$round done $(date +%T)"
  done
done
