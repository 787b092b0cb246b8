//! The store's errors and the expectation an append states about a stream's version, shared by
//! [`crate::db`] and [`crate::log`] so that neither needs the other for its types.

use std::fmt;

use imgshare_core::{DomainError, ErrorKind};
use imgshare_projection::{ProjectionError, SqliteError};
use rusqlite::ErrorCode;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// What the writer believes the stream's version to be (its number of events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream must have no events.
    NoStream,
    /// The stream's last event must have exactly this version. Versions start
    /// at 1 and equal the event count, so `Exact(0)` means the same as
    /// [`ExpectedVersion::NoStream`].
    Exact(u64),
    /// No check. Only for admin tools: it defeats optimistic concurrency.
    Any,
}

impl ExpectedVersion {
    pub(crate) fn accepts(self, current: Option<u64>) -> bool {
        match self {
            ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => current.is_none(),
            ExpectedVersion::Exact(n) => current == Some(n),
            ExpectedVersion::Any => true,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(n) => write!(f, "{n}"),
            ExpectedVersion::Any => f.write_str("any"),
        }
    }
}

/// Everything that can go wrong in the store.
///
/// [`StoreError::code`] and [`StoreError::kind`] give stable values for
/// API responses; the `Display` text is for humans and may change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Any other SQLite failure (I/O error, full disk, constraint backstop...).
    #[error("sqlite error: {0}")]
    Sqlite(#[source] SqliteError),
    /// The schema could not be migrated to the latest version (the migration library's error,
    /// kept opaque so that its type is not part of this crate's API).
    #[error("schema migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The stream's current version does not satisfy the append's expectation:
    /// someone else wrote to it since the caller read it.
    #[error(
        "wrong expected version for stream {stream_id:?}: expected {expected}, actual {}",
        describe_version(.actual)
    )]
    Conflict {
        /// The stream whose expectation failed.
        stream_id: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's version when checked; `None` if it has no events.
        actual: Option<u64>,
    },
    /// Some, but not all, event ids of an append are already stored: the call
    /// is neither a fresh append nor an exact retry.
    #[error("event {event_id} is already stored but other events of the same append are not")]
    PartialRetry {
        /// The first event id of the append that is already stored.
        event_id: Uuid,
    },
    /// A stored row cannot be read back (bad JSON, uuid, timestamp or column
    /// type); the log needs an operator, not a retry.
    #[error("event at position {position} is unreadable: {reason}")]
    Corrupt {
        /// Position of the unreadable row.
        position: i64,
        /// What failed to parse.
        reason: String,
    },
    /// SQLite stayed busy or locked for longer than the busy timeout; the
    /// operation can be retried later.
    #[error("database is busy or locked")]
    Busy,
    /// The append itself is malformed (duplicate event ids, empty stream id,
    /// version overflow); retrying it cannot succeed.
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// The disk (or the database's `max_page_count`) is full; the write was rolled back.
    #[error("storage full: the database cannot grow, the write was not applied")]
    Full,
    /// The database file or its directory cannot be written (read-only file system or
    /// permissions); nothing was written.
    #[error("the database is read-only (file system or permissions): nothing was written")]
    ReadOnly,
    /// SQLite found the file malformed or not a database at all; it needs an operator
    /// (restore from a copy), not a retry.
    #[error("the database file is corrupt or not a database: {0}")]
    DatabaseCorrupt(String),
    /// A database opened read-only has another schema version than this code's.
    #[error("database schema version is {found}, this program reads version {expected}")]
    SchemaMismatch {
        /// The file's `user_version`.
        found: i64,
        /// The number of migrations this code knows.
        expected: i64,
    },
    /// The database was created with another profile than the one it is being opened with
    /// (see [`crate::meta`]); nothing was written.
    #[error("the database was created with the {stored} profile and cannot be opened with the {requested} profile")]
    ProfileMismatch {
        /// The profile recorded in the database (as stored, even if this code does not know it).
        stored: String,
        /// The profile the caller asked for.
        requested: String,
    },
    /// A failure of a database other than SQLite (the server, the connection, a statement it
    /// refused), or a column it returned that the store could not read.
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),
    /// SQLite refused WAL journal mode for a database file.
    #[error("database file does not support WAL (journal_mode is {journal_mode:?})")]
    WalUnavailable {
        /// The journal mode SQLite reported instead of `wal`.
        journal_mode: String,
    },
    /// A database URL that does not parse; nothing was attempted. The URL itself is not
    /// repeated, since it may carry a password.
    #[error("not a PostgreSQL URL: {0}")]
    InvalidUrl(String),
    /// The database server cannot be reached, refused the connection or dropped it; nothing
    /// more was written, and the same call may succeed later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database's schema was migrated by a newer build than this one; nothing was written.
    #[error("schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// The newest migration applied to the database.
        found: i64,
        /// The newest migration this build knows.
        supported: i64,
    },
}

