//! Audit replay: the catalogue as of a position or time, an image's history, who could access
//! an image at a moment, `verify` finding tampered events and hand-edited read-model rows, and
//! a log written by an older version read with the current code; on the selected backend
//! (`imgshare_tests::backend`: a SQLite file, or a PostgreSQL database with
//! `IMGSHARE_TESTS_BACKEND=postgres`), the tampering done with SQL both accept.

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::Cell;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use imgshare_core::{
    Actor, Command, Context, Event, ImageCommand, ImageOrigin, ImageStatus, MemberStatus,
    ProfileKind, StreamId,
};
use imgshare_sql::{params, Dialect, Sql};
use imgshare_store::audit::{
    self, AccessReason, AccessReport, AccountAccess, Difference, LogFilter, LogLine,
};
use imgshare_store::{AsOf, Engine, Outcome, VerifyReport};
use imgshare_tests::backend::{RawConn, TestDb};
use uuid::Uuid;

const IMAGE: Uuid = Uuid::from_u128(0x000a_0d17);

/// An engine on a database of the selected backend (a file, or a PostgreSQL database), with a
/// clock one minute per request from `start()`.
struct FileWorld {
    // Before `db`: the engine closes its connections before the database is removed.
    engine: Engine,
    db: TestDb,
    minutes: Cell<i64>,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2014, 2, 26, 12, 0, 0).unwrap()
}

impl FileWorld {
    fn new() -> Self {
        let db = TestDb::new(ProfileKind::Rackspace);
        FileWorld {
            engine: db.open(Default::default()),
            db,
            minutes: Cell::new(0),
        }
    }

    /// Runs an image command on [`IMAGE`] as `actor` at the next minute, with request id
    /// `req-<minute>`.
    fn run(&self, actor: &Actor, command: ImageCommand) -> Outcome {
        self.run_on(IMAGE, actor, command)
    }

    fn run_on(&self, image_id: Uuid, actor: &Actor, command: ImageCommand) -> Outcome {
        let minute = self.minutes.get();
        self.minutes.set(minute + 1);
        let mut ctx = Context::new(
            actor.clone(),
            region("DFW"),
            start() + Duration::minutes(minute),
        );
        ctx.request_id = Some(format!("req-{minute}"));
        self.engine
            .execute(&ctx, Command::Image { image_id, command })
            .unwrap()
    }

    /// Registers [`IMAGE`] as `actor`'s snapshot of `server-1`, named `name`.
    fn register(&self, actor: &Actor, name: &str) -> Outcome {
        self.run(
            actor,
            ImageCommand::Register {
                origin: ImageOrigin::Snapshot {
                    server_id: "server-1".to_owned(),
                },
                image: snapshot(name),
            },
        )
    }

    /// Shares [`IMAGE`] with `member`.
    fn share(&self, actor: &Actor, member: &str) -> Outcome {
        self.run(
            actor,
            ImageCommand::AddMember {
                member_id: member.to_owned(),
            },
        )
    }

    fn position(outcome: &Outcome) -> i64 {
        outcome.events.last().unwrap().position
    }

    /// A second, raw connection for editing the database behind the engine's back.
    fn raw(&self) -> RawConn {
        self.db.connect()
    }
}

/// The walkthrough's steps, each with the position of its last event.
struct Steps {
    registered: i64,
    shared: i64,
    accepted: i64,
    rejected: i64,
    unshared: i64,
    deleted: i64,
}

fn walkthrough(world: &FileWorld) -> Steps {
    let producer = admin_of(PRODUCER);
    let consumer = admin_of(CONSUMER);
    let registered = FileWorld::position(&world.register(&producer, "my-saved-image-name"));
    let shared = FileWorld::position(&world.share(&producer, CONSUMER));
    let answer = |status: &str| {
        FileWorld::position(&world.run(
            &consumer,
            ImageCommand::SetMemberStatus {
                member_id: CONSUMER.to_owned(),
                status: status.to_owned(),
            },
        ))
    };
    let accepted = answer("accepted");
    let rejected = answer("rejected");
    let unshared = FileWorld::position(&world.run(
        &producer,
        ImageCommand::RemoveMember {
            member_id: CONSUMER.to_owned(),
        },
    ));
    let deleted = FileWorld::position(&world.run(&producer, ImageCommand::Delete));
    Steps {
        registered,
        shared,
        accepted,
        rejected,
        unshared,
        deleted,
    }
}

