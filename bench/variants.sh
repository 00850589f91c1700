#!/usr/bin/env bash
# Every model variant of the README's "Model quality" table on one data
# set, in one run: the candles are imported once, then one
# `bootstrap --train-years YEARS --top-k 10 --force` per variant (its own
# config file and artifact store). Prints each run's wall time and peak
# RSS, then the table (bench/variants_table.py) from the runs' backtest
# and metrics JSON.
#
#   bash bench/variants.sh [DATA_FILE] [YEARS] [VARIANT ...]
#
# A variant is NAME (see `config_of` below). With none, all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
data=${1:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
years=${2:-10}
shift $(( $# > 2 ? 2 : $# )) || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(binary binary+families binary+families+rank regression regression+families+rank lambdarank lambdarank+families+rank)
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
release_bins
data=$(realpath "$data")
work=${VARIANTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/swingml-variants.XXXXXX")}
mkdir -p "$work"
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
if [ ! -f "$work/bench.db" ]; then
  "$bin/ta-signals" --config /dev/null --artifacts "$work/import" --watchlist main import "$data" >/dev/null 2>&1
fi

# config_of NAME: the TOML of a variant.
config_of() {
  local objective=${1%%+*} families=""
  case "$1" in
    *+families+rank) families='"candle", "window", "rank"' ;;
    *+families) families='"candle", "window"' ;;
  esac
  printf '[batch]\nobjective = "%s"\n\n[features]\nfamilies = [%s]\n' "$objective" "$families"
}

for v in "${variants[@]}"; do
  config_of "$v" >"$work/$v.toml"
  rm -rf "${work:?}/$v"
  /usr/bin/time -v -o "$work/$v.time" "$bin/bootstrap" --config "$work/$v.toml" --artifacts "$work/$v" \
    --watchlist main --train-years "$years" --top-k 10 --force >"$work/$v.out" 2>"$work/$v.log" \
    || { tail -5 "$work/$v.log" >&2; exit 1; }
  printf '%-28s wall %7.1f s  peak RSS %7.1f MB\n' "$v" "$(time_wall "$work/$v.time")" \
    "$(echo "$(time_rss_kb "$work/$v.time") / 1024" | bc -l)"
done
python3 bench/variants_table.py --summary "$work" "${variants[@]}"
echo
python3 bench/variants_table.py "$work" "${variants[@]}"
echo "runs kept in $work"
