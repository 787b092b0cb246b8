//! The [`Engine`]: what a backend embeds. It loads aggregates by folding their streams, asks the
//! pure domain to decide, and appends the resulting events (and, in the same transaction, the
//! projection rows) to the SQLite log.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use imgshare_core::{
    access, decide, queries, Aggregate, Command, Context, DomainError, ErrorKind, Event, Image,
    Operation, Profile, ProfileKind, Region, StreamId, Task,
};
use imgshare_projection::query::{parse_image_list_query, parse_task_list_query, QueryDialect};
use imgshare_projection::{listing, tables, views, ProjectionError, Viewer};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde_json::json;
use thiserror::Error;
use uuid::Uuid;

use crate::audit::{self, AsOf};
use crate::db::{self, DbOptions, StoreError};
use crate::log::{self, ExpectedVersion, NewEvent, RecordedEvent, StreamAppend};

/// How an engine is opened.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The policy profile (Rackspace by default).
    pub profile: Profile,
    /// Durability and lock waiting.
    pub db: DbOptions,
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
    /// A read model failed, or a list query was invalid.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
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
    /// A lock guarding a connection was poisoned by a panic in another thread.
    #[error("the engine is unusable after a panic in another thread")]
    Poisoned,
}

impl EngineError {
    /// What sort of failure this is; adapters map it to what their callers see.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Domain(error) => error.kind(),
            EngineError::Store(error) => error.kind(),
            EngineError::Projection(error) => error.kind(),
            EngineError::CorruptStream { .. } | EngineError::Poisoned => ErrorKind::Internal,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Domain(error) => error.code(),
            EngineError::Store(error) => error.code(),
            EngineError::Projection(error) => error.code(),
            EngineError::CorruptStream { .. } => "corrupt_stream",
            EngineError::Poisoned => "engine_poisoned",
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(error: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::from(error))
    }
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

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Events folded.
    pub events: u64,
    /// Streams written.
    pub streams: u64,
    /// The log position the read models now reflect.
    pub last_position: i64,
}

/// An aggregate folded from its stream, with the stream's version.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The state.
    pub state: Aggregate,
    /// Number of events folded (0 for a new stream).
    pub version: u64,
}

/// The event-sourced image catalogue over one SQLite database.
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
    writer: Mutex<Connection>,
    /// A separate connection for reads on a file database, so reads do not wait behind writes
    /// (WAL lets them run concurrently). An in-memory database has only the writer.
    reader: Option<Mutex<Connection>>,
    path: Option<PathBuf>,
    /// Commands waiting for the writer; whoever gets the writer runs them all in one
    /// transaction (group commit).
    queue: Mutex<Vec<Queued>>,
    /// Signalled (under `queue`) each time a group has been committed or refused.
    group_done: Condvar,
    /// Recently folded aggregates by stream, each valid only at its version.
    cache: Mutex<StateCache>,
    /// The log's last event, when the engine opened, had an id made by the earlier rule (see
    /// [`legacy_event_id_for`]): a retry of a command from before the change is then looked up
    /// under both rules.
    legacy_event_ids: bool,
}

/// One command of [`Engine::execute_batch`].
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Who asks, where, when.
    pub ctx: Context,
    /// The command's id (a retry with the same id writes nothing).
    pub command_id: Uuid,
    /// The command.
    pub command: Command,
}

type Slot = Arc<Mutex<Option<Result<Outcome, EngineError>>>>;

/// A command in the group-commit queue, and where its result goes.
struct Queued {
    item: BatchItem,
    slot: Slot,
}

/// How a group keeps one command's failure from the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// One command: its failure is the transaction's.
    Alone,
    /// No savepoints; a command that fails after writing sends the group back to run with them.
    Optimistic,
    /// A savepoint per command, rolled back if it fails.
    Savepoints,
}

/// Why a command failed, by whether it had written anything in the transaction yet.
enum CommandFailure {
    /// Before any write (a load, the decision): the transaction is as it was.
    Refused(EngineError),
    /// After its first write: only a rollback undoes its part.
    AfterWriting(EngineError),
}

impl CommandFailure {
    fn into_error(self) -> EngineError {
        match self {
            Self::Refused(error) | Self::AfterWriting(error) => error,
        }
    }
}

impl<E: Into<EngineError>> From<E> for CommandFailure {
    fn from(error: E) -> Self {
        Self::Refused(error.into())
    }
}

/// A command's decided events with the states they were decided on, ready to append.
struct Decision {
    primary: StreamId,
    command_id: Uuid,
    events: Vec<(StreamId, Event)>,
    /// The decision's copy of each stream's state, which the fold continues.
    before: BTreeMap<StreamId, Aggregate>,
    /// The same states as loaded (shared with the cache), which the read-model diff compares to.
    shared: BTreeMap<StreamId, Arc<Aggregate>>,
    versions: BTreeMap<StreamId, u64>,
}

/// Why a group committed nothing.
enum GroupFailure {
    /// A command failed after writing in a group without savepoints; run it again with them.
    NeedsSavepoints,
    /// The transaction could not run or commit.
    Failed(EngineError),
}

impl<E: Into<EngineError>> From<E> for GroupFailure {
    fn from(error: E) -> Self {
        Self::Failed(error.into())
    }
}

/// How many groups in a row the caller holding the writer runs while commands keep arriving.
const LEADER_GROUPS: usize = 16;

/// The longest a queued command waits before looking at the writer again (a safety net: the
/// leader of a group wakes the waiters when it is done).
const GROUP_WAIT: Duration = Duration::from_millis(5);

/// How many streams' states the engine keeps folded in memory.
const CACHED_STREAMS: usize = 4096;

/// Folded aggregates keyed by stream, each with the stream version it reflects. An entry is used
/// only when the log's version of the stream still equals it, so another process writing the same
/// database never makes it serve stale state.
#[derive(Default)]
struct StateCache {
    entries: HashMap<StreamId, (u64, Arc<Aggregate>)>,
}

/// States a group of commands has written so far, by stream, with their versions.
type Written = HashMap<StreamId, (u64, Arc<Aggregate>)>;

impl StateCache {
    fn get(&self, stream: StreamId, version: u64) -> Option<Arc<Aggregate>> {
        match self.entries.get(&stream) {
            Some((cached, state)) if *cached == version => Some(Arc::clone(state)),
            _ => None,
        }
    }

