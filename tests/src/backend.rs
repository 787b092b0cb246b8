//! Where a test's engine lives, so that one test runs on either backend without a copy per
//! backend: SQLite by default, or a new PostgreSQL database per engine when
//! `IMGSHARE_TESTS_BACKEND=postgres` (which needs this crate's `postgres` feature and
//! `IMGSHARE_TEST_POSTGRES_URL`, a server on which the tests may create databases;
//! `tests/postgres/run.sh` sets both).
//!
//! A selection that cannot be honoured fails the test that asks for an engine: PostgreSQL asked
//! for but not built, no URL, or a server that does not answer. Nothing falls back to SQLite,
//! so a run meant for PostgreSQL cannot pass on SQLite unnoticed.
//!
//! [`TestEngine::new`] gives what the property tests and seed scenarios used before (a private
//! in-memory SQLite database, or a new PostgreSQL database); [`TestDb::new`] gives a database a
//! test can open, reopen and edit behind the engine's back (a file in a new temporary directory,
//! or a new PostgreSQL database). Each PostgreSQL database has a name no other engine of any run
//! uses at the same time and is dropped when its owner is.
//!
//! A new PostgreSQL database is a copy (`CREATE DATABASE … TEMPLATE`) of a template that has
//! this build's schema and the profile recorded: running the migrations takes most of a second,
//! a copy a fifth of one, and the property tests open several engines per case. The template,
//! one per schema version and profile (`imgshare_test_template_v<N>_<profile>`), is made once,
//! by `open_postgres` as a first start would, and stays on the server for later runs.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::OnceLock;

use imgshare_core::{Profile, ProfileKind};
use imgshare_sql::AnyConn;
use imgshare_store::{Engine, EngineOptions};

/// Names the backend: `sqlite` (the default) or `postgres`.
pub const BACKEND_VAR: &str = "IMGSHARE_TESTS_BACKEND";
/// The PostgreSQL server's URL (its database part is where new databases are created from).
pub const POSTGRES_URL_VAR: &str = "IMGSHARE_TEST_POSTGRES_URL";

/// The database the tests run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: in memory, or a file in a temporary directory.
    Sqlite,
    /// PostgreSQL: a new database per engine on the server `url` names.
    Postgres {
        /// The server's URL, as `IMGSHARE_TEST_POSTGRES_URL` gives it.
        url: String,
    },
}

impl Backend {
    /// The backend the environment selects, read once per process.
    ///
    /// # Panics
    ///
    /// When `IMGSHARE_TESTS_BACKEND` names no backend, or names PostgreSQL in a build without
    /// the `postgres` feature or without `IMGSHARE_TEST_POSTGRES_URL`.
    pub fn selected() -> &'static Backend {
        static SELECTED: OnceLock<Backend> = OnceLock::new();
        SELECTED.get_or_init(|| {
            let name = std::env::var(BACKEND_VAR).unwrap_or_default();
            match name.as_str() {
                "" | "sqlite" => Backend::Sqlite,
                "postgres" => {
                    if !cfg!(feature = "postgres") {
                        panic!(
                            "{BACKEND_VAR}=postgres needs the postgres feature: \
                             cargo test -p imgshare-tests --features postgres"
                        );
                    }
                    match std::env::var(POSTGRES_URL_VAR) {
                        Ok(url) if !url.is_empty() => Backend::Postgres { url },
                        _ => panic!(
                            "{BACKEND_VAR}=postgres needs {POSTGRES_URL_VAR}, a PostgreSQL \
                             server the tests may create databases on (tests/postgres/run.sh \
                             starts one and sets it)"
                        ),
                    }
                }
                other => panic!("{BACKEND_VAR}={other}: expected `sqlite` or `postgres`"),
            }
        })
    }

    /// Whether the tests run on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }

    /// `sqlite` or `postgres`, for a test's report line.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// A new, empty database on the selected backend, removed when dropped (a PostgreSQL database
/// is dropped even if something is still connected to it).
#[derive(Debug)]
pub struct TestDb {
    place: Place,
}

