//! What a load balancer and a Prometheus server see: `GET /healthcheck` (200 `OK`, 503 on a
//! read-only or full database) and `GET /metrics`.
//!
//! The read-only and full-disk cases on a real file system need mounts (a read-only bind mount, a
//! small tmpfs), which only root may make (as in `tests/tests/storage_failures.rs`); elsewhere
//! the read-only case uses file permissions and the full-disk case prints `SKIP` and the reason. The database's own size cap
//! (`max_page_count`) is portable.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use imgshare_core::{Profile, Region};
use imgshare_server::{router, AppState, Identity, TokenStore};
use imgshare_store::{DbOptions, Engine, EngineOptions};
use tower::ServiceExt;

const TOKEN: &str = "tok-ops";

fn open(path: &Path, db: DbOptions) -> Arc<Engine> {
    let options = EngineOptions {
        profile: Profile::glance(),
        db,
    };
    Arc::new(Engine::open(path, options).unwrap())
}

fn state(engine: Arc<Engine>) -> AppState {
    let mut tokens = TokenStore::new();
    tokens.insert(
        TOKEN,
        Identity {
            tenant_id: "111111".to_owned(),
            user_id: "ops".to_owned(),
            roles: vec!["member".to_owned()],
        },
    );
    AppState::new(engine, Arc::new(tokens), Region::parse("DFW").unwrap())
}

async fn send(app: &Router, method: Method, uri: &str, body: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-auth-token", TOKEN)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn health(app: &Router) -> (StatusCode, String) {
    let request = Request::builder()
        .uri("/healthcheck")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn is_root() -> bool {
    Process::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(parent: &Path, size: &str) -> Result<Tmpfs, String> {
        let dir = parent.join("tmpfs");
        std::fs::create_dir(&dir).map_err(|error| error.to_string())?;
        let output = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|error| format!("cannot run mount: {error}"))?;
        if output.status.success() {
            Ok(Tmpfs(dir))
        } else {
            Err(format!(
                "mount -t tmpfs is not permitted here: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg(&self.0).status();
    }
}

/// A read-only bind mount of a directory over itself, removed when dropped. Files opened before
/// it (the engine's) keep their writable mount; every open after it sees a read-only file
/// system, as after an emergency remount.
struct ReadOnlyBind(PathBuf);

impl ReadOnlyBind {
    fn mount(dir: &Path) -> Result<ReadOnlyBind, String> {
        let run = |args: &[&str]| {
            Process::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .output()
                .map_err(|error| format!("cannot run mount: {error}"))
                .and_then(|output| {
                    if output.status.success() {
                        Ok(())
                    } else {
                        Err(format!(
                            "mount {args:?} is not permitted here: {}",
                            String::from_utf8_lossy(&output.stderr).trim()
                        ))
                    }
                })
        };
        run(&["--bind"])?;
        let bind = ReadOnlyBind(dir.to_owned());
        run(&["-o", "remount,ro,bind"])?;
        Ok(bind)
    }
}

impl Drop for ReadOnlyBind {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn healthcheck_needs_no_token_and_goes_503_on_a_read_only_database() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("db");
    std::fs::create_dir(&home).unwrap();
    let path = home.join("ro.db");
    let app = router(state(open(&path, DbOptions::default())));
    assert_eq!(health(&app).await, (StatusCode::OK, "OK".to_owned()));

    // Root writes through file permissions, so as root the file system is made read-only;
    // anyone else gets a read-only file.
    let bind = if is_root() {
        match ReadOnlyBind::mount(&home) {
            Ok(bind) => Some(bind),
            Err(reason) => {
                println!("SKIP read-only healthcheck: running as root and {reason}");
                return;
            }
        }
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        None
    };
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("cannot be written"), "{body}");

    match bind {
        Some(bind) => drop(bind),
        None => {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    assert_eq!(health(&app).await.0, StatusCode::OK);
}

#[tokio::test]
async fn healthcheck_goes_503_on_a_full_disk_and_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = match Tmpfs::mount(dir.path(), "48m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            println!("SKIP disk-full healthcheck: {reason}");
            return;
        }
    };
    let app = router(state(open(&tmpfs.0.join("full.db"), DbOptions::default())));
    assert_eq!(health(&app).await.0, StatusCode::OK);
    let filler = tmpfs.0.join("filler");
    let free = imgshare_server::health::MIN_FREE_BYTES;
    // Leaves less than the minimum free.
    let size = 48 * 1024 * 1024 - free + 1024 * 1024;
    std::fs::write(&filler, vec![1u8; usize::try_from(size).unwrap()]).unwrap();
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("disk is full"), "{body}");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(health(&app).await.0, StatusCode::OK);
}

/// The value of the sample `name{labels}` in a text exposition (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_a_request_and_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = state(open(&dir.path().join("m.db"), DbOptions::default()));
    state.metrics = Some(imgshare_server::metrics::install().unwrap());
    let app = router(state);
    let metrics = |app: Router| async move {
        let (status, text) = send(&app, Method::GET, "/metrics", "").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        text
    };
    let created = r#"imgshare_http_requests_total{method="POST",route="/v2/images",status="201"}"#;
    let before = metrics(app.clone()).await;
    let (status, body) = send(
        &app,
        Method::POST,
        "/v2/images",
        r#"{"name": "counted", "disk_format": "raw", "container_format": "bare"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after = metrics(app.clone()).await;
    assert_eq!(sample(&after, created), sample(&before, created) + 1.0);
    let head = "imgshare_log_head_position";
    assert_eq!(sample(&after, head), sample(&before, head) + 1.0, "{after}");
    assert!(
        after.contains(r#"imgshare_http_request_duration_seconds_bucket{method="POST",route="/v2/images",le="+Inf"}"#),
        "{after}"
    );
    // A refusal is counted by its code.
    let (status, _) = send(&app, Method::GET, "/v2/images/not-an-id", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let refused = metrics(app.clone()).await;
    let series = r#"imgshare_refusals_total{error_code="image_not_found",status="404"}"#;
    assert_eq!(sample(&refused, series), sample(&after, series) + 1.0);
}
