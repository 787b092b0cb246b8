use super::*;
use crate::db::open_in_memory;
use rusqlite::Connection;
use chrono::{Duration, TimeZone};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap() + Duration::microseconds(123_456)
}

fn new_event(n: u32) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: format!("Type{n}"),
        schema_version: n,
        // Non-alphabetical keys and a float: must come back byte-identical.
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

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

fn appended(result: AppendResult) -> Vec<RecordedEvent> {
    match result {
        AppendResult::Appended(events) => events,
        other => panic!("expected Appended, got {other:?}"),
    }
}

#[test]
fn append_new_stream_assigns_versions_positions_and_chain() {
    let conn = open_in_memory().unwrap();
    let events: Vec<NewEvent> = (1..=3).map(new_event).collect();
    let append_call = [to_stream(
        "img-1",
        ExpectedVersion::NoStream,
        events.clone(),
    )];
    let written = appended(append(&conn, &append_call, t0(), Checked::Nothing).unwrap());

    assert_eq!(
        written.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(written.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(written[0].prev_hash, GENESIS_HASH);
    for pair in written.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let data: String = conn
        .query_row(
            "SELECT data FROM events WHERE position = ?1",
            [written[0].position],
            |r| r.get(0),
        )
        .unwrap();
    let expected_hash = event_hash(
        GENESIS_HASH,
        &RowForHash {
            position: written[0].position,
            event_id: &written[0].event_id.to_string(),
            stream_id: "img-1",
            version: 1,
            event_type: "Type1",
            schema_version: 1,
            data: &data,
            metadata: r#"{"correlation_id":"c1"}"#,
            recorded_at: "2026-11-23T10:00:00.123456Z",
        },
    );
    assert_eq!(written[0].hash, expected_hash);
    assert_eq!(data, r#"{"z":1,"a":{"y":[1.5,null,"é"],"b":false}}"#);

    let read = read_stream(&conn, "img-1").unwrap();
    assert_eq!(read, written);
    for (stored, sent) in read.iter().zip(&events) {
        assert_eq!(stored.data, sent.data);
        assert_eq!(stored.metadata, sent.metadata);
        assert_eq!(stored.event_id, sent.event_id);
    }
    assert_eq!(stream_version(&conn, "img-1").unwrap(), Some(3));
    assert_eq!(stream_version(&conn, "other").unwrap(), None);
    assert_eq!(
        head(&conn).unwrap(),
        Some((written[2].position, written[2].hash.clone()))
    );
}

#[test]
fn retry_with_same_ids_returns_already_stored() {
    let conn = open_in_memory().unwrap();
    let call = [to_stream(
        "s",
        ExpectedVersion::NoStream,
        vec![new_event(1), new_event(2)],
    )];
    let first = appended(append(&conn, &call, t0(), Checked::Nothing).unwrap());
    let again = append(&conn, &call, t0() + Duration::seconds(5), Checked::Nothing).unwrap();
    assert_eq!(again, AppendResult::AlreadyStored(first));
    assert_eq!(count(&conn), 2);
}

#[test]
fn partial_retry_is_rejected_and_writes_nothing() {
    let conn = open_in_memory().unwrap();
    let stored = new_event(1);
    append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::NoStream,
            vec![stored.clone()],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap();
    let fresh = new_event(2);
    let err = append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::Any,
            vec![fresh.clone(), stored.clone()],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap_err();
    match err {
        StoreError::PartialRetry { event_id } => assert_eq!(event_id, stored.event_id),
        other => panic!("expected PartialRetry, got {other:?}"),
    }
    assert_eq!(count(&conn), 1);
    assert!(find_by_event_ids(&conn, &[fresh.event_id])
        .unwrap()
        .is_empty());
}

#[test]
fn duplicate_ids_in_one_call_are_invalid() {
    let conn = open_in_memory().unwrap();
    let event = new_event(1);
    let err = append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::Any,
            vec![event.clone(), event],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::InvalidAppend(_)), "{err:?}");
    assert_eq!(count(&conn), 0);
}

#[test]
fn stale_expected_version_conflicts() {
    let conn = open_in_memory().unwrap();
    append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::NoStream,
            vec![new_event(1), new_event(2)],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap();
    let err = append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::Exact(1),
            vec![new_event(3)],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap_err();
    match err {
        StoreError::Conflict {
            stream_id,
            expected,
            actual,
        } => {
            assert_eq!(stream_id, "s");
            assert_eq!(expected, ExpectedVersion::Exact(1));
            assert_eq!(actual, Some(2));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(count(&conn), 2);
    let ok = appended(
        append(
            &conn,
            &[to_stream(
                "s",
                ExpectedVersion::Exact(2),
                vec![new_event(3)],
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap(),
    );
    assert_eq!(ok[0].version, 3);
}

#[test]
fn no_stream_on_existing_stream_conflicts() {
    let conn = open_in_memory().unwrap();
    append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::NoStream,
            vec![new_event(1)],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap();
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(0)] {
        let err = append(
            &conn,
            &[to_stream("s", expected, vec![new_event(2)])],
            t0(),
            Checked::Nothing,
        )
        .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { actual: Some(1), expected: e, .. } if *e == expected),
            "{err:?}"
        );
    }
    let err = append(
        &conn,
        &[to_stream(
            "new",
            ExpectedVersion::Exact(1),
            vec![new_event(3)],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: None, .. }),
        "{err:?}"
    );
    assert_eq!(count(&conn), 1);
}

#[test]
fn multi_stream_conflict_rolls_back_first_stream() {
    let mut conn = open_in_memory().unwrap();
    append(
        &conn,
        &[to_stream(
            "b",
            ExpectedVersion::NoStream,
            vec![new_event(1)],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap();

    let both = [
        to_stream("a", ExpectedVersion::NoStream, vec![new_event(2)]),
        to_stream("b", ExpectedVersion::NoStream, vec![new_event(3)]),
    ];
    {
        let tx = conn.transaction().unwrap();
        let err = append(&*tx, &both, t0(), Checked::Nothing).unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { stream_id, .. } if stream_id == "b"),
            "{err:?}"
        );
        // The savepoint already undid stream "a" inside the transaction.
        assert!(read_stream(&*tx, "a").unwrap().is_empty());
        // Dropping rolls the caller's transaction back.
    }
    assert!(read_stream(&conn, "a").unwrap().is_empty());
    assert_eq!(count(&conn), 1);

    let both = [
        to_stream("a", ExpectedVersion::NoStream, vec![new_event(4)]),
        to_stream("b", ExpectedVersion::Exact(1), vec![new_event(5)]),
    ];
    let tx = conn.transaction().unwrap();
    let written = appended(append(&*tx, &both, t0(), Checked::Nothing).unwrap());
    tx.commit().unwrap();
    assert_eq!(
        written
            .iter()
            .map(|e| (e.stream_id.as_str(), e.version))
            .collect::<Vec<_>>(),
        [("a", 1), ("b", 2)]
    );
    assert_eq!(count(&conn), 3);
    assert_eq!(verify_chain(&conn).unwrap().first_mismatch, None);
}

#[test]
fn update_and_delete_are_rejected_by_triggers() {
    let conn = open_in_memory().unwrap();
    append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::NoStream,
            vec![new_event(1)],
        )],
        t0(),
        Checked::Nothing,
    )
    .unwrap();
    let update = conn
        .execute("UPDATE events SET data = '{}'", [])
        .unwrap_err();
    assert!(
        update.to_string().contains("events are append-only"),
        "{update}"
    );
    let delete = conn.execute("DELETE FROM events", []).unwrap_err();
    assert!(
        delete.to_string().contains("events are append-only"),
        "{delete}"
    );
    assert_eq!(count(&conn), 1);
}

#[test]
fn verify_chain_detects_edited_row() {
    let conn = open_in_memory().unwrap();
    let written = appended(
        append(
            &conn,
            &[to_stream(
                "s",
                ExpectedVersion::NoStream,
                (1..=3).map(new_event).collect(),
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap(),
    );
    assert_eq!(
        verify_chain(&conn).unwrap(),
        ChainReport {
            events_checked: 3,
            first_mismatch: None
        }
    );

    conn.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
        .unwrap();
    let edited = written[1].position;
    conn.execute(
        "UPDATE events SET data = '{\"z\":99}' WHERE position = ?1",
        [edited],
    )
    .unwrap();
    assert_eq!(
        verify_chain(&conn).unwrap(),
        ChainReport {
            events_checked: 3,
            first_mismatch: Some(edited)
        }
    );
}

#[test]
fn verify_chain_detects_removed_row() {
    let conn = open_in_memory().unwrap();
    let written = appended(
        append(
            &conn,
            &[to_stream(
                "s",
                ExpectedVersion::NoStream,
                (1..=3).map(new_event).collect(),
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap(),
    );
    conn.execute_batch("DROP TRIGGER events_no_delete").unwrap();
    conn.execute(
        "DELETE FROM events WHERE position = ?1",
        [written[1].position],
    )
    .unwrap();
    // Every remaining row still matches its own hash; only the link breaks.
    assert_eq!(
        verify_chain(&conn).unwrap(),
        ChainReport {
            events_checked: 2,
            first_mismatch: Some(written[2].position)
        }
    );
}

#[test]
fn recorded_at_never_goes_backwards() {
    let conn = open_in_memory().unwrap();
    let later = t0() + Duration::seconds(5);
    append(
        &conn,
        &[to_stream(
            "s",
            ExpectedVersion::NoStream,
            vec![new_event(1)],
        )],
        later,
        Checked::Nothing,
    )
    .unwrap();
    let second = appended(
        append(
            &conn,
            &[to_stream(
                "s",
                ExpectedVersion::Exact(1),
                vec![new_event(2)],
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap(),
    );
    assert_eq!(second[0].recorded_at, later);
    assert_eq!(read_stream(&conn, "s").unwrap()[1].recorded_at, later);

    // Sub-microsecond precision is dropped so the returned value equals the stored one.
    let precise = later + Duration::nanoseconds(1_000_789);
    let third = appended(
        append(
            &conn,
            &[to_stream(
                "s",
                ExpectedVersion::Exact(2),
                vec![new_event(3)],
            )],
            precise,
            Checked::Nothing,
        )
        .unwrap(),
    );
    assert_eq!(third[0].recorded_at, later + Duration::microseconds(1_000));
    assert_eq!(read_stream(&conn, "s").unwrap()[2], third[0]);
}

#[test]
fn reads_by_position_range_and_until() {
    let conn = open_in_memory().unwrap();
    let a = appended(
        append(
            &conn,
            &[to_stream(
                "a",
                ExpectedVersion::NoStream,
                vec![new_event(1)],
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap(),
    );
    let b = appended(
        append(
            &conn,
            &[to_stream(
                "b",
                ExpectedVersion::NoStream,
                vec![new_event(2)],
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap(),
    );
    let a2 = appended(
        append(
            &conn,
            &[to_stream(
                "a",
                ExpectedVersion::Exact(1),
                vec![new_event(3)],
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap(),
    );

    let mut seen = Vec::new();
    for_each_event(&conn, a[0].position, Some(a2[0].position), |e| {
        seen.push(e.event_id);
        Ok::<_, StoreError>(())
    })
    .unwrap();
    assert_eq!(seen, [b[0].event_id, a2[0].event_id]);

    let mut calls = 0;
    let stopped: Result<(), StoreError> = for_each_event(&conn, 0, None, |_| {
        calls += 1;
        Err(StoreError::Busy)
    });
    assert!(matches!(stopped, Err(StoreError::Busy)));
    assert_eq!(calls, 1);

    assert_eq!(read_stream_until(&conn, "a", b[0].position).unwrap(), a);
    let found = find_by_event_ids(&conn, &[a2[0].event_id, Uuid::new_v4(), a[0].event_id]).unwrap();
    assert_eq!(found, [a[0].clone(), a2[0].clone()]);
}

#[test]
fn append_without_transaction_is_atomic() {
    let conn = open_in_memory().unwrap();
    assert!(conn.is_autocommit());
    let err = append(
        &conn,
        &[
            to_stream("a", ExpectedVersion::NoStream, vec![new_event(1)]),
            to_stream("a", ExpectedVersion::NoStream, vec![new_event(2)]),
        ],
        t0(),
        Checked::Nothing,
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(count(&conn), 0);
    assert!(conn.is_autocommit());
}

#[test]
fn corrupt_row_reports_position() {
    let cases = [
        ("data", "'not json'"),
        ("event_id", "'not-a-uuid'"),
        ("recorded_at", "'yesterday'"),
        ("version", "'seven'"),
    ];
    for (column, bad) in cases {
        let conn = open_in_memory().unwrap();
        append(
            &conn,
            &[to_stream(
                "s",
                ExpectedVersion::NoStream,
                vec![new_event(1)],
            )],
            t0(),
            Checked::Nothing,
        )
        .unwrap();
        // A raw INSERT bypasses append; the triggers only guard UPDATE/DELETE.
        let mut values = [
            ("event_id", "'6f1c1a52-9c1e-4c57-9a7f-0d5b9f1f2a10'"),
            ("version", "2"),
            ("data", "'{}'"),
            ("recorded_at", "'2026-11-23T10:00:00.000000Z'"),
        ];
        for value in &mut values {
            if value.0 == column {
                value.1 = bad;
            }
        }
        let sql = format!(
            "INSERT INTO events (position, event_id, stream_id, version, event_type, \
             schema_version, data, metadata, recorded_at, prev_hash, hash) \
             VALUES (42, {}, 's', {}, 'T', 1, {}, '{{}}', {}, 'x', 'y')",
            values[0].1, values[1].1, values[2].1, values[3].1
        );
        conn.execute_batch(&sql).unwrap();

        let err = read_stream(&conn, "s").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { position: 42, reason } if reason.contains(column)),
            "{column}: {err:?}"
        );
        let err = for_each_event(&conn, 0, None, |_| Ok::<_, StoreError>(())).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { position: 42, .. }),
            "{column}: {err:?}"
        );
    }
}
