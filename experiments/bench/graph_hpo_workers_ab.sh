#!/bin/bash
# Interleaved A/B of the graph HPO stage on Cora (AutoGL's 8 trials, then 1 seed): trials one after
# the other (commit 1b7108f and before) against trials in graph.retrain.workers processes (after).
# Usage, from the repository root with .venv built:
#   git worktree add /tmp/wt_old 1b7108f && ln -s "$PWD/.venv" /tmp/wt_old/.venv
#   AUTOATTEND_DATA_DIR=../shared/data experiments/bench/graph_hpo_workers_ab.sh /tmp/wt_old
# Prints the seconds from the data being loaded to the 8th trial's result, per run, and each run's
# trial scores (the two sides must agree exactly).
set -euo pipefail
OLD=${1:?usage: graph_hpo_workers_ab.sh OLD_WORKTREE}
NEW=$PWD
ARCH=$NEW/experiments/runs/cora_default_2026-12-02/search/best_arch.yaml
for rep in 1 2; do
  for side in old new; do
    dir=$NEW; [ $side = old ] && dir=$OLD
    run=/tmp/hpo_ab_${side}_$rep
    rm -rf "$run"
    (cd "$dir" && .venv/bin/python -m src.retrain +task=cora arch="$ARCH" graph.hpo.trials=8 graph.retrain.seeds=1 \
       hydra.run.dir="$run" paths.data_dir="$AUTOATTEND_DATA_DIR" > /dev/null 2>&1)
    python3 - "$run" "$side" "$rep" <<'PY'
import json, re, sys
from datetime import datetime
run, side, rep = sys.argv[1:]
stamp = lambda line: datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
lines = open(f"{run}/retrain.log").read().splitlines()
start = stamp(next(l for l in lines if "2708 nodes" in l))
end = stamp(next(l for l in lines if "hpo: trial 7" in l))
trials = json.load(open(f"{run}/retrain/hpo.json"))["trials"]
print(f"{side} rep {rep}: 8 trials in {(end - start).total_seconds():.1f} s; val {[round(t['val_acc'], 4) for t in trials]}")
PY
  done
done
