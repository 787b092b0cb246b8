//! The hash chain: each event's hash covers its canonical form and the previous hash, so an
//! edited, removed or reordered event breaks the chain from there on.

use crate::error::SqlResult as _;
use sha2::{Digest, Sha256};

use super::*;

/// `prev_hash` of the event at the first position.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// First field of the canonical form, so that a future change of the hashed
/// fields cannot produce hashes that collide with this format's.
pub(super) const HASH_FORMAT_TAG: &str = "imgshare-event-v1";

/// The stored columns covered by an event's hash, as they are in the table.
///
/// `data`, `metadata` and `recorded_at` are the exact column text: hashing
/// re-serialized values would make the chain depend on serializer details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowForHash<'a> {
    /// `position` column.
    pub position: i64,
    /// `event_id` column (lowercase hyphenated uuid).
    pub event_id: &'a str,
    /// `stream_id` column.
    pub stream_id: &'a str,
    /// `version` column.
    pub version: u64,
    /// `event_type` column.
    pub event_type: &'a str,
    /// `schema_version` column.
    pub schema_version: u32,
    /// `data` column: compact JSON text.
    pub data: &'a str,
    /// `metadata` column: compact JSON text.
    pub metadata: &'a str,
    /// `recorded_at` column: RFC 3339 text.
    pub recorded_at: &'a str,
}

/// The hash of one event, chaining it to `prev_hash`.
///
/// `hex(sha256(F("imgshare-event-v1") ‖ F(prev_hash) ‖ F(position) ‖
/// F(event_id) ‖ F(stream_id) ‖ F(version) ‖ F(event_type) ‖
/// F(schema_version) ‖ F(data) ‖ F(metadata) ‖ F(recorded_at)))`, where
/// `F(s)` is the byte length of the UTF-8 string `s` as a big-endian u64
/// followed by its bytes, integers are in decimal without sign or padding, and
/// `prev_hash` is its 64-character lowercase hex text. The length prefixes make
/// the encoding unambiguous whatever the fields contain.
pub fn event_hash(prev_hash: &str, row: &RowForHash<'_>) -> String {
    let position = row.position.to_string();
    let version = row.version.to_string();
    let schema_version = row.schema_version.to_string();
    let fields: [&str; 11] = [
        HASH_FORMAT_TAG,
        prev_hash,
        &position,
        row.event_id,
        row.stream_id,
        &version,
        row.event_type,
        &schema_version,
        row.data,
        row.metadata,
        row.recorded_at,
    ];
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Result of [`verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Number of events read.
    pub events_checked: u64,
    /// Position of the first event whose hash does not match its content, or
    /// whose `prev_hash` is not the previous event's `hash` (an event removed
    /// or inserted before it). `None` if the whole chain is intact.
    pub first_mismatch: Option<i64>,
}

/// Recomputes every event's hash in position order and checks the links.
///
/// Removing the last events is not detectable from the log alone; compare
/// [`head`] with a copy kept elsewhere for that.
pub fn verify_chain<C: Sql + ?Sized>(conn: &C) -> Result<ChainReport, StoreError> {
    let mut expected_prev = GENESIS_HASH.to_owned();
    let mut report = ChainReport {
        events_checked: 0,
        first_mismatch: None,
    };
    conn.scan_each(
        select_events!("ORDER BY position"),
        params![],
        |row| -> Result<Flow, StoreError> {
            let raw = RawRow::from_row(row)?;
            report.events_checked += 1;
            if report.first_mismatch.is_none() && !raw.links_to(&expected_prev)? {
                report.first_mismatch = Some(raw.position);
            }
            expected_prev = raw.hash;
            Ok(Flow::Continue)
        },
    )
    .sql()??;
    Ok(report)
}
