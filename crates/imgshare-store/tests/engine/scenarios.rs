//! Engine scenarios written once and run on every backend: `tests/engine.rs` runs them on a
//! SQLite file, `tests/postgres.rs` on a PostgreSQL database. Each takes the location of a new,
//! empty database (a path or a `postgres://` URL) and opens it with `Engine::open_url`, as a
//! service would, as often as it needs engines on one database.

use chrono::{Duration, TimeZone, Utc};
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, Region,
};
use imgshare_sql::Sql;
use imgshare_store::{
    append, Checked, Engine, EngineOptions, ExpectedVersion, NewEvent, StreamAppend,
};
use serde_json::Value;
use uuid::Uuid;

pub(crate) fn open(location: &str) -> Engine {
    Engine::open_url(location, EngineOptions::default()).expect("open the engine")
}

fn at(minutes: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn ctx(tenant: &str, minutes: i64) -> Context {
    Context::new(
        Actor::tenant(tenant, "user", &["cloudImages:admin"]),
        dfw(),
        at(minutes),
    )
}

fn dfw() -> Region {
    Region::parse("DFW").unwrap()
}

fn register_command(name: &str) -> ImageCommand {
    register_tagged(name, &["web"])
}

fn register_tagged(name: &str, tags: &[&str]) -> ImageCommand {
    ImageCommand::Register {
        origin: ImageOrigin::Snapshot {
            server_id: "srv".into(),
        },
        image: NewImage {
            name: Some(name.into()),
            container_format: Some("ovf".into()),
            disk_format: Some("vhd".into()),
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            data: Some(ImageActivated {
                size: 10,
                checksum: "0123456789abcdef0123456789abcdef".into(),
                virtual_size: None,
                os_hash_algo: None,
                os_hash_value: None,
            }),
            ..NewImage::default()
        },
    }
}

fn register(engine: &Engine, tenant: &str, name: &str, minutes: i64) -> Uuid {
    let image_id = Uuid::new_v4();
    engine
        .execute(
            &ctx(tenant, minutes),
            Command::Image {
                image_id,
                command: register_command(name),
            },
        )
        .unwrap();
    image_id
}

fn run(engine: &Engine, caller: &str, image_id: Uuid, command: ImageCommand, minutes: i64) {
    engine
        .execute(&ctx(caller, minutes), Command::Image { image_id, command })
        .unwrap();
}

fn add_member(member_id: &str) -> ImageCommand {
    ImageCommand::AddMember {
        member_id: member_id.into(),
    }
}

fn names(page: &Value) -> Vec<String> {
    page["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A new active image of tenant 111, for tests of their own.
#[allow(dead_code)] // Used by the PostgreSQL tests only.
pub(crate) fn register_for_tests(engine: &Engine) -> Uuid {
    register(engine, "111", "image", 0)
}

/// Register, share, accept; the consumer's lists and `can_boot` follow each step.
pub(crate) fn register_share_accept_list_and_boot(location: &str) {
    let engine = open(location);
    let shared = register(&engine, "111", "shared", 1);
    let own = register(&engine, "222", "own", 2);
    assert!(engine.can_boot("111", shared, &dfw()).unwrap());
    assert!(!engine.can_boot("222", shared, &dfw()).unwrap());

    let member = engine
        .execute_member_command(&ctx("111", 3), shared, add_member("222"))
        .unwrap();
    assert_eq!(member["status"], "pending");
    // A pending member may boot, but the default list shows only accepted shares.
    assert!(engine.can_boot("222", shared, &dfw()).unwrap());
    assert!(!engine.can_boot("333", shared, &dfw()).unwrap());
    assert_eq!(
        names(&engine.list_images(&ctx("222", 4), "").unwrap()),
        ["own"]
    );
    assert_eq!(
        names(
            &engine
                .list_images(&ctx("222", 4), "member_status=pending")
                .unwrap()
        ),
        ["own", "shared"]
    );

    run(
        &engine,
        "222",
        shared,
        ImageCommand::SetMemberStatus {
            member_id: "222".into(),
            status: "accepted".into(),
        },
        5,
    );
    assert_eq!(
        names(&engine.list_images(&ctx("222", 6), "sort=name:asc").unwrap()),
        ["own", "shared"]
    );
    let first = engine.list_images(&ctx("222", 6), "limit=1").unwrap();
    assert_eq!(first["next"], format!("/v2/images?limit=1&marker={own}"));
    let members = engine.members_view(&ctx("111", 6), shared).unwrap();
    assert_eq!(members["members"][0]["status"], "accepted");
    // The owner's list does not show the consumer's image.
    assert_eq!(
        names(&engine.list_images(&ctx("111", 6), "").unwrap()),
        ["shared"]
    );
}

/// A command executed again with its id writes nothing and answers with the first events.
pub(crate) fn a_retried_command_is_a_no_op(location: &str) {
    let engine = open(location);
    let image_id = register(&engine, "111", "retried", 1);
    let command_id = Uuid::new_v4();
    let share = || Command::Image {
        image_id,
        command: add_member("222"),
    };
    let first = engine
        .execute_idempotent(&ctx("111", 2), command_id, share())
        .unwrap();
    assert!(!first.already_applied);
    let head = engine.head().unwrap();
    let again = engine
        .execute_idempotent(&ctx("111", 3), command_id, share())
        .unwrap();
    assert!(again.already_applied);
    assert_eq!(again.events, first.events);
    assert_eq!(engine.head().unwrap(), head, "nothing appended");
    // The same command under a new id is refused by the domain (already a member).
    let refused = engine.execute(&ctx("111", 4), share()).unwrap_err();
    assert_eq!(refused.code(), "member_exists", "{refused}");
    assert_eq!(engine.head().unwrap(), head);
}

/// Two engines on one database, as two servers would be: each one's cached state is used only
/// while the log's version of the stream is the one it was cached at, so neither decides on a
/// state the other has since advanced, and interleaved writers lose nothing.
pub(crate) fn engines_sharing_a_database_never_decide_on_stale_state(location: &str) {
    let first = open(location);
    let second = open(location);
    let image_id = register(&first, "111", "shared", 1);
    // The first engine has the image cached at version 1 (it wrote it, then read it).
    assert!(first
        .image_state(image_id)
        .unwrap()
        .unwrap()
        .members
        .is_empty());
    run(&second, "111", image_id, add_member("222"), 2);
    // Deciding on the cached state would accept the same member again.
    let again = first
        .execute(
            &ctx("111", 3),
            Command::Image {
                image_id,
                command: add_member("222"),
            },
        )
        .unwrap_err();
    assert_eq!(again.code(), "member_exists", "{again}");
    run(&first, "111", image_id, add_member("333"), 4);
    for engine in [&first, &second] {
        let image = engine.image_state(image_id).unwrap().unwrap();
        let members: Vec<&str> = image.members.keys().map(String::as_str).collect();
        assert_eq!(members, ["222", "333"]);
    }

    std::thread::scope(|scope| {
        for (engine, prefix) in [(&first, "a"), (&second, "b")] {
            scope.spawn(move || {
                for index in 0..15 {
                    run(
                        engine,
                        "111",
                        image_id,
                        add_member(&format!("{prefix}{index}")),
                        5,
                    );
                }
            });
        }
    });
    for engine in [&first, &second] {
        assert_eq!(
            engine.image_state(image_id).unwrap().unwrap().members.len(),
            32
        );
    }
    let report = second.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    let (head, _) = first.head().unwrap().unwrap();
    assert_eq!(
        report.events_checked,
        u64::try_from(head).unwrap(),
        "gapless"
    );
}

/// The read models written command by command are the ones a rebuild writes, and `verify`
/// (chain and replay) passes before and after the rebuild.
pub(crate) fn rebuild_equals_the_incremental_read_models_and_verify_passes(location: &str) {
    let engine = open(location);
    let mut images = Vec::new();
    for (index, name) in ["b", "a", "c", "d"].into_iter().enumerate() {
        images.push(register(&engine, "111", name, index as i64));
    }
    // Keys whose order depends on the collation (case, punctuation): verify walks the stored and
    // the replayed rows side by side in one byte order.
    let tagged = Uuid::new_v4();
    run(
        &engine,
        "111",
        tagged,
        register_tagged("tagged", &["b", "B", "_c", "a", "Ä", "a-b", "ab"]),
        9,
    );
    run(&engine, "111", images[0], add_member("222"), 10);
    run(&engine, "111", images[1], add_member("222"), 11);
    run(
        &engine,
        "222",
        images[0],
        ImageCommand::SetMemberStatus {
            member_id: "222".into(),
            status: "accepted".into(),
        },
        12,
    );
    run(&engine, "111", images[3], ImageCommand::Delete, 13);
    let lists = |engine: &Engine| -> Vec<Value> {
        [
            ("111", "sort=name:asc"),
            ("111", "limit=2"),
            ("222", ""),
            ("222", "member_status=all"),
            ("333", ""),
        ]
        .iter()
        .map(|(tenant, query)| engine.list_images(&ctx(tenant, 20), query).unwrap())
        .collect()
    };
    let before = lists(&engine);
    assert_eq!(names(&before[0]), ["a", "b", "c", "tagged"]);
    let verified = engine.verify().unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(verified.rows_differing, Some(0));

    let report = engine.rebuild(|_| {}).unwrap();
    assert_eq!(report.streams, 5);
    let (head, _) = engine.head().unwrap().unwrap();
    assert_eq!(report.events, u64::try_from(head).unwrap());
    assert_eq!(report.last_position, head);
    assert_eq!(lists(&engine), before);
    let verified = engine.verify().unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(verified.rows_differing, Some(0));
    // A second engine, opened afterwards, reads the same.
    assert_eq!(lists(&open(location)), before);
}

/// An append whose expected version an engine's command has since passed is the typed
/// conflict, and writes nothing. `conn` is a connection of the test's own to the database.
pub(crate) fn a_stale_expected_version_conflicts<C: Sql + ?Sized>(location: &str, conn: &C) {
    let engine = open(location);
    let image_id = register(&engine, "111", "contended", 1);
    let stream_id = format!("image-{image_id}");
    let version = engine
        .load(imgshare_core::StreamId::Image(image_id))
        .unwrap()
        .version;
    run(&engine, "111", image_id, add_member("222"), 2);
    let head = engine.head().unwrap();
    let stale = StreamAppend {
        stream_id: stream_id.clone(),
        expected: ExpectedVersion::Exact(version),
        events: vec![NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "ImageMemberAdded".into(),
            schema_version: 1,
            data: serde_json::json!({"member_id": "333"}),
            metadata: serde_json::json!({}),
        }],
    };
    let error = append(conn, &[stale], at(3), Checked::Nothing).unwrap_err();
    assert_eq!(error.code(), "version_conflict", "{error}");
    assert_eq!(engine.head().unwrap(), head, "nothing appended");
    let image = engine.image_state(image_id).unwrap().unwrap();
    assert_eq!(image.members.keys().collect::<Vec<_>>(), ["222"]);
}

/// What a caller sees of a catalogue: the consumer's and the owner's lists, the members, boots.
fn observed(engine: &Engine) -> Vec<Value> {
    let image_ids: Vec<Uuid> = engine.list_images(&ctx("111", 10), "").unwrap()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| Uuid::parse_str(image["id"].as_str().unwrap()).unwrap())
        .collect();
    let mut seen = vec![
        engine
            .list_images(&ctx("222", 10), "member_status=all")
            .unwrap(),
        engine.list_images(&ctx("111", 10), "").unwrap(),
    ];
    for image_id in image_ids {
        seen.push(engine.members_view(&ctx("111", 10), image_id).unwrap());
        seen.push(Value::Bool(
            engine.can_boot("222", image_id, &dfw()).unwrap(),
        ));
    }
    seen
}

/// A catalogue copied from `first` to the empty `second` and on to the empty `third` (across
/// backends when the locations say so): the same head and hashes, read models rebuilt to the same
/// answers, verified; a copy into a log that has events is refused and changes nothing.
pub(crate) fn a_log_copied_there_and_back_keeps_its_hashes(first: &str, second: &str, third: &str) {
    register_share_accept_list_and_boot(first);
    let source = open(first);
    let there = open(second);
    let report = there.copy_log_from(&source, |_| {}).unwrap();
    assert_eq!(report.head, source.head().unwrap());
    assert!(report.events >= 4, "{report:?}");
    assert!(report.verify.is_ok(), "{:?}", report.verify);
    assert_eq!(there.head().unwrap(), source.head().unwrap());
    assert_eq!(observed(&there), observed(&source));

    let back = open(third);
    let report = back.copy_log_from(&there, |_| {}).unwrap();
    assert!(report.verify.is_ok(), "{:?}", report.verify);
    assert_eq!(back.head().unwrap(), source.head().unwrap());
    assert_eq!(observed(&back), observed(&source));

    let refused = there.copy_log_from(&back, |_| {}).unwrap_err();
    assert_eq!(refused.code(), "copy_target_not_empty");
    assert_eq!(there.head().unwrap(), source.head().unwrap());
    let itself = there.copy_log_from(&there, |_| {}).unwrap_err();
    assert_eq!(itself.code(), "copy_target_not_empty");
}

/// A log longer than a scan's batch (PostgreSQL reads whole-log scans through a cursor, 1 000 rows
/// at a time): the chain check, the audit log, a past catalogue, verify's row comparison and a
/// rebuild each see every event and row exactly once, in order.
pub(crate) fn a_log_longer_than_a_scan_batch_is_read_whole_in_order(location: &str) {
    let engine = open(location);
    let images: Vec<Uuid> = (0..25)
        .map(|n| register(&engine, "111", &format!("image-{n:02}"), 0))
        .collect();
    let items = images
        .iter()
        .flat_map(|&image_id| {
            (0..100).map(move |member| imgshare_store::BatchItem {
                ctx: ctx("111", 1),
                command_id: Uuid::now_v7(),
                command: Command::Image {
                    image_id,
                    command: add_member(&format!("{}", 500_000 + member)),
                },
            })
        })
        .collect::<Vec<_>>();
    for chunk in items.chunks(500) {
        for outcome in engine.execute_batch(chunk.to_vec()).unwrap() {
            outcome.unwrap();
        }
    }
    let (head, _) = engine.head().unwrap().unwrap();
    assert!(head > 2_500, "{head} events");

    let mut positions = Vec::new();
    engine
        .for_each_logged(&imgshare_store::LogFilter::default(), |event| {
            positions.push(event.position);
            Ok(())
        })
        .unwrap();
    assert_eq!(positions, (1..=head).collect::<Vec<_>>());
    let past = engine
        .catalogue_as_of(imgshare_store::AsOf::Position(head))
        .unwrap();
    assert_eq!(past.images.len(), 25);
    assert!(past.images.iter().all(|image| image.members.len() == 100));

    let verified = engine.verify().unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(verified.events_checked, u64::try_from(head).unwrap());
    let rebuilt = engine.rebuild(|_| {}).unwrap();
    assert_eq!(rebuilt.events, u64::try_from(head).unwrap());
    assert_eq!(rebuilt.streams, 25);
    assert!(engine.verify().unwrap().is_ok());
}
