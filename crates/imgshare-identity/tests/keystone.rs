//! KeystoneValidator against a real Keystone (tests/keystone/run.sh starts one).
//!
//! Skipped, with a notice, unless IMGSHARE_KEYSTONE_URL is set. With
//! IMGSHARE_KEYSTONE_TOKEN_LIFETIME at most 30 (seconds; run.sh sets it), it also waits for a
//! token to expire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imgshare_identity::{ErrorKind, KeystoneOptions, KeystoneValidator, TokenValidator};
use serde_json::{json, Value};

struct Keystone {
    url: String,
    agent: ureq::Agent,
    admin_password: String,
}

impl Keystone {
    fn from_env() -> Option<Self> {
        let url = std::env::var("IMGSHARE_KEYSTONE_URL").ok()?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Some(Keystone {
            url: url.trim_end_matches('/').to_owned(),
            agent,
            admin_password: std::env::var("IMGSHARE_KEYSTONE_ADMIN_PASSWORD")
                .unwrap_or_else(|_| "adminpw".into()),
        })
    }

    /// A password token for `user`, scoped to `project` (None: unscoped), and its expiry.
    fn token(&self, user: &str, password: &str, project: Option<&str>) -> (String, String) {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(project) = project {
            auth["scope"] = json!({"project": {"name": project, "domain": {"id": "default"}}});
        }
        let mut response = self
            .agent
            .post(format!("{}/v3/auth/tokens", self.url))
            .send_json(json!({ "auth": auth }))
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "token for {user}");
        let token = response.headers()["x-subject-token"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.body_mut().read_json().unwrap();
        (
            token,
            body["token"]["expires_at"].as_str().unwrap().to_owned(),
        )
    }

    fn admin(&self) -> String {
        self.token("admin", &self.admin_password, Some("admin")).0
    }

    fn create(&self, admin: &str, path: &str, body: Value) -> String {
        let kind = path.trim_end_matches('s');
        let mut response = self
            .agent
            .post(format!("{}/v3/{path}", self.url))
            .header("X-Auth-Token", admin)
            .send_json(body)
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "create {path}");
        let body: Value = response.body_mut().read_json().unwrap();
        body[kind]["id"].as_str().unwrap().to_owned()
    }

    fn role_id(&self, admin: &str, name: &str) -> String {
        let mut response = self
            .agent
            .get(format!("{}/v3/roles?name={name}", self.url))
            .header("X-Auth-Token", admin)
            .call()
            .unwrap();
        let body: Value = response.body_mut().read_json().unwrap();
        body["roles"][0]["id"].as_str().unwrap().to_owned()
    }

    fn grant(&self, admin: &str, project: &str, user: &str, role: &str) {
        let status = self
            .agent
            .put(format!(
                "{}/v3/projects/{project}/users/{user}/roles/{role}",
                self.url
            ))
            .header("X-Auth-Token", admin)
            .send_empty()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 204);
    }

    fn revoke(&self, admin: &str, token: &str) {
        let status = self
            .agent
            .delete(format!("{}/v3/auth/tokens", self.url))
            .header("X-Auth-Token", admin)
            .header("X-Subject-Token", token)
            .call()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 204);
    }
}

