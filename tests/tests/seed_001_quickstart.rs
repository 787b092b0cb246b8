//! Seed 001: "Quickstart for Cloud Images": image details, update through a v2.1 JSON patch,
//! export and import tasks, and the member operations, through an engine on the selected backend
//! (`common::World`: in-memory SQLite, or a new PostgreSQL database).

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Duration;
use common::*;
use imgshare_core::patch::{parse_patch_bytes, PatchDocument};
use imgshare_core::{ImageCommand, ImageStatus, MemberStatus, TaskCommand, TaskStatus, TaskType};
use serde_json::json;
use uuid::Uuid;

const IMAGE: Uuid = Uuid::from_u128(0x0001_1111);
const EXPORT_TASK: Uuid = Uuid::from_u128(0x0001_e000);
const IMPORT_TASK: Uuid = Uuid::from_u128(0x0001_1000);
const V21: &str = "application/openstack-images-v2.1-json-patch";

fn v21(body: &str) -> PatchDocument {
    parse_patch_bytes(Some(V21), body.as_bytes()).expect("a valid v2.1 patch")
}

fn world_with_image() -> World {
    let world = World::new();
    world.snapshot(&admin_of(PRODUCER), "DFW", IMAGE, "quickstart-image");
    world
}

/// The quickstart's curl body for "Update an image".
const QUICKSTART_PATCH: &str = r#"[
    {"op": "add", "path": "/someAttribute", "value": "someValue"},
    {"op": "add", "path": "/anotherAttribute", "value": "anotherValue"}
]"#;

#[test]
fn get_image_details_by_id() {
    let world = world_with_image();
    let image = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert_eq!(image.id, IMAGE);
    assert_eq!(image.name.as_deref(), Some("quickstart-image"));
    assert_eq!(image.status, ImageStatus::Active);
}

#[test]
fn update_adds_two_custom_properties_in_one_event() {
    let world = world_with_image();
    let before = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    let outcome = world
        .image(
            &admin_of(PRODUCER),
            "DFW",
            IMAGE,
            ImageCommand::Update(v21(QUICKSTART_PATCH)),
        )
        .unwrap();
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].event_type, "image_updated");
    let image = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert_eq!(
        image.properties.get("someAttribute").map(String::as_str),
        Some("someValue")
    );
    assert_eq!(
        image.properties.get("anotherAttribute").map(String::as_str),
        Some("anotherValue")
    );
    assert_eq!(image.properties.len(), before.properties.len() + 2);
    assert!(image.updated_at > before.updated_at);
    assert_eq!(image.name, before.name, "nothing else changed");
}

#[test]
fn update_with_v21_add_twice_overwrites_the_value() {
    let world = world_with_image();
    let producer = admin_of(PRODUCER);
    world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::Update(v21(QUICKSTART_PATCH)),
        )
        .unwrap();
    world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::Update(v21(
                r#"[{"op": "add", "path": "/someAttribute", "value": "otherValue"}]"#,
            )),
        )
        .unwrap();
    let image = world.get(&producer, "DFW", IMAGE).unwrap();
    assert_eq!(
        image.properties.get("someAttribute").map(String::as_str),
        Some("otherValue")
    );
}

#[test]
fn a_failing_operation_leaves_the_image_untouched() {
    let world = world_with_image();
    let producer = admin_of(PRODUCER);
    let err = world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::Update(v21(r#"[
                {"op": "add", "path": "/someAttribute", "value": "someValue"},
                {"op": "replace", "path": "/missingAttribute", "value": "x"},
                {"op": "add", "path": "/anotherAttribute", "value": "anotherValue"}
            ]"#)),
        )
        .unwrap_err();
    assert_eq!(status(&err), 409);
    let image = world.get(&producer, "DFW", IMAGE).unwrap();
    assert!(!image.properties.contains_key("someAttribute"));
    assert!(!image.properties.contains_key("anotherAttribute"));
    let loaded = world
        .engine
        .load(imgshare_core::StreamId::Image(IMAGE))
        .unwrap();
    assert_eq!(loaded.version, 2, "only registration and activation");
}

