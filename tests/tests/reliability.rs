//! Reliability: a writer killed with SIGKILL at random moments, several processes and threads
//! writing one image in one database file, and a full, read-only or damaged database.
//! What each test promises is written down in `docs/RELIABILITY.md`.
//!
//! `IMGSHARE_CRASH_TRIALS` (default 24), `IMGSHARE_CRASH_SEED` (default: from the clock,
//! printed), `IMGSHARE_CRASH_MAX_DELAY_MS` (default 60) and `IMGSHARE_CRASH_DURABILITY`
//! (`normal`; default full) control the crash test; the long runs documented in
//! `docs/RELIABILITY.md` use 500 trials. With `IMGSHARE_CRASH_POSTGRES_URL` (a server URL; the
//! test creates a database of its own there) and the `postgres` feature, the crash test's writer
//! runs on PostgreSQL instead of a SQLite file (`tests/postgres/run.sh`).

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use imgshare_core::{Command, Context, ImageCommand, MemberStatus};
use imgshare_projection::tables;
use imgshare_store::engine::event_id_for;
use imgshare_store::{
    find_by_event_ids, verify_chain, DbOptions, Engine, EngineError, EngineOptions, StoreError,
};
use imgshare_tests::workload::{self, contention, Rng};
use uuid::Uuid;

const CHILD: &str = env!("CARGO_BIN_EXE_reliability_child");

/// Kills the child when a test fails half-way.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn open(location: &Path) -> Engine {
    Engine::open_url(location.to_str().unwrap(), EngineOptions::default()).unwrap()
}

/// Runs `$body` with `$conn` a connection to the engine's database: the engine's own on SQLite,
/// a new one on PostgreSQL (where the engine lends none).
macro_rules! with_conn {
    ($location:expr, $engine:expr, |$conn:ident| $body:expr) => {{
        let location: &Path = $location;
        if is_postgres(location) {
            #[cfg(feature = "postgres")]
            {
                let $conn = &imgshare_store::PgConn::connect(location.to_str().unwrap()).unwrap();
                $body.unwrap()
            }
            #[cfg(not(feature = "postgres"))]
            unreachable!("a PostgreSQL location without the postgres feature")
        } else {
            $engine.read(|$conn| Ok($body?)).unwrap()
        }
    }};
}

fn is_postgres(location: &Path) -> bool {
    location
        .to_str()
        .is_some_and(|text| text.starts_with("postgres"))
}

fn dump(location: &Path, engine: &Engine) -> Vec<String> {
    with_conn!(location, engine, |conn| tables::dump(conn))
}

fn log_head(engine: &Engine) -> Option<(i64, String)> {
    engine.head().unwrap()
}

/// The stored events of `command_id`, looking a few indexes past the last one expected.
fn stored_events(location: &Path, engine: &Engine, command_id: Uuid, up_to: usize) -> usize {
    let ids: Vec<Uuid> = (0..up_to).map(|i| event_id_for(command_id, i)).collect();
    with_conn!(location, engine, |conn| find_by_event_ids(conn, &ids)).len()
}

/// Where each segment of the crash test keeps its log: a new SQLite file in `dir`, or a new
/// database on the PostgreSQL server `IMGSHARE_CRASH_POSTGRES_URL` names.
fn new_crash_database(dir: &Path, name: &str) -> PathBuf {
    match std::env::var("IMGSHARE_CRASH_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => PathBuf::from(new_postgres_database(&server, name)),
        _ => dir.join(format!("{name}.db")),
    }
}

#[cfg(feature = "postgres")]
fn new_postgres_database(server: &str, name: &str) -> String {
    use imgshare_sql::Sql as _;
    let unique = format!(
        "{}_{}_{}",
        name.replace('-', "_"),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos())
    );
    let admin = imgshare_store::PgConn::connect(server).unwrap();
    admin.batch(&format!("CREATE DATABASE {unique}")).unwrap();
    match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{unique}"),
        None => panic!("IMGSHARE_CRASH_POSTGRES_URL has no database part: {server}"),
    }
}