    fn put(&mut self, stream: StreamId, version: u64, state: Arc<Aggregate>) {
        if self.entries.len() >= CACHED_STREAMS && !self.entries.contains_key(&stream) {
            // Crude but bounded: a full cache starts over; hot streams come back on next use.
            self.entries.clear();
        }
        self.entries.insert(stream, (version, state));
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("profile", &self.profile.kind)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn lock(mutex: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>, EngineError> {
    mutex.lock().map_err(|_| EngineError::Poisoned)
}

fn take_slot(slot: &Slot) -> Result<Option<Result<Outcome, EngineError>>, EngineError> {
    Ok(slot.lock().map_err(|_| EngineError::Poisoned)?.take())
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

/// Whether the log's last event has an id [`event_id_for`] cannot have made (its ids are
/// version 8): the log was last written by the earlier rule, so commands retried now may have
/// their events stored under [`legacy_event_id_for`].
fn last_event_id_is_legacy(conn: &Connection) -> Result<bool, EngineError> {
    let last: Option<String> = conn
        .query_row(
            "SELECT event_id FROM events ORDER BY position DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(last
        .and_then(|id| Uuid::parse_str(&id).ok())
        .is_some_and(|id| id.get_version_num() != 8))
}

impl Engine {
    fn assemble(
        profile: Profile,
        writer: Connection,
        reader: Option<Connection>,
        path: Option<PathBuf>,
        legacy_event_ids: bool,
    ) -> Self {
        Engine {
            profile,
            writer: Mutex::new(writer),
            reader: reader.map(Mutex::new),
            path,
            queue: Mutex::new(Vec::new()),
            group_done: Condvar::new(),
            cache: Mutex::new(StateCache::default()),
            legacy_event_ids,
        }
    }

    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path, options: EngineOptions) -> Result<Self, EngineError> {
        let writer = db::open_file(path, &options.db)?;
        let reader = db::open_file(path, &options.db)?;
        let legacy_event_ids = last_event_id_is_legacy(&writer)?;
        Ok(Self::assemble(
            options.profile,
            writer,
            Some(reader),
            Some(path.to_owned()),
            legacy_event_ids,
        ))
    }

    /// Opens an existing database file read-only, for audits: nothing is created, migrated or
    /// written, and commands fail. See [`db::open_read_only`].
    pub fn open_read_only(path: &Path, profile: Profile) -> Result<Self, EngineError> {
        // Commands fail on it, so no retry needs looking up.
        Ok(Self::assemble(
            profile,
            db::open_read_only(path)?,
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
            db::open_in_memory()?,
            None,
            None,
            false,
        ))
    }

    /// The profile the engine was opened with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The database file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `read` on a read connection.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let guard = lock(self.reader.as_ref().unwrap_or(&self.writer))?;
        read(&guard)
    }

    /// Executes a command with a fresh command id.
    pub fn execute(&self, ctx: &Context, command: Command) -> Result<Outcome, EngineError> {
        // Time-ordered, so the event ids derived from it are too (see `event_id_for`).
        self.execute_idempotent(ctx, Uuid::now_v7(), command)
    }

    /// Executes a command; executing again with the same `command_id` (a client retry) writes
    /// nothing and returns the first execution's events.
    ///
    /// Concurrent callers share transactions (group commit): each queues its command, and the
    /// one that gets the writer runs every queued command in one transaction, each inside its
    /// own savepoint, so one command's failure never affects another's outcome. If the shared
    /// transaction itself fails (e.g. at commit), each command is run again alone.
    pub fn execute_idempotent(
        &self,
        ctx: &Context,
        command_id: Uuid,
        command: Command,
    ) -> Result<Outcome, EngineError> {
        let slot: Slot = Arc::new(Mutex::new(None));
        let item = BatchItem {
            ctx: ctx.clone(),
            command_id,
            command,
        };
        self.queue
            .lock()
            .map_err(|_| EngineError::Poisoned)?
            .push(Queued {
                item,
                slot: Arc::clone(&slot),
            });
        loop {
            if let Some(result) = take_slot(&slot)? {
                return result;
            }
            match self.writer.try_lock() {
                Ok(mut writer) => {
                    // Keep the writer while commands keep arriving: the callers of one group
                    // queue their next commands while the following group runs, so groups grow
                    // instead of each new arrival taking the writer for a group of one or two.
                    // Bounded, so this caller's own answer is not held back for long.
                    for _ in 0..LEADER_GROUPS {
                        self.run_queued(&mut writer)?;
                        // Under the queue lock, so a waiter that just found its slot empty is
                        // already waiting and cannot miss this.
                        let queue = self.queue.lock().map_err(|_| EngineError::Poisoned)?;
                        self.group_done.notify_all();
                        if queue.is_empty() {
                            break;
                        }
                    }
                    drop(writer);
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    // Another caller is running a group, which may include this command; wait
                    // for it to finish rather than for the writer, so that every waiting
                    // command can join the next group.
                    let queue = self.queue.lock().map_err(|_| EngineError::Poisoned)?;
                    if slot.lock().map_err(|_| EngineError::Poisoned)?.is_some() {
                        continue;
                    }
                    let _woken = self
                        .group_done
                        .wait_timeout(queue, GROUP_WAIT)
                        .map_err(|_| EngineError::Poisoned)?;
                }
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(EngineError::Poisoned),
            }
        }
    }

    /// Runs every queued command as one group and puts each result in its caller's slot.
    fn run_queued(&self, writer: &mut Connection) -> Result<(), EngineError> {
        let queued = std::mem::take(&mut *self.queue.lock().map_err(|_| EngineError::Poisoned)?);
        let (items, slots): (Vec<BatchItem>, Vec<Slot>) =
            queued.into_iter().map(|q| (q.item, q.slot)).unzip();
        for (slot, result) in slots.iter().zip(self.run_items(writer, items)) {
            *slot.lock().map_err(|_| EngineError::Poisoned)? = Some(result);
        }
        Ok(())
    }

    /// Executes `items` in order in one transaction (one commit, one sync): each command sees
    /// the ones before it, and each has its own outcome — a refused command appends nothing and
    /// does not stop the others. The outer error is for a batch that could not run at all.
    pub fn execute_batch(
        &self,
        items: Vec<BatchItem>,
    ) -> Result<Vec<Result<Outcome, EngineError>>, EngineError> {
        let mut writer = lock(&self.writer)?;
        Ok(self.run_items(&mut writer, items))
    }

    fn run_items(
        &self,
        writer: &mut Connection,
        items: Vec<BatchItem>,
    ) -> Vec<Result<Outcome, EngineError>> {
        if let [item] = items.as_slice() {
            return vec![self.run_alone(writer, item)];
        }
        // Most refusals are decided before a command writes anything, so the group first runs
        // without savepoints (each costs a copy of every page a command touches); only a
        // command that fails after writing makes the group start over with them.
        let mut attempt = self.run_group(writer, &items, Isolation::Optimistic);
        if let Err(GroupFailure::NeedsSavepoints) = attempt {
            attempt = self.run_group(writer, &items, Isolation::Savepoints);
        }
        match attempt {
            Ok(results) => results,
            // The lock was never taken: running each command alone would make each wait the
            // whole busy timeout again, so they all get the same answer, to retry.
            Err(GroupFailure::Failed(EngineError::Store(StoreError::Busy))) => items
                .iter()
                .map(|_| Err(EngineError::Store(StoreError::Busy)))
                .collect(),
            // Nothing was committed: each command gets its own transaction and its own error.
            Err(_) => items
                .iter()
                .map(|item| self.run_alone(writer, item))
                .collect(),
        }
    }

    /// One command in its own transaction.
    fn run_alone(&self, writer: &mut Connection, item: &BatchItem) -> Result<Outcome, EngineError> {
        // A lone command needs no savepoint: if it fails, the transaction is dropped unused.
        // `run_group` answers once per command, so the pop always finds this one's outcome.
        match self.run_group(writer, std::slice::from_ref(item), Isolation::Alone) {
            Ok(mut results) => results.pop().unwrap_or(Err(EngineError::Poisoned)),
            Err(GroupFailure::Failed(error)) => Err(error),
            // Not produced for a lone command (its failure is its own answer).
            Err(GroupFailure::NeedsSavepoints) => Err(EngineError::Poisoned),
        }
    }

    /// One transaction for `items`; the cache learns the new states only once the transaction
    /// is committed. `isolation` says how one command's failure is kept from the others.
    fn run_group(
        &self,
        writer: &mut Connection,
        items: &[BatchItem],
        isolation: Isolation,
    ) -> Result<Vec<Result<Outcome, EngineError>>, GroupFailure> {
        // IMMEDIATE takes the write lock before reading, so the state the decision sees cannot
        // change before the append (a deferred transaction would fail to upgrade under load).
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut written: Written = HashMap::new();
        // The head is read once: each command continues from the last one's events.
        let mut head = log::read_head(&tx)?;
        let mut results = Vec::with_capacity(items.len());
        let mut last_position = None;
        let savepoints = isolation == Isolation::Savepoints;
        for item in items {
            if savepoints {
                tx.prepare_cached("SAVEPOINT imgshare_command")?
                    .execute([])?;
            }
            let mut states = Vec::new();
            match self.execute_in(&tx, item, &written, head.as_ref(), &mut states) {
                Ok(outcome) => {
                    if savepoints {
                        tx.prepare_cached("RELEASE imgshare_command")?.execute([])?;
                    }
                    for (stream, version, state) in states {
                        written.insert(stream, (version, state));
                    }
                    if let Some(last) = outcome.events.last().filter(|_| !outcome.already_applied) {
                        last_position = Some(last.position);
                        head = Some(log::Head {
                            position: last.position,
                            hash: last.hash.clone(),
                            at: last.recorded_at,
                        });
                    }
                    results.push(Ok(outcome));
                }
                // SQLite rolls the whole transaction back itself on some errors (a full disk or
                // page limit, an I/O error): then no savepoint is left and nothing of the group
                // was written, so the group fails with the command's own error.
                Err(failure) if tx.is_autocommit() => return Err(failure.into_error().into()),
                Err(CommandFailure::Refused(error)) if isolation != Isolation::Alone => {
                    if savepoints {
                        tx.prepare_cached("RELEASE imgshare_command")?.execute([])?;
                    }
                    results.push(Err(error));
                }
                Err(CommandFailure::AfterWriting(error)) if savepoints => {
                    tx.prepare_cached("ROLLBACK TO imgshare_command")?
                        .execute([])?;
                    tx.prepare_cached("RELEASE imgshare_command")?.execute([])?;
                    results.push(Err(error));
                }
                // Dropping the transaction rolls back what this command wrote, and the others'.
                Err(CommandFailure::AfterWriting(_)) if isolation == Isolation::Optimistic => {
                    return Err(GroupFailure::NeedsSavepoints)
                }
                Err(failure) => return Ok(vec![Err(failure.into_error())]),
            }
        }
        if let Some(position) = last_position {
            tables::set_checkpoint(&tx, position)?;
        }
        tx.commit()?;
        if let Ok(mut cache) = self.cache.lock() {
            for (stream, (version, state)) in written {
                cache.put(stream, version, state);
            }
        }
        Ok(results)
    }

    /// The state of `stream` for a write in `tx`: from this transaction's earlier commands, the
    /// cache, or a fold of the log, whichever is at the log's current version.
    fn load_for_write(
        &self,
        tx: &Connection,
        stream: StreamId,
        written: &Written,
    ) -> Result<(u64, Arc<Aggregate>), EngineError> {
        let version = log::stream_version(tx, &stream.to_string())?.unwrap_or(0);
        if version == 0 {
            return Ok((version, Arc::new(Aggregate::empty(stream))));
        }
        if let Some((cached, state)) = written.get(&stream) {
            if *cached == version {
                return Ok((version, Arc::clone(state)));
            }
        }
        if let Some(state) = self.cached(stream, version) {
            return Ok((version, state));
        }
        // Not cached here: the fold may see this transaction's uncommitted writes; the caller's
        // states reach the cache only after the commit.
        let loaded = load_stream(tx, stream)?;
        Ok((loaded.version, Arc::new(loaded.state)))
    }

    fn cached(&self, stream: StreamId, version: u64) -> Option<Arc<Aggregate>> {
        self.cache.lock().ok()?.get(stream, version)
    }

    /// Decides and appends one command inside `tx`; `states` receives each touched stream's new
    /// version and state.
    fn execute_in(
        &self,
        tx: &Connection,
        item: &BatchItem,
        written: &Written,
        head: Option<&log::Head>,
        states: &mut Vec<(StreamId, u64, Arc<Aggregate>)>,
    ) -> Result<Outcome, CommandFailure> {
        let BatchItem {
            ctx,
            command_id,
            command,
        } = item;
        let command_id = *command_id;
        let streams = command.streams();
        let Some(&primary) = streams.first() else {
            return Err(EngineError::from(DomainError::InvalidInput {
                message: "command addresses no stream".to_owned(),
            })
            .into());
        };
        if let Some(previous) = stored_command_events(tx, command_id, self.legacy_event_ids)? {
            let (_, state) = self.load_for_write(tx, primary, written)?;
            return Ok(Outcome {
                events: previous,
                already_applied: true,
                state,
            });
        }
        // The shared states stay as they are (the read-model diff compares against them); the
        // decision and the fold work on one copy each.
        let mut shared: BTreeMap<StreamId, Arc<Aggregate>> = BTreeMap::new();
        let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
        for stream in &streams {
            let (version, state) = self.load_for_write(tx, *stream, written)?;
            versions.insert(*stream, version);
            shared.insert(*stream, state);
        }
        let before: BTreeMap<StreamId, Aggregate> = shared
            .iter()
            .map(|(stream, state)| (*stream, Aggregate::clone(state)))
            .collect();
        // Decide at the time the log will record, so that times the domain computes (a task's
        // expiry) agree with the recorded time even when this request's clock lags the log.
        let ctx = &Context {
            now: log::effective_time(head, ctx.now),
            ..ctx.clone()
        };
        let decided = decide(&self.profile, &before, command, ctx)?;
        let decision = Decision {
            primary,
            command_id,
            events: decided,
            before,
            shared,
            versions,
        };
        write_decision(tx, decision, ctx, head, states).map_err(CommandFailure::AfterWriting)
    }

    /// Empties the read models and rebuilds them from the whole log, one stream at a time.
    /// `progress` is called with the number of events folded so far, every 10 000 events.
    pub fn rebuild(&self, mut progress: impl FnMut(u64)) -> Result<RebuildReport, EngineError> {
        let mut writer = lock(&self.writer)?;
        let report = self.rebuild_in(&mut writer, &mut progress)?;
        progress(report.events);
        Ok(report)
    }

    fn rebuild_in(
        &self,
        writer: &mut Connection,
        progress: &mut impl FnMut(u64),
    ) -> Result<RebuildReport, EngineError> {
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tables::reset(&tx)?;
        let indexes = tables::drop_secondary_indexes(&tx)?;
        let report = fold_streams(
            &tx,
            None,
            |state, _| tables::write_state(&tx, &state).map_err(Into::into),
            progress,
        )?;
        tables::recreate_indexes(&tx, &indexes)?;
        tables::set_checkpoint(&tx, report.last_position)?;
        tx.commit()?;
        Ok(report)
    }

    /// Folds a stream as it is now (from the cache when it is at the log's version).
    pub fn load(&self, stream: StreamId) -> Result<Loaded, EngineError> {
        self.read(|conn| {
            let version = log::stream_version(conn, &stream.to_string())?.unwrap_or(0);
            if version > 0 {
                if let Some(state) = self.cached(stream, version) {
                    return Ok(Loaded {
                        state: Aggregate::clone(&state),
                        version,
                    });
                }
            }
            let loaded = load_stream(conn, stream)?;
            if loaded.version > 0 {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.put(stream, loaded.version, Arc::new(loaded.state.clone()));
                }
            }
            Ok(loaded)
        })
    }

    /// Folds a stream up to a position or time ([`audit::state_as_of`]).
    pub fn state_as_of(&self, stream: StreamId, as_of: AsOf) -> Result<Loaded, EngineError> {
        self.read(|conn| audit::state_as_of(conn, stream, as_of))
    }

    /// The whole catalogue at a position or time ([`audit::catalogue_as_of`]).
    pub fn catalogue_as_of(&self, as_of: AsOf) -> Result<audit::Catalogue, EngineError> {
        self.read(|conn| audit::catalogue_as_of(conn, as_of))
    }

    /// Every event of an image with who, where and when ([`audit::history`]).
    pub fn history(&self, image_id: Uuid) -> Result<Vec<audit::HistoryEntry>, EngineError> {
        self.read(|conn| audit::history(conn, image_id))
    }

    /// Who could see and boot an image at a position or time, and why ([`audit::access_at`]).
    pub fn access_at(
        &self,
        image_id: Uuid,
        as_of: AsOf,
    ) -> Result<audit::AccessReport, EngineError> {
        self.read(|conn| audit::access_at(conn, &self.profile, image_id, as_of))
    }

    /// Checks the hash chain and the read models against a replay ([`audit::verify`]).
    pub fn verify(&self) -> Result<audit::VerifyReport, EngineError> {
        self.read(audit::verify)
    }

    /// The image's state, whoever asks (no access check): for backends and auditors.
    pub fn image_state(&self, image_id: Uuid) -> Result<Option<Image>, EngineError> {
        Ok(self
            .load(StreamId::Image(image_id))?
            .state
            .as_image()
            .cloned())
    }

    /// The ids of `region`'s images in `status`, oldest first, from the read model: how a
    /// restarted server finds imports it left `importing`.
    pub fn image_ids_in_status(
        &self,
        region: &Region,
        status: imgshare_core::ImageStatus,
    ) -> Result<Vec<Uuid>, EngineError> {
        self.read(|conn| {
            let ids = tables::image_ids_in_status(conn, region, status)?;
            ids.iter()
                .map(|id| {
                    Uuid::try_parse(id).map_err(|error| EngineError::CorruptStream {
                        stream: format!("image-{id}"),
                        version: 0,
                        reason: format!("read model holds a bad image id: {error}"),
                    })
                })
                .collect()
        })
    }

    /// The image as the caller in `ctx` may see it; 404 if it cannot.
    pub fn get_image(&self, ctx: &Context, image_id: Uuid) -> Result<Image, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::GetImage)?;
        match self.image_state(image_id)? {
            Some(image) if access::can_see(&self.profile, &image, &ctx.actor, &ctx.region) => {
                Ok(image)
            }
            _ => Err(DomainError::ImageNotFound {
                image_id: image_id.to_string(),
            }
            .into()),
        }
    }

    /// The task as its owner may see it at `ctx.now`; 404 otherwise.
    pub fn get_task(&self, ctx: &Context, task_id: Uuid) -> Result<Task, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::ReadTasks)?;
        let loaded = self.load(StreamId::Task(task_id))?;
        match loaded.state.as_task() {
            Some(task) if task.is_visible_to(&ctx.actor.tenant_id, &ctx.region, ctx.now) => {
                Ok(task.clone())
            }
            _ => Err(DomainError::TaskNotFound {
                task_id: task_id.to_string(),
            }
            .into()),
        }
    }

    /// `GET /v2/images/{id}` as JSON.
    pub fn image_view(
        &self,
        ctx: &Context,
        image_id: Uuid,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(views::image(&self.profile, &self.get_image(ctx, image_id)?))
    }

    /// `GET /v2/images/{id}/members` as JSON.
    pub fn members_view(
        &self,
        ctx: &Context,
        image_id: Uuid,
    ) -> Result<serde_json::Value, EngineError> {
        let image = self.get_image(ctx, image_id)?;
        let rows: Vec<_> = queries::readable_members(&self.profile, &image, &ctx.actor)?
            .into_iter()
            .cloned()
            .collect();
        Ok(views::members(&image_id.to_string(), &rows))
    }

    /// `GET /v2/images/{id}/members/{member_id}` as JSON.
    pub fn member_view(
        &self,
        ctx: &Context,
        image_id: Uuid,
        member_id: &str,
    ) -> Result<serde_json::Value, EngineError> {
        let image = self.get_image(ctx, image_id)?;
        let member = queries::readable_member(&self.profile, &image, &ctx.actor, member_id)?;
        Ok(views::member(&image_id.to_string(), member))
    }

    /// `GET /v2/tasks/{id}` as JSON.
    pub fn task_view(
        &self,
        ctx: &Context,
        task_id: Uuid,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(views::task(&self.profile, &self.get_task(ctx, task_id)?))
    }

    fn dialect(&self) -> QueryDialect {
        match self.profile.kind {
            ProfileKind::Rackspace => QueryDialect::RACKSPACE,
            ProfileKind::Glance => QueryDialect::GLANCE,
        }
    }

    fn viewer<'a>(&self, ctx: &'a Context) -> Viewer<'a> {
        Viewer {
            tenant_id: &ctx.actor.tenant_id,
            region: &ctx.region,
            is_admin: self.profile.is_cloud_admin(&ctx.actor),
        }
    }

    /// `GET /v2/images?{raw_query}` as JSON: one page, served from the read models.
    pub fn list_images(
        &self,
        ctx: &Context,
        raw_query: &str,
    ) -> Result<serde_json::Value, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::ListImages)?;
        let query = parse_image_list_query(raw_query, &self.dialect())
            .map_err(|error| ProjectionError::BadQuery(error.message))?;
        let viewer = self.viewer(ctx);
        self.read(|conn| {
            Ok(listing::list_images(
                conn,
                &self.profile,
                &viewer,
                &query,
                raw_query,
            )?)
        })
    }

    /// `GET /v2/tasks?{raw_query}` as JSON: the caller's unexpired tasks in this region.
    pub fn list_tasks(
        &self,
        ctx: &Context,
        raw_query: &str,
    ) -> Result<serde_json::Value, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::ReadTasks)?;
        let types: Vec<&str> = self
            .profile
            .task_types()
            .iter()
            .map(|t| t.as_str())
            .collect();
        let query = parse_task_list_query(raw_query, &self.dialect(), &types)
            .map_err(|error| ProjectionError::BadQuery(error.message))?;
        let viewer = self.viewer(ctx);
        self.read(|conn| {
            Ok(listing::list_tasks(
                conn, &viewer, ctx.now, &query, raw_query,
            )?)
        })
    }

    /// May `tenant_id` boot a new server from `image_id` in `region`? For compute backends.
    ///
    /// True for the owner, for public images, and for members in any status (pending, accepted
    /// or rejected); false for anyone else, for another region, and for images that are not
    /// active (deleted, deactivated, still saving).
    pub fn can_boot(
        &self,
        tenant_id: &str,
        image_id: Uuid,
        region: &Region,
    ) -> Result<bool, EngineError> {
        Ok(self
            .image_state(image_id)?
            .is_some_and(|image| access::can_boot(&self.profile, &image, tenant_id, region)))
    }
}

