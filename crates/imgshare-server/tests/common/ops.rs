//! Setup shared by the operations test binaries (`operations.rs`, `metrics.rs`): a Glance-profile
//! engine on a file, one member token, and a request through the router with that token.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use imgshare_core::{Profile, Region};
use imgshare_server::{AppState, Identity, TokenStore};
use imgshare_store::{DbOptions, Engine, EngineOptions};
use tower::ServiceExt;

pub(crate) const TOKEN: &str = "tok-ops";

/// A Glance-profile engine on the database file at `path`.
pub(crate) fn open(path: &Path, db: DbOptions) -> Arc<Engine> {
    let options = EngineOptions {
        profile: Profile::glance(),
        db,
    };
    Arc::new(Engine::open(path, options).unwrap())
}

/// The DFW endpoint's state, knowing one token: a member of account 111111.
pub(crate) fn state(engine: Arc<Engine>) -> AppState {
    let mut tokens = TokenStore::new();
    tokens.insert(
        TOKEN,
        Identity {
            tenant_id: "111111".to_owned(),
            user_id: "ops".to_owned(),
            roles: vec!["member".to_owned()],
        },
    );
    AppState::new(engine, Arc::new(tokens), Region::parse("DFW").unwrap())
}

/// Sends one request with the token and a JSON body; the reply's status and body.
pub(crate) async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    body: &str,
) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-auth-token", TOKEN)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}
