#!/bin/bash
# How long a command line with a config mistake takes to fail (the README's "Bad config values"
# paragraph): the wall clock of each case below, 5 times (or $REPS), and their median, at a given
# commit (default HEAD) checked out in a temporary worktree. The cases:
#   notask    python -m src.search                                          (no task: an error)
#   nope      python -m src.search +task=nope                               (Hydra: no such config)
#   recompute python -m src.search +task=sst2 budget=smoke supernet.recompute=1
#   gpu       python -m src.search +task=sst2 budget=smoke hardware=gpu     (on a machine without a GPU)
#   benchadd  python -m src.bench +bench.foo=1                              (an added key nothing reads)
#   benchreps python -m src.bench bench.reps=0
# Each runs with its run folder in a temporary directory and the data folder AUTOATTEND_DATA_DIR
# (default ../shared/data). The checks before torch came in 4a99361; hardware=gpu answered after
# torch alone in f43e30a, so the "before" figures are those commits' parents:
#   experiments/bench/config_check_timing.sh [COMMIT [CASE ...]]
#   experiments/bench/config_check_timing.sh 4a99361^ notask nope
#   experiments/bench/config_check_timing.sh f43e30a^ gpu
# src.bench checked its settings after importing torch until the entry point was split from the harness
# (src/bench_harness.py): run the bench cases at HEAD and at the commit before that split.
cd "$(dirname "$0")/../.."
repo=$PWD
data=$(realpath "${AUTOATTEND_DATA_DIR:-../shared/data}")
commit=${1:-HEAD}
shift
if [ $# -gt 0 ]; then cases=("$@"); else cases=(notask nope recompute gpu); fi
reps=${REPS:-5}
tree=$(mktemp -d /tmp/config_check_XXXX)
git worktree add -q --detach "$tree" "$commit"
for case in "${cases[@]}"; do
  module=src.search
  case $case in
    notask) args=() ;;
    nope) args=(+task=nope) ;;
    recompute) args=(+task=sst2 budget=smoke supernet.recompute=1) ;;
    gpu) args=(+task=sst2 budget=smoke hardware=gpu) ;;
    benchadd) module=src.bench; args=(+bench.foo=1) ;;
    benchreps) module=src.bench; args=(bench.reps=0) ;;
    *) echo "unknown case $case" >&2; exit 2 ;;
  esac
  times=()
  for ((i = 0; i < reps; i++)); do
    start=$(date +%s.%N)
    (cd "$tree" && AUTOATTEND_DATA_DIR="$data" PYTHONPATH="$tree" "$repo/.venv/bin/python" -m "$module" \
      "${args[@]}" hydra.run.dir="$tree/run_$case" >"$tree/out_$case" 2>&1)
    status=$?
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (reps + 1) / 2 ))p")
  printf '%s %-9s exit %s, wall s: %s; median %.2f s; last line: %s\n' "$(git rev-parse --short "$commit")" "$case" \
    "$status" "$(printf '%.2f ' "${times[@]}")" "$median" "$(grep -v '^\s*$' "$tree/out_$case" | tail -1 | cut -c1-160)"
done
git worktree remove --force "$tree"
