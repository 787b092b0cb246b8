//! Rebuild equivalence: random command sequences from four tenants (observer, creator or admin
//! roles; reader, member or admin under the glance profile, which a quarter of the cases use)
//! and the provider, over two regions, run on an engine of the selected backend (in-memory SQLite,
//! or a new PostgreSQL database per case with `IMGSHARE_TESTS_BACKEND=postgres`: see
//! `imgshare_tests::backend`). Afterwards the read models
//! written live, in the append transactions, must be row for row what `Engine::rebuild` writes
//! from the log alone (and a second rebuild must change nothing).
//!
//! Along the way every step checks that
//! - a rejected command appended nothing (same log head) and was a 4xx, never a 5xx;
//! - an accepted command advanced the head by exactly its events (or not at all for a no-op),
//!   and the projection checkpoint follows the head;
//! - a retried command (same command id) writes nothing and returns the first events;
//! - each image's projection equals the aggregate folded from its stream (times to the second;
//!   a deleted image has no row), and each task's likewise.
//!
//! At the end, the default list (`member_status=all`) of every tenant in every region must hold
//! exactly the images `imgshare_core::access` says it can see.
//!
//! Steps name their caller and region relative to what they address ("the owner", "a member",
//! "its home region") and are aimed at existing images and tasks most of the time; both are
//! resolved when the step runs, deterministically, so that most steps get past the 404. A
//! failure prints the minimal scenario one step per line, and the failed assertion names the
//! resolved caller, region and target.
//!
//! `PROPTEST_CASES` sets the number of cases (64 by default, so CI stays fast); run with
//! `--nocapture` to see what the cases did.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use imgshare_core::patch::{PatchDialect, PatchDocument, PatchOp, PatchOpKind};
use imgshare_core::{
    access, Actor, Command, Context, Image, ImageActivated, ImageCommand, ImageOrigin, ImageStatus,
    ImportedImage, NewImage, Profile, ProfileKind, Region, StreamId, Task, TaskCommand,
};
use imgshare_projection::tables;
use imgshare_store::{head, Engine, EngineError};
use imgshare_tests::backend::{Backend, TestEngine};
use imgshare_tests::property::{self, Refusals};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use uuid::Uuid;

const TENANTS: [&str; 4] = ["100001", "100002", "100003", "100004"];
const REGIONS: [&str; 2] = ["DFW", "ORD"];
const RACKSPACE_ROLES: [&str; 3] = [
    "cloudImages:observer",
    "cloudImages:creator",
    "cloudImages:admin",
];
const GLANCE_ROLES: [&str; 3] = ["reader", "member", "admin"];
const IMAGES: usize = 5;
const TASKS: usize = 3;

fn image_id(index: usize) -> Uuid {
    Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + index as u128)
}

fn task_id(index: usize) -> Uuid {
    Uuid::from_u128(0x2000_0000_0000_4000_8000_0000_0000_0000 + index as u128)
}

fn region(name: &str) -> Region {
    Region::parse(name).unwrap_or_else(|error| panic!("region {name}: {error}"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The generated model.
// ---------------------------------------------------------------------------------------------

/// Who sends a step, with a role level (0 observer/reader, 1 creator/member, 2 admin): a fixed
/// tenant, the owner of the addressed image or task, a member of the addressed image (resolved
/// when the step runs, so that most steps reach something), or the provider.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Tenant { tenant: usize, role: usize },
    Owner { role: usize },
    Member { role: usize },
    Operator,
}

/// Where a step is sent: the addressed image's or task's own region, or a fixed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Home,
    Fixed(usize),
}

/// A member id in a request: a fixed tenant, the caller's own account, or raw text.
#[derive(Clone, PartialEq, Eq)]
enum MemberRef {
    Tenant(usize),
    Caller,
    Raw(&'static str),
}

impl fmt::Debug for MemberRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberRef::Tenant(index) => write!(f, "{}", TENANTS[*index]),
            MemberRef::Caller => f.write_str("<caller>"),
            MemberRef::Raw(text) => write!(f, "{text:?}"),
        }
    }
}

/// A JSON-patch document in a compact, printable form.
#[derive(Clone)]
struct Patch {
    v2_0: bool,
    ops: Vec<(PatchOpKind, String, Option<Value>)>,
}

impl Patch {
    fn document(&self) -> PatchDocument {
        PatchDocument {
            dialect: if self.v2_0 {
                PatchDialect::V2_0
            } else {
                PatchDialect::V2_1
            },
            ops: self
                .ops
                .iter()
                .map(|(kind, path, value)| PatchOp {
                    kind: *kind,
                    path: path.clone(),
                    index: None,
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

impl fmt::Debug for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.v2_0 { "v2.0[" } else { "v2.1[" })?;
        for (index, (kind, path, value)) in self.ops.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} /{path}", kind.as_str())?;
            if let Some(value) = value {
                write!(f, " {value}")?;
            }
        }
        f.write_str("]")
    }
}

