//! Seed 000: "HOWTO: share images between Rackspace Cloud accounts" (producer/consumer), step by
//! step, through an engine on the selected backend (`common::World`: in-memory SQLite, or a new
//! PostgreSQL database). The producer is account 111111, the consumer 222222, both in DFW;
//! 333333 is a stranger.

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use imgshare_core::{ImageCommand, ImageStatus, MemberStatus, Visibility};
use uuid::Uuid;

const IMAGE: Uuid = Uuid::from_u128(0x000f_ffff);

/// The setup every step starts from: the producer's saved image "my-saved-image-name" in DFW.
fn producer_with_snapshot() -> World {
    let world = World::new();
    world.snapshot(&admin_of(PRODUCER), "DFW", IMAGE, "my-saved-image-name");
    world
}

fn member_status(world: &World, reader: &imgshare_core::Actor) -> Option<MemberStatus> {
    world
        .get(reader, "DFW", IMAGE)
        .expect("reader can see the image")
        .members
        .get(CONSUMER)
        .map(|member| member.status)
}

#[test]
fn producer_reads_its_saved_image_details_and_it_has_no_members() {
    let world = producer_with_snapshot();
    let image = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert_eq!(image.id, IMAGE);
    assert_eq!(image.name.as_deref(), Some("my-saved-image-name"));
    assert_eq!(image.owner.as_deref(), Some(PRODUCER));
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.visibility, Visibility::Private);
    assert_eq!(image.region.as_str(), "DFW");
    assert_eq!(
        image.properties.get("image_type").map(String::as_str),
        Some("snapshot")
    );
    assert!(image.checksum.is_some() && image.size.is_some());
    // "if the image has never been shared, the "members" value will be empty"
    assert!(image.members.is_empty(), "{:?}", image.members);
    // An observer of the producer's account reads the same details.
    let seen_by_observer = world.get(&observer_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert_eq!(seen_by_observer.id, IMAGE);
}

#[test]
fn the_whole_howto_in_order() {
    let world = producer_with_snapshot();
    let producer = admin_of(PRODUCER);
    let consumer = admin_of(CONSUMER);

    // Before the share the consumer does not know the image exists.
    let err = world.get(&consumer, "DFW", IMAGE).unwrap_err();
    assert_eq!(status(&err), 404);
    assert!(!world.can_boot(CONSUMER, IMAGE, "DFW"));

    // Producer: share the image -> the share is pending.
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
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].event_type, "member_added");
    assert_eq!(
        outcome.image().unwrap().members[CONSUMER].status,
        MemberStatus::Pending
    );

    // Consumer: get the shared image details (200, the same body the owner sees).
    let as_consumer = world.get(&consumer, "DFW", IMAGE).unwrap();
    let as_producer = world.get(&producer, "DFW", IMAGE).unwrap();
    assert_eq!(as_consumer, as_producer);
    assert_eq!(as_consumer.owner.as_deref(), Some(PRODUCER));
    // Consumer: the status of the share is "pending".
    assert_eq!(
        member_status(&world, &consumer),
        Some(MemberStatus::Pending)
    );

    // Consumer: accept.
    let outcome = world.answer(&consumer, "DFW", IMAGE, "accepted").unwrap();
    assert_eq!(outcome.events[0].event_type, "member_status_changed");
    assert_eq!(
        member_status(&world, &producer),
        Some(MemberStatus::Accepted)
    );
    // "The consumer is now free to use that shared image to build new Cloud Servers" - in the
    // producer's region only.
    assert!(world.can_boot(CONSUMER, IMAGE, "DFW"));
    assert!(!world.can_boot(CONSUMER, IMAGE, "ORD"));

    // Consumer: reject.
    world.answer(&consumer, "DFW", IMAGE, "rejected").unwrap();
    assert_eq!(
        member_status(&world, &consumer),
        Some(MemberStatus::Rejected)
    );
    // A rejected member keeps access by id: GET and boot still work.
    assert!(world.get(&consumer, "DFW", IMAGE).is_ok());
    assert!(world.can_boot(CONSUMER, IMAGE, "DFW"));

    // Consumer: cannot delete the shared image.
    let err = world
        .image(&consumer, "DFW", IMAGE, ImageCommand::Delete)
        .unwrap_err();
    assert_eq!(status(&err), 403);
    assert_eq!(err.to_string(), NOT_PERMITTED_TO_DELETE);
    assert_eq!(
        world.get(&producer, "DFW", IMAGE).unwrap().status,
        ImageStatus::Active,
        "the refused delete changed nothing"
    );

    // Producer: delete the consumer from the image's members (204 at the API).
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
    assert_eq!(outcome.events[0].event_type, "member_removed");
    assert!(outcome.image().unwrap().members.is_empty());
    // "the consumer will no longer have access to that shared image"
    let err = world.get(&consumer, "DFW", IMAGE).unwrap_err();
    assert_eq!(status(&err), 404);
    assert!(!world.can_boot(CONSUMER, IMAGE, "DFW"));
    // The producer is unaffected.
    assert!(world.can_boot(PRODUCER, IMAGE, "DFW"));
}

