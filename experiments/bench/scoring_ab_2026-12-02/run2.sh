#!/bin/bash
# Scoring alone, interleaved, 2026-12-02 afternoon: b4de994 (about the authors' code), a16a87e (the fast-hour figure) and HEAD.
PRE=$(cd /work/main && AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for round in 1 2 3; do
  for c in b4de994 a16a87e head; do
    (cd /tmp/wt_$c && TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python /tmp/score_ab/score_only.py 2>/dev/null | tail -1 | sed "s/^/$c r$round $(date +%T) /")
  done
done
