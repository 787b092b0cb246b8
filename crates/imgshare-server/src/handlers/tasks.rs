//! `/v2/tasks`, `/v2/tasks/{task_id}` and `/v2/images/{image_id}/tasks`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use imgshare_core::{Command, TaskCommand};
use imgshare_projection::views;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{image_id, json_body, parse_id, Ctx, ImagePath, NoBody, Payload, TaskPath};
use crate::response::{blocking, json_response};
use crate::state::AppState;

/// `GET /v2/tasks`: a page of the caller's tasks.
pub(crate) async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(query): RawQuery,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let engine = Arc::clone(&state.engine);
    let query = query.unwrap_or_default();
    let page = blocking(move || Ok(engine.list_tasks(&ctx, &query)?)).await?;
    Ok(json_response(StatusCode::OK, &page))
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
    let engine = Arc::clone(&state.engine);
    let view = blocking(move || {
        let command = Command::Task {
            task_id,
            command: TaskCommand::Create { task_type, input },
        };
        let outcome = engine.execute(&ctx, command)?;
        let task = outcome
            .task()
            .ok_or_else(|| ApiError::internal("missing_state"))?;
        Ok(views::task(engine.profile(), task))
    })
    .await?;
    let mut response = json_response(StatusCode::CREATED, &view);
    if let Ok(location) = HeaderValue::from_str(&format!("/v2/tasks/{task_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    state.task_wakeup.notify_one();
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
    let engine = Arc::clone(&state.engine);
    let view = blocking(move || Ok(engine.task_view(&ctx, task_id)?)).await?;
    Ok(json_response(StatusCode::OK, &view))
}

/// `GET /v2/images/{image_id}/tasks`: the caller's tasks about the image.
pub(crate) async fn image_tasks(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let engine = Arc::clone(&state.engine);
    let tasks = blocking(move || Ok(engine.list_image_tasks(&ctx, image_id)?)).await?;
    Ok(json_response(StatusCode::OK, &tasks))
}
