//! Folding streams into aggregates: one stream (`load_stream`) or the whole log stream by
//! stream (`fold_streams`). The engine, rebuilds, replays and audits all fold through here,
//! on any [`Sql`] connection.

use imgshare_core::{Aggregate, Event, StreamId};
use imgshare_sql::Sql;

use crate::error::EngineError;
use crate::log::{self, RecordedEvent};

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Events folded.
    pub events: u64,
    /// Streams written.
    pub streams: u64,
    /// The log position the read models now reflect.
    pub last_position: i64,
}

/// An aggregate folded from its stream, with the stream's version.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The state.
    pub state: Aggregate,
    /// Number of events folded (0 for a new stream).
    pub version: u64,
}

pub(crate) fn corrupt(stream: &str, version: u64, reason: String) -> EngineError {
    EngineError::CorruptStream {
        stream: stream.to_owned(),
        version,
        reason,
    }
}

/// Folds a stream's events into its aggregate.
pub fn load_stream<C: Sql + ?Sized>(conn: &C, stream: StreamId) -> Result<Loaded, EngineError> {
    let stream_id = stream.to_string();
    let mut state = Aggregate::empty(stream);
    let mut version = 0;
    for stored in log::read_stream(conn, &stream_id)? {
        let event = decode(&stored)?;
        state = state
            .apply(&event, stored.recorded_at)
            .map_err(|error| corrupt(&stream_id, stored.version, error.message))?;
        version = stored.version;
    }
    Ok(Loaded { state, version })
}

/// Folds every stream of the log up to `to_position` (all of it if `None`), one stream at a time
/// in stream id order, calling `done` with each stream's final state and the position of its
/// last event: memory holds one aggregate, whatever the log's length. `progress` gets the number
/// of events folded, every 10 000. Rebuilds, replays and audits all read the log this way.
pub fn fold_streams<C: Sql + ?Sized>(
    conn: &C,
    to_position: Option<i64>,
    mut done: impl FnMut(Aggregate, i64) -> Result<(), EngineError>,
    progress: &mut impl FnMut(u64),
) -> Result<RebuildReport, EngineError> {
    let mut current: Option<(String, Aggregate, i64)> = None;
    let mut report = RebuildReport::default();
    log::for_each_stream_event(conn, to_position, |stored| -> Result<(), EngineError> {
        let state = match current.take() {
            Some((stream_id, state, _)) if stream_id == stored.stream_id => state,
            finished => {
                if let Some((_, state, last)) = finished {
                    done(state, last)?;
                    report.streams += 1;
                }
                let stream = StreamId::parse(&stored.stream_id).ok_or_else(|| {
                    corrupt(
                        &stored.stream_id,
                        stored.version,
                        "unknown stream kind".to_owned(),
                    )
                })?;
                Aggregate::empty(stream)
            }
        };
        let log::StreamEvent {
            position,
            stream_id,
            version,
            event_type,
            schema_version,
            data,
            recorded_at,
        } = stored;
        let event = Event::from_stored_value(&event_type, schema_version, data)
            .map_err(|error| corrupt(&stream_id, version, error.to_string()))?;
        let state = state
            .apply(&event, recorded_at)
            .map_err(|error| corrupt(&stream_id, version, error.message))?;
        current = Some((stream_id, state, position));
        report.events += 1;
        report.last_position = report.last_position.max(position);
        if report.events % 10_000 == 0 {
            progress(report.events);
        }
        Ok(())
    })?;
    if let Some((_, state, last)) = current {
        done(state, last)?;
        report.streams += 1;
    }
    Ok(report)
}

/// Reads a stored event as the current domain event (upcasting old versions).
pub fn decode(stored: &RecordedEvent) -> Result<Event, EngineError> {
    Event::from_stored(&stored.event_type, stored.schema_version, &stored.data)
        .map_err(|error| corrupt(&stored.stream_id, stored.version, error.to_string()))
}
