//! Why an authentication or a validation failed, classified for the caller.

use chrono::{DateTime, Utc};
use thiserror::Error;

/// How a caller should treat an [`IdentityError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request itself is malformed.
    BadRequest,
    /// Unknown or wrong credentials, or an unknown, expired or revoked token.
    Unauthorized,
    /// The user exists but is disabled.
    Disabled,
    /// Valid credentials or token, but not allowed for this request.
    Forbidden,
    /// A token id that is not known (validation of another token).
    NotFound,
    /// Too many failed authentications for this user recently.
    OverLimit,
    /// The identity service (Keystone) could not be reached or answered unexpectedly.
    Unavailable,
    /// A local failure (e.g. the random source).
    Internal,
}

/// An identity failure. The messages are the ones Rackspace Identity sends.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// A malformed request, with the message to show.
    #[error("{0}")]
    BadRequest(String),
    /// Authentication or validation refused, with the message to show. The same message is
    /// used for an unknown user and a wrong secret, so that users cannot be enumerated.
    #[error("{0}")]
    Unauthorized(String),
    /// The user is disabled.
    #[error("User '{0}' is disabled.")]
    Disabled(String),
    /// Allowed to authenticate, not to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The token asked about is not known.
    #[error("Token not found.")]
    TokenNotFound,
    /// Too many failures for this user: refused until `retry_at`.
    #[error("Too many failed authentications for this user; retry after {retry_at}")]
    OverLimit {
        /// When the user may try again.
        retry_at: DateTime<Utc>,
    },
    /// The identity service is unreachable or broken.
    #[error("The identity service is temporarily unavailable: {0}")]
    Unavailable(String),
    /// A local failure.
    #[error("identity internal error: {0}")]
    Internal(String),
}

impl IdentityError {
    /// The classification a caller maps to its own answer.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::BadRequest(_) => ErrorKind::BadRequest,
            IdentityError::Unauthorized(_) => ErrorKind::Unauthorized,
            IdentityError::Disabled(_) => ErrorKind::Disabled,
            IdentityError::Forbidden(_) => ErrorKind::Forbidden,
            IdentityError::TokenNotFound => ErrorKind::NotFound,
            IdentityError::OverLimit { .. } => ErrorKind::OverLimit,
            IdentityError::Unavailable(_) => ErrorKind::Unavailable,
            IdentityError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The refusal of an unknown, expired or revoked token.
    pub(crate) fn token_not_authenticated() -> Self {
        IdentityError::Unauthorized("Token not authenticated.".into())
    }
}
