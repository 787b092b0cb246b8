#!/usr/bin/env bash
# Fails if a public item of `imgshare`, `imgshare-store` or `imgshare-projection`, documented as
# an embedder builds them (no `internals` feature), names a rusqlite type: rustdoc writes such a
# type with its path, `rusqlite::…`, in the item's page. With `internals` on, the same check
# finds the connection-taking functions (`bash tests/embedding/public_api.sh --internals`
# shows that the check can fail).
#
# Run from the repository root: bash tests/embedding/public_api.sh
set -euo pipefail
features=()
if [ "${1:-}" = "--internals" ]; then
  features=(--features imgshare-store/internals)
fi
doc=${CARGO_TARGET_DIR:-target}/doc
check() {
  local crate_dir=$1
  shift
  rm -rf "${doc:?}/$crate_dir"
  cargo doc --quiet --no-deps --locked "$@" "${features[@]}"
  if grep -rl 'rusqlite::' "$doc/$crate_dir"; then
    echo "public API: the pages above name a rusqlite type" >&2
    return 1
  fi
  echo "public API: no rusqlite type in $crate_dir"
}
# One crate per build: the store turns on the projection's `internals`, so the projection is
# documented on its own, as an embedder of it alone would see it.
check imgshare_store -p imgshare-store
check imgshare -p imgshare
check imgshare_projection -p imgshare-projection
