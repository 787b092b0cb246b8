//! Bad input at the library entry points: every refused command or query gets a 4xx with a
//! non-empty message and changes nothing (same log head, same read-model rows, same aggregates).
//!
//! The tables name each case, so a failure says which input. Two property tests fuzz the
//! JSON-patch parser and the list query parsers: arbitrary input never panics, a parse error is a
//! 4xx, and whatever reaches the engine either succeeds or is refused without a write.
//! `PROPTEST_CASES` sets their number of cases (256 each by default).

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;

use chrono::{DateTime, Duration, TimeZone, Utc};
use imgshare_core::patch::{parse_patch_bytes, PatchDialect, PatchDocument, PatchOp, PatchOpKind};
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, Profile, Region,
    TaskCommand,
};
use imgshare_projection::query::{parse_image_list_query, parse_task_list_query, QueryDialect};
use imgshare_projection::tables;
use imgshare_store::{head, Engine, EngineError};
use imgshare_tests::property;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use serde_json::{json, Value};
use uuid::Uuid;

const OWNER: &str = "100001";
const MEMBER: &str = "100002";
const STRANGER: &str = "100003";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap()
}

fn dfw() -> Region {
    Region::parse("DFW").unwrap()
}

fn admin(tenant: &str) -> Actor {
    Actor::tenant(tenant, &format!("user-{tenant}"), &["cloudImages:admin"])
}

fn glance_member(tenant: &str) -> Actor {
    Actor::tenant(tenant, &format!("user-{tenant}"), &["member"])
}

fn data() -> ImageActivated {
    ImageActivated::fixture(1024)
}

fn snapshot(name: &str) -> NewImage {
    NewImage::snapshot_fixture(name, 1024)
}

/// An engine holding one shared image: owned by OWNER, MEMBER pending, tag `web`, property
/// `os_distro` (a snapshot on Rackspace, a `shared` image from the API on Glance).
struct Fixture {
    engine: Engine,
    image: Uuid,
    clock: Cell<i64>,
}

impl Fixture {
    fn new(glance: bool) -> Self {
        let profile = if glance {
            Profile::glance()
        } else {
            Profile::rackspace()
        };
        let fixture = Fixture {
            engine: Engine::in_memory_with(profile).unwrap(),
            image: Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0001),
            clock: Cell::new(0),
        };
        let owner = if glance {
            glance_member(OWNER)
        } else {
            admin(OWNER)
        };
        let mut image = snapshot("web");
        image.tags = vec!["web".to_owned()];
        image.properties = [("os_distro".to_owned(), "ubuntu".to_owned())]
            .into_iter()
            .collect();
        let origin = if glance {
            image.visibility = Some(imgshare_core::Visibility::Shared);
            ImageOrigin::Api
        } else {
            ImageOrigin::Snapshot {
                server_id: "srv-1".to_owned(),
            }
        };
        fixture
            .run(&owner, ImageCommand::Register { origin, image })
            .unwrap();
        fixture
            .run(
                &owner,
                ImageCommand::AddMember {
                    member_id: MEMBER.to_owned(),
                },
            )
            .unwrap();
        fixture
    }

    fn ctx(&self, actor: &Actor) -> Context {
        let minutes = self.clock.get();
        self.clock.set(minutes + 1);
        Context::new(actor.clone(), dfw(), t0() + Duration::minutes(minutes))
    }

    fn run(&self, actor: &Actor, command: ImageCommand) -> Result<(), EngineError> {
        self.run_on(actor, self.image, command)
    }

    fn run_on(
        &self,
        actor: &Actor,
        image_id: Uuid,
        command: ImageCommand,
    ) -> Result<(), EngineError> {
        self.engine
            .execute(&self.ctx(actor), Command::Image { image_id, command })
            .map(drop)
    }

    /// Everything a command could change: the log head, every read-model row, the aggregate.
    fn observable(&self) -> (Option<(i64, String)>, Vec<String>, String) {
        let head = self.engine.read(|conn| Ok(head(conn)?)).unwrap();
        let rows = self.engine.read(|conn| Ok(tables::dump(conn)?)).unwrap();
        let state = format!("{:?}", self.engine.image_state(self.image).unwrap());
        (head, rows, state)
    }

    /// Sends `document` as an update by `actor`: `None` if it was applied, else the refusal,
    /// already checked to be a 4xx that changed nothing.
    fn update(
        &self,
        actor: &Actor,
        document: &PatchDocument,
    ) -> Result<Option<EngineError>, TestCaseError> {
        let before = self.observable();
        let Err(error) = self.run(actor, ImageCommand::Update(document.clone())) else {
            return Ok(None);
        };
        prop_assert!(
            (400..500).contains(&imgshare_server::error::status_of(error.kind()).as_u16()),
            "{:?} gave {}",
            document,
            error
        );
        prop_assert!(
            before == self.observable(),
            "{:?} refused but wrote",
            document
        );
        Ok(Some(error))
    }
}

