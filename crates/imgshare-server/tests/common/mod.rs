//! Setup shared by the HTTP test binaries: the seed 000 accounts, the producer's saved image
//! registered through the engine, the application state, and one request through the router.

use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, request, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use imgshare_core::{Actor, Command, Context, ImageCommand, ImageOrigin, NewImage, Region};
use imgshare_server::{AppState, Identity, TokenStore};
use imgshare_store::{Engine, FsImageDataStore};
use tower::ServiceExt;
use uuid::Uuid;

pub(crate) const PRODUCER: &str = "111111";
pub(crate) const CONSUMER: &str = "222222";
pub(crate) const STRANGER: &str = "333333";
pub(crate) const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";
pub(crate) const OCTETS: &str = "application/octet-stream";
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// A Rackspace user of `tenant` holding `cloudImages:admin`.
pub(crate) fn identity(tenant: &str) -> Identity {
    Identity {
        tenant_id: tenant.to_owned(),
        user_id: format!("admin-{tenant}"),
        roles: vec!["cloudImages:admin".to_owned()],
    }
}

/// `actor` acting at DFW now.
pub(crate) fn context(actor: Actor) -> Context {
    Context::new(actor, Region::parse("DFW").unwrap(), chrono::Utc::now())
}

/// The producer's admin at DFW now: the caller behind images registered through the engine.
pub(crate) fn producer_context() -> Context {
    context(Actor::tenant(
        PRODUCER,
        "admin-111111",
        &["cloudImages:admin"],
    ))
}

/// Registers the producer's saved server image through the engine: the Rackspace API has no
/// image create, so a snapshot is how such an image comes to be.
pub(crate) fn register_snapshot(engine: &Engine, image_id: Uuid, name: &str, tags: &[&str]) {
    let image = NewImage {
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        ..NewImage::snapshot_fixture(name, 1024)
    };
    let command = ImageCommand::Register {
        origin: ImageOrigin::Snapshot {
            server_id: "srv-1".to_owned(),
        },
        image,
    };
    engine
        .execute(&producer_context(), Command::Image { image_id, command })
        .unwrap();
}

/// The state of a DFW endpoint with the default body limit, keeping image data in `data_dir`.
pub(crate) fn app_state(engine: Arc<Engine>, tokens: TokenStore, data_dir: &Path) -> AppState {
    let mut state = AppState::new(engine, Arc::new(tokens), Region::parse("DFW").unwrap());
    state.max_body_bytes = MAX_BODY;
    state.image_data = Some(Arc::new(FsImageDataStore::new(data_dir)));
    state
}

/// A request to the DFW endpoint; the host is what the links in replies are built from.
pub(crate) fn request(method: Method, uri: &str) -> request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "dfw.images.example")
}

/// Sends `request` with `body` through the router, without a network; the reply's status,
/// headers and whole body.
pub(crate) async fn call(
    app: &Router,
    request: request::Builder,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Bytes) {
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}
