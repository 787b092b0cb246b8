//! Bad input over HTTP: malformed and wrongly typed bodies, wrong content types, oversized
//! bodies, bodies where none belongs, bad ids in paths, bad member ids and tags, bad query
//! strings, missing or unknown tokens. Every row must answer with its 4xx, a JSON error body
//! (`{"<kind>": {"code", "message", "error_code"}}`) with a non-empty message, and leave the log
//! head where it was. Each row has a name, so a failure says which input.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method};
use axum::Router;
use common::{
    app_state, call, identity, producer_context, register_snapshot, request, CONSUMER, MAX_BODY,
    OCTETS, PATCH_V21, PRODUCER, STRANGER,
};
use imgshare_core::{Command, ImageCommand};
use imgshare_server::{router, TokenStore};
use imgshare_store::{head, Engine};
use serde_json::{json, Value};
use uuid::Uuid;

/// The router over an engine holding the producer's image, shared with the consumer (pending)
/// and tagged `web`.
fn api() -> (Router, Arc<Engine>, Uuid, tempfile::TempDir) {
    let engine = Arc::new(Engine::in_memory().unwrap());
    let image_id = Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0001);
    register_snapshot(&engine, image_id, "saved", &["web"]);
    let command = ImageCommand::AddMember {
        member_id: CONSUMER.to_owned(),
    };
    engine
        .execute(&producer_context(), Command::Image { image_id, command })
        .unwrap();
    let mut tokens = TokenStore::new();
    for tenant in [PRODUCER, CONSUMER, STRANGER] {
        tokens.insert(format!("tok-{tenant}"), identity(tenant));
    }
    let data_dir = tempfile::tempdir().unwrap();
    let state = app_state(Arc::clone(&engine), tokens, data_dir.path());
    (router(state), engine, image_id, data_dir)
}

/// Who sends a row.
#[derive(Clone, Copy, Debug)]
enum Token {
    Producer,
    Consumer,
    Stranger,
    Missing,
    Unknown,
    Empty,
    /// Bytes that are not visible ASCII.
    NotText,
}

/// One request that must be refused.
struct Row {
    name: &'static str,
    method: Method,
    uri: String,
    token: Token,
    content_type: Option<&'static str>,
    /// Extra headers (name, value bytes).
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
}

fn row(name: &'static str, method: Method, uri: impl Into<String>, status: u16) -> Row {
    Row {
        name,
        method,
        uri: uri.into(),
        token: Token::Producer,
        content_type: None,
        headers: Vec::new(),
        body: Vec::new(),
        status,
    }
}

impl Row {
    fn by(mut self, token: Token) -> Self {
        self.token = token;
        self
    }

    fn json(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some("application/json");
        self.body = body.into();
        self
    }