fn access(world: &FileWorld, as_of: AsOf) -> AccessReport {
    world.engine.access_at(IMAGE, as_of).unwrap()
}

fn account<'a>(report: &'a AccessReport, tenant: &str) -> Option<&'a AccountAccess> {
    report
        .accounts
        .iter()
        .find(|account| account.tenant_id == tenant)
}

/// Why a member has access, answering `status`.
fn as_member(status: MemberStatus) -> Option<AccessReason> {
    Some(AccessReason::Member {
        member_status: status,
    })
}

#[test]
fn access_at_follows_share_accept_reject_unshare_and_delete() {
    let world = FileWorld::new();
    let steps = walkthrough(&world);

    let before = access(&world, AsOf::Position(0));
    assert!(!before.exists);
    assert!(before.accounts.is_empty());

    let registered = access(&world, AsOf::Position(steps.registered));
    assert!(registered.exists);
    assert_eq!(registered.status, Some(ImageStatus::Active));
    assert_eq!(registered.every_account, None, "a private image");
    let owner = account(&registered, PRODUCER).unwrap();
    assert_eq!(owner.why, Some(AccessReason::Owner));
    assert!(owner.can_see && owner.can_boot);
    assert_eq!(account(&registered, CONSUMER), None);

    for (position, status) in [
        (steps.shared, MemberStatus::Pending),
        (steps.accepted, MemberStatus::Accepted),
        (steps.rejected, MemberStatus::Rejected),
    ] {
        let report = access(&world, AsOf::Position(position));
        let member = account(&report, CONSUMER).unwrap();
        assert_eq!(member.why, as_member(status), "at {position}");
        // A member sees and boots the image in every status; the status only decides listing.
        assert!(member.can_see && member.can_boot, "at {position}");
        assert_eq!(report.accounts.len(), 2);
    }

    let unshared = access(&world, AsOf::Position(steps.unshared));
    assert_eq!(account(&unshared, CONSUMER), None);
    assert!(account(&unshared, PRODUCER).unwrap().can_boot);

    let deleted = access(&world, AsOf::Position(steps.deleted));
    assert!(deleted.exists);
    assert_eq!(deleted.status, Some(ImageStatus::Deleted));
    let owner = account(&deleted, PRODUCER).unwrap();
    assert_eq!(owner.why, Some(AccessReason::Owner));
    assert!(
        !owner.can_see && !owner.can_boot,
        "a deleted image is gone for everyone"
    );

    // By time: the accept was recorded at minute 2, the reject at minute 3.
    let at_accept = access(&world, AsOf::Time(start() + Duration::seconds(150)));
    assert_eq!(at_accept.position, steps.accepted);
    assert_eq!(
        account(&at_accept, CONSUMER).unwrap().why,
        as_member(MemberStatus::Accepted)
    );
}

#[test]
fn public_images_are_open_to_every_account() {
    let world = FileWorld::new();
    let registered = world.run(
        &Actor::operator("images"),
        ImageCommand::Register {
            origin: ImageOrigin::Base,
            image: snapshot("Ubuntu"),
        },
    );
    let report = access(&world, AsOf::Position(FileWorld::position(&registered)));
    let every = report.every_account.expect("a base image is for everyone");
    assert_eq!(every.why, Some(AccessReason::Public));
    assert!(every.can_see && every.can_boot);
    assert_eq!(report.owner, None);
}

#[test]
fn state_as_of_a_position_or_a_time_is_the_stream_folded_that_far() {
    let world = FileWorld::new();
    let steps = walkthrough(&world);
    let stream = StreamId::Image(IMAGE);
    let engine = &world.engine;

    let at_share = engine
        .state_as_of(stream, AsOf::Position(steps.shared))
        .unwrap();
    let image = at_share.state.as_image().unwrap();
    assert_eq!(image.members[CONSUMER].status, MemberStatus::Pending);
    assert_eq!(at_share.version, 3, "registered, activated, member added");

    // Half a minute after the reject and before the unshare.
    let at_time = engine
        .state_as_of(stream, AsOf::Time(start() + Duration::seconds(210)))
        .unwrap();
    assert_eq!(
        at_time.state.as_image().unwrap().members[CONSUMER].status,
        MemberStatus::Rejected
    );

    let before_everything = engine
        .state_as_of(stream, AsOf::Time(start() - Duration::seconds(1)))
        .unwrap();
    assert!(before_everything.state.is_empty());

    let now = engine
        .state_as_of(stream, AsOf::Position(i64::MAX))
        .unwrap();
    assert_eq!(now.state.as_image().unwrap().status, ImageStatus::Deleted);

    let catalogue = engine
        .catalogue_as_of(AsOf::Position(steps.accepted))
        .unwrap();
    assert_eq!(catalogue.position, steps.accepted);
    assert_eq!(catalogue.images.len(), 1);
    assert_eq!(
        catalogue.images[0].members[CONSUMER].status,
        MemberStatus::Accepted
    );
    assert!(catalogue.tasks.is_empty());
}

