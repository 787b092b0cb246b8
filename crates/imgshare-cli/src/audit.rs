//! The audit commands: `log`, `replay`, `audit access`, `audit history`, `head` and `verify`.
//!
//! All but `replay` without `--to` open a file read-only, so an audit never changes the file it
//! looks at (a PostgreSQL database is opened as a server opens it, and only read); none of them
//! creates a missing database. They judge the log by the profile the database records
//! (`imgshare_store::meta`), not by a default.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use imgshare_core::{Aggregate, StreamId};
use imgshare_projection::views;
use imgshare_store::{Anchor, AsOf, LogFilter, LogLine};
use imgshare_store::{DbOptions, Engine, EngineOptions};
use serde_json::json;
use uuid::Uuid;

use crate::ProfileArg;

/// The database an audit command reads.
#[derive(Args)]
pub(crate) struct ExistingDb {
    /// The SQLite database file (must exist; it is never created), or a PostgreSQL URL (of a
    /// database that holds an imgshare log; `replay` without `--to` takes a file only).
    #[arg(long, env = "IMGSHARE_DB", default_value = "imgshare.db")]
    db: PathBuf,
    /// The rule set to judge the log by (`rackspace` or `glance`); default: the one the database
    /// records. Another one than recorded is refused.
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,
}

impl ExistingDb {
    /// `db`, judged by `profile` or by the profile it records.
    pub(crate) fn new(db: PathBuf, profile: Option<ProfileArg>) -> Self {
        ExistingDb { db, profile }
    }

    fn check(&self) -> anyhow::Result<&Path> {
        crate::sqlite_only(
            &self.db,
            "replay",
            "without --to it rebuilds a file's read models with a memory map; \
             `imgshare rebuild --db URL` rebuilds a PostgreSQL database's",
        )?;
        if !self.db.is_file() {
            bail!("no database at {}", self.db.display());
        }
        Ok(&self.db)
    }

    /// The profile the log was written with: the database's record, or `--profile` for a
    /// database that records none (the open refuses a `--profile` that differs from the record).
    fn profile(&self, path: &Path) -> anyhow::Result<ProfileArg> {
        let stored = imgshare_store::stored_profile_of(path)
            .with_context(|| format!("reading the profile of {}", path.display()))?;
        match (self.profile, stored) {
            (Some(given), _) => Ok(given),
            (None, Some(kind)) => Ok(ProfileArg::of(kind)),
            (None, None) => bail!(
                "{} does not record the profile it was written with (no read-write open since \
                 the version that records it); pass --profile rackspace or --profile glance",
                path.display()
            ),
        }
    }

    /// The database, for commands that only read it: a file read-only; a PostgreSQL database
    /// through [`Engine::open_url`] (PostgreSQL has no read-only open here: the commands only
    /// read, but the open brings an older schema up to date, as a server's would), refused
    /// unless it records a profile, so that it is never created.
    pub(crate) fn open_existing(&self) -> anyhow::Result<Engine> {
        let Some(url) = crate::postgres_url(&self.db) else {
            return self.open_read_only();
        };
        let shown = crate::shown_db(&self.db);
        let stored = imgshare_store::stored_profile_at(url)
            .with_context(|| format!("reading the profile of {shown}"))?;
        // A database without a record holds no imgshare log: opening it would create the schema.
        let Some(stored) = stored else {
            bail!("no imgshare database at {shown} (no recorded profile)");
        };
        let profile = self.profile.unwrap_or(ProfileArg::of(stored));
        let options = EngineOptions {
            profile: profile.profile(),
            ..EngineOptions::default()
        };
        Engine::open_url(url, options)
            .with_context(|| format!("opening PostgreSQL database {shown}"))
    }

    fn open_read_only(&self) -> anyhow::Result<Engine> {
        let path = self.check()?;
        let profile = self.profile(path)?;
        Engine::open_read_only(path, profile.profile())
            .with_context(|| format!("opening {} read-only", path.display()))
    }
}

/// `imgshare verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    db: ExistingDb,
    /// An anchor noted earlier with `imgshare head` (`POSITION:HASH`): the event at POSITION
    /// must still be there with that hash, which, with the hash chain, proves the log up to it
    /// was neither truncated nor rewritten.
    #[arg(long, value_name = "POSITION:HASH")]
    expect_head: Option<Anchor>,
}

