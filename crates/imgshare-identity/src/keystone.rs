//! Validating Keystone v3 tokens the way keystonemiddleware does.
//!
//! `GET /v3/auth/tokens` with the service's own token in `X-Auth-Token` and the caller's in
//! `X-Subject-Token`. The service token comes from password authentication scoped to the
//! service project and is renewed a minute before it expires, or at once when Keystone answers
//! 401. Successes are cached for `cache_ttl` (never past the token's expiry); failures are
//! not, so a revoked token is refused as soon as its cache entry is gone. A Keystone that
//! cannot be reached, or answers anything unexpected, is `Unavailable`, never a guess.
//!
//! The HTTP client is ureq (blocking, a handful of small crates, no TLS unless the `tls`
//! feature is on), run on tokio's blocking pool: validations are rare thanks to the cache, and
//! an async client would bring hyper's client side and a TLS stack for nothing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{Identity, IdentityError, TokenValidator, ValidateFuture};

/// How to reach Keystone and authenticate as the service.
#[derive(Clone, PartialEq, Eq)]
pub struct KeystoneOptions {
    /// Keystone's base URL, e.g. `http://127.0.0.1:5000` (a trailing `/v3` is accepted).
    pub url: String,
    /// The service user's name.
    pub service_user: String,
    /// The service user's password.
    pub service_password: String,
    /// The project the service token is scoped to (usually `service`).
    pub service_project: String,
    /// The domain id of the service user (`default`).
    pub user_domain: String,
    /// The domain id of the service project (`default`).
    pub project_domain: String,
    /// How long a validated token is trusted without asking Keystone again (keystonemiddleware's
    /// `token_cache_time`, 300 s). Zero disables the cache.
    pub cache_ttl: StdDuration,
    /// How many validated tokens are cached at most.
    pub cache_max_entries: usize,
    /// The timeout of each request to Keystone.
    pub timeout: StdDuration,
}

impl std::fmt::Debug for KeystoneOptions {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneOptions")
            .field("url", &self.url)
            .field("service_user", &self.service_user)
            .field("service_project", &self.service_project)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_max_entries", &self.cache_max_entries)
            .finish_non_exhaustive()
    }
}

/// The service credentials file (`--keystone-service-credentials`), TOML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    user: String,
    password: String,
    #[serde(default = "service")]
    project: String,
    #[serde(default = "default_domain")]
    user_domain: String,
    #[serde(default = "default_domain")]
    project_domain: String,
}

fn service() -> String {
    "service".into()
}

fn default_domain() -> String {
    "default".into()
}

impl KeystoneOptions {
    /// Options with keystonemiddleware's defaults (cache 300 s, 10 000 entries, 5 s timeout).
    pub fn new(url: &str, service_user: &str, service_password: &str) -> Self {
        KeystoneOptions {
            url: url.to_owned(),
            service_user: service_user.to_owned(),
            service_password: service_password.to_owned(),
            service_project: service(),
            user_domain: default_domain(),
            project_domain: default_domain(),
            cache_ttl: StdDuration::from_secs(300),
            cache_max_entries: 10_000,
            timeout: StdDuration::from_secs(5),
        }
    }

    /// Options from a TOML credentials file: `user`, `password`, and optionally `project`
    /// (`service`), `user_domain` and `project_domain` (`default`). A file keeps the password
    /// out of the process list.
    pub fn from_credentials_file(url: &str, path: &Path) -> Result<Self, IdentityError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            IdentityError::Internal(format!(
                "cannot read Keystone credentials {}: {error}",
                path.display()
            ))
        })?;
        let file: CredentialsFile = toml::from_str(&text).map_err(|error| {
            IdentityError::Internal(format!(
                "Keystone credentials {} are not valid TOML (user, password, project, \
                 user_domain, project_domain): {error}",
                path.display()
            ))
        })?;
        Ok(KeystoneOptions {
            service_project: file.project,
            user_domain: file.user_domain,
            project_domain: file.project_domain,
            ..KeystoneOptions::new(url, &file.user, &file.password)
        })
    }

    fn base(&self) -> &str {
        let url = self.url.trim_end_matches('/');
        url.strip_suffix("/v3").unwrap_or(url)
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    identity: Identity,
    cached_at: DateTime<Utc>,
}

