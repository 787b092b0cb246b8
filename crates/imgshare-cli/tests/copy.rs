//! `imgshare copy` between SQLite files, as a user runs it. The same command between SQLite and
//! PostgreSQL, both ways, runs in `tests/postgres/copy.sh`.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn imgshare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .args(args)
        .env_remove("IMGSHARE_DB")
        .output()
        .unwrap()
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A database with the demo's seven events, under `profile`.
fn demo_db(dir: &Path, profile: &str) -> PathBuf {
    let db = dir.join(format!("demo-{profile}.db"));
    stdout(&imgshare(&[
        "demo",
        "--db",
        text(&db),
        "--profile",
        profile,
    ]));
    db
}

#[test]
fn a_copy_has_the_same_log_hashes_and_profile_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for profile in ["rackspace", "glance"] {
        let source = demo_db(dir.path(), profile);
        let target = dir.path().join(format!("copy-{profile}.db"));
        let copied = imgshare(&["copy", "--from", text(&source), "--to", text(&target)]);
        let anchor = stdout(&copied).trim().to_owned();
        assert!(
            stderr(&copied).contains("copied 7 events"),
            "{}",
            stderr(&copied)
        );
        assert!(stderr(&copied).contains("verified"), "{}", stderr(&copied));

        let head = |db: &Path| stdout(&imgshare(&["head", "--db", text(db)]));
        assert_eq!(head(&source).trim(), anchor);
        assert_eq!(head(&target).trim(), anchor);
        let log = |db: &Path| stdout(&imgshare(&["log", "--db", text(db)]));
        assert_eq!(
            log(&target),
            log(&source),
            "every stored column, row for row"
        );
        let verified = imgshare(&["verify", "--db", text(&target), "--expect-head", &anchor]);
        stdout(&verified);

        // The copy records the source's profile: opening it with the other one is refused.
        let other = if profile == "glance" {
            "rackspace"
        } else {
            "glance"
        };
        let refused = imgshare(&["log", "--db", text(&target), "--profile", other]);
        assert!(!refused.status.success());
        assert!(stderr(&refused).contains(profile), "{}", stderr(&refused));
    }
}

#[test]
fn a_copy_never_overwrites_and_needs_a_source_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let source = demo_db(dir.path(), "rackspace");
    let existing = dir.path().join("existing.db");
    std::fs::write(&existing, b"not to be touched").unwrap();
    let refused = imgshare(&["copy", "--from", text(&source), "--to", text(&existing)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("already exists"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"not to be touched");

    let same = imgshare(&["copy", "--from", text(&source), "--to", text(&source)]);
    assert_eq!(same.status.code(), Some(1));
    assert!(
        stderr(&same).contains("the same database"),
        "{}",
        stderr(&same)
    );

    let missing = dir.path().join("missing.db");
    let target = dir.path().join("target.db");
    let refused = imgshare(&["copy", "--from", text(&missing), "--to", text(&target)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("no database at"),
        "{}",
        stderr(&refused)
    );
    assert!(!missing.exists(), "the source is never created");
    assert!(!target.exists());

    // An empty log: `rebuild` created the schema, nothing was ever executed.
    let empty = dir.path().join("empty.db");
    stdout(&imgshare(&["rebuild", "--db", text(&empty)]));
    let refused = imgshare(&["copy", "--from", text(&empty), "--to", text(&target)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("has no events"),
        "{}",
        stderr(&refused)
    );
    assert!(!target.exists());
}

#[test]
fn a_source_with_a_broken_chain_is_refused_and_leaves_no_target() {
    let dir = tempfile::tempdir().unwrap();
    let source = demo_db(dir.path(), "rackspace");
    {
        let conn = rusqlite::Connection::open(&source).unwrap();
        conn.execute_batch(
            "DROP TRIGGER events_no_update;
             UPDATE events SET data = '{\"member_id\":\"999999\"}' WHERE position = 3;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
    }
    let target = dir.path().join("target.db");
    let refused = imgshare(&["copy", "--from", text(&source), "--to", text(&target)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("hash chain breaks at position 3"),
        "{}",
        stderr(&refused)
    );
    for suffix in ["", "-wal", "-shm"] {
        let leftover = PathBuf::from(format!("{}{suffix}", target.display()));
        assert!(!leftover.exists(), "{} left behind", leftover.display());
    }
}
