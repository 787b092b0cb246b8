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
    /// Database file; reused as is (no populate) if it exists. Default: a temporary file.
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

fn catalogue(engine: &Engine) -> Result<Catalogue> {
    Ok(engine.read(|conn| {
        let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
        let images = count("SELECT count(*) FROM proj_images")?;
        let public_dfw = count(
            "SELECT count(*) FROM proj_images WHERE visibility = 'public' AND region = 'DFW'",
        )?;
        let members = count("SELECT count(*) FROM proj_members")?;
        let accepted = count("SELECT count(*) FROM proj_members WHERE status = 'accepted'")?;
        let events = count("SELECT coalesce(max(position), 0) FROM events")?;
        let mut by_consumer: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut statement = conn.prepare(
            "SELECT m.member_id, m.image_id FROM proj_members m \
             JOIN proj_images i ON i.image_id = m.image_id \
             WHERE m.status = 'accepted' AND i.region = 'DFW' AND i.visibility <> 'public'",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            by_consumer
                .entry(row.get(0)?)
                .or_default()
                .push(row.get(1)?);
        }
        let mut statement = conn.prepare(
            "SELECT i.image_id, i.owner, i.region, count(*) AS n FROM proj_members m \
             JOIN proj_images i ON i.image_id = m.image_id \
             GROUP BY i.image_id ORDER BY n DESC, i.image_id LIMIT 200",
        )?;
        let crowded = statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Catalogue {
            images,
            public_dfw,
            members,
            accepted,
            events,
            shares: by_consumer.into_iter().collect(),
            crowded,
        })
    })?)
}

/// Ways to write the SQL of a tenant's default page (Rackspace profile, no filters,
/// `member_status=accepted`, sorted by `created_at desc, id desc`, limit 25).
#[derive(Clone, Copy)]
enum ListSql {
    /// What `listing::list_images` builds, text and parameters alike: the page size is bound
    /// as the last parameter.
    AsListing,
    /// The same with the page size written as a literal.
    LiteralLimit,
    /// A proposed rewrite: each branch of the union keeps only its own first 25 rows in the
    /// page's order (with the page's filters), so the outer sort sees at most 100 candidates.
    TopPerBranch,
}

impl ListSql {
    fn sql(self) -> String {
        let columns = IMAGE_COLUMNS
            .split(", ")
            .map(|column| format!("i.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            ListSql::AsListing | ListSql::LiteralLimit => {
                let limit = match self {
                    ListSql::AsListing => "?",
                    _ => "25",
                };
                format!(
                    "SELECT {columns} FROM proj_images i WHERE i.image_id IN (\
                     SELECT image_id FROM proj_images WHERE owner = ? AND region = ? \
                     UNION SELECT image_id FROM proj_images WHERE visibility = 'public' AND region = ? \
                     UNION SELECT image_id FROM proj_images WHERE owner IS NULL AND region = ? \
                     UNION SELECT m.image_id FROM proj_members m JOIN proj_images s ON s.image_id = m.image_id \
                     WHERE m.member_id = ? AND m.status = ? AND s.region = ? AND s.visibility <> 'public'\
                     ) AND i.status <> 'killed' AND i.os_hidden = 0 \
                     ORDER BY i.created_at DESC, i.image_id DESC LIMIT {limit}"
                )
            }
            ListSql::TopPerBranch => {
                let keep = "status <> 'killed' AND os_hidden = 0";
                let top = "ORDER BY created_at DESC, image_id DESC LIMIT 25";
                format!(
                    "SELECT {columns} FROM proj_images i WHERE i.image_id IN (\
                     SELECT image_id FROM (SELECT image_id FROM proj_images \
                       WHERE owner = ?1 AND region = ?2 AND {keep} {top}) \
                     UNION ALL SELECT image_id FROM (SELECT image_id FROM proj_images \
                       WHERE visibility = 'public' AND region = ?2 AND {keep} {top}) \
                     UNION ALL SELECT image_id FROM (SELECT image_id FROM proj_images \
                       WHERE owner IS NULL AND region = ?2 AND {keep} {top}) \
                     UNION ALL SELECT image_id FROM (SELECT s.image_id FROM proj_members m \
                       JOIN proj_images s ON s.image_id = m.image_id \
                       WHERE m.member_id = ?1 AND m.status = 'accepted' AND s.region = ?2 \
                       AND s.visibility <> 'public' AND s.status <> 'killed' AND s.os_hidden = 0 \
                       ORDER BY s.created_at DESC, s.image_id DESC LIMIT 25)\
                     ) AND i.status <> 'killed' AND i.os_hidden = 0 \
                     ORDER BY i.created_at DESC, i.image_id DESC LIMIT 25"
                )
            }
        }
    }

