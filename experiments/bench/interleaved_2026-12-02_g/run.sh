#!/bin/bash
# Interleaved benches of 2026-12-02, seventh series: b4de994 (before the speed work), 0176c73 (the
# sixth series' newest) and 3a419f1 (convolutions over packed sequences at D >= 128, oneDNN products
# respecting torch.backends.mkldnn.enabled), twice each, as
# `make bench ARGS=hardware.threads=2` runs them (mimalloc preloaded); each commit in its own
# worktree and kernel build folder.
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for c in b4de994 0176c73 3a419f1; do
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench8/${c}_r$round > /tmp/ibench8/${c}_r$round.log 2>&1)
    echo "${c}_r$round done $(date +%T)"
  done
done
