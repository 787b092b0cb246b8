//! The event log of imgshare (SQLite, or PostgreSQL with the `postgres` feature) and the [`Engine`] that backends embed.
//!
//! The public surface is the [`Engine`] (open, execute, typed queries and views, `can_boot`,
//! audits, the log's head and anchors), the ports image data and objects go through
//! ([`image_data`], [`objects`], [`swift`]), the task worker ([`tasks`]), VHD registration
//! ([`register`]), backups ([`backup`]) and the metric names ([`metrics`]). No signature names a
//! SQLite type, so a new rusqlite release is not a breaking change of this crate.
//!
//! The storage internals (the log's append and read functions, connections, migrations, the
//! folds and the audits' building blocks) are public only with the `internals` feature, for this
//! workspace's own benchmarks and tests; they carry no stability promise.

#![warn(missing_docs)]
// The storage modules are private unless `internals` is on; their `pub` items are then
// reachable only through the re-exports below.
#![cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
// Docs of public items name the internal function that does the work; the link resolves in
// the `internals` build (the workspace's own docs).
#![cfg_attr(not(feature = "internals"), allow(rustdoc::private_intra_doc_links))]

/// Declares a storage module: public with the `internals` feature, private without.
macro_rules! internal_mod {
    ($($name:ident),*) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal_mod!(anchor, audit, db, fold, log, meta);

pub mod backup;
mod copy;
pub mod error;
mod write_tx;

pub use anchor::{anchor_of, Anchor, AnchorMismatch, AnchorParseError};
pub use audit::{
    AccessReason, AccessReport, AccountAccess, AsOf, AsOfParseError, Catalogue, Difference,
    EventMetadata, HistoryEntry, LogFilter, LogLine, MetadataActor, VerifyReport,
};
pub use copy::CopyError;
pub use db::{DbOptions, Durability, StoreError};
pub use log::{ChainReport, ExpectedVersion, RecordedEvent};
pub use meta::{profile_name, stored_profile_of};

// PostgreSQL (feature `postgres`): private like `db`, its functions re-exported.
#[cfg(all(feature = "postgres", feature = "internals"))]
pub mod pg;
#[cfg(all(feature = "postgres", not(feature = "internals")))]
mod pg;
// Not inlined: the connection's own page (imgshare-sql's) names the driver's configuration type.
#[cfg(feature = "postgres")]
#[doc(no_inline)]
pub use imgshare_sql::postgres::PgConn;
#[cfg(feature = "postgres")]
pub use pg::{grant_application_role, open_postgres, postgres_schema_version};

#[cfg(feature = "internals")]
pub use db::{migrations, open_file, open_in_memory, open_read_only};
#[cfg(feature = "internals")]
pub use log::{
    append, effective_time, event_hash, find_by_event_ids, for_each_event, for_each_stream_event,
    head, read_stream, read_stream_until, stream_version, verify_chain, AppendResult, Checked,
    NewEvent, RowForHash, StreamAppend, StreamEvent, GENESIS_HASH,
};

pub mod engine;
pub mod image_data;
mod lease;
pub mod metrics;
pub mod objects;
pub mod register;
pub mod swift;
pub mod tasks;

pub use engine::{
    is_postgres_url, stored_profile_at, BatchItem, CopyReport, Engine, EngineError, EngineOptions,
    GroupCommits, LeadWork, Loaded, Outcome, RebuildReport, Submitted,
};
pub use image_data::{
    DataHashes, DataSlot, DataWriter, FsImageDataStore, HashingReader, ImageDataStore, StoredData,
};
pub use imgshare_projection::query::{
    MemberStatusFilter, QueryError, SortDir, SortKey, TaskSortKey, TaskStatusFilter,
};
pub use imgshare_projection::{
    ImagePage, ImageQuery, ImageView, Marker, MemberList, MemberView, ProjectionError, TaskList,
    TaskPage, TaskQuery, TaskView,
};
pub use lease::{task_lease_key, TaskLease};
pub use objects::{FsObjectStore, ObjectSource, ObjectStore, StoreUnavailable};
pub use register::{register_vhd, RegisterError};
pub use swift::{SwiftAuth, SwiftConfig, SwiftConfigError, SwiftObjectStore};
pub use tasks::{imported_image_id, TaskEnvironment, TaskListener, TaskRunReport, TASKS_CHANNEL};
