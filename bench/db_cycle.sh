#!/usr/bin/env bash
# SQLite against MariaDB on the same synthetic universe (bench/synth.py,
# N symbols x YEARS years, seed 42, never committed), release build, one
# run: every stage of the pipeline on the embedded SQLite default, then on
# a MariaDB server this script starts on loopback (scripts/mariadb.sh:
# InnoDB buffer pool SWINGML_MARIADB_POOL, 2G by default, redo log
# SWINGML_MARIADB_REDO, 1G by default, innodb_flush_log_at_trx_commit = 2
# as there, no binary log), then the LOAD DATA floor:
# the same candles and indicator rows, dumped from MariaDB, loaded into
# empty tables of the same schema by the server itself. Prints one table:
# seconds and peak RSS per stage and database, and the ratios the targets
# are stated in.
#
#   bash bench/db_cycle.sh [N] [YEARS]      (default: 1000 2)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

n=${1:-1000}
years=${2:-2}
train_years=$(( years > 1 ? years - 1 : 1 ))
release_bins
here=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-db.XXXXXX")
server="$work/mariadb"
cleanup() {
  bash "$here/scripts/mariadb.sh" stop "$server" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$work"

stages=(import "run --full" bootstrap "import 1 day" "run 1 day" score incremental-update monitor)
daily=("import 1 day" "run 1 day" score incremental-update monitor)
declare -A secs rss

measure() {
  local db=$1 stage=$2; shift 2
  run_timed "$@"
  secs[$db,$stage]=$(time_wall time.txt)
  rss[$db,$stage]=$(( $(time_rss_kb time.txt) / 1024 ))
  printf '  %-8s %-20s %8.2f s %6d MB\n' "$db" "$stage" "${secs[$db,$stage]}" "${rss[$db,$stage]}" >&2
}

echo "== $n symbols x $years years (bootstrap --train-years $train_years)" >&2
python3 "$here/bench/synth.py" "$n" "$years" 42 > universe.csv
last=$(tail -n +2 universe.csv | cut -d, -f2 | sort -u | tail -1)
awk -F, -v d="$last" 'NR == 1 || $2 != d' universe.csv > history.csv
awk -F, -v d="$last" 'NR == 1 || $2 == d' universe.csv > day.csv
export SWINGML_NOW="${last}T23:00:00Z"

base=$(SWINGML_MARIADB_POOL=${SWINGML_MARIADB_POOL:-2G} SWINGML_MARIADB_REDO=${SWINGML_MARIADB_REDO:-1G} \
  bash "$here/scripts/mariadb.sh" start "$server")
client=(mariadb --no-defaults --socket="$server/mysqld.sock" -uroot)
"${client[@]}" -e 'CREATE DATABASE bench'
pool=$("${client[@]}" -N -e 'SELECT @@innodb_buffer_pool_size DIV 1048576')
redo=$("${client[@]}" -N -e 'SELECT @@innodb_log_file_size DIV 1048576')

run_all() {
  local db=$1
  export DATABASE_URL=$2
  local c=(--artifacts "$work/artifacts-$db" --watchlist synth)
  measure "$db" import "$bin/ta-signals" "${c[@]}" import history.csv
  measure "$db" "run --full" "$bin/ta-signals" "${c[@]}" run --full
  if [ "$db" = mariadb ]; then floor; fi
  measure "$db" bootstrap "$bin/bootstrap" "${c[@]}" --train-years "$train_years" --force
  measure "$db" "import 1 day" "$bin/ta-signals" "${c[@]}" import day.csv
  measure "$db" "run 1 day" "$bin/ta-signals" "${c[@]}" run
  measure "$db" score "$bin/score" "${c[@]}" --as-of "$last"
  measure "$db" incremental-update "$bin/incremental-update" "${c[@]}" --as-of "$last"
  measure "$db" monitor "$bin/monitor" "${c[@]}" --as-of "$last"
}

# The floor: what the server takes to load the rows `import` and `run
# --full` wrote, from a file it reads itself, into an empty table of the
# same schema (one statement, one transaction, no client round trips).
floor() {
  local table
  for table in candles ta_signals; do
    "${client[@]}" bench -e "SELECT * FROM $table INTO OUTFILE '$work/$table.tsv'"
    "${client[@]}" bench -e "CREATE TABLE ${table}_floor LIKE $table"
    measure floor "$table" "${client[@]}" bench -e "LOAD DATA INFILE '$work/$table.tsv' INTO TABLE ${table}_floor"
    "${client[@]}" bench -e "DROP TABLE ${table}_floor"
    rm -f "$work/$table.tsv"
  done
}

run_all sqlite "sqlite://$work/db.sqlite?mode=rwc"
run_all mariadb "$base/bench"
for db in sqlite mariadb; do
  secs[$db,daily cycle]=0
  for stage in "${daily[@]}"; do
    secs[$db,daily cycle]=$(echo "${secs[$db,daily cycle]} + ${secs[$db,$stage]}" | bc -l)
  done
done

rows=$(( $(wc -l < universe.csv) - 1 ))
echo "## $n symbols x $years years ($rows candles), MariaDB $("${client[@]}" -N -e 'SELECT VERSION()') with a ${pool} MB buffer pool and a ${redo} MB redo log"
echo
echo "| stage | SQLite | MariaDB | MariaDB / SQLite | SQLite peak RSS | MariaDB peak RSS |"
echo "|---|---|---|---|---|---|"
for stage in "${stages[@]}"; do
  printf '| %s | %.2f s | %.2f s | %.2f× | %d MB | %d MB |\n' "$stage" "${secs[sqlite,$stage]}" \
    "${secs[mariadb,$stage]}" "$(echo "${secs[mariadb,$stage]} / ${secs[sqlite,$stage]}" | bc -l)" \
    "${rss[sqlite,$stage]}" "${rss[mariadb,$stage]}"
done
printf '| **daily cycle** | **%.2f s** | **%.2f s** | **%.2f×** | | |\n' "${secs[sqlite,daily cycle]}" \
  "${secs[mariadb,daily cycle]}" "$(echo "${secs[mariadb,daily cycle]} / ${secs[sqlite,daily cycle]}" | bc -l)"
echo
printf 'LOAD DATA floor: candles %.2f s (import on MariaDB %.2f× it), ta_signals %.2f s (run --full on MariaDB %.2f× it)\n' \
  "${secs[floor,candles]}" "$(echo "${secs[mariadb,import]} / ${secs[floor,candles]}" | bc -l)" \
  "${secs[floor,ta_signals]}" "$(echo "${secs[mariadb,run --full]} / ${secs[floor,ta_signals]}" | bc -l)"
