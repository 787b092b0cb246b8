#!/usr/bin/env bash
# python-glanceclient and openstacksdk against `imgshare serve --profile glance --identity
# keystone`, with normal Keystone authentication: a real Keystone (tests/keystone/start.sh) whose
# catalog holds an `image` endpoint pointing at imgshare, created through Keystone's API
# (tests/keystone/provision.py). No admin token, no endpoint override. Then revocation (after the
# short cache time given here) and Keystone stopped: 401, then 503.
# Usage: bash tests/identity/keystone_clients.sh (needs .venv-clients: tests/identity/run.sh makes it)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh
venv="$root/.venv-clients"
ensure_venv "$venv" "$root/tests/clients/requirements.txt" python
build_imgshare

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
  tests/keystone/stop.sh
  rm -rf "$work"
}
trap cleanup EXIT
eval "$(tests/keystone/start.sh)"

port=$(free_port)
image_url="http://127.0.0.1:$port"
cat >"$work/spec.json" <<JSON
{"region": "DFW", "image_url": "$image_url",
 "service_user": {"name": "imgshare", "password": "imgshare-service-pw"},
 "users": [{"name": "producer", "password": "producer-pw", "project": "producer", "role": "member"},
           {"name": "consumer", "password": "consumer-pw", "project": "consumer", "role": "member"}]}
JSON
python3 tests/keystone/provision.py "$IMGSHARE_KEYSTONE_URL" "$IMGSHARE_KEYSTONE_ADMIN_PASSWORD" \
  <"$work/spec.json" >"$work/ids.json"
printf 'user = "imgshare"\npassword = "imgshare-service-pw"\n' >"$work/service.toml"

# A cache of 2 s lets the test see a revoked token refused and Keystone's absence answered 503.
server_listen="127.0.0.1:$port" start_server "$work" --profile glance --db "$work/imgshare.db" \
  --region DFW --identity keystone --keystone-url "$IMGSHARE_KEYSTONE_URL" \
  --keystone-service-credentials "$work/service.toml" --keystone-cache-seconds 2

# The console logs users in by password against the same Keystone, and acts in their project.
# console_login USER SECRET [KIND]: the login POST's status; the page or redirect in $work.
console_login() {
  local jar="$work/jar-$1"
  rm -f "$jar"
  curl -s -c "$jar" -o /dev/null "$image_url/console/login"
  local csrf
  csrf=$(awk '$6 == "imgshare_console_login" {print $7}' "$jar")
  curl -s -b "$jar" -c "$jar" -o "$work/login-$1.html" -w '%{http_code}' \
    --data-urlencode "csrf=$csrf" --data-urlencode "username=$1" --data-urlencode "secret=$2" \
    --data-urlencode "kind=${3:-password}" --data-urlencode "next=/console/images" \
    "$image_url/console/login"
}
producer_project=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["projects"]["producer"])' "$work/ids.json")
got=$(console_login producer producer-pw)
[ "$got" = 303 ] || { echo "console login through Keystone: $got, want 303" >&2; exit 1; }
curl -s -b "$work/jar-producer" "$image_url/console/images" >"$work/images.html"
grep -q "id=\"user-account\">$producer_project<" "$work/images.html" ||
  { echo "the console's page does not name the producer's project $producer_project" >&2; exit 1; }
got=$(console_login producer wrong-pw)
[ "$got" = 401 ] && grep -q "is not correct" "$work/login-producer.html" ||
  { echo "a wrong Keystone password: $got, want 401 with a message" >&2; exit 1; }
got=$(console_login producer producer-pw apikey)
[ "$got" = 401 ] && grep -q "takes a password" "$work/login-producer.html" ||
  { echo "an API key against Keystone: $got, want 401 saying a password is needed" >&2; exit 1; }
echo "console: Keystone password login, wrong password and API key refused"

status=0
env -u OS_CLOUD -u OS_TOKEN -u OS_AUTH_TOKEN -u OS_IMAGE_URL -u OS_ENDPOINT \
  PATH="$venv/bin:$PATH" IMGSHARE_URL="$image_url" IMGSHARE_IDS="$work/ids.json" \
  IMGSHARE_KEYSTONE_STOP="$root/tests/keystone/stop.sh" \
  "$venv/bin/python" tests/identity/test_keystone_clients.py || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server stderr" >&2
  cat "$work/server.err" >&2
fi
exit "$status"
