//! `imgshare serve` as a user runs it: the real binary on ephemeral ports; in demo mode with the
//! built-in identity, its users file and the demo image, answering HTTP over a plain TCP socket;
//! several regions from one process; without `--demo`, refusing to start with no identity or a
//! users file that does not parse, and printing no secret; the console on every listener, off with
//! `--no-console` or static tokens.

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

fn request(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    (status, response)
}

/// The JSON body of an HTTP/1.1 response read whole.
fn json_body(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {response}"))
}

fn api_key_auth(user: &str, key: &str) -> String {
    format!(
        r#"{{"auth": {{"RAX-KSKEY:apiKeyCredentials": {{"username": "{user}", "apiKey": "{key}"}}}}}}"#
    )
}

#[test]
fn serve_demo_runs_the_builtin_identity_prints_keys_and_the_curl_line_and_answers_http() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("imgshare.db");
    let (mut server, lines) = start(&db, &["--demo"]);
    let addr = find(&lines, "listening on http://").to_owned();
    let key = find(&lines, "demo user producer (account 111111): API key ").to_owned();
    let curl = find(&lines, "curl -s -X POST $IDENTITY/v2.0/tokens ");
    assert!(
        curl.contains(&format!(r#""username": "producer", "apiKey": "{key}""#)),
        "{curl}"
    );
    let exports = find(&lines, "export TOKEN_PRODUCER=");
    let producer_token = exports.split(' ').next().unwrap().to_owned();
    let image_id = find(&lines, "export IMAGE_ID_PRODUCER=").to_owned();
    assert!(find(&lines, "export ENDPOINT_IMAGES_PRODUCER=")
        .starts_with(&format!("http://{addr}/v2/111111 ")));

    assert!(dir.path().join("imgshare.db.data").is_dir());
    let users_path = dir.path().join("imgshare-users.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&users_path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the users file is readable by others: {mode:o}"
        );
    }
    let users = std::fs::read_to_string(&users_path).unwrap();
    assert!(!users.contains(&key), "a key in clear: {users}");
    assert!(users.contains("$argon2id$"), "{users}");

    // The quickstart's first step: the key gives a token and a catalog pointing here.
    let (status, response) = request(
        &addr,
        "POST",
        "/v2.0/tokens",
        "",
        &api_key_auth("producer", &key),
    );
    assert_eq!(status, 200, "{response}");
    let access = json_body(&response);
    let token = access["access"]["token"]["id"].as_str().unwrap().to_owned();
    let endpoint = &access["access"]["serviceCatalog"][0]["endpoints"][0];
    assert_eq!(endpoint["region"], "DFW");
    assert_eq!(endpoint["publicURL"], format!("http://{addr}/v2"));
    let (status, response) = get(&addr, "/v2/images", &token);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains(&image_id), "{response}");
    let (status, response) = get(&addr, "/v2/images", &producer_token);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("my-saved-image-name"), "{response}");

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

    // A restart keeps the users and the image (no second one); built-in tokens lived in the
    // old process, and the demo users get new keys.
    let (_server, lines) = start(&db, &["--demo"]);
    let addr = find(&lines, "listening on http://").to_owned();
    assert_ne!(
        find(&lines, "demo user producer (account 111111): API key "),
        key
    );
    assert_eq!(find(&lines, "export IMAGE_ID_PRODUCER="), image_id);
    let (status, _) = get(&addr, "/v2/images", &producer_token);
    assert_eq!(status, 401);
    let (status, _) = request(
        &addr,
        "POST",
        "/v2.0/tokens",
        "",
        &api_key_auth("producer", &key),
    );
    assert_eq!(status, 401);
    let token = find(&lines, "export TOKEN_PRODUCER=")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let (status, response) = get(&addr, "/v2/images", &token);
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
fn serve_serves_every_region_from_one_process_each_on_its_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("imgshare.db");
    let (_server, lines) = start(
        &db,
        &[
            "--demo",
            // The Glance profile lets users create images (Rackspace's only by snapshot or import).
            "--profile",
            "glance",
            "--region",
            "DFW",
            "--region",
            "ord",
            "--region-endpoint",
            "ORD=https://ord.images.example.com/v2",
            "--object-store-url",
            "DFW=https://storage.dfw.example.com/v1",
        ],
    );
    let dfw = find(&lines, "region DFW listening on http://")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let ord = find(&lines, "region ORD listening on http://")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(dfw, ord);
    let key = find(&lines, "demo user producer (account 111111): API key ").to_owned();
    let image_id = find(&lines, "export IMAGE_ID_PRODUCER=").to_owned();

    // Either listener authenticates; the catalog lists both regions and DFW's object store.
    let (status, response) = request(
        &ord,
        "POST",
        "/v2.0/tokens",
        "",
        &api_key_auth("producer", &key),
    );
    assert_eq!(status, 200, "{response}");
    let access = json_body(&response);
    let token = access["access"]["token"]["id"].as_str().unwrap().to_owned();
    let catalog = &access["access"]["serviceCatalog"];
    assert_eq!(
        catalog[0]["endpoints"][0]["publicURL"],
        format!("http://{dfw}/v2")
    );
    assert_eq!(catalog[0]["endpoints"][1]["region"], "ORD");
    assert_eq!(
        catalog[0]["endpoints"][1]["publicURL"],
        "https://ord.images.example.com/v2"
    );
    assert_eq!(catalog[1]["type"], "object-store");
    assert_eq!(
        catalog[1]["endpoints"][0]["publicURL"],
        "https://storage.dfw.example.com/v1/MossoCloudFS_111111"
    );
    assert_eq!(catalog[1]["endpoints"].as_array().unwrap().len(), 1);

    // The demo image lives in DFW: seen there, 404 in ORD; an image created in ORD stays there.
    let (status, _) = get(&dfw, &format!("/v2/images/{image_id}"), &token);
    assert_eq!(status, 200);
    let (status, _) = get(&ord, &format!("/v2/images/{image_id}"), &token);
    assert_eq!(status, 404);
    let (status, response) = request(&ord, "POST", "/v2/images", &token, r#"{"name": "in-ord"}"#);
    assert_eq!(status, 201, "{response}");
    let (_, listed) = get(&ord, "/v2/images", &token);
    assert!(
        listed.contains("in-ord") && !listed.contains(&image_id),
        "{listed}"
    );
    let (_, listed) = get(&dfw, "/v2/images", &token);
    assert!(
        !listed.contains("in-ord") && listed.contains(&image_id),
        "{listed}"
    );
}

