//! Seed 004: "Preparing to share images" (Cloud Core Infrastructure User Guide), end to end with
//! real bytes: "1. Create the image to be shared. This can be done by saving a snapshot of a
//! cloud server" (the compute service's registration, `imgshare_store::register_vhd`, with a
//! VHD made by qemu-img), "2. Obtain the UUID", "3. Get the tenant ID of the consumer", then
//! share, accept, and export the saved image; beside it the provider's public base images
//! (seeds 001/002: "List available images"), which everyone sees and nobody shares.

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::Cursor;
use std::path::Path;

use chrono::Utc;
use common::{admin_of, region, CONSUMER, PRODUCER, STRANGER};
use imgshare_core::transfer::NOT_OWNER;
use imgshare_core::{
    Actor, Command, Context, DomainError, ImageCommand, ImageOrigin, ImageStatus, MemberStatus,
    NewImage, Profile, ProfileKind, TaskCommand, TaskStatus, Visibility,
};
use imgshare_store::{register_vhd, Engine, EngineError, FsImageDataStore, TaskEnvironment};
use imgshare_tests::backend::TestDb;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use uuid::Uuid;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/vhd")
        .join(name);
    fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A DFW cloud on a database of the selected backend (a file, or a PostgreSQL database): image
/// data, an object store, and the task worker's view.
struct Cloud {
    dir: tempfile::TempDir,
    // Before `_db`: the engine closes its connections before the database is removed.
    engine: Engine,
    _db: TestDb,
    data: FsImageDataStore,
    env: TaskEnvironment,
}

impl Cloud {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(ProfileKind::Rackspace);
        let engine = db.open(Profile::default());
        let data = FsImageDataStore::new(dir.path().join("data"));
        fs::create_dir_all(dir.path().join("data")).unwrap();
        let env = TaskEnvironment::filesystem(
            &dir.path().join("objects"),
            &dir.path().join("data"),
            &[region("DFW")],
        );
        Cloud {
            dir,
            engine,
            _db: db,
            data,
            env,
        }
    }

    fn ctx(&self, actor: Actor) -> Context {
        Context::new(actor, region("DFW"), Utc::now())
    }

    /// The compute service saves `tenant`'s server `server` as an image with `bytes`.
    fn save_server(&self, tenant: &str, server: &str, name: &str, bytes: &[u8]) -> Uuid {
        let image_id = Uuid::new_v4();
        let image = NewImage {
            name: Some(name.to_owned()),
            min_disk: 20,
            ..NewImage::default()
        };
        let origin = ImageOrigin::Snapshot {
            server_id: server.to_owned(),
        };
        register_vhd(
            &self.engine,
            &self.data,
            &self.ctx(admin_of(tenant)),
            image_id,
            origin,
            image,
            &mut Cursor::new(bytes),
        )
        .unwrap();
        image_id
    }

    /// The provider publishes a base image with `bytes`.
    fn publish(&self, name: &str, bytes: &[u8]) -> Uuid {
        let image_id = Uuid::new_v4();
        let image = NewImage {
            name: Some(name.to_owned()),
            properties: [
                ("os_type".to_owned(), "linux".to_owned()),
                ("com.rackspace__1__options".to_owned(), "0".to_owned()),
            ]
            .into(),
            ..NewImage::default()
        };
        register_vhd(
            &self.engine,
            &self.data,
            &self.ctx(Actor::operator("provider")),
            image_id,
            ImageOrigin::Base,
            image,
            &mut Cursor::new(bytes),
        )
        .unwrap();
        image_id
    }

    fn image(
        &self,
        tenant: &str,
        image_id: Uuid,
        command: ImageCommand,
    ) -> Result<(), EngineError> {
        self.engine
            .execute(
                &self.ctx(admin_of(tenant)),
                Command::Image { image_id, command },
            )
            .map(|_| ())
    }

    fn list(&self, tenant: &str, query: &str) -> Vec<String> {
        let page = self
            .engine
            .list_images(&self.ctx(admin_of(tenant)), query)
            .unwrap();
        let mut ids: Vec<String> = page["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// `tenant` exports `image_id` into `container`; the task once the worker has run.
    fn export(&self, tenant: &str, image_id: Uuid, container: &str) -> Value {
        let task_id = Uuid::new_v4();
        let command = TaskCommand::Create {
            task_type: "export".to_owned(),
            input: json!({"image_uuid": image_id.to_string(), "receiving_swift_container": container}),
        };
        self.engine
            .execute(
                &self.ctx(admin_of(tenant)),
                Command::Task { task_id, command },
            )
            .unwrap();
        self.engine.run_pending_tasks(&self.env).unwrap();
        self.engine
            .task_view(&self.ctx(admin_of(tenant)), task_id)
            .unwrap()
    }

    fn container(&self, tenant: &str, container: &str) -> std::path::PathBuf {
        let path = self
            .dir
            .path()
            .join("objects/DFW")
            .join(tenant)
            .join(container);
        fs::create_dir_all(&path).unwrap();
        path
    }
}

#[test]
fn a_saved_server_image_is_shared_accepted_and_exported_with_its_bytes() {
    let cloud = Cloud::new();
    let disk = fixture("fixed.vhd");

    // 1. "Create the image to be shared ... by saving a snapshot of a cloud server."
    let image_id = cloud.save_server(PRODUCER, "srv-web-01", "web-golden", &disk);
    let image = cloud
        .engine
        .get_image(&cloud.ctx(admin_of(PRODUCER)), image_id)
        .unwrap();
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.owner.as_deref(), Some(PRODUCER));
    assert_eq!(image.visibility, Visibility::Private);
    assert_eq!(image.properties["image_type"], "snapshot");
    assert_eq!(image.properties["instance_uuid"], "srv-web-01");
    assert_eq!(image.size, Some(disk.len() as u64));
    assert_eq!(image.checksum.as_deref(), Some(md5_hex(&disk).as_str()));
    assert_eq!(
        fs::read(cloud.dir.path().join("data").join(image_id.to_string())).unwrap(),
        disk
    );

    // 2. "Obtain the UUID ... from the API": the producer's list has it.
    assert!(cloud.list(PRODUCER, "").contains(&image_id.to_string()));

    // 3. The consumer's tenant id is all the producer needs: share, then the consumer accepts.
    cloud
        .image(
            PRODUCER,
            image_id,
            ImageCommand::AddMember {
                member_id: CONSUMER.to_owned(),
            },
        )
        .unwrap();
    assert!(!cloud.list(CONSUMER, "").contains(&image_id.to_string()));
    cloud
        .image(
            CONSUMER,
            image_id,
            ImageCommand::SetMemberStatus {
                member_id: CONSUMER.to_owned(),
                status: MemberStatus::Accepted.as_str().to_owned(),
            },
        )
        .unwrap();
    assert!(cloud.list(CONSUMER, "").contains(&image_id.to_string()));
    assert!(cloud
        .engine
        .can_boot(CONSUMER, image_id, &region("DFW"))
        .unwrap());

    // The producer exports the saved image: the object holds the snapshot's bytes.
    let exports = cloud.container(PRODUCER, "exports");
    let task = cloud.export(PRODUCER, image_id, "exports");
    assert_eq!(task["status"], TaskStatus::Success.as_str(), "{task}");
    assert_eq!(
        task["result"]["export_location"],
        format!("exports/{image_id}.vhd")
    );
    assert_eq!(
        fs::read(exports.join(format!("{image_id}.vhd"))).unwrap(),
        disk
    );

    // The consumer may boot it but not export it (only the owner exports).
    cloud.container(CONSUMER, "exports");
    let task = cloud.export(CONSUMER, image_id, "exports");
    assert_eq!(task["status"], TaskStatus::Failure.as_str(), "{task}");
    assert_eq!(task["message"], NOT_OWNER);

    // Rackspace's workaround: the consumer saves its own server built from the shared image; that
    // snapshot is the consumer's, invisible to the producer, and exportable by the consumer.
    let own = cloud.save_server(CONSUMER, "srv-consumer", "from-shared", &disk);
    assert!(!cloud.list(PRODUCER, "").contains(&own.to_string()));
    let task = cloud.export(CONSUMER, own, "exports");
    assert_eq!(task["status"], TaskStatus::Success.as_str(), "{task}");
}

