//! The process the reliability tests start, kill and race (`tests/tests/reliability.rs`).
//!
//! `reliability_child work DB SEED START [normal]` executes workload commands `START, START+1, …`
//! for ever, printing `begin I` before and `committed I EVENTS RETRY` or `refused I CODE` after
//! each, flushed, so the parent knows what was acknowledged when it kills the process.
//!
//! `reliability_child contend DB IMAGE_ID WORKER COUNT BUSY_MS` runs
//! [`imgshare_tests::workload::contention::run`] against an image that other processes and
//! threads write at the same time, with a busy timeout of `BUSY_MS`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use imgshare_store::{DbOptions, Durability, Engine, EngineError, EngineOptions, StoreError};
use imgshare_tests::workload;
use uuid::Uuid;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("work") if args.len() >= 4 => work(&args[1..]),
        Some("contend") if args.len() == 6 => contend(&args[1..]),
        _ => Err("usage: reliability_child work DB SEED START [normal] | contend DB IMAGE_ID WORKER COUNT BUSY_MS".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            println!("error {message}");
            ExitCode::FAILURE
        }
    }
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// Opens the engine; with a very short busy timeout even opening can meet another process's
/// lock, which is retried like a command's `Busy`.
fn open(db: &str, options: DbOptions) -> Result<Engine, String> {
    let mut attempts = 0;
    loop {
        // A path, or a PostgreSQL URL when the crash test runs there.
        let opened = Engine::open_url(
            db,
            EngineOptions {
                db: options.clone(),
                ..EngineOptions::default()
            },
        );
        match opened {
            Ok(engine) => return Ok(engine),
            Err(EngineError::Store(StoreError::Busy)) if attempts < 1000 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) => return Err(format!("open {} {error}", error.code())),
        }
    }
}

fn say(line: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("stdout: {error}"))
}

fn work(args: &[String]) -> Result<(), String> {
    let seed = number(&args[1])?;
    let start = number(&args[2])?;
    let durability = match args.get(3).map(String::as_str) {
        Some("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    let engine = open(
        &args[0],
        DbOptions {
            durability,
            ..DbOptions::default()
        },
    )?;
    say("ready")?;
    for index in start.. {
        let (ctx, command_id, command) = workload::command_at(seed, index);
        say(&format!("begin {index}"))?;
        match engine.execute_idempotent(&ctx, command_id, command) {
            Ok(outcome) => say(&format!(
                "committed {index} {} {}",
                outcome.events.len(),
                outcome.already_applied
            ))?,
            Err(error @ EngineError::Domain(_)) => {
                say(&format!("refused {index} {}", error.code()))?;
            }
            Err(error) => return Err(format!("command {index}: {} {error}", error.code())),
        }
    }
    Ok(())
}

fn contend(args: &[String]) -> Result<(), String> {
    let image_id = Uuid::try_parse(&args[1]).map_err(|error| format!("image id: {error}"))?;
    let worker = number(&args[2])?;
    let count = number(&args[3])?;
    let busy = Duration::from_millis(number(&args[4])?);
    let engine = open(
        &args[0],
        DbOptions {
            busy_timeout: busy,
            ..DbOptions::default()
        },
    )?;
    let mut failed = None;
    workload::contention::run(&engine, image_id, worker, count, 5000, |line| {
        if let Err(error) = say(&line) {
            failed = Some(error);
        }
    });
    failed.map_or(Ok(()), Err)
}
