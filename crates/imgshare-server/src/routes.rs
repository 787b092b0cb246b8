//! The route table: every path the API serves, its methods and handler, and the layers that
//! give Glance's check order. Read the table in [`v2`]; the rest is how it is mounted.
//!
//! Where axum's defaults differ from Glance, the API keeps Glance's behaviour:
//! - Every `/v2/...` route also exists as `/v2/{tenant_id}/...`, where the tenant must be the
//!   caller's (404 otherwise, before the method is looked at).
//! - `GET /`, `GET /versions`, `GET /v2` and `GET /v2/` need no token, nor do the built-in
//!   identity's `/v2.0/tokens` endpoints when it is on; everything else, unknown paths included,
//!   needs one first (401 before 404).
//! - A path segment with a bad percent escape or non-UTF-8 text is 404 (axum: 400 or literal).
//! - `HEAD` is not served (axum answers it with the `GET` handler): 405.
//! - 405 has the JSON error body and lists methods as `GET, PATCH, DELETE` (axum: an empty body
//!   and `GET,HEAD,PATCH,DELETE`).
//! - An empty segment is an empty parameter (`GET /v2/images/` asks for the image "", 404 with
//!   the engine's wording); axum's parameters never match an empty segment. Other trailing
//!   slashes name nothing (404), as in axum.

use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;

use crate::auth::{authenticate, decodable_path, own_tenant, NOT_FOUND};
use crate::error::ApiError;
use crate::handlers::{audit, image_data, images, import, members, tags, tasks, versions};
use crate::observe::{assign_request_id, note_route, note_served, trace_layer};
use crate::state::AppState;

/// The API as an axum router.
pub fn router(state: AppState) -> Router {
    let body_limit = DefaultBodyLimit::max(state.max_body_bytes);
    let tenant_version = Router::new()
        .route("/v2/{tenant_id}", get(versions::tenant_version))
        .route("/v2/{tenant_id}/", get(versions::tenant_version))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(own_tenant));
    let authenticated = Router::new()
        .nest("/v2", v2())
        .nest(
            "/v2/{tenant_id}",
            v2().layer(middleware::from_fn(own_tenant)),
        )
        .merge(tenant_version)
        .fallback(not_found)
        .layer(middleware::from_fn(decodable_path))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let identity = state.builtin_identity.clone();
    let mut open = Router::new().route("/healthcheck", get(crate::health::healthcheck));
    if let Some(handle) = state.metrics.clone() {
        let engine = std::sync::Arc::clone(&state.engine);
        open = open.route(
            "/metrics",
            get(move || crate::metrics::answer(engine, handle)),
        );
    }
    let app = Router::new()
        .route("/", get(versions::versions))
        .route("/versions", get(versions::versions))
        .route("/v2", get(versions::version))
        .route("/v2/", get(versions::version))
        .merge(open)
        .method_not_allowed_fallback(method_not_allowed)
        .merge(authenticated)
        .layer(middleware::from_fn(note_route))
        .layer(body_limit)
        .with_state(state);
    // The built-in identity's `/v2.0/tokens` endpoints need no token: they hand them out.
    let outer = match identity {
        Some(identity) => imgshare_identity::router(identity),
        None => Router::new(),
    };
    // The edge runs before routing, so that it sees every request (HEAD included) and every
    // response (401, 404 and 405 included); the request's ids and its log line are outside it,
    // so that the line shows what the client got.
    outer
        .fallback_service(app)
        .layer(middleware::from_fn(edge))
        .layer(middleware::from_fn(note_served))
        .layer(trace_layer())
        .layer(middleware::from_fn(assign_request_id))
}

/// The v2 resources, mounted under `/v2` and `/v2/{tenant_id}`. The order of the methods on
/// each route is the order of its `Allow` header.
fn v2() -> Router<AppState> {
    let table: [(&str, MethodRouter<AppState>); 17] = [
        ("/images", get(images::list).post(images::create)),
        (
            "/images/{image_id}",
            get(images::show)
                .patch(images::update)
                .delete(images::delete),
        ),
        (
            "/images/{image_id}/actions/deactivate",
            post(images::deactivate),
        ),
        (
            "/images/{image_id}/actions/reactivate",
            post(images::reactivate),
        ),
        (
            "/images/{image_id}/file",
            get(image_data::download).put(image_data::upload),
        ),
        ("/images/{image_id}/stage", put(image_data::stage)),
        ("/images/{image_id}/import", post(import::import)),
        ("/images/{image_id}/tasks", get(tasks::image_tasks)),
        // imgshare's own, not Glance's: the owner's view of the event log (`docs/audit.md`).
        ("/images/{image_id}/history", get(audit::history)),
        ("/images/{image_id}/access", get(audit::access_at)),
        (
            "/images/{image_id}/members",
            get(members::list).post(members::add),
        ),
        (
            "/images/{image_id}/members/{member_id}",
            get(members::show)
                .put(members::update)
                .delete(members::remove),
        ),
        (
            "/images/{image_id}/tags/{tag}",
            put(tags::add).delete(tags::remove),
        ),
        ("/info/import", get(import::info)),
        ("/tasks", get(tasks::list).post(tasks::create)),
        ("/tasks/{task_id}", get(tasks::show)),
        ("/schemas/{name}", get(versions::schema)),
    ];
    let mut router = Router::new();
    for (path, methods) in table {
        for variant in with_empty_parameters(path) {
            router = router.route(&variant, methods.clone());
        }
    }
    router.method_not_allowed_fallback(method_not_allowed)
}

