//! Write-path benchmarks: command throughput against the bare ceiling of the same database
//! (SQLite, or PostgreSQL with the `postgres` feature), group commit, and replay. Every figure is
//! a ratio or a rate measured in the same run as its reference, because a shared 2-core machine
//! is noisy.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use chrono::Utc;
use clap::Args;
use imgshare_core::{
    Actor, Command, Context, ImageCommand, ImageOrigin, NewImage, Profile, Region,
};
use imgshare_projection::tables;
use imgshare_sql::{params, Sql};
use imgshare_store::{
    db, BatchItem, DbOptions, Durability, Engine, EngineOptions, GroupCommits, RecordedEvent,
};
use rusqlite::Connection;
use uuid::Uuid;

/// `imgshare-bench throughput`.
#[derive(Args)]
pub(crate) struct ThroughputArgs {
    /// Images shared in the workload.
    #[arg(long, default_value_t = 100)]
    pub images: u32,
    /// Members added (and accepted) per image; at most the member quota (128).
    #[arg(long, default_value_t = 100)]
    pub members: u32,
    /// `full`, `normal` or `both`.
    #[arg(long, default_value = "both")]
    pub durability: String,
    /// Caller threads for the group-commit measurement.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
    /// Commands per transaction for the batch-API measurement.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Run one measurement alone (`single` with its bare ceilings, `batch` or `threads`), e.g.
    /// under a profiler.
    #[arg(long, default_value = "all")]
    pub only: String,
    /// A PostgreSQL database to measure on (`postgres://user@host:port/database`, feature
    /// `postgres`): each measurement and ceiling in a fresh schema of it, dropped at the end;
    /// durability `full` is `synchronous_commit=on`, `normal` is `off`. Default: SQLite files
    /// in a temporary directory.
    #[arg(long)]
    pub db: Option<String>,
}

/// Where one durability mode's databases live: a temporary directory of SQLite files, or fresh
/// schemas of one PostgreSQL database. Each measurement gets its own, empty.
enum Target {
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres(Box<crate::pg::Schemas>),
}

/// A connection of the bare ceilings: the same calls through [`Sql`] on either database.
enum Conn {
    Sqlite(Connection),
    #[cfg(feature = "postgres")]
    Postgres(Box<imgshare_sql::postgres::PgConn>),
}

/// Evaluates `$body` with `$conn` bound to the connection in `$target` (a `&Conn`), once per
/// backend, so the generic code below is compiled for each connection type.
macro_rules! on_conn {
    ($target:expr, |$conn:ident| $body:expr) => {
        match $target {
            Conn::Sqlite($conn) => $body,
            #[cfg(feature = "postgres")]
            Conn::Postgres($conn) => {
                let $conn: &imgshare_sql::postgres::PgConn = $conn;
                $body
            }
        }
    };
}

impl Target {
    fn new(db: Option<&str>) -> Result<Self> {
        match db {
            None => Ok(Target::Sqlite(tempfile::tempdir()?)),
            Some(url) => postgres_target(url),
        }
    }

    fn is_postgres(&self) -> bool {
        !matches!(self, Target::Sqlite(_))
    }

    /// An engine on a new database `name`.
    fn engine(&self, name: &str, durability: Durability) -> Result<Engine> {
        match self {
            Target::Sqlite(dir) => open(&dir.path().join(format!("{name}.db")), durability),
            #[cfg(feature = "postgres")]
            Target::Postgres(schemas) => {
                let url = schemas.fresh(name, durability == Durability::Full)?;
                Ok(Engine::open_url(&url, engine_options(durability))?)
            }
        }
    }

