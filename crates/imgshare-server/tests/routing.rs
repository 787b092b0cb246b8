//! The routing rules that differ from a plain axum router, pinned byte for byte: Glance's check
//! order (token before path, path and tenant before method), `HEAD` not served, 404 for a bad
//! percent escape or a non-UTF-8 segment, trailing slashes, and the `Allow` list's form.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The shared set-up serves several test binaries; this one needs only part of it.
#[allow(dead_code)]
mod common;

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode};
use axum::Router;
use common::{app_state, call, identity, register_snapshot, request, PRODUCER};
use imgshare_server::{router, TokenStore};
use imgshare_store::Engine;
use serde_json::Value;
use uuid::Uuid;

const IMAGE: Uuid = Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0001);

fn api() -> (Router, tempfile::TempDir) {
    let engine = Arc::new(Engine::in_memory().unwrap());
    register_snapshot(&engine, IMAGE, "saved", &["web"]);
    let mut tokens = TokenStore::new();
    tokens.insert("tok", identity(PRODUCER));
    let data_dir = tempfile::tempdir().unwrap();
    let state = app_state(engine, tokens, data_dir.path());
    (router(state), data_dir)
}

/// Status, `Allow` header, error kind and message of one request.
async fn ask(
    app: &Router,
    method: &str,
    uri: &str,
    token: bool,
) -> (u16, Option<String>, String, String) {
    let mut builder = request(Method::from_bytes(method.as_bytes()).unwrap(), uri);
    if token {
        builder = builder.header("x-auth-token", "tok");
    }
    let (status, headers, body): (StatusCode, HeaderMap, _) = call(app, builder, Vec::new()).await;
    assert!(
        headers
            .get("x-openstack-request-id")
            .and_then(|id| id.to_str().ok())
            .is_some_and(|id| id.starts_with("req-")),
        "{method} {uri}"
    );
    let allow = headers
        .get("allow")
        .map(|allow| allow.to_str().unwrap().to_owned());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (kind, message) = body
        .as_object()
        .and_then(|object| object.iter().next())
        .map(|(kind, inner)| {
            (
                kind.clone(),
                inner["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .unwrap_or_default();
    (status.as_u16(), allow, kind, message)
}

const NOT_FOUND: &str = "The resource could not be found.";
const NOT_ALLOWED: &str = "The method is not allowed for the requested URL.";

#[tokio::test]
async fn edge_cases_answer_as_glance_does() {
    let (app, _data) = api();
    let image = format!("/v2/images/{IMAGE}");
    let relative = format!("/images/{IMAGE}");
    // Method, path, with a token, then the expected status, `Allow`, error kind and message.
    type Row<'a> = (
        &'a str,
        String,
        bool,
        u16,
        Option<&'a str>,
        &'a str,
        &'a str,
    );
    let rows: Vec<Row> = vec![
        // The token comes before the path: an unknown path without one is 401.
        (
            "GET",
            "/nowhere".into(),
            false,
            401,
            None,
            "unauthorized",
            "",
        ),
        (
            "GET",
            "/nowhere".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "GET",
            "/v2/images/%zz".into(),
            false,
            401,
            None,
            "unauthorized",
            "",
        ),
        // A bad escape or a segment that is not UTF-8 names nothing.
        (
            "GET",
            "/v2/images/%zz".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "POST",
            "/v2/images/%ff".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "GET",
            "/v2/images/%".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        // Another account's prefix is 404 before the method is looked at.
        (
            "POST",
            format!("/v2/999999{relative}"),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "POST",
            "/v2/999999".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "POST",
            format!("/v2/{PRODUCER}{relative}"),
            true,
            405,
            Some("GET, PATCH, DELETE"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "POST",
            format!("/v2/{PRODUCER}/"),
            true,
            405,
            Some("GET"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "GET",
            "/v2//images".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "GET",
            "/v2//".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "GET",
            format!("/v2/{PRODUCER}//"),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        // A trailing slash names nothing unless it is an empty parameter (see below).
        (
            "GET",
            format!("{image}/"),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "GET",
            "/versions/".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "GET",
            format!("{image}/members/x/y"),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        // HEAD is not served (the answer to a HEAD has no body); the version documents need
        // no token.
        (
            "HEAD",
            image.clone(),
            true,
            405,
            Some("GET, PATCH, DELETE"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "HEAD",
            "/".into(),
            false,
            405,
            Some("GET"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "HEAD",
            "/nowhere".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
        (
            "POST",
            "/versions".into(),
            false,
            405,
            Some("GET"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "BREW",
            "/v2/images".into(),
            true,
            405,
            Some("GET, POST"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "OPTIONS",
            format!("{image}/members/{PRODUCER}"),
            true,
            405,
            Some("GET, PUT, DELETE"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "GET",
            format!("{image}/stage"),
            true,
            405,
            Some("PUT"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "GET",
            format!("{image}/import"),
            true,
            405,
            Some("POST"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "POST",
            "/v2/info/import".into(),
            true,
            405,
            Some("GET"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "PUT",
            format!("{image}/tasks"),
            true,
            405,
            Some("GET"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "DELETE",
            format!("{image}/members"),
            true,
            405,
            Some("GET, POST"),
            "badMethod",
            NOT_ALLOWED,
        ),
        (
            "GET",
            "/v2/schemas/nothing".into(),
            true,
            404,
            None,
            "itemNotFound",
            NOT_FOUND,
        ),
    ];
    for (method, uri, token, status, allow, kind, message) in rows {
        let (got_status, got_allow, got_kind, got_message) = ask(&app, method, &uri, token).await;
        let (kind, message) = if method == "HEAD" {
            ("", "")
        } else {
            (kind, message)
        };
        assert_eq!(got_status, status, "{method} {uri}");
        assert_eq!(got_allow.as_deref(), allow, "{method} {uri}");
        assert_eq!(got_kind, kind, "{method} {uri}");
        if !message.is_empty() {
            assert_eq!(got_message, message, "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn escaped_segments_are_decoded_once() {
    let (app, _data) = api();
    // `%2F` is a slash inside the tag, not a separator; `%20` a space.
    for (tag, expect) in [("a%20b", "a b"), ("a%2Fb", "a/b")] {
        let uri = format!("/v2/images/{IMAGE}/tags/{tag}");
        let (status, ..) = ask(&app, "PUT", &uri, true).await;
        assert_eq!(status, 204, "{uri}");
        let (status, ..) = ask(&app, "GET", &format!("/v2/images/{IMAGE}"), true).await;
        assert_eq!(status, 200);
        let builder =
            request(Method::GET, &format!("/v2/images/{IMAGE}")).header("x-auth-token", "tok");
        let (_, _, body) = call(&app, builder, Vec::new()).await;
        let image: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            image["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == expect),
            "{image}"
        );
    }
}

#[tokio::test]
async fn an_empty_segment_is_an_empty_parameter() {
    let (app, _data) = api();
    let image = format!("/v2/images/{IMAGE}");
    let not_member = format!(" is not a member of image {IMAGE}");
    let rows: Vec<(&str, String, u16, &str)> = vec![
        ("GET", "/v2/images/".into(), 404, "No image found with ID "),
        (
            "GET",
            "/v2/images//members".into(),
            404,
            "No image found with ID ",
        ),
        (
            "GET",
            format!("/v2/{PRODUCER}/images/"),
            404,
            "No image found with ID ",
        ),
        (
            "GET",
            "/v2/images//file".into(),
            404,
            "No image found with ID ",
        ),
        (
            "POST",
            "/v2/images//actions/deactivate".into(),
            404,
            "No image found with ID ",
        ),
        ("GET", "/v2/tasks/".into(), 404, "No task found with ID "),
        ("GET", "/v2/schemas/".into(), 404, NOT_FOUND),
        ("PUT", format!("{image}/tags/"), 404, NOT_FOUND),
        ("DELETE", format!("{image}/tags/"), 404, NOT_FOUND),
        ("PUT", "/v2/images//tags/".into(), 404, NOT_FOUND),
        ("GET", format!("{image}/members/"), 404, &not_member),
        (
            "DELETE",
            format!("{image}/members/"),
            400,
            "Member can't be empty",
        ),
        ("GET", format!("{image}/"), 404, NOT_FOUND),
        (
            "GET",
            "/v2/images/%2e%2e".into(),
            404,
            "No image found with ID ..",
        ),
    ];
    for (method, uri, status, message) in rows {
        let (got_status, _, _, got_message) = ask(&app, method, &uri, true).await;
        assert_eq!(
            (got_status, got_message.as_str()),
            (status, message),
            "{method} {uri}"
        );
    }
}

/// Rackspace's tests expect 405 for a share with a blank image id: its proxy folded `//`, so the
/// path named the image `members`, and `/images/{id}` takes no POST. Listing is still 404.
#[tokio::test]
async fn a_share_with_a_blank_image_id_is_405_on_rackspace() {
    let (app, _data) = api();
    let (status, allow, _, _) = ask(&app, "POST", "/v2/images//members", true).await;
    assert_eq!(
        (status, allow.as_deref()),
        (405, Some("GET, PATCH, DELETE"))
    );
    let (status, allow, _, _) = ask(
        &app,
        "POST",
        &format!("/v2/{PRODUCER}/images//members"),
        true,
    )
    .await;
    assert_eq!(
        (status, allow.as_deref()),
        (405, Some("GET, PATCH, DELETE"))
    );
    let (status, ..) = ask(&app, "POST", "/v2/images//members", false).await;
    assert_eq!(status, 401);
    let (status, ..) = ask(&app, "GET", "/v2/images//members", true).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_share_with_a_blank_image_id_is_404_on_glance() {
    let engine = Engine::in_memory_with(imgshare_core::Profile::glance()).unwrap();
    let mut tokens = TokenStore::new();
    tokens.insert(
        "tok",
        imgshare_server::Identity {
            tenant_id: PRODUCER.to_owned(),
            user_id: "u".to_owned(),
            roles: vec!["member".to_owned()],
        },
    );
    let data_dir = tempfile::tempdir().unwrap();
    let app = router(app_state(Arc::new(engine), tokens, data_dir.path()));
    let (status, allow, _, message) = ask(&app, "POST", "/v2/images//members", true).await;
    assert_eq!(
        (status, allow, message.as_str()),
        (404, None, "No image found with ID ")
    );
}
