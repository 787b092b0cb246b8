//! The projection's errors. A SQLite failure is carried as an opaque [`SqliteError`]: its
//! message and source chain are there for logs, but no SQLite type is part of this crate's API,
//! so a new release of the SQLite binding is not a breaking change of it.

use std::fmt;

use imgshare_core::ErrorKind;
use thiserror::Error;

/// A failure of the SQLite database under the read models or the log.
pub struct SqliteError(rusqlite::Error);

impl SqliteError {
    /// The binding's own error, for the store that classifies it (busy, full, read-only).
    #[cfg(feature = "internals")]
    pub fn as_rusqlite(&self) -> &rusqlite::Error {
        &self.0
    }

    /// Wraps the binding's error.
    #[cfg(feature = "internals")]
    pub fn new(error: rusqlite::Error) -> Self {
        SqliteError(error)
    }
}

impl fmt::Debug for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Why a projection read or write failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// SQLite failed.
    #[error("projection storage error: {0}")]
    Sqlite(#[source] SqliteError),
    /// A row holds a value the domain does not know; the tables need a rebuild.
    #[error("projection row for {id} is unreadable: {reason}")]
    Corrupt {
        /// The image or task id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The query string is invalid, or names a marker the caller cannot use.
    #[error("{0}")]
    BadQuery(String),
}

impl ProjectionError {
    /// What sort of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProjectionError::BadQuery(_) => ErrorKind::Invalid,
            ProjectionError::Sqlite(_) | ProjectionError::Corrupt { .. } => ErrorKind::Internal,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProjectionError::BadQuery(_) => "bad_query",
            ProjectionError::Sqlite(_) => "projection_storage_error",
            ProjectionError::Corrupt { .. } => "projection_corrupt",
        }
    }
}

/// `.sql()` on a SQLite result: its error as a [`ProjectionError`]. A crate-private conversion
/// instead of a public `From<rusqlite::Error>`, which would put the binding's type in the API.
pub(crate) trait SqlResult<T> {
    fn sql(self) -> Result<T, ProjectionError>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T, ProjectionError> {
        self.map_err(|error| ProjectionError::Sqlite(SqliteError(error)))
    }
}
