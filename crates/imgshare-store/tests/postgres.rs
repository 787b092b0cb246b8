//! The store against a real PostgreSQL: the SQL seam, the schema's append-only rules by trigger
//! and by privilege, and `open_postgres`'s refusals. Run by `tests/postgres/run.sh`, which starts
//! a throwaway cluster and sets IMGSHARE_TEST_POSTGRES_URL; each test works in a database of its
//! own, so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use imgshare_core::{ErrorKind, ProfileKind};
use imgshare_sql::{params, RowExt, Sql, SqlError};
use imgshare_store::{grant_application_role, open_postgres, postgres_schema_version, PgConn};

#[path = "postgres/engine.rs"]
mod engine;
#[path = "postgres/log.rs"]
mod log;
#[path = "engine/scenarios.rs"]
mod scenarios;
#[path = "postgres/tasks.rs"]
mod tasks;

/// The cluster's URL; a test without one fails, so that a run without PostgreSQL cannot pass.
fn base_url() -> String {
    std::env::var("IMGSHARE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("IMGSHARE_TEST_POSTGRES_URL is not set: run tests/postgres/run.sh, which starts a PostgreSQL for these tests")
    })
}

/// `url` with its database replaced by `database` and, if given, its user by `user`.
fn url_with(url: &str, database: &str, user: Option<&str>) -> String {
    let (server, _) = url.rsplit_once('/').expect("a URL with a database");
    let server = match user {
        Some(user) => {
            let (_, host) = server.rsplit_once('@').expect("a URL with a user");
            format!("postgres://{user}@{host}")
        }
        None => server.to_owned(),
    };
    format!("{server}/{database}")
}

/// A name no other test of any run uses at the same time (databases and roles are cluster-wide).
fn unique(hint: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{hint}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new, empty database; its URL.
fn fresh_database(hint: &str) -> String {
    let base = base_url();
    let admin = PgConn::connect(&base).expect("connect to the test cluster");
    let name = unique(hint);
    admin
        .batch(&format!("CREATE DATABASE {name}"))
        .expect("create a database");
    url_with(&base, &name, None)
}

fn tables(conn: &PgConn) -> Vec<String> {
    conn.query_all(
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY 1",
        params![],
        |row| row.get::<String>(0),
    )
    .unwrap()
    .unwrap()
}

/// An error's message with its causes (the driver's own message is only "db error").
fn message(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text = format!("{text}: {next}");
        cause = next.source();
    }
    text
}

fn insert_event(conn: &PgConn, position: i64) -> Result<u64, SqlError> {
    conn.execute(
        "INSERT INTO events (position, event_id, stream_id, version, event_type, schema_version, \
         data, metadata, recorded_at, prev_hash, hash) \
         VALUES (?1, ?2, 'image-1', ?1, 'ImageCreated', 1, '{}', '{}', \
         '2026-11-23T10:00:00.000000Z', 'p', 'h')",
        params![position, format!("event-{position}").as_str()],
    )
}

// --- the seam ---------------------------------------------------------------------------------

#[test]
fn the_seam_reads_back_integers_text_and_nulls() {
    let conn = PgConn::connect(&fresh_database("seam_values")).unwrap();
    conn.batch("CREATE TABLE t (n BIGINT, s TEXT)").unwrap();
    conn.execute(
        "INSERT INTO t VALUES (?1, ?2)",
        params![i64::MAX, "héllo ?1 'x'"],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO t VALUES (?1, ?2)",
        params![None::<i64>, None::<&str>],
    )
    .unwrap();
    // Placeholders out of textual order, and one used twice.
    conn.execute(
        "INSERT INTO t (s, n) VALUES (?2, ?1 * 2)",
        params![-21i64, "neg"],
    )
    .unwrap();
    let rows = conn
        .query_all(
            "SELECT n, s FROM t ORDER BY n NULLS LAST",
            params![],
            |row| Ok::<_, SqlError>((row.get::<Option<i64>>(0)?, row.get::<Option<String>>(1)?)),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (Some(-42), Some("neg".to_owned())),
            (Some(i64::MAX), Some("héllo ?1 'x'".to_owned())),
            (None, None),
        ]
    );
    let none = conn
        .query_first("SELECT n FROM t WHERE s = ?1", params!["absent"], |row| {
            row.get::<i64>(0)
        })
        .unwrap()
        .unwrap();
    assert_eq!(none, None);
    // A NULL where a value is required is an error, not a zero.
    let null = conn
        .query_first("SELECT n FROM t WHERE n IS NULL", params![], |row| {
            row.get::<i64>(0)
        })
        .unwrap();
    assert!(null.is_err());
    let count = conn
        .query_first("SELECT COUNT(*) FROM t", params![], |row| row.get::<i64>(0))
        .unwrap()
        .unwrap();
    assert_eq!(count, Some(3));
}

