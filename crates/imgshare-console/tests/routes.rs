//! The console's routes in-process, over the real API router and engine: login, CSRF, escaping,
//! session expiry, and the API's refusals shown as they are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use axum::http::{header, StatusCode};
use common::{fixture, members, Browser, Page};
use uuid::Uuid;

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