#[cfg(not(feature = "postgres"))]
fn new_postgres_database(_server: &str, _name: &str) -> String {
    panic!("IMGSHARE_CRASH_POSTGRES_URL needs the postgres feature (tests/postgres/run.sh)")
}

/// The checks after every kill: the log verifies, every acknowledged command is whole, the
/// read models equal a rebuild, and the reopened engine accepts a write.
fn check_after_kill(path: &Path, seed: u64, acknowledged: &BTreeMap<u64, usize>) {
    let engine = open(path);
    let report = with_conn!(path, engine, |conn| verify_chain(conn));
    assert_eq!(report.first_mismatch, None, "hash chain broken");
    let head_position = log_head(&engine).map_or(0, |(position, _)| position);
    assert_eq!(
        report.events_checked,
        u64::try_from(head_position).unwrap(),
        "positions have gaps"
    );
    for (&index, &events) in acknowledged {
        let command_id = workload::command_id(seed, index);
        assert_eq!(
            stored_events(path, &engine, command_id, events + 2),
            events,
            "acknowledged command {index} (seed {seed}) is not whole in the log"
        );
    }
    let live = dump(path, &engine);
    engine.rebuild(|_| {}).unwrap();
    assert_eq!(
        dump(path, &engine),
        live,
        "read models differ from a rebuild"
    );
}

/// What one killed child said.
#[derive(Default)]
struct Trial {
    /// Acknowledged commands and their event counts.
    committed: BTreeMap<u64, usize>,
    /// Commands refused by the domain.
    refused: u64,
    /// The command that had begun but was not answered when the child died.
    in_flight: Option<u64>,
    /// The index to resume from.
    next: u64,
    /// Acknowledgements that were idempotent retries of a command from the previous trial.
    retried: u64,
}

fn run_killed_child(path: &Path, seed: u64, start: u64, delay: Duration) -> Trial {
    let durability = std::env::var("IMGSHARE_CRASH_DURABILITY").unwrap_or_default();
    let child = Process::new(CHILD)
        .args(["work", path.to_str().unwrap()])
        .arg(seed.to_string())
        .arg(start.to_string())
        .arg(if durability == "normal" {
            "normal"
        } else {
            "full"
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "ready", "child did not open the database");
    let reader = std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect());
    std::thread::sleep(delay);
    // SIGKILL: no destructor, no rollback, no checkpoint runs in the child.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let lines: Vec<String> = reader.join().unwrap();
    let mut trial = Trial {
        next: start,
        ..Trial::default()
    };
    for line in &lines {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["begin", index] => {
                let index = index.parse().unwrap();
                trial.in_flight = Some(index);
                trial.next = index;
            }
            ["committed", index, events, retry] => {
                let index = index.parse().unwrap();
                trial.committed.insert(index, events.parse().unwrap());
                trial.retried += u64::from(*retry == "true");
                trial.in_flight = None;
                trial.next = index + 1;
            }
            ["refused", index, _code] => {
                trial.refused += 1;
                trial.in_flight = None;
                trial.next = index.parse::<u64>().unwrap() + 1;
            }
            _ => panic!("child failed: {line}"),
        }
    }
    trial
}

/// Executes commands `0..end` of workload `seed` in a fresh in-memory engine: the log an
/// uninterrupted run gives.
fn reference_head(seed: u64, end: u64) -> Option<(i64, String)> {
    let engine = Engine::in_memory().unwrap();
    for index in 0..end {
        let (ctx, command_id, command) = workload::command_at(seed, index);
        match engine.execute_idempotent(&ctx, command_id, command) {
            Ok(_) | Err(EngineError::Domain(_)) => {}
            Err(error) => panic!("reference run failed at {index}: {error}"),
        }
    }
    log_head(&engine)
}

