#!/usr/bin/env bash
# sst2 budget=quick with hardware.kernels=torch: packed GRU (3e96815) vs unpacked (HEAD), interleaved
set -u
PY=/work/main/.venv/bin/python
export AUTOATTEND_DATA_DIR=/work/shared/data AUTOATTEND_CACHE_DIR=/tmp/aa_cache
for round in 1 2; do
  for which in old new; do
    dir=/work/main; [ $which = old ] && dir=/tmp/wt_old
    rm -rf /tmp/ab/run_$which$round
    s=$(date +%s)
    (cd $dir && LD_PRELOAD=$($PY -c "import cmeel_mimalloc,sys" 2>/dev/null; echo) $PY -m src.search +task=sst2 budget=quick hardware.kernels=torch hydra.run.dir=/tmp/ab/run_$which$round > /tmp/ab/log_$which$round.txt 2>&1)
    echo "$which round $round exit $? wall $(( $(date +%s) - s )) s: $(grep '^summary' /tmp/ab/log_$which$round.txt)"
  done
done
