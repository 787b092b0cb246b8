//! The append-only event log: appending with optimistic concurrency and
//! idempotent retries, reading, and the tamper-evident hash chain.
//!
//! Every function runs on any [`Sql`] connection (SQLite's, PostgreSQL's) and its SQL is the
//! subset both accept. A `rusqlite::Transaction` is passed as `&*tx`, its connection; the caller
//! decides what commits together.

use crate::error::SqlResult as _;
use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use imgshare_sql::{params, Flow, FromColumn, Row, RowExt as _, Sql};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::error::ExpectedVersion;
use crate::error::StoreError;
pub use chain::{event_hash, verify_chain, ChainReport, RowForHash, GENESIS_HASH};
pub(crate) use head::last_event_id;
pub use head::{head, read_head, Head};

/// An event to append. Its `event_id` is the idempotency key of the append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Unique id; appending an already stored id is treated as a retry.
    pub event_id: Uuid,
    /// Name of the event, e.g. `ImageUploaded`.
    pub event_type: String,
    /// Version of the `data` layout for this `event_type`, for upcasting.
    pub schema_version: u32,
    /// The event's payload.
    pub data: serde_json::Value,
    /// Correlation, causation, actor and similar context.
    pub metadata: serde_json::Value,
}

/// Events to append to one stream, guarded by an expected version.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream (aggregate) the events belong to.
    pub stream_id: String,
    /// Checked against the stream's version before anything is written.
    pub expected: ExpectedVersion,
    /// Events in the order they get versions; may be empty to only check
    /// `expected`.
    pub events: Vec<NewEvent>,
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Global position in the log, in commit order.
    pub position: i64,
    /// The id given at append time.
    pub event_id: Uuid,
    /// The stream the event belongs to.
    pub stream_id: String,
    /// Version within the stream, starting at 1 without gaps.
    pub version: u64,
    /// Name of the event.
    pub event_type: String,
    /// Version of the `data` layout.
    pub schema_version: u32,
    /// The event's payload.
    pub data: serde_json::Value,
    /// The event's context.
    pub metadata: serde_json::Value,
    /// When the event was stored, at microsecond precision; never decreases
    /// along `position`.
    pub recorded_at: DateTime<Utc>,
    /// `hash` of the event at the previous position ([`GENESIS_HASH`] first).
    pub prev_hash: String,
    /// See [`event_hash`].
    pub hash: String,
}

/// Outcome of a successful [`append`].
#[derive(Debug, Clone, PartialEq)]
pub enum AppendResult {
    /// The events were written now, in position order.
    Appended(Vec<RecordedEvent>),
    /// Every event id was already stored: the call was a retry and nothing was
    /// written. Holds the stored events in position order.
    AlreadyStored(Vec<RecordedEvent>),
}

impl AppendResult {
    /// The appended or previously stored events, whichever this is.
    pub fn events(&self) -> &[RecordedEvent] {
        match self {
            AppendResult::Appended(events) | AppendResult::AlreadyStored(events) => events,
        }
    }

    /// Like [`AppendResult::events`], by value.
    pub fn into_events(self) -> Vec<RecordedEvent> {
        match self {
            AppendResult::Appended(events) | AppendResult::AlreadyStored(events) => events,
        }
    }
}

/// The `recorded_at` column's text for a time: RFC 3339 UTC with exactly six fractional digits.
/// Fixed-width, so that text order of the column is time order.
pub fn format_recorded_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// What the caller of [`append`] has already established in its own transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked<'a> {
    /// Nothing: [`append`] looks for a retry, reads the head and each stream's version, and makes
    /// the call atomic itself.
    Nothing,
    /// The caller holds the write lock in an open transaction, found the event ids absent, read
    /// each stream's version (given as its `expected`, which is then trusted; the
    /// `UNIQUE (stream_id, version)` constraint still stands behind it) and the log's head
    /// (`None`: the log is empty). Only the writes are left; the caller's transaction undoes a
    /// partial write (the engine, which reads all of this anyway to decide).
    Head(Option<&'a Head>),
}

