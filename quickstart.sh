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
echo "quick start done: candles in data/swingml.db, quarantine reports under artifacts/demo/" >&2