/// Validated tokens: at most `max_entries`, each trusted until `cached_at + ttl` or its
/// expiry, whichever comes first.
#[derive(Debug)]
pub(crate) struct TokenCache {
    ttl: Duration,
    max_entries: usize,
    entries: HashMap<String, CacheEntry>,
}

/// What the cache knows of a token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cached {
    /// Trusted without asking.
    Valid(Identity),
    /// Known to have expired.
    Expired,
    /// Ask Keystone.
    Unknown,
}

impl TokenCache {
    pub(crate) fn new(ttl: StdDuration, max_entries: usize) -> Self {
        TokenCache {
            ttl: Duration::from_std(ttl).unwrap_or(Duration::MAX),
            max_entries,
            entries: HashMap::new(),
        }
    }

    pub(crate) fn get(&mut self, token: &str, now: DateTime<Utc>) -> Cached {
        let Some(entry) = self.entries.get(token) else {
            return Cached::Unknown;
        };
        if entry.identity.expires <= now {
            self.entries.remove(token);
            Cached::Expired
        } else if entry.cached_at + self.ttl <= now {
            self.entries.remove(token);
            Cached::Unknown
        } else {
            Cached::Valid(entry.identity.clone())
        }
    }

    pub(crate) fn put(&mut self, token: &str, identity: Identity, now: DateTime<Utc>) {
        if self.max_entries == 0 || self.ttl <= Duration::zero() {
            return;
        }
        if !self.entries.contains_key(token) && self.entries.len() >= self.max_entries {
            let ttl = self.ttl;
            self.entries
                .retain(|_, entry| entry.identity.expires > now && entry.cached_at + ttl > now);
            if self.entries.len() >= self.max_entries {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.cached_at)
                    .map(|(token, _)| token.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(
            token.to_owned(),
            CacheEntry {
                identity,
                cached_at: now,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets a token (its holder revoked it): the next use asks Keystone.
    pub(crate) fn forget(&mut self, token: &str) {
        self.entries.remove(token);
    }
}

struct ServiceToken {
    id: String,
    expires: DateTime<Utc>,
}

struct Inner {
    options: KeystoneOptions,
    agent: ureq::Agent,
    service_token: Mutex<Option<ServiceToken>>,
    cache: Mutex<TokenCache>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Validates Keystone v3 tokens, with a bounded cache. Cheap to clone (shared state).
#[derive(Clone)]
pub struct KeystoneValidator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KeystoneValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneValidator")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

fn unreachable(error: ureq::Error) -> IdentityError {
    IdentityError::Unavailable(format!("Keystone did not answer: {error}"))
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    user: Named,
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
}

#[derive(Deserialize)]
struct ValidateBody {
    token: TokenBody,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, IdentityError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            IdentityError::Unavailable(format!(
                "Keystone sent an unreadable time {text:?}: {error}"
            ))
        })
}

impl Inner {
    fn service_token(&self, renew: bool) -> Result<String, IdentityError> {
        let mut current = lock(&self.service_token);
        if let Some(token) = current.as_ref() {
            // Renew a minute early so that no validation is sent with a token about to expire.
            if !renew && token.expires - Duration::seconds(60) > Utc::now() {
                return Ok(token.id.clone());
            }
        }
        *current = None;
        let options = &self.options;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": options.service_user,
                "domain": {"id": options.user_domain},
                "password": options.service_password,
            }}},
            "scope": {"project": {
                "name": options.service_project,
                "domain": {"id": options.project_domain},
            }},
        }});
        let mut response = self
            .agent
            .post(format!("{}/v3/auth/tokens?nocatalog", options.base()))
            .send_json(&body)
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        if status != 201 && status != 200 {
            return Err(IdentityError::Unavailable(format!(
                "Keystone refused the service credentials of user {:?} (HTTP {status})",
                options.service_user
            )));
        }
        let id = response
            .headers()
            .get("x-subject-token")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| IdentityError::Unavailable("Keystone sent no X-Subject-Token".into()))?;
        let body: Value = response.body_mut().read_json().map_err(unreachable)?;
        let expires = body
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .ok_or_else(|| IdentityError::Unavailable("Keystone sent no expires_at".into()))
            .and_then(parse_time)?;
        *current = Some(ServiceToken {
            id: id.clone(),
            expires,
        });
        Ok(id)
    }

    fn fetch(&self, token: &str) -> Result<Identity, IdentityError> {
        let refused = || {
            IdentityError::Unauthorized("The request you have made requires authentication.".into())
        };
        if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(refused());
        }
        for attempt in 0..2 {
            let service = self.service_token(attempt > 0)?;
            let mut response = self
                .agent
                .get(format!("{}/v3/auth/tokens?nocatalog", self.options.base()))
                .header("X-Auth-Token", &service)
                .header("X-Subject-Token", token)
                .header("OpenStack-Identity-Access-Rules", "1.0")
                .call()
                .map_err(unreachable)?;
            match response.status().as_u16() {
                200 => {
                    let body: ValidateBody = response.body_mut().read_json().map_err(|error| {
                        IdentityError::Unavailable(format!(
                            "Keystone sent an unreadable token: {error}"
                        ))
                    })?;
                    return identity_of(body.token, Utc::now());
                }
                // Expired, revoked, unknown, or its user disabled.
                404 => return Err(refused()),
                // Our service token: renew it and try once more.
                401 => {
                    *lock(&self.service_token) = None;
                    continue;
                }
                403 => {
                    return Err(IdentityError::Unavailable(format!(
                        "the service user {:?} may not validate tokens (identity:validate_token: \
                         give it the service or admin role)",
                        self.options.service_user
                    )))
                }
                status => {
                    return Err(IdentityError::Unavailable(format!(
                        "Keystone answered HTTP {status} to a token validation"
                    )))
                }
            }
        }
        Err(IdentityError::Unavailable(
            "Keystone refused a freshly issued service token".into(),
        ))
    }
}

