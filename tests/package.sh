#!/usr/bin/env bash
# Packages the library crates and builds each from its own tarball (`cargo package` verifies
# them against each other's tarballs, not the workspace's sources).
#
# cargo unpacks those tarballs into a local registry under CARGO_HOME, keyed by the target
# directory's path, and reuses an unpacked copy whose name and version match: a second run with
# changed sources but the same version would verify the stale copy, and it never rebuilds a
# registry crate it has compiled once. So the unpacked copies of this workspace's crates (local
# registries are the `registry/src/-*` folders) and their compiled artifacts go first.
#
# Run from the repository root: bash tests/package.sh
set -euo pipefail
crates=(imgshare-core imgshare-sql imgshare-projection imgshare-store imgshare-identity imgshare-server imgshare)
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/imgshare-*
cargo clean --quiet "${crates[@]/#/-p=}"
cargo package --locked "${crates[@]/#/-p=}" "$@"
