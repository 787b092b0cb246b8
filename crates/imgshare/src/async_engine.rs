//! [`AsyncEngine`]: the engine for tokio applications.
//!
//! The engine is synchronous: a call may wait for SQLite's write lock (up to the database's
//! `busy_timeout`) and does file I/O. Each method here moves its call onto tokio's blocking pool
//! with `spawn_blocking`, so an async worker thread never waits on the database. Two exceptions
//! do less: a command is queued for group commit with [`Engine::submit`] and awaited without
//! holding a thread (a blocking thread leads the queued commands), and [`AsyncEngine::image`]
//! answers on the worker when [`Engine::try_image_now`] can without waiting.

use std::sync::Arc;

use imgshare_core::{Command, Context, Region};
use imgshare_store::{
    AccessReport, AsOf, Engine, EngineError, ImagePage, ImageQuery, ImageView, Outcome, TaskPage,
    TaskQuery, VerifyReport,
};
use uuid::Uuid;

/// Why an async call failed.
#[derive(Debug, thiserror::Error)]
pub enum AsyncError {
    /// The engine answered with an error (its [`EngineError::kind`] says which).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The blocking task panicked or the runtime is shutting down.
    #[error("the engine call did not complete: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A cheaply cloneable handle on one [`Engine`] whose calls run on tokio's blocking pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use imgshare::{Actor, AsyncEngine, Context, Engine, ImageQuery, Region};
///
/// let engine = AsyncEngine::new(Engine::in_memory()?);
/// let ctx = Context::new(
///     Actor::tenant("100100", "alice", &["cloudImages:admin"]),
///     Region::parse("DFW")?,
///     imgshare::chrono::Utc::now(),
/// );
/// let page = engine.images(ctx, ImageQuery::new()).await?;
/// assert!(page.images.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AsyncEngine {
    engine: Arc<Engine>,
}

impl AsyncEngine {
    /// Wraps an engine.
    pub fn new(engine: Engine) -> Self {
        Self::from_arc(Arc::new(engine))
    }

    /// Wraps an engine that is shared with other parts of the application (the HTTP router).
    pub fn from_arc(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The engine, for synchronous calls from code already on a blocking thread.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Runs any engine call on the blocking pool.
    pub async fn run<T, F>(&self, call: F) -> Result<T, AsyncError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        Ok(tokio::task::spawn_blocking(move || call(&engine)).await??)
    }

    /// [`Engine::execute`].
    pub async fn execute(&self, ctx: Context, command: Command) -> Result<Outcome, AsyncError> {
        // Time-ordered, as `Engine::execute` makes them (see `event_id_for`).
        self.execute_idempotent(ctx, Uuid::now_v7(), command).await
    }

    /// [`Engine::execute_idempotent`]: a retry with the same `command_id` appends nothing more.
    pub async fn execute_idempotent(
        &self,
        ctx: Context,
        command_id: Uuid,
        command: Command,
    ) -> Result<Outcome, AsyncError> {
        let submitted = self.engine.submit(&ctx, command_id, command, |work| {
            drop(tokio::task::spawn_blocking(work));
        })?;
        Ok(submitted.await?)
    }

    /// [`Engine::image`].
    pub async fn image(&self, ctx: Context, image_id: Uuid) -> Result<ImageView, AsyncError> {
        if let Some(view) = self.engine.try_image_now(&ctx, image_id) {
            return Ok(view?);
        }
        self.run(move |engine| engine.image(&ctx, image_id)).await
    }

    /// [`Engine::images`].
    pub async fn images(&self, ctx: Context, query: ImageQuery) -> Result<ImagePage, AsyncError> {
        self.run(move |engine| engine.images(&ctx, &query)).await
    }

    /// [`Engine::tasks`].
    pub async fn tasks(&self, ctx: Context, query: TaskQuery) -> Result<TaskPage, AsyncError> {
        self.run(move |engine| engine.tasks(&ctx, &query)).await
    }

    /// [`Engine::can_boot`].
    pub async fn can_boot(
        &self,
        tenant_id: String,
        image_id: Uuid,
        region: Region,
    ) -> Result<bool, AsyncError> {
        self.run(move |engine| engine.can_boot(&tenant_id, image_id, &region))
            .await
    }

    /// [`Engine::access_at`].
    pub async fn access_at(&self, image_id: Uuid, as_of: AsOf) -> Result<AccessReport, AsyncError> {
        self.run(move |engine| engine.access_at(image_id, as_of))
            .await
    }

    /// [`Engine::verify`].
    pub async fn verify(&self) -> Result<VerifyReport, AsyncError> {
        self.run(Engine::verify).await
    }
}
