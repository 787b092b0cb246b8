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
//! `PUT /v2/images/{id}/file` stores the data in [`AppState::data_dir`] as `<data_dir>/<id>`,
//! with md5 (`checksum`) and sha512 (`os_hash_value`) computed while streaming;
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
//! Where the spec is silent the adapter follows Glance's middleware order:
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

pub mod error;
pub mod identity;
mod images;
mod import;
pub mod tasks;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use imgshare_core::image::IMPORT_METHODS;
use imgshare_core::patch::parse_patch_bytes;
use imgshare_core::{Command, Context, ImageCommand, Region, TaskCommand};
use imgshare_projection::schemas::{schema_document, SchemaKind};
use imgshare_projection::views;
use imgshare_store::{Engine, TaskEnvironment};
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use images::{create_image, download, remove_data, stage, upload};

pub use error::ApiError;
pub use identity::{Identity, TokenStore, TokenStoreError};
pub use import::resume_imports;
pub use tasks::{spawn_task_worker, DEFAULT_POLL_INTERVAL};

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";
/// The header listing the interoperable-import methods, sent on `POST /v2/images`.
pub const IMPORT_METHODS_HEADER: &str = "openstack-image-import-methods";
/// The header carrying the caller's token.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";
/// Default limit on request bodies.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default limit on uploaded image data: 40 GiB.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 40 * 1024 * 1024 * 1024;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine (blocking: called through `spawn_blocking`).
    pub engine: Arc<Engine>,
    /// Known tokens.
    pub tokens: Arc<TokenStore>,
    /// The region this endpoint serves.
    pub region: Region,
    /// Bodies larger than this are refused with 413 (image data has its own limit).
    pub max_body_bytes: usize,
    /// Image data (`PUT /v2/images/{id}/file`) larger than this is refused with 413.
    pub max_image_bytes: u64,
    /// Where image data is kept, one file per image named by its id; `None`: uploads are 501.
    pub data_dir: Option<PathBuf>,
    /// What the task worker runs tasks with; `None`: tasks stay pending (no worker).
    pub tasks: Option<Arc<TaskEnvironment>>,
    /// Wakes the task worker when a task is created.
    pub task_wakeup: Arc<Notify>,
}

impl AppState {
    /// A state with the default body limit ([`DEFAULT_MAX_BODY_BYTES`]).
    pub fn new(engine: Arc<Engine>, tokens: Arc<TokenStore>, region: Region) -> Self {
        AppState {
            engine,
            tokens,
            region,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
            data_dir: None,
            tasks: None,
            task_wakeup: Arc::new(Notify::new()),
        }
    }
}

/// The API as an axum router.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(state)
}

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

/// A known path, with its path parameters (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Versions,
    /// `/v2` or `/v2/{tenant_id}` (with or without a trailing slash): the v2 version document,
    /// which version discovery (keystoneauth, openstacksdk) fetches from an image endpoint.
    Version,
    Images,
    Image(String),
    /// `/images/{id}/actions/{deactivate|reactivate}`: the id and whether it deactivates.
    ImageAction(String, bool),
    ImageFile(String),
    ImageStage(String),
    ImageImport(String),
    /// `/v2/info/import`: the interoperable-import methods served.
    InfoImport,
    ImageTasks(String),
    Members(String),
    Member(String, String),
    Tag(String, String),
    Tasks,
    Task(String),
    Schema(String),
}

impl Route {
    /// The methods the route answers, as the `Allow` header lists them.
    fn allow(&self) -> &'static str {
        match self {
            Route::Versions
            | Route::Version
            | Route::Task(_)
            | Route::Schema(_)
            | Route::InfoImport => "GET",
            Route::ImageStage(_) => "PUT",
            Route::ImageImport(_) => "POST",
            Route::Image(_) => "GET, PATCH, DELETE",
            Route::Images | Route::Members(_) | Route::Tasks => "GET, POST",
            Route::ImageAction(..) => "POST",
            Route::ImageFile(_) => "GET, PUT",
            Route::ImageTasks(_) => "GET",
            Route::Member(..) => "GET, PUT, DELETE",
            Route::Tag(..) => "PUT, DELETE",
        }
    }

    fn allows(&self, method: &Method) -> bool {
        self.allow()
            .split(", ")
            .any(|allowed| allowed == method.as_str())
    }
}

