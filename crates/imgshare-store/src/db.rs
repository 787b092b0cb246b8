//! Opening a database: connection pragmas, schema migrations and the store's
//! error type.

use crate::error::SqlResult as _;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use rusqlite_migration::{Migrations, M};

#[cfg(test)]
use crate::error::ExpectedVersion;
pub use crate::error::StoreError;

/// Schema migrations, oldest first. Adding `migrations/0002_….sql` is one more
/// line here; never edit or reorder a released entry, because a database's
/// `user_version` records how many of these have already run.
const MIGRATION_STEPS: &[M<'static>] = &[
    M::up(include_str!("../migrations/0001_event_log.sql")),
    M::up(include_str!("../migrations/0002_projections.sql")),
    M::up(include_str!("../migrations/0003_task_queue.sql")),
    M::up(include_str!("../migrations/0004_database_meta.sql")),
];

/// The schema migrations of the store, for [`Migrations::validate`] in tests
/// and for tools that inspect a database's schema version.
pub fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATION_STEPS)
}

/// How hard SQLite works to keep a committed transaction on disk.
///
/// The database always runs in WAL mode; this only chooses `PRAGMA synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is synced at every commit, so a write that
    /// was acknowledged survives a power loss or OS crash.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the WAL is synced only at checkpoints. A commit
    /// survives a crash of the application, but the last transactions may be
    /// lost (never half-applied) on power loss or OS crash.
    Normal,
}

impl Durability {
    fn pragma_value(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// Options for [`open_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// Sync policy of commits; defaults to [`Durability::Full`].
    pub durability: Durability,
    /// How long a statement waits for another connection's lock before failing
    /// with [`StoreError::Busy`]; defaults to 5 seconds.
    pub busy_timeout: Duration,
    /// A cap on the database file's size in pages (`PRAGMA max_page_count`); a write that
    /// needs more fails with [`StoreError::Full`] and changes nothing. `None` (the default)
    /// leaves SQLite's own limit, so only the file system bounds the file.
    pub max_page_count: Option<u32>,
    /// How much of the file SQLite reads through a memory map instead of `pread` (`PRAGMA
    /// mmap_size`, bytes); 0, the default, maps nothing. A map makes reads that jump around the
    /// file (a rebuild folds each stream's events, scattered over the log) cheaper, at the cost
    /// of the mapped pages counting in the process's resident set (file-backed, reclaimable) and
    /// of an I/O error on a mapped page arriving as a signal instead of an error.
    pub mmap_size: u64,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            busy_timeout: Duration::from_secs(5),
            max_page_count: None,
            mmap_size: 0,
        }
    }
}

/// Opens (creating if needed) the database file at `path`, switches it to WAL,
/// applies `opts` and migrates the schema to the latest version.
///
/// Fails with [`StoreError::WalUnavailable`] if SQLite refuses WAL for this
/// file (some network file systems): readers running beside the writer and the
/// meaning of [`Durability`] both depend on it.
pub fn open_file(path: &Path, opts: &DbOptions) -> Result<Connection, StoreError> {
    let open = || -> Result<Connection, StoreError> {
        let mut conn = Connection::open(path).sql()?;
        configure(&conn, opts, true)?;
        migrate(&mut conn)?;
        Ok(conn)
    };
    open().map_err(|error| explain_open_failure(path, error))
}

/// On a file the process cannot write, WAL's `-shm` cannot be created and SQLite says only
/// "unable to open database file"; the operator needs to hear that the database is read-only.
fn explain_open_failure(path: &Path, error: StoreError) -> StoreError {
    // Opening for append writes nothing; it only asks the OS whether writing is allowed.
    let read_only = || match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(_) => false,
        Err(io) => matches!(
            io.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ),
    };
    if cannot_open(&error) && read_only() {
        StoreError::ReadOnly
    } else {
        error
    }
}

/// Opens a fresh in-memory database with the latest schema, for tests and
/// tools. SQLite keeps in-memory databases in `memory` journal mode, not WAL.
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory().sql()?;
    configure(&conn, &DbOptions::default(), false)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens an existing database file for reading only: nothing is created, migrated or written,
