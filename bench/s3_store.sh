#!/usr/bin/env bash
# The daily cycle with the artifact store in a folder vs on S3 (moto's S3
# server on loopback, tests/s3_server.py), from the same post-bootstrap
# state: synthetic universe (bench/synth.py) of N symbols x YEARS years,
# release build, SQLite. Prints seconds per stage for both stores and the
# ratio S3 / folder. moto is a Python server answering one request at a
# time: the figures bound the protocol's cost (requests per commit, the
# manifest rewritten per commit), not a real S3's latency.
#
#   bash bench/s3_store.sh [N] [YEARS]      (default: 1000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

n=${1:-1000}; years=${2:-10}
release_bins
here=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-s3.XXXXXX")
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

echo "== $n symbols x $years years: setting up (import, run --full, bootstrap)"
python3 "$here/bench/synth.py" "$n" "$years" 42 > universe.csv
last=$(tail -n +2 universe.csv | cut -d, -f2 | sort -u | tail -1)
awk -F, -v d="$last" 'NR == 1 || $2 != d' universe.csv > history.csv
awk -F, -v d="$last" 'NR == 1 || $2 == d' universe.csv > day.csv
export DATABASE_URL="sqlite://$work/db.sqlite?mode=rwc" SWINGML_NOW="${last}T23:00:00Z"
boot=(--artifacts "$work/artifacts-boot" --watchlist synth)
"$bin/ta-signals" "${boot[@]}" import history.csv 2>/dev/null
"$bin/ta-signals" "${boot[@]}" run --full 2>/dev/null
"$bin/bootstrap" "${boot[@]}" --train-years 5 --force >/dev/null 2>&1
cp db.sqlite db-boot.sqlite

# The S3 server; it serves until its stdin closes.
mkfifo server.in
python3 "$here/tests/s3_server.py" swingml-bench < server.in > server.port &
server_pid=$!
exec 3> server.in
while [ ! -s server.port ]; do sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat server.port)" AWS_ACCESS_KEY_ID=bench \
  AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
# The same post-bootstrap store, uploaded object by object (same layout).
python3 - "$work/artifacts-boot/synth" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
root = sys.argv[1]
for name in os.listdir(root):
    path = os.path.join(root, name)
    if os.path.isfile(path):
        s3.upload_file(path, "swingml-bench", f"bench/synth/{name}")
EOF

stages=("import 1 day" "run 1 day" score incremental-update monitor)
declare -A secs
cycle() {
  local store=$1 location=$2
  cp db-boot.sqlite db.sqlite; rm -f db.sqlite-wal db.sqlite-shm
  rm -rf artifacts; cp -r artifacts-boot artifacts
  local c=(--artifacts "$location" --watchlist synth)
  local -a cmds=(
    "$bin/ta-signals ${c[*]} import day.csv"
    "$bin/ta-signals ${c[*]} run"
    "$bin/score ${c[*]} --as-of $last"
    "$bin/incremental-update ${c[*]} --as-of $last"
    "$bin/monitor ${c[*]} --as-of $last"
  )
  for i in "${!stages[@]}"; do
    sync
    # shellcheck disable=SC2086
    /usr/bin/time -v -o time.txt ${cmds[$i]} >/dev/null 2>log.txt || { tail -3 log.txt >&2; exit 1; }
    secs[$store,${stages[$i]}]=$(time_wall time.txt)
  done
  # shellcheck disable=SC2086
  "$bin/artifacts" "${c[@]}" verify 2>log.txt >/dev/null || { cat log.txt >&2; exit 1; }
}
cycle folder "$work/artifacts"
cycle s3 "s3://swingml-bench/bench"

printf '%-20s %10s %10s %8s\n' stage folder s3 ratio
total_f=0; total_s=0
for stage in "${stages[@]}"; do
  f=${secs[folder,$stage]}; s=${secs[s3,$stage]}
  total_f=$(echo "$total_f + $f" | bc -l); total_s=$(echo "$total_s + $s" | bc -l)
  printf '%-20s %8.2f s %8.2f s %7.2fx\n' "$stage" "$f" "$s" "$(echo "$s / $f" | bc -l)"
done
printf '%-20s %8.2f s %8.2f s %7.2fx\n' "daily cycle" "$total_f" "$total_s" "$(echo "$total_s / $total_f" | bc -l)"
echo "(artifacts verify passed on both stores)"
