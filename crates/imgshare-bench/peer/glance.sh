#!/usr/bin/env bash
# A local OpenStack Glance API server, the peer that `imgshare-bench http --peer URL`
# measures against imgshare with the same requests.
#
#   glance.sh start [STATE_DIR] [PORT]   install if needed, configure, start in the
#                                        background; last stdout line is the base URL
#   glance.sh stop STATE_DIR             stop the server started with that STATE_DIR
#   glance.sh check URL                  create, read and patch one image; test keep-alive
#
# No Keystone: requests authenticate with the headers keystonemiddleware would set,
#   X-Identity-Status: Confirmed, X-Project-Id, X-User-Id, X-Roles.
# Glance's default policies check `reader` for reads and `member` for writes, and a
# Keystone token for a member carries the implied reader role too, so send both:
#   X-Roles: member,reader
set -euo pipefail

PEER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$PEER_DIR/../../.." && pwd)
VENV=${GLANCE_VENV:-$REPO_ROOT/.venv-glance}
REQUIREMENTS=$PEER_DIR/requirements.txt
START_TIMEOUT=${GLANCE_START_TIMEOUT:-120}

# 2 cores are shared with the load generator. One process per core is the most
# CPython can use (the GIL); two of them leave the benchmark client a core's worth
# of time slices when it is busy. gthread keeps idle keep-alive connections in the
# worker's poller, so threads only bound the requests in progress: 4 per process
# lets a request waiting on SQLite (GIL released) overlap with one that computes,
# without the lock contention that many more threads bring (measured on a busy
# 2-core machine, 1 and 4 threads per process gave the same rates within noise).
# 16 connections over 2 processes fit well within worker_connections (1000).
# GLANCE_WORKERS / GLANCE_THREADS override both for experiments.
GUNICORN_WORKERS=${GLANCE_WORKERS:-2}
GUNICORN_THREADS=${GLANCE_THREADS:-4}
# The default (2 s) would drop a connection the client keeps idle between phases.
GUNICORN_KEEPALIVE=75
# imgshare's server writes no line per request, so by default neither does this
# one; GLANCE_ACCESS_LOG=1 writes STATE_DIR/access.log for debugging.
ACCESS_LOG=()

die() {
    echo "glance.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is required but not found on PATH${2:+ ($2)}"
}

