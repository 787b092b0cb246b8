//! The HTTP adapter of imgshare: serves the Rackspace Cloud Images 2.0 / OpenStack Glance v2 API
//! over an [`Engine`](imgshare_store::Engine).
//!
//! Build a [`Router`](axum::Router) with [`router`] and serve it with [`serve`] (or drive it with
//! `tower::ServiceExt::oneshot` in tests). Every route exists both as `/v2/...` and as
//! `/v2/{tenant_id}/...`; in the second form the tenant must be the caller's, otherwise 404.
//! `GET /` and `GET /versions` answer 300 with the version list and need no token. `GET /v2`
//! (no token) and `GET /v2/{tenant_id}` (the tenant's token) answer 200 with the v2 version
//! document whose self link is that endpoint, for clients that run version discovery on an
//! image endpoint (keystoneauth, openstacksdk).
//!
//! # Identity
//!
//! Each request's `X-Auth-Token` goes to [`AppState::validator`], a [`TokenValidator`]: the
//! built-in Rackspace identity (whose `/v2.0/tokens` endpoints the router then also serves,
//! outside the token check, see [`AppState::builtin_identity`]), a Keystone validator, or the
//! static tokens file below. An unknown, expired or revoked token is 401, a token the identity
//! refuses for this use 403, an identity service that cannot answer 503 (`docs/identity.md`).
//!
//! ## The static tokens file
//!
//! Loaded with [`TokenStore::load`]; the format is chosen by the file's extension. JSON
//! (`tokens.json`):
//!
//! ```json
//! {
//!   "tokens": {
//!     "tok-producer": {"tenant_id": "111111", "user_id": "alice", "roles": ["cloudImages:admin"]},
//!     "tok-consumer": {"tenant_id": "222222", "user_id": "bob", "roles": ["cloudImages:admin"]}
//!   }
//! }
//! ```
//!
//! TOML (`tokens.toml`), the same table:
//!
//! ```toml
//! [tokens.tok-producer]
//! tenant_id = "111111"
//! user_id = "alice"
//! roles = ["cloudImages:admin"]
//! ```
//!
//! `roles` may be omitted (no roles); unknown fields are refused. Role names are the profile's
//! (`cloudImages:observer|creator|admin`, `admin`, ... for Rackspace; `reader|member|admin` for
//! Glance), compared case-insensitively by the engine.
//!
//! # Responses
//!
//! Every response carries `X-Openstack-Request-Id: req-<uuid>`; the same id goes into the
//! metadata of the events the request appends. Errors are JSON nested by kind, e.g.
//! `{"itemNotFound": {"code": 404, "message": "No image found with ID ...", "error_code":
//! "image_not_found"}}` (see [`ApiError`]).
//!
//! # Image data
//!
//! `PUT /v2/images/{id}/file` stores the data in [`AppState::image_data`] (on disk:
//! `<data_dir>/<id>`), with md5 (`checksum`) and sha512 (`os_hash_value`) computed while streaming;
//! `GET /v2/images/{id}/file` streams it back with `Content-Length` and `Content-MD5` (204 when
//! there is no data; 403 for a deactivated image unless the caller is a cloud admin).
//! `GET /v2/images/{id}/tasks` lists the caller's tasks whose `input.image_uuid` or
//! `result.image_id` is the image.
//!
//! # Tasks
//!
//! `POST /v2/tasks` answers 201 with a `pending` task whatever its input; the task worker
//! ([`spawn_task_worker`], started by [`serve`] when [`AppState::tasks`] is set) then runs it
//! against the region's object store and the image data store, and `GET /v2/tasks/{id}` shows
//! `success` with a `result` or `failure` with a `message` (see `docs/tasks.md`).
//!
//! # Check order
//!
//! Where the spec (`docs/spec/`) is silent the adapter follows Glance's middleware order:
//! 1. `GET /` and `GET /versions` (no token);
//! 2. token → 401 (before routing, as keystone middleware does: unknown paths need a token too);
//! 3. unknown path → 404; a `/v2/{tenant_id}/` prefix naming another account → 404;
//! 4. method → 405 with `Allow` (`HEAD` is not served);
//! 5. body over `max_body_bytes` (declared `Content-Length` or actual) → 413; a body on a `GET`,
//!    `DELETE`, tag `PUT` or image action `POST` → 400 "A body is not expected with this
//!    request.". Image data (`PUT /v2/images/{id}/file`) is not read whole: after the id (404),
//!    the media type (`application/octet-stream`, else 415), the data directory (none: 501), the
//!    declared length against `max_image_bytes` (413) and the image's visibility (404), it is
//!    streamed to disk, and the engine decides (see the `images` module);
//! 6. PATCH media type → 415 with `Accept-Patch`, then the patch document → 400, then the id;
//! 7. an id that is not a hyphenated UUID → 404 with the engine's wording; then the engine.
//!
//! Path segments are percent-decoded (a bad escape or non-UTF-8 text is 404). Engine reads run
//! in `spawn_blocking` (an image read the SQLite reader can answer at once runs in place:
//! `Engine::try_image_now`); commands are queued with `Engine::submit` and awaited, a blocking
//! thread leading their group commits. 500s carry a generic message and the engine's
//! `error_code` only (the cause goes to the log line of the request, with its request id).
//!
//! # Operations
//!
//! `GET /healthcheck` (no token) answers 200 `OK` or 503 with the reason (see [`health`]);
//! `GET /metrics` (no token) the Prometheus text format when [`AppState::metrics`] is set (see
//! [`metrics`]). Every request is one log line through `tracing` (method, route template,
//! status, latency, request ids, tenant, user). [`serve_regions`] reloads the users or tokens file on SIGHUP
//! and drains in-flight requests on SIGTERM within a deadline.
//!
//! # Where things are
//!
//! - `routes`: the route table, and the edge layer (`HEAD`, 405 rendering);
//! - `observe`: request ids, the request's log line and metrics;
//! - `auth`: the layers before a route's method is looked at (token, path, tenant prefix);
//! - `extract`: the caller's context, path parameters, body limits;
//! - `handlers`: one module per resource; `state`: [`AppState`]; `error`: [`ApiError`];
//! - [`tasks`]: the background task worker.