/// `path` and every variant of it with some parameters left empty (`/images/{image_id}` and
/// `/images/`). An empty segment has always been an empty parameter here (`GET /v2/images/` is
/// "No image found with ID "), while axum's parameters never match an empty segment. The
/// extractors in `extract` default a missing parameter to "".
fn with_empty_parameters(path: &str) -> Vec<String> {
    let mut variants = vec![String::new()];
    for segment in path.split('/').skip(1) {
        let empty_too = segment.starts_with('{');
        let mut next = Vec::with_capacity(variants.len() * 2);
        for variant in &variants {
            next.push(format!("{variant}/{segment}"));
            if empty_too {
                next.push(format!("{variant}/"));
            }
        }
        variants = next;
    }
    variants
}

async fn not_found() -> ApiError {
    ApiError::not_found(NOT_FOUND)
}

/// Marks axum's 405 so that [`edge`] renders it (axum adds `Allow` after this handler).
#[derive(Debug, Clone, Copy)]
struct MethodNotAllowed;

async fn method_not_allowed() -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response.extensions_mut().insert(MethodNotAllowed);
    response
}

/// A 405 a handler decides on, listing `allow` (as axum writes it); [`edge`] renders it.
pub(crate) fn method_not_allowed_for(allow: &'static str) -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response.extensions_mut().insert(MethodNotAllowed);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Turns `HEAD` into a method no route serves, and renders axum's 405 as the API's JSON error
/// with Glance's `Allow` list.
async fn edge(mut request: Request, next: Next) -> Response {
    let head = request.method() == Method::HEAD;
    if head {
        if let Ok(unserved) = Method::from_bytes(b"HEAD-NOT-SERVED") {
            *request.method_mut() = unserved;
        }
    }
    let mut response = next.run(request).await;
    // axum adds `Allow` to whatever a route's method-not-allowed path answers, also when a layer
    // in front of it (token, path, tenant) answered first; only a 405 lists methods.
    if response.extensions().get::<MethodNotAllowed>().is_none() {
        response.headers_mut().remove(header::ALLOW);
    } else {
        let allow = response
            .headers()
            .get(header::ALLOW)
            .and_then(|allow| allow.to_str().ok())
            .map(glance_allow)
            .unwrap_or(HeaderValue::from_static(""));
        response = ApiError::method_not_allowed(allow).into_response();
    }
    if head {
        response = without_body(response);
    }
    response
}

/// The answer to a `HEAD`: the headers, with the length of the body it would have had.
fn without_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    if !parts.headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(length) = body.size_hint().exact() {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    Response::from_parts(parts, Body::empty())
}

/// axum's `Allow` (`GET,HEAD,PATCH`) as the API has always sent it (`GET, PATCH`).
fn glance_allow(axum_allow: &str) -> HeaderValue {
    let methods: Vec<&str> = axum_allow
        .split(',')
        .map(str::trim)
        .filter(|method| *method != "HEAD")
        .collect();
    HeaderValue::from_str(&methods.join(", ")).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_drop_head_and_are_comma_space_separated() {
        assert_eq!(glance_allow("GET,HEAD,PATCH,DELETE"), "GET, PATCH, DELETE");
        assert_eq!(glance_allow("GET,HEAD"), "GET");
        assert_eq!(glance_allow("PUT,DELETE"), "PUT, DELETE");
    }

    #[test]
    fn each_parameter_may_also_be_empty() {
        assert_eq!(with_empty_parameters("/tasks"), vec!["/tasks"]);
        assert_eq!(
            with_empty_parameters("/images/{image_id}/tags/{tag}"),
            vec![
                "/images/{image_id}/tags/{tag}",
                "/images/{image_id}/tags/",
                "/images//tags/{tag}",
                "/images//tags/",
            ]
        );
    }
}
