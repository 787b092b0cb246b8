//! `imgshare serve` as an operator sees it (docs/operations.md): the request log on stderr,
//! signals (SIGHUP reloads the tokens file, SIGTERM drains), and the options that are refused.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Each test binary uses a different part of the shared set-up.
#[allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{banner, find, Server};
use serde_json::Value;

const TOKEN: &str = "7d0c5d1e-ops-token";
const OTHER_TOKEN: &str = "0b1a9c3f-new-token";

fn tokens_json(token: &str) -> String {
    format!(
        r#"{{"tokens": {{"{token}": {{"tenant_id": "111111", "user_id": "alice", "roles": ["cloudImages:admin", "member"]}}}}}}"#
    )
}

/// A server with a tokens file, its stderr going to `<dir>/stderr.log`.
struct Running {
    server: Server,
    addr: String,
    log: PathBuf,
    tokens: PathBuf,
    db: PathBuf,
}

fn start(dir: &Path, extra: &[&str]) -> Running {
    let db = dir.join("ops.db");
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, tokens_json(TOKEN)).unwrap();
    let log = dir.join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .arg("serve")
        .arg("--db")
        .arg(&db)
        .arg("--tokens")
        .arg(&tokens)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("IMGSHARE_DEMO")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let lines = banner(&mut server);
    let addr = find(&lines, "listening on http://").to_owned();
    Running {
        server,
        addr,
        log,
        tokens,
        db,
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Waits until the log has a line containing `needle`.
    fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// One HTTP/1.1 request; the status and the whole response (head and body).
fn request(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "{head}Host: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    stream.write_all(body).unwrap();
    read_response(stream)
}

fn read_response(mut stream: TcpStream) -> (u16, String) {
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    (status, response)
}

fn header<'a>(response: &'a str, name: &str) -> &'a str {
    response
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {response}"))
}

fn body_json(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// Creates an image (Glance profile) and returns its id.
fn create_image(addr: &str, token: &str) -> String {
    let body = br#"{"name": "ops", "container_format": "bare", "disk_format": "raw"}"#;
    let (status, response) = request(
        addr,
        &format!(
            "POST /v2/images HTTP/1.1\r\nX-Auth-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ),
        body,
    );
    assert_eq!(status, 201, "{response}");
    body_json(&response)["id"].as_str().unwrap().to_owned()
}

fn upload_head(token: &str, image_id: &str, length: usize) -> String {
    format!(
        "PUT /v2/images/{image_id}/file HTTP/1.1\r\nX-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n"
    )
}

#[test]
fn a_json_log_line_carries_the_request_id_the_client_saw_and_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--log-format", "json"]);
    let global = "req-3f8a4a8e-8f0c-4a53-9c3e-0d6a1b2c3d4e";
    let (status, response) = request(
        &server.addr,
        &format!(
            "GET /v2/111111/images?limit=1 HTTP/1.1\r\nX-Auth-Token: {TOKEN}\r\nX-Openstack-Request-Id: {global}\r\n"
        ),
        b"",
    );
    assert_eq!(status, 200, "{response}");
    let local = header(&response, "x-openstack-request-id").to_owned();
    assert_ne!(local, global, "the local id is the server's own");

    let line = server.wait_for_log(&local);
    let line: Value = serde_json::from_str(&line).unwrap();
    let span = &line["span"];
    assert_eq!(span["request_id"], local.as_str(), "{line}");
    assert_eq!(span["global_request_id"], global, "{line}");
    assert_eq!(span["method"], "GET", "{line}");
    assert_eq!(span["route"], "/v2/{tenant_id}/images", "{line}");
    assert_eq!(span["tenant"], "111111", "{line}");
    assert_eq!(span["user"], "alice", "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert!(line["fields"]["latency_ms"].as_f64().is_some(), "{line}");
    // A caller-chosen id that is not req-<uuid> is not taken over.
    let (_, response) = request(
        &server.addr,
        &format!(
            "GET /v2/images HTTP/1.1\r\nX-Auth-Token: {TOKEN}\r\nX-Openstack-Request-Id: forged\r\n"
        ),
        b"",
    );
    let local = header(&response, "x-openstack-request-id").to_owned();
    let line: Value = serde_json::from_str(&server.wait_for_log(&local)).unwrap();
    assert!(line["span"].get("global_request_id").is_none(), "{line}");
    assert!(!server.log().contains(TOKEN), "the token was logged");
}

#[test]
fn a_500_is_logged_with_its_cause_and_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    // Only the Glance profile lets a caller create an image to upload to.
    let server = start(dir.path(), &["--profile", "glance"]);
    let image_id = create_image(&server.addr, TOKEN);
    // The data directory turns into a file under the running server: the upload cannot store.
    let data_dir = PathBuf::from(format!("{}.data", server.db.display()));
    std::fs::remove_dir_all(&data_dir).unwrap();
    std::fs::write(&data_dir, "not a directory").unwrap();
    let (status, response) = request(&server.addr, &upload_head(TOKEN, &image_id, 4), b"data");
    assert_eq!(status, 500, "{response}");
    assert!(
        !response.contains("directory"),
        "the cause leaked: {response}"
    );
    let local = header(&response, "x-openstack-request-id").to_owned();
    let line = server.wait_for_log(&local);
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("image_storage_failed"), "{line}");
    assert!(line.contains("Not a directory"), "no cause in {line}");
}