/// Appends events to one or more streams: the log's one append contract.
///
/// With [`Checked::Nothing`]:
/// - If every event id of the call is already stored, nothing is written and
///   the stored events are returned as [`AppendResult::AlreadyStored`]; if only
///   some are, the call fails with [`StoreError::PartialRetry`].
/// - Each stream's version is read from the log and checked against its
///   `expected` ([`StoreError::Conflict`] otherwise); the events then get the
///   next versions. A stream named twice in one call sees its first part.
/// - The call is atomic on its own: inside the caller's transaction it runs in a
///   savepoint, which it rolls back on error so the transaction stays usable; on
///   a connection in autocommit mode it opens its own write transaction
///   ([`Sql::begin_write`]: SQLite's `BEGIN IMMEDIATE`). Callers that read
///   before appending should open theirs the same way, or a concurrent writer
///   turns their append into [`StoreError::Busy`].
///
/// With [`Checked::Head`] those lookups are the caller's (see there) and the events are written
/// after the given head.
///
/// Either way, all events of the call share one `recorded_at` ([`effective_time`]): truncated to
/// microseconds and raised to the last stored event's if the given clock is behind it (clock
/// step, another host's clock), so that the time column never decreases along the position and a
/// time bound maps to a position bound.
pub fn append<C: Sql + ?Sized>(
    conn: &C,
    appends: &[StreamAppend],
    recorded_at: DateTime<Utc>,
    checked: Checked<'_>,
) -> Result<AppendResult, StoreError> {
    let ids = check_append(appends)?;
    if let Checked::Head(head) = checked {
        return write_events(conn, appends, head, recorded_at, VersionCheck::Trusted)
            .map(AppendResult::Appended);
    }
    let scope = WriteScope::begin(conn)?;
    match append_in_scope(conn, appends, &ids, recorded_at) {
        Ok(result) => {
            scope.commit(conn)?;
            Ok(result)
        }
        Err(err) => {
            scope.rollback(conn);
            Err(err)
        }
    }
}

fn check_append(appends: &[StreamAppend]) -> Result<Vec<Uuid>, StoreError> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for stream in appends {
        if stream.stream_id.is_empty() {
            return Err(StoreError::InvalidAppend("empty stream id".to_owned()));
        }
        for event in &stream.events {
            if !seen.insert(event.event_id) {
                return Err(StoreError::InvalidAppend(format!(
                    "event id {} appears twice",
                    event.event_id
                )));
            }
            ids.push(event.event_id);
        }
    }
    Ok(ids)
}

const SAVEPOINT: &str = "imgshare_append";

/// Makes one [`append`] atomic whether or not the caller opened a transaction.
enum WriteScope {
    OwnTransaction,
    Savepoint,
}

impl WriteScope {
    fn begin<C: Sql + ?Sized>(conn: &C) -> Result<Self, StoreError> {
        if conn.in_transaction() {
            conn.savepoint(SAVEPOINT).sql()?;
            Ok(WriteScope::Savepoint)
        } else {
            // The write lock is taken before the version checks, so a concurrent
            // writer makes us wait (busy_timeout) instead of failing at the first
            // insert with a stale snapshot.
            conn.begin_write().sql()?;
            Ok(WriteScope::OwnTransaction)
        }
    }

    fn commit<C: Sql + ?Sized>(self, conn: &C) -> Result<(), StoreError> {
        let done = match self {
            WriteScope::OwnTransaction => conn.commit(),
            WriteScope::Savepoint => conn.release(SAVEPOINT),
        };
        if let Err(err) = done {
            self.rollback(conn);
            return Err(err).sql();
        }
        Ok(())
    }

    fn rollback<C: Sql + ?Sized>(self, conn: &C) {
        // The append's own error is what the caller needs. This can only fail
        // if the database already rolled the whole transaction back (e.g. disk
        // full), in which case there is nothing left to undo.
        let _ = match self {
            WriteScope::OwnTransaction => conn.rollback(),
            WriteScope::Savepoint => conn.rollback_to(SAVEPOINT),
        };
    }
}

fn append_in_scope<C: Sql + ?Sized>(
    conn: &C,
    appends: &[StreamAppend],
    ids: &[Uuid],
    recorded_at: DateTime<Utc>,
) -> Result<AppendResult, StoreError> {
    let stored = find_by_event_ids(conn, ids)?;
    if !ids.is_empty() && stored.len() == ids.len() {
        return Ok(AppendResult::AlreadyStored(stored));
    }
    let stored_ids: HashSet<Uuid> = stored.iter().map(|e| e.event_id).collect();
    if let Some(&event_id) = ids.iter().find(|id| stored_ids.contains(id)) {
        return Err(StoreError::PartialRetry { event_id });
    }

    let head = read_head(conn)?;
    write_events(
        conn,
        appends,
        head.as_ref(),
        recorded_at,
        VersionCheck::AgainstLog,
    )
    .map(AppendResult::Appended)
}