#[test]
fn only_cloud_images_admins_of_the_owner_may_update() {
    let world = world_with_image();
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    for (who, actor, expected) in [
        ("producer creator", creator_of(PRODUCER), 403),
        ("producer observer", observer_of(PRODUCER), 403),
        ("consumer admin", admin_of(CONSUMER), 403),
        ("stranger admin", admin_of(STRANGER), 404),
    ] {
        let err = world
            .image(
                &actor,
                "DFW",
                IMAGE,
                ImageCommand::Update(v21(QUICKSTART_PATCH)),
            )
            .unwrap_err();
        assert_eq!(status(&err), expected, "{who}: {err}");
    }
    let image = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert!(!image.properties.contains_key("someAttribute"));
}

#[test]
fn share_accept_get_list_and_delete_member() {
    let world = world_with_image();
    let producer = admin_of(PRODUCER);
    let consumer = admin_of(CONSUMER);

    // imgs.add_image_member(imageId, memberId)
    let outcome = world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::AddMember {
                member_id: CONSUMER.to_owned(),
            },
        )
        .unwrap();
    let member = &outcome.image().unwrap().members[CONSUMER];
    assert_eq!(member.member_id, CONSUMER);
    assert_eq!(member.status, MemberStatus::Pending);

    // "The image does not automatically appear ... the consumer must explicitly accept"
    world.answer(&consumer, "DFW", IMAGE, "accepted").unwrap();

    // Either party can view the member's details.
    for reader in [&producer, &consumer] {
        let image = world.get(reader, "DFW", IMAGE).unwrap();
        let member = image.members.get(CONSUMER).expect("the member row");
        assert_eq!(
            member.status,
            MemberStatus::Accepted,
            "{}",
            reader.tenant_id
        );
        assert!(member.updated_at > member.created_at);
    }

    // List members: the producer sees every member, whatever its status.
    world.share(&producer, "DFW", IMAGE, STRANGER);
    let image = world.get(&producer, "DFW", IMAGE).unwrap();
    let listed: Vec<(&str, MemberStatus)> = image
        .members
        .values()
        .map(|member| (member.member_id.as_str(), member.status))
        .collect();
    assert_eq!(
        listed,
        vec![
            (CONSUMER, MemberStatus::Accepted),
            (STRANGER, MemberStatus::Pending)
        ]
    );

    // imgs.delete_image_member(imageId, memberId)
    let outcome = world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::RemoveMember {
                member_id: CONSUMER.to_owned(),
            },
        )
        .unwrap();
    let members = &outcome.image().unwrap().members;
    assert!(!members.contains_key(CONSUMER));
    assert!(members.contains_key(STRANGER));
    assert_eq!(
        status(&world.get(&consumer, "DFW", IMAGE).unwrap_err()),
        404
    );

    // Removing it again: it is no longer a member (404).
    let err = world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::RemoveMember {
                member_id: CONSUMER.to_owned(),
            },
        )
        .unwrap_err();
    assert_eq!(status(&err), 404);
    assert_eq!(domain(&err).code(), "member_not_found");
}

#[test]
fn producer_cannot_update_the_member_status() {
    let world = world_with_image();
    let producer = admin_of(PRODUCER);
    world.share(&producer, "DFW", IMAGE, CONSUMER);
    for answer in ["accepted", "rejected", "pending", "bogus"] {
        let err = world
            .image(
                &producer,
                "DFW",
                IMAGE,
                ImageCommand::SetMemberStatus {
                    member_id: CONSUMER.to_owned(),
                    status: answer.to_owned(),
                },
            )
            .unwrap_err();
        assert_eq!(status(&err), 403, "{answer}");
        assert_eq!(err.to_string(), NOT_PERMITTED_TO_MODIFY_STATUS, "{answer}");
    }
    let image = world.get(&producer, "DFW", IMAGE).unwrap();
    assert_eq!(image.members[CONSUMER].status, MemberStatus::Pending);
}

#[test]
fn consumer_sending_an_unknown_status_gets_400() {
    let world = world_with_image();
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    for answer in ["bogus", "", "Accepted", "ACCEPTED"] {
        let err = world
            .answer(&admin_of(CONSUMER), "DFW", IMAGE, answer)
            .unwrap_err();
        assert_eq!(status(&err), 400, "{answer:?}");
    }
}

#[test]
fn consumer_cannot_create_members_for_someone_elses_image() {
    let world = world_with_image();
    let consumer = admin_of(CONSUMER);
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    world.answer(&consumer, "DFW", IMAGE, "accepted").unwrap();
    let err = world
        .image(
            &consumer,
            "DFW",
            IMAGE,
            ImageCommand::AddMember {
                member_id: STRANGER.to_owned(),
            },
        )
        .unwrap_err();
    assert_eq!(status(&err), 403);
    assert_eq!(domain(&err).code(), "forbidden");
    let image = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert!(!image.members.contains_key(STRANGER));
    assert_eq!(
        status(&world.get(&admin_of(STRANGER), "DFW", IMAGE).unwrap_err()),
        404
    );
}