impl Inner {
    /// `POST /v3/auth/tokens` with a user's password, unscoped in the request: Keystone scopes the
    /// token to the user's default project. 401 (unknown user, wrong password, disabled user:
    /// Keystone does not tell them apart) is `Unauthorized`; a token without a project is
    /// `Forbidden`, as in validation.
    fn login(&self, username: &str, password: &str) -> Result<(String, Identity), IdentityError> {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": username,
            "domain": {"id": self.options.user_domain},
            "password": password,
        }}}}});
        let mut response = self
            .agent
            .post(format!("{}/v3/auth/tokens?nocatalog", self.options.base()))
            .send_json(&body)
            .map_err(unreachable)?;
        match response.status().as_u16() {
            200 | 201 => {}
            // Keystone answers 400 to a malformed request, e.g. an empty user name.
            400 | 401 | 404 => {
                return Err(IdentityError::Unauthorized(
                    "The user name or password is not correct.".into(),
                ))
            }
            status => {
                return Err(IdentityError::Unavailable(format!(
                    "Keystone answered HTTP {status} to a password authentication"
                )))
            }
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| IdentityError::Unavailable("Keystone sent no X-Subject-Token".into()))?;
        let body: ValidateBody = response.body_mut().read_json().map_err(|error| {
            IdentityError::Unavailable(format!("Keystone sent an unreadable token: {error}"))
        })?;
        Ok((token, identity_of(body.token, Utc::now())?))
    }

    /// `DELETE /v3/auth/tokens`: a user may revoke its own token.
    fn revoke(&self, token: &str) -> Result<(), IdentityError> {
        let response = self
            .agent
            .delete(format!("{}/v3/auth/tokens", self.options.base()))
            .header("X-Auth-Token", token)
            .header("X-Subject-Token", token)
            .call()
            .map_err(unreachable)?;
        match response.status().as_u16() {
            // 404: already expired or revoked, nothing left to end.
            204 | 200 | 404 => Ok(()),
            status => Err(IdentityError::Unavailable(format!(
                "Keystone answered HTTP {status} to a token revocation"
            ))),
        }
    }
}

