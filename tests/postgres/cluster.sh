# shellcheck shell=bash
# Sourced (from the repository root) by the scripts that need a PostgreSQL: starts a throwaway
# PostgreSQL 15 cluster on 127.0.0.1 and a free port, its data, socket and log in a temporary
# directory, creates the database `imgshare`, exports
#   IMGSHARE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/imgshare
# and stops and removes the cluster when the sourcing shell exits (an EXIT trap: a script that
# sets its own must call pg_cluster_stop itself). Every wait is bounded (pg_ctl -w -t 30).
#
# initdb and the server refuse to run as root, so as root (CI) they run as `postgres` through
# runuser; as anyone else they run as that user. fsync and friends are off: these clusters
# hold test data only, and durability is not what the tests check. IMGSHARE_PG_DURABLE=1 keeps
# PostgreSQL's defaults (fsync, synchronous_commit and full_page_writes on), for benchmarks whose
# figures must include the flush of each commit.

. "$(pwd)/tests/lib.sh"

pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}

# pg_as_owner COMMAND...: runs COMMAND as the cluster's owner.
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_ctl_cluster ACTION [OPTIONS...]: pg_ctl on this cluster, with its log and options and a
# bounded wait (for tests that stop and start it under running servers).
pg_ctl_cluster() {
  local action=$1
  shift
  pg_as_owner "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 \
    -o "$pg_options" "$@" "$action"
}

pg_cluster_stop() {
  if [ -n "${pg_dir:-}" ] && [ -d "$pg_dir" ]; then
    if [ -f "$pg_dir/data/postmaster.pid" ]; then
      pg_as_owner "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pg_dir"
  fi
  pg_dir=""
}

pg_cluster_start() {
  if [ ! -x "$pg_bin/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      timeout 300 apt-get update -q
      timeout 600 apt-get install -y -q --no-install-recommends postgresql-15
    else
      echo "PostgreSQL 15 is not installed ($pg_bin/initdb missing)" >&2
      return 1
    fi
  fi
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/imgshare-pg.XXXXXX")
  trap pg_cluster_stop EXIT
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$pg_dir"
  fi
  pg_port=$(free_port)
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if [ "${IMGSHARE_PG_DURABLE:-0}" = 1 ]; then
    durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  fi
  if ! pg_as_owner "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$pg_dir/initdb.log" 2>&1; then
    echo "initdb failed:" >&2
    cat "$pg_dir/initdb.log" >&2
    return 1
  fi
  pg_options="-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir $durability -c max_connections=200"
  if ! pg_ctl_cluster start >/dev/null; then
    echo "PostgreSQL did not start:" >&2
    tail -n 20 "$pg_dir/server.log" >&2
    return 1
  fi
  pg_as_owner "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qAt \
    -v ON_ERROR_STOP=1 -c 'CREATE DATABASE imgshare' >/dev/null
  export IMGSHARE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/imgshare"
  echo "PostgreSQL ready: $IMGSHARE_TEST_POSTGRES_URL (cluster in $pg_dir)"
}

pg_cluster_start
