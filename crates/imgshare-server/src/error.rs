//! Error responses: JSON nested by kind, e.g.
//! `{"itemNotFound": {"code": 404, "message": "...", "error_code": "image_not_found"}}`.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use imgshare_core::patch::{PatchError, PatchErrorKind, ACCEPT_PATCH};
use imgshare_core::ErrorKind;
use imgshare_store::EngineError;
use serde_json::json;

/// Message of a 500: internal details stay in the server.
const INTERNAL_MESSAGE: &str =
    "The server has either erred or is incapable of performing the requested operation.";

/// An error answer: status, message, stable code and extra headers.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The text for the client.
    pub message: String,
    /// A stable machine-readable code ([`EngineError::code`] for engine errors).
    pub error_code: &'static str,
    /// Headers to add (`Allow`, `Accept-Patch`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What really went wrong behind a 5xx whose message hides it: logged with the request id,
    /// never sent to the client.
    pub cause: Option<String>,
}

/// What the request log needs to know about an error answer; put into the response's
/// extensions, since the body is already JSON by the time the log line is written.
#[derive(Debug, Clone)]
pub(crate) struct ErrorInfo {
    pub(crate) error_code: &'static str,
    pub(crate) cause: Option<String>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            error_code,
            headers: Vec::new(),
            cause: None,
        }
    }

    /// The same error, with the cause the log shows for it.
    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// 400.
    pub fn bad_request(error_code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error_code, message)
    }

    /// 400 for a body that is not JSON.
    pub fn malformed_json() -> Self {
        Self::bad_request("malformed_json", "Malformed JSON in request body.")
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The request you have made requires authentication.",
        )
    }

    /// 404 for a path that names nothing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 404 for an image id that is not a UUID (the engine's wording for a missing image).
    pub fn image_not_found(image_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "image_not_found",
            format!("No image found with ID {}", echo(image_id)),
        )
    }

    /// 404 for a task id that is not a UUID.
    pub fn task_not_found(task_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "task_not_found",
            format!("No task found with ID {}", echo(task_id)),
        )
    }

    /// 405 with `Allow` (methods separated by `, `).
    pub fn method_not_allowed(allow: HeaderValue) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "The method is not allowed for the requested URL.",
        );
        error.headers.push((header::ALLOW, allow));
        error
    }

    /// 413 for a body over the configured limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("Request body is larger than the limit of {limit} bytes."),
        )
    }

    /// 500 without details.
    pub fn internal(error_code: &'static str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code,
            INTERNAL_MESSAGE,
        )
    }

    /// The kind key of the body.
    pub fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflict",
            413 => "overLimit",
            415 => "badMediaType",
            503 => "serviceUnavailable",
            507 => "overLimit",
            status if status >= 500 => "computeFault",
            _ => "badRequest",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({
            self.kind(): {
                "code": self.status.as_u16(),
                "message": self.message,
                "error_code": self.error_code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = crate::response::json_response(self.status, &self.body());
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(ErrorInfo {
            error_code: self.error_code,
            cause: self.cause,
        });
        response
    }
}

/// The HTTP status each kind of engine error answers with: the one place a lower layer's
/// refusal becomes a status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::OverLimit => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let status = status_of(error.kind());
        // 503 and 507 say what the operator must do (wait, make the database writable, free
        // space) and reveal nothing internal; other 5xx keep their details in the server.
        let actionable = matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::INSUFFICIENT_STORAGE
        );
        if status.is_server_error() && !actionable {
            return ApiError::internal(error.code()).with_cause(format_args!("{error}: {error:?}"));
        }
        let mut api = ApiError::new(status, error.code(), error.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Busy, read-only or a database that is away: the same request may succeed soon,
            // and the engine reconnects by itself; tell clients when to try again.
            api.headers
                .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            api.headers.push((
                HeaderName::from_static("accept-patch"),
                HeaderValue::from_static(ACCEPT_PATCH),
            ));
        }
        api
    }
}

impl From<imgshare_store::QueryError> for ApiError {
    fn from(error: imgshare_store::QueryError) -> Self {
        ApiError::from(EngineError::from(imgshare_store::ProjectionError::from(
            error,
        )))
    }
}

impl From<imgshare_core::DomainError> for ApiError {
    fn from(error: imgshare_core::DomainError) -> Self {
        ApiError::from(EngineError::from(error))
    }
}

impl From<PatchError> for ApiError {
    fn from(error: PatchError) -> Self {
        let status = status_of(error.kind.error_kind());
        let mut api = match error.kind {
            PatchErrorKind::UnsupportedMediaType => {
                ApiError::new(status, "unsupported_media_type", error.message)
            }
            PatchErrorKind::BadRequest => ApiError::new(status, "invalid_patch", error.message),
        };
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            api.headers.push((
                HeaderName::from_static("accept-patch"),
                HeaderValue::from_static(ACCEPT_PATCH),
            ));
        }
        api
    }
}

/// Client text echoed in a message, capped so a huge path is not copied back whole.
fn echo(text: &str) -> String {
    const MAX: usize = 128;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgshare_store::StoreError;

    #[test]
    fn storage_failures_answer_with_their_status_and_only_actionable_ones_with_their_text() {
        let full = ApiError::from(EngineError::Store(StoreError::Full));
        assert_eq!(full.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(full.error_code, "storage_full");
        assert_eq!(full.message, StoreError::Full.to_string());
        assert_eq!(full.body()["overLimit"]["code"], 507);

        let read_only = ApiError::from(EngineError::Store(StoreError::ReadOnly));
        assert_eq!(read_only.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(read_only.error_code, "database_read_only");
        assert!(read_only.message.contains("read-only"));

        let corrupt = ApiError::from(EngineError::Store(StoreError::DatabaseCorrupt(
            "file is not a database".to_owned(),
        )));
        assert_eq!(corrupt.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(corrupt.error_code, "database_corrupt");
        assert_eq!(corrupt.message, INTERNAL_MESSAGE);
        let cause = corrupt.cause.unwrap_or_default();
        assert!(cause.contains("file is not a database"), "{cause}");
    }

    #[test]
    fn a_database_that_is_away_is_503_with_a_retry_hint() {
        let retry_after = |error: &ApiError| {
            error
                .headers
                .iter()
                .find(|(name, _)| name == header::RETRY_AFTER)
                .map(|(_, value)| value.clone())
        };
        let away = ApiError::from(EngineError::Store(StoreError::Unavailable(
            "connection refused".to_owned(),
        )));
        assert_eq!(away.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(away.error_code, "database_unavailable");
        assert!(
            away.message.contains("connection refused"),
            "{}",
            away.message
        );
        assert_eq!(retry_after(&away), Some(HeaderValue::from_static("1")));
        let busy = ApiError::from(EngineError::Store(StoreError::Busy));
        assert_eq!(retry_after(&busy), Some(HeaderValue::from_static("1")));
        let full = ApiError::from(EngineError::Store(StoreError::Full));
        assert_eq!(retry_after(&full), None);
    }
}
