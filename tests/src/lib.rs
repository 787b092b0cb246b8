//! Integration tests live in `tests/tests/`. This library holds what more than one of them
//! needs: the deterministic workload a test shares with the helper process it starts
//! (`src/bin/reliability_child.rs`), so that the parent can rebuild exactly what the child was
//! asked to do, the property-test plumbing of the model-based tests, and where a test's engine
//! lives (SQLite or PostgreSQL, [`backend`]).

pub mod backend;
pub mod property;
pub mod workload;
