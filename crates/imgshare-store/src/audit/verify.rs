//! `verify`: the hash chain, then a replay of the log into a private scratch database whose
//! read-model tables are compared with the live ones row by row, in key order; the first
//! difference is reported. Never writes to the audited database.

use crate::error::SqlResult as _;
use imgshare_projection::tables;
use imgshare_sql::{params, Dialect, Flow, Row, RowExt as _, Sql};
use rusqlite::Connection;
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
/// verifying a large catalogue does not need that catalogue's size in memory. It is SQLite
/// whatever the audited database is: the replay's rows are compared as values, and the scratch
/// database needs no server.
pub(super) fn scratch_database() -> Result<Connection, StoreError> {
    let mut conn = Connection::open("").sql()?;
    db::migrations().to_latest(&mut conn).sql()?;
    Ok(conn)
}

/// A read transaction on the audited database, so that its reads see one state of it; rolled
/// back when dropped (it wrote nothing).
struct Snapshot<'c, C: Sql + ?Sized>(&'c C);

impl<'c, C: Sql + ?Sized> Snapshot<'c, C> {
    fn begin(conn: &'c C) -> Result<Self, StoreError> {
        conn.batch(match conn.dialect() {
            // A deferred transaction: SQLite reads one snapshot from its first read on.
            Dialect::Sqlite => "BEGIN",
            // READ COMMITTED (the default) would take a new snapshot per statement.
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })
        .sql()?;
        Ok(Snapshot(conn))
    }
}

impl<C: Sql + ?Sized> Drop for Snapshot<'_, C> {
    fn drop(&mut self) {
        // Nothing was written; a failed rollback of a read leaves nothing to undo.
        let _ = self.0.rollback();
    }
}

