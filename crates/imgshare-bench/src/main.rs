//! `imgshare-bench list`: fills a database through the real [`Engine`] (every image, member and
//! acceptance is a command decided by the domain and appended to the log, with its projection
//! rows written in the same transaction), then times in-process reads with [`Instant`]:
//! `GET /v2/images` pages, `GET /v2/images/{id}/members` and `GET /v2/images/{id}`.
//!
//! The catalogue is synthetic but shaped like a real one: producer accounts owning about ten
//! snapshots each, member counts per image heavy-tailed up to the member quota, consumers drawn
//! with a skew (a few large accounts hold thousands of shares, most hold a handful), a fraction
//! of shares accepted, public base images, and most images in DFW with some in ORD.

mod http;
mod list_reads;
#[cfg(feature = "postgres")]
mod pg;
mod write;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use chrono::{DateTime, TimeZone, Utc};
use clap::{Args, Parser, Subcommand};
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, Profile, Region,
    StreamId,
};
use imgshare_projection::listing;
use imgshare_projection::query::{
    parse_image_list_query, MemberStatusFilter, QueryDialect, SortDir, SortKey,
};
use imgshare_projection::tables::{image_from_row, ImageRow, IMAGE_COLUMNS};
use imgshare_sql::{params, Dialect, RowExt as _, Sql};
use imgshare_store::{DbOptions, Durability, Engine, EngineOptions};
use serde_json::Value;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "imgshare-bench", about = "In-process benchmarks of imgshare")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Populate a catalogue through the engine, then time list, member-list and GET reads.
    List(ListArgs),
    /// Command throughput (one per transaction, batched, group commit) against bare inserts of
    /// the same event rows.
    Throughput(write::ThroughputArgs),
    /// Replay of an existing log: in-memory fold against a bare scan, full rebuild, peak RSS.
    Replay(write::ReplayArgs),
    /// Requests/s of GET and PATCH on an image over loopback keep-alive connections.
    Http(http::HttpArgs),
}

#[derive(Args)]
struct ListArgs {
    /// Snapshot images owned by producer tenants.
    #[arg(long, default_value_t = 100_000)]
    images: u32,
    /// Image members (shares) in total, over all snapshots.
    #[arg(long, default_value_t = 1_000_000)]
    members: u64,
    /// Producer tenants owning the snapshots (each owns images/tenants on average).
    #[arg(long, default_value_t = 10_000)]
    tenants: u32,
    /// Accounts the members are drawn from; the first `--tenants` of them are the producers.
    #[arg(long, default_value_t = 100_000)]
    consumers: u32,
    /// Public provider base images.
    #[arg(long, default_value_t = 200)]
    base_images: u32,
    /// Fraction of shares the member accepts.
    #[arg(long, default_value_t = 0.2)]
    accepted: f64,
    /// Fraction of images in ORD; the rest are in DFW.
    #[arg(long, default_value_t = 0.1)]
    ord: f64,
    /// Database file; reused as is (no populate) if it exists. Default: a temporary file. With
    /// the `postgres` feature, a `postgres://` URL: that database, populated if its log is empty
    /// and reused as is otherwise (sessions with `synchronous_commit=off`, as SQLite's NORMAL).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Timed rounds per operation; each operation is timed in its own pass over the same
    /// random consumers (the heaviest consumer's rows get a tenth of them).
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Seed of the generator that shapes the catalogue and picks the samples.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What-if: a `PRAGMA name=value` run on the engine's read connection before measuring
    /// (e.g. `cache_size=-262144`, `mmap_size=2147483648`); repeatable. Not the engine's setup.
    #[arg(long, value_name = "NAME=VALUE")]
    reader_pragma: Vec<String>,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        BenchCommand::List(args) => list(&args),
        BenchCommand::Throughput(args) => write::throughput(&args),
        BenchCommand::Replay(args) => write::replay(&args),
        BenchCommand::Http(args) => http::http(&args),
    }
}

