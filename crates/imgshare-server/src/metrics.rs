//! The server's metrics, in Prometheus' text format on `GET /metrics` (`docs/operations.md`
//! lists each one).
//!
//! Metrics go through the `metrics` facade, so the engine records its own (commands appended,
//! group-commit sizes, state-cache hits) without knowing the exporter; [`install`] puts the
//! Prometheus recorder behind the facade once per process. Gauges that are cheaper to read than
//! to keep up to date (the log's head) are read when scraped.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use imgshare_store::Engine;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `method`, `route` (the template) and `status`.
pub const HTTP_REQUESTS: &str = "imgshare_http_requests_total";
/// Time from the request's arrival to its response's head, by `method` and `route`.
pub const HTTP_DURATION: &str = "imgshare_http_request_duration_seconds";
/// Error answers, by stable `error_code` and `status`.
pub const REFUSALS: &str = "imgshare_refusals_total";
/// Tasks finished by the worker, by `outcome` (`success`, `failure`).
pub const TASKS_FINISHED: &str = "imgshare_tasks_finished_total";
/// Task worker passes that failed before finishing (busy or failing database).
pub const TASK_WORKER_ERRORS: &str = "imgshare_task_worker_errors_total";
/// The log's last position, read when scraped.
pub const LOG_HEAD: &str = "imgshare_log_head_position";
/// Token reloads, by `result` (`ok`, `error`).
pub const TOKEN_RELOADS: &str = "imgshare_token_reloads_total";

/// Latency buckets, in seconds: from a cached GET to a large upload.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];
/// Commands per group commit.
const GROUP_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder behind the `metrics` facade (once per process: later calls
/// return the same handle) and describes the metrics.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(imgshare_store::metrics::GROUP_COMMIT_COMMANDS.to_owned()),
            &GROUP_BUCKETS,
        )?
        .build_recorder();
    let handle = recorder.handle();
    // A recorder someone else installed first wins; this handle then stays empty, which the
    // caller sees as missing metrics rather than a failed start.
    let _ = metrics::set_global_recorder(recorder);
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by method, route and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to the response's head, by method and route."
    );
    describe_counter!(REFUSALS, "Error answers, by error_code and status.");
    describe_counter!(TASKS_FINISHED, "Tasks finished by the worker, by outcome.");
    describe_counter!(TASK_WORKER_ERRORS, "Task worker passes that failed.");
    describe_gauge!(LOG_HEAD, "The event log's last position.");
    describe_counter!(TOKEN_RELOADS, "Tokens file reloads (SIGHUP), by result.");
    imgshare_store::metrics::describe();
}

/// Counts one answered request.
pub(crate) fn record_request(
    method: &str,
    route: &str,
    status: u16,
    latency: Duration,
    error_code: Option<&'static str>,
) {
    let status_label = status.to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.to_owned(), "route" => route.to_owned(), "status" => status_label.clone())
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method.to_owned(), "route" => route.to_owned())
        .record(latency.as_secs_f64());
    if let Some(code) = error_code {
        metrics::counter!(REFUSALS, "error_code" => code, "status" => status_label).increment(1);
    }
}

/// The text exposition, with the gauges read now.
fn render(engine: &Engine, handle: &PrometheusHandle) -> String {
    if let Ok(Some((position, _))) = engine.head() {
        // Positions fit an f64 exactly up to 2^53 events.
        metrics::gauge!(LOG_HEAD).set(position as f64);
    }
    handle.render()
}

/// `GET /metrics`: the text exposition (no token, like `/healthcheck`: put it on its own
/// listener with `--metrics-listen` to keep it off the public address).
pub(crate) async fn answer(engine: Arc<Engine>, handle: PrometheusHandle) -> Response {
    match tokio::task::spawn_blocking(move || render(&engine, &handle)).await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A router serving only `GET /metrics`, for its own listener.
pub fn metrics_router(engine: Arc<Engine>, handle: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State((engine, handle)): State<(Arc<Engine>, PrometheusHandle)>| {
                    answer(engine, handle)
                },
            ),
        )
        .with_state((engine, handle))
}
