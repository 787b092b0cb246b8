//! What a Prometheus server sees on `GET /metrics`. The metrics recorder is global to the
//! process, so this binary holds one test: no other test's requests are counted with its own.
//!

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use axum::Router;
use imgshare_server::router;
use imgshare_store::DbOptions;

#[path = "common/ops.rs"]
mod ops;
use ops::{open, send, state};

/// The value of the sample `name{labels}` in a text exposition (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_a_request_and_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = state(open(&dir.path().join("m.db"), DbOptions::default()));
    state.metrics = Some(imgshare_server::metrics::install().unwrap());
    let app = router(state);
    let metrics = |app: Router| async move {
        let (status, text) = send(&app, Method::GET, "/metrics", "").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        text
    };
    let created = r#"imgshare_http_requests_total{method="POST",route="/v2/images",status="201"}"#;
    let before = metrics(app.clone()).await;
    let (status, body) = send(
        &app,
        Method::POST,
        "/v2/images",
        r#"{"name": "counted", "disk_format": "raw", "container_format": "bare"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after = metrics(app.clone()).await;
    assert_eq!(sample(&after, created), sample(&before, created) + 1.0);
    let head = "imgshare_log_head_position";
    assert_eq!(sample(&after, head), sample(&before, head) + 1.0, "{after}");
    let appended = r#"imgshare_commands_appended_total{kind="image.register"}"#;
    assert_eq!(
        sample(&after, appended),
        sample(&before, appended) + 1.0,
        "{after}"
    );
    let groups = "imgshare_group_commit_commands_count";
    assert_eq!(
        sample(&after, groups),
        sample(&before, groups) + 1.0,
        "{after}"
    );
    // A tag on the new image: its state comes from the state cache.
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hits = r#"imgshare_state_cache_lookups_total{result="hit"}"#;
    let (status, _) = send(&app, Method::PUT, &format!("/v2/images/{id}/tags/t"), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let tagged = metrics(app.clone()).await;
    assert!(sample(&tagged, hits) > sample(&after, hits), "{tagged}");
    assert!(
        after.contains(r#"imgshare_http_request_duration_seconds_bucket{method="POST",route="/v2/images",le="+Inf"}"#),
        "{after}"
    );
    // A refusal is counted by its code.
    let (status, _) = send(&app, Method::GET, "/v2/images/not-an-id", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let refused = metrics(app.clone()).await;
    let series = r#"imgshare_refusals_total{error_code="image_not_found",status="404"}"#;
    assert_eq!(sample(&refused, series), sample(&after, series) + 1.0);
}
