#!/usr/bin/env bash
# Starts OpenStack Swift (Debian packages: proxy, account, container and object servers, one
# replica, tempauth, memcached) on 127.0.0.1, state under $IMGSHARE_SWIFT_DIR. Installs the
# packages first if they are missing (idempotent). Needs root. Bounded: gives up after 120 s.
#
# Users (tempauth, account = AUTH_<account>):
#   imgshare:service  servicepw  .reseller_admin  (the service user imgshare authenticates as)
#   111111:alice      alicepw    .admin           (tenant 111111)
#   222222:bob        bobpw      .admin           (tenant 222222)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

if ! command -v swift-proxy-server >/dev/null || ! command -v swift >/dev/null \
  || ! command -v memcached >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -q
  timeout 600 apt-get install -y -q --no-install-recommends swift swift-proxy swift-account \
    swift-container swift-object python3-swiftclient memcached
fi

"$here/stop.sh" >/dev/null 2>&1 || true
S=$SWIFT_DIR
rm -rf "$S"; mkdir -p "$S/srv/d1"
# swift 2.30 reads the hash salt only from /etc/swift/swift.conf (not from swift_dir)
mkdir -p /etc/swift
test -f /etc/swift/swift.conf ||
  printf '[swift-hash]\nswift_hash_path_prefix = ci\nswift_hash_path_suffix = ci\n' >/etc/swift/swift.conf
cd "$S"
for r in account:$SWIFT_ACCOUNT_PORT container:$SWIFT_CONTAINER_PORT object:$SWIFT_OBJECT_PORT; do
  n=${r%:*} p=${r#*:}
  swift-ring-builder $n.builder create 8 1 1 >/dev/null
  swift-ring-builder $n.builder add r1z1-127.0.0.1:$p/d1 100 >/dev/null
  swift-ring-builder $n.builder rebalance >/dev/null
  printf '%s\n' '[DEFAULT]' 'bind_ip = 127.0.0.1' "bind_port = $p" 'workers = 1' 'user = root' \
    "swift_dir = $S" "devices = $S/srv" 'mount_check = false' '[pipeline:main]' \
    "pipeline = $n-server" "[app:$n-server]" "use = egg:swift#$n" > $n-server.conf
done
cat > proxy-server.conf <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $SWIFT_PROXY_PORT
workers = 1
user = root
swift_dir = $S
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy_logging cache listing_formats tempauth copy slo dlo proxy_logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
error_suppression_interval = 0
[filter:tempauth]
use = egg:swift#tempauth
user_imgshare_service = servicepw .reseller_admin
user_111111_alice = alicepw .admin
user_222222_bob = bobpw .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$SWIFT_MEMCACHED_PORT
[filter:dlo]
use = egg:swift#dlo
# the tests use small segments; Swift's default throttles after 10 segments to 1 a second
rate_limit_after_segment = 1000
CONF
for f in catch_errors gatekeeper healthcheck proxy_logging listing_formats copy slo; do
  printf '[filter:%s]\nuse = egg:swift#%s\n' $f $f >> proxy-server.conf
done
memcached -u nobody -l 127.0.0.1 -p $SWIFT_MEMCACHED_PORT -m 64 >"$S/memcached.log" 2>&1 &
echo $! >"$S/memcached.pid"
for s in account container object proxy; do   # -v: log to stdout (there is no /dev/log)
  swift-$s-server "$S/$s-server.conf" -v >"$S/$s.log" 2>&1 &
  echo $! >"$S/$s.pid"
done
if ! timeout 120 bash -c "until swift -A $SWIFT_AUTH_URL -U 111111:alice -K alicepw \
    stat >/dev/null 2>&1; do sleep 0.3; done"; then
  echo "swift did not start; logs in $S" >&2
  tail -n 20 "$S"/*.log >&2
  exit 1
fi
echo "swift ready: $SWIFT_AUTH_URL (state in $S)"
