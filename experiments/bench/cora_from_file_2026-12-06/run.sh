#!/bin/bash
# Cora from a file against +task=cora, the reduced protocol of experiments/README.md "Cora from a file".
set -e
cd /work/main
export AUTOATTEND_DATA_DIR=/work/shared/data
PY=.venv/bin/python
$PY - <<'PYEOF'
import numpy as np
from src.data.planetoid import PlanetoidDataModule
cora = PlanetoidDataModule("cora", data_dir="/work/shared/data", cache_dir="/tmp/s45/cache", download=False)
cora.setup()
np.savez("/tmp/s45/cora.npz", **{k: (v.to_dense() if v.is_sparse else v).numpy() for k, v in cora.graph.items()})
PYEOF
COMMON="graph.retrain.seeds=2 graph.baselines=[gcn] graph.supernet.steps=200 strategy.population=50 strategy.rounds=1 strategy.parents=10"
for name in cora file_sparse file_dense; do
  case $name in
    cora) TASK="+task=cora";;
    file_sparse) TASK="+task=graph_file task.path=/tmp/s45/cora.npz";;
    file_dense) TASK="+task=graph_file task.path=/tmp/s45/cora.npz task.sparse_features=false";;
  esac
  rm -rf /tmp/s45/$name
  echo "== $name: $(date -u +%H:%M:%S)"
  /usr/bin/time -v $PY -m src.search $TASK $COMMON hydra.run.dir=/tmp/s45/$name > /tmp/s45/$name.out 2> /tmp/s45/$name.err
  grep -E "Elapsed|Maximum resident" /tmp/s45/$name.err
  tail -2 /tmp/s45/$name.out
done
for f in supernet/metrics.csv search/population.jsonl; do
  cmp /tmp/s45/cora/$f /tmp/s45/file_sparse/$f && echo "same $f (cora, file_sparse)"
  cmp -s /tmp/s45/cora/$f /tmp/s45/file_dense/$f && echo "same $f (cora, file_dense)" || echo "differ $f (cora, file_dense)"
done
