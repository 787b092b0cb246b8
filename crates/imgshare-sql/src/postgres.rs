//! PostgreSQL behind the seam: [`PgConn`], one client connection with its statements prepared
//! once. What differs from SQLite is here and nowhere else: `?N` placeholders become `$N`, the
//! write lock is a transaction-scoped advisory lock, integers bind to whatever integer width the
//! column has.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};

use crate::{Dialect, Flow, Row, Sql, SqlError, Value};

/// The advisory lock every writer takes for the length of its transaction: the one write lock of
/// the database, as `BEGIN IMMEDIATE` is on SQLite (any constant works; this one spells "imgs").
pub const WRITE_LOCK_KEY: i64 = 0x696d_6773;

/// The class (first key) of the session advisory locks that lease running tasks to one worker:
/// `pg_try_advisory_lock(TASK_LEASE_CLASS, key)` with a 32-bit key derived from the task id
/// (spells "imgt"). These are two-`int4` keys, a key space PostgreSQL keeps apart from the
/// single-`bigint` keys of [`WRITE_LOCK_KEY`] and the store's open lock ("the two key spaces do
/// not overlap", PostgreSQL's manual on advisory locks; `pg_locks.objsubid` is 2 for them, 1
/// for those), so no task id, whatever its key, can take or wait for the write lock.
pub const TASK_LEASE_CLASS: i32 = 0x696d_6774;

/// Prepared statements kept per connection. Texts are mostly static, but list queries are built
/// per filter combination and page size; past this many the cache starts over rather than grow
/// without bound.
const STATEMENT_CACHE: usize = 256;

/// Rows a scan ([`Sql::scan_each`]) fetches from its cursor at a time: what it holds in memory.
const SCAN_BATCH: usize = 1_000;

/// How long a connection attempt may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks a `postgres://` or `postgresql://` URL (or a `key=value` connection string) without
/// connecting: a URL that does not parse is refused before anything is attempted.
pub fn parse_url(url: &str) -> Result<Config, SqlError> {
    let mut config = Config::from_str(url)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// One connection to PostgreSQL, used from one thread at a time (as a `rusqlite::Connection` is).
pub struct PgConn {
    client: RefCell<Client>,
    statements: RefCell<HashMap<String, Statement>>,
    /// 0 outside a transaction, 1 in one, one more per open savepoint.
    depth: Cell<u32>,
    /// Scans open on this connection, so that a scan started by another scan's visitor gets a
    /// cursor name of its own.
    scans: Cell<u32>,
    /// A statement failed because the connection was lost. The driver notices the closed socket
    /// on its own only a moment later, so without this a caller asking [`PgConn::is_closed`]
    /// right after the failure could keep the dead connection and fail once more.
    lost: Cell<bool>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("depth", &self.depth.get())
            .finish_non_exhaustive()
    }
}

impl PgConn {
    /// Connects with a URL (`postgres://user@host:port/db`).
    pub fn connect(url: &str) -> Result<Self, SqlError> {
        Self::connect_with(&parse_url(url)?)
    }

    /// Connects with a parsed configuration.
    pub fn connect_with(config: &Config) -> Result<Self, SqlError> {
        let client = config.connect(NoTls)?;
        Ok(PgConn {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
            depth: Cell::new(0),
            scans: Cell::new(0),
            lost: Cell::new(false),
        })
    }

    /// Whether the server closed the connection, or a statement failed because it was lost (it
    /// must then be replaced).
    pub fn is_closed(&self) -> bool {
        self.lost.get()
            || self
                .client
                .try_borrow()
                .is_ok_and(|client| client.is_closed())
    }

    /// `result` as the seam's, noting a lost connection on the way.
    fn noted<T>(&self, result: Result<T, postgres::Error>) -> Result<T, SqlError> {
        result.map_err(|error| {
            if connection_lost(&error) {
                self.lost.set(true);
            }
            SqlError::from(error)
        })
    }

    /// Waits up to `timeout` for a notification on a channel this connection `LISTEN`s to;
    /// returns its channel's name, or `None` when the time ran out. A notification sent while the
    /// connection was busy is kept by the driver and returned at once.
    pub fn wait_for_notification(&self, timeout: Duration) -> Result<Option<String>, SqlError> {
        use postgres::fallible_iterator::FallibleIterator as _;
        let mut client = self.client()?;
        let mut notifications = client.notifications();
        let mut waiting = notifications.timeout_iter(timeout);
        Ok(self
            .noted(waiting.next())?
            .map(|notification| notification.channel().to_owned()))
    }

