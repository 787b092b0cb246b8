//! The `imgshare` command.
//!
//! `imgshare demo` walks the producer/consumer scenario of the Rackspace how-to (share, accept,
//! boot, reject, unshare) against a temporary (or the given) database and prints each API
//! response.
//! `imgshare rebuild` replays the log into fresh read models.
//! `imgshare serve` serves the HTTP API (see [`serve`]).
//! `imgshare log`, `replay`, `audit`, `head` and `verify` read the log for audits (see [`audit`]);
//! `imgshare backup` copies a live database.
//! `imgshare users` edits the built-in identity's users file (see [`users`]).
//! `imgshare images publish` and `snapshot` register base images and server snapshots from VHD
//! files (see [`images`]).

mod audit;
mod console;
mod copy;
mod identity;
mod images;
mod logging;
mod serve;
mod swift_args;
mod users;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use chrono::Utc;
use clap::{Parser, Subcommand};
use imgshare_core::{patch, Actor, Command, Context, ImageCommand, Profile, ProfileKind, Region};
use imgshare_store::{DbOptions, Durability, Engine, EngineError, EngineOptions, ImageDataStore};
use serde_json::Value;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "imgshare",
    version,
    about = "Event-sourced image sharing (Cloud Images v2)"
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Args)]
struct DbArgs {
    /// The SQLite database file (created if missing), or a PostgreSQL URL
    /// (`postgres://USER@HOST[:PORT]/DATABASE`, built with the `postgres` feature; the schema is
    /// created if missing).
    #[arg(long, env = "IMGSHARE_DB", default_value = "imgshare.db")]
    db: PathBuf,
    #[command(flatten)]
    options: OpenArgs,
}

/// How a database is opened, apart from its path.
#[derive(clap::Args)]
struct OpenArgs {
    /// Sync the WAL only at checkpoints: faster, but the last commits may be lost on power loss.
    #[arg(long, env = "IMGSHARE_DURABILITY_NORMAL")]
    durability_normal: bool,
    /// Read the database file through a memory map of up to this many MiB (0: plain reads).
    /// Faster reads that jump around a large file, such as `replay`'s rebuild; the mapped pages
    /// count in the resident set.
    #[arg(
        long,
        env = "IMGSHARE_MMAP_MIB",
        default_value_t = 0,
        value_name = "MIB"
    )]
    mmap_mib: u64,
    /// The rule set: `rackspace` (Cloud Images 2.0) or `glance` (modern OpenStack Glance:
    /// shared/community visibility, reader/member/admin roles). A new database records it and
    /// refuses to be opened with the other one later; default: the one the database records,
    /// `rackspace` for a new database.
    #[arg(long, env = "IMGSHARE_PROFILE", value_enum)]
    profile: Option<ProfileArg>,
}

/// The `--profile` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProfileArg {
    Rackspace,
    Glance,
}

impl ProfileArg {
    pub(crate) fn profile(self) -> Profile {
        match self {
            ProfileArg::Rackspace => Profile::rackspace(),
            ProfileArg::Glance => Profile::glance(),
        }
    }

    pub(crate) fn of(kind: ProfileKind) -> Self {
        match kind {
            ProfileKind::Rackspace => ProfileArg::Rackspace,
            ProfileKind::Glance => ProfileArg::Glance,
        }
    }
}

/// The PostgreSQL URL `db` is, if it is one (`postgres://` or `postgresql://`), else `None`: a
/// SQLite file path.
pub(crate) fn postgres_url(db: &Path) -> Option<&str> {
    db.to_str()
        .filter(|text| imgshare_store::is_postgres_url(text))
}

