//! Image creation and image data: `POST /v2/images`, `PUT` and `GET /v2/images/{id}/file`.
//!
//! Image data is kept in [`AppState::data_dir`], one file per image named by its id. An upload
//! streams into a temporary file there (`.upload-<uuid>`), hashing as it goes (md5 for
//! `checksum`, sha512 for `os_hash_value`); the engine's `Upload` decides, and only on success is
//! the file renamed to `<data_dir>/<image_id>`. On any error, or if the client goes away, the
//! temporary file is removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use imgshare_core::access;
use imgshare_core::image::validate_property_key;
use imgshare_core::{
    Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, Visibility,
};
use imgshare_projection::views;
use imgshare_store::{DataHashes, Engine, FsImageDataStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::{blocking, image_id, json_body, json_response, no_content, parse_id, ApiError};
use crate::AppState;

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

/// `POST /v2/images`: 201 with `Location` and the image.
pub(crate) async fn create_image(
    engine: Arc<Engine>,
    ctx: Context,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let (id, image) = parse_new_image(&body)?;
    let image_id = id.unwrap_or_else(Uuid::new_v4);
    let view = blocking(move || {
        let command = ImageCommand::Register {
            origin: ImageOrigin::Api,
            image,
        };
        let outcome = engine.execute(&ctx, Command::Image { image_id, command })?;
        let image = outcome
            .image()
            .ok_or_else(|| ApiError::internal("missing_state"))?;
        Ok(views::image(engine.profile(), image))
    })
    .await?;
    let mut response = json_response(StatusCode::CREATED, &view);
    if let Ok(location) = HeaderValue::from_str(&format!("/v2/images/{image_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Removes a temporary upload file when dropped, unless it was kept.
struct TempFile {
    path: Option<PathBuf>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: nothing more can be done about a file that will not go away.
            let _ = std::fs::remove_file(path);
        }
    }
}

fn storage_error() -> ApiError {
    ApiError::internal("image_storage_failed")
}

pub(crate) fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "storage_not_configured",
        "image data storage is not configured",
    )
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "image_too_large",
        format!("Image data is larger than the limit of {limit} bytes."),
    )
}

/// Data received into a temporary file in the data directory, with its facts.
struct Received {
    temp: TempFile,
    path: PathBuf,
    data: ImageActivated,
}

impl Received {
    /// Moves the data to `target`; from then on it is no longer removed on drop.
    async fn keep_as(mut self, target: &Path) -> Result<(), ApiError> {
        tokio::fs::rename(&self.path, target)
            .await
            .map_err(|_| storage_error())?;
        self.temp.path = None;
        Ok(())
    }
}

/// Streams a request body of image data (`application/octet-stream`, else 415) into a temporary
/// file, hashing as it goes; 413 past the image size limit. The caller has checked visibility.
async fn receive_data(
    state: &AppState,
    data_dir: &Path,
    mut body: Body,
) -> Result<Received, ApiError> {
    let limit = state.max_image_bytes;
    let path = data_dir.join(format!(".upload-{}", Uuid::new_v4()));
    let temp = TempFile {
        path: Some(path.clone()),
    };
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|_| storage_error())?;
    let mut hashes = DataHashes::default();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ApiError::bad_request("body_read_failed", "Could not read body."))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        hashes.update(&chunk);
        if hashes.size() > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(|_| storage_error())?;
    }
    file.sync_all().await.map_err(|_| storage_error())?;
    Ok(Received {
        temp,
        path,
        data: hashes.finish(),
    })
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.trim().parse::<u64>().ok())
}

/// The checks before any image data is read: media type (415), storage configured (501), the
/// declared length against the limit (413), and that the caller can see the image (404), so that
/// a stranger learns nothing more and sends no data for nothing.
async fn before_data(
    state: &AppState,
    ctx: &Context,
    image_id: Uuid,
    headers: &HeaderMap,
) -> Result<PathBuf, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim());
    if !content_type.is_some_and(|value| value.eq_ignore_ascii_case("application/octet-stream")) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The media type of the image data must be application/octet-stream.",
        ));
    }
    let data_dir = state.data_dir.clone().ok_or_else(not_configured)?;
    let limit = state.max_image_bytes;
    if declared_length(headers).is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let engine = Arc::clone(&state.engine);
    let check_ctx = ctx.clone();
    blocking(move || Ok(engine.get_image(&check_ctx, image_id).map(|_| ())?)).await?;
    Ok(data_dir)
}