#[derive(Clone, Debug)]
enum Action {
    Register {
        image: usize,
        api: bool,
        name: Option<String>,
        tags: Vec<String>,
        properties: Vec<(String, String)>,
        os_hidden: bool,
        with_data: bool,
    },
    RegisterBase {
        image: usize,
    },
    AddMember {
        image: usize,
        member: MemberRef,
    },
    RemoveMember {
        image: usize,
        member: MemberRef,
    },
    SetMemberStatus {
        image: usize,
        member: MemberRef,
        status: String,
    },
    AddTag {
        image: usize,
        tag: String,
    },
    RemoveTag {
        image: usize,
        tag: String,
    },
    Patch {
        image: usize,
        patch: Patch,
    },
    Delete {
        image: usize,
    },
    Deactivate {
        image: usize,
    },
    Reactivate {
        image: usize,
    },
    StartSaving {
        image: usize,
    },
    Activate {
        image: usize,
    },
    Kill {
        image: usize,
    },
    CreateTask {
        task: usize,
        task_type: String,
        input: Value,
    },
    StartTask {
        task: usize,
    },
    SucceedTask {
        task: usize,
        import_into: Option<usize>,
    },
    FailTask {
        task: usize,
    },
}

impl Action {
    fn kind(&self) -> &'static str {
        match self {
            Action::Register { .. } => "register",
            Action::RegisterBase { .. } => "register_base",
            Action::AddMember { .. } => "add_member",
            Action::RemoveMember { .. } => "remove_member",
            Action::SetMemberStatus { .. } => "set_member_status",
            Action::AddTag { .. } => "add_tag",
            Action::RemoveTag { .. } => "remove_tag",
            Action::Patch { .. } => "patch",
            Action::Delete { .. } => "delete",
            Action::Deactivate { .. } => "deactivate",
            Action::Reactivate { .. } => "reactivate",
            Action::StartSaving { .. } => "start_saving",
            Action::Activate { .. } => "activate",
            Action::Kill { .. } => "kill",
            Action::CreateTask { .. } => "create_task",
            Action::StartTask { .. } => "start_task",
            Action::SucceedTask { .. } => "succeed_task",
            Action::FailTask { .. } => "fail_task",
        }
    }
}

/// One request: who, where, how much later (nanoseconds, sometimes negative: clocks of two
/// API servers disagree), and what.
#[derive(Clone)]
struct Step {
    who: Who,
    place: Place,
    advance_ns: i64,
    action: Action,
    /// Sent a second time with the same command id (a client retry).
    retry: bool,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.who {
            Who::Tenant { tenant, role } => write!(f, "{}/r{role}", TENANTS[tenant])?,
            Who::Owner { role } => write!(f, "owner/r{role}")?,
            Who::Member { role } => write!(f, "member/r{role}")?,
            Who::Operator => f.write_str("operator")?,
        }
        match self.place {
            Place::Home => f.write_str("@home")?,
            Place::Fixed(region) => write!(f, "@{}", REGIONS[region])?,
        }
        write!(
            f,
            " {:+.3}s: {:?}{}",
            self.advance_ns as f64 / 1e9,
            self.action,
            if self.retry { " (retried)" } else { "" }
        )
    }
}

/// A whole case: the profile and the steps.
#[derive(Clone)]
struct Scenario {
    glance: bool,
    steps: Vec<Step>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        property::write_steps(
            f,
            format_args!(
                "profile {} ({} steps):",
                if self.glance { "glance" } else { "rackspace" },
                self.steps.len()
            ),
            &self.steps,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------------

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(options).prop_map(str::to_owned)
}

fn image_index() -> impl Strategy<Value = usize> {
    0..IMAGES
}

fn member_ref() -> impl Strategy<Value = MemberRef> {
    prop_oneof![
        8 => (0..TENANTS.len()).prop_map(MemberRef::Tenant),
        4 => Just(MemberRef::Caller),
        1 => proptest::sample::select(&["", "999999"][..]).prop_map(MemberRef::Raw),
    ]
}

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => pick(&["web", "db", "prod", "ünï"]),
        1 => pick(&["", "a\u{0}b"]),
    ]
}

fn patch_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        pick(&["a", "b", "", "x y"]).prop_map(Value::String),
        Just(json!(0)),
        Just(json!(40)),
        Just(json!(-1)),
        Just(json!(1.5)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(json!(["web", "db", "web"])),
        Just(json!([])),
        pick(&["private", "shared", "community", "public"]).prop_map(Value::String),
        pick(&["ovf", "bare", "vhd", "qcow2"]).prop_map(Value::String),
    ]
}

