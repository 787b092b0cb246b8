//! `verify`: the hash chain, then a replay of the log into a private scratch database whose
//! read-model tables are compared with the live ones row by row, in key order; the first
//! difference is reported. Never writes to the audited database.

use crate::error::SqlResult as _;
use imgshare_projection::tables;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::db::{self, StoreError};
use crate::error::EngineError;
use crate::log;

use super::*;

/// The first thing [`Engine::verify`](crate::Engine::verify) found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Difference {
    /// The event at `position` does not match its hash, or its `prev_hash` is not the previous
    /// event's hash: it was edited, or an event before it was removed or inserted.
    Chain {
        /// The first position whose hash check fails.
        position: i64,
    },
    /// The event at `position` cannot be read or folded.
    Replay {
        /// The event's position.
        position: i64,
        /// Why.
        reason: String,
    },
    /// A read-model row differs from the replay's.
    Row {
        /// The position of the last event of the stream that owns the row (the log's head for
        /// the checkpoint row); `None` if no stream owns it.
        position: Option<i64>,
        /// The table.
        table: String,
        /// The row's key.
        key: String,
        /// The stored row, `None` if missing.
        stored: Option<String>,
        /// The replayed row, `None` if the replay has no such row.
        replayed: Option<String>,
    },
}

impl Difference {
    /// The log position the difference points at, if any.
    pub fn position(&self) -> Option<i64> {
        match self {
            Difference::Chain { position } | Difference::Replay { position, .. } => Some(*position),
            Difference::Row { position, .. } => *position,
        }
    }
}

/// What [`Engine::verify`](crate::Engine::verify) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events whose hash was checked.
    pub events_checked: u64,
    /// The last position.
    pub head: i64,
    /// Where the replay stopped, if an event could not be read or folded (a tampered event
    /// often also breaks the fold of its stream).
    pub replay_error: Option<Difference>,
    /// Read-model rows that differ from the replay (missing, extra or changed); `None` if the
    /// replay failed, so that nothing was compared.
    pub rows_differing: Option<u64>,
    /// The first difference: a broken chain first, then an unreadable event, then the
    /// differing row with the lowest position.
    pub first_difference: Option<Difference>,
}

impl VerifyReport {
    /// True if nothing differs.
    pub fn is_ok(&self) -> bool {
        self.first_difference.is_none()
    }
}

/// A private database with the current schema for replayed read models: SQLite keeps it in
/// memory while it fits its page cache and spills it to a temporary file deleted on close, so
/// verifying a large catalogue does not need that catalogue's size in memory.
pub(super) fn scratch_database() -> Result<Connection, StoreError> {
    let mut conn = Connection::open("").sql()?;
    db::migrations().to_latest(&mut conn).sql()?;
    Ok(conn)
}

/// Recomputes the hash chain, replays the log into fresh read models in a private scratch
/// database (through the same writer as a rebuild), and compares them row by row with the
/// stored ones, table by table in key order. Reads in one transaction, so a concurrent writer cannot make a consistent
/// database look inconsistent; never writes to `conn`.
pub fn verify(conn: &Connection) -> Result<VerifyReport, EngineError> {
    let snapshot = conn.unchecked_transaction().sql()?;
    let chain = log::verify_chain(&*snapshot)?;
    let head = log::head(&*snapshot)?.map_or(0, |(position, _)| position);
    let mut report = VerifyReport {
        events_checked: chain.events_checked,
        head,
        replay_error: None,
        rows_differing: None,
        first_difference: chain
            .first_mismatch
            .map(|position| Difference::Chain { position }),
    };

    let mut fresh = scratch_database()?;
    let replay = fresh.transaction().sql()?;
    let replayed = for_each_state_as_of(&snapshot, head, |state, _| {
        Ok(tables::write_state(&*replay, &state)?)
    });
    if let Err(error) = replayed {
        let failure = match &error {
            EngineError::Store(StoreError::Corrupt { position, reason }) => Difference::Replay {
                position: *position,
                reason: reason.clone(),
            },
            EngineError::CorruptStream {
                stream, version, ..
            } => Difference::Replay {
                position: event_position(&snapshot, stream, *version)?.unwrap_or(0),
                reason: error.to_string(),
            },
            _ => return Err(error),
        };
        report.first_difference.get_or_insert(failure.clone());
        report.replay_error = Some(failure);
        return Ok(report);
    }
    tables::set_checkpoint(&*replay, head)?;
    replay.commit().sql()?;

    let mut first: Option<(DifferenceRank, Difference)> = None;
    let mut rows_differing = 0;
    for (table_index, table) in tables::TABLES.iter().enumerate() {
        compare_table(&snapshot, &fresh, table, |stored, replayed| {
            rows_differing += 1;
            let Some(row) = stored.as_ref().or(replayed.as_ref()) else {
                return Ok(());
            };
            let position = owner_position(&snapshot, table, &row.owner, head)?;
            // Rows no stream owns sort after every real position.
            let rank = (position.unwrap_or(i64::MAX), table_index, row.key.clone());
            if first.as_ref().is_none_or(|(best, _)| rank < *best) {
                let difference = Difference::Row {
                    position,
                    table: (*table).to_owned(),
                    key: row.key.join(" | "),
                    stored: stored.map(|row| row.values),
                    replayed: replayed.map(|row| row.values),
                };
                first = Some((rank, difference));
            }
            Ok(())
        })?;
    }
    report.rows_differing = Some(rows_differing);
    if report.first_difference.is_none() {
        report.first_difference = first.map(|(_, difference)| difference);
    }
    Ok(report)
}