fn match_v2(segments: &[String]) -> Option<Route> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let route = match segments.as_slice() {
        ["images"] => Route::Images,
        ["images", id] => Route::Image((*id).to_owned()),
        ["images", id, "actions", "deactivate"] => Route::ImageAction((*id).to_owned(), true),
        ["images", id, "actions", "reactivate"] => Route::ImageAction((*id).to_owned(), false),
        ["images", id, "file"] => Route::ImageFile((*id).to_owned()),
        ["images", id, "tasks"] => Route::ImageTasks((*id).to_owned()),
        ["images", id, "stage"] => Route::ImageStage((*id).to_owned()),
        ["images", id, "import"] => Route::ImageImport((*id).to_owned()),
        ["info", "import"] => Route::InfoImport,
        ["images", id, "members"] => Route::Members((*id).to_owned()),
        ["images", id, "members", member] => Route::Member((*id).to_owned(), (*member).to_owned()),
        ["images", id, "tags", tag] => Route::Tag((*id).to_owned(), (*tag).to_owned()),
        ["tasks"] => Route::Tasks,
        ["tasks", id] => Route::Task((*id).to_owned()),
        ["schemas", name] => Route::Schema((*name).to_owned()),
        _ => return None,
    };
    Some(route)
}

/// The route of a path, and the tenant of a `/v2/{tenant_id}/...` prefix if there is one.
fn parse_path(path: &str) -> Option<(Option<String>, Route)> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() || rest == "versions" {
        return Some((None, Route::Versions));
    }
    let segments: Vec<String> = rest.split('/').map(percent_decode).collect::<Option<_>>()?;
    let (first, segments) = segments.split_first()?;
    if first != "v2" {
        return None;
    }
    if matches!(segments, [] | [_]) && segments.iter().all(String::is_empty) {
        return Some((None, Route::Version));
    }
    if let Some(route) = match_v2(segments) {
        return Some((None, route));
    }
    let (tenant, segments) = segments.split_first()?;
    if tenant.is_empty() {
        return None;
    }
    if matches!(segments, [] | [_]) && segments.iter().all(String::is_empty) {
        return Some((Some(tenant.clone()), Route::Version));
    }
    match_v2(segments).map(|route| (Some(tenant.clone()), route))
}

/// Decodes `%XX` escapes; `None` for a bad escape or text that is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = hex_value(*bytes.get(index + 1)?)?;
            let low = hex_value(*bytes.get(index + 2)?)?;
            out.push(high << 4 | low);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// Parses a path id strictly: only the hyphenated 36-character form is an id.
fn parse_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

fn image_id(text: &str) -> Result<Uuid, ApiError> {
    parse_id(text).ok_or_else(|| ApiError::image_not_found(text))
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let request_id = format!("req-{}", Uuid::new_v4());
    let mut response = match handle(&state, request, &request_id).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

fn error_response(error: &ApiError) -> Response {
    let mut response = json_response(error.status, &error.body());
    for (name, value) in &error.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        )],
        body,
    )
        .into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn base_url(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_default()
}

fn versions(headers: &HeaderMap) -> Response {
    let base = base_url(headers);
    json_response(
        StatusCode::MULTIPLE_CHOICES,
        &json!({"versions": [{
            "id": "v2.0",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": format!("{base}/v2/")}],
        }]}),
    )
}

/// The version document of `/v2` (or `/v2/{tenant_id}`), 200: its self link is the versioned
/// endpoint a discovering client then appends `images`, `tasks`, ... to.
fn version(headers: &HeaderMap, tenant: Option<&str>) -> Response {
    let base = base_url(headers);
    let href = match tenant {
        Some(tenant) => format!("{base}/v2/{tenant}/"),
        None => format!("{base}/v2/"),
    };
    json_response(
        StatusCode::OK,
        &json!({"versions": [{
            "id": "v2.0",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": href}],
        }]}),
    )
}

fn authenticate<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a Identity, ApiError> {
    headers
        .get(AUTH_TOKEN_HEADER)
        .and_then(|token| token.to_str().ok())
        .and_then(|token| state.tokens.identify(token.trim()))
        .ok_or_else(ApiError::unauthorized)
}

