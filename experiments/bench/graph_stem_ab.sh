#!/bin/bash
# Whether the graph supernet's linear stem helps a retrained child whose ops reading node 0 all start
# with a linear map (the README's "the supernet's linear stem ... is left out of a retrained child";
# graph.retrain.stem): GCN (arch=gcn) retrained on Cora (Planetoid public split) without the stem
# (graph.retrain.stem=auto, the default) and with it (graph.retrain.stem=linear), $SEEDS seeds each
# (default 3: seeds 0-2; test accuracy at the evaluation with the best validation score, mean +- sample
# std), through the real command line; each run's folder in a temporary directory.
#   experiments/bench/graph_stem_ab.sh
cd "$(dirname "$0")/../.."
data=$(realpath "${AUTOATTEND_DATA_DIR:-../shared/data}")
tmp=$(mktemp -d /tmp/graph_stem_XXXX)
for stem in auto linear; do
  line=$(AUTOATTEND_DATA_DIR="$data" PYTHONPATH="$PWD" .venv/bin/python -m src.retrain +task=cora arch=gcn \
    graph.retrain.seeds=${SEEDS:-3} graph.retrain.stem=$stem hydra.run.dir="$tmp/$stem" 2>&1 | grep '^summary:')
  echo "graph.retrain.stem=$stem: $line"
  .venv/bin/python -c "import json,sys; r=json.load(open(sys.argv[1])); print('  per seed test:', [round(s.get('test_acc', float('nan'))*100, 2) for s in r.get('per_seed', [])] or r)" \
    "$tmp/$stem/retrain/results.json" 2>/dev/null | cut -c1-400
done
rm -rf "$tmp"