    /// A plain connection to the database `name` an engine of this run wrote.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    fn reopen(&self, name: &str, durability: Durability) -> Result<Conn> {
        match self {
            Target::Sqlite(dir) => Ok(Conn::Sqlite(Connection::open(
                dir.path().join(format!("{name}.db")),
            )?)),
            #[cfg(feature = "postgres")]
            Target::Postgres(schemas) => Ok(Conn::Postgres(Box::new(
                imgshare_sql::postgres::PgConn::connect(
                    &schemas.url_of(name, durability == Durability::Full)?,
                )?,
            ))),
        }
    }

    /// A new database `name` with the engine's schema and settings, opened by a plain
    /// connection: what the bare ceilings insert into.
    fn bare(&self, name: &str, durability: Durability) -> Result<Conn> {
        match self {
            Target::Sqlite(dir) => {
                let options = DbOptions {
                    durability,
                    ..DbOptions::default()
                };
                Ok(Conn::Sqlite(db::open_file(
                    &dir.path().join(format!("{name}.db")),
                    &options,
                )?))
            }
            #[cfg(feature = "postgres")]
            Target::Postgres(_) => {
                // The engine's open applies the migrations; its connections are then let go.
                drop(self.engine(name, durability)?);
                self.reopen(name, durability)
            }
        }
    }
}

#[cfg(feature = "postgres")]
fn postgres_target(url: &str) -> Result<Target> {
    ensure!(
        imgshare_store::is_postgres_url(url),
        "--db takes a postgres:// URL (SQLite runs in a temporary directory)"
    );
    Ok(Target::Postgres(Box::new(crate::pg::Schemas::new(url)?)))
}

#[cfg(not(feature = "postgres"))]
fn postgres_target(_: &str) -> Result<Target> {
    anyhow::bail!("--db needs PostgreSQL support: build with `--features postgres`")
}

fn ctx(tenant: &str, region: &Region) -> Context {
    Context::new(
        Actor::tenant(tenant, &format!("user-{tenant}"), &["cloudImages:admin"]),
        region.clone(),
        Utc::now(),
    )
}

/// One command of the workload, with the tenant that sends it.
struct Step {
    tenant: String,
    command: Command,
}

/// Registers one snapshot per producer; returns their ids (not timed).
fn setup(engine: &Engine, images: u32, region: &Region) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for index in 0..images {
        let image_id = Uuid::new_v4();
        let image = NewImage::snapshot_fixture(format!("image-{index}"), 1024);
        let command = ImageCommand::Register {
            origin: ImageOrigin::Snapshot {
                server_id: format!("server-{index}"),
            },
            image,
        };
        engine.execute(
            &ctx(&format!("p{index}"), region),
            Command::Image { image_id, command },
        )?;
        ids.push(image_id);
    }
    Ok(ids)
}

/// "add member / accept": each image's producer shares it, each member accepts.
fn workload(ids: &[Uuid], members: u32) -> Vec<Step> {
    let mut steps = Vec::new();
    for member in 0..members {
        for (index, &image_id) in ids.iter().enumerate() {
            let member_id = format!("c{member}");
            steps.push(Step {
                tenant: format!("p{index}"),
                command: Command::Image {
                    image_id,
                    command: ImageCommand::AddMember {
                        member_id: member_id.clone(),
                    },
                },
            });
            steps.push(Step {
                tenant: member_id.clone(),
                command: Command::Image {
                    image_id,
                    command: ImageCommand::SetMemberStatus {
                        member_id,
                        status: "accepted".into(),
                    },
                },
            });
        }
    }
    steps
}

fn engine_options(durability: Durability) -> EngineOptions {
    EngineOptions {
        profile: Profile::rackspace(),
        db: DbOptions {
            durability,
            ..DbOptions::default()
        },
    }
}

