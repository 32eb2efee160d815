#!/bin/bash
# Whether hardware.kernels changes a training's numbers on the CPU: the tests' budget=smoke SST-2
# search (the real command line, on the real SST trees: AUTOATTEND_DATA_DIR, default ../shared/data) with the fused kernels and with torch's ops, at a
# given commit (default HEAD) checked out in a temporary worktree. Before 980bd87 the torch ops drew
# their dropout masks from torch's generator, the kernels from their own stream.
#   experiments/bench/backend_smoke.sh [COMMIT ...]
cd "$(dirname "$0")/../.."
repo=$PWD
data=$(realpath "${AUTOATTEND_DATA_DIR:-../shared/data}")
for commit in "${@:-HEAD}"; do
  tree=$(mktemp -d /tmp/backend_smoke_XXXX)
  git worktree add -q --detach "$tree" "$commit"
  for kernels in fused torch; do
    line=$(cd "$tree" && AUTOATTEND_DATA_DIR="$data" PYTHONPATH="$tree" "$repo/.venv/bin/python" -m src.search \
      +task=sst2 budget=smoke hardware.kernels=$kernels hydra.run.dir="$tree/run_$kernels" 2>&1 | grep '^summary:')
    echo "$(git rev-parse --short "$commit") kernels=$kernels: $line"
  done
  git worktree remove --force "$tree"
done
