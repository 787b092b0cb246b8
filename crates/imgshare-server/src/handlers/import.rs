//! Glance's interoperable import: `POST /v2/images/{image_id}/import` and `GET /v2/info/import`
//! (the data comes from `PUT /stage`, see `image_data`).
//!
//! Only `glance-direct` is served. `POST /import` answers 202 once the image is `importing`; the
//! staged bytes are then hashed and made the image's bytes off the request, and the image
//! becomes `active`, or goes back to `queued` (Glance's revert) if that fails.

use std::io::Read;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use imgshare_core::image::IMPORT_METHODS;
use imgshare_core::{Actor, Command, Context, ImageActivated, ImageCommand, ImageStatus};
use imgshare_store::{DataHashes, DataSlot, Engine, ImageDataStore};
use serde_json::{json, Value};
use uuid::Uuid;

use super::image_data::not_configured;
use crate::error::ApiError;
use crate::extract::{image_id, json_body, Ctx, ImagePath, NoBody, Payload};
use crate::response::{blocking, json_response};
use crate::state::AppState;

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

/// `POST /v2/images/{image_id}/import`: 202, empty.
pub(crate) async fn import(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let image_id = image_id(&path.image_id)?;
    let method = import_method(&json_body(&body)?)?;
    let store = state.image_data.clone().ok_or_else(not_configured)?;
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
        finish_import(&engine, store.as_ref(), ctx, image_id);
    }));
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/info/import`: the import methods this endpoint serves.
pub(crate) async fn info(NoBody: NoBody) -> Response {
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
/// still there (the import goes on) or it is not (the image goes back to `queued`). An import
/// another live worker is finishing (its lease is held: another server on the same PostgreSQL
/// database) is left to it. Returns how many it finished.
pub fn resume_imports(state: &AppState) -> Result<usize, ApiError> {
    let Some(store) = state.image_data.as_deref() else {
        return Ok(0);
    };
    let engine = &state.engine;
    let ids = engine.image_ids_in_status(&state.region, ImageStatus::Importing)?;
    let mut finished = 0;
    for &image_id in &ids {
        let ctx = Context::new(
            Actor::operator("imgshare-import"),
            state.region.clone(),
            Utc::now(),
        );
        if finish_import(engine, store, ctx, image_id) {
            finished += 1;
        }
    }
    Ok(finished)
}

/// Makes the staged data the image's and activates the image; on failure, reverts it to
/// `queued` and removes the staged data. Holds the image's lease meanwhile (the task worker's
/// kind, keyed by the image id), so that a server starting on the same database does not resume
/// an import a live one is finishing; returns false, doing nothing, when another worker holds it.
/// A lease that cannot be taken because its connection failed does not stop the import: it then
/// runs as it would on one server.
fn finish_import(
    engine: &Engine,
    store: &dyn ImageDataStore,
    mut ctx: Context,
    image_id: Uuid,
) -> bool {
    let _lease = match engine.try_lease_task(image_id) {
        Ok(Some(lease)) => Some(lease),
        Ok(None) => return false,
        Err(error) => {
            tracing::warn!(image_id = %image_id, error = %error, "import runs without a lease");
            None
        }
    };
    let moved = hash_staged(store, image_id).and_then(|data| {
        store
            .promote_staged(image_id)
            .map(|()| data)
            .map_err(|error| format!("could not move the staged data: {error}"))
    });
    ctx.now = Utc::now();
    let execute = |command| engine.execute(&ctx, Command::Image { image_id, command });
    let reason = match moved {
        Ok(data) => match execute(ImageCommand::FinishImport(data)) {
            Ok(_) => return true,
            // Deleted meanwhile (the revert below is then refused too), or the log is unusable.
            Err(error) => format!("could not record the import: {error}"),
        },
        Err(reason) => reason,
    };
    // The import did not finish: its data has no owner now, and the image goes back to queued.
    for slot in [DataSlot::Staged, DataSlot::Image] {
        let _ = store.remove_slot(image_id, slot);
    }
    let _ = execute(ImageCommand::FailImport { reason });
    true
}

/// The facts of the staged data; the reason (kept in the image's history) if it cannot be read.
fn hash_staged(store: &dyn ImageDataStore, image_id: Uuid) -> Result<ImageActivated, String> {
    let mut reader = store
        .read(image_id, DataSlot::Staged)
        .map_err(|error| format!("the staged data is missing: {error}"))?
        .reader;
    let mut hashes = DataHashes::default();
    let mut buffer = vec![0_u8; 256 * 1024];
    loop {
        let read = reader
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