/// `imgshare log`.
#[derive(Args)]
pub(crate) struct LogArgs {
    #[command(flatten)]
    db: ExistingDb,
    /// Only this stream (`image-<uuid>` or `task-<uuid>`).
    #[arg(long)]
    stream: Option<String>,
    /// Only this event type (e.g. `member_added`).
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only events this account caused or is named in (owner, member).
    #[arg(long)]
    account: Option<String>,
    /// Only events recorded at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Only events recorded at or before this RFC 3339 time.
    #[arg(long)]
    until: Option<DateTime<Utc>>,
}

/// `imgshare replay`.
#[derive(Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    db: ExistingDb,
    /// Print the catalogue as of this position or RFC 3339 time as JSON lines instead of
    /// rebuilding; the stored read models are left as they are.
    #[arg(long)]
    to: Option<String>,
    /// Rebuild reading the file through a memory map of up to this many MiB: faster on a large
    /// log (each stream's events are scattered over it), and the mapped pages count in the
    /// resident set. 0 reads without a map.
    #[arg(long, default_value_t = 0, value_name = "MIB", conflicts_with = "to")]
    mmap_mib: u64,
}

/// `imgshare audit`.
#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Which accounts could see and boot an image at a moment, and why (JSON).
    Access {
        /// The image id.
        image: Uuid,
        /// A log position or an RFC 3339 time.
        #[arg(long)]
        at: String,
        #[command(flatten)]
        db: ExistingDb,
    },
    /// Every event of an image with actor, region, request id and time (JSON lines).
    History {
        /// The image id.
        image: Uuid,
        #[command(flatten)]
        db: ExistingDb,
    },
}

/// Writes one line; a closed pipe (`imgshare log | head`) ends the output quietly.
fn emit(out: &mut impl Write, line: &str) -> io::Result<bool> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error),
    }
}

