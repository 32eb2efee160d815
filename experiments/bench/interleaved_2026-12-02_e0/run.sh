#!/bin/bash
# Interleaved benches of 2026-12-02 (experiments/README.md, fifth series): fac5046 against 864b140
# (oneDNN products, the attention kernel changes, the pack-plan cache, max-pool without autograd),
# twice each, as `make bench ARGS=hardware.threads=2` runs them, each commit in its own worktree.
cd /work/main
PRE=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2; do
  for c in fac5046 864b140; do
    (cd /tmp/wt_$c && AUTOATTEND_DATA_DIR=/work/shared/data TORCH_EXTENSIONS_DIR=/tmp/ext_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python -m src.bench hardware.threads=2 hydra.run.dir=/tmp/ibench5/${c}_r$round > /tmp/ibench5/${c}_r$round.log 2>&1)
    echo "${c}_r$round done $(date +%T)"
  done
done
