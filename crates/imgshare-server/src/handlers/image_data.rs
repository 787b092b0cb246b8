//! Image data: `PUT` and `GET /v2/images/{image_id}/file`, `PUT /v2/images/{image_id}/stage`.
//!
//! The bytes go through the state's [`ImageDataStore`]: an upload streams into a
//! [`DataWriter`], which hashes as it goes (md5 for `checksum`, sha512 for `os_hash_value`);
//! the engine's `Upload` (or `Stage`) decides, and only on success are the bytes committed to
//! their slot. On any error, or if the client goes away, the writer is dropped and nothing is
//! left behind. Store calls are blocking and run in `spawn_blocking`.

use std::io::{self, Read};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use imgshare_core::{access, Command, Context, ImageActivated, ImageCommand};
use imgshare_store::{DataSlot, DataWriter, ImageDataStore};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{declared_length, image_id, Ctx, ImagePath, NoBody};
use crate::response::{blocking, no_content};
use crate::state::AppState;

/// How much of the stored data one read of a download takes.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

fn storage_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal("image_storage_failed").with_cause(error)
}

/// 501: the endpoint keeps no image data.
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

/// `PUT /v2/images/{image_id}/file`: 204. The engine's `Upload` decides; only on success do the
/// bytes become the image's.
pub(crate) async fn upload(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let command = |data: &ImageActivated| ImageCommand::Upload(data.clone());
    let request = DataRequest {
        state: &state,
        ctx,
        id: &path.image_id,
        headers: &headers,
    };
    request.record(body, DataSlot::Image, command).await
}

/// `PUT /v2/images/{image_id}/stage`: 204; `queued → uploading`. The bytes wait in the staged
/// slot until `POST /import` moves them.
pub(crate) async fn stage(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let command = |data: &ImageActivated| ImageCommand::Stage { size: data.size };
    let request = DataRequest {
        state: &state,
        ctx,
        id: &path.image_id,
        headers: &headers,
    };
    request.record(body, DataSlot::Staged, command).await
}

/// A request carrying image data, before its body is read.
struct DataRequest<'a> {
    state: &'a AppState,
    ctx: Context,
    id: &'a str,
    headers: &'a HeaderMap,
}

impl DataRequest<'_> {
    /// Receives the data into `slot`, lets the engine decide `command` (made from the data's
    /// facts), and only if it is accepted commits the bytes; 204.
    async fn record(
        self,
        body: Body,
        slot: DataSlot,
        command: impl FnOnce(&ImageActivated) -> ImageCommand,
    ) -> Result<Response, ApiError> {
        let image_id = image_id(self.id)?;
        let store = self.before_data(image_id).await?;
        let (writer, data) =
            receive(self.state.max_image_bytes, store, image_id, slot, body).await?;
        let command = command(&data);
        let engine = Arc::clone(&self.state.engine);
        let ctx = self.ctx;
        blocking(move || {
            engine.execute(&ctx, Command::Image { image_id, command })?;
            Ok(())
        })
        .await?;
        blocking(move || writer.commit().map_err(storage_error)).await?;
        Ok(no_content())
    }

    /// The checks before any image data is read: media type (415), storage configured (501),
    /// the declared length against the limit (413), and that the caller can see the image
    /// (404), so that a stranger learns nothing more and sends no data for nothing.
    async fn before_data(&self, image_id: Uuid) -> Result<Arc<dyn ImageDataStore>, ApiError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or_default().trim());
        if !content_type.is_some_and(|value| value.eq_ignore_ascii_case("application/octet-stream"))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The media type of the image data must be application/octet-stream.",
            ));
        }
        let store = self.state.image_data.clone().ok_or_else(not_configured)?;
        let limit = self.state.max_image_bytes;
        if declared_length(self.headers).is_some_and(|length| length > limit) {
            return Err(too_large(limit));
        }
        let engine = Arc::clone(&self.state.engine);
        let ctx = self.ctx.clone();
        blocking(move || Ok(engine.get_image(&ctx, image_id).map(|_| ())?)).await?;
        Ok(store)
    }
}

/// Streams a request body of image data into a writer for `slot`, which hashes it; 413 past
/// `limit`. The writer is returned uncommitted, with the data's facts.
async fn receive(
    limit: u64,
    store: Arc<dyn ImageDataStore>,
    image_id: Uuid,
    slot: DataSlot,
    mut body: Body,
) -> Result<(Box<dyn DataWriter>, ImageActivated), ApiError> {
    let mut writer = blocking(move || store.writer(image_id, slot).map_err(storage_error)).await?;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ApiError::bad_request("body_read_failed", "Could not read body."))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if writer.size().saturating_add(chunk.len() as u64) > limit {
            return Err(too_large(limit));
        }
        writer = blocking(move || {
            writer.write(&chunk).map_err(storage_error)?;
            Ok(writer)
        })
        .await?;
    }
    blocking(move || {
        let data = writer.finish().map_err(storage_error)?;
        Ok((writer, data))
    })
    .await
}

/// Removes an image's data and staged data after it was deleted (Glance removes both).
pub(crate) async fn remove_data(state: &AppState, image_id: Uuid) {
    if let Some(store) = state.image_data.clone() {
        // Best effort: the image is already deleted; leftover bytes are only disk space.
        let _ = blocking(move || {
            let _ = store.remove_slot(image_id, DataSlot::Image);
            let _ = store.remove_slot(image_id, DataSlot::Staged);
            Ok(())
        })
        .await;
    }
}

/// `GET /v2/images/{image_id}/file`: 200 with the data, 204 when there is none.
pub(crate) async fn download(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let engine = Arc::clone(&state.engine);
    // As in Glance, a deactivated image is refused before its data is looked for.
    let image = blocking(move || {
        let image = engine.get_image(&ctx, image_id)?;
        access::may_download(engine.profile(), &image, &ctx.actor)?;
        Ok(image)
    })
    .await?;
    let Some(store) = state.image_data.clone() else {
        return Ok(no_content());
    };
    // Data that cannot be opened is served as no data, as a missing file is.
    let Some(data) = blocking(move || Ok(store.read(image_id, DataSlot::Image).ok())).await? else {
        return Ok(no_content());
    };
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        Body::from_stream(chunks(data.reader)),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(data.size));
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

/// The bytes of a blocking reader as a stream, each read off the async workers.
fn chunks(
    reader: Box<dyn Read + Send>,
) -> impl futures_util::Stream<Item = io::Result<Vec<u8>>> + Send {
    futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0_u8; DOWNLOAD_CHUNK];
            let read = reader.read(&mut buffer).map(|read| {
                buffer.truncate(read);
                buffer
            });
            (reader, read)
        })
        .await;
        match read {
            Ok((_, Ok(buffer))) if buffer.is_empty() => None,
            Ok((reader, Ok(buffer))) => Some((Ok(buffer), Some(reader))),
            Ok((_, Err(error))) => Some((Err(error), None)),
            Err(error) => Some((Err(io::Error::other(error)), None)),
        }
    })
}