/// A value of the right type for `path` most of the time, any value otherwise.
fn value_for(path: &'static str) -> BoxedStrategy<Value> {
    let typed: BoxedStrategy<Value> = match path {
        "min_disk" | "min_ram" => prop_oneof![Just(json!(0)), Just(json!(40))].boxed(),
        "protected" | "os_hidden" => any::<bool>().prop_map(Value::Bool).boxed(),
        "tags" => prop_oneof![Just(json!(["web", "db", "web"])), Just(json!([]))].boxed(),
        "visibility" => pick(&["private", "shared", "community", "public"])
            .prop_map(Value::String)
            .boxed(),
        "container_format" => pick(&["ovf", "bare"]).prop_map(Value::String).boxed(),
        "disk_format" => pick(&["vhd", "qcow2"]).prop_map(Value::String).boxed(),
        _ => pick(&["a", "b", "", "x y"]).prop_map(Value::String).boxed(),
    };
    prop_oneof![4 => typed, 1 => patch_value()].boxed()
}

fn patch_op() -> impl Strategy<Value = (PatchOpKind, String, Option<Value>)> {
    let paths = prop_oneof![
        6 => proptest::sample::select(&["name", "custom_a", "custom_b", "min_disk", "tags", "protected"][..]),
        2 => proptest::sample::select(&["min_ram", "visibility", "container_format", "os_hidden"][..]),
        1 => proptest::sample::select(&[
            "disk_format",
            "com.rackspace__1__options",
            "owner",
            "checksum",
            "image_type",
        ][..]),
    ];
    let kinds = proptest::sample::select(
        &[
            PatchOpKind::Add,
            PatchOpKind::Add,
            PatchOpKind::Replace,
            PatchOpKind::Replace,
            PatchOpKind::Remove,
        ][..],
    );
    (kinds, paths)
        .prop_flat_map(|(kind, path)| (Just(kind), Just(path), value_for(path)))
        .prop_map(|(kind, path, value)| {
            let value = (kind != PatchOpKind::Remove).then_some(value);
            (kind, path.to_owned(), value)
        })
}

fn patch() -> impl Strategy<Value = Patch> {
    (
        proptest::bool::weighted(0.2),
        proptest::collection::vec(patch_op(), 1..=3),
    )
        .prop_map(|(v2_0, ops)| Patch { v2_0, ops })
}

fn property() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            6 => pick(&["custom_a", "os_distro", "com.rackspace__1__options"]),
            1 => pick(&["name", "os_hidden", "tags", "checksum"]),
        ],
        pick(&["0", "1", "ubuntu"]),
    )
}

fn task_input() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => Just(json!({
            "image_properties": {"name": "imported"},
            "import_from": "exports/image.vhd"
        })),
        2 => Just(json!({"image_uuid": image_id(0).to_string(), "receiving_swift_container": "exports"})),
        1 => Just(json!({"n": 1.5, "big": 18_446_744_073_709_551_615_u64, "neg": -0.0, "s": "ü\u{0}"})),
        1 => Just(json!("not an object")),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (
            image_index(),
            proptest::bool::weighted(0.2),
            proptest::option::weighted(0.9, pick(&["web-server", "db", "ünïcode"])),
            proptest::collection::vec(tag(), 0..3),
            proptest::collection::vec(property(), 0..3),
            proptest::bool::weighted(0.15),
            proptest::bool::weighted(0.8),
        )
            .prop_map(|(image, api, name, tags, properties, os_hidden, with_data)| {
                Action::Register { image, api, name, tags, properties, os_hidden, with_data }
            }),
        1 => image_index().prop_map(|image| Action::RegisterBase { image }),
        5 => (image_index(), member_ref()).prop_map(|(image, member)| Action::AddMember { image, member }),
        2 => (image_index(), member_ref()).prop_map(|(image, member)| Action::RemoveMember { image, member }),
        5 => (
            image_index(),
            prop_oneof![3 => Just(MemberRef::Caller), 1 => member_ref()],
            pick(&["pending", "accepted", "rejected", "accepted", "Accepted", "bogus", ""]),
        )
            .prop_map(|(image, member, status)| Action::SetMemberStatus { image, member, status }),
        3 => (image_index(), tag()).prop_map(|(image, tag)| Action::AddTag { image, tag }),
        2 => (image_index(), tag()).prop_map(|(image, tag)| Action::RemoveTag { image, tag }),
        5 => (image_index(), patch()).prop_map(|(image, patch)| Action::Patch { image, patch }),
        1 => image_index().prop_map(|image| Action::Delete { image }),
        1 => image_index().prop_map(|image| Action::Deactivate { image }),
        1 => image_index().prop_map(|image| Action::Reactivate { image }),
        1 => image_index().prop_map(|image| Action::StartSaving { image }),
        1 => image_index().prop_map(|image| Action::Activate { image }),
        1 => image_index().prop_map(|image| Action::Kill { image }),
        3 => (0..TASKS, pick(&["import", "export", "bogus"]), task_input())
            .prop_map(|(task, task_type, input)| Action::CreateTask { task, task_type, input }),
        3 => (0..TASKS).prop_map(|task| Action::StartTask { task }),
        3 => (0..TASKS, proptest::option::weighted(0.7, 0..IMAGES + 2))
            .prop_map(|(task, import_into)| Action::SucceedTask { task, import_into }),
        1 => (0..TASKS).prop_map(|task| Action::FailTask { task }),
    ]
}