/// Finishes the command a child was killed in (an idempotent retry) and compares the whole log
/// with an uninterrupted run of the same commands: same positions, same hashes.
fn finish_and_compare(path: &Path, seed: u64, next: u64) {
    let engine = open(path);
    let (ctx, command_id, command) = workload::command_at(seed, next);
    let _ = engine.execute_idempotent(&ctx, command_id, command);
    assert_eq!(
        log_head(&engine),
        reference_head(seed, next + 1),
        "the killed and resumed run differs from an uninterrupted one (seed {seed})"
    );
}

#[test]
fn writer_killed_at_random_moments_loses_nothing_it_acknowledged() {
    let trials = env_number("IMGSHARE_CRASH_TRIALS", 24);
    let seed = env_number(
        "IMGSHARE_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |since| since.as_secs()),
    );
    let max_delay = env_number("IMGSHARE_CRASH_MAX_DELAY_MS", 60);
    println!("crash test: {trials} trials, seed {seed} (IMGSHARE_CRASH_SEED={seed} repeats it)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (mut acknowledged, mut refused, mut mid_command, mut unacknowledged_but_stored) =
        (0u64, 0u64, 0u64, 0u64);
    let mut retried = 0u64;
    // A fresh database every 25 trials keeps each check's rebuild and reference run short.
    let mut segment: Option<(PathBuf, u64, u64)> = None;
    for trial_number in 0..trials {
        if trial_number % 25 == 0 {
            if let Some((path, workload_seed, next)) = segment.take() {
                finish_and_compare(&path, workload_seed, next);
            }
            let workload_seed = rng.next_u64();
            segment = Some((
                new_crash_database(dir.path(), &format!("crash-{trial_number}")),
                workload_seed,
                0,
            ));
        }
        let (path, workload_seed, next) = segment.as_mut().unwrap();
        let delay = Duration::from_millis(rng.range(0, max_delay.max(1)));
        let trial = run_killed_child(path, *workload_seed, *next, delay);
        check_after_kill(path, *workload_seed, &trial.committed);
        if let Some(index) = trial.in_flight {
            mid_command += 1;
            let engine = open(path);
            if stored_events(
                path,
                &engine,
                workload::command_id(*workload_seed, index),
                1,
            ) == 1
            {
                unacknowledged_but_stored += 1;
            }
        }
        acknowledged += trial.committed.len() as u64;
        refused += trial.refused;
        retried += trial.retried;
        *next = trial.next;
    }
    if let Some((path, workload_seed, next)) = segment.take() {
        finish_and_compare(&path, workload_seed, next);
    }
    println!(
        "crash test: {trials} kills in {:.1} s; {acknowledged} commands acknowledged, \
         {refused} refused by the domain; {mid_command} kills inside a command, \
         {unacknowledged_but_stored} of them after the commit but before the acknowledgement; \
         {retried} resumed commands found already applied",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acknowledged > 0,
        "no child ever committed: delays too short?"
    );
}

/// One line a contending worker printed.
fn parse_contention(lines: &[String]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|line| line.split(' ').map(str::to_owned).collect())
        .collect()
}