#[test]
fn sighup_reloads_the_tokens_file_and_keeps_the_old_tokens_when_it_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let list = |token: &str| {
        request(
            &server.addr,
            &format!("GET /v2/images HTTP/1.1\r\nX-Auth-Token: {token}\r\n"),
            b"",
        )
        .0
    };
    assert_eq!(list(TOKEN), 200);
    // A connection opened before the reload stays usable across it.
    let open = TcpStream::connect(&server.addr).unwrap();

    std::fs::write(&server.tokens, "{\"tokens\": {broken").unwrap();
    server.signal("HUP");
    server.wait_for_log("identity not reloaded");
    assert_eq!(list(TOKEN), 200, "a broken file replaced the tokens");

    std::fs::write(&server.tokens, tokens_json(OTHER_TOKEN)).unwrap();
    server.signal("HUP");
    server.wait_for_log("identity reloaded");
    assert_eq!(list(OTHER_TOKEN), 200);
    assert_eq!(list(TOKEN), 401, "the old token still works after a reload");

    let mut open = open;
    write!(
        open,
        "GET /v2/images HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {OTHER_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_response(open).0, 200);
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_and_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &["--profile", "glance"]);
    let image_id = create_image(&server.addr, TOKEN);
    let mut upload = TcpStream::connect(&server.addr).unwrap();
    write!(
        upload,
        "{}Host: x\r\nConnection: close\r\n\r\nhalf",
        upload_head(TOKEN, &image_id, 8)
    )
    .unwrap();
    upload.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    server.wait_for_log("shutting down");
    // New connections are refused once draining started...
    std::thread::sleep(Duration::from_millis(200));
    assert!(TcpStream::connect(&server.addr).is_err());
    // ...but the upload in flight completes.
    upload.write_all(b"done").unwrap();
    upload
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (status, response) = read_response(upload);
    assert_eq!(status, 204, "{response}");
    assert!(server.server.0.wait().unwrap().success());
}

#[test]
fn sigterm_closes_a_stalled_request_at_the_shutdown_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(
        dir.path(),
        &["--profile", "glance", "--shutdown-timeout", "1s"],
    );
    let image_id = create_image(&server.addr, TOKEN);
    let mut stalled = TcpStream::connect(&server.addr).unwrap();
    write!(
        stalled,
        "{}Host: x\r\n\r\nnever finished",
        upload_head(TOKEN, &image_id, 1 << 20)
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    server.signal("TERM");
    assert!(server.server.0.wait().unwrap().success());
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "exited after {took:?}"
    );
    server.wait_for_log("shutdown deadline passed");
}

#[test]
fn the_public_endpoint_is_the_base_of_the_version_documents() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--public-endpoint", "https://images.example.com/"],
    );
    let (status, response) = request(&server.addr, "GET /versions HTTP/1.1\r\n", b"");
    assert_eq!(status, 300, "{response}");
    assert_eq!(
        body_json(&response)["versions"][0]["links"][0]["href"],
        "https://images.example.com/v2/"
    );
    let (status, response) = request(&server.addr, "GET /healthcheck HTTP/1.1\r\n", b"");
    assert_eq!(status, 200, "{response}");
    assert!(response.ends_with("\r\n\r\nOK"), "{response}");
}

#[test]
fn metrics_on_their_own_listener_are_not_on_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    std::fs::write(dir.path().join("t.json"), tokens_json(TOKEN)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .arg("serve")
        .arg("--db")
        .arg(&db)
        .arg("--tokens")
        .arg(dir.path().join("t.json"))
        .args(["--listen", "127.0.0.1:0"])
        .env("IMGSHARE_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let lines = banner(&mut server);
    let addr = find(&lines, "listening on http://").to_owned();
    let metrics = find(&lines, "metrics on http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let list = format!("GET /v2/images HTTP/1.1\r\nX-Auth-Token: {TOKEN}\r\n");
    assert_eq!(request(&addr, &list, b"").0, 200);
    let (status, _) = request(&addr, "GET /metrics HTTP/1.1\r\n", b"");
    assert_eq!(status, 401, "/metrics is still on the API listener");
    let (status, response) = request(&metrics, "GET /metrics HTTP/1.1\r\n", b"");
    assert_eq!(status, 200, "{response}");
    assert!(
        response.contains(
            r#"imgshare_http_requests_total{method="GET",route="/v2/images",status="200"} 1"#
        ),
        "{response}"
    );
}

#[test]
fn bad_log_format_and_public_endpoint_are_refused_before_anything_is_written() {
    for (args, expected) in [
        (vec!["--log-format", "xml"], "possible values: text, json"),
        (
            vec!["--public-endpoint", "images.example.com"],
            "not a public endpoint URL",
        ),
        (vec!["--shutdown-timeout", "soon"], "not a duration"),
        (vec!["--task-poll-interval", "0ms"], "not an interval"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("never.db");
        let output = Command::new(env!("CARGO_BIN_EXE_imgshare"))
            .arg("serve")
            .arg("--db")
            .arg(&db)
            .args(["--demo", "--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?}: a refused start wrote {left:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("never.db"))
        .env("IMGSHARE_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
