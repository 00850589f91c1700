#!/usr/bin/env bash
# ta-signals fetch against a local Yahoo-shaped server (bench/provider_server.py
# over the full US set), release build, rate limit off:
#   1. a 10-year back-fill of 50 symbols into an empty database;
#   2. the daily fetch of 504 symbols with one new bar each (the database
#      holds every candle up to the day before), end to end with the write.
# Beside each: the floor, the same GETs by a plain Python client with the
# same concurrency (HTTP and server only, nothing parsed or stored).
#
#   bash bench/fetch.sh [DATA_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

data=${1:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
release_bins
data=$(realpath "$data")
here=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-fetch.XXXXXX")
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

python3 "$here/bench/provider_server.py" "$data" > server.out &
server_pid=$!
until grep -q '^port ' server.out 2>/dev/null; do sleep 0.2; done
base="http://127.0.0.1:$(awk '/^port/ {print $2}' server.out)"
concurrency=8
cat > fetch.toml <<TOML
[fetch]
providers = ["yahoo"]
concurrency = $concurrency
write_every = 100
[fetch.yahoo]
requests_per_minute = 0
TOML
last=$(gzip -dc "$data" | tail -n +2 | cut -d, -f2 | sort -u | tail -n 2)
prev=$(echo "$last" | head -1); day=$(echo "$last" | tail -1)
# The evening of the last day, New York (22:00 UTC is after the close).
export SWINGML_NOW="${day}T22:00:00Z"
mapfile -t symbols < <(gzip -dc "$data" | tail -n +2 | cut -d, -f1 | uniq)

step() {
  local name=$1 requests=$2; shift 2
  sync
  /usr/bin/time -v -o time.txt "$@" 2>log.txt >/dev/null || { cat log.txt >&2; exit 1; }
  local wall rss
  wall=$(time_wall time.txt)
  rss=$(time_rss_kb time.txt)
  printf '%-44s %7.2f s %7.0f req/s %8.1f MB peak RSS\n' "$name" "$wall" "$(echo "$requests / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  grep -h "fetch through" log.txt | sed 's/^.*INFO /    /' | cut -c1-240 || true
  echo "$wall" > last_wall
}

floor() {
  local name=$1 from=$2; shift 2
  python3 - "$base" "$from" "$day" "$concurrency" "$@" > floor.txt <<'PY'
import sys, time, urllib.request, datetime as dt
from concurrent.futures import ThreadPoolExecutor
base, first, last, workers, symbols = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
secs = lambda d: int(dt.datetime.fromisoformat(d + "T00:00:00+00:00").timestamp())
p1, p2 = secs(first) - 86400, secs(last) + 2 * 86400
def get(s):
    with urllib.request.urlopen(f"{base}/v8/finance/chart/{s}?period1={p1}&period2={p2}&interval=1d") as r:
        return len(r.read())
t = time.time()
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(get, symbols))
print(time.time() - t)
PY
  local wall; wall=$(cat floor.txt)
  printf '%-44s %7.2f s %7.0f req/s   (ratio %.2f)\n' "$name" "$wall" "$(echo "$# / $wall" | bc -l)" "$(echo "$(cat last_wall) / $wall" | bc -l)"
}

# 1. Back-fill: 50 symbols, 10 years, empty database.
export DATABASE_URL="sqlite://$work/backfill.db?mode=rwc"
fifty=$(IFS=,; echo "${symbols[*]:0:50}")
step "back-fill 50 symbols x 10 years" 50 \
  "$bin/ta-signals" --artifacts "$work/a1" --config fetch.toml fetch --watchlist bf --symbols "$fifty" --base-url "$base"
ten_years_ago=$(date -d "$day - 3653 days" +%F)
floor "  floor: the same 50 GETs (Python)" "$ten_years_ago" "${symbols[@]:0:50}"

# 2. Daily: 504 symbols hold every candle through the day before.
export DATABASE_URL="sqlite://$work/daily.db?mode=rwc"
gzip -dc "$data" | awk -F, -v d="$day" 'NR == 1 || $2 != d' > upto.csv
"$bin/ta-signals" --artifacts "$work/a2" import upto.csv --watchlist sp500 >/dev/null 2>&1
step "daily fetch 504 symbols, one new bar each" "${#symbols[@]}" \
  "$bin/ta-signals" --artifacts "$work/a2" --config fetch.toml fetch --watchlist sp500 --base-url "$base"
overlap_from=$(date -d "$prev - 5 days" +%F)
floor "  floor: the same 504 GETs (Python)" "$overlap_from" "${symbols[@]}"
