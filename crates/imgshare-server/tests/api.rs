//! The HTTP API driven through the `Router` with `oneshot` (no network), over an in-memory engine.
//! Accounts follow seed 000: the producer is 111111, the consumer 222222, 333333 a stranger.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::Router;
use common::{
    app_state, call, context, identity, register_snapshot, request, CONSUMER, MAX_BODY, OCTETS,
    PATCH_V21, PRODUCER, STRANGER,
};
use imgshare_core::{Actor, Command, ImageCommand, Profile, StreamId};
use imgshare_server::{router, AppState, Identity, TokenStore};
use imgshare_store::Engine;
use serde_json::{json, Value};
use uuid::Uuid;

const PRODUCER_TOKEN: &str = "tok-producer";
const CONSUMER_TOKEN: &str = "tok-consumer";
const STRANGER_TOKEN: &str = "tok-stranger";

/// The three accounts' tokens, each standing for the identity `identity` gives its tenant.
fn tokens(identity: impl Fn(&str) -> Identity) -> TokenStore {
    let mut tokens = TokenStore::new();
    for (token, tenant) in [
        (PRODUCER_TOKEN, PRODUCER),
        (CONSUMER_TOKEN, CONSUMER),
        (STRANGER_TOKEN, STRANGER),
    ] {
        tokens.insert(token, identity(tenant));
    }
    tokens
}

struct Api {
    app: Router,
    engine: Arc<Engine>,
    data_dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    raw: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// Asserts an error reply: its status and the message under its kind.
    fn assert_error(&self, status: StatusCode, kind: &str, message: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body[kind]["message"], message, "{}", self.body);
    }
}

impl Api {
    fn new() -> Self {
        Self::with_limit(MAX_BODY)
    }

    fn with_limit(max_body_bytes: usize) -> Self {
        Self::with_engine(Engine::in_memory().unwrap(), max_body_bytes)
    }

    fn with_engine(engine: Engine, max_body_bytes: usize) -> Self {
        Self::build(engine, tokens(identity), |state| {
            state.max_body_bytes = max_body_bytes
        })
    }

    /// A Glance-profile endpoint: every account has role `member`.
    fn glance() -> Self {
        Self::glance_with(|_| {})
    }

    fn glance_with(configure: impl FnOnce(&mut AppState)) -> Self {
        let engine = Engine::in_memory_with(Profile::glance()).unwrap();
        let member = |tenant: &str| Identity {
            tenant_id: tenant.to_owned(),
            user_id: format!("user-{tenant}"),
            roles: vec!["member".to_owned()],
        };
        Self::build(engine, tokens(member), configure)
    }

    fn build(engine: Engine, tokens: TokenStore, configure: impl FnOnce(&mut AppState)) -> Self {
        let engine = Arc::new(engine);
        let data_dir = tempfile::tempdir().unwrap();
        let mut state = app_state(Arc::clone(&engine), tokens, data_dir.path());
        configure(&mut state);
        Api {
            app: router(state),
            engine,
            data_dir,
        }
    }

    /// The names of the files in the data directory.
    fn data_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data_dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The producer's saved server image.
    fn snapshot(&self, name: &str) -> Uuid {
        let image_id = Uuid::new_v4();
        register_snapshot(&self.engine, image_id, name, &[]);
        image_id
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = request(method, uri);
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let (status, headers, bytes) = call(&self.app, request, body).await;
        let binary = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value == "application/octet-stream");
        let body = if bytes.is_empty() || binary {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        let reply = Reply {
            status,
            headers,
            body,
            raw: bytes.to_vec(),
        };
        assert!(reply.header("x-openstack-request-id").starts_with("req-"));
        reply
    }

    /// A request without a body or a content type.
    async fn bare(&self, method: Method, uri: &str, token: Option<&str>) -> Reply {
        self.send(method, uri, token, None, Vec::new()).await
    }

    async fn get(&self, uri: &str, token: &str) -> Reply {
        self.bare(Method::GET, uri, Some(token)).await
    }

    async fn delete(&self, uri: &str, token: &str) -> Reply {
        self.bare(Method::DELETE, uri, Some(token)).await
    }

    /// The producer's view of image `id`.
    async fn shown(&self, id: impl std::fmt::Display) -> Reply {
        self.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await
    }

    /// The producer's JSON patch (v2.1) of the image at `uri`.
    async fn patch(&self, uri: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send(
            Method::PATCH,
            uri,
            Some(PRODUCER_TOKEN),
            Some(PATCH_V21),
            body.into(),
        )
        .await
    }

    /// The producer creates an image (Glance) or tries to (Rackspace).
    async fn create(&self, body: Value) -> Reply {
        self.json(Method::POST, "/v2/images", PRODUCER_TOKEN, body)
            .await
    }

    /// The producer shares an image with the consumer through `members`, that image's members URI.
    async fn share(&self, members: &str) -> Reply {
        self.json(
            Method::POST,
            members,
            PRODUCER_TOKEN,
            json!({"member": CONSUMER}),
        )
        .await
    }

