//! Import and export tasks that move real VHD files (made by qemu-img, `tests/fixtures/vhd/`)
//! between file-system object stores (one per region) and the image data store, run by
//! `Engine::run_pending_tasks` over a database of the selected backend (a SQLite file, or a
//! PostgreSQL database: `imgshare_tests::backend`).

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use common::{admin_of, region, snapshot, CONSUMER, PRODUCER};
use imgshare_core::transfer::{IMPORT_NOT_FOUND, NOT_OWNER, UNSUPPORTED_PROPERTY};
use imgshare_core::vhd;
use imgshare_core::{
    Actor, Command, Context, Image, ImageActivated, ImageCommand, ImageOrigin, ImageStatus,
    Profile, Task, TaskCommand, TaskStatus, Visibility,
};
use imgshare_store::{imported_image_id, Engine, FsImageDataStore, TaskEnvironment};
use imgshare_tests::backend::TestDb;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use uuid::Uuid;

const FIXED_VIRTUAL_SIZE: u64 = 1_079_296;
const DYNAMIC_VIRTUAL_SIZE: u64 = 67_125_248;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/vhd")
        .join(name);
    fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Rewrites a footer's checksum after a test changed it.
fn reseal(footer: &mut [u8]) {
    let sum = vhd::footer_checksum(footer);
    footer[64..68].copy_from_slice(&sum.to_be_bytes());
}

/// A differencing disk: the dynamic fixture with disk type 4 in both footer copies.
fn differencing() -> Vec<u8> {
    let mut bytes = fixture("dynamic.vhd");
    let len = bytes.len();
    for start in [0, len - 512] {
        let footer = &mut bytes[start..start + 512];
        footer[60..64].copy_from_slice(&4_u32.to_be_bytes());
        reseal(footer);
    }
    bytes
}

/// A database of the selected backend (a file, or a PostgreSQL database), object stores for DFW
/// and ORD, and an image data directory.
struct World {
    dir: tempfile::TempDir,
    // Before `db`: the engine closes its connections before the database is removed.
    engine: Engine,
    db: TestDb,
    env: TaskEnvironment,
}

impl World {
    fn new() -> Self {
        Self::with_profile(Profile::rackspace())
    }

    fn with_import_limit(limit: u64) -> Self {
        Self::with_profile(Profile {
            import_size_limit: limit,
            ..Profile::rackspace()
        })
    }

    fn with_profile(profile: Profile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(profile.kind);
        let engine = db.open(profile);
        let env = TaskEnvironment::filesystem(
            &dir.path().join("objects"),
            &dir.path().join("data"),
            &[region("DFW"), region("ORD")],
        );
        World {
            dir,
            engine,
            db,
            env,
        }
    }

    /// Drops the engine and opens the database again, as a restarted process does.
    fn restart(self) -> Self {
        let World {
            dir,
            engine,
            db,
            env,
        } = self;
        drop(engine);
        let engine = db.open(Profile::rackspace());
        World {
            dir,
            engine,
            db,
            env,
        }
    }

    fn ctx(&self, tenant: &str, region_name: &str) -> Context {
        Context::new(admin_of(tenant), region(region_name), Utc::now())
    }

    /// Where a tenant's objects in a region live: `objects/<region>/<tenant>`.
    fn account(&self, region_name: &str, tenant: &str) -> PathBuf {
        self.dir
            .path()
            .join("objects")
            .join(region_name)
            .join(tenant)
    }

    fn container(&self, region_name: &str, tenant: &str, container: &str) -> PathBuf {
        let path = self.account(region_name, tenant).join(container);
        fs::create_dir_all(&path).unwrap();
        path
    }

