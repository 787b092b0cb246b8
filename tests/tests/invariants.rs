//! The sharing invariants, as a model-based property test.
//!
//! A case is a random sequence of [`Step`]s: accounts `t1`..`t4` (with an observer, creator or
//! admin role; reader, member or admin under the Glance profile, which a quarter of the cases
//! use) and the `provider` register images in DFW or ORD, share them, answer shares, tag, patch,
//! deactivate and delete them, including commands that must be refused. Images are named by
//! their index among the images registered so far and callers by account or relative to the
//! image (`owner`, `a-member`), so a shrunk failure reads as a short story; the failure message
//! adds the account and region each step resolved to.
//! The member quota is 2 and the tag quota 3, so the limits are actually reached.
//!
//! After every step each invariant of `docs/invariants.md` is checked by the function of the
//! same name, against the aggregates (`Engine::image_state`, `get_image`, `can_boot`, commands)
//! and the read models (`list_images`, `tables`). The replay from a fresh engine runs every
//! [`REPLAY_EVERY`] steps and after the last one.
//!
//! `PROPTEST_CASES` sets the number of cases (64 by default); failures are saved to
//! `tests/proptest-regressions/invariants.txt`, which is checked in and replayed first.
//! Each engine (the live one and every replay's) comes from `imgshare_tests::backend`: in memory
//! on SQLite, a new database on PostgreSQL with `IMGSHARE_TESTS_BACKEND=postgres`.

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use imgshare_core::patch::{PatchDialect, PatchDocument, PatchOp, PatchOpKind};
use imgshare_core::{
    access, Actor, Command, Context, ErrorKind, Image, ImageActivated, ImageCommand, ImageOrigin,
    ImageStatus, MemberStatus, NewImage, Profile, Region, Visibility,
};
use imgshare_projection::tables;
use imgshare_sql::{Row, Sql, SqlError, Value as SqlValue};
use imgshare_store::{head, verify_chain, EngineError, Outcome};
use imgshare_tests::backend::{Backend, TestEngine};
use imgshare_tests::property::{self, Refusals};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestCaseError};
use serde_json::{json, Value};
use uuid::Uuid;

/// Members per image in these cases: small, so that `413` is reached.
const MEMBER_QUOTA: usize = 2;
/// Tags per image in these cases.
const TAG_QUOTA: usize = 3;
/// The replay into a fresh engine runs after every this many steps, and after the last.
const REPLAY_EVERY: usize = 8;
/// Longest generated sequence.
const MAX_STEPS: usize = 32;

// ---------------------------------------------------------------------------------------------
// The generated language.
// ---------------------------------------------------------------------------------------------

/// Who sends a step: four tenant accounts, or the provider (compute, the task worker).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Acct {
    T1,
    T2,
    T3,
    T4,
    Provider,
}

const TENANT_ACCOUNTS: [Acct; 4] = [Acct::T1, Acct::T2, Acct::T3, Acct::T4];

impl Acct {
    fn tenant_id(self) -> &'static str {
        match self {
            Acct::T1 => "100001",
            Acct::T2 => "100002",
            Acct::T3 => "100003",
            Acct::T4 => "100004",
            Acct::Provider => "",
        }
    }

    fn actor(self, role: Role, glance: bool) -> Actor {
        match self {
            Acct::Provider => Actor::operator("provider"),
            tenant => Actor::tenant(
                tenant.tenant_id(),
                &format!("user-{}", tenant.tenant_id()),
                &[role.name(glance)],
            ),
        }
    }
}

impl fmt::Debug for Acct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Acct::T1 => "t1",
            Acct::T2 => "t2",
            Acct::T3 => "t3",
            Acct::T4 => "t4",
            Acct::Provider => "provider",
        })
    }
}

/// A role level: observer/creator/admin on Rackspace, reader/member/admin on Glance.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Low,
    Mid,
    High,
}

const ROLES: [Role; 3] = [Role::Low, Role::Mid, Role::High];

impl Role {
    fn name(self, glance: bool) -> &'static str {
        match (self, glance) {
            (Role::Low, false) => "cloudImages:observer",
            (Role::Mid, false) => "cloudImages:creator",
            (Role::High, false) => "cloudImages:admin",
            (Role::Low, true) => "reader",
            (Role::Mid, true) => "member",
            (Role::High, true) => "admin",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reg {
    Dfw,
    Ord,
}

const REGIONS: [Reg; 2] = [Reg::Dfw, Reg::Ord];

impl Reg {
    fn region(self) -> Region {
        Region::parse(match self {
            Reg::Dfw => "DFW",
            Reg::Ord => "ORD",
        })
        .unwrap_or_else(|error| panic!("region: {error}"))
    }
}

/// Who sends a step: a fixed account, or the addressed image's owner or one of its members
/// (resolved when the step runs, so that most steps get past the 404 and the role checks).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Acct(Acct),
    Owner,
    AMember,
}

impl fmt::Debug for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Acct(acct) => write!(f, "{acct:?}"),
            Who::Owner => f.write_str("owner"),
            Who::AMember => f.write_str("a-member"),
        }
    }
}

/// Where a step is sent: the addressed image's own region, or a fixed one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Home,
    In(Reg),
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Home => f.write_str("home"),
            Place::In(reg) => write!(f, "{reg:?}"),
        }
    }
}

/// A member id in a request: one of the accounts, the caller's own, or raw text (mostly
/// invalid).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Acct(Acct),
    Caller,
    Raw(&'static str),
}

impl Member {
    fn id(self, caller: &str) -> String {
        match self {
            Member::Acct(acct) => acct.tenant_id().to_owned(),
            Member::Caller => caller.to_owned(),
            Member::Raw(text) => text.to_owned(),
        }
    }
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::Acct(acct) => write!(f, "{acct:?}"),
            Member::Caller => f.write_str("self"),
            Member::Raw(text) => write!(f, "{text:?}"),
        }
    }
}

