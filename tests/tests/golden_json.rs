//! Golden JSON: the documents the engine renders for images, image lists, members and tasks,
//! checked against seed 002 ("Use images" getting started) where it shows them, and snapshotted
//! with expect-test everywhere else. Fixed times and ids keep the snapshots stable; refresh them
//! with `UPDATE_EXPECT=1 cargo test -p imgshare-tests --test golden_json` and review the diff.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use expect_test::{expect, Expect};
use imgshare_core::patch::{PatchDialect, PatchDocument, PatchOp, PatchOpKind};
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, ImportedImage, NewImage,
    Profile, Region, TaskCommand,
};
use imgshare_projection::views;
use imgshare_store::{Engine, Outcome};
use serde_json::{json, Value};
use uuid::Uuid;

/// The Ubuntu 12.04 base image of seed 002.
const UBUNTU: Uuid = Uuid::from_u128(0xc9c7732f_5129_4930_a835_3781255fb1e2);
/// The pending import task of seed 002.
const PENDING_IMPORT: Uuid = Uuid::from_u128(0xfc29a67c_ad76_49bc_a317_a5f38dcb44c0);
/// The successful import task of seed 002, and the image it created.
const DONE_IMPORT: Uuid = Uuid::from_u128(0xd8dd8c24_2534_473c_881f_9097bc784068);
const IMPORTED: Uuid = Uuid::from_u128(0x1d944ab7_6748_4f3c_b7e2_3553bf006677);
/// The export task of seed 002 and the image it exports.
const EXPORT: Uuid = Uuid::from_u128(0x7bdc8ede_9098_4d79_9477_697f586cb333);
const EXPORTED_IMAGE: Uuid = Uuid::from_u128(0xca5e7f11_5d57_4dd7_8ace_03ab647fe6c6);
/// Our own ids, for documents the seed does not show.
const SNAPSHOT: Uuid = Uuid::from_u128(0x5000_0000_0000_4000_8000_0000_0000_0001);
const FAILED_TASK: Uuid = Uuid::from_u128(0x7000_0000_0000_4000_8000_0000_0000_0002);
const GLANCE_IMAGE: Uuid = Uuid::from_u128(0x6000_0000_0000_4000_8000_0000_0000_0003);

/// The seed's account ("owner": "00000123").
const SEED_ACCOUNT: &str = "00000123";
const PRODUCER: &str = "111111";
const CONSUMER: &str = "222222";
const THIRD: &str = "333333";

const UBUNTU_NAME: &str = "Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)";

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn dfw() -> Region {
    Region::parse("DFW").unwrap_or_else(|error| panic!("{error}"))
}

fn ctx(actor: &Actor, now: DateTime<Utc>) -> Context {
    Context::new(actor.clone(), dfw(), now)
}

fn admin(tenant: &str) -> Actor {
    Actor::tenant(tenant, &format!("admin-{tenant}"), &["cloudImages:admin"])
}

fn observer(tenant: &str) -> Actor {
    Actor::tenant(
        tenant,
        &format!("observer-{tenant}"),
        &["cloudImages:observer"],
    )
}

fn image_cmd(
    engine: &Engine,
    actor: &Actor,
    now: DateTime<Utc>,
    image_id: Uuid,
    command: ImageCommand,
) -> Outcome {
    engine
        .execute(&ctx(actor, now), Command::Image { image_id, command })
        .unwrap_or_else(|error| panic!("image command at {now} failed: {error:?}"))
}

fn task_cmd(
    engine: &Engine,
    actor: &Actor,
    now: DateTime<Utc>,
    task_id: Uuid,
    command: TaskCommand,
) -> Outcome {
    engine
        .execute(&ctx(actor, now), Command::Task { task_id, command })
        .unwrap_or_else(|error| panic!("task command at {now} failed: {error:?}"))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|error| panic!("{error}"))
}

/// Snapshot the whole document and check every `*_at` date in it.
fn check(value: &Value, expected: Expect) {
    assert_dates(value);
    expected.assert_eq(&pretty(value));
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn key_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, without a regex engine.
fn is_api_time(text: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    text.len() == SHAPE.len()
        && text.bytes().zip(SHAPE).all(|(byte, &want)| match want {
            b'd' => byte.is_ascii_digit(),
            literal => byte == literal,
        })
}

/// Every string under a key ending in `_at`, anywhere in the document, is an API time.
/// Returns how many were checked, so callers can make sure the walk saw something.
fn assert_dates(value: &Value) -> usize {
    fn walk(value: &Value, path: &str, seen: &mut usize) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let child_path = format!("{path}.{key}");
                    if key.ends_with("_at") {
                        if let Value::String(text) = child {
                            assert!(
                                is_api_time(text),
                                "{child_path} = {text:?} is not YYYY-MM-DDThh:mm:ssZ"
                            );
                            *seen += 1;
                        }
                    }
                    walk(child, &child_path, seen);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{index}]"), seen);
                }
            }
            _ => {}
        }
    }
    let mut seen = 0;
    walk(value, "$", &mut seen);
    assert!(seen > 0, "no *_at dates in {value}");
    seen
}

