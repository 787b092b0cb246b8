-- Facts about the database itself, each written once. `profile` is the rule set (rackspace or
-- glance) the database was created with: the same events mean different access under the other
-- one, so every later open must use it. The row is written by the first read-write open after
-- this migration (a migration does not know the caller's profile); a database created before it
-- gets the profile it is first opened with.
CREATE TABLE database_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER database_meta_no_update
BEFORE UPDATE ON database_meta
BEGIN
    SELECT RAISE(ABORT, 'database facts are written once');
END;