fn open(path: &Path, durability: Durability) -> Result<Engine> {
    Ok(Engine::open(path, engine_options(durability))?)
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Every event row of a database in log order, as stored.
fn stored_rows<C: Sql + ?Sized>(conn: &C) -> Result<Vec<RecordedEvent>> {
    let mut rows = Vec::new();
    imgshare_store::for_each_event(conn, 0, None, |event| -> Result<(), anyhow::Error> {
        rows.push(event);
        Ok(())
    })?;
    Ok(rows)
}

/// How a bare transaction begins.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// [`Sql::begin_write`], the write lock every appender takes: `BEGIN IMMEDIATE` on SQLite,
    /// `BEGIN` and the transaction-scoped advisory lock on PostgreSQL (one round trip).
    Writer,
    /// A plain `BEGIN`: on PostgreSQL, what the ceiling would be without the advisory lock.
    Plain,
}

/// The ceiling: the same event rows inserted into a fresh database with the same schema and
/// settings, `per_transaction` rows per transaction; the first `untimed` rows go in first, in
/// one transaction.
fn bare_inserts<C: Sql + ?Sized>(
    conn: &C,
    rows: &[RecordedEvent],
    untimed: usize,
    per_transaction: usize,
    member_rows: MemberRows,
    lock: Lock,
) -> Result<Duration> {
    let sql = "INSERT INTO events (position, event_id, stream_id, version, event_type, \
               schema_version, data, metadata, recorded_at, prev_hash, hash) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    let insert = |row: &RecordedEvent| -> Result<()> {
        conn.execute(
            sql,
            params![
                row.position,
                &row.event_id.to_string(),
                &row.stream_id,
                i64::try_from(row.version)?,
                &row.event_type,
                row.schema_version,
                &serde_json::to_string(&row.data)?,
                &serde_json::to_string(&row.metadata)?,
                &row.recorded_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                &row.prev_hash,
                &row.hash,
            ],
        )?;
        if member_rows == MemberRows::Written {
            write_member_row(conn, row)?;
        }
        Ok(())
    };
    let (first, timed) = rows.split_at(untimed.min(rows.len()));
    conn.begin_write()?;
    for row in first {
        insert(row)?;
    }
    conn.commit()?;
    // Encoding the row is part of what a writer does; text formatting is done outside the
    // timer only for what the engine also prepares before its transaction (nothing here).
    let started = Instant::now();
    for chunk in timed.chunks(per_transaction.max(1)) {
        match lock {
            Lock::Writer => conn.begin_write()?,
            Lock::Plain => conn.batch("BEGIN")?,
        }
        for row in chunk {
            insert(row)?;
        }
        conn.commit()?;
    }
    Ok(started.elapsed())
}

/// Whether a bare insert also writes the read-model row a member event changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberRows {
    Skipped,
    Written,
}

/// The one `proj_members` row a member event changes, written by the engine's own function: the
/// least a command of the workload must write besides its event.
fn write_member_row<C: Sql + ?Sized>(conn: &C, row: &RecordedEvent) -> Result<()> {
    let status = match row.event_type.as_str() {
        "member_added" => "pending",
        "member_status_changed" => "accepted",
        _ => return Ok(()),
    };
    let member_id = row
        .data
        .get("member_id")
        .and_then(serde_json::Value::as_str)
        .context("a member event without member_id")?;
    let image_id = row.stream_id.trim_start_matches("image-");
    tables::upsert_member_row(
        conn,
        image_id,
        member_id,
        status,
        row.recorded_at,
        row.recorded_at,
    )?;
    Ok(())
}

/// Which bare ceiling a measured rate is set against.
#[derive(Clone, Copy)]
enum Reference {
    /// The event rows, one per transaction (for one command per transaction).
    RowPerTransaction,
    /// The event row and member row of each command, a batch per transaction (for the ways
    /// that share transactions).
    CommandRowsBatched,
    /// The same ceiling, and beside it the same rows at `--threads` per transaction: the
    /// largest group that many blocking callers can form (for group commit from threads).
    CommandRowsGrouped,
}

struct Measured {
    label: String,
    commands: usize,
    elapsed: Duration,
    reference: Reference,
}

