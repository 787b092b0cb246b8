//! The Audit tab of an image (beyond the article): the image's history from the event log and
//! who could use it at a date, from the owner-only API routes `GET /v2/images/{id}/history` and
//! `GET /v2/images/{id}/access?at=` (anyone else gets their 404, shown as it is).

// The `Err` of a `Page` is the answer to send at once (see `pages`).
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::encode;
use crate::pages::{
    base_context, call, error_page, fetch, fetch_image, render, status_label, text, ImageRef, Page,
    Visit,
};
use crate::Console;

/// Longest event details shown in a row (the event log keeps them whole).
const MAX_DETAILS: usize = 240;

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    at: Option<String>,
}

/// "member_status_changed" → "Member status changed".
fn event_label(event_type: &str) -> String {
    let spaced = event_type.replace('_', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Who an event's metadata names.
fn actor_label(entry: &Value) -> String {
    let actor = entry.get("actor").cloned().unwrap_or(Value::Null);
    let (tenant, user) = (text(&actor, "tenant_id"), text(&actor, "user_id"));
    match (tenant.is_empty(), user.is_empty()) {
        (true, true) if text(&actor, "kind") == "operator" => "the provider".into(),
        (true, true) => "—".into(),
        (false, true) => format!("account {tenant}"),
        (true, false) => user,
        (false, false) => format!("account {tenant} ({user})"),
    }
}

fn details(data: &Value) -> String {
    let mut shown = data.to_string();
    if shown.len() > MAX_DETAILS {
        let mut cut = MAX_DETAILS;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    shown
}

/// Why an account could use the image, as a person says it.
fn why_label(why: &Value) -> String {
    match why.get("reason").and_then(Value::as_str) {
        Some("owner") => "Owner".into(),
        Some("public") => "Public image".into(),
        Some("community") => "Community image".into(),
        Some("member") => format!("Member, {}", status_label(&text(why, "member_status"))),
        _ => "No access".into(),
    }
}

fn access_view(report: &Value, at: &str) -> Value {
    let rows: Vec<Value> = report
        .get("accounts")
        .and_then(Value::as_array)
        .map(|accounts| {
            accounts
                .iter()
                .map(|row| {
                    json!({
                        "account": text(row, "tenant_id"),
                        "why": why_label(row.get("why").unwrap_or(&Value::Null)),
                        "can_see": row.get("can_see").and_then(Value::as_bool).unwrap_or(false),
                        "can_boot": row.get("can_boot").and_then(Value::as_bool).unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let every = report
        .get("every_account")
        .filter(|every| !every.is_null())
        .map(|every| why_label(every.get("why").unwrap_or(&Value::Null)));
    json!({
        "at": at,
        "exists": report.get("exists").and_then(Value::as_bool).unwrap_or(false),
        "status": text(report, "status"),
        "visibility": text(report, "visibility"),
        "region": text(report, "region"),
        "every_account": every,
        "accounts": rows,
    })
}

/// The `at` sent to the API: as typed, except that a date alone means its midnight, UTC.
fn api_time(typed: &str) -> String {
    let typed = typed.trim();
    if typed.len() == 10 && chrono::NaiveDate::parse_from_str(typed, "%Y-%m-%d").is_ok() {
        format!("{typed}T00:00:00Z")
    } else {
        typed.to_owned()
    }
}

/// `GET /console/images/{region}/{id}/audit[?at=]`.
pub(crate) async fn audit(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Path(target): Path<ImageRef>,
    Query(query): Query<AuditQuery>,
) -> Page {
    let (region, image) = fetch_image(&console, &session, &target, &back).await?;
    let path = target.api_path();
    let history = fetch(
        &console,
        &session,
        region,
        &format!("{path}/history"),
        &back,
    )
    .await?;
    let history: Vec<Value> = history
        .get("history")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    json!({
                        "at": text(entry, "recorded_at"),
                        "type": text(entry, "event_type"),
                        "label": event_label(&text(entry, "event_type")),
                        "by": actor_label(entry),
                        "details": details(entry.get("data").unwrap_or(&Value::Null)),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let typed = query
        .at
        .filter(|at| !at.trim().is_empty())
        // Now, to the nanosecond: a change made within the last second is part of "now".
        .unwrap_or_else(|| console.now().to_rfc3339_opts(SecondsFormat::AutoSi, true));
    let sent = api_time(&typed);
    let access_path = format!("{path}/access?at={}", encode(&sent));
    let answer = call(
        &console,
        &session,
        region,
        Method::GET,
        &access_path,
        None,
        &back,
    )
    .await?;
    let (status, access, at_error) = if answer.status.is_success() {
        (StatusCode::OK, access_view(&answer.body, &sent), None)
    } else if answer.status == StatusCode::BAD_REQUEST {
        // A date the API refuses: its message beside the field, the history still shown.
        (answer.status, Value::Null, Some(answer.message()))
    } else {
        return Err(error_page(
            &console,
            Some(&session),
            answer.status,
            &answer.message(),
        ));
    };
    let mut context = base_context(&console, Some(&session));
    context.insert(
        "image".into(),
        json!({"region": region.name, "id": text(&image, "id"), "name": text(&image, "name")}),
    );
    context.insert("history".into(), json!(history));
    context.insert("access".into(), access);
    context.insert("at".into(), json!(typed));
    context.insert("at_error".into(), json!(at_error));
    Ok(render(&console, status, "audit.html", context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_words() {
        assert_eq!(
            event_label("member_status_changed"),
            "Member status changed"
        );
        assert_eq!(event_label(""), "");
        assert_eq!(
            why_label(&json!({"reason": "member", "member_status": "accepted"})),
            "Member, Accepted"
        );
        assert_eq!(why_label(&Value::Null), "No access");
        assert_eq!(
            actor_label(&json!({"actor": {"tenant_id": "111111", "user_id": "u1"}})),
            "account 111111 (u1)"
        );
        assert_eq!(api_time(" 2026-12-01 "), "2026-12-01T00:00:00Z");
        assert_eq!(api_time("2026-12-01T09:00:00Z"), "2026-12-01T09:00:00Z");
        assert_eq!(api_time("yesterday"), "yesterday");
        assert!(details(&json!({"x": "é".repeat(500)})).ends_with('…'));
    }
}
