//! Import and export tasks against a real OpenStack Swift, driven as a user would: objects go in
//! and out with python-swiftclient's `swift` command, tasks are created over HTTP on
//! `imgshare serve` processes configured with `--swift-url`.
//!
//! Runs only when `IMGSHARE_TEST_SWIFT_AUTH_URL` and `IMGSHARE_TEST_SWIFT_URL` name a running Swift (with
//! the users of `tests/swift/start.sh`) and `IMGSHARE_BIN` the `imgshare` binary;
//! `tests/swift/run.sh` starts Swift, runs this file and stops Swift. Without them each test
//! says so and passes.

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{admin_of, region, PRODUCER};
use imgshare_core::transfer::IMPORT_NOT_FOUND;
use imgshare_core::{Actor, Command as DomainCommand, Context, TaskCommand, TaskStatus};
use imgshare_store::{
    Engine, EngineOptions, FsImageDataStore, SwiftAuth, SwiftConfig, SwiftObjectStore,
    TaskEnvironment,
};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use uuid::Uuid;

const ALICE: (&str, &str) = ("111111:alice", "alicepw");
const BOB: (&str, &str) = ("222222:bob", "bobpw");
const ALICE_TOKEN: &str = "token-of-111111";
const BOB_TOKEN: &str = "token-of-222222";

struct Swift {
    auth_url: String,
    storage_url: String,
    binary: PathBuf,
}