/// How the versions of an append are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionCheck {
    /// Each stream's version is read from the log and checked against the expectation.
    AgainstLog,
    /// The caller read the versions in this same transaction; they are trusted (the
    /// `UNIQUE (stream_id, version)` constraint still stands behind them).
    Trusted,
}

fn write_events<C: Sql + ?Sized>(
    conn: &C,
    appends: &[StreamAppend],
    head: Option<&Head>,
    recorded_at: DateTime<Utc>,
    check: VersionCheck,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let recorded_at = effective_time(head, recorded_at);
    let (mut position, mut prev_hash) = match head {
        Some(Head { position, hash, .. }) => (*position, hash.clone()),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let recorded_at_text = format_recorded_at(recorded_at);

    let mut appended = Vec::new();
    for stream in appends {
        let current = match (check, stream.expected) {
            (VersionCheck::Trusted, ExpectedVersion::NoStream) => None,
            (VersionCheck::Trusted, ExpectedVersion::Exact(version)) => Some(version),
            _ => stream_version(conn, &stream.stream_id)?,
        };
        if !stream.expected.accepts(current) {
            return Err(StoreError::Conflict {
                stream_id: stream.stream_id.clone(),
                expected: stream.expected,
                actual: current,
            });
        }
        let mut version = current.unwrap_or(0);
        for event in &stream.events {
            version = version
                .checked_add(1)
                .ok_or_else(|| overflow("version", &stream.stream_id))?;
            // The column is a 64-bit signed integer on every backend.
            let version_column =
                i64::try_from(version).map_err(|_| overflow("version", &stream.stream_id))?;
            position = position
                .checked_add(1)
                .ok_or_else(|| overflow("position", &stream.stream_id))?;
            let event_id = event.event_id.to_string();
            let data = to_json_text(&event.data, "data", event.event_id)?;
            let metadata = to_json_text(&event.metadata, "metadata", event.event_id)?;
            let hash = event_hash(
                &prev_hash,
                &RowForHash {
                    position,
                    event_id: &event_id,
                    stream_id: &stream.stream_id,
                    version,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    data: &data,
                    metadata: &metadata,
                    recorded_at: &recorded_at_text,
                },
            );
            conn.execute(
                INSERT_EVENT,
                params![
                    position,
                    &event_id,
                    &stream.stream_id,
                    version_column,
                    &event.event_type,
                    event.schema_version,
                    &data,
                    &metadata,
                    &recorded_at_text,
                    &prev_hash,
                    &hash,
                ],
            )
            .sql()?;
            appended.push(RecordedEvent {
                position,
                event_id: event.event_id,
                stream_id: stream.stream_id.clone(),
                version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                data: event.data.clone(),
                metadata: event.metadata.clone(),
                recorded_at,
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
            });
        }
    }
    Ok(appended)
}

fn overflow(what: &str, stream_id: &str) -> StoreError {
    StoreError::InvalidAppend(format!("{what} overflow appending to stream {stream_id:?}"))
}

fn to_json_text(value: &serde_json::Value, field: &str, id: Uuid) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::InvalidAppend(format!("{field} of event {id}: {e}")))
}

/// The `recorded_at` the next append will use for a clock reading of `now`: `now` truncated to
/// microseconds, or the last event's time if the clock is behind it. Deciding with this time
/// keeps times computed in events (task expiry) consistent with the recorded time.
pub fn effective_time(head: Option<&Head>, now: DateTime<Utc>) -> DateTime<Utc> {
    let now = now.trunc_subsecs(6);
    head.map_or(now, |head| now.max(head.at))
}

/// The version of the stream's last event, `None` if it has no events.
pub fn stream_version<C: Sql + ?Sized>(
    conn: &C,
    stream_id: &str,
) -> Result<Option<u64>, StoreError> {
    // Same answer as MAX(version), but also yields the position for Corrupt.
    conn.query_first(
        "SELECT position, version FROM events WHERE stream_id = ?1 \
         ORDER BY version DESC LIMIT 1",
        params![stream_id],
        |row| {
            let position: i64 = row.get(0).sql()?;
            let version: i64 = column(row, 1, position, "version")?;
            to_u64(version, position, "version")
        },
    )
    .sql()?
}

/// The one statement that stores an event row ([`append`]'s writes, [`RawRow::insert_into`]).
const INSERT_EVENT: &str = "INSERT INTO events (position, event_id, stream_id, version, \
     event_type, schema_version, data, metadata, recorded_at, prev_hash, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT position, event_id, stream_id, version, event_type, schema_version, \
             data, metadata, recorded_at, prev_hash, hash FROM events ",
            $tail
        )
    };
}

