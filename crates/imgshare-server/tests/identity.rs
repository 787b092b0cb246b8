//! The API behind each identity: the built-in Rackspace identity (its `/v2.0/tokens` endpoints
//! served beside the API, outside the token check), and Keystone when it cannot be reached.
//! Expired and revoked tokens are 401 on every route; another account's prefix stays 404; an
//! identity service that does not answer is 503, never 401.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The shared set-up serves several test binaries; this one needs only part of it.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use imgshare_core::Region;
use imgshare_identity::{
    BuiltinIdentity, BuiltinOptions, Catalog, HashStrength, KeystoneOptions, KeystoneValidator,
    RegionEndpoints, UsersFile,
};
use imgshare_server::{router, AppState};
use imgshare_store::Engine;
use serde_json::{json, Value};
use tower::ServiceExt as _;
use uuid::Uuid;

use common::{register_snapshot, CONSUMER, PRODUCER};

struct Setup {
    app: Router,
    image_id: Uuid,
    _dir: tempfile::TempDir,
}

fn setup(token_lifetime: chrono::Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(&dir.path().join("db.sqlite"), Default::default()).unwrap());
    let image_id = Uuid::new_v4();
    register_snapshot(&engine, image_id, "shared-image", &[]);
    let mut users = UsersFile::default();
    for (name, account) in [
        ("producer", PRODUCER),
        ("consumer", CONSUMER),
        ("gone", "444444"),
    ] {
        users
            .add_user(
                name,
                account,
                vec!["cloudImages:admin".into()],
                None,
                Some(&format!("{name}-key")),
                None,
                HashStrength::Fast,
            )
            .unwrap();
    }
    users.set_enabled("gone", false).unwrap();
    let catalog = Catalog {
        regions: vec![RegionEndpoints {
            region: "DFW".into(),
            images_url: "http://dfw.images.test/v2".into(),
            object_store_url: None,
        }],
    };
    let identity = Arc::new(
        BuiltinIdentity::new(
            users,
            BuiltinOptions {
                token_lifetime,
                catalog,
                ..BuiltinOptions::default()
            },
        )
        .unwrap(),
    );
    let mut state = AppState::new(engine, identity.clone(), Region::parse("DFW").unwrap());
    state.builtin_identity = Some(identity);
    Setup {
        app: router(state),
        image_id,
        _dir: dir,
    }
}

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if !token.is_empty() {
        request = request.header("x-auth-token", token);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

async fn token(app: &Router, user: &str, key: &str) -> String {
    let body = json!({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": user, "apiKey": key}}});
    let (status, value) = send(app, "POST", "/v2.0/tokens", "", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    value["access"]["token"]["id"].as_str().unwrap().to_owned()
}

/// One request per API route (both path forms), with a body where one is needed.
fn every_route(image_id: Uuid) -> Vec<(&'static str, String, String)> {
    let image = format!("/v2/images/{image_id}");
    let mut routes = vec![
        ("GET", "/v2/images".to_owned(), String::new()),
        ("POST", "/v2/images".to_owned(), "{}".to_owned()),
        ("GET", image.clone(), String::new()),
        ("PATCH", image.clone(), "[]".to_owned()),
        ("DELETE", image.clone(), String::new()),
        ("POST", format!("{image}/actions/deactivate"), String::new()),
        ("POST", format!("{image}/actions/reactivate"), String::new()),
        ("GET", format!("{image}/file"), String::new()),
        ("PUT", format!("{image}/file"), String::new()),
        ("PUT", format!("{image}/stage"), String::new()),
        ("POST", format!("{image}/import"), "{}".to_owned()),
        ("GET", format!("{image}/tasks"), String::new()),
        ("GET", format!("{image}/members"), String::new()),
        (
            "POST",
            format!("{image}/members"),
            r#"{"member": "222222"}"#.to_owned(),
        ),
        ("GET", format!("{image}/members/{CONSUMER}"), String::new()),
        (
            "PUT",
            format!("{image}/members/{CONSUMER}"),
            r#"{"status": "accepted"}"#.to_owned(),
        ),
        (
            "DELETE",
            format!("{image}/members/{CONSUMER}"),
            String::new(),
        ),
        ("PUT", format!("{image}/tags/t"), String::new()),
        ("DELETE", format!("{image}/tags/t"), String::new()),
        ("GET", "/v2/info/import".to_owned(), String::new()),
        ("GET", "/v2/tasks".to_owned(), String::new()),
        (
            "POST",
            "/v2/tasks".to_owned(),
            r#"{"type": "import", "input": {}}"#.to_owned(),
        ),
        (
            "GET",
            format!("/v2/tasks/{}", Uuid::new_v4()),
            String::new(),
        ),
        ("GET", "/v2/schemas/image".to_owned(), String::new()),
        ("GET", "/v2/no/such/path".to_owned(), String::new()),
    ];
    let prefixed: Vec<_> = routes
        .iter()
        .map(|(method, path, body)| {
            (
                *method,
                path.replacen("/v2", &format!("/v2/{PRODUCER}"), 1),
                body.clone(),
            )
        })
        .collect();
    routes.extend(prefixed);
    routes.push(("GET", format!("/v2/{PRODUCER}"), String::new()));
    routes
}

async fn assert_refused_everywhere(setup: &Setup, token: &str, why: &str) {
    for (method, path, body) in every_route(setup.image_id) {
        let (status, value) = send(&setup.app, method, &path, token, &body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{why}: {method} {path}: {value}"
        );
        assert_eq!(
            value["unauthorized"]["message"], "The request you have made requires authentication.",
            "{why}: {method} {path}"
        );
    }
}

#[tokio::test]
async fn a_builtin_token_works_on_the_api_and_a_revoked_one_is_401_on_every_route() {
    let setup = setup(chrono::Duration::hours(24));
    let producer = token(&setup.app, "producer", "producer-key").await;
    let (status, value) = send(&setup.app, "GET", "/v2/images", &producer, "").await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["images"][0]["id"], setup.image_id.to_string());
    let (status, _) = send(
        &setup.app,
        "GET",
        &format!("/v2/{PRODUCER}/images"),
        &producer,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Account A's token on /v2/{B}/...: 404, as for a static token.
    let (status, value) = send(
        &setup.app,
        "GET",
        &format!("/v2/{CONSUMER}/images"),
        &producer,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{value}");
    let (status, _) = send(&setup.app, "GET", &format!("/v2/{CONSUMER}"), &producer, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = send(&setup.app, "DELETE", "/v2.0/tokens", &producer, "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_refused_everywhere(&setup, &producer, "revoked").await;
    // A new authentication works again; the old token stays refused.
    let fresh = token(&setup.app, "producer", "producer-key").await;
    let (status, _) = send(&setup.app, "GET", "/v2/images", &fresh, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_refused_everywhere(&setup, "", "no token").await;
    assert_refused_everywhere(&setup, "0123456789abcdef0123456789abcdef", "unknown").await;
}

#[tokio::test]
async fn an_expired_builtin_token_is_401_on_every_route() {
    let setup = setup(chrono::Duration::milliseconds(300));
    let producer = token(&setup.app, "producer", "producer-key").await;
    let (status, _) = send(&setup.app, "GET", "/v2/images", &producer, "").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_refused_everywhere(&setup, &producer, "expired").await;
}

#[tokio::test]
async fn the_identity_endpoint_refuses_bad_input_with_rackspaces_faults() {
    let setup = setup(chrono::Duration::hours(24));
    let (status, value) = send(&setup.app, "POST", "/v2.0/tokens", "", "{\"auth\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["badRequest"]["message"], "Invalid json request body");
    let wrong = json!({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "producer", "apiKey": "nope"}}});
    let unknown =
        json!({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "nobody", "apiKey": "nope"}}});
    let (status_wrong, wrong) =
        send(&setup.app, "POST", "/v2.0/tokens", "", &wrong.to_string()).await;
    let (status_unknown, unknown) =
        send(&setup.app, "POST", "/v2.0/tokens", "", &unknown.to_string()).await;
    assert_eq!(status_wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(status_unknown, StatusCode::UNAUTHORIZED);
    // The same answer: no way to tell which user names exist.
    assert_eq!(wrong, unknown);
    assert_eq!(
        wrong["unauthorized"]["message"],
        "Username or api key is invalid."
    );
    let gone = json!({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "gone", "apiKey": "gone-key"}}});
    let (status, value) = send(&setup.app, "POST", "/v2.0/tokens", "", &gone.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(value["userDisabled"]["message"], "User 'gone' is disabled.");
}

#[tokio::test]
async fn an_unreachable_keystone_is_503_never_401() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(&dir.path().join("db.sqlite"), Default::default()).unwrap());
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = KeystoneOptions::new(&format!("http://127.0.0.1:{port}"), "imgshare", "pw");
    options.timeout = StdDuration::from_secs(2);
    let validator = Arc::new(KeystoneValidator::new(options));
    let app = router(AppState::new(
        engine,
        validator,
        Region::parse("DFW").unwrap(),
    ));
    for path in ["/v2/images", "/v2/tasks", "/v2/111111/images"] {
        let (status, value) = send(&app, "GET", path, "some-keystone-token", "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {value}");
        let message = value["serviceUnavailable"]["message"].as_str().unwrap();
        assert!(
            message.contains("identity service is temporarily unavailable"),
            "{message}"
        );
    }
    // No token at all is still 401: nothing to ask Keystone about.
    let (status, _) = send(&app, "GET", "/v2/images", "", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Without the built-in identity there is no identity endpoint: it needs a token like any
    // unknown path.
    let (status, _) = send(&app, "POST", "/v2.0/tokens", "", "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
