//! The Rackspace Cloud Identity v2.0 endpoints of the built-in identity, as an axum router.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use crate::builtin::{AuthRequest, BuiltinIdentity};
use crate::IdentityError;

/// `POST /v2.0/tokens`, `DELETE /v2.0/tokens`, `GET` and `DELETE /v2.0/tokens/{id}`, to be
/// merged into the server's router.
pub fn router(identity: Arc<BuiltinIdentity>) -> Router {
    Router::new()
        .route("/v2.0/tokens", post(authenticate).delete(revoke_own))
        .route("/v2.0/tokens/{id}", delete(revoke_other).get(validate))
        .with_state(identity)
}

/// The answer to a failure: Rackspace's `{"<fault>": {"code", "message"}}` body.
pub(crate) fn error_response(error: &IdentityError) -> Response {
    let (status, fault) = match error {
        IdentityError::BadRequest(_) => (StatusCode::BAD_REQUEST, "badRequest"),
        IdentityError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
        IdentityError::Disabled(_) => (StatusCode::FORBIDDEN, "userDisabled"),
        IdentityError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        IdentityError::TokenNotFound => (StatusCode::NOT_FOUND, "itemNotFound"),
        IdentityError::OverLimit { retry_at } => {
            // Repose's answer (413, not 429), with the moment the user may try again.
            let seconds = (*retry_at - Utc::now()).num_seconds().max(1);
            let body = json!({"overLimit": {
                "code": 413,
                "message": "OverLimit Retry...",
                "details": "Too many failed authentications for this user.",
                "retryAfter": retry_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }});
            let mut response = (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
        IdentityError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "serviceUnavailable"),
        IdentityError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "identityFault"),
    };
    let message = match error {
        IdentityError::Internal(detail) => {
            eprintln!("imgshare: identity: {detail}");
            "Internal server error.".to_owned()
        }
        other => other.to_string(),
    };
    let body = json!({ fault: {"code": status.as_u16(), "message": message} });
    (status, Json(body)).into_response()
}

fn caller_token(headers: &HeaderMap) -> Result<&str, IdentityError> {
    headers
        .get("x-auth-token")
        .and_then(|value| value.to_str().ok())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            IdentityError::Unauthorized(
                "No valid token provided. Please use the 'X-Auth-Token' header with a valid token."
                    .into(),
            )
        })
}

async fn authenticate(
    State(identity): State<Arc<BuiltinIdentity>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let request = match AuthRequest::parse(&body) {
        Ok(request) => request,
        Err(error) => return error_response(&error),
    };
    let with_catalog = query
        .get("include_endpoints")
        .is_none_or(|value| !value.eq_ignore_ascii_case("false"));
    // argon2 is deliberately slow: keep it off the async workers.
    let worker = Arc::clone(&identity);
    let result =
        tokio::task::spawn_blocking(move || worker.authenticate(&request, Utc::now())).await;
    match result {
        Ok(Ok(access)) => {
            let catalog = with_catalog.then_some(&identity.options().catalog);
            (StatusCode::OK, Json(access.to_json(catalog))).into_response()
        }
        Ok(Err(error)) => error_response(&error),
        Err(join) => error_response(&IdentityError::Internal(format!(
            "authentication task failed: {join}"
        ))),
    }
}

async fn validate(
    State(identity): State<Arc<BuiltinIdentity>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = caller_token(&headers).and_then(|caller| {
        identity.validate_for(
            caller,
            &id,
            query.get("belongsTo").map(String::as_str),
            Utc::now(),
        )
    });
    match result {
        // Rackspace's validate samples carry the token and the user, not the catalog.
        Ok(access) => (StatusCode::OK, Json(access.to_json(None))).into_response(),
        Err(error) => error_response(&error),
    }
}

async fn revoke_own(State(identity): State<Arc<BuiltinIdentity>>, headers: HeaderMap) -> Response {
    match caller_token(&headers).and_then(|caller| identity.revoke_for(caller, None, Utc::now())) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(&error),
    }
}

async fn revoke_other(
    State(identity): State<Arc<BuiltinIdentity>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = caller_token(&headers)
        .and_then(|caller| identity.revoke_for(caller, Some(&id), Utc::now()));
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(&error),
    }
}
