//! What a load balancer sees: `GET /healthcheck` (200 `OK`, 503 on a read-only or full
//! database). `GET /metrics` is in `metrics.rs`, a binary of its own, since the recorder is
//! global to the process.
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
use imgshare_server::router;
use imgshare_store::DbOptions;
use tower::ServiceExt;

#[path = "common/ops.rs"]
mod ops;
use ops::{open, send, state, TOKEN};

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

#[tokio::test]
async fn healthcheck_goes_503_on_a_database_at_its_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.db");
    let pages: u32 = {
        let engine = open(&path, DbOptions::default());
        engine
            .read(|conn| {
                Ok(conn
                    .pragma_query_value(None, "page_count", |row| row.get(0))
                    .unwrap())
            })
            .unwrap()
    };
    let engine = open(
        &path,
        DbOptions {
            max_page_count: Some(pages + 64),
            ..DbOptions::default()
        },
    );
    let app = router(state(Arc::clone(&engine)));
    assert_eq!(health(&app).await.0, StatusCode::OK);
    let body = format!(
        r#"{{"name": "{}", "disk_format": "raw", "container_format": "bare"}}"#,
        "x".repeat(250)
    );
    let mut refused = None;
    for _ in 0..10_000 {
        let (status, text) = send(&app, Method::POST, "/v2/images", &body).await;
        if status != StatusCode::CREATED {
            refused = Some((status, text));
            break;
        }
    }
    let (status, text) = refused.expect("the database never filled up");
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{text}");
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("database is full"), "{body}");
}

#[tokio::test]
async fn a_callers_request_id_is_stored_next_to_the_local_one_in_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir.path().join("ids.db"), DbOptions::default());
    let app = router(state(Arc::clone(&engine)));
    let global = "req-6c1f1d4e-2b8a-4d47-9a55-1f0f3c2e9b7a";
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v2/images")
        .header("x-auth-token", TOKEN)
        .header("x-openstack-request-id", global)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"name": "traced"}"#))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let local = response.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(local, global);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let image_id = uuid::Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    let history = engine.history(image_id).unwrap();
    let metadata = &history.first().unwrap().metadata;
    assert_eq!(metadata.request_id.as_deref(), Some(local.as_str()));
    assert_eq!(metadata.global_request_id.as_deref(), Some(global));

    // Without one, nothing is stored for it, and metadata written before the field existed
    // reads as it always did.
    let (status, body) = send(&app, Method::POST, "/v2/images", r#"{"name": "plain"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let image_id = uuid::Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    let history = engine.history(image_id).unwrap();
    assert_eq!(history.first().unwrap().metadata.global_request_id, None);
    let old =
        serde_json::json!({"region": "DFW", "request_id": "req-1", "correlation_id": "req-1"});
    let read = imgshare_store::audit::EventMetadata::from_value(&old);
    assert_eq!(read.request_id.as_deref(), Some("req-1"));
    assert_eq!(read.global_request_id, None);
}
