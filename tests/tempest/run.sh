#!/usr/bin/env bash
# Runs OpenStack tempest's image API tests against `imgshare serve --profile glance` with a real
# Keystone as its identity: tests/keystone/start.sh starts Keystone on a free port,
# tests/keystone/provision.py creates the image endpoint (pointing at imgshare), imgshare's service
# user and tempest's pre-provisioned accounts through Keystone's API, and imgshare validates every
# token with Keystone. Creates a virtual environment at .venv-tempest (reused while
# requirements.txt is unchanged). IMGSHARE_TEMPEST_ON_POSTGRES=1 runs the same tests against a
# server on PostgreSQL (a throwaway cluster, tests/postgres/cluster.sh; the binary built with the
# `postgres` feature).
# Usage: bash tests/tempest/run.sh [extra tempest run arguments]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh
here="$root/tests/tempest"

venv="$root/.venv-tempest"
ensure_venv "$venv" "$here/requirements.txt" tempest
on_postgres=${IMGSHARE_TEMPEST_ON_POSTGRES:-}
if [ -n "$on_postgres" ]; then
  cargo build --quiet --locked -p imgshare-cli --features postgres
  # shellcheck source=tests/postgres/cluster.sh
  source tests/postgres/cluster.sh
else
  build_imgshare
fi

KS_PORT=$(free_port)
# One Keystone worker: concurrent password authentications on SQLite would meet "database is locked".
KS_WORKERS=1
export KS_PORT KS_WORKERS
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    stop "$server_pid"
  fi
  "$root/tests/keystone/stop.sh"
  if [ -n "$on_postgres" ]; then
    pg_cluster_stop
  fi
  if [ -n "${KEEP_TEMPEST_WORK:-}" ]; then
    echo "tempest work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
eval "$("$root/tests/keystone/start.sh")"

# Accounts for tempest's pre-provisioned credentials, created in Keystone. A test takes a
# project's member, often the reader of the same project, and sometimes an "alt" account: the
# first free non-admin account in file order. Members come first, so "alt" is always another
# project's member; five projects leave room for two workers. Keystone's implied roles give
# tokens admin > member > reader.
port=$(free_port)
"$python" - "$work" "http://127.0.0.1:$port" <<'PY'
import json, sys
work, image_url = sys.argv[1], sys.argv[2]
accounts_in_order = ([(f"p{n}", "member") for n in range(1, 6)]
                     + [(f"p{n}", "reader") for n in range(1, 6)]
                     + [("admin1", "admin"), ("admin2", "admin")])
users, accounts = [], []
for project, role in accounts_in_order:
    name = f"{project}-{role}"
    users.append({"name": name, "password": "secret-" + name, "project": "project-" + project,
                  "role": role})
    accounts.append(f"- username: '{name}'\n  project_name: 'project-{project}'\n"
                    f"  password: 'secret-{name}'\n  roles: ['{role}']\n")
spec = {"region": "DFW", "image_url": image_url, "users": users,
        "service_user": {"name": "imgshare", "password": "imgshare-service-pw"}}
json.dump(spec, open(f"{work}/spec.json", "w"), indent=1)
open(f"{work}/accounts.yaml", "w").write("".join(accounts))
PY
"$python" "$root/tests/keystone/provision.py" "$IMGSHARE_KEYSTONE_URL" \
  "$IMGSHARE_KEYSTONE_ADMIN_PASSWORD" <"$work/spec.json" >"$work/ids.json"
printf 'user = "imgshare"\npassword = "imgshare-service-pw"\n' >"$work/service.toml"

if [ -n "$on_postgres" ]; then
  database=(--db "$IMGSHARE_TEST_POSTGRES_URL" --objects-dir "$work/objects")
else
  database=(--db "$work/imgshare.db")
fi
server_listen="127.0.0.1:$port" start_server "$work" --profile glance "${database[@]}" \
  --region DFW --data-dir "$work/data" --identity keystone \
  --keystone-url "$IMGSHARE_KEYSTONE_URL" --keystone-service-credentials "$work/service.toml"
keystone="$IMGSHARE_KEYSTONE_URL/v3"

# A tempest workspace by hand (`tempest init` registers workspaces globally by name).
mkdir -p "$work/tempest/etc"
sed -e "s|@KEYSTONE@|$keystone|" -e "s|@ACCOUNTS@|$work/accounts.yaml|" -e "s|@LOGDIR@|$work|" \
  -e "s|@LOCKDIR@|$work/tempest/locks|" "$here/tempest.conf.in" >"$work/tempest/etc/tempest.conf"
package=$("$venv/bin/python" -c 'import os, tempest; print(os.path.dirname(tempest.__file__))')
printf '[DEFAULT]\ntest_path=%s/test_discover\ntop_dir=%s\ngroup_regex=([^\\.]*\\.)*\n' "$package" "$package" \
  >"$work/tempest/.stestr.conf"
cd "$work/tempest"
export TEMPEST_CONFIG_DIR="$work/tempest/etc" TEMPEST_CONFIG=tempest.conf
status=0
"$venv/bin/tempest" run --config-file "$work/tempest/etc/tempest.conf" \
  --concurrency "${TEMPEST_CONCURRENCY:-2}" \
  --regex '^tempest\.api\.image\.v2\.' \
  --exclude-list "$here/exclude.txt" "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server stderr (last 50 lines)" >&2
  tail -n 50 "$work/server.err" >&2
fi
exit "$status"
