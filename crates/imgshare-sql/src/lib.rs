//! The SQL seam: the few operations imgshare's log and read models ask of a database, implemented
//! once per backend. Code above it writes its SQL once, with `?N` placeholders and the subset of
//! SQL both SQLite and PostgreSQL accept (`INSERT … ON CONFLICT`, `LIMIT`, no engine-specific
//! functions); each backend's differences (placeholders, how a writer is serialized, error codes,
//! column types) live in its own module here.
//!
//! Functions above the seam are generic over [`Sql`], so the SQLite path compiles to the same
//! calls as before the seam existed.

mod any;
mod sqlite;

#[cfg(feature = "postgres")]
pub mod postgres;

pub use any::AnyConn;

/// Which database is behind a connection, for the rare statement that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A parameter of a statement. Every column imgshare stores is an integer or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (`INTEGER` in SQLite, `BIGINT` in PostgreSQL).
    Int(i64),
    /// Text.
    Text(&'a str),
}

impl From<i64> for Value<'_> {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<u32> for Value<'_> {
    fn from(value: u32) -> Self {
        Value::Int(i64::from(value))
    }
}

impl From<bool> for Value<'_> {
    /// Booleans are stored as 0 and 1 on every backend.
    fn from(value: bool) -> Self {
        Value::Int(i64::from(value))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(value: &'a str) -> Self {
        Value::Text(value)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(value: &'a String) -> Self {
        Value::Text(value)
    }
}

impl<'a, T> From<Option<T>> for Value<'a>
where
    T: Into<Value<'a>>,
{
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// A statement's parameters: `params![a, b, c]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::Value<'_>] };
    ($($param:expr),+ $(,)?) => { &[$($crate::Value::from($param)),+] as &[$crate::Value<'_>] };
}

/// A failure below the seam. Non-exhaustive: which variants exist depends on the backends built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// SQLite's own error, kept whole so the store can classify it (busy, full, read-only…).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's own error, kept whole so the store can classify it by SQLSTATE.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] ::postgres::Error),
    /// A column that does not hold what the reader asked for (a damaged row, a wrong query).
    #[error("column {index}: {message}")]
    Column {
        /// The column's index in the result.
        index: usize,
        /// What was found instead.
        message: String,
    },
    /// A statement the backend cannot run as written (a placeholder out of range…).
    #[error("{0}")]
    Statement(String),
}

/// One result row. Columns are read by index, as integers or text; NULL reads as `None`.
pub trait Row {
    /// The column as an integer.
    fn int(&self, index: usize) -> Result<Option<i64>, SqlError>;
    /// The column as text.
    fn text(&self, index: usize) -> Result<Option<String>, SqlError>;
}

/// What [`RowExt::get`] can read.
pub trait FromColumn: Sized {
    /// Reads the column `index` of `row`.
    fn from_column(row: &(impl Row + ?Sized), index: usize) -> Result<Self, SqlError>;
}

fn not_null<T>(value: Option<T>, index: usize) -> Result<T, SqlError> {
    value.ok_or_else(|| SqlError::Column {
        index,
        message: "NULL where a value is required".to_owned(),
    })
}

impl FromColumn for i64 {
    fn from_column(row: &(impl Row + ?Sized), index: usize) -> Result<Self, SqlError> {
        not_null(row.int(index)?, index)
    }
}

impl FromColumn for Option<i64> {
    fn from_column(row: &(impl Row + ?Sized), index: usize) -> Result<Self, SqlError> {
        row.int(index)
    }
}

impl FromColumn for u32 {
    fn from_column(row: &(impl Row + ?Sized), index: usize) -> Result<Self, SqlError> {
        let value = not_null(row.int(index)?, index)?;
        u32::try_from(value).map_err(|_| SqlError::Column {
            index,
            message: format!("{value} is out of range for u32"),
        })
    }
}

impl FromColumn for bool {
    fn from_column(row: &(impl Row + ?Sized), index: usize) -> Result<Self, SqlError> {
        Ok(not_null(row.int(index)?, index)? != 0)
    }
}

impl FromColumn for String {
    fn from_column(row: &(impl Row + ?Sized), index: usize) -> Result<Self, SqlError> {
        not_null(row.text(index)?, index)
    }
}

impl FromColumn for Option<String> {
    fn from_column(row: &(impl Row + ?Sized), index: usize) -> Result<Self, SqlError> {
        row.text(index)
    }
}

/// Typed access to a row's columns.
pub trait RowExt: Row {
    /// The column `index` as `T`.
    fn get<T: FromColumn>(&self, index: usize) -> Result<T, SqlError> {
        T::from_column(self, index)
    }
}

impl<R: Row + ?Sized> RowExt for R {}

/// Whether a row visitor wants the next row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read on.
    Continue,
    /// Stop here; the rest of the result is not read.
    Stop,
}

/// A connection, as the code above the seam uses it. Statements are prepared once per connection
/// and cached by their text, so callers pass `&'static str`s or build a bounded set of texts.
///
/// Transactions: [`Sql::begin_write`] opens a transaction that holds the database's one write
/// lock until it ends (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock),
/// so writers are serialized the same way on both; savepoints nest inside it.
pub trait Sql {
    /// Which database this is.
    fn dialect(&self) -> Dialect;

    /// Runs one statement; the number of rows it changed.
    fn execute(&self, sql: &str, params: &[Value<'_>]) -> Result<u64, SqlError>;

    /// Runs a query and hands each row to `each` until it says [`Flow::Stop`]. The outer error is
    /// the database's, the inner one the visitor's.
    fn query_each<E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        each: impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError>;

    /// As [`Sql::query_each`], for a query whose result may not fit in memory (a scan of the whole
    /// log): the rows reach `each` in bounded batches as the database produces them. SQLite's
    /// `query_each` already steps row by row, so this is the same; PostgreSQL reads through a
    /// cursor (one more round trip per batch, so short queries use `query_each`). `each` may run
    /// statements of its own on this connection, but must not open or end a transaction.
    fn scan_each<E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        each: impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError> {
        self.query_each(sql, params, each)
    }

    /// Runs statements without parameters or results (schema, `BEGIN`), not cached.
    fn batch(&self, sql: &str) -> Result<(), SqlError>;

    /// Whether a transaction is open.
    fn in_transaction(&self) -> bool;

    /// Opens a transaction holding the write lock (see the trait's documentation).
    fn begin_write(&self) -> Result<(), SqlError>;

    /// Commits the open transaction.
    fn commit(&self) -> Result<(), SqlError>;

    /// Rolls the open transaction back.
    fn rollback(&self) -> Result<(), SqlError>;

    /// Opens the savepoint `name` inside the open transaction.
    fn savepoint(&self, name: &'static str) -> Result<(), SqlError>;

    /// Keeps what was done since the savepoint `name` and closes it.
    fn release(&self, name: &'static str) -> Result<(), SqlError>;

    /// Undoes what was done since the savepoint `name` and closes it.
    fn rollback_to(&self, name: &'static str) -> Result<(), SqlError>;

    /// The first row of a query, mapped by `map` (`None` when there is no row).
    fn query_first<T, E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        map: impl FnOnce(&dyn Row) -> Result<T, E>,
    ) -> Result<Result<Option<T>, E>, SqlError> {
        let mut map = Some(map);
        let mut found = None;
        let visited = self.query_each(sql, params, |row| {
            if let Some(map) = map.take() {
                found = Some(map(row)?);
            }
            Ok(Flow::Stop)
        })?;
        Ok(visited.map(|()| found))
    }

    /// Every row of a query, mapped by `map`.
    fn query_all<T, E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        mut map: impl FnMut(&dyn Row) -> Result<T, E>,
    ) -> Result<Result<Vec<T>, E>, SqlError> {
        let mut all = Vec::new();
        let visited = self.query_each(sql, params, |row| {
            all.push(map(row)?);
            Ok(Flow::Continue)
        })?;
        Ok(visited.map(|()| all))
    }
}