#[test]
fn processes_and_threads_writing_one_image_lose_no_update() {
    const COUNT: u64 = 12;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let engine = open(&path);
    let image_id = Uuid::new_v4();
    let registered = engine
        .execute(
            &Context::new(
                workload::admin(workload::OWNER),
                workload::region(),
                workload::time_of(0),
            ),
            Command::Image {
                image_id,
                command: workload::register("contended"),
            },
        )
        .unwrap()
        .events
        .len();

    // Workers 1 and 3 wait at most 1 ms for the lock, so they meet Busy and retry it; 2 and 4
    // rely on the default busy timeout.
    let children: Vec<Killed> = [(1u64, 1u64), (2, 5000)]
        .into_iter()
        .map(|(worker, busy_ms)| {
            Killed(
                Process::new(CHILD)
                    .args(["contend", path.to_str().unwrap(), &image_id.to_string()])
                    .args([worker.to_string(), COUNT.to_string(), busy_ms.to_string()])
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let mut lines: Vec<String> = std::thread::scope(|scope| {
        let threads: Vec<_> = [(3u64, 1u64), (4, 5000)]
            .into_iter()
            .map(|(worker, busy_ms)| {
                let path = &path;
                scope.spawn(move || {
                    let options = EngineOptions {
                        db: DbOptions {
                            busy_timeout: Duration::from_millis(busy_ms),
                            ..DbOptions::default()
                        },
                        ..EngineOptions::default()
                    };
                    let engine = loop {
                        match Engine::open(path, options.clone()) {
                            Err(EngineError::Store(StoreError::Busy)) => {}
                            opened => break opened.unwrap(),
                        }
                    };
                    let mut lines = Vec::new();
                    contention::run(&engine, image_id, worker, COUNT, 5000, |line| {
                        lines.push(line);
                    });
                    lines
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect()
    });
    for mut child in children {
        let stdout = child.0.stdout.take().unwrap();
        lines.extend(BufReader::new(stdout).lines().map_while(Result::ok));
        assert!(child.0.wait().unwrap().success());
    }

    let words = parse_contention(&lines);
    for line in &lines {
        assert!(
            !line.to_lowercase().contains("locked"),
            "an untyped lock error reached a caller: {line}"
        );
        assert!(!line.starts_with("failed"), "{line}");
    }
    let busy = words.iter().filter(|w| w[0] == "busy").count();
    let ok: Vec<&Vec<String>> = words.iter().filter(|w| w[0] == "ok").collect();
    let refused: Vec<&Vec<String>> = words.iter().filter(|w| w[0] == "refused").collect();
    println!(
        "contention: {} acknowledged, {} refused, {busy} Busy answers retried",
        ok.len(),
        refused.len()
    );

    // Every acknowledged command is in the log exactly once, whole.
    let ids: BTreeSet<&str> = ok.iter().map(|w| w[1].as_str()).collect();
    assert_eq!(ids.len(), ok.len(), "a command was acknowledged twice");
    let mut acknowledged_events = 0;
    for w in &ok {
        let events: usize = w[2].parse().unwrap();
        assert_eq!(
            stored_events(&path, &engine, Uuid::parse_str(&w[1]).unwrap(), events + 2),
            events
        );
        acknowledged_events += events;
    }
    // Each shared member was added by exactly one worker; the others got a typed 409.
    let shares = ok.iter().filter(|w| w[3] == "share").count();
    assert_eq!(shares as u64, COUNT);
    assert_eq!(refused.len() as u64, 3 * COUNT);
    for w in &refused {
        assert_eq!((w[2].as_str(), w[3].as_str()), ("member_exists", "share"));
    }

    // The final state is the fold of every acknowledged command: nothing lost, nothing twice.
    let loaded = engine
        .load(imgshare_core::StreamId::Image(image_id))
        .unwrap();
    assert_eq!(loaded.version as usize, registered + acknowledged_events);
    let image = loaded.state.as_image().unwrap().clone();
    for worker in 1..=4 {
        for j in 0..COUNT {
            let own = contention::own_member(worker, j);
            let member = image.members.get(&own);
            assert_eq!(
                member.map(|m| m.status),
                Some(MemberStatus::Accepted),
                "{own}"
            );
            assert!(image.tags.contains(&own), "tag {own} lost");
        }
    }
    for j in 0..COUNT {
        assert!(image.members.contains_key(&contention::shared_member(j)));
    }
    assert_eq!(image.members.len() as u64, 5 * COUNT);
    let live = dump(&path, &engine);
    engine.rebuild(|_| {}).unwrap();
    assert_eq!(dump(&path, &engine), live);
    // A command of the race retried after the fact is recognised, not applied again.
    let first = Uuid::parse_str(&ok[0][1]).unwrap();
    let again = engine
        .execute_idempotent(
            &Context::new(
                workload::admin(workload::OWNER),
                workload::region(),
                workload::time_of(0),
            ),
            first,
            Command::Image {
                image_id,
                command: ImageCommand::AddTag {
                    tag: "unused".to_owned(),
                },
            },
        )
        .unwrap();
    assert!(again.already_applied);
}