#[test]
fn base_images_are_available_to_everyone_and_have_no_members() {
    let cloud = Cloud::new();
    let disk = fixture("fixed.vhd");
    let base = cloud.publish("Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)", &disk);
    let saved = cloud.save_server(PRODUCER, "srv-1", "mine", &disk);

    // "List available images": every account sees the base image; only the producer its own.
    for tenant in [PRODUCER, CONSUMER, STRANGER] {
        assert!(
            cloud.list(tenant, "").contains(&base.to_string()),
            "{tenant}"
        );
        assert_eq!(
            cloud.list(tenant, "visibility=public"),
            vec![base.to_string()]
        );
        assert!(cloud.engine.can_boot(tenant, base, &region("DFW")).unwrap());
    }
    assert_eq!(
        cloud.list(PRODUCER, "visibility=private"),
        vec![saved.to_string()]
    );
    let image = cloud
        .engine
        .get_image(&cloud.ctx(admin_of(CONSUMER)), base)
        .unwrap();
    assert_eq!(image.owner, None);
    assert_eq!(image.visibility, Visibility::Public);
    assert_eq!(image.properties["image_type"], "base");
    assert_eq!(image.checksum.as_deref(), Some(md5_hex(&disk).as_str()));

    // A share of a public image: 403 "Public images do not have members.", for any tenant.
    for tenant in [PRODUCER, CONSUMER] {
        let error = cloud
            .image(
                tenant,
                base,
                ImageCommand::AddMember {
                    member_id: STRANGER.to_owned(),
                },
            )
            .unwrap_err();
        assert_eq!(common::status(&error), 403);
        match error {
            EngineError::Domain(DomainError::Forbidden { message }) => {
                assert_eq!(message, "Public images do not have members.");
            }
            other => panic!("{other:?}"),
        }
    }
    // No tenant publishes a base image: only the provider does.
    let error = register_vhd(
        &cloud.engine,
        &cloud.data,
        &cloud.ctx(admin_of(PRODUCER)),
        Uuid::new_v4(),
        ImageOrigin::Base,
        NewImage::default(),
        &mut Cursor::new(&disk),
    )
    .unwrap_err();
    assert!(error.to_string().contains("Only the provider"), "{error}");
    // And the refused registration left no bytes behind.
    let files = fs::read_dir(cloud.dir.path().join("data")).unwrap().count();
    assert_eq!(files, 2);
}
