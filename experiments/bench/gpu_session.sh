#!/usr/bin/env bash
# The GPU checks of issue 5 (requirement 5), in one call to a lent GPU machine (the `device`
# tool; never CI). That machine has its own python3 with torch, Lightning, PyG and torchmetrics
# but not hydra-core / omegaconf, and reaches no network, so the caller prepares two ignored
# folders in the repository root and carries them:
#   .devsite/  hydra, omegaconf and antlr4 copied from the venv (pure Python)
#   .devdata/  sst/ and planetoid/ copied from ../shared/data
# and runs, from the repository root:  bash experiments/bench/gpu_session.sh
# Writes under $OUT (default /tmp/gpu_out): session.log, bench.json, gpu_equivalence.json and
# runs.tgz (the smoke runs' folders without weights).
set -u
PY=${PY:-python3} HW=${HW:-hardware=gpu} BENCH_ARGS=${BENCH_ARGS:-bench.reps=10 bench.warmup=3}
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/.devsite${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 AUTOATTEND_DATA_DIR=$PWD/.devdata
export AUTOATTEND_CACHE_DIR=/tmp/autoattend_cache AUTOATTEND_OUTPUT_DIR=/tmp/gpu_runs
LOG=$OUT/session.log
step() { echo "=== $(date -u +%FT%TZ) $*" | tee -a "$LOG"; }

step machine
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nproc; grep -m1 "model name" /proc/cpuinfo
  $PY -c "import sys, torch, lightning, torch_geometric, torchmetrics, hydra, omegaconf; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning', lightning.__version__, 'pyg', torch_geometric.__version__, 'torchmetrics', torchmetrics.__version__, 'hydra', hydra.__version__)"
} 2>&1 | tee -a "$LOG"

step "bench: python3 -m src.bench hardware=gpu bench.reps=10 bench.warmup=3"
timeout 200 $PY -m src.bench $HW $BENCH_ARGS hydra.run.dir=/tmp/gpu_runs/bench 2>&1 | tee -a "$LOG"
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"
cp /tmp/gpu_runs/bench/bench.json "$OUT/" 2>/dev/null

step "equivalence: python3 experiments/bench/gpu_equivalence.py"
timeout 150 $PY experiments/bench/gpu_equivalence.py "$AUTOATTEND_DATA_DIR" "$OUT/gpu_equivalence.json" 2>&1 | tail -n 5 | tee -a "$LOG"
echo "exit ${PIPESTATUS[0]}" | tee -a "$LOG"

for run in "sst2 smoke_sst2" "cora smoke_cora" "sst2 smoke_sst2_bf16 hardware.precision=bf16-mixed"; do
  set -- $run
  task=$1 name=$2
  shift 2
  step "python3 -m src.search +task=$task budget=smoke hardware=gpu $*"
  start=$(date +%s)
  timeout 80 $PY -m src.search +task="$task" budget=smoke $HW "$@" hydra.run.dir=/tmp/gpu_runs/"$name" 2>&1 \
    | tail -n 25 | tee -a "$LOG"
  echo "exit ${PIPESTATUS[0]} after $(( $(date +%s) - start )) s" | tee -a "$LOG"
done

tar czf "$OUT/runs.tgz" -C /tmp/gpu_runs --exclude='*.ckpt' --exclude='model.pt' --exclude='*.pt' . 2>/dev/null
step done