async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::body_too_large(limit))
}

/// A JSON request body: an object or an array (anything else is 400, as in Glance).
fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "body_expected",
            "Body expected in request.",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::malformed_json())?;
    if value.is_object() || value.is_array() {
        Ok(value)
    } else {
        Err(ApiError::bad_request(
            "unexpected_body_type",
            "Unexpected body type. Expected list/dict.",
        ))
    }
}

/// Runs a blocking engine call off the async workers.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|_| ApiError::internal("worker_failed"))?
}

async fn handle(
    state: &AppState,
    request: Request,
    request_id: &str,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let parsed = parse_path(parts.uri.path());
    if let Some((None, Route::Versions)) = parsed {
        return if parts.method == Method::GET {
            Ok(versions(&parts.headers))
        } else {
            Err(ApiError::method_not_allowed(Route::Versions.allow()))
        };
    }
    if let Some((None, Route::Version)) = parsed {
        return if parts.method == Method::GET {
            Ok(version(&parts.headers, None))
        } else {
            Err(ApiError::method_not_allowed(Route::Version.allow()))
        };
    }
    let identity = authenticate(state, &parts.headers)?;
    let Some((tenant, route)) = parsed else {
        return Err(ApiError::not_found("The resource could not be found."));
    };
    if tenant
        .as_ref()
        .is_some_and(|tenant| *tenant != identity.tenant_id)
    {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    if !route.allows(&parts.method) {
        return Err(ApiError::method_not_allowed(route.allow()));
    }
    let ctx = Context {
        now: Utc::now(),
        actor: identity.actor(),
        region: state.region.clone(),
        request_id: Some(request_id.to_owned()),
    };
    if let (Route::ImageFile(id), &Method::PUT) = (&route, &parts.method) {
        return upload(state, ctx, id, &parts.headers, body).await;
    }
    if let Route::ImageStage(id) = &route {
        return stage(state, ctx, id, &parts.headers, body).await;
    }
    let body = read_body(state, &parts.headers, body).await?;
    let body_rejected = parts.method == Method::GET
        || parts.method == Method::DELETE
        || matches!(route, Route::Tag(..) | Route::ImageAction(..));
    if body_rejected && !body.is_empty() {
        return Err(ApiError::bad_request(
            "body_not_expected",
            "A body is not expected with this request.",
        ));
    }
    let engine = Arc::clone(&state.engine);
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let method = parts.method;
    match route {
        Route::Versions => Ok(versions(&parts.headers)),
        Route::Version => Ok(version(&parts.headers, tenant.as_deref())),
        Route::Images => {
            if method == Method::POST {
                let mut response = create_image(engine, ctx, &body).await?;
                let methods = HeaderValue::from_str(&IMPORT_METHODS.join(","));
                if let (Some(_), Ok(methods)) = (&state.data_dir, methods) {
                    response
                        .headers_mut()
                        .insert(HeaderName::from_static(IMPORT_METHODS_HEADER), methods);
                }
                return Ok(response);
            }
            let page = blocking(move || Ok(engine.list_images(&ctx, &query)?)).await?;
            Ok(json_response(StatusCode::OK, &page))
        }
        Route::Image(id) => {
            if method == Method::PATCH {
                let content_type = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok());
                let document = parse_patch_bytes(content_type, &body)?;
                let image_id = image_id(&id)?;
                let view = blocking(move || {
                    let command = Command::Image {
                        image_id,
                        command: ImageCommand::Update(document),
                    };
                    let outcome = engine.execute(&ctx, command)?;
                    let image = outcome
                        .image()
                        .ok_or_else(|| ApiError::internal("missing_state"))?;
                    Ok(views::image(engine.profile(), image))
                })
                .await?;
                return Ok(json_response(StatusCode::OK, &view));
            }
            let image_id = image_id(&id)?;
            if method == Method::DELETE {
                execute_image(engine, ctx, image_id, ImageCommand::Delete).await?;
                remove_data(state, image_id).await;
                return Ok(no_content());
            }
            let view = blocking(move || Ok(engine.image_view(&ctx, image_id)?)).await?;
            Ok(json_response(StatusCode::OK, &view))
        }
        Route::ImageAction(id, deactivate) => {
            let image_id = image_id(&id)?;
            let command = if deactivate {
                ImageCommand::Deactivate
            } else {
                ImageCommand::Reactivate
            };
            execute_image(engine, ctx, image_id, command).await?;
            Ok(no_content())
        }
        Route::ImageFile(id) => download(state, engine, ctx, &id).await,
        Route::ImageStage(id) => stage(state, ctx, &id, &parts.headers, Body::from(body)).await,
        Route::ImageImport(id) => import::import(state, ctx, &id, &body).await,
        Route::InfoImport => Ok(import::info()),
        Route::ImageTasks(id) => {
            let image_id = image_id(&id)?;
            let tasks = blocking(move || image_tasks(&engine, &ctx, image_id)).await?;
            Ok(json_response(StatusCode::OK, &json!({"tasks": tasks})))
        }
        Route::Members(id) => {
            let image_id = image_id(&id)?;
            if method == Method::POST {
                let body = json_body(&body)?;
                let member_id = match body.get("member") {
                    None => {
                        return Err(ApiError::bad_request(
                            "member_not_specified",
                            "Member to be added not specified",
                        ))
                    }
                    Some(Value::String(member)) => member.clone(),
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "invalid_member",
                            "Member must be a string",
                        ))
                    }
                };
                let command = ImageCommand::AddMember {
                    member_id: member_id.clone(),
                };
                let view = member_command(engine, ctx, image_id, member_id, command).await?;
                return Ok(json_response(StatusCode::OK, &view));
            }
            let view = blocking(move || Ok(engine.members_view(&ctx, image_id)?)).await?;
            Ok(json_response(StatusCode::OK, &view))
        }
        Route::Member(id, member_id) => {
            let image_id = image_id(&id)?;
            if method == Method::PUT {
                let body = json_body(&body)?;
                let status = match body.get("status") {
                    None => {
                        return Err(ApiError::bad_request(
                            "status_not_specified",
                            "Status not specified",
                        ))
                    }
                    Some(Value::String(status)) => status.clone(),
                    Some(other) => other.to_string(),
                };
                let command = ImageCommand::SetMemberStatus {
                    member_id: member_id.clone(),
                    status,
                };
                let view = member_command(engine, ctx, image_id, member_id, command).await?;
                return Ok(json_response(StatusCode::OK, &view));
            }
            if method == Method::DELETE {
                let command = ImageCommand::RemoveMember { member_id };
                execute_image(engine, ctx, image_id, command).await?;
                return Ok(no_content());
            }
            let view =
                blocking(move || Ok(engine.member_view(&ctx, image_id, &member_id)?)).await?;
            Ok(json_response(StatusCode::OK, &view))
        }
        Route::Tag(id, tag) => {
            let image_id = image_id(&id)?;
            let command = if method == Method::PUT {
                ImageCommand::AddTag { tag }
            } else {
                ImageCommand::RemoveTag { tag }
            };
            execute_image(engine, ctx, image_id, command).await?;
            Ok(no_content())
        }
        Route::Tasks => {
            if method == Method::POST {
                let created = create_task(engine, ctx, &body).await?;
                state.task_wakeup.notify_one();
                return Ok(created);
            }
            let page = blocking(move || Ok(engine.list_tasks(&ctx, &query)?)).await?;
            Ok(json_response(StatusCode::OK, &page))
        }
        Route::Task(id) => {
            let task_id = parse_id(&id).ok_or_else(|| ApiError::task_not_found(&id))?;
            let view = blocking(move || Ok(engine.task_view(&ctx, task_id)?)).await?;
            Ok(json_response(StatusCode::OK, &view))
        }
        Route::Schema(name) => {
            let kind = SchemaKind::from_path_segment(&name)
                .ok_or_else(|| ApiError::not_found("The resource could not be found."))?;
            let profile = engine.profile().schema_profile();
            Ok(json_response(
                StatusCode::OK,
                &schema_document(kind, profile),
            ))
        }
    }
}

