#!/usr/bin/env bash
# Runs OpenStack tempest's image API tests against `imgshare serve --profile glance`.
# There is no Identity service: fake_keystone.py issues static tokens (the same ones the server's
# tokens file maps to projects) and a catalog pointing at the server. Creates a virtual
# environment at .venv-tempest (reused while requirements.txt is unchanged).
# Usage: bash tests/tempest/run.sh [extra tempest run arguments]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh
here="$root/tests/tempest"

venv="$root/.venv-tempest"
ensure_venv "$venv" "$here/requirements.txt" tempest
build_imgshare

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    stop "$pid"
  done
  if [ -n "${KEEP_TEMPEST_WORK:-}" ]; then
    echo "tempest work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# Accounts for tempest's pre-provisioned credentials. A test takes a project's member, often the
# reader of the same project, and sometimes an "alt" account: the first free non-admin account in
# file order. Members come first, so "alt" is always another project's member; five projects
# leave room for two workers. Keystone-style hex ids; tokens carry the implied roles
# (admin > member > reader).
"$venv/bin/python" - "$work" <<'PY'
import json, sys, uuid
work = sys.argv[1]
implied = {"admin": ["admin", "member", "reader"], "member": ["member", "reader"],
           "reader": ["reader"]}
projects = {name: uuid.uuid4().hex for name in ["p1", "p2", "p3", "p4", "p5", "admin1", "admin2"]}
accounts_in_order = ([(f"p{n}", "member") for n in range(1, 6)]
                     + [(f"p{n}", "reader") for n in range(1, 6)]
                     + [("admin1", "admin"), ("admin2", "admin")])
users = {}
accounts = []
for project, role in accounts_in_order:
    name = f"{project}-{role}"
    users[name] = {"password": "secret-" + name, "token": "tok-" + uuid.uuid4().hex,
                   "user_id": uuid.uuid4().hex, "project_id": projects[project],
                   "project_name": "project-" + project, "roles": implied[role]}
    accounts.append(f"- username: '{name}'\n  project_name: 'project-{project}'\n"
                    f"  password: 'secret-{name}'\n  roles: ['{role}']\n")
json.dump({"users": users, "region": "DFW"}, open(f"{work}/users.json", "w"), indent=1)
tokens = {u["token"]: {"tenant_id": u["project_id"], "user_id": u["user_id"], "roles": u["roles"]}
          for u in users.values()}
json.dump({"tokens": tokens}, open(f"{work}/tokens.json", "w"), indent=1)
open(f"{work}/accounts.yaml", "w").write("".join(accounts))
PY

# A server that started but never announced its address is still stopped by cleanup.
started=0
start_server "$work" --profile glance --db "$work/imgshare.db" --tokens "$work/tokens.json" \
  --region DFW --data-dir "$work/data" || started=1
pids+=("$server_pid")
[ "$started" -eq 0 ] || exit 1
url=$server_url

"$venv/bin/python" - "$work/users.json" "$url" <<'PY'
import json, sys
path, url = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["image_url"] = url
json.dump(config, open(path, "w"), indent=1)
PY
"$venv/bin/python" "$here/fake_keystone.py" "$work/users.json" "$work/keystone.port" &
pids+=($!)
for _ in $(seq 1 100); do
  [ -s "$work/keystone.port" ] && break
  sleep 0.1
done
keystone="http://127.0.0.1:$(cat "$work/keystone.port")/v3"

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
