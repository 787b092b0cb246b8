use super::group::*;
use super::*;
use crate::db::{self, DbOptions, StoreError};
use crate::log::{self, Checked, ExpectedVersion, NewEvent, StreamAppend};
use chrono::{Duration, TimeZone, Utc};
use imgshare_core::{Actor, ImageActivated, ImageCommand, ImageOrigin, NewImage};
use imgshare_core::{Command, Context, ErrorKind, MemberStatus, Region, StreamId};
use rusqlite::Connection;
use std::sync::Arc;
use uuid::Uuid;

fn at(minutes: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn ctx(tenant: &str, minutes: i64) -> Context {
    Context::new(
        Actor::tenant(tenant, "user", &["cloudImages:admin"]),
        Region::parse("DFW").unwrap(),
        at(minutes),
    )
}

#[test]
fn event_ids_follow_the_order_of_time_ordered_command_ids() {
    let commands: Vec<Uuid> = (0..64).map(|_| Uuid::now_v7()).collect();
    let ids: Vec<Uuid> = commands
        .iter()
        .flat_map(|command| (0..3).map(|index| event_id_for(*command, index)))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    // Ordered by their first 8 bytes, the command's (v7: time, then a counter); the rest is
    // a hash, so ids of commands with the same first 8 bytes may come in either order.
    for pair in ids.windows(2) {
        assert!(
            pair[0].as_bytes()[..8] <= pair[1].as_bytes()[..8],
            "{pair:?}"
        );
    }
    for (command, events) in commands.iter().zip(ids.chunks(3)) {
        assert!(events
            .iter()
            .all(|id| id.as_bytes()[..6] == command.as_bytes()[..6]));
        assert_eq!(
            event_id_for(*command, 1),
            events[1],
            "a retry derives the same id"
        );
    }
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "every event id is distinct");
    // Random command ids still give distinct ids, and the prefix rule holds for them too.
    let random = Uuid::new_v4();
    assert_ne!(event_id_for(random, 0), event_id_for(random, 1));
    assert_eq!(
        event_id_for(random, 0).as_bytes()[..6],
        random.as_bytes()[..6]
    );
    // Commands that share their first 8 bytes still differ.
    let mut twin = *random.as_bytes();
    twin[15] ^= 1;
    assert_ne!(
        event_id_for(random, 0),
        event_id_for(Uuid::from_bytes(twin), 0)
    );
    assert_eq!(event_id_for(random, 0).get_version_num(), 8);
}

#[test]
fn a_command_logged_under_the_earlier_event_id_rule_is_still_recognised_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let command_id = Uuid::new_v4();
    let image_id = Uuid::new_v4();
    let register = Command::Image {
        image_id,
        command: ImageCommand::Register {
            origin: ImageOrigin::Snapshot {
                server_id: "server-1".into(),
            },
            image: NewImage {
                name: Some("web".into()),
                ..NewImage::default()
            },
        },
    };
    // The event the command makes, as the earlier rule stored it: same row, v5 id.
    let scratch = Engine::in_memory().unwrap();
    let made = scratch
        .execute_idempotent(&ctx("111111", 0), command_id, register.clone())
        .unwrap()
        .events;
    let path = dir.path().join("old.db");
    {
        let conn = db::open_file(&path, &DbOptions::default()).unwrap();
        let appends: Vec<StreamAppend> = made
            .iter()
            .enumerate()
            .map(|(index, event)| StreamAppend {
                stream_id: event.stream_id.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![NewEvent {
                    event_id: legacy_event_id_for(command_id, index),
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    data: event.data.clone(),
                    metadata: event.metadata.clone(),
                }],
            })
            .collect();
        log::append(&conn, &appends, at(0), Checked::Nothing).unwrap();
    }
    let engine = Engine::open(&path, EngineOptions::default()).unwrap();
    assert!(engine.legacy_event_ids);
    let head = log_head(&engine);
    let retried = engine
        .execute_idempotent(&ctx("111111", 1), command_id, register)
        .unwrap();
    assert!(retried.already_applied, "{retried:?}");
    assert_eq!(
        retried.events[0].event_id,
        legacy_event_id_for(command_id, 0)
    );
    assert_eq!(log_head(&engine), head, "nothing appended");
    // Once the engine has written, its last event has a new-rule id: the next open needs
    // no second lookup.
    engine
        .execute(
            &ctx("111111", 2),
            Command::Image {
                image_id,
                command: ImageCommand::AddMember {
                    member_id: "222222".into(),
                },
            },
        )
        .unwrap();
    drop(engine);
    let reopened = Engine::open(&path, EngineOptions::default()).unwrap();
    assert!(!reopened.legacy_event_ids);
}