/// so auditing a file cannot change it. Fails with [`StoreError::SchemaMismatch`] if the file's
/// schema is not the one this code writes (a read-write open migrates it).
///
/// On a read-only file system, where WAL cannot create its `-shm` file and no process can be
/// writing, a file without a pending WAL is opened as immutable instead.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match open_read_only_with(path, flags) {
        Err(error) if cannot_open(&error) && on_read_only_file_system(path) && !has_wal(path) => {
            // Percent-encode what a URI would read as syntax; the rest of the path is literal.
            let encoded = path
                .to_string_lossy()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23");
            open_read_only_with(
                Path::new(&format!("file:{encoded}?immutable=1")),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        }
        Err(error) => Err(explain_open_failure(path, error)),
        Ok(conn) => Ok(conn),
    }
}

fn cannot_open(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Sqlite(sqlite) if sqlite.as_rusqlite().sqlite_error_code() == Some(ErrorCode::CannotOpen)
    )
}

/// An immutable open ignores the WAL, so it is only right when there is no WAL to miss.
fn has_wal(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|meta| meta.len() > 0)
}

fn on_read_only_file_system(path: &Path) -> bool {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .is_err_and(|io| io.kind() == std::io::ErrorKind::ReadOnlyFilesystem)
}

fn open_read_only_with(name: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(name, flags).sql()?;
    conn.busy_timeout(DbOptions::default().busy_timeout).sql()?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).sql()?;
    let expected = i64::try_from(MIGRATION_STEPS.len()).unwrap_or(i64::MAX);
    if found != expected {
        return Err(StoreError::SchemaMismatch { found, expected });
    }
    Ok(conn)
}

