#!/bin/bash
# How long `python -m src.report experiments/runs` takes (the README's "Comparing runs": it reads
# JSON and YAML only, no torch): /usr/bin/time of that command line, $REPS times (default 5), and the
# number of runs its per-run table lists (the rows of its first table; --wide: one table of every run, as
# the report printed before it had a table per task family; kB here is Linux's KiB).
#   experiments/bench/report_timing.sh
cd "$(dirname "$0")/../.."
for ((i = 0; i < ${REPS:-5}; i++)); do
  /usr/bin/time -f "%e s elapsed, %U s user, %S s sys, %M kB max RSS" .venv/bin/python -m src.report experiments/runs --wide \
    >/tmp/report_timing.$$ 2>/tmp/report_timing_err.$$
  echo "run $((i + 1)): exit $?, $(tail -1 /tmp/report_timing_err.$$)"
done
echo "runs in the per-run table: $(awk '/^$/{exit} /^\| /{n++} END{print n-2}' /tmp/report_timing.$$)"
rm -f /tmp/report_timing.$$ /tmp/report_timing_err.$$