#![warn(missing_docs)]

pub mod error;
pub mod health;
pub mod identity;
pub mod metrics;
pub mod tasks;

mod auth;
mod extract;
mod handlers;
mod observe;
mod response;
mod routes;
mod state;

pub use error::ApiError;
pub use handlers::import::resume_imports;
pub use identity::{Identity, TokenStore, TokenStoreError};
pub use imgshare_identity::TokenValidator;
pub use metrics::metrics_router;
pub use routes::router;
pub use state::{AppState, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IMAGE_BYTES};
pub use tasks::{spawn_task_worker, DEFAULT_POLL_INTERVAL};

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";
/// The header listing the interoperable-import methods, sent on `POST /v2/images`.
pub const IMPORT_METHODS_HEADER: &str = "openstack-image-import-methods";
/// The header carrying the caller's token.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

/// How [`serve_regions`] runs beyond the API itself.
#[derive(Debug)]
pub struct ServeConfig {
    /// After SIGTERM (or Ctrl-C), how long in-flight requests may take to finish; connections
    /// still open then are closed.
    pub shutdown_timeout: Duration,
    /// Whether SIGHUP re-reads the validator's users or tokens file ([`TokenValidator::reload`]);
    /// `false`: SIGHUP is ignored.
    pub reload_on_hangup: bool,
    /// A listener of its own for `GET /metrics`, with the exporter's handle.
    pub metrics: Option<(tokio::net::TcpListener, PrometheusHandle)>,
    /// Pages served on every region's listener beside the API, under paths of their own (the
    /// Control Panel's `/console`); one router shared by all listeners, so that its state (its
    /// sessions) is too.
    pub pages: Option<axum::Router>,
    /// How often the task worker looks for pending tasks when nothing wakes it (a task created
    /// through this server, or on PostgreSQL another server's `NOTIFY`, wakes it at once).
    pub task_poll_interval: Duration,
}

/// The default drain deadline.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            reload_on_hangup: false,
            metrics: None,
            pages: None,
            task_poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// Serves `router(state)` on `listener` until Ctrl-C (or SIGTERM on Unix), with the defaults