/// Provider actions come mostly from the provider; everything else mostly from tenants.
fn is_provider_action(action: &Action) -> bool {
    matches!(
        action,
        Action::RegisterBase { .. }
            | Action::Deactivate { .. }
            | Action::Reactivate { .. }
            | Action::StartSaving { .. }
            | Action::Activate { .. }
            | Action::Kill { .. }
            | Action::StartTask { .. }
            | Action::SucceedTask { .. }
            | Action::FailTask { .. }
    )
}

fn role() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 1 => Just(1usize), 2 => Just(2usize)]
}

fn step() -> impl Strategy<Value = Step> {
    (
        action(),
        0..TENANTS.len(),
        role(),
        0..100u32,
        prop_oneof![
            6 => Just(Place::Home),
            1 => (0..REGIONS.len()).prop_map(Place::Fixed),
        ],
        prop_oneof![
            8 => 0i64..120_000_000_000,
            1 => -2_000_000_000i64..0,
        ],
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(action, tenant, role, roll, place, advance_ns, retry)| {
            let provider = is_provider_action(&action);
            let answers = matches!(action, Action::SetMemberStatus { .. });
            let who = match (provider, roll) {
                (false, 0..=59) if answers => Who::Member { role },
                // 85% of provider actions from the provider, 5% of the others.
                (true, 0..=84) | (false, 0..=4) => Who::Operator,
                (_, 85..=94) | (false, 5..=44) => Who::Owner { role },
                (false, 45..=69) => Who::Member { role },
                _ => Who::Tenant { tenant, role },
            };
            // Registrations go to a fixed region: there is no home yet.
            let place = match (&action, place) {
                (Action::Register { .. } | Action::RegisterBase { .. }, Place::Home) => {
                    Place::Fixed(tenant % 2)
                }
                (_, place) => place,
            };
            Step {
                who,
                place,
                advance_ns,
                action,
                retry,
            }
        })
}

