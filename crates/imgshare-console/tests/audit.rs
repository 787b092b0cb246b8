//! The Audit tab of Image Detail over the real API: the owner sees the image's history and who
//! could use it at a date; a bad date shows the API's 400 beside the field; anyone else gets the
//! API's 404 and no tab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{fixture, Browser};

#[tokio::test]
async fn the_owner_sees_the_history_and_who_could_use_the_image() {
    let f = fixture();
    let mut producer = Browser::new(&f.app);
    producer
        .login("producer", "producer-pass", "/console/images")
        .await;
    let detail = format!("/console/images/DFW/{}", f.image);
    let page = producer.get(&detail).await;
    assert!(page.body.contains("id=\"tab-audit\""), "{}", page.body);
    let csrf = page.csrf();
    producer
        .post(
            &format!("{detail}/share"),
            &[("csrf", &csrf), ("account", "222222")],
        )
        .await;

    // A date alone is its midnight, UTC; this one is after the share.
    let page = producer.get(&format!("{detail}/audit?at=2099-01-01")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Image registered"), "{}", page.body);
    assert!(page.body.contains("Member added"), "{}", page.body);
    assert!(page.body.contains("2099-01-01T00:00:00Z"), "{}", page.body);
    let row = |account: &str| {
        let at = page
            .body
            .find(&format!("data-account=\"{account}\""))
            .unwrap_or_else(|| panic!("no row for {account}: {}", page.body));
        page.body[at..at + 400].to_owned()
    };
    assert!(row("111111").contains("Owner"));
    assert!(row("222222").contains("Member, Pending Acceptance"));

    // Before the image existed.
    let page = producer.get(&format!("{detail}/audit?at=2000-01-01")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"access-none\""), "{}", page.body);
}

#[tokio::test]
async fn a_bad_date_shows_the_apis_message_beside_the_field() {
    let f = fixture();
    let mut producer = Browser::new(&f.app);
    producer
        .login("producer", "producer-pass", "/console/images")
        .await;
    let audit = format!("/console/images/DFW/{}/audit", f.image);
    for bad in ["yesterday", "2026-12-01T25:00:00Z", "<b>x</b>"] {
        let page = producer
            .get(&format!(
                "{audit}?at={}",
                bad.replace('<', "%3C").replace('>', "%3E")
            ))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.body.contains("id=\"at-error\""), "{}", page.body);
        assert!(page.body.contains("RFC 3339"), "{}", page.body);
        // The history is still there; the typed value comes back escaped.
        assert!(page.body.contains("Image registered"));
        assert!(!page.body.contains("<b>x</b>"), "{}", page.body);
    }
}

#[tokio::test]
async fn others_get_the_apis_404_and_no_audit_tab() {
    let f = fixture();
    let mut producer = Browser::new(&f.app);
    producer
        .login("producer", "producer-pass", "/console/images")
        .await;
    let detail = format!("/console/images/DFW/{}", f.image);
    let csrf = producer.get(&detail).await.csrf();
    producer
        .post(
            &format!("{detail}/share"),
            &[("csrf", &csrf), ("account", "222222")],
        )
        .await;
    let mut consumer = Browser::new(&f.app);
    consumer
        .login("consumer", "consumer-pass", "/console/images")
        .await;
    // The consumer is a member and sees the image, but not its audit.
    let page = consumer.get(&detail).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("tab-audit"), "{}", page.body);
    let page = consumer.get(&format!("{detail}/audit")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body
            .contains(&format!("No image found with ID {}", f.image)),
        "{}",
        page.body
    );
    // The observer of the owner's account reads it: the audit is the account's.
    let mut observer = Browser::new(&f.app);
    observer
        .login("observer", "observer-pass", "/console/images")
        .await;
    let page = observer.get(&format!("{detail}/audit")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

#[tokio::test]
async fn html_in_a_name_is_escaped_on_the_audit_tab() {
    let f = fixture();
    let mut producer = Browser::new(&f.app);
    producer
        .login("producer", "producer-pass", "/console/images")
        .await;
    let page = producer
        .get(&format!("/console/images/DFW/{}/audit", f.script_image))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)"),
        "{}",
        page.body
    );
}
