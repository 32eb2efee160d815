#!/bin/bash
# The paper's SST-5 supernet trained through the real command line inside a 1,600 MiB memory
# cgroup (experiments/bench/memory_limit_run.sh): 70 steps (sentence-level training, 2 epochs of a 4,480-sentence subset, so
# a validation and a checkpoint fall inside), with supernet.recompute=true and either
# supernet.optimizer_offload=true (float32 moments in a file) or the moments in memory. The run is
# stopped once the supernet stage is DONE (the search would follow).
#   experiments/bench/offload_under_limit.sh offload|memory OUT_DIR [more Hydra overrides]
cd "$(dirname "$0")/../.."
mode=$1; out=$2; shift 2
offload=$([ "$mode" = offload ] && echo true || echo false)
pre=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
run=/tmp/offload_under_limit_$mode
rm -rf "$run"
experiments/bench/memory_limit_run.sh 1600 "$out" env LD_PRELOAD="$pre" MIMALLOC_PURGE_DELAY=10000 \
  AUTOATTEND_DATA_DIR="${AUTOATTEND_DATA_DIR:-../shared/data}" bash -c '
  /usr/bin/time -v .venv/bin/python -m src.search +task=sst5 hardware=cpu hardware.threads=2 supernet.recompute=true data.train_level=sentence \
    supernet.optimizer_offload='"$offload"' supernet.train_subset=4480 supernet.epochs=2 \
    '"$*"' hydra.run.dir='"$run"' &
  pid=$!
  while kill -0 $pid 2>/dev/null && [ ! -f '"$run"'/supernet/DONE ]; do sleep 2; done
  if [ -f '"$run"'/supernet/DONE ]; then
    echo "supernet stage DONE after $(cat '"$run"'/supernet/DONE) steps: stopping the run"; pkill -TERM -P $pid; wait $pid; exit 0
  fi
  wait $pid'