    /// Puts an object into a tenant's container (creating the container).
    fn put_object(&self, region_name: &str, tenant: &str, location: &str, bytes: &[u8]) {
        let (container, object) = location.split_once('/').unwrap();
        let path = self.container(region_name, tenant, container).join(object);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn object(&self, region_name: &str, tenant: &str, location: &str) -> Option<Vec<u8>> {
        fs::read(self.account(region_name, tenant).join(location)).ok()
    }

    fn data_of(&self, image_id: Uuid) -> Option<Vec<u8>> {
        fs::read(FsImageDataStore::path_in(
            &self.dir.path().join("data"),
            image_id,
        ))
        .ok()
    }

    fn create_task(&self, tenant: &str, region_name: &str, task_type: &str, input: Value) -> Uuid {
        let task_id = Uuid::new_v4();
        let outcome = self
            .engine
            .execute(
                &self.ctx(tenant, region_name),
                Command::Task {
                    task_id,
                    command: TaskCommand::Create {
                        task_type: task_type.to_owned(),
                        input,
                    },
                },
            )
            .unwrap();
        assert_eq!(outcome.task().unwrap().status, TaskStatus::Pending);
        task_id
    }

    fn import(&self, tenant: &str, region_name: &str, from: &str, name: &str) -> Uuid {
        self.create_task(
            tenant,
            region_name,
            "import",
            json!({"import_from": from, "import_from_format": "vhd", "image_properties": {"name": name}}),
        )
    }

    fn export(&self, tenant: &str, image_id: Uuid, container: &str) -> Uuid {
        self.create_task(
            tenant,
            "DFW",
            "export",
            json!({"image_uuid": image_id.to_string(), "receiving_swift_container": container}),
        )
    }

    fn run(&self) -> imgshare_store::TaskRunReport {
        self.engine.run_pending_tasks(&self.env).unwrap()
    }

    fn task(&self, tenant: &str, region_name: &str, task_id: Uuid) -> Task {
        self.engine
            .get_task(&self.ctx(tenant, region_name), task_id)
            .unwrap()
    }

    fn image(&self, image_id: Uuid) -> Image {
        self.engine.image_state(image_id).unwrap().unwrap()
    }

    fn can_boot(&self, tenant: &str, image_id: Uuid, region_name: &str) -> bool {
        self.engine
            .can_boot(tenant, image_id, &region(region_name))
            .unwrap()
    }

    /// Runs the worker and returns the task's failure message.
    fn failure_of(&self, tenant: &str, region_name: &str, task_id: Uuid) -> String {
        let report = self.run();
        assert_eq!(report.failed, [task_id]);
        let task = self.task(tenant, region_name, task_id);
        assert_eq!(task.status, TaskStatus::Failure);
        assert_eq!(task.result, None);
        assert!(task.expires_at.is_some());
        task.message.unwrap()
    }

    /// Runs the worker and returns the id of the image the import created.
    fn imported(&self, tenant: &str, region_name: &str, task_id: Uuid) -> Uuid {
        let report = self.run();
        assert_eq!(report.succeeded, [task_id], "{report:?}");
        let task = self.task(tenant, region_name, task_id);
        assert_eq!(task.status, TaskStatus::Success, "{:?}", task.message);
        let image_id = task.result.unwrap()["image_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(image_id, imported_image_id(task_id));
        image_id
    }

    /// A producer's snapshot with real bytes in the image data store.
    fn snapshot_with_data(&self, tenant: &str, bytes: &[u8], options: Option<&str>) -> Uuid {
        let image_id = Uuid::new_v4();
        let mut image = snapshot("saved");
        image.data = Some(ImageActivated {
            size: bytes.len() as u64,
            checksum: md5_hex(bytes),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        });
        if let Some(value) = options {
            image
                .properties
                .insert("com.rackspace__1__options".to_owned(), value.to_owned());
        }
        let command = ImageCommand::Register {
            origin: ImageOrigin::Snapshot {
                server_id: "srv".to_owned(),
            },
            image,
        };
        self.engine
            .execute(
                &self.ctx(tenant, "DFW"),
                Command::Image { image_id, command },
            )
            .unwrap();
        self.env
            .image_data()
            .put(image_id, &mut &bytes[..])
            .unwrap();
        image_id
    }
}

// ---- import ---------------------------------------------------------------------------------

#[test]
fn a_fixed_vhd_imports_as_a_private_active_image_with_its_md5() {
    let world = World::new();
    let bytes = fixture("fixed.vhd");
    world.put_object("DFW", PRODUCER, "exports/disks/fixed.vhd", &bytes);
    let task_id = world.import(PRODUCER, "DFW", "exports/disks/fixed.vhd", "web");
    let image_id = world.imported(PRODUCER, "DFW", task_id);

    let image = world.image(image_id);
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.visibility, Visibility::Private);
    assert_eq!(image.owner.as_deref(), Some(PRODUCER));
    assert_eq!(image.region, region("DFW"));
    assert_eq!(image.name.as_deref(), Some("web"));
    assert_eq!(image.properties["image_type"], "import");
    assert_eq!(image.disk_format.as_deref(), Some("vhd"));
    assert_eq!(image.checksum, Some(md5_hex(&bytes)));
    assert_eq!(image.size, Some(bytes.len() as u64));
    assert_eq!(image.virtual_size, Some(FIXED_VIRTUAL_SIZE));
    assert_eq!(world.data_of(image_id), Some(bytes));
    assert!(world.can_boot(PRODUCER, image_id, "DFW"));
    assert!(!world.can_boot(PRODUCER, image_id, "ORD"));
    assert!(!world.can_boot(CONSUMER, image_id, "DFW"));
    assert_eq!(world.run().finished(), 0, "nothing left to run");
}

#[test]
fn a_dynamic_vhd_imports_with_its_virtual_size() {
    let world = World::new();
    let bytes = fixture("dynamic.vhd");
    world.put_object("DFW", PRODUCER, "exports/dynamic.vhd", &bytes);
    let task_id = world.create_task(
        PRODUCER,
        "DFW",
        "import",
        json!({"import_from": "exports/dynamic.vhd", "image_properties": {}}),
    );
    let image_id = world.imported(PRODUCER, "DFW", task_id);
    let image = world.image(image_id);
    assert_eq!(image.virtual_size, Some(DYNAMIC_VIRTUAL_SIZE));
    assert_eq!(image.size, Some(bytes.len() as u64));
    assert_eq!(image.checksum, Some(md5_hex(&bytes)));
    assert_eq!(image.name, None);
}

#[test]
fn duplicate_imports_create_distinct_images() {
    let world = World::new();
    world.put_object("DFW", PRODUCER, "exports/d.vhd", &fixture("dynamic.vhd"));
    let first = world.import(PRODUCER, "DFW", "exports/d.vhd", "a");
    let second = world.import(PRODUCER, "DFW", "exports/d.vhd", "b");
    assert_eq!(sorted(world.run().succeeded), sorted(vec![first, second]));
    assert_ne!(imported_image_id(first), imported_image_id(second));
    assert_eq!(
        world.image(imported_image_id(first)).checksum,
        world.image(imported_image_id(second)).checksum
    );
}

#[test]
fn a_file_that_is_not_a_vhd_fails_with_396() {
    let world = World::new();
    let corrupt = fixture("corrupt-cookie.vhd");
    let mut bad_checksum = fixture("fixed.vhd");
    let len = bad_checksum.len();
    bad_checksum[len - 512 + 50] ^= 0x01;
    for (name, bytes) in [
        ("cookie.vhd", corrupt),
        ("checksum.vhd", bad_checksum),
        ("short.vhd", b"conectix".to_vec()),
        ("text.vhd", vec![b'x'; 4096]),
    ] {
        world.put_object("DFW", PRODUCER, &format!("exports/{name}"), &bytes);
        let task_id = world.import(PRODUCER, "DFW", &format!("exports/{name}"), name);
        assert_eq!(
            world.failure_of(PRODUCER, "DFW", task_id),
            "396: The file is not a valid VHD.",
            "{name}"
        );
        assert_eq!(world.data_of(imported_image_id(task_id)), None);
        assert_eq!(
            world
                .engine
                .image_state(imported_image_id(task_id))
                .unwrap(),
            None
        );
    }
}

#[test]
fn a_differencing_vhd_fails_with_721() {
    let world = World::new();
    world.put_object("DFW", PRODUCER, "exports/child.vhd", &differencing());
    let task_id = world.import(PRODUCER, "DFW", "exports/child.vhd", "child");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", task_id),
        "721: The VHD has a parent disk; only stand-alone VHDs may be imported."
    );
}

