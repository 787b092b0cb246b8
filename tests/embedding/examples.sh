#!/usr/bin/env bash
# The `imgshare` crate with its optional features: its tests and doctests (the async facade's
# need `tokio`, which `cargo test --workspace` does not turn on), then every example; each
# example checks its own outcome and exits non-zero when a check fails, so this script fails
# with it.
#
# Run from the repository root: bash tests/embedding/examples.sh
set -euo pipefail
cargo test --quiet --locked -p imgshare --all-features
cargo run --quiet --locked -p imgshare --example compute_service
cargo run --quiet --locked -p imgshare --features http --example axum_mount
cargo run --quiet --locked -p imgshare --example audit_job
cargo run --quiet --locked -p imgshare --example sharing_property
