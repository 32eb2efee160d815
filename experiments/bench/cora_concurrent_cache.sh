#!/usr/bin/env bash
# Two `+task=cora budget=smoke` runs started together on one fresh paths.cache_dir, three times
# (session 46's robustness walk: before 3322478, 2 of 3 such tries ended one run with "<data dir>/planetoid/
# Cora/raw: not readable as Planetoid data", the runs reading each other's half-written processed/data.pt).
# Prints each run's exit status and what the cache holds afterwards (no build folder may stay).
# Usage (repository root): bash experiments/bench/cora_concurrent_cache.sh [/tmp/folder]
set -u
out=${1:-/tmp/cora_concurrent_cache}
export AUTOATTEND_DATA_DIR=${AUTOATTEND_DATA_DIR:-../shared/data}
PY=${PY:-.venv/bin/python}
for try in 1 2 3; do
  rm -rf "$out/$try" && mkdir -p "$out/$try"
  for run in a b; do
    ( $PY -m src.search +task=cora budget=smoke paths.cache_dir="$out/$try/cache" hydra.run.dir="$out/$try/$run" \
        > "$out/$try/$run.log" 2>&1; echo "try $try run $run: exit $?" ) &
  done
  wait
  echo "try $try cache: $(cd "$out/$try/cache" && find . -mindepth 1 | sort | tr '\n' ' ')"
  grep -h "^summary:" "$out/$try/a.log" "$out/$try/b.log"
done