fn snapshot(engine: &Engine, tenant: &str, name: &str, minutes: i64) -> Uuid {
    let image_id = Uuid::new_v4();
    let image = NewImage {
        name: Some(name.into()),
        container_format: Some("ovf".into()),
        disk_format: Some("vhd".into()),
        tags: vec!["web".into()],
        data: Some(ImageActivated {
            size: 10,
            checksum: "0123456789abcdef0123456789abcdef".into(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }),
        ..NewImage::default()
    };
    let origin = ImageOrigin::Snapshot {
        server_id: "srv".into(),
    };
    engine
        .execute(
            &ctx(tenant, minutes),
            Command::Image {
                image_id,
                command: ImageCommand::Register { origin, image },
            },
        )
        .unwrap();
    image_id
}

fn member(engine: &Engine, caller: &str, image_id: Uuid, command: ImageCommand, minutes: i64) {
    engine
        .execute(&ctx(caller, minutes), Command::Image { image_id, command })
        .unwrap();
}

fn dump(engine: &Engine) -> Vec<String> {
    engine.read(|conn| Ok(tables::dump(conn)?)).unwrap()
}

/// Several servers may share one database file: each opens its own engine, and writes from
/// both, interleaved from threads on the same image, are all kept.
#[test]
fn two_engines_on_one_file_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let first = Engine::open(&path, EngineOptions::default()).unwrap();
    let second = Engine::open(&path, EngineOptions::default()).unwrap();
    let image_id = snapshot(&first, "111", "shared", 1);
    std::thread::scope(|scope| {
        for (engine, prefix) in [(&first, "a"), (&second, "b")] {
            scope.spawn(move || {
                for index in 0..25 {
                    let member_id = format!("{prefix}{index}");
                    member(
                        engine,
                        "111",
                        image_id,
                        ImageCommand::AddMember { member_id },
                        2,
                    );
                }
            });
        }
    });
    for engine in [&first, &second] {
        let image = engine.image_state(image_id).unwrap().unwrap();
        assert_eq!(image.members.len(), 50);
        let page = engine
            .list_images(&ctx("a7", 3), "member_status=pending")
            .unwrap();
        assert_eq!(page["images"].as_array().unwrap().len(), 1);
    }
    let live = dump(&first);
    second.rebuild(|_| {}).unwrap();
    assert_eq!(dump(&first), live);
}