fn flush(out: &mut impl Write) -> anyhow::Result<()> {
    match out.flush() {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

pub(crate) fn log(args: &LogArgs) -> anyhow::Result<()> {
    let engine = args.db.open_existing()?;
    let filter = LogFilter {
        stream: args.stream.clone(),
        event_type: args.event_type.clone(),
        account: args.account.clone(),
        since: args.since,
        until: args.until,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut open = true;
    let mut failure: Option<io::Error> = None;
    engine.for_each_logged(&filter, |stored| {
        if open {
            match serde_json::to_string(&LogLine::from(stored)) {
                Ok(line) => match emit(&mut out, &line) {
                    Ok(still_open) => open = still_open,
                    Err(error) => {
                        failure = Some(error);
                        open = false;
                    }
                },
                Err(error) => {
                    failure = Some(error.into());
                    open = false;
                }
            }
        }
        Ok(())
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    flush(&mut out)
}

/// `\r[#####.....]  50% 5000/10000 events` on stderr, only when stderr is a terminal: redrawn
/// lines in a journal or a log file are noise (the summary line is printed either way).
fn progress_bar(done: u64, total: u64) {
    const WIDTH: u64 = 30;
    if !crate::stderr_is_terminal() {
        return;
    }
    let total = total.max(1);
    let filled = (done.min(total) * WIDTH / total) as usize;
    eprint!(
        "\r[{}{}] {:3}% {done}/{total} events",
        "#".repeat(filled),
        ".".repeat(WIDTH as usize - filled),
        done.min(total) * 100 / total
    );
}

/// Ends the progress bar's line, if there is one.
fn end_progress_bar() {
    if crate::stderr_is_terminal() {
        eprintln!();
    }
}

pub(crate) fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    match &args.to {
        None => {
            let path = args.db.check()?;
            let options = EngineOptions {
                profile: args.db.profile(path)?.profile(),
                db: DbOptions {
                    mmap_size: args.mmap_mib.saturating_mul(1024 * 1024),
                    ..DbOptions::default()
                },
            };
            rebuild(path, options)
        }
        Some(to) => replay_to(args, &AsOf::parse(to)?),
    }
}

fn rebuild(path: &Path, options: EngineOptions) -> anyhow::Result<()> {
    let engine =
        Engine::open(path, options).with_context(|| format!("opening {}", path.display()))?;
    let total = engine.head()?;
    let total = total.map_or(0, |(position, _)| u64::try_from(position).unwrap_or(0));
    let started = Instant::now();
    let report = engine.rebuild(|done| progress_bar(done, total))?;
    let seconds = started.elapsed().as_secs_f64();
    end_progress_bar();
    println!(
        "rebuilt {} streams: {} events in {seconds:.2} s ({:.0} events/s); checkpoint at position {}",
        report.streams,
        report.events,
        report.events as f64 / seconds.max(1e-9),
        report.last_position
    );
    Ok(())
}

fn replay_to(args: &ReplayArgs, as_of: &AsOf) -> anyhow::Result<()> {
    let engine = args.db.open_existing()?;
    let profile = engine.profile();
    let position = engine.position_at(*as_of)?;
    let as_of = match as_of {
        AsOf::Position(_) => format!("position {position}"),
        AsOf::Time(_) => format!("{as_of} (position {position})"),
    };
    let total = u64::try_from(position).unwrap_or(0);
    let started = Instant::now();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut open = true;
    let mut failure: Option<io::Error> = None;
    let mut done = 0_u64;
    let mut streams = 0_u64;
    engine.for_each_state_as_of(position, |state, last_position| {
        let line = match &state {
            Aggregate::Image(Some(image)) => {
                let members: Vec<_> = image.members.values().cloned().collect();
                json!({
                    "stream": StreamId::Image(image.id).to_string(),
                    "last_position": last_position,
                    "image": views::image(profile, image),
                    "members": views::members(&image.id.to_string(), &members)["members"],
                })
            }
            Aggregate::Task(Some(task)) => json!({
                "stream": StreamId::Task(task.id).to_string(),
                "last_position": last_position,
                "task": views::task(profile, task),
            }),
            Aggregate::Image(None) | Aggregate::Task(None) => return Ok(()),
        };
        streams += 1;
        if open {
            match emit(&mut out, &line.to_string()) {
                Ok(still_open) => open = still_open,
                Err(error) => {
                    failure = Some(error);
                    open = false;
                }
            }
        }
        let before = done;
        done = done.max(u64::try_from(last_position).unwrap_or(0));
        if done / 10_000 != before / 10_000 {
            progress_bar(done, total);
        }
        Ok(())
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    flush(&mut out)?;
    let seconds = started.elapsed().as_secs_f64();
    progress_bar(total, total);
    end_progress_bar();
    eprintln!(
        "replayed {streams} streams as of {as_of}: {total} events in {seconds:.2} s ({:.0} events/s); stored read models untouched",
        total as f64 / seconds.max(1e-9)
    );
    Ok(())
}

pub(crate) fn audit(command: &AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Access { image, at, db } => {
            let engine = db.open_existing()?;
            let report = engine.access_at(*image, AsOf::parse(at)?)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        AuditCommand::History { image, db } => {
            let engine = db.open_existing()?;
            let mut out = io::BufWriter::new(io::stdout().lock());
            for entry in engine.history(*image)? {
                if !emit(&mut out, &serde_json::to_string(&entry)?)? {
                    break;
                }
            }
            flush(&mut out)?;
        }
    }
    Ok(())
}

/// `imgshare head`: the log's anchor on stdout.
pub(crate) fn head(db: &Path) -> anyhow::Result<()> {
    if crate::postgres_url(db).is_some() {
        let engine = ExistingDb::new(db.to_owned(), None).open_existing()?;
        println!("{}", engine.anchor()?);
        return Ok(());
    }
    if !db.is_file() {
        bail!("no database at {}", db.display());
    }
    let anchor = imgshare_store::anchor_of(db)
        .with_context(|| format!("opening {} read-only", db.display()))?;
    println!("{anchor}");
    Ok(())
}

/// `imgshare verify`: 0 verified, 1 a difference found, 2 the check could not run.
pub(crate) fn verify(args: &VerifyArgs) -> ExitCode {
    match verify_report(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints the report; true if nothing differs.
fn verify_report(args: &VerifyArgs) -> anyhow::Result<bool> {
    let engine = args.db.open_existing()?;
    let report = engine.verify()?;
    let mismatch = match &args.expect_head {
        Some(expected) => engine.check_anchor(expected)?,
        None => None,
    };
    let mut shown = serde_json::to_value(&report)?;
    if let (Some(expected), Some(object)) = (&args.expect_head, shown.as_object_mut()) {
        object.insert(
            "expected_head".to_owned(),
            json!({"anchor": expected.to_string(), "mismatch": mismatch}),
        );
    }
    println!("{}", serde_json::to_string_pretty(&shown)?);
    if let Some(mismatch) = &mismatch {
        eprintln!("verify failed: {mismatch}");
    }
    if let Some(difference) = &report.first_difference {
        eprintln!(
            "verify failed: {}; first difference at position {}: {}",
            report.rows_differing.map_or_else(
                || "the replay stopped, read models not compared".to_owned(),
                |rows| format!("{rows} differing read-model rows")
            ),
            difference
                .position()
                .map_or_else(|| "none".to_owned(), |position| position.to_string()),
            serde_json::to_string(difference)?
        );
    }
    Ok(mismatch.is_none() && report.first_difference.is_none())
}
