#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::catalog::RegionEndpoints;
use crate::ErrorKind;
use expect_test::expect;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn catalog() -> Catalog {
    Catalog {
        regions: vec![
            RegionEndpoints {
                region: "DFW".into(),
                images_url: "https://dfw.images.example.com/v2".into(),
                object_store_url: Some("https://storage.dfw.example.com/v1/".into()),
            },
            RegionEndpoints {
                region: "ORD".into(),
                images_url: "https://ord.images.example.com/v2/{tenant_id}".into(),
                object_store_url: None,
            },
        ],
    }
}

/// alice (key "alice-key", password "alice-pw", 111111), bob (disabled, key "bob-key"),
/// root (identity admin, key "root-key").
fn identity() -> BuiltinIdentity {
    let mut users = UsersFile::default();
    let add = |users: &mut UsersFile, name: &str, account: &str, roles: &[&str], pw| {
        users
            .add_user(
                name,
                account,
                roles.iter().map(|r| r.to_string()).collect(),
                None,
                Some(&format!("{name}-key")),
                pw,
                HashStrength::Fast,
            )
            .unwrap();
    };
    add(
        &mut users,
        "alice",
        "111111",
        &["cloudImages:admin"],
        Some("alice-pw"),
    );
    add(&mut users, "bob", "222222", &[], None);
    add(&mut users, "root", "999999", &["identity:admin"], None);
    users.set_enabled("bob", false).unwrap();
    BuiltinIdentity::new(
        users,
        BuiltinOptions {
            catalog: catalog(),
            ..BuiltinOptions::default()
        },
    )
    .unwrap()
}

fn key(user: &str, key: &str) -> AuthRequest {
    AuthRequest {
        credential: Credential::ApiKey {
            username: user.into(),
            api_key: key.into(),
        },
        tenant: None,
    }
}

fn password(user: &str, password: &str, tenant: Option<&str>) -> AuthRequest {
    AuthRequest {
        credential: Credential::Password {
            username: user.into(),
            password: password.into(),
        },
        tenant: tenant.map(str::to_owned),
    }
}

