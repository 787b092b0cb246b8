//! The request handlers, one module per resource. A handler parses what the route table
//! extracted, makes one engine call (a read through `blocking`, a command through `execute`,
//! which waits for group commit without holding a thread), and renders the answer; rules
//! belong to the engine, not here.

pub(crate) mod audit;
pub(crate) mod image_data;
pub(crate) mod images;
pub(crate) mod import;
pub(crate) mod members;
pub(crate) mod tags;
pub(crate) mod tasks;
pub(crate) mod versions;

use std::str::FromStr;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use imgshare_core::{Command, Context, ImageCommand, Operation};
use imgshare_store::{Engine, EngineError, Outcome};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::response::{blocking, json_response};
use crate::state::AppState;

/// Runs one engine read off the async workers and answers 200 with what it returns.
pub(crate) async fn read<T: Serialize + Send + 'static>(
    state: &AppState,
    ctx: Context,
    read: impl FnOnce(&Engine, &Context) -> Result<T, EngineError> + Send + 'static,
) -> Result<Response, ApiError> {
    let engine = Arc::clone(&state.engine);
    let view = blocking(move || Ok(read(&engine, &ctx)?)).await?;
    Ok(json_response(StatusCode::OK, &view))
}

/// Answers a list: the role check first, so that a caller without the role gets 403 before any
/// 400 of its query (Glance's order), then the query parsed, then one engine read.
pub(crate) async fn list_page<Q, T>(
    state: &AppState,
    ctx: Context,
    operation: Operation,
    query: Option<String>,
    run: impl FnOnce(&Engine, &Context, &Q) -> Result<T, EngineError> + Send + 'static,
) -> Result<Response, ApiError>
where
    Q: FromStr + Send + 'static,
    ApiError: From<Q::Err>,
    T: Serialize + Send + 'static,
{
    state.engine.profile().authorize(&ctx.actor, operation)?;
    let query: Q = query.unwrap_or_default().parse()?;
    read(state, ctx, move |engine, ctx| run(engine, ctx, &query)).await
}

/// Runs a command through the engine's group commit. The request's task waits for its outcome
/// without holding a thread; when no one is writing, a blocking thread starts leading the
/// queued commands (`Engine::submit`).
pub(crate) async fn execute(
    engine: &Arc<Engine>,
    ctx: &Context,
    command: Command,
) -> Result<Outcome, ApiError> {
    let submitted = engine.submit(ctx, Uuid::now_v7(), command, |work| {
        drop(tokio::task::spawn_blocking(work));
    })?;
    Ok(submitted.await?)
}

/// Runs a command that creates a resource and answers 201 with the resource's view (`render`
/// picks it out of the outcome) and its `Location`.
pub(crate) async fn create_resource<T: Serialize + Send + 'static>(
    state: &AppState,
    ctx: Context,
    command: Command,
    location: String,
    render: impl FnOnce(&Engine, &Outcome) -> Option<T> + Send + 'static,
) -> Result<Response, ApiError> {
    let outcome = execute(&state.engine, &ctx, command).await?;
    let view =
        render(&state.engine, &outcome).ok_or_else(|| ApiError::internal("missing_state"))?;
    let mut response = json_response(StatusCode::CREATED, &view);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Runs an image command whose answer carries no state.
pub(crate) async fn execute_image(
    engine: Arc<Engine>,
    ctx: Context,
    image_id: Uuid,
    command: ImageCommand,
) -> Result<(), ApiError> {
    execute(&engine, &ctx, Command::Image { image_id, command }).await?;
    Ok(())
}
