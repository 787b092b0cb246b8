//! `/v2/images/{image_id}/history` and `/v2/images/{image_id}/access`: an imgshare extension
//! (not Glance's) that shows an image's owner what the event log knows about the image
//! (`docs/audit.md` "Over HTTP").
//!
//! Only whoever administers the image (its owner, or a cloud admin) may read them; anyone else,
//! a member of the image included, gets the 404 of an image they cannot see, so that neither
//! route tells an outsider that the image exists.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use imgshare_core::{access, Context};
use imgshare_projection::percent::decode_form;
use imgshare_store::{AsOf, Engine};
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{image_id, Ctx, ImagePath, NoBody};
use crate::response::{blocking, json_response};
use crate::state::AppState;

/// What `at=` must look like, said in every refusal of it.
const AT_FORMAT: &str = "an RFC 3339 date and time, e.g. 2026-12-01T09:30:00Z";

/// The image if the caller administers it; otherwise the 404 of an image it cannot see.
fn administered(engine: &Engine, ctx: &Context, image_id: Uuid) -> Result<(), ApiError> {
    let image = engine.get_image(ctx, image_id)?;
    if access::administers(engine.profile(), &image, &ctx.actor) {
        Ok(())
    } else {
        Err(ApiError::image_not_found(&image_id.to_string()))
    }
}

/// `GET /v2/images/{image_id}/history`: every event of the image, oldest first, with who did it,
/// where and when.
pub(crate) async fn history(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    RawQuery(query): RawQuery,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    if let Some(query) = query.filter(|query| !query.is_empty()) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("Image history takes no query parameters (got {query:?})."),
        ));
    }
    let image_id = image_id(&path.image_id)?;
    let engine = Arc::clone(&state.engine);
    let entries = blocking(move || {
        administered(&engine, &ctx, image_id)?;
        Ok(engine.history(image_id)?)
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"image_id": image_id, "history": entries}),
    ))
}

/// The `at` of `?at=<RFC 3339>`; any other parameter, a missing or repeated `at`, or a date that
/// does not parse is 400 with what was expected.
fn parse_at(query: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    let bad = |message: String| ApiError::bad_request("invalid_date", message);
    let mut at = None;
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = String::from_utf8_lossy(&decode_form(key)).into_owned();
        if key != "at" {
            return Err(bad(format!(
                "Unknown query parameter {key:?}: image access takes only 'at', {AT_FORMAT}."
            )));
        }
        if at.is_some() {
            return Err(bad(format!(
                "'at' is given twice: give it once, {AT_FORMAT}."
            )));
        }
        let value = String::from_utf8(decode_form(value))
            .map_err(|_| bad(format!("'at' is not valid text: give {AT_FORMAT}.")))?;
        let time = DateTime::parse_from_rfc3339(value.trim())
            .map_err(|_| bad(format!("'at' is not a date: {value:?}; give {AT_FORMAT}.")))?;
        at = Some(time.with_timezone(&Utc));
    }
    at.ok_or_else(|| bad(format!("'at' is required: {AT_FORMAT}.")))
}

/// `GET /v2/images/{image_id}/access?at=<RFC 3339>`: which accounts could see and boot the image
/// at that moment, and why (the rules of live requests applied to the image as it was then).
pub(crate) async fn access_at(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(path): Path<ImagePath>,
    RawQuery(query): RawQuery,
    NoBody: NoBody,
) -> Result<Response, ApiError> {
    let at = parse_at(query.as_deref())?;
    let image_id = image_id(&path.image_id)?;
    let engine = Arc::clone(&state.engine);
    let report = blocking(move || {
        administered(&engine, &ctx, image_id)?;
        Ok(engine.access_at(image_id, AsOf::Time(at))?)
    })
    .await?;
    let mut body = serde_json::to_value(&report)
        .map_err(|error| ApiError::internal("render_failed").with_cause(error))?;
    if let Some(object) = body.as_object_mut() {
        object.insert("at".into(), json!(at));
    }
    Ok(json_response(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn at_must_be_one_rfc3339_time() {
        let at = parse_at(Some("at=2026-12-01T09%3A30%3A00%2B01%3A00")).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-01T08:30:00+00:00");
        assert!(parse_at(Some("at=2026-12-01T09:30:00Z")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("at="),
            Some("at=yesterday"),
            Some("at=2026-12-01"),
            Some("at=2026-13-01T00:00:00Z"),
            Some("when=2026-12-01T09:30:00Z"),
            Some("at=2026-12-01T09:30:00Z&at=2026-12-02T09:30:00Z"),
            Some("at=%ff"),
        ] {
            let error = parse_at(bad).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(
                error.message.contains("RFC 3339"),
                "{bad:?}: {}",
                error.message
            );
        }
    }
}
