//! The HTTP API driven through the `Router` with `oneshot` (no network), over an in-memory engine.
//! Accounts follow seed 000: the producer is 111111, the consumer 222222, 333333 a stranger.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, Profile, Region,
    StreamId,
};
use imgshare_server::{router, AppState, Identity, TokenStore};
use imgshare_store::Engine;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const PRODUCER: &str = "111111";
const CONSUMER: &str = "222222";
const STRANGER: &str = "333333";
const PRODUCER_TOKEN: &str = "tok-producer";
const CONSUMER_TOKEN: &str = "tok-consumer";
const STRANGER_TOKEN: &str = "tok-stranger";
const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";

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
}

fn identity(tenant: &str) -> Identity {
    Identity {
        tenant_id: tenant.to_owned(),
        user_id: format!("admin-{tenant}"),
        roles: vec!["cloudImages:admin".to_owned()],
    }
}

impl Api {
    fn new() -> Self {
        Self::with_limit(64 * 1024)
    }

    fn with_limit(max_body_bytes: usize) -> Self {
        Self::with_engine(Engine::in_memory().unwrap(), max_body_bytes)
    }

    fn with_engine(engine: Engine, max_body_bytes: usize) -> Self {
        let mut tokens = TokenStore::new();
        tokens.insert(PRODUCER_TOKEN, identity(PRODUCER));
        tokens.insert(CONSUMER_TOKEN, identity(CONSUMER));
        tokens.insert(STRANGER_TOKEN, identity(STRANGER));
        Self::build(engine, tokens, |state| {
            state.max_body_bytes = max_body_bytes
        })
    }

    /// A Glance-profile endpoint: every account has role `member`.
    fn glance() -> Self {
        Self::glance_with(|_| {})
    }

    fn glance_with(configure: impl FnOnce(&mut AppState)) -> Self {
        let engine = Engine::in_memory_with(Profile::glance()).unwrap();
        let mut tokens = TokenStore::new();
        for (token, tenant) in [
            (PRODUCER_TOKEN, PRODUCER),
            (CONSUMER_TOKEN, CONSUMER),
            (STRANGER_TOKEN, STRANGER),
        ] {
            tokens.insert(
                token,
                Identity {
                    tenant_id: tenant.to_owned(),
                    user_id: format!("user-{tenant}"),
                    roles: vec!["member".to_owned()],
                },
            );
        }
        Self::build(engine, tokens, configure)
    }

