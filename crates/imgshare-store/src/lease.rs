//! Leases on running tasks: which worker is on a task, so that several servers on one
//! PostgreSQL database run each task once and finish a crashed server's tasks.
//!
//! A lease is a session advisory lock, `pg_try_advisory_lock(TASK_LEASE_CLASS, key)`, held on
//! a connection of the engine's own (opened on first use, replaced when the server closed it):
//! it lives exactly as long as that session, so a worker that crashes or loses its connection
//! gives its leases up without anyone writing anything, and a task left `processing` whose lease
//! is free has no live worker. The key is 32 bits folded from the task id; two tasks that share
//! one (about one pair in 2^32) only wait for each other, they are never both run by mistake
//! because the start is still claimed through the log.
//!
//! Within one engine a set of the leased task ids does the same for its own threads (a session
//! may take an advisory lock it already holds). On SQLite that set is the whole lease: one host,
//! one server per database file, whose interrupted tasks are resumed when it starts again.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::engine::{Engine, EngineError};

/// The 32-bit key of a task's lease (the second key of
/// `pg_try_advisory_lock(TASK_LEASE_CLASS, key)`): the task id's 16 bytes folded by XOR, so
/// every byte counts whatever version the id is.
pub fn task_lease_key(task_id: Uuid) -> i32 {
    let mut folded = [0_u8; 4];
    for (index, byte) in task_id.as_bytes().iter().enumerate() {
        folded[index % 4] ^= byte;
    }
    i32::from_be_bytes(folded)
}

/// The engine's leases: the tasks its workers hold and, on PostgreSQL, the connection whose
/// session holds their locks.
#[derive(Debug, Default)]
pub(crate) struct TaskLeases {
    state: Mutex<LeaseState>,
}

#[derive(Debug, Default)]
struct LeaseState {
    /// Leased tasks, each with the generation of the connection its lock was taken on.
    held: HashMap<Uuid, u64>,
    /// Incremented each time the lease connection is replaced: a lock taken on an earlier
    /// connection died with its session and must not be unlocked on the new one (it may hold
    /// the same key for another task).
    generation: u64,
    #[cfg(feature = "postgres")]
    conn: Option<Box<imgshare_sql::postgres::PgConn>>,
}

/// A task leased to this engine's worker ([`Engine::try_lease_task`]); released when dropped.
#[derive(Debug)]
#[must_use = "the lease is released when dropped"]
pub struct TaskLease<'e> {
    engine: &'e Engine,
    task_id: Uuid,
}

impl TaskLease<'_> {
    /// The leased task.
    pub fn task_id(&self) -> Uuid {
        self.task_id
    }

    /// Whether the lease still holds. Always on SQLite; on PostgreSQL, whether the session that
    /// took its lock is alive (one round trip): a session that ended took the lock with it, and
    /// another worker may since have resumed the task. A worker asks before recording a result.
    pub fn is_held(&self) -> bool {
        let Ok(state) = crate::engine::lock(&self.engine.leases.state) else {
            return false;
        };
        let Some(&generation) = state.held.get(&self.task_id) else {
            return false;
        };
        #[cfg(feature = "postgres")]
        if self.engine.runs_on_postgres() {
            return state.alive(generation);
        }
        let _ = generation;
        true
    }
}

impl Drop for TaskLease<'_> {
    fn drop(&mut self) {
        self.engine.release_task_lease(self.task_id);
    }
}