/// Checks that `attempt` is refused with `status`, a non-empty message, and no change; returns
/// what went wrong otherwise.
fn check_refused(
    fixture: &Fixture,
    name: &str,
    status: u16,
    attempt: impl FnOnce(&Fixture) -> Result<(), EngineError>,
) -> Option<String> {
    let before = fixture.observable();
    let result = attempt(fixture);
    let after = fixture.observable();
    match result {
        Ok(()) => Some(format!("{name}: accepted, expected {status}")),
        Err(error) if imgshare_server::error::status_of(error.kind()).as_u16() != status => {
            Some(format!(
                "{name}: {} ({}: {error}), expected {status}",
                imgshare_server::error::status_of(error.kind()).as_u16(),
                error.code()
            ))
        }
        Err(error) if error.to_string().trim().is_empty() || error.code().is_empty() => {
            Some(format!("{name}: empty message or code"))
        }
        Err(_) if before != after => Some(format!("{name}: refused but changed the state")),
        Err(_) => None,
    }
}

/// Like [`check_refused`], failing at once.
fn assert_refused(
    fixture: &Fixture,
    name: &str,
    status: u16,
    attempt: impl FnOnce(&Fixture) -> Result<(), EngineError>,
) {
    if let Some(problem) = check_refused(fixture, name, status, attempt) {
        panic!("{problem}");
    }
}