#[test]
fn consumer_cannot_read_another_members_row_or_change_its_status() {
    let world = world_with_image();
    let producer = admin_of(PRODUCER);
    world.share(&producer, "DFW", IMAGE, CONSUMER);
    world.share(&producer, "DFW", IMAGE, STRANGER);
    let err = world
        .image(
            &admin_of(CONSUMER),
            "DFW",
            IMAGE,
            ImageCommand::SetMemberStatus {
                member_id: STRANGER.to_owned(),
                status: "rejected".to_owned(),
            },
        )
        .unwrap_err();
    // docs/spec/rackspace.md §9 #2: 404 (the docs' answer).
    assert_eq!(status(&err), 404);
    let image = world.get(&producer, "DFW", IMAGE).unwrap();
    assert_eq!(image.members[STRANGER].status, MemberStatus::Pending);
}

fn export_input() -> serde_json::Value {
    json!({"image_uuid": IMAGE.to_string(), "receiving_swift_container": "receivingSwiftContainer"})
}

fn import_input() -> serde_json::Value {
    json!({
        "image_properties": {"name": "My New Image"},
        "import_from": "exportSwiftContainer/my-image.vhd"
    })
}

fn create_task(
    world: &World,
    actor: &imgshare_core::Actor,
    region_name: &str,
    task_id: Uuid,
    task_type: &str,
    input: serde_json::Value,
) -> Result<imgshare_store::Outcome, imgshare_store::EngineError> {
    world.task(
        actor,
        region_name,
        task_id,
        TaskCommand::Create {
            task_type: task_type.to_owned(),
            input,
        },
    )
}

#[test]
fn export_task_created_by_an_admin_is_pending_and_owned_by_its_account() {
    let world = world_with_image();
    let producer = admin_of(PRODUCER);
    let outcome = create_task(
        &world,
        &producer,
        "DFW",
        EXPORT_TASK,
        "export",
        export_input(),
    )
    .unwrap();
    let task = outcome.task().unwrap();
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.task_type, TaskType::Export);
    assert_eq!(task.owner, PRODUCER);
    assert_eq!(task.user_id, producer.user_id);
    assert_eq!(task.region.as_str(), "DFW");
    assert_eq!(task.input, export_input());
    assert_eq!(task.expires_at, None, "no expiry while pending");
    assert_eq!(task.result, None);
    let read = world
        .engine
        .get_task(&world.ctx(&producer, "DFW"), EXPORT_TASK)
        .unwrap();
    assert_eq!(&read, task);
    // Any role of the owning account may read it.
    assert!(world
        .engine
        .get_task(&world.ctx(&observer_of(PRODUCER), "DFW"), EXPORT_TASK)
        .is_ok());
}

#[test]
fn import_task_created_by_an_admin_is_pending_and_owned_by_its_account() {
    let world = World::new();
    let importer = admin_of(CONSUMER);
    let outcome = create_task(
        &world,
        &importer,
        "ORD",
        IMPORT_TASK,
        "import",
        import_input(),
    )
    .unwrap();
    let task = outcome.task().unwrap();
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.task_type, TaskType::Import);
    assert_eq!(task.owner, CONSUMER);
    assert_eq!(task.region.as_str(), "ORD");
    assert_eq!(task.input, import_input());
}

#[test]
fn creating_a_task_needs_cloud_images_admin() {
    let world = world_with_image();
    for (who, actor) in [
        ("creator", creator_of(PRODUCER)),
        ("observer", observer_of(PRODUCER)),
    ] {
        for (task_type, input) in [("export", export_input()), ("import", import_input())] {
            let err =
                create_task(&world, &actor, "DFW", EXPORT_TASK, task_type, input).unwrap_err();
            assert_eq!(status(&err), 403, "{who} {task_type}");
        }
    }
    let err = world
        .engine
        .get_task(&world.ctx(&admin_of(PRODUCER), "DFW"), EXPORT_TASK)
        .unwrap_err();
    assert_eq!(status(&err), 404, "nothing was created");
}

