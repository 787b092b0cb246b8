//! `PUT` and `DELETE /v2/images/{image_id}/tags/{tag}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use imgshare_core::ImageCommand;

use super::execute_image;
use crate::error::ApiError;
use crate::extract::{image_id, Ctx, NoBody, TagPath};
use crate::response::no_content;
use crate::state::AppState;

/// `PUT`: 204.
pub(crate) async fn add(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<TagPath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let command = ImageCommand::AddTag { tag: path.tag };
    execute_image(Arc::clone(&state.engine), ctx, image_id, command).await?;
    Ok(no_content())
}

/// `DELETE`: 204.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<TagPath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let command = ImageCommand::RemoveTag { tag: path.tag };
    execute_image(Arc::clone(&state.engine), ctx, image_id, command).await?;
    Ok(no_content())
}
