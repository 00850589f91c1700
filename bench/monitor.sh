#!/usr/bin/env bash
# monitor on the full US set (504 symbols) or a synthetic universe: 30
# trading days of predictions (one score run per day), then
# `monitor --predictions-days-back 30`, end to end, with wall time and peak
# RSS. Release build.
#
#   bash bench/monitor.sh [DATA_FILE]
#   bash bench/monitor.sh --synthetic 5000     # bench/synth.py, 2.5 years, seed 1
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

if [ "${1:-}" = "--synthetic" ]; then
  symbols=${2:?number of symbols}
  data=$(mktemp "${TMPDIR:-/tmp}/swingml-synth.XXXXXX.csv")
  trap 'rm -f "$data"' EXIT
  python3 bench/synth.py "$symbols" 2.5 1 > "$data"
  label="$symbols synthetic symbols"
else
  data=${1:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
  label="504 symbols"
fi
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
release_bins
data=$(realpath "$data")
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-mon.XXXXXX")
trap 'rm -rf "$work"; case "$data" in */swingml-synth.*) rm -f "$data";; esac' EXIT
cd "$work"
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
common=(--artifacts "$work/artifacts" --watchlist sp500)

cat_data() { case "$data" in *.gz) gzip -dc "$data";; *) cat "$data";; esac; }
mapfile -t dates < <(cat_data | tail -n +2 | cut -d, -f2 | sort -u | tail -n 31)
"$bin/ta-signals" "${common[@]}" import "$data" 2>/dev/null
"$bin/ta-signals" "${common[@]}" run 2>/dev/null
"$bin/bootstrap" "${common[@]}" --train-years 1 --as-of "${dates[0]}" --force >/dev/null 2>&1
for day in "${dates[@]:1}"; do
  "$bin/score" "${common[@]}" --as-of "$day" >/dev/null 2>&1
done
sync
/usr/bin/time -v -o "$work/time.txt" "$bin/monitor" "${common[@]}" --as-of "${dates[30]}" \
  --predictions-days-back 30 >"$work/out.txt" 2>"$work/log.txt" || { cat "$work/log.txt" >&2; exit 1; }
wall=$(time_wall "$work/time.txt")
rss=$(time_rss_kb "$work/time.txt")
printf "monitor, 30 days x $label: %.2f s, %.1f MB peak RSS\n" "$wall" "$(echo "$rss / 1024" | bc -l)"
head -4 "$work/out.txt"
