//! The log's contract on PostgreSQL, as `src/log/tests.rs` checks it on SQLite: a retried append
//! is a no-op, a partial retry is refused, a stale expected version is the typed conflict, and
//! writers in several processes leave gapless positions and an intact hash chain.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use imgshare_core::ProfileKind;
use imgshare_sql::postgres::PgConn;
use imgshare_sql::{params, RowExt, Sql};
use imgshare_store::{
    append, open_postgres, stream_version, verify_chain, AppendResult, Checked, ExpectedVersion,
    NewEvent, StoreError, StreamAppend,
};
use serde_json::json;
use uuid::Uuid;

use super::{fresh_database, message};

fn new_event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: format!("Type{n}"),
        schema_version: 1,
        // Key order and a float: the hash covers the stored bytes, which must come back as written.
        data: json!({"z": n, "a": {"y": [1.5, null, "é"], "b": false}}),
        metadata: json!({"correlation_id": format!("c{n}")}),
    }
}

fn to_stream(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamAppend {
    StreamAppend {
        stream_id: stream.to_owned(),
        expected,
        events,
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn count(conn: &PgConn) -> i64 {
    conn.query_first("SELECT COUNT(*) FROM events", params![], |row| {
        row.get::<i64>(0)
    })
    .unwrap()
    .unwrap()
    .unwrap()
}

#[test]
fn a_retried_append_writes_nothing_and_a_partial_retry_is_refused() {
    let conn = open_postgres(&fresh_database("log_retry"), ProfileKind::Rackspace).unwrap();
    let events = vec![new_event(1), new_event(2)];
    let call = [to_stream(
        "image-1",
        ExpectedVersion::NoStream,
        events.clone(),
    )];
    let AppendResult::Appended(written) = append(&conn, &call, now(), Checked::Nothing).unwrap()
    else {
        panic!("the first append was not written");
    };
    assert_eq!(
        written.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2]
    );
    // The same call again (a client retrying after a lost answer): the stored events, nothing new.
    match append(&conn, &call, now(), Checked::Nothing).unwrap() {
        AppendResult::AlreadyStored(stored) => assert_eq!(stored, written),
        other => panic!("a retry wrote again: {other:?}"),
    }
    assert_eq!(count(&conn), 2);
    // One stored id beside a new one is neither a retry nor a new append.
    let partial = [to_stream(
        "image-1",
        ExpectedVersion::Exact(2),
        vec![events[0].clone(), new_event(3)],
    )];
    let error = append(&conn, &partial, now(), Checked::Nothing).unwrap_err();
    assert!(
        matches!(&error, StoreError::PartialRetry { event_id } if *event_id == events[0].event_id),
        "{error:?}"
    );
    assert_eq!(count(&conn), 2);
    assert!(
        !conn.in_transaction(),
        "the refused append left a transaction open"
    );
}

#[test]
fn a_stale_expected_version_is_the_typed_conflict() {
    let conn = open_postgres(&fresh_database("log_conflict"), ProfileKind::Rackspace).unwrap();
    let first = [to_stream(
        "image-1",
        ExpectedVersion::NoStream,
        vec![new_event(1)],
    )];
    append(&conn, &first, now(), Checked::Nothing).unwrap();
    for stale in [ExpectedVersion::NoStream, ExpectedVersion::Exact(2)] {
        let call = [to_stream("image-1", stale, vec![new_event(2)])];
        let error = append(&conn, &call, now(), Checked::Nothing).unwrap_err();
        assert!(
            matches!(&error, StoreError::Conflict { actual: Some(1), expected, .. } if *expected == stale),
            "{error:?}"
        );
        assert_eq!(error.code(), "version_conflict");
    }
    let current = [to_stream(
        "image-1",
        ExpectedVersion::Exact(1),
        vec![new_event(2)],
    )];
    append(&conn, &current, now(), Checked::Nothing).unwrap();
    assert_eq!(stream_version(&conn, "image-1").unwrap(), Some(2));
}

#[test]
fn verify_chain_finds_a_row_a_superuser_changed() {
    let url = fresh_database("log_tamper");
    let conn = open_postgres(&url, ProfileKind::Rackspace).unwrap();
    let call = [to_stream(
        "image-1",
        ExpectedVersion::NoStream,
        (1..=3).map(new_event).collect(),
    )];
    append(&conn, &call, now(), Checked::Nothing).unwrap();
    let intact = verify_chain(&conn).unwrap();
    assert_eq!((intact.events_checked, intact.first_mismatch), (3, None));
    // The trigger stops the owner; a superuser can switch triggers off for its session, which
    // is what the chain is for.
    let refused = conn
        .execute(
            "UPDATE events SET data = '{}' WHERE position = 2",
            params![],
        )
        .unwrap_err();
    assert!(message(&refused).contains("append-only"), "{refused}");
    conn.batch(
        "SET session_replication_role = replica; \
         UPDATE events SET data = '{\"forged\":true}' WHERE position = 2; \
         SET session_replication_role = DEFAULT",
    )
    .unwrap();
    let report = verify_chain(&conn).unwrap();
    assert_eq!(report.first_mismatch, Some(2));
}

/// Processes, appends per process, streams they share.
const WRITERS: usize = 3;
const APPENDS: u64 = 60;
const STREAMS: u64 = 4;

/// Set in a child process: which writer it is; the child appends and exits.
const WRITER_VAR: &str = "IMGSHARE_TEST_POSTGRES_WRITER";

#[test]
fn writers_in_several_processes_leave_gapless_positions_and_an_intact_chain() {
    if let Ok(writer) = std::env::var(WRITER_VAR) {
        let url = std::env::var("IMGSHARE_TEST_POSTGRES_LOG_URL").unwrap();
        return write_as_child(&url, &writer);
    }
    let url = fresh_database("log_processes");
    let conn = open_postgres(&url, ProfileKind::Rackspace).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..WRITERS)
        .map(|writer| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "log::writers_in_several_processes_leave_gapless_positions_and_an_intact_chain",
                    "--test-threads",
                    "1",
                ])
                .env(WRITER_VAR, writer.to_string())
                .env("IMGSHARE_TEST_POSTGRES_LOG_URL", &url)
                // The child's harness prints its own summary, which is not this run's.
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    for child in &mut children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "a writer process failed: {status}");
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("a writer process did not finish within 180 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Each child's test harness ran exactly one test (the filter matched): a filter that
    // matched nothing would also exit 0, so count what they wrote.
    let events = u64::try_from(count(&conn)).unwrap();
    let expected = WRITERS as u64 * APPENDS * 3 / 2;
    assert_eq!(events, expected);
    let positions = conn
        .query_all(
            "SELECT position FROM events ORDER BY position",
            params![],
            |row| row.get::<i64>(0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        positions,
        (1..=i64::try_from(expected).unwrap()).collect::<Vec<_>>()
    );
    for stream in 0..STREAMS {
        let versions = conn
            .query_all(
                "SELECT version FROM events WHERE stream_id = ?1 ORDER BY version",
                params![format!("image-{stream}").as_str()],
                |row| row.get::<i64>(0),
            )
            .unwrap()
            .unwrap();
        assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>());
    }
    let report = verify_chain(&conn).unwrap();
    assert_eq!(report.events_checked, expected);
    assert_eq!(report.first_mismatch, None);
}