/// `db` as banners and errors show it: a path as it is, a URL without its password.
pub(crate) fn shown_db(db: &Path) -> String {
    let Some(url) = postgres_url(db) else {
        return db.display().to_string();
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// Refuses a PostgreSQL URL for a command that works on a SQLite file only; `instead` says what
/// to use on PostgreSQL.
pub(crate) fn sqlite_only(db: &Path, command: &str, instead: &str) -> anyhow::Result<()> {
    if postgres_url(db).is_some() {
        anyhow::bail!(
            "`imgshare {command}` works on a SQLite database file, not on PostgreSQL ({}); {instead}",
            shown_db(db)
        );
    }
    Ok(())
}

/// The profile to open `db` with: the one asked for (the open refuses it if the database records
/// another), else the one the database records, else Rackspace for a new database.
fn choose_profile(db: &Path, given: Option<ProfileArg>) -> ProfileArg {
    given
        .or_else(|| {
            // An unreadable file or an unreachable server, or a database of an older schema,
            // records nothing yet; the real open reports what is wrong with it, and pins the
            // profile it is opened with.
            let recorded = match postgres_url(db) {
                Some(url) => imgshare_store::stored_profile_at(url).ok().flatten(),
                None => db
                    .is_file()
                    .then(|| imgshare_store::stored_profile_of(db).ok().flatten())
                    .flatten(),
            };
            recorded.map(ProfileArg::of)
        })
        .unwrap_or(ProfileArg::Rackspace)
}

#[derive(Subcommand)]
enum Sub {
    /// Run the seed walkthrough in-process (producer shares an image, consumer accepts, boots,
    /// rejects) and print each API response. Uses a temporary database unless `--db` is given.
    Demo {
        /// A database file to run in (created if missing) and keep; default: a temporary one,
        /// removed at the end.
        #[arg(long)]
        db: Option<PathBuf>,
        #[command(flatten)]
        options: OpenArgs,
        /// The region to run in.
        #[arg(long, default_value = "DFW")]
        region: String,
    },
    /// Serve the Cloud Images 2.0 / Glance v2 API over HTTP until Ctrl-C or SIGTERM.
    ///
    /// Needs an identity: `--users FILE` (the built-in Rackspace identity, `POST /v2.0/tokens`),
    /// `--identity keystone` with `--keystone-url` and `--keystone-service-credentials`, or
    /// `--tokens FILE` (static tokens); or `--demo` for a try-out: then, without `--tokens`, it
    /// creates `imgshare-users.toml` next to the database (a producer, account 111111, and a
    /// consumer, 222222), prints their API keys and the quickstart's `curl` line, and registers
    /// the producer's saved image "my-saved-image-name" in an empty database. One listener per
    /// `--region`. Every option can also be set through the environment variable named in its
    /// help.
    Serve(Box<ServeArgs>),
    /// Empty the read models and rebuild them from the event log.
    Rebuild {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print events as JSON lines (every stored column), optionally filtered.
    Log(audit::LogArgs),
    /// Rebuild the read models with a progress bar; with `--to`, print the catalogue as of that
    /// position or time as JSON lines instead, leaving the stored read models untouched.
    Replay(audit::ReplayArgs),
    /// Audit one image: who could access it at a moment, or its history.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Print the log's anchor, `POSITION:HASH` of its last event, to note down outside the
    /// database and check later with `verify --expect-head`.
    Head {
        /// The SQLite database file (must exist; it is only read), or a PostgreSQL URL.
        #[arg(long, env = "IMGSHARE_DB", default_value = "imgshare.db")]
        db: PathBuf,
    },
    /// Check the hash chain and compare the read models with a replay of the log; with
    /// `--expect-head`, also that the log still holds an anchor noted earlier.
    ///
    /// Exit status: 0 verified; 1 a difference was found (the report says which, the first one
    /// on stderr); 2 the check could not run (no database, unreadable file, bad arguments such as
    /// an `--expect-head` that does not parse).
    Verify(audit::VerifyArgs),
    /// Copy a live database to a new file (a consistent snapshot; the server may keep running)
    /// and print the copy's anchor. Never overwrites: the target must not exist.
    Backup {
        /// The database to copy (must exist; it is only read).
        #[arg(long, env = "IMGSHARE_DB", default_value = "imgshare.db")]
        db: PathBuf,
        /// The file to create.
        #[arg(long)]
        to: PathBuf,
    },
    /// Copy a catalogue into a new database, SQLite or PostgreSQL either way: the log row for row
    /// with its hashes, then the read models rebuilt and the copy verified. Prints the copy's
    /// anchor (`POSITION:HASH`, the source's head when the copy began).
    ///
    /// The source is only read; the target is a file that does not exist yet or a PostgreSQL
    /// database with an empty log. Image bytes are not copied: they stay in the data directory
    /// (`<db>.data` by default), which the target's server is pointed at with `--data-dir`.
    /// Exit status: 0 copied and verified; 1 an error (nothing copied) or a copy that does not
    /// verify.
    Copy(copy::CopyArgs),
    /// Manage the built-in identity's users file: add, list, remove, reset-key, disable, enable.
    Users(users::UsersArgs),
    /// Register images the tenant API cannot create: provider base images (`publish`) and
    /// snapshots of tenants' servers (`snapshot`), from VHD files.
    Images {
        #[command(subcommand)]
        command: images::ImagesCommand,
    },
}

/// `imgshare serve`'s options.
#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Where to listen: `HOST:PORT` for every region, or `REGION=HOST:PORT` for one
    /// (repeatable; port 0: any free port, one per region). Each region gets its own listener,
    /// printed as `region R listening on http://ADDR`; the last banner line is `listening on
    /// http://ADDR` of the first region.
    #[arg(
        long,
        env = "IMGSHARE_LISTEN",
        default_value = "127.0.0.1:9292",
        value_delimiter = ','
    )]
    listen: Vec<String>,
    /// A region to serve (repeatable, e.g. --region DFW --region ORD; the first is users'
    /// default region). One process and one database serve them all; an image of one region
    /// is not seen in another.
    #[arg(
        long,
        env = "IMGSHARE_REGION",
        default_value = "DFW",
        value_delimiter = ','
    )]
    region: Vec<String>,
    /// A static tokens file (.json or .toml): which token is which tenant, user and roles
    /// (`--identity tokens`, for tests and scripts).
    #[arg(long, env = "IMGSHARE_TOKENS")]
    tokens: Option<PathBuf>,
    #[command(flatten)]
    identity: identity::IdentityArgs,
    /// A try-out server: demo users (in `imgshare-users.toml` next to the database unless
    /// `--users` or `--tokens` is given) whose API keys and tokens are printed, and the demo
    /// image in an empty database. Never on a database that matters: the demo image stays in
    /// its log.
    #[arg(long, env = "IMGSHARE_DEMO")]
    demo: bool,
    /// Where uploaded image data is kept (created if missing); default: `<db file>.data`
    /// next to the database; required with a PostgreSQL URL.
    #[arg(long, env = "IMGSHARE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The object store of import and export tasks (created if missing), one directory per
    /// region: `<dir>/<REGION>/<account>/<container>/<object>`; default: `<db file>.objects`
    /// next to the database; required with a PostgreSQL URL unless every region uses Swift.
    #[arg(long, env = "IMGSHARE_OBJECTS_DIR")]
    objects_dir: Option<PathBuf>,
    /// The largest VHD an import accepts (file and virtual size), in bytes or with a K, M, G
    /// or T suffix (powers of 1024).
    #[arg(long, env = "IMGSHARE_IMPORT_SIZE_LIMIT", default_value = "40G", value_parser = parse_size)]
    import_size_limit: u64,
    #[command(flatten)]
    swift: swift_args::SwiftArgs,
    /// The log's format on stderr: `text` (one readable line per event) or `json` (one JSON
    /// object per line). What is logged is chosen with `RUST_LOG` (default: `info`).
    #[arg(long, env = "IMGSHARE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: logging::LogFormat,
    /// Serve `GET /metrics` on this address only (e.g. `127.0.0.1:9293`), not on the API's;
    /// default: on the API's listener.
    #[arg(long, env = "IMGSHARE_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// The URL clients reach the API at, behind a TLS-terminating proxy
    /// (`https://images.example.com`): the version documents' links use it instead of
    /// `http://` and the request's `Host`.
    #[arg(long, env = "IMGSHARE_PUBLIC_ENDPOINT", value_name = "URL", value_parser = serve::parse_public_endpoint)]
    public_endpoint: Option<String>,
    /// After SIGTERM, how long requests in flight may take to finish before their connections
    /// are closed: seconds, or with an `s` or `m` suffix.
    #[arg(long, env = "IMGSHARE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = serve::parse_timeout)]
    shutdown_timeout: std::time::Duration,
    /// How often the task worker looks for pending tasks when nothing wakes it (a task created
    /// through this server wakes it at once, and on PostgreSQL one created through any server
    /// on the database): milliseconds with `ms`, seconds (bare or `s`), or minutes with `m`;
    /// more than zero.
    #[arg(long, env = "IMGSHARE_TASK_POLL_INTERVAL", default_value = "500ms", value_parser = serve::parse_interval)]
    task_poll_interval: std::time::Duration,
    /// Do not serve the Control Panel (`/console` on every region's listener); only the API.
    #[arg(long, env = "IMGSHARE_NO_CONSOLE")]
    no_console: bool,
}