#[test]
fn a_scan_reads_through_a_cursor_in_batches_and_leaves_the_connection_as_it_found_it() {
    let conn = PgConn::connect(&fresh_database("seam_scan")).unwrap();
    conn.batch(
        "CREATE TABLE t (n BIGINT PRIMARY KEY); \
         INSERT INTO t SELECT generate_series(1, 2500); \
         CREATE TABLE seen (n BIGINT)",
    )
    .unwrap();
    // Outside a transaction: every row in order over several batches, the visitor free to run
    // statements between rows (here an insert and a nested scan), and no transaction left open.
    let mut visited = Vec::new();
    conn.scan_each(
        "SELECT n FROM t WHERE n > ?1 ORDER BY n",
        params![0i64],
        |row| {
            let n: i64 = row.get(0)?;
            if n % 1000 == 0 {
                conn.execute("INSERT INTO seen VALUES (?1)", params![n])?;
                let mut inner = 0;
                conn.scan_each("SELECT n FROM t WHERE n <= 3", params![], |_| {
                    inner += 1;
                    Ok::<_, SqlError>(imgshare_sql::Flow::Continue)
                })??;
                assert_eq!(inner, 3);
            }
            visited.push(n);
            Ok::<_, SqlError>(imgshare_sql::Flow::Continue)
        },
    )
    .unwrap()
    .unwrap();
    assert_eq!(visited, (1..=2500).collect::<Vec<i64>>());
    assert!(!conn.in_transaction());
    // The visitor's inserts were committed with the scan's own transaction.
    let seen = conn
        .query_all("SELECT n FROM seen ORDER BY n", params![], |row| {
            row.get::<i64>(0)
        })
        .unwrap()
        .unwrap();
    assert_eq!(seen, [1000, 2000]);

    // Stopping early and a visitor's own error close the cursor; a scan inside a write
    // transaction uses it and leaves it open for the caller's commit.
    let mut first = Vec::new();
    conn.scan_each("SELECT n FROM t ORDER BY n", params![], |row| {
        first.push(row.get::<i64>(0)?);
        Ok::<_, SqlError>(if first.len() == 3 {
            imgshare_sql::Flow::Stop
        } else {
            imgshare_sql::Flow::Continue
        })
    })
    .unwrap()
    .unwrap();
    assert_eq!(first, [1, 2, 3]);
    let refused = conn
        .scan_each("SELECT n FROM t ORDER BY n", params![], |_| {
            Err::<imgshare_sql::Flow, _>("the visitor's own error")
        })
        .unwrap();
    assert_eq!(refused, Err("the visitor's own error"));
    conn.begin_write().unwrap();
    let mut total = 0i64;
    conn.scan_each("SELECT n FROM t", params![], |row| {
        total += row.get::<i64>(0)?;
        Ok::<_, SqlError>(imgshare_sql::Flow::Continue)
    })
    .unwrap()
    .unwrap();
    conn.execute("INSERT INTO seen VALUES (?1)", params![total])
        .unwrap();
    assert!(conn.in_transaction());
    conn.commit().unwrap();
    assert_eq!(total, 2500 * 2501 / 2);
    let seen = conn
        .query_all("SELECT n FROM seen ORDER BY n", params![], |row| {
            row.get::<i64>(0)
        })
        .unwrap()
        .unwrap();
    assert_eq!(seen, [1000, 2000, total]);
}

#[test]
fn a_rolled_back_savepoint_undoes_only_its_own_work() {
    let conn = PgConn::connect(&fresh_database("seam_savepoint")).unwrap();
    conn.batch("CREATE TABLE t (n BIGINT PRIMARY KEY)").unwrap();
    conn.begin_write().unwrap();
    assert!(conn.in_transaction());
    conn.execute("INSERT INTO t VALUES (1)", params![]).unwrap();
    conn.savepoint("item").unwrap();
    conn.execute("INSERT INTO t VALUES (2)", params![]).unwrap();
    // A failed statement inside the savepoint does not doom the outer transaction.
    assert!(conn.execute("INSERT INTO t VALUES (1)", params![]).is_err());
    conn.rollback_to("item").unwrap();
    conn.savepoint("item").unwrap();
    conn.execute("INSERT INTO t VALUES (3)", params![]).unwrap();
    conn.release("item").unwrap();
    conn.commit().unwrap();
    assert!(!conn.in_transaction());
    let all = conn
        .query_all("SELECT n FROM t ORDER BY n", params![], |row| {
            row.get::<i64>(0)
        })
        .unwrap()
        .unwrap();
    assert_eq!(all, vec![1, 3]);
}

