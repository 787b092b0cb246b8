-- Facts about the database itself, each written once, as SQLite's 0004_database_meta.sql:
-- `profile` is recorded by the first read-write open (the store's `open_postgres`).
CREATE TABLE database_meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

CREATE FUNCTION database_meta_written_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'database facts are written once';
END;
$$;

CREATE TRIGGER database_meta_no_update
BEFORE UPDATE ON database_meta
FOR EACH ROW EXECUTE FUNCTION database_meta_written_once();
