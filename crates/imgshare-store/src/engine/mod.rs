//! The [`Engine`]: what a backend embeds. It loads aggregates by folding their streams, asks the
//! pure domain to decide, and appends the resulting events (and, in the same transaction, the
//! projection rows) to the log, on SQLite or PostgreSQL.
//!
//! One engine for both databases: the code below the entry points is generic over
//! [`imgshare_sql::Sql`], and the engine holds its connections as a crate-private `Db` enum.
//! Each entry point matches on it once (the macros `on_db!`, `reading!`, `writing!`), so each
//! backend's path is compiled for its own connection type, without trait objects: SQLite's is
//! as fast as before PostgreSQL existed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use imgshare_core::{
    Aggregate, Command, Context, Image, ImageCommand, Profile, ProfileKind, StreamId, Task,
};
use imgshare_projection::{tables, views};
use imgshare_sql::Sql;
use rusqlite::Connection;
use uuid::Uuid;

use crate::audit::{self, AsOf};
use crate::db::{self, DbOptions, StoreError};
use crate::log::RecordedEvent;
#[cfg(feature = "postgres")]
use imgshare_sql::postgres::PgConn;

/// One of the engine's connections, on whichever database the engine was opened.
pub(crate) enum Db {
    /// A SQLite connection (a file or an in-memory database).
    Sqlite(Connection),
    /// A PostgreSQL connection (boxed: it is several times a SQLite connection's size).
    #[cfg(feature = "postgres")]
    Postgres(Box<PgConn>),
}

impl Db {
    /// The SQLite connection, for what only SQLite has (`Engine::read`, page counts).
    fn sqlite(&self) -> Option<&Connection> {
        match self {
            Db::Sqlite(conn) => Some(conn),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => None,
        }
    }
}

/// Evaluates `$body` with `$conn` bound to the connection in `$db` (a `&Db`): one arm per
/// backend, so the body is compiled once per connection type instead of through a trait object.
macro_rules! on_db {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::engine::Db::Sqlite($conn) => $body,
            #[cfg(feature = "postgres")]
            $crate::engine::Db::Postgres($conn) => {
                let $conn: &imgshare_sql::postgres::PgConn = $conn;
                $body
            }
        }
    };
}
pub(crate) use on_db;

/// [`on_db!`] on the engine's read connection, held for the body; `?` on a poisoned lock.
macro_rules! reading {
    ($engine:expr, |$conn:ident| $body:expr) => {{
        let guard = $engine.reader_guard()?;
        $crate::engine::on_db!(&*guard, |$conn| $body)
    }};
}
pub(crate) use reading;

/// [`on_db!`] on the engine's writer, held for the body; `?` on a poisoned lock.
macro_rules! writing {
    ($engine:expr, |$conn:ident| $body:expr) => {{
        let guard = $engine.writer_guard()?;
        $crate::engine::on_db!(&*guard, |$conn| $body)
    }};
}
pub(crate) use writing;

mod group;
mod inspect;
mod queue;
mod read;
#[cfg(test)]
mod tests;

pub use crate::error::EngineError;
#[cfg(feature = "internals")]
pub use crate::fold::{decode, fold_streams, load_stream};
#[cfg(not(feature = "internals"))]
#[allow(unused_imports)]
pub(crate) use crate::fold::{decode, fold_streams, load_stream};
pub use crate::fold::{Loaded, RebuildReport};
pub use group::BatchItem;
use group::StateCache;
use queue::CommitQueue;
pub use queue::{GroupCommits, LeadWork, Submitted};

/// [`Engine::storage_full`]: fewer free pages than this is full. A group commit of a few
/// commands writes about this many pages (events, their indexes, read-model rows).
pub const FULL_MARGIN_PAGES: i64 = 16;

/// How an engine is opened.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The policy profile (Rackspace by default).
    pub profile: Profile,
    /// Durability and lock waiting.
    pub db: DbOptions,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The events it appended (or, for a retried command, the events appended the first time).
    pub events: Vec<RecordedEvent>,
    /// True if this was a retry of a command already in the log; nothing was written.
    pub already_applied: bool,
    /// The state of the addressed aggregate after the command (shared with the engine's cache).
    pub state: Arc<Aggregate>,
}

impl Outcome {
    /// The image after the command, if the command addressed an image.
    pub fn image(&self) -> Option<&Image> {
        self.state.as_image()
    }

    /// The task after the command, if the command addressed a task.
    pub fn task(&self) -> Option<&Task> {
        self.state.as_task()
    }
}

