#!/usr/bin/env bash
# incremental-update on the full US set (504 symbols, 2007-2021), release
# build: a 30-scan-date catch-up and a one-day update, each end to end
# (process start, candles read, indicators, labels, updates, artifacts),
# with wall time and peak RSS. The bootstrap before them is not measured.
#
#   bash bench/incremental.sh [DATA_FILE]
#   OLD=DIR bash bench/incremental.sh [DATA_FILE]
#
# With OLD (a folder holding a previous build's `incremental-update`), the
# same steps run with it too, on a copy of the same bootstrapped store, in
# the same run: before and after side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

data=${1:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
release_bins
data=$(realpath "$data")
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-inc.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
common=(--artifacts "$work/artifacts" --watchlist sp500)

# The trading dates: bootstrap 36 dates before the end (it learns through
# 41 before), a catch-up to 6 before the end learns 30 scan dates, the next
# day learns one more.
mapfile -t dates < <(gzip -dc "$data" | tail -n +2 | cut -d, -f2 | sort -u | tail -n 36)
"$bin/ta-signals" "${common[@]}" import "$data" 2>/dev/null
"$bin/bootstrap" "${common[@]}" --train-years 3 --as-of "${dates[0]}" --force >/dev/null 2>&1

step() {
  local name=$1; shift
  sync
  /usr/bin/time -v -o "$work/time.txt" "$@" 2>"$work/log.txt" >/dev/null || { cat "$work/log.txt" >&2; exit 1; }
  local wall rss
  wall=$(time_wall "$work/time.txt")
  rss=$(time_rss_kb "$work/time.txt")
  printf '%-40s %7.2f s %8.1f MB peak RSS\n' "$name" "$wall" "$(echo "$rss / 1024" | bc -l)"
  grep -h "incremental-update:" "$work/log.txt" | sed 's/^.*INFO /    /' | cut -c1-220 || true
}
# steps LABEL BIN ARTIFACTS: the three updates with one build.
steps() {
  local args=(--artifacts "$3" --watchlist sp500)
  step "$1 catch-up (30 scan dates, 504 symbols)" "$2/incremental-update" "${args[@]}" --as-of "${dates[30]}"
  step "$1 one day (1 scan date, 504 symbols)" "$2/incremental-update" "${args[@]}" --as-of "${dates[31]}"
  step "$1 same day again (nothing to do)" "$2/incremental-update" "${args[@]}" --as-of "${dates[31]}"
}
if [ -n "${OLD:-}" ]; then
  cp -r "$work/artifacts" "$work/artifacts-old"
  steps "old:" "$(realpath "$OLD")" "$work/artifacts-old"
fi
steps "new:" "$bin" "$work/artifacts"