    fn build(engine: Engine, tokens: TokenStore, configure: impl FnOnce(&mut AppState)) -> Self {
        let engine = Arc::new(engine);
        let data_dir = tempfile::tempdir().unwrap();
        let mut state = AppState::new(
            Arc::clone(&engine),
            Arc::new(tokens),
            Region::parse("DFW").unwrap(),
        );
        state.max_body_bytes = 64 * 1024;
        state.data_dir = Some(data_dir.path().to_owned());
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

    /// The producer's saved server image, registered through the engine (the Rackspace API has
    /// no image create).
    fn snapshot(&self, name: &str) -> Uuid {
        let image_id = Uuid::new_v4();
        let actor = Actor::tenant(PRODUCER, "admin-111111", &["cloudImages:admin"]);
        let ctx = Context::new(actor, Region::parse("DFW").unwrap(), chrono::Utc::now());
        let image = NewImage {
            name: Some(name.to_owned()),
            container_format: Some("ovf".to_owned()),
            disk_format: Some("vhd".to_owned()),
            data: Some(ImageActivated {
                size: 1024,
                checksum: "0123456789abcdef0123456789abcdef".to_owned(),
                virtual_size: None,
                os_hash_algo: None,
                os_hash_value: None,
            }),
            ..NewImage::default()
        };
        let command = ImageCommand::Register {
            origin: ImageOrigin::Snapshot {
                server_id: "srv-1".to_owned(),
            },
            image,
        };
        self.engine
            .execute(&ctx, Command::Image { image_id, command })
            .unwrap();
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
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "dfw.images.example");
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
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

    async fn get(&self, uri: &str, token: &str) -> Reply {
        self.send(Method::GET, uri, Some(token), None, Vec::new())
            .await
    }

    async fn delete(&self, uri: &str, token: &str) -> Reply {
        self.send(Method::DELETE, uri, Some(token), None, Vec::new())
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

fn image_names(page: &Value) -> Vec<&str> {
    page["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["name"].as_str().unwrap())
        .collect()
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
    let reply = api
        .json(
            Method::POST,
            &members,
            PRODUCER_TOKEN,
            json!({"member": CONSUMER}),
        )
        .await;
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
    let reply = api
        .json(
            Method::PUT,
            &member,
            CONSUMER_TOKEN,
            json!({"status": "accepted"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "accepted");
    let list = api.get("/v2/images", CONSUMER_TOKEN).await;
    assert_eq!(image_names(&list.body), ["my-saved-image-name"]);

    // The producer may not answer for the consumer.
    let reply = api
        .json(
            Method::PUT,
            &member,
            PRODUCER_TOKEN,
            json!({"status": "rejected"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["forbidden"]["code"], 403);

    // Consumer rejects; it can still read the image by id.
    let reply = api
        .json(
            Method::PUT,
            &member,
            CONSUMER_TOKEN,
            json!({"status": "rejected"}),
        )
        .await;
    assert_eq!(reply.body["status"], "rejected");
    assert_eq!(api.get(&image, CONSUMER_TOKEN).await.status, StatusCode::OK);

    // Consumer cannot delete the shared image.
    let reply = api.delete(&image, CONSUMER_TOKEN).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.body["forbidden"]["message"],
        "You are not permitted to delete this image."
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
            .send(
                Method::GET,
                &format!("/v2/images/{id}"),
                token,
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body["unauthorized"]["code"], 401);
        assert_eq!(reply.body["unauthorized"]["error_code"], "unauthorized");
    }
    let reply = api
        .send(Method::GET, "/v2/images", None, None, Vec::new())
        .await;
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
        let reply = api
            .send(method, uri, Some(PRODUCER_TOKEN), None, Vec::new())
            .await;
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
    let reply = api
        .send(
            Method::PATCH,
            &uri,
            Some(PRODUCER_TOKEN),
            Some(PATCH_V21),
            body.into_bytes(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["name"], "renamed");
    assert_eq!(reply.body["id"], id.to_string());

    let reply = api
        .send(
            Method::PATCH,
            &uri,
            Some(PRODUCER_TOKEN),
            Some(PATCH_V21),
            b"[{".to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["badRequest"]["message"],
        "Malformed JSON in request body."
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
        let reply = api
            .send(method, &uri, Some(PRODUCER_TOKEN), None, Vec::new())
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        assert_eq!(reply.header("allow"), allow, "{uri}");
        assert_eq!(reply.body["badMethod"]["code"], 405);
    }
}

#[tokio::test]
async fn versions_answer_300_without_a_token() {
    let api = Api::new();
    for uri in ["/", "/versions"] {
        let reply = api.send(Method::GET, uri, None, None, Vec::new()).await;
        assert_eq!(reply.status, StatusCode::MULTIPLE_CHOICES);
        assert_eq!(
            reply.body,
            json!({"versions": [{"id": "v2.0", "status": "CURRENT",
                "links": [{"rel": "self", "href": "http://dfw.images.example/v2/"}]}]})
        );
    }
}

#[tokio::test]
async fn the_v2_endpoint_answers_version_discovery() {
    let api = Api::new();
    let document = |href: &str| {
        json!({"versions": [{"id": "v2.0", "status": "CURRENT",
            "links": [{"rel": "self", "href": href}]}]})
    };
    for uri in ["/v2", "/v2/"] {
        let reply = api.send(Method::GET, uri, None, None, Vec::new()).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.body, document("http://dfw.images.example/v2/"));
    }
    for uri in ["/v2/111111", "/v2/111111/"] {
        let reply = api.get(uri, PRODUCER_TOKEN).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.body, document("http://dfw.images.example/v2/111111/"));
        let reply = api.send(Method::GET, uri, None, None, Vec::new()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri}");
        let reply = api.get(uri, CONSUMER_TOKEN).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let reply = api.send(Method::POST, "/v2", None, None, Vec::new()).await;
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
        .json(
            Method::POST,
            &format!("/v2/{PRODUCER}/images/{id}/members"),
            PRODUCER_TOKEN,
            json!({"member": CONSUMER}),
        )
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

    let reply = api
        .send(
            Method::GET,
            &format!("/v2/images/{id}"),
            Some(PRODUCER_TOKEN),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["badRequest"]["message"],
        "A body is not expected with this request."
    );

    let reply = api
        .send(
            Method::POST,
            &members,
            Some(PRODUCER_TOKEN),
            Some("application/json"),
            b"{\"member\":".to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["badRequest"]["message"],
        "Malformed JSON in request body."
    );

    let reply = api
        .json(Method::POST, &members, PRODUCER_TOKEN, json!("222222"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let reply = api
        .json(Method::POST, &members, PRODUCER_TOKEN, json!({"who": "x"}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["badRequest"]["message"],
        "Member to be added not specified"
    );

    let reply = api
        .json(
            Method::PUT,
            &format!("{members}/{CONSUMER}"),
            CONSUMER_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["badRequest"]["message"], "Status not specified");

    let big = json!({"member": "x".repeat(1000)});
    let reply = api.json(Method::POST, &members, PRODUCER_TOKEN, big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["overLimit"]["code"], 413);

    // Duplicate member: 409.
    for expected in [StatusCode::OK, StatusCode::CONFLICT] {
        let reply = api
            .json(
                Method::POST,
                &members,
                PRODUCER_TOKEN,
                json!({"member": CONSUMER}),
            )
            .await;
        assert_eq!(reply.status, expected);
    }
}

#[tokio::test]
async fn tags_tasks_and_schemas() {
    let api = Api::new();
    let id = api.snapshot("img");
    let tag = format!("/v2/images/{id}/tags/blue%20sky");
    let reply = api
        .send(Method::PUT, &tag, Some(PRODUCER_TOKEN), None, Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = api.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
    assert_eq!(reply.body["tags"], json!(["blue sky"]));
    assert_eq!(
        api.delete(&tag, PRODUCER_TOKEN).await.status,
        StatusCode::NO_CONTENT
    );

    let reply = api
        .json(
            Method::POST,
            "/v2/tasks",
            PRODUCER_TOKEN,
            json!({"type": "export", "input": {"image_uuid": id.to_string(),
                "receiving_swift_container": "exports"}}),
        )
        .await;
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
        .send(
            Method::PUT,
            &format!("/v2/images/{id}/tags/web"),
            Some(PRODUCER_TOKEN),
            None,
            Vec::new(),
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
        reply.body["properties"]["visibility"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_str().unwrap().to_owned())
            .collect()
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
    let request = Request::builder()
        .method(Method::POST)
        .uri(&members)
        .header("X-Auth-Token", PRODUCER_TOKEN)
        .header(header::CONTENT_LENGTH, "999999999999")
        .body(Body::empty())
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A token that is not text is unknown.
    let request = Request::builder()
        .uri("/v2/images")
        .header("X-Auth-Token", &[0xffu8, 0x41][..])
        .body(Body::empty())
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

const OCTETS: &str = "application/octet-stream";

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
            .json(
                Method::POST,
                "/v2/images",
                PRODUCER_TOKEN,
                json!({"name": "disk", "container_format": "bare", "disk_format": "raw"}),
            )
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
    let reply = api
        .json(
            Method::POST,
            "/v2/images",
            PRODUCER_TOKEN,
            json!({"status": "active"}),
        )
        .await;
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
    let shown = api.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["name"], "disk");
    // A new UUID when none is given.
    let other = api.create_queued().await;
    assert!(Uuid::try_parse(&other).is_ok());
    assert_ne!(other, id.to_string());
    // The same id again.
    let again = api
        .json(
            Method::POST,
            "/v2/images",
            PRODUCER_TOKEN,
            json!({"id": id.to_string()}),
        )
        .await;
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
        let reply = api
            .json(Method::POST, "/v2/images", PRODUCER_TOKEN, body.clone())
            .await;
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
    let shown = api.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
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
    let shown = api.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
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
    let shown = api.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
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
    let shown = api.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
    assert_eq!(shown.body["status"], "queued");
    // The body limit does not apply to image data.
    let api = Api::glance_with(|state| state.max_body_bytes = 200);
    let id = api.create_queued().await;
    let reply = api
        .upload(&format!("/v2/images/{id}/file"), PRODUCER_TOKEN, &[7; 1000])
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);

    let api = Api::glance_with(|state| state.data_dir = None);
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
        let reply = api
            .json(
                Method::POST,
                "/v2/tasks",
                PRODUCER_TOKEN,
                json!({"type": "export", "input": {"image_uuid": image.to_string(),
                    "receiving_swift_container": "exports"}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        if image == id {
            expected.push(reply.body["id"].as_str().unwrap().to_owned());
        }
    }
    let reply = api
        .get(&format!("/v2/{PRODUCER}/images/{id}/tasks"), PRODUCER_TOKEN)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut ids: Vec<String> = reply.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["id"].as_str().unwrap().to_owned())
        .collect();
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
            let shown = self.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
            if shown.body["status"] != "importing" {
                return shown.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("image {id} is still importing");
    }
}

#[tokio::test]
async fn glance_direct_import_stages_then_activates() {
    let api = Api::glance();
    let created = api
        .json(
            Method::POST,
            "/v2/images",
            PRODUCER_TOKEN,
            json!({"name": "img-staged", "disk_format": "raw", "container_format": "bare"}),
        )
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
        .send(
            Method::PUT,
            &stage,
            Some(PRODUCER_TOKEN),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let staged = api.upload(&stage, PRODUCER_TOKEN, b"staged bytes").await;
    assert_eq!(staged.status, StatusCode::NO_CONTENT, "{}", staged.body);
    let shown = api.get(&format!("/v2/images/{id}"), PRODUCER_TOKEN).await;
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

    let deleted = api
        .delete(&format!("/v2/images/{id}"), PRODUCER_TOKEN)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(api.data_files().is_empty(), "{:?}", api.data_files());
}

#[tokio::test]
async fn a_member_may_not_stage_and_deleting_a_staged_image_removes_its_data() {
    let api = Api::glance();
    let created = api
        .json(
            Method::POST,
            "/v2/images",
            PRODUCER_TOKEN,
            json!({"name": "s", "disk_format": "raw", "container_format": "bare",
                   "visibility": "shared"}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let shared = api
        .json(
            Method::POST,
            &format!("/v2/images/{id}/members"),
            PRODUCER_TOKEN,
            json!({"member": CONSUMER}),
        )
        .await;
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
    let deleted = api
        .delete(&format!("/v2/images/{id}"), PRODUCER_TOKEN)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(api.data_files().is_empty(), "{:?}", api.data_files());
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
        let actor = Actor::tenant(PRODUCER, "user-111111", &["member"]);
        let ctx = Context::new(actor, Region::parse("DFW").unwrap(), chrono::Utc::now());
        let command = ImageCommand::StartImport {
            method: "glance-direct".to_owned(),
        };
        let image_id = Uuid::parse_str(id).unwrap();
        api.engine
            .execute(&ctx, Command::Image { image_id, command })
            .unwrap();
    }
    std::fs::remove_file(api.data_dir.path().join(format!(".staged-{lost}"))).unwrap();

    let mut state = AppState::new(
        Arc::clone(&api.engine),
        Arc::new(TokenStore::new()),
        Region::parse("DFW").unwrap(),
    );
    state.data_dir = Some(api.data_dir.path().to_owned());
    let resumed = tokio::task::spawn_blocking(move || imgshare_server::resume_imports(&state))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed, 2);
    let image = api
        .get(&format!("/v2/images/{finished}"), PRODUCER_TOKEN)
        .await;
    assert_eq!(image.body["status"], "active");
    assert_eq!(image.body["checksum"], "900150983cd24fb0d6963f7d28e17f72");
    let image = api.get(&format!("/v2/images/{lost}"), PRODUCER_TOKEN).await;
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
    let ids = |page: &Value| -> Vec<String> {
        page["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = api.get("/v2/images?size=5", PRODUCER_TOKEN).await;
    assert_eq!(ids(&page.body), vec![large.clone()]);
    let page = api.get("/v2/images?size=4", PRODUCER_TOKEN).await;
    assert!(ids(&page.body).is_empty());
    let page = api.get("/v2/images?size=abc", PRODUCER_TOKEN).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(ids(&page.body).is_empty());
}

#[tokio::test]
async fn glance_owner_on_create_is_the_callers_unless_an_admin_asks() {
    let api = Api::glance();
    let create = |owner: Value| json!({"name": "o", "disk_format": "raw", "container_format": "bare", "owner": owner});
    let own = api
        .json(
            Method::POST,
            "/v2/images",
            PRODUCER_TOKEN,
            create(json!(PRODUCER)),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_eq!(own.body["owner"], PRODUCER);
    let head = api
        .engine
        .read(|conn| Ok(imgshare_store::head(conn)?))
        .unwrap();
    for (owner, status) in [
        (json!(CONSUMER), StatusCode::FORBIDDEN),
        (json!(7), StatusCode::BAD_REQUEST),
        (json!(""), StatusCode::BAD_REQUEST),
    ] {
        let refused = api
            .json(
                Method::POST,
                "/v2/images",
                PRODUCER_TOKEN,
                create(owner.clone()),
            )
            .await;
        assert_eq!(refused.status, status, "owner {owner}: {}", refused.body);
    }
    assert_eq!(
        api.engine
            .read(|conn| Ok(imgshare_store::head(conn)?))
            .unwrap(),
        head,
        "a refused create writes nothing"
    );
}
