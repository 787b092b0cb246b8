//! The projection's errors. A SQLite failure is carried as an opaque [`SqliteError`], any other
//! database's as an opaque [`DatabaseError`]: their message and source chain are there for logs,
//! but no driver type is part of this crate's API, so a new release of a database binding is not
//! a breaking change of it.

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

/// A failure of a database other than SQLite (PostgreSQL) under the read models.
pub struct DatabaseError(imgshare_sql::SqlError);

impl DatabaseError {
    /// The seam's own error, for the store that classifies it.
    #[cfg(feature = "internals")]
    pub fn as_sql_error(&self) -> &imgshare_sql::SqlError {
        &self.0
    }
}

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DatabaseError {
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
    /// Another database (PostgreSQL) failed, or returned a row the read models cannot read.
    #[error("projection storage error: {0}")]
    Database(#[source] DatabaseError),
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
            ProjectionError::Sqlite(_)
            | ProjectionError::Database(_)
            | ProjectionError::Corrupt { .. } => ErrorKind::Internal,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProjectionError::BadQuery(_) => "bad_query",
            ProjectionError::Sqlite(_) => "projection_storage_error",
            ProjectionError::Database(_) => "projection_database_error",
            ProjectionError::Corrupt { .. } => "projection_corrupt",
        }
    }
}

/// `.sql()` on a result of the SQL seam: its error as a [`ProjectionError`]. A crate-private
/// conversion instead of a public `From<SqlError>`, which would put the drivers' types in the API.
pub(crate) trait SqlResult<T> {
    fn sql(self) -> Result<T, ProjectionError>;
}

impl<T> SqlResult<T> for Result<T, imgshare_sql::SqlError> {
    fn sql(self) -> Result<T, ProjectionError> {
        self.map_err(|error| match error {
            // SQLite's error stays what it was before the seam, for the store's classification.
            imgshare_sql::SqlError::Sqlite(error) => ProjectionError::Sqlite(SqliteError(error)),
            other => ProjectionError::Database(DatabaseError(other)),
        })
    }
}
