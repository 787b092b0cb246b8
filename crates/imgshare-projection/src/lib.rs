//! Read models of imgshare: the SQL tables fed by the log, and the Cloud Images v2 JSON views.
//!
//! Brief overview:
//! * `tables` (with the `internals` feature): the read-model tables, written from each stream's state before and after a
//!   command (in the append's transaction), and read back as domain values;
//! * [`page`]: typed results (views and pages) that serialize to those documents;
//! * [`views`]: the exact JSON documents of images, members and tasks, per profile;
//! * `listing` (with `internals`): `GET /v2/images` and `GET /v2/tasks` pages, served by indexes;
//! * [`query`]: validation of the list query strings and the `first`/`next` links;
//! * [`schemas`]: the `/v2/schemas/*` documents of each profile.

#![warn(missing_docs)]
// The SQL modules are private unless `internals` is on (the store turns it on): their `pub`
// items are then unreachable from outside, and no SQLite type is in the crate's public API.
#![cfg_attr(
    not(feature = "internals"),
    allow(unreachable_pub, dead_code, unused_imports)
)]
#![cfg_attr(not(feature = "internals"), allow(rustdoc::private_intra_doc_links))]

/// Declares a module that takes database connections (any `imgshare_sql::Sql`): public with the `internals` feature (for
/// `imgshare-store` and the workspace's benchmark; no stability promise), private without.
macro_rules! internal_mod {
    ($($name:ident),*) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal_mod!(listing, tables);

mod error;
pub mod page;
pub mod percent;
pub mod query;
pub mod schemas;
pub mod views;

#[cfg(test)]
mod sql_tests;

pub use error::{DatabaseError, ProjectionError, SqliteError};
#[cfg(feature = "internals")]
pub use listing::{explain_image_list, list_images, list_tasks, Viewer};
pub use page::{ImagePage, ImageView, MemberList, MemberView, TaskList, TaskPage, TaskView};
pub use query::{ImageQuery, Marker, TaskQuery};