#[test]
fn a_vhd_over_the_configured_limit_fails_with_the_limit_in_the_message() {
    // The fixed disk's file is 1 MiB + 512 bytes: over a 1 MiB limit by its physical size. The
    // dynamic disk's file is 2.5 KiB but its disk is 64 MiB: over the limit by its virtual size.
    let world = World::with_import_limit(1 << 20);
    world.put_object("DFW", PRODUCER, "exports/fixed.vhd", &fixture("fixed.vhd"));
    world.put_object(
        "DFW",
        PRODUCER,
        "exports/dynamic.vhd",
        &fixture("dynamic.vhd"),
    );
    let fixed = world.import(PRODUCER, "DFW", "exports/fixed.vhd", "f");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", fixed),
        "609: The physical size of the VHD exceeds the 1MB limit."
    );
    let dynamic = world.import(PRODUCER, "DFW", "exports/dynamic.vhd", "d");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", dynamic),
        "413: The virtual size of the VHD exceeds the 1MB limit."
    );
}

#[test]
fn a_missing_or_escaping_source_is_not_found() {
    let world = World::new();
    world.put_object("DFW", PRODUCER, "exports/fixed.vhd", &fixture("fixed.vhd"));
    // Another account's object, and one outside every container, are not the caller's.
    world.put_object("DFW", CONSUMER, "exports/theirs.vhd", &fixture("fixed.vhd"));
    fs::write(
        world.dir.path().join("objects/DFW/outside.vhd"),
        fixture("fixed.vhd"),
    )
    .unwrap();
    for from in [
        "exports/missing.vhd",
        "nocontainer/fixed.vhd",
        "exports",
        "exports/theirs.vhd",
        "../outside.vhd",
        "exports/../../outside.vhd",
        "/etc/passwd",
    ] {
        let task_id = world.import(PRODUCER, "DFW", from, "x");
        assert_eq!(
            world.failure_of(PRODUCER, "DFW", task_id),
            IMPORT_NOT_FOUND,
            "{from}"
        );
    }
    // The object exists in DFW only: an import in ORD does not find it.
    let task_id = world.import(PRODUCER, "ORD", "exports/fixed.vhd", "x");
    assert_eq!(world.failure_of(PRODUCER, "ORD", task_id), IMPORT_NOT_FOUND);
}

