//! `imgshare serve` as a user runs it: the real binary on an ephemeral port; in demo mode with the
//! tokens file and the demo image it creates itself, answering one HTTP request over a plain TCP
//! socket; without `--demo`, refusing to start with no tokens file, and printing no secret.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{find, start};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn get(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    // Image data is binary; the assertions look at its text parts.
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    (status, response)
}

#[test]
fn serve_demo_creates_tokens_seeds_the_demo_image_and_answers_http() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("imgshare.db");
    let (mut server, lines) = start(&db, &["--demo"]);
    let addr = find(&lines, "listening on http://").to_owned();
    let exports = find(&lines, "export TOKEN_PRODUCER=");
    let producer_token = exports.split(' ').next().unwrap().to_owned();
    let image_id = find(&lines, "export IMAGE_ID_PRODUCER=").to_owned();
    assert!(find(&lines, "export ENDPOINT_IMAGES_PRODUCER=")
        .starts_with(&format!("http://{addr}/v2/111111 ")));
    assert!(lines.iter().any(|line| line.starts_with("curl -s")));

    assert!(dir.path().join("imgshare.db.data").is_dir());
    let tokens_path = dir.path().join("imgshare-tokens.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&tokens_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the tokens file is readable by others: {mode:o}"
        );
    }
    let tokens = std::fs::read_to_string(&tokens_path).unwrap();
    assert!(tokens.contains(&producer_token));
    assert!(tokens.contains("\"222222\""));

    let (status, response) = get(&addr, "/v2/images", &producer_token);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("my-saved-image-name"), "{response}");
    assert!(response.contains(&image_id), "{response}");

    let (status, _) = get(&addr, "/v2/111111/images", "not-a-token");
    assert_eq!(status, 401);

    // The demo image has real bytes (a small VHD) and the provider's base images are public.
    let (status, response) = get(
        &addr,
        &format!("/v2/images/{image_id}/file"),
        &producer_token,
    );
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("imgshare demo disk"), "{response}");
    assert!(response.contains("conectix"), "{response}");
    let (status, response) = get(&addr, "/v2/images?visibility=public", &producer_token);
    assert_eq!(status, 200, "{response}");
    assert_eq!(
        response.matches("\"image_type\": \"base\"").count()
            + response.matches("\"image_type\":\"base\"").count(),
        3,
        "{response}"
    );
    assert!(
        response.contains("Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)"),
        "{response}"
    );

    // SIGTERM shuts the server down gracefully (exit status 0).
    #[cfg(unix)]
    {
        let term = Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        assert!(server.0.wait().unwrap().success());
    }
    #[cfg(not(unix))]
    let _ = server.0.kill();

    // A restart keeps the tokens file and the image, and does not seed a second one.
    let (_server, lines) = start(&db, &["--demo"]);
    let addr = find(&lines, "listening on http://").to_owned();
    assert!(find(&lines, "export TOKEN_PRODUCER=").starts_with(&producer_token));
    assert_eq!(find(&lines, "export IMAGE_ID_PRODUCER="), image_id);
    let (status, response) = get(&addr, "/v2/images", &producer_token);
    assert_eq!(status, 200, "{response}");
    assert_eq!(
        response.matches("my-saved-image-name").count(),
        1,
        "{response}"
    );
    assert_eq!(
        response.matches("Ubuntu 12.04 LTS").count(),
        1,
        "{response}"
    );
}

#[test]
fn serve_without_demo_or_tokens_refuses_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prod.db");
    let output = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .arg("serve")
        .arg("--db")
        .arg(&db)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("IMGSHARE_TOKENS")
        .env_remove("IMGSHARE_DEMO")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tokens FILE"), "{stderr}");
    assert!(stderr.contains("imgshare serve --demo"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "a refused start wrote {left:?}");
}

#[test]
fn serve_with_a_tokens_file_seeds_nothing_and_prints_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prod.db");
    let tokens = dir.path().join("tokens.json");
    let secret = "4f1c0c7e-prod-secret";
    std::fs::write(
        &tokens,
        format!(r#"{{"tokens": {{"{secret}": {{"tenant_id": "111111", "user_id": "u", "roles": ["cloudImages:admin"]}}}}}}"#),
    )
    .unwrap();
    // The settings come from the environment, as a systemd unit's EnvironmentFile gives them.
    let child = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .arg("serve")
        .env("IMGSHARE_DB", &db)
        .env("IMGSHARE_TOKENS", &tokens)
        .env("IMGSHARE_LISTEN", "127.0.0.1:0")
        .env("IMGSHARE_REGION", "ORD")
        .env_remove("IMGSHARE_DEMO")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = common::Server(child);
    let lines = common::banner(&mut server);
    let addr = find(&lines, "listening on http://").to_owned();
    assert!(
        find(&lines, "imgshare: region ").starts_with("ORD, database "),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|line| line.contains(secret)),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|line| line.contains("TOKEN")),
        "{lines:#?}"
    );
    let (status, response) = get(&addr, "/v2/images", secret);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("\"images\""), "{response}");
    assert!(!response.contains("my-saved-image-name"), "{response}");
    assert!(!dir.path().join("imgshare-tokens.json").exists());
    let _ = server.0.kill();
    let _ = server.0.wait();
    let mut stderr = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains(secret), "{stderr}");
}

#[test]
fn an_unknown_region_is_refused_at_start_on_rackspace_and_free_on_glance() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("imgshare.db");
    for region in ["RegionOne", "XYZ"] {
        let output = Command::new(env!("CARGO_BIN_EXE_imgshare"))
            .arg("serve")
            .arg("--db")
            .arg(&db)
            .args(["--listen", "127.0.0.1:0", "--demo", "--region", region])
            .env_remove("IMGSHARE_PROFILE")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{region}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("Unknown region") && stderr.contains("DFW, ORD, IAD, LON, SYD, HKG"),
            "{stderr}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "a refused start wrote {left:?}");
    let (_server, lines) = start(
        &db,
        &["--demo", "--profile", "glance", "--region", "RegionOne"],
    );
    assert!(
        find(&lines, "imgshare: region ").starts_with("REGIONONE, "),
        "{lines:#?}"
    );
}
