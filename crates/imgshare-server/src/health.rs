//! `GET /healthcheck`, as oslo.middleware's healthcheck answers it for a load balancer: 200 with
//! the body `OK`, or 503 with the reason, no token needed.
//!
//! Unhealthy means the server would refuse the work it is there for:
//! - the database cannot be read (the log's head is read through the engine's read connection);
//! - the database file cannot be written: a read-only file or file system (opened for append,
//!   which writes nothing);
//! - the database is full: the file system holding it has less than [`MIN_FREE_BYTES`] left for
//!   unprivileged writers, or the database has reached its own size cap (`max_page_count`).

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use imgshare_store::Engine;

use crate::state::AppState;

/// Less free space than this on the database's file system is "full": a group commit with its
/// WAL frames and a checkpoint need some room, and 503 before the disk is full lets a load
/// balancer move traffic while writes still succeed.
pub const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;

/// `GET /healthcheck`.
pub(crate) async fn healthcheck(State(state): State<AppState>) -> Response {
    let engine = Arc::clone(&state.engine);
    let verdict = tokio::task::spawn_blocking(move || check(&engine))
        .await
        .unwrap_or_else(|error| Err(format!("health check did not finish: {error}")));
    let (status, body) = match verdict {
        Ok(()) => (StatusCode::OK, "OK".to_owned()),
        Err(reason) => {
            tracing::warn!(reason = reason.as_str(), "healthcheck failed");
            (StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    };
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        )],
        body,
    )
        .into_response()
}

/// `Ok` when healthy, else why not.
pub fn check(engine: &Engine) -> Result<(), String> {
    engine
        .head()
        .map_err(|error| format!("database cannot be read: {error}"))?;
    if engine
        .storage_full()
        .map_err(|error| format!("database cannot be read: {error}"))?
    {
        return Err("database is full: it has reached its size limit".to_owned());
    }
    let Some(path) = engine.path() else {
        // An in-memory database has no file to check.
        return Ok(());
    };
    writable(path)?;
    free_space(path)
}

fn writable(path: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|error| format!("database file cannot be written: {error}"))
}

fn free_space(path: &Path) -> Result<(), String> {
    let stat = rustix::fs::statvfs(path)
        .map_err(|error| format!("cannot read the database's file system: {error}"))?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if free < MIN_FREE_BYTES {
        return Err(format!(
            "disk is full: {free} bytes left on the database's file system"
        ));
    }
    Ok(())
}