#[test]
fn consumer_can_get_and_boot_in_every_member_status() {
    let world = producer_with_snapshot();
    let consumer = admin_of(CONSUMER);
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    for answer in [
        "pending", "accepted", "rejected", "pending", "rejected", "accepted",
    ] {
        world.answer(&consumer, "DFW", IMAGE, answer).unwrap();
        assert_eq!(
            member_status(&world, &consumer).map(MemberStatus::as_str),
            Some(answer)
        );
        assert!(
            world.get(&consumer, "DFW", IMAGE).is_ok(),
            "GET while {answer}"
        );
        assert!(
            world.can_boot(CONSUMER, IMAGE, "DFW"),
            "boot while {answer}"
        );
        assert!(
            !world.can_boot(CONSUMER, IMAGE, "ORD"),
            "boot in ORD while {answer}"
        );
    }
}

#[test]
fn consumer_delete_is_403_with_the_exact_message_in_every_member_status() {
    let world = producer_with_snapshot();
    let consumer = admin_of(CONSUMER);
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    for answer in ["pending", "accepted", "rejected"] {
        world.answer(&consumer, "DFW", IMAGE, answer).unwrap();
        let err = world
            .image(&consumer, "DFW", IMAGE, ImageCommand::Delete)
            .unwrap_err();
        assert_eq!(status(&err), 403, "while {answer}");
        assert_eq!(domain(&err).code(), "forbidden", "while {answer}");
        assert_eq!(err.to_string(), NOT_PERMITTED_TO_DELETE, "while {answer}");
    }
}

#[test]
fn consumer_cannot_update_tag_reshare_or_unshare_the_shared_image() {
    let world = producer_with_snapshot();
    let consumer = admin_of(CONSUMER);
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    world.answer(&consumer, "DFW", IMAGE, "accepted").unwrap();

    let patch = imgshare_core::patch::parse_patch_bytes(
        Some("application/openstack-images-v2.1-json-patch"),
        br#"[{"op": "replace", "path": "/name", "value": "mine now"}]"#,
    )
    .unwrap();
    let refused = [
        ("update", ImageCommand::Update(patch)),
        (
            "tag",
            ImageCommand::AddTag {
                tag: "consumer-tag".to_owned(),
            },
        ),
        (
            "re-share",
            ImageCommand::AddMember {
                member_id: STRANGER.to_owned(),
            },
        ),
        (
            "unshare itself",
            ImageCommand::RemoveMember {
                member_id: CONSUMER.to_owned(),
            },
        ),
    ];
    for (what, command) in refused {
        let err = world.image(&consumer, "DFW", IMAGE, command).unwrap_err();
        assert_eq!(status(&err), 403, "{what}: {err}");
    }
    let image = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert_eq!(image.name.as_deref(), Some("my-saved-image-name"));
    assert!(image.tags.is_empty());
    assert_eq!(image.members.len(), 1, "{:?}", image.members);
    assert_eq!(image.members[CONSUMER].status, MemberStatus::Accepted);
    // The stranger the consumer tried to share with still cannot see the image.
    assert_eq!(
        status(&world.get(&admin_of(STRANGER), "DFW", IMAGE).unwrap_err()),
        404
    );
}

