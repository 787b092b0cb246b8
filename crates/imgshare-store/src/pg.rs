//! Opening a PostgreSQL database: checks, schema migrations (`migrations/postgres/`, applied by
//! refinery) and the profile record, as [`crate::db`] and [`crate::meta`] do for SQLite.
//!
//! Two roles share a database:
//!
//! - the **owner** (the role that created the schema) runs [`open_postgres`] first: it applies
//!   the migrations, records the profile, and calls [`grant_application_role`] once;
//! - the **application role** runs the service. Its own [`open_postgres`] on a database already
//!   migrated and pinned checks and writes nothing, and its privileges on `events` are `SELECT`
//!   and `INSERT` only: it cannot change or remove an event even if the trigger that refuses
//!   `UPDATE`, `DELETE` and `TRUNCATE` for everyone (the owner included) were dropped.
//!
//! What differs from SQLite in the writer's lock and the error codes is documented in
//! `docs/storage.md`.

use imgshare_core::ProfileKind;
use imgshare_sql::postgres::{parse_url, PgConn};
use imgshare_sql::{Sql, SqlError};
use postgres::config::Host;
use postgres::{Client, Config, NoTls};

use crate::error::{with_causes, SqlResult as _, StoreError};
use crate::meta::profile_name;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// refinery's record of the migrations it applied.
const HISTORY_TABLE: &str = "refinery_schema_history";

/// A session lock held while one process checks and migrates, so that two services starting at
/// once on a new database do not both create the schema or record different profiles.
const OPEN_LOCK_KEY: i64 = 0x696d_676f;

/// The newest schema version this build knows (the highest migration's number).
pub fn postgres_schema_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|migration| i64::from(migration.version()))
        .max()
        .unwrap_or(0)
}

/// Opens the PostgreSQL database at `url` (`postgres://user@host:port/database`) for a service
/// running with `profile`, migrating its schema to this build's.
///
/// In this order, and writing nothing until every check has passed:
/// 1. the URL must parse ([`StoreError::InvalidUrl`]; nothing is attempted);
/// 2. the server must accept the connection ([`StoreError::Unavailable`], naming host and port);
/// 3. the schema must not be newer than this build's ([`StoreError::SchemaTooNew`]);
/// 4. a recorded profile must be `profile` ([`StoreError::ProfileMismatch`], as on SQLite).
///
/// Then the missing migrations are applied and the profile is recorded if none was. A database
/// already at this build's schema and pinned to `profile` is only read, so the application role,
/// which may not create tables, can open it too (see the module's documentation).
pub fn open_postgres(url: &str, profile: ProfileKind) -> Result<PgConn, StoreError> {
    let config = parse_postgres_url(url)?;
    let mut client = connect(&config)?;
    let run = |client: &mut Client| -> Result<(), StoreError> {
        let found = applied_version(client)?;
        let supported = postgres_schema_version();
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        let stored = stored_profile(client)?;
        let requested = profile_name(profile);
        match &stored {
            Some(stored) if stored != requested => {
                return Err(StoreError::ProfileMismatch {
                    stored: stored.clone(),
                    requested: requested.to_owned(),
                })
            }
            _ => {}
        }
        if found < supported {
            embedded::migrations::runner()
                .set_abort_divergent(true)
                .set_abort_missing(true)
                .run(client)
                .map_err(|err| StoreError::Migration(Box::new(err)))?;
        }
        if stored.is_none() {
            client
                .execute(
                    "INSERT INTO database_meta (key, value) VALUES ('profile', $1) \
                     ON CONFLICT (key) DO NOTHING",
                    &[&requested],
                )
                .map_err(postgres_error)?;
        }
        Ok(())
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&OPEN_LOCK_KEY])
        .map_err(postgres_error)?;
    let checked = run(&mut client);
    // Closing the session releases the lock whatever happened.
    drop(client);
    checked?;
    PgConn::connect_with(&config).map_err(|err| match err {
        SqlError::Postgres(err) => connect_error(&config, err),
        other => StoreError::from_sql(other),
    })
}