/// Orders row differences: by owning position, then table, then key.
type DifferenceRank = (i64, usize, Vec<String>);

/// One read-model row as text: its key columns, the id of what owns it (first column), and
/// the whole row in the format of `tables::dump`.
struct TableRow {
    key: Vec<String>,
    owner: String,
    values: String,
}

/// How many leading columns form a table's primary key.
fn key_columns(table: &str) -> usize {
    match table {
        "proj_image_properties" | "proj_image_tags" | "proj_members" => 2,
        _ => 1,
    }
}

fn next_row(rows: &mut rusqlite::Rows<'_>, table: &str) -> Result<Option<TableRow>, EngineError> {
    let Some(row) = rows.next().sql()? else {
        return Ok(None);
    };
    let columns = row.as_ref().column_count();
    let mut key = Vec::new();
    let mut values = Vec::with_capacity(columns);
    for index in 0..columns {
        let value = row.get::<_, rusqlite::types::Value>(index).sql()?;
        if index < key_columns(table) {
            // Raw text, so that key order here is SQLite's BINARY order of the ORDER BY.
            key.push(match &value {
                rusqlite::types::Value::Text(text) => text.clone(),
                other => format!("{other:?}"),
            });
        }
        values.push(format!("{value:?}"));
    }
    Ok(Some(TableRow {
        owner: key.first().cloned().unwrap_or_default(),
        key,
        values: values.join(" | "),
    }))
}

/// Walks one table of both databases in key order side by side (so memory does not grow with
/// the table) and calls `differ` with each pair of rows that is not the same: a changed row,
/// or a row only one side has.
fn compare_table(
    stored: &Connection,
    replayed: &Connection,
    table: &str,
    mut differ: impl FnMut(Option<TableRow>, Option<TableRow>) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let sql = format!("SELECT * FROM {table} ORDER BY 1, 2");
    let mut stored_statement = stored.prepare(&sql).sql()?;
    let mut replayed_statement = replayed.prepare(&sql).sql()?;
    let mut stored_rows = stored_statement.query([]).sql()?;
    let mut replayed_rows = replayed_statement.query([]).sql()?;
    let mut left = next_row(&mut stored_rows, table)?;
    let mut right = next_row(&mut replayed_rows, table)?;
    loop {
        let order = match (&left, &right) {
            (None, None) => return Ok(()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(left), Some(right)) => left.key.cmp(&right.key),
        };
        match order {
            std::cmp::Ordering::Less => {
                differ(left.take(), None)?;
                left = next_row(&mut stored_rows, table)?;
            }
            std::cmp::Ordering::Greater => {
                differ(None, right.take())?;
                right = next_row(&mut replayed_rows, table)?;
            }
            std::cmp::Ordering::Equal => {
                let (stored_row, replayed_row) = (left.take(), right.take());
                if stored_row.as_ref().map(|row| &row.values)
                    != replayed_row.as_ref().map(|row| &row.values)
                {
                    differ(stored_row, replayed_row)?;
                }
                left = next_row(&mut stored_rows, table)?;
                right = next_row(&mut replayed_rows, table)?;
            }
        }
    }
}

/// The position of the last event of the stream that owns a row of `table`; the log's head
/// for the checkpoint row; `None` if no stream has that id.
fn owner_position(
    conn: &Connection,
    table: &str,
    owner: &str,
    head: i64,
) -> Result<Option<i64>, EngineError> {
    let stream_id = match table {
        "projection_checkpoints" => return Ok(Some(head)),
        "proj_tasks" => format!("task-{owner}"),
        _ => format!("image-{owner}"),
    };
    Ok(conn
        .prepare_cached(
            "SELECT position FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1",
        ).sql()?
        .query_row([stream_id], |row| row.get(0))
        .optional().sql()?)
}

fn event_position(
    conn: &Connection,
    stream_id: &str,
    version: u64,
) -> Result<Option<i64>, StoreError> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    conn.prepare_cached("SELECT position FROM events WHERE stream_id = ?1 AND version = ?2")
        .sql()?
        .query_row(params![stream_id, version], |row| row.get(0))
        .optional()
        .sql()
}