/// SplitMix64: small, deterministic, good enough to shape data and pick samples.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn tenant_id(index: u32) -> String {
    (1_000_000 + u64::from(index)).to_string()
}

const ROLES: &[&str] = &["cloudImages:admin"];

fn dfw() -> Result<Region> {
    Ok(Region::parse("DFW")?)
}

/// The catalogue to create, fixed by the arguments and the seed.
struct Plan {
    /// Base images: id, in ORD.
    base: Vec<(Uuid, bool)>,
    /// Snapshots: id, owner index, in ORD.
    snapshots: Vec<(Uuid, u32, bool)>,
    /// `(snapshot index, consumer index)` in execution order.
    adds: Vec<(u32, u32)>,
    /// The subset of `adds` that is accepted, in execution order.
    accepts: Vec<(u32, u32)>,
}

impl Plan {
    fn commands(&self) -> usize {
        self.base.len() + self.snapshots.len() + self.adds.len() + self.accepts.len()
    }
}

/// Heavy-tailed member counts (Pareto, alpha 1.5) scaled so they sum to `total`, each at most
/// `cap`: most images have a few members, some are shared with `cap` accounts.
fn member_counts(rng: &mut Rng, images: usize, total: u64, cap: u32) -> Result<Vec<u32>> {
    ensure!(
        total <= images as u64 * u64::from(cap),
        "{total} members do not fit in {images} images of at most {cap} members each"
    );
    let weights: Vec<f64> = (0..images)
        .map(|_| (1.0 - rng.unit()).powf(-1.0 / 1.5))
        .collect();
    let count = |scale: f64, weight: f64| ((weight * scale) as u64).min(u64::from(cap)) as u32;
    let sum = |scale: f64| -> u64 { weights.iter().map(|w| u64::from(count(scale, *w))).sum() };
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    while sum(high) < total && high < 1e12 {
        high *= 2.0;
    }
    for _ in 0..200 {
        let middle = (low + high) / 2.0;
        if sum(middle) <= total {
            low = middle;
        } else {
            high = middle;
        }
    }
    let mut counts: Vec<u32> = weights.iter().map(|w| count(low, *w)).collect();
    let mut missing = total - counts.iter().map(|c| u64::from(*c)).sum::<u64>();
    while missing > 0 {
        let index = rng.below(images);
        if counts[index] < cap {
            counts[index] += 1;
            missing -= 1;
        }
    }
    Ok(counts)
}

fn plan(args: &ListArgs, member_quota: usize) -> Result<Plan> {
    ensure!(args.tenants > 0, "--tenants must be at least 1");
    ensure!(
        args.consumers >= args.tenants,
        "--consumers includes the producers, so it must be at least --tenants"
    );
    let mut rng = Rng(args.seed);
    let base = (0..args.base_images)
        .map(|_| (rng.uuid(), rng.unit() < args.ord))
        .collect();
    let snapshots: Vec<(Uuid, u32, bool)> = (0..args.images)
        .map(|_| {
            let owner = rng.below(args.tenants as usize) as u32;
            (rng.uuid(), owner, rng.unit() < args.ord)
        })
        .collect();
    let cap = u32::try_from(member_quota)
        .unwrap_or(u32::MAX)
        .min(args.consumers.saturating_sub(1));
    let counts = member_counts(&mut rng, snapshots.len(), args.members, cap)?;
    let mut adds = Vec::with_capacity(args.members as usize);
    let consumers = f64::from(args.consumers);
    for (index, (count, (_, owner, _))) in counts.iter().zip(&snapshots).enumerate() {
        let mut chosen = HashSet::new();
        while chosen.len() < *count as usize {
            // Density ~ 1/sqrt(x): account 0 holds ~sqrt(consumers) times the median's shares.
            let u = rng.unit();
            let consumer = ((consumers * u * u) as u32).min(args.consumers - 1);
            if consumer != *owner && chosen.insert(consumer) {
                adds.push((index as u32, consumer));
            }
        }
    }
    rng.shuffle(&mut adds);
    let mut accepts: Vec<(u32, u32)> = adds
        .iter()
        .copied()
        .filter(|_| rng.unit() < args.accepted)
        .collect();
    rng.shuffle(&mut accepts);
    Ok(Plan {
        base,
        snapshots,
        adds,
        accepts,
    })
}

