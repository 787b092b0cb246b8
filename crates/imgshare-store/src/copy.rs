//! Moving a log between databases (SQLite ↔ PostgreSQL, or file to file): every event row copied
//! verbatim, in position order, into an empty log, its chain checked on the way so that a damaged
//! source is refused rather than laundered into a fresh database. The read models are not
//! copied: the target rebuilds them from its log, and [`crate::Engine::copy_log_from`] verifies the
//! result.

use imgshare_sql::{params, RowExt as _, Sql};

use crate::error::{SqlResult as _, StoreError};
use crate::log::{event_hash, head, RowForHash, GENESIS_HASH};
use crate::write_tx::WriteTx;

/// Rows read from the source per query: bounded memory whatever the log's length, on a backend
/// whose driver reads a whole result before handing rows out.
const BATCH: i64 = 5_000;

/// One stored event, as its columns hold it.
struct RawEvent {
    position: i64,
    event_id: String,
    stream_id: String,
    version: i64,
    event_type: String,
    schema_version: i64,
    data: String,
    metadata: String,
    recorded_at: String,
    prev_hash: String,
    hash: String,
}

/// Why a copy was refused before anything was committed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds events; a copy only fills an empty log.
    #[error(
        "the target log is not empty (its head is at position {head}); copy into a new database"
    )]
    TargetNotEmpty {
        /// The target's head position.
        head: i64,
    },
    /// The source's chain does not hold at this position (a changed, removed or inserted row).
    #[error(
        "the source log's hash chain breaks at position {position}; run `imgshare verify` on it"
    )]
    SourceChainBroken {
        /// The first position that does not continue the chain.
        position: i64,
    },
    /// Reading the source or writing the target failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies the source's events up to its head as it is now into the empty target, in one write
/// transaction on the target; returns the number of events and the head `(position, hash)`.
pub(crate) fn copy_events<S, D>(
    source: &S,
    target: &D,
    progress: &mut impl FnMut(u64),
) -> Result<(u64, Option<(i64, String)>), CopyError>
where
    S: Sql + ?Sized,
    D: Sql + ?Sized,
{
    let tx = WriteTx::begin(target)?;
    if let Some((position, _)) = head(&*tx)? {
        return Err(CopyError::TargetNotEmpty { head: position });
    }
    // Appends that land in the source while copying are left for a later copy: the copy is the
    // log as it was at this head.
    let source_head = head(source)?;
    let Some((last, _)) = source_head.clone() else {
        tx.commit()?;
        return Ok((0, None));
    };
    let mut copied = 0u64;
    let mut after = 0i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    while after < last {
        let rows = read_batch(source, after, last)?;
        if rows.is_empty() {
            return Err(CopyError::SourceChainBroken {
                position: after + 1,
            });
        }
        for row in rows {
            check_link(&row, after, &prev_hash)?;
            insert(&*tx, &row)?;
            after = row.position;
            prev_hash = row.hash;
            copied += 1;
        }
        progress(copied);
    }
    tx.commit()?;
    Ok((copied, source_head))
}

fn read_batch<S: Sql + ?Sized>(
    source: &S,
    after: i64,
    last: i64,
) -> Result<Vec<RawEvent>, StoreError> {
    source
        .query_all(
            "SELECT position, event_id, stream_id, version, event_type, schema_version, \
             data, metadata, recorded_at, prev_hash, hash FROM events \
             WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT ?3",
            params![after, last, BATCH],
            |row| {
                Ok::<_, StoreError>(RawEvent {
                    position: row.get(0).sql()?,
                    event_id: row.get(1).sql()?,
                    stream_id: row.get(2).sql()?,
                    version: row.get(3).sql()?,
                    event_type: row.get(4).sql()?,
                    schema_version: row.get(5).sql()?,
                    data: row.get(6).sql()?,
                    metadata: row.get(7).sql()?,
                    recorded_at: row.get(8).sql()?,
                    prev_hash: row.get(9).sql()?,
                    hash: row.get(10).sql()?,
                })
            },
        )
        .sql()?
}

/// The row continues the chain: the next position, linked to the previous hash, and its own hash
/// is the hash of its content.
fn check_link(row: &RawEvent, previous: i64, prev_hash: &str) -> Result<(), CopyError> {
    let broken = CopyError::SourceChainBroken {
        position: row.position,
    };
    if row.position != previous + 1 || row.prev_hash != prev_hash {
        return Err(broken);
    }
    let (Ok(version), Ok(schema_version)) = (
        u64::try_from(row.version),
        u32::try_from(row.schema_version),
    ) else {
        return Err(broken);
    };
    let recomputed = event_hash(
        prev_hash,
        &RowForHash {
            position: row.position,
            event_id: &row.event_id,
            stream_id: &row.stream_id,
            version,
            event_type: &row.event_type,
            schema_version,
            data: &row.data,
            metadata: &row.metadata,
            recorded_at: &row.recorded_at,
        },
    );
    if recomputed != row.hash {
        return Err(broken);
    }
    Ok(())
}

fn insert<D: Sql + ?Sized>(target: &D, row: &RawEvent) -> Result<(), StoreError> {
    target
        .execute(
            "INSERT INTO events (position, event_id, stream_id, version, event_type, \
             schema_version, data, metadata, recorded_at, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                row.position,
                &row.event_id,
                &row.stream_id,
                row.version,
                &row.event_type,
                row.schema_version,
                &row.data,
                &row.metadata,
                &row.recorded_at,
                &row.prev_hash,
                &row.hash
            ],
        )
        .sql()?;
    Ok(())
}
