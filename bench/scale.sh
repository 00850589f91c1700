#!/usr/bin/env bash
# Scaling of every stage with the universe: synthetic universes
# (bench/synth.py, seeded, never committed) of N symbols x YEARS years,
# release build, SQLite. Per N: import (all but the last day), ta-signals
# run --full, bootstrap (--train-years 5), then the daily cycle of the
# last day: import one day, ta-signals run (incremental), score,
# incremental-update, monitor. Prints seconds and peak RSS per stage and
# the fitted scaling exponent per stage between the smallest and largest N
# (1.0 = linear).
#
#   bash bench/scale.sh [YEARS] [N ...]      (default: 10 500 1000 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

years=${1:-10}; shift || true
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(500 1000 2000)
release_bins
here=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-scale.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
stages=(import "run --full" bootstrap "import 1 day" "run 1 day" score incremental-update monitor "daily cycle")
declare -A secs rss

measure() {
  local n=$1 stage=$2; shift 2
  run_timed "$@"
  secs[$n,$stage]=$(time_wall time.txt)
  rss[$n,$stage]=$(echo "$(time_rss_kb time.txt) / 1024" | bc -l)
  printf '  %-20s %8.2f s %8.0f MB\n' "$stage" "${secs[$n,$stage]}" "${rss[$n,$stage]}"
}

for n in "${sizes[@]}"; do
  echo "== $n symbols x $years years"
  python3 "$here/bench/synth.py" "$n" "$years" 42 > universe.csv
  last=$(tail -n +2 universe.csv | cut -d, -f2 | sort -u | tail -1)
  awk -F, -v d="$last" 'NR == 1 || $2 != d' universe.csv > history.csv
  awk -F, -v d="$last" 'NR == 1 || $2 == d' universe.csv > day.csv
  rm -rf db.sqlite* artifacts
  export DATABASE_URL="sqlite://$work/db.sqlite?mode=rwc" SWINGML_NOW="${last}T23:00:00Z"
  c=(--artifacts "$work/artifacts" --watchlist synth)
  measure "$n" import "$bin/ta-signals" "${c[@]}" import history.csv
  measure "$n" "run --full" "$bin/ta-signals" "${c[@]}" run --full
  measure "$n" bootstrap "$bin/bootstrap" "${c[@]}" --train-years 5 --force
  measure "$n" "import 1 day" "$bin/ta-signals" "${c[@]}" import day.csv
  measure "$n" "run 1 day" "$bin/ta-signals" "${c[@]}" run
  measure "$n" score "$bin/score" "${c[@]}" --as-of "$last"
  measure "$n" incremental-update "$bin/incremental-update" "${c[@]}" --as-of "$last"
  measure "$n" monitor "$bin/monitor" "${c[@]}" --as-of "$last"
  secs[$n,daily cycle]=$(echo "${secs[$n,import 1 day]} + ${secs[$n,run 1 day]} + ${secs[$n,score]} + ${secs[$n,incremental-update]} + ${secs[$n,monitor]}" | bc -l)
  rss[$n,daily cycle]=0
  printf '  %-20s %8.2f s\n' "daily cycle" "${secs[$n,daily cycle]}"
done

lo=${sizes[0]}; hi=${sizes[${#sizes[@]}-1]}
if [ "$lo" != "$hi" ]; then
  echo "== scaling exponent from $lo to $hi symbols (time ~ N^k)"
  for stage in "${stages[@]}"; do
    printf '  %-20s k = %.2f\n' "$stage" \
      "$(echo "l(${secs[$hi,$stage]} / ${secs[$lo,$stage]}) / l($hi / $lo)" | bc -l)"
  done
fi
