//! The built-in identity: Rackspace Cloud Identity v2.0 authentication over a users file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::catalog::Catalog;
use crate::limit::{FailureLimit, FailureLimiter};
use crate::secret::{hash_secret, verify_secret, HashStrength};
use crate::tokens::{IssuedToken, TokenTable};
use crate::users::{User, UsersError, UsersFile};
use crate::{Identity, IdentityError, TokenValidator, ValidateFuture};

/// Roles that may validate or revoke other users' tokens.
const ADMIN_ROLES: [&str; 2] = ["identity:admin", "identity:service-admin"];

const INVALID_JSON: &str = "Invalid json request body";
const NO_CREDENTIALS: &str =
    "Invalid request body: unable to parse Auth data. Please review XML or JSON formatting.";
const BAD_API_KEY: &str = "Username or api key is invalid.";
const BAD_PASSWORD: &str = "Unable to authenticate user with credentials provided.";

/// Settings of the built-in identity.
#[derive(Debug, Clone)]
pub struct BuiltinOptions {
    /// How long a token is valid (Rackspace: 24 h).
    pub token_lifetime: Duration,
    /// The per-user limit on failed authentications.
    pub failure_limit: FailureLimit,
    /// The endpoints listed in every token's service catalog.
    pub catalog: Catalog,
}

impl Default for BuiltinOptions {
    fn default() -> Self {
        BuiltinOptions {
            token_lifetime: Duration::hours(24),
            failure_limit: FailureLimit::default(),
            catalog: Catalog::default(),
        }
    }
}

/// The credential of a `POST /v2.0/tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `RAX-KSKEY:apiKeyCredentials`.
    ApiKey {
        /// The user name.
        username: String,
        /// The API key.
        api_key: String,
    },
    /// `passwordCredentials`.
    Password {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// `token` (re-scoping an existing token; a tenant is required).
    Token {
        /// The existing token's id.
        id: String,
    },
}

/// A parsed `POST /v2.0/tokens` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The credential.
    pub credential: Credential,
    /// `auth.tenantId`, `auth.tenantName` (at most one; for cloud accounts name = id).
    pub tenant: Option<String>,
}

fn string_field(object: &Map<String, Value>, key: &str) -> Result<Option<String>, IdentityError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(IdentityError::BadRequest(INVALID_JSON.into())),
    }
}

impl AuthRequest {
    /// Parses the body with Rackspace's rules and messages; a tenant inside the credential
    /// object is ignored, as Rackspace Identity does.
    pub fn parse(body: &[u8]) -> Result<Self, IdentityError> {
        let bad = |message: &str| IdentityError::BadRequest(message.into());
        let value: Value = serde_json::from_slice(body).map_err(|_| bad(INVALID_JSON))?;
        let top = value.as_object().ok_or_else(|| bad(INVALID_JSON))?;
        let auth = match top.iter().next() {
            Some((key, Value::Object(auth))) if key == "auth" => auth,
            _ => return Err(bad(INVALID_JSON)),
        };
        let tenant_id = string_field(auth, "tenantId")?;
        let tenant_name = string_field(auth, "tenantName")?;
        if tenant_id.is_some() && tenant_name.is_some() {
            return Err(bad(
                "Invalid request. Specify tenantId OR tenantName, not both.",
            ));
        }
        let tenant = tenant_id.or(tenant_name);
        let user_secret = |key: &str, secret: &str| -> Result<(String, String), IdentityError> {
            let object = auth
                .get(key)
                .and_then(Value::as_object)
                .ok_or_else(|| bad(NO_CREDENTIALS))?;
            match (
                string_field(object, "username")?,
                string_field(object, secret)?,
            ) {
                (Some(username), Some(secret)) => Ok((username, secret)),
                _ => Err(bad(NO_CREDENTIALS)),
            }
        };
        let credential = if auth.contains_key("RAX-KSKEY:apiKeyCredentials") {
            let (username, api_key) = user_secret("RAX-KSKEY:apiKeyCredentials", "apiKey")?;
            Credential::ApiKey { username, api_key }
        } else if auth.contains_key("passwordCredentials") {
            let (username, password) = user_secret("passwordCredentials", "password")?;
            Credential::Password { username, password }
        } else if let Some(token) = auth.get("token") {
            let id = token
                .as_object()
                .map(|token| string_field(token, "id"))
                .transpose()?
                .flatten()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| bad("Invalid Token Id"))?;
            if tenant.is_none() {
                return Err(bad("Invalid request. Specify tenantId or tenantName."));
            }
            Credential::Token { id }
        } else if auth.keys().any(|key| key.ends_with("Credentials")) {
            return Err(bad("Unknown credential type"));
        } else {
            return Err(bad(NO_CREDENTIALS));
        };
        Ok(AuthRequest { credential, tenant })
    }
}