// Pragmas are per connection (only journal_mode persists in the file) and
// journal_mode cannot change inside a transaction, so they are set here on
// every open rather than in a migration.
fn configure(conn: &Connection, opts: &DbOptions, require_wal: bool) -> Result<(), StoreError> {
    // First, so that the journal mode switch itself waits for other writers.
    conn.busy_timeout(opts.busy_timeout).sql()?;
    let journal_mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).sql()?;
    if require_wal && !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::WalUnavailable { journal_mode });
    }
    conn.pragma_update(None, "synchronous", opts.durability.pragma_value()).sql()?;
    conn.pragma_update(None, "foreign_keys", "ON").sql()?;
    if let Some(pages) = opts.max_page_count {
        conn.pragma_update(None, "max_page_count", pages).sql()?;
    }
    if opts.mmap_size > 0 {
        // SQLite takes an i64; a larger request is capped at its compile-time maximum anyway.
        let bytes = i64::try_from(opts.mmap_size).unwrap_or(i64::MAX);
        conn.pragma_update(None, "mmap_size", bytes).sql()?;
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrations().to_latest(conn).sql()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{append, head, read_stream, AppendResult, Checked, NewEvent, StreamAppend};
    use chrono::{TimeZone, Utc};
    use imgshare_core::ErrorKind;
    use serde_json::json;
    use uuid::Uuid;

    fn one_event(stream: &str, expected: ExpectedVersion) -> Vec<StreamAppend> {
        vec![StreamAppend {
            stream_id: stream.to_owned(),
            expected,
            events: vec![NewEvent {
                event_id: Uuid::new_v4(),
                event_type: "ImageUploaded".to_owned(),
                schema_version: 1,
                data: json!({"b": 1, "a": [true, null]}),
                metadata: json!({"actor": "u1"}),
            }],
        }]
    }

    #[test]
    fn migrations_validate() {
        migrations().validate().unwrap();
    }

    #[test]
    fn in_memory_database_is_migrated_with_foreign_keys() {
        let conn = open_in_memory().unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATION_STEPS.len() as i64);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn file_database_uses_wal_and_persists_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let written = {
            let conn = open_file(&path, &DbOptions::default()).unwrap();
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let sync: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            assert_eq!(sync, 2, "FULL");
            match append(
                &conn,
                &one_event("s", ExpectedVersion::NoStream),
                at,
                Checked::Nothing,
            )
            .unwrap()
            {
                AppendResult::Appended(events) => events,
                other => panic!("unexpected {other:?}"),
            }
        };
        let opts = DbOptions {
            durability: Durability::Normal,
            ..DbOptions::default()
        };
        let conn = open_file(&path, &opts).unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        assert_eq!(read_stream(&conn, "s").unwrap(), written);
    }

    #[test]
    fn a_memory_map_is_off_by_default_and_set_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let mmap = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "mmap_size", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(mmap(&open_file(&path, &DbOptions::default()).unwrap()), 0);
        let mapped = DbOptions {
            mmap_size: 64 * 1024 * 1024,
            ..DbOptions::default()
        };
        let conn = open_file(&path, &mapped).unwrap();
        assert_eq!(mmap(&conn), 64 * 1024 * 1024);
        append(
            &conn,
            &one_event("s", ExpectedVersion::NoStream),
            Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
            Checked::Nothing,
        )
        .unwrap();
        assert_eq!(read_stream(&conn, "s").unwrap().len(), 1);
    }

    #[test]
    fn max_page_count_caps_the_file_and_a_full_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let pages: u32 = open_file(&path, &DbOptions::default())
            .unwrap()
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        let opts = DbOptions {
            max_page_count: Some(pages + 40),
            ..DbOptions::default()
        };
        let conn = open_file(&path, &opts).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let big = |version| {
            let mut append = one_event("s", version);
            append[0].events[0].data = json!({"blob": "x".repeat(100 * 1024)});
            append
        };
        append(&conn, &big(ExpectedVersion::NoStream), at, Checked::Nothing).unwrap();
        let before = head(&conn).unwrap();
        let err = append(&conn, &big(ExpectedVersion::Exact(1)), at, Checked::Nothing).unwrap_err();
        assert!(matches!(err, StoreError::Full), "{err:?}");
        assert_eq!(head(&conn).unwrap(), before);
        assert!(conn.is_autocommit());
    }

    #[test]
    fn locked_database_maps_to_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let holder = open_file(&path, &DbOptions::default()).unwrap();
        let opts = DbOptions {
            busy_timeout: Duration::from_millis(50),
            ..DbOptions::default()
        };
        let waiter = open_file(&path, &opts).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let err = append(
            &waiter,
            &one_event("s", ExpectedVersion::Any),
            at,
            Checked::Nothing,
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Busy), "{err:?}");
        assert_eq!(err.code(), "database_busy");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            waiter.is_autocommit(),
            "failed append must not leave a transaction open"
        );
    }

    #[test]
    fn codes_and_statuses_are_stable() {
        let conflict = StoreError::Conflict {
            stream_id: "s".to_owned(),
            expected: ExpectedVersion::Exact(2),
            actual: Some(3),
        };
        assert_eq!(conflict.code(), "version_conflict");
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
        let partial = StoreError::PartialRetry {
            event_id: Uuid::nil(),
        };
        assert_eq!(partial.code(), "partial_retry");
        assert_eq!(partial.kind(), ErrorKind::Conflict);
        let corrupt = StoreError::Corrupt {
            position: 7,
            reason: "bad".to_owned(),
        };
        assert_eq!(corrupt.code(), "corrupt_event");
        assert_eq!(corrupt.kind(), ErrorKind::Internal);
        let full = StoreError::sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ));
        assert!(matches!(full, StoreError::Full), "{full:?}");
        assert_eq!(
            (full.code(), full.kind()),
            ("storage_full", ErrorKind::StorageFull)
        );
        let read_only = StoreError::sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            None,
        ));
        assert_eq!(
            (read_only.code(), read_only.kind()),
            ("database_read_only", ErrorKind::Unavailable)
        );
        let not_a_db = StoreError::sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            None,
        ));
        assert_eq!(
            (not_a_db.code(), not_a_db.kind()),
            ("database_corrupt", ErrorKind::Internal)
        );
        let sqlite = StoreError::sqlite(rusqlite::Error::QueryReturnedNoRows);
        assert_eq!(sqlite.code(), "sqlite_error");
        assert_eq!(sqlite.kind(), ErrorKind::Internal);
    }
}