/// Receives image data, lets the engine decide `command` (made from the data's facts), and only
/// if it is accepted keeps the file at `target(data_dir, image_id)`; 204.
async fn record_data(
    state: &AppState,
    ctx: Context,
    id: &str,
    headers: &HeaderMap,
    body: Body,
    command: impl FnOnce(&ImageActivated) -> ImageCommand,
    target: impl FnOnce(&Path, Uuid) -> PathBuf,
) -> Result<Response, ApiError> {
    let image_id = image_id(id)?;
    let data_dir = before_data(state, &ctx, image_id, headers).await?;
    let received = receive_data(state, &data_dir, body).await?;
    let command = command(&received.data);
    let engine = Arc::clone(&state.engine);
    blocking(move || {
        engine.execute(&ctx, Command::Image { image_id, command })?;
        Ok(())
    })
    .await?;
    received.keep_as(&target(&data_dir, image_id)).await?;
    Ok(no_content())
}

/// `PUT /v2/images/{id}/file`: 204. The engine's `Upload` decides; only on success is the file
/// renamed to `<data_dir>/<image_id>`.
pub(crate) async fn upload(
    state: &AppState,
    ctx: Context,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let command = |data: &ImageActivated| ImageCommand::Upload(data.clone());
    record_data(
        state,
        ctx,
        id,
        headers,
        body,
        command,
        FsImageDataStore::path_in,
    )
    .await
}

/// Where `/stage` keeps an image's data until `/import` moves it to `<data_dir>/<image_id>`.
pub(crate) fn staged_path(data_dir: &Path, image_id: Uuid) -> PathBuf {
    data_dir.join(format!(".staged-{image_id}"))
}

/// `PUT /v2/images/{id}/stage`: 204; `queued → uploading`.
pub(crate) async fn stage(
    state: &AppState,
    ctx: Context,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let command = |data: &ImageActivated| ImageCommand::Stage { size: data.size };
    record_data(state, ctx, id, headers, body, command, staged_path).await
}

/// Removes an image's data and staged data after it was deleted (Glance removes both).
pub(crate) async fn remove_data(state: &AppState, image_id: Uuid) {
    if let Some(data_dir) = state.data_dir.as_deref() {
        for path in [
            FsImageDataStore::path_in(data_dir, image_id),
            staged_path(data_dir, image_id),
        ] {
            // Best effort: the image is already deleted; a leftover file is only disk space.
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

fn data_path(state: &AppState, image_id: Uuid) -> Option<PathBuf> {
    state
        .data_dir
        .as_deref()
        .map(|dir| FsImageDataStore::path_in(dir, image_id))
}

/// `GET /v2/images/{id}/file`: 200 with the data, 204 when there is none.
pub(crate) async fn download(
    state: &AppState,
    engine: Arc<Engine>,
    ctx: Context,
    id: &str,
) -> Result<Response, ApiError> {
    let image_id = image_id(id)?;
    // As in Glance, a deactivated image is refused before its data is looked for.
    let image = blocking(move || {
        let image = engine.get_image(&ctx, image_id)?;
        access::may_download(engine.profile(), &image, &ctx.actor)?;
        Ok(image)
    })
    .await?;
    let Some(path) = data_path(state, image_id) else {
        return Ok(no_content());
    };
    let Ok(file) = tokio::fs::File::open(&path).await else {
        return Ok(no_content());
    };
    let length = file.metadata().await.map_err(|_| storage_error())?.len();
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0_u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok::<_, std::io::Error>(buffer), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    });
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        Body::from_stream(stream),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(checksum) = image
        .checksum
        .as_deref()
        .and_then(|checksum| HeaderValue::from_str(checksum).ok())
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static("content-md5"), checksum);
    }
    Ok(response)
}
