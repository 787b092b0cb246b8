//! [`AnyConn`]: a borrowed connection of either backend, itself a [`Sql`], for code that is handed
//! a connection whose backend is chosen at run time (the engine's connections lent to this
//! workspace's tests) and must call the generic functions above the seam on it.

use crate::{Dialect, Flow, Row, Sql, SqlError, Value};

/// A connection of whichever backend, borrowed. Each call is passed to the connection inside, so
/// a function generic over [`Sql`] runs on it unchanged.
#[derive(Debug, Clone, Copy)]
pub enum AnyConn<'a> {
    /// A SQLite connection.
    Sqlite(&'a rusqlite::Connection),
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Postgres(&'a crate::postgres::PgConn),
}

impl<'a> From<&'a rusqlite::Connection> for AnyConn<'a> {
    fn from(conn: &'a rusqlite::Connection) -> Self {
        AnyConn::Sqlite(conn)
    }
}

#[cfg(feature = "postgres")]
impl<'a> From<&'a crate::postgres::PgConn> for AnyConn<'a> {
    fn from(conn: &'a crate::postgres::PgConn) -> Self {
        AnyConn::Postgres(conn)
    }
}

/// `$body` with `$conn` bound to the connection inside `$any`. The bodies call the trait's methods
/// by path: `rusqlite::Connection` has inherent methods of the same names (`execute`,
/// `savepoint`), which a method call would pick first.
macro_rules! inside {
    ($any:expr, |$conn:ident| $body:expr) => {
        match $any {
            AnyConn::Sqlite($conn) => $body,
            #[cfg(feature = "postgres")]
            AnyConn::Postgres($conn) => $body,
        }
    };
}

impl Sql for AnyConn<'_> {
    fn dialect(&self) -> Dialect {
        inside!(self, |conn| Sql::dialect(*conn))
    }

    fn execute(&self, sql: &str, params: &[Value<'_>]) -> Result<u64, SqlError> {
        inside!(self, |conn| Sql::execute(*conn, sql, params))
    }

    fn query_each<E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        each: impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError> {
        inside!(self, |conn| Sql::query_each(*conn, sql, params, each))
    }

    fn scan_each<E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        each: impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError> {
        inside!(self, |conn| Sql::scan_each(*conn, sql, params, each))
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        inside!(self, |conn| Sql::batch(*conn, sql))
    }

    fn in_transaction(&self) -> bool {
        inside!(self, |conn| Sql::in_transaction(*conn))
    }

    fn begin_write(&self) -> Result<(), SqlError> {
        inside!(self, |conn| Sql::begin_write(*conn))
    }

    fn commit(&self) -> Result<(), SqlError> {
        inside!(self, |conn| Sql::commit(*conn))
    }

    fn rollback(&self) -> Result<(), SqlError> {
        inside!(self, |conn| Sql::rollback(*conn))
    }

    fn savepoint(&self, name: &'static str) -> Result<(), SqlError> {
        inside!(self, |conn| Sql::savepoint(*conn, name))
    }

    fn release(&self, name: &'static str) -> Result<(), SqlError> {
        inside!(self, |conn| Sql::release(*conn, name))
    }

    fn rollback_to(&self, name: &'static str) -> Result<(), SqlError> {
        inside!(self, |conn| Sql::rollback_to(*conn, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{params, RowExt};

    #[test]
    fn a_sqlite_connection_behind_any_conn_runs_the_seams_calls() {
        let sqlite = rusqlite::Connection::open_in_memory().unwrap();
        let conn = AnyConn::from(&sqlite);
        assert_eq!(conn.dialect(), Dialect::Sqlite);
        conn.batch("CREATE TABLE t (n INTEGER, s TEXT)").unwrap();
        conn.begin_write().unwrap();
        assert!(conn.in_transaction());
        conn.execute("INSERT INTO t VALUES (?1, ?2)", params![1_i64, "one"])
            .unwrap();
        conn.savepoint("undone").unwrap();
        conn.execute("INSERT INTO t VALUES (?1, ?2)", params![2_i64, "two"])
            .unwrap();
        conn.rollback_to("undone").unwrap();
        conn.commit().unwrap();
        assert!(!conn.in_transaction());
        let rows = conn
            .query_all("SELECT n, s FROM t", params![], |row| {
                Ok::<_, SqlError>((row.get::<i64>(0)?, row.get::<String>(1)?))
            })
            .unwrap()
            .unwrap();
        assert_eq!(rows, [(1, "one".to_owned())]);
    }
}
