//! The console over the real API router and engine, in-process: the fixture (users, tokens,
//! two regions, seeded images) and a cookie-keeping browser, shared by the route tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Duration, TimeZone, Utc};
use imgshare_console::{
    Authenticator, ConsoleConfig, LoginCredential, LoginError, LoginFuture, LoginGrant,
    LogoutFuture, RegionApi,
};
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, Region,
};
use imgshare_server::{AppState, Identity, TokenStore};
use imgshare_store::{Engine, EngineOptions};
use tower::ServiceExt;
use uuid::Uuid;

/// (user, password, token, account, role)
pub(crate) const USERS: [(&str, &str, &str, &str, &str); 4] = [
    (
        "producer",
        "producer-pass",
        "tok-producer",
        "111111",
        "cloudImages:admin",
    ),
    (
        "observer",
        "observer-pass",
        "tok-observer",
        "111111",
        "cloudImages:observer",
    ),
    (
        "consumer",
        "consumer-pass",
        "tok-consumer",
        "222222",
        "cloudImages:admin",
    ),
    (
        "creator",
        "creator-pass",
        "tok-creator",
        "222222",
        "cloudImages:creator",
    ),
];

pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

/// The identity of the test: fixed users, tokens of the API's tokens file, one hour of life
/// from the test clock.
pub(crate) struct FixedUsers {
    pub(crate) clock: Arc<AtomicI64>,
    pub(crate) revoked: Mutex<Vec<String>>,
}

impl Authenticator for FixedUsers {
    fn login(&self, credential: LoginCredential) -> LoginFuture<'_> {
        let (name, secret) = match &credential {
            LoginCredential::Password { username, password } => {
                (username.clone(), password.clone())
            }
            LoginCredential::ApiKey { username, api_key } => (username.clone(), api_key.clone()),
        };
        let now = start() + Duration::seconds(self.clock.load(Ordering::SeqCst));
        let found = USERS
            .iter()
            .find(|(user, password, ..)| *user == name && *password == secret)
            .map(|(user, _, token, account, role)| LoginGrant {
                token: (*token).to_owned(),
                expires: now + Duration::hours(1),
                tenant: (*account).to_owned(),
                user_name: (*user).to_owned(),
                roles: vec![(*role).to_owned()],
            });
        Box::pin(std::future::ready(found.ok_or(LoginError::Invalid)))
    }

    fn logout<'a>(&'a self, token: &'a str) -> LogoutFuture<'a> {
        self.revoked.lock().unwrap().push(token.to_owned());
        Box::pin(std::future::ready(()))
    }
}

pub(crate) struct Fixture {
    pub(crate) app: Router,
    pub(crate) clock: Arc<AtomicI64>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) image: Uuid,
    pub(crate) script_image: Uuid,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn seed(engine: &Engine, name: &str, properties: &[(&str, &str)]) -> Uuid {
    let ctx = Context::new(
        Actor::tenant("111111", "seed", &["cloudImages:admin"]),
        Region::parse("DFW").unwrap(),
        start(),
    );
    let image_id = Uuid::new_v4();
    let image = NewImage {
        name: Some(name.into()),
        container_format: Some("ovf".into()),
        disk_format: Some("vhd".into()),
        properties: properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        data: Some(ImageActivated {
            size: 1024,
            checksum: "acd9be13a17af33ec8f66ac5b1afc44a".into(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }),
        ..NewImage::default()
    };
    let origin = ImageOrigin::Snapshot {
        server_id: "server-1".into(),
    };
    engine
        .execute(
            &ctx,
            Command::Image {
                image_id,
                command: ImageCommand::Register { origin, image },
            },
        )
        .unwrap();
    image_id
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine =
        Arc::new(Engine::open(&dir.path().join("c.db"), EngineOptions::default()).unwrap());
    let mut tokens = TokenStore::new();
    for (user, _, token, account, role) in USERS {
        tokens.insert(
            token,
            Identity {
                tenant_id: account.into(),
                user_id: user.into(),
                roles: vec![role.into()],
            },
        );
    }
    let tokens: Arc<dyn imgshare_identity::TokenValidator> = Arc::new(tokens);
    let regions = ["DFW", "ORD"]
        .into_iter()
        .map(|name| RegionApi {
            name: name.into(),
            api: imgshare_server::router(AppState::new(
                Arc::clone(&engine),
                Arc::clone(&tokens),
                Region::parse(name).unwrap(),
            )),
        })
        .collect();
    let clock = Arc::new(AtomicI64::new(0));
    let auth = Arc::new(FixedUsers {
        clock: Arc::clone(&clock),
        revoked: Mutex::new(Vec::new()),
    });
    let mut config = ConsoleConfig::new(auth, regions);
    let read = Arc::clone(&clock);
    config.clock = Arc::new(move || start() + Duration::seconds(read.load(Ordering::SeqCst)));
    let image = seed(&engine, "web-base", &[]);
    let script_image = seed(
        &engine,
        "<script>alert(1)</script>",
        &[("note", "<b>x</b>")],
    );
    Fixture {
        app: imgshare_console::router(config).unwrap(),
        clock,
        engine,
        image,
        script_image,
        _dir: dir,
    }
}

/// A browser: keeps cookies, does not follow redirects.
pub(crate) struct Browser<'a> {
    pub(crate) app: &'a Router,
    pub(crate) cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a Router) -> Self {
        Browser {
            app,
            cookies: HashMap::new(),
        }
    }

    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let mut request = Request::builder().method(method).uri(path);
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !jar.is_empty() {
            request = request.header(header::COOKIE, jar.join("; "));
        }
        let body = match form {
            Some(fields) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let encoded: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect();
                Body::from(encoded.join("&"))
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|value| value.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Page {
            status,
            location,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form)).await
    }

    pub(crate) async fn login(&mut self, user: &str, password: &str, next: &str) -> Page {
        let form = self.get("/console/login").await;
        let csrf = form.csrf();
        self.post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("secret", password),
                ("kind", "password"),
                ("next", next),
            ],
        )
        .await
    }
}

pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) fn members(engine: &Engine, image: Uuid) -> usize {
    let ctx = Context::new(
        Actor::tenant("111111", "check", &["cloudImages:admin"]),
        Region::parse("DFW").unwrap(),
        start(),
    );
    engine
        .get_image(&ctx, image)
        .map(|image| image.members.len())
        .unwrap_or(0)
}
