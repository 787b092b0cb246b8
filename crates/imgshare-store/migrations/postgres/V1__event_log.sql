-- The append-only event log on PostgreSQL: the same table as SQLite's 0001_event_log.sql.
-- Integers are BIGINT (SQLite's INTEGER is 64-bit); text compares byte for byte (COLLATE "C",
-- SQLite's BINARY), so that orders and ranges mean the same on both backends whatever the
-- database's own collation is.

CREATE TABLE events (
    -- Assigned by the writer (head + 1) because the position is part of each event's hash;
    -- writers are serialized by an advisory lock, so positions are gapless (no sequence).
    position       BIGINT PRIMARY KEY,
    event_id       TEXT COLLATE "C" NOT NULL UNIQUE,
    stream_id      TEXT COLLATE "C" NOT NULL,
    version        BIGINT NOT NULL CHECK (version >= 1),
    event_type     TEXT COLLATE "C" NOT NULL,
    schema_version BIGINT NOT NULL,
    -- Compact JSON, hashed byte for byte as stored here (TEXT, not JSONB, which would rewrite it).
    data           TEXT COLLATE "C" NOT NULL,
    metadata       TEXT COLLATE "C" NOT NULL,
    -- RFC 3339 UTC with microseconds, fixed width: text order is time order.
    recorded_at    TEXT COLLATE "C" NOT NULL,
    prev_hash      TEXT COLLATE "C" NOT NULL,
    hash           TEXT COLLATE "C" NOT NULL,
    -- Backstop only: the writer checks the expected version before inserting.
    UNIQUE (stream_id, version)
);

CREATE INDEX events_by_type ON events (event_type, position);
CREATE INDEX events_by_recorded_at ON events (recorded_at);

-- The database itself refuses to change the log, whoever asks (the owner included); the
-- application role is also denied UPDATE, DELETE and TRUNCATE by privileges (see the store's
-- `grant_application_role`).
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;

CREATE TRIGGER events_no_update_or_delete
BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- TRUNCATE fires no row trigger.
CREATE TRIGGER events_no_truncate
BEFORE TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
