//! Identity for imgshare: who is behind an `X-Auth-Token`.
//!
//! Three sources of identity share one interface, [`TokenValidator`]:
//! - [`BuiltinIdentity`]: an embedded Rackspace Cloud Identity v2.0 (`POST /v2.0/tokens` with API
//!   keys or passwords from a [`UsersFile`], tokens held in memory), served by [`router`];
//! - [`KeystoneValidator`]: tokens issued by a real Keystone, validated with `GET /v3/auth/tokens`
//!   and cached for a bounded time;
//! - the server's static tokens file (implemented in the server).
//!
//! No type here carries an HTTP status except the v2.0 router, which owns its wire format.

#![warn(missing_docs)]

mod builtin;
mod catalog;
mod error;
mod keystone;
mod limit;
mod router;
mod secret;
mod tokens;
mod users;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

pub use builtin::{Access, AuthRequest, BuiltinIdentity, BuiltinOptions, Credential};
pub use catalog::{Catalog, RegionEndpoints};
pub use error::{ErrorKind, IdentityError};
pub use keystone::{KeystoneOptions, KeystoneValidator};
pub use limit::{FailureLimit, FailureLimiter};
pub use router::router;
pub use secret::{generate_api_key, generate_token, hash_secret, verify_secret, HashStrength};
pub use tokens::{IssuedToken, TokenTable};
pub use users::{Account, User, UserSummary, UsersError, UsersFile};

/// Who a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account (Rackspace tenant, Keystone project id) the token is scoped to.
    pub tenant: String,
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// Role names, exactly as the identity service spells them (e.g. `cloudImages:admin`,
    /// `member`).
    pub roles: Vec<String>,
    /// When the token stops being valid.
    pub expires: DateTime<Utc>,
}

/// The future [`TokenValidator::validate`] returns.
pub type ValidateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Identity, IdentityError>> + Send + 'a>>;

/// What the server's authentication layer calls for every request's `X-Auth-Token`.
///
/// Errors are classified by [`IdentityError::kind`]: `Unauthorized` (unknown, expired or revoked
/// token: 401), `Forbidden` (a valid token that cannot be used here, e.g. not scoped to a
/// project: 403), `Unavailable` (the identity service cannot be reached: 503, never a guess).
pub trait TokenValidator: Send + Sync + std::fmt::Debug {
    /// The identity behind `token`.
    fn validate<'a>(&'a self, token: &'a str) -> ValidateFuture<'a>;

    /// Re-reads whatever the validator was loaded from (the built-in identity's users file, a
    /// static tokens file) and returns a one-line summary for the log. On any error the data in
    /// use stays as it was. Validators with nothing to re-read (Keystone) only say so.
    fn reload(&self) -> Result<String, IdentityError> {
        Ok("nothing to reload".into())
    }
}