#[test]
fn two_connections_write_one_after_the_other() {
    let url = fresh_database("seam_lock");
    let first = PgConn::connect(&url).unwrap();
    first.batch("CREATE TABLE t (n BIGINT)").unwrap();
    first.begin_write().unwrap();
    let second_url = url.clone();
    let started = Instant::now();
    let second = std::thread::spawn(move || {
        let second = PgConn::connect(&second_url).unwrap();
        second.begin_write().unwrap();
        let waited = started.elapsed();
        // The first writer's row is visible once the lock is ours: it committed before.
        let seen = second
            .query_first("SELECT COUNT(*) FROM t", params![], |row| row.get::<i64>(0))
            .unwrap()
            .unwrap();
        second
            .execute("INSERT INTO t VALUES (2)", params![])
            .unwrap();
        second.commit().unwrap();
        (waited, seen)
    });
    std::thread::sleep(Duration::from_millis(400));
    first
        .execute("INSERT INTO t VALUES (1)", params![])
        .unwrap();
    first.commit().unwrap();
    let (waited, seen) = second.join().unwrap();
    assert!(
        waited >= Duration::from_millis(350),
        "the second writer got the lock after {waited:?}, while the first held it"
    );
    assert_eq!(seen, Some(1));
}

// --- the schema's append-only rules -------------------------------------------------------------

#[test]
fn the_trigger_refuses_update_delete_and_truncate_for_the_owner() {
    let url = fresh_database("owner_rules");
    let conn = open_postgres(&url, ProfileKind::Rackspace).unwrap();
    insert_event(&conn, 1).unwrap();
    for statement in [
        "UPDATE events SET data = '{\"forged\":true}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = conn.execute(statement, params![]).unwrap_err();
        assert!(
            message(&error).contains("events are append-only"),
            "{statement}: {error}"
        );
    }
    let count = conn
        .query_first("SELECT COUNT(*) FROM events", params![], |row| {
            row.get::<i64>(0)
        })
        .unwrap()
        .unwrap();
    assert_eq!(count, Some(1));
    // The profile record is written once, as on SQLite.
    let error = conn
        .execute("UPDATE database_meta SET value = 'glance'", params![])
        .unwrap_err();
    assert!(message(&error).contains("written once"), "{error}");
}

#[test]
fn the_application_role_may_only_insert_and_select_events() {
    let url = fresh_database("app_rules");
    let owner = open_postgres(&url, ProfileKind::Rackspace).unwrap();
    let role = unique("app");
    owner.batch(&format!("CREATE ROLE {role} LOGIN")).unwrap();
    grant_application_role(&owner, &role).unwrap();
    // A statement the server refuses: a generic database error in the server's words.
    let missing = grant_application_role(&owner, "no_such_role").unwrap_err();
    assert_eq!(missing.code(), "database_error");
    assert!(
        missing
            .to_string()
            .contains("role \"no_such_role\" does not exist"),
        "{missing}"
    );
    let database = url.rsplit_once('/').unwrap().1;
    let app_url = url_with(&url, database, Some(&role));
    // The application role opens the migrated, pinned database: checks only, no writes.
    let app = open_postgres(&app_url, ProfileKind::Rackspace).unwrap();
    insert_event(&app, 1).unwrap();
    let read = app
        .query_first("SELECT event_id FROM events", params![], |row| {
            row.get::<String>(0)
        })
        .unwrap()
        .unwrap();
    assert_eq!(read.as_deref(), Some("event-1"));
    // Read models are its to write.
    app.execute(
        "UPDATE projection_checkpoints SET position = 1 WHERE name = 'catalogue'",
        params![],
    )
    .unwrap();
    for statement in [
        "UPDATE events SET data = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
        "DROP TABLE events",
        "ALTER TABLE events DISABLE TRIGGER USER",
    ] {
        let error = app.execute(statement, params![]).unwrap_err();
        let text = message(&error);
        assert!(
            text.contains("permission denied") || text.contains("must be owner"),
            "{statement}: {text}"
        );
    }
}

// --- open_postgres's refusals -----------------------------------------------------------------