#[derive(Debug)]
enum Place {
    File {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    #[cfg(feature = "postgres")]
    Postgres(postgres::Database),
}

impl TestDb {
    /// A new database for engines of profile `kind`: `test.db` in a new temporary directory
    /// (empty: the first engine creates the schema and records its profile), or a new
    /// PostgreSQL database (with the schema, `kind` recorded).
    ///
    /// # Panics
    ///
    /// When the directory or the database cannot be created (PostgreSQL unreachable included).
    // Only PostgreSQL's copy depends on the profile; a SQLite file is pinned by its first open.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub fn new(kind: ProfileKind) -> Self {
        let place = match Backend::selected() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()
                    .unwrap_or_else(|error| panic!("a temporary directory: {error}"));
                Place::File {
                    path: dir.path().join("test.db"),
                    _dir: dir,
                }
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { url } => Place::Postgres(postgres::Database::create(url, kind)),
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres { .. } => unreachable!("refused by Backend::selected"),
        };
        TestDb { place }
    }

    /// The database as `Engine::open_url` takes it: the file's path or the database's URL.
    pub fn location(&self) -> String {
        match &self.place {
            Place::File { path, .. } => path.display().to_string(),
            #[cfg(feature = "postgres")]
            Place::Postgres(database) => database.url.clone(),
        }
    }

    /// Opens an engine on the database with `options` (creating the schema the first time).
    ///
    /// # Panics
    ///
    /// When the engine does not open.
    pub fn open_with(&self, options: EngineOptions) -> Engine {
        let location = self.location();
        Engine::open_url(&location, options)
            .unwrap_or_else(|error| panic!("open an engine on {location}: {error}"))
    }

    /// Opens an engine on the database with `profile`.
    pub fn open(&self, profile: Profile) -> Engine {
        self.open_with(EngineOptions {
            profile,
            ..EngineOptions::default()
        })
    }

    /// A connection of its own to the database, beside any engine's: for what a test does
    /// behind the engine's back (editing a row, importing an old log).
    ///
    /// # Panics
    ///
    /// When the connection cannot be made.
    pub fn connect(&self) -> RawConn {
        match &self.place {
            Place::File { path, .. } => RawConn::Sqlite(
                rusqlite::Connection::open(path)
                    .unwrap_or_else(|error| panic!("open {}: {error}", path.display())),
            ),
            #[cfg(feature = "postgres")]
            Place::Postgres(database) => RawConn::Postgres(Box::new(database.connect())),
        }
    }
}

/// A connection [`TestDb::connect`] made; [`RawConn::sql`] lends it to the seam's functions.
pub enum RawConn {
    /// To a SQLite file.
    Sqlite(rusqlite::Connection),
    /// To a PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(Box<imgshare_store::PgConn>),
}

impl RawConn {
    /// The connection as an `imgshare_sql::Sql`.
    pub fn sql(&self) -> AnyConn<'_> {
        match self {
            RawConn::Sqlite(conn) => AnyConn::Sqlite(conn),
            #[cfg(feature = "postgres")]
            RawConn::Postgres(conn) => AnyConn::Postgres(conn),
        }
    }
}

/// An engine on the selected backend, with the database it lives in (removed after the engine
/// is dropped). Derefs to the [`Engine`].
pub struct TestEngine {
    // Declared first, so dropped first: its connections close before the database goes.
    engine: Engine,
    db: Option<TestDb>,
}

