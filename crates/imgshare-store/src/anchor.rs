//! Auditor anchors: a log position and its event hash, noted down outside the database
//! (`imgshare head`), that a later check holds the log to (`imgshare verify --expect-head`).
//!
//! The hash chain alone shows that no event was changed, removed or inserted *between* events,
//! but not that the log was cut short, nor that it was rewritten from the start with a fresh,
//! consistent chain. An anchor closes both: the event at the anchor's position must still be
//! there with the same hash, and since each hash covers the previous one, that proves every
//! event up to it is unchanged.

use crate::error::SqlResult as _;
use std::fmt;
use std::str::FromStr;

use imgshare_sql::{params, RowExt as _, Sql};
use serde::Serialize;

use crate::db::StoreError;
use crate::log::{self, GENESIS_HASH};

/// A position in the log and the hash of the event there (position 0 with the genesis hash for
/// an empty log). Written and parsed as `POSITION:HASH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    /// The event's position (0: before the first event).
    pub position: i64,
    /// The event's hash: 64 lowercase hex digits.
    pub hash: String,
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.position, self.hash)
    }
}

/// Why a text is not an anchor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a log anchor: {text:?} ({reason}); expected POSITION:HASH as `imgshare head` prints it, e.g. 42:{example}", example = &GENESIS_HASH[..8])]
pub struct AnchorParseError {
    text: String,
    reason: &'static str,
}

impl FromStr for Anchor {
    type Err = AnchorParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| AnchorParseError {
            text: text.to_owned(),
            reason,
        };
        let (position, hash) = text.trim().split_once(':').ok_or_else(|| fail("no ':'"))?;
        let position: i64 = position
            .parse()
            .ok()
            .filter(|position| *position >= 0)
            .ok_or_else(|| fail("the position is not a non-negative integer"))?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(fail("the hash is not 64 hex digits"));
        }
        Ok(Anchor { position, hash })
    }
}

/// The log's current anchor: its last event's position and hash.
pub fn current<C: Sql + ?Sized>(conn: &C) -> Result<Anchor, StoreError> {
    Ok(match log::head(conn)? {
        Some((position, hash)) => Anchor { position, hash },
        None => Anchor {
            position: 0,
            hash: GENESIS_HASH.to_owned(),
        },
    })
}

/// How the log fails an anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnchorMismatch {
    /// The log ends before the anchor's position: events were removed from its end.
    Truncated {
        /// The log's last position now.
        head: i64,
        /// The anchor's position.
        expected_position: i64,
    },
    /// The event at the anchor's position has another hash: the log up to it was rewritten.
    Rewritten {
        /// The anchor's position.
        position: i64,
        /// The hash found there.
        found: String,
        /// The anchor's hash.
        expected: String,
    },
}

impl fmt::Display for AnchorMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorMismatch::Truncated {
                head,
                expected_position,
            } => write!(
                f,
                "the log was truncated: it ends at position {head}, before the anchor's position {expected_position}"
            ),
            AnchorMismatch::Rewritten {
                position,
                found,
                expected,
            } => write!(
                f,
                "the log was rewritten up to position {position}: its hash is {found}, the anchor says {expected}"
            ),
        }
    }
}

/// Whether the log still holds `anchor`. Only the anchor's event is compared here; that the
/// events before it still chain up to it is [`log::verify_chain`]'s part, so a full proof is
/// both (`verify` runs both).
pub fn check<C: Sql + ?Sized>(conn: &C, anchor: &Anchor) -> Result<Option<AnchorMismatch>, StoreError> {
    let found: Option<String> = if anchor.position == 0 {
        Some(GENESIS_HASH.to_owned())
    } else {
        conn.query_first(
            "SELECT hash FROM events WHERE position = ?1",
            params![anchor.position],
            |row| row.get(0),
        )
        .sql()?
        .sql()?
    };
    Ok(match found {
        None => Some(AnchorMismatch::Truncated {
            head: current(conn)?.position,
            expected_position: anchor.position,
        }),
        Some(found) if found != anchor.hash => Some(AnchorMismatch::Rewritten {
            position: anchor.position,
            found,
            expected: anchor.hash.clone(),
        }),
        Some(_) => None,
    })
}

/// The anchor of the database at `path`, opened read-only (it is never created or written).
pub fn anchor_of(path: &std::path::Path) -> Result<Anchor, StoreError> {
    current(&crate::db::open_read_only(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_and_print_alike() {
        let hash = "ab".repeat(32);
        let anchor: Anchor = format!("42:{}", hash.to_uppercase()).parse().unwrap();
        assert_eq!(anchor.position, 42);
        assert_eq!(anchor.to_string(), format!("42:{hash}"));
        for bad in [
            "",
            "42",
            ":",
            "x:00",
            "-1:00",
            &format!("42:{}", &hash[1..]),
            &format!("42:{}zz", &hash[2..]),
            &format!("4 2:{hash}"),
        ] {
            let error = bad.parse::<Anchor>().unwrap_err();
            assert!(
                error.to_string().contains("POSITION:HASH"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn an_empty_log_is_at_the_genesis_anchor() {
        let conn = crate::db::open_in_memory().unwrap();
        let genesis = current(&conn).unwrap();
        assert_eq!(genesis.to_string(), format!("0:{GENESIS_HASH}"));
        assert_eq!(check(&conn, &genesis).unwrap(), None);
        let later = Anchor {
            position: 3,
            hash: "cd".repeat(32),
        };
        assert_eq!(
            check(&conn, &later).unwrap(),
            Some(AnchorMismatch::Truncated {
                head: 0,
                expected_position: 3
            })
        );
    }
}
