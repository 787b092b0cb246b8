//! What every request handler shares.

use std::sync::Arc;

use imgshare_core::Region;
use imgshare_identity::{BuiltinIdentity, TokenValidator};
use imgshare_store::{Engine, ImageDataStore, TaskEnvironment};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

/// Default limit on request bodies.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default limit on uploaded image data: 40 GiB.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 40 * 1024 * 1024 * 1024;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine (blocking: called through `spawn_blocking`, or `Engine::submit` for commands).
    pub engine: Arc<Engine>,
    /// Who is behind each request's `X-Auth-Token`: the built-in identity, Keystone, or a
    /// static [`TokenStore`](crate::TokenStore).
    pub validator: Arc<dyn TokenValidator>,
    /// The built-in identity whose `/v2.0/tokens` endpoints this server also serves (outside
    /// the token check); `None`: no identity endpoint.
    pub builtin_identity: Option<Arc<BuiltinIdentity>>,
    /// The region this endpoint serves.
    pub region: Region,
    /// Bodies larger than this are refused with 413 (image data has its own limit).
    pub max_body_bytes: usize,
    /// Image data (`PUT /v2/images/{id}/file`) larger than this is refused with 413.
    pub max_image_bytes: u64,
    /// Where image data is kept (e.g. [`imgshare_store::FsImageDataStore`]); `None`: uploads,
    /// stages and imports are 501 and downloads 204.
    pub image_data: Option<Arc<dyn ImageDataStore>>,
    /// What the task worker runs tasks with; `None`: tasks stay pending (no worker).
    pub tasks: Option<Arc<TaskEnvironment>>,
    /// Wakes the task worker when a task is created.
    pub task_wakeup: Arc<Notify>,
    /// The endpoint clients reach the API at (`https://images.example.com`, no trailing
    /// slash), for the version documents' links behind a proxy; `None`: `http://` and the
    /// request's `Host`.
    pub public_endpoint: Option<String>,
    /// Serve `GET /metrics` on the API's listener with this exporter; `None`: not there (no
    /// metrics, or metrics on their own listener, see [`crate::metrics_router`]).
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// A state with the default body limit ([`DEFAULT_MAX_BODY_BYTES`]), validating tokens
    /// with `validator` (e.g. an `Arc<TokenStore>`).
    pub fn new(engine: Arc<Engine>, validator: Arc<dyn TokenValidator>, region: Region) -> Self {
        AppState {
            engine,
            validator,
            builtin_identity: None,
            region,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
            image_data: None,
            tasks: None,
            task_wakeup: Arc::new(Notify::new()),
            public_endpoint: None,
            metrics: None,
        }
    }
}
