#!/usr/bin/env bash
# Bootstrap of two builds on the same data, in one run: wall time, peak RSS
# and their ratio (the machine is shared and noisy: compare within a run).
#
#   bash bench/compare_bootstrap.sh OLD_BIN_DIR NEW_BIN_DIR [DATA_FILE] [ROUNDS]
#
# OLD_BIN_DIR / NEW_BIN_DIR hold release `ta-signals` and `bootstrap`
# binaries (e.g. a worktree of the previous commit built with
# `cargo build --release`, its binaries copied aside). The candles are
# imported once (with NEW's ta-signals); each round runs OLD then NEW
# `bootstrap --train-years 10 --force` into separate artifact stores.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

old=${1:?old bin dir}; new=${2:?new bin dir}
data=${3:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
rounds=${4:-2}
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
data=$(realpath "$data"); old=$(realpath "$old"); new=$(realpath "$new")
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Both builds run with their defaults: no config/swingml.toml in the way.
cd "$work"
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
"$new/ta-signals" --artifacts "$work/import" --watchlist sp500 import "$data" 2>/dev/null

# run NAME BIN_DIR: one bootstrap; prints "NAME wall_s rss_mb".
run() {
  sync
  /usr/bin/time -v -o "$work/time.txt" "$2/bootstrap" --artifacts "$work/$1" --watchlist sp500 \
    --train-years 10 --top-k 10 --force >/dev/null 2>"$work/log.txt" || { cat "$work/log.txt" >&2; exit 1; }
  local wall rss
  wall=$(time_wall "$work/time.txt")
  rss=$(time_rss_kb "$work/time.txt")
  echo "$1 $wall $(echo "$rss / 1024" | bc -l)"
}

echo "data: $data; $rounds round(s), each old then new"
results=()
for r in $(seq "$rounds"); do
  o=$(run old "$old") && n=$(run new "$new") || exit 1
  results+=("$o" "$n")
done
printf '%s\n' "${results[@]}" | awk '
  { wall[$1] += $2; rss[$1] = ($3 > rss[$1] ? $3 : rss[$1]); n[$1]++ }
  END {
    for (k in wall) printf "%-4s bootstrap: mean wall %7.2f s over %d run(s), peak RSS %7.1f MB\n", k, wall[k] / n[k], n[k], rss[k]
    printf "new / old: wall %.2f×, peak RSS %.2f×\n", (wall["new"] / n["new"]) / (wall["old"] / n["old"]), rss["new"] / rss["old"]
  }'
