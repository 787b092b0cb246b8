-- The append-only event log. Every other table is a projection that can be
-- rebuilt from this one, so nothing here is ever updated or deleted.

CREATE TABLE events (
    -- Global order of the log. Assigned explicitly by the writer (head + 1)
    -- because the position is part of each event's hash; rows are never
    -- deleted, so AUTOINCREMENT's no-reuse guarantee is not needed.
    position       INTEGER PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    -- Compact JSON, hashed byte for byte as stored here.
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    -- RFC 3339 UTC with microseconds (2026-11-23T10:00:00.123456Z); fixed width,
    -- so text order is time order, and non-decreasing along position.
    recorded_at    TEXT    NOT NULL,
    -- Hex SHA-256 of the previous position's event (64 zeros for the first).
    prev_hash      TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    -- Backstop only: the writer checks the expected version before inserting.
    UNIQUE (stream_id, version)
);

-- Catch-up readers that only care about some event types, in log order.
CREATE INDEX events_by_type ON events (event_type, position);

-- recorded_at is monotonic along position, so this maps a point in time to a
-- position range ("replay up to 10:00").
CREATE INDEX events_by_recorded_at ON events (recorded_at);

CREATE TRIGGER events_no_update
BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete
BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
