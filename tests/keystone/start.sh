#!/usr/bin/env bash
# Starts a real Keystone 30 (PyPI, SQLite, fernet tokens) on 127.0.0.1 for the identity tests.
# State under ${IMGSHARE_SVC:-/tmp/imgshare-svc}: the venv (ks-venv, reused while the pinned
# versions match) and a fresh Keystone directory (ks-<port>) per start. Prints the exports a test needs.
# Environment: IMGSHARE_SVC (cache dir), KS_PORT (default 5000), KS_TOKEN_EXPIRATION (seconds,
# default 3600), KS_ADMIN_PASSWORD (default adminpw), KS_WORKERS (gunicorn workers, default 2; 1
# serialises requests, which SQLite needs under concurrent password authentications: two workers
# writing at once get "database is locked", a 500). stop.sh takes the same KS_PORT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=${IMGSHARE_SVC:-/tmp/imgshare-svc} P=${KS_PORT:-5000}
# One state directory per port: two Keystones on different ports do not meet.
K=$R/ks-$P
mkdir -p "$R"
if [ ! -x "$R/ks-venv/bin/keystone-manage" ] || ! cmp -s "$here/constraints.txt" "$R/ks-venv/constraints.installed"; then
  rm -rf "$R/ks-venv"
  python3 -m venv "$R/ks-venv"
  timeout 600 "$R/ks-venv/bin/pip" install -q --disable-pip-version-check \
    -c "$here/constraints.txt" keystone==30.0.0 gunicorn
  cp "$here/constraints.txt" "$R/ks-venv/constraints.installed"
fi
if [ -f "$K/gunicorn.pid" ] && kill -0 "$(cat "$K/gunicorn.pid")" 2>/dev/null; then
  echo "keystone already running (pid $(cat "$K/gunicorn.pid")); run stop.sh first" >&2
  exit 1
fi
rm -rf "$K"
install -d -m 700 "$K" "$K/fernet-keys" "$K/credential-keys"
# A short token lifetime (KS_TOKEN_EXPIRATION) lets the tests see tokens expire.
printf '%s\n' '[database]' "connection = sqlite:///$K/keystone.db" '[token]' 'provider = fernet' \
  "expiration = ${KS_TOKEN_EXPIRATION:-3600}" \
  '[fernet_tokens]' "key_repository = $K/fernet-keys" '[credential]' \
  "key_repository = $K/credential-keys" >"$K/keystone.conf"
# keystone's oslo.config parses sys.argv at import: under gunicorn it would see gunicorn's flags,
# exit with "unrecognized arguments" and the worker would crash-loop.
printf '%s\n' 'import sys' 'sys.argv = sys.argv[:1]' 'from keystone.server import wsgi' \
  'application = wsgi.initialize_public_application()' >"$K/ks_wsgi.py"
export PYTHONWARNINGS=ignore
M="$R/ks-venv/bin/keystone-manage --config-file $K/keystone.conf"
user=$(id -un) group=$(id -gn)
$M db_sync >"$K/setup.log" 2>&1
for c in fernet_setup credential_setup; do
  $M $c --keystone-user "$user" --keystone-group "$group" >>"$K/setup.log" 2>&1
done
$M bootstrap --bootstrap-password "${KS_ADMIN_PASSWORD:-adminpw}" --bootstrap-region-id RegionOne \
  --bootstrap-public-url "http://127.0.0.1:$P/v3/" --bootstrap-internal-url "http://127.0.0.1:$P/v3/" \
  --bootstrap-admin-url "http://127.0.0.1:$P/v3/" >>"$K/setup.log" 2>&1
# --no-control-socket: otherwise gunicorn takes a machine-wide control socket.
OS_KEYSTONE_CONFIG_DIR=$K setsid "$R/ks-venv/bin/gunicorn" --chdir "$K" -b "127.0.0.1:$P" -w "${KS_WORKERS:-2}" \
  --no-control-socket ks_wsgi:application >"$K/gunicorn.log" 2>&1 &
echo $! >"$K/gunicorn.pid"
if ! timeout 60 bash -c "until curl -fs -m 2 http://127.0.0.1:$P/v3 >/dev/null; do sleep 0.3; done"; then
  echo "keystone did not answer on 127.0.0.1:$P within 60 s:" >&2
  tail -n 30 "$K/gunicorn.log" >&2
  "$here/stop.sh"
  exit 1
fi
echo "export IMGSHARE_KEYSTONE_URL=http://127.0.0.1:$P"
echo "export IMGSHARE_KEYSTONE_ADMIN_PASSWORD=${KS_ADMIN_PASSWORD:-adminpw}"
echo "export IMGSHARE_KEYSTONE_TOKEN_LIFETIME=${KS_TOKEN_EXPIRATION:-3600}"
