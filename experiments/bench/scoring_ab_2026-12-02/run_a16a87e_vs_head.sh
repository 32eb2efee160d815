#!/bin/bash
# Scoring alone, interleaved: a16a87e (the commit of the fast-hour figure 0.228 / 0.235 s) vs HEAD.
PRE=$(cd /work/main && AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
for c in a16a87e head; do  # build each checkout's kernels first, untimed
  (cd /tmp/wt_$c && TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c /work/main/.venv/bin/python -c "from src.models import cpu_kernels; cpu_kernels.kernel_error()")
done
for round in 1 2 3; do
  for c in a16a87e head; do
    (cd /tmp/wt_$c && TORCH_EXTENSIONS_DIR=/tmp/ext_ab_$c MIMALLOC_PURGE_DELAY=10000 LD_PRELOAD=$PRE /work/main/.venv/bin/python /tmp/score_ab/score_only.py 2>/dev/null | tail -1 | sed "s/^/$c r$round $(date +%T) /")
  done
done