/// Runs every row on a fresh fixture and fails once, listing every row that went wrong.
fn check_rows<T>(
    glance: bool,
    rows: Vec<(&'static str, u16, T)>,
    attempt: impl Fn(&Fixture, T) -> Result<(), EngineError>,
) {
    let problems: Vec<String> = rows
        .into_iter()
        .filter_map(|(name, status, input)| {
            let fixture = Fixture::new(glance);
            check_refused(&fixture, name, status, |fixture| attempt(fixture, input))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A v2.1 PATCH built without the parser, so that inputs the parser already refuses (a 256-byte
/// key) still reach the domain's own checks.
fn patch(ops: Value) -> ImageCommand {
    let ops = ops
        .as_array()
        .unwrap()
        .iter()
        .map(|op| PatchOp {
            kind: match op["op"].as_str().unwrap() {
                "add" => PatchOpKind::Add,
                "remove" => PatchOpKind::Remove,
                _ => PatchOpKind::Replace,
            },
            path: op["path"]
                .as_str()
                .unwrap()
                .trim_start_matches('/')
                .to_owned(),
            index: None,
            value: op.get("value").cloned(),
        })
        .collect();
    ImageCommand::Update(PatchDocument {
        dialect: PatchDialect::V2_1,
        ops,
    })
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

type Row = (&'static str, u16, Actor, ImageCommand);

/// Commands to the shared image, each refused.
#[rustfmt::skip]
fn command_rows() -> Vec<Row> {
    let owner = admin(OWNER);
    let member = admin(MEMBER);
    let stranger = admin(STRANGER);
    let set = |path: &str, value: Value| {
        patch(json!([{"op": "replace", "path": format!("/{path}"), "value": value}]))
    };
    let add = |path: &str, value: Value| {
        patch(json!([{"op": "add", "path": format!("/{path}"), "value": value}]))
    };
    vec![
        // Member ids.
        ("share: empty member id", 400, owner.clone(), ImageCommand::AddMember { member_id: String::new() }),
        ("share: 4-byte UTF-8 member id", 400, owner.clone(), ImageCommand::AddMember { member_id: "ab\u{1F600}".to_owned() }),
        ("share: member id with a NUL character", 400, owner.clone(), ImageCommand::AddMember { member_id: "12\u{0}34".to_owned() }),
        ("share: 256-character member id", 400, owner.clone(), ImageCommand::AddMember { member_id: long(256) }),
        ("share: 1 MB member id", 400, owner.clone(), ImageCommand::AddMember { member_id: long(1 << 20) }),
        ("share: duplicate member", 409, owner.clone(), ImageCommand::AddMember { member_id: MEMBER.to_owned() }),
        ("share: by the member", 403, member.clone(), ImageCommand::AddMember { member_id: STRANGER.to_owned() }),
        ("share: by a stranger", 404, stranger.clone(), ImageCommand::AddMember { member_id: STRANGER.to_owned() }),
        ("unshare: empty member id", 400, owner.clone(), ImageCommand::RemoveMember { member_id: String::new() }),
        ("unshare: not a member", 404, owner.clone(), ImageCommand::RemoveMember { member_id: "999999".to_owned() }),
        ("unshare: 4-byte UTF-8 member id", 404, owner.clone(), ImageCommand::RemoveMember { member_id: "\u{1F600}".to_owned() }),
        ("unshare: by the member", 403, member.clone(), ImageCommand::RemoveMember { member_id: MEMBER.to_owned() }),
        // Member status.
        ("answer: unknown status", 400, member.clone(), ImageCommand::SetMemberStatus { member_id: MEMBER.to_owned(), status: "bogus".to_owned() }),
        ("answer: empty status", 400, member.clone(), ImageCommand::SetMemberStatus { member_id: MEMBER.to_owned(), status: String::new() }),
        ("answer: status with 4-byte UTF-8", 400, member.clone(), ImageCommand::SetMemberStatus { member_id: MEMBER.to_owned(), status: "accepted\u{1F600}".to_owned() }),
        ("answer: huge status", 400, member.clone(), ImageCommand::SetMemberStatus { member_id: MEMBER.to_owned(), status: long(1 << 16) }),
        ("answer: empty member id", 400, member.clone(), ImageCommand::SetMemberStatus { member_id: String::new(), status: "accepted".to_owned() }),
        ("answer: by the owner", 403, owner.clone(), ImageCommand::SetMemberStatus { member_id: MEMBER.to_owned(), status: "accepted".to_owned() }),
        ("answer: for another member", 404, stranger.clone(), ImageCommand::SetMemberStatus { member_id: MEMBER.to_owned(), status: "accepted".to_owned() }),
        // Tags.
        ("tag: empty", 400, owner.clone(), ImageCommand::AddTag { tag: String::new() }),
        ("tag: 4-byte UTF-8", 400, owner.clone(), ImageCommand::AddTag { tag: "\u{1F600}".to_owned() }),
        ("tag: a NUL character", 400, owner.clone(), ImageCommand::AddTag { tag: "a\u{0}b".to_owned() }),
        ("tag: 256 characters", 400, owner.clone(), ImageCommand::AddTag { tag: long(256) }),
        ("tag: 1 MB", 400, owner.clone(), ImageCommand::AddTag { tag: long(1 << 20) }),
        ("tag: by the member", 403, member.clone(), ImageCommand::AddTag { tag: "mine".to_owned() }),
        ("untag: not there", 404, owner.clone(), ImageCommand::RemoveTag { tag: "nope".to_owned() }),
        ("untag: empty", 404, owner.clone(), ImageCommand::RemoveTag { tag: String::new() }),
        // PATCH: core fields of the wrong type or out of range.
        ("patch: name 256 characters", 400, owner.clone(), set("name", json!(long(256)))),
        ("patch: name with 4-byte UTF-8", 400, owner.clone(), set("name", json!("n\u{1F600}"))),
        ("patch: name with a NUL character", 400, owner.clone(), set("name", json!("n\u{0}"))),
        ("patch: name a number", 400, owner.clone(), set("name", json!(5))),
        ("patch: name an object", 400, owner.clone(), set("name", json!({"a": 1}))),
        ("patch: min_disk a string", 400, owner.clone(), set("min_disk", json!("ten"))),
        ("patch: min_disk negative", 400, owner.clone(), set("min_disk", json!(-1))),
        ("patch: min_disk above 2^31-1", 400, owner.clone(), set("min_disk", json!(2_147_483_648_u64))),
        ("patch: min_ram a fraction", 400, owner.clone(), set("min_ram", json!(1.5))),
        ("patch: min_ram null", 400, owner.clone(), set("min_ram", Value::Null)),
        ("patch: protected a string", 400, owner.clone(), set("protected", json!("yes"))),
        ("patch: container_format of an active image", 403, owner.clone(), set("container_format", json!("bogus"))),
        ("patch: disk_format of an active image, a number", 403, owner.clone(), set("disk_format", json!(3))),
        ("patch: tags not an array", 400, owner.clone(), set("tags", json!("web"))),
        ("patch: tags of numbers", 400, owner.clone(), set("tags", json!([1, 2]))),
        ("patch: tags with an empty tag", 400, owner.clone(), set("tags", json!(["web", ""]))),
        ("patch: tags with 4-byte UTF-8", 400, owner.clone(), set("tags", json!(["\u{1F600}"]))),
        ("patch: visibility unknown", 403, owner.clone(), set("visibility", json!("bogus"))),
        ("patch: community on Rackspace, by the provider", 400, Actor::operator("provider"), set("visibility", json!("community"))),
        ("patch: shared on Rackspace, by the provider", 400, Actor::operator("provider"), set("visibility", json!("shared"))),
        ("patch: owner by a tenant", 403, owner.clone(), set("owner", json!(STRANGER))),
        ("patch: remove a core field", 403, owner.clone(), patch(json!([{"op": "remove", "path": "/name"}]))),
        // PATCH: property keys and values.
        ("patch: property key 256 characters", 400, owner.clone(), add(&long(256), json!("v"))),
        ("patch: property key with 4-byte UTF-8", 400, owner.clone(), add("k\u{1F600}", json!("v"))),
        ("patch: property value 256 characters", 400, owner.clone(), add("custom", json!(long(256)))),
        ("patch: property value 1 MB", 400, owner.clone(), add("custom", json!(long(1 << 20)))),
        ("patch: property value with 4-byte UTF-8", 400, owner.clone(), add("custom", json!("\u{1F600}"))),
        ("patch: property value with a NUL character", 400, owner.clone(), add("custom", json!("\u{0}"))),
        ("patch: property value a number", 400, owner.clone(), add("custom", json!(5))),
        ("patch: property value null", 400, owner.clone(), add("custom", Value::Null)),
        ("patch: property value an object", 400, owner.clone(), add("custom", json!({"a": "b"}))),
        ("patch: property value an array", 400, owner.clone(), add("custom", json!(["a"]))),
        ("patch: property value a bool", 400, owner.clone(), add("custom", json!(true))),
        ("patch: read-only attribute", 403, owner.clone(), set("status", json!("active"))),
        ("patch: reserved attribute", 403, owner.clone(), add("deleted", json!("x"))),
        ("patch: os_glance prefix", 403, owner.clone(), add("os_glance_import_method", json!("x"))),
        ("patch: protected property", 403, owner.clone(), add("image_type", json!("base"))),
        ("patch: protected prefix", 403, owner.clone(), add("com.rackspace__1__options", json!("0"))),
        ("patch: replace a missing property", 409, owner.clone(), set("missing", json!("x"))),
        ("patch: remove a missing property", 409, owner.clone(), patch(json!([{"op": "remove", "path": "/missing"}]))),
        ("patch: one bad op after a good one", 400, owner.clone(), patch(json!([{"op": "replace", "path": "/name", "value": "renamed"}, {"op": "add", "path": "/custom", "value": 5}]))),
        ("patch: by the member", 403, member.clone(), set("name", json!("mine"))),
        // Lifecycle.
        ("delete: by the member", 403, member, ImageCommand::Delete),
        ("delete: by a stranger", 404, stranger, ImageCommand::Delete),
        ("activate: already active", 403, owner.clone(), ImageCommand::Activate(data())),
        ("deactivate: by the owner", 403, owner, ImageCommand::Deactivate),
    ]
}

#[test]
fn every_refused_command_changes_nothing() {
    let rows = command_rows()
        .into_iter()
        .map(|(name, status, actor, command)| (name, status, (actor, command)))
        .collect();
    check_rows(false, rows, |fixture, (actor, command)| {
        fixture.run(&actor, command)
    });
}

/// Registrations with bad fields: refused before anything is written.
#[test]
fn every_refused_registration_changes_nothing() {
    let fresh_id = Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0099);
    let snapshot_with = |edit: &dyn Fn(&mut NewImage)| {
        let mut image = snapshot("new");
        edit(&mut image);
        image
    };
    let rows: Vec<(&str, u16, NewImage)> = vec![
        (
            "name 256 characters",
            400,
            snapshot_with(&|i| i.name = Some(long(256))),
        ),
        (
            "name with 4-byte UTF-8",
            400,
            snapshot_with(&|i| i.name = Some("\u{1F600}".to_owned())),
        ),
        (
            "unknown container_format",
            400,
            snapshot_with(&|i| i.container_format = Some("bogus".to_owned())),
        ),
        (
            "empty disk_format",
            400,
            snapshot_with(&|i| i.disk_format = Some(String::new())),
        ),
        (
            "min_disk above 2^31-1",
            400,
            snapshot_with(&|i| i.min_disk = u64::MAX),
        ),
        (
            "empty tag",
            400,
            snapshot_with(&|i| i.tags = vec![String::new()]),
        ),
        (
            "tag with 4-byte UTF-8",
            400,
            snapshot_with(&|i| i.tags = vec!["\u{1F600}".to_owned()]),
        ),
        (
            "empty property key",
            400,
            snapshot_with(&|i| {
                i.properties.insert(String::new(), "v".to_owned());
            }),
        ),
        (
            "property value 1 MB",
            400,
            snapshot_with(&|i| {
                i.properties.insert("k".to_owned(), long(1 << 20));
            }),
        ),
        (
            "read-only property key",
            403,
            snapshot_with(&|i| {
                i.properties.insert("checksum".to_owned(), "x".to_owned());
            }),
        ),
        (
            "data with a bad checksum",
            400,
            snapshot_with(&|i| {
                i.data = Some(ImageActivated {
                    checksum: "xyz".to_owned(),
                    ..data()
                })
            }),
        ),
        (
            "data without formats",
            400,
            snapshot_with(&|i| i.container_format = None),
        ),
        (
            "public snapshot",
            403,
            snapshot_with(&|i| i.visibility = Some(imgshare_core::Visibility::Public)),
        ),
    ];
    for (name, status, image) in rows {
        let fixture = Fixture::new(false);
        assert_refused(&fixture, name, status, |fixture| {
            fixture.run_on(
                &admin(OWNER),
                fresh_id,
                ImageCommand::Register {
                    origin: ImageOrigin::Snapshot {
                        server_id: "srv-2".to_owned(),
                    },
                    image,
                },
            )
        });
        assert_eq!(
            fixture.engine.image_state(fresh_id).unwrap(),
            None,
            "{name}"
        );
    }
    // The server id is text the API stores, too.
    let fixture = Fixture::new(false);
    assert_refused(&fixture, "server id with 4-byte UTF-8", 400, |fixture| {
        fixture.run_on(
            &admin(OWNER),
            fresh_id,
            ImageCommand::Register {
                origin: ImageOrigin::Snapshot {
                    server_id: "\u{1F600}".to_owned(),
                },
                image: snapshot("new"),
            },
        )
    });
}

/// Glance: `POST /v2/images` bodies carry properties straight from the client.
#[test]
fn every_refused_api_create_changes_nothing() {
    let fresh_id = Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0098);
    let with_property = |key: &str, value: &str| NewImage {
        properties: [(key.to_owned(), value.to_owned())].into_iter().collect(),
        ..NewImage::default()
    };
    let rows: Vec<(&str, u16, NewImage)> = vec![
        ("core field as a property", 403, with_property("name", "x")),
        (
            "read-only field as a property",
            403,
            with_property("status", "active"),
        ),
        (
            "reserved field as a property",
            403,
            with_property("locations", "[]"),
        ),
        (
            "property key 256 characters",
            400,
            with_property(&long(256), "v"),
        ),
        (
            "property value with 4-byte UTF-8",
            400,
            with_property("k", "\u{1F600}"),
        ),
        (
            "public by a member",
            403,
            NewImage {
                visibility: Some(imgshare_core::Visibility::Public),
                ..NewImage::default()
            },
        ),
    ];
    for (name, status, image) in rows {
        let fixture = Fixture::new(true);
        assert_refused(&fixture, name, status, |fixture| {
            fixture.run_on(
                &glance_member(OWNER),
                fresh_id,
                ImageCommand::Register {
                    origin: ImageOrigin::Api,
                    image,
                },
            )
        });
    }
}

#[test]
fn every_refused_task_changes_nothing() {
    let task_id = Uuid::from_u128(0x2000_0000_0000_4000_8000_0000_0000_0001);
    let rows: Vec<(&str, u16, Actor, TaskCommand)> = vec![
        (
            "unknown task type",
            400,
            admin(OWNER),
            TaskCommand::Create {
                task_type: "bogus".to_owned(),
                input: json!({}),
            },
        ),
        (
            "input a string",
            400,
            admin(OWNER),
            TaskCommand::Create {
                task_type: "import".to_owned(),
                input: json!("exports/image.vhd"),
            },
        ),
        (
            "input an array",
            400,
            admin(OWNER),
            TaskCommand::Create {
                task_type: "import".to_owned(),
                input: json!([1]),
            },
        ),
        (
            "input null",
            400,
            admin(OWNER),
            TaskCommand::Create {
                task_type: "import".to_owned(),
                input: Value::Null,
            },
        ),
        (
            "start an unknown task",
            404,
            Actor::operator("worker"),
            TaskCommand::Start,
        ),
    ];
    for (name, status, actor, command) in rows {
        let fixture = Fixture::new(false);
        assert_refused(&fixture, name, status, |fixture| {
            fixture
                .engine
                .execute(&fixture.ctx(&actor), Command::Task { task_id, command })
                .map(drop)
        });
    }
}

/// Query strings of `GET /v2/images` and `GET /v2/tasks`: 400, never a 500, nothing written.
#[test]
fn every_bad_query_string_is_a_400() {
    let many = (0..=100)
        .map(|n| format!("k{n}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let huge_value = format!("name={}", long(4096));
    let image_rows: Vec<(&str, String)> = vec![
        ("limit negative", "limit=-1".to_owned()),
        ("limit not a number", "limit=abc".to_owned()),
        ("limit empty", "limit=".to_owned()),
        ("limit a fraction", "limit=1.5".to_owned()),
        ("unknown sort key", "sort_key=unknown".to_owned()),
        ("unknown sort dir", "sort_dir=sideways".to_owned()),
        ("bad sort syntax", "sort=name:up".to_owned()),
        ("marker not a uuid", "marker=not-a-uuid".to_owned()),
        ("marker unknown", format!("marker={}", Uuid::from_u128(42))),
        ("member_status unknown", "member_status=bogus".to_owned()),
        ("visibility unknown", "visibility=everyone".to_owned()),
        ("community on rackspace", "visibility=community".to_owned()),
        (
            "changes-since",
            "changes-since=2014-01-01T00:00:00Z".to_owned(),
        ),
        (
            "created_at not a time",
            "created_at=gt:yesterday".to_owned(),
        ),
        (
            "created_at unknown operator",
            "created_at=around:2014-01-01T00:00:00Z".to_owned(),
        ),
        ("size_min not a number", "size_min=abc".to_owned()),
        ("protected not a bool", "protected=maybe".to_owned()),
        ("percent-encoded invalid UTF-8", "name=%FF%FE".to_owned()),
        ("101 parameters", many.clone()),
        ("4 kB value", huge_value),
        (
            "sort and sort_key together",
            "sort=name:asc&sort_key=name".to_owned(),
        ),
    ];
    let fixture = Fixture::new(false);
    let ctx = fixture.ctx(&admin(OWNER));
    for (name, raw) in image_rows {
        assert_refused(&fixture, name, 400, |fixture| {
            fixture.engine.list_images(&ctx, &raw).map(drop)
        });
    }
    let task_rows: Vec<(&str, String)> = vec![
        ("task limit negative", "limit=-1".to_owned()),
        ("task status unknown", "status=bogus".to_owned()),
        ("task type unknown", "type=bogus".to_owned()),
        ("task sort key unknown", "sort_key=bogus".to_owned()),
        ("task marker not a uuid", "marker=xyz".to_owned()),
        ("task 101 parameters", many),
    ];
    for (name, raw) in task_rows {
        assert_refused(&fixture, name, 400, |fixture| {
            fixture.engine.list_tasks(&ctx, &raw).map(drop)
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzzing the parsers through the engine.
// ---------------------------------------------------------------------------------------------

/// The fuzz tests' runner settings: many cases, since each is cheap.
fn config() -> ProptestConfig {
    property::config(256)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        proptest::sample::select(&["web", "", "\u{1F600}", "shared", "public", "ovf", "vhd"][..])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A patch operation object, mostly well-formed, with random members.
fn patch_op_value() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        12 => proptest::sample::select(&["add", "replace", "remove"][..]).prop_map(|s| json!(s)),
        1 => proptest::sample::select(&["move", "copy", "test", "", "ADD"][..]).prop_map(|s| json!(s)),
        1 => json_value(),
    ];
    let path = prop_oneof![
        12 => proptest::sample::select(&[
            "/name", "/visibility", "/protected", "/min_disk", "/min_ram", "/tags", "/owner",
            "/container_format", "/disk_format", "/os_distro", "/custom", "/status", "/locations",
            "/locations/0", "/a~1b", "/", "", "name", "/\u{1F600}", "/os_glance_x",
        ][..]).prop_map(|s| json!(s)),
        1 => "/?.{0,10}".prop_map(|s| json!(s)),
        1 => json_value(),
    ];
    (
        op,
        path,
        proptest::option::weighted(0.9, json_value()),
        proptest::option::weighted(0.05, json_value()),
    )
        .prop_map(|(op, path, value, extra)| {
            let mut object = serde_json::Map::new();
            object.insert("op".to_owned(), op);
            object.insert("path".to_owned(), path);
            if let Some(value) = value {
                object.insert("value".to_owned(), value);
            }
            if let Some(extra) = extra {
                object.insert("from".to_owned(), extra);
            }
            Value::Object(object)
        })
}

fn patch_body() -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    let content_type = prop_oneof![
        6 => Just(Some(PatchDialect::V2_1.media_type().to_owned())),
        2 => Just(Some(PatchDialect::V2_0.media_type().to_owned())),
        1 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => ".{0,40}".prop_map(Some),
    ];
    let body = prop_oneof![
        6 => proptest::collection::vec(patch_op_value(), 0..3)
            .prop_map(|ops| Value::Array(ops).to_string().into_bytes()),
        2 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => ".{0,64}".prop_map(String::into_bytes),
    ];
    (content_type, body)
}

/// What the patch fuzz reached.
#[derive(Debug, Default)]
struct FuzzCounts {
    cases: u64,
    parse_errors: u64,
    applied: u64,
    refused: u64,
}

/// Arbitrary patch requests, as raw bytes with a content type, sent by the owner: the parser
/// never panics; a parse error is a 400 or 415 with a message; a parsed document sent to the
/// engine is applied or refused with a 4xx, and a refusal writes nothing.
#[test]
fn patch_parser_fuzz_never_panics_and_refusals_write_nothing() {
    let fixture = Fixture::new(false);
    let owner = admin(OWNER);
    let counts = property::run(
        config(),
        &patch_body(),
        |(content_type, body), counts: &mut FuzzCounts| {
            counts.cases += 1;
            let document = match parse_patch_bytes(content_type.as_deref(), &body) {
                Err(error) => {
                    counts.parse_errors += 1;
                    prop_assert!(matches!(
                        error.kind.error_kind(),
                        imgshare_core::ErrorKind::Invalid
                            | imgshare_core::ErrorKind::UnsupportedMediaType
                    ));
                    prop_assert!(!error.message.is_empty());
                    return Ok(());
                }
                Ok(document) => document,
            };
            match fixture.update(&owner, &document)? {
                None => counts.applied += 1,
                Some(error) => {
                    counts.refused += 1;
                    prop_assert!(!error.to_string().is_empty());
                }
            }
            Ok(())
        },
    );
    eprintln!(
        "patch fuzz: {} cases: {} parse errors, {} applied, {} refused by the engine",
        counts.cases, counts.parse_errors, counts.applied, counts.refused
    );
    // Each path must be reached, or the checks above hold vacuously.
    assert!(
        counts.parse_errors > 0 && counts.applied > 0 && counts.refused > 0,
        "{counts:?}"
    );
}

/// A patch document built directly (what an adapter could hand over without the parser):
/// arbitrary paths and values never make the engine panic or write on refusal.
#[test]
fn patch_documents_with_arbitrary_values_are_applied_or_refused_cleanly() {
    let fixture = Fixture::new(true);
    let owner = glance_member(OWNER);
    let op = (
        proptest::sample::select(&[PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove][..]),
        prop_oneof![
            3 => proptest::sample::select(&["name", "visibility", "protected", "min_disk", "tags", "os_hidden", "custom", "owner"][..])
                .prop_map(str::to_owned),
            1 => ".{0,8}",
        ],
        proptest::option::of(json_value()),
    )
        .prop_map(|(kind, path, value)| PatchOp {
            kind,
            path,
            index: None,
            value,
        });
    property::run(
        config(),
        &proptest::collection::vec(op, 0..4),
        |ops, _: &mut ()| -> Result<(), TestCaseError> {
            let document = PatchDocument {
                dialect: PatchDialect::V2_1,
                ops,
            };
            fixture.update(&owner, &document)?;
            Ok(())
        },
    );
}

fn query_string() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => proptest::sample::select(&[
            "limit", "marker", "sort_key", "sort_dir", "sort", "member_status", "visibility",
            "status", "name", "owner", "tag", "size_min", "size_max", "created_at", "updated_at",
            "protected", "os_hidden", "id", "type", "changes-since", "os_distro",
        ][..]).prop_map(str::to_owned),
        1 => "[a-z_%+]{0,8}",
    ];
    let value = prop_oneof![
        3 => proptest::sample::select(&[
            "", "-1", "0", "1", "abc", "1000", "10000", "name", "asc", "desc", "name:asc",
            "all", "accepted", "pending", "bogus", "public", "shared", "community", "true",
            "in:web,db", "gt:2014-01-01T00:00:00Z", "neq:x", "%FF", "%", "%2", "+", "%00",
            "00000000-0000-0000-0000-000000000000", "\u{1F600}",
        ][..]).prop_map(str::to_owned),
        1 => ".{0,16}",
    ];
    prop_oneof![
        6 => proptest::collection::vec((key, value), 0..5).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => ".{0,40}",
    ]
}

/// Arbitrary query strings: the parsers never panic, the engine's list calls answer a page or a
/// 400 with a message, and nothing is ever written.
#[test]
fn query_parser_fuzz_never_panics_and_writes_nothing() {
    let fixture = Fixture::new(false);
    let ctx = fixture.ctx(&admin(OWNER));
    let before = fixture.observable();
    // Cases, image-list refusals, task-list refusals.
    let (cases, images, tasks) = property::run(
        config(),
        &query_string(),
        |raw, counts: &mut (u64, u64, u64)| {
            counts.0 += 1;
            for parsed in [
                parse_image_list_query(&raw, &QueryDialect::GLANCE).map(drop),
                parse_task_list_query(&raw, &QueryDialect::GLANCE, &["import"]).map(drop),
            ] {
                if let Err(error) = parsed {
                    prop_assert!(!error.message.is_empty(), "{:?}: empty message", raw);
                }
            }
            let parsed = parse_image_list_query(&raw, &QueryDialect::RACKSPACE);
            match (fixture.engine.list_images(&ctx, &raw), &parsed) {
                (Ok(page), Ok(_)) => prop_assert!(page["images"].is_array()),
                (Ok(_), Err(error)) => {
                    return Err(TestCaseError::fail(format!(
                        "{raw:?}: the parser refused ({error}) but the engine listed"
                    )))
                }
                (Err(error), parsed) => {
                    counts.1 += 1;
                    prop_assert_eq!(
                        imgshare_server::error::status_of(error.kind()).as_u16(),
                        400,
                        "{:?}: {}",
                        raw,
                        error
                    );
                    prop_assert!(!error.to_string().is_empty());
                    // Beyond the parser's refusals, the engine refuses only a marker it cannot show.
                    prop_assert!(
                        parsed.is_err() || raw.contains("marker"),
                        "{:?}: parsed, then refused: {}",
                        raw,
                        error
                    );
                }
            }
            if let Err(error) = fixture.engine.list_tasks(&ctx, &raw) {
                counts.2 += 1;
                prop_assert_eq!(
                    imgshare_server::error::status_of(error.kind()).as_u16(),
                    400,
                    "{:?}: {}",
                    raw,
                    error
                );
            }
            Ok(())
        },
    );
    assert!(before == fixture.observable(), "list queries wrote");
    eprintln!(
        "query fuzz: {cases} cases: {images} image-list refusals, {tasks} task-list refusals"
    );
    assert!(
        images > 0 && images < cases,
        "{cases} cases, {images} refused"
    );
}