/// Counts commands and reports on stderr every 50 000.
struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    mark: Instant,
}

impl Progress {
    fn tick(&mut self, phase: &str) {
        self.done += 1;
        if self.done.is_multiple_of(50_000) || self.done == self.total {
            let elapsed = self.start.elapsed().as_secs_f64();
            let recent = self.mark.elapsed().as_secs_f64();
            let recent_count = match self.done % 50_000 {
                0 => 50_000,
                rest => rest,
            };
            eprintln!(
                "populate: {:>9}/{} commands ({phase}), {elapsed:7.1} s, {:>6.0} cmd/s overall, {:>6.0} cmd/s last {recent_count}",
                self.done,
                self.total,
                self.done as f64 / elapsed,
                recent_count as f64 / recent,
            );
            self.mark = Instant::now();
        }
    }
}

fn image_data(rng: &mut Rng) -> ImageActivated {
    ImageActivated {
        size: 1_073_741_824 + rng.next_u64() % 39_728_447_488,
        checksum: format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
        virtual_size: None,
        os_hash_algo: None,
        os_hash_value: None,
    }
}

fn new_image(name: String, rng: &mut Rng) -> NewImage {
    NewImage {
        name: Some(name),
        container_format: Some("ovf".into()),
        disk_format: Some("vhd".into()),
        data: Some(image_data(rng)),
        ..NewImage::default()
    }
}

struct Phase {
    name: &'static str,
    commands: usize,
    elapsed: Duration,
}

fn populate(engine: &Engine, plan: &Plan, seed: u64) -> Result<Vec<Phase>> {
    let dfw = dfw()?;
    let ord = Region::parse("ORD")?;
    let region = |in_ord: bool| if in_ord { ord.clone() } else { dfw.clone() };
    // A simulated clock, one second per command, so created_at values are spread out as in a
    // catalogue built over weeks.
    let epoch: DateTime<Utc> = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .context("epoch")?;
    let mut tick = 0i64;
    let mut now = || {
        tick += 1;
        epoch + chrono::Duration::seconds(tick)
    };
    let mut rng = Rng(seed ^ 0x5EED);
    let mut progress = Progress {
        total: plan.commands(),
        done: 0,
        start: Instant::now(),
        mark: Instant::now(),
    };
    let mut phases = Vec::new();

    let started = Instant::now();
    let operator = Actor::operator("bench");
    for (index, (image_id, in_ord)) in plan.base.iter().enumerate() {
        let ctx = Context::new(operator.clone(), region(*in_ord), now());
        let command = ImageCommand::Register {
            origin: ImageOrigin::Base,
            image: new_image(format!("base-{index}"), &mut rng),
        };
        engine
            .execute(
                &ctx,
                Command::Image {
                    image_id: *image_id,
                    command,
                },
            )
            .with_context(|| format!("registering base image {image_id}"))?;
        progress.tick("base images");
    }
    phases.push(Phase {
        name: "register base image",
        commands: plan.base.len(),
        elapsed: started.elapsed(),
    });

    let started = Instant::now();
    for (index, (image_id, owner, in_ord)) in plan.snapshots.iter().enumerate() {
        let actor = Actor::tenant(&tenant_id(*owner), "bench", ROLES);
        let ctx = Context::new(actor, region(*in_ord), now());
        let command = ImageCommand::Register {
            origin: ImageOrigin::Snapshot {
                server_id: format!("srv-{index}"),
            },
            image: new_image(format!("snap-{}-{index}", tenant_id(*owner)), &mut rng),
        };
        engine
            .execute(
                &ctx,
                Command::Image {
                    image_id: *image_id,
                    command,
                },
            )
            .with_context(|| format!("registering snapshot {image_id}"))?;
        progress.tick("snapshots");
    }
    phases.push(Phase {
        name: "register snapshot",
        commands: plan.snapshots.len(),
        elapsed: started.elapsed(),
    });

    let started = Instant::now();
    for (image, consumer) in &plan.adds {
        let (image_id, owner, in_ord) = plan.snapshots[*image as usize];
        let actor = Actor::tenant(&tenant_id(owner), "bench", ROLES);
        let ctx = Context::new(actor, region(in_ord), now());
        let command = ImageCommand::AddMember {
            member_id: tenant_id(*consumer),
        };
        engine
            .execute(&ctx, Command::Image { image_id, command })
            .with_context(|| format!("adding member {} to {image_id}", tenant_id(*consumer)))?;
        progress.tick("add member");
    }
    phases.push(Phase {
        name: "add member",
        commands: plan.adds.len(),
        elapsed: started.elapsed(),
    });

    let started = Instant::now();
    for (image, consumer) in &plan.accepts {
        let (image_id, _, in_ord) = plan.snapshots[*image as usize];
        let member_id = tenant_id(*consumer);
        let actor = Actor::tenant(&member_id, "bench", ROLES);
        let ctx = Context::new(actor, region(in_ord), now());
        let command = ImageCommand::SetMemberStatus {
            member_id,
            status: "accepted".into(),
        };
        engine
            .execute(&ctx, Command::Image { image_id, command })
            .with_context(|| format!("accepting {image_id}"))?;
        progress.tick("accept share");
    }
    phases.push(Phase {
        name: "accept share",
        commands: plan.accepts.len(),
        elapsed: started.elapsed(),
    });
    Ok(phases)
}

