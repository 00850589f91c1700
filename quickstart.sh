#!/usr/bin/env bash
# The quick start: install what is missing, build, and run the pipeline on
# the embedded SQLite default (data/swingml.db, artifacts/) with the
# fixtures. Safe to run again: the import is idempotent.
set -euo pipefail
cd "$(dirname "$0")"

scripts/setup.sh
cargo build --release --locked --bins
bin=${CARGO_TARGET_DIR:-target}/release

"$bin/ta-signals" import fixtures/us_daily_10sym_2018_2020.csv fixtures/nse_daily_5sym_2024.csv --watchlist demo
"$bin/ta-signals" run --watchlist demo --parquet artifacts/demo-signals.parquet
"$bin/artifacts" --watchlist demo verify
echo "quick start done: candles and indicators in data/swingml.db, indicators also in artifacts/demo-signals.parquet," >&2
echo "quarantine reports under artifacts/demo/ (artifacts --watchlist demo list)" >&2
