#!/usr/bin/env bash
# SST-2 budget=quick with torch's ops (hardware.kernels=torch): the GRU packed (commit 3e96815, checked
# out as a worktree in /tmp/wt_old: `git worktree add /tmp/wt_old 3e96815`) against unpacked (this
# checkout), interleaved, two rounds. The entry points restart themselves with mimalloc. Output:
# experiments/bench/quick_kernels_torch_gru_ab_2026-12-04.txt (one line per run).
set -u
PY=${PY:-/work/main/.venv/bin/python}
NEW=${NEW:-/work/main} OLD=${OLD:-/tmp/wt_old} OUT=${OUT:-/tmp/ab}
export AUTOATTEND_DATA_DIR=${AUTOATTEND_DATA_DIR:-/work/shared/data} AUTOATTEND_CACHE_DIR=${AUTOATTEND_CACHE_DIR:-/tmp/aa_cache}
mkdir -p "$OUT"
for round in 1 2; do
  for which in old new; do
    dir=$NEW; [ $which = old ] && dir=$OLD
    rm -rf "$OUT/run_$which$round"
    s=$(date +%s)
    (cd "$dir" && $PY -m src.search +task=sst2 budget=quick hardware.kernels=torch \
      hydra.run.dir="$OUT/run_$which$round" > "$OUT/log_$which$round.txt" 2>&1)
    echo "$which round $round exit $? wall $(( $(date +%s) - s )) s: $(grep '^summary' "$OUT/log_$which$round.txt")"
  done
done
