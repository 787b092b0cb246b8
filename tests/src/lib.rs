//! Integration tests live in `tests/tests/`. This library holds only what a test shares with the
//! helper process it starts (`src/bin/reliability_child.rs`): the deterministic workload, so that
//! the parent can rebuild exactly what the child was asked to do.

pub mod workload;