/// The bare ceilings' rates, when measured (`--only single` or `all`).
struct Ceilings {
    row_per_transaction: f64,
    command_rows_batched: f64,
    command_rows_grouped: f64,
}

fn print_ceiling(label: &str, rows: usize, elapsed: Duration) {
    println!(
        "  {label:<46} {rows:>8} in {:>7.2} s = {:>8.0} /s",
        elapsed.as_secs_f64(),
        rate(rows, elapsed)
    );
}

fn print_rows(rows: &[Measured], ceilings: Option<&Ceilings>) {
    for row in rows {
        let per_second = rate(row.commands, row.elapsed);
        let ratio = ceilings.map_or(String::new(), |ceilings| {
            let share = |reference: f64| 100.0 * per_second / reference.max(1e-9);
            match row.reference {
                Reference::RowPerTransaction => format!(
                    "  ({:>5.1} % of the 1-row-per-tx ceiling)",
                    share(ceilings.row_per_transaction)
                ),
                Reference::CommandRowsBatched => format!(
                    "  ({:>5.1} % of the batched two-row ceiling)",
                    share(ceilings.command_rows_batched)
                ),
                Reference::CommandRowsGrouped => format!(
                    "  ({:>5.1} % of the batched two-row ceiling, {:.1} % of the same rows at one per thread per tx)",
                    share(ceilings.command_rows_batched),
                    share(ceilings.command_rows_grouped)
                ),
            }
        });
        println!(
            "  {:<46} {:>8} in {:>7.2} s = {:>8.0} /s{ratio}",
            row.label,
            row.commands,
            row.elapsed.as_secs_f64(),
            per_second,
        );
    }
}

/// `imgshare-bench throughput`.
pub(crate) fn throughput(args: &ThroughputArgs) -> Result<()> {
    ensure!(
        args.members <= 128,
        "--members is at most the member quota, 128"
    );
    let modes: Vec<Durability> = match args.durability.as_str() {
        "full" => vec![Durability::Full],
        "normal" => vec![Durability::Normal],
        "both" => vec![Durability::Full, Durability::Normal],
        other => anyhow::bail!("--durability: full, normal or both, not {other:?}"),
    };
    let (run_single, run_batch, run_threads) = match args.only.as_str() {
        "all" => (true, true, true),
        "batch" => (false, true, false),
        "threads" => (false, false, true),
        "single" => (true, false, false),
        other => anyhow::bail!("--only: all, single, batch or threads, not {other:?}"),
    };
    let region = Region::parse("DFW")?;
    for durability in modes {
        let target = Target::new(args.db.as_deref())?;
        let name = format!("{durability:?}").to_lowercase();
        let commands = 2 * args.images as usize * args.members as usize;
        let on = if target.is_postgres() {
            let synchronous = if durability == Durability::Full {
                "on"
            } else {
                "off"
            };
            format!(" (PostgreSQL, synchronous_commit={synchronous})")
        } else {
            String::new()
        };
        println!(
            "durability {name}{on}: workload add member / accept, {} images x {} members = {commands} commands",
            args.images, args.members,
        );
        let mut rows = Vec::new();
        let mut ceilings = None;
        if run_single {
            let BareTimes {
                single,
                bare,
                bare_unlocked,
                bare_batched,
                bare_commands,
                bare_commands_grouped,
            } = measure_single(&target, durability, args, &region)?;
            print_ceiling(
                "bare ceiling: INSERT of the same rows, 1 tx each",
                commands,
                bare,
            );
            if let Some(unlocked) = bare_unlocked {
                print_ceiling(
                    "bare: the same, 1 tx each, no advisory lock",
                    commands,
                    unlocked,
                );
            }
            print_ceiling(
                &format!("bare: the same INSERTs, {} per tx", args.batch),
                commands,
                bare_batched,
            );
            print_ceiling(
                &format!("bare: + each one's member row, {} per tx", args.batch),
                commands,
                bare_commands,
            );
            // For context: a group can hold at most one command per caller thread.
            print_ceiling(
                &format!(
                    "bare: + each one's member row, {} per tx",
                    args.threads.max(1)
                ),
                commands,
                bare_commands_grouped,
            );
            ceilings = Some(Ceilings {
                row_per_transaction: rate(commands, bare),
                command_rows_batched: rate(commands, bare_commands),
                command_rows_grouped: rate(commands, bare_commands_grouped),
            });
            rows.push(Measured {
                label: "Engine::execute, 1 command per tx".into(),
                commands,
                elapsed: single,
                reference: Reference::RowPerTransaction,
            });
        }
        if run_batch {
            rows.push(Measured {
                label: format!("Engine::execute_batch, {} per tx", args.batch),
                commands,
                elapsed: measure_batch(&target, durability, args, &region)?,
                reference: Reference::CommandRowsBatched,
            });
        }
        if run_threads {
            let (elapsed, groups) = measure_threads(&target, durability, args, &region)?;
            rows.push(Measured {
                label: format!(
                    "Engine::execute from {} threads ({:.1} per group)",
                    args.threads.max(1),
                    groups.mean_size()
                ),
                commands,
                elapsed,
                reference: Reference::CommandRowsGrouped,
            });
        }
        print_rows(&rows, ceilings.as_ref());
    }
    Ok(())
}