/// A loopback TCP relay to Keystone that can be cut, connections included.
struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (stop2, streams2) = (Arc::clone(&stop), Arc::clone(&streams));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = streams2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            port,
            stop,
            streams,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Refuses new connections and cuts the open ones: Keystone is now unreachable.
    fn cut(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn validator(
    url: &str,
    user: &str,
    password: &str,
    project: &str,
    ttl: Duration,
) -> KeystoneValidator {
    let mut options = KeystoneOptions::new(url, user, password);
    options.service_project = project.to_owned();
    options.cache_ttl = ttl;
    options.timeout = Duration::from_secs(5);
    KeystoneValidator::new(options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_tokens_are_validated_cached_and_refused_once_revoked_or_expired() {
    let Some(keystone) = Keystone::from_env() else {
        eprintln!("skipped: IMGSHARE_KEYSTONE_URL is not set (tests/keystone/run.sh sets it)");
        return;
    };
    let started = Instant::now();
    let ks = Arc::new(keystone);
    let suffix = format!(
        "{}{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let (service_user, user, project, service_project) = (
        format!("imgshare-{suffix}"),
        format!("alice-{suffix}"),
        format!("demo-{suffix}"),
        format!("service-{suffix}"),
    );
    // Set-up through Keystone's API: a service user with the `service` role, a member user.
    let setup = {
        let ks = Arc::clone(&ks);
        let (service_user, user, project, service_project) = (
            service_user.clone(),
            user.clone(),
            project.clone(),
            service_project.clone(),
        );
        move || {
            let admin = ks.admin();
            let svc_project = ks.create(
                &admin,
                "projects",
                json!({"project": {"name": service_project, "domain_id": "default"}}),
            );
            let demo = ks.create(
                &admin,
                "projects",
                json!({"project": {"name": project, "domain_id": "default"}}),
            );
            let svc = ks.create(
                &admin,
                "users",
                json!({"user": {"name": service_user,
                "password": "svcpw", "domain_id": "default"}}),
            );
            let alice = ks.create(
                &admin,
                "users",
                json!({"user": {"name": user,
                "password": "alicepw", "domain_id": "default"}}),
            );
            ks.grant(&admin, &svc_project, &svc, &ks.role_id(&admin, "service"));
            ks.grant(&admin, &demo, &alice, &ks.role_id(&admin, "member"));
            (demo, alice)
        }
    };
    let (demo_id, alice_id) = tokio::task::spawn_blocking(setup).await.unwrap();
    let blocking = |f: Box<dyn FnOnce() -> (String, String) + Send>| tokio::task::spawn_blocking(f);
    let user_token = {
        let (ks, user, project) = (Arc::clone(&ks), user.clone(), project.clone());
        move || ks.token(&user, "alicepw", Some(&project))
    };

    // 1. A valid token maps to the project, the user and its roles (implied ones included).
    let (token, _) = blocking(Box::new(user_token.clone())).await.unwrap();
    let admin = {
        let ks = Arc::clone(&ks);
        tokio::task::spawn_blocking(move || ks.admin())
            .await
            .unwrap()
    };
    let ttl = Duration::from_secs(3);
    let short = validator(&ks.url, &service_user, "svcpw", &service_project, ttl);
    let who = short.validate(&token).await.unwrap();
    assert_eq!(who.tenant, demo_id);
    assert_eq!(who.user_id, alice_id);
    assert_eq!(who.user_name, user);
    assert!(who.roles.contains(&"member".to_owned()), "{:?}", who.roles);
    assert!(who.roles.contains(&"reader".to_owned()), "{:?}", who.roles);
    assert!(who.expires > chrono::Utc::now());
    assert_eq!(short.cached(), 1);
    let cached_at = Instant::now();

    // 2. Revoked: still trusted while cached (keystonemiddleware's behaviour), refused after.
    {
        let (ks, token) = (Arc::clone(&ks), token.clone());
        tokio::task::spawn_blocking(move || ks.revoke(&admin, &token))
            .await
            .unwrap();
    }
    assert!(
        cached_at.elapsed() < ttl,
        "the revocation took longer than the cache time"
    );
    assert!(
        short.validate(&token).await.is_ok(),
        "the cache entry is still fresh"
    );
    tokio::time::sleep(ttl.saturating_sub(cached_at.elapsed()) + Duration::from_millis(100)).await;
    let revoked = short.validate(&token).await.unwrap_err();
    assert_eq!(revoked.kind(), ErrorKind::Unauthorized, "{revoked}");
    assert_eq!(short.cached(), 0, "refusals are not cached");

    // 3. Garbage and unscoped tokens.
    let garbage = short
        .validate("gAAAAABnot-a-fernet-token")
        .await
        .unwrap_err();
    assert_eq!(garbage.kind(), ErrorKind::Unauthorized, "{garbage}");
    let unscoped = {
        let (ks, user) = (Arc::clone(&ks), user.clone());
        tokio::task::spawn_blocking(move || ks.token(&user, "alicepw", None))
            .await
            .unwrap()
            .0
    };
    let refused = short.validate(&unscoped).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");

    // 4. Wrong service credentials: unavailable (503), not the caller's fault.
    let (fresh, _) = blocking(Box::new(user_token.clone())).await.unwrap();
    let wrong = validator(
        &ks.url,
        &service_user,
        "wrong",
        &service_project,
        Duration::from_secs(1),
    );
    assert_eq!(
        wrong.validate(&fresh).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    // 5. Keystone unreachable: a cached token is trusted only until its cache time, then 503.
    let relay = Relay::start(&ks.url);
    let through = validator(
        &relay.url(),
        &service_user,
        "svcpw",
        &service_project,
        Duration::from_secs(1),
    );
    assert!(through.validate(&fresh).await.is_ok());
    relay.cut();
    assert!(through.validate(&fresh).await.is_ok(), "from the cache");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let down = through.validate(&fresh).await.unwrap_err();
    assert_eq!(down.kind(), ErrorKind::Unavailable, "{down}");
    assert!(
        down.to_string().contains("temporarily unavailable"),
        "{down}"
    );

    // 6. Expiry: a token cached for longer than it lives is refused at its expiry, and Keystone
    //    refuses it too. The service token (same short lifetime) is renewed on the way.
    let lifetime: u64 = std::env::var("IMGSHARE_KEYSTONE_TOKEN_LIFETIME")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3600);
    if lifetime <= 30 {
        let (expiring, expires_at) = blocking(Box::new(user_token.clone())).await.unwrap();
        let long = validator(
            &ks.url,
            &service_user,
            "svcpw",
            &service_project,
            Duration::from_secs(300),
        );
        let who = long.validate(&expiring).await.unwrap();
        assert_eq!(
            who.expires
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            chrono::DateTime::parse_from_rfc3339(&expires_at)
                .unwrap()
                .to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let wait = (who.expires - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait + Duration::from_millis(200)).await;
        let expired = long.validate(&expiring).await.unwrap_err();
        assert_eq!(expired.kind(), ErrorKind::Unauthorized, "{expired}");
        let expired = short.validate(&expiring).await.unwrap_err();
        assert_eq!(
            expired.kind(),
            ErrorKind::Unauthorized,
            "Keystone's answer: {expired}"
        );
        // The validators' service tokens have expired as well: both renew and still work.
        let (next, _) = blocking(Box::new(user_token.clone())).await.unwrap();
        assert!(long.validate(&next).await.is_ok());
        assert!(short.validate(&next).await.is_ok());
    } else {
        eprintln!("expiry part skipped: IMGSHARE_KEYSTONE_TOKEN_LIFETIME is {lifetime} s (> 30)");
    }
    eprintln!(
        "real Keystone test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
