//! SQLite behind the seam: a `rusqlite::Connection` is a [`Sql`] as it is.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::{Dialect, Flow, Row, Sql, SqlError, Value};

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(value) => ValueRef::Integer(*value),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}

impl Row for rusqlite::Row<'_> {
    fn int(&self, index: usize) -> Result<Option<i64>, SqlError> {
        Ok(self.get(index)?)
    }

    fn text(&self, index: usize) -> Result<Option<String>, SqlError> {
        Ok(self.get(index)?)
    }
}

impl Sql for Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&self, sql: &str, params: &[Value<'_>]) -> Result<u64, SqlError> {
        let changed = self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?;
        // A row count always fits: SQLite counts in i64.
        Ok(changed as u64)
    }

    fn query_each<E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        mut each: impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError> {
        let mut statement = self.prepare_cached(sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            match each(row) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break,
                Err(err) => return Ok(Err(err)),
            }
        }
        Ok(Ok(()))
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        Ok(self.execute_batch(sql)?)
    }

    fn in_transaction(&self) -> bool {
        !self.is_autocommit()
    }

    fn begin_write(&self) -> Result<(), SqlError> {
        // IMMEDIATE takes the write lock before anything is read, so a concurrent writer waits
        // (busy_timeout) instead of failing later with a stale snapshot.
        Sql::execute(self, "BEGIN IMMEDIATE", &[]).map(drop)
    }

    fn commit(&self) -> Result<(), SqlError> {
        Sql::execute(self, "COMMIT", &[]).map(drop)
    }

    fn rollback(&self) -> Result<(), SqlError> {
        Sql::execute(self, "ROLLBACK", &[]).map(drop)
    }

    fn savepoint(&self, name: &'static str) -> Result<(), SqlError> {
        Sql::execute(self, &format!("SAVEPOINT {name}"), &[]).map(drop)
    }

    fn release(&self, name: &'static str) -> Result<(), SqlError> {
        Sql::execute(self, &format!("RELEASE {name}"), &[]).map(drop)
    }

    fn rollback_to(&self, name: &'static str) -> Result<(), SqlError> {
        self.batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
    }
}
