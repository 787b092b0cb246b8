#!/usr/bin/env bash
# Packages the library crates and builds each from its own tarball (`cargo package` verifies
# them against each other's tarballs, not the workspace's sources).
#
# cargo unpacks those tarballs into a local registry under CARGO_HOME, keyed by the target
# directory's path, and reuses an unpacked copy whose name and version match: a second run with
# changed sources but the same version would verify the stale copy. The copies of this
# workspace's own crates are removed first (local registries are the `registry/src/-*` folders).
#
# Run from the repository root: bash tests/package.sh
set -euo pipefail
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/imgshare-*
cargo package --locked -p imgshare-core -p imgshare-projection -p imgshare-store \
  -p imgshare-identity -p imgshare-server -p imgshare "$@"