/// The event-sourced image catalogue over one database: SQLite ([`Engine::open`]) or, with the
/// `postgres` feature, PostgreSQL ([`Engine::open_url`]).
///
/// ```
/// use imgshare_core::{Actor, Command, Context, ImageCommand, ImageOrigin, NewImage, Region};
/// use imgshare_store::Engine;
/// use uuid::Uuid;
///
/// let engine = Engine::in_memory().unwrap();
/// let dfw = Region::parse("DFW").unwrap();
/// let producer = Actor::tenant("111111", "alice", &["cloudImages:admin"]);
/// let ctx = Context::new(producer, dfw.clone(), chrono::Utc::now());
/// let image_id = Uuid::new_v4();
/// let snapshot = NewImage {
///     name: Some("web-server".into()),
///     container_format: Some("ovf".into()),
///     disk_format: Some("vhd".into()),
///     data: Some(imgshare_core::ImageActivated {
///         size: 1024, checksum: "0123456789abcdef0123456789abcdef".into(),
///         virtual_size: None, os_hash_algo: None, os_hash_value: None,
///     }),
///     ..NewImage::default()
/// };
/// let register = ImageCommand::Register {
///     origin: ImageOrigin::Snapshot { server_id: "srv-1".into() },
///     image: snapshot,
/// };
/// engine.execute(&ctx, Command::Image { image_id, command: register }).unwrap();
///
/// assert!(engine.can_boot("111111", image_id, &dfw).unwrap());
/// assert!(!engine.can_boot("222222", image_id, &dfw).unwrap());
/// ```
pub struct Engine {
    profile: Profile,
    writer: Mutex<Db>,
    /// A separate connection for reads on a file database or PostgreSQL, so reads do not wait
    /// behind writes (WAL lets them run concurrently). An in-memory database has only the writer.
    reader: Option<Mutex<Db>>,
    path: Option<PathBuf>,
    /// The PostgreSQL URL the connections were opened with: a connection the server closed (a
    /// restart, a failover, a terminated backend) is replaced from it on next use.
    #[cfg(feature = "postgres")]
    postgres_url: Option<String>,
    /// Commands of `execute` waiting for a transaction (group commit).
    commits: CommitQueue,
    /// Recently folded aggregates by stream, each valid only at its version.
    cache: Mutex<StateCache>,
    /// The log's last event, when the engine opened, had an id made by the earlier rule (see
    /// [`legacy_event_id_for`]): a retry of a command from before the change is then looked up
    /// under both rules.
    legacy_event_ids: bool,
    /// The tasks this engine's workers are running, and on PostgreSQL the session holding their
    /// advisory locks ([`Engine::try_lease_task`]).
    pub(crate) leases: crate::lease::TaskLeases,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("profile", &self.profile.kind)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, EngineError> {
    mutex.lock().map_err(|_| EngineError::Poisoned)
}

/// The id of the `index`-th event of a command: derived, so that a retried command (same
/// command id) produces the same event ids and the log's idempotency check recognises it.
///
/// The first 8 bytes are the command id's, so the ids of commands that grow with time (UUID v7,
/// as [`Engine::execute`] makes them) grow too, and each insert into the log's unique event-id
/// index lands on its last page instead of a random one (a page written to the WAL per command
/// otherwise). The other 8 come from a v5 hash of the command id and the index, so two commands
/// that share their first 8 bytes still get different ids. Events logged before this rule kept
/// the plain v5 id ([`legacy_event_id_for`]); an engine opened on a log whose last event has such
/// an id looks a retried command up under both rules.
pub fn event_id_for(command_id: Uuid, index: usize) -> Uuid {
    let hashed = Uuid::new_v5(&command_id, &(index as u64).to_be_bytes());
    let mut bytes = [0_u8; 16];
    bytes[..8].copy_from_slice(&command_id.as_bytes()[..8]);
    bytes[8..].copy_from_slice(&hashed.as_bytes()[8..]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The id the `index`-th event of a command had before [`event_id_for`] kept the command id's
/// order.
pub fn legacy_event_id_for(command_id: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&command_id, &(index as u64).to_be_bytes())
}

/// Whether `location` is a PostgreSQL URL (`postgres://` or `postgresql://`) rather than a SQLite
/// path: the rule [`Engine::open_url`] follows, for callers that derive other things from it.
pub fn is_postgres_url(location: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        location
            .get(..scheme.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme))
    })
}