#[test]
fn unsupported_image_properties_fail_the_import() {
    let world = World::new();
    world.put_object("DFW", PRODUCER, "exports/fixed.vhd", &fixture("fixed.vhd"));
    let task_id = world.create_task(
        PRODUCER,
        "DFW",
        "import",
        json!({"import_from": "exports/fixed.vhd", "image_properties": {"name": "n", "image_type": "import"}}),
    );
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", task_id),
        UNSUPPORTED_PROPERTY
    );
}

// ---- export ---------------------------------------------------------------------------------

#[test]
fn the_owner_exports_an_image_as_container_slash_uuid_vhd() {
    let world = World::new();
    let bytes = fixture("fixed.vhd");
    let image_id = world.snapshot_with_data(PRODUCER, &bytes, Some("0"));
    world.container("DFW", PRODUCER, "exports");
    let task_id = world.export(PRODUCER, image_id, "exports");
    assert_eq!(world.run().succeeded, [task_id]);
    let task = world.task(PRODUCER, "DFW", task_id);
    assert_eq!(task.status, TaskStatus::Success);
    assert_eq!(
        task.result,
        Some(json!({"export_location": format!("exports/{image_id}.vhd")}))
    );
    let written = world
        .object("DFW", PRODUCER, &format!("exports/{image_id}.vhd"))
        .unwrap();
    assert_eq!(md5_hex(&written), world.image(image_id).checksum.unwrap());
}