#[test]
fn consumer_lists_only_accepted_shares_and_rebuild_gives_the_same_rows() {
    let engine = Engine::in_memory().unwrap();
    let shared = snapshot(&engine, "111", "shared", 1);
    let private = snapshot(&engine, "111", "private", 2);
    let own = snapshot(&engine, "222", "own", 3);
    member(
        &engine,
        "111",
        shared,
        ImageCommand::AddMember {
            member_id: "222".into(),
        },
        4,
    );
    member(
        &engine,
        "111",
        private,
        ImageCommand::AddMember {
            member_id: "333".into(),
        },
        5,
    );

    let names = |page: serde_json::Value| -> Vec<String> {
        page["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(engine.list_images(&ctx("222", 6), "").unwrap()),
        ["own"]
    );
    assert_eq!(
        names(
            engine
                .list_images(&ctx("222", 6), "member_status=pending")
                .unwrap()
        ),
        ["own", "shared"]
    );
    member(
        &engine,
        "222",
        shared,
        ImageCommand::SetMemberStatus {
            member_id: "222".into(),
            status: "accepted".into(),
        },
        7,
    );
    assert_eq!(
        names(engine.list_images(&ctx("222", 8), "").unwrap()),
        ["own", "shared"]
    );
    assert_eq!(
        names(engine.list_images(&ctx("111", 8), "sort=name:asc").unwrap()),
        ["private", "shared"]
    );
    let first_page = engine.list_images(&ctx("222", 8), "limit=1").unwrap();
    assert_eq!(
        first_page["next"],
        format!("/v2/images?limit=1&marker={own}")
    );
    assert_eq!(
        names(
            engine
                .list_images(&ctx("222", 8), &format!("limit=1&marker={own}"))
                .unwrap()
        ),
        ["shared"]
    );
    let invisible_marker = engine
        .list_images(&ctx("222", 8), &format!("marker={private}"))
        .unwrap_err();
    assert_eq!(invisible_marker.kind(), ErrorKind::Invalid);

    let before = dump(&engine);
    let report = engine.rebuild(|_| {}).unwrap();
    assert_eq!(report.streams, 3);
    assert_eq!(dump(&engine), before);
}

fn add(image_id: Uuid, member_id: &str, caller: &str) -> BatchItem {
    BatchItem {
        ctx: ctx(caller, 10),
        command_id: Uuid::new_v4(),
        command: Command::Image {
            image_id,
            command: ImageCommand::AddMember {
                member_id: member_id.into(),
            },
        },
    }
}

fn log_head(engine: &Engine) -> i64 {
    engine
        .read(|conn| Ok(log::head(conn)?))
        .unwrap()
        .map_or(0, |(position, _)| position)
}

/// The image has exactly `members`, and its read models agree with a rebuild from the log.
fn assert_members_and_read_models(engine: &Engine, image_id: Uuid, members: &[&str]) {
    let image = engine.image_state(image_id).unwrap().unwrap();
    let found: Vec<&str> = image.members.keys().map(String::as_str).collect();
    assert_eq!(found, members);
    let before = dump(engine);
    engine.rebuild(|_| {}).unwrap();
    assert_eq!(dump(engine), before);
}

#[test]
fn a_batch_is_one_transaction_with_an_outcome_per_command() {
    let engine = Engine::in_memory().unwrap();
    let image_id = snapshot(&engine, "111111", "web", 0);
    let head = log_head(&engine);
    let results = engine
        .execute_batch(vec![
            add(image_id, "222222", "111111"),
            // Refused (a stranger): appends nothing, and does not stop the others.
            add(image_id, "444444", "333333"),
            // Sees the first command's member: a duplicate is refused.
            add(image_id, "222222", "111111"),
            add(image_id, "555555", "111111"),
        ])
        .unwrap();
    let statuses: Vec<_> = results
        .iter()
        .map(|result| result.as_ref().map_err(EngineError::kind).err())
        .collect();
    assert_eq!(
        statuses,
        vec![
            None,
            Some(ErrorKind::NotFound),
            Some(ErrorKind::Conflict),
            None
        ]
    );
    assert_eq!(log_head(&engine), head + 2);
    assert_members_and_read_models(&engine, image_id, &["222222", "555555"]);
}

fn member_ids(outcome: &Outcome) -> Vec<&str> {
    outcome
        .image()
        .unwrap()
        .members
        .keys()
        .map(String::as_str)
        .collect()
}

fn member_command(image_id: Uuid, caller: &str, command: ImageCommand) -> BatchItem {
    BatchItem {
        ctx: ctx(caller, 20),
        command_id: Uuid::now_v7(),
        command: Command::Image { image_id, command },
    }
}

/// A member command folds the cached state in place when nothing else holds it and copies it
/// when something does, and writes only the rows of the members its events name: an outcome
/// keeps the state it was answered with, a refused command leaves the cache as it was, and the
/// read models agree with a rebuild after every kind of member event, alone and in a batch.
#[test]
fn member_commands_fold_the_cached_state_and_outcomes_keep_their_own() {
    let engine = Engine::in_memory().unwrap();
    let image_id = snapshot(&engine, "111111", "web", 0);
    let stream = StreamId::Image(image_id);
    let add = |member_id: &str| ImageCommand::AddMember {
        member_id: member_id.into(),
    };
    let status = |member_id: &str, status: &str| ImageCommand::SetMemberStatus {
        member_id: member_id.into(),
        status: status.into(),
    };
    let run = |caller: &str, command: ImageCommand| {
        engine.execute(&ctx(caller, 5), Command::Image { image_id, command })
    };
    let first = run("111111", add("222222")).unwrap();
    // Still held: the next command must copy the state, not change this one.
    let second = run("111111", add("333333")).unwrap();
    assert_eq!(member_ids(&first), ["222222"]);
    assert_eq!(member_ids(&second), ["222222", "333333"]);
    drop((first, second));

    let version = engine
        .read(|conn| Ok(log::stream_version(conn, &stream.to_string())?))
        .unwrap()
        .unwrap();
    let cached = |engine: &Engine| engine.cache.lock().unwrap().get(stream, version);
    assert!(cached(&engine).is_some());
    // Refused by the domain (a duplicate): the state taken for it goes back to the cache.
    let refused = run("111111", add("222222")).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    let kept = cached(&engine).expect("a refused command gives its state back");
    assert_eq!(kept.as_image().unwrap().members.len(), 2, "and unchanged");
    drop(kept);

    run("222222", status("222222", "accepted")).unwrap();
    let results = engine
        .execute_batch(vec![
            member_command(image_id, "333333", status("333333", "rejected")),
            member_command(
                image_id,
                "111111",
                ImageCommand::RemoveMember {
                    member_id: "222222".into(),
                },
            ),
            // Refused in the middle of a batch: the next command still sees the group's state.
            member_command(image_id, "111111", add("333333")),
            member_command(image_id, "111111", add("222222")),
            member_command(image_id, "111111", add("444444")),
            member_command(image_id, "444444", status("444444", "accepted")),
        ])
        .unwrap();
    let refused: Vec<bool> = results.iter().map(Result::is_err).collect();
    assert_eq!(refused, [false, false, true, false, false, false]);
    let states: Vec<usize> = results
        .iter()
        .flatten()
        .map(|outcome| outcome.image().unwrap().members.len())
        .collect();
    assert_eq!(states, [2, 1, 2, 3, 3], "each outcome keeps its own state");
    let image = engine.image_state(image_id).unwrap().unwrap();
    assert_eq!(image.members["222222"].status, MemberStatus::Pending);
    assert_eq!(image.members["333333"].status, MemberStatus::Rejected);
    assert_eq!(image.members["444444"].status, MemberStatus::Accepted);
    assert_members_and_read_models(&engine, image_id, &["222222", "333333", "444444"]);
}

#[test]
fn a_command_that_fails_after_writing_is_undone_alone_and_the_rest_commit() {
    let engine = Engine::in_memory().unwrap();
    let image_id = snapshot(&engine, "111111", "web", 0);
    // A read-model write that fails after the command's event is appended: the group, run
    // without savepoints first, must start over with them and undo only this command.
    engine
        .writer
        .lock()
        .unwrap()
        .sqlite()
        .unwrap()
        .execute_batch(
            "CREATE TEMP TRIGGER refuse_member BEFORE INSERT ON proj_members
             WHEN NEW.member_id = '999999'
             BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;",
        )
        .unwrap();
    let head = log_head(&engine);
    let results = engine
        .execute_batch(vec![
            add(image_id, "222222", "111111"),
            add(image_id, "999999", "111111"),
            add(image_id, "555555", "111111"),
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().map_err(EngineError::kind).err(),
        Some(ErrorKind::Internal)
    );
    assert_eq!(
        log_head(&engine),
        head + 2,
        "the failed command's event is gone"
    );
    assert_members_and_read_models(&engine, image_id, &["222222", "555555"]);
}

/// Threads that each add `per_thread` members through `execute_idempotent`, one at a time; each
/// gives back how many events each command appended.
fn blocking_adders(
    engine: &Arc<Engine>,
    image_id: Uuid,
    prefix: &'static str,
    threads: usize,
    per_thread: usize,
) -> Vec<std::thread::JoinHandle<Vec<Result<usize, String>>>> {
    (0..threads)
        .map(|thread| {
            let engine = Arc::clone(engine);
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|index| {
                        let item = add(image_id, &format!("{prefix}{thread}-{index}"), "111111");
                        engine
                            .execute_idempotent(&item.ctx, item.command_id, item.command)
                            .map(|outcome| outcome.events.len())
                            .map_err(|error| error.to_string())
                    })
                    .collect()
            })
        })
        .collect()
}

