#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn identity(expires: i64) -> Identity {
    Identity {
        tenant: "p1".into(),
        user_id: "u1".into(),
        user_name: "alice".into(),
        roles: vec!["member".into(), "reader".into()],
        expires: at(expires),
    }
}

#[test]
fn cached_tokens_are_trusted_for_the_ttl_only() {
    let mut cache = TokenCache::new(StdDuration::from_secs(300), 10);
    cache.put("t", identity(3600), at(0));
    assert_eq!(cache.get("t", at(299)), Cached::Valid(identity(3600)));
    assert_eq!(
        cache.get("t", at(300)),
        Cached::Unknown,
        "ask Keystone again"
    );
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.get("other", at(0)), Cached::Unknown);
}

#[test]
fn cached_tokens_never_outlive_their_expiry() {
    let mut cache = TokenCache::new(StdDuration::from_secs(300), 10);
    cache.put("t", identity(100), at(0));
    assert!(matches!(cache.get("t", at(99)), Cached::Valid(_)));
    assert_eq!(cache.get("t", at(100)), Cached::Expired);
    assert_eq!(cache.get("t", at(101)), Cached::Unknown, "dropped");
}

#[test]
fn the_cache_is_bounded_and_can_be_disabled() {
    let mut cache = TokenCache::new(StdDuration::from_secs(300), 3);
    for i in 0..5 {
        cache.put(&format!("t{i}"), identity(3600), at(i));
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(
        cache.get("t0", at(5)),
        Cached::Unknown,
        "the oldest went first"
    );
    assert!(matches!(cache.get("t4", at(5)), Cached::Valid(_)));
    let mut off = TokenCache::new(StdDuration::ZERO, 3);
    off.put("t", identity(3600), at(0));
    assert_eq!(off.get("t", at(0)), Cached::Unknown);
}

#[test]
fn keystone_tokens_map_project_user_and_roles() {
    let body: ValidateBody = serde_json::from_value(json!({"token": {
        "expires_at": "2026-12-03T10:07:18.000000Z", "issued_at": "2026-12-03T09:07:18.000000Z",
        "methods": ["password"], "audit_ids": ["x"], "is_domain": false,
        "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
        "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]}}))
    .unwrap();
    let now = DateTime::parse_from_rfc3339("2026-12-03T09:10:00Z")
        .unwrap()
        .to_utc();
    let identity = identity_of(body.token, now).unwrap();
    assert_eq!(identity.tenant, "p1");
    assert_eq!(identity.user_id, "u1");
    assert_eq!(identity.user_name, "alice");
    assert_eq!(identity.roles, ["member", "reader"]);
    assert_eq!(identity.expires.to_rfc3339(), "2026-12-03T10:07:18+00:00");
}

#[test]
fn unscoped_or_expired_keystone_tokens_are_refused() {
    let token = |project: Value, expires: &str| -> TokenBody {
        let mut body =
            json!({"expires_at": expires, "user": {"id": "u", "name": "n"}, "roles": []});
        if !project.is_null() {
            body["project"] = project;
        }
        serde_json::from_value(body).unwrap()
    };
    let now = DateTime::parse_from_rfc3339("2026-12-03T09:10:00Z")
        .unwrap()
        .to_utc();
    let unscoped = identity_of(token(Value::Null, "2026-12-03T10:00:00Z"), now).unwrap_err();
    assert_eq!(unscoped.kind(), crate::ErrorKind::Forbidden);
    let expired = identity_of(token(json!({"id": "p"}), "2026-12-03T09:10:00Z"), now).unwrap_err();
    assert_eq!(expired.kind(), crate::ErrorKind::Unauthorized);
    let garbled = identity_of(token(json!({"id": "p"}), "tomorrow"), now).unwrap_err();
    assert_eq!(garbled.kind(), crate::ErrorKind::Unavailable);
}

#[test]
fn options_accept_a_v3_suffix_and_hide_the_password() {
    let mut options = KeystoneOptions::new("http://127.0.0.1:5000/v3/", "imgshare", "s3cret");
    assert_eq!(options.base(), "http://127.0.0.1:5000");
    options.url = "http://k:5000".into();
    assert_eq!(options.base(), "http://k:5000");
    assert!(!format!("{options:?}").contains("s3cret"));
}

#[test]
fn credentials_files_are_read_with_defaults_and_refused_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keystone.toml");
    std::fs::write(&path, "user = \"imgshare\"\npassword = \"pw\"\n").unwrap();
    let options = KeystoneOptions::from_credentials_file("http://k:5000", &path).unwrap();
    assert_eq!(options.service_user, "imgshare");
    assert_eq!(options.service_password, "pw");
    assert_eq!(options.service_project, "service");
    assert_eq!(options.user_domain, "default");
    std::fs::write(&path, "user = \"imgshare\"\n").unwrap();
    let error = KeystoneOptions::from_credentials_file("http://k:5000", &path).unwrap_err();
    assert!(error.to_string().contains("password"), "{error}");
}

#[tokio::test]
async fn an_unreachable_keystone_is_unavailable_not_unauthorized() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = KeystoneOptions::new(&format!("http://127.0.0.1:{port}"), "s", "p");
    options.timeout = StdDuration::from_secs(2);
    let validator = KeystoneValidator::new(options);
    let error = validator.validate("some-token").await.unwrap_err();
    assert_eq!(error.kind(), crate::ErrorKind::Unavailable, "{error}");
    assert_eq!(validator.cached(), 0);
}