#[test]
fn the_date_shape_check_rejects_near_misses() {
    assert!(is_api_time("2014-03-19T16:28:33Z"));
    for bad in [
        "2014-03-19T16:28:33.123Z",
        "2014-03-19T16:28:33+00:00",
        "2014-03-19 16:28:33Z",
        "2014-3-19T16:28:33Z",
        "2014-03-19T16:28:33",
        "",
    ] {
        assert!(!is_api_time(bad), "{bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// (a) The seed-002 base image.
// ---------------------------------------------------------------------------------------------

/// The keys of "Get details for an image with cURL response" in seed 002.
const SEED_IMAGE_KEYS: &[&str] = &[
    "auto_disk_config",
    "cache_in_nova",
    "checksum",
    "com.rackspace__1__build_core",
    "com.rackspace__1__build_managed",
    "com.rackspace__1__build_rackconnect",
    "com.rackspace__1__options",
    "com.rackspace__1__platform_target",
    "com.rackspace__1__release_build_date",
    "com.rackspace__1__release_id",
    "com.rackspace__1__release_version",
    "com.rackspace__1__source",
    "com.rackspace__1__visible_core",
    "com.rackspace__1__visible_managed",
    "com.rackspace__1__visible_rackconnect",
    "container_format",
    "created_at",
    "disk_format",
    "file",
    "id",
    "image_type",
    "min_disk",
    "min_ram",
    "name",
    "org.openstack__1__architecture",
    "org.openstack__1__os_distro",
    "org.openstack__1__os_version",
    "os_distro",
    "os_type",
    "protected",
    "schema",
    "self",
    "size",
    "status",
    "tags",
    "updated_at",
    "visibility",
    "vm_mode",
];

/// Seed 002, "Get details for an image with cURL response", verbatim.
fn seed_ubuntu_json() -> Value {
    json!({
       "auto_disk_config": "disabled",
       "cache_in_nova": "True",
       "checksum": "acd9be13a17af33ec8f66ac5b1afc44a",
       "com.rackspace__1__build_core": "1",
       "com.rackspace__1__build_managed": "1",
       "com.rackspace__1__build_rackconnect": "1",
       "com.rackspace__1__options": "0",
       "com.rackspace__1__platform_target": "PublicCloud",
       "com.rackspace__1__release_build_date": "2014-03-19_10-50-10",
       "com.rackspace__1__release_id": "1003",
       "com.rackspace__1__release_version": "3",
       "com.rackspace__1__source": "kickstart",
       "com.rackspace__1__visible_core": "1",
       "com.rackspace__1__visible_managed": "0",
       "com.rackspace__1__visible_rackconnect": "1",
       "container_format": "ovf",
       "created_at": "2014-03-19T16:28:33Z",
       "disk_format": "vhd",
       "file": "/v2/images/c9c7732f-5129-4930-a835-3781255fb1e2/file",
       "id": "c9c7732f-5129-4930-a835-3781255fb1e2",
       "image_type": "base",
       "min_disk": 20,
       "min_ram": 512,
       "name": "Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)",
       "org.openstack__1__architecture": "x64",
       "org.openstack__1__os_distro": "com.ubuntu",
       "org.openstack__1__os_version": "12.04",
       "os_distro": "ubuntu",
       "os_type": "linux",
       "protected": false,
       "schema": "/v2/schemas/image",
       "self": "/v2/images/c9c7732f-5129-4930-a835-3781255fb1e2",
       "size": 647449489,
       "status": "active",
       "tags": [],
       "updated_at": "2014-03-26T21:44:54Z",
       "visibility": "public",
       "vm_mode": "hvm"
    })
}

fn ubuntu_properties() -> BTreeMap<String, String> {
    [
        ("auto_disk_config", "disabled"),
        ("cache_in_nova", "True"),
        ("com.rackspace__1__build_core", "1"),
        ("com.rackspace__1__build_managed", "1"),
        ("com.rackspace__1__build_rackconnect", "1"),
        ("com.rackspace__1__options", "0"),
        ("com.rackspace__1__platform_target", "PublicCloud"),
        (
            "com.rackspace__1__release_build_date",
            "2014-03-19_10-50-10",
        ),
        ("com.rackspace__1__release_id", "1003"),
        ("com.rackspace__1__release_version", "3"),
        ("com.rackspace__1__source", "kickstart"),
        ("com.rackspace__1__visible_core", "1"),
        ("com.rackspace__1__visible_managed", "0"),
        ("com.rackspace__1__visible_rackconnect", "1"),
        ("org.openstack__1__architecture", "x64"),
        ("org.openstack__1__os_distro", "com.ubuntu"),
        ("org.openstack__1__os_version", "12.04"),
        ("os_distro", "ubuntu"),
        ("os_type", "linux"),
        ("vm_mode", "hvm"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// A one-op v2.1 patch document.
fn replace(path: &str, value: Value) -> PatchDocument {
    PatchDocument {
        dialect: PatchDialect::V2_1,
        ops: vec![PatchOp {
            kind: PatchOpKind::Replace,
            path: path.to_owned(),
            index: None,
            value: Some(value),
        }],
    }
}

/// Publishes the seed's Ubuntu base image in DFW: registered at the seed's `created_at`, then
/// touched by the provider at the seed's `updated_at` (a name replace with the same name).
fn publish_ubuntu(engine: &Engine) {
    let ops = Actor::operator("ops");
    let image = NewImage {
        name: Some(UBUNTU_NAME.to_owned()),
        container_format: Some("ovf".to_owned()),
        disk_format: Some("vhd".to_owned()),
        min_disk: 20,
        min_ram: 512,
        properties: ubuntu_properties(),
        data: Some(ImageActivated {
            size: 647_449_489,
            checksum: "acd9be13a17af33ec8f66ac5b1afc44a".to_owned(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }),
        ..NewImage::default()
    };
    image_cmd(
        engine,
        &ops,
        at(2014, 3, 19, 16, 28, 33),
        UBUNTU,
        ImageCommand::Register {
            origin: ImageOrigin::Base,
            image,
        },
    );
    image_cmd(
        engine,
        &ops,
        at(2014, 3, 26, 21, 44, 54),
        UBUNTU,
        ImageCommand::Update(replace("name", json!(UBUNTU_NAME))),
    );
}

#[test]
fn seed_002_base_image_has_exactly_the_seed_keys_and_values() {
    let engine = Engine::in_memory().unwrap();
    publish_ubuntu(&engine);
    let reader = ctx(&observer(SEED_ACCOUNT), at(2014, 4, 1, 0, 0, 0));
    let view = engine.image_view(&reader, UBUNTU).unwrap();

    assert_eq!(keys(&view), key_set(SEED_IMAGE_KEYS));
    assert_eq!(keys(&view), keys(&seed_ubuntu_json()));
    assert_eq!(view["image_type"], "base");
    assert_eq!(view["visibility"], "public");
    assert!(
        view.get("owner").is_none(),
        "Rackspace omits null base attributes"
    );
    assert!(view.get("virtual_size").is_none());
    assert_eq!(view, seed_ubuntu_json());
    // Keys come out sorted, as python -mjson.tool prints the seed.
    let order: Vec<String> = view.as_object().unwrap().keys().cloned().collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    check(
        &view,
        expect![[r#"
            {
              "auto_disk_config": "disabled",
              "cache_in_nova": "True",
              "checksum": "acd9be13a17af33ec8f66ac5b1afc44a",
              "com.rackspace__1__build_core": "1",
              "com.rackspace__1__build_managed": "1",
              "com.rackspace__1__build_rackconnect": "1",
              "com.rackspace__1__options": "0",
              "com.rackspace__1__platform_target": "PublicCloud",
              "com.rackspace__1__release_build_date": "2014-03-19_10-50-10",
              "com.rackspace__1__release_id": "1003",
              "com.rackspace__1__release_version": "3",
              "com.rackspace__1__source": "kickstart",
              "com.rackspace__1__visible_core": "1",
              "com.rackspace__1__visible_managed": "0",
              "com.rackspace__1__visible_rackconnect": "1",
              "container_format": "ovf",
              "created_at": "2014-03-19T16:28:33Z",
              "disk_format": "vhd",
              "file": "/v2/images/c9c7732f-5129-4930-a835-3781255fb1e2/file",
              "id": "c9c7732f-5129-4930-a835-3781255fb1e2",
              "image_type": "base",
              "min_disk": 20,
              "min_ram": 512,
              "name": "Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)",
              "org.openstack__1__architecture": "x64",
              "org.openstack__1__os_distro": "com.ubuntu",
              "org.openstack__1__os_version": "12.04",
              "os_distro": "ubuntu",
              "os_type": "linux",
              "protected": false,
              "schema": "/v2/schemas/image",
              "self": "/v2/images/c9c7732f-5129-4930-a835-3781255fb1e2",
              "size": 647449489,
              "status": "active",
              "tags": [],
              "updated_at": "2014-03-26T21:44:54Z",
              "visibility": "public",
              "vm_mode": "hvm"
            }"#]],
    );
}

// ---------------------------------------------------------------------------------------------
// (b) The image list page.
// ---------------------------------------------------------------------------------------------

fn snapshot_image(name: &str, tags: &[&str]) -> NewImage {
    NewImage {
        name: Some(name.to_owned()),
        container_format: Some("ovf".to_owned()),
        disk_format: Some("vhd".to_owned()),
        min_disk: 20,
        min_ram: 512,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        data: Some(ImageActivated {
            size: 2_147_483_648,
            checksum: "0123456789abcdef0123456789abcdef".to_owned(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }),
        ..NewImage::default()
    }
}

fn register_snapshot(
    engine: &Engine,
    owner: &Actor,
    now: DateTime<Utc>,
    name: &str,
    tags: &[&str],
) {
    image_cmd(
        engine,
        owner,
        now,
        SNAPSHOT,
        ImageCommand::Register {
            origin: ImageOrigin::Snapshot {
                server_id: "b8e5a3e5-3d0b-4c89-a3c1-0c2b2f0d4a11".to_owned(),
            },
            image: snapshot_image(name, tags),
        },
    );
}

#[test]
fn image_list_pages_have_images_first_schema_and_next_when_full() {
    let engine = Engine::in_memory().unwrap();
    publish_ubuntu(&engine);
    let reader = ctx(&observer(SEED_ACCOUNT), at(2014, 4, 1, 0, 0, 0));

    let page = engine.list_images(&reader, "").unwrap();
    assert_eq!(keys(&page), key_set(&["first", "images", "schema"]));
    assert_eq!(page["first"], "/v2/images");
    assert_eq!(page["schema"], "/v2/schemas/images");
    // Each entry is the same document as GET /v2/images/{id}.
    assert_eq!(page["images"], json!([seed_ubuntu_json()]));

    // A full page links to the next one with the last id as marker.
    register_snapshot(
        &engine,
        &admin(SEED_ACCOUNT),
        at(2014, 3, 30, 9, 0, 0),
        "my-snapshot",
        &[],
    );
    let page = engine.list_images(&reader, "limit=1").unwrap();
    assert_eq!(keys(&page), key_set(&["first", "images", "next", "schema"]));
    let last = page["images"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(page["next"], format!("/v2/images?limit=1&marker={last}"));
    assert_eq!(page["first"], "/v2/images?limit=1");
    check(
        &page,
        expect![[r#"
            {
              "images": [
                {
                  "checksum": "0123456789abcdef0123456789abcdef",
                  "container_format": "ovf",
                  "created_at": "2014-03-30T09:00:00Z",
                  "disk_format": "vhd",
                  "file": "/v2/images/50000000-0000-4000-8000-000000000001/file",
                  "id": "50000000-0000-4000-8000-000000000001",
                  "image_type": "snapshot",
                  "instance_uuid": "b8e5a3e5-3d0b-4c89-a3c1-0c2b2f0d4a11",
                  "min_disk": 20,
                  "min_ram": 512,
                  "name": "my-snapshot",
                  "owner": "00000123",
                  "protected": false,
                  "schema": "/v2/schemas/image",
                  "self": "/v2/images/50000000-0000-4000-8000-000000000001",
                  "size": 2147483648,
                  "status": "active",
                  "tags": [],
                  "updated_at": "2014-03-30T09:00:00Z",
                  "user_id": "admin-00000123",
                  "visibility": "private"
                }
              ],
              "first": "/v2/images?limit=1",
              "schema": "/v2/schemas/images",
              "next": "/v2/images?limit=1&marker=50000000-0000-4000-8000-000000000001"
            }"#]],
    );

    // The second page is the base image; it is full again, so it still links on (as Glance
    // does); a page that is not full has no `next`.
    let second = engine
        .list_images(&reader, &format!("limit=1&marker={last}"))
        .unwrap();
    assert_eq!(second["images"], json!([seed_ubuntu_json()]));
    assert_eq!(second["first"], "/v2/images?limit=1");
    assert_eq!(
        second["next"],
        format!("/v2/images?limit=1&marker={UBUNTU}")
    );
    let end = engine
        .list_images(&reader, &format!("limit=1&marker={UBUNTU}"))
        .unwrap();
    assert_eq!(end["images"], json!([]));
    assert!(end.get("next").is_none(), "{end}");
    let all = engine.list_images(&reader, "limit=3").unwrap();
    assert_eq!(all["images"].as_array().unwrap().len(), 2);
    assert!(all.get("next").is_none(), "{all}");
}

// ---------------------------------------------------------------------------------------------
// (c) A producer's snapshot after a PATCH, shared with a consumer.
// ---------------------------------------------------------------------------------------------

#[test]
fn shared_snapshot_after_patch_shows_private_tags_and_links() {
    let engine = Engine::in_memory().unwrap();
    let producer = admin(PRODUCER);
    register_snapshot(
        &engine,
        &producer,
        at(2014, 2, 26, 12, 0, 0),
        "web-server",
        &["web", "prod", "web"],
    );
    image_cmd(
        &engine,
        &producer,
        at(2014, 2, 26, 12, 1, 0),
        SNAPSHOT,
        ImageCommand::AddMember {
            member_id: CONSUMER.to_owned(),
        },
    );
    let patched = image_cmd(
        &engine,
        &producer,
        at(2014, 2, 26, 12, 2, 0),
        SNAPSHOT,
        ImageCommand::Update(replace("name", json!("My Favorite Ubuntu 12.04"))),
    );
    assert_eq!(patched.events.len(), 1);

    let view = engine
        .image_view(&ctx(&producer, at(2014, 2, 26, 12, 3, 0)), SNAPSHOT)
        .unwrap();
    assert_eq!(view["status"], "active");
    assert_eq!(
        view["visibility"], "private",
        "Rackspace shows a shared image as private"
    );
    assert_eq!(view["name"], "My Favorite Ubuntu 12.04");
    assert_eq!(view["tags"], json!(["prod", "web"]));
    assert_eq!(view["self"], format!("/v2/images/{SNAPSHOT}"));
    assert_eq!(view["file"], format!("/v2/images/{SNAPSHOT}/file"));
    assert_eq!(view["schema"], "/v2/schemas/image");
    assert_eq!(view["owner"], PRODUCER);
    check(
        &view,
        expect![[r#"
            {
              "checksum": "0123456789abcdef0123456789abcdef",
              "container_format": "ovf",
              "created_at": "2014-02-26T12:00:00Z",
              "disk_format": "vhd",
              "file": "/v2/images/50000000-0000-4000-8000-000000000001/file",
              "id": "50000000-0000-4000-8000-000000000001",
              "image_type": "snapshot",
              "instance_uuid": "b8e5a3e5-3d0b-4c89-a3c1-0c2b2f0d4a11",
              "min_disk": 20,
              "min_ram": 512,
              "name": "My Favorite Ubuntu 12.04",
              "owner": "111111",
              "protected": false,
              "schema": "/v2/schemas/image",
              "self": "/v2/images/50000000-0000-4000-8000-000000000001",
              "size": 2147483648,
              "status": "active",
              "tags": [
                "prod",
                "web"
              ],
              "updated_at": "2014-02-26T12:02:00Z",
              "user_id": "admin-111111",
              "visibility": "private"
            }"#]],
    );

    // The pending consumer GETs the very same document.
    let consumer_view = engine
        .image_view(
            &ctx(&observer(CONSUMER), at(2014, 2, 26, 12, 3, 0)),
            SNAPSHOT,
        )
        .unwrap();
    assert_eq!(consumer_view, view);
}

// ---------------------------------------------------------------------------------------------
// (d) Members.
// ---------------------------------------------------------------------------------------------

#[test]
fn member_create_response_and_members_list() {
    let engine = Engine::in_memory().unwrap();
    let producer = admin(PRODUCER);
    register_snapshot(
        &engine,
        &producer,
        at(2014, 2, 26, 12, 0, 0),
        "web-server",
        &[],
    );
    let added_at = at(2014, 2, 26, 12, 5, 0);
    let created = image_cmd(
        &engine,
        &producer,
        added_at,
        SNAPSHOT,
        ImageCommand::AddMember {
            member_id: CONSUMER.to_owned(),
        },
    );
    assert_eq!(created.events.len(), 1);
    // The create response is the member document, read back right after the command.
    let response = engine
        .member_view(&ctx(&producer, added_at), SNAPSHOT, CONSUMER)
        .unwrap();
    assert_eq!(
        keys(&response),
        key_set(&[
            "created_at",
            "image_id",
            "member_id",
            "schema",
            "status",
            "updated_at"
        ])
    );
    check(
        &response,
        expect![[r#"
            {
              "created_at": "2014-02-26T12:05:00Z",
              "image_id": "50000000-0000-4000-8000-000000000001",
              "member_id": "222222",
              "schema": "/v2/schemas/member",
              "status": "pending",
              "updated_at": "2014-02-26T12:05:00Z"
            }"#]],
    );

    image_cmd(
        &engine,
        &producer,
        at(2014, 2, 26, 12, 6, 0),
        SNAPSHOT,
        ImageCommand::AddMember {
            member_id: THIRD.to_owned(),
        },
    );
    image_cmd(
        &engine,
        &admin(CONSUMER),
        at(2014, 2, 26, 12, 7, 0),
        SNAPSHOT,
        ImageCommand::SetMemberStatus {
            member_id: CONSUMER.to_owned(),
            status: "accepted".to_owned(),
        },
    );
    let owner_list = engine
        .members_view(&ctx(&producer, at(2014, 2, 26, 12, 8, 0)), SNAPSHOT)
        .unwrap();
    assert_eq!(keys(&owner_list), key_set(&["members", "schema"]));
    assert_eq!(owner_list["schema"], "/v2/schemas/members");
    check(
        &owner_list,
        expect![[r#"
            {
              "members": [
                {
                  "created_at": "2014-02-26T12:05:00Z",
                  "image_id": "50000000-0000-4000-8000-000000000001",
                  "member_id": "222222",
                  "schema": "/v2/schemas/member",
                  "status": "accepted",
                  "updated_at": "2014-02-26T12:07:00Z"
                },
                {
                  "created_at": "2014-02-26T12:06:00Z",
                  "image_id": "50000000-0000-4000-8000-000000000001",
                  "member_id": "333333",
                  "schema": "/v2/schemas/member",
                  "status": "pending",
                  "updated_at": "2014-02-26T12:06:00Z"
                }
              ],
              "schema": "/v2/schemas/members"
            }"#]],
    );

    // A member sees only its own row.
    let consumer_list = engine
        .members_view(
            &ctx(&observer(CONSUMER), at(2014, 2, 26, 12, 8, 0)),
            SNAPSHOT,
        )
        .unwrap();
    assert_eq!(
        consumer_list,
        json!({"members": [owner_list["members"][0].clone()], "schema": "/v2/schemas/members"})
    );
}

// ---------------------------------------------------------------------------------------------
// (e) Tasks.
// ---------------------------------------------------------------------------------------------

fn seed_import_input() -> Value {
    json!({
        "image_properties": {"name": "My excellent custom image"},
        "import_from": "exports/my-excellent-image.vhd"
    })
}

/// Creates a task as the seed's account; returns the `POST /v2/tasks` response, rendered from
/// the command's outcome, after checking that a GET right away answers the same document.
fn create_task(
    engine: &Engine,
    task_id: Uuid,
    now: DateTime<Utc>,
    task_type: &str,
    input: Value,
) -> Value {
    let owner = admin(SEED_ACCOUNT);
    let outcome = task_cmd(
        engine,
        &owner,
        now,
        task_id,
        TaskCommand::Create {
            task_type: task_type.to_owned(),
            input,
        },
    );
    assert_eq!(outcome.events.len(), 1);
    let task = outcome
        .task()
        .unwrap_or_else(|| panic!("task create answers a task: {outcome:?}"));
    let response = views::task(engine.profile(), task);
    let got = engine
        .task_view(&ctx(&owner, now), task_id)
        .unwrap_or_else(|error| panic!("GET task: {error:?}"));
    assert_eq!(got, response);
    response
}

const TASK_KEYS_PENDING: &[&str] = &[
    "created_at",
    "id",
    "input",
    "message",
    "owner",
    "schema",
    "self",
    "status",
    "type",
    "updated_at",
];

#[test]
fn seed_002_pending_import_task() {
    let engine = Engine::in_memory().unwrap();
    let created = at(2014, 2, 26, 2, 58, 46);
    let view = create_task(
        &engine,
        PENDING_IMPORT,
        created,
        "import",
        seed_import_input(),
    );
    assert_eq!(keys(&view), key_set(TASK_KEYS_PENDING));
    // "Import an image response" and "Get details for a task response (pending)", verbatim.
    assert_eq!(
        view,
        json!({
            "created_at": "2014-02-26T02:58:46Z",
            "id": "fc29a67c-ad76-49bc-a317-a5f38dcb44c0",
            "input": {
                "image_properties": {
                    "name": "My excellent custom image"
                },
                "import_from": "exports/my-excellent-image.vhd"
            },
            "message": "None",
            "owner": "00000123",
            "schema": "/v2/schemas/task",
            "self": "/v2/tasks/fc29a67c-ad76-49bc-a317-a5f38dcb44c0",
            "status": "pending",
            "type": "import",
            "updated_at": "2014-02-26T02:58:46Z"
        })
    );
    check(
        &view,
        expect![[r#"
            {
              "created_at": "2014-02-26T02:58:46Z",
              "id": "fc29a67c-ad76-49bc-a317-a5f38dcb44c0",
              "input": {
                "image_properties": {
                  "name": "My excellent custom image"
                },
                "import_from": "exports/my-excellent-image.vhd"
              },
              "message": "None",
              "owner": "00000123",
              "schema": "/v2/schemas/task",
              "self": "/v2/tasks/fc29a67c-ad76-49bc-a317-a5f38dcb44c0",
              "status": "pending",
              "type": "import",
              "updated_at": "2014-02-26T02:58:46Z"
            }"#]],
    );
}

#[test]
fn seed_002_successful_import_task_and_its_image() {
    let engine = Engine::in_memory().unwrap();
    let worker = Actor::operator("worker");
    create_task(
        &engine,
        DONE_IMPORT,
        at(2014, 2, 26, 3, 2, 23),
        "import",
        seed_import_input(),
    );
    task_cmd(
        &engine,
        &worker,
        at(2014, 2, 26, 3, 3, 0),
        DONE_IMPORT,
        TaskCommand::Start,
    );
    let finished = at(2014, 2, 26, 3, 28, 18);
    let succeeded = task_cmd(
        &engine,
        &worker,
        finished,
        DONE_IMPORT,
        TaskCommand::Succeed {
            result: json!({"image_id": IMPORTED.to_string()}),
            imported_image: Some(ImportedImage {
                image_id: IMPORTED,
                name: Some("My excellent custom image".to_owned()),
                data: ImageActivated {
                    size: 1_073_741_824,
                    checksum: "fedcba9876543210fedcba9876543210".to_owned(),
                    virtual_size: None,
                    os_hash_algo: None,
                    os_hash_value: None,
                },
            }),
        },
    );
    // The task's success and the image's registration and activation, in one commit.
    assert_eq!(succeeded.events.len(), 3);

    let reader = ctx(&admin(SEED_ACCOUNT), finished);
    let view = engine.task_view(&reader, DONE_IMPORT).unwrap();
    let mut keys_done = key_set(TASK_KEYS_PENDING);
    keys_done.extend(key_set(&["expires_at", "result"]));
    assert_eq!(keys(&view), keys_done);
    assert_eq!(
        view["expires_at"],
        (finished + Duration::hours(48))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    );
    // "Get details for an import task response (success)", verbatim.
    assert_eq!(
        view,
        json!({
            "created_at": "2014-02-26T03:02:23Z",
            "expires_at": "2014-02-28T03:28:18Z",
            "id": "d8dd8c24-2534-473c-881f-9097bc784068",
            "input": {
                "image_properties": {
                    "name": "My excellent custom image"
                },
                "import_from": "exports/my-excellent-image.vhd"
            },
            "message": "None",
            "owner": "00000123",
            "result": {
                "image_id": "1d944ab7-6748-4f3c-b7e2-3553bf006677"
            },
            "schema": "/v2/schemas/task",
            "self": "/v2/tasks/d8dd8c24-2534-473c-881f-9097bc784068",
            "status": "success",
            "type": "import",
            "updated_at": "2014-02-26T03:28:18Z"
        })
    );
    check(
        &view,
        expect![[r#"
            {
              "created_at": "2014-02-26T03:02:23Z",
              "expires_at": "2014-02-28T03:28:18Z",
              "id": "d8dd8c24-2534-473c-881f-9097bc784068",
              "input": {
                "image_properties": {
                  "name": "My excellent custom image"
                },
                "import_from": "exports/my-excellent-image.vhd"
              },
              "message": "None",
              "owner": "00000123",
              "result": {
                "image_id": "1d944ab7-6748-4f3c-b7e2-3553bf006677"
              },
              "schema": "/v2/schemas/task",
              "self": "/v2/tasks/d8dd8c24-2534-473c-881f-9097bc784068",
              "status": "success",
              "type": "import",
              "updated_at": "2014-02-26T03:28:18Z"
            }"#]],
    );

    // The imported image (docs/spec/rackspace.md §3.9).
    let image = engine.image_view(&reader, IMPORTED).unwrap();
    assert_eq!(image["image_type"], "import");
    assert_eq!(image["visibility"], "private");
    assert_eq!(image["auto_disk_config"], "False");
    assert_eq!(image["owner"], SEED_ACCOUNT);
    check(
        &image,
        expect![[r#"
            {
              "auto_disk_config": "False",
              "checksum": "fedcba9876543210fedcba9876543210",
              "container_format": "ovf",
              "created_at": "2014-02-26T03:28:18Z",
              "disk_format": "vhd",
              "file": "/v2/images/1d944ab7-6748-4f3c-b7e2-3553bf006677/file",
              "id": "1d944ab7-6748-4f3c-b7e2-3553bf006677",
              "image_type": "import",
              "min_disk": 0,
              "min_ram": 0,
              "name": "My excellent custom image",
              "os_type": "linux",
              "owner": "00000123",
              "protected": false,
              "schema": "/v2/schemas/image",
              "self": "/v2/images/1d944ab7-6748-4f3c-b7e2-3553bf006677",
              "size": 1073741824,
              "status": "active",
              "tags": [],
              "updated_at": "2014-02-26T03:28:18Z",
              "user_id": "admin-00000123",
              "visibility": "private"
            }"#]],
    );
}

#[test]
fn seed_002_successful_export_task() {
    let engine = Engine::in_memory().unwrap();
    let worker = Actor::operator("worker");
    create_task(
        &engine,
        EXPORT,
        at(2014, 2, 26, 2, 1, 13),
        "export",
        json!({"image_uuid": EXPORTED_IMAGE.to_string(), "receiving_swift_container": "exports"}),
    );
    task_cmd(
        &engine,
        &worker,
        at(2014, 2, 26, 2, 2, 0),
        EXPORT,
        TaskCommand::Start,
    );
    let finished = at(2014, 2, 26, 2, 16, 50);
    task_cmd(
        &engine,
        &worker,
        finished,
        EXPORT,
        TaskCommand::Succeed {
            result: json!({"export_location": format!("exports/{EXPORTED_IMAGE}.vhd")}),
            imported_image: None,
        },
    );
    let view = engine
        .task_view(&ctx(&admin(SEED_ACCOUNT), finished), EXPORT)
        .unwrap();
    assert_dates(&view);
    // "Get details for an export task with cURL response (success)", verbatim.
    assert_eq!(
        view,
        json!({
            "created_at": "2014-02-26T02:01:13Z",
            "expires_at": "2014-02-28T02:16:50Z",
            "id": "7bdc8ede-9098-4d79-9477-697f586cb333",
            "input":{
                "image_uuid": "ca5e7f11-5d57-4dd7-8ace-03ab647fe6c6",
                "receiving_swift_container": "exports"
            },
            "message": "None",
            "owner": "00000123",
            "result":{
                "export_location": "exports/ca5e7f11-5d57-4dd7-8ace-03ab647fe6c6.vhd"
            },
            "schema": "/v2/schemas/task",
            "self": "/v2/tasks/7bdc8ede-9098-4d79-9477-697f586cb333",
            "status": "success",
            "type": "export",
            "updated_at": "2014-02-26T02:16:50Z"
        })
    );
}

#[test]
fn failed_import_task_shows_its_message_and_expiry() {
    let engine = Engine::in_memory().unwrap();
    let worker = Actor::operator("worker");
    create_task(
        &engine,
        FAILED_TASK,
        at(2014, 2, 26, 4, 0, 0),
        "import",
        json!({
            "image_properties": {"name": "missing"},
            "import_from": "exports/missing.vhd"
        }),
    );
    task_cmd(
        &engine,
        &worker,
        at(2014, 2, 26, 4, 0, 30),
        FAILED_TASK,
        TaskCommand::Start,
    );
    let failed = at(2014, 2, 26, 4, 1, 0);
    task_cmd(
        &engine,
        &worker,
        failed,
        FAILED_TASK,
        TaskCommand::Fail {
            message: "Image not found for import. Possible invalid location".to_owned(),
        },
    );
    let view = engine
        .task_view(&ctx(&admin(SEED_ACCOUNT), failed), FAILED_TASK)
        .unwrap();
    assert_eq!(view["status"], "failure");
    assert_eq!(
        view["message"],
        "Image not found for import. Possible invalid location"
    );
    assert!(view.get("result").is_none(), "no result on failure");
    assert_eq!(view["expires_at"], "2014-02-28T04:01:00Z");
    check(
        &view,
        expect![[r#"
            {
              "created_at": "2014-02-26T04:00:00Z",
              "expires_at": "2014-02-28T04:01:00Z",
              "id": "70000000-0000-4000-8000-000000000002",
              "input": {
                "image_properties": {
                  "name": "missing"
                },
                "import_from": "exports/missing.vhd"
              },
              "message": "Image not found for import. Possible invalid location",
              "owner": "00000123",
              "schema": "/v2/schemas/task",
              "self": "/v2/tasks/70000000-0000-4000-8000-000000000002",
              "status": "failure",
              "type": "import",
              "updated_at": "2014-02-26T04:01:00Z"
            }"#]],
    );
}

// ---------------------------------------------------------------------------------------------
// (f) The task list.
// ---------------------------------------------------------------------------------------------

#[test]
fn task_list_entries_have_no_input_result_or_message() {
    let engine = Engine::in_memory().unwrap();
    let worker = Actor::operator("worker");
    create_task(
        &engine,
        EXPORT,
        at(2014, 2, 26, 2, 1, 13),
        "export",
        json!({"image_uuid": EXPORTED_IMAGE.to_string(), "receiving_swift_container": "exports"}),
    );
    task_cmd(
        &engine,
        &worker,
        at(2014, 2, 26, 2, 2, 0),
        EXPORT,
        TaskCommand::Start,
    );
    task_cmd(
        &engine,
        &worker,
        at(2014, 2, 26, 2, 16, 50),
        EXPORT,
        TaskCommand::Succeed {
            result: json!({"export_location": format!("exports/{EXPORTED_IMAGE}.vhd")}),
            imported_image: None,
        },
    );
    create_task(
        &engine,
        PENDING_IMPORT,
        at(2014, 2, 26, 2, 58, 46),
        "import",
        seed_import_input(),
    );
    let page = engine
        .list_tasks(&ctx(&admin(SEED_ACCOUNT), at(2014, 2, 26, 5, 0, 0)), "")
        .unwrap();
    let tasks = page["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    for task in tasks {
        for hidden in ["input", "result", "message"] {
            assert!(task.get(hidden).is_none(), "{hidden} in {task}");
        }
    }
    check(
        &page,
        expect![[r#"
        {
          "tasks": [
            {
              "created_at": "2014-02-26T02:58:46Z",
              "id": "fc29a67c-ad76-49bc-a317-a5f38dcb44c0",
              "owner": "00000123",
              "schema": "/v2/schemas/task",
              "self": "/v2/tasks/fc29a67c-ad76-49bc-a317-a5f38dcb44c0",
              "status": "pending",
              "type": "import",
              "updated_at": "2014-02-26T02:58:46Z"
            },
            {
              "created_at": "2014-02-26T02:01:13Z",
              "expires_at": "2014-02-28T02:16:50Z",
              "id": "7bdc8ede-9098-4d79-9477-697f586cb333",
              "owner": "00000123",
              "schema": "/v2/schemas/task",
              "self": "/v2/tasks/7bdc8ede-9098-4d79-9477-697f586cb333",
              "status": "success",
              "type": "export",
              "updated_at": "2014-02-26T02:16:50Z"
            }
          ],
          "first": "/v2/tasks",
          "schema": "/v2/schemas/tasks"
        }"#]],
    );
    // Another account sees none of them.
    let other = engine
        .list_tasks(&ctx(&admin(PRODUCER), at(2014, 2, 26, 5, 0, 0)), "")
        .unwrap();
    assert_eq!(other["tasks"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// The glance profile.
// ---------------------------------------------------------------------------------------------

/// Glance's base keys (`docs/spec/glance.md` §1.3), always present, `null` when unset.
const GLANCE_IMAGE_KEYS: &[&str] = &[
    "checksum",
    "container_format",
    "created_at",
    "disk_format",
    "file",
    "id",
    "min_disk",
    "min_ram",
    "name",
    "os_hash_algo",
    "os_hash_value",
    "os_hidden",
    "owner",
    "protected",
    "schema",
    "self",
    "size",
    "status",
    "tags",
    "updated_at",
    "virtual_size",
    "visibility",
];

#[test]
fn glance_profile_image_shows_every_base_key_with_nulls() {
    let engine = Engine::in_memory_with(Profile::glance()).unwrap();
    let member = Actor::tenant(
        "5ef70662f8b34079a6eddb8da9d75fe8",
        "demo",
        &["member", "reader"],
    );
    let created = at(2014, 5, 5, 17, 15, 10);
    image_cmd(
        &engine,
        &member,
        created,
        GLANCE_IMAGE,
        ImageCommand::Register {
            origin: ImageOrigin::Api,
            image: NewImage {
                name: Some("cirros".to_owned()),
                ..NewImage::default()
            },
        },
    );
    let view = engine
        .image_view(&ctx(&member, created), GLANCE_IMAGE)
        .unwrap();
    assert_eq!(keys(&view), key_set(GLANCE_IMAGE_KEYS));
    assert_eq!(view["visibility"], "shared");
    assert_eq!(view["os_hidden"], false);
    assert_eq!(view["status"], "queued");
    for null in [
        "checksum",
        "container_format",
        "disk_format",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
    ] {
        assert!(view[null].is_null(), "{null} should be null in {view}");
    }
    check(
        &view,
        expect![[r#"
            {
              "checksum": null,
              "container_format": null,
              "created_at": "2014-05-05T17:15:10Z",
              "disk_format": null,
              "file": "/v2/images/60000000-0000-4000-8000-000000000003/file",
              "id": "60000000-0000-4000-8000-000000000003",
              "min_disk": 0,
              "min_ram": 0,
              "name": "cirros",
              "os_hash_algo": null,
              "os_hash_value": null,
              "os_hidden": false,
              "owner": "5ef70662f8b34079a6eddb8da9d75fe8",
              "protected": false,
              "schema": "/v2/schemas/image",
              "self": "/v2/images/60000000-0000-4000-8000-000000000003",
              "size": null,
              "status": "queued",
              "tags": [],
              "updated_at": "2014-05-05T17:15:10Z",
              "virtual_size": null,
              "visibility": "shared"
            }"#]],
    );
}

// ---------------------------------------------------------------------------------------------
// A request clock that steps back (two API servers whose clocks disagree by an hour).
// ---------------------------------------------------------------------------------------------

#[test]
fn task_times_when_the_request_clock_steps_back() {
    let engine = Engine::in_memory().unwrap();
    let worker = Actor::operator("worker");
    create_task(
        &engine,
        PENDING_IMPORT,
        at(2014, 2, 26, 10, 0, 0),
        "import",
        seed_import_input(),
    );
    // The next requests carry a clock an hour behind: the log keeps recorded times monotonic,
    // so the export's created_at/updated_at show the later time...
    create_task(
        &engine,
        EXPORT,
        at(2014, 2, 26, 9, 0, 0),
        "export",
        json!({"image_uuid": EXPORTED_IMAGE.to_string(), "receiving_swift_container": "exports"}),
    );
    task_cmd(
        &engine,
        &worker,
        at(2014, 2, 26, 9, 1, 0),
        EXPORT,
        TaskCommand::Start,
    );
    task_cmd(
        &engine,
        &worker,
        at(2014, 2, 26, 9, 2, 0),
        EXPORT,
        TaskCommand::Succeed {
            result: json!({"export_location": format!("exports/{EXPORTED_IMAGE}.vhd")}),
            imported_image: None,
        },
    );
    let view = engine
        .task_view(
            &ctx(&admin(SEED_ACCOUNT), at(2014, 2, 26, 11, 0, 0)),
            EXPORT,
        )
        .unwrap();
    assert_eq!(view["created_at"], "2014-02-26T10:00:00Z");
    assert_eq!(view["updated_at"], "2014-02-26T10:00:00Z");
    // ...and expires_at is that finish + 48 h, not the lagging request clock + 48 h.
    assert_eq!(view["expires_at"], "2014-02-28T10:00:00Z");
}
