#!/bin/bash
# Interleaved benches of 2026-12-02 (experiments/README.md): commit b4de994 (before the speed work),
# 4664d54 (the fused GRU) and 0602fd3 (the fused attention kernel), twice, one after the other, each
# as `make bench ARGS=hardware.threads=2` runs it (mimalloc preloaded). The two older commits were
# checked out with `git worktree add /tmp/wt_<commit> <commit>`; bench.json files copied here.
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for tree in /tmp/wt_b4de994 /tmp/wt_4664d54 /work/main; do
    name=$(basename $tree)_r$round
    (cd $tree && AUTOATTEND_DATA_DIR=/work/shared/data MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench/$name > /tmp/ibench_$name.log 2>&1)
    echo "$name done $(date +%T)"
  done
done
