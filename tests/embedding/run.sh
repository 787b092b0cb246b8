#!/usr/bin/env bash
# An embedder's view: a crate OUTSIDE the workspace, in a temporary directory, that depends on
# `imgshare` by path (one line in its Cargo.toml) and builds and runs the compute-service
# example as its own program. It fails if the library's public API is not enough for it, or if
# any of the example's checks fails (the program exits 1).
#
# Run from the repository root: bash tests/embedding/run.sh
set -euo pipefail
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/compute-service/src"
cat >"$work/compute-service/Cargo.toml" <<TOML
[package]
name = "compute-service"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
imgshare = { path = "$root/crates/imgshare" }
# The example keeps its database in a temporary directory.
tempfile = "3"

# Not a member of any workspace above the temporary directory.
[workspace]
TOML
cp "$root/crates/imgshare/examples/compute_service.rs" "$work/compute-service/src/main.rs"
# The workspace's lock file pins the same dependency versions the workspace was tested with
# (and lets the build use the crates already downloaded); cargo drops the entries it does not need.
cp "$root/Cargo.lock" "$work/compute-service/Cargo.lock"

cd "$work/compute-service"
# Its own target directory unless the caller shares one: the point is a build from outside.
export CARGO_TARGET_DIR="${EMBEDDING_TARGET_DIR:-${CARGO_TARGET_DIR:-$work/target}}"
cargo run --quiet
echo "embedding: an outside crate built and ran the compute-service example"
