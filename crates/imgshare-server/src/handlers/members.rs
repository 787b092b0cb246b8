//! `/v2/images/{image_id}/members` and `/v2/images/{image_id}/members/{member_id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use imgshare_core::{Command, Context, ImageCommand};
use imgshare_store::Engine;
use serde_json::Value;
use uuid::Uuid;

use super::{execute, execute_image, read};
use crate::error::ApiError;
use crate::extract::{image_id, json_body, Ctx, ImagePath, MemberPath, NoBody, Payload};
use crate::response::{json_response, no_content};
use crate::routes::method_not_allowed_for;
use crate::state::AppState;

/// `GET /members`: the image's members.
pub(crate) async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    read(&state, ctx, move |engine, ctx| {
        engine.members(ctx, image_id)
    })
    .await
}

/// `POST /members` with `{"member": "<tenant>"}`: the new member.
///
/// On the Rackspace profile a blank image id (`POST /v2/images//members`) is 405, as Rackspace's
/// own tests expect (`docs/spec/rackspace.md` §4.2): its proxy folded `//`, so the path named an
/// image called `members`, whose methods are `GET, PATCH, DELETE`.
pub(crate) async fn add(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    if path.image_id.is_empty() && state.engine.profile().folds_double_slashes() {
        return Ok(method_not_allowed_for("GET,PATCH,DELETE"));
    }
    let image_id = image_id(&path.image_id)?;
    let body = json_body(&body)?;
    let member_id = match body.get("member") {
        None => {
            return Err(ApiError::bad_request(
                "member_not_specified",
                "Member to be added not specified",
            ))
        }
        Some(Value::String(member)) => member.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_member",
                "Member must be a string",
            ))
        }
    };
    let command = ImageCommand::AddMember { member_id };
    let engine = Arc::clone(&state.engine);
    let view = member_command(engine, ctx, image_id, command).await?;
    Ok(json_response(StatusCode::OK, &view))
}

/// `GET /members/{member_id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<MemberPath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let member_id = path.member_id;
    read(&state, ctx, move |engine, ctx| {
        engine.member(ctx, image_id, &member_id)
    })
    .await
}

/// `PUT /members/{member_id}` with `{"status": "..."}`: the member as it is now.
pub(crate) async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<MemberPath>,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let body = json_body(&body)?;
    let status = match body.get("status") {
        None => {
            return Err(ApiError::bad_request(
                "status_not_specified",
                "Status not specified",
            ))
        }
        Some(Value::String(status)) => status.clone(),
        Some(other) => other.to_string(),
    };
    let command = ImageCommand::SetMemberStatus {
        member_id: path.member_id,
        status,
    };
    let engine = Arc::clone(&state.engine);
    let view = member_command(engine, ctx, image_id, command).await?;
    Ok(json_response(StatusCode::OK, &view))
}

/// `DELETE /members/{member_id}`: 204.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<MemberPath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let command = ImageCommand::RemoveMember {
        member_id: path.member_id,
    };
    execute_image(Arc::clone(&state.engine), ctx, image_id, command).await?;
    Ok(no_content())
}

/// Executes a member command; the engine renders the member as it is after the command.
async fn member_command(
    engine: Arc<Engine>,
    ctx: Context,
    image_id: Uuid,
    command: ImageCommand,
) -> Result<Value, ApiError> {
    let member_id = Engine::member_named(&command)?.to_owned();
    let outcome = execute(&engine, &ctx, Command::Image { image_id, command }).await?;
    Ok(Engine::member_after(&outcome, image_id, &member_id)?)
}
