//! The background task worker of a server: runs the pending import and export tasks of the
//! server's region with [`Engine::run_pending_tasks`], on a timer and whenever `POST /v2/tasks`
//! creates one (on PostgreSQL, through any server on the database). Before, it runs again the
//! tasks a stopped worker left in `processing` ([`Engine::recover_interrupted_tasks`]): on
//! SQLite once, when it starts (one server per database file, so only its own previous run can
//! have left them); on PostgreSQL on every pass, since another server may crash at any time and
//! a task's lease tells a live worker's task from an orphaned one.

use std::sync::Arc;
use std::time::Duration;

use imgshare_core::StreamId;
use imgshare_store::{Engine, EngineError, TaskEnvironment, TaskRunReport};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::AppState;

/// How often the worker looks for pending tasks when nothing wakes it.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Starts the worker on the current tokio runtime, if the state has a task environment.
pub fn spawn_task_worker(state: &AppState, poll_interval: Duration) -> Option<JoinHandle<()>> {
    let env = state.tasks.clone()?;
    let engine = Arc::clone(&state.engine);
    let wakeup = Arc::clone(&state.task_wakeup);
    if engine.runs_on_postgres() {
        let (engine, wakeup) = (Arc::clone(&engine), Arc::clone(&wakeup));
        std::thread::Builder::new()
            .name("task-listener".to_owned())
            .spawn(move || listen(&engine, &wakeup, poll_interval))
            .map_err(|error| tracing::warn!(error = %error, "no task listener: timer only"))
            .ok();
    }
    Some(tokio::spawn(run(engine, env, wakeup, poll_interval)))
}

/// Wakes the worker when another process on the database announces a task
/// ([`Engine::notify_task_workers`]); a lost listening connection is opened again after a pause
/// (the timer keeps the worker going meanwhile).
fn listen(engine: &Engine, wakeup: &Notify, poll_interval: Duration) {
    loop {
        match engine.task_listener() {
            Ok(Some(listener)) => loop {
                match listener.wait(poll_interval) {
                    Ok(true) => wakeup.notify_one(),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(error = %error, "task listener lost its connection");
                        break;
                    }
                }
            },
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = %error, "task listener cannot connect; retrying");
            }
        }
        std::thread::sleep(poll_interval.max(Duration::from_secs(1)));
    }
}

async fn run(
    engine: Arc<Engine>,
    env: Arc<TaskEnvironment>,
    wakeup: Arc<Notify>,
    poll_interval: Duration,
) {
    let recover_every_pass = engine.runs_on_postgres();
    let mut recovered = false;
    loop {
        let (engine_now, env_now) = (Arc::clone(&engine), Arc::clone(&env));
        let recover = recover_every_pass || !recovered;
        let pass = tokio::task::spawn_blocking(move || -> Result<TaskRunReport, EngineError> {
            let mut report = if !recover {
                TaskRunReport::default()
            } else {
                engine_now.recover_interrupted_tasks(&env_now)?
            };
            let pending = engine_now.run_pending_tasks(&env_now)?;
            report.succeeded.extend(pending.succeeded);
            report.failed.extend(pending.failed);
            Ok(report)
        })
        .await;
        match pass {
            Ok(Ok(report)) => {
                recovered = true;
                let engine_now = Arc::clone(&engine);
                // Reading the finished tasks back is cheap (one short stream each) and keeps
                // the log line's facts those the API shows.
                let _ =
                    tokio::task::spawn_blocking(move || log_finished(&engine_now, &report)).await;
            }
            // The database was busy or failing: try again at the next tick.
            Ok(Err(error)) => {
                metrics::counter!(crate::metrics::TASK_WORKER_ERRORS).increment(1);
                tracing::warn!(error = %error, "task worker pass failed; retrying at the next tick");
            }
            Err(error) => {
                metrics::counter!(crate::metrics::TASK_WORKER_ERRORS).increment(1);
                tracing::error!(error = %error, "task worker pass stopped");
            }
        }
        tokio::select! {
            () = wakeup.notified() => {},
            () = tokio::time::sleep(poll_interval) => {},
        }
    }
}

/// One line per finished task: id, type, tenant, outcome and the message its owner reads.
fn log_finished(engine: &Engine, report: &TaskRunReport) {
    let finished = report
        .succeeded
        .iter()
        .map(|id| (id, "success"))
        .chain(report.failed.iter().map(|id| (id, "failure")));
    for (&task_id, outcome) in finished {
        metrics::counter!(crate::metrics::TASKS_FINISHED, "outcome" => outcome).increment(1);
        log_task(engine, task_id, outcome);
    }
}

fn log_task(engine: &Engine, task_id: Uuid, outcome: &'static str) {
    let task = engine
        .load(StreamId::Task(task_id))
        .ok()
        .and_then(|loaded| loaded.state.as_task().cloned());
    let Some(task) = task else {
        tracing::warn!(task_id = %task_id, outcome, "task finished but cannot be read back");
        return;
    };
    let task_type = task.task_type.as_str();
    let message = task.message.as_deref();
    if outcome == "failure" {
        tracing::warn!(task_id = %task_id, task_type, tenant = task.owner.as_str(), outcome, message, "task finished");
    } else {
        tracing::info!(task_id = %task_id, task_type, tenant = task.owner.as_str(), outcome, message, "task finished");
    }
}