/// A registration or task creation that usually works: it opens a scenario, so that the random
/// steps after it find something to act on.
fn opening() -> impl Strategy<Value = Step> {
    let register = (
        image_index(),
        proptest::option::of(pick(&["web-server", "db"])),
        proptest::collection::vec(pick(&["web", "db"]), 0..2),
        proptest::collection::vec(property(), 0..2),
        any::<bool>(),
    )
        .prop_map(
            |(image, name, tags, properties, with_data)| Action::Register {
                image,
                api: false,
                name,
                tags,
                properties,
                os_hidden: false,
                with_data,
            },
        );
    let create_task = (0..TASKS, pick(&["import", "export"]), task_input()).prop_map(
        |(task, task_type, input)| Action::CreateTask {
            task,
            task_type,
            input,
        },
    );
    (
        prop_oneof![4 => register, 1 => create_task],
        0..TENANTS.len(),
        0..REGIONS.len(),
        0i64..5_000_000_000,
    )
        .prop_map(|(action, tenant, region, advance_ns)| Step {
            who: Who::Tenant { tenant, role: 2 },
            place: Place::Fixed(region),
            advance_ns,
            action,
            retry: false,
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::bool::weighted(0.25),
        proptest::collection::vec(opening(), 1..=4),
        proptest::collection::vec(step(), 0..=36),
    )
        .prop_map(|(glance, mut steps, rest)| {
            steps.extend(rest);
            Scenario { glance, steps }
        })
}

// ---------------------------------------------------------------------------------------------
// Running a scenario.
// ---------------------------------------------------------------------------------------------

fn tenant_actor(tenant: &str, role: usize, glance: bool) -> Actor {
    let roles = if glance {
        GLANCE_ROLES
    } else {
        RACKSPACE_ROLES
    };
    Actor::tenant(tenant, &format!("user-{tenant}-{role}"), &[roles[role]])
}

/// What a step addresses: an image (`true`) or a task (`false`), by index in its pool.
fn target(action: &mut Action) -> (bool, &mut usize) {
    match action {
        Action::Register { image, .. }
        | Action::RegisterBase { image }
        | Action::AddMember { image, .. }
        | Action::RemoveMember { image, .. }
        | Action::SetMemberStatus { image, .. }
        | Action::AddTag { image, .. }
        | Action::RemoveTag { image, .. }
        | Action::Patch { image, .. }
        | Action::Delete { image }
        | Action::Deactivate { image }
        | Action::Reactivate { image }
        | Action::StartSaving { image }
        | Action::Activate { image }
        | Action::Kill { image } => (true, image),
        Action::CreateTask { task, .. }
        | Action::StartTask { task }
        | Action::SucceedTask { task, .. }
        | Action::FailTask { task } => (false, task),
    }
}

/// A step aimed at an image or task that does not exist yet is aimed at an existing one
/// instead (member answers and removals at one with members), except every eighth step (which
/// keeps the 404 paths covered) and creations.
fn retarget(engine: &Engine, action: &Action, step_index: usize) -> Result<Action, TestCaseError> {
    let fail = |error: EngineError| TestCaseError::fail(format!("retarget: {error}"));
    let mut action = action.clone();
    let creates = matches!(
        action,
        Action::Register { .. } | Action::RegisterBase { .. } | Action::CreateTask { .. }
    );
    if creates || step_index.is_multiple_of(8) {
        return Ok(action);
    }
    // Member answers and removals go to images that have members, when there are some.
    let wants_members = matches!(
        action,
        Action::SetMemberStatus { .. } | Action::RemoveMember { .. }
    );
    let (is_image, index) = target(&mut action);
    let pool = if is_image { IMAGES + 2 } else { TASKS };
    let mut existing = Vec::new();
    let mut shared = Vec::new();
    for candidate in 0..pool {
        let stream = if is_image {
            StreamId::Image(image_id(candidate))
        } else {
            StreamId::Task(task_id(candidate))
        };
        let state = engine.load(stream).map_err(fail)?.state;
        if !state.is_empty() {
            existing.push(candidate);
        }
        if state
            .as_image()
            .is_some_and(|image| !image.members.is_empty())
        {
            shared.push(candidate);
        }
    }
    if wants_members && !shared.is_empty() {
        existing = shared;
    }
    if !existing.is_empty() && !existing.contains(index) {
        *index = existing[*index % existing.len()];
    }
    Ok(action)
}

/// Turns a step's relative caller and region into a concrete context, from the current state
/// of what it addresses (the same scenario always resolves the same way).
fn resolve(
    engine: &Engine,
    step: &Step,
    action: &Action,
    step_index: usize,
    glance: bool,
    now: DateTime<Utc>,
) -> Result<Context, TestCaseError> {
    let fail = |error: EngineError| TestCaseError::fail(format!("resolve: {error}"));
    let mut action = action.clone();
    let (is_image, index) = target(&mut action);
    let index = *index;
    let (owner, home, members) = if is_image {
        match engine.image_state(image_id(index)).map_err(fail)? {
            Some(image) => (
                image.owner.clone(),
                Some(image.region.clone()),
                image.members.keys().cloned().collect(),
            ),
            None => (None, None, Vec::new()),
        }
    } else {
        match engine
            .load(StreamId::Task(task_id(index)))
            .map_err(fail)?
            .state
            .as_task()
        {
            Some(task) => (
                Some(task.owner.clone()),
                Some(task.region.clone()),
                Vec::new(),
            ),
            None => (None, None, Vec::new()),
        }
    };
    let actor = match step.who {
        Who::Operator => Actor::operator("worker"),
        Who::Tenant { tenant, role } => tenant_actor(TENANTS[tenant], role, glance),
        Who::Owner { role } => tenant_actor(owner.as_deref().unwrap_or(TENANTS[0]), role, glance),
        Who::Member { role } => {
            let member = if members.is_empty() {
                TENANTS[1]
            } else {
                members[step_index % members.len()].as_str()
            };
            tenant_actor(member, role, glance)
        }
    };
    let region = match (step.place, home) {
        (Place::Home, Some(home)) => home,
        (Place::Home, None) => region(REGIONS[0]),
        (Place::Fixed(index), _) => region(REGIONS[index]),
    };
    Ok(Context::new(actor, region, now))
}

fn describe(ctx: &Context) -> String {
    let who = if ctx.actor.is_operator() {
        "operator".to_owned()
    } else {
        format!("{}/{}", ctx.actor.tenant_id, ctx.actor.roles.join(","))
    };
    format!("as {who} in {} at {}", ctx.region, ctx.now.to_rfc3339())
}

fn data(seed: usize) -> ImageActivated {
    ImageActivated {
        size: 1_000 + seed as u64,
        checksum: format!("{seed:032x}"),
        virtual_size: seed.is_multiple_of(2).then_some(4_096),
        os_hash_algo: None,
        os_hash_value: None,
    }
}

fn command(action: &Action, step_index: usize, caller: &str) -> Command {
    let member_id = |member: MemberRef| match member {
        MemberRef::Tenant(index) => TENANTS[index].to_owned(),
        MemberRef::Caller => caller.to_owned(),
        MemberRef::Raw(text) => text.to_owned(),
    };
    let image = |index: usize, command: ImageCommand| Command::Image {
        image_id: image_id(index),
        command,
    };
    let task = |index: usize, command: TaskCommand| Command::Task {
        task_id: task_id(index),
        command,
    };
    match action.clone() {
        Action::Register {
            image: index,
            api,
            name,
            tags,
            properties,
            os_hidden,
            with_data,
        } => {
            let origin = if api {
                ImageOrigin::Api
            } else {
                ImageOrigin::Snapshot {
                    server_id: format!("server-{step_index}"),
                }
            };
            let new = NewImage {
                name,
                os_hidden,
                container_format: Some("ovf".to_owned()),
                disk_format: Some("vhd".to_owned()),
                tags,
                properties: properties.into_iter().collect(),
                data: with_data.then(|| data(step_index)),
                ..NewImage::default()
            };
            image(index, ImageCommand::Register { origin, image: new })
        }
        Action::RegisterBase { image: index } => image(
            index,
            ImageCommand::Register {
                origin: ImageOrigin::Base,
                image: NewImage {
                    name: Some(format!("base-{step_index}")),
                    container_format: Some("ovf".to_owned()),
                    disk_format: Some("vhd".to_owned()),
                    min_disk: 20,
                    min_ram: 512,
                    properties: [("com.rackspace__1__options".to_owned(), "0".to_owned())]
                        .into_iter()
                        .collect(),
                    data: Some(data(step_index)),
                    ..NewImage::default()
                },
            },
        ),
        Action::AddMember { image: i, member } => image(
            i,
            ImageCommand::AddMember {
                member_id: member_id(member),
            },
        ),
        Action::RemoveMember { image: i, member } => image(
            i,
            ImageCommand::RemoveMember {
                member_id: member_id(member),
            },
        ),
        Action::SetMemberStatus {
            image: i,
            member,
            status,
        } => image(
            i,
            ImageCommand::SetMemberStatus {
                member_id: member_id(member),
                status,
            },
        ),
        Action::AddTag { image: i, tag } => image(i, ImageCommand::AddTag { tag }),
        Action::RemoveTag { image: i, tag } => image(i, ImageCommand::RemoveTag { tag }),
        Action::Patch { image: i, patch } => image(i, ImageCommand::Update(patch.document())),
        Action::Delete { image: i } => image(i, ImageCommand::Delete),
        Action::Deactivate { image: i } => image(i, ImageCommand::Deactivate),
        Action::Reactivate { image: i } => image(i, ImageCommand::Reactivate),
        Action::StartSaving { image: i } => image(i, ImageCommand::StartSaving),
        Action::Activate { image: i } => image(i, ImageCommand::Activate(data(step_index))),
        Action::Kill { image: i } => image(
            i,
            ImageCommand::Kill {
                reason: "upload failed".to_owned(),
            },
        ),
        Action::CreateTask {
            task: t,
            task_type,
            input,
        } => task(t, TaskCommand::Create { task_type, input }),
        Action::StartTask { task: t } => task(t, TaskCommand::Start),
        Action::SucceedTask {
            task: t,
            import_into,
        } => task(
            t,
            TaskCommand::Succeed {
                result: match import_into {
                    Some(i) => json!({"image_id": image_id(i).to_string()}),
                    None => json!({"export_location": "exports/image.vhd"}),
                },
                imported_image: import_into.map(|i| ImportedImage {
                    image_id: image_id(i),
                    name: Some(format!("imported-{step_index}")),
                    data: data(step_index),
                }),
            },
        ),
        Action::FailTask { task: t } => task(
            t,
            TaskCommand::Fail {
                message: "Image not found for import. Possible invalid location".to_owned(),
            },
        ),
    }
}

/// Counts over all cases, for the report.
#[derive(Debug, Default)]
struct Stats {
    cases: u64,
    steps: u64,
    appended: u64,
    no_ops: u64,
    rejected: Refusals,
    events: u64,
    accepted_by_kind: BTreeMap<&'static str, u64>,
    retried_applied: u64,
}

fn head_of(engine: &Engine) -> Result<Option<(i64, String)>, TestCaseError> {
    engine
        .read_sql(|conn| Ok(head(conn)?))
        .map_err(|error| TestCaseError::fail(format!("head: {error}")))
}

fn checkpoint_of(engine: &Engine) -> Result<i64, TestCaseError> {
    engine
        .read_sql(|conn| Ok(tables::checkpoint(conn)?))
        .map_err(|error| TestCaseError::fail(format!("checkpoint: {error}")))
}

/// Every read-model row, as text, table by table in primary-key order.
fn dump(engine: &Engine) -> Result<Vec<String>, TestCaseError> {
    engine
        .read_sql(|conn| Ok(tables::dump(conn)?))
        .map_err(|error: EngineError| TestCaseError::fail(format!("dump: {error}")))
}

fn seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(0)
}

