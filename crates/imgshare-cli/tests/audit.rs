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
    // The demo image's bytes are a 64 KiB fixed VHD.
    assert_eq!(lines[0]["image"]["virtual_size"], 65536);
    assert!(
        lines[0]["image"]
            .as_object()
            .unwrap()
            .values()
            .all(|value| !value.is_null()),
        "Rackspace omits null keys"
    );
    let glance_dir = dir.path().join("glance");
    std::fs::create_dir(&glance_dir).unwrap();
    let glance_db = glance_dir.join("demo.db");
    stdout(&imgshare(&["demo", "--profile", "glance"], &glance_db));
    let glance = json_lines(&stdout(&imgshare(&["replay", "--to", "3"], &glance_db)));
    // Each profile's shape: Glance's `os_*` fields (the sha512 of the demo disk), none on Rackspace.
    assert_eq!(glance[0]["image"]["os_hash_algo"], "sha512");
    assert_eq!(glance[0]["image"]["os_hidden"], false);
    assert_eq!(lines[0]["image"].get("os_hash_algo"), None);
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

fn imgshare_code(args: &[&str], db: &Path) -> (Option<i32>, String, String) {
    let output = imgshare(args, db);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_glance_database_is_judged_as_glance_and_refuses_rackspace() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("glance.db");
    stdout(&imgshare(&["demo", "--profile", "glance"], &db));
    for args in [
        &["log", "--profile", "rackspace"][..],
        &["demo", "--profile", "rackspace"],
        &["rebuild", "--profile", "rackspace"],
    ] {
        let (code, _, stderr) = imgshare_code(args, &db);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(
            stderr.contains(
                "the database was created with the glance profile and cannot be opened with the rackspace profile"
            ),
            "{args:?}: {stderr}"
        );
    }
    let (code, _, stderr) = imgshare_code(&["verify", "--profile", "rackspace"], &db);
    assert_eq!(code, Some(2), "{stderr}");
    // Without --profile the audit reads the recorded one: the image is `shared`, which only the
    // Glance profile shows, so a Rackspace answer would differ.
    let all = json_lines(&stdout(&imgshare(&["log"], &db)));
    let image = all[0]["data"]["image_id"].as_str().unwrap();
    let lines = json_lines(&stdout(&imgshare(&["replay", "--to", "2"], &db)));
    assert_eq!(lines[0]["image"]["id"], image);
    assert_eq!(lines[0]["image"]["visibility"], "shared");
    stdout(&imgshare(&["verify"], &db));
}

#[test]
fn verify_expect_head_catches_a_truncated_log_that_plain_verify_misses() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let anchor = stdout(&imgshare(&["head"], &db)).trim().to_owned();
    assert!(anchor.starts_with("7:"), "{anchor}");
    let (code, out, stderr) = imgshare_code(&["verify", "--expect-head", &anchor], &db);
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["expected_head"]["mismatch"], Value::Null);

    // Cut the last two events and rebuild the read models to match: chain and read models are
    // consistent again, so only the anchor can tell.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "DROP TRIGGER events_no_delete;
             DELETE FROM events WHERE position > 5;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
    }
    stdout(&imgshare(&["rebuild"], &db));
    let (code, _, stderr) = imgshare_code(&["verify"], &db);
    assert_eq!(code, Some(0), "plain verify cannot see a cut end: {stderr}");
    let (code, out, stderr) = imgshare_code(&["verify", "--expect-head", &anchor], &db);
    assert_eq!(code, Some(1), "{stderr}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["expected_head"]["mismatch"]["kind"], "truncated");
    assert_eq!(report["expected_head"]["mismatch"]["head"], 5);
    assert!(stderr.contains("the log was truncated"), "{stderr}");

    // A log rebuilt from scratch with a fresh, consistent chain has other hashes.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let rewritten = demo_db(&other);
    let (code, out, stderr) = imgshare_code(&["verify", "--expect-head", &anchor], &rewritten);
    assert_eq!(code, Some(1), "{stderr}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["expected_head"]["mismatch"]["kind"], "rewritten");
    assert!(
        stderr.contains("was rewritten up to position 7"),
        "{stderr}"
    );
}

#[test]
fn verify_exits_2_when_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    for bad in ["7", "x:ab", "-1:00", "7:abc"] {
        let arg = format!("--expect-head={bad}");
        let (code, out, stderr) = imgshare_code(&["verify", &arg], &db);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(out.is_empty());
        assert!(stderr.contains("POSITION:HASH"), "{bad}: {stderr}");
    }
    let (code, _, stderr) = imgshare_code(&["verify"], &dir.path().join("missing.db"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(!dir.path().join("missing.db").exists());
    let (code, _, _) = imgshare_code(&["head"], &dir.path().join("missing.db"));
    assert_eq!(code, Some(1));
}

#[test]
fn a_backup_restores_to_a_database_that_verifies_and_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let anchor = stdout(&imgshare(&["head"], &db)).trim().to_owned();
    let copy = dir.path().join("backup.db");
    let to = copy.to_str().unwrap();
    let printed = stdout(&imgshare(&["backup", "--to", to], &db));
    assert_eq!(
        printed.trim(),
        anchor,
        "the copy ends where the source does"
    );

    // Restore: the copy is put where a database is expected and used as one.
    let restored = dir.path().join("restored.db");
    std::fs::copy(&copy, &restored).unwrap();
    let (code, _, stderr) = imgshare_code(&["verify", "--expect-head", &anchor], &restored);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout(&imgshare(&["log"], &restored)),
        stdout(&imgshare(&["log"], &db))
    );

    let before = contents(&copy);
    let (code, _, stderr) = imgshare_code(&["backup", "--to", to], &db);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(contents(&copy), before);
    let (code, _, stderr) = imgshare_code(
        &["backup", "--to", dir.path().join("x.db").to_str().unwrap()],
        &dir.path().join("missing.db"),
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(!dir.path().join("x.db").exists());
}

#[test]
fn demo_without_db_leaves_no_database_behind() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .arg("demo")
        .current_dir(dir.path())
        .env_remove("IMGSHARE_DB")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(text.contains("a temporary database"), "{text}");
    assert!(text.contains("Consumer: accept"), "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