/// A byte count: digits, optionally followed by K, M, G or T (powers of 1024, `B` optional).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let digits = upper.trim_end_matches('B');
    let (number, shift) = match digits.chars().last() {
        Some('K') => (&digits[..digits.len() - 1], 10),
        Some('M') => (&digits[..digits.len() - 1], 20),
        Some('G') => (&digits[..digits.len() - 1], 30),
        Some('T') => (&digits[..digits.len() - 1], 40),
        _ => (digits, 0),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(1 << shift))
        .ok_or_else(|| format!("not a size: {text:?} (e.g. 40G, 512M, 1048576)"))
}

fn open(db: &Path, options: &OpenArgs) -> anyhow::Result<Engine> {
    open_with(db, options, choose_profile(db, options.profile).profile())
}

fn open_with(db: &Path, args: &OpenArgs, profile: Profile) -> anyhow::Result<Engine> {
    let durability = if args.durability_normal {
        Durability::Normal
    } else {
        Durability::Full
    };
    let options = EngineOptions {
        profile,
        db: DbOptions {
            durability,
            mmap_size: args.mmap_mib.saturating_mul(1024 * 1024),
            ..DbOptions::default()
        },
    };
    match postgres_url(db) {
        // The SQLite tuning (durability, memory map) has no PostgreSQL counterpart here: the
        // server's own settings govern.
        Some(url) => Engine::open_url(url, options)
            .with_context(|| format!("opening PostgreSQL database {}", shown_db(db))),
        None => Engine::open(db, options).with_context(|| format!("opening {}", db.display())),
    }
}

