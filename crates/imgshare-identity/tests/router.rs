//! The v2.0 tokens endpoints through the axum router, as a client sees them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use imgshare_identity::{
    router, BuiltinIdentity, BuiltinOptions, Catalog, HashStrength, RegionEndpoints,
    TokenValidator, UsersFile,
};
use serde_json::{json, Value};
use tower::ServiceExt as _;

fn app() -> (Router, Arc<BuiltinIdentity>) {
    let mut users = UsersFile::default();
    for (name, account, roles) in [
        ("demoauthor", "111111", vec!["cloudImages:admin".to_owned()]),
        ("consumer", "222222", vec![]),
        ("disabled", "333333", vec![]),
    ] {
        users
            .add_user(
                name,
                account,
                roles,
                None,
                Some(&format!("{name}-key")),
                Some(&format!("{name}-pw")),
                HashStrength::Fast,
            )
            .unwrap();
    }
    users.set_enabled("disabled", false).unwrap();
    let catalog = Catalog {
        regions: ["DFW", "ORD"]
            .iter()
            .map(|region| RegionEndpoints {
                region: region.to_string(),
                images_url: format!("http://{}.images.test/v2", region.to_lowercase()),
                object_store_url: Some(format!("http://{}.files.test/v1", region.to_lowercase())),
            })
            .collect(),
    };
    let identity = Arc::new(
        BuiltinIdentity::new(
            users,
            BuiltinOptions {
                catalog,
                ..BuiltinOptions::default()
            },
        )
        .unwrap(),
    );
    (router(Arc::clone(&identity)), identity)
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    let request = request
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, value, headers)
}

fn api_key(user: &str, key: &str) -> String {
    json!({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": user, "apiKey": key}}}).to_string()
}

#[tokio::test]
async fn the_quickstart_authentication_gives_a_token_and_every_regions_endpoint() {
    let (app, identity) = app();
    let (status, body, _) = send(
        &app,
        "POST",
        "/v2.0/tokens",
        None,
        &api_key("demoauthor", "demoauthor-key"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = &body["access"];
    let token = access["token"]["id"].as_str().unwrap();
    assert_eq!(
        access["token"]["tenant"],
        json!({"id": "111111", "name": "111111"})
    );
    let expires = access["token"]["expires"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 24, "{expires}");
    assert_eq!(access["user"]["name"], "demoauthor");
    assert_eq!(access["user"]["RAX-AUTH:defaultRegion"], "DFW");
    let images: Vec<(&str, &str)> = access["serviceCatalog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|service| service["type"] == "image")
        .flat_map(|service| service["endpoints"].as_array().unwrap())
        .map(|e| {
            (
                e["region"].as_str().unwrap(),
                e["publicURL"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        images,
        [
            ("DFW", "http://dfw.images.test/v2"),
            ("ORD", "http://ord.images.test/v2")
        ]
    );
    let files = access["serviceCatalog"][1]["endpoints"][1]["publicURL"]
        .as_str()
        .unwrap();
    assert_eq!(files, "http://ord.files.test/v1/MossoCloudFS_111111");
    // The token works for the server's authentication layer.
    let who = identity.validate(token).await.unwrap();
    assert_eq!(
        (who.tenant.as_str(), who.user_name.as_str()),
        ("111111", "demoauthor")
    );

    let (status, body, _) = send(
        &app,
        "POST",
        "/v2.0/tokens?include_endpoints=false",
        None,
        &json!({"auth": {"passwordCredentials": {"username": "consumer", "password": "consumer-pw"},
                         "tenantId": "222222"}})
        .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access"].get("serviceCatalog").is_none());
    assert_eq!(
        body["access"]["token"]["RAX-AUTH:authenticatedBy"],
        json!(["PASSWORD"])
    );
}

#[tokio::test]
async fn refusals_carry_rackspaces_fault_bodies() {
    let (app, _) = app();
    let cases = [
        ("{not json", 400, "badRequest", "Invalid json request body"),
        (r#"{"auth":{}}"#, 400, "badRequest",
         "Invalid request body: unable to parse Auth data. Please review XML or JSON formatting."),
        (&api_key("demoauthor", "wrong") as &str, 401, "unauthorized", "Username or api key is invalid."),
        (&api_key("nobody", "wrong"), 401, "unauthorized", "Username or api key is invalid."),
        (r#"{"auth":{"passwordCredentials":{"username":"nobody","password":"x"}}}"#, 401,
         "unauthorized", "Unable to authenticate user with credentials provided."),
        (&api_key("disabled", "disabled-key"), 403, "userDisabled", "User 'disabled' is disabled."),
    ];
    for (body, status, fault, message) in cases {
        let (got, value, _) = send(&app, "POST", "/v2.0/tokens", None, body).await;
        assert_eq!(got.as_u16(), status, "{body}: {value}");
        assert_eq!(
            value,
            json!({fault: {"code": status, "message": message}}),
            "{body}"
        );
    }
}

#[tokio::test]
async fn repeated_failures_are_answered_over_limit_with_retry_after() {
    let (app, _) = app();
    for _ in 0..5 {
        let (status, _, _) = send(
            &app,
            "POST",
            "/v2.0/tokens",
            None,
            &api_key("consumer", "bad"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body, headers) = send(
        &app,
        "POST",
        "/v2.0/tokens",
        None,
        &api_key("consumer", "consumer-key"),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["overLimit"]["code"], 413);
    assert!(body["overLimit"]["retryAfter"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let seconds: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
}

#[tokio::test]
async fn tokens_are_validated_and_revoked_by_their_holder() {
    let (app, identity) = app();
    let token = |body: Value| body["access"]["token"]["id"].as_str().unwrap().to_owned();
    let (_, a, _) = send(
        &app,
        "POST",
        "/v2.0/tokens",
        None,
        &api_key("demoauthor", "demoauthor-key"),
    )
    .await;
    let (_, b, _) = send(
        &app,
        "POST",
        "/v2.0/tokens",
        None,
        &api_key("consumer", "consumer-key"),
    )
    .await;
    let (a, b) = (token(a), token(b));

    let (status, body, _) = send(&app, "GET", &format!("/v2.0/tokens/{a}"), Some(&a), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["access"]["token"]["id"], a);
    assert!(body["access"].get("serviceCatalog").is_none());
    let (status, body, _) = send(&app, "GET", &format!("/v2.0/tokens/{a}"), Some(&b), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body, _) = send(
        &app,
        "GET",
        &format!("/v2.0/tokens/{a}?belongsTo=222222"),
        Some(&a),
        "",
    )
    .await;
    assert_eq!(
        (status, &body["itemNotFound"]["message"]),
        (StatusCode::NOT_FOUND, &json!("Token not found."))
    );
    let (status, body, _) = send(&app, "GET", &format!("/v2.0/tokens/{a}"), None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (status, _, _) = send(&app, "DELETE", &format!("/v2.0/tokens/{a}"), Some(&b), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not someone else's token");
    let (status, body, _) = send(&app, "DELETE", "/v2.0/tokens", Some(&a), "").await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert!(identity.validate(&a).await.is_err(), "revoked");
    let (status, _, _) = send(&app, "DELETE", "/v2.0/tokens", Some(&a), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "already revoked");
    let (status, _, _) = send(&app, "DELETE", &format!("/v2.0/tokens/{b}"), Some(&b), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "one's own token by id");
    assert!(identity.validate(&b).await.is_err());
}