/// of [`ServeConfig`] (see [`serve_regions`]).
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    serve_regions(vec![(listener, state)], ServeConfig::default()).await
}

/// Serves several regions from one process: each `(listener, state)` pair is one region's
/// endpoint (`state.region`), all over the same engine. Every region's interrupted imports are
/// finished first; one task worker (the first state's, whose task environment should list
/// every region) runs beside them.
///
/// On Ctrl-C or SIGTERM every listener stops accepting connections and the requests in flight
/// get up to `config.shutdown_timeout`; the first listener that fails ends the whole server.
/// With `config.reload_on_hangup`, SIGHUP re-reads the first state's validator (a file that
/// does not load is logged and the data in use stays); `config.metrics` serves `GET /metrics`
/// on its own listener; `config.pages` are merged into every region's router.
pub async fn serve_regions(
    endpoints: Vec<(tokio::net::TcpListener, AppState)>,
    config: ServeConfig,
) -> std::io::Result<()> {
    for (_, state) in &endpoints {
        let resume_state = state.clone();
        let resumed = tokio::task::spawn_blocking(move || resume_imports(&resume_state)).await;
        if let Ok(Err(error)) = resumed {
            return Err(std::io::Error::other(format!(
                "could not resume interrupted imports in region {}: {error:?}",
                state.region
            )));
        }
    }
    let Some((_, first)) = endpoints.first() else {
        return Ok(());
    };
    let worker = spawn_task_worker(first, config.task_poll_interval);
    // Every region shares one validator, so one reload serves them all.
    let reloader = config
        .reload_on_hangup
        .then(|| tokio::spawn(reload_on_hangup(Arc::clone(&first.validator))));
    let metrics_server = config.metrics.map(|(listener, handle)| {
        let app = metrics_router(Arc::clone(&first.engine), handle);
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "metrics listener stopped");
            }
        })
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for (listener, state) in endpoints {
        let mut stop = stop_rx.clone();
        let app = match &config.pages {
            Some(pages) => router(state).merge(pages.clone()),
            None => router(state),
        };
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
        });
    }
    let stopping = Arc::new(Notify::new());
    let signalled = Arc::clone(&stopping);
    let timeout = config.shutdown_timeout;
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(
            timeout_s = timeout.as_secs_f64(),
            "shutting down: no new connections, draining requests in flight"
        );
        let _ = stop_tx.send(true);
        // A permit, so the deadline starts even if its waiter is polled after this.
        signalled.notify_one();
    });
    let all_served = async {
        let mut served = Ok(());
        while let Some(result) = servers.join_next().await {
            let result = result.unwrap_or_else(|join| Err(std::io::Error::other(join)));
            if result.is_err() && served.is_ok() {
                // One region failing stops the others: a half-served deployment would mislead.
                served = result;
                servers.abort_all();
            }
        }
        served
    };
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(timeout).await;
    };
    let served = tokio::select! {
        served = all_served => served,
        () = deadline => {
            tracing::warn!(
                timeout_s = timeout.as_secs_f64(),
                "shutdown deadline passed: closing the connections still open"
            );
            Ok(())
        }
    };
    signal.abort();
    for task in [worker, reloader, metrics_server].into_iter().flatten() {
        task.abort();
    }
    served
}

/// Re-reads the validator's file on every SIGHUP; a file that does not load leaves the data in
/// use.
async fn reload_on_hangup(validator: Arc<dyn TokenValidator>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGHUP: the identity file will not be reloaded");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            let validator = Arc::clone(&validator);
            let reloaded = tokio::task::spawn_blocking(move || validator.reload()).await;
            match reloaded {
                Ok(Ok(summary)) => {
                    ::metrics::counter!(metrics::TOKEN_RELOADS, "result" => "ok").increment(1);
                    tracing::info!(summary = %summary, "identity reloaded");
                }
                Ok(Err(error)) => {
                    ::metrics::counter!(metrics::TOKEN_RELOADS, "result" => "error").increment(1);
                    tracing::error!(error = %error, "identity not reloaded: keeping the data in use");
                }
                Err(error) => tracing::error!(error = %error, "identity reload did not finish"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = validator;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait forever rather than stop at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