/// Whether stderr is a terminal: progress bars are drawn only there.
pub(crate) fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
}

/// A request allocates and frees many small values across worker threads; glibc's malloc spent a
/// seventh of an HTTP request's CPU on them, mimalloc about half as much (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Sub::Serve(args) => logging::init(args.log_format, "info"),
        // The other commands report on stdout and stderr themselves; their log is for warnings.
        _ => logging::init(logging::LogFormat::Text, "warn"),
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Sub) -> anyhow::Result<ExitCode> {
    match command {
        Sub::Demo {
            db,
            options,
            region,
        } => {
            let profile = choose_profile(db.as_deref().unwrap_or(Path::new("")), options.profile);
            let region = images::checked_region(&profile.profile(), &region)?;
            // Kept alive until the demo ends; dropping it removes the temporary database.
            let mut scratch = None;
            let path = match db {
                Some(path) => path,
                None => scratch
                    .insert(tempfile::tempdir().context("creating a temporary directory")?)
                    .path()
                    .join("demo.db"),
            };
            sqlite_only(
                &path,
                "demo",
                "run `imgshare serve --db postgres://… --demo --data-dir DIR --users FILE` instead",
            )?;
            let store = images::data_store(&path, None)?;
            let engine = open(&path, &options)?;
            let shown = if scratch.is_some() {
                "a temporary database, removed at the end (--db FILE keeps one)".to_owned()
            } else {
                path.display().to_string()
            };
            demo(&engine, &store, &region, &shown)?;
        }
        Sub::Serve(args) => serve_command(*args)?,
        Sub::Rebuild { db } => {
            let engine = open(&db.db, &db.options)?;
            let started = Instant::now();
            let terminal = stderr_is_terminal();
            let report = engine.rebuild(|done| {
                if terminal {
                    eprint!("\rrebuilding: {done} events");
                }
            })?;
            let seconds = started.elapsed().as_secs_f64();
            if terminal {
                eprintln!();
            }
            println!(
                "rebuilt {} streams from {} events in {seconds:.2} s ({:.0} events/s); checkpoint at position {}",
                report.streams,
                report.events,
                report.events as f64 / seconds.max(1e-9),
                report.last_position
            );
        }
        Sub::Log(args) => audit::log(&args)?,
        Sub::Replay(args) => audit::replay(&args)?,
        Sub::Audit { command } => audit::audit(&command)?,
        Sub::Head { db } => audit::head(&db)?,
        Sub::Verify(args) => return Ok(audit::verify(&args)),
        Sub::Backup { db, to } => {
            sqlite_only(
                &db,
                "backup",
                "back up a PostgreSQL database with pg_dump (or the server's own backups)",
            )?;
            let anchor = imgshare_store::backup::backup(&db, &to)
                .with_context(|| format!("backing up {} to {}", db.display(), to.display()))?;
            println!("{anchor}");
            eprintln!(
                "backed up {} to {}; its log ends at {anchor}",
                db.display(),
                to.display()
            );
        }
        Sub::Copy(args) => return copy::copy(&args),
        Sub::Users(args) => users::run(&args)?,
        Sub::Images { command } => images::run(&command)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
    let profile = Profile {
        import_size_limit: args.import_size_limit,
        ..choose_profile(&args.db.db, args.db.options.profile).profile()
    };
    // Everything that can be refused is checked before the database is opened: a refused
    // start writes nothing (the demo users file aside, which --demo asks for).
    let regions = identity::regions(&args.region)?;
    for region in &regions {
        profile.check_region(region)?;
    }
    // The directories a database file implies, resolved now: a PostgreSQL URL implies none.
    let data_dir = serve::data_dir(&args.db.db, args.data_dir.clone())?;
    let mut objects_dir = None;
    for region in &regions {
        if !args.swift.covers(region)? {
            objects_dir = Some(serve::objects_dir(&args.db.db, args.objects_dir.clone())?);
            break;
        }
    }
    let mode = identity::mode(&args.identity, args.tokens.as_deref(), args.demo)?;
    let users = match mode {
        identity::IdentityMode::Builtin => Some(identity::load_users(
            &args.identity,
            &args.db.db,
            args.demo,
            &profile,
        )?),
        _ => None,
    };
    let listeners =
        identity::bind_regions(&regions, &args.listen, &args.identity.region_endpoints)?;
    // The catalog's cloudFiles endpoints: as given, else the Swift each region's tasks use.
    let object_store_urls = if args.identity.object_store_urls.is_empty() {
        args.swift.urls()
    } else {
        &args.identity.object_store_urls
    };
    let catalog = identity::catalog(&listeners, object_store_urls)?;
    let identity = identity::setup(mode, &args.identity, args.tokens.as_deref(), users, catalog)?;
    let engine = open_with(&args.db.db, &args.db.options, profile)?;
    let options = serve::ServeOptions {
        listeners,
        identity,
        demo: args.demo,
        data_dir,
        objects_dir,
        swift: args.swift,
        metrics_listen: args.metrics_listen,
        public_endpoint: args.public_endpoint,
        shutdown_timeout: args.shutdown_timeout,
        task_poll_interval: args.task_poll_interval,
        console: !args.no_console,
    };
    serve::serve(engine, &args.db.db, options)
}

/// One step of the walkthrough: a title, the HTTP request it stands for, and the response.
fn show(title: &str, request: &str, response: Result<Value, EngineError>) {
    println!("\n## {title}\n$ {request}");
    match response {
        Ok(body) => println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
        ),
        Err(error) => println!("{} {}: {error}", http_status(&error), error.code()),
    }
}

