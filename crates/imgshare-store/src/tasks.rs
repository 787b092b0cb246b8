//! The task worker: runs pending import and export tasks against an object store and the image
//! data store ([`Engine::run_pending_tasks`]), and finishes tasks a stopped process left in
//! `processing` ([`Engine::recover_interrupted_tasks`]).
//!
//! Each task is three commands, each its own transaction: `Start`, then (outside any
//! transaction) the copying, then `Succeed` or `Fail`. Command ids and the imported image's id
//! are derived from the task id, so running a task again after a crash writes nothing twice:
//! the same image id, the same data file, and a finish command the log recognises.
//!
//! A worker leases a task ([`Engine::try_lease_task`]) before starting or resuming it and keeps
//! the lease until the result is recorded; on PostgreSQL the lease is a session advisory lock, so
//! servers sharing a database never run one task at once while their sessions live, and a task
//! whose lease is free while it is `processing` lost its worker. If a lease's session ends while
//! its worker still runs (a dropped connection), another worker may resume the task meanwhile;
//! both runs then write the same things (derived ids; image bytes renamed into place; an export
//! accepting, while resuming, the object with the image's md5 as its own), the first result
//! recorded is the task's, and the worker that lost its lease records nothing (it checks the
//! lease first). Bytes of an import are removed only once the log says the task failed.

use crate::error::SqlResult as _;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use imgshare_core::transfer::{self, ExportRequest, ImportRequest};
use imgshare_core::vhd::{self, VhdProblem};
use imgshare_core::{
    Actor, Command, Context, DomainError, ImageActivated, ImportedImage, Region, StreamId, Task,
    TaskCommand, TaskStatus, TaskType,
};
use imgshare_sql::{params, Flow, RowExt as _, Sql};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::engine::{reading, Engine, EngineError};
use crate::image_data::{FsImageDataStore, HashingReader, ImageDataStore};
use crate::lease::TaskLease;
use crate::objects::{FsObjectStore, ObjectSource, ObjectStore, StoreUnavailable};

/// The user id the worker's commands carry in the log's metadata.
pub const WORKER_USER: &str = "task-worker";

/// The message of a task whose worker could not record its result.
pub const NOT_COMPLETED: &str = "The task could not be completed.";

/// The start of the message of a task whose object store kept failing or timing out after its
/// retries; the reason follows.
pub const STORE_UNAVAILABLE: &str = "Cloud Files did not answer; the task can be retried later";

/// The task's message for an object store error: the store's unavailability (with its reason),
/// else `otherwise`.
fn store_failure(error: &io::Error, otherwise: impl FnOnce() -> Failure) -> Failure {
    match StoreUnavailable::of(error) {
        Some(reason) => format!("{STORE_UNAVAILABLE}: {reason}."),
        None => otherwise(),
    }
}

/// What the worker works with: the image data store and one object store per region it serves.
/// Tasks of other regions are left for the worker of their region.
#[derive(Debug, Clone)]
pub struct TaskEnvironment {
    image_data: Arc<dyn ImageDataStore>,
    object_stores: BTreeMap<Region, Arc<dyn ObjectStore>>,
}

impl TaskEnvironment {
    /// An environment with no region yet (add them with [`TaskEnvironment::with_region`]).
    pub fn new(image_data: Arc<dyn ImageDataStore>) -> Self {
        TaskEnvironment {
            image_data,
            object_stores: BTreeMap::new(),
        }
    }

    /// Serves `region` with `objects`.
    pub fn with_region(mut self, region: Region, objects: Arc<dyn ObjectStore>) -> Self {
        self.object_stores.insert(region, objects);
        self
    }

    /// The embedded default: image data in `data_dir` (`<data_dir>/<image_id>`), and for each
    /// region an [`FsObjectStore`] at `<objects_dir>/<REGION>`.
    pub fn filesystem(objects_dir: &Path, data_dir: &Path, regions: &[Region]) -> Self {
        regions.iter().fold(
            Self::new(Arc::new(FsImageDataStore::new(data_dir))),
            |env, region| {
                let store = FsObjectStore::for_region(objects_dir, region);
                env.with_region(region.clone(), Arc::new(store))
            },
        )
    }

    /// The regions served.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.object_stores.keys()
    }

    /// The image data store.
    pub fn image_data(&self) -> &dyn ImageDataStore {
        self.image_data.as_ref()
    }
}

/// What a worker run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRunReport {
    /// Tasks that ended in `success`.
    pub succeeded: Vec<Uuid>,
    /// Tasks that ended in `failure`.
    pub failed: Vec<Uuid>,
}