/// The image (a snapshot, then only member additions) has `members` members, and the log (the
/// snapshot's two events, then one per member) verifies.
fn assert_members_and_chain(engine: &Engine, image_id: Uuid, members: usize) {
    let image = engine.image_state(image_id).unwrap().unwrap();
    assert_eq!(image.members.len(), members);
    let verified = engine.read(|conn| Ok(log::verify_chain(conn)?)).unwrap();
    assert_eq!(
        (verified.events_checked, verified.first_mismatch),
        (members as u64 + 2, None)
    );
}

#[test]
fn concurrent_callers_each_get_their_own_outcome_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine =
        Arc::new(Engine::open(&dir.path().join("group.db"), EngineOptions::default()).unwrap());
    let image_id = snapshot(&engine, "111111", "web", 0);
    // A lone caller never waits for others: its command is a group of one.
    assert_eq!(
        engine.group_commits(),
        GroupCommits {
            groups: 1,
            commands: 1
        }
    );
    let threads = blocking_adders(&engine, image_id, "m", 6, 15);
    for handle in threads {
        for result in handle.join().unwrap() {
            assert_eq!(result, Ok(1));
        }
    }
    assert_members_and_chain(&engine, image_id, 90);
    // Every queued command ran in exactly one counted group.
    let counted = engine.group_commits();
    assert_eq!(counted.commands, 91);
    assert!(counted.groups >= 2 && counted.groups <= 91, "{counted:?}");
}