/// A database failure below the SQL seam that is not SQLite's, opaque so that no driver's type is
/// part of this crate's API. Its `Display` is the driver's message.
pub struct DatabaseError(imgshare_sql::SqlError);

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            // The PostgreSQL driver's own message is only its kind ("db error"); the server's
            // words are its cause, and they are what an operator reading a log line needs.
            #[cfg(feature = "postgres")]
            imgshare_sql::SqlError::Postgres(err) => f.write_str(&with_causes(err)),
            other => fmt::Display::fmt(other, f),
        }
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            // Already in the message.
            #[cfg(feature = "postgres")]
            imgshare_sql::SqlError::Postgres(_) => None,
            other => other.source(),
        }
    }
}

fn describe_version(version: &Option<u64>) -> String {
    match version {
        Some(v) => v.to_string(),
        None => "no stream".to_owned(),
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// The store's own variant for SQLite failures an operator or caller acts on differently from
/// a generic error: wait and retry, free space, fix permissions, restore the file.
fn classify(err: &rusqlite::Error) -> Option<StoreError> {
    if is_busy(err) {
        return Some(StoreError::Busy);
    }
    match err.sqlite_error_code()? {
        ErrorCode::DiskFull => Some(StoreError::Full),
        ErrorCode::ReadOnly => Some(StoreError::ReadOnly),
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
            Some(StoreError::DatabaseCorrupt(err.to_string()))
        }
        _ => None,
    }
}

/// An error's message followed by its causes': the PostgreSQL driver's own message is only its
/// kind ("db error"), the server's words are in the cause.
#[cfg(feature = "postgres")]
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// The store's own variant for PostgreSQL failures a caller acts on differently from a generic
/// error, by SQLSTATE: a serialization failure or deadlock is [`StoreError::Busy`] (retry), a
/// full disk [`StoreError::Full`], a read-only transaction (a standby) [`StoreError::ReadOnly`],
/// and a server that is gone, shutting down or out of connections [`StoreError::Unavailable`].
#[cfg(feature = "postgres")]
pub(crate) fn classify_postgres(err: &postgres::Error) -> Option<StoreError> {
    use postgres::error::SqlState;
    if let Some(code) = err.code() {
        let unavailable = code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code);
        return if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            Some(StoreError::Busy)
        } else if *code == SqlState::DISK_FULL {
            Some(StoreError::Full)
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            Some(StoreError::ReadOnly)
        } else if unavailable {
            Some(StoreError::Unavailable(with_causes(err)))
        } else {
            None
        };
    }
    // No SQLSTATE: the failure is the connection's (closed, an I/O error, a timeout), not a
    // statement's.
    let io = std::error::Error::source(err).is_some_and(|source| source.is::<std::io::Error>());
    if err.is_closed() || io || err.to_string().starts_with("timeout") {
        return Some(StoreError::Unavailable(with_causes(err)));
    }
    None
}

impl StoreError {
    /// A SQLite failure: the store's own variant where the caller acts on it (busy, full,
    /// read-only, corrupt), [`StoreError::Sqlite`] otherwise.
    pub(crate) fn sqlite(err: rusqlite::Error) -> Self {
        classify(&err).unwrap_or_else(|| StoreError::Sqlite(SqliteError::new(err)))
    }

    /// A failure below the SQL seam: SQLite's exactly as [`StoreError::sqlite`] classifies it,
    /// PostgreSQL's by SQLSTATE (`classify_postgres`), anything else as [`StoreError::Database`]. A column that does not decode lands here only where no row position
    /// is known; the log reads its columns through a helper that reports it as
    /// [`StoreError::Corrupt`] with the position.
    pub(crate) fn from_sql(err: imgshare_sql::SqlError) -> Self {
        match err {
            imgshare_sql::SqlError::Sqlite(err) => StoreError::sqlite(err),
            #[cfg(feature = "postgres")]
            imgshare_sql::SqlError::Postgres(err) => classify_postgres(&err).unwrap_or_else(|| {
                StoreError::Database(DatabaseError(imgshare_sql::SqlError::Postgres(err)))
            }),
            // Statement and column failures of any backend.
            other => StoreError::Database(DatabaseError(other)),
        }
    }

