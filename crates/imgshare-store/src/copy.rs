//! Moving a log between databases (SQLite ↔ PostgreSQL, or file to file): every event row copied
//! verbatim, in position order, into an empty log, its chain checked on the way so that a damaged
//! source is refused rather than laundered into a fresh database. The read models are not
//! copied: the target rebuilds them from its log, and [`crate::Engine::copy_log_from`] verifies the
//! result.

use imgshare_sql::{params, Sql};

use crate::error::{SqlResult as _, StoreError};
use crate::log::{head, select_events, RawRow, GENESIS_HASH};
use crate::write_tx::WriteTx;

/// Rows read from the source per query: bounded memory whatever the log's length, on a backend
/// whose driver reads a whole result before handing rows out.
const BATCH: i64 = 5_000;

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
            row.insert_into(&*tx)?;
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
) -> Result<Vec<RawRow>, StoreError> {
    source
        .query_all(
            select_events!("WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT ?3"),
            params![after, last, BATCH],
            RawRow::from_row,
        )
        .sql()?
}

/// The row continues the chain: the next position, linked to the previous hash, and its own hash
/// is the hash of its content.
fn check_link(row: &RawRow, previous: i64, prev_hash: &str) -> Result<(), CopyError> {
    if row.position != previous + 1 || !row.links_to(prev_hash)? {
        return Err(CopyError::SourceChainBroken {
            position: row.position,
        });
    }
    Ok(())
}