#[test]
fn a_group_that_cannot_get_the_lock_answers_busy_to_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let options = EngineOptions {
        db: DbOptions {
            busy_timeout: std::time::Duration::from_millis(50),
            ..DbOptions::default()
        },
        ..EngineOptions::default()
    };
    let engine = Engine::open(&path, options).unwrap();
    let image_id = snapshot(&engine, "111111", "web", 0);
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let results = engine
        .execute_batch(vec![
            add(image_id, "222222", "111111"),
            add(image_id, "333333", "111111"),
            add(image_id, "444444", "111111"),
        ])
        .unwrap();
    for result in &results {
        assert!(
            matches!(result, Err(EngineError::Store(StoreError::Busy))),
            "{result:?}"
        );
    }
    other.execute_batch("ROLLBACK").unwrap();
    // Nothing was written, and the same commands go through once the lock is free.
    assert_eq!(log_head(&engine), 2);
    let retried = engine
        .execute_batch(vec![add(image_id, "222222", "111111")])
        .unwrap();
    assert!(retried[0].is_ok(), "{retried:?}");
}

/// Waits for a future on this thread (the store has no async runtime of its own).
fn wait_for<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a submitted command got no outcome in 60 s"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

/// A spawner as a server would pass it, on plain threads; counts the leaders it started.
fn thread_spawner(
    started: &Arc<std::sync::atomic::AtomicUsize>,
) -> impl Fn(LeadWork) + Send + Sync {
    let started = Arc::clone(started);
    move |work| {
        started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::spawn(work);
    }
}

