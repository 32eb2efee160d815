#!/bin/bash
# Interleaved benches of 2026-12-02, eighth series: b4de994 (before the speed work), 3a419f1 (the
# seventh series' newest) and a16a87e (layers that cannot reach the output are skipped),
# twice each, as
# `make bench ARGS=hardware.threads=2` runs them (mimalloc preloaded); each commit in its own
# worktree and kernel build folder.
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for c in b4de994 3a419f1 a16a87e; do
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench9/${c}_r$round > /tmp/ibench9/${c}_r$round.log 2>&1)
    echo "${c}_r$round done $(date +%T)"
  done
done
