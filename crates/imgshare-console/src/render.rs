//! HTML rendering, the embedded static assets, and the headers every console answer carries.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use sha2::{Digest, Sha256};

use crate::{Console, ConsoleError, MOUNT};

/// Only this origin's scripts, styles and forms; no inline code, no framing, no plugins.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

const TEMPLATES: [(&str, &str); 12] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("images.html", include_str!("../templates/images.html")),
    ("detail.html", include_str!("../templates/detail.html")),
    ("share.html", include_str!("../templates/share.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("tasks.html", include_str!("../templates/tasks.html")),
    ("task.html", include_str!("../templates/task.html")),
    ("export.html", include_str!("../templates/export.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    ("tabs.html", include_str!("../templates/tabs.html")),
    ("macros.html", include_str!("../templates/macros.html")),
];

/// An embedded file, served under a name that changes with its content.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
}

/// The templates and the static files.
pub(crate) struct Views {
    env: Environment<'static>,
    assets: HashMap<String, Asset>,
}

fn versioned(stem: &str, extension: &str, bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    format!("{stem}-{}.{extension}", &digest[..12])
}

impl Views {
    pub(crate) fn new() -> Result<Self, ConsoleError> {
        let css: &'static [u8] = include_bytes!("../static/console.css");
        let js: &'static [u8] = include_bytes!("../static/console.js");
        let css_name = versioned("console", "css", css);
        let js_name = versioned("console", "js", js);
        let mut env = Environment::new();
        // Auto-escaping follows the `.html` extension; an undefined variable is an error, so a
        // misspelt name fails the tests instead of rendering empty.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|error| ConsoleError::Template(error.to_string()))?;
        }
        // `{{ value | segment }}`: a value percent-encoded for one path segment of a URL (member
        // accounts are free text to the API, so one may hold `/` or `?`).
        env.add_filter("segment", |value: String| crate::api::encode(&value));
        // Fixed paths of our own, not user data: marked safe so that they render as written.
        let safe = minijinja::Value::from_safe_string;
        env.add_global("css_url", safe(format!("{MOUNT}/static/{css_name}")));
        env.add_global("js_url", safe(format!("{MOUNT}/static/{js_name}")));
        env.add_global("mount", safe(MOUNT.to_owned()));
        let mut assets = HashMap::new();
        assets.insert(
            css_name,
            Asset {
                content_type: "text/css; charset=utf-8",
                bytes: css,
            },
        );
        assets.insert(
            js_name,
            Asset {
                content_type: "text/javascript; charset=utf-8",
                bytes: js,
            },
        );
        Ok(Views { env, assets })
    }

    /// Renders template `name` with `context` as a page with `status`.
    pub(crate) fn page(
        &self,
        status: StatusCode,
        name: &str,
        context: minijinja::Value,
    ) -> Response {
        let rendered = self
            .env
            .get_template(name)
            .and_then(|template| template.render(context));
        match rendered {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                eprintln!("imgshare: console: template {name}: {error:#}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be rendered.",
                )
                    .into_response()
            }
        }
    }
}

/// `GET /console/static/{name}`: an embedded file, cacheable for ever (its name changes with
/// its content).
pub(crate) async fn asset(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
) -> Response {
    match console.views.assets.get(&name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "No such file.").into_response(),
    }
}

/// Adds the security headers to every console answer; pages (not assets) are never cached,
/// since they show one user's data.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/console/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