fn swift() -> Option<Swift> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        get("IMGSHARE_TEST_SWIFT_AUTH_URL"),
        get("IMGSHARE_TEST_SWIFT_URL"),
        get("IMGSHARE_BIN"),
    ) {
        (Some(auth_url), Some(storage_url), Some(binary)) => Some(Swift {
            auth_url,
            storage_url,
            binary: binary.into(),
        }),
        _ => {
            eprintln!("no Swift configured (IMGSHARE_TEST_SWIFT_AUTH_URL, IMGSHARE_TEST_SWIFT_URL, IMGSHARE_BIN): skipped; run tests/swift/run.sh");
            None
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/vhd")
        .join(name)
}

fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unique(name: &str) -> String {
    format!("{name}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

impl Swift {
    /// `swift <args>` as `user`, in `dir`; its stdout.
    fn cli(&self, (user, key): (&str, &str), dir: &Path, args: &[&str]) -> String {
        let output = Command::new("swift")
            .args(["-A", &self.auth_url, "-U", user, "-K", key])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("python-swiftclient's `swift` command");
        assert!(
            output.status.success(),
            "swift {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `imgshare serve` for `region` on `db`, objects in Swift with 300 KiB export segments.
    fn serve(&self, dir: &Path, region: &str) -> Server {
        let tokens = dir.join("tokens.json");
        if !tokens.exists() {
            let identity = |tenant: &str, user: &str| json!({"tenant_id": tenant, "user_id": user, "roles": ["cloudImages:admin"]});
            let file = json!({"tokens": {
                ALICE_TOKEN: identity("111111", "alice"),
                BOB_TOKEN: identity("222222", "bob"),
            }});
            fs::write(&tokens, file.to_string()).unwrap();
            fs::write(dir.join("swift-key"), "servicepw\n").unwrap();
        }
        let mut child = Command::new(&self.binary)
            .arg("serve")
            .args(["--db", dir.join("imgshare.db").to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--region", region])
            .args(["--tokens", tokens.to_str().unwrap()])
            .args(["--data-dir", dir.join("data").to_str().unwrap()])
            .args(["--swift-url", &format!("{region}={}", self.storage_url)])
            .args(["--swift-auth-url", &self.auth_url])
            .args(["--swift-user", "imgshare:service"])
            .args(["--swift-key-file", dir.join("swift-key").to_str().unwrap()])
            .args(["--swift-segment-size", "300K"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(address) = line.strip_prefix("listening on ") {
                url = Some(address.to_owned());
                break;
            }
        }
        let url = url.expect("serve announces its address");
        Server { child, url }
    }
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let request = ureq::request(method, &format!("{}{path}", self.url))
            .set("X-Auth-Token", token)
            .timeout(Duration::from_secs(30));
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{method} {path}: {error}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a task as `tenant` and waits (up to 60 s) until it has finished.
    fn task(&self, tenant: &str, token: &str, body: Value) -> Value {
        let (status, created) =
            self.call("POST", &format!("/v2/{tenant}/tasks"), token, Some(body));
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, task) = self.call("GET", &format!("/v2/{tenant}/tasks/{id}"), token, None);
            if task["status"] == "success" || task["status"] == "failure" {
                return task;
            }
            assert!(Instant::now() < deadline, "task still {}", task["status"]);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn import(&self, tenant: &str, token: &str, from: &str) -> Value {
        let input = json!({"import_from": from, "image_properties": {"name": from}});
        self.task(tenant, token, json!({"type": "import", "input": input}))
    }

    fn export(&self, tenant: &str, token: &str, image: &str, container: &str) -> Value {
        let input = json!({"image_uuid": image, "receiving_swift_container": container});
        self.task(tenant, token, json!({"type": "export", "input": input}))
    }

    fn image(&self, tenant: &str, token: &str, id: &str) -> Value {
        let (status, image) = self.call("GET", &format!("/v2/{tenant}/images/{id}"), token, None);
        assert_eq!(status, 200, "{image}");
        image
    }
}

fn succeeded(task: &Value) -> &Value {
    assert_eq!(task["status"], "success", "{task}");
    &task["result"]
}

fn failed(task: &Value) -> &str {
    assert_eq!(task["status"], "failure", "{task}");
    task["message"].as_str().unwrap()
}

#[test]
fn import_export_download_and_the_region_move() {
    let Some(swift) = swift() else { return };
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let vhd = fs::read(fixture("fixed.vhd")).unwrap();
    let md5 = md5_hex(&vhd);
    let (uploads, exports, ord) = (unique("uploads"), unique("exports"), unique("ord-imports"));
    fs::copy(fixture("fixed.vhd"), work.join("fixed.vhd")).unwrap();
    fs::copy(fixture("dynamic.vhd"), work.join("dynamic.vhd")).unwrap();
    swift.cli(ALICE, work, &["upload", &uploads, "fixed.vhd"]);
    // The same disks as large objects: a DLO and an SLO of 1 KiB segments.
    let segmented = ["--segment-size", "1024", "--object-name"];
    swift.cli(
        ALICE,
        work,
        &[
            "upload",
            &uploads,
            "dynamic.vhd",
            segmented[0],
            segmented[1],
            segmented[2],
            "dlo.vhd",
        ],
    );
    swift.cli(
        ALICE,
        work,
        &[
            "upload",
            &uploads,
            "dynamic.vhd",
            "--use-slo",
            segmented[0],
            segmented[1],
            segmented[2],
            "slo.vhd",
        ],
    );
    swift.cli(ALICE, work, &["post", &exports]);
    swift.cli(ALICE, work, &["post", &ord]);

    let dfw = swift.serve(work, "DFW");
    let imported = dfw.import(PRODUCER, ALICE_TOKEN, &format!("{uploads}/fixed.vhd"));
    let dfw_id = succeeded(&imported)["image_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let image = dfw.image(PRODUCER, ALICE_TOKEN, &dfw_id);
    assert_eq!(image["checksum"], md5.as_str());
    assert_eq!(image["size"], vhd.len());

    let dynamic_md5 = md5_hex(&fs::read(fixture("dynamic.vhd")).unwrap());
    for object in ["dlo.vhd", "slo.vhd"] {
        let task = dfw.import(PRODUCER, ALICE_TOKEN, &format!("{uploads}/{object}"));
        let id = succeeded(&task)["image_id"].as_str().unwrap().to_owned();
        assert_eq!(
            dfw.image(PRODUCER, ALICE_TOKEN, &id)["checksum"],
            dynamic_md5.as_str(),
            "{object}"
        );
    }

    // Export: a DLO of 300 KiB segments, downloaded whole by `swift download`.
    let exported = dfw.export(PRODUCER, ALICE_TOKEN, &dfw_id, &exports);
    let object = format!("{dfw_id}.vhd");
    assert_eq!(
        succeeded(&exported)["export_location"],
        format!("{exports}/{object}")
    );
    let listing = swift.cli(ALICE, work, &["list", &exports]);
    let names: Vec<&str> = listing.lines().collect();
    let expected: Vec<String> = std::iter::once(object.clone())
        .chain((1..=4).map(|n| format!("{object}-{n:05}")))
        .collect();
    assert_eq!(names, expected);
    let stat = swift.cli(ALICE, work, &["stat", &exports, &object]);
    assert!(
        stat.contains(&format!("Manifest: {exports}/{object}-")),
        "{stat}"
    );
    swift.cli(
        ALICE,
        work,
        &["download", &exports, &object, "-o", "exported.vhd"],
    );
    let downloaded = fs::read(work.join("exported.vhd")).unwrap();
    assert!(
        downloaded == vhd,
        "the export is the imported file, byte for byte"
    );
    assert_eq!(md5_hex(&downloaded), md5);

    let again = dfw.export(PRODUCER, ALICE_TOKEN, &dfw_id, &exports);
    assert_eq!(
        failed(&again),
        format!("Object already exists in user's container. Container/Object: {exports}/{object}")
    );
    let missing = dfw.export(PRODUCER, ALICE_TOKEN, &dfw_id, &unique("nowhere"));
    assert!(failed(&missing).starts_with("Container not found. Container: "));

    // The region move: the downloaded export goes up again and is imported in ORD.
    swift.cli(
        ALICE,
        work,
        &["upload", &ord, "exported.vhd", "--object-name", "moved.vhd"],
    );
    let ord_server = swift.serve(work, "ORD");
    let moved = ord_server.import(PRODUCER, ALICE_TOKEN, &format!("{ord}/moved.vhd"));
    let ord_id = succeeded(&moved)["image_id"].as_str().unwrap().to_owned();
    assert_ne!(ord_id, dfw_id);
    assert_eq!(
        ord_server.image(PRODUCER, ALICE_TOKEN, &ord_id)["checksum"],
        md5.as_str()
    );
    drop((dfw, ord_server));

    let engine = Engine::open(&work.join("imgshare.db"), EngineOptions::default()).unwrap();
    let ord_id = Uuid::try_parse(&ord_id).unwrap();
    assert!(engine.can_boot(PRODUCER, ord_id, &region("ORD")).unwrap());
    assert!(!engine.can_boot(PRODUCER, ord_id, &region("DFW")).unwrap());
}

#[test]
fn a_tenant_never_reaches_another_tenants_account() {
    let Some(swift) = swift() else { return };
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let (alices, bobs) = (unique("alices"), unique("bobs"));
    fs::copy(fixture("fixed.vhd"), work.join("fixed.vhd")).unwrap();
    swift.cli(ALICE, work, &["upload", &alices, "fixed.vhd"]);
    swift.cli(BOB, work, &["upload", &bobs, "fixed.vhd"]);
    // Alice's DLO manifests that name Bob's segments (Swift stores them as given).
    fs::write(work.join("empty"), b"").unwrap();
    for (name, manifest) in [
        ("evil1.vhd", format!("../AUTH_222222/{bobs}/fixed.vhd")),
        ("evil2.vhd", format!("..%2FAUTH_222222%2F{bobs}/fixed.vhd")),
    ] {
        let header = format!("X-Object-Manifest: {manifest}");
        swift.cli(
            ALICE,
            work,
            &[
                "upload",
                &alices,
                "empty",
                "--object-name",
                name,
                "-H",
                &header,
            ],
        );
    }

    let server = swift.serve(work, "DFW");
    // Bob asks for Alice's object, plainly and through every trick.
    for from in [
        format!("{alices}/fixed.vhd"),
        format!("../AUTH_111111/{alices}/fixed.vhd"),
        format!("{bobs}/../../AUTH_111111/{alices}/fixed.vhd"),
        format!("{bobs}/%2E%2E/%2E%2E/AUTH_111111/{alices}/fixed.vhd"),
        format!("..%2FAUTH_111111%2F{alices}/fixed.vhd"),
        format!("{bobs}/fixed.vhd\u{0}"),
        format!("{bobs}/{}", "x".repeat(1100)),
    ] {
        let task = server.import("222222", BOB_TOKEN, &from);
        assert_eq!(failed(&task), IMPORT_NOT_FOUND, "{from}");
    }
    // His own object is his to import; Alice's manifests pointing at it are refused.
    succeeded(&server.import("222222", BOB_TOKEN, &format!("{bobs}/fixed.vhd")));
    for name in ["evil1.vhd", "evil2.vhd"] {
        let task = server.import(PRODUCER, ALICE_TOKEN, &format!("{alices}/{name}"));
        assert_eq!(failed(&task), IMPORT_NOT_FOUND, "{name}");
    }
    // Bob exports his image into Alice's container: for him it does not exist.
    let task = server.import("222222", BOB_TOKEN, &format!("{bobs}/fixed.vhd"));
    let id = succeeded(&task)["image_id"].as_str().unwrap().to_owned();
    let export = server.export("222222", BOB_TOKEN, &id, &alices);
    assert_eq!(
        failed(&export),
        format!("Container not found. Container: {alices}")
    );
    let listing = swift.cli(ALICE, work, &["list", &alices]);
    assert!(!listing.contains(&id), "{listing}");
}

#[test]
fn files_that_are_not_vhds_fail_with_the_documented_messages() {
    let Some(swift) = swift() else { return };
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let container = unique("bad");
    fs::copy(fixture("corrupt-cookie.vhd"), work.join("corrupt.vhd")).unwrap();
    swift.cli(ALICE, work, &["upload", &container, "corrupt.vhd"]);
    let server = swift.serve(work, "DFW");
    let task = server.import(PRODUCER, ALICE_TOKEN, &format!("{container}/corrupt.vhd"));
    assert_eq!(failed(&task), "396: The file is not a valid VHD.");
    let task = server.import(PRODUCER, ALICE_TOKEN, &format!("{container}/absent.vhd"));
    assert_eq!(failed(&task), IMPORT_NOT_FOUND);
    // A DLO that is one of its own segments has no end: refused with the size message.
    fs::write(work.join("empty"), b"").unwrap();
    let header = format!("X-Object-Manifest: {container}/self");
    let args = [
        "upload",
        &container,
        "empty",
        "--object-name",
        "self.vhd",
        "-H",
        &header,
    ];
    swift.cli(ALICE, work, &args);
    let task = server.import(PRODUCER, ALICE_TOKEN, &format!("{container}/self.vhd"));
    assert_eq!(
        failed(&task),
        "609: The physical size of the VHD exceeds the 40GB limit."
    );
}

/// A worker that stopped mid-export left the task `processing` and segments but no manifest;
/// the next start runs the export again over the leftovers and finishes it.
#[test]
fn an_export_interrupted_by_a_stop_is_finished_on_restart() {
    let Some(swift) = swift() else { return };
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let (uploads, exports) = (unique("uploads"), unique("exports"));
    fs::copy(fixture("fixed.vhd"), work.join("fixed.vhd")).unwrap();
    swift.cli(ALICE, work, &["upload", &uploads, "fixed.vhd"]);
    swift.cli(ALICE, work, &["post", &exports]);

    let auth = SwiftAuth {
        auth_url: swift.auth_url.clone(),
        user: "imgshare:service".into(),
        key: "servicepw".into(),
    };
    let config = SwiftConfig {
        segment_size: 256 * 1024,
        ..SwiftConfig::new(swift.storage_url.clone(), auth)
    };
    let store = SwiftObjectStore::new(config).unwrap();
    let env = TaskEnvironment::new(Arc::new(FsImageDataStore::new(work.join("data"))))
        .with_region(region("DFW"), Arc::new(store));
    let engine = Engine::open(&work.join("imgshare.db"), EngineOptions::default()).unwrap();
    let ctx = Context::new(admin_of(PRODUCER), region("DFW"), Utc::now());
    let create = |input: Value, kind: &str| {
        let task_id = Uuid::new_v4();
        let command = TaskCommand::Create {
            task_type: kind.to_owned(),
            input,
        };
        engine
            .execute(&ctx, DomainCommand::Task { task_id, command })
            .unwrap();
        task_id
    };
    create(
        json!({"import_from": format!("{uploads}/fixed.vhd")}),
        "import",
    );
    let report = engine.run_pending_tasks(&env).unwrap();
    let image_id = imgshare_store::imported_image_id(report.succeeded[0]);

    let export = create(
        json!({"image_uuid": image_id.to_string(), "receiving_swift_container": exports}),
        "export",
    );
    // The stopped worker: the task started, two segments written (one of them damaged).
    let worker = Context::new(Actor::operator("task-worker"), region("DFW"), Utc::now());
    let command = TaskCommand::Start;
    engine
        .execute(
            &worker,
            DomainCommand::Task {
                task_id: export,
                command,
            },
        )
        .unwrap();
    let object = format!("{image_id}.vhd");
    fs::write(work.join("junk"), vec![7u8; 1000]).unwrap();
    for n in [1, 2] {
        let name = format!("{object}-{n:05}");
        swift.cli(
            ALICE,
            work,
            &["upload", &exports, "junk", "--object-name", &name],
        );
    }

    let recovered = engine.recover_interrupted_tasks(&env).unwrap();
    assert_eq!(recovered.succeeded, [export]);
    let task = engine.get_task(&ctx, export).unwrap();
    assert_eq!(task.status, TaskStatus::Success);
    swift.cli(
        ALICE,
        work,
        &["download", &exports, &object, "-o", "exported.vhd"],
    );
    let vhd = fs::read(fixture("fixed.vhd")).unwrap();
    assert!(fs::read(work.join("exported.vhd")).unwrap() == vhd);
    let listing = swift.cli(ALICE, work, &["list", &exports]);
    assert_eq!(
        listing.lines().count(),
        1 + 5,
        "the manifest and 5 segments: {listing}"
    );
}

/// Needs no Swift: a Swift that refuses every connection. The task is tried a bounded number of
/// times and then fails with the store's message, never staying `processing`.
#[test]
fn a_swift_that_does_not_answer_fails_the_task_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let auth = SwiftAuth {
        auth_url: format!("http://127.0.0.1:{port}/auth/v1.0"),
        user: "imgshare:service".into(),
        key: "servicepw".into(),
    };
    let config = SwiftConfig {
        retries: 2,
        backoff: Duration::from_millis(10),
        ..SwiftConfig::new(format!("http://127.0.0.1:{port}/v1"), auth)
    };
    let env = TaskEnvironment::new(Arc::new(FsImageDataStore::new(dir.path().join("data"))))
        .with_region(
            region("DFW"),
            Arc::new(SwiftObjectStore::new(config).unwrap()),
        );
    let engine = Engine::open(&dir.path().join("imgshare.db"), EngineOptions::default()).unwrap();
    let ctx = Context::new(admin_of(PRODUCER), region("DFW"), Utc::now());
    let task_id = Uuid::new_v4();
    let command = TaskCommand::Create {
        task_type: "import".to_owned(),
        input: json!({"import_from": "uploads/disk.vhd"}),
    };
    engine
        .execute(&ctx, DomainCommand::Task { task_id, command })
        .unwrap();
    let started = Instant::now();
    let report = engine.run_pending_tasks(&env).unwrap();
    assert_eq!(report.failed, [task_id]);
    assert!(started.elapsed() < Duration::from_secs(10));
    let task = engine.get_task(&ctx, task_id).unwrap();
    assert_eq!(task.status, TaskStatus::Failure);
    let message = task.message.unwrap_or_default();
    assert!(
        message.starts_with(imgshare_store::tasks::STORE_UNAVAILABLE)
            && message.contains("3 attempts"),
        "{message}"
    );
}
