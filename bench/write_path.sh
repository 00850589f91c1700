#!/usr/bin/env bash
# The indicator write path on SQLite: `ta-signals run --full` on the full US
# set (504 symbols, 1.69 M rows), OLD and NEW builds in one run, each into
# a fresh copy of the same imported database, beside the floor: a plain
# Python sqlite3 `executemany` of the same rows into an empty table with the
# same schema, in one transaction (what the issue measured as the floor).
#
#   bash bench/write_path.sh OLD_TA_SIGNALS_BINARY [DATA_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

old=$(realpath "${1:?usage: bench/write_path.sh OLD_TA_SIGNALS_BINARY [DATA_FILE]}")
data=${2:-../shared/data/full/us_sp500_daily_2007_2021.csv.gz}
[ -f "$data" ] || { echo "benchmark data not found: $data" >&2; exit 1; }
cargo build --release --locked --bins >&2
new=$(realpath "${CARGO_TARGET_DIR:-target}/release")/ta-signals
data=$(realpath "$data")
work=$(mktemp -d "${TMPDIR:-/tmp}/swingml-bench-write.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
DATABASE_URL="sqlite://$work/base.db?mode=rwc" "$new" --artifacts a import "$data" 2>/dev/null
# One file, no WAL left behind, to copy.
python3 -c "import sqlite3; c = sqlite3.connect('base.db'); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()"

full_run() {
  local label=$1 bin=$2
  cp base.db "$label.db"
  sync
  DATABASE_URL="sqlite://$work/$label.db?mode=rwc" /usr/bin/time -v -o time.txt "$bin" --artifacts a run --full \
    2>log.txt >/dev/null || { cat log.txt >&2; exit 1; }
  local write
  write=$(grep -o 'write [0-9.]* s)' log.txt | grep -o '[0-9.]*')
  printf '%-28s wall %6.2f s, write %6.2f s, peak RSS %5.0f MB\n' "$label" "$(time_wall time.txt)" "$write" \
    "$(echo "$(time_rss_kb time.txt) / 1024" | bc -l)"
  echo "$write" > "$label.write"
}

full_run old "$old"
full_run new "$new"
# The rows for the floor (untimed: the Parquet output would count as write time).
cp base.db rows.db
DATABASE_URL="sqlite://$work/rows.db?mode=rwc" "$new" --artifacts a run --full --parquet rows.parquet >/dev/null 2>&1

python3 - "$work/new.db" rows.parquet > floor.txt <<'PY'
import sqlite3, sys, time
import pyarrow.parquet as pq
schema = sqlite3.connect(sys.argv[1]).execute("SELECT sql FROM sqlite_master WHERE name = 'ta_signals'").fetchone()[0]
table = pq.read_table(sys.argv[2])
db = sqlite3.connect(":memory:" if False else "floor.db")
db.execute(schema)
cols = [r[1] for r in db.execute("PRAGMA table_info(ta_signals)")]
data = table.to_pydict()
n = table.num_rows
data["date"] = [d.isoformat() for d in data["date"]]
data.setdefault("computed_at", ["2026-01-01T00:00:00.000Z"] * n)
rows = list(zip(*(data[c] for c in cols)))
sql = f"INSERT INTO ta_signals ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
start = time.time()
with db:
    db.executemany(sql, rows)
print(f"{time.time() - start:.2f}")
PY
floor=$(cat floor.txt)
printf '%-28s write %6.2f s (Python executemany, same rows and schema, empty table)\n' floor "$floor"
printf 'write / floor: old %.2fx, new %.2fx; new / old %.2fx\n' \
  "$(echo "$(cat old.write) / $floor" | bc -l)" "$(echo "$(cat new.write) / $floor" | bc -l)" \
  "$(echo "$(cat new.write) / $(cat old.write)" | bc -l)"
