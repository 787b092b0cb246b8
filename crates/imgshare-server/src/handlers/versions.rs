//! The version documents (`/`, `/versions`, `/v2`, `/v2/{tenant_id}`) and the schemas.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use imgshare_projection::schemas::{schema_document, SchemaKind};
use serde_json::json;

use crate::auth::NOT_FOUND;
use crate::error::ApiError;
use crate::extract::{NoBody, SchemaPath, TenantPath};
use crate::response::json_response;
use crate::state::AppState;

fn base_url(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_default()
}

/// `GET /` and `GET /versions`: 300 with the version list, no token needed.
pub(crate) async fn versions(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    json_response(
        StatusCode::MULTIPLE_CHOICES,
        &json!({"versions": [{
            "id": "v2.0",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": format!("{base}/v2/")}],
        }]}),
    )
}

/// `GET /v2`: the v2 version document, no token needed.
pub(crate) async fn version(headers: HeaderMap) -> Response {
    version_document(&headers, None)
}

/// `GET /v2/{tenant_id}`: the version document of the tenant's endpoint.
pub(crate) async fn tenant_version(
    Path(TenantPath { tenant_id }): Path<TenantPath>,
    headers: HeaderMap,
    NoBody: NoBody,
) -> Response {
    version_document(&headers, Some(&tenant_id))
}

/// The version document, 200: its self link is the versioned endpoint a discovering client
/// (keystoneauth, openstacksdk) then appends `images`, `tasks`, ... to.
fn version_document(headers: &HeaderMap, tenant: Option<&str>) -> Response {
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

/// `GET /v2/schemas/{name}`: the profile's schema document.
pub(crate) async fn schema(
    State(state): State<AppState>,
    Path(SchemaPath { name }): Path<SchemaPath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let kind =
        SchemaKind::from_path_segment(&name).ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let profile = state.engine.profile().schema_profile();
    Ok(json_response(
        StatusCode::OK,
        &schema_document(kind, profile),
    ))
}
