#!/usr/bin/env bash
# Benchmarks on the full US S&P 500 set (504 symbols, 1.69 M rows, 2007-2021),
# read from ../shared/data (not copied into the project). Release build.
#
#   bash bench/run.sh [DATA_FILE]
#
# Prints, per step: wall time, rows/s and peak RSS (from /usr/bin/time -v).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

data=${1:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
release_bins
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
common=(--artifacts "$work/artifacts" --watchlist sp500)

# step NAME ROWS CMD...: run CMD under /usr/bin/time, print one result line.
step() {
  local name=$1 rows=$2; shift 2
  # The previous step's files still being flushed to disk would be
  # measured as this step's time.
  sync
  /usr/bin/time -v -o "$work/time.txt" "$@" 2>"$work/log.txt" >"$work/out.txt" || { cat "$work/log.txt" >&2; exit 1; }
  local wall rss
  wall=$(time_wall "$work/time.txt")
  rss=$(time_rss_kb "$work/time.txt")
  printf '%-34s %9.2f s %12.0f rows/s %8.1f MB peak RSS\n' "$name" "$wall" "$(echo "$rows / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  grep -h "INFO" "$work/log.txt" | grep -E "import:|ta-signals run:|bootstrap:|bootstrap timings:|score:" | sed 's/^.*INFO /    /' || true
  [ -s "$work/out.txt" ] && sed 's/^/    | /' "$work/out.txt" && : >"$work/out.txt" || true
}

rows=$(gzip -dc "$data" | tail -n +2 | wc -l)
echo "data: $data ($rows rows)"
step "import (SQLite, empty db)" "$rows" "$bin/ta-signals" "${common[@]}" import "$data"
step "import again (idempotent)" "$rows" "$bin/ta-signals" "${common[@]}" import "$data"
step "ta-signals run --full" "$rows" "$bin/ta-signals" "${common[@]}" run --full

# One more trading day for every symbol: last close +0.5 %, next weekday.
python3 - "$data" "$work/next_day.csv" <<'PY'
import csv, datetime, gzip, sys
last = {}
with gzip.open(sys.argv[1], "rt") as f:
    for r in csv.DictReader(f):
        last[r["symbol"]] = r
with open(sys.argv[2], "w") as out:
    out.write("symbol,date,open,high,low,close,volume\n")
    for sym, r in sorted(last.items()):
        d = datetime.date.fromisoformat(r["date"]) + datetime.timedelta(days=1)
        while d.weekday() >= 5:
            d += datetime.timedelta(days=1)
        c = float(r["close"]) * 1.005
        out.write(f"{sym},{d},{c:.4f},{c*1.01:.4f},{c*0.99:.4f},{c:.4f},{r['volume']}\n")
PY
symbols=$(($(wc -l < "$work/next_day.csv") - 1))
step "import one more day" "$symbols" "$bin/ta-signals" "${common[@]}" import "$work/next_day.csv"
step "ta-signals run (one-day increment)" "$symbols" "$bin/ta-signals" "${common[@]}" run

# Training: ten years of every symbol (rows/s counts labeled snapshots).
step "bootstrap --train-years 10" "$rows" "$bin/bootstrap" "${common[@]}" --train-years 10 --top-k 10 --force
step "score (all symbols, last date)" "$symbols" "$bin/score" "${common[@]}" --top-k 10
