use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use super::{apply::*, decide::*};
use crate::actor::Actor;
use crate::actor::Context;
use crate::error::DomainError;
use crate::event::{Event, ImageActivated, ImageRegistered, PropertyChange};
use crate::model::{ImageStatus, MemberStatus, Region, Visibility};
use crate::patch::parse_patch;
use crate::patch::PatchDialect;
use crate::profile::Profile;
use crate::profile::TagPermissions;
use chrono::{Duration, TimeZone};
use serde_json::json;

const IMAGE: Uuid = Uuid::from_u128(0x1111);
const OWNER: &str = "111111";
const MEMBER: &str = "222222";
const STRANGER: &str = "333333";
const OTHER_MEMBER: &str = "444444";

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2014, 2, 26, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

fn dfw() -> Region {
    Region::parse("DFW").unwrap()
}

fn ctx(actor: Actor) -> Context {
    Context::new(actor, dfw(), at(100))
}

fn admin(tenant: &str) -> Actor {
    Actor::tenant(tenant, "admin-user", &["cloudImages:admin"])
}

fn creator(tenant: &str) -> Actor {
    Actor::tenant(tenant, "creator-user", &["cloudImages:creator"])
}

fn observer(tenant: &str) -> Actor {
    Actor::tenant(tenant, "observer-user", &["cloudImages:observer"])
}

fn operator() -> Actor {
    Actor::operator("nova")
}

fn data() -> ImageActivated {
    ImageActivated {
        size: 1024,
        checksum: "0123456789abcdef0123456789abcdef".to_owned(),
        virtual_size: None,
        os_hash_algo: None,
        os_hash_value: None,
    }
}

