#!/bin/bash
# The paper's SST-5 supernet through the real command line (sentence-level training on a 4,480-
# sentence subset: 35 steps, then validation and the checkpoint), with the given overrides; the
# process's resident memory is sampled every second (OUT_DIR/rss.tsv: seconds, VmRSS kB, RssAnon kB,
# RssFile kB) and /usr/bin/time's report is in OUT_DIR/console.txt. The run is stopped once the
# supernet stage is DONE.
#   experiments/bench/pipeline_rss_timeline.sh OUT_DIR [Hydra overrides...]
cd "$(dirname "$0")/../.."
out=$1; shift
mkdir -p "$out"; run=/tmp/pipeline_rss_timeline_run; rm -rf "$run"
echo "$*" > "$out/overrides.txt"
pre=$(AUTOATTEND_ALLOCATOR=auto .venv/bin/python -m src.utils.allocator)
LD_PRELOAD="$pre" MIMALLOC_PURGE_DELAY=10000 AUTOATTEND_DATA_DIR="${AUTOATTEND_DATA_DIR:-../shared/data}" \
  /usr/bin/time -v .venv/bin/python -m src.search +task=sst5 hardware=cpu hardware.threads=2 data.train_level=sentence \
  supernet.train_subset=4480 supernet.epochs=1 "$@" hydra.run.dir="$run" > "$out/console.txt" 2>&1 &
tpid=$!
sleep 1; pid=$(pgrep -P $tpid)
start=$(date +%s)
while kill -0 $pid 2>/dev/null && [ ! -f "$run/supernet/DONE" ]; do
  awk -v t=$(( $(date +%s) - start )) '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print t"\t"r"\t"a"\t"f}' /proc/$pid/status >> "$out/rss.tsv"
  sleep 1
done
[ -f "$run/supernet/DONE" ] && kill $pid
wait $tpid
cp "$run/search.log" "$out/search.log"; cp "$run/supernet/metrics.csv" "$out/metrics.csv" 2>/dev/null
sort -t$'\t' -k2 -n "$out/rss.tsv" | tail -1 | awk '{print "peak sampled VmRSS " int($2/1024) " MiB at " $1 " s (anon " int($3/1024) ", file " int($4/1024) " MiB)"}' | tee "$out/peak.txt"
