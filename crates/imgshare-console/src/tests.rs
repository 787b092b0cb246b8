#![allow(clippy::unwrap_used)]

use axum::http::{header, HeaderMap, HeaderValue};

use crate::api::encode;
use crate::pages::safe_next;
use crate::session::{cookie, same_token, set_cookie};

#[test]
fn next_targets_stay_inside_the_console() {
    assert_eq!(
        safe_next(Some("/console/images?region=DFW")),
        "/console/images?region=DFW"
    );
    for bad in [
        "//evil.example/",
        "https://evil.example/",
        "/console\\..\\x",
        "/other",
        "",
    ] {
        assert_eq!(safe_next(Some(bad)), "/console/images", "{bad}");
    }
    assert_eq!(safe_next(None), "/console/images");
}

#[test]
fn tokens_compare_whole_and_never_empty() {
    assert!(same_token("abc123", "abc123"));
    assert!(!same_token("abc124", "abc123"));
    assert!(!same_token("abc12", "abc123"));
    assert!(!same_token("", ""));
}

#[test]
fn cookies_are_found_by_exact_name_and_set_strict() {
    let mut headers = HeaderMap::new();
    headers.append(
        header::COOKIE,
        HeaderValue::from_static("imgshare_console_login=x; imgshare_console=abc"),
    );
    assert_eq!(cookie(&headers, "imgshare_console").as_deref(), Some("abc"));
    assert_eq!(cookie(&headers, "imgshare"), None);
    let plain = set_cookie("s", "v", None, false);
    assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
    assert!(!plain.contains("Secure"));
    assert!(set_cookie("s", "v", Some(-5), true)
        .ends_with("Max-Age=0; HttpOnly; SameSite=Strict; Secure"));
}

#[test]
fn path_segments_are_percent_encoded() {
    assert_eq!(encode("DFW"), "DFW");
    assert_eq!(encode("a/b c?<"), "a%2Fb%20c%3F%3C");
}
