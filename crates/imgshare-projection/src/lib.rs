//! Read models of imgshare: the SQLite tables fed by the log, and the Cloud Images v2 JSON views.
//!
//! Brief overview:
//! * [`tables`]: the read-model tables, written from each stream's state before and after a
//!   command (in the append's transaction), and read back as domain values;
//! * [`page`]: typed results (views and pages) that serialize to those documents;
//! * [`views`]: the exact JSON documents of images, members and tasks, per profile;
//! * [`listing`]: `GET /v2/images` and `GET /v2/tasks` pages, served by indexes;
//! * [`query`]: validation of the list query strings and the `first`/`next` links;
//! * [`schemas`]: the `/v2/schemas/*` documents of each profile.

#![warn(missing_docs)]

pub mod listing;
pub mod page;
pub mod percent;
pub mod query;
pub mod schemas;
pub mod tables;
pub mod views;

pub use listing::{explain_image_list, list_images, list_tasks, Viewer};
pub use page::{ImagePage, ImageView, MemberList, MemberView, TaskList, TaskPage, TaskView};
pub use query::{ImageQuery, Marker, TaskQuery};
pub use tables::ProjectionError;