/// Appends a decision's events, folds them into each touched stream and writes the read models
/// from the difference, all in `tx`; `states` receives each touched stream's new version and
/// state.
fn write_decision(
    tx: &Connection,
    decision: Decision,
    ctx: &Context,
    head: Option<&log::Head>,
    states: &mut Vec<(StreamId, u64, Arc<Aggregate>)>,
) -> Result<Outcome, EngineError> {
    let Decision {
        primary,
        command_id,
        events: decided,
        before,
        mut shared,
        mut versions,
    } = decision;
    let appends = group_appends(&decided, &versions, ctx, command_id);
    let recorded = if appends.is_empty() {
        Vec::new()
    } else {
        // The ids were just found absent (a command's events are written all or none) and
        // the versions read in this transaction: the checks `log::append` repeats are done.
        log::append_known(tx, &appends, head.cloned(), ctx.now)?
    };
    let mut after = before;
    for ((stream, event), stored) in decided.iter().zip(&recorded) {
        let state = after
            .remove(stream)
            .unwrap_or_else(|| Aggregate::empty(*stream));
        let state = state
            .apply(event, stored.recorded_at)
            .map_err(|error| corrupt(&stored.stream_id, stored.version, error.message))?;
        after.insert(*stream, state);
        versions.insert(*stream, stored.version);
    }
    let mut state = None;
    for (stream, after_state) in after {
        let previous = shared
            .remove(&stream)
            .unwrap_or_else(|| Arc::new(Aggregate::empty(stream)));
        let current = if *previous == after_state {
            previous
        } else {
            tables::write_diff(tx, &previous, &after_state)?;
            Arc::new(after_state)
        };
        let version = versions.get(&stream).copied().unwrap_or(0);
        if version > 0 {
            states.push((stream, version, Arc::clone(&current)));
        }
        if stream == primary {
            state = Some(current);
        }
    }
    let state = state.unwrap_or_else(|| Arc::new(Aggregate::empty(primary)));
    Ok(Outcome {
        events: recorded,
        already_applied: false,
        state,
    })
}