#[test]
fn a_task_is_404_for_another_tenant_and_in_another_region() {
    let world = world_with_image();
    create_task(
        &world,
        &admin_of(PRODUCER),
        "DFW",
        EXPORT_TASK,
        "export",
        export_input(),
    )
    .unwrap();
    for (who, actor, region_name) in [
        ("consumer in DFW", admin_of(CONSUMER), "DFW"),
        ("stranger in DFW", admin_of(STRANGER), "DFW"),
        ("owner in ORD", admin_of(PRODUCER), "ORD"),
        ("owner in LON", admin_of(PRODUCER), "LON"),
    ] {
        let err = world
            .engine
            .get_task(&world.ctx(&actor, region_name), EXPORT_TASK)
            .unwrap_err();
        assert_eq!(status(&err), 404, "{who}");
        assert_eq!(domain(&err).code(), "task_not_found", "{who}");
    }
    // Even a consumer of the exported image does not see the producer's task.
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    assert_eq!(
        status(
            &world
                .engine
                .get_task(&world.ctx(&admin_of(CONSUMER), "DFW"), EXPORT_TASK)
                .unwrap_err()
        ),
        404
    );
}

#[test]
fn a_finished_task_expires_48_hours_after_it_finishes() {
    let world = world_with_image();
    let producer = admin_of(PRODUCER);
    let worker = imgshare_core::Actor::operator("task-worker");
    create_task(
        &world,
        &producer,
        "DFW",
        EXPORT_TASK,
        "export",
        export_input(),
    )
    .unwrap();
    world
        .task(&worker, "DFW", EXPORT_TASK, TaskCommand::Start)
        .unwrap();
    let finished_ctx = world.ctx(&worker, "DFW");
    let location = format!("receivingSwiftContainer/{IMAGE}.vhd");
    let outcome = world
        .engine
        .execute(
            &finished_ctx,
            imgshare_core::Command::Task {
                task_id: EXPORT_TASK,
                command: TaskCommand::Succeed {
                    result: json!({"export_location": location}),
                    imported_image: None,
                },
            },
        )
        .unwrap();
    let task = outcome.task().unwrap();
    assert_eq!(task.status, TaskStatus::Success);
    assert_eq!(
        task.expires_at,
        Some(finished_ctx.now + Duration::hours(48))
    );
    assert_eq!(task.result, Some(json!({"export_location": location})));

    world.advance(Duration::hours(47));
    assert!(world
        .engine
        .get_task(&world.ctx(&producer, "DFW"), EXPORT_TASK)
        .is_ok());
    world.advance(Duration::hours(1));
    let err = world
        .engine
        .get_task(&world.ctx(&producer, "DFW"), EXPORT_TASK)
        .unwrap_err();
    assert_eq!(status(&err), 404, "expired");
}

#[test]
fn a_successful_import_registers_a_private_active_image_for_the_importer() {
    let world = World::new();
    let importer = admin_of(CONSUMER);
    let worker = imgshare_core::Actor::operator("task-worker");
    let new_image = Uuid::from_u128(0x0001_1e00);
    create_task(
        &world,
        &importer,
        "DFW",
        IMPORT_TASK,
        "import",
        import_input(),
    )
    .unwrap();
    world
        .task(&worker, "DFW", IMPORT_TASK, TaskCommand::Start)
        .unwrap();
    let outcome = world
        .task(
            &worker,
            "DFW",
            IMPORT_TASK,
            TaskCommand::Succeed {
                result: json!({"image_id": new_image.to_string()}),
                imported_image: Some(imgshare_core::ImportedImage {
                    image_id: new_image,
                    name: Some("My New Image".to_owned()),
                    data: snapshot_data(),
                }),
            },
        )
        .unwrap();
    let streams: Vec<&str> = outcome
        .events
        .iter()
        .map(|e| e.stream_id.as_str())
        .collect();
    assert!(streams.contains(&format!("task-{IMPORT_TASK}").as_str()));
    assert!(streams.contains(&format!("image-{new_image}").as_str()));

    let image = world.get(&importer, "DFW", new_image).unwrap();
    assert_eq!(image.owner.as_deref(), Some(CONSUMER));
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.name.as_deref(), Some("My New Image"));
    assert_eq!(
        image.properties.get("image_type").map(String::as_str),
        Some("import")
    );
    assert!(world.can_boot(CONSUMER, new_image, "DFW"));
    assert!(!world.can_boot(PRODUCER, new_image, "DFW"));
    assert!(!world.can_boot(CONSUMER, new_image, "ORD"));
}