ensure_venv() {
    need python3 "install Python 3.11"
    python3 -c 'import venv, ensurepip' 2>/dev/null ||
        die "python3 lacks venv/ensurepip (Debian: apt-get install python3-venv)"
    local stamp=$VENV/.imgshare-requirements.sha256 want
    want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
    if [[ -x $VENV/bin/gunicorn && -x $VENV/bin/glance-manage && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        return 0
    fi
    echo "glance.sh: installing Glance into $VENV (pinned in $REQUIREMENTS)" >&2
    if [[ ! -x $VENV/bin/python ]]; then
        python3 -m venv "$VENV" || die "could not create venv at $VENV"
    fi
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 ||
        die "pip is missing in $VENV (Debian: apt-get install python3-pip python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2 ||
        die "pip install -r $REQUIREMENTS failed"
    echo "$want" >"$stamp"
}

# Config templates hold @STATE@; python does the substitution so any path works.
render() {
    local src=$1 dst=$2 state=$3
    python3 - "$src" "$dst" "$state" <<'PY'
import sys
src, dst, state = sys.argv[1:]
with open(src) as f:
    text = f.read()
with open(dst, "w") as f:
    f.write(text.replace("@STATE@", state))
PY
}

is_running() {
    local pidfile=$1/gunicorn.pid pid
    [[ -f $pidfile ]] || return 1
    pid=$(cat "$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Glance's log first: gunicorn's own output, usually the cause, ends up last on screen.
show_logs() {
    local f
    for f in "$1/glance-api.log" "$1/gunicorn.log" "$1/gunicorn.out"; do
        [[ -s $f ]] || continue
        echo "==> $f (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
}

answers() {
    curl -fsS -o /dev/null --max-time 2 "$1/healthcheck" 2>/dev/null
}

cmd_start() {
    local state=${1:-} port=${2:-9292}
    [[ $port =~ ^[0-9]+$ ]] || die "port must be a number, got '$port'"
    need curl
    if [[ -z $state ]]; then
        state=$(mktemp -d -t imgshare-glance.XXXXXX)
    fi
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    local url=http://127.0.0.1:$port
    if [[ ${GLANCE_ACCESS_LOG:-0} == 1 ]]; then
        ACCESS_LOG=(--access-logfile "$state/access.log")
    fi

    if is_running "$state"; then
        if answers "$url"; then
            echo "glance.sh: already running from $state" >&2
            echo "$url"
            return 0
        fi
        die "a server from $state is running (pid $(cat "$state/gunicorn.pid")) but $url does not answer; run: $0 stop $state"
    fi
    if answers "$url"; then
        die "something else already answers on $url; choose another port"
    fi

    ensure_venv
    mkdir -p "$state/images" "$state/staging" "$state/tasks" "$state/locks"
    render "$PEER_DIR/glance-api.conf.in" "$state/glance-api.conf" "$state"
    render "$PEER_DIR/glance-api-paste.ini.in" "$state/glance-api-paste.ini" "$state"

    # db_sync is idempotent: a second start on the same state only checks the version.
    "$VENV/bin/glance-manage" --config-file "$state/glance-api.conf" db_sync \
        >>"$state/db_sync.log" 2>&1 || {
        tail -n 30 "$state/db_sync.log" >&2
        die "glance-manage db_sync failed (log: $state/db_sync.log)"
    }

    # glance_peer_wsgi wraps glance.wsgi.api:application (see that file for why), which
    # reads glance-api.conf from $OS_GLANCE_CONFIG_DIR (default /etc/glance).
    # gunicorn's control socket would sit at one fixed path under $HOME for every
    # instance; nothing here uses it.
    # setsid detaches the server from the caller's process group and terminal.
    OS_GLANCE_CONFIG_DIR=$state GLANCE_PEER_WRITE_LOCK=$state/write.lock \
        setsid "$VENV/bin/gunicorn" \
        --bind "127.0.0.1:$port" \
        --workers "$GUNICORN_WORKERS" \
        --worker-class gthread \
        --threads "$GUNICORN_THREADS" \
        --keep-alive "$GUNICORN_KEEPALIVE" \
        --timeout 120 \
        --no-control-socket \
        --pid "$state/gunicorn.pid" \
        "${ACCESS_LOG[@]}" \
        --error-logfile "$state/gunicorn.log" \
        --chdir "$state" \
        --pythonpath "$PEER_DIR" \
        glance_peer_wsgi:application \
        </dev/null >"$state/gunicorn.out" 2>&1 &
    local pid=$!
    echo "$pid" >"$state/gunicorn.pid"

    local waited=0
    until answers "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_logs "$state"
            rm -f "$state/gunicorn.pid"
            die "gunicorn exited during start (logs in $state)"
        fi
        if ((waited >= START_TIMEOUT)); then
            show_logs "$state"
            cmd_stop "$state" || true
            die "no answer from $url after ${START_TIMEOUT}s (logs in $state)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "glance.sh: Glance answers on $url (state $state, pid $pid)" >&2
    echo "$url"
}

cmd_stop() {
    local state=${1:-}
    [[ -n $state ]] || usage
    [[ -d $state ]] || die "no such state dir: $state"
    if ! is_running "$state"; then
        rm -f "$state/gunicorn.pid"
        echo "glance.sh: not running ($state)" >&2
        return 0
    fi
    local pid waited=0
    pid=$(cat "$state/gunicorn.pid")
    # TERM is gunicorn's graceful shutdown: the master stops its workers, then exits.
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= 30)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    rm -f "$state/gunicorn.pid"
    echo "glance.sh: stopped pid $pid" >&2
}

cmd_check() {
    local url=${1:-}
    [[ -n $url ]] || usage
    url=${url%/}
    need curl
    need python3
    CHECK_TMP=$(mktemp -d)
    trap 'rm -rf "$CHECK_TMP"' EXIT
    local tmp=$CHECK_TMP
    local auth=(
        -H 'X-Identity-Status: Confirmed'
        -H 'X-Project-Id: 111111'
        -H 'X-User-Id: imgshare-bench'
        -H 'X-Roles: member,reader'
    )
    local status fail=0

    status=$(curl -sS -o "$tmp/create.json" -w '%{http_code}' "${auth[@]}" \
        -H 'Content-Type: application/json' -X POST "$url/v2/images" \
        --data '{"name":"x","disk_format":"raw","container_format":"bare"}')
    report "POST /v2/images" 201 "$status" || fail=1
    local id
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/create.json" 2>/dev/null) ||
        die "no image id in the create response: $(head -c 300 "$tmp/create.json")"

    status=$(curl -sS -o /dev/null -D "$tmp/get.headers" -w '%{http_code}' "${auth[@]}" "$url/v2/images/$id")
    report "GET /v2/images/$id" 200 "$status" || fail=1

    status=$(curl -sS -o "$tmp/patch.json" -w '%{http_code}' "${auth[@]}" -X PATCH \
        -H 'Content-Type: application/openstack-images-v2.1-json-patch' \
        --data '[{"op":"replace","path":"/name","value":"y"}]' "$url/v2/images/$id")
    report "PATCH /v2/images/$id" 200 "$status" || fail=1
    if [[ $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("name"))' "$tmp/patch.json" 2>/dev/null) == y ]]; then
        echo "ok    PATCH renamed the image to y"
    else
        echo "FAIL  PATCH response does not carry name y"
        fail=1
    fi

    if grep -qi '^content-length:' "$tmp/get.headers"; then
        echo "ok    GET response has Content-Length"
    else
        echo "FAIL  GET response has no Content-Length"
        fail=1
    fi
    if grep -qi '^connection: *close' "$tmp/get.headers"; then
        echo "FAIL  GET response says Connection: close"
        fail=1
    else
        echo "ok    GET response does not close the connection"
    fi

    # Two URLs in one curl command share a connection only if the server keeps it open.
    curl -sv -o /dev/null -o /dev/null "${auth[@]}" "$url/v2/images/$id" "$url/v2/images/$id" \
        2>"$tmp/keepalive.log" || true
    if grep -qi 're-using existing connection' "$tmp/keepalive.log"; then
        echo "ok    second request re-used the connection (keep-alive)"
    else
        echo "FAIL  second request opened a new connection (no keep-alive)"
        fail=1
    fi

    curl -sS -o /dev/null "${auth[@]}" -X DELETE "$url/v2/images/$id" || true
    if ((fail)); then
        die "check failed against $url"
    fi
    echo "glance.sh: check passed against $url"
}

report() {
    local what=$1 want=$2 got=$3
    if [[ $got == "$want" ]]; then
        echo "ok    $what -> $got"
    else
        echo "FAIL  $what -> $got (want $want)"
        return 1
    fi
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
check) shift; cmd_check "$@" ;;
*) usage ;;
esac