/// The times of `measure_single`.
struct BareTimes {
    /// `execute`, one command per transaction.
    single: Duration,
    /// The event rows, one per transaction.
    bare: Duration,
    /// The same without the write lock (PostgreSQL: the advisory lock's share of `bare`).
    bare_unlocked: Option<Duration>,
    /// The event rows, `--batch` per transaction.
    bare_batched: Duration,
    /// The event rows and the member row each changes, `--batch` per transaction.
    bare_commands: Duration,
    /// The same, `--threads` per transaction (the largest group the threads can form).
    bare_commands_grouped: Duration,
}

/// One command per transaction through `execute`, then the bare ceilings over the rows that run
/// stored.
fn measure_single(
    target: &Target,
    durability: Durability,
    args: &ThroughputArgs,
    region: &Region,
) -> Result<BareTimes> {
    let engine = target.engine("engine", durability)?;
    let ids = setup(&engine, args.images, region)?;
    let setup_events = engine.head()?.map_or(0, |(position, _)| position);
    let steps = workload(&ids, args.members);
    let started = Instant::now();
    for step in &steps {
        engine.execute(&ctx(&step.tenant, region), step.command.clone())?;
    }
    let single = started.elapsed();
    drop(engine);

    let rows = on_conn!(&target.reopen("engine", durability)?, |conn| stored_rows(
        conn
    ))?;
    let untimed = usize::try_from(setup_events)?;
    ensure!(
        rows.len() == untimed + steps.len(),
        "expected one event per command"
    );
    let bare_into = |name: &str, per_transaction: usize, member_rows: MemberRows, lock: Lock| {
        on_conn!(&target.bare(name, durability)?, |conn| bare_inserts(
            conn,
            &rows,
            untimed,
            per_transaction,
            member_rows,
            lock,
        ))
    };
    let bare = bare_into("bare", 1, MemberRows::Skipped, Lock::Writer)?;
    let bare_unlocked = if target.is_postgres() {
        #[cfg(feature = "postgres")]
        if let Target::Postgres(schemas) = target {
            println!(
                "{}",
                schemas.settings_of("bare", durability == Durability::Full)?
            );
        }
        Some(bare_into(
            "bare_unlocked",
            1,
            MemberRows::Skipped,
            Lock::Plain,
        )?)
    } else {
        None
    };
    let bare_batched = bare_into(
        "bare_batched",
        args.batch,
        MemberRows::Skipped,
        Lock::Writer,
    )?;
    let bare_commands = bare_into(
        "bare_commands",
        args.batch,
        MemberRows::Written,
        Lock::Writer,
    )?;
    let bare_commands_grouped = bare_into(
        "bare_commands_grouped",
        args.threads.max(1),
        MemberRows::Written,
        Lock::Writer,
    )?;
    Ok(BareTimes {
        single,
        bare,
        bare_unlocked,
        bare_batched,
        bare_commands,
        bare_commands_grouped,
    })
}