    fn params(self, tenant: &str) -> Vec<rusqlite::types::Value> {
        let text = |value: &str| rusqlite::types::Value::Text(value.to_owned());
        match self {
            ListSql::AsListing | ListSql::LiteralLimit => {
                let mut params = vec![
                    text(tenant),
                    text("DFW"),
                    text("DFW"),
                    text("DFW"),
                    text(tenant),
                    text("accepted"),
                    text("DFW"),
                ];
                if let ListSql::AsListing = self {
                    params.push(rusqlite::types::Value::Integer(25));
                }
                params
            }
            ListSql::TopPerBranch => vec![text(tenant), text("DFW")],
        }
    }

    /// Runs the query on the engine's read connection; ids only.
    fn ids(self, engine: &Engine, tenant: &str) -> Result<Vec<String>> {
        Ok(engine.read(|conn| {
            Ok(conn
                .prepare_cached(&self.sql())?
                .query_map(rusqlite::params_from_iter(self.params(tenant)), |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?)
        })?)
    }

    fn print_plan(self, engine: &Engine, tenant: &str, title: &str) -> Result<()> {
        let rows: Vec<(i64, i64, String)> = engine.read(|conn| {
            Ok(conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", self.sql()))?
                .query_map(rusqlite::params_from_iter(self.params(tenant)), |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(3)?))
                })?
                .collect::<Result<Vec<_>, _>>()?)
        })?;
        println!("EXPLAIN QUERY PLAN of {title} (tenant {tenant}, DFW):");
        let mut depth: BTreeMap<i64, usize> = BTreeMap::new();
        for (id, parent, detail) in rows {
            let level = depth.get(&parent).map_or(0, |level| level + 1);
            depth.insert(id, level);
            println!("  {}{detail}", "  ".repeat(level));
        }
        Ok(())
    }
}

/// The two queries `listing::page_extras` runs for a page: tags and properties.
fn page_extras(engine: &Engine, ids: &[String]) -> Result<listing::PageExtras> {
    Ok(engine.read(|conn| Ok(listing::page_extras(conn, ids)?))?)
}