fn corrupt(stream: &str, version: u64, reason: String) -> EngineError {
    EngineError::CorruptStream {
        stream: stream.to_owned(),
        version,
        reason,
    }
}

/// Folds a stream's events into its aggregate.
pub fn load_stream(conn: &Connection, stream: StreamId) -> Result<Loaded, EngineError> {
    let stream_id = stream.to_string();
    let mut state = Aggregate::empty(stream);
    let mut version = 0;
    for stored in log::read_stream(conn, &stream_id)? {
        let event = decode(&stored)?;
        state = state
            .apply(&event, stored.recorded_at)
            .map_err(|error| corrupt(&stream_id, stored.version, error.message))?;
        version = stored.version;
    }
    Ok(Loaded { state, version })
}

/// Folds every stream of the log up to `to_position` (all of it if `None`), one stream at a time
/// in stream id order, calling `done` with each stream's final state and the position of its
/// last event: memory holds one aggregate, whatever the log's length. `progress` gets the number
/// of events folded, every 10 000. Rebuilds, replays and audits all read the log this way.
pub fn fold_streams(
    conn: &Connection,
    to_position: Option<i64>,
    mut done: impl FnMut(Aggregate, i64) -> Result<(), EngineError>,
    progress: &mut impl FnMut(u64),
) -> Result<RebuildReport, EngineError> {
    let mut current: Option<(String, Aggregate, i64)> = None;
    let mut report = RebuildReport::default();
    log::for_each_stream_event(conn, to_position, |stored| -> Result<(), EngineError> {
        let state = match current.take() {
            Some((stream_id, state, _)) if stream_id == stored.stream_id => state,
            finished => {
                if let Some((_, state, last)) = finished {
                    done(state, last)?;
                    report.streams += 1;
                }
                let stream = StreamId::parse(&stored.stream_id).ok_or_else(|| {
                    corrupt(
                        &stored.stream_id,
                        stored.version,
                        "unknown stream kind".to_owned(),
                    )
                })?;
                Aggregate::empty(stream)
            }
        };
        let log::StreamEvent {
            position,
            stream_id,
            version,
            event_type,
            schema_version,
            data,
            recorded_at,
        } = stored;
        let event = Event::from_stored_value(&event_type, schema_version, data)
            .map_err(|error| corrupt(&stream_id, version, error.to_string()))?;
        let state = state
            .apply(&event, recorded_at)
            .map_err(|error| corrupt(&stream_id, version, error.message))?;
        current = Some((stream_id, state, position));
        report.events += 1;
        report.last_position = report.last_position.max(position);
        if report.events % 10_000 == 0 {
            progress(report.events);
        }
        Ok(())
    })?;
    if let Some((_, state, last)) = current {
        done(state, last)?;
        report.streams += 1;
    }
    Ok(report)
}

