//! The engine scenarios of `tests/engine/scenarios.rs` on SQLite files, opened by path through
//! `Engine::open_url`; `tests/postgres.rs` runs the same ones on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "engine/scenarios.rs"]
mod scenarios;

use imgshare_store::{open_file, DbOptions};

/// A new database file's path (the directory is removed when the test ends).
fn fresh() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("images.db");
    let location = path.to_str().unwrap().to_owned();
    (dir, location)
}

#[test]
fn register_share_accept_list_and_boot() {
    let (_dir, location) = fresh();
    scenarios::register_share_accept_list_and_boot(&location);
}

#[test]
fn a_retried_command_is_a_no_op() {
    let (_dir, location) = fresh();
    scenarios::a_retried_command_is_a_no_op(&location);
}

#[test]
fn engines_sharing_a_database_never_decide_on_stale_state() {
    let (_dir, location) = fresh();
    scenarios::engines_sharing_a_database_never_decide_on_stale_state(&location);
}

#[test]
fn rebuild_equals_the_incremental_read_models_and_verify_passes() {
    let (_dir, location) = fresh();
    scenarios::rebuild_equals_the_incremental_read_models_and_verify_passes(&location);
}

#[test]
fn a_log_longer_than_a_scan_batch_is_read_whole_in_order() {
    let (_dir, location) = fresh();
    scenarios::a_log_longer_than_a_scan_batch_is_read_whole_in_order(&location);
}

#[test]
fn a_stale_expected_version_conflicts() {
    let (_dir, location) = fresh();
    // The engine creates the file; the test's own connection opens it afterwards.
    drop(scenarios::open(&location));
    let conn = open_file(std::path::Path::new(&location), &DbOptions::default()).unwrap();
    scenarios::a_stale_expected_version_conflicts(&location, &conn);
}

#[test]
fn a_postgres_url_is_not_taken_for_a_file_name() {
    let opened = imgshare_store::Engine::open_url(
        "postgresql://nobody@127.0.0.1:1/none",
        imgshare_store::EngineOptions::default(),
    );
    let error = opened.unwrap_err();
    // Without the backend: refused as a URL; with it: no server listens on port 1.
    assert!(
        ["invalid_database_url", "database_unavailable"].contains(&error.code()),
        "{error}"
    );
}

#[test]
fn a_log_copied_there_and_back_keeps_its_hashes() {
    let (_a, first) = fresh();
    let (_b, second) = fresh();
    let (_c, third) = fresh();
    scenarios::a_log_copied_there_and_back_keeps_its_hashes(&first, &second, &third);
}

#[test]
fn a_source_whose_chain_is_broken_is_not_copied() {
    let (_a, first) = fresh();
    let (_b, second) = fresh();
    scenarios::register_share_accept_list_and_boot(&first);
    {
        // Changing a stored event takes dropping the trigger first, as an attacker would.
        let conn = open_file(std::path::Path::new(&first), &DbOptions::default()).unwrap();
        conn.execute_batch(
            "DROP TRIGGER events_no_update; \
             UPDATE events SET data = replace(data, 'shared', 'sh4red') WHERE position = 1",
        )
        .unwrap();
    }
    let source = scenarios::open(&first);
    let target = scenarios::open(&second);
    let refused = target.copy_log_from(&source, |_| {}).unwrap_err();
    assert_eq!(refused.code(), "copy_source_chain_broken");
    assert!(refused.to_string().contains("position 1"), "{refused}");
    assert_eq!(target.head().unwrap(), None);
}

#[test]
fn on_sqlite_task_announcements_are_left_to_the_timer() {
    let (_dir, location) = fresh();
    let engine = scenarios::open(&location);
    assert!(!engine.runs_on_postgres());
    assert!(engine.task_listener().unwrap().is_none());
    engine.notify_task_workers().unwrap();
}