impl TestEngine {
    /// An engine with `profile`: in a private in-memory SQLite database (as
    /// `Engine::in_memory_with`), or in a new PostgreSQL database.
    ///
    /// # Panics
    ///
    /// When the engine cannot be opened.
    pub fn new(profile: Profile) -> Self {
        match Backend::selected() {
            Backend::Sqlite => TestEngine {
                engine: Engine::in_memory_with(profile)
                    .unwrap_or_else(|error| panic!("an in-memory engine: {error}")),
                db: None,
            },
            Backend::Postgres { .. } => {
                let db = TestDb::new(profile.kind);
                TestEngine {
                    engine: db.open(profile),
                    db: Some(db),
                }
            }
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The database, when it is not a private in-memory one.
    pub fn db(&self) -> Option<&TestDb> {
        self.db.as_ref()
    }
}

impl Deref for TestEngine {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    //! Databases created and dropped on the selected PostgreSQL server.

    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use imgshare_core::ProfileKind;
    use imgshare_sql::{params, Sql as _};
    use imgshare_store::{open_postgres, postgres_schema_version, profile_name, PgConn};

    /// A database this process created, dropped with it.
    #[derive(Debug)]
    pub(super) struct Database {
        /// The server's URL, through which the database was created and is dropped.
        server: String,
        name: String,
        pub(super) url: String,
    }

    impl Database {
        /// Creates a database with a new name on the server `server` names, a copy of the
        /// template for `kind`.
        pub(super) fn create(server: &str, kind: ProfileKind) -> Self {
            let template = template(server, kind);
            let name = unique_name();
            admin(server)
                .batch(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .unwrap_or_else(|error| panic!("CREATE DATABASE {name}: {error}"));
            Database {
                server: server.to_owned(),
                url: with_database(server, &name),
                name,
            }
        }

        pub(super) fn connect(&self) -> PgConn {
            PgConn::connect(&self.url)
                .unwrap_or_else(|error| panic!("connect to {}: {error}", self.url))
        }
    }

    impl Drop for Database {
        fn drop(&mut self) {
            // FORCE ends what is still connected (a raw connection a test kept). A failure is
            // reported, not raised: this may run while a failed test unwinds, and the cluster
            // is a throwaway one.
            let dropped = PgConn::connect(&self.server).and_then(|conn| {
                conn.batch(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
            });
            if let Err(error) = dropped {
                eprintln!("DROP DATABASE {}: {error}", self.name);
            }
        }
    }

    /// The template for `kind` at this build's schema version, made if the server has none.
    ///
    /// It is made under a name of its own and renamed when complete, so another process never
    /// copies a half-made one; when two make it at once, the second rename fails and that one's
    /// copy is dropped. Nothing connects to a template once made (a copy needs it idle).
    fn template(server: &str, kind: ProfileKind) -> String {
        static MADE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let name = format!(
            "imgshare_test_template_v{}_{}",
            postgres_schema_version(),
            profile_name(kind)
        );
        // One thread makes it while the others wait; a panic while making it poisons nothing
        // worth keeping.
        let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if made.contains(&name) {
            return name;
        }
        let admin = admin(server);
        if !exists(&admin, &name) {
            let making = unique_name();
            admin
                .batch(&format!("CREATE DATABASE {making}"))
                .unwrap_or_else(|error| panic!("CREATE DATABASE {making}: {error}"));
            let url = with_database(server, &making);
            drop(
                open_postgres(&url, kind).unwrap_or_else(|error| {
                    panic!("migrate the template {making} ({url}): {error}")
                }),
            );
            if let Err(error) = admin.batch(&format!("ALTER DATABASE {making} RENAME TO {name}")) {
                if !exists(&admin, &name) {
                    panic!("ALTER DATABASE {making} RENAME TO {name}: {error}");
                }
                // Another process made it first.
                let _ = admin.batch(&format!("DROP DATABASE {making} WITH (FORCE)"));
            }
        }
        made.insert(name.clone());
        name
    }

    fn exists(admin: &PgConn, name: &str) -> bool {
        admin
            .query_first(
                "SELECT 1 FROM pg_database WHERE datname = ?1",
                params![name],
                |_| Ok::<_, imgshare_sql::SqlError>(()),
            )
            .and_then(|found| found)
            .unwrap_or_else(|error| panic!("look for the database {name}: {error}"))
            .is_some()
    }

    /// A name unique among this process's databases and, through the process id, across the
    /// processes of a run (databases are cluster-wide).
    fn unique_name() -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "imgshare_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A connection to the server's own database, for creating and dropping others.
    fn admin(server: &str) -> PgConn {
        PgConn::connect(server).unwrap_or_else(|error| {
            panic!(
                "PostgreSQL was selected ({}=postgres) but the server at {server} cannot be \
                 reached: {error}",
                super::BACKEND_VAR
            )
        })
    }

    /// `server` with its database replaced by `database` (and its query string, if any, kept).
    fn with_database(server: &str, database: &str) -> String {
        let (address, query) = match server.split_once('?') {
            Some((address, query)) => (address, Some(query)),
            None => (server, None),
        };
        let Some((base, _)) = address
            .rsplit_once('/')
            .filter(|(base, _)| base.contains("//"))
        else {
            panic!("{}={server} names no database", super::POSTGRES_URL_VAR);
        };
        match query {
            Some(query) => format!("{base}/{database}?{query}"),
            None => format!("{base}/{database}"),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::with_database;

        #[test]
        fn a_new_database_replaces_the_servers_one() {
            assert_eq!(
                with_database("postgres://postgres@127.0.0.1:5432/imgshare", "t_1"),
                "postgres://postgres@127.0.0.1:5432/t_1"
            );
            assert_eq!(
                with_database("postgresql://u:p@h/imgshare?connect_timeout=5", "t_2"),
                "postgresql://u:p@h/t_2?connect_timeout=5"
            );
        }
    }
}