#[test]
fn reshare_after_rejection_and_removal_starts_again_at_pending() {
    let world = producer_with_snapshot();
    let producer = admin_of(PRODUCER);
    let consumer = admin_of(CONSUMER);
    world.share(&producer, "DFW", IMAGE, CONSUMER);
    world.answer(&consumer, "DFW", IMAGE, "rejected").unwrap();
    let first_added = world.get(&producer, "DFW", IMAGE).unwrap().members[CONSUMER].created_at;

    // Re-sharing while the rejected row still exists is a duplicate.
    let err = world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::AddMember {
                member_id: CONSUMER.to_owned(),
            },
        )
        .unwrap_err();
    assert_eq!(status(&err), 409);

    // The Control Panel way: remove, then re-share.
    world
        .image(
            &producer,
            "DFW",
            IMAGE,
            ImageCommand::RemoveMember {
                member_id: CONSUMER.to_owned(),
            },
        )
        .unwrap();
    world.share(&producer, "DFW", IMAGE, CONSUMER);
    let member = world.get(&consumer, "DFW", IMAGE).unwrap().members[CONSUMER].clone();
    assert_eq!(member.status, MemberStatus::Pending);
    assert!(member.created_at > first_added, "a new share, a new time");
    assert!(world.can_boot(CONSUMER, IMAGE, "DFW"));
    world.answer(&consumer, "DFW", IMAGE, "accepted").unwrap();
    assert_eq!(
        member_status(&world, &consumer),
        Some(MemberStatus::Accepted)
    );
}

#[test]
fn stranger_gets_404_never_403_for_every_operation_on_the_image() {
    let world = producer_with_snapshot();
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    // Every role level, so that no role check can answer before the visibility check.
    for stranger in [
        admin_of(STRANGER),
        creator_of(STRANGER),
        observer_of(STRANGER),
    ] {
        let roles = stranger.roles.join(",");
        let err = world.get(&stranger, "DFW", IMAGE).unwrap_err();
        assert_eq!(status(&err), 404, "get as {roles}");
        assert_eq!(domain(&err).code(), "image_not_found");
        assert!(!world.can_boot(STRANGER, IMAGE, "DFW"));

        let patch = imgshare_core::patch::parse_patch_bytes(
            Some("application/openstack-images-v2.1-json-patch"),
            br#"[{"op": "add", "path": "/someAttribute", "value": "x"}]"#,
        )
        .unwrap();
        let commands = [
            ("delete", ImageCommand::Delete),
            ("update", ImageCommand::Update(patch)),
            (
                "add member",
                ImageCommand::AddMember {
                    member_id: STRANGER.to_owned(),
                },
            ),
            (
                "remove member",
                ImageCommand::RemoveMember {
                    member_id: CONSUMER.to_owned(),
                },
            ),
            (
                "set own member status",
                ImageCommand::SetMemberStatus {
                    member_id: STRANGER.to_owned(),
                    status: "accepted".to_owned(),
                },
            ),
            (
                "set another member's status",
                ImageCommand::SetMemberStatus {
                    member_id: CONSUMER.to_owned(),
                    status: "accepted".to_owned(),
                },
            ),
            (
                "add tag",
                ImageCommand::AddTag {
                    tag: "mine".to_owned(),
                },
            ),
            (
                "remove tag",
                ImageCommand::RemoveTag {
                    tag: "mine".to_owned(),
                },
            ),
        ];
        for (what, command) in commands {
            let err = world.image(&stranger, "DFW", IMAGE, command).unwrap_err();
            assert_eq!(status(&err), 404, "{what} as {roles}: {err}");
        }
    }
    let image = world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap();
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.members.len(), 1);
    assert_eq!(image.members[CONSUMER].status, MemberStatus::Pending);
}

#[test]
fn unknown_image_id_is_404_like_an_invisible_one() {
    let world = producer_with_snapshot();
    let unknown = Uuid::from_u128(0xdead);
    let err = world.get(&admin_of(PRODUCER), "DFW", unknown).unwrap_err();
    assert_eq!(status(&err), 404);
    let err = world
        .image(&admin_of(PRODUCER), "DFW", unknown, ImageCommand::Delete)
        .unwrap_err();
    assert_eq!(status(&err), 404);
}