/// One writer: APPENDS appends of one or two events to streams the other writers also write,
/// each stating the version it read and retrying on the typed conflict.
fn write_as_child(url: &str, writer: &str) {
    let writer: u64 = writer.parse().unwrap();
    let conn = PgConn::connect(url).unwrap();
    let mut conflicts = 0u32;
    for n in 0..APPENDS {
        let stream = format!("image-{}", (n + writer) % STREAMS);
        // Appends alternate between one and two events: 3/2 events per append on average.
        let events: Vec<NewEvent> = (0..1 + n % 2).map(|i| new_event(n * 10 + i)).collect();
        let mut expected = match stream_version(&conn, &stream).unwrap() {
            None => ExpectedVersion::NoStream,
            Some(version) => ExpectedVersion::Exact(version),
        };
        loop {
            let call = [to_stream(&stream, expected, events.clone())];
            match append(&conn, &call, Utc::now(), Checked::Nothing) {
                Ok(AppendResult::Appended(_)) => break,
                Ok(other) => panic!("fresh events reported as stored: {other:?}"),
                Err(StoreError::Conflict { actual, .. }) => {
                    conflicts += 1;
                    expected = actual.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                }
                Err(other) => panic!("writer {writer}: {other}"),
            }
        }
    }
    eprintln!("writer {writer}: {APPENDS} appends, {conflicts} conflicts retried");
}

#[test]
fn a_read_only_session_and_a_dropped_connection_are_typed_errors() {
    let url = fresh_database("log_errors");
    let conn = open_postgres(&url, ProfileKind::Rackspace).unwrap();
    let one = || {
        [to_stream(
            "image-1",
            ExpectedVersion::Any,
            vec![new_event(1)],
        )]
    };

    // SQLSTATE 25006, as on a standby.
    conn.batch("SET default_transaction_read_only = on")
        .unwrap();
    let error = append(&conn, &one(), now(), Checked::Nothing).unwrap_err();
    assert_eq!(error.code(), "database_read_only", "{error:?}");
    assert!(!conn.in_transaction());
    conn.batch("SET default_transaction_read_only = off")
        .unwrap();
    append(&conn, &one(), now(), Checked::Nothing).unwrap();

    // The server ends the session (a restart, an operator): unavailable, worth a retry later.
    let pid = conn
        .query_first("SELECT pg_backend_pid()", params![], |row| {
            row.get::<i64>(0)
        })
        .unwrap()
        .unwrap()
        .unwrap();
    let admin = PgConn::connect(&url).unwrap();
    admin
        .execute("SELECT pg_terminate_backend(?1::INT4)", params![pid])
        .unwrap();
    let error = append(&conn, &one(), now(), Checked::Nothing).unwrap_err();
    assert_eq!(error.code(), "database_unavailable", "{error:?}");
    assert_eq!(error.kind(), imgshare_core::ErrorKind::Unavailable);
    assert_eq!(count(&admin), 1);
}
