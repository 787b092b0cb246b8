//! The server's background task worker: a task created with `POST /v2/tasks` is run without any
//! further request, and its result is what `GET /v2/tasks/{id}` then shows.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use imgshare_core::Region;
use imgshare_server::{router, spawn_task_worker, AppState, Identity, TokenStore};
use imgshare_store::{Engine, FsImageDataStore, TaskEnvironment};
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "tok-producer";
const ACCOUNT: &str = "111111";

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("X-Auth-Token", TOKEN)
        // Like the seed's curl lines: a JSON body without a Content-Type header.
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

async fn json(app: &Router, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (status, bytes) = send(app, method, uri, body).await;
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Polls the task until it has finished (the worker polls every 50 ms here).
async fn finished(app: &Router, task_id: &str) -> Value {
    for _ in 0..200 {
        let (status, task) = json(app, Method::GET, &format!("/v2/tasks/{task_id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        if task["status"] == "success" || task["status"] == "failure" {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {task_id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_worker_imports_and_exports_a_vhd() {
    let dir = tempfile::tempdir().unwrap();
    let dfw = Region::parse("DFW").unwrap();
    let (objects, data) = (dir.path().join("objects"), dir.path().join("data"));
    let vhd = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vhd/dynamic.vhd"),
    )
    .unwrap();
    let uploads = objects.join("DFW").join(ACCOUNT).join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::create_dir_all(objects.join("DFW").join(ACCOUNT).join("exports")).unwrap();
    std::fs::write(uploads.join("disk.vhd"), &vhd).unwrap();

    let mut tokens = TokenStore::new();
    tokens.insert(
        TOKEN,
        Identity {
            tenant_id: ACCOUNT.to_owned(),
            user_id: "producer".to_owned(),
            roles: vec!["cloudImages:admin".to_owned()],
        },
    );
    let mut state = AppState::new(
        Arc::new(Engine::in_memory().unwrap()),
        Arc::new(tokens),
        dfw.clone(),
    );
    state.image_data = Some(Arc::new(FsImageDataStore::new(&data)));
    state.tasks = Some(Arc::new(TaskEnvironment::filesystem(
        &objects,
        &data,
        &[dfw],
    )));
    let worker = spawn_task_worker(&state, Duration::from_millis(50)).unwrap();
    let app = router(state);

    let (status, created) = json(
        &app,
        Method::POST,
        "/v2/tasks",
        Some(json!({"type": "import", "input": {
            "import_from": "uploads/disk.vhd", "image_properties": {"name": "imported"}}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["status"], "pending");
    let task = finished(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "success", "{task}");
    let image_id = task["result"]["image_id"].as_str().unwrap().to_owned();

    let (status, image) = json(&app, Method::GET, &format!("/v2/images/{image_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(image["status"], "active");
    assert_eq!(image["image_type"], "import");
    assert_eq!(image["size"], vhd.len());
    let (status, bytes) = send(
        &app,
        Method::GET,
        &format!("/v2/images/{image_id}/file"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, vhd, "the download serves the imported bytes");

    let (status, created) = json(
        &app,
        Method::POST,
        "/v2/tasks",
        Some(json!({"type": "export", "input": {
            "image_uuid": image_id, "receiving_swift_container": "exports"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let task = finished(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(
        task["result"]["export_location"],
        format!("exports/{image_id}.vhd")
    );
    let exported = std::fs::read(
        objects
            .join("DFW")
            .join(ACCOUNT)
            .join("exports")
            .join(format!("{image_id}.vhd")),
    )
    .unwrap();
    assert_eq!(exported, vhd);

    let (status, created) = json(
        &app,
        Method::POST,
        "/v2/tasks",
        Some(json!({"type": "export", "input": {
            "image_uuid": image_id, "receiving_swift_container": "nowhere"}})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "doomed input still creates the task"
    );
    let task = finished(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "failure");
    assert_eq!(task["message"], "Container not found. Container: nowhere");
    worker.abort();
}
