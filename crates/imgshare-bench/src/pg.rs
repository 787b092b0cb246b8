//! PostgreSQL as the benchmarks' database (feature `postgres`): the session settings a run uses,
//! passed in the connection URL so that every connection of an engine gets them, and the fresh
//! schemas `throughput` measures in, so that each measurement starts from an empty log, as a new
//! SQLite file does, inside the one database `--db` names.

use std::cell::RefCell;

use anyhow::{ensure, Context as _, Result};
use imgshare_sql::postgres::PgConn;
use imgshare_sql::{RowExt as _, Sql};

/// `url` with the session settings of a run: `synchronous_commit` on or off (what the
/// benchmark's durability maps to), and, for a fresh schema, a `search_path` naming it.
///
/// The settings travel as the connection's `options` (`-c name=value`), which every connection
/// opened from the URL applies before its first statement: the engine opens its own, and they
/// cannot be reached from here once open.
pub(crate) fn session_url(
    url: &str,
    schema: Option<&str>,
    synchronous_commit: bool,
) -> Result<String> {
    // A second `options` would replace the first: refuse rather than drop the caller's.
    ensure!(
        !url.contains("options="),
        "the benchmark sets the connection's options itself; give a URL without `options=`"
    );
    let mut options = format!(
        "-c synchronous_commit={}",
        if synchronous_commit { "on" } else { "off" }
    );
    if let Some(schema) = schema {
        options.push_str(&format!(" -c search_path={schema}"));
    }
    let encoded = options.replace(' ', "%20").replace('=', "%3D");
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}options={encoded}"))
}

/// What the server runs with, for the report: its version, whether it flushes WAL (`fsync`),
/// and the session's `synchronous_commit` as the URL set it.
pub(crate) fn settings(url: &str) -> Result<String> {
    let conn = PgConn::connect(url).context("connecting to PostgreSQL")?;
    let show = |name: &str| -> Result<String> {
        let value = conn
            .query_first(&format!("SHOW {name}"), &[], |row| row.get::<String>(0))??
            .with_context(|| format!("SHOW {name} answered nothing"))?;
        Ok(value)
    };
    Ok(format!(
        "PostgreSQL {}: fsync {}, synchronous_commit {} (this run's sessions), full_page_writes {}, wal_sync_method {}",
        show("server_version")?,
        show("fsync")?,
        show("synchronous_commit")?,
        show("full_page_writes")?,
        show("wal_sync_method")?,
    ))
}

/// Schemas created in the database of `url` for one run, dropped when this is.
pub(crate) struct Schemas {
    url: String,
    admin: PgConn,
    prefix: String,
    created: RefCell<Vec<String>>,
}

impl Schemas {
    pub(crate) fn new(url: &str) -> Result<Self> {
        let admin = PgConn::connect(url).context("connecting to PostgreSQL")?;
        Ok(Schemas {
            url: url.to_owned(),
            admin,
            // The process id keeps two runs on one database apart.
            prefix: format!("imgshare_bench_{}", std::process::id()),
            created: RefCell::new(Vec::new()),
        })
    }

    /// A new empty schema `name` (replacing one a killed run left) and the URL of sessions that
    /// work in it with `synchronous_commit` as given.
    pub(crate) fn fresh(&self, name: &str, synchronous_commit: bool) -> Result<String> {
        ensure!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "schema name {name:?}"
        );
        let schema = self.schema(name);
        self.admin.batch(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))?;
        self.created.borrow_mut().push(schema.clone());
        session_url(&self.url, Some(&schema), synchronous_commit)
    }

    /// The URL of sessions in the schema `name` made by [`Schemas::fresh`].
    pub(crate) fn url_of(&self, name: &str, synchronous_commit: bool) -> Result<String> {
        session_url(&self.url, Some(&self.schema(name)), synchronous_commit)
    }

    /// What the server runs with, seen by a session in the schema `name`.
    pub(crate) fn settings_of(&self, name: &str, synchronous_commit: bool) -> Result<String> {
        settings(&self.url_of(name, synchronous_commit)?)
    }

    fn schema(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for schema in self.created.borrow().iter() {
            if let Err(err) = self
                .admin
                .batch(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            {
                eprintln!("could not drop the benchmark's schema {schema}: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_ride_in_the_url_options() {
        assert_eq!(
            session_url("postgres://u@127.0.0.1:5/db", Some("s1"), false).ok(),
            Some(
                "postgres://u@127.0.0.1:5/db?options=-c%20synchronous_commit%3Doff%20-c%20search_path%3Ds1"
                    .to_owned()
            )
        );
        assert_eq!(
            session_url("postgres://u@h/db?connect_timeout=5", None, true).ok(),
            Some(
                "postgres://u@h/db?connect_timeout=5&options=-c%20synchronous_commit%3Don"
                    .to_owned()
            )
        );
        assert!(session_url("postgres://u@h/db?options=-c%20x%3D1", None, true).is_err());
    }

    #[test]
    fn the_driver_reads_the_options_back() {
        let url = session_url("postgres://u@127.0.0.1:5/db", Some("s1"), true).unwrap();
        let config = imgshare_sql::postgres::parse_url(&url).unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c synchronous_commit=on -c search_path=s1")
        );
    }
}