/// What the measurement needs from the populated database (read, never written, here).
struct Catalogue {
    images: i64,
    public_dfw: i64,
    members: i64,
    accepted: i64,
    events: i64,
    /// Consumers with accepted shares of DFW images, and those images.
    shares: Vec<(String, Vec<String>)>,
    /// Images with the most members: id, owner, region, member count.
    crowded: Vec<(String, String, String, i64)>,
}

/// The connection the benchmark's own SQL runs on: the engine's read connection on SQLite, a
/// connection of its own to the same database on PostgreSQL, where the engine lends none.
enum Reader<'e> {
    Sqlite(&'e Engine),
    #[cfg(feature = "postgres")]
    Postgres(Box<imgshare_sql::postgres::PgConn>),
}

/// Evaluates `$body` (a `Result<T>`) with `$conn` bound to the reader's connection, once per
/// backend, so that generic code over [`Sql`] is compiled for each connection type.
macro_rules! reading {
    ($reader:expr, |$conn:ident| $body:expr) => {
        match $reader {
            Reader::Sqlite(engine) => engine.read(|$conn| Ok($crate::attempt(|| $body)))?,
            #[cfg(feature = "postgres")]
            Reader::Postgres($conn) => {
                let $conn: &imgshare_sql::postgres::PgConn = $conn;
                $crate::attempt(|| $body)
            }
        }
    };
}
pub(crate) use reading;

/// Runs `body`: its `?`s then convert to anyhow's error, also inside a closure that must return
/// the engine's.
fn attempt<T>(body: impl FnOnce() -> Result<T>) -> Result<T> {
    body()
}

fn catalogue(reader: &Reader<'_>) -> Result<Catalogue> {
    reading!(reader, |conn| catalogue_on(conn))
}