#[test]
fn history_names_actor_region_request_and_time_of_every_event() {
    let world = FileWorld::new();
    let steps = walkthrough(&world);
    let history = world.engine.history(IMAGE).unwrap();
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "image_registered",
            "image_activated",
            "member_added",
            "member_status_changed",
            "member_status_changed",
            "member_removed",
            "image_deleted"
        ]
    );
    let reject = history
        .iter()
        .find(|entry| entry.position == steps.rejected)
        .unwrap();
    let actor = reject.metadata.actor.as_ref().unwrap();
    assert_eq!(actor.tenant_id.as_deref(), Some(CONSUMER));
    assert_eq!(actor.user_id.as_deref(), Some("admin-222222"));
    assert_eq!(reject.metadata.region.as_deref(), Some("DFW"));
    assert_eq!(reject.metadata.request_id.as_deref(), Some("req-3"));
    assert_eq!(reject.recorded_at, start() + Duration::minutes(3));
    assert_eq!(reject.schema_version, 2);
    assert_eq!(reject.data["status"], "rejected");
    assert_eq!(reject.data["previous_status"], "accepted");
    assert!(world.engine.history(Uuid::from_u128(7)).unwrap().is_empty());
}

#[test]
fn log_filters_by_stream_type_account_and_time() {
    let world = FileWorld::new();
    let steps = walkthrough(&world);
    let collect = |filter: LogFilter| -> Vec<i64> {
        let mut positions = Vec::new();
        world
            .engine
            .read_sql(|conn| {
                audit::for_each_logged(conn, &filter, |stored| {
                    positions.push(stored.position);
                    Ok(())
                })
            })
            .unwrap();
        positions
    };
    assert_eq!(collect(LogFilter::default()).len(), 7);
    assert_eq!(
        collect(LogFilter {
            event_type: Some("member_status_changed".to_owned()),
            ..LogFilter::default()
        }),
        [steps.accepted, steps.rejected]
    );
    // The consumer acted twice and is named in the share and the unshare.
    assert_eq!(
        collect(LogFilter {
            account: Some(CONSUMER.to_owned()),
            ..LogFilter::default()
        }),
        [steps.shared, steps.accepted, steps.rejected, steps.unshared]
    );
    assert_eq!(
        collect(LogFilter {
            since: Some(start() + Duration::minutes(2)),
            until: Some(start() + Duration::minutes(3)),
            ..LogFilter::default()
        }),
        [steps.accepted, steps.rejected]
    );
    assert!(collect(LogFilter {
        stream: Some("image-00000000-0000-0000-0000-000000000000".to_owned()),
        ..LogFilter::default()
    })
    .is_empty());
}

/// Lets the log be changed, as someone with the database's files or its owner's rights can.
fn drop_triggers(conn: &impl Sql) {
    let sql = match conn.dialect() {
        Dialect::Sqlite => "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;",
        Dialect::Postgres => "DROP TRIGGER events_no_update_or_delete ON events",
    };
    conn.batch(sql).unwrap();
}

#[test]
fn verify_finds_one_tampered_event_at_exactly_its_position() {
    let world = FileWorld::new();
    let steps = walkthrough(&world);
    let clean = world.engine.verify().unwrap();
    assert!(clean.is_ok(), "{clean:?}");
    assert_eq!(clean.events_checked, 7);

    let conn = world.raw();
    let raw = conn.sql();
    drop_triggers(&raw);
    // Someone rewrites who was shared with: the JSON is valid and the stream still folds.
    raw.execute(
        "UPDATE events SET data = '{\"member_id\":\"999999\"}' WHERE position = ?1",
        params![steps.shared],
    )
    .unwrap();

    let report = world.engine.verify().unwrap();
    assert_eq!(
        report.first_difference,
        Some(Difference::Chain {
            position: steps.shared
        })
    );
    assert!(!report.is_ok());
    assert_eq!(report.events_checked, 7);
    // The rewritten share no longer matches the later answers of 222222: the replay stops there.
    assert_eq!(
        report
            .replay_error
            .and_then(|difference| difference.position()),
        Some(steps.accepted)
    );
}