/// The batch API: many commands in one transaction.
fn measure_batch(
    target: &Target,
    durability: Durability,
    args: &ThroughputArgs,
    region: &Region,
) -> Result<Duration> {
    let engine = target.engine("batch", durability)?;
    let ids = setup(&engine, args.images, region)?;
    let steps = workload(&ids, args.members);
    let started = Instant::now();
    for chunk in steps.chunks(args.batch.max(1)) {
        let items: Vec<BatchItem> = chunk
            .iter()
            .map(|step| BatchItem {
                ctx: ctx(&step.tenant, region),
                command_id: Uuid::now_v7(),
                command: step.command.clone(),
            })
            .collect();
        for result in engine.execute_batch(items)? {
            result?;
        }
    }
    Ok(started.elapsed())
}

/// Group commit: concurrent callers of `execute` share transactions. Returns the time and the
/// groups the timed commands formed.
fn measure_threads(
    target: &Target,
    durability: Durability,
    args: &ThroughputArgs,
    region: &Region,
) -> Result<(Duration, GroupCommits)> {
    let engine = Arc::new(target.engine("group", durability)?);
    let ids = setup(&engine, args.images, region)?;
    let before = engine.group_commits();
    let steps = Arc::new(workload(&ids, args.members));
    let threads = args.threads.max(1);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let engine = Arc::clone(&engine);
            let steps = Arc::clone(&steps);
            let region = region.clone();
            std::thread::spawn(move || -> Result<()> {
                // Each thread owns whole images, so each accept follows its add.
                for step in steps.iter().filter(|step| match &step.command {
                    Command::Image { image_id, .. } => {
                        (image_id.as_u128() % threads as u128) as usize == thread
                    }
                    Command::Task { .. } => false,
                }) {
                    engine.execute(&ctx(&step.tenant, &region), step.command.clone())?;
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("a caller thread panicked"))??;
    }
    let elapsed = started.elapsed();
    let after = engine.group_commits();
    Ok((
        elapsed,
        GroupCommits {
            groups: after.groups - before.groups,
            commands: after.commands - before.commands,
        },
    ))
}

/// `imgshare-bench replay`.
#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// A database with a log to replay (e.g. the one `imgshare-bench list --db` filled). It is
    /// read, and its read models are rebuilt in a copy, never in place.
    #[arg(long)]
    pub db: std::path::PathBuf,
    /// Also rebuild with the file memory-mapped (`DbOptions::mmap_size`, this many MiB), after
    /// the plain rebuild so that the peak RSS of the plain one is measured first.
    #[arg(long, default_value_t = 0, value_name = "MIB")]
    pub mmap_mib: u64,
}

/// Peak resident set size of this process so far (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn print_rss(after: &str) {
    match peak_rss_mib() {
        Some(mib) => println!("  peak RSS after {after}: {mib:.0} MiB"),
        None => println!("  peak RSS after {after}: not available"),
    }
}

