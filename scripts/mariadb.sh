#!/usr/bin/env bash
# Start or stop a throw-away MariaDB server on loopback for the tests.
#
#   scripts/mariadb.sh start DIR   initialise DIR, start mariadbd on a free
#                                  port, create the test user; prints the
#                                  URL to use as SWINGML_TEST_MYSQL_URL
#   scripts/mariadb.sh stop DIR    stop the server started in DIR (by its PID)
#   scripts/mariadb.sh restart DIR start it again on the same data and port
#                                  (after a test killed it)
#
# The InnoDB buffer pool is 64 MB, enough for the tests' small databases;
# SWINGML_MARIADB_POOL (e.g. 2G) sets another, and SWINGML_MARIADB_REDO the
# redo log's size (the server's default, 96 MB, unless set): the benchmarks
# use a pool that holds their tables and a redo log that holds a bulk
# write, as a production server would.
set -euo pipefail

cmd=${1:?usage: mariadb.sh start|stop|restart DIR}
dir=${2:?usage: mariadb.sh start|stop|restart DIR}
user=swingml
password=swingml-test-pw

find_bin() {
  for name in "$@"; do
    for candidate in "$(command -v "$name" 2>/dev/null)" "/usr/sbin/$name" "/usr/bin/$name"; do
      if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
    done
  done
  return 1
}

run_server() {
  "$server" --no-defaults --user="$(id -un)" --datadir="$dir/data" --bind-address=127.0.0.1 --port="$port" \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --skip-log-bin --innodb-buffer-pool-size="${SWINGML_MARIADB_POOL:-64M}" \
    ${SWINGML_MARIADB_REDO:+--innodb-log-file-size="$SWINGML_MARIADB_REDO"} \
    --innodb-flush-log-at-trx-commit=2 --log-error="$dir/error.log" >/dev/null 2>&1 &
  echo $! >"$dir/server.pid"
  for _ in $(seq 1 100); do
    if "$client" --no-defaults --socket="$dir/mysqld.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  cat "$dir/error.log" >&2
  return 1
}

case "$cmd" in
restart)
  server=$(find_bin mariadbd mysqld) || { echo "mariadbd not found" >&2; exit 1; }
  client=$(find_bin mariadb mysql) || { echo "mariadb client not found" >&2; exit 1; }
  dir=$(cd "$dir" && pwd)
  port=$(cat "$dir/port")
  run_server
  ;;
start)
  server=$(find_bin mariadbd mysqld) || { echo "mariadbd not found: apt-get install mariadb-server" >&2; exit 1; }
  install_db=$(find_bin mariadb-install-db mysql_install_db) || { echo "mariadb-install-db not found" >&2; exit 1; }
  client=$(find_bin mariadb mysql) || { echo "mariadb client not found" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  "$install_db" --no-defaults --user="$(id -un)" --datadir="$dir/data" --auth-root-authentication-method=socket >"$dir/install.log" 2>&1 \
    || { cat "$dir/install.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  run_server || true
  "$client" --no-defaults --socket="$dir/mysqld.sock" -uroot -e "
    CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
    GRANT ALL PRIVILEGES ON *.* TO '$user'@'127.0.0.1';" \
    || { cat "$dir/error.log" >&2; exit 1; }
  echo "mysql://$user:$password@127.0.0.1:$port"
  ;;
stop)
  if [ -f "$dir/server.pid" ]; then
    pid=$(cat "$dir/server.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$dir/server.pid"
  fi
  ;;
*)
  echo "usage: mariadb.sh start|stop|restart DIR" >&2; exit 2 ;;
esac