    fn typed(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[rustfmt::skip]
fn rows(image: Uuid) -> Vec<Row> {
    let img = format!("/v2/images/{image}");
    let members = format!("{img}/members");
    let consumer = format!("{members}/{CONSUMER}");
    let unknown = format!("/v2/images/{}", Uuid::from_u128(7));
    let long = "a".repeat(256);
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let patch = |ops: Value| ops.to_string().into_bytes();
    use Method as M;
    vec![
        // Tokens.
        row("no token", M::GET, "/v2/images", 401).by(Token::Missing),
        row("unknown token", M::GET, "/v2/images", 401).by(Token::Unknown),
        row("empty token", M::GET, "/v2/images", 401).by(Token::Empty),
        row("token not text", M::GET, "/v2/images", 401).by(Token::NotText),
        row("no token on a write", M::DELETE, img.clone(), 401).by(Token::Missing),
        row("another tenant's path", M::GET, "/v2/999999/images", 404),
        // Paths and ids.
        row("image id not a uuid", M::GET, "/v2/images/not-a-uuid", 404),
        row("image id without hyphens", M::GET, format!("/v2/images/{}", image.simple()), 404),
        row("image id with a bad escape", M::GET, "/v2/images/%ZZ", 404),
        row("image id not UTF-8", M::GET, "/v2/images/%FF%FE", 404),
        row("unknown image", M::GET, unknown.clone(), 404),
        row("unknown image: delete", M::DELETE, unknown.clone(), 404),
        row("unknown image: members", M::GET, format!("{unknown}/members"), 404),
        row("bad id: delete", M::DELETE, "/v2/images/123", 404),
        row("bad id: share", M::POST, "/v2/images/123/members", 404).json(json!({"member": STRANGER}).to_string()),
        row("bad id: tag", M::PUT, "/v2/images/123/tags/x", 404),
        row("bad id: deactivate", M::POST, "/v2/images/123/actions/deactivate", 404),
        row("bad task id", M::GET, "/v2/tasks/not-a-uuid", 404),
        row("unknown route", M::GET, "/v2/nothing", 404),
        row("unknown schema", M::GET, "/v2/schemas/nothing", 404),
        // Methods.
        row("POST an image", M::POST, img.clone(), 405).json("{}"),
        row("PUT the members", M::PUT, members.clone(), 405).json("{}"),
        row("DELETE the image list", M::DELETE, "/v2/images", 405),
        // Bodies where none belongs.
        row("GET with a body", M::GET, img.clone(), 400).json("{}"),
        row("DELETE with a body", M::DELETE, img.clone(), 400).json("{}"),
        row("PUT tag with a body", M::PUT, format!("{img}/tags/db"), 400).json("{}"),
        row("deactivate with a body", M::POST, format!("{img}/actions/deactivate"), 400).json("{}"),
        // Member bodies.
        row("share: empty body", M::POST, members.clone(), 400).json(""),
        row("share: malformed JSON", M::POST, members.clone(), 400).json("{\"member\":"),
        row("share: not UTF-8", M::POST, members.clone(), 400).json(b"{\"member\": \"\xff\"}".to_vec()),
        row("share: a JSON string", M::POST, members.clone(), 400).json("\"333333\""),
        row("share: a JSON number", M::POST, members.clone(), 400).json("5"),
        row("share: an array", M::POST, members.clone(), 400).json("[\"333333\"]"),
        row("share: no member", M::POST, members.clone(), 400).json("{}"),
        row("share: member null", M::POST, members.clone(), 400).json(json!({"member": null}).to_string()),
        row("share: member a number", M::POST, members.clone(), 400).json(json!({"member": 333333}).to_string()),
        row("share: member an object", M::POST, members.clone(), 400).json(json!({"member": {"id": STRANGER}}).to_string()),
        row("share: member empty", M::POST, members.clone(), 400).json(json!({"member": ""}).to_string()),
        row("share: member 4-byte UTF-8", M::POST, members.clone(), 400).json(json!({"member": "ab\u{1F600}"}).to_string()),
        row("share: member 256 characters", M::POST, members.clone(), 400).json(json!({"member": long}).to_string()),
        row("share: deeply nested", M::POST, members.clone(), 400).json(deep.clone()),
        row("share: body over the limit", M::POST, members.clone(), 413).json(json!({"member": "x".repeat(MAX_BODY)}).to_string()),
        row("share: declared length over the limit", M::POST, members.clone(), 413).json("{}").header("content-length", b"999999999".to_vec()),
        row("share: by the consumer", M::POST, members.clone(), 403).by(Token::Consumer).json(json!({"member": STRANGER}).to_string()),
        row("share: by a stranger", M::POST, members.clone(), 404).by(Token::Stranger).json(json!({"member": STRANGER}).to_string()),
        row("share: twice", M::POST, members.clone(), 409).json(json!({"member": CONSUMER}).to_string()),
        row("answer: empty body", M::PUT, consumer.clone(), 400).by(Token::Consumer).json(""),
        row("answer: malformed JSON", M::PUT, consumer.clone(), 400).by(Token::Consumer).json("{status"),
        row("answer: no status", M::PUT, consumer.clone(), 400).by(Token::Consumer).json("{}"),
        row("answer: status a number", M::PUT, consumer.clone(), 400).by(Token::Consumer).json(json!({"status": 1}).to_string()),
        row("answer: status null", M::PUT, consumer.clone(), 400).by(Token::Consumer).json(json!({"status": null}).to_string()),
        row("answer: unknown status", M::PUT, consumer.clone(), 400).by(Token::Consumer).json(json!({"status": "bogus"}).to_string()),
        row("answer: status with 4-byte UTF-8", M::PUT, consumer.clone(), 400).by(Token::Consumer).json(json!({"status": "\u{1F600}"}).to_string()),
        row("answer: by the owner", M::PUT, consumer.clone(), 403).json(json!({"status": "accepted"}).to_string()),
        row("answer: by a stranger", M::PUT, consumer.clone(), 404).by(Token::Stranger).json(json!({"status": "accepted"}).to_string()),
        row("answer: 4-byte UTF-8 member id", M::PUT, format!("{members}/%F0%9F%98%80"), 404).json(json!({"status": "accepted"}).to_string()),
        row("unshare: not a member", M::DELETE, format!("{members}/999999"), 404),
        row("unshare: by the consumer", M::DELETE, consumer.clone(), 403).by(Token::Consumer),
        row("member: by a stranger", M::GET, consumer.clone(), 404).by(Token::Stranger),
        // Tags.
        row("tag: empty", M::PUT, format!("{img}/tags/"), 404),
        row("tag: empty, by a stranger", M::PUT, format!("{img}/tags/"), 404).by(Token::Stranger),
        row("untag: empty", M::DELETE, format!("{img}/tags/"), 404),
        row("share: blank image id", M::POST, "/v2/images//members".to_owned(), 405).json(json!({"member": CONSUMER}).to_string()),
        row("tag: 4-byte UTF-8", M::PUT, format!("{img}/tags/%F0%9F%98%80"), 400),
        row("tag: 256 characters", M::PUT, format!("{img}/tags/{long}"), 400),
        row("tag: by the consumer", M::PUT, format!("{img}/tags/db"), 403).by(Token::Consumer),
        row("tag: by a stranger", M::PUT, format!("{img}/tags/db"), 404).by(Token::Stranger),
        row("untag: not there", M::DELETE, format!("{img}/tags/nope"), 404),
        // PATCH.
        row("patch: application/json", M::PATCH, img.clone(), 415).json(patch(json!([]))),
        row("patch: no content type", M::PATCH, img.clone(), 415),
        row("patch: content type garbage", M::PATCH, img.clone(), 415).typed("\u{1F600}/x", "[]"),
        row("patch: empty body", M::PATCH, img.clone(), 400).typed(PATCH_V21, ""),
        row("patch: malformed JSON", M::PATCH, img.clone(), 400).typed(PATCH_V21, "[{"),
        row("patch: not UTF-8", M::PATCH, img.clone(), 400).typed(PATCH_V21, b"[\xff]".to_vec()),
        row("patch: an object", M::PATCH, img.clone(), 400).typed(PATCH_V21, "{}"),
        row("patch: deeply nested", M::PATCH, img.clone(), 400).typed(PATCH_V21, deep),
        row("patch: move", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "move", "from": "/name", "path": "/x"}]))),
        row("patch: no value", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": "/name"}]))),
        row("patch: no path", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "value": "x"}]))),
        row("patch: path a number", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": 5, "value": "x"}]))),
        row("patch: name a number", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "replace", "path": "/name", "value": 5}]))),
        row("patch: min_disk a string", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "replace", "path": "/min_disk", "value": "ten"}]))),
        row("patch: property value 4-byte UTF-8", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": "/k", "value": "\u{1F600}"}]))),
        row("patch: property value an object", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": "/k", "value": {"a": 1}}]))),
        row("patch: property value 256 characters", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": "/k", "value": long}]))),
        row("patch: property key 256 characters", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": format!("/{long}"), "value": "v"}]))),
        row("patch: property key empty", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": "/", "value": "v"}]))),
        row("patch: property key 4-byte UTF-8", M::PATCH, img.clone(), 400).typed(PATCH_V21, patch(json!([{"op": "add", "path": "/\u{1F600}", "value": "v"}]))),
        row("patch: read-only status", M::PATCH, img.clone(), 403).typed(PATCH_V21, patch(json!([{"op": "replace", "path": "/status", "value": "active"}]))),
        row("patch: body over the limit", M::PATCH, img.clone(), 413).typed(PATCH_V21, patch(json!([{"op": "add", "path": "/k", "value": "x".repeat(MAX_BODY)}]))),
        row("patch: by the consumer", M::PATCH, img.clone(), 403).by(Token::Consumer).typed(PATCH_V21, patch(json!([{"op": "replace", "path": "/name", "value": "x"}]))),
        row("patch: by a stranger", M::PATCH, img.clone(), 404).by(Token::Stranger).typed(PATCH_V21, patch(json!([{"op": "replace", "path": "/name", "value": "x"}]))),
        row("patch: bad image id", M::PATCH, "/v2/images/123", 404).typed(PATCH_V21, "[]"),
        // Query strings.
        row("list: limit=-1", M::GET, "/v2/images?limit=-1", 400),
        row("list: limit=abc", M::GET, "/v2/images?limit=abc", 400),
        row("list: limit twice, the last bad", M::GET, "/v2/images?limit=1&limit=abc", 400),
        row("list: sort_key unknown", M::GET, "/v2/images?sort_key=unknown", 400),
        row("list: sort_dir unknown", M::GET, "/v2/images?sort_dir=up", 400),
        row("list: marker not a uuid", M::GET, "/v2/images?marker=not-a-uuid", 400),
        row("list: marker unknown", M::GET, format!("/v2/images?marker={}", Uuid::from_u128(7)), 400),
        row("list: marker of an image not shown", M::GET, format!("/v2/images?marker={image}"), 400).by(Token::Stranger),
        row("list: member_status unknown", M::GET, "/v2/images?member_status=bogus", 400),
        row("list: percent-encoded garbage", M::GET, "/v2/images?name=%FF%FE", 400),
        row("list: created_at not a time", M::GET, "/v2/images?created_at=gt:soon", 400),
        row("list: changes-since", M::GET, "/v2/images?changes-since=2014-01-01", 400),
        row("tasks: limit=-1", M::GET, "/v2/tasks?limit=-1", 400),
        row("tasks: status unknown", M::GET, "/v2/tasks?status=bogus", 400),
        // Task bodies.
        row("task: malformed JSON", M::POST, "/v2/tasks", 400).json("{"),
        row("task: no type", M::POST, "/v2/tasks", 400).json("{}"),
        row("task: type a number", M::POST, "/v2/tasks", 400).json(json!({"type": 1}).to_string()),
        row("task: unknown type", M::POST, "/v2/tasks", 400).json(json!({"type": "bogus", "input": {}}).to_string()),
        row("task: input a string", M::POST, "/v2/tasks", 400).json(json!({"type": "import", "input": "x"}).to_string()),
        // Image data.
        row("upload: JSON content type", M::PUT, format!("{img}/file"), 415).json("{}"),
        row("upload: no content type", M::PUT, format!("{img}/file"), 415),
        row("upload: by a stranger", M::PUT, format!("{img}/file"), 404).by(Token::Stranger).typed(OCTETS, "data"),
        row("upload: by the owner (the provider's job here)", M::PUT, format!("{img}/file"), 403).typed(OCTETS, "data"),
        row("upload: declared length over the limit", M::PUT, format!("{img}/file"), 413).typed(OCTETS, "data").header("content-length", b"999999999999999".to_vec()),
        row("upload: bad id", M::PUT, "/v2/images/123/file", 404).typed(OCTETS, "data"),
        row("download: by a stranger", M::GET, format!("{img}/file"), 404).by(Token::Stranger),
        row("image tasks: by a stranger", M::GET, format!("{img}/tasks"), 404).by(Token::Stranger),
        row("stage: JSON content type", M::PUT, format!("{img}/stage"), 415).json("{}"),
        row("stage: by a stranger", M::PUT, format!("{img}/stage"), 404).by(Token::Stranger).typed(OCTETS, "data"),
        row("stage: by the owner (the provider's job here)", M::PUT, format!("{img}/stage"), 403).typed(OCTETS, "data"),
        row("import: malformed JSON", M::POST, format!("{img}/import"), 400).json("{"),
        row("import: no method", M::POST, format!("{img}/import"), 400).json("{}"),
        row("import: method a string", M::POST, format!("{img}/import"), 400).json(json!({"method": "glance-direct"}).to_string()),
        row("import: method name a number", M::POST, format!("{img}/import"), 400).json(json!({"method": {"name": 1}}).to_string()),
        row("import: by a stranger", M::POST, format!("{img}/import"), 404).by(Token::Stranger).json(json!({"method": {"name": "glance-direct"}}).to_string()),
        row("import: bad id", M::POST, "/v2/images/123/import", 404).json(json!({"method": {"name": "glance-direct"}}).to_string()),
        row("import info: POST", M::POST, "/v2/info/import", 405).json("{}"),
        // Image creation (no such API on Rackspace; the body is checked first).
        row("create: malformed JSON", M::POST, "/v2/images", 400).json("{"),
        row("create: a JSON number", M::POST, "/v2/images", 400).json("1"),
    ]
}

async fn send(app: &Router, row: &Row) -> (u16, Value) {
    let of = |tenant: &str| Some(HeaderValue::from_str(&format!("tok-{tenant}")).unwrap());
    let token = match row.token {
        Token::Producer => of(PRODUCER),
        Token::Consumer => of(CONSUMER),
        Token::Stranger => of(STRANGER),
        Token::Missing => None,
        Token::Unknown => Some(HeaderValue::from_static("tok-nobody")),
        Token::Empty => Some(HeaderValue::from_static("")),
        Token::NotText => Some(HeaderValue::from_bytes(b"tok-\xff\xfe").unwrap()),
    };
    let mut request = request(row.method.clone(), &row.uri);
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    if let Some(content_type) = row.content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in &row.headers {
        request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    let (status, _, bytes) = call(app, request, row.body.clone()).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status.as_u16(), body)
}

/// The problem with a reply, if any: wrong status, or an error body without a message.
fn problem(row: &Row, status: u16, body: &Value) -> Option<String> {
    if status != row.status {
        return Some(format!(
            "{}: {status} {body}, expected {}",
            row.name, row.status
        ));
    }
    let Some(object) = body.as_object().filter(|object| object.len() == 1) else {
        return Some(format!("{}: error body is not one kind: {body}", row.name));
    };
    let (kind, error) = object.iter().next()?;
    let message = error["message"].as_str().unwrap_or_default();
    if message.trim().is_empty() || error["code"] != status || kind.is_empty() {
        return Some(format!("{}: incomplete error body {body}", row.name));
    }
    None
}

#[tokio::test]
async fn every_bad_request_is_a_4xx_with_a_message_and_changes_nothing() {
    let (app, engine, image, data_dir) = api();
    let log_head = || engine.read(|conn| Ok(head(conn)?)).unwrap();
    let state = || format!("{:?}", engine.image_state(image).unwrap());
    let rows = rows(image);
    let count = rows.len();
    let mut problems = Vec::new();
    for row in &rows {
        let (before_head, before_state) = (log_head(), state());
        let (status, body) = send(&app, row).await;
        if let Some(problem) = problem(row, status, &body) {
            problems.push(problem);
        }
        if log_head() != before_head || state() != before_state {
            problems.push(format!("{}: refused but changed the state", row.name));
        }
    }
    let left: Vec<_> = std::fs::read_dir(data_dir.path()).unwrap().collect();
    assert!(left.is_empty(), "refused uploads left files: {left:?}");
    assert!(
        problems.is_empty(),
        "{} of {count} rows failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The inputs above are refused, not unreachable: the same requests, done right, succeed.
#[tokio::test]
async fn the_same_requests_done_right_succeed() {
    let (app, engine, image, _data_dir) = api();
    let img = format!("/v2/images/{image}");
    let ok = |name, method, uri: String, status| row(name, method, uri, status);
    let good = [
        ok("list", Method::GET, "/v2/images?limit=1".to_owned(), 200),
        ok("get", Method::GET, img.clone(), 200),
        ok("tag", Method::PUT, format!("{img}/tags/db"), 204),
        ok("patch", Method::PATCH, img.clone(), 200).typed(
            PATCH_V21,
            json!([{"op": "add", "path": "/k", "value": "ü"}]).to_string(),
        ),
        ok(
            "answer",
            Method::PUT,
            format!("{img}/members/{CONSUMER}"),
            200,
        )
        .by(Token::Consumer)
        .json(json!({"status": "accepted"}).to_string()),
        ok("share", Method::POST, format!("{img}/members"), 200)
            .json(json!({"member": STRANGER}).to_string()),
    ];
    for row in &good {
        let (status, body) = send(&app, row).await;
        assert_eq!(status, row.status, "{}: {body}", row.name);
    }
    let state = engine.image_state(image).unwrap().unwrap();
    assert!(state.tags.contains("db"));
    assert_eq!(state.members.len(), 2);
}