impl TaskRunReport {
    /// Tasks finished by this run.
    pub fn finished(&self) -> usize {
        self.succeeded.len() + self.failed.len()
    }
}

/// The id of the image an import task creates: derived, so a retried import registers (and
/// stores bytes for) the same image rather than a second one.
pub fn imported_image_id(task_id: Uuid) -> Uuid {
    Uuid::new_v5(&task_id, b"imported-image")
}

fn step_id(task_id: Uuid, step: &str) -> Uuid {
    Uuid::new_v5(&task_id, step.as_bytes())
}

/// A finished piece of work, to be recorded with `Succeed`.
struct Done {
    result: Value,
    imported: Option<ImportedImage>,
}

/// Why a task fails: the message its user reads.
type Failure = String;

/// Where a dynamic disk's first sector is stored, if its first block is allocated and the
/// allocation table can be read (a table that cannot is no Windows signal; the copy checks the
/// file's length).
fn first_block_sector(
    read: &dyn Fn(u64, usize) -> Result<Vec<u8>, Failure>,
    header: &[u8],
    len: u64,
) -> Option<u64> {
    let table = vhd::allocation_table_offset(header).filter(|at| at.saturating_add(4) <= len)?;
    let entry = read(table, 4).ok()?;
    let first_block = u32::from_be_bytes(entry.get(..4)?.try_into().ok()?);
    vhd::first_sector_offset(header, first_block)
}

fn problem(problem: VhdProblem) -> Failure {
    problem.to_string()
}

/// The PostgreSQL channel a process notifies when it creates a task, so that the task workers of
/// the other processes on the database look at once instead of at their next tick.
pub const TASKS_CHANNEL: &str = "imgshare_tasks";

/// A connection listening on [`TASKS_CHANNEL`] ([`Engine::task_listener`]).
#[derive(Debug)]
pub struct TaskListener {
    #[cfg(feature = "postgres")]
    conn: Box<imgshare_sql::postgres::PgConn>,
}

impl TaskListener {
    /// Waits up to `timeout` for a task to be announced; `true` if one was. An error means the
    /// connection was lost: open a new listener.
    pub fn wait(&self, timeout: std::time::Duration) -> Result<bool, EngineError> {
        #[cfg(feature = "postgres")]
        return Ok(self.conn.wait_for_notification(timeout).sql()?.is_some());
        #[cfg(not(feature = "postgres"))]
        {
            std::thread::sleep(timeout);
            Ok(false)
        }
    }
}

impl Engine {
    /// Announces a new task to the task workers of every process on this database: `NOTIFY` on
    /// PostgreSQL, delivered when no transaction is open; nothing on SQLite, whose processes
    /// share one host and find the task on their timer.
    pub fn notify_task_workers(&self) -> Result<(), EngineError> {
        if self.postgres_url().is_none() {
            return Ok(());
        }
        crate::engine::writing!(self, |conn| Sql::batch(
            conn,
            &format!("NOTIFY {TASKS_CHANNEL}")
        )
        .sql())?;
        Ok(())
    }

