//! The console's only way to the data: the public API, called in-process with the user's token.
//!
//! Each region's API is the same axum [`Router`] the server serves; a request goes through
//! `tower::ServiceExt::oneshot`, so the auth layer, the route table and the engine's rules
//! (RBAC, regions, 404-not-403) apply exactly as to any other client.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

/// Largest API answer the console reads (a page of images is far below).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// One region the console shows, and the API that serves it.
#[derive(Clone)]
pub struct RegionApi {
    /// The region's name as users see it (`DFW`).
    pub name: String,
    /// The API router of that region (the one `serve` serves for it).
    pub api: Router,
}

impl std::fmt::Debug for RegionApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionApi")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An API answer: its status and JSON body (`Null` when there is none).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl Answer {
    /// The API's own message of an error answer (`{"<kind>": {"message": ...}}`), or a generic
    /// one naming the status.
    pub(crate) fn message(&self) -> String {
        self.body
            .as_object()
            .and_then(|object| object.values().next())
            .and_then(|fault| fault.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "The API answered {} {}.",
                    self.status.as_u16(),
                    self.status.canonical_reason().unwrap_or("")
                )
            })
    }
}

/// Why the API could not be asked at all (never an API refusal: those are [`Answer`]s).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("could not build the request: {0}")]
    Request(String),
    #[error("could not read the answer: {0}")]
    Answer(String),
}

/// Calls `method path` on `api` as the holder of `token`, with a JSON body if given.
pub(crate) async fn call(
    api: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<Answer, CallError> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("x-auth-token", token)
        .header(header::ACCEPT, "application/json");
    let body = match body {
        Some(value) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    let request = builder
        .body(body)
        .map_err(|error| CallError::Request(error.to_string()))?;
    let response = match api.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
        .await
        .map_err(|error| CallError::Answer(error.to_string()))?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|error| CallError::Answer(error.to_string()))?
    };
    Ok(Answer { status, body })
}

/// Percent-encodes one path segment or query value (everything but unreserved characters).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