/// The profile recorded in the PostgreSQL database at `url`, read without writing anything (no
/// migration, no record): `None` if the database has no imgshare schema or no record yet. The
/// URL and connection are checked as by [`open_postgres`].
pub fn stored_profile_at_url(url: &str) -> Result<Option<ProfileKind>, StoreError> {
    let config = parse_postgres_url(url)?;
    let mut client = connect(&config)?;
    match stored_profile(&mut client)? {
        None => Ok(None),
        Some(name) => {
            crate::meta::parse_profile(&name)
                .map(Some)
                .ok_or_else(|| StoreError::ProfileMismatch {
                    stored: name,
                    requested: "any known".to_owned(),
                })
        }
    }
}

/// Grants `role` what the service needs and nothing more: `SELECT` and `INSERT` on `events`
/// (no `UPDATE`, `DELETE` or `TRUNCATE`: the log is append-only by privilege as well as by
/// trigger), read and write on the read models, the checkpoint and the task table (a rebuild
/// empties them with `DELETE`), and read on the profile record and the migration history (so
/// that its [`open_postgres`] can check them). Run by the owner, after [`open_postgres`].
pub fn grant_application_role(conn: &PgConn, role: &str) -> Result<(), StoreError> {
    let role = quote_identifier(role);
    // One simple query: one implicit transaction, all granted or none.
    conn.batch(&format!(
        "REVOKE ALL ON events FROM {role};
         GRANT SELECT, INSERT ON events TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints, proj_images,
             proj_image_properties, proj_image_tags, proj_members, proj_tasks TO {role};
         GRANT SELECT ON database_meta, {HISTORY_TABLE} TO {role};"
    ))
    .sql()
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn parse_postgres_url(url: &str) -> Result<Config, StoreError> {
    // The driver also takes `key=value` strings; a URL is what `--db` documents, and anything
    // else (a file path given by mistake) is better refused than read as options.
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::InvalidUrl(
            "expected postgres://user@host:port/database".to_owned(),
        ));
    }
    parse_url(url).map_err(|err| StoreError::InvalidUrl(with_causes(&err)))
}

fn connect(config: &Config) -> Result<Client, StoreError> {
    config
        .connect(NoTls)
        .map_err(|err| connect_error(config, err))
}

/// A failed connection names where it went, which the driver's message does not.
fn connect_error(config: &Config, err: postgres::Error) -> StoreError {
    if err.as_db_error().is_some() {
        // The server answered (no such database, a refused login): its own words say what is
        // wrong, and it is not a failure that waiting cures unless its SQLSTATE says so.
        return StoreError::from_sql(SqlError::Postgres(err));
    }
    StoreError::Unavailable(format!(
        "cannot connect to PostgreSQL at {}: {}",
        target(config),
        with_causes(&err)
    ))
}

fn target(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    if hosts.is_empty() {
        "the default host".to_owned()
    } else {
        hosts.join(", ")
    }
}

fn applied_version(client: &mut Client) -> Result<i64, StoreError> {
    if !table_exists(client, HISTORY_TABLE)? {
        return Ok(0);
    }
    let row = client
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0)::BIGINT FROM {HISTORY_TABLE}"),
            &[],
        )
        .map_err(postgres_error)?;
    row.try_get(0).map_err(postgres_error)
}

fn stored_profile(client: &mut Client) -> Result<Option<String>, StoreError> {
    if !table_exists(client, "database_meta")? {
        return Ok(None);
    }
    let row = client
        .query_opt("SELECT value FROM database_meta WHERE key = 'profile'", &[])
        .map_err(postgres_error)?;
    row.map(|row| row.try_get(0))
        .transpose()
        .map_err(postgres_error)
}

fn table_exists(client: &mut Client, name: &str) -> Result<bool, StoreError> {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .map_err(postgres_error)?;
    row.try_get(0).map_err(postgres_error)
}

fn postgres_error(err: postgres::Error) -> StoreError {
    StoreError::from_sql(SqlError::Postgres(err))
}