#[test]
fn open_migrates_pins_the_profile_and_reopens() {
    let url = fresh_database("open_fresh");
    let conn = open_postgres(&url, ProfileKind::Glance).unwrap();
    let tables = tables(&conn);
    for table in [
        "database_meta",
        "events",
        "proj_image_properties",
        "proj_image_tags",
        "proj_images",
        "proj_members",
        "proj_tasks",
        "projection_checkpoints",
        "refinery_schema_history",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    let version = conn
        .query_first(
            "SELECT MAX(version)::BIGINT FROM refinery_schema_history",
            params![],
            |row| row.get::<i64>(0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(version, Some(postgres_schema_version()));
    assert_eq!(postgres_schema_version(), 4);
    drop(open_postgres(&url, ProfileKind::Glance).unwrap());
}

#[test]
fn a_url_that_does_not_parse_is_refused_before_connecting() {
    // Needs no server, but runs only where the others do: none passes without PostgreSQL.
    base_url();
    for url in [
        "postgres://postgres@127.0.0.1:notaport/imgshare",
        "/var/lib/imgshare/imgshare.db",
        "mysql://root@127.0.0.1/imgshare",
    ] {
        let error = open_postgres(url, ProfileKind::Rackspace).unwrap_err();
        assert_eq!(error.code(), "invalid_database_url", "{url}: {error}");
        assert!(
            error.to_string().starts_with("not a PostgreSQL URL"),
            "{url}: {error}"
        );
    }
}

#[test]
fn a_refused_connection_is_unavailable_and_names_the_server() {
    base_url();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/imgshare");
    let error = open_postgres(&url, ProfileKind::Rackspace).unwrap_err();
    assert_eq!(error.code(), "database_unavailable", "{error}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_as_it_was() {
    let url = fresh_database("open_newer");
    let conn = open_postgres(&url, ProfileKind::Rackspace).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (99, 'from_the_future', '2031-01-01T00:00:00Z', '0')",
        params![],
    )
    .unwrap();
    let error = open_postgres(&url, ProfileKind::Rackspace).unwrap_err();
    assert_eq!(error.code(), "schema_too_new");
    assert_eq!(
        error.to_string(),
        format!(
            "schema version 99 is newer than this build's {}",
            postgres_schema_version()
        )
    );
    let history = conn
        .query_first(
            "SELECT COUNT(*) FROM refinery_schema_history",
            params![],
            |row| row.get::<i64>(0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(history, Some(postgres_schema_version() + 1));

    // A database whose only table is a newer build's history gets nothing of ours.
    let bare = PgConn::connect(&fresh_database("open_newer_bare")).unwrap();
    bare.batch(
        "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255), \
         applied_on VARCHAR(255), checksum VARCHAR(255)); \
         INSERT INTO refinery_schema_history VALUES (7, 'seventh', '2031-01-01T00:00:00Z', '0')",
    )
    .unwrap();
    let bare_url = url_with(&url, &current_database(&bare), None);
    let error = open_postgres(&bare_url, ProfileKind::Rackspace).unwrap_err();
    assert_eq!(error.code(), "schema_too_new", "{error}");
    assert_eq!(tables(&bare), vec!["refinery_schema_history".to_owned()]);
}

fn current_database(conn: &PgConn) -> String {
    conn.query_first("SELECT current_database()::TEXT", params![], |row| {
        row.get::<String>(0)
    })
    .unwrap()
    .unwrap()
    .unwrap()
}

#[test]
fn another_profile_is_refused_and_nothing_is_written() {
    let url = fresh_database("open_profile");
    drop(open_postgres(&url, ProfileKind::Glance).unwrap());
    let error = open_postgres(&url, ProfileKind::Rackspace).unwrap_err();
    assert_eq!(error.code(), "profile_mismatch");
    assert_eq!(
        error.to_string(),
        "the database was created with the glance profile and cannot be opened with the rackspace profile"
    );
    let conn = open_postgres(&url, ProfileKind::Glance).unwrap();
    let stored = conn
        .query_all("SELECT key, value FROM database_meta", params![], |row| {
            Ok::<_, SqlError>((row.get::<String>(0)?, row.get::<String>(1)?))
        })
        .unwrap()
        .unwrap();
    assert_eq!(stored, vec![("profile".to_owned(), "glance".to_owned())]);

    // A profile record without our schema: refused before any migration runs.
    let bare = PgConn::connect(&fresh_database("open_profile_bare")).unwrap();
    bare.batch(
        "CREATE TABLE database_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); \
         INSERT INTO database_meta VALUES ('profile', 'glance')",
    )
    .unwrap();
    let bare_url = url_with(&url, &current_database(&bare), None);
    let error = open_postgres(&bare_url, ProfileKind::Rackspace).unwrap_err();
    assert_eq!(error.code(), "profile_mismatch", "{error}");
    assert_eq!(tables(&bare), vec!["database_meta".to_owned()]);
}
