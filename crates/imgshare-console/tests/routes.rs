//! The console's routes in-process, over the real API router and engine: login, CSRF, escaping,
//! session expiry, and the API's refusals shown as they are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
const USERS: [(&str, &str, &str, &str, &str); 4] = [
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

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

/// The identity of the test: fixed users, tokens of the API's tokens file, one hour of life
/// from the test clock.
struct FixedUsers {
    clock: Arc<AtomicI64>,
    revoked: Mutex<Vec<String>>,
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

struct Fixture {
    app: Router,
    clock: Arc<AtomicI64>,
    engine: Arc<Engine>,
    image: Uuid,
    script_image: Uuid,
    _dir: tempfile::TempDir,
}

fn seed(engine: &Engine, name: &str, properties: &[(&str, &str)]) -> Uuid {
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

fn fixture() -> Fixture {
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
    let tokens = Arc::new(tokens);
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
struct Browser<'a> {
    app: &'a Router,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a Router) -> Self {
        Browser {
            app,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
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

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form)).await
    }

    async fn login(&mut self, user: &str, password: &str, next: &str) -> Page {
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

fn urlencode(text: &str) -> String {
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

fn members(engine: &Engine, image: Uuid) -> usize {
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

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    let wrong = browser.login("producer", "nope", "/console/images").await;
    let unknown = browser.login("nobody", "nope", "/console/images").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let message = |page: &Page| {
        let at = page.body.find("id=\"login-error\">").unwrap();
        page.body[at..page.body[at..].find("</p>").unwrap() + at].to_owned()
    };
    assert_eq!(message(&wrong), message(&unknown));
    assert!(!browser.cookies.contains_key("imgshare_console"));
    let ok = browser
        .login("producer", "producer-pass", "/console/images")
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location.as_deref(), Some("/console/images"));
    let cookie = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .next()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("imgshare_console="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // The token never reaches the browser.
    let page = browser.get("/console/images").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("tok-producer"));
    assert!(!cookie.contains("tok-producer"));
}

#[tokio::test]
async fn login_without_its_csrf_cookie_is_refused() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    let page = browser
        .post(
            "/console/login",
            &[
                ("csrf", "forged"),
                ("username", "producer"),
                ("secret", "producer-pass"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!browser.cookies.contains_key("imgshare_console"));
}

#[tokio::test]
async fn forged_or_missing_csrf_changes_nothing() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("producer", "producer-pass", "/console/images")
        .await;
    let share = format!("/console/images/DFW/{}/share", f.image);
    for form in [
        vec![
            ("csrf", "0123456789abcdef0123456789abcdef"),
            ("account", "222222"),
        ],
        vec![("account", "222222")],
    ] {
        let page = browser.post(&share, &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("security token"));
    }
    assert_eq!(members(&f.engine, f.image), 0);
    // With the session's token, the same form works.
    let csrf = browser.get(&share).await.csrf();
    let page = browser
        .post(&share, &[("csrf", &csrf), ("account", "222222")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(members(&f.engine, f.image), 1);
    let detail = browser.get(page.location.as_deref().unwrap()).await;
    assert!(detail.body.contains("Pending Acceptance"));
    // Logout needs it too.
    let page = browser.post("/console/logout", &[("csrf", "bad")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn html_in_names_and_properties_is_escaped() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("producer", "producer-pass", "/console/images")
        .await;
    let list = browser.get("/console/images?region=DFW").await;
    assert!(!list.body.contains("<script>alert"));
    assert!(list
        .body
        .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    let detail = browser
        .get(&format!("/console/images/DFW/{}", f.script_image))
        .await;
    assert!(!detail.body.contains("<script>alert"));
    assert!(!detail.body.contains("<b>x</b>"));
    assert!(detail.body.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"));
    let csp = detail
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
}

#[tokio::test]
async fn an_expired_session_goes_to_login_and_back() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("producer", "producer-pass", "/console/images")
        .await;
    let target = format!("/console/images/DFW/{}", f.image);
    assert_eq!(browser.get(&target).await.status, StatusCode::OK);
    f.clock.store(3601, Ordering::SeqCst);
    let page = browser.get(&target).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let login = page.location.unwrap();
    assert!(
        login.starts_with("/console/login?next=%2Fconsole%2Fimages%2FDFW%2F"),
        "{login}"
    );
    assert!(login.ends_with("&expired=1"));
    let form = browser.get(&login).await;
    assert!(form.body.contains("Your session has ended"));
    let back = browser.login("producer", "producer-pass", &target).await;
    assert_eq!(back.location.as_deref(), Some(target.as_str()));
    assert_eq!(browser.get(&target).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_empty_account_shows_the_apis_400() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("producer", "producer-pass", "/console/images")
        .await;
    let share = format!("/console/images/DFW/{}/share", f.image);
    let csrf = browser.get(&share).await.csrf();
    let page = browser
        .post(&share, &[("csrf", &csrf), ("account", "")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains("Member can&#x27;t be empty"),
        "{}",
        page.body
    );
    let long = "9".repeat(300);
    let page = browser
        .post(&share, &[("csrf", &csrf), ("account", &long)])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Member is too long"));
    assert_eq!(members(&f.engine, f.image), 0);
}

#[tokio::test]
async fn an_observer_sees_no_share_or_delete_and_the_api_refuses_a_forced_share() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("observer", "observer-pass", "/console/images")
        .await;
    let list = browser.get("/console/images").await;
    assert!(list.body.contains("web-base"));
    assert!(!list.body.contains("Share Image"));
    let detail = browser
        .get(&format!("/console/images/DFW/{}", f.image))
        .await;
    assert!(!detail.body.contains("Share Image"));
    assert!(!detail.body.contains("Delete Image"));
    let csrf = detail.csrf();
    let share = format!("/console/images/DFW/{}/share", f.image);
    let page = browser
        .post(&share, &[("csrf", &csrf), ("account", "222222")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body
            .contains("requires role cloudImages:creator or above"),
        "{}",
        page.body
    );
    assert_eq!(members(&f.engine, f.image), 0);
}

#[tokio::test]
async fn the_consumer_accepts_and_removes_through_the_api() {
    let f = fixture();
    let mut producer = Browser::new(&f.app);
    producer
        .login("producer", "producer-pass", "/console/images")
        .await;
    let share = format!("/console/images/DFW/{}/share", f.image);
    let csrf = producer.get(&share).await.csrf();
    producer
        .post(&share, &[("csrf", &csrf), ("account", "222222")])
        .await;
    let mut consumer = Browser::new(&f.app);
    consumer
        .login("consumer", "consumer-pass", "/console/images")
        .await;
    let pending = format!("id=\"pending-{}\"", f.image);
    assert!(consumer
        .get("/console/images")
        .await
        .body
        .contains(&pending));
    assert!(consumer
        .get("/console/images?region=DFW")
        .await
        .body
        .contains(&pending));
    assert!(!consumer
        .get("/console/images?region=ORD")
        .await
        .body
        .contains(&pending));
    let list = consumer.get("/console/images").await;
    let decision = format!("/console/images/DFW/{}/decision", f.image);
    let page = consumer
        .post(
            &decision,
            &[
                ("csrf", &list.csrf()),
                ("decision", "accepted"),
                ("back", "/console/images"),
            ],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/console/images"));
    let list = consumer.get("/console/images").await;
    assert!(!list.body.contains(&pending));
    assert!(list.body.contains("Shared Image"));
    assert!(list.body.contains("Image accepted"));
    consumer
        .post(
            &decision,
            &[
                ("csrf", &list.csrf()),
                ("decision", "rejected"),
                ("back", "/console/images"),
            ],
        )
        .await;
    let list = consumer.get("/console/images").await;
    assert!(!list.body.contains("Shared Image"));
    let detail = producer
        .get(&format!("/console/images/DFW/{}", f.image))
        .await;
    assert!(detail.body.contains("Rejected"));
    // An unknown region and an unknown image are 404 pages, not errors.
    assert_eq!(
        consumer.get("/console/images?region=XXX").await.status,
        StatusCode::NOT_FOUND
    );
    let missing = consumer
        .get(&format!("/console/images/DFW/{}", Uuid::new_v4()))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_versioned_and_pages_need_a_session() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    let login = browser.get("/console/login").await;
    let at = login.body.find("/console/static/console-").unwrap();
    let name = &login.body[at..at + login.body[at..].find('"').unwrap()];
    let asset = browser.get(name).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(asset
        .headers
        .get(header::CACHE_CONTROL)
        .unwrap()
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        browser.get("/console/static/console.css").await.status,
        StatusCode::NOT_FOUND
    );
    let page = browser.get("/console/images").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/console/login?next=%2Fconsole%2Fimages")
    );
}

#[tokio::test]
async fn import_creates_a_task_whose_page_follows_it() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("producer", "producer-pass", "/console/images")
        .await;
    let form = browser.get("/console/tasks").await;
    assert!(form.body.contains("id=\"import-submit\""));
    let fields = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("region", "DFW".to_owned()),
            ("container", "imports".to_owned()),
            ("object", "disk.vhd".to_owned()),
            ("name", "<i>new</i>".to_owned()),
        ]
    };
    let forged = fields("forged");
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        browser.post("/console/tasks/import", &forged).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(browser
        .get("/console/tasks")
        .await
        .body
        .contains("id=\"no-tasks\""));
    let good = fields(&form.csrf());
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = browser.post("/console/tasks/import", &good).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let task = created.location.unwrap();
    assert!(task.starts_with("/console/tasks/DFW/"), "{task}");
    // No worker runs here: the task stays pending and its page keeps refreshing.
    let page = browser.get(&task).await;
    assert!(page.body.contains(">pending<"));
    assert!(page.body.contains("data-refresh"));
    assert!(page.body.contains("imports&#x2f;disk.vhd"));
    assert!(browser
        .get("/console/tasks")
        .await
        .body
        .contains("data-task="));
    // An unknown region is the console's 404; another account's task is the API's 404.
    let mut observer = Browser::new(&f.app);
    observer
        .login("consumer", "consumer-pass", "/console/images")
        .await;
    assert_eq!(observer.get(&task).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        observer.get("/console/tasks/XXX/1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_observer_gets_no_import_form() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("observer", "observer-pass", "/console/images")
        .await;
    let page = browser.get("/console/tasks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("import-submit"));
    assert!(page.body.contains("need the cloudImages:admin role"));
    let detail = browser
        .get(&format!("/console/images/DFW/{}", f.image))
        .await;
    assert!(!detail.body.contains("Export Image"));
}

#[tokio::test]
async fn a_member_with_url_characters_can_be_removed() {
    let f = fixture();
    let mut browser = Browser::new(&f.app);
    browser
        .login("producer", "producer-pass", "/console/images")
        .await;
    let share = format!("/console/images/DFW/{}/share", f.image);
    let csrf = browser.get(&share).await.csrf();
    let shared = browser
        .post(&share, &[("csrf", &csrf), ("account", "a/b?c")])
        .await;
    assert_eq!(shared.status, StatusCode::SEE_OTHER);
    let detail = browser.get(shared.location.as_deref().unwrap()).await;
    assert!(detail.body.contains("Account numbers are digits"));
    let action = format!("/console/images/DFW/{}/members/a%2Fb%3Fc/remove", f.image);
    assert!(detail.body.contains(&action), "{}", detail.body);
    assert_eq!(members(&f.engine, f.image), 1);
    let removed = browser.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(members(&f.engine, f.image), 0);
}

#[tokio::test]
async fn a_creator_cannot_accept_and_a_forced_accept_shows_the_apis_refusal() {
    let f = fixture();
    let mut producer = Browser::new(&f.app);
    producer
        .login("producer", "producer-pass", "/console/images")
        .await;
    let share = format!("/console/images/DFW/{}/share", f.image);
    let csrf = producer.get(&share).await.csrf();
    producer
        .post(&share, &[("csrf", &csrf), ("account", "222222")])
        .await;
    let mut creator = Browser::new(&f.app);
    creator
        .login("creator", "creator-pass", "/console/images")
        .await;
    let list = creator.get("/console/images").await;
    assert!(list.body.contains(&format!("id=\"pending-{}\"", f.image)));
    assert!(!list.body.contains("data-action=\"accept\""));
    assert!(list.body.contains("An account administrator"));
    let decision = format!("/console/images/DFW/{}/decision", f.image);
    let page = creator
        .post(
            &decision,
            &[
                ("csrf", &list.csrf()),
                ("decision", "accepted"),
                ("back", "/console/images"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let after = creator.get("/console/images").await;
    assert!(
        after
            .body
            .contains("requires role cloudImages:admin or admin"),
        "{}",
        after.body
    );
    // Still pending: the notification is there, nothing in the list.
    assert!(after.body.contains(&format!("id=\"pending-{}\"", f.image)));
    assert!(!after.body.contains("Shared Image"));
}