#[test]
fn request_bodies_parse_with_rackspace_messages() {
    let ok = |body: &str| AuthRequest::parse(body.as_bytes()).unwrap();
    let bad = |body: &str| match AuthRequest::parse(body.as_bytes()) {
        Err(IdentityError::BadRequest(message)) => message,
        other => panic!("{body}: {other:?}"),
    };
    assert_eq!(
        ok(
            r#"{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"demoauthor","apiKey":"aaaaa-bbbbb-ccccc-12345678"}}}"#
        ),
        key("demoauthor", "aaaaa-bbbbb-ccccc-12345678")
    );
    assert_eq!(
        ok(r#"{"auth":{"passwordCredentials":{"username":"u","password":"p"},"tenantId":"u"}}"#),
        password("u", "p", Some("u"))
    );
    assert_eq!(
        ok(r#"{"auth":{"passwordCredentials":{"username":"u","password":"p","tenantId":"x"}}}"#),
        password("u", "p", None),
        "a tenant inside the credential is dropped"
    );
    assert_eq!(
        ok(r#"{"auth":{"tenantName":"1100111","token":{"id":"abc"}}}"#),
        AuthRequest {
            credential: Credential::Token { id: "abc".into() },
            tenant: Some("1100111".into())
        }
    );
    for body in [
        "",
        "not json",
        "[]",
        r#"{"other":{}}"#,
        r#"{"auth":[]}"#,
        r#"{"x":1,"auth":{}}"#,
        r#"{"auth":{"tenantId":7,"passwordCredentials":{}}}"#,
    ] {
        assert_eq!(bad(body), "Invalid json request body", "{body}");
    }
    for body in [
        r#"{"auth":{}}"#,
        r#"{"auth":{"foo":{}}}"#,
        r#"{"auth":{"passwordCredentials":{"username":"u"}}}"#,
        r#"{"auth":{"RAX-KSKEY:apiKeyCredentials":"k"}}"#,
    ] {
        assert!(
            bad(body).starts_with("Invalid request body: unable to parse Auth data."),
            "{body}"
        );
    }
    assert_eq!(
        bad(
            r#"{"auth":{"passwordCredentials":{"username":"u","password":"p"},"tenantId":"1","tenantName":"1"}}"#
        ),
        "Invalid request. Specify tenantId OR tenantName, not both."
    );
    assert_eq!(
        bad(r#"{"auth":{"RAX-AUTH:passcodeCredentials":{}}}"#),
        "Unknown credential type"
    );
    assert_eq!(
        bad(r#"{"auth":{"tenantId":"1","token":{}}}"#),
        "Invalid Token Id"
    );
    assert_eq!(
        bad(r#"{"auth":{"token":{"id":"abc"}}}"#),
        "Invalid request. Specify tenantId or tenantName."
    );
}

#[test]
fn api_keys_and_passwords_authenticate() {
    let identity = identity();
    let by_key = identity
        .authenticate(&key("alice", "alice-key"), at(0))
        .unwrap();
    assert_eq!(by_key.token.tenant, "111111");
    assert_eq!(by_key.token.expires, at(86_400), "24 hours by default");
    assert_eq!(by_key.token.authenticated_by, "APIKEY");
    let by_password = identity
        .authenticate(&password("alice", "alice-pw", Some("111111")), at(0))
        .unwrap();
    assert_ne!(
        by_key.token.id, by_password.token.id,
        "a new token per POST"
    );
    let found = identity.identify(&by_key.token.id, at(1)).unwrap();
    assert_eq!(
        (
            found.tenant.as_str(),
            found.user_name.as_str(),
            found.roles.as_slice()
        ),
        (
            "111111",
            "alice",
            ["cloudImages:admin".to_owned()].as_slice()
        )
    );
    assert_eq!(found.user_id, "100001");
    let expired = identity.identify(&by_key.token.id, at(86_400)).unwrap_err();
    assert_eq!(expired.kind(), ErrorKind::Unauthorized);
}

#[test]
fn unknown_users_and_wrong_secrets_get_the_same_answer() {
    let identity = identity();
    let wrong_key = identity
        .authenticate(&key("alice", "nope"), at(0))
        .unwrap_err();
    let unknown = identity
        .authenticate(&key("mallory", "nope"), at(0))
        .unwrap_err();
    assert_eq!(wrong_key, unknown);
    assert_eq!(
        wrong_key,
        IdentityError::Unauthorized("Username or api key is invalid.".into())
    );
    let wrong_pw = identity
        .authenticate(&password("alice", "nope", None), at(0))
        .unwrap_err();
    let no_pw = identity
        .authenticate(&password("root", "root-key", None), at(0))
        .unwrap_err();
    let unknown_pw = identity
        .authenticate(&password("mallory", "x", None), at(0))
        .unwrap_err();
    assert_eq!(wrong_pw, no_pw);
    assert_eq!(wrong_pw, unknown_pw);
    assert_eq!(
        wrong_pw.to_string(),
        "Unable to authenticate user with credentials provided."
    );
    // pyrax's retry of a refused key as a password, tenant = user name: 401 as well.
    let retry = identity
        .authenticate(&password("alice", "nope", Some("alice")), at(0))
        .unwrap_err();
    assert_eq!(retry.kind(), ErrorKind::Unauthorized);
}

#[test]
fn disabled_users_are_told_only_after_the_right_secret() {
    let identity = identity();
    assert_eq!(
        identity
            .authenticate(&key("bob", "bob-key"), at(0))
            .unwrap_err(),
        IdentityError::Disabled("bob".into())
    );
    assert_eq!(
        identity
            .authenticate(&key("bob", "wrong"), at(0))
            .unwrap_err()
            .kind(),
        ErrorKind::Unauthorized
    );
}

#[test]
fn a_tenant_must_be_the_users_own() {
    let identity = identity();
    let error = identity
        .authenticate(&password("alice", "alice-pw", Some("222222")), at(0))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Tenant with Name/Id: '222222' is not valid for User 'alice' (id: '100001')"
    );
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
}

#[test]
fn five_failures_a_minute_then_over_limit_even_with_the_right_key() {
    let identity = identity();
    for i in 0..5 {
        let error = identity
            .authenticate(&key("alice", "bad"), at(i))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unauthorized, "attempt {i}");
    }
    let error = identity
        .authenticate(&key("alice", "alice-key"), at(10))
        .unwrap_err();
    assert_eq!(error, IdentityError::OverLimit { retry_at: at(60) });
    assert!(
        identity
            .authenticate(&key("root", "root-key"), at(10))
            .is_ok(),
        "per user"
    );
    assert!(identity
        .authenticate(&key("alice", "alice-key"), at(61))
        .is_ok());
}

#[test]
fn token_reauthentication_needs_a_valid_token_and_the_right_tenant() {
    let identity = identity();
    let first = identity
        .authenticate(&key("alice", "alice-key"), at(0))
        .unwrap();
    let request = |id: &str, tenant: &str| AuthRequest {
        credential: Credential::Token { id: id.into() },
        tenant: Some(tenant.into()),
    };
    let again = identity
        .authenticate(&request(&first.token.id, "111111"), at(1))
        .unwrap();
    assert_eq!(again.token.authenticated_by, "TOKEN");
    assert_ne!(again.token.id, first.token.id);
    assert_eq!(
        identity
            .authenticate(&request("nope", "111111"), at(1))
            .unwrap_err()
            .to_string(),
        "Token not authenticated."
    );
    assert_eq!(
        identity
            .authenticate(&request(&first.token.id, "2"), at(1))
            .unwrap_err()
            .kind(),
        ErrorKind::Unauthorized
    );
}

#[test]
fn validation_and_revocation_follow_who_holds_the_token() {
    let identity = identity();
    let alice = identity
        .authenticate(&key("alice", "alice-key"), at(0))
        .unwrap()
        .token
        .id;
    let alice2 = identity
        .authenticate(&key("alice", "alice-key"), at(0))
        .unwrap()
        .token
        .id;
    let root = identity
        .authenticate(&key("root", "root-key"), at(0))
        .unwrap()
        .token
        .id;
    assert!(
        identity.validate_for(&alice, &alice, None, at(1)).is_ok(),
        "self"
    );
    assert!(identity
        .validate_for(&alice, &alice, Some("111111"), at(1))
        .is_ok());
    assert_eq!(
        identity
            .validate_for(&alice, &alice, Some("222222"), at(1))
            .unwrap_err(),
        IdentityError::TokenNotFound
    );
    assert_eq!(
        identity
            .validate_for(&alice, &root, None, at(1))
            .unwrap_err()
            .kind(),
        ErrorKind::Forbidden
    );
    assert!(
        identity.validate_for(&root, &alice, None, at(1)).is_ok(),
        "admin"
    );
    assert_eq!(
        identity
            .validate_for(&root, "nope", None, at(1))
            .unwrap_err(),
        IdentityError::TokenNotFound
    );
    assert_eq!(
        identity
            .revoke_for(&alice, Some(&root), at(1))
            .unwrap_err()
            .kind(),
        ErrorKind::Forbidden
    );
    identity.revoke_for(&alice, None, at(1)).unwrap();
    assert_eq!(
        identity.identify(&alice, at(2)).unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    assert!(
        identity.identify(&alice2, at(2)).is_ok(),
        "other tokens stay"
    );
    identity.revoke_for(&root, Some(&alice2), at(2)).unwrap();
    assert!(identity.identify(&alice2, at(3)).is_err());
    assert_eq!(
        identity
            .revoke_for(&root, Some(&alice2), at(3))
            .unwrap_err(),
        IdentityError::TokenNotFound
    );
}

#[test]
fn removed_or_disabled_users_lose_their_tokens_on_reload() {
    let identity = identity();
    let token = identity
        .authenticate(&key("alice", "alice-key"), at(0))
        .unwrap()
        .token
        .id;
    let mut users = (*identity.users()).clone();
    users.set_enabled("alice", false).unwrap();
    identity.replace_users(users.clone());
    assert!(identity.identify(&token, at(1)).is_err());
    users.set_enabled("alice", true).unwrap();
    identity.replace_users(users.clone());
    assert!(identity.identify(&token, at(1)).is_ok());
    users.remove_user("alice").unwrap();
    identity.replace_users(users);
    assert!(identity.identify(&token, at(1)).is_err());
}

#[test]
fn a_reload_of_a_broken_file_keeps_the_users() {
    let identity = identity();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    std::fs::write(&path, "[users.x\n").unwrap();
    assert!(identity.reload_from(&path).is_err());
    assert!(identity
        .authenticate(&key("alice", "alice-key"), at(0))
        .is_ok());
}

/// The whole `access` document, with the random token id masked.
#[test]
fn the_access_document_has_rackspaces_shape() {
    let identity = identity();
    let access = identity
        .authenticate(
            &key("alice", "alice-key"),
            at(0) + Duration::milliseconds(637),
        )
        .unwrap();
    let mut json = access.to_json(Some(&catalog()));
    assert_eq!(json["access"]["token"]["id"].as_str().unwrap().len(), 32);
    json["access"]["token"]["id"] = json!("<32 hex digits>");
    expect![[r#"
        {
          "access": {
            "token": {
              "id": "<32 hex digits>",
              "expires": "2023-11-15T22:13:20.637Z",
              "tenant": {
                "id": "111111",
                "name": "111111"
              },
              "RAX-AUTH:authenticatedBy": [
                "APIKEY"
              ]
            },
            "serviceCatalog": [
              {
                "name": "cloudImages",
                "type": "image",
                "endpoints": [
                  {
                    "region": "DFW",
                    "tenantId": "111111",
                    "publicURL": "https://dfw.images.example.com/v2"
                  },
                  {
                    "region": "ORD",
                    "tenantId": "111111",
                    "publicURL": "https://ord.images.example.com/v2/111111"
                  }
                ]
              },
              {
                "name": "cloudFiles",
                "type": "object-store",
                "endpoints": [
                  {
                    "region": "DFW",
                    "tenantId": "MossoCloudFS_111111",
                    "publicURL": "https://storage.dfw.example.com/v1/MossoCloudFS_111111"
                  }
                ]
              }
            ],
            "user": {
              "id": "100001",
              "name": "alice",
              "roles": [
                {
                  "id": "5",
                  "name": "object-store:default",
                  "description": "A Role that allows a user access to keystone Service methods",
                  "tenantId": "MossoCloudFS_111111"
                },
                {
                  "id": "6",
                  "name": "compute:default",
                  "description": "A Role that allows a user access to keystone Service methods",
                  "tenantId": "111111"
                },
                {
                  "id": "cloudImages:admin",
                  "name": "cloudImages:admin",
                  "description": "imgshare role cloudImages:admin"
                }
              ],
              "RAX-AUTH:domainId": "111111",
              "RAX-AUTH:defaultRegion": "DFW"
            }
          }
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&json).unwrap());
    let without = access.to_json(None);
    assert!(without["access"].get("serviceCatalog").is_none());
}

#[test]
fn no_object_store_means_no_cloud_files_service() {
    let catalog = Catalog {
        regions: vec![RegionEndpoints {
            region: "DFW".into(),
            images_url: "http://127.0.0.1:9292/v2".into(),
            object_store_url: None,
        }],
    };
    let rendered = catalog.render("1", "MossoCloudFS_1");
    assert_eq!(rendered.as_array().unwrap().len(), 1);
    assert_eq!(rendered[0]["type"], "image");
}

#[test]
fn the_validator_reload_rereads_the_users_file_it_was_loaded_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let mut users = UsersFile::default();
    users
        .add_user(
            "alice",
            "111111",
            vec![],
            None,
            Some("alice-key"),
            None,
            HashStrength::Fast,
        )
        .unwrap();
    users.save(&path).unwrap();
    let identity = BuiltinIdentity::load(&path, BuiltinOptions::default()).unwrap();
    assert_eq!(identity.users_path(), Some(path.as_path()));
    let token = identity
        .authenticate(&key("alice", "alice-key"), at(0))
        .unwrap()
        .token
        .id;
    users.set_enabled("alice", false).unwrap();
    users.save(&path).unwrap();
    let summary = TokenValidator::reload(&identity).unwrap();
    assert!(summary.contains("1 users"), "{summary}");
    assert!(identity.identify(&token, at(1)).is_err());
    std::fs::write(&path, "[users.alice\n").unwrap();
    let error = TokenValidator::reload(&identity).unwrap_err();
    assert!(error.to_string().contains("kept"), "{error}");
    // Without a file there is nothing to re-read.
    let summary = TokenValidator::reload(&self::identity()).unwrap();
    assert!(summary.contains("no users file"), "{summary}");
}