#[test]
fn export_failures_carry_the_rackspace_messages() {
    let world = World::new();
    let bytes = fixture("dynamic.vhd");
    let image_id = world.snapshot_with_data(PRODUCER, &bytes, None);
    let windows = world.snapshot_with_data(PRODUCER, &bytes, Some("4"));
    world
        .engine
        .execute(
            &world.ctx(PRODUCER, "DFW"),
            Command::Image {
                image_id,
                command: ImageCommand::AddMember {
                    member_id: CONSUMER.to_owned(),
                },
            },
        )
        .unwrap();
    world.container("DFW", PRODUCER, "exports");
    world.container("DFW", CONSUMER, "exports");

    let shared = world.export(CONSUMER, image_id, "exports");
    assert_eq!(world.failure_of(CONSUMER, "DFW", shared), NOT_OWNER);
    let unknown = world.export(PRODUCER, Uuid::new_v4(), "exports");
    assert_eq!(world.failure_of(PRODUCER, "DFW", unknown), NOT_OWNER);
    let licensed = world.export(PRODUCER, windows, "exports");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", licensed),
        "Image cannot be exported due to licensing or billing restrictions (com.rackspace__1__options: '4')"
    );
    let no_container = world.export(PRODUCER, image_id, "missing");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", no_container),
        "Container not found. Container: missing"
    );
    let dotted = world.export(PRODUCER, image_id, "my.exports");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", dotted),
        "Invalid container name 'my.exports': it may not contain '/', '?' or '.'."
    );
    let first = world.export(PRODUCER, image_id, "exports");
    assert_eq!(world.run().succeeded, [first]);
    let again = world.export(PRODUCER, image_id, "exports");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", again),
        format!(
            "Object already exists in user's container. Container/Object: exports/{image_id}.vhd"
        )
    );
    // Nothing was written for the consumer.
    assert_eq!(
        world.object("DFW", CONSUMER, &format!("exports/{image_id}.vhd")),
        None
    );
}

#[test]
fn an_image_without_data_or_deactivated_is_not_exported() {
    let world = World::new();
    let image_id = world.snapshot_with_data(PRODUCER, b"x", None);
    world.env.image_data().remove(image_id).unwrap();
    world.container("DFW", PRODUCER, "exports");
    let task_id = world.export(PRODUCER, image_id, "exports");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", task_id),
        "The image has no data to export."
    );
    world
        .engine
        .execute(
            &Context::new(Actor::operator("ops"), region("DFW"), Utc::now()),
            Command::Image {
                image_id,
                command: ImageCommand::Deactivate,
            },
        )
        .unwrap();
    let task_id = world.export(PRODUCER, image_id, "exports");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", task_id),
        "A deactivated image cannot be exported."
    );
}

// ---- between regions ------------------------------------------------------------------------

#[test]
fn round_trip_export_from_dfw_import_into_ord_boots_with_a_new_id_and_the_same_checksum() {
    let world = World::new();
    // DFW: import a VHD, so the image has real bytes, then export it.
    world.put_object("DFW", PRODUCER, "uploads/fixed.vhd", &fixture("fixed.vhd"));
    let import_dfw = world.import(PRODUCER, "DFW", "uploads/fixed.vhd", "web");
    let dfw_image = world.imported(PRODUCER, "DFW", import_dfw);
    world.container("DFW", PRODUCER, "exports");
    let export = world.export(PRODUCER, dfw_image, "exports");
    assert_eq!(world.run().succeeded, [export]);
    let location = world.task(PRODUCER, "DFW", export).result.unwrap()["export_location"]
        .as_str()
        .unwrap()
        .to_owned();

    // The account owner moves the object to ORD's object store (download, upload).
    let exported = world.object("DFW", PRODUCER, &location).unwrap();
    world.put_object("ORD", PRODUCER, "transfer/web.vhd", &exported);
    let import_ord = world.import(PRODUCER, "ORD", "transfer/web.vhd", "web-ord");
    let ord_image = world.imported(PRODUCER, "ORD", import_ord);

    assert_ne!(ord_image, dfw_image);
    let (dfw, ord) = (world.image(dfw_image), world.image(ord_image));
    assert_eq!(ord.region, region("ORD"));
    assert_eq!(ord.checksum, dfw.checksum);
    assert_eq!(ord.size, dfw.size);
    assert!(world.can_boot(PRODUCER, ord_image, "ORD"));
    assert!(!world.can_boot(PRODUCER, dfw_image, "ORD"));
    // Each region's task is listed only in its region.
    assert!(world
        .engine
        .get_task(&world.ctx(PRODUCER, "DFW"), import_ord)
        .is_err());
}