#[test]
fn serve_refuses_a_users_file_that_does_not_parse_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prod.db");
    let users = dir.path().join("users.toml");
    std::fs::write(&users, "[users.alice\nid = 1\n").unwrap();
    for extra in [
        &["--users"][..],
        &["--identity", "builtin", "--demo", "--users"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_imgshare"))
            .arg("serve")
            .arg("--db")
            .arg(&db)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .arg(&users)
            .env_remove("IMGSHARE_TOKENS")
            .env_remove("IMGSHARE_DEMO")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("users.toml"), "{stderr}");
        assert!(stderr.contains("not valid TOML"), "{stderr}");
        assert!(!db.exists(), "a refused start created the database");
    }
    assert_eq!(
        std::fs::read_to_string(&users).unwrap(),
        "[users.alice\nid = 1\n"
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
        find(&lines, "imgshare: regions ").starts_with("ORD, database "),
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
fn the_catalog_lists_the_swift_of_each_region_that_keeps_its_objects_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("imgshare.db");
    let key_file = dir.path().join("swift.key");
    std::fs::write(&key_file, "service-key\n").unwrap();
    // Nothing listens on port 9: the store only authenticates when a task first needs it.
    let (_server, lines) = start(
        &db,
        &[
            "--demo",
            "--region",
            "DFW",
            "--region",
            "ORD",
            "--swift-url",
            "ORD=http://127.0.0.1:9/v1",
            "--swift-auth-url",
            "http://127.0.0.1:9/auth/v1.0",
            "--swift-user",
            "admin:admin",
            "--swift-key-file",
            key_file.to_str().unwrap(),
        ],
    );
    let dfw = find(&lines, "region DFW listening on http://")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let key = find(&lines, "demo user producer (account 111111): API key ").to_owned();
    let (status, response) = request(
        &dfw,
        "POST",
        "/v2.0/tokens",
        "",
        &api_key_auth("producer", &key),
    );
    assert_eq!(status, 200, "{response}");
    let access = json_body(&response);
    let catalog = access["access"]["serviceCatalog"].as_array().unwrap();
    let files = catalog
        .iter()
        .find(|service| service["type"] == "object-store")
        .expect("a cloudFiles entry");
    let endpoints = files["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{files}");
    assert_eq!(endpoints[0]["region"], "ORD");
    assert_eq!(
        endpoints[0]["publicURL"],
        "http://127.0.0.1:9/v1/MossoCloudFS_111111"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("object store of ORD: Swift")),
        "{lines:?}"
    );
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
        find(&lines, "imgshare: regions ").starts_with("REGIONONE, "),
        "{lines:#?}"
    );
}

