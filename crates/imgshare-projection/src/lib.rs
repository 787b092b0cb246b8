//! Read models of imgshare: the SQLite tables fed by events, and the Cloud Images v2 JSON views.
//!
//! This crate holds what the query side needs and nothing that writes events:
//! * [`schemas`]: the `/v2/schemas/*` documents of each profile;
//! * [`query`]: validation of the image-list and task-list query strings, and the `first`/`next`
//!   links built from them.

pub mod query;
pub mod schemas;
