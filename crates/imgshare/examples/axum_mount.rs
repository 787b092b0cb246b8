//! An axum application that mounts imgshare's API under its own prefix (`/cloud`) behind its
//! own authentication: the application's session (`Authorization: Bearer ...`) is checked
//! first, and only then does the request reach imgshare, carrying the imgshare token the
//! application holds for that user. A caller cannot skip the application's check by sending an
//! imgshare token of its own.
//!
//! `cargo run -p imgshare --features http --example axum_mount` exits 0 when every answer is
//! the expected one and 1 (with the reason) otherwise.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use imgshare::http::{identity::Identity, AppState, TokenStore};
use imgshare::{Engine, Profile, Region};
use tower::ServiceExt;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The application's sessions: session id → the imgshare token it holds for that user.
#[derive(Clone, Default)]
struct Sessions(Arc<HashMap<String, String>>);

/// The application's own check, in front of everything under `/cloud`.
async fn require_session(
    State(sessions): State<Sessions>,
    mut request: Request,
    next: Next,
) -> Response {
    let session = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|session| sessions.0.get(session))
        .cloned();
    // Whatever the caller sent as an imgshare token is dropped: only the application issues one.
    request.headers_mut().remove("x-auth-token");
    let Some(token) = session else {
        return (StatusCode::UNAUTHORIZED, "log in to the application first").into_response();
    };
    match HeaderValue::from_str(&token) {
        Ok(token) => {
            request.headers_mut().insert("x-auth-token", token);
            next.run(request).await
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn app(engine: Arc<Engine>) -> Result<Router> {
    // imgshare validates the tokens the application hands it.
    let mut tokens = TokenStore::new();
    tokens.insert(
        "imgshare-token-alice",
        Identity {
            tenant_id: "100100".into(),
            user_id: "alice".into(),
            roles: vec!["member".into()],
        },
    );
    let sessions = Sessions(Arc::new(HashMap::from([(
        "session-alice".to_owned(),
        "imgshare-token-alice".to_owned(),
    )])));
    let state = AppState::new(engine, Arc::new(tokens), Region::parse("DFW")?);
    let images = imgshare::http::router(state)
        .layer(middleware::from_fn_with_state(sessions, require_session));
    Ok(Router::new()
        .route("/", get(|| async { "the application's own page" }))
        .nest("/cloud", images))
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(StatusCode, String)> {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned()))?)
        .await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn expect(what: &str, got: StatusCode, want: StatusCode, body: &str) -> Result<()> {
    if got == want {
        println!("ok: {what}: {got}");
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {got}: {body}").into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // The Glance rule set: tenants create images with `POST /v2/images`.
    let app = app(Arc::new(Engine::in_memory_with(Profile::glance())?))?;
    let alice = [("authorization", "Bearer session-alice")];
    let json = [
        ("authorization", "Bearer session-alice"),
        ("content-type", "application/json"),
    ];

    let (status, body) = call(&app, Method::GET, "/", &[], "").await?;
    expect(
        "the application's page needs no session",
        status,
        StatusCode::OK,
        &body,
    )?;
    let (status, body) = call(&app, Method::GET, "/cloud/v2/images", &[], "").await?;
    expect(
        "no session: the application refuses",
        status,
        StatusCode::UNAUTHORIZED,
        &body,
    )?;
    if body != "log in to the application first" {
        return Err(format!("the refusal is not the application's: {body}").into());
    }
    let forged = [("x-auth-token", "imgshare-token-alice")];
    let (status, body) = call(&app, Method::GET, "/cloud/v2/images", &forged, "").await?;
    expect(
        "an imgshare token without a session: refused",
        status,
        StatusCode::UNAUTHORIZED,
        &body,
    )?;

    let (status, body) = call(
        &app,
        Method::POST,
        "/cloud/v2/images",
        &json,
        r#"{"name": "from the app"}"#,
    )
    .await?;
    expect(
        "a logged-in user creates an image",
        status,
        StatusCode::CREATED,
        &body,
    )?;
    let (status, body) = call(&app, Method::GET, "/cloud/v2/images", &alice, "").await?;
    expect("and lists it", status, StatusCode::OK, &body)?;
    let page: serde_json::Value = serde_json::from_str(&body)?;
    let names: Vec<&str> = page["images"]
        .as_array()
        .ok_or("no images array")?
        .iter()
        .filter_map(|image| image["name"].as_str())
        .collect();
    if names != ["from the app"] {
        return Err(format!("unexpected list: {names:?}").into());
    }
    println!("axum application: imgshare mounted under /cloud behind the application's login");
    Ok(())
}
