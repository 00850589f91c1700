#!/usr/bin/env bash
# monitor on the full US set (504 symbols): 30 trading days of predictions
# (one score run per day), then `monitor --predictions-days-back 30`, end to
# end, with wall time and peak RSS. Release build.
#
#   bash bench/monitor.sh [DATA_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

data=${1:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
cargo build --release --locked --bins >&2
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release")
data=$(realpath "$data")
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-mon.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
common=(--artifacts "$work/artifacts" --watchlist sp500)

mapfile -t dates < <(gzip -dc "$data" | tail -n +2 | cut -d, -f2 | sort -u | tail -n 31)
"$bin/ta-signals" "${common[@]}" import "$data" 2>/dev/null
"$bin/ta-signals" "${common[@]}" run 2>/dev/null
"$bin/bootstrap" "${common[@]}" --train-years 3 --as-of "${dates[0]}" --force >/dev/null 2>&1
for day in "${dates[@]:1}"; do
  "$bin/score" "${common[@]}" --as-of "$day" >/dev/null 2>&1
done
sync
/usr/bin/time -v -o "$work/time.txt" "$bin/monitor" "${common[@]}" --as-of "${dates[30]}" \
  --predictions-days-back 30 >"$work/out.txt" 2>"$work/log.txt" || { cat "$work/log.txt" >&2; exit 1; }
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
printf 'monitor, 30 days x 504 symbols: %.2f s, %.1f MB peak RSS\n' "$wall" "$(echo "$rss / 1024" | bc -l)"
head -4 "$work/out.txt"