#[test]
fn the_console_is_on_every_regions_listener_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("imgshare.db");
    let (server, lines) = start(&db, &["--demo", "--region", "DFW", "--region", "ORD"]);
    assert!(
        find(&lines, "console (Control Panel): ").starts_with("http://"),
        "{lines:#?}"
    );
    for region in ["DFW", "ORD"] {
        let addr = find(&lines, &format!("region {region} listening on http://"))
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        let (status, page) = get(&addr, "/console/login", "");
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("id=\"username\""), "{page}");
        assert!(page.contains("content-security-policy"), "{page}");
        // The API beside it is untouched: no console header on its answers.
        let (status, versions) = get(&addr, "/versions", "");
        assert_eq!(status, 300, "{versions}");
        assert!(!versions.contains("content-security-policy"), "{versions}");
    }
    drop(server);

    // Turned off from the environment, as a unit file would: /console is an API path again.
    let child = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("IMGSHARE_NO_CONSOLE", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut server = common::Server(child);
    let lines = common::banner(&mut server);
    assert!(
        lines
            .iter()
            .any(|line| line == "console: off (--no-console)"),
        "{lines:#?}"
    );
    let addr = find(&lines, "listening on http://").to_owned();
    let (status, page) = get(&addr, "/console/login", "");
    assert_eq!(status, 401, "{page}");
}

#[test]
fn static_tokens_have_no_console_login() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(
        &tokens,
        r#"{"tokens": {"tok": {"tenant_id": "111111", "user_id": "u", "roles": ["cloudImages:admin"]}}}"#,
    )
    .unwrap();
    let tokens = tokens.to_str().unwrap().to_owned();
    let (_server, lines) = start(&dir.path().join("t.db"), &["--tokens", &tokens]);
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("console: off (a static tokens file")),
        "{lines:#?}"
    );
    let addr = find(&lines, "listening on http://").to_owned();
    let (status, page) = get(&addr, "/console/login", "tok");
    assert_eq!(status, 404, "{page}");
}

/// `imgshare ARGS...` run in `dir`, with the identity variables a developer may have set removed.
fn run_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .current_dir(dir)
        .args(args)
        .env_remove("IMGSHARE_TOKENS")
        .env_remove("IMGSHARE_DEMO")
        .env_remove("IMGSHARE_DATA_DIR")
        .env_remove("IMGSHARE_OBJECTS_DIR")
        .env_remove("IMGSHARE_USERS")
        .output()
        .unwrap()
}

#[test]
fn on_a_postgres_url_nothing_is_derived_from_it_and_sqlite_only_commands_say_what_to_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.json"), r#"{"tokens": {}}"#).unwrap();
    // Port 1: no server; each refusal must come before any connection is tried.
    let url = "postgres://app:secret@127.0.0.1:1/imgshare";
    let cases: [(&[&str], &str); 5] = [
        (
            &["serve", "--db", url, "--tokens", "tokens.json"],
            "--data-dir is required",
        ),
        (
            &[
                "serve",
                "--db",
                url,
                "--tokens",
                "tokens.json",
                "--data-dir",
                "d",
            ],
            "--objects-dir is required",
        ),
        (
            &[
                "serve",
                "--db",
                url,
                "--demo",
                "--data-dir",
                "d",
                "--objects-dir",
                "o",
            ],
            "--users is required",
        ),
        (&["backup", "--db", url, "--to", "copy.db"], "pg_dump"),
        (&["replay", "--db", url], "imgshare rebuild --db URL"),
    ];
    for (args, expected) in cases {
        let output = run_in(dir.path(), args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            !stderr.contains("secret"),
            "{args:?} shows the password: {stderr}"
        );
    }
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["tokens.json"], "a refused start wrote files");
}