fn catalogue_on<C: Sql + ?Sized>(conn: &C) -> Result<Catalogue> {
    let count = |sql: &str| -> Result<i64> {
        conn.query_first(sql, params![], |row| row.get::<i64>(0))??
            .context("a count without a row")
    };
    let images = count("SELECT count(*) FROM proj_images")?;
    let public_dfw =
        count("SELECT count(*) FROM proj_images WHERE visibility = 'public' AND region = 'DFW'")?;
    let members = count("SELECT count(*) FROM proj_members")?;
    let accepted = count("SELECT count(*) FROM proj_members WHERE status = 'accepted'")?;
    let events = count("SELECT coalesce(max(position), 0) FROM events")?;
    let mut by_consumer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    conn.query_each(
        "SELECT m.member_id, m.image_id FROM proj_members m \
         JOIN proj_images i ON i.image_id = m.image_id \
         WHERE m.status = 'accepted' AND i.region = 'DFW' AND i.visibility <> 'public'",
        params![],
        |row| {
            by_consumer
                .entry(row.get(0)?)
                .or_default()
                .push(row.get(1)?);
            Ok::<_, imgshare_sql::SqlError>(imgshare_sql::Flow::Continue)
        },
    )??;
    let crowded = conn.query_all(
        "SELECT i.image_id, i.owner, i.region, count(*) AS n FROM proj_members m \
         JOIN proj_images i ON i.image_id = m.image_id \
         GROUP BY i.image_id, i.owner, i.region ORDER BY n DESC, i.image_id LIMIT 200",
        params![],
        |row| Ok::<_, imgshare_sql::SqlError>((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )??;
    Ok(Catalogue {
        images,
        public_dfw,
        members,
        accepted,
        events,
        shares: by_consumer.into_iter().collect(),
        crowded,
    })
}

/// The 1-, 5- and 15-minute load averages: other work on the machine shows in the tails.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|line| {
            line.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let profile = if cfg!(debug_assertions) {
        "debug (numbers are meaningless; use --release)"
    } else {
        "release"
    };
    format!(
        "machine: nproc {cpus}, cpu \"{model}\", linux {kernel}\n\
         build:   {}, {profile}, SQLite {}",
        option_env!("IMGSHARE_BENCH_RUSTC").unwrap_or("rustc unknown"),
        rusqlite::version()
    )
}

/// Reads the database file once so the reads below find it in the OS page cache (this VM
/// reclaims cold page cache, so a database written minutes ago may be half on disk again).
fn warm_page_cache(path: &Path) -> Result<(u64, Duration)> {
    use std::io::Read;
    let started = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        total += read as u64;
    }
    Ok((total, started.elapsed()))
}

