//! The background task worker of a server: runs the pending import and export tasks of the
//! server's region with [`Engine::run_pending_tasks`], on a timer and whenever `POST /v2/tasks`
//! creates one. When it starts, it first runs again the tasks a stopped server left in
//! `processing` ([`Engine::recover_interrupted_tasks`]).

use std::sync::Arc;
use std::time::Duration;

use imgshare_store::{Engine, EngineError, TaskEnvironment, TaskRunReport};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::AppState;

/// How often the worker looks for pending tasks when nothing wakes it.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Starts the worker on the current tokio runtime, if the state has a task environment.
pub fn spawn_task_worker(state: &AppState, poll_interval: Duration) -> Option<JoinHandle<()>> {
    let env = state.tasks.clone()?;
    let engine = Arc::clone(&state.engine);
    let wakeup = Arc::clone(&state.task_wakeup);
    Some(tokio::spawn(run(engine, env, wakeup, poll_interval)))
}

async fn run(
    engine: Arc<Engine>,
    env: Arc<TaskEnvironment>,
    wakeup: Arc<Notify>,
    poll_interval: Duration,
) {
    let mut recovered = false;
    loop {
        let (engine_now, env_now) = (Arc::clone(&engine), Arc::clone(&env));
        let pass = tokio::task::spawn_blocking(move || -> Result<TaskRunReport, EngineError> {
            let mut report = if recovered {
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
            Ok(Ok(_)) => recovered = true,
            // The database was busy or failing: try again at the next tick.
            Ok(Err(error)) => eprintln!("imgshare: task worker: {error}"),
            Err(error) => eprintln!("imgshare: task worker stopped a pass: {error}"),
        }
        tokio::select! {
            () = wakeup.notified() => {},
            () = tokio::time::sleep(poll_interval) => {},
        }
    }
}