/// The profile recorded at `location` (a SQLite path or a PostgreSQL URL, as for
/// [`Engine::open_url`]), read without writing; `None` if none is recorded (or, on PostgreSQL,
/// the database has no imgshare schema yet). Without the `postgres` feature a URL is refused.
pub fn stored_profile_at(location: &str) -> Result<Option<ProfileKind>, StoreError> {
    if !is_postgres_url(location) {
        return crate::meta::stored_profile_of(Path::new(location));
    }
    #[cfg(feature = "postgres")]
    {
        crate::pg::stored_profile_at_url(location)
    }
    #[cfg(not(feature = "postgres"))]
    Err(StoreError::InvalidUrl(
        "this build has no PostgreSQL support (feature `postgres`)".to_owned(),
    ))
}

/// Whether the log's last event has an id [`event_id_for`] cannot have made (its ids are
/// version 8): the log was last written by the earlier rule, so commands retried now may have
/// their events stored under [`legacy_event_id_for`].
pub(super) fn last_event_id_is_legacy<C: Sql + ?Sized>(conn: &C) -> Result<bool, EngineError> {
    let last = crate::log::last_event_id(conn)?;
    Ok(last
        .and_then(|id| Uuid::parse_str(&id).ok())
        .is_some_and(|id| id.get_version_num() != 8))
}

impl Engine {
    fn assemble(
        profile: Profile,
        writer: Db,
        reader: Option<Db>,
        path: Option<PathBuf>,
        legacy_event_ids: bool,
    ) -> Self {
        Engine {
            profile,
            writer: Mutex::new(writer),
            reader: reader.map(Mutex::new),
            path,
            #[cfg(feature = "postgres")]
            postgres_url: None,
            commits: CommitQueue::default(),
            cache: Mutex::new(StateCache::default()),
            legacy_event_ids,
            leases: crate::lease::TaskLeases::default(),
        }
    }

