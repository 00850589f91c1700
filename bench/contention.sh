#!/usr/bin/env bash
# LightGBM on a shared CPU: bootstrap (release, the full US set,
# --train-years 5) quiet and with one other CPU-bound process running,
# under three OpenMP wait policies, all in one run:
#   libgomp's default (what ran before swingml set the policy itself;
#   reproduced with OMP_WAIT_POLICY set but empty, which libgomp ignores
#   and swingml keeps), ACTIVE (spin), PASSIVE (swingml's default now).
# Prints wall time, the LightGBM part, and contended/quiet per policy.
#
#   bash bench/contention.sh [DATA_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

data=${1:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
release_bins
data=$(realpath "$data")
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-omp.XXXXXX")
hog=
cleanup() { [ -n "$hog" ] && kill "$hog" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
common=(--artifacts "$work/artifacts" --watchlist sp500)
"$bin/ta-signals" "${common[@]}" import "$data" 2>/dev/null

declare -A wall
run() {
  local label=$1 policy=$2
  sync
  OMP_WAIT_POLICY=$policy /usr/bin/time -v -o time.txt "$bin/bootstrap" "${common[@]}" --train-years 5 --force \
    >/dev/null 2>log.txt || { cat log.txt >&2; exit 1; }
  wall[$label]=$(time_wall time.txt)
  local lgb
  lgb=$(grep -ho "LightGBM fits [0-9.]* s" log.txt | head -1)
  printf '%-34s %8.1f s   (%s)\n' "$label" "${wall[$label]}" "$lgb"
}

policies=("" ACTIVE PASSIVE)
name() { case $1 in "") echo "libgomp default (before)";; PASSIVE) echo "PASSIVE (now)";; *) echo "$1";; esac; }
for p in "${policies[@]}"; do run "quiet, $(name "$p")" "$p"; done
python3 -c 'while True: pass' &
hog=$!
for p in "${policies[@]}"; do run "contended, $(name "$p")" "$p"; done
kill "$hog"; hog=
for p in "${policies[@]}"; do
  printf 'contended / quiet, %-26s %.2fx\n' "$(name "$p"):" \
    "$(echo "${wall[contended, $(name "$p")]} / ${wall[quiet, $(name "$p")]}" | bc -l)"
done
