//! `PUT` and `DELETE /v2/images/{image_id}/tags/{tag}`.
//!
//! An empty tag (`.../tags/`) is 404 before anything else: neither Rackspace (whose material
//! says so, `docs/spec/rackspace.md` §5.7) nor Glance has a route for it, so it names nothing,
//! whoever asks and whatever the image.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use imgshare_core::ImageCommand;

use super::execute_image;
use crate::auth::NOT_FOUND;
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
    if path.tag.is_empty() {
        return Err(ApiError::not_found(NOT_FOUND));
    }
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
    if path.tag.is_empty() {
        return Err(ApiError::not_found(NOT_FOUND));
    }
    let image_id = image_id(&path.image_id)?;
    let command = ImageCommand::RemoveTag { tag: path.tag };
    execute_image(Arc::clone(&state.engine), ctx, image_id, command).await?;
    Ok(no_content())
}
