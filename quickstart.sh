#!/usr/bin/env bash
# The quick start: install what is missing, build, and run the whole slice
# on the embedded SQLite default (data/swingml.db, artifacts/) with the
# fixtures: import -> indicators -> bootstrap -> score. Safe to run again:
# the import changes nothing, indicators continue incrementally, and the
# store gets new model versions.
set -euo pipefail
cd "$(dirname "$0")"

scripts/setup.sh
cargo build --release --locked --bins
bin=${CARGO_TARGET_DIR:-target}/release

# US: 10 symbols, 2018-2020 (with the AAPL and TSLA splits); NSE: 5 symbols, 2024.
"$bin/ta-signals" import fixtures/us_daily_10sym_2018_2020.csv --watchlist us
"$bin/ta-signals" import fixtures/nse_daily_5sym_2024.csv --watchlist nse
"$bin/ta-signals" run
# Two years of labeled snapshots; K = 3 of the 10 symbols per day.
"$bin/bootstrap" --watchlist us --train-years 2 --top-k 3
"$bin/score" --watchlist us --top-k 3
"$bin/artifacts" verify
echo "quick start done: database data/swingml.db; models, metrics and predictions under artifacts/us/" >&2
echo "  (artifacts --watchlist us list; predictions_*.parquet open with pandas.read_parquet)" >&2
