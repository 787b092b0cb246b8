//! Integration tests live in `tests/tests/`. This library holds what more than one of them
//! needs: the deterministic workload a test shares with the helper process it starts
//! (`src/bin/reliability_child.rs`), so that the parent can rebuild exactly what the child was
//! asked to do, and the property-test plumbing of the model-based tests.

pub mod property;
pub mod workload;