/// Times what `listing::list_images` does in Rust once its queries have run: decoding the rows
/// into images and rendering the page's JSON. The queries themselves run untimed.
fn time_rendering(engine: &Engine, tenant: &str) -> Result<(Duration, usize)> {
    let rows: Vec<ImageRow> = engine.read(|conn| {
        Ok(conn
            .prepare_cached(&ListSql::AsListing.sql())?
            .query_map(
                rusqlite::params_from_iter(ListSql::AsListing.params(tenant)),
                image_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?)
    })?;
    let ids: Vec<String> = rows.iter().map(|row| row.id().to_owned()).collect();
    let extras = page_extras(engine, &ids)?;
    let started = Instant::now();
    let images = listing::render_rows(engine.profile(), rows, extras)?;
    let page = serde_json::json!({
        "images": images,
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    let elapsed = started.elapsed();
    Ok((elapsed, page["images"].as_array().map_or(0, Vec::len)))
}

fn page_ids(page: &Value) -> Vec<String> {
    page["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .filter_map(|image| image["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Fails unless the restated SQL matches what the engine parses and returns.
fn check_reproduction(engine: &Engine, tenants: &[&str]) -> Result<()> {
    let query = parse_image_list_query("", &QueryDialect::RACKSPACE)
        .map_err(|error| anyhow::anyhow!("{}", error.message))?;
    ensure!(
        query.sort
            == [
                (SortKey::CreatedAt, SortDir::Desc),
                (SortKey::Id, SortDir::Desc)
            ]
            && query.limit == 25
            && query.member_status == MemberStatusFilter::Accepted,
        "the default list query changed; update ListSql"
    );
    for tenant in tenants {
        let ctx = tenant_ctx(tenant)?;
        let expected = page_ids(&engine.list_images(&ctx, "")?);
        for variant in [
            ListSql::AsListing,
            ListSql::LiteralLimit,
            ListSql::TopPerBranch,
        ] {
            let restated = variant.ids(engine, tenant)?;
            ensure!(
                expected == restated,
                "restated SQL returns other rows than list_images for tenant {tenant}"
            );
        }
    }
    Ok(())
}

fn tenant_ctx(tenant: &str) -> Result<Context> {
    Ok(Context::new(
        Actor::tenant(tenant, "bench", ROLES),
        dfw()?,
        Utc::now(),
    ))
}

struct Series {
    name: String,
    times: Vec<Duration>,
}

impl Series {
    fn new(name: impl Into<String>) -> Self {
        Series {
            name: name.into(),
            times: Vec::new(),
        }
    }

    fn time<T>(&mut self, record: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let value = f()?;
        let elapsed = started.elapsed();
        if record {
            self.times.push(elapsed);
        }
        Ok(value)
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn print_table(series: &[Series]) {
    let width = series
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(9)
        .max(9);
    println!(
        "{:<width$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}",
        "operation", "p50 µs", "p99 µs", "max µs", "mean µs", "samples"
    );
    for s in series {
        let mut times = s.times.clone();
        times.sort();
        let n = times.len();
        if n == 0 {
            continue;
        }
        let at = |q: f64| times[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        let mean = times.iter().sum::<Duration>() / n as u32;
        println!(
            "{:<width$}  {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}  {:>7}",
            s.name,
            micros(at(0.50)),
            micros(at(0.99)),
            micros(times[n - 1]),
            micros(mean),
            n
        );
    }
}

fn next_query(page: &Value) -> Option<String> {
    page["next"]
        .as_str()
        .and_then(|link| link.strip_prefix("/v2/images?"))
        .map(str::to_owned)
}

/// Times each operation in its own pass over the same random consumers (or images), so that
/// one operation does not warm SQLite's page cache for the next one on the same tenant.
fn measure(engine: &Engine, catalogue: &Catalogue, samples: usize, seed: u64) -> Result<()> {
    ensure!(
        !catalogue.shares.is_empty(),
        "no consumer has an accepted share in DFW; nothing to measure"
    );
    ensure!(!catalogue.crowded.is_empty(), "no image has members");
    let crowd_floor = catalogue.crowded[0].3 * 3 / 4;
    let crowded: Vec<_> = catalogue
        .crowded
        .iter()
        .filter(|(_, _, _, n)| *n >= crowd_floor)
        .collect();
    let heaviest = catalogue
        .shares
        .iter()
        .max_by_key(|(_, images)| images.len())
        .map(|(tenant, images)| (tenant.as_str(), images.len()))
        .unwrap_or(("", 0));
    let heaviest_all: i64 = engine.read(|conn| {
        Ok(conn.query_row(
            "SELECT count(*) FROM proj_members WHERE member_id = ?1",
            [heaviest.0],
            |row| row.get(0),
        )?)
    })?;
    let median_shares = {
        let mut lengths: Vec<usize> = catalogue.shares.iter().map(|(_, i)| i.len()).collect();
        lengths.sort_unstable();
        lengths[lengths.len() / 2]
    };

    let mut rng = Rng(seed ^ 0xBE7C);
    let probe: Vec<&str> = (0..20)
        .map(|_| {
            catalogue.shares[rng.below(catalogue.shares.len())]
                .0
                .as_str()
        })
        .chain([heaviest.0])
        .collect();
    check_reproduction(engine, &probe)?;

    let load_before = load_average();
    let warmup = samples.min(200);
    let rounds = warmup + samples;
    // The same draws for every pass: a consumer, one of its accepted shares, a crowded image.
    let draws: Vec<(&str, Uuid, usize)> = (0..rounds)
        .map(|_| {
            let (tenant, shared) = &catalogue.shares[rng.below(catalogue.shares.len())];
            let image = Uuid::parse_str(&shared[rng.below(shared.len())]);
            image.map(|image| (tenant.as_str(), image, rng.below(crowded.len())))
        })
        .collect::<Result<_, _>>()?;
    let contexts: Vec<Context> = draws
        .iter()
        .map(|(tenant, _, _)| tenant_ctx(tenant))
        .collect::<Result<_>>()?;
    let mut next_queries = Vec::with_capacity(rounds);
    let mut first_pages = Vec::with_capacity(rounds);
    for ctx in &contexts {
        let page = engine.list_images(ctx, "")?;
        ensure!(!page_ids(&page).is_empty(), "empty default page");
        next_queries.push(next_query(&page));
        first_pages.push(page_ids(&page));
    }
    let heavy_ctx = tenant_ctx(heaviest.0)?;
    let heavy_rounds = (rounds / 10).max(1);
    let heavy_warmup = (warmup / 10).min(heavy_rounds - 1);

    let mut table = Vec::new();
    let pass = |name: String,
                rounds: usize,
                warmup: usize,
                op: &mut dyn FnMut(usize) -> Result<Value>|
     -> Result<Series> {
        let mut series = Series::new(name);
        for round in 0..rounds {
            let value = series.time(round >= warmup, || op(round))?;
            ensure!(!value.is_null(), "{}: no answer", series.name);
        }
        Ok(series)
    };
    let non_empty = |page: Value| -> Result<Value> {
        ensure!(!page_ids(&page).is_empty(), "empty page");
        Ok(page)
    };
    let ids = |ids: Vec<String>| -> Result<Value> {
        ensure!(!ids.is_empty(), "no rows");
        Ok(Value::from(ids))
    };

    table.push(pass(
        "GET /v2/images (default page of 25)".into(),
        rounds,
        warmup,
        &mut |i| non_empty(engine.list_images(&contexts[i], "")?),
    )?);
    table.push(pass(
        "  its SQL alone, LIMIT ? bound (as listing.rs)".into(),
        rounds,
        warmup,
        &mut |i| ids(ListSql::AsListing.ids(engine, draws[i].0)?),
    )?);
    table.push(pass(
        "  its SQL alone, LIMIT 25 literal".into(),
        rounds,
        warmup,
        &mut |i| ids(ListSql::LiteralLimit.ids(engine, draws[i].0)?),
    )?);
    table.push(pass(
        "  its SQL alone, proposed top 25 per branch".into(),
        rounds,
        warmup,
        &mut |i| ids(ListSql::TopPerBranch.ids(engine, draws[i].0)?),
    )?);
    table.push(pass(
        "  its tags + properties queries alone (25 ids)".into(),
        rounds,
        warmup,
        &mut |i| {
            let (tags, properties) = page_extras(engine, &first_pages[i])?;
            Ok(Value::from(tags.len() + properties.len()))
        },
    )?);
    let mut rendering = Series::new("  its row decoding + JSON alone (25 images)");
    for (round, (tenant, _, _)) in draws.iter().enumerate() {
        let (elapsed, count) = time_rendering(engine, tenant)?;
        ensure!(count > 0, "nothing rendered");
        if round >= warmup {
            rendering.times.push(elapsed);
        }
    }
    table.push(rendering);
    table.push(pass(
        "GET /v2/images?member_status=all&limit=25".into(),
        rounds,
        warmup,
        &mut |i| non_empty(engine.list_images(&contexts[i], "member_status=all&limit=25")?),
    )?);
    table.push(pass(
        "GET /v2/images?marker=… (2nd default page)".into(),
        rounds,
        warmup,
        &mut |i| match &next_queries[i] {
            Some(query) => non_empty(engine.list_images(&contexts[i], query)?),
            None => bail!("the default page of {} has no next link", draws[i].0),
        },
    )?);
    table.push(pass(
        format!(
            "GET /v2/images, heaviest consumer ({} accepted)",
            heaviest.1
        ),
        heavy_rounds,
        heavy_warmup,
        &mut |_| non_empty(engine.list_images(&heavy_ctx, "")?),
    )?);
    table.push(pass(
        "  …its SQL alone, proposed top 25 per branch".into(),
        heavy_rounds,
        heavy_warmup,
        &mut |_| ids(ListSql::TopPerBranch.ids(engine, heaviest.0)?),
    )?);
    table.push(pass(
        format!("  …member_status=all ({heaviest_all} shares)"),
        heavy_rounds,
        heavy_warmup,
        &mut |_| non_empty(engine.list_images(&heavy_ctx, "member_status=all&limit=25")?),
    )?);
    let owners: Vec<(Context, Uuid, i64)> = crowded
        .iter()
        .map(|(image_id, owner, region, count)| {
            let ctx = Context::new(
                Actor::tenant(owner, "bench", ROLES),
                Region::parse(region)?,
                Utc::now(),
            );
            Ok((ctx, Uuid::parse_str(image_id)?, *count))
        })
        .collect::<Result<_>>()?;
    table.push(pass(
        format!(
            "GET /v2/images/{{id}}/members (owner, {}-{} members)",
            crowded.last().map_or(0, |c| c.3),
            crowded[0].3
        ),
        rounds,
        warmup,
        &mut |i| {
            let (ctx, image_id, count) = &owners[draws[i].2];
            let view = engine.members_view(ctx, *image_id)?;
            let listed = view["members"].as_array().map_or(0, Vec::len);
            ensure!(
                listed as i64 == *count,
                "members_view listed {listed} of {count}"
            );
            Ok(view)
        },
    )?);
    table.push(pass(
        "  its fold alone: Engine::load(image stream)".into(),
        rounds,
        warmup,
        &mut |i| {
            let loaded = engine.load(StreamId::Image(owners[draws[i].2].1))?;
            Ok(Value::from(loaded.version))
        },
    )?);
    table.push(pass(
        "GET /v2/images/{id} (consumer, accepted share)".into(),
        rounds,
        warmup,
        &mut |i| {
            let view = engine.image_view(&contexts[i], draws[i].1)?;
            ensure!(view["status"] == "active", "shared image is not active");
            Ok(view)
        },
    )?);

    println!(
        "Sampled {} consumers with accepted DFW shares (median {median_shares} accepted shares); \
         each operation timed in its own pass over the same {samples} draws after {warmup} \
         warm-up rounds; load average {load_before} before, {} after.",
        catalogue.shares.len(),
        load_average()
    );
    println!();
    print_table(&table);
    println!();
    ListSql::AsListing.print_plan(engine, probe[0], "the default page as listing.rs builds it")?;
    println!();
    ListSql::TopPerBranch.print_plan(engine, probe[0], "the proposed top-25-per-branch rewrite")?;
    Ok(())
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

fn list(args: &ListArgs) -> Result<()> {
    println!("{}", machine());
    let temp = tempfile::tempdir()?;
    let path = args
        .db
        .clone()
        .unwrap_or_else(|| temp.path().join("bench.db"));
    let reuse = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
    // The list benchmark measures the Rackspace rules; the open refuses a reused database
    // recorded with another profile.
    let options = EngineOptions {
        profile: Profile::rackspace(),
        db: DbOptions {
            durability: Durability::Normal,
            ..Default::default()
        },
    };
    let engine =
        Engine::open(&path, options).with_context(|| format!("opening {}", path.display()))?;

    if reuse {
        println!("database: {} (reused, not populated)", path.display());
    } else {
        let plan = plan(args, engine.profile().member_quota)?;
        println!(
            "database: {} (populating {} commands through Engine::execute, durability Normal)",
            path.display(),
            plan.commands()
        );
        let started = Instant::now();
        let phases = populate(&engine, &plan, args.seed)?;
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
    let catalogue = catalogue(&engine)?;
    println!(
        "catalogue: {} images ({} public in DFW), {} members ({} accepted), {} events, {} consumers with accepted DFW shares, {:.0} MiB on disk",
        catalogue.images,
        catalogue.public_dfw,
        catalogue.members,
        catalogue.accepted,
        catalogue.events,
        catalogue.shares.len(),
        file_size(&path) as f64 / 1_048_576.0
    );
    let expected_images = i64::from(args.images) + i64::from(args.base_images);
    if reuse && (catalogue.images != expected_images || catalogue.members as u64 != args.members) {
        println!(
            "warning: the reused database does not have the asked size \
             ({expected_images} images, {} members)",
            args.members
        );
    }
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
    measure(&engine, &catalogue, args.samples, args.seed)
}
