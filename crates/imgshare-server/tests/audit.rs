//! The owner's audit routes (an imgshare extension): `GET /v2/images/{id}/history` and
//! `GET /v2/images/{id}/access?at=`. Only the owner reads them; a member, a stranger and a
//! missing image get the same 404; a bad date is 400 with what was expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The shared set-up serves several test binaries; this one needs only part of it.
#[allow(dead_code)]
mod common;

use std::sync::Arc;

use axum::http::{header, Method, StatusCode};
use axum::Router;
use chrono::{DateTime, Utc};
use common::{app_state, call, identity, register_snapshot, request, CONSUMER, PRODUCER, STRANGER};
use imgshare_server::{router, TokenStore};
use imgshare_store::Engine;
use serde_json::{json, Value};
use uuid::Uuid;

const TOKENS: [(&str, &str); 3] = [
    ("tok-producer", PRODUCER),
    ("tok-consumer", CONSUMER),
    ("tok-stranger", STRANGER),
];

struct Api {
    app: Router,
    _data: tempfile::TempDir,
}

impl Api {
    fn new() -> (Self, Arc<Engine>) {
        let engine = Arc::new(Engine::in_memory().unwrap());
        let mut tokens = TokenStore::new();
        for (token, tenant) in TOKENS {
            tokens.insert(token, identity(tenant));
        }
        let data = tempfile::tempdir().unwrap();
        let app = router(app_state(Arc::clone(&engine), tokens, data.path()));
        (Api { app, _data: data }, engine)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = request(method, path).header("x-auth-token", token);
        let bytes = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                body.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let (status, _, bytes) = call(&self.app, builder, bytes).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }
}

fn message(body: &Value) -> &str {
    body.as_object()
        .and_then(|object| object.values().next())
        .and_then(|fault| fault["message"].as_str())
        .unwrap_or_default()
}

/// The producer's image, shared with the consumer who accepted it; the moment between.
async fn shared_image(api: &Api, engine: &Engine) -> (Uuid, DateTime<Utc>) {
    let image = Uuid::new_v4();
    register_snapshot(engine, image, "audited", &[]);
    let members = format!("/v2/images/{image}/members");
    let (status, _) = api
        .send(
            Method::POST,
            &members,
            "tok-producer",
            Some(json!({"member": CONSUMER})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Event times have sub-second precision: a later instant falls between the two changes.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let pending_at = Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (status, _) = api
        .send(
            Method::PUT,
            &format!("{members}/{CONSUMER}"),
            "tok-consumer",
            Some(json!({"status": "accepted"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    (image, pending_at)
}

#[tokio::test]
async fn the_owner_reads_the_history_of_an_image() {
    let (api, engine) = Api::new();
    let (image, _) = shared_image(&api, &engine).await;
    let (status, body) = api
        .get(&format!("/v2/images/{image}/history"), "tok-producer")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["image_id"], image.to_string());
    let history = body["history"].as_array().unwrap();
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "image_registered",
            "image_activated",
            "member_added",
            "member_status_changed"
        ]
    );
    // Who shared and who accepted, from the events' metadata.
    assert_eq!(history[2]["actor"]["tenant_id"], PRODUCER, "{}", history[2]);
    assert_eq!(history[3]["actor"]["tenant_id"], CONSUMER, "{}", history[3]);
    assert_eq!(history[3]["data"]["status"], "accepted", "{}", history[3]);
    // The tenant-prefixed form answers the same.
    let (status, prefixed) = api
        .get(
            &format!("/v2/{PRODUCER}/images/{image}/history"),
            "tok-producer",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(prefixed, body);
}

#[tokio::test]
async fn the_owner_sees_who_could_use_the_image_at_a_date() {
    let (api, engine) = Api::new();
    let (image, pending_at) = shared_image(&api, &engine).await;
    let account = |body: &Value, tenant: &str| {
        body["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["tenant_id"] == tenant)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let at = |time: DateTime<Utc>| {
        format!(
            "/v2/images/{image}/access?at={}",
            time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .replace(':', "%3A")
        )
    };
    let (status, then) = api.get(&at(pending_at), "tok-producer").await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(then["exists"], true);
    assert_eq!(
        account(&then, CONSUMER)["why"]["member_status"],
        "pending",
        "{then}"
    );
    assert_eq!(account(&then, PRODUCER)["why"]["reason"], "owner", "{then}");
    let (_, now) = api.get(&at(Utc::now()), "tok-producer").await;
    assert_eq!(
        account(&now, CONSUMER)["why"]["member_status"],
        "accepted",
        "{now}"
    );
    assert_eq!(account(&now, CONSUMER)["can_boot"], true, "{now}");
    // Before the image existed.
    let (status, before) = api
        .get(&at(pending_at - chrono::Duration::days(1)), "tok-producer")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(before["exists"], false, "{before}");
}

#[tokio::test]
async fn only_the_owner_may_read_an_images_audit() {
    let (api, engine) = Api::new();
    let (image, _) = shared_image(&api, &engine).await;
    let missing = Uuid::new_v4();
    for path in [
        format!("/v2/images/{image}/history"),
        format!("/v2/images/{image}/access?at=2026-12-01T09:00:00Z"),
    ] {
        // The consumer is an accepted member and sees the image, the stranger does not: both get
        // the 404 of an image they cannot see, word for word.
        for token in ["tok-consumer", "tok-stranger"] {
            let (status, body) = api.get(&path, token).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{token} {path}: {body}");
            assert_eq!(message(&body), format!("No image found with ID {image}"));
        }
        let other = path.replace(&image.to_string(), &missing.to_string());
        let (status, body) = api.get(&other, "tok-producer").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, _) = api.get(&path, "no-such-token").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = api
        .get("/v2/images/not-an-id/history", "tok-producer")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_date_is_400_with_the_expected_format() {
    let (api, engine) = Api::new();
    let (image, _) = shared_image(&api, &engine).await;
    for query in [
        "",
        "?at=",
        "?at=yesterday",
        "?at=2026-12-01",
        "?at=2026-02-30T00:00:00Z",
        "?when=2026-12-01T00:00:00Z",
        "?at=2026-12-01T00:00:00Z&at=2026-12-02T00:00:00Z",
    ] {
        let (status, body) = api
            .get(&format!("/v2/images/{image}/access{query}"), "tok-producer")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(message(&body).contains("RFC 3339"), "{query}: {body}");
    }
    let (status, body) = api
        .get(
            &format!("/v2/images/{image}/history?limit=5"),
            "tok-producer",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Only GET: the routes change nothing.
    let (status, _) = api
        .send(
            Method::DELETE,
            &format!("/v2/images/{image}/history"),
            "tok-producer",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