#[test]
fn verify_finds_a_tampered_event_whose_replay_also_breaks() {
    let world = FileWorld::new();
    let steps = walkthrough(&world);
    let conn = world.raw();
    let raw = conn.sql();
    drop_triggers(&raw);
    raw.execute(
        "UPDATE events SET data = 'not json' WHERE position = ?1",
        params![steps.rejected],
    )
    .unwrap();
    let report = world.engine.verify().unwrap();
    assert_eq!(
        report.first_difference,
        Some(Difference::Chain {
            position: steps.rejected
        })
    );
    match report.replay_error {
        Some(Difference::Replay { position, reason }) => {
            assert_eq!(position, steps.rejected);
            assert!(reason.contains("data"), "{reason}");
        }
        other => panic!("expected the replay to stop at the bad event, got {other:?}"),
    }
    assert_eq!(report.rows_differing, None);
}

/// A read-model row `verify` found differing from the replay.
struct RowDifference {
    position: Option<i64>,
    table: String,
    key: String,
    stored: Option<String>,
    replayed: Option<String>,
}

/// The report's first difference, after checking that exactly `count` rows differ; it must be
/// a row, not a chain or replay failure.
fn first_row_difference(report: &VerifyReport, count: u64) -> RowDifference {
    assert_eq!(report.rows_differing, Some(count));
    match report.first_difference.clone().unwrap() {
        Difference::Row {
            position,
            table,
            key,
            stored,
            replayed,
        } => RowDifference {
            position,
            table,
            key,
            stored,
            replayed,
        },
        other => panic!("expected a row difference, got {other:?}"),
    }
}

#[test]
fn verify_finds_a_hand_edited_read_model_row() {
    let world = FileWorld::new();
    let producer = admin_of(PRODUCER);
    let registered = world.register(&producer, "kept");
    let shared = world.share(&producer, CONSUMER);
    assert!(FileWorld::position(&shared) > FileWorld::position(&registered));
    let conn = world.raw();
    let raw = conn.sql();

    raw.execute(
        "UPDATE proj_members SET status = 'accepted' WHERE member_id = ?1",
        params![CONSUMER],
    )
    .unwrap();
    let row = first_row_difference(&world.engine.verify().unwrap(), 1);
    assert_eq!(row.position, Some(FileWorld::position(&shared)));
    assert_eq!(row.table, "proj_members");
    assert!(
        row.key.contains(&IMAGE.to_string()) && row.key.contains(CONSUMER),
        "{}",
        row.key
    );
    assert!(row.stored.unwrap().contains("accepted"));
    assert!(row.replayed.unwrap().contains("pending"));

    // A rebuild repairs it; then a missing row and an invented row are each found.
    world.engine.rebuild(|_| {}).unwrap();
    assert!(world.engine.verify().unwrap().is_ok());
    raw.execute("DELETE FROM proj_images", params![]).unwrap();
    let row = first_row_difference(&world.engine.verify().unwrap(), 1);
    assert_eq!(row.table, "proj_images");
    assert_eq!(row.position, Some(FileWorld::position(&shared)));
    assert!(row.stored.is_none() && row.replayed.unwrap().contains("kept"));

    world.engine.rebuild(|_| {}).unwrap();
    raw.execute(
        "INSERT INTO proj_image_properties (image_id, key, value) VALUES ('nobody', 'k', 'v')",
        params![],
    )
    .unwrap();
    let report = world.engine.verify().unwrap();
    let row = first_row_difference(&report, 1);
    assert_eq!(row.table, "proj_image_properties");
    assert_eq!(row.position, None, "no stream owns the invented row");
    assert!(row.stored.is_some() && row.replayed.is_none());
    // Only the read models were edited: the chain is intact.
    assert_eq!(report.events_checked, 3);
}