/// A file engine with one snapshot (owned by 111111), and a count of the leaders spawned.
fn queue_fixture(
    name: &str,
) -> (
    tempfile::TempDir,
    Arc<Engine>,
    Uuid,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.db"));
    let engine = Arc::new(Engine::open(&path, EngineOptions::default()).unwrap());
    let image_id = snapshot(&engine, "111111", "web", 0);
    (dir, engine, image_id, Arc::default())
}

/// Submits `item` with [`thread_spawner`].
fn submit_item(
    engine: &Arc<Engine>,
    item: &BatchItem,
    leaders: &Arc<std::sync::atomic::AtomicUsize>,
) -> Submitted {
    engine
        .submit(
            &item.ctx,
            item.command_id,
            item.command.clone(),
            thread_spawner(leaders),
        )
        .unwrap()
}

#[test]
fn a_submitted_command_has_the_outcome_execute_would_give() {
    let (_dir, engine, image_id, leaders) = queue_fixture("submit");
    let item = add(image_id, "222222", "111111");
    let submitted = submit_item(&engine, &item, &leaders);
    let outcome = wait_for(submitted).unwrap();
    assert_eq!((outcome.events.len(), outcome.already_applied), (1, false));
    assert_eq!(leaders.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A retry of the same command id is recognised, as through `execute_idempotent`.
    let retried = wait_for(submit_item(&engine, &item, &leaders)).unwrap();
    assert!(retried.already_applied);
    assert_eq!(retried.events[0].event_id, outcome.events[0].event_id);
    // A refusal comes back as the command's own error.
    let duplicate = add(image_id, "222222", "111111");
    let refused = wait_for(submit_item(&engine, &duplicate, &leaders));
    assert_eq!(
        refused.unwrap_err().kind(),
        ErrorKind::Conflict,
        "adding a member twice"
    );
    assert_members_and_read_models(&engine, image_id, &["222222"]);
}

#[test]
fn async_and_blocking_callers_mixed_all_get_their_outcome_once() {
    let (_dir, engine, image_id, leaders) = queue_fixture("mixed");
    // Threads that block in `execute` lead groups and give up the lead while async commands
    // are still queued: those must be led on by a leader their own spawner starts.
    let blocking = blocking_adders(&engine, image_id, "b", 3, 20);
    let submitting: Vec<_> = (0..3)
        .map(|thread| {
            let engine = Arc::clone(&engine);
            let leaders = Arc::clone(&leaders);
            std::thread::spawn(move || {
                // Several in flight at once from one submitter, as from one async worker.
                let submitted: Vec<_> = (0..20)
                    .map(|index| {
                        let item = add(image_id, &format!("a{thread}-{index}"), "111111");
                        submit_item(&engine, &item, &leaders)
                    })
                    .collect();
                submitted
                    .into_iter()
                    .map(|submitted| {
                        wait_for(submitted)
                            .map(|outcome| outcome.events.len())
                            .map_err(|error| error.to_string())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in blocking.into_iter().chain(submitting) {
        for result in handle.join().unwrap() {
            assert_eq!(result, Ok(1));
        }
    }
    assert_members_and_chain(&engine, image_id, 120);
    assert_eq!(engine.group_commits().commands, 121);
    // Nobody is left leading: a lone blocking caller afterwards runs its own group at once.
    let item = add(image_id, "last", "111111");
    engine
        .execute_idempotent(&item.ctx, item.command_id, item.command)
        .unwrap();
}

#[test]
fn an_image_read_now_answers_only_when_it_need_not_wait() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(&dir.path().join("now.db"), EngineOptions::default()).unwrap();
    let image_id = snapshot(&engine, "111111", "web", 0);
    let owner = ctx("111111", 1);
    // Not in the state cache (a reopened engine): folding it is work for a blocking thread.
    drop(engine);
    let engine = Engine::open(&dir.path().join("now.db"), EngineOptions::default()).unwrap();
    assert!(engine.try_image_now(&owner, image_id).is_none());
    let view = engine.image(&owner, image_id).unwrap();
    let view_now = engine.try_image_now(&owner, image_id).unwrap().unwrap();
    assert_eq!(
        view_now, view,
        "answered from the cache the read above filled"
    );
    // A command moves the log's version on: the state it cached is the one served.
    engine.execute(&owner, rename(image_id, "renamed")).unwrap();
    let view = engine.try_image_now(&owner, image_id).unwrap().unwrap();
    assert_eq!(view.image().name.as_deref(), Some("renamed"));
    assert_eq!(view, engine.image(&owner, image_id).unwrap());
    // The same 404 as `image` for a caller who may not see it.
    let stranger = ctx("999999", 1);
    let hidden = engine.try_image_now(&stranger, image_id).unwrap();
    assert_eq!(
        hidden.unwrap_err().kind(),
        engine.image(&stranger, image_id).unwrap_err().kind()
    );
    // The read connection busy (e.g. with a long list): no answer rather than a wait.
    let busy = engine.reader_guard().unwrap();
    assert!(engine.try_image_now(&owner, image_id).is_none());
    drop(busy);
    assert!(engine.try_image_now(&owner, image_id).is_some());
    // An in-memory database has only its writer, which a reader must not wait for here.
    let memory = Engine::in_memory().unwrap();
    let in_memory = snapshot(&memory, "111111", "web", 0);
    assert!(memory.try_image_now(&owner, in_memory).is_none());
}

fn rename(image_id: Uuid, name: &str) -> Command {
    Command::Image {
        image_id,
        command: ImageCommand::Update(
            imgshare_core::patch::parse_patch_bytes(
                Some("application/openstack-images-v2.1-json-patch"),
                format!(r#"[{{"op": "replace", "path": "/name", "value": "{name}"}}]"#).as_bytes(),
            )
            .unwrap(),
        ),
    }
}

/// Waits (at most 30 s) until the queue is in `state`: (someone leads, commands queued).
fn wait_for_queue(engine: &Engine, state: (bool, usize)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while engine.queue_state() != state {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            engine.queue_state()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn async_commands_left_by_a_blocking_leader_are_led_on() {
    let (_dir, engine, image_id, leaders) = queue_fixture("relay");
    // A blocking caller takes the lead and its group waits for the writer, held here.
    let writer = engine.writer_guard().unwrap();
    let blocking = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            let item = add(image_id, "222222", "111111");
            engine
                .execute_idempotent(&item.ctx, item.command_id, item.command)
                .map(|outcome| outcome.events.len())
        })
    };
    wait_for_queue(&engine, (true, 0));
    // Queued behind that group, by async callers only: nobody blocks to lead them.
    let item = add(image_id, "333333", "111111");
    let submitted = submit_item(&engine, &item, &leaders);
    assert_eq!(engine.queue_state(), (true, 1));
    assert_eq!(leaders.load(std::sync::atomic::Ordering::SeqCst), 0);
    drop(writer);
    assert_eq!(blocking.join().unwrap().unwrap(), 1);
    assert_eq!(wait_for(submitted).unwrap().events.len(), 1);
    assert_eq!(
        leaders.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the blocking leader started one through the async caller's spawner"
    );
    assert_members_and_read_models(&engine, image_id, &["222222", "333333"]);
    wait_for_queue(&engine, (false, 0));
}

#[test]
fn a_lead_the_spawner_drops_is_run_where_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let engine =
        Arc::new(Engine::open(&dir.path().join("dropped.db"), EngineOptions::default()).unwrap());
    let image_id = snapshot(&engine, "111111", "web", 0);
    // A runtime shutting down drops what it is given to run.
    let item = add(image_id, "222222", "111111");
    let submitted = engine
        .submit(&item.ctx, item.command_id, item.command, drop)
        .unwrap();
    assert_eq!(wait_for(submitted).unwrap().events.len(), 1);
    assert_eq!(engine.queue_state(), (false, 0), "nobody is left leading");
    // So a blocking caller afterwards is not left waiting for a leader that never runs.
    let item = add(image_id, "333333", "111111");
    engine
        .execute_idempotent(&item.ctx, item.command_id, item.command)
        .unwrap();
    assert_members_and_read_models(&engine, image_id, &["222222", "333333"]);
}