/// Reads a stored event as the current domain event (upcasting old versions).
pub fn decode(stored: &RecordedEvent) -> Result<Event, EngineError> {
    Event::from_stored(&stored.event_type, stored.schema_version, &stored.data)
        .map_err(|error| corrupt(&stored.stream_id, stored.version, error.to_string()))
}

/// The events a command already wrote, if its first event id is in the log; with `legacy`, ids
/// made by the earlier rule are looked for too.
fn stored_command_events(
    conn: &Connection,
    command_id: Uuid,
    legacy: bool,
) -> Result<Option<Vec<RecordedEvent>>, EngineError> {
    let rules: &[fn(Uuid, usize) -> Uuid] = if legacy {
        &[event_id_for, legacy_event_id_for]
    } else {
        &[event_id_for]
    };
    for rule in rules {
        let first = log::find_by_event_ids(conn, &[rule(command_id, 0)])?;
        if first.is_empty() {
            continue;
        }
        let mut events = first;
        for index in 1.. {
            let next = log::find_by_event_ids(conn, &[rule(command_id, index)])?;
            if next.is_empty() {
                break;
            }
            events.extend(next);
        }
        return Ok(Some(events));
    }
    Ok(None)
}

fn group_appends(
    decided: &[(StreamId, Event)],
    versions: &BTreeMap<StreamId, u64>,
    ctx: &Context,
    command_id: Uuid,
) -> Vec<StreamAppend> {
    let metadata = event_metadata(ctx, command_id);
    let mut appends: Vec<StreamAppend> = Vec::new();
    for (index, (stream, event)) in decided.iter().enumerate() {
        let stream_id = stream.to_string();
        let new_event = NewEvent {
            event_id: event_id_for(command_id, index),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            data: event.to_data(),
            metadata: metadata.clone(),
        };
        match appends
            .iter_mut()
            .find(|append| append.stream_id == stream_id)
        {
            Some(append) => append.events.push(new_event),
            None => {
                let version = versions.get(stream).copied().unwrap_or(0);
                let expected = if version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(version)
                };
                appends.push(StreamAppend {
                    stream_id,
                    expected,
                    events: vec![new_event],
                });
            }
        }
    }
    appends
}