/// Recomputes the hash chain, replays the log into fresh read models in a private scratch
/// database (through the same writer as a rebuild), and compares them row by row with the
/// stored ones, table by table in key order. Reads in one transaction, so a concurrent writer
/// cannot make a consistent database look inconsistent; never writes to `conn`.
pub fn verify<C: Sql + ?Sized>(conn: &C) -> Result<VerifyReport, EngineError> {
    let guard = Snapshot::begin(conn)?;
    let snapshot = guard.0;
    let chain = log::verify_chain(snapshot)?;
    let head = log::head(snapshot)?.map_or(0, |(position, _)| position);
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
    let replayed = for_each_state_as_of(snapshot, head, |state, _| {
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
                position: event_position(snapshot, stream, *version)?.unwrap_or(0),
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
        compare_table(snapshot, &fresh, table, |stored, replayed| {
            rows_differing += 1;
            let Some(row) = stored.as_ref().or(replayed.as_ref()) else {
                return Ok(());
            };
            let position = owner_position(snapshot, table, &row.owner, head)?;
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

/// A table's columns in declaration order, each with whether it is declared an integer, as the
/// scratch database (the current schema) has them: the audited database is read by these
/// names and types, whichever backend it is.
fn table_columns(scratch: &Connection, table: &str) -> Result<Vec<(String, bool)>, EngineError> {
    let mut statement = scratch
        .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")
        .sql()?;
    let columns = statement
        .query_map([table], |row| {
            let declared: String = row.get(1)?;
            Ok((row.get(0)?, declared.eq_ignore_ascii_case("INTEGER")))
        })
        .sql()?
        .collect::<Result<Vec<_>, _>>()
        .sql()?;
    Ok(columns)
}

/// A value as `tables::dump` writes it: `Integer(n)`, `Text("…")` or `Null`.
fn dumped(value: &rusqlite::types::Value) -> String {
    format!("{value:?}")
}

/// Builds a [`TableRow`] from its values and their dumped forms.
fn table_row(table: &str, values: Vec<(Option<String>, String)>) -> TableRow {
    let mut key = Vec::new();
    for (raw, dumped) in values.iter().take(key_columns(table)) {
        // Raw text, so that key order here is the byte order both databases sort keys in.
        key.push(raw.clone().unwrap_or_else(|| dumped.clone()));
    }
    TableRow {
        owner: key.first().cloned().unwrap_or_default(),
        key,
        values: values
            .into_iter()
            .map(|(_, dumped)| dumped)
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

fn next_replayed(
    rows: &mut rusqlite::Rows<'_>,
    table: &str,
    columns: usize,
) -> Result<Option<TableRow>, EngineError> {
    let Some(row) = rows.next().sql()? else {
        return Ok(None);
    };
    let mut values = Vec::with_capacity(columns);
    for index in 0..columns {
        let value = row.get::<_, rusqlite::types::Value>(index).sql()?;
        let raw = match &value {
            rusqlite::types::Value::Text(text) => Some(text.clone()),
            _ => None,
        };
        values.push((raw, dumped(&value)));
    }
    Ok(Some(table_row(table, values)))
}

/// A stored row, read by the declared types; a value of another type (SQLite keeps what it is
/// given) is read as what it is, so that it shows as a difference instead of failing the audit.
fn stored_row(
    row: &dyn Row,
    table: &str,
    columns: &[(String, bool)],
) -> Result<TableRow, imgshare_sql::SqlError> {
    let mut values = Vec::with_capacity(columns.len());
    for (index, (_, is_integer)) in columns.iter().enumerate() {
        let as_int = |row: &dyn Row| {
            row.int(index)
                .map(|value| (None, value.map_or_else(|| "Null".to_owned(), |n| format!("Integer({n})"))))
        };
        let as_text = |row: &dyn Row| {
            row.text(index).map(|value| match value {
                Some(text) => {
                    let dumped = format!("Text({text:?})");
                    (Some(text), dumped)
                }
                None => (None, "Null".to_owned()),
            })
        };
        values.push(if *is_integer {
            as_int(row).or_else(|_| as_text(row))?
        } else {
            as_text(row).or_else(|_| as_int(row))?
        });
    }
    Ok(table_row(table, values))
}

/// Walks one table of both databases in key order side by side (so memory does not grow with
/// the table) and calls `differ` with each pair of rows that is not the same: a changed row,
/// or a row only one side has.
fn compare_table<C: Sql + ?Sized>(
    stored: &C,
    replayed: &Connection,
    table: &str,
    mut differ: impl FnMut(Option<TableRow>, Option<TableRow>) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let columns = table_columns(replayed, table)?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    // Keys are compared as bytes (SQLite's BINARY collation). The PostgreSQL schema declares
    // its text columns `COLLATE "C"` (byte order) already; the walk says so again so that its
    // order does not rest on the schema. The first two columns are NOT NULL.
    let order: Vec<String> = columns
        .iter()
        .take(2)
        .map(|(name, is_integer)| match stored.dialect() {
            Dialect::Postgres if !is_integer => format!("{name} COLLATE \"C\""),
            _ => name.clone(),
        })
        .collect();
    let stored_sql = format!(
        "SELECT {} FROM {table} ORDER BY {}",
        names.join(", "),
        order.join(", ")
    );
    let replayed_sql = format!(
        "SELECT {} FROM {table} ORDER BY {}",
        names.join(", "),
        names.iter().take(2).copied().collect::<Vec<_>>().join(", ")
    );
    let mut replayed_statement = replayed.prepare(&replayed_sql).sql()?;
    let mut replayed_rows = replayed_statement.query([]).sql()?;
    let mut right = next_replayed(&mut replayed_rows, table, columns.len())?;
    stored
        .scan_each(&stored_sql, params![], |row| -> Result<Flow, EngineError> {
            let mut left = Some(stored_row(row, table, &columns).sql()?);
            // Every replayed row ordered before this stored one is missing from the database.
            while let Some(replayed_row) = right.take() {
                let (stored_key, replayed_key) = match &left {
                    Some(left) => (&left.key, &replayed_row.key),
                    None => {
                        right = Some(replayed_row);
                        break;
                    }
                };
                match stored_key.cmp(replayed_key) {
                    std::cmp::Ordering::Less => {
                        differ(left.take(), None)?;
                        right = Some(replayed_row);
                    }
                    std::cmp::Ordering::Greater => {
                        differ(None, Some(replayed_row))?;
                        right = next_replayed(&mut replayed_rows, table, columns.len())?;
                    }
                    std::cmp::Ordering::Equal => {
                        if left.as_ref().map(|row| &row.values) != Some(&replayed_row.values) {
                            differ(left.take(), Some(replayed_row))?;
                        }
                        left = None;
                        right = next_replayed(&mut replayed_rows, table, columns.len())?;
                    }
                }
            }
            // Past the replay's last row: the stored row is extra.
            if left.is_some() {
                differ(left, None)?;
            }
            Ok(Flow::Continue)
        })
        .sql()??;
    // Replayed rows after the database's last one are missing from it.
    while let Some(replayed_row) = right.take() {
        differ(None, Some(replayed_row))?;
        right = next_replayed(&mut replayed_rows, table, columns.len())?;
    }
    Ok(())
}

/// The position of the last event of the stream that owns a row of `table`; the log's head
/// for the checkpoint row; `None` if no stream has that id.
fn owner_position<C: Sql + ?Sized>(
    conn: &C,
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
        .query_first(
            "SELECT position FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1",
            params![&stream_id],
            |row| row.get(0),
        )
        .sql()?
        .sql()?)
}

fn event_position<C: Sql + ?Sized>(
    conn: &C,
    stream_id: &str,
    version: u64,
) -> Result<Option<i64>, StoreError> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    conn.query_first(
        "SELECT position FROM events WHERE stream_id = ?1 AND version = ?2",
        params![stream_id, version],
        |row| row.get(0),
    )
    .sql()?
    .sql()
}
