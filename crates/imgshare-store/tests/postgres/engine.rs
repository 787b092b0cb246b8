//! The engine scenarios of `tests/engine/scenarios.rs` (also run on SQLite by `tests/engine.rs`)
//! on PostgreSQL: each in a database of its own, opened by URL through `Engine::open_url`.

use imgshare_core::{Actor, Command, Context, ImageCommand, Region};
use imgshare_sql::Sql;
use imgshare_store::{grant_application_role, BatchItem, Difference, Engine, EngineError, PgConn};
use uuid::Uuid;

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

#[test]
fn a_log_longer_than_a_scan_batch_is_read_whole_in_order() {
    scenarios::a_log_longer_than_a_scan_batch_is_read_whole_in_order(&fresh_database(
        "engine_long_scan",
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

fn add_member(image_id: Uuid, member_id: &str) -> BatchItem {
    BatchItem {
        ctx: Context::new(
            Actor::tenant("111", "user", &["cloudImages:admin"]),
            Region::parse("DFW").unwrap(),
            chrono::Utc::now(),
        ),
        command_id: Uuid::now_v7(),
        command: Command::Image {
            image_id,
            command: ImageCommand::AddMember {
                member_id: member_id.into(),
            },
        },
    }
}

fn members(engine: &Engine, image_id: Uuid) -> Vec<String> {
    let image = engine.image_state(image_id).unwrap().unwrap();
    image.members.keys().cloned().collect()
}

/// Three commands of one batch, the second failing in the database after its event is appended
/// (a read-model row refused by a trigger): PostgreSQL's transaction is unusable after the
/// failed statement, so the group runs again with a savepoint per command, and only the
/// failing command is undone.
#[test]
fn a_command_that_fails_after_writing_is_undone_alone_and_the_rest_commit() {
    let location = fresh_database("engine_after_writing");
    let engine = scenarios::open(&location);
    let image_id = scenarios::register_for_tests(&engine);
    PgConn::connect(&location)
        .unwrap()
        .batch(
            "CREATE FUNCTION refuse_member() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
             CREATE TRIGGER refuse_member BEFORE INSERT ON proj_members
             FOR EACH ROW WHEN (NEW.member_id = '999999') EXECUTE FUNCTION refuse_member();",
        )
        .unwrap();
    let (head, _) = engine.head().unwrap().unwrap();
    let results = engine
        .execute_batch(vec![
            add_member(image_id, "222"),
            add_member(image_id, "999999"),
            add_member(image_id, "333"),
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err());
    let reopened = scenarios::open(&location);
    assert_eq!(members(&reopened, image_id), ["222", "333"]);
    assert_eq!(reopened.head().unwrap().unwrap().0, head + 2, "gapless");
    assert!(reopened.verify().unwrap().is_ok());
}

/// A command of a batch that fails in the database before writing anything (here: reading its
/// stream is refused by a row-level security policy) leaves PostgreSQL's transaction unusable;
/// the other commands of the batch still commit, and only they.
#[test]
fn a_command_whose_read_fails_in_the_database_does_not_undo_the_others() {
    let location = fresh_database("engine_read_fails");
    let owner = scenarios::open(&location);
    let refused = scenarios::register_for_tests(&owner);
    let image_id = scenarios::register_for_tests(&owner);
    let role = unique("engine_app");
    let admin = PgConn::connect(&location).unwrap();
    admin.batch(&format!("CREATE ROLE {role} LOGIN")).unwrap();
    grant_application_role(&admin, &role).unwrap();
    admin
        .batch(&format!(
            "CREATE FUNCTION readable(stream TEXT) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN
               IF stream = 'image-{refused}' THEN RAISE EXCEPTION 'refused for the test'; END IF;
               RETURN true;
             END $$;
             ALTER TABLE events ENABLE ROW LEVEL SECURITY;
             CREATE POLICY events_read ON events FOR SELECT USING (readable(stream_id));
             CREATE POLICY events_insert ON events FOR INSERT WITH CHECK (true);"
        ))
        .unwrap();
    let database = location.rsplit_once('/').unwrap().1;
    let app = scenarios::open(&url_with(&location, database, Some(&role)));
    let (head, _) = app.head().unwrap().unwrap();
    let results = app
        .execute_batch(vec![
            add_member(image_id, "222"),
            add_member(refused, "222"),
            add_member(image_id, "333"),
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let error = results[1].as_ref().unwrap_err();
    assert!(
        error.to_string().contains("refused for the test"),
        "{error}"
    );
    // What was answered as done is in the database.
    assert_eq!(members(&owner, image_id), ["222", "333"]);
    assert_eq!(owner.head().unwrap().unwrap().0, head + 2);
}

#[test]
fn a_log_moves_from_sqlite_to_postgres_and_back_with_its_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("from.db");
    let third = dir.path().join("back.db");
    scenarios::a_log_copied_there_and_back_keeps_its_hashes(
        first.to_str().unwrap(),
        &fresh_database("copy_there"),
        third.to_str().unwrap(),
    );
}

/// Ends every other session on `location`'s database, as a restart or failover does.
fn terminate_sessions(location: &str) {
    let admin = PgConn::connect(location).unwrap();
    admin
        .batch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .unwrap();
}

/// `call` after the engine's connections were dropped: the first attempt on a dropped
/// connection may fail as unavailable (a 503 for an HTTP client), the next one must succeed.
fn after_one_unavailable<T>(mut call: impl FnMut() -> Result<T, EngineError>) -> (T, bool) {
    match call() {
        Ok(value) => (value, false),
        Err(error) => {
            assert_eq!(error.code(), "database_unavailable", "{error}");
            (call().unwrap(), true)
        }
    }
}

#[test]
fn an_engine_whose_connections_were_dropped_answers_unavailable_once_then_reconnects() {
    let location = fresh_database("engine_reconnect");
    let engine = scenarios::open(&location);
    let image_id = scenarios::register_for_tests(&engine);
    let head = engine.head().unwrap();
    let dfw = Region::parse("DFW").unwrap();

    terminate_sessions(&location);
    // Reads go through the reader connection: it meets the closure once, then reconnects.
    let (boots, failed) = after_one_unavailable(|| engine.can_boot("111", image_id, &dfw));
    assert!(boots);
    assert!(
        failed,
        "the first read after the drop should have met the closed connection"
    );
    // Nothing acknowledged before the drop was lost.
    assert_eq!(engine.head().unwrap(), head);

    terminate_sessions(&location);
    let second = Uuid::new_v4();
    let ctx = Context::new(
        Actor::tenant("111", "user", &["cloudImages:admin"]),
        dfw.clone(),
        chrono::Utc::now(),
    );
    let register = || {
        engine.execute(
            &ctx,
            Command::Image {
                image_id: second,
                command: ImageCommand::Register {
                    origin: imgshare_core::ImageOrigin::Snapshot {
                        server_id: "srv".into(),
                    },
                    image: imgshare_core::NewImage::default(),
                },
            },
        )
    };
    let (outcome, failed) = after_one_unavailable(register);
    assert!(
        failed,
        "the first command after the drop should have met the closed connection"
    );
    assert!(!outcome.already_applied);
    // The refused attempt wrote nothing: the command's one event follows the old head.
    let (after, _) = after_one_unavailable(|| engine.head());
    let (position, _) = after.unwrap();
    assert_eq!(position, head.unwrap().0 + outcome.events.len() as i64);
    assert!(engine.verify().unwrap().is_ok());
}

/// A list is read through the read models (the projection's queries), not the log: a server
/// that went away under it is the same `database_unavailable` (503, retry) as under the log's
/// reads, not the projection's internal error (500).
#[test]
fn a_list_read_on_a_dropped_connection_is_unavailable_then_answers() {
    let location = fresh_database("engine_list_reconnect");
    let engine = scenarios::open(&location);
    let image_id = scenarios::register_for_tests(&engine);
    let ctx = Context::new(
        Actor::tenant("111", "user", &["cloudImages:admin"]),
        Region::parse("DFW").unwrap(),
        chrono::Utc::now(),
    );
    let query = imgshare_store::ImageQuery::new();
    let listed = engine.images(&ctx, &query).unwrap();
    assert_eq!(listed.images.len(), 1);

    // Several rounds: a terminated session shows up as a server's FATAL message or as a reset
    // socket, by timing; after either, the connection must be replaced, not used again.
    for _ in 0..5 {
        terminate_sessions(&location);
        let (page, failed) = after_one_unavailable(|| engine.images(&ctx, &query));
        assert!(
            failed,
            "the first list after the drop should have met the closed connection"
        );
        assert_eq!(page.images.len(), 1);
        assert_eq!(page.images[0].image().id, image_id);
    }
}

#[test]
fn a_task_announced_by_one_engine_wakes_the_listener_of_another() {
    let location = fresh_database("engine_notify");
    let (here, there) = (scenarios::open(&location), scenarios::open(&location));
    assert!(here.runs_on_postgres());
    let listener = here
        .task_listener()
        .unwrap()
        .expect("a listener on PostgreSQL");
    assert!(!listener
        .wait(std::time::Duration::from_millis(200))
        .unwrap());
    there.notify_task_workers().unwrap();
    assert!(listener.wait(std::time::Duration::from_secs(10)).unwrap());
    // One announcement wakes once.
    assert!(!listener
        .wait(std::time::Duration::from_millis(200))
        .unwrap());
}
