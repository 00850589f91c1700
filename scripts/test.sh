#!/usr/bin/env bash
# Run the whole test suite: starts a throw-away MariaDB server on loopback
# for the MySQL tests, runs `cargo test`, stops the server by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

mariadb_dir=$(mktemp -d "${TMPDIR:-/tmp}/swingml-mariadb.XXXXXX")
cleanup() { scripts/mariadb.sh stop "$mariadb_dir" || true; rm -rf "$mariadb_dir"; }
trap cleanup EXIT

SWINGML_TEST_MYSQL_URL=$(scripts/mariadb.sh start "$mariadb_dir")
export SWINGML_TEST_MYSQL_URL
echo "MariaDB for the tests: ${SWINGML_TEST_MYSQL_URL%%:swingml-test-pw@*}:***@${SWINGML_TEST_MYSQL_URL##*@}" >&2

cargo test --locked "$@"
