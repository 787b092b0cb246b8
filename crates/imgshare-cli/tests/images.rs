//! `imgshare images publish` and `imgshare images snapshot` as an operator runs them, then the
//! API over the real `serve`: a tenant sees the provider's base image, cannot share it (403
//! "Public images do not have members."), and the saved server image goes snapshot → share →
//! accept → download → export with the VHD's own bytes.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{find, start};
use serde_json::{json, Value};

const PRODUCER: &str = "tok-producer";
const CONSUMER: &str = "tok-consumer";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/vhd")
        .join(name)
}

fn imgshare(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .args(["images"])
        .args(&args[..1])
        .arg("--db")
        .arg(db)
        .args(&args[1..])
        .env_remove("IMGSHARE_REGION")
        .env_remove("IMGSHARE_DATA_DIR")
        .env_remove("IMGSHARE_PROFILE")
        .output()
        .unwrap()
}

/// Runs `imgshare images ARGS` and returns the image id it prints.
fn register(db: &Path, args: &[&str]) -> String {
    let output = imgshare(db, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    let id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    uuid::Uuid::try_parse(&id).unwrap_or_else(|_| panic!("not an image id: {id:?}"));
    id
}

/// One HTTP/1.1 request over a plain socket: status and body bytes.
fn http(addr: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    let content_type = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_owned()
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\n{content_type}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut payload = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = unchunk(&payload);
    }
    (status, payload)
}

fn unchunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&bytes[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&bytes[start..start + size]);
        bytes = &bytes[start + size + 2..];
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(bytes)))
}

fn tokens_file(dir: &Path) -> PathBuf {
    let path = dir.join("tokens.json");
    let account = |tenant: &str| json!({"tenant_id": tenant, "user_id": format!("u-{tenant}"), "roles": ["cloudImages:admin"]});
    let file = json!({"tokens": {PRODUCER: account("111111"), CONSUMER: account("222222")}});
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

#[test]
fn published_base_images_and_registered_snapshots_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("imgshare.db");
    let fixed = fixture("fixed.vhd");
    let fixed_str = fixed.to_str().unwrap();
    let vhd_bytes = std::fs::read(&fixed).unwrap();

    let base = register(
        &db,
        &[
            "publish",
            "--name",
            "Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)",
            "--from",
            fixed_str,
            "--property",
            "os_type=linux",
            "--property",
            "com.rackspace__1__options=0",
            "--min-disk",
            "20",
        ],
    );
    let saved = register(
        &db,
        &[
            "snapshot",
            "--tenant",
            "111111",
            "--server",
            "srv-42",
            "--from",
            fixed_str,
            "--name",
            "my-saved-image-name",
        ],
    );
    // The bytes sit in the data directory under the image id.
    assert_eq!(
        std::fs::read(dir.path().join("imgshare.db.data").join(&saved)).unwrap(),
        vhd_bytes
    );

    // Refusals: not a VHD, a malformed property, a tenant-only rule broken; nothing registered.
    let corrupt = fixture("corrupt-cookie.vhd");
    for args in [
        vec![
            "snapshot",
            "--tenant",
            "111111",
            "--server",
            "s",
            "--from",
            corrupt.to_str().unwrap(),
        ],
        vec![
            "publish",
            "--name",
            "x",
            "--from",
            fixed_str,
            "--property",
            "novalue",
        ],
        vec!["publish", "--name", "x", "--from", "/nonexistent.vhd"],
        vec![
            "snapshot", "--tenant", "", "--server", "s", "--from", fixed_str,
        ],
    ] {
        let output = imgshare(&db, &args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}");
    }

    let tokens = tokens_file(dir.path());
    let exports = dir.path().join("imgshare.db.objects/DFW/111111/exports");
    std::fs::create_dir_all(&exports).unwrap();
    let (_server, lines) = start(&db, &["--tokens", tokens.to_str().unwrap()]);
    let addr = find(&lines, "listening on http://").to_owned();

    // The consumer sees the provider's base image; the producer's snapshot is not its own.
    let (status, body) = http(&addr, "GET", "/v2/images", CONSUMER, None);
    assert_eq!(status, 200);
    let listed = json_of(&body);
    let ids: Vec<&str> = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![base.as_str()]);
    let image = &listed["images"][0];
    assert_eq!(image["visibility"], "public");
    assert_eq!(image["image_type"], "base");
    assert_eq!(image["size"], vhd_bytes.len());
    assert!(image.get("owner").is_none() || image["owner"].is_null());

    // Nobody shares a public image, and no tenant publishes one.
    let members = format!("/v2/images/{base}/members");
    let (status, body) = http(
        &addr,
        "POST",
        &members,
        PRODUCER,
        Some(json!({"member": "222222"})),
    );
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("Public images do not have members."));

    // The saved image: share, accept, listed for the consumer, downloadable, exportable.
    let (status, body) = http(&addr, "GET", &format!("/v2/images/{saved}"), PRODUCER, None);
    assert_eq!(status, 200);
    let image = json_of(&body);
    assert_eq!(image["image_type"], "snapshot");
    assert_eq!(image["instance_uuid"], "srv-42");
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], vhd_bytes.len());
    let members = format!("/v2/images/{saved}/members");
    let (status, _) = http(
        &addr,
        "POST",
        &members,
        PRODUCER,
        Some(json!({"member": "222222"})),
    );
    assert_eq!(status, 200);
    let answer = format!("{members}/222222");
    let (status, _) = http(
        &addr,
        "PUT",
        &answer,
        CONSUMER,
        Some(json!({"status": "accepted"})),
    );
    assert_eq!(status, 200);
    let (_, body) = http(&addr, "GET", "/v2/images", CONSUMER, None);
    assert!(String::from_utf8_lossy(&body).contains(&saved));
    let (status, bytes) = http(
        &addr,
        "GET",
        &format!("/v2/images/{saved}/file"),
        CONSUMER,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(bytes, vhd_bytes);

    let task = json!({"type": "export", "input": {"image_uuid": saved, "receiving_swift_container": "exports"}});
    let (status, body) = http(&addr, "POST", "/v2/tasks", PRODUCER, Some(task));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let task_id = json_of(&body)["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let task = loop {
        let (_, body) = http(
            &addr,
            "GET",
            &format!("/v2/tasks/{task_id}"),
            PRODUCER,
            None,
        );
        let task = json_of(&body);
        if task["status"] == "success" || task["status"] == "failure" {
            break task;
        }
        assert!(
            Instant::now() < deadline,
            "the export never finished: {task}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(
        task["result"]["export_location"],
        format!("exports/{saved}.vhd")
    );
    assert_eq!(
        std::fs::read(exports.join(format!("{saved}.vhd"))).unwrap(),
        vhd_bytes
    );
}
