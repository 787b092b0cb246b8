//! A group's transaction: the commands `engine/queue.rs` gathered, or an `execute_batch`, run in
//! one transaction (`run_group`), without savepoints first and, if a command fails after
//! writing, again with one savepoint per command. Each command: fold its streams (from the state
//! cache when the version matches), decide, append, write the read-model rows.

use crate::error::SqlResult as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use imgshare_core::{decide, Aggregate, Command, Context, DomainError, Event, StreamId};
use imgshare_projection::tables;
use imgshare_sql::{Dialect, Sql};
use serde_json::json;
use uuid::Uuid;

use crate::db::StoreError;
use crate::log::{self, ExpectedVersion, NewEvent, RecordedEvent, StreamAppend};

use super::*;
use crate::fold::corrupt;
use crate::write_tx::WriteTx;

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

/// How a group keeps one command's failure from the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    /// One command: its failure is the transaction's.
    Alone,
    /// No savepoints; a command that fails after writing sends the group back to run with them.
    Optimistic,
    /// A savepoint per command, rolled back if it fails.
    Savepoints,
}

/// Why a command failed, by whether it had written anything in the transaction yet.
pub(super) enum CommandFailure {
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
pub(super) struct Decision {
    primary: StreamId,
    command_id: Uuid,
    events: Vec<(StreamId, Event)>,
    /// Each stream's state as the decision saw it, owned: the fold continues it in place.
    before: BTreeMap<StreamId, Aggregate>,
    /// The states as loaded, for the streams whose loaded state someone else still held (an
    /// earlier outcome, a reader), so `before` is a copy of it; the read-model diff compares
    /// against it. A state nobody else held was taken, not copied, and is not here.
    shared: BTreeMap<StreamId, Arc<Aggregate>>,
    versions: BTreeMap<StreamId, u64>,
}

/// Where a command's state for a stream came from, which decides where it goes back to if the
/// command is refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The cache: committed state, which may go back there.
    Cache,
    /// This group's earlier commands or a fold inside the transaction: possibly uncommitted, so
    /// it may go back only to the group's own states.
    Transaction,
}

/// Why a group committed nothing.
pub(super) enum GroupFailure {
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

/// The savepoint each command of a group runs in when one command's failure must not undo the
/// others' writes.
const SAVEPOINT: &str = "imgshare_command";

/// How many streams' states the engine keeps folded in memory.
pub(super) const CACHED_STREAMS: usize = 4096;

/// Folded aggregates keyed by stream, each with the stream version it reflects. An entry is used
/// only when the log's version of the stream still equals it, so another process writing the same
/// database never makes it serve stale state.
#[derive(Default)]
pub(super) struct StateCache {
    entries: HashMap<StreamId, (u64, Arc<Aggregate>)>,
}

/// States a group of commands has written so far, by stream, with their versions.
pub(super) type Written = HashMap<StreamId, (u64, Arc<Aggregate>)>;

impl StateCache {
    pub(super) fn get(&self, stream: StreamId, version: u64) -> Option<Arc<Aggregate>> {
        match self.entries.get(&stream) {
            Some((cached, state)) if *cached == version => Some(Arc::clone(state)),
            _ => None,
        }
    }

    /// Takes the entry out if it is at `version`, so that a writer that then holds the only
    /// reference can fold it in place instead of copying it.
    fn take(&mut self, stream: StreamId, version: u64) -> Option<Arc<Aggregate>> {
        match self.entries.get(&stream) {
            Some((cached, _)) if *cached == version => {
                self.entries.remove(&stream).map(|(_, state)| state)
            }
            _ => None,
        }
    }

    pub(super) fn put(&mut self, stream: StreamId, version: u64, state: Arc<Aggregate>) {
        if self.entries.len() >= CACHED_STREAMS && !self.entries.contains_key(&stream) {
            // Crude but bounded: a full cache starts over; hot streams come back on next use.
            self.entries.clear();
        }
        self.entries.insert(stream, (version, state));
    }
}

impl Engine {
    /// Executes `items` in order in one transaction (one commit, one sync): each command sees
    /// the ones before it, and each has its own outcome — a refused command appends nothing and
    /// does not stop the others. The outer error is for a batch that could not run at all.
    pub fn execute_batch(
        &self,
        items: Vec<BatchItem>,
    ) -> Result<Vec<Result<Outcome, EngineError>>, EngineError> {
        Ok(writing!(self, |writer| self.run_items(writer, items)))
    }

