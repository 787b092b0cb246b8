//! The task worker with several engines on one database: a task's lease (a session advisory
//! lock) keeps a live worker's task from being resumed elsewhere, a lease whose session ended
//! lets another engine finish the task, and workers running at once start each task once.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use imgshare_core::{vhd, Actor, Command, Context, Region, TaskCommand, TaskStatus};
use imgshare_sql::{params, RowExt, Sql, SqlError};
use imgshare_store::{
    imported_image_id, task_lease_key, Engine, FsImageDataStore, PgConn, TaskEnvironment,
};
use serde_json::json;
use uuid::Uuid;

use super::{fresh_database, scenarios};

const TENANT: &str = "123456";

fn dfw() -> Region {
    Region::parse("DFW").unwrap()
}

/// An object store and an image data directory, shared by every engine of a test (the object
/// store stands for Cloud Files, which all servers reach).
struct Storage {
    dir: tempfile::TempDir,
    env: TaskEnvironment,
}

impl Storage {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = TaskEnvironment::filesystem(
            &dir.path().join("objects"),
            &dir.path().join("data"),
            &[dfw()],
        );
        Storage { dir, env }
    }

    /// A fixed VHD of `len` bytes of data as `images/<name>` in the tenant's DFW account.
    fn put_vhd(&self, name: &str, seed: u8, len: usize) {
        let container = self
            .dir
            .path()
            .join("objects/DFW")
            .join(TENANT)
            .join("images");
        std::fs::create_dir_all(&container).unwrap();
        let disk = vhd::fixed_vhd(&vec![seed; len], [seed.max(1); 16], *b"qemu");
        std::fs::write(container.join(name), disk).unwrap();
    }

    fn has_data(&self, image_id: Uuid) -> bool {
        FsImageDataStore::path_in(&self.dir.path().join("data"), image_id).exists()
    }
}

fn create_import(engine: &Engine, object: &str) -> Uuid {
    let task_id = Uuid::new_v4();
    let ctx = Context::new(
        Actor::tenant(TENANT, "alice", &["cloudImages:admin"]),
        dfw(),
        chrono::Utc::now(),
    );
    engine
        .execute(
            &ctx,
            Command::Task {
                task_id,
                command: TaskCommand::Create {
                    task_type: "import".to_owned(),
                    input: json!({
                        "import_from": format!("images/{object}"),
                        "import_from_format": "vhd",
                        "image_properties": {"name": object},
                    }),
                },
            },
        )
        .unwrap();
    task_id
}

fn status(engine: &Engine, task_id: Uuid) -> TaskStatus {
    engine
        .load(imgshare_core::StreamId::Task(task_id))
        .unwrap()
        .state
        .as_task()
        .unwrap()
        .status
}

/// `task_started` events in the log, per task.
fn starts(conn: &PgConn) -> BTreeMap<String, i64> {
    conn.query_all(
        "SELECT stream_id, COUNT(*) FROM events WHERE event_type = 'task_started' \
         GROUP BY stream_id",
        params![],
        |row| Ok::<_, SqlError>((row.get::<String>(0)?, row.get::<i64>(1)?)),
    )
    .unwrap()
    .unwrap()
    .into_iter()
    .collect()
}