    /// `token`'s caller sets the member status at `member` to `status`.
    async fn answer(&self, member: &str, token: &str, status: &str) -> Reply {
        self.json(Method::PUT, member, token, json!({"status": status}))
            .await
    }

    /// The producer asks for `image` to be exported to the container `exports`.
    async fn export(&self, image: Uuid) -> Reply {
        self.json(
            Method::POST,
            "/v2/tasks",
            PRODUCER_TOKEN,
            json!({"type": "export", "input": {"image_uuid": image.to_string(),
                "receiving_swift_container": "exports"}}),
        )
        .await
    }

    async fn json(&self, method: Method, uri: &str, token: &str, body: Value) -> Reply {
        self.send(
            method,
            uri,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }
}

/// The string `field` of each entry of the array `values`.
fn strings<'a>(values: &'a Value, field: &str) -> Vec<&'a str> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value[field].as_str().unwrap())
        .collect()
}

fn image_names(page: &Value) -> Vec<&str> {
    strings(&page["images"], "name")
}

#[tokio::test]
async fn seed_000_producer_consumer_flow_over_http() {
    let api = Api::new();
    let id = api.snapshot("my-saved-image-name");
    let image = format!("/v2/images/{id}");
    let members = format!("{image}/members");
    let member = format!("{members}/{CONSUMER}");

    // Producer: the saved image's details; it has no members yet.
    let reply = api.get(&image, PRODUCER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["id"], id.to_string());
    assert_eq!(reply.body["name"], "my-saved-image-name");
    assert_eq!(reply.body["owner"], PRODUCER);
    assert_eq!(reply.body["status"], "active");
    let reply = api.get(&members, PRODUCER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["members"], json!([]));

    // Before the share the consumer does not know the image exists.
    assert_eq!(
        api.get(&image, CONSUMER_TOKEN).await.status,
        StatusCode::NOT_FOUND
    );

    // Producer shares: 200 (not 201), pending.
    let reply = api.share(&members).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["member_id"], CONSUMER);
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(reply.body["image_id"], id.to_string());

    // Consumer: sees the image and its pending share; it is not in the default list yet.
    let reply = api.get(&image, CONSUMER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["owner"], PRODUCER);
    let reply = api.get(&member, CONSUMER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "pending");
    let list = api.get("/v2/images", CONSUMER_TOKEN).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(image_names(&list.body).is_empty(), "{}", list.body);
    let list = api
        .get("/v2/images?member_status=pending", CONSUMER_TOKEN)
        .await;
    assert_eq!(image_names(&list.body), ["my-saved-image-name"]);

    // Consumer accepts: now listed by default.
    let reply = api.answer(&member, CONSUMER_TOKEN, "accepted").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "accepted");
    let list = api.get("/v2/images", CONSUMER_TOKEN).await;
    assert_eq!(image_names(&list.body), ["my-saved-image-name"]);

    // The producer may not answer for the consumer.
    let reply = api.answer(&member, PRODUCER_TOKEN, "rejected").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["forbidden"]["code"], 403);

    // Consumer rejects; it can still read the image by id.
    let reply = api.answer(&member, CONSUMER_TOKEN, "rejected").await;
    assert_eq!(reply.body["status"], "rejected");
    assert_eq!(api.get(&image, CONSUMER_TOKEN).await.status, StatusCode::OK);

    // Consumer cannot delete the shared image.
    let reply = api.delete(&image, CONSUMER_TOKEN).await;
    reply.assert_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "You are not permitted to delete this image.",
    );
    assert_eq!(reply.body["forbidden"]["error_code"], "forbidden");
    assert_eq!(
        reply.header("content-type"),
        "application/json; charset=UTF-8"
    );

    // Producer unshares: 204; the consumer loses access.
    let reply = api.delete(&member, PRODUCER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.body, Value::Null);
    let reply = api.get(&image, CONSUMER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["itemNotFound"]["code"], 404);
    assert_eq!(reply.body["itemNotFound"]["error_code"], "image_not_found");

    // Producer deletes the image: 204, then 404.
    assert_eq!(
        api.delete(&image, PRODUCER_TOKEN).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&image, PRODUCER_TOKEN).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn requests_without_a_known_token_are_401() {
    let api = Api::new();
    let id = api.snapshot("img");
    for token in [None, Some("nope")] {
        let reply = api
            .bare(Method::GET, &format!("/v2/images/{id}"), token)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body["unauthorized"]["code"], 401);
        assert_eq!(reply.body["unauthorized"]["error_code"], "unauthorized");
    }
    let reply = api.bare(Method::GET, "/v2/images", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stranger_and_bad_ids_get_404() {
    let api = Api::new();
    let id = api.snapshot("img");
    for uri in [
        format!("/v2/images/{id}"),
        format!("/v2/images/{id}/members"),
        format!("/v2/images/{id}/members/{STRANGER}"),
    ] {
        let reply = api.get(&uri, STRANGER_TOKEN).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.body["itemNotFound"]["code"], 404);
    }
    let reply = api
        .delete(&format!("/v2/images/{id}"), STRANGER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(image_names(&api.get("/v2/images", STRANGER_TOKEN).await.body).is_empty());

    for uri in [
        "/v2/images/not-a-uuid",
        "/v2/images/not-a-uuid/members",
        "/v2/images/%E2%82%AC/tags/x",
        "/v2/tasks/42",
        "/v2/schemas/nothing",
        "/v2/nothing",
    ] {
        let method = if uri.contains("/tags/") {
            Method::PUT
        } else {
            Method::GET
        };
        let reply = api.bare(method, uri, Some(PRODUCER_TOKEN)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.body["itemNotFound"]["code"], 404, "{uri}");
    }
}

#[tokio::test]
async fn patch_needs_a_patch_media_type() {
    let api = Api::new();
    let id = api.snapshot("img");
    let uri = format!("/v2/images/{id}");
    let body = json!([{"op": "replace", "path": "/name", "value": "renamed"}]).to_string();
    for content_type in [Some("application/json"), None] {
        let reply = api
            .send(
                Method::PATCH,
                &uri,
                Some(PRODUCER_TOKEN),
                content_type,
                body.clone().into_bytes(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            reply.header("accept-patch"),
            "application/openstack-images-v2.0-json-patch, \
             application/openstack-images-v2.1-json-patch"
        );
        assert_eq!(reply.body["badMediaType"]["code"], 415);
    }
    let reply = api.patch(&uri, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["name"], "renamed");
    assert_eq!(reply.body["id"], id.to_string());

    let reply = api.patch(&uri, b"[{".to_vec()).await;
    reply.assert_error(
        StatusCode::BAD_REQUEST,
        "badRequest",
        "Malformed JSON in request body.",
    );
}

#[tokio::test]
async fn unknown_methods_are_405_with_allow() {
    let api = Api::new();
    let id = api.snapshot("img");
    let task = Uuid::new_v4();
    let cases = [
        (Method::DELETE, format!("/v2/tasks/{task}"), "GET"),
        (
            Method::POST,
            format!("/v2/images/{id}"),
            "GET, PATCH, DELETE",
        ),
        (Method::PUT, "/v2/images".to_owned(), "GET, POST"),
        (Method::DELETE, format!("/v2/images/{id}/file"), "GET, PUT"),
        (
            Method::PUT,
            format!("/v2/images/{id}/actions/deactivate"),
            "POST",
        ),
        (
            Method::GET,
            format!("/v2/images/{id}/tags/web"),
            "PUT, DELETE",
        ),
        (Method::DELETE, "/v2/schemas/image".to_owned(), "GET"),
    ];
    for (method, uri, allow) in cases {
        let reply = api.bare(method, &uri, Some(PRODUCER_TOKEN)).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        assert_eq!(reply.header("allow"), allow, "{uri}");
        assert_eq!(reply.body["badMethod"]["code"], 405);
    }
}

/// The version document, with the link to the v2 endpoint at `href`.
fn versions(href: &str) -> Value {
    json!({"versions": [{"id": "v2.0", "status": "CURRENT",
        "links": [{"rel": "self", "href": href}]}]})
}

#[tokio::test]
async fn versions_answer_300_without_a_token() {
    let api = Api::new();
    for uri in ["/", "/versions"] {
        let reply = api.bare(Method::GET, uri, None).await;
        assert_eq!(reply.status, StatusCode::MULTIPLE_CHOICES);
        assert_eq!(reply.body, versions("http://dfw.images.example/v2/"));
    }
}

#[tokio::test]
async fn the_v2_endpoint_answers_version_discovery() {
    let api = Api::new();
    for uri in ["/v2", "/v2/"] {
        let reply = api.bare(Method::GET, uri, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.body, versions("http://dfw.images.example/v2/"));
    }
    for uri in ["/v2/111111", "/v2/111111/"] {
        let reply = api.get(uri, PRODUCER_TOKEN).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.body, versions("http://dfw.images.example/v2/111111/"));
        let reply = api.bare(Method::GET, uri, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri}");
        let reply = api.get(uri, CONSUMER_TOKEN).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let reply = api.bare(Method::POST, "/v2", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_tenant_prefix_must_be_the_callers() {
    let api = Api::new();
    let id = api.snapshot("img");
    let reply = api
        .get(&format!("/v2/{PRODUCER}/images/{id}"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["self"], format!("/v2/images/{id}"));
    let reply = api
        .share(&format!("/v2/{PRODUCER}/images/{id}/members"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = api
        .get(&format!("/v2/{CONSUMER}/images/{id}"), CONSUMER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // Someone else's tenant in the path: 404, even for the owner's image.
    for token in [PRODUCER_TOKEN, STRANGER_TOKEN] {
        let reply = api.get(&format!("/v2/{CONSUMER}/images/{id}"), token).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.body["itemNotFound"]["code"], 404);
    }
    let reply = api
        .get(&format!("/v2/{PRODUCER}/images"), PRODUCER_TOKEN)
        .await;
    assert_eq!(image_names(&reply.body), ["img"]);
    let reply = api
        .get(&format!("/v2/{PRODUCER}/schemas/members"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn bodies_are_checked() {
    let api = Api::with_limit(256);
    let id = api.snapshot("img");
    let members = format!("/v2/images/{id}/members");

    // Each refused with 400 and, where one is given, that message.
    let json_body = |body: Value| body.to_string().into_bytes();
    let cases = [
        (
            Method::GET,
            format!("/v2/images/{id}"),
            PRODUCER_TOKEN,
            b"{}".to_vec(),
            Some("A body is not expected with this request."),
        ),
        (
            Method::POST,
            members.clone(),
            PRODUCER_TOKEN,
            b"{\"member\":".to_vec(),
            Some("Malformed JSON in request body."),
        ),
        (
            Method::POST,
            members.clone(),
            PRODUCER_TOKEN,
            json_body(json!("222222")),
            None,
        ),
        (
            Method::POST,
            members.clone(),
            PRODUCER_TOKEN,
            json_body(json!({"who": "x"})),
            Some("Member to be added not specified"),
        ),
        (
            Method::PUT,
            format!("{members}/{CONSUMER}"),
            CONSUMER_TOKEN,
            json_body(json!({})),
            Some("Status not specified"),
        ),
    ];
    for (method, uri, token, body, message) in cases {
        let reply = api
            .send(method, &uri, Some(token), Some("application/json"), body)
            .await;
        match message {
            Some(message) => reply.assert_error(StatusCode::BAD_REQUEST, "badRequest", message),
            None => assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}"),
        }
    }

    let big = json!({"member": "x".repeat(1000)});
    let reply = api.json(Method::POST, &members, PRODUCER_TOKEN, big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["overLimit"]["code"], 413);

    // Duplicate member: 409.
    for expected in [StatusCode::OK, StatusCode::CONFLICT] {
        let reply = api.share(&members).await;
        assert_eq!(reply.status, expected);
    }
}

#[tokio::test]
async fn tags_tasks_and_schemas() {
    let api = Api::new();
    let id = api.snapshot("img");
    let tag = format!("/v2/images/{id}/tags/blue%20sky");
    let reply = api.bare(Method::PUT, &tag, Some(PRODUCER_TOKEN)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = api.shown(id).await;
    assert_eq!(reply.body["tags"], json!(["blue sky"]));
    assert_eq!(
        api.delete(&tag, PRODUCER_TOKEN).await.status,
        StatusCode::NO_CONTENT
    );

    let reply = api.export(id).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let task_id = reply.body["id"].as_str().unwrap().to_owned();
    assert_eq!(reply.header("location"), format!("/v2/tasks/{task_id}"));
    assert_eq!(reply.body["status"], "pending");

    let reply = api
        .get(&format!("/v2/tasks/{task_id}"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["type"], "export");
    let reply = api.get("/v2/tasks", PRODUCER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["tasks"].as_array().unwrap().len(), 1);
    // Tasks are visible only to their owner.
    let reply = api
        .get(&format!("/v2/tasks/{task_id}"), CONSUMER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let reply = api
        .json(
            Method::POST,
            "/v2/tasks",
            PRODUCER_TOKEN,
            json!({"type": "copy"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let reply = api.get("/v2/schemas/image", PRODUCER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "image");
}

#[tokio::test]
async fn odd_inputs_never_crash() {
    let api = Api::new();
    let id = api.snapshot("img");
    let uris = [
        "/v2".to_owned(),
        "/v2/".to_owned(),
        "/v2/images/".to_owned(),
        format!("/v2/images/{id}/members/"),
        format!("/v2/images/{id}/tags/"),
        format!("/v2/images/{id}/tags/%"),
        "/v2/images?limit=abc".to_owned(),
        "/v2/images?sort_key=nope".to_owned(),
        "/v2/tasks?status=bogus".to_owned(),
    ];
    for uri in uris {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            let reply = api
                .send(
                    method.clone(),
                    &uri,
                    Some(PRODUCER_TOKEN),
                    Some("application/json"),
                    Vec::new(),
                )
                .await;
            assert!(
                reply.status.is_client_error() || reply.status.is_success(),
                "{method} {uri}: {}",
                reply.status
            );
        }
    }
}

#[tokio::test]
async fn the_request_id_is_kept_in_the_event_metadata() {
    let api = Api::new();
    let id = api.snapshot("img");
    let reply = api
        .bare(
            Method::PUT,
            &format!("/v2/images/{id}/tags/web"),
            Some(PRODUCER_TOKEN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let request_id = reply.header("x-openstack-request-id").to_owned();
    let events = api
        .engine
        .read(|conn| {
            Ok(imgshare_store::log::read_stream(
                conn,
                &StreamId::Image(id).to_string(),
            )?)
        })
        .unwrap();
    let last = events.last().expect("the tag event");
    assert_eq!(last.metadata["request_id"], request_id.as_str());
    assert_eq!(last.metadata["actor"]["tenant_id"], PRODUCER);
}

#[tokio::test]
async fn schemas_follow_the_engine_profile() {
    let visibilities = |reply: &Reply| -> Vec<String> {
        serde_json::from_value(reply.body["properties"]["visibility"]["enum"].clone()).unwrap()
    };
    let rackspace = Api::new();
    let reply = rackspace.get("/v2/schemas/image", PRODUCER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!visibilities(&reply).contains(&"community".to_owned()));

    let glance = Api::with_engine(
        Engine::in_memory_with(imgshare_core::Profile::glance()).unwrap(),
        1024,
    );
    let reply = glance.get("/v2/schemas/image", PRODUCER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(visibilities(&reply).contains(&"community".to_owned()));
}

#[tokio::test]
async fn hostile_bodies_and_headers_are_client_errors() {
    let api = Api::new();
    let id = api.snapshot("img");
    let members = format!("/v2/images/{id}/members");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<Vec<u8>> = vec![
        deep.clone().into_bytes(),
        vec![0xff, 0xfe, 0x00],
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"member\": 12}".to_vec(),
        b"{\"member\": \"\"}".to_vec(),
        b"{\"status\": [1]}".to_vec(),
        b"{\"type\": \"import\", \"input\": 3}".to_vec(),
    ];
    for body in bodies {
        for (method, uri) in [
            (Method::POST, members.clone()),
            (Method::PUT, format!("{members}/{CONSUMER}")),
            (Method::POST, "/v2/tasks".to_owned()),
            (Method::PATCH, format!("/v2/images/{id}")),
        ] {
            let content_type = if method == Method::PATCH {
                PATCH_V21
            } else {
                "application/json"
            };
            let reply = api
                .send(
                    method.clone(),
                    &uri,
                    Some(PRODUCER_TOKEN),
                    Some(content_type),
                    body.clone(),
                )
                .await;
            // An empty patch document is a valid no-op (200), as in Glance.
            let empty_patch = method == Method::PATCH && body == b"[]";
            assert!(
                reply.status.is_client_error() || empty_patch,
                "{method} {uri}: {}",
                reply.status
            );
        }
    }
    // A declared length over the limit is refused before reading.
    let too_long = request(Method::POST, &members)
        .header("X-Auth-Token", PRODUCER_TOKEN)
        .header(header::CONTENT_LENGTH, "999999999999");
    let (status, _, _) = call(&api.app, too_long, Vec::new()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A token that is not text is unknown.
    let not_text = request(Method::GET, "/v2/images").header("X-Auth-Token", &[0xffu8, 0x41][..]);
    let (status, _, _) = call(&api.app, not_text, Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

impl Api {
    async fn upload(&self, uri: &str, token: &str, data: &[u8]) -> Reply {
        self.send(Method::PUT, uri, Some(token), Some(OCTETS), data.to_vec())
            .await
    }

    async fn post_empty(&self, uri: &str, token: &str) -> Reply {
        self.send(Method::POST, uri, Some(token), None, Vec::new())
            .await
    }

    /// A queued Glance image of the producer, created over HTTP; its id.
    async fn create_queued(&self) -> String {
        let created = self
            .create(json!({"name": "disk", "container_format": "bare", "disk_format": "raw"}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn creating_images_is_forbidden_in_the_rackspace_profile() {
    let api = Api::new();
    for uri in ["/v2/images", &format!("/v2/{PRODUCER}/images")] {
        let reply = api
            .json(Method::POST, uri, PRODUCER_TOKEN, json!({"name": "mine"}))
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{uri}: {}", reply.body);
    }
    let reply = api.create(json!({"status": "active"})).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn glance_members_create_queued_shared_images() {
    let api = Api::glance();
    let id = Uuid::new_v4();
    let reply = api
        .json(
            Method::POST,
            &format!("/v2/{PRODUCER}/images"),
            PRODUCER_TOKEN,
            json!({"id": id.to_string(), "name": "disk", "container_format": "bare",
                   "disk_format": "raw", "min_ram": 512, "tags": ["a", "b"], "color": "blue"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.header("location"), format!("/v2/images/{id}"));
    assert_eq!(reply.body["id"], json!(id.to_string()));
    assert_eq!(reply.body["status"], "queued");
    assert_eq!(reply.body["visibility"], "shared");
    assert_eq!(reply.body["owner"], PRODUCER);
    assert_eq!(reply.body["min_ram"], 512);
    assert_eq!(reply.body["color"], "blue");
    let shown = api.shown(&id).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["name"], "disk");
    // A new UUID when none is given.
    let other = api.create_queued().await;
    assert!(Uuid::try_parse(&other).is_ok());
    assert_ne!(other, id.to_string());
    // The same id again.
    let again = api.create(json!({"id": id.to_string()})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

#[tokio::test]
async fn bad_image_bodies_are_refused() {
    let api = Api::glance();
    let cases = [
        (json!({"color": 5}), StatusCode::BAD_REQUEST),
        (json!({"name": 5}), StatusCode::BAD_REQUEST),
        (json!({"protected": "yes"}), StatusCode::BAD_REQUEST),
        (json!({"min_disk": -1}), StatusCode::BAD_REQUEST),
        (json!({"tags": [1]}), StatusCode::BAD_REQUEST),
        (json!({"visibility": "everyone"}), StatusCode::BAD_REQUEST),
        (json!({"id": "not-a-uuid"}), StatusCode::BAD_REQUEST),
        (json!({"disk_format": "floppy"}), StatusCode::BAD_REQUEST),
        (json!(["name"]), StatusCode::BAD_REQUEST),
        (json!({"status": "active"}), StatusCode::FORBIDDEN),
        (json!({"size": 5}), StatusCode::FORBIDDEN),
        (json!({"checksum": "x"}), StatusCode::FORBIDDEN),
        (json!({"locations": []}), StatusCode::FORBIDDEN),
    ];
    for (body, expected) in cases {
        let reply = api.create(body.clone()).await;
        assert_eq!(reply.status, expected, "{body}: {}", reply.body);
    }
    let empty = api.post_empty("/v2/images", PRODUCER_TOKEN).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let listed = api.get("/v2/images", PRODUCER_TOKEN).await;
    assert_eq!(listed.body["images"], json!([]));
}

#[tokio::test]
async fn rackspace_tenants_cannot_deactivate_or_upload() {
    let api = Api::new();
    let id = api.snapshot("saved");
    for action in ["deactivate", "reactivate"] {
        let uri = format!("/v2/{PRODUCER}/images/{id}/actions/{action}");
        let reply = api.post_empty(&uri, PRODUCER_TOKEN).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{action}: {}",
            reply.body
        );
        let with_body = api
            .json(Method::POST, &uri, PRODUCER_TOKEN, json!({}))
            .await;
        assert_eq!(with_body.status, StatusCode::BAD_REQUEST);
        let get = api.get(&uri, PRODUCER_TOKEN).await;
        assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    }
    let unknown = api
        .post_empty(&format!("/v2/images/{id}/actions/explode"), PRODUCER_TOKEN)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let reply = api
        .upload(&format!("/v2/images/{id}/file"), PRODUCER_TOKEN, b"data")
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(api.data_files().is_empty(), "{:?}", api.data_files());
    // A snapshot registered without data in the store: nothing to download.
    let reply = api
        .get(&format!("/v2/images/{id}/file"), CONSUMER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = api
        .get(&format!("/v2/images/{id}/file"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn glance_owners_upload_download_and_deactivate() {
    let api = Api::glance();
    let id = api.create_queued().await;
    let data = b"hello image data".repeat(1000);
    let file = format!("/v2/{PRODUCER}/images/{id}/file");
    let none = api.get(&file, PRODUCER_TOKEN).await;
    assert_eq!(none.status, StatusCode::NO_CONTENT);
    let wrong_type = api
        .send(
            Method::PUT,
            &file,
            Some(PRODUCER_TOKEN),
            Some("application/json"),
            data.clone(),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let stranger = api
        .upload(&file.replace(PRODUCER, STRANGER), STRANGER_TOKEN, &data)
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    let uploaded = api.upload(&file, PRODUCER_TOKEN, &data).await;
    assert_eq!(uploaded.status, StatusCode::NO_CONTENT, "{}", uploaded.body);
    assert_eq!(api.data_files(), vec![id.clone()]);
    let shown = api.shown(&id).await;
    assert_eq!(shown.body["status"], "active");
    assert_eq!(shown.body["size"], data.len());
    let checksum = shown.body["checksum"].as_str().unwrap().to_owned();
    assert_eq!(checksum.len(), 32);
    assert_eq!(shown.body["os_hash_algo"], "sha512");
    assert_eq!(shown.body["os_hash_value"].as_str().unwrap().len(), 128);
    // Data is immutable: a second upload is 409 and leaves no file behind.
    let again = api.upload(&file, PRODUCER_TOKEN, b"other").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(api.data_files(), vec![id.clone()]);

    let downloaded = api.get(&file, PRODUCER_TOKEN).await;
    assert_eq!(downloaded.status, StatusCode::OK);
    assert_eq!(downloaded.header("content-type"), OCTETS);
    assert_eq!(downloaded.header("content-length"), data.len().to_string());
    assert_eq!(downloaded.header("content-md5"), checksum);
    assert_eq!(downloaded.raw, data);

    let actions = format!("/v2/images/{id}/actions");
    let reply = api
        .post_empty(&format!("{actions}/deactivate"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let shown = api.shown(&id).await;
    assert_eq!(shown.body["status"], "deactivated");
    let refused = api.get(&file, PRODUCER_TOKEN).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body["forbidden"]["message"],
        "The requested image has been deactivated. Image data download is forbidden."
    );
    let reply = api
        .post_empty(&format!("{actions}/reactivate"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let shown = api.shown(&id).await;
    assert_eq!(shown.body["status"], "active");
    assert_eq!(api.get(&file, PRODUCER_TOKEN).await.raw, data);
}

#[tokio::test]
async fn uploads_are_limited_and_need_storage() {
    let api = Api::glance_with(|state| state.max_image_bytes = 10);
    let id = api.create_queued().await;
    let file = format!("/v2/images/{id}/file");
    let reply = api.upload(&file, PRODUCER_TOKEN, &[7; 11]).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(api.data_files().is_empty());
    let shown = api.shown(&id).await;
    assert_eq!(shown.body["status"], "queued");
    // The body limit does not apply to image data.
    let api = Api::glance_with(|state| state.max_body_bytes = 200);
    let id = api.create_queued().await;
    let reply = api
        .upload(&format!("/v2/images/{id}/file"), PRODUCER_TOKEN, &[7; 1000])
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);

    let api = Api::glance_with(|state| state.image_data = None);
    let id = api.create_queued().await;
    let reply = api
        .upload(&format!("/v2/images/{id}/file"), PRODUCER_TOKEN, b"data")
        .await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        reply.body["computeFault"]["message"],
        "image data storage is not configured"
    );
}

#[tokio::test]
async fn an_images_tasks_are_listed() {
    let api = Api::new();
    let id = api.snapshot("saved");
    let other = api.snapshot("other");
    let mut expected = Vec::new();
    // More tasks than one page of `GET /v2/tasks` (25) holds.
    // The image's tasks are created first and last, so some are on a later page.
    let mut images = vec![id];
    images.extend([other; 30]);
    images.push(id);
    for image in images {
        let reply = api.export(image).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        if image == id {
            expected.push(reply.body["id"].as_str().unwrap().to_owned());
        }
    }
    let reply = api
        .get(&format!("/v2/{PRODUCER}/images/{id}/tasks"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut ids = strings(&reply.body["tasks"], "id");
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        reply.body["tasks"][0]["input"]["image_uuid"],
        id.to_string()
    );
    // The consumer cannot see the image; a stranger's tasks are not the producer's.
    let reply = api
        .get(&format!("/v2/images/{id}/tasks"), CONSUMER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = api
        .get(
            &format!("/v2/images/{}/tasks", Uuid::new_v4()),
            PRODUCER_TOKEN,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

impl Api {
    /// Polls the producer's image until its status leaves `importing`; the final image.
    async fn after_import(&self, id: &str) -> Value {
        for _ in 0..500 {
            let shown = self.shown(id).await;
            if shown.body["status"] != "importing" {
                return shown.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("image {id} is still importing");
    }

    /// The producer deletes image `id`: 204, and its data, staged or not, goes with it.
    async fn delete_leaves_no_data(&self, id: &str) {
        let deleted = self
            .delete(&format!("/v2/images/{id}"), PRODUCER_TOKEN)
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        assert!(self.data_files().is_empty(), "{:?}", self.data_files());
    }
}

#[tokio::test]
async fn glance_direct_import_stages_then_activates() {
    let api = Api::glance();
    let created = api
        .create(json!({"name": "img-staged", "disk_format": "raw", "container_format": "bare"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.header("openstack-image-import-methods"),
        "glance-direct"
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    let stage = format!("/v2/images/{id}/stage");
    let import = format!("/v2/images/{id}/import");
    let glance_direct = json!({"method": {"name": "glance-direct"}});

    let early = api
        .json(Method::POST, &import, PRODUCER_TOKEN, glance_direct.clone())
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    let stranger = api.upload(&stage, STRANGER_TOKEN, b"x").await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    let wrong_type = api
        .json(Method::PUT, &stage, PRODUCER_TOKEN, json!({}))
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let staged = api.upload(&stage, PRODUCER_TOKEN, b"staged bytes").await;
    assert_eq!(staged.status, StatusCode::NO_CONTENT, "{}", staged.body);
    let shown = api.shown(&id).await;
    assert_eq!(shown.body["status"], "uploading");
    assert_eq!(shown.body["size"], 12);
    assert_eq!(shown.body["checksum"], Value::Null);
    let again = api.upload(&stage, PRODUCER_TOKEN, b"more").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    for (body, code) in [
        (
            json!({"method": {"name": "web-download", "uri": "http://x/y"}}),
            "invalid_input",
        ),
        (json!({"method": {}}), "invalid_import_request"),
        (json!({}), "invalid_import_request"),
    ] {
        let refused = api.json(Method::POST, &import, PRODUCER_TOKEN, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(
            refused.body["badRequest"]["error_code"], code,
            "{}",
            refused.body
        );
    }
    let imported = api
        .json(Method::POST, &import, PRODUCER_TOKEN, glance_direct)
        .await;
    assert_eq!(imported.status, StatusCode::ACCEPTED, "{}", imported.body);
    assert!(imported.raw.is_empty());
    let image = api.after_import(&id).await;
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["size"], 12);
    // md5("staged bytes"), as Glance shows it after the same import.
    assert_eq!(image["checksum"], "978e809fd6fb4ee8b08771f8249d2d8b");
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(api.data_files(), vec![id.clone()]);
    let file = api
        .get(&format!("/v2/images/{id}/file"), PRODUCER_TOKEN)
        .await;
    assert_eq!(file.raw, b"staged bytes");

    let info = api.get("/v2/info/import", PRODUCER_TOKEN).await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(
        info.body["import-methods"]["value"],
        json!(["glance-direct"])
    );

    api.delete_leaves_no_data(&id).await;
}

#[tokio::test]
async fn a_member_may_not_stage_and_deleting_a_staged_image_removes_its_data() {
    let api = Api::glance();
    let created = api
        .create(
            json!({"name": "s", "disk_format": "raw", "container_format": "bare",
                       "visibility": "shared"}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let shared = api.share(&format!("/v2/images/{id}/members")).await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.body);
    let stage = format!("/v2/images/{id}/stage");
    let member = api.upload(&stage, CONSUMER_TOKEN, b"x").await;
    assert_eq!(member.status, StatusCode::FORBIDDEN, "{}", member.body);
    let staged = api.upload(&stage, PRODUCER_TOKEN, b"data").await;
    assert_eq!(staged.status, StatusCode::NO_CONTENT);
    assert_eq!(api.data_files(), vec![format!(".staged-{id}")]);
    let wrong = api.get(&stage, PRODUCER_TOKEN).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.header("allow"), "PUT");
    api.delete_leaves_no_data(&id).await;
}

#[tokio::test]
async fn rackspace_tenants_cannot_stage() {
    let api = Api::new();
    let id = api.snapshot("saved");
    let reply = api
        .upload(&format!("/v2/images/{id}/stage"), PRODUCER_TOKEN, b"x")
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(api.data_files().is_empty());
}

#[tokio::test]
async fn imports_left_importing_by_a_stopped_server_are_finished_on_start() {
    let api = Api::glance();
    let finished = api.create_queued().await;
    let lost = api.create_queued().await;
    for id in [&finished, &lost] {
        let staged = api
            .upload(&format!("/v2/images/{id}/stage"), PRODUCER_TOKEN, b"abc")
            .await;
        assert_eq!(staged.status, StatusCode::NO_CONTENT);
        // The server accepted the import and stopped before moving the data.
        let ctx = context(Actor::tenant(PRODUCER, "user-111111", &["member"]));
        let command = ImageCommand::StartImport {
            method: "glance-direct".to_owned(),
        };
        let image_id = Uuid::parse_str(id).unwrap();
        api.engine
            .execute(&ctx, Command::Image { image_id, command })
            .unwrap();
    }
    std::fs::remove_file(api.data_dir.path().join(format!(".staged-{lost}"))).unwrap();

    let state = app_state(
        Arc::clone(&api.engine),
        TokenStore::new(),
        api.data_dir.path(),
    );
    // An import whose lease a live worker holds (another server on the same database) is left
    // to it; the other one is finished.
    let engine = Arc::clone(&api.engine);
    let finished_id = Uuid::parse_str(&finished).unwrap();
    let resumed = tokio::task::spawn_blocking(move || {
        let lease = engine.try_lease_task(finished_id).unwrap().unwrap();
        let resumed = imgshare_server::resume_imports(&state).unwrap();
        drop(lease);
        (resumed, state)
    })
    .await
    .unwrap();
    let (resumed, state) = resumed;
    assert_eq!(resumed, 1);
    assert_eq!(api.shown(&finished).await.body["status"], "importing");
    assert_eq!(api.shown(&lost).await.body["status"], "queued");
    // Once the lease is free (its worker stopped), the next start finishes it.
    let resumed = tokio::task::spawn_blocking(move || imgshare_server::resume_imports(&state))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed, 1);
    let image = api.shown(&finished).await;
    assert_eq!(image.body["status"], "active");
    assert_eq!(image.body["checksum"], "900150983cd24fb0d6963f7d28e17f72");
    let image = api.shown(&lost).await;
    assert_eq!(image.body["status"], "queued");
    assert_eq!(image.body["size"], Value::Null);
    assert_eq!(api.data_files(), vec![finished.clone()]);
}

#[tokio::test]
async fn core_integer_columns_filter_by_equality() {
    let api = Api::glance();
    let small = api.create_queued().await;
    let large = api.create_queued().await;
    for (id, size) in [(&small, 3), (&large, 5)] {
        let reply = api
            .upload(
                &format!("/v2/images/{id}/file"),
                PRODUCER_TOKEN,
                &vec![1; size],
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    let page = api.get("/v2/images?size=5", PRODUCER_TOKEN).await;
    assert_eq!(strings(&page.body["images"], "id"), [large.as_str()]);
    let page = api.get("/v2/images?size=4", PRODUCER_TOKEN).await;
    assert!(strings(&page.body["images"], "id").is_empty());
    let page = api.get("/v2/images?size=abc", PRODUCER_TOKEN).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(strings(&page.body["images"], "id").is_empty());
}

#[tokio::test]
async fn glance_owner_on_create_is_the_callers_unless_an_admin_asks() {
    let api = Api::glance();
    let create = |owner: Value| json!({"name": "o", "disk_format": "raw", "container_format": "bare", "owner": owner});
    let own = api.create(create(json!(PRODUCER))).await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_eq!(own.body["owner"], PRODUCER);
    let log_head = || {
        api.engine
            .read(|conn| Ok(imgshare_store::head(conn)?))
            .unwrap()
    };
    let head = log_head();
    for (owner, status) in [
        (json!(CONSUMER), StatusCode::FORBIDDEN),
        (json!(7), StatusCode::BAD_REQUEST),
        (json!(""), StatusCode::BAD_REQUEST),
    ] {
        let refused = api.create(create(owner.clone())).await;
        assert_eq!(refused.status, status, "owner {owner}: {}", refused.body);
    }
    assert_eq!(log_head(), head, "a refused create writes nothing");
}
