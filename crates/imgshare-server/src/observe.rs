//! What the server tells its operator about each request: the request ids, one log line per
//! request (through `tower-http`'s [`TraceLayer`]), and the request metrics.
//!
//! The layers, outermost first: [`assign_request_id`] (the local id, and a caller's global id),
//! the trace layer (a `request` span holding method, ids, and later route, tenant and user; a
//! line when the response is ready), [`note_route`] (which route answered, for the line and the
//! metrics). The auth layer records tenant and user into the span; an error answer carries its
//! code and hidden cause in [`ErrorInfo`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::field::Empty;
use tracing::Span;
use uuid::Uuid;

use crate::error::ErrorInfo;
use crate::REQUEST_ID_HEADER;

/// The request's ids: `local` is this server's (`req-<uuid>`, sent back in
/// `X-Openstack-Request-Id` and stored with the events); `global` is the one a caller sent in
/// that header, kept to follow a request across services (as Glance keeps it).
#[derive(Debug, Clone)]
pub(crate) struct RequestId {
    pub(crate) local: String,
    pub(crate) global: Option<String>,
}

/// The route template that answered (`/v2/images/{image_id}`), filled in by [`note_route`] and
/// read when the log line is written; "unmatched" for a path no route serves.
#[derive(Debug, Clone, Default)]
struct RouteSlot(Arc<Mutex<Option<String>>>);

/// What the log line and the metrics take from the request, carried on the response.
#[derive(Debug, Clone)]
struct Served {
    method: String,
    route: String,
}

/// A caller's `X-Openstack-Request-Id`, if it is `req-` and a hyphenated UUID; anything else is
/// ignored (it would let a caller write arbitrary text into logs and events).
pub(crate) fn global_request_id(value: &str) -> Option<String> {
    let uuid = value.strip_prefix("req-")?;
    (uuid.len() == 36 && Uuid::try_parse(uuid).is_ok()).then(|| value.to_owned())
}

/// Gives the request its ids, and the response the local one.
pub(crate) async fn assign_request_id(mut request: Request, next: Next) -> Response {
    let local = format!("req-{}", Uuid::new_v4());
    let global = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(global_request_id);
    request.extensions_mut().insert(RequestId {
        local: local.clone(),
        global,
    });
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&local) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Puts an empty [`RouteSlot`] into the request and the [`Served`] summary into the response.
pub(crate) async fn note_served(mut request: Request, next: Next) -> Response {
    let slot = RouteSlot::default();
    let method = request.method().to_string();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let route = slot
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| "unmatched".to_owned());
    response.extensions_mut().insert(Served { method, route });
    response
}

/// Inside the router: records the matched route template in the request's [`RouteSlot`].
pub(crate) async fn note_route(request: Request, next: Next) -> Response {
    if let (Some(path), Some(slot)) = (
        request.extensions().get::<MatchedPath>(),
        request.extensions().get::<RouteSlot>(),
    ) {
        *slot.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.as_str().to_owned());
    }
    next.run(request).await
}

/// The trace layer: a span per request, a line per response.
pub(crate) fn trace_layer(
) -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), RequestLine, (), (), ()>
{
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(RequestLine)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// The `request` span: method and ids now; route, tenant and user once known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let ids = request.extensions().get::<RequestId>();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = Empty,
            request_id = ids.map(|ids| ids.local.as_str()),
            global_request_id = ids.and_then(|ids| ids.global.as_deref()),
            tenant = Empty,
            user = Empty,
        )
    }
}

/// The line written when a response is ready (its body may still be streaming), and the
/// request metrics. A 5xx is an error line with the cause the client was not told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLine;

impl<B> OnResponse<B> for RequestLine {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        let served = response.extensions().get::<Served>();
        let route = served.map_or("unmatched", |served| served.route.as_str());
        let method = served.map_or("", |served| served.method.as_str());
        span.record("route", route);
        let error = response.extensions().get::<ErrorInfo>();
        let error_code = error.map(|error| error.error_code);
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            let cause = error.and_then(|error| error.cause.as_deref());
            tracing::error!(
                parent: span,
                status = status.as_u16(),
                latency_ms,
                error_code,
                cause,
                "request failed"
            );
        } else {
            tracing::info!(
                parent: span,
                status = status.as_u16(),
                latency_ms,
                error_code,
                "request"
            );
        }
        crate::metrics::record_request(method, route, status.as_u16(), latency, error_code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_req_uuid_is_kept_as_a_global_request_id() {
        let good = "req-3f8a4a8e-8f0c-4a53-9c3e-0d6a1b2c3d4e";
        assert_eq!(global_request_id(good).as_deref(), Some(good));
        for bad in [
            "",
            "req-",
            "3f8a4a8e-8f0c-4a53-9c3e-0d6a1b2c3d4e",
            "req-3f8a4a8e8f0c4a539c3e0d6a1b2c3d4e",
            "req-3f8a4a8e-8f0c-4a53-9c3e-0d6a1b2c3d4e\nforged log line",
            "REQ-3f8a4a8e-8f0c-4a53-9c3e-0d6a1b2c3d4e",
        ] {
            assert_eq!(global_request_id(bad), None, "{bad:?}");
        }
    }
}