    /// A failed migration; opening a full, read-only or damaged file fails in the migration
    /// step, and the cause matters to the operator more than the step.
    pub(crate) fn migration(err: rusqlite_migration::Error) -> Self {
        let typed = match &err {
            rusqlite_migration::Error::RusqliteError { err: sqlite, .. } => classify(sqlite),
            _ => None,
        };
        typed.unwrap_or_else(|| StoreError::Migration(Box::new(err)))
    }
}

/// For the workspace's benchmark and tests, which run SQL of their own through `Engine::read`:
/// with `internals` only, so that no SQLite type is in the API without it.
#[cfg(feature = "internals")]
impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::sqlite(err)
    }
}

/// See `From<rusqlite::Error> for StoreError`.
#[cfg(feature = "internals")]
impl From<rusqlite::Error> for EngineError {
    fn from(err: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::sqlite(err))
    }
}

/// `.sql()` on a SQLite result or one from the SQL seam: its error as a [`StoreError`]. A crate-private conversion
/// instead of a public `From<rusqlite::Error>`, which would put the binding's type in the API.
pub(crate) trait SqlResult<T> {
    fn sql(self) -> Result<T, StoreError>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(StoreError::sqlite)
    }
}

impl<T> SqlResult<T> for Result<T, imgshare_sql::SqlError> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(StoreError::from_sql)
    }
}

impl<T> SqlResult<T> for Result<T, rusqlite_migration::Error> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(StoreError::migration)
    }
}

impl StoreError {
    /// A stable snake_case identifier of the error kind, for API responses and
    /// metrics.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Sqlite(_) => "sqlite_error",
            StoreError::Database(_) => "database_error",
            StoreError::Migration(_) => "migration_failed",
            StoreError::Conflict { .. } => "version_conflict",
            StoreError::PartialRetry { .. } => "partial_retry",
            StoreError::Corrupt { .. } => "corrupt_event",
            StoreError::Busy => "database_busy",
            StoreError::InvalidAppend(_) => "invalid_append",
            StoreError::WalUnavailable { .. } => "wal_unavailable",
            StoreError::Full => "storage_full",
            StoreError::ReadOnly => "database_read_only",
            StoreError::DatabaseCorrupt(_) => "database_corrupt",
            StoreError::SchemaMismatch { .. } => "schema_mismatch",
            StoreError::ProfileMismatch { .. } => "profile_mismatch",
            StoreError::InvalidUrl(_) => "invalid_database_url",
            StoreError::Unavailable(_) => "database_unavailable",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
        }
    }

    /// What sort of failure this is; adapters map it to what their callers see.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            StoreError::InvalidUrl(_) => ErrorKind::Invalid,
            StoreError::SchemaTooNew { .. } => ErrorKind::Internal,
            StoreError::Conflict { .. } | StoreError::PartialRetry { .. } => ErrorKind::Conflict,
            StoreError::Busy | StoreError::ReadOnly => ErrorKind::Unavailable,
            StoreError::Full => ErrorKind::StorageFull,
            StoreError::InvalidAppend(_) => ErrorKind::Invalid,
            StoreError::DatabaseCorrupt(_)
            | StoreError::Sqlite(_)
            | StoreError::Database(_)
            | StoreError::Migration(_)
            | StoreError::Corrupt { .. }
            | StoreError::WalUnavailable { .. }
            | StoreError::SchemaMismatch { .. }
            | StoreError::ProfileMismatch { .. } => ErrorKind::Internal,
        }
    }
}

/// Why an engine call failed. Each variant has an [`ErrorKind`] and a stable code.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The log refused or failed the write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A read model failed, or a list query was invalid. A full, read-only or damaged database
    /// met while writing a read model is a [`EngineError::Store`] error instead, as it would
    /// have been had the log's write met it first.
    #[error(transparent)]
    Projection(ProjectionError),
    /// A stored stream cannot be read or folded; the log needs an auditor, not a retry.
    #[error("stream {stream} is unreadable at version {version}: {reason}")]
    CorruptStream {
        /// The stream.
        stream: String,
        /// The first event that did not fold.
        version: u64,
        /// Why.
        reason: String,
    },
    /// A command succeeded but its aggregate lacks what the caller asked to see afterwards (a
    /// member command's member); a fault in the engine, not in the request.
    #[error("the command's result is missing from the aggregate's state")]
    MissingState,
    /// A lock guarding a connection was poisoned by a panic in another thread.
    #[error("the engine is unusable after a panic in another thread")]
    Poisoned,
    /// An operation that exists only on SQLite (a raw connection for this workspace's tests and
    /// benchmarks) was asked of an engine on another database.
    #[error("{operation} needs a SQLite database; this engine runs on another database")]
    SqliteOnly {
        /// What was asked.
        operation: &'static str,
    },
    /// A log copy was refused before anything was committed ([`crate::Engine::copy_log_from`]).
    #[error(transparent)]
    Copy(crate::copy::CopyError),
}