/// A successful authentication or validation: what `access` is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The token.
    pub token: IssuedToken,
    /// The user's name.
    pub user_name: String,
    /// The user's record at the time.
    pub user: User,
    /// The tenant's Cloud Files account.
    pub storage_account: String,
    /// `RAX-AUTH:defaultRegion`.
    pub default_region: Option<String>,
}

fn rackspace_time(time: DateTime<Utc>) -> String {
    // Always UTC with milliseconds and `Z`: the one form every client's parser accepts.
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Access {
    /// The identity the token stands for.
    pub fn identity(&self) -> Identity {
        Identity {
            tenant: self.token.tenant.clone(),
            user_id: self.user.id.clone(),
            user_name: self.user_name.clone(),
            roles: self.user.roles.clone(),
            expires: self.token.expires,
        }
    }

    /// The `{"access": …}` document; `catalog` None omits `serviceCatalog`.
    pub fn to_json(&self, catalog: Option<&Catalog>) -> Value {
        let tenant = &self.token.tenant;
        let mut roles = vec![
            json!({"id": "5", "name": "object-store:default",
                   "description": "A Role that allows a user access to keystone Service methods",
                   "tenantId": self.storage_account}),
            json!({"id": "6", "name": "compute:default",
                   "description": "A Role that allows a user access to keystone Service methods",
                   "tenantId": tenant}),
        ];
        roles.extend(self.user.roles.iter().map(|role| {
            json!({"id": role, "name": role, "description": format!("imgshare role {role}")})
        }));
        let mut user = json!({
            "id": self.user.id,
            "name": self.user_name,
            "roles": roles,
            "RAX-AUTH:domainId": tenant,
        });
        if let (Some(region), Some(object)) = (&self.default_region, user.as_object_mut()) {
            object.insert("RAX-AUTH:defaultRegion".into(), json!(region));
        }
        let mut access = json!({
            "token": {
                "id": self.token.id,
                "expires": rackspace_time(self.token.expires),
                "tenant": {"id": tenant, "name": tenant},
                "RAX-AUTH:authenticatedBy": [self.token.authenticated_by],
            },
        });
        if let (Some(catalog), Some(object)) = (catalog, access.as_object_mut()) {
            object.insert(
                "serviceCatalog".into(),
                catalog.render(tenant, &self.storage_account),
            );
        }
        if let Some(object) = access.as_object_mut() {
            object.insert("user".into(), user);
        }
        json!({ "access": access })
    }
}

/// The embedded identity service: users from a users file, tokens in memory.
#[derive(Debug)]
pub struct BuiltinIdentity {
    users: RwLock<Arc<UsersFile>>,
    tokens: Mutex<TokenTable>,
    limiter: Mutex<FailureLimiter>,
    options: BuiltinOptions,
    // The users file `load` read, re-read by `TokenValidator::reload`.
    users_path: Option<PathBuf>,
    // Verified against when the user or its secret does not exist, so that an unknown user
    // costs the same time as a wrong key and cannot be told apart.
    dummy_hash: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BuiltinIdentity {
    /// An identity over `users`.
    pub fn new(users: UsersFile, options: BuiltinOptions) -> Result<Self, IdentityError> {
        users
            .check()
            .map_err(|error| IdentityError::Internal(error.to_string()))?;
        let dummy_hash = hash_secret("imgshare-no-such-user", HashStrength::Standard)?;
        Ok(BuiltinIdentity {
            users: RwLock::new(Arc::new(users)),
            tokens: Mutex::new(TokenTable::new()),
            limiter: Mutex::new(FailureLimiter::new(options.failure_limit)),
            options,
            users_path: None,
            dummy_hash,
        })
    }

    /// An identity over the users file at `path` (refused if it does not load).
    pub fn load(path: &Path, options: BuiltinOptions) -> Result<Self, UsersError> {
        let users = UsersFile::load(path)?;
        let mut identity = BuiltinIdentity::new(users, options)
            .map_err(|error| UsersError::Secret(error.to_string()))?;
        identity.users_path = Some(path.to_owned());
        Ok(identity)
    }

    /// Records the users file `users` came from, for [`TokenValidator::reload`].
    pub fn with_users_path(mut self, path: &Path) -> Self {
        self.users_path = Some(path.to_owned());
        self
    }

    /// The users file this identity was loaded from, if any.
    pub fn users_path(&self) -> Option<&Path> {
        self.users_path.as_deref()
    }

    /// Re-reads the users file; on any error the users in use stay as they were. Tokens of
    /// users that are gone or disabled stop validating at once; a reset key does not end the
    /// tokens issued before it.
    pub fn reload_from(&self, path: &Path) -> Result<(), UsersError> {
        let users = UsersFile::load(path)?;
        self.replace_users(users);
        Ok(())
    }

    /// Replaces the users in use.
    pub fn replace_users(&self, users: UsersFile) {
        let mut current = self.users.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(users);
    }

    /// The options in use.
    pub fn options(&self) -> &BuiltinOptions {
        &self.options
    }

    fn users(&self) -> Arc<UsersFile> {
        Arc::clone(&self.users.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Authenticates `request` at `now`: a new token, or the refusal Rackspace would send.
    /// Runs argon2 (tens of milliseconds): call it on a blocking thread.
    pub fn authenticate(
        &self,
        request: &AuthRequest,
        now: DateTime<Utc>,
    ) -> Result<Access, IdentityError> {
        let (username, secret, is_key) = match &request.credential {
            Credential::ApiKey { username, api_key } => (username, api_key, true),
            Credential::Password { username, password } => (username, password, false),
            Credential::Token { id } => return self.reauthenticate(id, request, now),
        };
        if let Some(retry_at) = lock(&self.limiter).blocked_until(username, now) {
            eprintln!("imgshare: identity: authentication of user {username:?} refused: over the failure limit");
            return Err(IdentityError::OverLimit { retry_at });
        }
        let users = self.users();
        let user = users.user(username);
        let hash = user.and_then(|user| {
            if is_key {
                user.api_key_hash.as_deref()
            } else {
                user.password_hash.as_deref()
            }
        });
        let matches = verify_secret(secret, hash.unwrap_or(&self.dummy_hash)) && hash.is_some();
        let user = match (matches, user) {
            (true, Some(user)) => user,
            _ => {
                lock(&self.limiter).record_failure(username, now);
                let method = if is_key { "API key" } else { "password" };
                eprintln!(
                    "imgshare: identity: failed {method} authentication for user {username:?}"
                );
                let message = if is_key { BAD_API_KEY } else { BAD_PASSWORD };
                return Err(IdentityError::Unauthorized(message.into()));
            }
        };
        lock(&self.limiter).clear(username);
        let by = if is_key { "APIKEY" } else { "PASSWORD" };
        self.issue(&users, username, user, request.tenant.as_deref(), by, now)
    }

    fn reauthenticate(
        &self,
        id: &str,
        request: &AuthRequest,
        now: DateTime<Utc>,
    ) -> Result<Access, IdentityError> {
        let token = lock(&self.tokens)
            .get(id, now)
            .ok_or_else(IdentityError::token_not_authenticated)?;
        let users = self.users();
        let user = users
            .user(&token.user_name)
            .ok_or_else(IdentityError::token_not_authenticated)?;
        self.issue(
            &users,
            &token.user_name,
            user,
            request.tenant.as_deref(),
            "TOKEN",
            now,
        )
    }

    fn issue(
        &self,
        users: &UsersFile,
        username: &str,
        user: &User,
        tenant: Option<&str>,
        by: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Access, IdentityError> {
        let account = users.account(&user.account);
        if !user.enabled || !account.is_some_and(|account| account.enabled) {
            return Err(IdentityError::Disabled(username.to_owned()));
        }
        if let Some(tenant) = tenant.filter(|tenant| *tenant != user.account) {
            return Err(IdentityError::Unauthorized(format!(
                "Tenant with Name/Id: '{tenant}' is not valid for User '{username}' (id: '{}')",
                user.id
            )));
        }
        let token = lock(&self.tokens).issue(
            username,
            &user.account,
            by,
            now,
            self.options.token_lifetime,
        )?;
        Ok(self.access(users, token, user))
    }

    fn access(&self, users: &UsersFile, token: IssuedToken, user: &User) -> Access {
        let storage_account = users
            .account(&user.account)
            .and_then(|account| account.storage_account.clone())
            .unwrap_or_else(|| format!("MossoCloudFS_{}", user.account));
        let default_region = user
            .default_region
            .clone()
            .or_else(|| self.options.catalog.default_region().map(str::to_owned));
        Access {
            user_name: token.user_name.clone(),
            token,
            user: user.clone(),
            storage_account,
            default_region,
        }
    }

    /// The access of a valid token at `now`: the token must be known, unexpired, and its
    /// user still present and enabled.
    pub fn lookup(&self, id: &str, now: DateTime<Utc>) -> Result<Access, IdentityError> {
        let token = lock(&self.tokens)
            .get(id, now)
            .ok_or_else(IdentityError::token_not_authenticated)?;
        let users = self.users();
        let user = users
            .user(&token.user_name)
            .filter(|user| user.enabled)
            .filter(|user| users.account(&user.account).is_some_and(|a| a.enabled))
            .ok_or_else(IdentityError::token_not_authenticated)?;
        Ok(self.access(&users, token, user))
    }

    fn is_admin(access: &Access) -> bool {
        access
            .user
            .roles
            .iter()
            .any(|role| ADMIN_ROLES.contains(&role.as_str()))
    }

    /// `GET /v2.0/tokens/{id}` by the holder of `caller`: allowed for the token itself or an
    /// identity admin; `belongs_to` must be the token's tenant.
    pub fn validate_for(
        &self,
        caller: &str,
        id: &str,
        belongs_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Access, IdentityError> {
        let caller = self.lookup(caller, now)?;
        if caller.token.id != id && !Self::is_admin(&caller) {
            return Err(IdentityError::Forbidden(
                "Not authorized to validate other users' tokens.".into(),
            ));
        }
        if id.chars().any(char::is_whitespace) {
            return Err(IdentityError::TokenNotFound);
        }
        let access = self
            .lookup(id, now)
            .map_err(|_| IdentityError::TokenNotFound)?;
        if belongs_to.is_some_and(|tenant| tenant != access.token.tenant) {
            return Err(IdentityError::TokenNotFound);
        }
        Ok(access)
    }

    /// `DELETE /v2.0/tokens[/{id}]` by the holder of `caller`: its own token, or any token for
    /// an identity admin.
    pub fn revoke_for(
        &self,
        caller: &str,
        id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        let access = self.lookup(caller, now)?;
        let id = id.unwrap_or(caller);
        if id != caller && !Self::is_admin(&access) {
            return Err(IdentityError::Forbidden(
                "Not authorized to revoke other users' tokens.".into(),
            ));
        }
        if lock(&self.tokens).revoke(id, now) {
            Ok(())
        } else {
            Err(IdentityError::TokenNotFound)
        }
    }

    /// Ends every token of `user_name` (e.g. after its key was reset or it was disabled).
    pub fn revoke_user(&self, user_name: &str) -> usize {
        lock(&self.tokens).revoke_user(user_name)
    }

    /// The identity behind `token` at `now` (a map lookup, no hashing).
    pub fn identify(&self, token: &str, now: DateTime<Utc>) -> Result<Identity, IdentityError> {
        self.lookup(token, now).map(|access| access.identity())
    }
}

impl TokenValidator for BuiltinIdentity {
    fn validate<'a>(&'a self, token: &'a str) -> ValidateFuture<'a> {
        let result = self.identify(token, Utc::now());
        Box::pin(std::future::ready(result))
    }

    fn reload(&self) -> Result<String, IdentityError> {
        let Some(path) = self.users_path.as_deref() else {
            return Ok("no users file to reload".into());
        };
        self.reload_from(path).map_err(|error| {
            IdentityError::Internal(format!("{error}; the users in use are kept"))
        })?;
        Ok(format!(
            "users file {} reloaded: {} users",
            path.display(),
            self.users().users.len()
        ))
    }
}

#[cfg(test)]
mod tests;
