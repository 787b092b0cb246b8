//! The log's head: the last event, as appends continue from it and anchors record it, read by
//! one query.

use crate::error::SqlResult as _;

use super::*;

/// The last event of the log, as the next append continues from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its position.
    pub position: i64,
    /// Its hash.
    pub hash: String,
    /// Its `recorded_at`.
    pub at: DateTime<Utc>,
}

/// The log's head as an append continues from it (`None` when it is empty).
pub fn read_head<C: Sql + ?Sized>(conn: &C) -> Result<Option<Head>, StoreError> {
    let Some(row) = head_row(conn)? else {
        return Ok(None);
    };
    Ok(Some(Head {
        at: parse_recorded_at(&row.recorded_at?, row.position)?,
        position: row.position,
        hash: row.hash,
    }))
}

/// The position and hash of the last event, `None` for an empty log: the anchor of the log
/// ([`read_head`] without the time, so it answers on a log whose last time is damaged).
pub fn head<C: Sql + ?Sized>(conn: &C) -> Result<Option<(i64, String)>, StoreError> {
    Ok(head_row(conn)?.map(|row| (row.position, row.hash)))
}

/// The id of the last event as stored (the engine tells from it which id rule last wrote).
pub(crate) fn last_event_id<C: Sql + ?Sized>(conn: &C) -> Result<Option<String>, StoreError> {
    head_row(conn)?.map(|row| row.event_id).transpose()
}

/// The last event's columns as [`head_row`] reads them. Columns other than the position and hash
/// are checked only by the reader that needs them, so a damaged one does not hide the others.
struct HeadRow {
    position: i64,
    hash: String,
    event_id: Result<String, StoreError>,
    recorded_at: Result<String, StoreError>,
}

/// The one query that reads the log's head.
fn head_row<C: Sql + ?Sized>(conn: &C) -> Result<Option<HeadRow>, StoreError> {
    conn.query_first(
        "SELECT position, hash, recorded_at, event_id FROM events ORDER BY position DESC LIMIT 1",
        params![],
        |row| {
            let position: i64 = row.get(0).sql()?;
            Ok(HeadRow {
                position,
                hash: column(row, 1, position, "hash")?,
                recorded_at: column(row, 2, position, "recorded_at"),
                event_id: column(row, 3, position, "event_id"),
            })
        },
    )
    .sql()?
}