/// The status the API would answer the error with, as the walkthrough prints it.
fn http_status(error: &EngineError) -> u16 {
    imgshare_server::error::status_of(error.kind()).as_u16()
}

fn status(title: &str, request: &str, result: Result<u16, EngineError>) {
    let response = result.map(|code| serde_json::json!({ "status": code }));
    show(title, request, response);
}

fn demo(
    engine: &Engine,
    store: &dyn ImageDataStore,
    region: &Region,
    database: &str,
) -> anyhow::Result<()> {
    let producer = "111111";
    let consumer = "222222";
    let ctx = |tenant: &str| {
        Context::new(
            Actor::tenant(
                tenant,
                &format!("user-{tenant}"),
                &[engine.profile().full_access_role()],
            ),
            region.clone(),
            Utc::now(),
        )
    };
    let run = |tenant: &str, image_id: Uuid, command: ImageCommand| {
        engine.execute(&ctx(tenant), Command::Image { image_id, command })
    };
    println!(
        "imgshare demo: producer {producer} shares an image with consumer {consumer} in {region}"
    );
    println!("database: {database}");

    let image_id = serve::seed_demo_image(engine, store, region, Uuid::new_v4())?;
    let images = format!("/v2/images/{image_id}");

    show(
        "Producer: the saved image",
        &format!("GET {images}"),
        engine.image_view(&ctx(producer), image_id),
    );
    show(
        "Producer: its members (never shared yet)",
        &format!("GET {images}/members"),
        engine.members_view(&ctx(producer), image_id),
    );
    show(
        "Producer: share the image",
        &format!("POST {images}/members {{\"member\": \"{consumer}\"}}"),
        run(
            producer,
            image_id,
            ImageCommand::AddMember {
                member_id: consumer.into(),
            },
        )
        .and_then(|_| engine.member_view(&ctx(producer), image_id, consumer)),
    );
    show(
        "Consumer: the pending share is not in the default list",
        "GET /v2/images",
        engine.list_images(&ctx(consumer), ""),
    );
    show(
        "Consumer: but the image is there by id",
        &format!("GET {images}"),
        engine.image_view(&ctx(consumer), image_id),
    );
    show(
        "Consumer: the share's status",
        &format!("GET {images}/members"),
        engine.members_view(&ctx(consumer), image_id),
    );
    show(
        "Consumer: accept",
        &format!("PUT {images}/members/{consumer} {{\"status\": \"accepted\"}}"),
        run(
            consumer,
            image_id,
            ImageCommand::SetMemberStatus {
                member_id: consumer.into(),
                status: "accepted".into(),
            },
        )
        .and_then(|_| engine.member_view(&ctx(consumer), image_id, consumer)),
    );
    show(
        "Consumer: now listed",
        "GET /v2/images",
        engine.list_images(&ctx(consumer), ""),
    );
    let other_region = if region.as_str() == "ORD" {
        "DFW"
    } else {
        "ORD"
    };
    let other_region = Region::parse(other_region)?;
    println!(
        "\n## Compute: may the consumer boot it?\n{region}: {}\n{other_region}: {}",
        engine.can_boot(consumer, image_id, region)?,
        engine.can_boot(consumer, image_id, &other_region)?
    );
    show(
        "Consumer: reject",
        &format!("PUT {images}/members/{consumer} {{\"status\": \"rejected\"}}"),
        run(
            consumer,
            image_id,
            ImageCommand::SetMemberStatus {
                member_id: consumer.into(),
                status: "rejected".into(),
            },
        )
        .and_then(|_| engine.member_view(&ctx(consumer), image_id, consumer)),
    );
    status(
        "Consumer: try to delete the shared image",
        &format!("DELETE {images}"),
        run(consumer, image_id, ImageCommand::Delete).map(|_| 204),
    );
    let body = br#"[{"op": "add", "path": "/someAttribute", "value": "someValue"}]"#;
    let document =
        patch::parse_patch_bytes(Some("application/openstack-images-v2.1-json-patch"), body)?;
    show(
        "Producer: update the image",
        &format!("PATCH {images} {}", String::from_utf8_lossy(body)),
        run(producer, image_id, ImageCommand::Update(document))
            .and_then(|_| engine.image_view(&ctx(producer), image_id)),
    );
    status(
        "Producer: remove the consumer",
        &format!("DELETE {images}/members/{consumer}"),
        run(
            producer,
            image_id,
            ImageCommand::RemoveMember {
                member_id: consumer.into(),
            },
        )
        .map(|_| 204),
    );
    show(
        "Consumer: the image is gone",
        &format!("GET {images}"),
        engine.image_view(&ctx(consumer), image_id),
    );
    println!(
        "\n## Compute: may the consumer boot it now?\n{region}: {}",
        engine.can_boot(consumer, image_id, region)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse_size, postgres_url, shown_db};
    use std::path::Path;

    #[test]
    fn urls_are_shown_without_their_password() {
        let shown = |text: &str| shown_db(Path::new(text));
        assert_eq!(
            shown("postgres://app:s3cret@db.example.com:5432/imgshare?sslmode=disable"),
            "postgres://app:***@db.example.com:5432/imgshare?sslmode=disable"
        );
        assert_eq!(
            shown("postgresql://app@db/imgshare"),
            "postgresql://app@db/imgshare"
        );
        assert_eq!(shown("/srv/a:b@c.db"), "/srv/a:b@c.db");
        assert!(postgres_url(Path::new("POSTGRES://h/db")).is_some());
        assert!(postgres_url(Path::new("imgshare.db")).is_none());
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("512mb"), Ok(512 << 20));
        assert_eq!(parse_size("40G"), Ok(40 << 30));
        assert_eq!(parse_size("160GB"), Ok(160 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        for bad in ["", "G", "1.5G", "-1", "12X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
