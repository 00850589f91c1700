#!/usr/bin/env bash
# One LightGBM fit through swingml (streamed datasets, the bootstrap's
# parameters: 31 leaves, bagging, feature fraction, deterministic,
# col-wise, 2 threads) against Python's LightGBM on the same rows with the
# same parameters, alternating, in one run. The rows: a seeded matrix
# shaped like bootstrap's (26 numeric columns with 2 % gaps, 19 one-hot
# columns), ROWS rows, ROUNDS rounds.
#
#   bash bench/lightgbm_vs_python.sh [ROWS] [ROUNDS] [REPEATS]   (default: 1000000 100 2)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}; rounds=${2:-100}; repeats=${3:-2}
python3 -c 'import lightgbm, numpy' 2>/dev/null || { echo "needs Python's lightgbm (pip install lightgbm)" >&2; exit 1; }
cargo build --release --locked --example lightgbm_fit >&2
fit=$(realpath "${CARGO_TARGET_DIR:-target}/release/examples/lightgbm_fit")
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-lgbm.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$fit" write "$work" "$rows"
echo "== $rows rows x 45 columns, $rounds rounds, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}"
for i in $(seq "$repeats"); do
  "$fit" time "$work" "$rounds" | tee -a "$work/rust.txt"
  python3 bench/lightgbm_fit.py "$work" "$rounds" | tee -a "$work/python.txt"
done
# Best of the repeats on each side (the machine is shared).
best() { awk -v f="$2" '{ for (i = 1; i <= NF; i++) if ($i == f) v = $(i+1); if (!m || v < m) m = v } END { print m }' "$1"; }
for part in dataset train; do
  r=$(best "$work/rust.txt" "$part"); p=$(best "$work/python.txt" "$part")
  printf '  %-8s swingml %7.2f s   python %7.2f s   ratio %.2f\n' "$part" "$r" "$p" "$(echo "$r / $p" | bc -l)"
done
