//! `imgshare copy --from SOURCE --to TARGET`: moves a catalogue between databases (a SQLite file
//! and PostgreSQL, either way, or file to file) with [`Engine::copy_log_from`]: the log row for
//! row with its hashes, the target's read models rebuilt from it, the result verified.
//!
//! The source is only read (a file is opened read-only). The target is new: a file that does not
//! exist yet, or a PostgreSQL database whose log is empty; it records the source's profile. A
//! copy that fails leaves no target file behind, and on PostgreSQL commits no event.
//!
//! Image bytes are not in the database (they are in the data directory, `<db>.data` by default,
//! or the object store): a move takes that directory along, or points `--data-dir` at it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::Args;
use imgshare_store::Engine;

use crate::audit::ExistingDb;
use crate::{open_with, postgres_url, shown_db, stderr_is_terminal, OpenArgs, ProfileArg};

/// `imgshare copy`'s options.
#[derive(Args)]
pub(crate) struct CopyArgs {
    /// The database to copy: a SQLite file (opened read-only) or a PostgreSQL URL; it must hold
    /// an imgshare log, and is only read.
    #[arg(long, value_name = "FILE|URL")]
    from: PathBuf,
    /// The database to fill: a SQLite file that does not exist yet, or a PostgreSQL URL whose log
    /// is empty (the schema is created if missing).
    #[arg(long, value_name = "FILE|URL")]
    to: PathBuf,
    /// The rule set the source was written with, for a file too old to record it; the target
    /// records the same one.
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,
}

/// Runs the copy; exit status 0 when the copy verified, 1 when it did not (the report says
/// why), errors (nothing copied) through `anyhow`.
pub(crate) fn copy(args: &CopyArgs) -> anyhow::Result<ExitCode> {
    if same_database(&args.from, &args.to) {
        bail!(
            "--from and --to are the same database ({}); copy into a new one",
            shown_db(&args.to)
        );
    }
    let source = ExistingDb::new(args.from.clone(), args.profile)
        .open_existing()
        .with_context(|| format!("opening the source {}", shown_db(&args.from)))?;
    if source.head()?.is_none() {
        bail!(
            "the source {} has no events; there is nothing to copy",
            shown_db(&args.from)
        );
    }
    let profile = ProfileArg::of(source.profile().kind);
    let new_file = postgres_url(&args.to).is_none();
    if new_file && args.to.exists() {
        bail!(
            "{} already exists; `imgshare copy` creates its target file and never overwrites one",
            args.to.display()
        );
    }
    let outcome = fill(&source, &args.to, profile);
    if outcome.is_err() && new_file {
        remove_sqlite_file(&args.to);
    }
    outcome
}

fn fill(source: &Engine, to: &Path, profile: ProfileArg) -> anyhow::Result<ExitCode> {
    let options = OpenArgs {
        durability_normal: false,
        mmap_mib: 0,
        profile: Some(profile),
    };
    let target = open_with(to, &options, profile.profile())?;
    let started = Instant::now();
    let terminal = stderr_is_terminal();
    let report = target
        .copy_log_from(source, |copied| {
            if terminal {
                eprint!("\rcopying: {copied} events");
            }
        })
        .with_context(|| format!("copying into {}", shown_db(to)))?;
    if terminal {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    let head = report.head.as_ref().map_or_else(
        || "0".to_owned(),
        |(position, hash)| format!("{position}:{hash}"),
    );
    println!("{head}");
    eprintln!(
        "copied {} events into {} in {seconds:.2} s; its log ends at {head}; rebuilt {} streams",
        report.events,
        shown_db(to),
        report.rebuild.streams,
    );
    if let Some(difference) = &report.verify.first_difference {
        eprintln!(
            "the copy does not verify: {}; run `imgshare verify --db {}`",
            serde_json::to_string(difference)?,
            shown_db(to)
        );
        return Ok(ExitCode::from(1));
    }
    eprintln!(
        "verified: {} events checked, read models equal to a replay",
        report.verify.events_checked
    );
    Ok(ExitCode::SUCCESS)
}

/// Two spellings of one database: the same URL, or paths to the same existing file.
fn same_database(a: &Path, b: &Path) -> bool {
    match (postgres_url(a), postgres_url(b)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        },
        _ => false,
    }
}

/// Removes a target file the failed copy created, with its WAL and shared-memory files. Best
/// effort: what cannot be removed was not there or is reported by the error already shown.
fn remove_sqlite_file(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}
