//! The HTTP adapter of imgshare: serves the Rackspace Cloud Images 2.0 / OpenStack Glance v2 API
//! over an [`Engine`].
//!
//! Build a [`Router`](axum::Router) with [`router`] and serve it with [`serve`] (or drive it with
//! `tower::ServiceExt::oneshot` in tests). Every route exists both as `/v2/...` and as
//! `/v2/{tenant_id}/...`; in the second form the tenant must be the caller's, otherwise 404.
//! `GET /` and `GET /versions` answer 300 with the version list and need no token. `GET /v2`
//! (no token) and `GET /v2/{tenant_id}` (the tenant's token) answer 200 with the v2 version
//! document whose self link is that endpoint, for clients that run version discovery on an
//! image endpoint (keystoneauth, openstacksdk).
//!
//! # Identity: the tokens file
//!
//! There is no identity service: each request's `X-Auth-Token` is looked up in a tokens file
//! loaded with [`TokenStore::load`]. A request without a known token gets 401. The format is
//! chosen by the file's extension. JSON (`tokens.json`):
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
//! Path segments are percent-decoded (a bad escape or non-UTF-8 text is 404). Engine calls run
//! in `spawn_blocking`; 500s carry a generic message and the engine's `error_code` only.
//!
//! # Where things are
//!
//! - `routes`: the route table, and the edge layer (request id, `HEAD`, 405 rendering);
//! - `auth`: the layers before a route's method is looked at (token, path, tenant prefix);
//! - `extract`: the caller's context, path parameters, body limits;
//! - `handlers`: one module per resource; `state`: [`AppState`]; `error`: [`ApiError`];
//! - [`tasks`]: the background task worker.

pub mod error;
pub mod identity;
pub mod tasks;

mod auth;
mod extract;
mod handlers;
mod response;
mod routes;
mod state;

pub use error::ApiError;
pub use handlers::import::resume_imports;
pub use identity::{Identity, TokenStore, TokenStoreError};
pub use routes::router;
pub use state::{AppState, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IMAGE_BYTES};
pub use tasks::{spawn_task_worker, DEFAULT_POLL_INTERVAL};

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";
/// The header listing the interoperable-import methods, sent on `POST /v2/images`.
pub const IMPORT_METHODS_HEADER: &str = "openstack-image-import-methods";
/// The header carrying the caller's token.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

/// Serves `router(state)` on `listener` until Ctrl-C (or SIGTERM on Unix), after finishing the
/// imports a previous run left `importing` (see [`resume_imports`]), with the task worker
/// ([`spawn_task_worker`]) running beside it if the state has a task environment.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    let resume_state = state.clone();
    let resumed = tokio::task::spawn_blocking(move || resume_imports(&resume_state)).await;
    if let Ok(Err(error)) = resumed {
        return Err(std::io::Error::other(format!(
            "could not resume interrupted imports: {error:?}"
        )));
    }
    let worker = spawn_task_worker(&state, DEFAULT_POLL_INTERVAL);
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Some(worker) = worker {
        worker.abort();
    }
    served
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