/// The aggregate as the projection can hold it: times to the second.
fn image_at_second_precision(mut image: Image) -> Image {
    image.created_at = seconds(image.created_at);
    image.updated_at = seconds(image.updated_at);
    for member in image.members.values_mut() {
        member.created_at = seconds(member.created_at);
        member.updated_at = seconds(member.updated_at);
    }
    image
}

fn task_at_second_precision(mut task: Task) -> Task {
    task.created_at = seconds(task.created_at);
    task.updated_at = seconds(task.updated_at);
    task.expires_at = task.expires_at.map(seconds);
    task
}

/// Every image id a scenario can touch (the import targets include ids beyond the pool's
/// registrations), plus the task ids.
fn all_image_ids() -> Vec<Uuid> {
    (0..IMAGES + 2).map(image_id).collect()
}

/// Projection versus fold, for every image and task.
fn check_projection_matches_fold(engine: &Engine, when: &str) -> Result<(), TestCaseError> {
    for id in all_image_ids() {
        let folded = engine
            .image_state(id)
            .map_err(|error| TestCaseError::fail(format!("fold {id}: {error}")))?;
        let projected = engine
            .read_sql(|conn| Ok(tables::read_image(conn, &id.to_string())?))
            .map_err(|error| TestCaseError::fail(format!("read_image {id}: {error}")))?;
        let expected = folded
            .filter(|image| image.status != ImageStatus::Deleted)
            .map(image_at_second_precision);
        prop_assert_eq!(
            &projected,
            &expected,
            "{}: projection of image {} differs from its fold",
            when,
            id
        );
    }
    for id in (0..TASKS).map(task_id) {
        let folded = engine
            .load(StreamId::Task(id))
            .map_err(|error| TestCaseError::fail(format!("fold task {id}: {error}")))?
            .state
            .as_task()
            .cloned()
            .map(task_at_second_precision);
        let projected = engine
            .read_sql(|conn| Ok(tables::read_task(conn, &id.to_string())?))
            .map_err(|error| TestCaseError::fail(format!("read_task {id}: {error}")))?;
        prop_assert_eq!(
            &projected,
            &folded,
            "{}: projection of task {} differs from its fold",
            when,
            id
        );
    }
    Ok(())
}

