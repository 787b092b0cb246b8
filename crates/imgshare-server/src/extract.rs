//! What handlers take from a request: the caller's [`Context`], path parameters, and bodies read
//! under the body limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chrono::Utc;
use imgshare_core::Context;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::identity::Identity;
use crate::observe::RequestId;
use crate::state::AppState;

/// The caller's context: now, the authenticated actor, the endpoint's region, the request id.
pub(crate) struct Ctx(pub(crate) Context);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Only reachable behind the authentication layer, which puts the identity there.
        let identity = parts
            .extensions
            .get::<Identity>()
            .ok_or_else(ApiError::unauthorized)?;
        let ids = parts.extensions.get::<RequestId>();
        Ok(Ctx(Context {
            now: Utc::now(),
            actor: identity.actor(),
            region: state.region.clone(),
            request_id: ids.map(|ids| ids.local.clone()),
            global_request_id: ids.and_then(|ids| ids.global.clone()),
        }))
    }
}

/// `{image_id}` (other parameters, such as the tenant prefix, are ignored). A parameter missing
/// from the route is an empty segment (see `routes::with_empty_parameters`): "".
#[derive(Debug, Deserialize)]
pub(crate) struct ImagePath {
    #[serde(default)]
    pub(crate) image_id: String,
}

/// `{image_id}` and `{member_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct MemberPath {
    #[serde(default)]
    pub(crate) image_id: String,
    #[serde(default)]
    pub(crate) member_id: String,
}

/// `{image_id}` and `{tag}`.
#[derive(Debug, Deserialize)]
pub(crate) struct TagPath {
    #[serde(default)]
    pub(crate) image_id: String,
    #[serde(default)]
    pub(crate) tag: String,
}

/// `{task_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct TaskPath {
    #[serde(default)]
    pub(crate) task_id: String,
}

/// `{name}` of a schema.
#[derive(Debug, Deserialize)]
pub(crate) struct SchemaPath {
    #[serde(default)]
    pub(crate) name: String,
}

/// `{tenant_id}` of a `/v2/{tenant_id}/...` prefix.
#[derive(Debug, Deserialize)]
pub(crate) struct TenantPath {
    pub(crate) tenant_id: String,
}

/// A request body read whole: over the body limit (declared `Content-Length` or actual) is 413.
/// The limit is the router's `DefaultBodyLimit`, which is `AppState::max_body_bytes`.
pub(crate) struct Payload(pub(crate) Bytes);

impl FromRequest<AppState> for Payload {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.max_body_bytes;
        // A declared length over the limit is refused before anything is read.
        if declared_length(request.headers()).is_some_and(|length| length > limit as u64) {
            return Err(ApiError::body_too_large(limit));
        }
        Bytes::from_request(request, state)
            .await
            .map(Payload)
            .map_err(|_| ApiError::body_too_large(limit))
    }
}

/// A request that must have no body: read under the limit like [`Payload`] (413 first), then a
/// non-empty body is 400.
pub(crate) struct NoBody;

impl FromRequest<AppState> for NoBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let Payload(body) = Payload::from_request(request, state).await?;
        if body.is_empty() {
            Ok(NoBody)
        } else {
            Err(ApiError::bad_request(
                "body_not_expected",
                "A body is not expected with this request.",
            ))
        }
    }
}

/// The `Content-Length` a request declares, if it is a number.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.trim().parse::<u64>().ok())
}

/// A JSON request body: an object or an array (anything else is 400, as in Glance).
pub(crate) fn json_body(body: &[u8]) -> Result<Value, ApiError> {
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

/// Parses a path id strictly: only the hyphenated 36-character form is an id.
pub(crate) fn parse_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

/// An image id from the path; 404 with the engine's wording if it is not one.
pub(crate) fn image_id(text: &str) -> Result<Uuid, ApiError> {
    parse_id(text).ok_or_else(|| ApiError::image_not_found(text))
}

/// Whether a path segment percent-decodes to UTF-8 text. axum's `Path` decodes the parameters
/// it extracts, but leaves a bad escape (`%zz`) as it is and answers 400 for text that is not
/// UTF-8; the API answers 404 for both, for every segment, as it always has.
pub(crate) fn decodes(segment: &str) -> bool {
    imgshare_projection::percent::decode_path(segment).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_hyphenated_uuids() {
        assert!(parse_id("0000000f-0000-0000-0000-000000000000").is_some());
        assert!(parse_id("0000000f000000000000000000000000").is_none());
        assert!(parse_id("not-a-uuid").is_none());
        assert!(parse_id("ééééééééééééééééééé").is_none());
    }

    #[test]
    fn segments_must_decode_to_utf8() {
        for good in ["images", "a%20b", "a%2Fb", "%C3%A9", ""] {
            assert!(decodes(good), "{good}");
        }
        for bad in ["%zz", "%ff", "%", "a%2", "%C3"] {
            assert!(!decodes(bad), "{bad}");
        }
    }
}