/// Named metadata fields, because audits query them: who, where, which request.
fn event_metadata(ctx: &Context, command_id: Uuid) -> serde_json::Value {
    json!({
        "actor": {
            "tenant_id": ctx.actor.tenant_id,
            "user_id": ctx.actor.user_id,
            "roles": ctx.actor.roles,
            "kind": ctx.actor.kind,
        },
        "region": ctx.region,
        "request_id": ctx.request_id,
        "correlation_id": ctx.request_id,
        "causation_id": command_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use imgshare_core::{Actor, ImageActivated, ImageCommand, ImageOrigin, NewImage};

    fn at(minutes: i64) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn ctx(tenant: &str, minutes: i64) -> Context {
        Context::new(
            Actor::tenant(tenant, "user", &["cloudImages:admin"]),
            Region::parse("DFW").unwrap(),
            at(minutes),
        )
    }

    #[test]
    fn event_ids_follow_the_order_of_time_ordered_command_ids() {
        let commands: Vec<Uuid> = (0..64).map(|_| Uuid::now_v7()).collect();
        let ids: Vec<Uuid> = commands
            .iter()
            .flat_map(|command| (0..3).map(|index| event_id_for(*command, index)))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        // Ordered by their first 8 bytes, the command's (v7: time, then a counter); the rest is
        // a hash, so ids of commands with the same first 8 bytes may come in either order.
        for pair in ids.windows(2) {
            assert!(
                pair[0].as_bytes()[..8] <= pair[1].as_bytes()[..8],
                "{pair:?}"
            );
        }
        for (command, events) in commands.iter().zip(ids.chunks(3)) {
            assert!(events
                .iter()
                .all(|id| id.as_bytes()[..6] == command.as_bytes()[..6]));
            assert_eq!(
                event_id_for(*command, 1),
                events[1],
                "a retry derives the same id"
            );
        }
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "every event id is distinct");
        // Random command ids still give distinct ids, and the prefix rule holds for them too.
        let random = Uuid::new_v4();
        assert_ne!(event_id_for(random, 0), event_id_for(random, 1));
        assert_eq!(
            event_id_for(random, 0).as_bytes()[..6],
            random.as_bytes()[..6]
        );
        // Commands that share their first 8 bytes still differ.
        let mut twin = *random.as_bytes();
        twin[15] ^= 1;
        assert_ne!(
            event_id_for(random, 0),
            event_id_for(Uuid::from_bytes(twin), 0)
        );
        assert_eq!(event_id_for(random, 0).get_version_num(), 8);
    }

    #[test]
    fn a_command_logged_under_the_earlier_event_id_rule_is_still_recognised_on_retry() {
        let dir = tempfile::tempdir().unwrap();
        let command_id = Uuid::new_v4();
        let image_id = Uuid::new_v4();
        let register = Command::Image {
            image_id,
            command: ImageCommand::Register {
                origin: ImageOrigin::Snapshot {
                    server_id: "server-1".into(),
                },
                image: NewImage {
                    name: Some("web".into()),
                    ..NewImage::default()
                },
            },
        };
        // The event the command makes, as the earlier rule stored it: same row, v5 id.
        let scratch = Engine::in_memory().unwrap();
        let made = scratch
            .execute_idempotent(&ctx("111111", 0), command_id, register.clone())
            .unwrap()
            .events;
        let path = dir.path().join("old.db");
        {
            let conn = db::open_file(&path, &DbOptions::default()).unwrap();
            let appends: Vec<StreamAppend> = made
                .iter()
                .enumerate()
                .map(|(index, event)| StreamAppend {
                    stream_id: event.stream_id.clone(),
                    expected: ExpectedVersion::NoStream,
                    events: vec![NewEvent {
                        event_id: legacy_event_id_for(command_id, index),
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        data: event.data.clone(),
                        metadata: event.metadata.clone(),
                    }],
                })
                .collect();
            log::append(&conn, &appends, at(0)).unwrap();
        }
        let engine = Engine::open(&path, EngineOptions::default()).unwrap();
        assert!(engine.legacy_event_ids);
        let head = log_head(&engine);
        let retried = engine
            .execute_idempotent(&ctx("111111", 1), command_id, register)
            .unwrap();
        assert!(retried.already_applied, "{retried:?}");
        assert_eq!(
            retried.events[0].event_id,
            legacy_event_id_for(command_id, 0)
        );
        assert_eq!(log_head(&engine), head, "nothing appended");
        // Once the engine has written, its last event has a new-rule id: the next open needs
        // no second lookup.
        engine
            .execute(
                &ctx("111111", 2),
                Command::Image {
                    image_id,
                    command: ImageCommand::AddMember {
                        member_id: "222222".into(),
                    },
                },
            )
            .unwrap();
        drop(engine);
        let reopened = Engine::open(&path, EngineOptions::default()).unwrap();
        assert!(!reopened.legacy_event_ids);
    }

    fn snapshot(engine: &Engine, tenant: &str, name: &str, minutes: i64) -> Uuid {
        let image_id = Uuid::new_v4();
        let image = NewImage {
            name: Some(name.into()),
            container_format: Some("ovf".into()),
            disk_format: Some("vhd".into()),
            tags: vec!["web".into()],
            data: Some(ImageActivated {
                size: 10,
                checksum: "0123456789abcdef0123456789abcdef".into(),
                virtual_size: None,
                os_hash_algo: None,
                os_hash_value: None,
            }),
            ..NewImage::default()
        };
        let origin = ImageOrigin::Snapshot {
            server_id: "srv".into(),
        };
        engine
            .execute(
                &ctx(tenant, minutes),
                Command::Image {
                    image_id,
                    command: ImageCommand::Register { origin, image },
                },
            )
            .unwrap();
        image_id
    }

    fn member(engine: &Engine, caller: &str, image_id: Uuid, command: ImageCommand, minutes: i64) {
        engine
            .execute(&ctx(caller, minutes), Command::Image { image_id, command })
            .unwrap();
    }

    fn dump(engine: &Engine) -> Vec<String> {
        engine.read(|conn| Ok(tables::dump(conn)?)).unwrap()
    }

    /// Several servers may share one database file: each opens its own engine, and writes from
    /// both, interleaved from threads on the same image, are all kept.
    #[test]
    fn two_engines_on_one_file_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let first = Engine::open(&path, EngineOptions::default()).unwrap();
        let second = Engine::open(&path, EngineOptions::default()).unwrap();
        let image_id = snapshot(&first, "111", "shared", 1);
        std::thread::scope(|scope| {
            for (engine, prefix) in [(&first, "a"), (&second, "b")] {
                scope.spawn(move || {
                    for index in 0..25 {
                        let member_id = format!("{prefix}{index}");
                        member(
                            engine,
                            "111",
                            image_id,
                            ImageCommand::AddMember { member_id },
                            2,
                        );
                    }
                });
            }
        });
        for engine in [&first, &second] {
            let image = engine.image_state(image_id).unwrap().unwrap();
            assert_eq!(image.members.len(), 50);
            let page = engine
                .list_images(&ctx("a7", 3), "member_status=pending")
                .unwrap();
            assert_eq!(page["images"].as_array().unwrap().len(), 1);
        }
        let live = dump(&first);
        second.rebuild(|_| {}).unwrap();
        assert_eq!(dump(&first), live);
    }

    #[test]
    fn consumer_lists_only_accepted_shares_and_rebuild_gives_the_same_rows() {
        let engine = Engine::in_memory().unwrap();
        let shared = snapshot(&engine, "111", "shared", 1);
        let private = snapshot(&engine, "111", "private", 2);
        let own = snapshot(&engine, "222", "own", 3);
        member(
            &engine,
            "111",
            shared,
            ImageCommand::AddMember {
                member_id: "222".into(),
            },
            4,
        );
        member(
            &engine,
            "111",
            private,
            ImageCommand::AddMember {
                member_id: "333".into(),
            },
            5,
        );

        let names = |page: serde_json::Value| -> Vec<String> {
            page["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names(engine.list_images(&ctx("222", 6), "").unwrap()),
            ["own"]
        );
        assert_eq!(
            names(
                engine
                    .list_images(&ctx("222", 6), "member_status=pending")
                    .unwrap()
            ),
            ["own", "shared"]
        );
        member(
            &engine,
            "222",
            shared,
            ImageCommand::SetMemberStatus {
                member_id: "222".into(),
                status: "accepted".into(),
            },
            7,
        );
        assert_eq!(
            names(engine.list_images(&ctx("222", 8), "").unwrap()),
            ["own", "shared"]
        );
        assert_eq!(
            names(engine.list_images(&ctx("111", 8), "sort=name:asc").unwrap()),
            ["private", "shared"]
        );
        let first_page = engine.list_images(&ctx("222", 8), "limit=1").unwrap();
        assert_eq!(
            first_page["next"],
            format!("/v2/images?limit=1&marker={own}")
        );
        assert_eq!(
            names(
                engine
                    .list_images(&ctx("222", 8), &format!("limit=1&marker={own}"))
                    .unwrap()
            ),
            ["shared"]
        );
        let invisible_marker = engine
            .list_images(&ctx("222", 8), &format!("marker={private}"))
            .unwrap_err();
        assert_eq!(invisible_marker.kind(), ErrorKind::Invalid);

        let before = dump(&engine);
        let report = engine.rebuild(|_| {}).unwrap();
        assert_eq!(report.streams, 3);
        assert_eq!(dump(&engine), before);
    }

    fn add(image_id: Uuid, member_id: &str, caller: &str) -> BatchItem {
        BatchItem {
            ctx: ctx(caller, 10),
            command_id: Uuid::new_v4(),
            command: Command::Image {
                image_id,
                command: ImageCommand::AddMember {
                    member_id: member_id.into(),
                },
            },
        }
    }

    fn log_head(engine: &Engine) -> i64 {
        engine
            .read(|conn| Ok(log::head(conn)?))
            .unwrap()
            .map_or(0, |(position, _)| position)
    }

    /// The image has exactly `members`, and its read models agree with a rebuild from the log.
    fn assert_members_and_read_models(engine: &Engine, image_id: Uuid, members: &[&str]) {
        let image = engine.image_state(image_id).unwrap().unwrap();
        let found: Vec<&str> = image.members.keys().map(String::as_str).collect();
        assert_eq!(found, members);
        let before = dump(engine);
        engine.rebuild(|_| {}).unwrap();
        assert_eq!(dump(engine), before);
    }

    #[test]
    fn a_batch_is_one_transaction_with_an_outcome_per_command() {
        let engine = Engine::in_memory().unwrap();
        let image_id = snapshot(&engine, "111111", "web", 0);
        let head = log_head(&engine);
        let results = engine
            .execute_batch(vec![
                add(image_id, "222222", "111111"),
                // Refused (a stranger): appends nothing, and does not stop the others.
                add(image_id, "444444", "333333"),
                // Sees the first command's member: a duplicate is refused.
                add(image_id, "222222", "111111"),
                add(image_id, "555555", "111111"),
            ])
            .unwrap();
        let statuses: Vec<_> = results
            .iter()
            .map(|result| result.as_ref().map_err(EngineError::kind).err())
            .collect();
        assert_eq!(
            statuses,
            vec![
                None,
                Some(ErrorKind::NotFound),
                Some(ErrorKind::Conflict),
                None
            ]
        );
        assert_eq!(log_head(&engine), head + 2);
        assert_members_and_read_models(&engine, image_id, &["222222", "555555"]);
    }

    #[test]
    fn a_command_that_fails_after_writing_is_undone_alone_and_the_rest_commit() {
        let engine = Engine::in_memory().unwrap();
        let image_id = snapshot(&engine, "111111", "web", 0);
        // A read-model write that fails after the command's event is appended: the group, run
        // without savepoints first, must start over with them and undo only this command.
        engine
            .writer
            .lock()
            .unwrap()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse_member BEFORE INSERT ON proj_members
                 WHEN NEW.member_id = '999999'
                 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;",
            )
            .unwrap();
        let head = log_head(&engine);
        let results = engine
            .execute_batch(vec![
                add(image_id, "222222", "111111"),
                add(image_id, "999999", "111111"),
                add(image_id, "555555", "111111"),
            ])
            .unwrap();
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert_eq!(
            results[1].as_ref().map_err(EngineError::kind).err(),
            Some(ErrorKind::Internal)
        );
        assert_eq!(
            log_head(&engine),
            head + 2,
            "the failed command's event is gone"
        );
        assert_members_and_read_models(&engine, image_id, &["222222", "555555"]);
    }

    #[test]
    fn concurrent_callers_each_get_their_own_outcome_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let engine =
            Arc::new(Engine::open(&dir.path().join("group.db"), EngineOptions::default()).unwrap());
        let image_id = snapshot(&engine, "111111", "web", 0);
        let threads: Vec<_> = (0..6)
            .map(|thread| {
                let engine = Arc::clone(&engine);
                std::thread::spawn(move || {
                    (0..15)
                        .map(|index| {
                            let item = add(image_id, &format!("m{thread}-{index}"), "111111");
                            engine
                                .execute_idempotent(&item.ctx, item.command_id, item.command)
                                .map(|outcome| outcome.events.len())
                                .map_err(|error| error.to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in threads {
            for result in handle.join().unwrap() {
                assert_eq!(result, Ok(1));
            }
        }
        let image = engine.image_state(image_id).unwrap().unwrap();
        assert_eq!(image.members.len(), 90);
        let verified = engine.read(|conn| Ok(log::verify_chain(conn)?)).unwrap();
        assert_eq!(
            (verified.events_checked, verified.first_mismatch),
            (92, None)
        );
    }

    #[test]
    fn a_group_that_cannot_get_the_lock_answers_busy_to_every_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let options = EngineOptions {
            db: DbOptions {
                busy_timeout: std::time::Duration::from_millis(50),
                ..DbOptions::default()
            },
            ..EngineOptions::default()
        };
        let engine = Engine::open(&path, options).unwrap();
        let image_id = snapshot(&engine, "111111", "web", 0);
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let results = engine
            .execute_batch(vec![
                add(image_id, "222222", "111111"),
                add(image_id, "333333", "111111"),
                add(image_id, "444444", "111111"),
            ])
            .unwrap();
        for result in &results {
            assert!(
                matches!(result, Err(EngineError::Store(StoreError::Busy))),
                "{result:?}"
            );
        }
        other.execute_batch("ROLLBACK").unwrap();
        // Nothing was written, and the same commands go through once the lock is free.
        assert_eq!(log_head(&engine), 2);
        let retried = engine
            .execute_batch(vec![add(image_id, "222222", "111111")])
            .unwrap();
        assert!(retried[0].is_ok(), "{retried:?}");
    }
}
