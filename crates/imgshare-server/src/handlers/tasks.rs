//! `/v2/tasks`, `/v2/tasks/{task_id}` and `/v2/images/{image_id}/tasks`.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use imgshare_core::{Command, Operation, TaskCommand};
use imgshare_store::{TaskQuery, TaskView};
use serde_json::Value;
use uuid::Uuid;

use super::{create_resource, list_page, read};
use crate::error::ApiError;
use crate::extract::{image_id, json_body, parse_id, Ctx, ImagePath, NoBody, Payload, TaskPath};
use crate::state::AppState;

/// `GET /v2/tasks`: a page of the caller's tasks.
pub(crate) async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(query): RawQuery,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    list_page(
        &state,
        ctx,
        Operation::ReadTasks,
        query,
        |engine, ctx, query: &TaskQuery| engine.tasks(ctx, query),
    )
    .await
}

/// `POST /v2/tasks`: 201 with `Location` and the `pending` task; wakes the task worker.
pub(crate) async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let task_type = match body.get("type") {
        Some(Value::String(task_type)) => task_type.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_task_type",
                "Task 'type' must be a string",
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "task_type_not_specified",
                "Task 'type' not specified",
            ))
        }
    };
    let input = body.get("input").cloned().unwrap_or(Value::Null);
    let task_id = Uuid::new_v4();
    let command = Command::Task {
        task_id,
        command: TaskCommand::Create { task_type, input },
    };
    let location = format!("/v2/tasks/{task_id}");
    let response = create_resource(&state, ctx, command, location, |engine, outcome| {
        let task = outcome.task()?.clone();
        Some(TaskView::full(engine.profile(), task))
    })
    .await?;
    state.task_wakeup.notify_one();
    // The other servers on the database (PostgreSQL) look at once too. The task is already
    // created and answered for: a failed announcement only leaves it to their next tick.
    let engine = std::sync::Arc::clone(&state.engine);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = engine.notify_task_workers() {
            tracing::warn!(error = %error, "could not announce the new task to other servers");
        }
    });
    Ok(response)
}

/// `GET /v2/tasks/{task_id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(TaskPath { task_id }): Path<TaskPath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let task_id = parse_id(&task_id).ok_or_else(|| ApiError::task_not_found(&task_id))?;
    read(&state, ctx, move |engine, ctx| engine.task(ctx, task_id)).await
}

/// `GET /v2/images/{image_id}/tasks`: the caller's tasks about the image.
pub(crate) async fn image_tasks(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    read(&state, ctx, move |engine, ctx| {
        engine.image_tasks(ctx, image_id)
    })
    .await
}
