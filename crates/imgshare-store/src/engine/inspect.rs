//! Reads of the log itself, for operators and audit tools: its head and anchor, positions of
//! past moments, the log line by line and the catalogue as it was. Typed, so that callers never
//! hold a connection.

use imgshare_core::Aggregate;

use super::*;
use crate::anchor::{Anchor, AnchorMismatch};
use crate::audit::LogFilter;

impl Engine {
    /// The log's last position and the hash of its last event; `None` for an empty log.
    pub fn head(&self) -> Result<Option<(i64, String)>, EngineError> {
        reading!(self, |conn| Ok(crate::log::head(conn)?))
    }

    /// The log's current anchor (`POSITION:HASH`), to note now and check later.
    pub fn anchor(&self) -> Result<Anchor, EngineError> {
        reading!(self, |conn| Ok(crate::anchor::current(conn)?))
    }

    /// How the log differs from an anchor noted earlier; `None` if it still holds it.
    pub fn check_anchor(&self, expected: &Anchor) -> Result<Option<AnchorMismatch>, EngineError> {
        reading!(self, |conn| Ok(crate::anchor::check(conn, expected)?))
    }

    /// The log position `as_of` means (for a time: the last event recorded at or before it).
    pub fn position_at(&self, as_of: AsOf) -> Result<i64, EngineError> {
        reading!(self, |conn| Ok(audit::resolve(conn, as_of)?))
    }

    /// Calls `each` with every event `filter` lets through, in log order.
    pub fn for_each_logged(
        &self,
        filter: &LogFilter,
        each: impl FnMut(RecordedEvent) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        reading!(self, |conn| audit::for_each_logged(conn, filter, each))
    }

    /// Calls `each` with every stream's state as of `position` and the position of its last
    /// event then, one stream at a time.
    pub fn for_each_state_as_of(
        &self,
        position: i64,
        each: impl FnMut(Aggregate, i64) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        reading!(self, |conn| audit::for_each_state_as_of(
            conn, position, each
        ))
    }
}
