# shellcheck shell=bash
# Sourced, from the repository root, by the scripts that run `imgshare` against a database of
# their own in a PostgreSQL cluster (servers.sh, tasks_servers.sh, copy.sh, demo.sh). Called by
# tests/postgres/run.sh they use its cluster (IMGSHARE_TEST_POSTGRES_URL); run alone, they start
# one (cluster.sh), stopped when they exit.
#
# pg_script_begin NAME: builds the CLI with PostgreSQL, creates the database NAME afresh and a
# temporary directory, and sets db_url (NAME's URL), base (the cluster's URL without a database)
# and work (the directory). psql_run runs psql on the cluster's `postgres` database, psql_db on
# NAME, each bounded to 60 s. On exit, every pid in `pids` is stopped and `work` removed.
. tests/lib.sh
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
own_cluster=false
if [ -z "${IMGSHARE_TEST_POSTGRES_URL:-}" ]; then
  . tests/postgres/cluster.sh
  own_cluster=true
fi
export PGOPTIONS="-c client_min_messages=warning"
base=${IMGSHARE_TEST_POSTGRES_URL%/*}
db_url=""
work=""
pids=()

psql_run() { timeout 60 "$pg_bin/psql" "$base/postgres" -qAt -v ON_ERROR_STOP=1 "$@"; }
psql_db() { timeout 60 "$pg_bin/psql" "$db_url" -qAt -v ON_ERROR_STOP=1 "$@"; }

# Replaces cluster.sh's EXIT trap, so it stops a cluster of the script's own too.
pg_script_cleanup() {
  for pid in "${pids[@]}"; do stop "$pid"; done
  if [ -n "$work" ]; then rm -rf "$work"; fi
  if $own_cluster; then pg_cluster_stop; fi
}
trap pg_script_cleanup EXIT

pg_script_begin() {
  local name=$1
  cargo build --quiet --locked -p imgshare-cli --features postgres
  db_url="$base/$name"
  psql_run -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
  work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
}
