# Shared by the bench scripts (sourced): read /usr/bin/time -v's report.

# time_wall FILE: the wall-clock seconds.
time_wall() {
  awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'
}

# time_rss_kb FILE: the peak resident set size in kB.
time_rss_kb() {
  awk -F': ' '/Maximum resident set size/ {print $2}' "$1"
}

# run_timed CMD...: run CMD under /usr/bin/time -v (report in time.txt,
# its output in log.txt); on failure show the log's tail and exit.
run_timed() {
  sync
  /usr/bin/time -v -o time.txt "$@" >/dev/null 2>log.txt || { tail -5 log.txt >&2; exit 1; }
}

# release_bins: check for /usr/bin/time, build the release binaries and
# set $bin to their folder.
release_bins() {
  [ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
  cargo build --release --locked --bins >&2
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release")
}