#[test]
fn a_worker_runs_only_the_regions_it_serves() {
    let world = World::new();
    world.put_object("ORD", PRODUCER, "exports/d.vhd", &fixture("dynamic.vhd"));
    let task_id = world.import(PRODUCER, "ORD", "exports/d.vhd", "d");
    let dfw_only = TaskEnvironment::filesystem(
        &world.dir.path().join("objects"),
        &world.dir.path().join("data"),
        &[region("DFW")],
    );
    assert_eq!(
        world
            .engine
            .run_pending_tasks(&dfw_only)
            .unwrap()
            .finished(),
        0
    );
    assert_eq!(
        world.task(PRODUCER, "ORD", task_id).status,
        TaskStatus::Pending
    );
    world.imported(PRODUCER, "ORD", task_id);
}

// ---- restart and expiry ---------------------------------------------------------------------

fn start_as_worker(world: &World, task_id: Uuid, region_name: &str) {
    world
        .engine
        .execute(
            &Context::new(
                Actor::operator("task-worker"),
                region(region_name),
                Utc::now(),
            ),
            Command::Task {
                task_id,
                command: TaskCommand::Start,
            },
        )
        .unwrap();
}

#[test]
fn a_task_left_processing_by_a_stopped_process_is_run_again_after_a_restart() {
    let world = World::new();
    let bytes = fixture("fixed.vhd");
    world.put_object("DFW", PRODUCER, "exports/fixed.vhd", &bytes);
    let import = world.import(PRODUCER, "DFW", "exports/fixed.vhd", "web");
    // The process stopped right after starting the task, and after copying half the data.
    start_as_worker(&world, import, "DFW");
    world
        .env
        .image_data()
        .put(imported_image_id(import), &mut &bytes[..100])
        .unwrap();

    // An export whose object was written before the process stopped.
    let image_id = world.snapshot_with_data(PRODUCER, &bytes, None);
    world.put_object("DFW", PRODUCER, &format!("exports/{image_id}.vhd"), &bytes);
    let export = world.export(PRODUCER, image_id, "exports");
    start_as_worker(&world, export, "DFW");

    let world = world.restart();
    assert_eq!(world.run().finished(), 0, "pending only");
    assert_eq!(
        world.task(PRODUCER, "DFW", import).status,
        TaskStatus::Processing
    );
    let report = world.engine.recover_interrupted_tasks(&world.env).unwrap();
    assert_eq!(sorted(report.succeeded), sorted(vec![import, export]));
    let image = world.image(imported_image_id(import));
    assert_eq!(image.checksum, Some(md5_hex(&bytes)));
    assert_eq!(world.data_of(image.id), Some(bytes));
    assert_eq!(
        world.task(PRODUCER, "DFW", export).result,
        Some(json!({"export_location": format!("exports/{image_id}.vhd")}))
    );
    // Recovering again finds nothing, and writes nothing.
    assert_eq!(
        world
            .engine
            .recover_interrupted_tasks(&world.env)
            .unwrap()
            .finished(),
        0
    );
}

#[test]
fn an_export_recovered_over_someone_elses_object_still_fails() {
    let world = World::new();
    let image_id = world.snapshot_with_data(PRODUCER, &fixture("dynamic.vhd"), None);
    world.put_object(
        "DFW",
        PRODUCER,
        &format!("exports/{image_id}.vhd"),
        b"other bytes",
    );
    let export = world.export(PRODUCER, image_id, "exports");
    start_as_worker(&world, export, "DFW");
    let report = world.engine.recover_interrupted_tasks(&world.env).unwrap();
    assert_eq!(report.failed, [export]);
    assert_eq!(
        world.task(PRODUCER, "DFW", export).message.unwrap(),
        format!(
            "Object already exists in user's container. Container/Object: exports/{image_id}.vhd"
        )
    );
}