    fn client(&self) -> Result<std::cell::RefMut<'_, Client>, SqlError> {
        self.client.try_borrow_mut().map_err(|_| {
            SqlError::Statement("a statement was run on a connection still reading a result".into())
        })
    }

    fn prepared(&self, client: &mut Client, sql: &str) -> Result<Statement, SqlError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.noted(client.prepare(&translate_placeholders(sql)?))?;
        let mut statements = self.statements.borrow_mut();
        if statements.len() >= STATEMENT_CACHE {
            statements.clear();
        }
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn run_simple(&self, sql: &str) -> Result<(), SqlError> {
        let done = self.client()?.batch_execute(sql);
        self.noted(done)
    }

    /// Declares `cursor` for the query and hands its rows to `each`, `SCAN_BATCH` at a time;
    /// between batches the connection is free for `each`'s own statements.
    fn scan_cursor<E>(
        &self,
        cursor: &str,
        sql: &str,
        params: &[Value<'_>],
        each: &mut impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError> {
        let declare = format!(
            "DECLARE {cursor} NO SCROLL CURSOR FOR {}",
            translate_placeholders(sql)?
        );
        let declared = self.client()?.execute(declare.as_str(), &as_params(params));
        self.noted(declared)?;
        let fetch = format!("FETCH {SCAN_BATCH} FROM {cursor}");
        loop {
            let fetched = self.client()?.query(fetch.as_str(), &[]);
            let rows = self.noted(fetched)?;
            for row in &rows {
                match each(row) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) => return Ok(Ok(())),
                    Err(err) => return Ok(Err(err)),
                }
            }
            if rows.len() < SCAN_BATCH {
                return Ok(Ok(()));
            }
        }
    }
}

/// Whether `error` means the connection is gone: the driver saw it closed, the socket failed, or
/// the server said it is ending the session (class 08, connection exception; 57P01-57P03, an
/// administrator's or a crash's shutdown, or a server not accepting connections yet).
fn connection_lost(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(state) => {
            let code = state.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => Error::source(error).is_some_and(|source| source.is::<std::io::Error>()),
    }
}

fn as_params<'a>(params: &'a [Value<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Sql for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&self, sql: &str, params: &[Value<'_>]) -> Result<u64, SqlError> {
        let mut client = self.client()?;
        let statement = self.prepared(&mut client, sql)?;
        let changed = client.execute(&statement, &as_params(params));
        self.noted(changed)
    }

    /// The result is read whole before the first row is visited, so a visitor may run statements
    /// of its own on this connection, as it can on SQLite.
    fn query_each<E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        mut each: impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError> {
        let rows = {
            let mut client = self.client()?;
            let statement = self.prepared(&mut client, sql)?;
            let read = client.query(&statement, &as_params(params));
            self.noted(read)?
        };
        for row in &rows {
            match each(row) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break,
                Err(err) => return Ok(Err(err)),
            }
        }
        Ok(Ok(()))
    }

    /// A cursor lives in a transaction: outside one, the scan opens one of its own for its length
    /// (so it also reads one snapshot), which commits what `each` wrote when the scan ends and
    /// rolls it back when the scan fails; `each` must not open or end a transaction meanwhile.
    fn scan_each<E>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        mut each: impl FnMut(&dyn Row) -> Result<Flow, E>,
    ) -> Result<Result<(), E>, SqlError> {
        let own_transaction = self.depth.get() == 0;
        if own_transaction {
            self.run_simple("BEGIN")?;
            // Statements of `each` then see a transaction, as they would inside a caller's: a
            // nested scan declares its cursor in this one.
            self.depth.set(1);
        }
        let open = self.scans.get();
        self.scans.set(open + 1);
        let cursor = format!("imgshare_scan_{open}");
        let scanned = self.scan_cursor(&cursor, sql, params, &mut each);
        self.scans.set(open);
        let ended = if own_transaction {
            self.depth.set(0);
            self.run_simple(if scanned.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            })
        } else if scanned.is_ok() {
            self.run_simple(&format!("CLOSE {cursor}"))
        } else {
            // The failed statement aborted the caller's transaction, cursor and all; the
            // caller's rollback ends both.
            Ok(())
        };
        let outcome = scanned?;
        ended?;
        Ok(outcome)
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        self.run_simple(sql)
    }

    fn in_transaction(&self) -> bool {
        self.depth.get() > 0
    }

    fn begin_write(&self) -> Result<(), SqlError> {
        // One transaction at a time holds the lock: appends continue from the head they read, so
        // the global position stays gapless and the hash chain unbroken across writers on any
        // number of hosts. The lock is released by COMMIT or ROLLBACK, also when the client dies.
        self.run_simple(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"
        ))?;
        self.depth.set(1);
        Ok(())
    }

    fn commit(&self) -> Result<(), SqlError> {
        self.depth.set(0);
        self.run_simple("COMMIT")
    }

    fn rollback(&self) -> Result<(), SqlError> {
        self.depth.set(0);
        self.run_simple("ROLLBACK")
    }

    fn savepoint(&self, name: &'static str) -> Result<(), SqlError> {
        self.run_simple(&format!("SAVEPOINT {name}"))?;
        self.depth.set(self.depth.get() + 1);
        Ok(())
    }

    fn release(&self, name: &'static str) -> Result<(), SqlError> {
        self.depth.set(self.depth.get().saturating_sub(1).max(1));
        self.run_simple(&format!("RELEASE SAVEPOINT {name}"))
    }

    fn rollback_to(&self, name: &'static str) -> Result<(), SqlError> {
        self.depth.set(self.depth.get().saturating_sub(1).max(1));
        self.run_simple(&format!(
            "ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
        ))
    }
}