    pub(super) fn run_items<C: Sql + ?Sized>(
        &self,
        writer: &C,
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
    pub(super) fn run_alone<C: Sql + ?Sized>(
        &self,
        writer: &C,
        item: &BatchItem,
    ) -> Result<Outcome, EngineError> {
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
    pub(super) fn run_group<C: Sql + ?Sized>(
        &self,
        writer: &C,
        items: &[BatchItem],
        isolation: Isolation,
    ) -> Result<Vec<Result<Outcome, EngineError>>, GroupFailure> {
        // IMMEDIATE takes the write lock before reading, so the state the decision sees cannot
        // change before the append (a deferred transaction would fail to upgrade under load).
        let tx = WriteTx::begin(writer)?;
        let mut written: Written = HashMap::new();
        // The head is read once: each command continues from the last one's events.
        let mut head = log::read_head(&*tx)?;
        let mut results = Vec::with_capacity(items.len());
        let mut last_position = None;
        let savepoints = isolation == Isolation::Savepoints;
        for item in items {
            if savepoints {
                tx.savepoint(SAVEPOINT).sql()?;
            }
            let mut states = Vec::new();
            let executed = self.execute_in(&*tx, item, &mut written, head.as_ref(), &mut states);
            match settle_failure(&*tx, executed) {
                Ok(outcome) => {
                    if savepoints {
                        tx.release(SAVEPOINT).sql()?;
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
                Err(failure) if !tx.in_transaction() => return Err(failure.into_error().into()),
                Err(CommandFailure::Refused(error)) if isolation != Isolation::Alone => {
                    if savepoints {
                        tx.release(SAVEPOINT).sql()?;
                    }
                    results.push(Err(error));
                }
                Err(CommandFailure::AfterWriting(error)) if savepoints => {
                    tx.rollback_to(SAVEPOINT).sql()?;
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
            tables::set_checkpoint(&*tx, position)?;
        }
        tx.commit()?;
        if let Ok(mut cache) = self.cache.lock() {
            for (stream, (version, state)) in written {
                cache.put(stream, version, state);
            }
        }
        record_group(items, &results);
        Ok(results)
    }

    /// The state of `stream` for a write in `tx`: from this transaction's earlier commands, the
    /// cache, or a fold of the log, whichever is at the log's current version.
    pub(super) fn load_for_write<C: Sql + ?Sized>(
        &self,
        tx: &C,
        stream: StreamId,
        written: &Written,
    ) -> Result<(u64, Arc<Aggregate>), EngineError> {
        let version = log::stream_version(tx, &stream.to_string())?.unwrap_or(0);
        if version == 0 {
            return Ok((version, Arc::new(Aggregate::empty(stream))));
        }
        if let Some((cached, state)) = written.get(&stream) {
            if *cached == version {
                crate::metrics::cache_lookup(true);
                return Ok((version, Arc::clone(state)));
            }
        }
        if let Some(state) = self.cached(stream, version) {
            crate::metrics::cache_lookup(true);
            return Ok((version, state));
        }
        crate::metrics::cache_lookup(false);
        // Not cached here: the fold may see this transaction's uncommitted writes; the caller's
        // states reach the cache only after the commit.
        let loaded = load_stream(tx, stream)?;
        Ok((loaded.version, Arc::new(loaded.state)))
    }

    /// Like [`Self::load_for_write`], but takes the state out of the group's states or the
    /// cache, so that when nothing else holds it the command folds it without a copy. The
    /// caller gives it back (`give_back`) if the command is refused.
    fn take_for_write<C: Sql + ?Sized>(
        &self,
        tx: &C,
        stream: StreamId,
        written: &mut Written,
    ) -> Result<(u64, Arc<Aggregate>, Source), EngineError> {
        let version = log::stream_version(tx, &stream.to_string())?.unwrap_or(0);
        if version == 0 {
            return Ok((
                version,
                Arc::new(Aggregate::empty(stream)),
                Source::Transaction,
            ));
        }
        if let Some((cached, state)) = written.remove(&stream) {
            if cached == version {
                crate::metrics::cache_lookup(true);
                return Ok((version, state, Source::Transaction));
            }
        }
        let taken = self
            .cache
            .lock()
            .ok()
            .and_then(|mut cache| cache.take(stream, version));
        if let Some(state) = taken {
            crate::metrics::cache_lookup(true);
            return Ok((version, state, Source::Cache));
        }
        crate::metrics::cache_lookup(false);
        let loaded = load_stream(tx, stream)?;
        Ok((loaded.version, Arc::new(loaded.state), Source::Transaction))
    }

    /// Puts a refused command's states back where they were taken from (they are unchanged).
    fn give_back(
        &self,
        written: &mut Written,
        states: impl IntoIterator<Item = (StreamId, u64, Arc<Aggregate>, Source)>,
    ) {
        for (stream, version, state, source) in states {
            if version == 0 {
                continue;
            }
            match source {
                Source::Transaction => {
                    written.insert(stream, (version, state));
                }
                Source::Cache => {
                    if let Ok(mut cache) = self.cache.lock() {
                        cache.put(stream, version, state);
                    }
                }
            }
        }
    }

    pub(super) fn cached(&self, stream: StreamId, version: u64) -> Option<Arc<Aggregate>> {
        self.cache.lock().ok()?.get(stream, version)
    }

    /// Decides and appends one command inside `tx`; `states` receives each touched stream's new
    /// version and state.
    pub(super) fn execute_in<C: Sql + ?Sized>(
        &self,
        tx: &C,
        item: &BatchItem,
        written: &mut Written,
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
        // Each state is taken from where it was kept; one nobody else holds is folded in place
        // (copying an image's member map and freeing the old one was a sixth of a member
        // command), one still held elsewhere is copied and kept for the read-model diff.
        let mut taken = Vec::with_capacity(streams.len());
        for stream in &streams {
            let (version, state, source) = self.take_for_write(tx, *stream, written)?;
            taken.push((*stream, version, state, source));
        }
        let mut shared: BTreeMap<StreamId, Arc<Aggregate>> = BTreeMap::new();
        let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
        let mut before: BTreeMap<StreamId, Aggregate> = BTreeMap::new();
        let mut sources: BTreeMap<StreamId, Source> = BTreeMap::new();
        for (stream, version, state, source) in taken {
            versions.insert(stream, version);
            sources.insert(stream, source);
            let owned = match Arc::try_unwrap(state) {
                Ok(owned) => owned,
                Err(state) => {
                    let owned = Aggregate::clone(&state);
                    shared.insert(stream, state);
                    owned
                }
            };
            before.insert(stream, owned);
        }
        // Decide at the time the log will record, so that times the domain computes (a task's
        // expiry) agree with the recorded time even when this request's clock lags the log.
        let ctx = &Context {
            now: log::effective_time(head, ctx.now),
            ..ctx.clone()
        };
        let decided = match decide(&self.profile, &before, command, ctx) {
            Ok(decided) => decided,
            Err(error) => {
                let states = before.into_iter().map(|(stream, state)| {
                    let state = shared.remove(&stream).unwrap_or_else(|| Arc::new(state));
                    let version = versions.get(&stream).copied().unwrap_or(0);
                    let source = sources.get(&stream).copied().unwrap_or(Source::Transaction);
                    (stream, version, state, source)
                });
                self.give_back(written, states);
                return Err(error.into());
            }
        };
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
}

/// On PostgreSQL, a failed statement leaves the transaction unusable until a rollback: every
/// later statement fails, and a `COMMIT` rolls back without an error. So a command that failed
/// in the database before writing is handled as one that failed after writing: undone by its
/// savepoint (the group runs again with savepoints), so the others commit in the same group,
/// instead of each failing on the dead transaction and the group falling back to one
/// transaction per command. SQLite goes on after a failed statement; a refusal there stays one.
fn settle_failure<C: Sql + ?Sized>(
    tx: &C,
    executed: Result<Outcome, CommandFailure>,
) -> Result<Outcome, CommandFailure> {
    match executed {
        Err(CommandFailure::Refused(error))
            if tx.dialect() == Dialect::Postgres
                && matches!(error, EngineError::Store(_) | EngineError::Projection(_)) =>
        {
            Err(CommandFailure::AfterWriting(error))
        }
        other => other,
    }
}

/// Appends a decision's events, folds them into each touched stream and writes the read models
/// from the difference, all in `tx`; `states` receives each touched stream's new version and
/// state.
pub(super) fn write_decision<C: Sql + ?Sized>(
    tx: &C,
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
        // The ids were just found absent (a command's events are written all or none), the
        // versions and the head read in this transaction.
        log::append(tx, &appends, ctx.now, log::Checked::Head(head))?.into_events()
    };
    let members = member_changes(&decided);
    if members.is_none() {
        // The whole-state diff compares with the states as they were; those that were taken
        // rather than copied are copied now, before the fold changes them.
        for (stream, state) in &before {
            if !shared.contains_key(stream) && decided.iter().any(|(touched, _)| touched == stream)
            {
                shared.insert(*stream, Arc::new(state.clone()));
            }
        }
    }
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
        let touched = decided.iter().any(|(touched, _)| *touched == stream);
        let current = match (&members, &after_state) {
            // No event: the state is as loaded, and its rows too.
            _ if !touched => shared
                .remove(&stream)
                .unwrap_or_else(|| Arc::new(after_state)),
            (Some(members), Aggregate::Image(Some(image))) => {
                let named: Vec<&str> = members
                    .iter()
                    .filter(|(on, _)| *on == stream)
                    .map(|(_, member_id)| *member_id)
                    .collect();
                tables::write_member_rows(tx, image, &named)?;
                Arc::new(after_state)
            }
            // Member events fold only into an existing image (`apply` refuses them otherwise),
            // so there is nothing else a member-only command can leave.
            (Some(_), _) => Arc::new(after_state),
            (None, _) => {
                let previous = shared
                    .remove(&stream)
                    .unwrap_or_else(|| Arc::new(Aggregate::empty(stream)));
                if *previous == after_state {
                    previous
                } else {
                    tables::write_diff(tx, &previous, &after_state)?;
                    Arc::new(after_state)
                }
            }
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

/// The members a command's events name, by stream, when member events are all it decided. Each
/// such event changes one member of its image and nothing else (`imgshare_core`'s `apply`: not
/// the image's columns, tags, properties or `updated_at`), so the read models need only those
/// members' rows, not a comparison of the image's whole member map.
fn member_changes(decided: &[(StreamId, Event)]) -> Option<Vec<(StreamId, &str)>> {
    let mut members: Vec<(StreamId, &str)> = Vec::new();
    for (stream, event) in decided {
        let member_id = match event {
            Event::MemberAdded { member_id }
            | Event::MemberStatusChanged { member_id, .. }
            | Event::MemberRemoved { member_id } => member_id.as_str(),
            _ => return None,
        };
        if !members.contains(&(*stream, member_id)) {
            members.push((*stream, member_id));
        }
    }
    Some(members)
}

/// The events a command already wrote, if its first event id is in the log; with `legacy`, ids
/// made by the earlier rule are looked for too.
pub(super) fn stored_command_events<C: Sql + ?Sized>(
    conn: &C,
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

pub(super) fn group_appends(
    decided: &[(StreamId, Event)],
    versions: &BTreeMap<StreamId, u64>,
    ctx: &Context,
    command_id: Uuid,
) -> Vec<StreamAppend> {
    let mut metadata = Some(event_metadata(ctx, command_id));
    let mut appends: Vec<StreamAppend> = Vec::new();
    for (index, (stream, event)) in decided.iter().enumerate() {
        let stream_id = stream.to_string();
        // Every event of a command carries the same metadata: the last one takes it, the others
        // a copy (most commands decide one event, and a copy of this map is not cheap).
        let metadata = if index + 1 == decided.len() {
            metadata.take()
        } else {
            metadata.clone()
        };
        let new_event = NewEvent {
            event_id: event_id_for(command_id, index),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            data: event.to_data(),
            metadata: metadata.unwrap_or_default(),
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

/// Counts a committed group: its size, what it appended by kind, what was refused.
fn record_group(items: &[BatchItem], results: &[Result<Outcome, EngineError>]) {
    use crate::metrics::{
        COMMANDS_APPENDED, COMMANDS_REFUSED, EVENTS_APPENDED, GROUP_COMMIT_COMMANDS,
    };
    // Exact for any group size a process can queue.
    metrics::histogram!(GROUP_COMMIT_COMMANDS).record(items.len() as f64);
    for (item, result) in items.iter().zip(results) {
        match result {
            Ok(outcome) if !outcome.already_applied => {
                metrics::counter!(COMMANDS_APPENDED, "kind" => item.command.kind()).increment(1);
                let events = u64::try_from(outcome.events.len()).unwrap_or(u64::MAX);
                metrics::counter!(EVENTS_APPENDED).increment(events);
            }
            Ok(_) => {}
            Err(error) => {
                metrics::counter!(COMMANDS_REFUSED, "error_code" => error.code()).increment(1);
            }
        }
    }
}

/// Named metadata fields, because audits query them: who, where, which request. The global
/// request id is written only when there is one, so events without it are stored as before.
pub(super) fn event_metadata(ctx: &Context, command_id: Uuid) -> serde_json::Value {
    let mut metadata = json!({
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
    });
    if let (Some(global), Some(fields)) = (&ctx.global_request_id, metadata.as_object_mut()) {
        fields.insert("global_request_id".to_owned(), json!(global));
    }
    metadata
}