#[test]
fn finished_tasks_expire_48_hours_later_and_are_no_longer_shown() {
    let world = World::new();
    let task_id = world.import(PRODUCER, "DFW", "exports/missing.vhd", "x");
    world.failure_of(PRODUCER, "DFW", task_id);
    let task = world.task(PRODUCER, "DFW", task_id);
    let expires_at = task.expires_at.unwrap();
    assert_eq!(expires_at, task.updated_at + Duration::hours(48));

    let mut before = world.ctx(PRODUCER, "DFW");
    before.now = expires_at - Duration::seconds(1);
    assert!(world.engine.get_task(&before, task_id).is_ok());
    let listed = world.engine.list_tasks(&before, "").unwrap();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1);

    let mut after = world.ctx(PRODUCER, "DFW");
    after.now = expires_at;
    assert_eq!(
        world.engine.get_task(&after, task_id).unwrap_err().kind(),
        imgshare_core::ErrorKind::NotFound
    );
    let listed = world.engine.list_tasks(&after, "").unwrap();
    assert_eq!(listed["tasks"], json!([]));
}

// ---- Windows ---------------------------------------------------------------------------------

/// A fixed disk whose first sector is an MBR with one partition of type `kind`.
fn disk_with_partition(kind: u8) -> Vec<u8> {
    let mut sector = vec![0_u8; 4096];
    sector[446 + 4] = kind;
    sector[510] = 0x55;
    sector[511] = 0xAA;
    vhd::fixed_vhd(&sector, [3; 16], *b"tap\0")
}

#[test]
fn windows_images_cannot_be_imported_whatever_says_so() {
    use imgshare_core::transfer::WINDOWS_NOT_IMPORTABLE;
    let world = World::new();
    // The disk says so: an NTFS partition.
    world.put_object(
        "DFW",
        PRODUCER,
        "exports/win.vhd",
        &disk_with_partition(0x07),
    );
    let task_id = world.import(PRODUCER, "DFW", "exports/win.vhd", "win");
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", task_id),
        WINDOWS_NOT_IMPORTABLE
    );
    // The request says so, before the "name only" rule.
    world.put_object("DFW", PRODUCER, "exports/fixed.vhd", &fixture("fixed.vhd"));
    let task_id = world.create_task(
        PRODUCER,
        "DFW",
        "import",
        json!({"import_from": "exports/fixed.vhd",
               "image_properties": {"name": "w", "os_type": "windows"}}),
    );
    assert_eq!(
        world.failure_of(PRODUCER, "DFW", task_id),
        WINDOWS_NOT_IMPORTABLE
    );
    // A Linux partition table imports.
    world.put_object(
        "DFW",
        PRODUCER,
        "exports/linux.vhd",
        &disk_with_partition(0x83),
    );
    let task_id = world.import(PRODUCER, "DFW", "exports/linux.vhd", "linux");
    let image_id = world.imported(PRODUCER, "DFW", task_id);
    assert_eq!(world.image(image_id).status, ImageStatus::Active);
}

#[test]
fn a_failed_import_leaves_no_bytes_not_even_an_interrupted_runs() {
    let world = World::new();
    let import = world.import(PRODUCER, "DFW", "images/missing.vhd", "gone");
    start_as_worker(&world, import, "DFW");
    // What a run that stopped after storing the bytes left behind.
    let leftover = imported_image_id(import);
    world
        .env
        .image_data()
        .put(leftover, &mut &b"half a disk"[..])
        .unwrap();
    let report = world.engine.recover_interrupted_tasks(&world.env).unwrap();
    assert_eq!(report.failed, [import]);
    assert_eq!(
        world.task(PRODUCER, "DFW", import).message.unwrap(),
        IMPORT_NOT_FOUND
    );
    assert_eq!(
        world.data_of(leftover),
        None,
        "removed once the failure is recorded"
    );
}

#[test]
fn a_task_leased_by_a_worker_of_the_engine_is_left_by_the_others() {
    let world = World::new();
    world.put_object("DFW", PRODUCER, "images/disk.vhd", &fixture("fixed.vhd"));
    let import = world.import(PRODUCER, "DFW", "images/disk.vhd", "leased");
    let lease = world.engine.try_lease_task(import).unwrap().unwrap();
    assert!(lease.is_held());
    assert!(world.engine.try_lease_task(import).unwrap().is_none());
    assert_eq!(world.run().finished(), 0);
    assert_eq!(
        world.task(PRODUCER, "DFW", import).status,
        TaskStatus::Pending
    );
    drop(lease);
    assert_eq!(world.run().succeeded, [import]);
}
