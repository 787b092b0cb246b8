//! The request handlers, one module per resource. A handler parses what the route table
//! extracted, runs one engine call through `blocking`, and renders the answer; rules belong to
//! the engine, not here.

pub(crate) mod audit;
pub(crate) mod image_data;
pub(crate) mod images;
pub(crate) mod import;
pub(crate) mod members;
pub(crate) mod tags;
pub(crate) mod tasks;
pub(crate) mod versions;

use std::sync::Arc;

use imgshare_core::{Command, Context, ImageCommand};
use imgshare_store::Engine;
use uuid::Uuid;

use crate::error::ApiError;
use crate::response::blocking;

/// Runs an image command whose answer carries no state.
pub(crate) async fn execute_image(
    engine: Arc<Engine>,
    ctx: Context,
    image_id: Uuid,
    command: ImageCommand,
) -> Result<(), ApiError> {
    blocking(move || {
        engine.execute(&ctx, Command::Image { image_id, command })?;
        Ok(())
    })
    .await
}