/// One JSON-patch operation, in a form that prints short.
#[derive(Clone, PartialEq, Debug)]
enum Edit {
    Name(&'static str),
    Visibility(&'static str),
    Protected(bool),
    SetProperty(&'static str, &'static str),
    RemoveProperty(&'static str),
    /// A read-only attribute (403).
    Status,
    /// Ownership transfer (cloud admins only).
    Owner(Acct),
    /// A wrongly typed value (400).
    MinDisk(Value),
}

impl Edit {
    fn op(&self) -> PatchOp {
        let (kind, path, value) = match self {
            Edit::Name(name) => (PatchOpKind::Replace, "name", Some(json!(name))),
            Edit::Visibility(visibility) => {
                (PatchOpKind::Replace, "visibility", Some(json!(visibility)))
            }
            Edit::Protected(protected) => {
                (PatchOpKind::Replace, "protected", Some(json!(protected)))
            }
            Edit::SetProperty(key, value) => (PatchOpKind::Add, *key, Some(json!(value))),
            Edit::RemoveProperty(key) => (PatchOpKind::Remove, *key, None),
            Edit::Status => (PatchOpKind::Replace, "status", Some(json!("active"))),
            Edit::Owner(acct) => (PatchOpKind::Replace, "owner", Some(json!(acct.tenant_id()))),
            Edit::MinDisk(value) => (PatchOpKind::Replace, "min_disk", Some(value.clone())),
        };
        PatchOp {
            kind,
            path: path.to_owned(),
            index: None,
            value,
        }
    }
}

/// What a step asks. `image` is an index into the images registered so far (modulo their
/// number); with none registered it names an image that never exists.
#[derive(Clone, PartialEq, Debug)]
enum Op {
    /// A snapshot of the caller's server (owner: the caller; private).
    Snapshot {
        name: &'static str,
    },
    /// A provider base image (public, unowned).
    Base,
    /// `POST /v2/images` (Glance only; refused on Rackspace).
    Create {
        visibility: Option<&'static str>,
    },
    Share {
        image: usize,
        member: Member,
    },
    Unshare {
        image: usize,
        member: Member,
    },
    Answer {
        image: usize,
        member: Member,
        status: &'static str,
    },
    Tag {
        image: usize,
        tag: &'static str,
    },
    Untag {
        image: usize,
        tag: &'static str,
    },
    Patch {
        image: usize,
        edits: Vec<Edit>,
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
}

impl Op {
    fn image(&self) -> Option<usize> {
        match self {
            Op::Snapshot { .. } | Op::Base | Op::Create { .. } => None,
            Op::Share { image, .. }
            | Op::Unshare { image, .. }
            | Op::Answer { image, .. }
            | Op::Tag { image, .. }
            | Op::Untag { image, .. }
            | Op::Patch { image, .. }
            | Op::Delete { image }
            | Op::Deactivate { image }
            | Op::Reactivate { image } => Some(*image),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Op::Snapshot { .. } => "snapshot",
            Op::Base => "base",
            Op::Create { .. } => "create",
            Op::Share { .. } => "share",
            Op::Unshare { .. } => "unshare",
            Op::Answer { .. } => "answer",
            Op::Tag { .. } => "tag",
            Op::Untag { .. } => "untag",
            Op::Patch { .. } => "patch",
            Op::Delete { .. } => "delete",
            Op::Deactivate { .. } => "deactivate",
            Op::Reactivate { .. } => "reactivate",
        }
    }
}

/// One request: who, with which role, in which region, asks what.
#[derive(Clone)]
struct Step {
    by: Who,
    role: Role,
    place: Place,
    op: Op,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.by == Who::Acct(Acct::Provider) {
            write!(f, "provider@{:?} {:?}", self.place, self.op)
        } else {
            write!(
                f,
                "{:?}({:?})@{:?} {:?}",
                self.by, self.role, self.place, self.op
            )
        }
    }
}

#[derive(Clone)]
struct Case {
    glance: bool,
    steps: Vec<Step>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        property::write_steps(
            f,
            format_args!(
                "{} profile, {} steps:",
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

fn acct() -> impl Strategy<Value = Acct> {
    prop_oneof![
        4 => Just(Acct::T1),
        4 => Just(Acct::T2),
        3 => Just(Acct::T3),
        2 => Just(Acct::T4),
        1 => Just(Acct::Provider),
    ]
}

fn tenant() -> impl Strategy<Value = Acct> {
    proptest::sample::select(&TENANT_ACCOUNTS[..])
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![
        10 => tenant().prop_map(Member::Acct),
        1 => Just(Member::Caller),
        1 => proptest::sample::select(&["", "999999", "ab\u{1F600}", " "][..]).prop_map(Member::Raw),
    ]
}

fn image_index() -> impl Strategy<Value = usize> {
    0..4usize
}

fn tag() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => proptest::sample::select(&["web", "db", "prod", "ünï"][..]),
        1 => proptest::sample::select(&["", "\u{1F600}"][..]),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => proptest::sample::select(&["web", "db", ""][..]).prop_map(Edit::Name),
        3 => proptest::sample::select(&["private", "shared", "public", "community", "bogus"][..])
            .prop_map(Edit::Visibility),
        1 => any::<bool>().prop_map(Edit::Protected),
        3 => (
            proptest::sample::select(&["os_distro", "custom", "image_type"][..]),
            proptest::sample::select(&["ubuntu", "", "\u{1F600}"][..]),
        )
            .prop_map(|(key, value)| Edit::SetProperty(key, value)),
        1 => proptest::sample::select(&["os_distro", "custom"][..]).prop_map(Edit::RemoveProperty),
        1 => Just(Edit::Status),
        1 => tenant().prop_map(Edit::Owner),
        1 => prop_oneof![Just(json!("ten")), Just(json!(-1)), Just(json!(20))].prop_map(Edit::MinDisk),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::sample::select(&["web", "db"][..]).prop_map(|name| Op::Snapshot { name }),
        1 => Just(Op::Base),
        1 => proptest::option::of(proptest::sample::select(&["private", "shared", "public", "community"][..]))
            .prop_map(|visibility| Op::Create { visibility }),
        8 => (image_index(), member()).prop_map(|(image, member)| Op::Share { image, member }),
        3 => (image_index(), member()).prop_map(|(image, member)| Op::Unshare { image, member }),
        8 => (
            image_index(),
            member(),
            proptest::sample::select(&["accepted", "accepted", "rejected", "pending", "bogus"][..]),
        )
            .prop_map(|(image, member, status)| Op::Answer { image, member, status }),
        3 => (image_index(), tag()).prop_map(|(image, tag)| Op::Tag { image, tag }),
        1 => (image_index(), tag()).prop_map(|(image, tag)| Op::Untag { image, tag }),
        4 => (image_index(), proptest::collection::vec(edit(), 0..=2))
            .prop_map(|(image, edits)| Op::Patch { image, edits }),
        1 => image_index().prop_map(|image| Op::Delete { image }),
        1 => image_index().prop_map(|image| Op::Deactivate { image }),
        1 => image_index().prop_map(|image| Op::Reactivate { image }),
    ]
}

fn region() -> impl Strategy<Value = Reg> {
    prop_oneof![3 => Just(Reg::Dfw), 1 => Just(Reg::Ord)]
}

fn step() -> impl Strategy<Value = Step> {
    (
        acct(),
        prop_oneof![1 => Just(Role::Low), 2 => Just(Role::Mid), 4 => Just(Role::High)],
        prop_oneof![6 => Just(Place::Home), 1 => region().prop_map(Place::In)],
        op(),
        0..10u8,
    )
        .prop_map(|(acct, role, place, mut op, roll)| {
            let by = match (&mut op, roll) {
                // Most answers come from a member about itself, so that accepting is reached.
                (Op::Answer { member, .. }, 0..=5) => {
                    *member = Member::Caller;
                    Who::AMember
                }
                (Op::Snapshot { .. } | Op::Base | Op::Create { .. }, _) => Who::Acct(acct),
                (_, 0..=4) => Who::Owner,
                (_, 5) => Who::AMember,
                _ => Who::Acct(acct),
            };
            // A registration has no home yet.
            let place = match (&op, place) {
                (Op::Snapshot { .. } | Op::Base | Op::Create { .. }, Place::Home) => {
                    Place::In(if roll % 4 == 0 { Reg::Ord } else { Reg::Dfw })
                }
                (_, place) => place,
            };
            Step {
                by,
                role,
                place,
                op,
            }
        })
}

/// Every case starts with a snapshot, so that most steps have an image to act on.
fn case() -> impl Strategy<Value = Case> {
    (
        proptest::bool::weighted(0.25),
        (tenant(), region()),
        proptest::collection::vec(step(), 0..MAX_STEPS),
    )
        .prop_map(|(glance, (by, region), rest)| {
            let mut steps = vec![Step {
                by: Who::Acct(by),
                role: Role::High,
                place: Place::In(region),
                op: Op::Snapshot { name: "first" },
            }];
            steps.extend(rest);
            Case { glance, steps }
        })
}

// ---------------------------------------------------------------------------------------------
// Running a case.
// ---------------------------------------------------------------------------------------------

fn fail(what: &str) -> impl Fn(EngineError) -> TestCaseError + '_ {
    move |error| TestCaseError::fail(format!("{what}: {error}"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap()
}

/// An id no step ever registers: the 404 of an unknown image.
fn never_registered() -> Uuid {
    Uuid::from_u128(0x0bad_0000_0000_4000_8000_0000_0000_0000)
}

fn data(seed: usize) -> ImageActivated {
    ImageActivated {
        size: 1_000 + seed as u64,
        checksum: format!("{seed:032x}"),
        virtual_size: None,
        os_hash_algo: None,
        os_hash_value: None,
    }
}

fn new_image(name: &str, visibility: Option<Visibility>, seed: usize) -> NewImage {
    NewImage {
        name: Some(name.to_owned()),
        visibility,
        container_format: Some("ovf".to_owned()),
        disk_format: Some("vhd".to_owned()),
        data: Some(data(seed)),
        ..NewImage::default()
    }
}

/// The engine under test and what the run has seen so far.
struct Run {
    engine: TestEngine,
    profile: Profile,
    glance: bool,
    /// Images registered so far, in order: what `image: n` indexes.
    created: Vec<Uuid>,
    /// Each image's state as the live run produced it (the `Outcome` of its last command).
    live: BTreeMap<Uuid, Image>,
    now: DateTime<Utc>,
}

/// Counts over all cases, for the report at the end.
#[derive(Debug, Default)]
struct Stats {
    cases: u64,
    steps: u64,
    accepted: u64,
    no_ops: u64,
    rejected: Refusals,
    probes: u64,
    replays: u64,
    quota_reached: u64,
    probe_time: std::time::Duration,
    replay_time: std::time::Duration,
    accepted_by_kind: BTreeMap<&'static str, u64>,
}

impl Run {
    fn new(glance: bool) -> Result<Self, TestCaseError> {
        let base = if glance {
            Profile::glance()
        } else {
            Profile::rackspace()
        };
        let profile = Profile {
            member_quota: MEMBER_QUOTA,
            tag_quota: TAG_QUOTA,
            ..base
        };
        let engine = TestEngine::new(profile.clone());
        Ok(Run {
            engine,
            profile,
            glance,
            created: Vec::new(),
            live: BTreeMap::new(),
            now: t0(),
        })
    }

    /// The image `index` names: an index into the registered images that are not deleted (into
    /// those with members, for a member's request, when there are some). Deleted images are
    /// reached by the probes of `deleted_images_are_gone_for_everyone`.
    fn image_id(&self, index: usize, wants_members: bool) -> Result<Uuid, TestCaseError> {
        let mut existing = Vec::new();
        let mut shared = Vec::new();
        for id in &self.created {
            if let Some(image) = self.state(*id)? {
                if image.status != ImageStatus::Deleted {
                    existing.push(*id);
                    if !image.members.is_empty() {
                        shared.push(*id);
                    }
                }
            }
        }
        let pool = if wants_members && !shared.is_empty() {
            shared
        } else if !existing.is_empty() {
            existing
        } else {
            self.created.clone()
        };
        Ok(if pool.is_empty() {
            never_registered()
        } else {
            pool[index % pool.len()]
        })
    }

    /// The id a step addresses, if it addresses an existing image.
    fn target(&self, step: &Step) -> Result<Option<Uuid>, TestCaseError> {
        let wants_members =
            step.by == Who::AMember || matches!(step.op, Op::Answer { .. } | Op::Unshare { .. });
        step.op
            .image()
            .map(|index| self.image_id(index, wants_members))
            .transpose()
    }

    /// Every id a check looks at: the registered images and one that never exists.
    fn all_ids(&self) -> Vec<Uuid> {
        let mut ids = self.created.clone();
        ids.push(never_registered());
        ids
    }

    fn ctx(&self, acct: Acct, role: Role, region: Reg) -> Context {
        Context::new(acct.actor(role, self.glance), region.region(), self.now)
    }

    /// The step's caller and region, from the current state of the image it addresses.
    fn resolve(
        &self,
        step: &Step,
        index: usize,
        target: Option<Uuid>,
    ) -> Result<Context, TestCaseError> {
        let image = match target {
            Some(id) => self.state(id)?,
            None => None,
        };
        let owner = image.as_ref().and_then(|image| image.owner.as_deref());
        let account = |tenant: &str| {
            TENANT_ACCOUNTS
                .into_iter()
                .find(|acct| acct.tenant_id() == tenant)
                .unwrap_or(Acct::T1)
        };
        let acct = match step.by {
            Who::Acct(acct) => acct,
            // A base image's owner is the provider.
            Who::Owner => owner.map_or(
                if image.is_some() {
                    Acct::Provider
                } else {
                    Acct::T1
                },
                account,
            ),
            Who::AMember => {
                let members: Vec<&String> = image
                    .as_ref()
                    .map(|image| image.members.keys().collect())
                    .unwrap_or_default();
                if members.is_empty() {
                    Acct::T2
                } else {
                    account(members[index % members.len()])
                }
            }
        };
        let region = match (step.place, &image) {
            (Place::In(reg), _) => reg.region(),
            (Place::Home, Some(image)) => image.region.clone(),
            (Place::Home, None) => Reg::Dfw.region(),
        };
        let mut ctx = self.ctx(acct, step.role, Reg::Dfw);
        ctx.region = region;
        Ok(ctx)
    }

    fn head(&self) -> Result<Option<(i64, String)>, TestCaseError> {
        self.engine
            .read_sql(|conn| Ok(head(conn)?))
            .map_err(fail("head"))
    }

    fn state(&self, id: Uuid) -> Result<Option<Image>, TestCaseError> {
        self.engine.image_state(id).map_err(fail("image_state"))
    }

    fn states(&self) -> Result<Vec<Image>, TestCaseError> {
        let mut images = Vec::new();
        for id in &self.created {
            if let Some(image) = self.state(*id)? {
                images.push(image);
            }
        }
        Ok(images)
    }

    fn command(
        &self,
        step: &Step,
        index: usize,
        caller: &str,
        target: Option<Uuid>,
    ) -> (Uuid, Command) {
        let register = |origin: ImageOrigin, image: NewImage| {
            let id = Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + index as u128);
            (
                id,
                Command::Image {
                    image_id: id,
                    command: ImageCommand::Register { origin, image },
                },
            )
        };
        let on = |_: usize, command: ImageCommand| {
            let id = target.unwrap_or_else(never_registered);
            (
                id,
                Command::Image {
                    image_id: id,
                    command,
                },
            )
        };
        match &step.op {
            Op::Snapshot { name } => register(
                ImageOrigin::Snapshot {
                    server_id: format!("server-{index}"),
                },
                new_image(name, None, index),
            ),
            Op::Base => register(ImageOrigin::Base, new_image("base", None, index)),
            Op::Create { visibility } => register(
                ImageOrigin::Api,
                new_image("api", visibility.and_then(Visibility::parse), index),
            ),
            Op::Share { image, member } => on(
                *image,
                ImageCommand::AddMember {
                    member_id: member.id(caller),
                },
            ),
            Op::Unshare { image, member } => on(
                *image,
                ImageCommand::RemoveMember {
                    member_id: member.id(caller),
                },
            ),
            Op::Answer {
                image,
                member,
                status,
            } => on(
                *image,
                ImageCommand::SetMemberStatus {
                    member_id: member.id(caller),
                    status: (*status).to_owned(),
                },
            ),
            Op::Tag { image, tag } => on(
                *image,
                ImageCommand::AddTag {
                    tag: (*tag).to_owned(),
                },
            ),
            Op::Untag { image, tag } => on(
                *image,
                ImageCommand::RemoveTag {
                    tag: (*tag).to_owned(),
                },
            ),
            Op::Patch { image, edits } => on(
                *image,
                ImageCommand::Update(PatchDocument {
                    dialect: PatchDialect::V2_1,
                    ops: edits.iter().map(Edit::op).collect(),
                }),
            ),
            Op::Delete { image } => on(*image, ImageCommand::Delete),
            Op::Deactivate { image } => on(*image, ImageCommand::Deactivate),
            Op::Reactivate { image } => on(*image, ImageCommand::Reactivate),
        }
    }

    fn run_step(
        &mut self,
        step: &Step,
        index: usize,
        stats: &mut Stats,
    ) -> Result<(), TestCaseError> {
        self.now += Duration::seconds(1);
        let addressed = self.target(step)?;
        let ctx = self.resolve(step, index, addressed)?;
        let label = format!(
            "step #{index} {step:?} (as {:?} in {})",
            if ctx.actor.is_operator() {
                "provider"
            } else {
                ctx.actor.tenant_id.as_str()
            },
            ctx.region
        );
        let (target, command) = self.command(step, index, &ctx.actor.tenant_id, addressed);
        let before_head = self.head()?;
        let before_images = self.snapshot_states()?;
        let result = self.engine.execute(&ctx, command);
        let after_head = self.head()?;
        let after_images = self.snapshot_states()?;
        stats.steps += 1;
        match &result {
            Ok(outcome) => {
                if outcome.events.is_empty() {
                    stats.no_ops += 1;
                } else {
                    stats.accepted += 1;
                    *stats.accepted_by_kind.entry(step.op.kind()).or_default() += 1;
                }
                if let Some(image) = outcome.image() {
                    self.live.insert(target, image.clone());
                    if step.op.image().is_none() {
                        self.created.push(target);
                    }
                }
            }
            Err(error) => {
                stats.rejected.record(step.op.kind(), error);
                if error.code() == "over_limit" && matches!(step.op, Op::Share { .. }) {
                    stats.quota_reached += 1;
                }
            }
        }
        let change = Change {
            label: &label,
            actor: &ctx.actor,
            before_head: &before_head,
            after_head: &after_head,
            before: &before_images,
            after: &after_images,
            result: &result,
        };
        rejected_command_appends_nothing(&change)?;
        appends_nothing_iff_state_unchanged(&change)?;
        only_the_member_changes_its_status(&self.profile, &change)?;
        only_the_owner_adds_or_removes_members(&self.profile, &change)?;
        self.check_state_invariants(&label, index, stats)?;
        if (index + 1).is_multiple_of(REPLAY_EVERY) {
            let started = Instant::now();
            replay_gives_the_same_state_and_projections(self, &label)?;
            stats.replays += 1;
            stats.replay_time += started.elapsed();
        }
        Ok(())
    }

    /// Every invariant that looks at the state alone (not at one step's change).
    fn check_state_invariants(
        &self,
        label: &str,
        index: usize,
        stats: &mut Stats,
    ) -> Result<(), TestCaseError> {
        hash_chain_verifies(self, label)?;
        member_count_within_quota(self, label)?;
        let lists = DefaultLists::read(self)?;
        no_unaccepted_image_in_default_list(self, &lists, label)?;
        default_list_holds_everything_access_allows(self, &lists, label)?;
        nothing_visible_or_bootable_outside_its_region(self, label)?;
        deleted_images_are_gone_for_everyone(self, label)?;
        let started = Instant::now();
        stats.probes += stranger_gets_404_for_every_operation(self, label, Some(index))?;
        stats.probe_time += started.elapsed();
        Ok(())
    }

    fn snapshot_states(&self) -> Result<BTreeMap<Uuid, Option<Image>>, TestCaseError> {
        let mut states = BTreeMap::new();
        for id in self.all_ids() {
            states.insert(id, self.state(id)?);
        }
        // The id a registration would take is not in `created` yet; the change checks only
        // need the images that existed before.
        Ok(states)
    }
}

/// One step's effect, for the invariants about changes.
struct Change<'a> {
    label: &'a str,
    actor: &'a Actor,
    before_head: &'a Option<(i64, String)>,
    after_head: &'a Option<(i64, String)>,
    before: &'a BTreeMap<Uuid, Option<Image>>,
    after: &'a BTreeMap<Uuid, Option<Image>>,
    result: &'a Result<Outcome, EngineError>,
}

impl<'a> Change<'a> {
    /// The images that exist both before and after the step: `(id, before, after)`.
    fn kept(&self) -> impl Iterator<Item = (&'a Uuid, &'a Image, &'a Image)> {
        let before = self.before;
        self.after
            .iter()
            .filter_map(move |(id, after)| Some((id, before.get(id)?.as_ref()?, after.as_ref()?)))
    }
}

// ---------------------------------------------------------------------------------------------
// The invariants (docs/invariants.md), one function each.
// ---------------------------------------------------------------------------------------------

/// A refused command is a 4xx, appends nothing and changes no image.
fn rejected_command_appends_nothing(change: &Change<'_>) -> Result<(), TestCaseError> {
    let Err(error) = change.result else {
        return Ok(());
    };
    prop_assert!(
        (400..500).contains(&imgshare_server::error::status_of(error.kind()).as_u16()),
        "{}: refused with a server error: {:?}",
        change.label,
        error
    );
    prop_assert_eq!(
        change.before_head,
        change.after_head,
        "{}: refused ({}) but the log head moved",
        change.label,
        error
    );
    prop_assert_eq!(
        change.before,
        change.after,
        "{}: refused ({}) but an image changed",
        change.label,
        error
    );
    Ok(())
}

/// An accepted command appends nothing exactly when no state changes (an empty PATCH, a tag
/// already there, deactivating a deactivated image); otherwise the head advances by exactly its
/// events.
fn appends_nothing_iff_state_unchanged(change: &Change<'_>) -> Result<(), TestCaseError> {
    let Ok(outcome) = change.result else {
        return Ok(());
    };
    let changed = change.before != change.after
        || outcome.image().is_some_and(|image| {
            // A registration: the new id was not among the ids looked at before.
            !change.before.contains_key(&image.id)
        });
    let before = change
        .before_head
        .as_ref()
        .map_or(0, |(position, _)| *position);
    let after = change
        .after_head
        .as_ref()
        .map_or(0, |(position, _)| *position);
    prop_assert_eq!(
        outcome.events.is_empty(),
        !changed,
        "{}: {} events appended, state changed: {}",
        change.label,
        outcome.events.len(),
        changed
    );
    prop_assert_eq!(
        after - before,
        outcome.events.len() as i64,
        "{}: the head did not advance by the command's events",
        change.label
    );
    Ok(())
}

/// A member's status changes only by that member's own request (or a cloud admin's), and a new
/// member starts `pending`.
fn only_the_member_changes_its_status(
    profile: &Profile,
    change: &Change<'_>,
) -> Result<(), TestCaseError> {
    for (id, before, after) in change.kept() {
        for (member_id, member) in &after.members {
            match before.members.get(member_id) {
                Some(old) if old.status != member.status => prop_assert!(
                    change.actor.tenant_id == *member_id || profile.is_cloud_admin(change.actor),
                    "{}: {}'s status on {} changed {:?} -> {:?} at the request of {:?}",
                    change.label,
                    member_id,
                    id,
                    old.status,
                    member.status,
                    change.actor.tenant_id
                ),
                Some(_) => {}
                None => prop_assert_eq!(
                    member.status,
                    MemberStatus::Pending,
                    "{}: new member {} of {} does not start pending",
                    change.label,
                    member_id,
                    id
                ),
            }
        }
    }
    Ok(())
}

/// Members are added and removed only by whoever administered the image before the step: its
/// owner, or a cloud admin.
fn only_the_owner_adds_or_removes_members(
    profile: &Profile,
    change: &Change<'_>,
) -> Result<(), TestCaseError> {
    for (id, before, after) in change.kept() {
        let old: BTreeSet<&String> = before.members.keys().collect();
        let new: BTreeSet<&String> = after.members.keys().collect();
        if old != new {
            prop_assert!(
                access::administers(profile, before, change.actor),
                "{}: members of {} changed {:?} -> {:?} at the request of {:?}, owner {:?}",
                change.label,
                id,
                old,
                new,
                change.actor.tenant_id,
                before.owner
            );
        }
    }
    Ok(())
}

/// No image ever has more members than the quota, in its aggregate or in the read model.
fn member_count_within_quota(run: &Run, label: &str) -> Result<(), TestCaseError> {
    for image in run.states()? {
        prop_assert!(
            image.members.len() <= run.profile.member_quota,
            "{}: image {} has {} members",
            label,
            image.id,
            image.members.len()
        );
        let rows = run
            .engine
            .read_sql(|conn| Ok(tables::read_members(conn, &image.id.to_string())?))
            .map_err(fail("read_members"))?;
        prop_assert!(
            rows.len() <= run.profile.member_quota,
            "{}: image {} has {} member rows",
            label,
            image.id,
            rows.len()
        );
    }
    Ok(())
}

/// The ids of an account's default list (`GET /v2/images`, no filters) in a region.
fn default_list(run: &Run, ctx: &Context) -> Result<BTreeSet<Uuid>, TestCaseError> {
    let page = run
        .engine
        .list_images(ctx, "limit=1000")
        .map_err(fail("list_images"))?;
    let mut ids = BTreeSet::new();
    for image in page["images"].as_array().into_iter().flatten() {
        let id = image["id"]
            .as_str()
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or_else(|| TestCaseError::fail(format!("listed image without an id: {image}")))?;
        ids.insert(id);
    }
    Ok(ids)
}

/// A tenant viewer with the middle role: never a Glance admin, who sees every image.
fn viewer(run: &Run, acct: Acct, region: Reg) -> Context {
    run.ctx(acct, Role::Mid, region)
}

/// Every tenant account's default list in every region, read once per step for the two list
/// invariants.
struct DefaultLists(Vec<(Acct, Reg, Context, BTreeSet<Uuid>)>);

impl DefaultLists {
    fn read(run: &Run) -> Result<Self, TestCaseError> {
        let mut lists = Vec::new();
        for acct in TENANT_ACCOUNTS {
            for region in REGIONS {
                let ctx = viewer(run, acct, region);
                let listed = default_list(run, &ctx)?;
                lists.push((acct, region, ctx, listed));
            }
        }
        Ok(DefaultLists(lists))
    }
}

/// No account's default list holds an image unless, in that region, it owns it, it is public,
/// or the account is an accepted member; and every listed image can be read by id.
fn no_unaccepted_image_in_default_list(
    run: &Run,
    lists: &DefaultLists,
    label: &str,
) -> Result<(), TestCaseError> {
    for (acct, region, ctx, listed) in &lists.0 {
        let (acct, region) = (*acct, *region);
        for &id in listed {
            let image = run.state(id)?.ok_or_else(|| {
                TestCaseError::fail(format!("{label}: listed {id} has no stream"))
            })?;
            let tenant = acct.tenant_id();
            let owns = image.owner.as_deref() == Some(tenant);
            let public = image.owner.is_none() || image.visibility == Visibility::Public;
            let accepted = run.profile.membership_grants_access(image.visibility)
                && image
                    .members
                    .get(tenant)
                    .is_some_and(|member| member.status == MemberStatus::Accepted);
            prop_assert!(
                owns || public || accepted,
                "{}: {:?} lists {} in {:?} (owner {:?}, {:?}, members {:?})",
                label,
                acct,
                id,
                region,
                image.owner,
                image.visibility,
                image
                    .members
                    .values()
                    .map(|m| (&m.member_id, m.status))
                    .collect::<Vec<_>>()
            );
            prop_assert!(
                image.status != ImageStatus::Deleted && image.region == region.region(),
                "{}: {:?} lists {} ({}, {}) in {:?}",
                label,
                acct,
                id,
                image.status,
                image.region,
                region
            );
            prop_assert!(
                run.engine.get_image(ctx, id).is_ok(),
                "{}: {:?} lists {} in {:?} but cannot read it",
                label,
                acct,
                id,
                region
            );
        }
    }
    Ok(())
}

/// The other direction: every image an account owns, that is public, or that it accepted (not
/// hidden, not killed, in the region) is in its default list.
fn default_list_holds_everything_access_allows(
    run: &Run,
    lists: &DefaultLists,
    label: &str,
) -> Result<(), TestCaseError> {
    let images = run.states()?;
    for (acct, region, ctx, listed) in &lists.0 {
        let expected: BTreeSet<Uuid> = images
            .iter()
            .filter(|image| {
                access::can_see(&run.profile, image, &ctx.actor, &ctx.region)
                    && image.status != ImageStatus::Killed
                    && !image.os_hidden
                    && matches!(
                        access::relation(&run.profile, image, acct.tenant_id()),
                        Some(
                            access::Relation::Owner
                                | access::Relation::Public
                                | access::Relation::Member(MemberStatus::Accepted)
                        )
                    )
            })
            .map(|image| image.id)
            .collect();
        prop_assert_eq!(
            listed,
            &expected,
            "{}: default list of {:?} in {:?}",
            label,
            acct,
            region
        );
    }
    Ok(())
}

/// Outside its region an image does not exist: nobody (not even its owner or the provider)
/// reads it, boots it or finds it in a list there.
fn nothing_visible_or_bootable_outside_its_region(
    run: &Run,
    label: &str,
) -> Result<(), TestCaseError> {
    let images = run.states()?;
    for region in REGIONS {
        let foreign: Vec<&Image> = images
            .iter()
            .filter(|image| image.region != region.region())
            .collect();
        if foreign.is_empty() {
            continue;
        }
        for acct in TENANT_ACCOUNTS.into_iter().chain([Acct::Provider]) {
            let ctx = run.ctx(acct, Role::High, region);
            let page = run
                .engine
                .list_images(&ctx, "member_status=all&limit=1000")
                .map_err(fail("list_images"))?;
            let listed: BTreeSet<&str> = page["images"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|image| image["id"].as_str())
                .collect();
            for image in &foreign {
                let read = run.engine.get_image(&ctx, image.id);
                prop_assert!(
                    read.as_ref()
                        .is_err_and(|error| imgshare_server::error::status_of(error.kind())
                            .as_u16()
                            == 404),
                    "{}: {:?} reads {} of {} in {:?}: {:?}",
                    label,
                    acct,
                    image.id,
                    image.region,
                    region,
                    read.map(|image| image.status)
                );
                let boots = run
                    .engine
                    .can_boot(acct.tenant_id(), image.id, &region.region())
                    .map_err(fail("can_boot"))?;
                prop_assert!(
                    !boots,
                    "{}: {:?} boots {} of {} in {:?}",
                    label,
                    acct,
                    image.id,
                    image.region,
                    region
                );
                prop_assert!(
                    !listed.contains(image.id.to_string().as_str()),
                    "{}: {:?} lists {} of {} in {:?}",
                    label,
                    acct,
                    image.id,
                    image.region,
                    region
                );
            }
        }
    }
    Ok(())
}

/// A deleted image is gone for everyone, the provider included: 404 on read, not bootable, no
/// read-model row, and every further command on it is a 404.
fn deleted_images_are_gone_for_everyone(run: &Run, label: &str) -> Result<(), TestCaseError> {
    for image in run.states()? {
        if image.status != ImageStatus::Deleted {
            continue;
        }
        let row = run
            .engine
            .read_sql(|conn| Ok(tables::read_image(conn, &image.id.to_string())?))
            .map_err(fail("read_image"))?;
        prop_assert!(row.is_none(), "{}: deleted {} has a row", label, image.id);
        for acct in TENANT_ACCOUNTS.into_iter().chain([Acct::Provider]) {
            let ctx = run.ctx(acct, Role::High, Reg::Dfw);
            let ctx = Context {
                region: image.region.clone(),
                ..ctx
            };
            prop_assert!(
                run.engine.get_image(&ctx, image.id).is_err_and(|error| {
                    imgshare_server::error::status_of(error.kind()).as_u16() == 404
                }),
                "{}: {:?} still reads deleted {}",
                label,
                acct,
                image.id
            );
            prop_assert!(
                !run.engine
                    .can_boot(acct.tenant_id(), image.id, &image.region)
                    .map_err(fail("can_boot"))?,
                "{}: {:?} still boots deleted {}",
                label,
                acct,
                image.id
            );
        }
        // Commands from the provider, who could do anything to an existing image.
        let ctx = Context::new(Actor::operator("provider"), image.region.clone(), run.now);
        let before = run.head()?;
        for command in [
            ImageCommand::Delete,
            ImageCommand::Reactivate,
            ImageCommand::AddTag {
                tag: "again".to_owned(),
            },
        ] {
            let result = run.engine.execute(
                &ctx,
                Command::Image {
                    image_id: image.id,
                    command: command.clone(),
                },
            );
            prop_assert!(
                result
                    .as_ref()
                    .is_err_and(
                        |error| imgshare_server::error::status_of(error.kind()).as_u16() == 404
                    ),
                "{}: {:?} on deleted {} gave {:?}",
                label,
                command,
                image.id,
                result.map(|outcome| outcome.events.len())
            );
        }
        prop_assert_eq!(
            &run.head()?,
            &before,
            "{}: probing a deleted image wrote",
            label
        );
    }
    Ok(())
}

/// Every operation the API offers on an image, for a caller who is not supposed to see it.
fn probe_commands(image: Option<&Image>, caller: &str) -> Vec<(&'static str, ImageCommand)> {
    let some_member = image
        .and_then(|image| image.members.keys().next().cloned())
        .unwrap_or_else(|| "100001".to_owned());
    let some_tag = image
        .and_then(|image| image.tags.iter().next().cloned())
        .unwrap_or_else(|| "web".to_owned());
    vec![
        (
            "PATCH",
            ImageCommand::Update(PatchDocument {
                dialect: PatchDialect::V2_1,
                ops: vec![Edit::Name("mine").op()],
            }),
        ),
        (
            "PATCH []",
            ImageCommand::Update(PatchDocument {
                dialect: PatchDialect::V2_1,
                ops: Vec::new(),
            }),
        ),
        ("DELETE", ImageCommand::Delete),
        (
            "PUT tag",
            ImageCommand::AddTag {
                tag: "probe".to_owned(),
            },
        ),
        ("DELETE tag", ImageCommand::RemoveTag { tag: some_tag }),
        (
            "POST member (self)",
            ImageCommand::AddMember {
                member_id: caller.to_owned(),
            },
        ),
        (
            "POST member (other)",
            ImageCommand::AddMember {
                member_id: "999999".to_owned(),
            },
        ),
        (
            "PUT member (self)",
            ImageCommand::SetMemberStatus {
                member_id: caller.to_owned(),
                status: "accepted".to_owned(),
            },
        ),
        (
            "PUT member (existing)",
            ImageCommand::SetMemberStatus {
                member_id: some_member.clone(),
                status: "accepted".to_owned(),
            },
        ),
        (
            "DELETE member (self)",
            ImageCommand::RemoveMember {
                member_id: caller.to_owned(),
            },
        ),
        (
            "DELETE member (existing)",
            ImageCommand::RemoveMember {
                member_id: some_member,
            },
        ),
        ("deactivate", ImageCommand::Deactivate),
        ("reactivate", ImageCommand::Reactivate),
        ("PUT file", ImageCommand::Upload(data(0))),
        ("PUT stage", ImageCommand::Stage { size: 1024 }),
        (
            "POST import",
            ImageCommand::StartImport {
                method: "glance-direct".to_owned(),
            },
        ),
        (
            "POST import (unknown method)",
            ImageCommand::StartImport {
                method: "web-download".to_owned(),
            },
        ),
        ("finish import", ImageCommand::FinishImport(data(0))),
        (
            "fail import",
            ImageCommand::FailImport {
                reason: "probe".to_owned(),
            },
        ),
        ("start saving", ImageCommand::StartSaving),
        ("activate", ImageCommand::Activate(data(0))),
        (
            "kill",
            ImageCommand::Kill {
                reason: "probe".to_owned(),
            },
        ),
    ]
}

/// A caller who cannot see an image (a stranger, another region, a deleted or unknown image)
/// gets 404, never 403, for every operation on it, whatever its role; and nothing is written.
/// After a step (`Some(index)`) one account, role, region and hidden image is probed, rotating;
/// after the last step (`None`) every account (role and region rotating), on every image it
/// cannot see. Returns the number of probes.
fn stranger_gets_404_for_every_operation(
    run: &Run,
    label: &str,
    step: Option<usize>,
) -> Result<u64, TestCaseError> {
    let callers: Vec<(Acct, Role, Reg)> = match step {
        Some(index) => vec![(
            TENANT_ACCOUNTS[index % TENANT_ACCOUNTS.len()],
            ROLES[index % ROLES.len()],
            REGIONS[index % REGIONS.len()],
        )],
        None => TENANT_ACCOUNTS
            .into_iter()
            .enumerate()
            .map(|(n, acct)| (acct, ROLES[n % ROLES.len()], REGIONS[n % REGIONS.len()]))
            .collect(),
    };
    let before = run.head()?;
    let mut probes = 0;
    for (acct, role, region) in callers {
        {
            let ctx = run.ctx(acct, role, region);
            let mut hidden = Vec::new();
            for id in run.all_ids() {
                let state = run.state(id)?;
                if !state.as_ref().is_some_and(|image| {
                    access::can_see(&run.profile, image, &ctx.actor, &ctx.region)
                }) {
                    hidden.push((id, state));
                }
            }
            // After a step, one of them (rotating); after the last step, all.
            if let Some(index) = step {
                let chosen = hidden.len().checked_sub(1).map(|_| index % hidden.len());
                hidden = chosen
                    .map(|at| hidden.swap_remove(at))
                    .into_iter()
                    .collect();
            }
            for (id, state) in hidden {
                let who = format!("{label}: {acct:?}({role:?})@{region:?} on {id}");
                let not_found = |what: &str, result: Result<(), EngineError>| match result {
                    Err(error)
                        if imgshare_server::error::status_of(error.kind()).as_u16() == 404 =>
                    {
                        Ok(())
                    }
                    other => Err(TestCaseError::fail(format!(
                        "{who}: {what} gave {other:?}, not 404"
                    ))),
                };
                not_found("GET", run.engine.image_view(&ctx, id).map(drop))?;
                not_found("GET members", run.engine.members_view(&ctx, id).map(drop))?;
                not_found(
                    "GET member",
                    run.engine.member_view(&ctx, id, acct.tenant_id()).map(drop),
                )?;
                // As a list marker it is refused like an id that never existed.
                let marker = run.engine.list_images(&ctx, &format!("marker={id}"));
                prop_assert!(
                    marker
                        .as_ref()
                        .is_err_and(|error| imgshare_server::error::status_of(error.kind())
                            .as_u16()
                            == 400),
                    "{}: marker gave {:?}, not 400",
                    who,
                    marker.map(|page| page["images"].as_array().map(Vec::len))
                );
                probes += 4;
                for (what, command) in probe_commands(state.as_ref(), acct.tenant_id()) {
                    not_found(
                        what,
                        run.engine
                            .execute(
                                &ctx,
                                Command::Image {
                                    image_id: id,
                                    command,
                                },
                            )
                            .map(drop),
                    )?;
                    probes += 1;
                }
                let boots = run
                    .engine
                    .can_boot(acct.tenant_id(), id, &ctx.region)
                    .map_err(fail("can_boot"))?;
                prop_assert!(!boots, "{}: boots an image it cannot see", who);
                probes += 1;
            }
        }
    }
    prop_assert_eq!(&run.head()?, &before, "{}: probes wrote to the log", label);
    Ok(probes)
}

/// The hash chain verifies, and covers every event up to the head.
fn hash_chain_verifies(run: &Run, label: &str) -> Result<(), TestCaseError> {
    let report = run
        .engine
        .read_sql(|conn| Ok(verify_chain(conn)?))
        .map_err(fail("verify_chain"))?;
    prop_assert_eq!(report.first_mismatch, None, "{}: hash chain broken", label);
    let head = run.head()?.map_or(0, |(position, _)| position);
    prop_assert_eq!(
        i64::try_from(report.events_checked).unwrap_or(i64::MAX),
        head,
        "{}: chain length",
        label
    );
    Ok(())
}

/// The log's columns, copied as stored (hashes included), and which of them hold integers.
const EVENT_COLUMNS: &str = "position, event_id, stream_id, version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash";
const INTEGER_COLUMNS: [usize; 3] = [0, 3, 5];
const EVENT_COLUMN_COUNT: usize = 11;

/// One stored value of an event row.
enum Stored {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Stored {
    fn read(row: &dyn Row, column: usize) -> Result<Self, SqlError> {
        if INTEGER_COLUMNS.contains(&column) {
            row.int(column).map(Stored::Int)
        } else {
            row.text(column).map(Stored::Text)
        }
    }

    fn value(&self) -> SqlValue<'_> {
        match self {
            Stored::Int(value) => SqlValue::from(*value),
            Stored::Text(Some(text)) => SqlValue::Text(text),
            Stored::Text(None) => SqlValue::Null,
        }
    }
}

/// Replaying the log from scratch, in a fresh engine that holds only a copy of the log, gives
/// each image the state the live run produced and read models row for row equal to the live
/// ones (and so the same lists).
fn replay_gives_the_same_state_and_projections(
    run: &Run,
    label: &str,
) -> Result<(), TestCaseError> {
    // The log's rows, column for column (hashes included), into a new engine's empty log, on
    // the same backend.
    let rows: Vec<Vec<Stored>> = run
        .engine
        .read_sql(|conn| {
            Ok(conn.query_all(
                &format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY position"),
                &[],
                |row| {
                    (0..EVENT_COLUMN_COUNT)
                        .map(|column| Stored::read(row, column))
                        .collect::<Result<Vec<_>, SqlError>>()
                },
            ))
        })
        .map_err(fail("read the log"))?
        .and_then(|rows| rows)
        .map_err(|error| TestCaseError::fail(format!("{label}: read the log: {error}")))?;
    let fresh = TestEngine::new(run.profile.clone());
    let insert = format!(
        "INSERT INTO events ({EVENT_COLUMNS}) VALUES ({})",
        (1..=EVENT_COLUMN_COUNT)
            .map(|n| format!("?{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    fresh
        .read_sql(|conn| {
            Ok(rows.iter().try_for_each(|row| {
                let values: Vec<SqlValue<'_>> = row.iter().map(Stored::value).collect();
                conn.execute(&insert, &values).map(|_| ())
            }))
        })
        .map_err(fail("copy the log"))?
        .map_err(|error| TestCaseError::fail(format!("{label}: copy the log: {error}")))?;
    let chain = fresh
        .read_sql(|conn| Ok(verify_chain(conn)?))
        .map_err(fail("verify the copy"))?;
    prop_assert_eq!(chain.first_mismatch, None, "{}: copied chain broken", label);
    fresh.rebuild(|_| {}).map_err(fail("rebuild"))?;
    let live_rows = run
        .engine
        .read_sql(|conn| Ok(tables::dump(conn)?))
        .map_err(fail("dump live"))?;
    let fresh_rows = fresh
        .read_sql(|conn| Ok(tables::dump(conn)?))
        .map_err(fail("dump fresh"))?;
    if live_rows != fresh_rows {
        let only_live: Vec<&String> = live_rows
            .iter()
            .filter(|r| !fresh_rows.contains(r))
            .collect();
        let only_fresh: Vec<&String> = fresh_rows
            .iter()
            .filter(|r| !live_rows.contains(r))
            .collect();
        return Err(TestCaseError::fail(format!(
            "{label}: replayed read models differ\nonly live: {only_live:#?}\nonly replayed: {only_fresh:#?}"
        )));
    }
    for (id, live) in &run.live {
        let replayed = fresh.image_state(*id).map_err(fail("replayed state"))?;
        prop_assert_eq!(
            replayed.as_ref(),
            Some(live),
            "{}: replayed state of {} differs from the live one",
            label,
            id
        );
    }
    Ok(())
}

fn run_case(case: &Case, stats: &mut Stats) -> Result<(), TestCaseError> {
    let mut run = Run::new(case.glance)?;
    stats.cases += 1;
    for (index, step) in case.steps.iter().enumerate() {
        run.run_step(step, index, stats)?;
    }
    let started = Instant::now();
    stats.probes += stranger_gets_404_for_every_operation(&run, "after the last step", None)?;
    stats.probe_time += started.elapsed();
    let started = Instant::now();
    replay_gives_the_same_state_and_projections(&run, "after the last step")?;
    stats.replays += 1;
    stats.replay_time += started.elapsed();
    Ok(())
}

fn cases() -> u32 {
    property::cases(64)
}

#[test]
fn sharing_invariants_hold_after_every_step() {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/invariants.txt"
        )))),
        ..ProptestConfig::default()
    };
    let started = Instant::now();
    let stats: Stats = property::run(config, &case(), |case, stats| run_case(&case, stats));
    eprintln!(
        "sharing invariants ({}): {} cases, {} steps ({} appended, {} no-ops, {} refused; member quota reached {} times), {} stranger probes ({:.1?}), {} replays ({:.1?}), in {:.2?}\n  appended by kind: {:?}\n  refused by status: {:?}\n  refused by kind: {:?}",
        Backend::selected().name(),
        stats.cases,
        stats.steps,
        stats.accepted,
        stats.no_ops,
        stats.rejected.total,
        stats.quota_reached,
        stats.probes,
        stats.probe_time,
        stats.replays,
        stats.replay_time,
        started.elapsed(),
        stats.accepted_by_kind,
        stats.rejected.by_status,
        stats.rejected.by_kind,
    );
    // The generators must reach the interesting states, or the invariants hold vacuously.
    assert!(stats.accepted_by_kind.contains_key("share"), "{stats:?}");
    assert!(stats.accepted_by_kind.contains_key("answer"), "{stats:?}");
    assert!(stats.accepted_by_kind.contains_key("delete"), "{stats:?}");
    assert!(
        stats.rejected.by_status.contains_key(&ErrorKind::NotFound),
        "{stats:?}"
    );
    assert!(
        stats.rejected.by_status.contains_key(&ErrorKind::Forbidden),
        "{stats:?}"
    );
    assert!(cases() < 32 || stats.quota_reached > 0, "{stats:?}");
}
