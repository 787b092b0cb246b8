//! Image metadata: `/v2/images`, `/v2/images/{image_id}` and its deactivate and reactivate
//! actions.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use imgshare_core::image::{validate_property_key, IMPORT_METHODS};
use imgshare_core::patch::parse_patch_bytes;
use imgshare_core::{Command, Context, ImageCommand, ImageOrigin, NewImage, Operation, Visibility};
use imgshare_store::{ImageQuery, ImageView};
use serde_json::Value;
use uuid::Uuid;

use super::image_data::remove_data;
use super::{create_resource, execute, execute_image, list_page, read};
use crate::error::ApiError;
use crate::extract::{image_id, json_body, parse_id, Ctx, ImagePath, NoBody, Payload};
use crate::response::{json_response, no_content};
use crate::state::AppState;
use crate::IMPORT_METHODS_HEADER;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_image", message)
}

fn optional_string(key: &str, value: &Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        _ => Err(invalid(format!("'{key}' must be a string or null"))),
    }
}

fn boolean(key: &str, value: &Value) -> Result<bool, ApiError> {
    value
        .as_bool()
        .ok_or_else(|| invalid(format!("'{key}' must be a boolean")))
}

fn integer(key: &str, value: &Value) -> Result<u64, ApiError> {
    value
        .as_u64()
        .ok_or_else(|| invalid(format!("'{key}' must be a non-negative integer")))
}

/// The body of `POST /v2/images` as an id (if given) and a [`NewImage`].
fn parse_new_image(body: &Value) -> Result<(Option<Uuid>, NewImage), ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("Image body must be a JSON object"))?;
    // Read-only and reserved names are refused (403) before any type is checked, as in Glance;
    // `id` is the one read-only name a create may carry.
    for key in object.keys().filter(|key| key.as_str() != "id") {
        validate_property_key(key)?;
    }
    let mut id = None;
    let mut image = NewImage::default();
    for (key, value) in object {
        match key.as_str() {
            "id" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| invalid("'id' must be a string"))?;
                id = Some(parse_id(text).ok_or_else(|| invalid("'id' must be a UUID"))?);
            }
            "name" => image.name = optional_string(key, value)?,
            "visibility" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| invalid("'visibility' must be a string"))?;
                image.visibility = Some(
                    Visibility::parse(text)
                        .ok_or_else(|| invalid(format!("Invalid visibility value: {text}")))?,
                );
            }
            "protected" => image.protected = boolean(key, value)?,
            "os_hidden" => image.os_hidden = boolean(key, value)?,
            "container_format" => image.container_format = optional_string(key, value)?,
            "disk_format" => image.disk_format = optional_string(key, value)?,
            "owner" => image.owner = optional_string(key, value)?,
            "min_disk" => image.min_disk = integer(key, value)?,
            "min_ram" => image.min_ram = integer(key, value)?,
            "tags" => {
                let tags = value
                    .as_array()
                    .ok_or_else(|| invalid("'tags' must be an array of strings"))?;
                image.tags = tags
                    .iter()
                    .map(|tag| tag.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| invalid("'tags' must be an array of strings"))?;
            }
            _ => {
                let text = value
                    .as_str()
                    .ok_or_else(|| invalid(format!("Custom property '{key}' must be a string")))?;
                image.properties.insert(key.clone(), text.to_owned());
            }
        }
    }
    Ok((id, image))
}

/// `GET /v2/images`: a page of the images the caller can see.
pub(crate) async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(query): RawQuery,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    list_page(
        &state,
        ctx,
        Operation::ListImages,
        query,
        |engine, ctx, query: &ImageQuery| engine.images(ctx, query),
    )
    .await
}

/// `POST /v2/images`: 201 with `Location` and the image, and the import methods when image
/// data can be stored.
pub(crate) async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let (id, image) = parse_new_image(&body)?;
    let image_id = id.unwrap_or_else(Uuid::new_v4);
    let command = ImageCommand::Register {
        origin: ImageOrigin::Api,
        image,
    };
    let command = Command::Image { image_id, command };
    let location = format!("/v2/images/{image_id}");
    let mut response = create_resource(&state, ctx, command, location, |engine, outcome| {
        let image = outcome.image()?.clone();
        Some(ImageView::new(engine.profile(), image))
    })
    .await?;
    let methods = HeaderValue::from_str(&IMPORT_METHODS.join(","));
    if let (Some(_), Ok(methods)) = (&state.image_data, methods) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(IMPORT_METHODS_HEADER), methods);
    }
    Ok(response)
}

/// `GET /v2/images/{image_id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    // The state cache answers most image reads in microseconds: on the async worker, unless that
    // would wait (see `Engine::try_image_now`).
    if let Some(view) = state.engine.try_image_now(&ctx, image_id) {
        return Ok(json_response(StatusCode::OK, &view?));
    }
    read(&state, ctx, move |engine, ctx| engine.image(ctx, image_id)).await
}

/// `PATCH /v2/images/{image_id}`: the media type (415) and the patch document (400) are checked
/// before the id (404), as in Glance.
pub(crate) async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    headers: HeaderMap,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let document = parse_patch_bytes(content_type, &body)?;
    let image_id = image_id(&path.image_id)?;
    let command = Command::Image {
        image_id,
        command: ImageCommand::Update(document),
    };
    let outcome = execute(&state.engine, &ctx, command).await?;
    let image = outcome
        .image()
        .ok_or_else(|| ApiError::internal("missing_state"))?;
    let view = ImageView::new(state.engine.profile(), image.clone());
    Ok(json_response(StatusCode::OK, &view))
}

/// `DELETE /v2/images/{image_id}`: 204; the image's data goes too.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    execute_image(
        Arc::clone(&state.engine),
        ctx,
        image_id,
        ImageCommand::Delete,
    )
    .await?;
    remove_data(&state, image_id).await;
    Ok(no_content())
}

/// `POST /v2/images/{image_id}/actions/deactivate`: 204.
pub(crate) async fn deactivate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    image_action(&state, ctx, &path, ImageCommand::Deactivate).await
}

/// `POST /v2/images/{image_id}/actions/reactivate`: 204.
pub(crate) async fn reactivate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    image_action(&state, ctx, &path, ImageCommand::Reactivate).await
}

/// Runs an image action that answers 204 (`deactivate`, `reactivate`).
async fn image_action(
    state: &AppState,
    ctx: Context,
    path: &ImagePath,
    command: ImageCommand,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    execute_image(Arc::clone(&state.engine), ctx, image_id, command).await?;
    Ok(no_content())
}