impl EngineError {
    /// What sort of failure this is; adapters map it to what their callers see.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Domain(error) => error.kind(),
            EngineError::Store(error) => error.kind(),
            EngineError::Projection(error) => error.kind(),
            EngineError::CorruptStream { .. }
            | EngineError::MissingState
            | EngineError::Poisoned
            | EngineError::SqliteOnly { .. } => ErrorKind::Internal,
            EngineError::Copy(error) => match error {
                crate::copy::CopyError::TargetNotEmpty { .. } => ErrorKind::Conflict,
                crate::copy::CopyError::SourceChainBroken { .. } => ErrorKind::Internal,
                crate::copy::CopyError::Store(error) => error.kind(),
            },
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Domain(error) => error.code(),
            EngineError::Store(error) => error.code(),
            EngineError::Projection(error) => error.code(),
            EngineError::CorruptStream { .. } => "corrupt_stream",
            EngineError::MissingState => "missing_state",
            EngineError::Poisoned => "engine_poisoned",
            EngineError::SqliteOnly { .. } => "sqlite_only",
            EngineError::Copy(error) => match error {
                crate::copy::CopyError::TargetNotEmpty { .. } => "copy_target_not_empty",
                crate::copy::CopyError::SourceChainBroken { .. } => "copy_source_chain_broken",
                crate::copy::CopyError::Store(error) => error.code(),
            },
        }
    }
}

impl From<ProjectionError> for EngineError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::Sqlite(sqlite) => match classify(sqlite.as_rusqlite()) {
                Some(typed) => EngineError::Store(typed),
                None => EngineError::Projection(ProjectionError::Sqlite(sqlite)),
            },
            // A PostgreSQL server that went away while a list was read or a read model written
            // is the same outage as in the log's own statements: 503 and a retry, not a 500.
            #[cfg(feature = "postgres")]
            ProjectionError::Database(database) => match database.as_sql_error() {
                imgshare_sql::SqlError::Postgres(pg) => match classify_postgres(pg) {
                    Some(typed) => EngineError::Store(typed),
                    None => EngineError::Projection(ProjectionError::Database(database)),
                },
                _ => EngineError::Projection(ProjectionError::Database(database)),
            },
            other => EngineError::Projection(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_database_met_while_writing_a_read_model_is_storage_full() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let error = EngineError::from(ProjectionError::Sqlite(SqliteError::new(full)));
        assert_eq!(error.code(), "storage_full");
        let other = rusqlite::Error::InvalidQuery;
        let error = EngineError::from(ProjectionError::Sqlite(SqliteError::new(other)));
        assert_eq!(error.code(), "projection_storage_error");
    }

    fn from_seam(error: imgshare_sql::SqlError) -> StoreError {
        Err::<(), _>(error).sql().unwrap_err()
    }

    #[test]
    fn a_sqlite_failure_through_the_seam_is_classified_as_before() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(
            from_seam(imgshare_sql::SqlError::Sqlite(busy)),
            StoreError::Busy
        ));
        let other = from_seam(imgshare_sql::SqlError::Sqlite(
            rusqlite::Error::InvalidQuery,
        ));
        assert_eq!(other.code(), "sqlite_error");
        assert_eq!(
            other.to_string(),
            StoreError::sqlite(rusqlite::Error::InvalidQuery).to_string()
        );
    }

    #[test]
    fn any_other_seam_failure_is_a_database_error_with_its_message() {
        let statement = from_seam(imgshare_sql::SqlError::Statement(
            "placeholder ?3 out of range".to_owned(),
        ));
        assert_eq!(statement.code(), "database_error");
        assert_eq!(statement.kind(), ErrorKind::Internal);
        assert!(statement
            .to_string()
            .contains("placeholder ?3 out of range"));
        let column = from_seam(imgshare_sql::SqlError::Column {
            index: 2,
            message: "NULL where a value is required".to_owned(),
        });
        assert_eq!(column.code(), "database_error");
        assert!(column.to_string().contains("column 2"), "{column}");
    }
}
