//! The Control Panel of imgshare: image sharing in web pages (`docs/console.md`).
//!
//! [`router`] builds the pages as an axum [`axum::Router`] that serves everything under
//! `/console` (merge it into the server's router). The console:
//! - logs users in against the configured identity ([`Authenticator`]), and keeps the token on
//!   the server (a random session id in an `HttpOnly`, `SameSite=Strict` cookie; the token is
//!   never in a URL, a page or browser storage); the session ends with the token;
//! - acts as that user only through the public API of each region ([`RegionApi`]), called
//!   in-process with the user's token, so every rule is the engine's;
//! - renders HTML with minijinja (templates embedded, auto-escaped), serves its CSS and
//!   JavaScript embedded and versioned by content hash, sends a strict Content-Security-Policy,
//!   and checks a CSRF token on every state-changing form.
//!
//! # Where things are
//!
//! - `login`: the [`Authenticator`] port, and [`BuiltinAuthenticator`] for the built-in identity;
//! - `session`: sessions, cookies, CSRF comparison;
//! - `api`: calls to a region's API;
//! - `render`: templates, static assets, security headers;
//! - `pages` (login, lists, detail), `actions` (forms that change something), `tasks` (import
//!   and export), `audit` (an image's history and who could use it at a date).

#![warn(missing_docs)]

mod actions;
mod api;
mod audit;
mod login;
mod pages;
mod render;
mod session;
mod tasks;

use std::sync::Arc;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use imgshare_core::Profile;

pub use api::RegionApi;
pub use login::{
    Authenticator, BuiltinAuthenticator, KeystoneAuthenticator, LoginCredential, LoginError,
    LoginFuture, LoginGrant, LogoutFuture,
};

/// Where the console is mounted.
pub const MOUNT: &str = "/console";

/// The clock the console reads (a parameter so that tests can move time).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the console needs.
#[derive(Clone)]
pub struct ConsoleConfig {
    /// The identity users log in against.
    pub authenticator: Arc<dyn Authenticator>,
    /// The regions, in the order of the region selector; the first is the default page.
    pub regions: Vec<RegionApi>,
    /// The API's rule set: used only to leave out actions a user's roles do not allow (the API
    /// decides in any case).
    pub profile: Profile,
    /// Mark cookies `Secure` (set when the server is reached over TLS).
    pub secure_cookies: bool,
    /// The clock.
    pub clock: Clock,
}

impl ConsoleConfig {
    /// A configuration with the Rackspace profile, plain-HTTP cookies and the system clock.
    pub fn new(authenticator: Arc<dyn Authenticator>, regions: Vec<RegionApi>) -> Self {
        ConsoleConfig {
            authenticator,
            regions,
            profile: Profile::rackspace(),
            secure_cookies: false,
            clock: Arc::new(Utc::now),
        }
    }
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("regions", &self.regions)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

/// Why the console could not be built or could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The system's random source failed (no session id could be made).
    #[error("no random source: {0}")]
    Random(String),
    /// A template failed to render (a bug: templates are embedded and tested).
    #[error("template error: {0}")]
    Template(String),
    /// The configuration names no region.
    #[error("the console needs at least one region")]
    NoRegion,
}

/// Everything a handler shares.
pub(crate) struct Console {
    pub(crate) config: ConsoleConfig,
    pub(crate) sessions: session::Sessions,
    pub(crate) views: render::Views,
}

impl Console {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.config.clock)()
    }

    pub(crate) fn region(&self, name: &str) -> Option<&RegionApi> {
        self.config
            .regions
            .iter()
            .find(|region| region.name == name)
    }
}

/// The console's pages, all under [`MOUNT`].
pub fn router(config: ConsoleConfig) -> Result<Router, ConsoleError> {
    if config.regions.is_empty() {
        return Err(ConsoleError::NoRegion);
    }
    let console = Arc::new(Console {
        config,
        sessions: session::Sessions::default(),
        views: render::Views::new()?,
    });
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(actions::login))
        .route("/logout", post(actions::logout))
        .route("/images", get(pages::images))
        .route("/images/{region}/{image_id}", get(pages::image_detail))
        .route(
            "/images/{region}/{image_id}/share",
            get(pages::share_form).post(actions::share),
        )
        .route(
            "/images/{region}/{image_id}/delete",
            post(actions::delete_image),
        )
        .route(
            "/images/{region}/{image_id}/members/{member}/remove",
            post(actions::remove_member),
        )
        .route(
            "/images/{region}/{image_id}/decision",
            post(actions::decide),
        )
        .route("/images/{region}/{image_id}/audit", get(audit::audit))
        .route(
            "/images/{region}/{image_id}/export",
            get(tasks::export_form).post(tasks::export),
        )
        .route("/tasks", get(tasks::list))
        .route("/tasks/import", post(tasks::import))
        .route("/tasks/{region}/{task_id}", get(tasks::show))
        .route("/static/{name}", get(render::asset))
        .fallback(pages::not_found)
        .with_state(console);
    Ok(Router::new()
        .nest(MOUNT, pages)
        .layer(middleware::from_fn(render::security_headers)))
}

#[cfg(test)]
mod tests;