/// The sessions holding `task_id`'s lease (two-int4 advisory locks: `objsubid` 2, the keys
/// stored as unsigned `oid`s), with their application names.
fn lease_holders(conn: &PgConn, task_id: Uuid) -> Vec<(i64, String)> {
    let key = i64::from(u32::from_be_bytes(task_lease_key(task_id).to_be_bytes()));
    conn.query_all(
        "SELECT l.pid::BIGINT, a.application_name::TEXT FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted \
           AND l.classid::BIGINT = ?1 AND l.objid::BIGINT = ?2",
        params![i64::from(imgshare_sql::postgres::TASK_LEASE_CLASS), key],
        |row| Ok::<_, SqlError>((row.get::<i64>(0)?, row.get::<String>(1)?)),
    )
    .unwrap()
    .unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Engine A starts a task and holds its lease as a worker running it would; engine B's recovery
/// leaves it. Once A's lease session is terminated (as when A's process dies), B's recovery runs
/// the task, once, to `success`, and A, whose lease is lost, takes new leases on a new session.
#[test]
fn a_processing_task_is_resumed_by_another_engine_only_once_its_lease_session_ends() {
    let location = fresh_database("tasks_lease");
    let (a, b) = (scenarios::open(&location), scenarios::open(&location));
    let admin = PgConn::connect(&location).unwrap();
    let storage = Storage::new();
    storage.put_vhd("disk.vhd", 7, 64 * 1024);
    let task_id = create_import(&a, "disk.vhd");

    let lease = a.try_lease_task(task_id).unwrap().expect("a free lease");
    assert!(lease.is_held());
    assert!(a.try_lease_task(task_id).unwrap().is_none(), "held by A");
    let worker = Context::new(Actor::operator("test-worker"), dfw(), chrono::Utc::now());
    a.execute(
        &worker,
        Command::Task {
            task_id,
            command: TaskCommand::Start,
        },
    )
    .unwrap();
    assert_eq!(status(&a, task_id), TaskStatus::Processing);
    let holders = lease_holders(&admin, task_id);
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(holders[0].1, "imgshare task lease");

    // A live worker holds it: neither B's recovery nor A's own touches it.
    assert!(b.try_lease_task(task_id).unwrap().is_none());
    for engine in [&b, &a] {
        let report = engine.recover_interrupted_tasks(&storage.env).unwrap();
        assert_eq!(report.finished(), 0, "{report:?}");
    }
    assert_eq!(status(&b, task_id), TaskStatus::Processing);
    assert!(!storage.has_data(imported_image_id(task_id)));

    // A's lease session ends as a crashed process's would.
    let terminated = admin
        .query_first(
            "SELECT pg_terminate_backend(?1::INTEGER)",
            params![holders[0].0],
            |row| row.get::<bool>(0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(terminated, Some(true));
    wait_until("the lease is gone", || {
        lease_holders(&admin, task_id).is_empty()
    });

    let report = b.recover_interrupted_tasks(&storage.env).unwrap();
    assert_eq!(report.succeeded, vec![task_id], "{report:?}");
    assert_eq!(status(&b, task_id), TaskStatus::Success);
    assert!(storage.has_data(imported_image_id(task_id)));
    assert_eq!(
        starts(&admin).get(&format!("task-{task_id}")),
        Some(&1),
        "started once, by A; B resumed it"
    );
    assert!(
        b.recover_interrupted_tasks(&storage.env)
            .unwrap()
            .finished()
            == 0
    );
    assert!(lease_holders(&admin, task_id).is_empty(), "B released it");

    // A learns that its lease is gone, and leases again on a new session.
    assert!(!lease.is_held());
    drop(lease);
    storage.put_vhd("second.vhd", 9, 64 * 1024);
    let second = create_import(&a, "second.vhd");
    let again = a.try_lease_task(second).unwrap().expect("a new session");
    assert_eq!(lease_holders(&admin, second).len(), 1);
    drop(again);
    assert!(lease_holders(&admin, second).is_empty(), "released on drop");
    assert_eq!(
        a.run_pending_tasks(&storage.env).unwrap().succeeded,
        vec![second]
    );
}

/// Three engines, two worker threads each, all running a server's pass (recovery, then the
/// pending tasks) over and over until every task has finished: each task is started once (one
/// `task_started` in the log) and finished by exactly one worker, and all end `success`.
#[test]
fn workers_of_several_engines_at_once_start_and_finish_each_task_once() {
    const TASKS: usize = 12;
    const THREADS_PER_ENGINE: usize = 2;
    let location = fresh_database("tasks_many");
    let engines: Vec<Arc<Engine>> = (0..3)
        .map(|_| Arc::new(scenarios::open(&location)))
        .collect();
    let storage = Arc::new(Storage::new());
    let tasks: Vec<Uuid> = (0..TASKS)
        .map(|index| {
            let name = format!("disk-{index}.vhd");
            // Large enough that a task is `processing` for a while (the copy is hashed twice),
            // so other workers' recovery passes meet tasks that are running.
            storage.put_vhd(&name, u8::try_from(index + 1).unwrap(), 2 << 20);
            create_import(&engines[index % 3], &name)
        })
        .collect();

    let workers = engines.len() * THREADS_PER_ENGINE;
    let barrier = Arc::new(Barrier::new(workers));
    let deadline = Instant::now() + Duration::from_secs(120);
    let handles: Vec<_> = (0..workers)
        .map(|worker| {
            let engine = Arc::clone(&engines[worker % engines.len()]);
            let (storage, barrier) = (Arc::clone(&storage), Arc::clone(&barrier));
            let tasks = tasks.clone();
            std::thread::spawn(move || {
                let mut finished = Vec::new();
                barrier.wait();
                loop {
                    let recovered = engine.recover_interrupted_tasks(&storage.env).unwrap();
                    let pending = engine.run_pending_tasks(&storage.env).unwrap();
                    for report in [recovered, pending] {
                        assert!(report.failed.is_empty(), "{report:?}");
                        finished.extend(report.succeeded);
                    }
                    let done = tasks
                        .iter()
                        .all(|&task_id| status(&engine, task_id) == TaskStatus::Success);
                    if done || Instant::now() > deadline {
                        return finished;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let mut finished_by: BTreeMap<Uuid, usize> = BTreeMap::new();
    let mut per_worker = Vec::new();
    for handle in handles {
        let finished = handle.join().unwrap();
        per_worker.push(finished.len());
        for task_id in finished {
            *finished_by.entry(task_id).or_default() += 1;
        }
    }
    eprintln!("tasks finished per worker: {per_worker:?}");

    let admin = PgConn::connect(&location).unwrap();
    let starts = starts(&admin);
    for &task_id in &tasks {
        assert_eq!(status(&engines[0], task_id), TaskStatus::Success);
        assert_eq!(
            starts.get(&format!("task-{task_id}")),
            Some(&1),
            "task {task_id} started once"
        );
        assert_eq!(
            finished_by.get(&task_id),
            Some(&1),
            "task {task_id} finished by one worker"
        );
        assert!(storage.has_data(imported_image_id(task_id)));
    }
    assert_eq!(starts.len(), TASKS);
}
