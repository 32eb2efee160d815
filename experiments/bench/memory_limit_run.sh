#!/bin/bash
# Run a command inside a fresh memory cgroup with a hard limit, and report how it ended and the
# cgroup's peak usage (resident memory *and* the page cache charged to it, e.g. offloaded Adam
# moments): shows whether a run really fits in that much RAM, not only what its RSS was.
#
#   experiments/bench/memory_limit_run.sh LIMIT_MIB OUT_DIR command [args...]
#
# Needs a writable cgroup (v1 memory controller or v2); no swap is used (memsw limited too on v1).
# Writes OUT_DIR/{command.txt,console.txt,result.txt}.
set -u
limit_mib=$1; out=$2; shift 2
mkdir -p "$out"
echo "$*" > "$out/command.txt"
bytes=$((limit_mib * 1024 * 1024))
self=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
if [ -n "$self" ] && [ -d "/sys/fs/cgroup/memory$self" ]; then
  cg="/sys/fs/cgroup/memory$self/autoattend_limit_$$"
  mkdir "$cg" || exit 1
  echo "$bytes" > "$cg/memory.limit_in_bytes"
  echo "$bytes" > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null
  peak_file=memory.max_usage_in_bytes; fail_file=memory.failcnt
else
  cg="/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)/autoattend_limit_$$"
  mkdir "$cg" || exit 1
  echo "$bytes" > "$cg/memory.max"; echo 0 > "$cg/memory.swap.max"
  peak_file=memory.peak; fail_file=memory.events
fi
start=$(date +%s)
( echo $BASHPID > "$cg/cgroup.procs" && exec "$@" ) > "$out/console.txt" 2>&1
rc=$?
{
  echo "limit: $limit_mib MiB ($cg)"
  echo "exit status: $rc (137: killed, e.g. by the out-of-memory killer)"
  echo "wall clock: $(( $(date +%s) - start )) s"
  echo "cgroup peak usage (resident + page cache charged): $(( $(cat "$cg/$peak_file") / 1024 / 1024 )) MiB"
  echo "$fail_file: $(tr '\n' ' ' < "$cg/$fail_file")"
  grep -E "^(total_)?(rss|cache|dirty|writeback) " "$cg/memory.stat" 2>/dev/null | tr '\n' ' '; echo
  date -u +"finished %Y-%m-%d %H:%M:%S UTC"
} | tee "$out/result.txt"
rmdir "$cg" 2>/dev/null
exit $rc