pub(crate) use select_events;

/// All events of a stream, by version.
pub fn read_stream<C: Sql + ?Sized>(
    conn: &C,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    read_stream_until(conn, stream_id, i64::MAX)
}

/// The events of a stream at positions up to `max_position` (inclusive), by
/// version: the stream as it was when the log's head was `max_position`.
pub fn read_stream_until<C: Sql + ?Sized>(
    conn: &C,
    stream_id: &str,
    max_position: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    conn.query_all(
        select_events!("WHERE stream_id = ?1 AND position <= ?2 ORDER BY version"),
        params![stream_id, max_position],
        |row| RawRow::from_row(row)?.into_event(),
    )
    .sql()?
}

/// Calls `f` with each event at a position in
/// `(from_position_exclusive, to_position_inclusive]` (unbounded above if
/// `None`), in position order, reading rows as they come ([`Sql::scan_each`]: on
/// PostgreSQL through a cursor, a batch at a time) so that a replay of the whole
/// log does not hold it in memory. Stops at the first error of `f`.
pub fn for_each_event<C, E, F>(
    conn: &C,
    from_position_exclusive: i64,
    to_position_inclusive: Option<i64>,
    mut f: F,
) -> Result<(), E>
where
    C: Sql + ?Sized,
    E: From<StoreError>,
    F: FnMut(RecordedEvent) -> Result<(), E>,
{
    conn.scan_each(
        select_events!("WHERE position > ?1 AND position <= ?2 ORDER BY position"),
        params![
            from_position_exclusive,
            to_position_inclusive.unwrap_or(i64::MAX)
        ],
        |row| {
            f(RawRow::from_row(row)?.into_event()?)?;
            Ok(Flow::Continue)
        },
    )
    .sql()?
}

/// An event as a replay needs it: no metadata, no hashes, `data` parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// Global position.
    pub position: i64,
    /// The stream.
    pub stream_id: String,
    /// Version within the stream (1-based).
    pub version: u64,
    /// The stored type.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// The stored fields.
    pub data: serde_json::Value,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Calls `f` with every event up to `to_position_inclusive`, stream by stream and by version
/// within a stream, reading only what a fold needs (replays and rebuilds).
pub fn for_each_stream_event<C, E, F>(
    conn: &C,
    to_position_inclusive: Option<i64>,
    mut f: F,
) -> Result<(), E>
where
    C: Sql + ?Sized,
    E: From<StoreError>,
    F: FnMut(StreamEvent) -> Result<(), E>,
{
    conn.scan_each(
        "SELECT position, stream_id, version, event_type, schema_version, data, recorded_at \
         FROM events WHERE position <= ?1 ORDER BY stream_id, version",
        params![to_position_inclusive.unwrap_or(i64::MAX)],
        |row| {
            let position: i64 = row.get(0).sql()?;
            let version: i64 = column(row, 2, position, "version")?;
            let schema_version: i64 = column(row, 4, position, "schema_version")?;
            let data: String = column(row, 5, position, "data")?;
            let recorded_at: String = column(row, 6, position, "recorded_at")?;
            f(StreamEvent {
                position,
                stream_id: column(row, 1, position, "stream_id")?,
                version: to_u64(version, position, "version")?,
                event_type: column(row, 3, position, "event_type")?,
                schema_version: u32::try_from(schema_version)
                    .map_err(|_| corrupt(position, "schema_version out of range"))?,
                data: serde_json::from_str(&data)
                    .map_err(|e| corrupt(position, format!("data: {e}")))?,
                recorded_at: parse_recorded_at(&recorded_at, position)?,
            })?;
            Ok(Flow::Continue)
        },
    )
    .sql()?
}

/// The stored events with these ids, in position order; ids that are not
/// stored are skipped.
pub fn find_by_event_ids<C: Sql + ?Sized>(
    conn: &C,
    ids: &[Uuid],
) -> Result<Vec<RecordedEvent>, StoreError> {
    // One cached lookup per id on the UNIQUE index rather than an IN list,
    // whose text (and so prepared statement) would vary with the id count.
    let mut events = Vec::new();
    for id in ids {
        let id = id.to_string();
        let found = conn
            .query_first(
                select_events!("WHERE event_id = ?1"),
                params![&id],
                |row| RawRow::from_row(row)?.into_event(),
            )
            .sql()??;
        events.extend(found);
    }
    events.sort_by_key(|e| e.position);
    events.dedup_by_key(|e| e.position);
    Ok(events)
}

