//! The audit commands as a user runs them: `log`, `replay`, `audit access`, `audit history` and
//! `verify` on a database that `imgshare demo` filled.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn imgshare(args: &[&str], db: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A database with the demo's seven events (register, activate, share, accept, reject, update,
/// unshare).
fn demo_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("demo.db");
    stdout(&imgshare(&["demo"], &db));
    db
}

/// The main database file's bytes (callers checkpoint the WAL into it first).
fn contents(db: &Path) -> Vec<u8> {
    std::fs::read(db).unwrap()
}

#[test]
fn log_prints_every_event_as_json_lines_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let all = json_lines(&stdout(&imgshare(&["log"], &db)));
    assert_eq!(all.len(), 7);
    let positions: Vec<i64> = all
        .iter()
        .map(|line| line["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(all[0]["event_type"], "image_registered");
    assert_eq!(all[0]["metadata"]["actor"]["tenant_id"], "111111");
    assert_eq!(all[3]["schema_version"], 2, "written by the current code");
    assert_eq!(all[3]["data"]["previous_status"], "pending");

    let answers = json_lines(&stdout(&imgshare(
        &["log", "--type", "member_status_changed"],
        &db,
    )));
    assert_eq!(answers.len(), 2);
    let consumer = json_lines(&stdout(&imgshare(&["log", "--account", "222222"], &db)));
    assert_eq!(consumer.len(), 4, "shared, accepted, rejected, unshared");
    let stream = all[0]["stream_id"].as_str().unwrap();
    let by_stream = json_lines(&stdout(&imgshare(&["log", "--stream", stream], &db)));
    assert_eq!(by_stream.len(), 7);
    let later = json_lines(&stdout(&imgshare(
        &["log", "--since", "2999-01-01T00:00:00Z"],
        &db,
    )));
    assert!(later.is_empty());
}

#[test]
fn verify_passes_then_fails_at_the_tampered_position_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let ok = imgshare(&["verify"], &db);
    let report: Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(report["events_checked"], 7);
    assert_eq!(report["first_difference"], Value::Null);

    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "DROP TRIGGER events_no_update;
             UPDATE events SET data = '{\"member_id\":\"999999\"}' WHERE position = 3;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
    }
    let before = contents(&db);
    let failed = imgshare(&["verify"], &db);
    assert!(!failed.status.success());
    let report: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(report["first_difference"]["kind"], "chain");
    assert_eq!(report["first_difference"]["position"], 3);
    assert!(String::from_utf8_lossy(&failed.stderr).contains("first difference at position 3"));
    assert_eq!(contents(&db), before, "verify never writes");
}

#[test]
fn audit_access_and_history_answer_for_a_past_moment() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let all = json_lines(&stdout(&imgshare(&["log"], &db)));
    let image = all[0]["data"]["image_id"].as_str().unwrap();

    let at_accept: Value = serde_json::from_str(&stdout(&imgshare(
        &["audit", "access", image, "--at", "4"],
        &db,
    )))
    .unwrap();
    assert_eq!(at_accept["position"], 4);
    let consumer = at_accept["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|account| account["tenant_id"] == "222222")
        .unwrap();
    assert_eq!(consumer["why"]["reason"], "member");
    assert_eq!(consumer["why"]["member_status"], "accepted");
    assert_eq!(consumer["can_boot"], true);

    // The time of the last event: the share has been removed by then.
    let last_time = all[6]["recorded_at"].as_str().unwrap();
    let at_end: Value = serde_json::from_str(&stdout(&imgshare(
        &["audit", "access", image, "--at", last_time],
        &db,
    )))
    .unwrap();
    assert_eq!(at_end["position"], 7);
    assert_eq!(at_end["accounts"].as_array().unwrap().len(), 1);

    let history = json_lines(&stdout(&imgshare(&["audit", "history", image], &db)));
    assert_eq!(history.len(), 7);
    assert_eq!(history[4]["data"]["previous_status"], "accepted");
    assert_eq!(history[4]["actor"]["tenant_id"], "222222");

    let bad = imgshare(&["audit", "access", image, "--at", "yesterday"], &db);
    assert!(!bad.status.success());
}

#[test]
fn replay_to_prints_the_past_catalogue_and_replay_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let before = contents(&db);
    let output = imgshare(&["replay", "--to", "3"], &db);
    let lines = json_lines(&stdout(&output));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["last_position"], 3);
    assert_eq!(lines[0]["members"][0]["status"], "pending");
    assert_eq!(
        lines[0]["image"].get("someAttribute"),
        None,
        "updated later"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("events/s"));
    assert_eq!(
        lines[0]["image"].get("virtual_size"),
        None,
        "Rackspace omits null keys"
    );
    let glance = json_lines(&stdout(&imgshare(
        &["replay", "--to", "3", "--profile", "glance"],
        &db,
    )));
    assert_eq!(
        glance[0]["image"].get("virtual_size"),
        Some(&Value::Null),
        "Glance shows them"
    );
    assert_eq!(
        contents(&db),
        before,
        "replay --to leaves the database as it was"
    );

    // Break a read-model row, then rebuild: verify is clean again.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("DELETE FROM proj_images;").unwrap();
    }
    assert!(!imgshare(&["verify"], &db).status.success());
    let rebuilt = stdout(&imgshare(&["replay"], &db));
    assert!(rebuilt.contains("7 events"), "{rebuilt}");
    assert!(rebuilt.contains("events/s"), "{rebuilt}");
    assert!(imgshare(&["verify"], &db).status.success());

    // The same through a memory map.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("UPDATE proj_images SET name = 'tampered';")
            .unwrap();
    }
    assert!(!imgshare(&["verify"], &db).status.success());
    let rebuilt = stdout(&imgshare(&["replay", "--mmap-mib", "16"], &db));
    assert!(rebuilt.contains("7 events"), "{rebuilt}");
    assert!(imgshare(&["verify"], &db).status.success());
}

#[test]
fn audit_commands_refuse_a_missing_database_and_do_not_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    for args in [
        &["log"][..],
        &["verify"],
        &["replay"],
        &["replay", "--to", "1"],
        &["audit", "history", "00000000-0000-0000-0000-000000000001"],
    ] {
        let output = imgshare(args, &missing);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("no database at"),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!missing.exists(), "{args:?} created the file");
    }
}

#[test]
fn replay_refuses_a_memory_map_it_cannot_use_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let before = contents(&db);
    for (args, expected) in [
        // A report reads the file read-only; the map is for the rebuild.
        (
            &["replay", "--to", "3", "--mmap-mib", "16"][..],
            "cannot be used with",
        ),
        (&["replay", "--mmap-mib", "lots"][..], "invalid value"),
        (&["replay", "--mmap-mib", "-1"][..], "unexpected argument"),
    ] {
        let output = imgshare(args, &db);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(contents(&db), before);
}