fn identity_of(token: TokenBody, now: DateTime<Utc>) -> Result<Identity, IdentityError> {
    let expires = parse_time(&token.expires_at)?;
    if expires <= now {
        return Err(IdentityError::token_not_authenticated());
    }
    let project = token
        .project
        .ok_or_else(|| IdentityError::Forbidden("The token is not scoped to a project.".into()))?;
    Ok(Identity {
        tenant: project.id,
        user_id: token.user.id,
        user_name: token.user.name,
        roles: token.roles.into_iter().map(|role| role.name).collect(),
        expires,
    })
}

impl KeystoneValidator {
    /// A validator; no request is made until the first validation.
    pub fn new(options: KeystoneOptions) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let cache = TokenCache::new(options.cache_ttl, options.cache_max_entries);
        KeystoneValidator {
            inner: Arc::new(Inner {
                options,
                agent,
                service_token: Mutex::new(None),
                cache: Mutex::new(cache),
            }),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &KeystoneOptions {
        &self.inner.options
    }

    /// How many validated tokens are cached.
    pub fn cached(&self) -> usize {
        lock(&self.inner.cache).len()
    }

    /// Validates `token`: from the cache while trusted, else by asking Keystone on a blocking
    /// thread.
    pub async fn validate_token(&self, token: &str) -> Result<Identity, IdentityError> {
        match lock(&self.inner.cache).get(token, Utc::now()) {
            Cached::Valid(identity) => return Ok(identity),
            Cached::Expired => return Err(IdentityError::token_not_authenticated()),
            Cached::Unknown => {}
        }
        let inner = Arc::clone(&self.inner);
        let owned = token.to_owned();
        let result = tokio::task::spawn_blocking(move || inner.fetch(&owned))
            .await
            .map_err(|error| IdentityError::Internal(format!("validation task failed: {error}")))?;
        if let Ok(identity) = &result {
            lock(&self.inner.cache).put(token, identity.clone(), Utc::now());
        }
        result
    }
}

impl KeystoneValidator {
    /// Authenticates a user of the service's user domain by password (for a login page): the
    /// token, scoped to the user's default project, and whom it stands for. The token is
    /// validated like any other when it is used.
    pub async fn login_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(String, Identity), IdentityError> {
        let inner = Arc::clone(&self.inner);
        let (username, password) = (username.to_owned(), password.to_owned());
        tokio::task::spawn_blocking(move || inner.login(&username, &password))
            .await
            .map_err(|error| IdentityError::Internal(format!("login task failed: {error}")))?
    }

    /// Revokes `token` at Keystone (its holder ends it) and drops it from the cache, so that it
    /// is refused at once; an unknown token is not an error.
    pub async fn revoke(&self, token: &str) -> Result<(), IdentityError> {
        lock(&self.inner.cache).forget(token);
        let inner = Arc::clone(&self.inner);
        let token = token.to_owned();
        tokio::task::spawn_blocking(move || inner.revoke(&token))
            .await
            .map_err(|error| IdentityError::Internal(format!("revoke task failed: {error}")))?
    }
}

impl TokenValidator for KeystoneValidator {
    fn validate<'a>(&'a self, token: &'a str) -> ValidateFuture<'a> {
        Box::pin(self.validate_token(token))
    }
}

#[cfg(test)]
mod tests;
