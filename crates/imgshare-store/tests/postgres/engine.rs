//! The engine scenarios of `tests/engine/scenarios.rs` (also run on SQLite by `tests/engine.rs`)
//! on PostgreSQL: each in a database of its own, opened by URL through `Engine::open_url`.

use imgshare_sql::Sql;
use imgshare_store::{Difference, PgConn};

use super::{base_url, fresh_database, scenarios, unique, url_with};

#[test]
fn register_share_accept_list_and_boot() {
    scenarios::register_share_accept_list_and_boot(&fresh_database("engine_share"));
}

#[test]
fn a_retried_command_is_a_no_op() {
    scenarios::a_retried_command_is_a_no_op(&fresh_database("engine_retry"));
}

#[test]
fn engines_sharing_a_database_never_decide_on_stale_state() {
    scenarios::engines_sharing_a_database_never_decide_on_stale_state(&fresh_database(
        "engine_shared",
    ));
}

#[test]
fn rebuild_equals_the_incremental_read_models_and_verify_passes() {
    scenarios::rebuild_equals_the_incremental_read_models_and_verify_passes(&fresh_database(
        "engine_rebuild",
    ));
}

/// In a database whose default text order is a language's (ICU `en-US`: `_c, a, b, B`), not
/// the bytes' (`B, _c, a, b`), the engine's lists, rebuild and `verify` behave as in a `C`
/// database: keys compare byte for byte everywhere (the schema's `COLLATE "C"` columns).
#[test]
fn verify_passes_in_a_database_with_a_language_collation() {
    let base = base_url();
    let name = unique("engine_icu");
    PgConn::connect(&base)
        .unwrap()
        .batch(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' \
             LOCALE 'C.UTF-8'"
        ))
        .unwrap();
    scenarios::rebuild_equals_the_incremental_read_models_and_verify_passes(&url_with(
        &base, &name, None,
    ));
}

#[test]
fn a_stale_expected_version_conflicts() {
    let location = fresh_database("engine_stale");
    // The engine migrates the new database; the test's own connection comes afterwards.
    drop(scenarios::open(&location));
    let conn = PgConn::connect(&location).unwrap();
    scenarios::a_stale_expected_version_conflicts(&location, &conn);
}

#[test]
fn the_sqlite_connection_escape_hatch_is_refused_clearly() {
    let engine = scenarios::open(&fresh_database("engine_read"));
    let error = engine.read(|_| Ok(())).unwrap_err();
    assert_eq!(error.code(), "sqlite_only");
    assert!(error.to_string().contains("Engine::read"), "{error}");
    assert!(engine.path().is_none());
    assert!(!engine.storage_full().unwrap());
}

#[test]
fn verify_finds_a_read_model_row_changed_behind_the_engine() {
    let location = fresh_database("engine_tampered");
    scenarios::register_share_accept_list_and_boot(&location);
    let engine = scenarios::open(&location);
    assert!(engine.verify().unwrap().is_ok());
    let conn = PgConn::connect(&location).unwrap();
    conn.batch("UPDATE proj_images SET name = 'tampered' WHERE name = 'own'")
        .unwrap();
    let report = engine.verify().unwrap();
    assert_eq!(report.rows_differing, Some(1), "{report:?}");
    match report.first_difference {
        Some(Difference::Row {
            table,
            stored: Some(stored),
            replayed: Some(replayed),
            ..
        }) => {
            assert_eq!(table, "proj_images");
            assert!(stored.contains("Text(\"tampered\")"), "{stored}");
            assert!(replayed.contains("Text(\"own\")"), "{replayed}");
        }
        other => panic!("{other:?}"),
    }
    // A rebuild writes the row again from the log.
    engine.rebuild(|_| {}).unwrap();
    assert!(engine.verify().unwrap().is_ok());
}
