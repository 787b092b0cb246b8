//! The layers every authenticated route passes before its method is looked at, in Glance's
//! order: token (401), path (404 for a segment that does not decode), tenant prefix (404 for
//! another account's). They run before axum's method routing answers 405, because axum applies
//! router layers to each route's method-not-allowed fallback as well.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use imgshare_identity::{ErrorKind, IdentityError};

use crate::error::ApiError;
use crate::extract::decodes;
use crate::identity::Identity;
use crate::state::AppState;
use crate::AUTH_TOKEN_HEADER;

/// The message of every 404 for a path that names nothing.
pub(crate) const NOT_FOUND: &str = "The resource could not be found.";

/// Asks the state's validator who is behind the `X-Auth-Token`: 401 without a token or for an
/// unknown, expired or revoked one; 403 for a valid token that cannot be used here (e.g. a
/// Keystone token without a project); 503 when the identity service cannot answer (never a
/// guess). Otherwise the caller's [`Identity`] goes into the request's extensions. Applied to
/// the fallback too, so an unknown path needs a token (as keystone middleware in front of
/// Glance does).
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(AUTH_TOKEN_HEADER)
        .and_then(|token| token.to_str().ok())
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_owned);
    let Some(token) = token else {
        return ApiError::unauthorized().into_response();
    };
    match state.validator.validate(&token).await {
        Ok(identity) => {
            let identity = Identity::from(identity);
            // The request's log line names the caller (never the token).
            let span = tracing::Span::current();
            span.record("tenant", identity.tenant_id.as_str());
            span.record("user", identity.user_id.as_str());
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(error) => refusal(&error).into_response(),
    }
}

/// The API's answer to a validator's refusal.
fn refusal(error: &IdentityError) -> ApiError {
    match error.kind() {
        ErrorKind::Forbidden => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", error.to_string())
        }
        ErrorKind::Unavailable | ErrorKind::OverLimit => {
            tracing::error!(error = %error, "identity service unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_unavailable",
                "The identity service is temporarily unavailable, so the token could not be \
                 checked; try again later.",
            )
        }
        ErrorKind::Internal => {
            tracing::error!(error = %error, "identity service unavailable");
            ApiError::internal("identity_internal")
        }
        // Unknown, expired, revoked, or its user disabled: one answer, as keystonemiddleware.
        _ => ApiError::unauthorized(),
    }
}

/// 404 for a path with a segment that does not percent-decode to UTF-8 (see [`decodes`]).
pub(crate) async fn decodable_path(request: Request, next: Next) -> Response {
    if request.uri().path().split('/').all(decodes) {
        next.run(request).await
    } else {
        ApiError::not_found(NOT_FOUND).into_response()
    }
}

/// 404 unless the `{tenant_id}` of a `/v2/{tenant_id}/...` path is the caller's account.
pub(crate) async fn own_tenant(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let tenant = axum::RequestPartsExt::extract::<Path<HashMap<String, String>>>(&mut parts)
        .await
        .ok()
        .and_then(|Path(mut params)| params.remove("tenant_id"));
    let caller = parts
        .extensions
        .get::<Identity>()
        .map(|identity| identity.tenant_id.as_str());
    match (tenant, caller) {
        (Some(tenant), Some(caller)) if !tenant.is_empty() && tenant == caller => {
            next.run(Request::from_parts(parts, body)).await
        }
        _ => ApiError::not_found(NOT_FOUND).into_response(),
    }
}