/// The properties a snapshot of a licensed base image carries.
fn snapshot_properties() -> BTreeMap<String, String> {
    [
        ("image_type", "snapshot"),
        ("instance_uuid", "server-1"),
        ("user_id", "admin-user"),
        ("os_type", "linux"),
        ("com.rackspace__1__options", "0"),
        ("org.openstack__1__os_distro", "org.centos"),
        ("color", "blue"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

fn registered(owner: Option<&str>, visibility: Visibility) -> Event {
    Event::ImageRegistered(ImageRegistered {
        image_id: IMAGE,
        region: dfw(),
        owner: owner.map(str::to_owned),
        name: Some("web".to_owned()),
        visibility,
        protected: false,
        os_hidden: false,
        container_format: Some("ovf".to_owned()),
        disk_format: Some("vhd".to_owned()),
        min_disk: 0,
        min_ram: 0,
        tags: Vec::new(),
        properties: snapshot_properties(),
    })
}

/// Folds `events` into `state`, one minute apart starting at `from_minute`.
fn fold_at(mut state: Option<Image>, events: &[Event], from_minute: i64) -> Option<Image> {
    for (offset, event) in (0..).zip(events) {
        state = apply(state, event, at(from_minute + offset)).unwrap();
    }
    state
}

fn fold(state: Option<Image>, events: &[Event]) -> Option<Image> {
    fold_at(state, events, 200)
}

/// The owner's private image in `status`, reached through its events.
fn image_in(status: ImageStatus) -> Option<Image> {
    let activated = Event::ImageActivated(data());
    let history: Vec<Event> = match status {
        ImageStatus::Queued => vec![],
        ImageStatus::Saving => vec![Event::ImageSavingStarted {}],
        ImageStatus::Active => vec![activated],
        ImageStatus::Killed => vec![
            Event::ImageSavingStarted {},
            Event::ImageKilled {
                reason: "disk full".to_owned(),
            },
        ],
        ImageStatus::Deactivated => vec![activated, Event::ImageDeactivated {}],
        ImageStatus::Deleted => vec![activated, Event::ImageDeleted {}],
        ImageStatus::Uploading => vec![Event::ImageDataStaged { size: 1024 }],
        ImageStatus::Importing => vec![
            Event::ImageDataStaged { size: 1024 },
            Event::ImageImportStarted {
                method: "glance-direct".to_owned(),
            },
        ],
    };
    let mut events = vec![registered(Some(OWNER), Visibility::Private)];
    events.extend(history);
    let state = fold_at(None, &events, 0);
    assert_eq!(state.as_ref().map(|image| image.status), Some(status));
    state
}

fn active() -> Option<Image> {
    image_in(ImageStatus::Active)
}

/// The owner's active image shared with MEMBER, whose answer is `status`.
fn shared_with_member(status: MemberStatus) -> Option<Image> {
    let mut events = vec![Event::MemberAdded {
        member_id: MEMBER.to_owned(),
    }];
    if status != MemberStatus::Pending {
        events.push(Event::MemberStatusChanged {
            member_id: MEMBER.to_owned(),
            status,
            previous_status: Some(MemberStatus::Pending),
        });
    }
    fold_at(active(), &events, 10)
}

fn run_with(
    profile: &Profile,
    state: &Option<Image>,
    actor: Actor,
    command: &ImageCommand,
) -> Result<Vec<Event>, DomainError> {
    decide(profile, state, IMAGE, command, &ctx(actor))
}

fn run(
    state: &Option<Image>,
    actor: Actor,
    command: &ImageCommand,
) -> Result<Vec<Event>, DomainError> {
    run_with(&Profile::rackspace(), state, actor, command)
}

fn assert_fails(result: Result<Vec<Event>, DomainError>, status: u16, code: &str) -> String {
    match result {
        Ok(events) => panic!("expected {status} {code}, got events {events:?}"),
        Err(error) => {
            assert_eq!(
                (
                    crate::error::status_seen_by_clients(error.kind()),
                    error.code()
                ),
                (status, code),
                "{error}"
            );
            error.to_string()
        }
    }
}

// ---- image status transitions (docs/spec/glance.md §2) -------------------------------

#[derive(Debug)]
enum Expect {
    To(ImageStatus),
    NoOp,
    Fails(u16, &'static str),
}

const CONFLICT: Expect = Expect::Fails(409, "invalid_transition");
const WRONG_STATUS_403: Expect = Expect::Fails(403, "forbidden");
const GONE_404: Expect = Expect::Fails(404, "image_not_found");

fn kill() -> ImageCommand {
    ImageCommand::Kill {
        reason: "upload failed".to_owned(),
    }
}

fn stage() -> ImageCommand {
    ImageCommand::Stage { size: 1024 }
}

fn import() -> ImageCommand {
    ImageCommand::StartImport {
        method: "glance-direct".to_owned(),
    }
}

fn fail_import() -> ImageCommand {
    ImageCommand::FailImport {
        reason: "staged data vanished".to_owned(),
    }
}

fn check_transition(from: ImageStatus, command: ImageCommand, expect: Expect) {
    let state = image_in(from);
    let result = run(&state, operator(), &command);
    match expect {
        Expect::To(next) => {
            let events = result.unwrap_or_else(|error| panic!("{command:?}: {error}"));
            assert!(!events.is_empty(), "{command:?} produced no events");
            let after = fold(state, &events).unwrap();
            assert_eq!(after.status, next, "{command:?} from {from}");
        }
        Expect::NoOp => assert_eq!(result, Ok(Vec::new()), "{command:?} from {from}"),
        Expect::Fails(status, code) => {
            assert_fails(result, status, code);
        }
    }
}

macro_rules! transitions {
    ($($name:ident: $from:ident, $command:expr => $expect:expr;)+) => {
        $(
            #[test]
            fn $name() {
                check_transition(ImageStatus::$from, $command, $expect);
            }
        )+
    };
}

transitions! {
    queued_start_saving_goes_to_saving: Queued, ImageCommand::StartSaving => Expect::To(ImageStatus::Saving);
    queued_activate_goes_to_active: Queued, ImageCommand::Activate(data()) => Expect::To(ImageStatus::Active);
    queued_kill_is_409: Queued, kill() => CONFLICT;
    queued_upload_goes_to_active: Queued, ImageCommand::Upload(data()) => Expect::To(ImageStatus::Active);
    queued_deactivate_is_403: Queued, ImageCommand::Deactivate => WRONG_STATUS_403;
    queued_reactivate_is_403: Queued, ImageCommand::Reactivate => WRONG_STATUS_403;
    queued_delete_goes_to_deleted: Queued, ImageCommand::Delete => Expect::To(ImageStatus::Deleted);

    saving_start_saving_is_409: Saving, ImageCommand::StartSaving => CONFLICT;
    saving_activate_goes_to_active: Saving, ImageCommand::Activate(data()) => Expect::To(ImageStatus::Active);
    saving_kill_goes_to_killed: Saving, kill() => Expect::To(ImageStatus::Killed);
    saving_upload_is_409: Saving, ImageCommand::Upload(data()) => CONFLICT;
    saving_deactivate_is_403: Saving, ImageCommand::Deactivate => WRONG_STATUS_403;
    saving_reactivate_is_403: Saving, ImageCommand::Reactivate => WRONG_STATUS_403;
    saving_delete_goes_to_deleted: Saving, ImageCommand::Delete => Expect::To(ImageStatus::Deleted);

    active_start_saving_is_409: Active, ImageCommand::StartSaving => CONFLICT;
    active_activate_is_409: Active, ImageCommand::Activate(data()) => CONFLICT;
    active_kill_is_409: Active, kill() => CONFLICT;
    active_upload_is_409_data_is_immutable: Active, ImageCommand::Upload(data()) => CONFLICT;
    active_deactivate_goes_to_deactivated: Active, ImageCommand::Deactivate => Expect::To(ImageStatus::Deactivated);
    active_reactivate_is_a_no_op: Active, ImageCommand::Reactivate => Expect::NoOp;
    active_delete_goes_to_deleted: Active, ImageCommand::Delete => Expect::To(ImageStatus::Deleted);

    killed_start_saving_is_409: Killed, ImageCommand::StartSaving => CONFLICT;
    killed_activate_is_409: Killed, ImageCommand::Activate(data()) => CONFLICT;
    killed_kill_is_409: Killed, kill() => CONFLICT;
    killed_upload_is_409: Killed, ImageCommand::Upload(data()) => CONFLICT;
    killed_deactivate_is_403: Killed, ImageCommand::Deactivate => WRONG_STATUS_403;
    killed_reactivate_is_403: Killed, ImageCommand::Reactivate => WRONG_STATUS_403;
    killed_delete_goes_to_deleted: Killed, ImageCommand::Delete => Expect::To(ImageStatus::Deleted);

    deactivated_start_saving_is_409: Deactivated, ImageCommand::StartSaving => CONFLICT;
    deactivated_activate_is_409: Deactivated, ImageCommand::Activate(data()) => CONFLICT;
    deactivated_kill_is_409: Deactivated, kill() => CONFLICT;
    deactivated_upload_is_409: Deactivated, ImageCommand::Upload(data()) => CONFLICT;
    deactivated_deactivate_is_a_no_op: Deactivated, ImageCommand::Deactivate => Expect::NoOp;
    deactivated_reactivate_goes_to_active: Deactivated, ImageCommand::Reactivate => Expect::To(ImageStatus::Active);
    deactivated_delete_goes_to_deleted: Deactivated, ImageCommand::Delete => Expect::To(ImageStatus::Deleted);

    deleted_start_saving_is_404: Deleted, ImageCommand::StartSaving => GONE_404;
    deleted_activate_is_404: Deleted, ImageCommand::Activate(data()) => GONE_404;
    deleted_kill_is_404: Deleted, kill() => GONE_404;
    deleted_upload_is_404: Deleted, ImageCommand::Upload(data()) => GONE_404;
    deleted_deactivate_is_404: Deleted, ImageCommand::Deactivate => GONE_404;
    deleted_reactivate_is_404: Deleted, ImageCommand::Reactivate => GONE_404;
    deleted_delete_is_404: Deleted, ImageCommand::Delete => GONE_404;

    uploading_start_saving_is_409: Uploading, ImageCommand::StartSaving => CONFLICT;
    uploading_activate_is_409: Uploading, ImageCommand::Activate(data()) => CONFLICT;
    uploading_kill_is_409: Uploading, kill() => CONFLICT;
    uploading_upload_is_409: Uploading, ImageCommand::Upload(data()) => CONFLICT;
    uploading_deactivate_is_403: Uploading, ImageCommand::Deactivate => WRONG_STATUS_403;
    uploading_reactivate_is_403: Uploading, ImageCommand::Reactivate => WRONG_STATUS_403;
    uploading_delete_goes_to_deleted: Uploading, ImageCommand::Delete => Expect::To(ImageStatus::Deleted);

    importing_start_saving_is_409: Importing, ImageCommand::StartSaving => CONFLICT;
    importing_activate_is_409: Importing, ImageCommand::Activate(data()) => CONFLICT;
    importing_kill_is_409: Importing, kill() => CONFLICT;
    importing_upload_is_409: Importing, ImageCommand::Upload(data()) => CONFLICT;
    importing_deactivate_is_403: Importing, ImageCommand::Deactivate => WRONG_STATUS_403;
    importing_reactivate_is_403: Importing, ImageCommand::Reactivate => WRONG_STATUS_403;
    importing_delete_goes_to_deleted: Importing, ImageCommand::Delete => Expect::To(ImageStatus::Deleted);

    queued_stage_goes_to_uploading: Queued, stage() => Expect::To(ImageStatus::Uploading);
    saving_stage_is_409: Saving, stage() => CONFLICT;
    active_stage_is_409: Active, stage() => CONFLICT;
    killed_stage_is_409: Killed, stage() => CONFLICT;
    deactivated_stage_is_409: Deactivated, stage() => CONFLICT;
    uploading_stage_is_409: Uploading, stage() => CONFLICT;
    importing_stage_is_409: Importing, stage() => CONFLICT;
    deleted_stage_is_404: Deleted, stage() => GONE_404;

    queued_import_is_409_nothing_staged: Queued, import() => CONFLICT;
    saving_import_is_409: Saving, import() => CONFLICT;
    active_import_is_409: Active, import() => CONFLICT;
    killed_import_is_409: Killed, import() => CONFLICT;
    deactivated_import_is_409: Deactivated, import() => CONFLICT;
    uploading_import_goes_to_importing: Uploading, import() => Expect::To(ImageStatus::Importing);
    importing_import_is_409: Importing, import() => CONFLICT;
    deleted_import_is_404: Deleted, import() => GONE_404;

    queued_finish_import_is_409: Queued, ImageCommand::FinishImport(data()) => CONFLICT;
    saving_finish_import_is_409: Saving, ImageCommand::FinishImport(data()) => CONFLICT;
    active_finish_import_is_409: Active, ImageCommand::FinishImport(data()) => CONFLICT;
    killed_finish_import_is_409: Killed, ImageCommand::FinishImport(data()) => CONFLICT;
    deactivated_finish_import_is_409: Deactivated, ImageCommand::FinishImport(data()) => CONFLICT;
    uploading_finish_import_is_409: Uploading, ImageCommand::FinishImport(data()) => CONFLICT;
    importing_finish_import_goes_to_active: Importing, ImageCommand::FinishImport(data()) => Expect::To(ImageStatus::Active);
    deleted_finish_import_is_404: Deleted, ImageCommand::FinishImport(data()) => GONE_404;

    queued_fail_import_is_409: Queued, fail_import() => CONFLICT;
    saving_fail_import_is_409: Saving, fail_import() => CONFLICT;
    active_fail_import_is_409: Active, fail_import() => CONFLICT;
    killed_fail_import_is_409: Killed, fail_import() => CONFLICT;
    deactivated_fail_import_is_409: Deactivated, fail_import() => CONFLICT;
    uploading_fail_import_is_409: Uploading, fail_import() => CONFLICT;
    importing_fail_import_goes_back_to_queued: Importing, fail_import() => Expect::To(ImageStatus::Queued);
    deleted_fail_import_is_404: Deleted, fail_import() => GONE_404;
}

#[test]
fn only_a_glance_admin_creates_images_for_another_owner() {
    let glance = Profile::glance();
    let create = |owner: &str| ImageCommand::Register {
        origin: ImageOrigin::Api,
        image: NewImage {
            owner: Some(owner.to_owned()),
            ..NewImage::default()
        },
    };
    let member = Actor::tenant(OWNER, "u", &["member"]);
    let message = assert_fails(
        run_with(&glance, &None, member.clone(), &create("someone-else")),
        403,
        "forbidden",
    );
    assert!(message.contains("someone-else"), "{message}");
    let own = run_with(&glance, &None, member, &create(OWNER)).unwrap();
    let image = fold(None, &own).unwrap();
    assert_eq!(image.owner.as_deref(), Some(OWNER));
    let admin = Actor::tenant("admin-project", "a", &["admin"]);
    let events = run_with(&glance, &None, admin.clone(), &create("someone-else")).unwrap();
    assert_eq!(
        fold(None, &events).unwrap().owner.as_deref(),
        Some("someone-else")
    );
    assert_fails(
        run_with(&glance, &None, admin, &create("")),
        400,
        "invalid_input",
    );
}

#[test]
fn staging_records_the_size_and_a_failed_import_clears_it() {
    let staged = fold(
        image_in(ImageStatus::Queued),
        &[Event::ImageDataStaged { size: 12 }],
    );
    let staged_image = staged.clone().unwrap();
    assert_eq!(
        (
            staged_image.status,
            staged_image.size,
            staged_image.checksum
        ),
        (ImageStatus::Uploading, Some(12), None)
    );
    let failed = fold(
        staged,
        &[
            Event::ImageImportStarted {
                method: "glance-direct".to_owned(),
            },
            Event::ImageImportFailed {
                reason: "gone".to_owned(),
            },
        ],
    )
    .unwrap();
    assert_eq!((failed.status, failed.size), (ImageStatus::Queued, None));
}

#[test]
fn only_glance_direct_is_an_import_method_and_the_method_is_checked_before_the_status() {
    for method in ["web-download", "copy-image", "glance-download", ""] {
        let command = ImageCommand::StartImport {
            method: method.to_owned(),
        };
        let message = assert_fails(
            run(&image_in(ImageStatus::Active), operator(), &command),
            400,
            "invalid_input",
        );
        assert!(message.contains("not supported"), "{message}");
    }
}

#[test]
fn import_needs_both_formats_400() {
    let mut state = image_in(ImageStatus::Uploading);
    if let Some(image) = state.as_mut() {
        image.container_format = None;
    }
    assert_fails(run(&state, operator(), &import()), 400, "invalid_input");
}

#[test]
fn only_the_owner_stages_and_imports_a_member_gets_403_a_stranger_404() {
    let mut shared = shared_with_member(MemberStatus::Accepted);
    if let Some(image) = shared.as_mut() {
        image.status = ImageStatus::Queued;
        image.visibility = Visibility::Shared;
    }
    let glance = Profile::glance();
    let member = Actor::tenant(MEMBER, "member-user", &["member"]);
    assert_fails(
        run_with(&glance, &shared, member, &stage()),
        403,
        "forbidden",
    );
    let stranger = Actor::tenant("999999", "stranger-user", &["member"]);
    assert_fails(
        run_with(&glance, &shared, stranger, &stage()),
        404,
        "image_not_found",
    );
    let owner = Actor::tenant(OWNER, "owner-user", &["member"]);
    assert!(run_with(&glance, &shared, owner, &stage()).is_ok());
    // Rackspace reserves image data to the provider, staged or not.
    let rackspace_owner = Actor::tenant(OWNER, "owner-user", &["cloudImages:admin"]);
    assert_fails(
        run(&shared, rackspace_owner, &stage()),
        403,
        "role_forbidden",
    );
}

#[test]
fn upload_is_saving_then_active_with_the_data_facts() {
    let events = run(
        &image_in(ImageStatus::Queued),
        operator(),
        &ImageCommand::Upload(data()),
    )
    .unwrap();
    assert_eq!(
        events,
        vec![Event::ImageSavingStarted {}, Event::ImageActivated(data())]
    );
    let image = fold(image_in(ImageStatus::Queued), &events).unwrap();
    assert_eq!(image.checksum.as_deref(), Some(data().checksum.as_str()));
    assert_eq!(image.size, Some(1024));
}

#[test]
fn saving_data_needs_both_formats_400() {
    let mut state = image_in(ImageStatus::Queued);
    if let Some(image) = state.as_mut() {
        image.disk_format = None;
    }
    for command in [
        ImageCommand::StartSaving,
        ImageCommand::Activate(data()),
        ImageCommand::Upload(data()),
    ] {
        assert_fails(run(&state, operator(), &command), 400, "invalid_input");
    }
}

#[test]
fn activation_with_a_checksum_that_is_not_md5_is_400() {
    let mut bad = data();
    bad.checksum = "not-a-checksum".to_owned();
    assert_fails(
        run(
            &image_in(ImageStatus::Queued),
            operator(),
            &ImageCommand::Upload(bad),
        ),
        400,
        "invalid_input",
    );
}

#[test]
fn data_and_activation_commands_are_provider_only_even_for_the_owners_admin() {
    for (state, command) in [
        (image_in(ImageStatus::Queued), ImageCommand::StartSaving),
        (
            image_in(ImageStatus::Queued),
            ImageCommand::Activate(data()),
        ),
        (image_in(ImageStatus::Queued), ImageCommand::Upload(data())),
        (image_in(ImageStatus::Saving), kill()),
        (active(), ImageCommand::Deactivate),
        (image_in(ImageStatus::Deactivated), ImageCommand::Reactivate),
    ] {
        assert_fails(run(&state, admin(OWNER), &command), 403, "role_forbidden");
    }
}

#[test]
fn a_protected_image_cannot_be_deleted_403() {
    let state = fold(
        active(),
        &[Event::ImageUpdated {
            changes: vec![PropertyChange::Set {
                key: "protected".to_owned(),
                value: json!(true),
            }],
        }],
    );
    let message = assert_fails(
        run(&state, admin(OWNER), &ImageCommand::Delete),
        403,
        "forbidden",
    );
    assert_eq!(
        message,
        format!("Image {IMAGE} is protected and cannot be deleted.")
    );
}

#[test]
fn registering_an_existing_image_id_is_409() {
    let command = ImageCommand::Register {
        origin: ImageOrigin::Snapshot {
            server_id: "server-2".to_owned(),
        },
        image: NewImage::default(),
    };
    assert_fails(
        run(&active(), admin(OWNER), &command),
        409,
        "already_exists",
    );
}

#[test]
fn a_snapshot_with_data_registers_active_private_and_owned_by_the_caller() {
    let command = ImageCommand::Register {
        origin: ImageOrigin::Snapshot {
            server_id: "server-2".to_owned(),
        },
        image: NewImage {
            name: Some("snap".to_owned()),
            container_format: Some("ovf".to_owned()),
            disk_format: Some("vhd".to_owned()),
            data: Some(data()),
            ..NewImage::default()
        },
    };
    let events = run(&None, creator(OWNER), &command).unwrap();
    let image = fold(None, &events).unwrap();
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.owner.as_deref(), Some(OWNER));
    assert_eq!(image.visibility, Visibility::Private);
    assert_eq!(image.region, dfw());
    assert_eq!(image.properties["image_type"], "snapshot");
    assert_eq!(image.properties["instance_uuid"], "server-2");
    assert_fails(run(&None, observer(OWNER), &command), 403, "role_forbidden");
}

fn snapshot_with_visibility(visibility: Option<Visibility>) -> ImageCommand {
    ImageCommand::Register {
        origin: ImageOrigin::Snapshot {
            server_id: "server-3".to_owned(),
        },
        image: NewImage {
            visibility,
            container_format: Some("ovf".to_owned()),
            disk_format: Some("vhd".to_owned()),
            data: Some(data()),
            ..NewImage::default()
        },
    }
}

#[test]
fn a_tenant_snapshot_cannot_be_registered_public_or_shared_403() {
    // Rackspace: nobody but the provider sets visibility; a tenant's snapshot is private.
    for visibility in [
        Visibility::Public,
        Visibility::Shared,
        Visibility::Community,
    ] {
        assert_fails(
            run(
                &None,
                admin(OWNER),
                &snapshot_with_visibility(Some(visibility)),
            ),
            403,
            "forbidden",
        );
    }
    for visibility in [None, Some(Visibility::Private)] {
        let events = run(&None, admin(OWNER), &snapshot_with_visibility(visibility)).unwrap();
        assert_eq!(fold(None, &events).unwrap().visibility, Visibility::Private);
    }
    // Glance: the owner may choose private, shared or community; public needs an admin.
    let glance = Profile::glance();
    let member = Actor::tenant(OWNER, "u", &["member"]);
    let public = snapshot_with_visibility(Some(Visibility::Public));
    assert_fails(
        run_with(&glance, &None, member.clone(), &public),
        403,
        "forbidden",
    );
    let community = snapshot_with_visibility(Some(Visibility::Community));
    assert!(run_with(&glance, &None, member, &community).is_ok());
}

// ---- member status table (docs/spec/README.md, docs/spec/rackspace.md §4.4) -----------

fn check_member_transition(from: MemberStatus, to: MemberStatus) {
    let state = shared_with_member(from);
    let command = ImageCommand::SetMemberStatus {
        member_id: MEMBER.to_owned(),
        status: to.as_str().to_owned(),
    };
    let events = run(&state, admin(MEMBER), &command).unwrap();
    assert_eq!(
        events,
        vec![Event::MemberStatusChanged {
            member_id: MEMBER.to_owned(),
            status: to,
            previous_status: Some(from),
        }]
    );
    let before = state.clone().unwrap();
    let after = fold(state, &events).unwrap();
    assert_eq!(after.members[MEMBER].status, to);
    assert!(after.members[MEMBER].updated_at > before.members[MEMBER].updated_at);
    assert_eq!(
        after.updated_at, before.updated_at,
        "member changes do not touch the image"
    );
}

macro_rules! member_transitions {
    ($($name:ident: $from:ident => $to:ident;)+) => {
        $(
            #[test]
            fn $name() {
                check_member_transition(MemberStatus::$from, MemberStatus::$to);
            }
        )+
    };
}

member_transitions! {
    member_pending_to_pending: Pending => Pending;
    member_pending_to_accepted: Pending => Accepted;
    member_pending_to_rejected: Pending => Rejected;
    member_accepted_to_pending: Accepted => Pending;
    member_accepted_to_accepted: Accepted => Accepted;
    member_accepted_to_rejected: Accepted => Rejected;
    member_rejected_to_pending: Rejected => Pending;
    member_rejected_to_accepted: Rejected => Accepted;
    member_rejected_to_rejected: Rejected => Rejected;
}

fn set_status(member_id: &str, status: &str) -> ImageCommand {
    ImageCommand::SetMemberStatus {
        member_id: member_id.to_owned(),
        status: status.to_owned(),
    }
}

fn add_member(member_id: &str) -> ImageCommand {
    ImageCommand::AddMember {
        member_id: member_id.to_owned(),
    }
}

fn remove_member(member_id: &str) -> ImageCommand {
    ImageCommand::RemoveMember {
        member_id: member_id.to_owned(),
    }
}

#[test]
fn owner_setting_a_member_status_is_403_with_the_documented_message() {
    let state = shared_with_member(MemberStatus::Pending);
    let message = assert_fails(
        run(&state, admin(OWNER), &set_status(MEMBER, "accepted")),
        403,
        "forbidden",
    );
    assert_eq!(
        message,
        "You are not permitted to modify 'status' on this image."
    );
}

#[test]
fn owner_sending_an_invalid_status_gets_403_not_400() {
    let state = shared_with_member(MemberStatus::Pending);
    assert_fails(
        run(&state, admin(OWNER), &set_status(MEMBER, "bogus")),
        403,
        "forbidden",
    );
}

#[test]
fn member_sending_an_invalid_status_gets_400() {
    let state = shared_with_member(MemberStatus::Pending);
    for status in ["bogus", "", "Accepted", " accepted"] {
        assert_fails(
            run(&state, admin(MEMBER), &set_status(MEMBER, status)),
            400,
            "invalid_input",
        );
    }
}

#[test]
fn member_creator_sending_an_invalid_status_gets_the_role_403_first() {
    let state = shared_with_member(MemberStatus::Pending);
    assert_fails(
        run(&state, creator(MEMBER), &set_status(MEMBER, "bogus")),
        403,
        "role_forbidden",
    );
}

#[test]
fn member_addressing_another_members_row_is_404() {
    let state = fold(
        shared_with_member(MemberStatus::Pending),
        &[Event::MemberAdded {
            member_id: OTHER_MEMBER.to_owned(),
        }],
    );
    assert_fails(
        run(&state, admin(MEMBER), &set_status(OTHER_MEMBER, "rejected")),
        404,
        "member_not_found",
    );
    assert_fails(
        run(&state, admin(MEMBER), &remove_member(OTHER_MEMBER)),
        404,
        "member_not_found",
    );
}

#[test]
fn setting_the_status_of_a_non_member_is_404() {
    let state = shared_with_member(MemberStatus::Pending);
    assert_fails(
        run(&state, admin(OWNER), &set_status(OTHER_MEMBER, "accepted")),
        404,
        "member_not_found",
    );
}

#[test]
fn a_new_member_is_pending() {
    let events = run(&active(), admin(OWNER), &add_member(MEMBER)).unwrap();
    assert_eq!(
        events,
        vec![Event::MemberAdded {
            member_id: MEMBER.to_owned()
        }]
    );
    let image = fold(active(), &events).unwrap();
    assert_eq!(image.members[MEMBER].status, MemberStatus::Pending);
}

#[test]
fn a_duplicate_member_is_409() {
    for status in MemberStatus::ALL {
        let state = shared_with_member(*status);
        assert_fails(
            run(&state, admin(OWNER), &add_member(MEMBER)),
            409,
            "member_exists",
        );
    }
}

#[test]
fn member_quota_is_413_and_checked_before_the_duplicate() {
    let profile = Profile {
        member_quota: 2,
        ..Profile::rackspace()
    };
    let state = fold(
        active(),
        &[
            Event::MemberAdded {
                member_id: MEMBER.to_owned(),
            },
            Event::MemberAdded {
                member_id: OTHER_MEMBER.to_owned(),
            },
        ],
    );
    assert_fails(
        run_with(&profile, &state, admin(OWNER), &add_member(STRANGER)),
        413,
        "over_limit",
    );
    assert_fails(
        run_with(&profile, &state, admin(OWNER), &add_member(MEMBER)),
        413,
        "over_limit",
    );
    // Below the quota the same duplicate is 409, and a new member is fine.
    let one_member = shared_with_member(MemberStatus::Rejected);
    assert_fails(
        run_with(&profile, &one_member, admin(OWNER), &add_member(MEMBER)),
        409,
        "member_exists",
    );
    assert!(run_with(&profile, &one_member, admin(OWNER), &add_member(STRANGER)).is_ok());
}

#[test]
fn a_public_image_has_no_members_403() {
    let owned_public = fold_at(
        None,
        &[
            registered(Some(OWNER), Visibility::Public),
            Event::ImageActivated(data()),
        ],
        0,
    );
    let message = assert_fails(
        run(&owned_public, admin(OWNER), &add_member(MEMBER)),
        403,
        "forbidden",
    );
    assert_eq!(message, "Public images do not have members.");

    let base = fold_at(
        None,
        &[
            registered(None, Visibility::Public),
            Event::ImageActivated(data()),
        ],
        0,
    );
    let message = assert_fails(
        run(&base, operator(), &add_member(MEMBER)),
        403,
        "forbidden",
    );
    assert_eq!(message, "Public images do not have members.");
}

#[test]
fn a_blank_or_four_byte_member_id_is_400() {
    for member_id in ["", "tenant\u{1F600}"] {
        assert_fails(
            run(&active(), admin(OWNER), &add_member(member_id)),
            400,
            "invalid_input",
        );
    }
    assert_fails(
        run(&active(), admin(OWNER), &remove_member("")),
        400,
        "invalid_input",
    );
    assert_fails(
        run(&active(), admin(OWNER), &set_status("", "accepted")),
        400,
        "invalid_input",
    );
}

#[test]
fn a_member_removing_itself_is_403_and_stays_a_member() {
    for status in MemberStatus::ALL {
        let state = shared_with_member(*status);
        assert_fails(
            run(&state, admin(MEMBER), &remove_member(MEMBER)),
            403,
            "forbidden",
        );
        assert_eq!(state.as_ref().unwrap().members[MEMBER].status, *status);
    }
}

#[test]
fn a_member_cannot_share_the_image_further_403() {
    let state = shared_with_member(MemberStatus::Accepted);
    let message = assert_fails(
        run(&state, admin(MEMBER), &add_member(STRANGER)),
        403,
        "forbidden",
    );
    assert_eq!(
        message,
        "You are not permitted to create image members for the image."
    );
}

#[test]
fn re_adding_a_removed_member_starts_again_at_pending() {
    let state = shared_with_member(MemberStatus::Accepted);
    let first_added = state.as_ref().unwrap().members[MEMBER].created_at;
    let removed = run(&state, admin(OWNER), &remove_member(MEMBER)).unwrap();
    assert_eq!(
        removed,
        vec![Event::MemberRemoved {
            member_id: MEMBER.to_owned()
        }]
    );
    let state = fold_at(state, &removed, 300);
    assert!(!state.as_ref().unwrap().members.contains_key(MEMBER));
    let added = run(&state, admin(OWNER), &add_member(MEMBER)).unwrap();
    let image = fold_at(state, &added, 400).unwrap();
    assert_eq!(image.members[MEMBER].status, MemberStatus::Pending);
    assert!(image.members[MEMBER].created_at > first_added);
}

#[test]
fn removing_a_non_member_is_404() {
    assert_fails(
        run(&active(), admin(OWNER), &remove_member(MEMBER)),
        404,
        "member_not_found",
    );
}

// ---- PATCH (docs/spec/glance.md §6, docs/spec/rackspace.md §5.4) ----------------------

fn v21(ops: serde_json::Value) -> ImageCommand {
    ImageCommand::Update(parse_patch(PatchDialect::V2_1, &ops).unwrap())
}

fn v20(ops: serde_json::Value) -> ImageCommand {
    ImageCommand::Update(parse_patch(PatchDialect::V2_0, &ops).unwrap())
}

fn op(kind: &str, key: &str, value: serde_json::Value) -> serde_json::Value {
    if kind == "remove" {
        json!({"op": "remove", "path": format!("/{key}")})
    } else {
        json!({"op": kind, "path": format!("/{key}"), "value": value})
    }
}

fn patch_as_owner(
    state: &Option<Image>,
    command: &ImageCommand,
) -> Result<Vec<Event>, DomainError> {
    run(state, admin(OWNER), command)
}

fn every_op_is_403(keys: &[&str]) {
    for key in keys {
        for kind in ["add", "replace", "remove"] {
            let command = v21(json!([op(kind, key, json!("x"))]));
            let result = patch_as_owner(&active(), &command);
            assert!(
                matches!(&result, Err(error) if crate::error::status_seen_by_clients(error.kind()) == 403),
                "{kind} /{key}: {result:?}"
            );
        }
    }
}

#[test]
fn patch_read_only_keys_are_403_for_every_op() {
    every_op_is_403(&[
        "id",
        "checksum",
        "created_at",
        "updated_at",
        "file",
        "schema",
        "self",
        "size",
        "status",
        "virtual_size",
        "direct_url",
        "os_hash_algo",
        "os_hash_value",
    ]);
}

#[test]
fn patch_reserved_keys_are_403_for_every_op() {
    every_op_is_403(&["location", "deleted", "deleted_at", "os_glance_import_task"]);
    let locations = v21(json!([{"op": "add", "path": "/locations/-", "value": {"url": "x"}}]));
    assert_fails(patch_as_owner(&active(), &locations), 403, "forbidden");
}

#[test]
fn patch_rackspace_protected_keys_are_403_for_every_op() {
    every_op_is_403(&[
        "com.rackspace__1__options",
        "com.rackspace__1__brand_new",
        "org.openstack__1__os_distro",
        "image_type",
        "os_type",
        "owner",
        "user_id",
        "visibility",
    ]);
}

#[test]
fn patch_visibility_to_public_is_403_even_for_the_owners_admin() {
    let command = v21(json!([op("replace", "visibility", json!("public"))]));
    let message = assert_fails(patch_as_owner(&active(), &command), 403, "forbidden");
    assert!(message.contains("visibility"), "{message}");
}

#[test]
fn patch_remove_of_a_core_key_is_403() {
    for key in [
        "name",
        "protected",
        "container_format",
        "disk_format",
        "min_disk",
        "min_ram",
        "tags",
    ] {
        let message = assert_fails(
            patch_as_owner(&active(), &v21(json!([op("remove", key, json!(null))]))),
            403,
            "forbidden",
        );
        assert_eq!(message, format!("Property {key} may not be removed."));
    }
}

#[test]
fn patch_replace_of_a_missing_custom_key_is_409() {
    let message = assert_fails(
        patch_as_owner(
            &active(),
            &v21(json!([op("replace", "flavor", json!("x"))])),
        ),
        409,
        "property_conflict",
    );
    assert_eq!(message, "Property flavor does not exist.");
}

#[test]
fn patch_remove_of_a_missing_custom_key_is_409() {
    assert_fails(
        patch_as_owner(
            &active(),
            &v21(json!([op("remove", "flavor", json!(null))])),
        ),
        409,
        "property_conflict",
    );
}

#[test]
fn patch_remove_of_an_existing_custom_key_removes_it() {
    let events =
        patch_as_owner(&active(), &v21(json!([op("remove", "color", json!(null))]))).unwrap();
    let image = fold(active(), &events).unwrap();
    assert!(!image.properties.contains_key("color"));
}

#[test]
fn patch_v20_add_of_an_existing_custom_key_is_409() {
    let message = assert_fails(
        patch_as_owner(&active(), &v20(json!([{"add": "/color", "value": "red"}]))),
        409,
        "property_conflict",
    );
    assert_eq!(message, "Property color already present.");
}

#[test]
fn patch_v20_add_of_a_core_key_is_409() {
    assert_fails(
        patch_as_owner(&active(), &v20(json!([{"add": "/name", "value": "other"}]))),
        409,
        "property_conflict",
    );
}

#[test]
fn patch_v20_add_of_a_new_custom_key_sets_it() {
    let events = patch_as_owner(
        &active(),
        &v20(json!([{"add": "/flavor", "value": "vanilla"}])),
    )
    .unwrap();
    assert_eq!(
        fold(active(), &events).unwrap().properties["flavor"],
        "vanilla"
    );
}

#[test]
fn patch_v21_add_upserts_custom_and_core_keys() {
    let events = patch_as_owner(
        &active(),
        &v21(json!([
            op("add", "color", json!("red")),
            op("add", "name", json!("renamed")),
        ])),
    )
    .unwrap();
    let image = fold(active(), &events).unwrap();
    assert_eq!(image.properties["color"], "red");
    assert_eq!(image.name.as_deref(), Some("renamed"));
}

#[test]
fn patch_non_string_custom_value_is_400() {
    for value in [
        json!(1),
        json!(true),
        json!(null),
        json!({"a": "b"}),
        json!(["x"]),
    ] {
        for kind in ["add", "replace"] {
            assert_fails(
                patch_as_owner(&active(), &v21(json!([op(kind, "color", value.clone())]))),
                400,
                "invalid_input",
            );
        }
    }
}

#[test]
fn patch_four_byte_utf8_is_400_in_values_keys_and_names() {
    let smile = "\u{1F600}";
    for ops in [
        json!([op("add", "color", json!(format!("blue{smile}")))]),
        json!([op("add", &format!("colour{smile}"), json!("blue"))]),
        json!([op("replace", "name", json!(smile))]),
    ] {
        assert_fails(patch_as_owner(&active(), &v21(ops)), 400, "invalid_input");
    }
    // Three-byte characters are fine.
    assert!(patch_as_owner(&active(), &v21(json!([op("add", "color", json!("€"))]))).is_ok());
}

#[test]
fn patch_property_quota_is_413_only_when_adding_new_keys() {
    let count = active().unwrap().properties.len();
    let full = Profile {
        property_quota: count,
        ..Profile::rackspace()
    };
    let add_new = v21(json!([op("add", "flavor", json!("x"))]));
    assert_fails(
        run_with(&full, &active(), admin(OWNER), &add_new),
        413,
        "over_limit",
    );
    let replace = v21(json!([op("replace", "color", json!("red"))]));
    assert!(run_with(&full, &active(), admin(OWNER), &replace).is_ok());
    let swap = v21(json!([
        op("remove", "color", json!(null)),
        op("add", "flavor", json!("x")),
    ]));
    assert!(run_with(&full, &active(), admin(OWNER), &swap).is_ok());

    // Already over a lowered quota: replacing and removing still work, adding does not.
    let over = Profile {
        property_quota: count - 2,
        ..Profile::rackspace()
    };
    assert!(run_with(&over, &active(), admin(OWNER), &replace).is_ok());
    let remove = v21(json!([op("remove", "color", json!(null))]));
    assert!(run_with(&over, &active(), admin(OWNER), &remove).is_ok());
    assert_fails(
        run_with(&over, &active(), admin(OWNER), &add_new),
        413,
        "over_limit",
    );
}

#[test]
fn patch_failing_in_the_middle_yields_no_events_at_all() {
    let good_then_bad = [
        (
            json!([
                op("add", "flavor", json!("x")),
                op("replace", "missing", json!("y")),
                op("add", "other", json!("z")),
            ]),
            409,
        ),
        (
            json!([
                op("replace", "name", json!("renamed")),
                op("add", "checksum", json!("y")),
            ]),
            403,
        ),
        (
            json!([
                op("add", "flavor", json!("x")),
                op("add", "color", json!(7)),
            ]),
            400,
        ),
    ];
    for (ops, status) in good_then_bad {
        let result = patch_as_owner(&active(), &v21(ops.clone()));
        assert!(
            matches!(&result, Err(error) if crate::error::status_seen_by_clients(error.kind()) == status),
            "{ops}: {result:?}"
        );
    }
}

#[test]
fn patch_container_format_replace_only_while_queued() {
    let queued = image_in(ImageStatus::Queued);
    for key in ["container_format", "disk_format"] {
        let value = if key == "container_format" {
            "bare"
        } else {
            "raw"
        };
        let command = v21(json!([op("replace", key, json!(value))]));
        let events = patch_as_owner(&queued, &command).unwrap();
        let image = fold(queued.clone(), &events).unwrap();
        let stored = if key == "container_format" {
            image.container_format
        } else {
            image.disk_format
        };
        assert_eq!(stored.as_deref(), Some(value));
        for status in [ImageStatus::Active, ImageStatus::Deactivated] {
            assert_fails(
                patch_as_owner(&image_in(status), &command),
                403,
                "forbidden",
            );
        }
    }
    let invalid = v21(json!([op("replace", "disk_format", json!("floppy"))]));
    assert_fails(patch_as_owner(&queued, &invalid), 400, "invalid_input");
}

#[test]
fn patch_empty_document_yields_zero_events() {
    assert_eq!(patch_as_owner(&active(), &v21(json!([]))), Ok(Vec::new()));
    assert_eq!(patch_as_owner(&active(), &v20(json!([]))), Ok(Vec::new()));
}

#[test]
fn patch_core_values_are_type_checked_400() {
    for ops in [
        json!([op("replace", "min_disk", json!(-1))]),
        json!([op("replace", "min_ram", json!("512"))]),
        json!([op("replace", "min_ram", json!(2_147_483_648_u64))]),
        json!([op("replace", "protected", json!("true"))]),
        json!([op("replace", "name", json!(7))]),
        json!([op("replace", "name", json!("n".repeat(256)))]),
        json!([op("replace", "tags", json!("one"))]),
        json!([op("replace", "tags", json!([1]))]),
    ] {
        assert_fails(patch_as_owner(&active(), &v21(ops)), 400, "invalid_input");
    }
}

#[test]
fn patch_tags_collapse_duplicates_and_respect_the_quota() {
    let events = patch_as_owner(
        &active(),
        &v21(json!([op("replace", "tags", json!(["a", "b", "a"]))])),
    )
    .unwrap();
    let image = fold(active(), &events).unwrap();
    assert_eq!(
        image.tags.iter().map(String::as_str).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let small = Profile {
        tag_quota: 2,
        ..Profile::rackspace()
    };
    assert_fails(
        run_with(
            &small,
            &active(),
            admin(OWNER),
            &v21(json!([op("replace", "tags", json!(["a", "b", "c"]))])),
        ),
        413,
        "over_limit",
    );
}

#[test]
fn patch_works_on_a_deactivated_image() {
    let state = image_in(ImageStatus::Deactivated);
    let events =
        patch_as_owner(&state, &v21(json!([op("replace", "name", json!("old"))]))).unwrap();
    assert_eq!(fold(state, &events).unwrap().name.as_deref(), Some("old"));
}

#[test]
fn patch_by_a_member_is_403_and_by_a_stranger_404() {
    let state = shared_with_member(MemberStatus::Accepted);
    let command = v21(json!([op("replace", "name", json!("mine"))]));
    assert_fails(run(&state, admin(MEMBER), &command), 403, "forbidden");
    assert_fails(
        run(&state, admin(STRANGER), &command),
        404,
        "image_not_found",
    );
    // Even a read-only key: the stranger learns nothing (404, not 403).
    let read_only = v21(json!([op("replace", "checksum", json!("x"))]));
    assert_fails(
        run(&state, admin(STRANGER), &read_only),
        404,
        "image_not_found",
    );
}

// ---- RBAC per operation (docs/spec/rackspace.md §1.2, rows that involve images) -------

/// Runs `command` on `state` as the observer, creator and admin of `tenant`; true where allowed.
/// A refusal must be a 403 role denial.
fn columns(state: &Option<Image>, tenant: &str, command: &ImageCommand) -> [bool; 3] {
    [observer(tenant), creator(tenant), admin(tenant)].map(|actor| {
        match run(state, actor.clone(), command) {
            Ok(_) => true,
            Err(error) => {
                assert_eq!(error.code(), "role_forbidden", "{:?}: {error}", actor.roles);
                false
            }
        }
    })
}

#[test]
fn rbac_update_image_is_admin_only() {
    let command = v21(json!([op("add", "flavor", json!("x"))]));
    assert_eq!(columns(&active(), OWNER, &command), [false, false, true]);
    // Tags through PATCH stay admin-only, even though PUT /tags is open to every role.
    let tags = v21(json!([op("replace", "tags", json!(["web"]))]));
    assert_eq!(columns(&active(), OWNER, &tags), [false, false, true]);
}

#[test]
fn rbac_delete_image_is_admin_only() {
    assert_eq!(
        columns(&active(), OWNER, &ImageCommand::Delete),
        [false, false, true]
    );
}

#[test]
fn rbac_create_member_needs_creator() {
    assert_eq!(
        columns(&active(), OWNER, &add_member(MEMBER)),
        [false, true, true]
    );
}

#[test]
fn rbac_update_member_accept_reject_is_admin_only() {
    let state = shared_with_member(MemberStatus::Pending);
    for answer in ["accepted", "rejected"] {
        assert_eq!(
            columns(&state, MEMBER, &set_status(MEMBER, answer)),
            [false, false, true],
            "{answer}"
        );
    }
}

#[test]
fn rbac_delete_member_unshare_is_admin_only() {
    let state = shared_with_member(MemberStatus::Accepted);
    assert_eq!(
        columns(&state, OWNER, &remove_member(MEMBER)),
        [false, false, true]
    );
}

#[test]
fn rbac_add_tag_is_any_role_in_the_2016_matrix() {
    let command = ImageCommand::AddTag {
        tag: "web".to_owned(),
    };
    assert_eq!(columns(&active(), OWNER, &command), [true, true, true]);
    let events = run(&active(), observer(OWNER), &command).unwrap();
    assert_eq!(fold(active(), &events).unwrap().tags.len(), 1);
}

#[test]
fn rbac_delete_tag_is_any_role_in_the_2016_matrix() {
    let tagged = fold(
        active(),
        &[Event::ImageTagAdded {
            tag: "web".to_owned(),
        }],
    );
    let command = ImageCommand::RemoveTag {
        tag: "web".to_owned(),
    };
    assert_eq!(columns(&tagged, OWNER, &command), [true, true, true]);
}

#[test]
fn rbac_tags_are_admin_only_in_the_2014_matrix() {
    let profile = Profile {
        tag_permissions: TagPermissions::Matrix2014,
        ..Profile::rackspace()
    };
    let command = ImageCommand::AddTag {
        tag: "web".to_owned(),
    };
    assert_fails(
        run_with(&profile, &active(), observer(OWNER), &command),
        403,
        "role_forbidden",
    );
    assert_fails(
        run_with(&profile, &active(), creator(OWNER), &command),
        403,
        "role_forbidden",
    );
    assert!(run_with(&profile, &active(), admin(OWNER), &command).is_ok());
}

#[test]
fn rbac_global_admin_and_user_admin_do_everything_global_observer_only_reads_and_tags() {
    let state = shared_with_member(MemberStatus::Pending);
    for role in ["admin", "identity:user-admin", "ADMIN"] {
        let owner = Actor::tenant(OWNER, "u", &[role]);
        let member = Actor::tenant(MEMBER, "u", &[role]);
        assert!(
            run(&state, owner.clone(), &add_member(STRANGER)).is_ok(),
            "{role}"
        );
        assert!(
            run(&state, owner.clone(), &remove_member(MEMBER)).is_ok(),
            "{role}"
        );
        assert!(
            run(&state, owner.clone(), &ImageCommand::Delete).is_ok(),
            "{role}"
        );
        assert!(
            run(&state, member, &set_status(MEMBER, "accepted")).is_ok(),
            "{role}"
        );
    }
    let global_observer = Actor::tenant(OWNER, "u", &["observer"]);
    let tag = ImageCommand::AddTag {
        tag: "web".to_owned(),
    };
    assert!(run(&state, global_observer.clone(), &tag).is_ok());
    assert_fails(
        run(&state, global_observer, &add_member(STRANGER)),
        403,
        "role_forbidden",
    );
    // The most permissive role wins.
    let mixed = Actor::tenant(OWNER, "u", &["observer", "cloudImages:admin"]);
    assert!(run(&state, mixed, &ImageCommand::Delete).is_ok());
}

#[test]
fn rbac_no_cloud_images_role_may_not_even_tag() {
    let nobody = Actor::tenant(OWNER, "u", &["compute:admin"]);
    let tag = ImageCommand::AddTag {
        tag: "web".to_owned(),
    };
    assert_fails(run(&active(), nobody, &tag), 403, "role_forbidden");
}

#[test]
fn consumer_tagging_a_shared_image_is_403_with_the_documented_message() {
    let state = shared_with_member(MemberStatus::Accepted);
    let tag = ImageCommand::AddTag {
        tag: "mine".to_owned(),
    };
    let message = assert_fails(run(&state, observer(MEMBER), &tag), 403, "forbidden");
    assert_eq!(
        message,
        "You are not permitted to modify tags on this image."
    );
}

#[test]
fn stranger_with_any_role_gets_404_for_every_image_command() {
    let state = shared_with_member(MemberStatus::Pending);
    for actor in [observer(STRANGER), creator(STRANGER), admin(STRANGER)] {
        for command in [
            ImageCommand::Delete,
            add_member(STRANGER),
            remove_member(MEMBER),
            set_status(STRANGER, "accepted"),
            set_status(MEMBER, "bogus"),
            ImageCommand::AddTag {
                tag: "t".to_owned(),
            },
            ImageCommand::RemoveTag {
                tag: "t".to_owned(),
            },
            v21(json!([op("replace", "name", json!("x"))])),
        ] {
            assert_fails(run(&state, actor.clone(), &command), 404, "image_not_found");
        }
    }
}

#[test]
fn every_command_from_another_region_is_404_even_for_the_owner() {
    let state = shared_with_member(MemberStatus::Pending);
    let ord = Region::parse("ORD").unwrap();
    for command in [
        ImageCommand::Delete,
        add_member(STRANGER),
        remove_member(MEMBER),
        ImageCommand::AddTag {
            tag: "t".to_owned(),
        },
        v21(json!([op("replace", "name", json!("x"))])),
    ] {
        let ctx = Context::new(admin(OWNER), ord.clone(), at(100));
        assert_fails(
            decide(&Profile::rackspace(), &state, IMAGE, &command, &ctx),
            404,
            "image_not_found",
        );
    }
    let ctx = Context::new(admin(MEMBER), ord, at(100));
    assert_fails(
        decide(
            &Profile::rackspace(),
            &state,
            IMAGE,
            &set_status(MEMBER, "accepted"),
            &ctx,
        ),
        404,
        "image_not_found",
    );
}

#[test]
fn text_with_a_nul_character_is_refused_wherever_the_api_stores_text() {
    for (what, text) in [("Name", "a\0b"), ("Tag", "\0"), ("Member", "1\u{0}2")] {
        let message = assert_fails(
            validate::validate_text(what, text).map(|()| vec![]),
            400,
            "invalid_input",
        );
        assert!(message.contains("NUL character"), "{message}");
    }
    assert!(validate::validate_tag("a\0b").is_err());
    assert!(validate::validate_property_key("k\0").is_err());
    assert!(validate::validate_text("Name", "naïve – ünï").is_ok());
}