impl Row for postgres::Row {
    fn int(&self, index: usize) -> Result<Option<i64>, SqlError> {
        let column = self.columns().get(index).ok_or_else(|| SqlError::Column {
            index,
            message: "no such column".to_owned(),
        })?;
        // Expressions such as COUNT(*) are BIGINT, but a comparison is BOOLEAN and a literal
        // INTEGER: read whichever integer the server chose.
        Ok(match *column.type_() {
            Type::INT8 => self.try_get::<_, Option<i64>>(index)?,
            Type::INT4 => self.try_get::<_, Option<i32>>(index)?.map(i64::from),
            Type::INT2 => self.try_get::<_, Option<i16>>(index)?.map(i64::from),
            Type::BOOL => self.try_get::<_, Option<bool>>(index)?.map(i64::from),
            ref other => {
                return Err(SqlError::Column {
                    index,
                    message: format!("{other} where an integer is expected"),
                })
            }
        })
    }

    fn text(&self, index: usize) -> Result<Option<String>, SqlError> {
        Ok(self.try_get::<_, Option<String>>(index)?)
    }
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) => match *ty {
                Type::INT8 => value.to_sql(ty, out),
                Type::INT4 => i32::try_from(value)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(value)?.to_sql(ty, out),
                Type::BOOL => (value != 0).to_sql(ty, out),
                ref other => {
                    Err(format!("an integer given for a parameter of type {other}").into())
                }
            },
            Value::Text(text) => text.to_sql(ty, out),
        }
    }

    /// Checked in `to_sql`, against the type the server inferred for the parameter.
    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// Rewrites SQLite's `?N` and `?` placeholders as PostgreSQL's `$N`, leaving quoted text and
/// identifiers alone. A bare `?` takes the number after the largest one so far, as in SQLite.
pub fn translate_placeholders(sql: &str) -> Result<String, SqlError> {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut largest = 0u32;
    while let Some(c) = chars.next() {
        if let Some(open) = quote {
            out.push(c);
            if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let number = if digits.is_empty() {
                    largest + 1
                } else {
                    digits
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| SqlError::Statement(format!("bad placeholder ?{digits}")))?
                };
                largest = largest.max(number);
                out.push('$');
                out.push_str(&number.to_string());
            }
            _ => out.push(c),
        }
    }
    if quote.is_some() {
        return Err(SqlError::Statement(
            "unterminated quote in a statement".to_owned(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_dollars() {
        assert_eq!(
            translate_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12").ok(),
            Some("SELECT a FROM t WHERE b = $1 AND c = $12".to_owned())
        );
    }

    #[test]
    fn bare_placeholders_count_on_from_the_largest() {
        assert_eq!(
            translate_placeholders("VALUES (?, ?3, ?)").ok(),
            Some("VALUES ($1, $3, $4)".to_owned())
        );
    }

    #[test]
    fn quoted_question_marks_are_text() {
        assert_eq!(
            translate_placeholders("SELECT '?1', \"a?\" FROM t WHERE x = ?1").ok(),
            Some("SELECT '?1', \"a?\" FROM t WHERE x = $1".to_owned())
        );
        assert_eq!(
            translate_placeholders("SELECT 'it''s ?' WHERE a = ?").ok(),
            Some("SELECT 'it''s ?' WHERE a = $1".to_owned())
        );
    }

    #[test]
    fn broken_statements_are_refused() {
        assert!(translate_placeholders("SELECT ?0").is_err());
        assert!(translate_placeholders("SELECT 'open").is_err());
    }

    #[test]
    fn a_url_that_does_not_parse_is_refused_without_connecting() {
        assert!(parse_url("postgres://user@host:notaport/db").is_err());
        assert!(parse_url("postgres://user@127.0.0.1:5432/db").is_ok());
    }
}