/// The caller's visible tasks about an image (`input.image_uuid` or `result.image_id`), in the
/// order `GET /v2/tasks` lists them; 404 if the image is not visible.
fn image_tasks(engine: &Engine, ctx: &Context, image_id: Uuid) -> Result<Vec<Value>, ApiError> {
    engine.get_image(ctx, image_id)?;
    let wanted = image_id.to_string();
    let mut tasks = Vec::new();
    let mut query = String::new();
    loop {
        let page = engine.list_tasks(ctx, &query)?;
        let stubs = page["tasks"].as_array().cloned().unwrap_or_default();
        for stub in &stubs {
            let Some(task_id) = stub["id"].as_str().and_then(parse_id) else {
                continue;
            };
            let Ok(view) = engine.task_view(ctx, task_id) else {
                continue;
            };
            if view["input"]["image_uuid"] == wanted.as_str()
                || view["result"]["image_id"] == wanted.as_str()
            {
                tasks.push(view);
            }
        }
        let next = page["next"]
            .as_str()
            .and_then(|next| next.split_once('?'))
            .map(|(_, next_query)| next_query.to_owned());
        match next {
            Some(next) if !stubs.is_empty() && next != query => query = next,
            _ => break,
        }
    }
    Ok(tasks)
}

async fn execute_image(
    engine: Arc<Engine>,
    ctx: Context,
    image_id: Uuid,
    command: ImageCommand,
) -> Result<(), ApiError> {
    blocking(move || {
        engine.execute(&ctx, Command::Image { image_id, command })?;
        Ok(())
    })
    .await
}