#[test]
fn verify_reports_the_edited_row_with_the_earliest_position_first() {
    let world = FileWorld::new();
    let producer = admin_of(PRODUCER);
    let register = |image_id: Uuid, name: &str| {
        FileWorld::position(&world.run_on(
            image_id,
            &producer,
            ImageCommand::Register {
                origin: ImageOrigin::Snapshot {
                    server_id: name.to_owned(),
                },
                image: snapshot(name),
            },
        ))
    };
    // The older image sorts after the newer one by id, so key order alone would pick the newer.
    let older = Uuid::from_u128(0xffff_0000);
    let newer = Uuid::from_u128(0x0000_ffff);
    let older_position = register(older, "older");
    register(newer, "newer");
    world
        .raw()
        .sql()
        .execute("UPDATE proj_images SET name = 'edited'", params![])
        .unwrap();

    let row = first_row_difference(&world.engine.verify().unwrap(), 2);
    assert_eq!(row.position, Some(older_position));
    assert_eq!(row.key, older.to_string());
}

/// Inserts exported log lines as they were, with raw SQL.
fn import(conn: &impl Sql, lines: &str) -> usize {
    let mut count = 0;
    for line in lines.lines().filter(|line| !line.trim().is_empty()) {
        let line: LogLine = serde_json::from_str(line).unwrap();
        let event_id = line.event_id.to_string();
        let data = serde_json::to_string(&line.data).unwrap();
        let metadata = serde_json::to_string(&line.metadata).unwrap();
        conn.execute(
            "INSERT INTO events (position, event_id, stream_id, version, event_type, \
             schema_version, data, metadata, recorded_at, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                line.position,
                &event_id,
                &line.stream_id,
                i64::try_from(line.version).unwrap(),
                &line.event_type,
                line.schema_version,
                &data,
                &metadata,
                &line.recorded_at,
                &line.prev_hash,
                &line.hash,
            ],
        )
        .unwrap();
        count += 1;
    }
    count
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A log written before `member_status_changed` had a version 2 stays readable: its hash chain
/// still verifies, every event decodes (v1 upcast to v2), and the image folds to what the
/// walkthrough left.
#[test]
fn a_v1_log_from_an_older_version_reads_with_the_current_code() {
    let db = TestDb::new(ProfileKind::Rackspace);
    // The schema, as this version creates it (and the profile, as a first start records it).
    drop(db.open(Default::default()));
    {
        let conn = db.connect();
        assert_eq!(import(&conn.sql(), &fixture("log-v1-walkthrough.jsonl")), 7);
        let chain = imgshare_store::verify_chain(&conn.sql()).unwrap();
        assert_eq!(
            chain.first_mismatch, None,
            "export and import are byte-exact"
        );
    }
    let engine = db.open(Default::default());

    let mut versions = Vec::new();
    let mut image_id = None;
    engine
        .read_sql(|conn| {
            audit::for_each_logged(conn, &LogFilter::default(), |stored| {
                versions.push((stored.event_type.clone(), stored.schema_version));
                let event = imgshare_store::engine::decode(&stored)?;
                if let Event::ImageRegistered(registered) = &event {
                    image_id = Some(registered.image_id);
                }
                if let Event::MemberStatusChanged {
                    previous_status, ..
                } = &event
                {
                    assert_eq!(*previous_status, None, "v1 did not record it");
                }
                Ok(())
            })
        })
        .unwrap();
    assert!(versions.iter().all(|(_, version)| *version == 1));
    assert_eq!(
        versions
            .iter()
            .filter(|(event_type, _)| event_type == "member_status_changed")
            .count(),
        2
    );

    let image_id = image_id.unwrap();
    let image = engine.image_state(image_id).unwrap().unwrap();
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.name.as_deref(), Some("my-saved-image-name"));
    assert_eq!(image.owner.as_deref(), Some(PRODUCER));
    assert_eq!(image.properties["someAttribute"], "someValue");
    assert!(image.members.is_empty(), "the walkthrough ends unshared");

    let history = engine.history(image_id).unwrap();
    let answers: Vec<_> = history
        .iter()
        .filter(|entry| entry.event_type == "member_status_changed")
        .map(|entry| {
            (
                entry.data["status"].clone(),
                entry.data["previous_status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            (serde_json::json!("accepted"), serde_json::Value::Null),
            (serde_json::json!("rejected"), serde_json::Value::Null)
        ]
    );
    let at_accept = engine.access_at(image_id, AsOf::Position(4)).unwrap();
    assert_eq!(
        account(&at_accept, CONSUMER).unwrap().why,
        as_member(MemberStatus::Accepted)
    );

    // The imported log has no read models yet; after a rebuild they match a replay.
    assert!(!engine.verify().unwrap().is_ok());
    engine.rebuild(|_| {}).unwrap();
    let report = engine.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
}