impl Engine {
    /// Leases `task_id` to the caller, or `None` if a worker holds it: one of this engine's, or,
    /// on PostgreSQL, any process's whose session is alive. Take it before starting or resuming a
    /// task and keep it until the task's result is recorded ([`Engine::run_pending_tasks`] and
    /// [`Engine::recover_interrupted_tasks`] do). Errors are the lease connection's: it could not
    /// be opened, or failed twice in a row.
    ///
    /// If the lease connection is lost while a task runs, its lock goes with the session: another
    /// process may then resume the task while this one still runs it. Both record the same
    /// derived commands, so the task ends once (see `docs/tasks.md`).
    pub fn try_lease_task(&self, task_id: Uuid) -> Result<Option<TaskLease<'_>>, EngineError> {
        let mut state = crate::engine::lock(&self.leases.state)?;
        if state.held.contains_key(&task_id) {
            return Ok(None);
        }
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            if !state.try_lock(url, task_lease_key(task_id))? {
                return Ok(None);
            }
        }
        let generation = state.generation;
        state.held.insert(task_id, generation);
        Ok(Some(TaskLease {
            engine: self,
            task_id,
        }))
    }

    fn release_task_lease(&self, task_id: Uuid) {
        // A poisoned lock means a worker thread panicked; the session's locks then end with the
        // engine.
        let Ok(mut state) = crate::engine::lock(&self.leases.state) else {
            return;
        };
        let Some(generation) = state.held.remove(&task_id) else {
            return;
        };
        #[cfg(feature = "postgres")]
        state.unlock(task_id, generation);
        #[cfg(not(feature = "postgres"))]
        let _ = generation;
    }
}

#[cfg(feature = "postgres")]
impl LeaseState {
    /// `pg_try_advisory_lock` on the lease connection, opened or replaced as needed. A
    /// connection the server closed is only noticed when used, so a failure on a now-closed
    /// connection is tried once more on a new one.
    fn try_lock(&mut self, url: &str, key: i32) -> Result<bool, EngineError> {
        use crate::error::SqlResult as _;
        use imgshare_sql::{params, RowExt as _, Sql as _};
        let mut retried = false;
        loop {
            let conn = self.connection(url)?;
            let taken = conn
                .query_first(
                    "SELECT pg_try_advisory_lock(?1, ?2)",
                    params![
                        i64::from(imgshare_sql::postgres::TASK_LEASE_CLASS),
                        i64::from(key)
                    ],
                    |row| row.get::<bool>(0),
                )
                .sql()
                .and_then(|row| row.sql());
            match taken {
                Ok(taken) => return Ok(taken == Some(true)),
                Err(_) if !retried && conn.is_closed() => retried = true,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The open lease connection, a new one if there is none or the server closed it.
    fn connection(&mut self, url: &str) -> Result<&imgshare_sql::postgres::PgConn, EngineError> {
        use crate::error::SqlResult as _;
        let conn = match self.conn.take() {
            Some(conn) if !conn.is_closed() => conn,
            old => {
                if old.is_some() && !self.held.is_empty() {
                    tracing::warn!(
                        tasks = self.held.len(),
                        "task lease connection lost while tasks ran: another server may resume them"
                    );
                }
                let conn = imgshare_sql::postgres::PgConn::connect(url).sql()?;
                // Named, so an operator can tell lease sessions in pg_stat_activity.
                imgshare_sql::Sql::batch(&conn, "SET application_name = 'imgshare task lease'")
                    .sql()?;
                self.generation += 1;
                Box::new(conn)
            }
        };
        Ok(&**self.conn.insert(conn))
    }

    /// Whether a lock taken on connection `generation` is still held: that connection is the
    /// current one and its session answers. A session lives until it ends or unlocks.
    fn alive(&self, generation: u64) -> bool {
        use imgshare_sql::Sql as _;
        generation == self.generation
            && self
                .conn
                .as_deref()
                .is_some_and(|conn| conn.batch("SELECT 1").is_ok())
    }

    /// Unlocks a lease taken on the current connection; one whose session ended is gone already.
    fn unlock(&mut self, task_id: Uuid, generation: u64) {
        use imgshare_sql::{params, RowExt as _, Sql as _};
        let Some(conn) = self.conn.as_deref() else {
            return;
        };
        if generation != self.generation || conn.is_closed() {
            tracing::warn!(task_id = %task_id, "task lease was lost while the task ran");
            return;
        }
        let unlocked = conn.query_first(
            "SELECT pg_advisory_unlock(?1, ?2)",
            params![
                i64::from(imgshare_sql::postgres::TASK_LEASE_CLASS),
                i64::from(task_lease_key(task_id))
            ],
            |row| row.get::<bool>(0),
        );
        match unlocked {
            Ok(Ok(Some(true))) => {}
            // The session is gone (its locks with it) or never had the lock: either way nothing
            // is left to release, but the task may have been resumed elsewhere meanwhile.
            _ => tracing::warn!(task_id = %task_id, "task lease was lost while the task ran"),
        }
    }
}
