# shellcheck shell=bash
# Sourced by the scripts under tests/ from the repository root: the steps
# they share to get a Python environment, a free port and a running `imgshare serve`.

root=$(pwd)
python=${PYTHON:-python3}
binary="${CARGO_TARGET_DIR:-$root/target}/debug/imgshare"

# ensure_venv DIR REQUIREMENTS PROGRAM: a virtual environment at DIR with REQUIREMENTS installed.
# An existing one is reused while it has bin/PROGRAM and was built from the same requirements
# file, since installing takes minutes and the scripts run on every CI pass.
ensure_venv() {
  local venv=$1 requirements=$2 program=$3
  if [ ! -x "$venv/bin/$program" ] || ! cmp -s "$requirements" "$venv/requirements.installed"; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.installed"
  fi
}

# build_imgshare: the debug binary at $binary (`cargo test` has usually built it already).
build_imgshare() {
  cargo build --quiet --locked -p imgshare-cli
}

# start_server DIR SERVE-ARGUMENTS...: starts `imgshare serve` on a free port, or on
# $server_listen if set (the arguments must name an identity: --tokens FILE, --users FILE,
# --identity keystone …, or ask for --demo, or serve refuses to start), its output in
# DIR/server.out and DIR/server.err, and sets server_pid and server_url (the address it
# announces). Returns 1, with the server's output on stderr, if no address comes within 10 s or
# the server exits first.
start_server() {
  local dir=$1
  shift
  touch "$dir/server.out"
  "$binary" serve --listen "${server_listen:-127.0.0.1:0}" "$@" >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!
  server_url=""
  for _ in $(seq 1 100); do
    server_url=$(sed -n 's/^listening on //p' "$dir/server.out")
    [ -n "$server_url" ] && return 0
    if ! kill -0 "$server_pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  echo "imgshare serve $* did not start:" >&2
  cat "$dir/server.out" "$dir/server.err" >&2
  return 1
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now, for a service that
# cannot be told to pick its own (Keystone, Swift).
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# stop PID: ends a process this script started and reaps it; one already gone is not an error.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