#[test]
fn the_image_does_not_exist_in_another_region_even_for_its_producer() {
    let world = producer_with_snapshot();
    let producer = admin_of(PRODUCER);
    let consumer = admin_of(CONSUMER);
    world.share(&producer, "DFW", IMAGE, CONSUMER);
    world.answer(&consumer, "DFW", IMAGE, "accepted").unwrap();

    for region_name in ["ORD", "IAD", "LON", "SYD", "HKG"] {
        assert_eq!(
            status(&world.get(&producer, region_name, IMAGE).unwrap_err()),
            404,
            "producer GET in {region_name}"
        );
        assert_eq!(
            status(&world.get(&consumer, region_name, IMAGE).unwrap_err()),
            404,
            "consumer GET in {region_name}"
        );
        assert!(!world.can_boot(PRODUCER, IMAGE, region_name));
        assert!(!world.can_boot(CONSUMER, IMAGE, region_name));
    }
    // Commands addressed to ORD do not reach the DFW image either.
    for (what, command) in [
        ("delete", ImageCommand::Delete),
        (
            "share",
            ImageCommand::AddMember {
                member_id: STRANGER.to_owned(),
            },
        ),
        (
            "unshare",
            ImageCommand::RemoveMember {
                member_id: CONSUMER.to_owned(),
            },
        ),
        (
            "tag",
            ImageCommand::AddTag {
                tag: "ord".to_owned(),
            },
        ),
    ] {
        let err = world.image(&producer, "ORD", IMAGE, command).unwrap_err();
        assert_eq!(status(&err), 404, "producer {what} in ORD");
    }
    let err = world
        .answer(&consumer, "ORD", IMAGE, "rejected")
        .unwrap_err();
    assert_eq!(status(&err), 404, "consumer answer in ORD");

    let image = world.get(&producer, "DFW", IMAGE).unwrap();
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.members.len(), 1);
    assert_eq!(image.members[CONSUMER].status, MemberStatus::Accepted);
    assert!(image.tags.is_empty());
}

#[test]
fn accepting_needs_cloud_images_admin_and_sharing_needs_creator() {
    let world = producer_with_snapshot();
    // A creator of the producer's account may share ("cloudImages:creator (or greater)").
    world.share(&creator_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    // A creator on the consumer side may not accept ("cloudImages:admin (or greater)").
    let err = world
        .answer(&creator_of(CONSUMER), "DFW", IMAGE, "accepted")
        .unwrap_err();
    assert_eq!(status(&err), 403);
    assert_eq!(domain(&err).code(), "role_forbidden");
    // An observer of the consumer's account may read the pending share.
    let image = world.get(&observer_of(CONSUMER), "DFW", IMAGE).unwrap();
    assert_eq!(image.members[CONSUMER].status, MemberStatus::Pending);
    // The creator who shared cannot un-share.
    let err = world
        .image(
            &creator_of(PRODUCER),
            "DFW",
            IMAGE,
            ImageCommand::RemoveMember {
                member_id: CONSUMER.to_owned(),
            },
        )
        .unwrap_err();
    assert_eq!(status(&err), 403);
    assert_eq!(domain(&err).code(), "role_forbidden");
    // The consumer's admin accepts; then the share is usable by every user of the account.
    world
        .answer(&admin_of(CONSUMER), "DFW", IMAGE, "accepted")
        .unwrap();
    assert_eq!(
        member_status(&world, &observer_of(CONSUMER)),
        Some(MemberStatus::Accepted)
    );
}

#[test]
fn producer_deleting_the_image_cuts_the_consumer_off() {
    let world = producer_with_snapshot();
    let consumer = admin_of(CONSUMER);
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    world.answer(&consumer, "DFW", IMAGE, "accepted").unwrap();
    world
        .image(&admin_of(PRODUCER), "DFW", IMAGE, ImageCommand::Delete)
        .unwrap();
    assert_eq!(
        status(&world.get(&consumer, "DFW", IMAGE).unwrap_err()),
        404
    );
    assert_eq!(
        status(&world.get(&admin_of(PRODUCER), "DFW", IMAGE).unwrap_err()),
        404
    );
    assert!(!world.can_boot(CONSUMER, IMAGE, "DFW"));
    assert!(!world.can_boot(PRODUCER, IMAGE, "DFW"));
    // The log keeps the image; only the API stops showing it.
    assert_eq!(
        world.engine.image_state(IMAGE).unwrap().unwrap().status,
        ImageStatus::Deleted
    );
}

#[test]
fn every_step_is_an_event_with_who_and_where_in_its_metadata() {
    let world = producer_with_snapshot();
    world.share(&admin_of(PRODUCER), "DFW", IMAGE, CONSUMER);
    let outcome = world
        .answer(&admin_of(CONSUMER), "DFW", IMAGE, "accepted")
        .unwrap();
    let event = &outcome.events[0];
    assert_eq!(event.stream_id, format!("image-{IMAGE}"));
    assert_eq!(event.metadata["actor"]["tenant_id"], CONSUMER);
    assert_eq!(event.metadata["region"], "DFW");
    assert_eq!(
        event.data,
        serde_json::json!({"member_id": CONSUMER, "status": "accepted", "previous_status": "pending"})
    );
    assert_eq!(event.schema_version, 2);
    // Registration (2 events: registered + activated), share, accept.
    let loaded = world
        .engine
        .load(imgshare_core::StreamId::Image(IMAGE))
        .unwrap();
    assert_eq!(loaded.version, 4);
}