/// Executes a member command and answers with that member as it is after the command.
async fn member_command(
    engine: Arc<Engine>,
    ctx: Context,
    image_id: Uuid,
    member_id: String,
    command: ImageCommand,
) -> Result<Value, ApiError> {
    blocking(move || {
        let outcome = engine.execute(&ctx, Command::Image { image_id, command })?;
        let member = outcome
            .image()
            .and_then(|image| image.members.get(&member_id))
            .ok_or_else(|| ApiError::internal("missing_state"))?;
        Ok(views::member(&image_id.to_string(), member))
    })
    .await
}

async fn create_task(engine: Arc<Engine>, ctx: Context, body: &[u8]) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let task_type = match body.get("type") {
        Some(Value::String(task_type)) => task_type.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_task_type",
                "Task 'type' must be a string",
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "task_type_not_specified",
                "Task 'type' not specified",
            ))
        }
    };
    let input = body.get("input").cloned().unwrap_or(Value::Null);
    let task_id = Uuid::new_v4();
    let view = blocking(move || {
        let command = Command::Task {
            task_id,
            command: TaskCommand::Create { task_type, input },
        };
        let outcome = engine.execute(&ctx, command)?;
        let task = outcome
            .task()
            .ok_or_else(|| ApiError::internal("missing_state"))?;
        Ok(views::task(engine.profile(), task))
    })
    .await?;
    let mut response = json_response(StatusCode::CREATED, &view);
    if let Ok(location) = HeaderValue::from_str(&format!("/v2/tasks/{task_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes_with_or_without_a_tenant() {
        assert_eq!(parse_path("/"), Some((None, Route::Versions)));
        assert_eq!(parse_path("/v2/images"), Some((None, Route::Images)));
        assert_eq!(
            parse_path("/v2/123/images/x/tags/a%20b"),
            Some((
                Some("123".to_owned()),
                Route::Tag("x".to_owned(), "a b".to_owned())
            ))
        );
        assert_eq!(parse_path("/v2/images/x/members/y/z"), None);
        assert_eq!(parse_path("/v2"), Some((None, Route::Version)));
        assert_eq!(parse_path("/v2/"), Some((None, Route::Version)));
        assert_eq!(
            parse_path("/v2/123/"),
            Some((Some("123".to_owned()), Route::Version))
        );
        assert_eq!(parse_path("/v2/123//"), None);
        assert_eq!(parse_path("/v2//images"), None);
        assert_eq!(parse_path("/v2/images/%zz"), None);
        assert_eq!(parse_path("/v2/images/%ff"), None);
        assert_eq!(parse_path("/v1/images"), None);
        assert_eq!(parse_path(""), None);
    }

    #[test]
    fn ids_must_be_hyphenated_uuids() {
        assert!(parse_id("0000000f-0000-0000-0000-000000000000").is_some());
        assert!(parse_id("0000000f000000000000000000000000").is_none());
        assert!(parse_id("not-a-uuid").is_none());
        assert!(parse_id("ééééééééééééééééééé").is_none());
    }
}
