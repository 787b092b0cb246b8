//! The SQLite event log of imgshare: an append-only, hash-chained table of
//! events with optimistic concurrency per stream and idempotent appends.
//!
//! [`db`] opens and migrates a database; [`backup`] copies a live one; [`anchor`] holds the
//! log to a position and hash noted earlier; [`meta`] keeps the profile a database was created with; [`log`] appends and reads events; [`audit`] answers
//! what the catalogue was at a past point and checks the log and read models against each other;
//! [`engine`] is what a backend embeds: [`Engine`] decides commands and appends their events.
//! [`objects`] and [`image_data`] are the ports (with file-system adapters) that the task worker
//! of [`tasks`] moves VHD images between; [`register`] registers snapshots and base images from
//! VHD files through the same data port. [`metrics`] names what the engine counts.

pub mod anchor;
pub mod audit;
pub mod backup;
pub mod db;
pub mod error;
pub mod log;
pub mod meta;

pub use audit::{AccessReport, AsOf, Catalogue, HistoryEntry, LogFilter, LogLine, VerifyReport};
pub use db::{
    migrations, open_file, open_in_memory, open_read_only, DbOptions, Durability, StoreError,
};
pub use log::{
    append, effective_time, event_hash, find_by_event_ids, for_each_event, for_each_stream_event,
    head, read_stream, read_stream_until, stream_version, verify_chain, AppendResult, ChainReport,
    Checked, ExpectedVersion, NewEvent, RecordedEvent, RowForHash, StreamAppend, StreamEvent,
    GENESIS_HASH,
};

pub mod engine;
pub mod fold;
pub mod image_data;
pub mod metrics;
pub mod objects;
pub mod register;
pub mod swift;
pub mod tasks;

pub use engine::{
    BatchItem, Engine, EngineError, EngineOptions, GroupCommits, Loaded, Outcome, RebuildReport,
};
pub use image_data::{
    DataHashes, DataSlot, DataWriter, FsImageDataStore, HashingReader, ImageDataStore, StoredData,
};
pub use objects::{FsObjectStore, ObjectSource, ObjectStore, StoreUnavailable};
pub use register::{register_vhd, RegisterError};
pub use swift::{SwiftAuth, SwiftConfig, SwiftConfigError, SwiftObjectStore};
pub use tasks::{imported_image_id, TaskEnvironment, TaskRunReport};