    /// A listener for [`Engine::notify_task_workers`] from any process, on a connection of its
    /// own; `None` on SQLite.
    pub fn task_listener(&self) -> Result<Option<TaskListener>, EngineError> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            let conn = imgshare_sql::postgres::PgConn::connect(url).sql()?;
            conn.batch(&format!("LISTEN {TASKS_CHANNEL}")).sql()?;
            return Ok(Some(TaskListener {
                conn: Box::new(conn),
            }));
        }
        Ok(None)
    }

    /// Runs every pending task of the environment's regions, oldest first, and returns what it
    /// finished. A task another worker holds ([`Engine::try_lease_task`]) or started first is
    /// left to it. Errors are the log's or the lease connection's (the database is busy or
    /// unusable); a task's own problems end it in `failure` instead.
    pub fn run_pending_tasks(&self, env: &TaskEnvironment) -> Result<TaskRunReport, EngineError> {
        let mut report = TaskRunReport::default();
        let pending = self.queued_tasks(env, TaskStatus::Pending)?;
        // Exact up to 2^53 tasks.
        metrics::gauge!(crate::metrics::TASKS_PENDING).set(pending.len() as f64);
        for task_id in pending {
            // Held until the result is recorded (the end of this iteration).
            let Some(lease) = self.try_lease_task(task_id)? else {
                continue;
            };
            let Some(task) = self.task_state(task_id)? else {
                continue;
            };
            if task.status != TaskStatus::Pending {
                continue;
            }
            let start = self.execute_idempotent(
                &worker_context(&task),
                step_id(task_id, "start"),
                Command::Task {
                    task_id,
                    command: TaskCommand::Start,
                },
            );
            match start {
                Ok(outcome) if !outcome.already_applied => {
                    tracing::info!(
                        task_id = %task_id,
                        task_type = task.task_type.as_str(),
                        tenant = task.owner.as_str(),
                        status = "processing",
                        "task started"
                    );
                }
                // Another worker started it (same derived command, or a transition refused).
                Ok(_) | Err(EngineError::Domain(DomainError::InvalidTransition { .. })) => continue,
                Err(error) => return Err(error),
            }
            self.run_task(env, &task, &lease, false, &mut report)?;
        }
        Ok(report)
    }

    /// Runs again every task of the environment's regions that is still `processing` and that
    /// no live worker holds: the worker that started it stopped before finishing it.
    ///
    /// On PostgreSQL a task is resumed only if its lease can be taken ([`Engine::try_lease_task`]):
    /// a held lease is a live worker on it, in this process or another; a free one means the
    /// session that held it ended (its process crashed, or lost its connection). So any number
    /// of servers may call this at any time; the server calls it on every pass, and a crashed
    /// server's task is finished by a live one within a tick. On SQLite only this engine's own
    /// leases are known: call it once when the worker starts (the server does), before
    /// [`Engine::run_pending_tasks`], with one worker per database file.
    ///
    /// Running a task again is safe (see the module docs): an export finds its own object
    /// already written and accepts it if its md5 is the image's.
    pub fn recover_interrupted_tasks(
        &self,
        env: &TaskEnvironment,
    ) -> Result<TaskRunReport, EngineError> {
        let mut report = TaskRunReport::default();
        for task_id in self.queued_tasks(env, TaskStatus::Processing)? {
            let Some(lease) = self.try_lease_task(task_id)? else {
                continue;
            };
            // Read under the lease: a worker that finished the task since the list was read
            // released its lease only after recording the result.
            let Some(task) = self.task_state(task_id)? else {
                continue;
            };
            if task.status == TaskStatus::Processing {
                tracing::info!(
                    task_id = %task_id,
                    task_type = task.task_type.as_str(),
                    tenant = task.owner.as_str(),
                    status = "processing",
                    "task resumed: the worker that started it stopped before it finished"
                );
                self.run_task(env, &task, &lease, true, &mut report)?;
            }
        }
        Ok(report)
    }

    fn task_state(&self, task_id: Uuid) -> Result<Option<Task>, EngineError> {
        Ok(self.load(StreamId::Task(task_id))?.state.as_task().cloned())
    }

    /// Task ids in `status` in the environment's regions, oldest first, from the read model.
    fn queued_tasks(
        &self,
        env: &TaskEnvironment,
        status: TaskStatus,
    ) -> Result<Vec<Uuid>, EngineError> {
        reading!(self, |conn| queued_task_ids(conn, env, status))
    }

    /// Does a started task's work and records the result, if `lease` still holds then.
    fn run_task(
        &self,
        env: &TaskEnvironment,
        task: &Task,
        lease: &TaskLease<'_>,
        recovering: bool,
        report: &mut TaskRunReport,
    ) -> Result<(), EngineError> {
        let Some(objects) = env.object_stores.get(&task.region) else {
            return Ok(());
        };
        let outcome = match task.task_type {
            TaskType::Import => self.import(env, objects.as_ref(), task),
            TaskType::Export => self.export(env, objects.as_ref(), task, recovering)?,
        };
        let task_id = task.id;
        let ctx = worker_context(task);
        if !lease.is_held() {
            // Another worker may be running the task now (its lease was free): a result of ours
            // could be one its run caused (an export finding the object the other just wrote),
            // so the task is left `processing` for whichever worker resumes it, this one
            // included, at a next pass.
            tracing::warn!(
                task_id = %task_id,
                task_type = task.task_type.as_str(),
                tenant = task.owner.as_str(),
                "task lease lost before its result was recorded; left to be resumed"
            );
            return Ok(());
        }
        match outcome {
            Ok(done) => {
                let imported = done.imported.as_ref().map(|image| image.image_id);
                let succeed = Command::Task {
                    task_id,
                    command: TaskCommand::Succeed {
                        result: done.result,
                        imported_image: done.imported,
                    },
                };
                match self.execute_idempotent(&ctx, step_id(task_id, "succeed"), succeed) {
                    Ok(_) => report.succeeded.push(task_id),
                    Err(EngineError::Domain(_)) => {
                        // Finished meanwhile (by another worker), or refused: only in the second
                        // case are the bytes nobody's.
                        if self.task_state(task_id)?.map(|t| t.status) == Some(TaskStatus::Success)
                        {
                            return Ok(());
                        }
                        if let Some(image_id) = imported {
                            // Best effort: an orphan data file harms nobody.
                            let _ = env.image_data.remove(image_id);
                        }
                        self.fail(&ctx, task_id, NOT_COMPLETED.to_owned(), report)?;
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(message) => {
                let failed = self.fail(&ctx, task_id, message, report)?;
                if failed && task.task_type == TaskType::Import {
                    // Only once the log says `failure`: no image was registered under the
                    // derived id, so bytes stored for it (by this run or an interrupted one)
                    // are nobody's. Had another run succeeded, they would be its image's.
                    let _ = env.image_data.remove(imported_image_id(task_id));
                }
            }
        }
        Ok(())
    }

    /// Records the task's failure; `false` if another worker finished it first.
    fn fail(
        &self,
        ctx: &Context,
        task_id: Uuid,
        message: String,
        report: &mut TaskRunReport,
    ) -> Result<bool, EngineError> {
        let fail = Command::Task {
            task_id,
            command: TaskCommand::Fail { message },
        };
        match self.execute_idempotent(ctx, step_id(task_id, "fail"), fail) {
            Ok(_) => {
                report.failed.push(task_id);
                Ok(true)
            }
            // Another worker finished it first.
            Err(EngineError::Domain(DomainError::InvalidTransition { .. })) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Checks the VHD in the caller's container and copies it into the image data store.
    fn import(
        &self,
        env: &TaskEnvironment,
        objects: &dyn ObjectStore,
        task: &Task,
    ) -> Result<Done, Failure> {
        let request = transfer::parse_import_input(&task.input)?;
        let limit = self.profile().import_size_limit;
        let ImportRequest {
            container,
            object,
            name,
        } = &request;
        let account = task.owner.as_str();
        let not_found = || transfer::IMPORT_NOT_FOUND.to_owned();
        let len = objects
            .object_len(account, container, object)
            .map_err(|error| store_failure(&error, not_found))?
            .ok_or_else(not_found)?;
        vhd::check_physical_size(len, limit).map_err(problem)?;
        let footer_len = vhd::FOOTER_LEN as u64;
        if len < footer_len {
            return Err(problem(VhdProblem::NotVhd));
        }
        let read = |offset: u64, size: usize| {
            objects
                .read_range(account, container, object, offset, size)
                .map_err(|error| store_failure(&error, || problem(VhdProblem::Unspecified)))
        };
        let footer_bytes = read(len - footer_len, vhd::FOOTER_LEN)?;
        let footer = vhd::parse_footer(&footer_bytes).map_err(problem)?;
        let first_sector = match vhd::dynamic_header_offset(&footer, len).map_err(problem)? {
            None => Some(0),
            Some(offset) => {
                let head = read(0, vhd::FOOTER_LEN)?;
                let header = read(offset, vhd::DYNAMIC_HEADER_LEN)?;
                vhd::check_dynamic(&footer_bytes, &head, &header).map_err(problem)?;
                first_block_sector(&read, &header, len)
            }
        };
        vhd::check_virtual_size(&footer, limit).map_err(problem)?;
        // Windows cannot be imported (§3.2), whatever the request says: ask the disk.
        if let Some(at) = first_sector.filter(|at| at.saturating_add(512) <= len) {
            if vhd::first_sector_says_windows(&read(at, 512)?) {
                return Err(transfer::WINDOWS_NOT_IMPORTABLE.to_owned());
            }
        }

        let image_id = imported_image_id(task.id);
        let source = objects
            .open(account, container, object)
            .map_err(|error| store_failure(&error, not_found))?;
        let mut hashing = HashingReader::new(source.take(limit.saturating_add(1)));
        // A failure's bytes are removed by `run_task` once the failure is recorded.
        let stored = env.image_data.put(image_id, &mut hashing);
        if let Err(error) = &stored {
            return Err(store_failure(error, || problem(VhdProblem::Unspecified)));
        }
        if hashing.size() != len {
            // The object changed under the import.
            return Err(problem(VhdProblem::Unspecified));
        }
        let data = ImageActivated {
            virtual_size: Some(footer.current_size),
            ..hashing.hashes().finish()
        };
        Ok(Done {
            result: json!({"image_id": image_id.to_string()}),
            imported: Some(ImportedImage {
                image_id,
                name: name.clone(),
                data,
            }),
        })
    }

    /// Writes the owner's image as `<container>/<image_id>.vhd`. The outer error is the log's.
    fn export(
        &self,
        env: &TaskEnvironment,
        objects: &dyn ObjectStore,
        task: &Task,
        recovering: bool,
    ) -> Result<Result<Done, Failure>, EngineError> {
        let request = match transfer::parse_export_input(&task.input) {
            Ok(request) => request,
            Err(message) => return Ok(Err(message)),
        };
        let image = self.image_state(request.image_id)?;
        if let Err(message) = transfer::check_export(task, image.as_ref()) {
            return Ok(Err(message));
        }
        let (checksum, size) = image.map_or((None, None), |image| (image.checksum, image.size));
        Ok(write_export(
            env,
            objects,
            &task.owner,
            &request,
            (checksum.as_deref(), size),
            recovering,
        ))
    }
}

fn write_export(
    env: &TaskEnvironment,
    objects: &dyn ObjectStore,
    account: &str,
    request: &ExportRequest,
    (checksum, size): (Option<&str>, Option<u64>),
    recovering: bool,
) -> Result<Done, Failure> {
    let container = request.container.as_str();
    let object = request.object();
    let missing_container = || transfer::container_not_found(container);
    let exists = || transfer::object_exists(container, &object);
    let write_failed = || "The image could not be written to the container.".to_owned();
    if !objects
        .container_exists(account, container)
        .map_err(|error| store_failure(&error, missing_container))?
    {
        return Err(missing_container());
    }
    let done = || Done {
        result: json!({"export_location": request.location()}),
        imported: None,
    };
    // When resuming, the object may be this task's own: written by the run that stopped before
    // it could finish, or by one still running whose lease was lost (it may even appear while
    // this run writes).
    let own_object = || {
        recovering
            && checksum.is_some()
            && md5_of(objects, account, container, &object) == checksum.map(str::to_owned)
    };
    if objects
        .object_len(account, container, &object)
        .map_err(|error| store_failure(&error, write_failed))?
        .is_some()
    {
        if own_object() {
            return Ok(done());
        }
        return Err(exists());
    }
    let no_data = || "The image has no data to export.".to_owned();
    // The log's size is what was stored; a data file of another length is not the image.
    let len = match (size, env.image_data.open(request.image_id)) {
        (Some(len), Ok(Some(_))) => len,
        (_, Ok(None)) | (None, Ok(Some(_))) => return Err(no_data()),
        (_, Err(_)) => return Err(write_failed()),
    };
    let source = ImageBytes {
        store: env.image_data(),
        image_id: request.image_id,
        len,
    };
    match objects.create(account, container, &object, &source) {
        Ok(written) if written == len => Ok(done()),
        Ok(_) => Err(write_failed()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            if own_object() {
                Ok(done())
            } else {
                Err(exists())
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(missing_container()),
        Err(error) => Err(store_failure(&error, write_failed)),
    }
}

/// An image's stored bytes as the source of an object: opened again (and read up to the
/// offset) for each retried part of an upload.
struct ImageBytes<'a> {
    store: &'a dyn ImageDataStore,
    image_id: Uuid,
    len: u64,
}

impl ObjectSource for ImageBytes<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let mut data = self
            .store
            .open(self.image_id)?
            .ok_or(io::ErrorKind::NotFound)?;
        let skipped = io::copy(&mut (&mut data).take(offset), &mut io::sink())?;
        if skipped != offset {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Box::new(data.take(self.len - offset)))
    }
}

fn md5_of(
    objects: &dyn ObjectStore,
    account: &str,
    container: &str,
    object: &str,
) -> Option<String> {
    let mut hashing = HashingReader::new(objects.open(account, container, object).ok()?);
    io::copy(&mut hashing, &mut io::sink()).ok()?;
    Some(hashing.hashes().finish().checksum)
}

fn worker_context(task: &Task) -> Context {
    Context::new(
        Actor::operator(WORKER_USER),
        task.region.clone(),
        Utc::now(),
    )
}

/// The task ids `queued_tasks` returns, read on `conn`.
fn queued_task_ids<C: Sql + ?Sized>(
    conn: &C,
    env: &TaskEnvironment,
    status: TaskStatus,
) -> Result<Vec<Uuid>, EngineError> {
    let mut ids = Vec::new();
    for region in env.regions() {
        conn.query_each(
            "SELECT task_id FROM proj_tasks WHERE status = ?1 AND region = ?2
             ORDER BY created_at, task_id",
            params![status.as_str(), region.as_str()],
            |row| {
                // A row that is not a task id is not a task this worker can run.
                if let Ok(id) = Uuid::try_parse(&row.get::<String>(0)?) {
                    ids.push(id);
                }
                Ok::<_, imgshare_sql::SqlError>(Flow::Continue)
            },
        )
        .sql()?
        .sql()?;
    }
    Ok(ids)
}
