//! Who may log in to the console: the [`Authenticator`] port and its built-in identity adapter.
//!
//! The console never checks a password itself. It hands the credential to the configured
//! identity and keeps what comes back (a token and its expiry) on the server side, keyed by a
//! random session id; the browser only ever holds that id.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use imgshare_identity::{AuthRequest, BuiltinIdentity, Credential, ErrorKind, KeystoneValidator};
use thiserror::Error;

/// What the login form sends.
#[derive(Clone, PartialEq, Eq)]
pub enum LoginCredential {
    /// User name and password.
    Password {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// User name and API key.
    ApiKey {
        /// The user name.
        username: String,
        /// The API key.
        api_key: String,
    },
}

impl std::fmt::Debug for LoginCredential {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, username) = match self {
            LoginCredential::Password { username, .. } => ("Password", username),
            LoginCredential::ApiKey { username, .. } => ("ApiKey", username),
        };
        f.debug_struct(kind).field("username", username).finish()
    }
}

/// A successful login: the token the console acts with, and whom it stands for.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginGrant {
    /// The token sent as `X-Auth-Token` to the API.
    pub token: String,
    /// When the token, and so the console session, ends.
    pub expires: DateTime<Utc>,
    /// The account (tenant) of the user.
    pub tenant: String,
    /// The user's name, shown in the page header.
    pub user_name: String,
    /// The user's roles, used only to leave out actions the API would refuse.
    pub roles: Vec<String>,
}

impl std::fmt::Debug for LoginGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGrant")
            .field("expires", &self.expires)
            .field("tenant", &self.tenant)
            .field("user_name", &self.user_name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// Why a login failed. The page shows [`LoginError::message`]; a wrong secret and an unknown
/// user give the same message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong secret (deliberately not told apart).
    #[error("invalid credentials")]
    Invalid,
    /// The user or its account is disabled (only said after the right secret).
    #[error("user disabled")]
    Disabled,
    /// Too many failed attempts for this user name.
    #[error("too many failed attempts")]
    OverLimit,
    /// The identity service cannot be reached or failed.
    #[error("identity unavailable: {0}")]
    Unavailable(String),
    /// The identity takes passwords only (Keystone).
    #[error("API keys are not accepted")]
    ApiKeyUnsupported,
    /// The right secret, but the token is not scoped to a project (a Keystone user without a
    /// default project): there is no account to act as.
    #[error("no project")]
    NoProject,
}

impl LoginError {
    /// The text the login page shows.
    pub fn message(&self) -> &'static str {
        match self {
            LoginError::Invalid => "The user name or the password (or API key) is not correct.",
            LoginError::Disabled => "This user is disabled.",
            LoginError::OverLimit => {
                "Too many failed attempts for this user name: wait a few minutes and try again."
            }
            LoginError::Unavailable(_) => {
                "The identity service is not available at the moment: try again later."
            }
            LoginError::ApiKeyUnsupported => {
                "This identity service takes a password, not an API key."
            }
            LoginError::NoProject => {
                "This user has no default project to act in: ask an administrator to set one."
            }
        }
    }
}

/// The future of [`Authenticator::login`].
pub type LoginFuture<'a> =
    Pin<Box<dyn Future<Output = Result<LoginGrant, LoginError>> + Send + 'a>>;
/// The future of [`Authenticator::logout`].
pub type LogoutFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The identity the console logs users in against.
pub trait Authenticator: Send + Sync {
    /// Exchanges a credential for a token.
    fn login(&self, credential: LoginCredential) -> LoginFuture<'_>;
    /// Ends `token` at the identity, if it supports that (best effort: the console session is
    /// dropped whatever happens).
    fn logout<'a>(&'a self, token: &'a str) -> LogoutFuture<'a>;
}

/// [`Authenticator`] over the built-in Rackspace v2.0 identity.
#[derive(Debug, Clone)]
pub struct BuiltinAuthenticator {
    identity: Arc<BuiltinIdentity>,
}

impl BuiltinAuthenticator {
    /// Logs users in against `identity` (the same instance the API validates tokens with).
    pub fn new(identity: Arc<BuiltinIdentity>) -> Self {
        BuiltinAuthenticator { identity }
    }
}

fn login_error(error: &imgshare_identity::IdentityError) -> LoginError {
    match error.kind() {
        ErrorKind::Disabled => LoginError::Disabled,
        ErrorKind::OverLimit => LoginError::OverLimit,
        ErrorKind::Unavailable | ErrorKind::Internal => LoginError::Unavailable(error.to_string()),
        ErrorKind::Forbidden => LoginError::NoProject,
        _ => LoginError::Invalid,
    }
}

impl Authenticator for BuiltinAuthenticator {
    fn login(&self, credential: LoginCredential) -> LoginFuture<'_> {
        let identity = Arc::clone(&self.identity);
        Box::pin(async move {
            let credential = match credential {
                LoginCredential::Password { username, password } => {
                    Credential::Password { username, password }
                }
                LoginCredential::ApiKey { username, api_key } => {
                    Credential::ApiKey { username, api_key }
                }
            };
            let request = AuthRequest {
                credential,
                tenant: None,
            };
            // argon2 takes tens of milliseconds: keep it off the async workers.
            let access =
                tokio::task::spawn_blocking(move || identity.authenticate(&request, Utc::now()))
                    .await
                    .map_err(|error| LoginError::Unavailable(error.to_string()))?
                    .map_err(|error| login_error(&error))?;
            Ok(LoginGrant {
                token: access.token.id.clone(),
                expires: access.token.expires,
                tenant: access.token.tenant.clone(),
                user_name: access.user_name.clone(),
                roles: access.user.roles.clone(),
            })
        })
    }

    fn logout<'a>(&'a self, token: &'a str) -> LogoutFuture<'a> {
        // An already expired or revoked token has nothing left to end.
        let _ = self.identity.revoke_for(token, None, Utc::now());
        Box::pin(std::future::ready(()))
    }
}

/// [`Authenticator`] over Keystone v3: a password authentication (`POST /v3/auth/tokens`), the
/// token scoped to the user's default project; logout revokes the token.
#[derive(Debug, Clone)]
pub struct KeystoneAuthenticator {
    keystone: KeystoneValidator,
}

impl KeystoneAuthenticator {
    /// Logs users in against the Keystone `keystone` validates tokens with.
    pub fn new(keystone: KeystoneValidator) -> Self {
        KeystoneAuthenticator { keystone }
    }
}

impl Authenticator for KeystoneAuthenticator {
    fn login(&self, credential: LoginCredential) -> LoginFuture<'_> {
        Box::pin(async move {
            let LoginCredential::Password { username, password } = credential else {
                return Err(LoginError::ApiKeyUnsupported);
            };
            let (token, identity) = self
                .keystone
                .login_password(&username, &password)
                .await
                .map_err(|error| login_error(&error))?;
            Ok(LoginGrant {
                token,
                expires: identity.expires,
                tenant: identity.tenant,
                user_name: identity.user_name,
                roles: identity.roles,
            })
        })
    }

    fn logout<'a>(&'a self, token: &'a str) -> LogoutFuture<'a> {
        Box::pin(async move {
            if let Err(error) = self.keystone.revoke(token).await {
                eprintln!("imgshare: console: logout: {error}");
            }
        })
    }
}
