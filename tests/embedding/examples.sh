#!/usr/bin/env bash
# Runs every example of the `imgshare` crate; each checks its own outcome and exits non-zero
# when a check fails, so this script fails with it.
#
# Run from the repository root: bash tests/embedding/examples.sh
set -euo pipefail
cargo run --quiet --locked -p imgshare --example compute_service
cargo run --quiet --locked -p imgshare --features http --example axum_mount
cargo run --quiet --locked -p imgshare --example audit_job
cargo run --quiet --locked -p imgshare --example sharing_property