/// The default list with `member_status=all` holds exactly what `access::can_see` allows,
/// minus killed and hidden images and other accounts' community images (an unowned image
/// counts as public whatever its visibility, as in `access::relation`).
fn check_lists_match_access(
    engine: &Engine,
    profile: &Profile,
    glance: bool,
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    let images: Vec<Image> = all_image_ids()
        .into_iter()
        .filter_map(|id| engine.image_state(id).ok().flatten())
        .collect();
    for tenant in TENANTS {
        // The middle role: creator / member, never a Glance admin (who sees everything).
        let viewer = tenant_actor(tenant, 1, glance);
        for region_name in REGIONS {
            let region = region(region_name);
            let ctx = Context::new(viewer.clone(), region.clone(), now);
            let page = engine
                .list_images(&ctx, "member_status=all&limit=1000")
                .map_err(|error| TestCaseError::fail(format!("list: {error}")))?;
            let listed: BTreeSet<String> = page["images"]
                .as_array()
                .map(|images| {
                    images
                        .iter()
                        .filter_map(|image| image["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let expected: BTreeSet<String> = images
                .iter()
                .filter(|image| {
                    access::can_see(profile, image, &viewer, &region)
                        && image.status != ImageStatus::Killed
                        && !image.os_hidden
                        && access::relation(profile, image, &viewer.tenant_id)
                            != Some(access::Relation::Community)
                })
                .map(|image| image.id.to_string())
                .collect();
            prop_assert_eq!(
                &listed,
                &expected,
                "list of {} in {} disagrees with access::can_see",
                viewer.tenant_id,
                region_name
            );
        }
    }
    Ok(())
}

fn run(scenario: &Scenario, stats: &mut Stats) -> Result<(), TestCaseError> {
    let profile = if scenario.glance {
        Profile::glance()
    } else {
        Profile::rackspace()
    };
    let engine = TestEngine::new(profile.clone());
    prop_assert_eq!(
        engine.profile().kind,
        if scenario.glance {
            ProfileKind::Glance
        } else {
            ProfileKind::Rackspace
        }
    );
    let mut now = t0();
    stats.cases += 1;
    for (index, step) in scenario.steps.iter().enumerate() {
        now += Duration::nanoseconds(step.advance_ns);
        let action = retarget(&engine, &step.action, index)?;
        let ctx = resolve(&engine, step, &action, index, scenario.glance, now)?;
        let mut resolved = action.clone();
        let step = format!(
            "{step:?} ({}, #{})",
            describe(&ctx),
            target(&mut resolved).1
        );
        let before = head_of(&engine)?;
        let command_id = Uuid::from_u128(0xc000_0000_0000_4000_8000_0000_0000_0000 + index as u128);
        let sent = command(&action, index, &ctx.actor.tenant_id);
        let result = engine.execute_idempotent(&ctx, command_id, sent.clone());
        let after = head_of(&engine)?;
        if scenario.steps[index].retry {
            let retried = engine.execute_idempotent(&ctx, command_id, sent);
            prop_assert_eq!(
                &head_of(&engine)?,
                &after,
                "step #{} {}: the retry wrote to the log",
                index,
                &step
            );
            match (&result, &retried) {
                (Ok(first), Ok(again)) if !first.events.is_empty() => {
                    stats.retried_applied += 1;
                    prop_assert!(
                        again.already_applied,
                        "step #{} {}: retry not recognised",
                        index,
                        &step
                    );
                    prop_assert_eq!(
                        first
                            .events
                            .iter()
                            .map(|event| event.event_id)
                            .collect::<Vec<_>>(),
                        again
                            .events
                            .iter()
                            .map(|event| event.event_id)
                            .collect::<Vec<_>>()
                    );
                }
                (Ok(_), Ok(again)) => prop_assert!(again.events.is_empty()),
                (Err(first), Err(again)) => prop_assert_eq!(first.code(), again.code()),
                (first, again) => {
                    return Err(TestCaseError::fail(format!(
                        "step #{index} {step}: first {first:?}, retry {again:?}"
                    )))
                }
            }
        }
        stats.steps += 1;
        match result {
            Err(error) => {
                stats
                    .rejected
                    .record(scenario.steps[index].action.kind(), &error);
                prop_assert!(
                    (400..500).contains(&imgshare_server::error::status_of(error.kind()).as_u16()),
                    "step #{} {} failed with a server error: {:?}",
                    index,
                    step,
                    error
                );
                prop_assert_eq!(
                    &before,
                    &after,
                    "step #{} {} was rejected ({}) but moved the log head",
                    index,
                    step,
                    error
                );
            }
            Ok(outcome) => {
                prop_assert!(!outcome.already_applied);
                *stats
                    .accepted_by_kind
                    .entry(scenario.steps[index].action.kind())
                    .or_default() += 1;
                if outcome.events.is_empty() {
                    stats.no_ops += 1;
                    prop_assert_eq!(
                        &before,
                        &after,
                        "step #{} {} returned no events but moved the log head",
                        index,
                        step
                    );
                } else {
                    stats.appended += 1;
                    stats.events += outcome.events.len() as u64;
                    let before_position = before.as_ref().map_or(0, |(position, _)| *position);
                    let after_position = after.as_ref().map(|(position, _)| *position);
                    prop_assert_eq!(
                        after_position,
                        Some(before_position + outcome.events.len() as i64),
                        "step #{} {}: head did not advance by its {} events",
                        index,
                        step,
                        outcome.events.len()
                    );
                    let last = outcome.events.last().map(|event| event.position);
                    prop_assert_eq!(last, after_position);
                }
            }
        }
        let head_position = after.as_ref().map_or(0, |(position, _)| *position);
        prop_assert_eq!(
            checkpoint_of(&engine)?,
            head_position,
            "step #{} {}: checkpoint does not follow the head",
            index,
            step
        );
        check_projection_matches_fold(&engine, &format!("after step #{index} {step}"))?;
    }

    check_lists_match_access(&engine, &profile, scenario.glance, now)?;

    let live = dump(&engine)?;
    let head_before = head_of(&engine)?;
    let report = engine
        .rebuild(|_| {})
        .map_err(|error| TestCaseError::fail(format!("rebuild: {error}")))?;
    let rebuilt = dump(&engine)?;
    prop_assert_eq!(
        head_of(&engine)?,
        head_before.clone(),
        "rebuild wrote to the log"
    );
    let head_position = head_before.as_ref().map_or(0, |(position, _)| *position);
    prop_assert_eq!(report.last_position, head_position);
    prop_assert_eq!(report.events, u64::try_from(head_position).unwrap_or(0));
    if live != rebuilt {
        let only_live: Vec<&String> = live.iter().filter(|row| !rebuilt.contains(row)).collect();
        let only_rebuilt: Vec<&String> = rebuilt.iter().filter(|row| !live.contains(row)).collect();
        return Err(TestCaseError::fail(format!(
            "rebuild changed the read models\nonly live: {only_live:#?}\nonly rebuilt: {only_rebuilt:#?}"
        )));
    }
    check_projection_matches_fold(&engine, "after rebuild")?;
    let again = engine
        .rebuild(|_| {})
        .map_err(|error| TestCaseError::fail(format!("second rebuild: {error}")))?;
    prop_assert_eq!(again, report);
    prop_assert_eq!(dump(&engine)?, rebuilt, "a second rebuild changed the rows");
    Ok(())
}

#[test]
fn rebuild_gives_the_rows_live_appends_wrote() {
    // No regression files: this test owns no directory for them. A failure prints the minimal
    // scenario, one step per line.
    let config = property::config(64);
    let started = Instant::now();
    let stats: Stats = property::run(config, &scenario(), |scenario, stats| run(&scenario, stats));
    eprintln!(
        "rebuild equivalence ({}): {} cases, {} steps ({} appended {} events, {} no-ops, {} rejected, {} retries of appends) in {:.2?}\n  accepted: {:?}\n  rejected by status: {:?}\n  rejected by kind: {:?}",
        Backend::selected().name(),
        stats.cases,
        stats.steps,
        stats.appended,
        stats.events,
        stats.no_ops,
        stats.rejected.total,
        stats.retried_applied,
        started.elapsed(),
        stats.accepted_by_kind,
        stats.rejected.by_status,
        stats.rejected.by_kind,
    );
    assert!(
        stats.appended > 0,
        "no command was ever accepted: {stats:?}"
    );
}