/// `imgshare-bench replay`: the fold of every stream against a bare scan of the same rows, and
/// a full rebuild of the read models; the peak RSS after each shows that nothing is held.
pub(crate) fn replay(args: &ReplayArgs) -> Result<()> {
    ensure!(
        args.db.is_file(),
        "{} is not a database file",
        args.db.display()
    );
    let conn = Connection::open_with_flags(
        &args.db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    print_rss("opening");
    // Both passes read the same pages; read the file once so neither pays for the disk.
    let mut file = std::fs::File::open(&args.db)?;
    std::io::copy(&mut file, &mut std::io::sink())?;

    // The ceiling: the same query the fold uses, each row's data parsed as JSON.
    let started = Instant::now();
    let mut scanned = 0_usize;
    let mut statement = conn.prepare(
        "SELECT stream_id, version, event_type, schema_version, data, recorded_at \
         FROM events ORDER BY stream_id, version",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let data: String = row.get(4)?;
        let value: serde_json::Value = serde_json::from_str(&data)?;
        std::hint::black_box(&value);
        scanned += 1;
    }
    drop(rows);
    let bare = started.elapsed();
    print_rss("the bare scan");

    let started = Instant::now();
    let mut streams = 0_usize;
    let report = imgshare_store::engine::fold_streams(
        &conn,
        None,
        |state, _| {
            std::hint::black_box(state);
            streams += 1;
            Ok(())
        },
        &mut |_| {},
    )?;
    let folded = usize::try_from(report.events)?;
    let fold = started.elapsed();
    print_rss("the fold");
    ensure!(
        folded == scanned,
        "the fold saw {folded} events, the scan {scanned}"
    );

    let dir = tempfile::tempdir_in(args.db.parent().unwrap_or(Path::new(".")))?;
    let (rebuild, report) = rebuild_copy(&args.db, dir.path(), 0)?;
    print_rss("the rebuild");
    let mapped = if args.mmap_mib > 0 {
        let (elapsed, _) = rebuild_copy(&args.db, dir.path(), args.mmap_mib * 1024 * 1024)?;
        print_rss("the rebuild with a memory map (mapped file pages count)");
        Some(elapsed)
    } else {
        None
    };

    println!("{scanned} events in {streams} streams");
    println!(
        "  {:<52} {:>7.2} s = {:>9.0} events/s",
        "bare scan + JSON parse of data (ORDER BY stream)",
        bare.as_secs_f64(),
        rate(scanned, bare)
    );
    println!(
        "  {:<52} {:>7.2} s = {:>9.0} events/s ({:.0} % of the bare scan)",
        "fold of every stream in memory (decode + apply)",
        fold.as_secs_f64(),
        rate(folded, fold),
        100.0 * bare.as_secs_f64() / fold.as_secs_f64().max(1e-9)
    );
    println!(
        "  {:<52} {:>7.2} s = {:>9.0} events/s ({} streams written)",
        "Engine::rebuild (fold + read-model rows, one tx)",
        rebuild.as_secs_f64(),
        rate(usize::try_from(report.events)?, rebuild),
        report.streams
    );
    if let Some(mapped) = mapped {
        println!(
            "  {:<52} {:>7.2} s = {:>9.0} events/s",
            format!("the same, file mapped (mmap_size {} MiB)", args.mmap_mib),
            mapped.as_secs_f64(),
            rate(usize::try_from(report.events)?, mapped),
        );
    }
    Ok(())
}

/// Rebuilds the read models of a copy of `db` made in `dir`; returns the rebuild's time.
fn rebuild_copy(
    db: &Path,
    dir: &Path,
    mmap_size: u64,
) -> Result<(Duration, imgshare_store::RebuildReport)> {
    // A name per run, so no WAL of an earlier copy can meet this one.
    let copy = dir.join(format!("rebuild-{mmap_size}.db"));
    std::fs::copy(db, &copy)?;
    let engine = Engine::open(
        &copy,
        EngineOptions {
            profile: Profile::rackspace(),
            db: DbOptions {
                durability: Durability::Normal,
                mmap_size,
                ..DbOptions::default()
            },
        },
    )?;
    // The copy's pages were just written, so both rebuilds start from a warm page cache.
    let started = Instant::now();
    let report = engine.rebuild(|_| {})?;
    let elapsed = started.elapsed();
    drop(engine);
    std::fs::remove_file(&copy)?;
    Ok((elapsed, report))
}