/// A row with its columns as stored, before parsing: what the chain is computed over, and what a
/// copy of the log moves verbatim.
pub(crate) struct RawRow {
    pub(crate) position: i64,
    event_id: String,
    stream_id: String,
    version: i64,
    event_type: String,
    schema_version: i64,
    data: String,
    metadata: String,
    recorded_at: String,
    prev_hash: String,
    pub(crate) hash: String,
}

impl RawRow {
    /// Reads the columns of [`select_events!`].
    pub(crate) fn from_row(row: &dyn Row) -> Result<Self, StoreError> {
        // The primary key: the database guarantees an integer here.
        let position: i64 = row.get(0).sql()?;
        Ok(RawRow {
            position,
            event_id: column(row, 1, position, "event_id")?,
            stream_id: column(row, 2, position, "stream_id")?,
            version: column(row, 3, position, "version")?,
            event_type: column(row, 4, position, "event_type")?,
            schema_version: column(row, 5, position, "schema_version")?,
            data: column(row, 6, position, "data")?,
            metadata: column(row, 7, position, "metadata")?,
            recorded_at: column(row, 8, position, "recorded_at")?,
            prev_hash: column(row, 9, position, "prev_hash")?,
            hash: column(row, 10, position, "hash")?,
        })
    }

    /// Whether the row continues a chain whose last hash is `expected_prev`: it links to it, and
    /// its own hash is the hash of its content.
    pub(crate) fn links_to(&self, expected_prev: &str) -> Result<bool, StoreError> {
        Ok(self.prev_hash == expected_prev
            && event_hash(&self.prev_hash, &self.for_hash()?) == self.hash)
    }

    /// Stores the row as it is, hashes included (a copy of a log into an empty one).
    pub(crate) fn insert_into<C: Sql + ?Sized>(&self, conn: &C) -> Result<(), StoreError> {
        conn.execute(
            INSERT_EVENT,
            params![
                self.position,
                &self.event_id,
                &self.stream_id,
                self.version,
                &self.event_type,
                self.schema_version,
                &self.data,
                &self.metadata,
                &self.recorded_at,
                &self.prev_hash,
                &self.hash
            ],
        )
        .sql()?;
        Ok(())
    }

    fn for_hash(&self) -> Result<RowForHash<'_>, StoreError> {
        Ok(RowForHash {
            position: self.position,
            event_id: &self.event_id,
            stream_id: &self.stream_id,
            version: to_u64(self.version, self.position, "version")?,
            event_type: &self.event_type,
            schema_version: u32::try_from(self.schema_version)
                .map_err(|_| corrupt(self.position, "schema_version out of range"))?,
            data: &self.data,
            metadata: &self.metadata,
            recorded_at: &self.recorded_at,
        })
    }

    fn into_event(self) -> Result<RecordedEvent, StoreError> {
        let position = self.position;
        let parse_json = |text: &str, name: &str| {
            serde_json::from_str(text).map_err(|e| corrupt(position, format!("{name}: {e}")))
        };
        Ok(RecordedEvent {
            position,
            event_id: Uuid::parse_str(&self.event_id)
                .map_err(|e| corrupt(position, format!("event_id: {e}")))?,
            version: to_u64(self.version, position, "version")?,
            schema_version: u32::try_from(self.schema_version)
                .map_err(|_| corrupt(position, "schema_version out of range"))?,
            data: parse_json(&self.data, "data")?,
            metadata: parse_json(&self.metadata, "metadata")?,
            recorded_at: parse_recorded_at(&self.recorded_at, position)?,
            stream_id: self.stream_id,
            event_type: self.event_type,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Reads a column, reporting a NULL or wrongly typed value as corruption
/// rather than as a database error.
#[inline]
fn column<T: FromColumn>(
    row: &dyn Row,
    index: usize,
    position: i64,
    name: &str,
) -> Result<T, StoreError> {
    row.get(index)
        .map_err(|e| corrupt(position, format!("{name}: {e}")))
}

fn to_u64(value: i64, position: i64, name: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(position, format!("{name} {value} is negative")))
}

fn parse_recorded_at(text: &str, position: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| corrupt(position, format!("recorded_at {text:?}: {e}")))
}

fn corrupt(position: i64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: reason.into(),
    }
}

// After `select_events!`, which the chain check uses (macros are in scope from their definition on).
mod chain;
mod head;

#[cfg(test)]
mod tests;
