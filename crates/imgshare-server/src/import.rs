//! Glance's interoperable import: `PUT /v2/images/{id}/stage`, `POST /v2/images/{id}/import`
//! and `GET /v2/info/import`.
//!
//! Only `glance-direct` is served: the data comes from `/stage` (kept as
//! `<data_dir>/.staged-<id>`). `POST /import` answers 202 once the image is `importing`; the
//! staged file is then hashed and moved to `<data_dir>/<id>` off the request, and the image
//! becomes `active`, or goes back to `queued` (Glance's revert) if that fails.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use imgshare_core::image::IMPORT_METHODS;
use imgshare_core::{Actor, Command, Context, ImageActivated, ImageCommand, ImageStatus};
use serde_json::{json, Value};
use uuid::Uuid;

use imgshare_store::{DataHashes, Engine, FsImageDataStore};

use super::images::{not_configured, staged_path};
use super::{blocking, image_id, json_body, json_response, ApiError};
use crate::AppState;

/// The body of `POST /import`: `{"method": {"name": "..."}}`; other keys (`stores`,
/// `all_stores`, ...) are about multiple stores, which there are not, and are ignored.
fn import_method(body: &Value) -> Result<String, ApiError> {
    let invalid = |message: &str| ApiError::bad_request("invalid_import_request", message);
    let method = body
        .get("method")
        .ok_or_else(|| invalid("Import request requires a 'method' field."))?;
    let name = method
        .get("name")
        .ok_or_else(|| invalid("Import method requires a 'name' field."))?;
    name.as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid("Import method 'name' must be a string."))
}

/// `POST /v2/images/{id}/import`: 202, empty.
pub(crate) async fn import(
    state: &AppState,
    ctx: Context,
    id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let image_id = image_id(id)?;
    let method = import_method(&json_body(body)?)?;
    let data_dir = state.data_dir.clone().ok_or_else(not_configured)?;
    let engine = Arc::clone(&state.engine);
    let start_ctx = ctx.clone();
    blocking(move || {
        let command = ImageCommand::StartImport { method };
        engine.execute(&start_ctx, Command::Image { image_id, command })?;
        Ok(())
    })
    .await?;
    let engine = Arc::clone(&state.engine);
    // The import runs on after the response, as in Glance; its outcome is the image's status.
    drop(tokio::task::spawn_blocking(move || {
        finish_import(&engine, ctx, image_id, &data_dir);
    }));
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/info/import`: the import methods this endpoint serves.
pub(crate) fn info() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": IMPORT_METHODS,
        }}),
    )
}

/// Finishes the imports a stopped server left `importing` in this region: the staged data is
/// still there (the import goes on) or it is not (the image goes back to `queued`). Returns how
/// many it finished.
pub fn resume_imports(state: &AppState) -> Result<usize, ApiError> {
    let Some(data_dir) = state.data_dir.as_deref() else {
        return Ok(0);
    };
    let engine = &state.engine;
    let ids = engine.image_ids_in_status(&state.region, ImageStatus::Importing)?;
    for &image_id in &ids {
        let ctx = Context::new(
            Actor::operator("imgshare-import"),
            state.region.clone(),
            Utc::now(),
        );
        finish_import(engine, ctx, image_id, data_dir);
    }
    Ok(ids.len())
}

/// Moves the staged data into place and activates the image; on failure, reverts it to
/// `queued` and removes the staged data.
fn finish_import(engine: &Engine, mut ctx: Context, image_id: Uuid, data_dir: &Path) {
    let staged = staged_path(data_dir, image_id);
    let target = FsImageDataStore::path_in(data_dir, image_id);
    let moved = hash_file(&staged).and_then(|data| {
        std::fs::rename(&staged, &target)
            .map(|()| data)
            .map_err(|error| format!("could not move the staged data: {error}"))
    });
    ctx.now = Utc::now();
    let execute = |command| engine.execute(&ctx, Command::Image { image_id, command });
    let reason = match moved {
        Ok(data) => match execute(ImageCommand::FinishImport(data)) {
            Ok(_) => return,
            // Deleted meanwhile (the revert below is then refused too), or the log is unusable.
            Err(error) => format!("could not record the import: {error}"),
        },
        Err(reason) => reason,
    };
    // The import did not finish: its data has no owner now, and the image goes back to queued.
    for path in [&staged, &target] {
        let _ = std::fs::remove_file(path);
    }
    let _ = execute(ImageCommand::FailImport { reason });
}

fn hash_file(path: &Path) -> Result<ImageActivated, String> {
    let mut file =
        File::open(path).map_err(|error| format!("the staged data is missing: {error}"))?;
    let mut hashes = DataHashes::default();
    let mut buffer = vec![0_u8; 256 * 1024];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|error| format!("could not read the staged data: {error}"))?;
        let Some(chunk) = buffer.get(..read).filter(|chunk| !chunk.is_empty()) else {
            break;
        };
        hashes.update(chunk);
    }
    Ok(hashes.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_name_is_required_and_must_be_a_string() {
        assert_eq!(
            import_method(&json!({"method": {"name": "glance-direct"}})).unwrap(),
            "glance-direct"
        );
        for body in [
            json!({}),
            json!({"method": "glance-direct"}),
            json!({"method": {}}),
            json!({"method": {"name": 7}}),
            json!([]),
        ] {
            let error = import_method(&body).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
        }
    }
}