    /// Opens (creating if needed) the database at `path` and migrates it. A new database records
    /// the profile; one that records another profile is refused ([`crate::meta`]).
    ///
    /// ```
    /// use imgshare_core::Profile;
    /// use imgshare_store::{Engine, EngineOptions, EngineError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("images.db");
    /// let engine = Engine::open(&path, EngineOptions::default())?; // Rackspace rules
    /// assert_eq!(engine.head()?, None); // an empty log
    /// drop(engine);
    ///
    /// // The file keeps the profile it was created with.
    /// let glance = EngineOptions { profile: Profile::glance(), ..EngineOptions::default() };
    /// let refused = Engine::open(&path, glance).unwrap_err();
    /// assert_eq!(refused.code(), "profile_mismatch");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: &Path, options: EngineOptions) -> Result<Self, EngineError> {
        let writer = db::open_file(path, &options.db)?;
        crate::meta::pin_profile(&writer, options.profile.kind)?;
        let reader = db::open_file(path, &options.db)?;
        let legacy_event_ids = last_event_id_is_legacy(&writer)?;
        Ok(Self::assemble(
            options.profile,
            Db::Sqlite(writer),
            Some(Db::Sqlite(reader)),
            Some(path.to_owned()),
            legacy_event_ids,
        ))
    }

    /// Opens the database `location` names: a `postgres://` or `postgresql://` URL opens that
    /// PostgreSQL database through `open_postgres` (its checks, migrations and profile
    /// record; a writer and a reader connection), anything else is a SQLite file path opened as
    /// by [`Engine::open`]. `options.db` (durability, lock waits) applies to SQLite only.
    ///
    /// A PostgreSQL URL needs the crate's `postgres` feature; without it, it is refused as
    /// `invalid_database_url` rather than taken for a file name.
    ///
    /// Several engines, in one process or on several hosts, may share one PostgreSQL database (or
    /// one SQLite file): writers take the database's write lock, and a command's streams are
    /// read at the log's current version inside it, so no engine decides on a state another has
    /// since advanced.
    pub fn open_url(location: &str, options: EngineOptions) -> Result<Self, EngineError> {
        if !is_postgres_url(location) {
            return Self::open(Path::new(location), options);
        }
        #[cfg(feature = "postgres")]
        {
            let writer = crate::pg::open_postgres(location, options.profile.kind)?;
            // The second open finds the database migrated and pinned: it checks, writes nothing.
            let reader = crate::pg::open_postgres(location, options.profile.kind)?;
            let legacy_event_ids = last_event_id_is_legacy(&writer)?;
            let mut engine = Self::assemble(
                options.profile,
                Db::Postgres(Box::new(writer)),
                Some(Db::Postgres(Box::new(reader))),
                None,
                legacy_event_ids,
            );
            engine.postgres_url = Some(location.to_owned());
            Ok(engine)
        }
        #[cfg(not(feature = "postgres"))]
        Err(StoreError::InvalidUrl(
            "this build has no PostgreSQL support (feature `postgres`)".to_owned(),
        )
        .into())
    }

    /// Opens an existing database file read-only, for audits: nothing is created, migrated or
    /// written, and commands fail; a database that records another profile is refused. See
    /// [`db::open_read_only`].
    pub fn open_read_only(path: &Path, profile: Profile) -> Result<Self, EngineError> {
        let conn = db::open_read_only(path)?;
        crate::meta::check_profile(&conn, profile.kind)?;
        // Commands fail on it, so no retry needs looking up.
        Ok(Self::assemble(
            profile,
            Db::Sqlite(conn),
            None,
            Some(path.to_owned()),
            false,
        ))
    }

    /// A private in-memory engine with the Rackspace profile (tests, demos).
    pub fn in_memory() -> Result<Self, EngineError> {
        Self::in_memory_with(Profile::default())
    }

    /// A private in-memory engine with the given profile.
    pub fn in_memory_with(profile: Profile) -> Result<Self, EngineError> {
        // A new log has no events of the earlier rule.
        Ok(Self::assemble(
            profile,
            Db::Sqlite(db::open_in_memory()?),
            None,
            None,
            false,
        ))
    }

    /// The profile the engine was opened with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The database file, if any (`None` in memory and on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the database has reached its size cap (`max_page_count`): fewer than
    /// [`FULL_MARGIN_PAGES`] pages left to grow into and to reuse from the free list, so the
    /// next group commit would be refused with `storage_full`. A full file system is not seen
    /// here (SQLite learns of it only when a write fails).
    pub fn storage_full(&self) -> Result<bool, EngineError> {
        let guard = self.reader_guard()?;
        // A PostgreSQL server has no page cap of ours; a full disk fails the write itself.
        let Some(conn) = guard.sqlite() else {
            return Ok(false);
        };
        let pragma = |name: &str| -> Result<i64, EngineError> {
            Ok(conn
                .pragma_query_value(None, name, |row| row.get::<_, i64>(0))
                .map_err(StoreError::sqlite)?)
        };
        let room = pragma("max_page_count")?.saturating_sub(pragma("page_count")?);
        Ok(room.saturating_add(pragma("freelist_count")?) < FULL_MARGIN_PAGES)
    }

    /// Runs `read` on a read connection (public with the `internals` feature only: for this
    /// workspace's benchmarks and tests). SQLite only: on PostgreSQL it fails with
    /// [`EngineError::SqliteOnly`].
    #[cfg(feature = "internals")]
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        self.read_connection(read)
    }

    /// Runs `read` on a read connection (SQLite only).
    #[cfg(not(feature = "internals"))]
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        self.read_connection(read)
    }

    /// Runs `read` on a read connection of either backend, lent as an
    /// [`imgshare_sql::AnyConn`]: the log's and read models' functions, generic over [`Sql`], run
    /// on it whichever database the engine is on (public with the `internals` feature only: for
    /// this workspace's tests, which run on both).
    #[cfg(feature = "internals")]
    pub fn read_sql<T>(
        &self,
        read: impl FnOnce(&imgshare_sql::AnyConn<'_>) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let guard = self.reader_guard()?;
        let conn = match &*guard {
            Db::Sqlite(conn) => imgshare_sql::AnyConn::Sqlite(conn),
            #[cfg(feature = "postgres")]
            Db::Postgres(conn) => imgshare_sql::AnyConn::Postgres(conn),
        };
        read(&conn)
    }

    fn read_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let guard = self.reader_guard()?;
        match guard.sqlite() {
            Some(conn) => read(conn),
            None => Err(EngineError::SqliteOnly {
                operation: "Engine::read",
            }),
        }
    }

    /// The read connection, locked (the writer when there is no separate reader).
    pub(crate) fn reader_guard(&self) -> Result<MutexGuard<'_, Db>, EngineError> {
        self.connected(lock(self.reader.as_ref().unwrap_or(&self.writer))?)
    }

    /// Whether this engine runs on PostgreSQL (several servers may then share its database).
    pub fn runs_on_postgres(&self) -> bool {
        self.postgres_url().is_some()
    }

    /// The PostgreSQL URL this engine runs on, if it does.
    pub(crate) fn postgres_url(&self) -> Option<&str> {
        #[cfg(feature = "postgres")]
        return self.postgres_url.as_deref();
        #[cfg(not(feature = "postgres"))]
        None
    }

    /// The writer connection, locked (and reconnected if the server closed it).
    pub(crate) fn writer_guard(&self) -> Result<MutexGuard<'_, Db>, EngineError> {
        self.connected(lock(&self.writer)?)
    }

    /// `guard`'s connection, replaced by a new one if the database server closed it. The request
    /// that met the closed connection already failed as `database_unavailable` (503); the next
    /// one gets a fresh connection, or the same error while the server is still away, so an
    /// engine recovers by itself once the database is back. A SQLite connection is never closed
    /// under it.
    fn connected<'g>(
        &self,
        #[allow(unused_mut)] mut guard: MutexGuard<'g, Db>,
    ) -> Result<MutexGuard<'g, Db>, EngineError> {
        #[cfg(feature = "postgres")]
        if let (Db::Postgres(conn), Some(url)) = (&mut *guard, &self.postgres_url) {
            if conn.is_closed() {
                **conn = crate::pg::open_postgres(url, self.profile.kind)?;
            }
        }
        Ok(guard)
    }

    /// Empties the read models and rebuilds them from the whole log, one stream at a time.
    /// `progress` is called with the number of events folded so far, every 10 000 events.
    pub fn rebuild(&self, mut progress: impl FnMut(u64)) -> Result<RebuildReport, EngineError> {
        let report = writing!(self, |writer| rebuild_in(writer, &mut progress))?;
        progress(report.events);
        Ok(report)
    }

    /// Executes a member command (`AddMember`, `SetMemberStatus`) and renders that member as it
    /// is after the command, as `GET /v2/images/{id}/members/{member_id}` would.
    pub fn execute_member_command(
        &self,
        ctx: &Context,
        image_id: Uuid,
        command: ImageCommand,
    ) -> Result<serde_json::Value, EngineError> {
        let member_id = Self::member_named(&command)?.to_owned();
        let outcome = self.execute(ctx, Command::Image { image_id, command })?;
        Self::member_after(&outcome, image_id, &member_id)
    }

    /// The member a member command (`AddMember`, `SetMemberStatus`) is about; `MissingState`
    /// for any other command, which has no member to render.
    pub fn member_named(command: &ImageCommand) -> Result<&str, EngineError> {
        match command {
            ImageCommand::AddMember { member_id }
            | ImageCommand::SetMemberStatus { member_id, .. } => Ok(member_id),
            _ => Err(EngineError::MissingState),
        }
    }

    /// The member `member_id` of the image a member command addressed, as the API renders it.
    pub fn member_after(
        outcome: &Outcome,
        image_id: Uuid,
        member_id: &str,
    ) -> Result<serde_json::Value, EngineError> {
        let member = outcome
            .image()
            .and_then(|image| image.members.get(member_id))
            .ok_or(EngineError::MissingState)?;
        Ok(views::member(&image_id.to_string(), member))
    }

    /// Folds a stream up to a position or time ([`audit::state_as_of`]).
    pub fn state_as_of(&self, stream: StreamId, as_of: AsOf) -> Result<Loaded, EngineError> {
        reading!(self, |conn| audit::state_as_of(conn, stream, as_of))
    }

    /// The whole catalogue at a position or time ([`audit::catalogue_as_of`]).
    pub fn catalogue_as_of(&self, as_of: AsOf) -> Result<audit::Catalogue, EngineError> {
        reading!(self, |conn| audit::catalogue_as_of(conn, as_of))
    }

    /// Every event of an image with who, where and when ([`audit::history`]).
    pub fn history(&self, image_id: Uuid) -> Result<Vec<audit::HistoryEntry>, EngineError> {
        reading!(self, |conn| audit::history(conn, image_id))
    }

    /// Who could see and boot an image at a position or time, and why ([`audit::access_at`]).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use imgshare_core::{Actor, Command, Context, ImageCommand, ImageOrigin, NewImage, Region};
    /// use imgshare_store::{AccessReason, AsOf, Engine};
    ///
    /// let engine = Engine::in_memory()?;
    /// let owner = Actor::tenant("111111", "alice", &["cloudImages:admin"]);
    /// let image_id = uuid::Uuid::new_v4();
    /// let run = |day: u32, command: ImageCommand| {
    ///     let when = Utc.with_ymd_and_hms(2026, 5, day, 12, 0, 0).unwrap();
    ///     let ctx = Context::new(owner.clone(), Region::parse("DFW").unwrap(), when);
    ///     engine.execute(&ctx, Command::Image { image_id, command })
    /// };
    /// let origin = ImageOrigin::Snapshot { server_id: "srv-1".into() };
    /// run(1, ImageCommand::Register { origin, image: NewImage::default() })?;
    /// run(2, ImageCommand::AddMember { member_id: "222222".into() })?;
    /// run(4, ImageCommand::RemoveMember { member_id: "222222".into() })?;
    ///
    /// let on_the_3rd = engine.access_at(image_id, AsOf::Time(Utc.with_ymd_and_hms(2026, 5, 3, 0, 0, 0).unwrap()))?;
    /// let member = on_the_3rd.accounts.iter().find(|a| a.tenant_id == "222222").unwrap();
    /// assert!(matches!(member.why, Some(AccessReason::Member { .. })));
    /// let on_the_5th = engine.access_at(image_id, AsOf::Time(Utc.with_ymd_and_hms(2026, 5, 5, 0, 0, 0).unwrap()))?;
    /// assert!(on_the_5th.accounts.iter().all(|a| a.tenant_id != "222222"));
    /// assert!(engine.verify()?.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn access_at(
        &self,
        image_id: Uuid,
        as_of: AsOf,
    ) -> Result<audit::AccessReport, EngineError> {
        reading!(self, |conn| audit::access_at(
            conn,
            &self.profile,
            image_id,
            as_of
        ))
    }

    /// Checks the hash chain and the read models against a replay ([`audit::verify`]).
    pub fn verify(&self) -> Result<audit::VerifyReport, EngineError> {
        reading!(self, |conn| audit::verify(conn))
    }

    /// Fills this engine's empty log with `source`'s events, copied row for row (positions,
    /// times and hashes intact, the source's chain checked on the way), then rebuilds this
    /// engine's read models from them and verifies the result. Moves a catalogue between
    /// backends (SQLite ↔ PostgreSQL); `progress` gets the number of events copied so far.
    ///
    /// Refused, with nothing committed, when this log already has events
    /// ([`crate::CopyError::TargetNotEmpty`]) or the source's chain is broken
    /// ([`crate::CopyError::SourceChainBroken`]). The source is only read.
    pub fn copy_log_from(
        &self,
        source: &Engine,
        mut progress: impl FnMut(u64),
    ) -> Result<CopyReport, EngineError> {
        if std::ptr::eq(self, source) {
            let head = self.head()?.map_or(0, |(position, _)| position);
            return Err(EngineError::Copy(crate::copy::CopyError::TargetNotEmpty {
                head,
            }));
        }
        let (events, head) = reading!(source, |from| {
            writing!(self, |to| crate::copy::copy_events(from, to, &mut progress))
        })
        .map_err(EngineError::Copy)?;
        let rebuild = self.rebuild(|_| {})?;
        let verify = self.verify()?;
        Ok(CopyReport {
            events,
            head,
            rebuild,
            verify,
        })
    }
}

/// What [`Engine::copy_log_from`] did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Events copied.
    pub events: u64,
    /// The copied log's head `(position, hash)`, the same in both databases; `None` for an
    /// empty source.
    pub head: Option<(i64, String)>,
    /// The target's read models rebuilt from the copy.
    pub rebuild: RebuildReport,
    /// The target verified after the rebuild (chain, replay, read models).
    pub verify: audit::VerifyReport,
}

/// Empties the read models and writes them again from the whole log, in one write transaction.
fn rebuild_in<C: Sql + ?Sized>(
    writer: &C,
    progress: &mut impl FnMut(u64),
) -> Result<RebuildReport, EngineError> {
    let tx = crate::write_tx::WriteTx::begin(writer)?;
    tables::reset(&*tx)?;
    let indexes = tables::drop_secondary_indexes(&*tx)?;
    let report = fold_streams(
        &*tx,
        None,
        |state, _| tables::write_state(&*tx, &state).map_err(Into::into),
        progress,
    )?;
    tables::recreate_indexes(&*tx, &indexes)?;
    tables::set_checkpoint(&*tx, report.last_position)?;
    tx.commit()?;
    Ok(report)
}