fn file_size(path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    [path, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// The PostgreSQL URL `--db` gives, if it gives one.
fn postgres_url(args: &ListArgs) -> Option<&str> {
    args.db
        .as_deref()
        .and_then(Path::to_str)
        .filter(|db| imgshare_store::is_postgres_url(db))
}

fn list(args: &ListArgs) -> Result<()> {
    println!("{}", machine());
    // The list benchmark measures the Rackspace rules; the open refuses a reused database
    // recorded with another profile.
    let options = EngineOptions {
        profile: Profile::rackspace(),
        db: DbOptions {
            durability: Durability::Normal,
            ..Default::default()
        },
    };
    match postgres_url(args) {
        Some(url) => list_postgres(args, url, options),
        None => list_sqlite(args, options),
    }
}

#[cfg(not(feature = "postgres"))]
fn list_postgres(_: &ListArgs, _: &str, _: EngineOptions) -> Result<()> {
    bail!("--db postgres://… needs PostgreSQL support: build with `--features postgres`")
}

/// `list` on PostgreSQL: populated (or reused) and measured as on SQLite, with the
/// benchmark's own SQL on a connection of its own.
#[cfg(feature = "postgres")]
fn list_postgres(args: &ListArgs, url: &str, options: EngineOptions) -> Result<()> {
    ensure!(
        args.reader_pragma.is_empty(),
        "--reader-pragma is SQLite's; PostgreSQL has no such pragmas"
    );
    let url = pg::session_url(url, None, false)?;
    let engine = Engine::open_url(&url, options).context("opening the PostgreSQL database")?;
    let reader = Reader::Postgres(Box::new(
        imgshare_sql::postgres::PgConn::connect(&url).context("connecting to PostgreSQL")?,
    ));
    let reuse = engine.head()?.is_some();
    println!("database: {}", pg::settings(&url)?);
    populate_unless(
        args,
        &engine,
        reuse,
        "the PostgreSQL database",
        "synchronous_commit=off",
    )?;
    if !reuse {
        // A live server's autovacuum analyzes new tables within a minute; do it now so that the
        // plans measured are the ones it would settle on.
        reading!(&reader, |conn| Ok(conn.batch("ANALYZE")?))?;
        println!("ANALYZE run after populating (autovacuum's work on a live server)");
    }
    let catalogue = catalogue(&reader)?;
    let size: i64 = reading!(&reader, |conn| conn
        .query_first(
            "SELECT pg_database_size(current_database())",
            params![],
            |row| row.get::<i64>(0)
        )??
        .context("no database size"))?;
    print_catalogue(args, &catalogue, reuse, size as u64);
    // The tables were just read whole by the catalogue's queries; PostgreSQL's buffers and
    // the OS page cache hold what fits.
    println!();
    list_reads::measure(&engine, &reader, &catalogue, args.samples, args.seed)
}

/// Populates the engine's database unless it is reused.
fn populate_unless(
    args: &ListArgs,
    engine: &Engine,
    reuse: bool,
    name: &str,
    durability: &str,
) -> Result<()> {
    if reuse {
        println!("database: {name} (reused, not populated)");
    } else {
        let plan = plan(args, engine.profile().member_quota)?;
        println!(
            "database: {name} (populating {} commands through Engine::execute, durability {durability})",
            plan.commands()
        );
        let started = Instant::now();
        let phases = populate(engine, &plan, args.seed)?;
        let elapsed = started.elapsed();
        for phase in &phases {
            println!(
                "  {:<20} {:>9} commands in {:>7.1} s = {:>7.0} cmd/s",
                phase.name,
                phase.commands,
                phase.elapsed.as_secs_f64(),
                phase.commands as f64 / phase.elapsed.as_secs_f64().max(1e-9)
            );
        }
        println!(
            "  {:<20} {:>9} commands in {:>7.1} s = {:>7.0} cmd/s",
            "populate total",
            plan.commands(),
            elapsed.as_secs_f64(),
            plan.commands() as f64 / elapsed.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}

fn print_catalogue(args: &ListArgs, catalogue: &Catalogue, reuse: bool, bytes: u64) {
    println!(
        "catalogue: {} images ({} public in DFW), {} members ({} accepted), {} events, {} consumers with accepted DFW shares, {:.0} MiB on disk",
        catalogue.images,
        catalogue.public_dfw,
        catalogue.members,
        catalogue.accepted,
        catalogue.events,
        catalogue.shares.len(),
        bytes as f64 / 1_048_576.0
    );
    let expected_images = i64::from(args.images) + i64::from(args.base_images);
    if reuse && (catalogue.images != expected_images || catalogue.members as u64 != args.members) {
        println!(
            "warning: the reused database does not have the asked size \
             ({expected_images} images, {} members)",
            args.members
        );
    }
}

fn list_sqlite(args: &ListArgs, options: EngineOptions) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let path = args
        .db
        .clone()
        .unwrap_or_else(|| temp.path().join("bench.db"));
    let reuse = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
    let engine =
        Engine::open(&path, options).with_context(|| format!("opening {}", path.display()))?;
    populate_unless(args, &engine, reuse, &path.display().to_string(), "Normal")?;
    let reader = Reader::Sqlite(&engine);
    let catalogue = catalogue(&reader)?;
    print_catalogue(args, &catalogue, reuse, file_size(&path));
    let (bytes, took) = warm_page_cache(&path)?;
    println!(
        "page cache: read the database file once ({:.0} MiB in {:.1} s) before measuring",
        bytes as f64 / 1_048_576.0,
        took.as_secs_f64()
    );
    for pragma in &args.reader_pragma {
        engine.read(|conn| Ok(conn.execute_batch(&format!("PRAGMA {pragma}"))?))?;
        println!("what-if: PRAGMA {pragma} on the read connection (not the engine's default)");
    }
    println!();
    list_reads::measure(&engine, &reader, &catalogue, args.samples, args.seed)
}

/// The allocator `imgshare serve` runs with, so that the HTTP figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
