//! Import and export (beyond the article): the forms that create the tasks, the list of the
//! account's tasks, and one task's progress until it succeeds or fails with its message. All of it
//! is `POST /v2/tasks` and `GET /v2/tasks[/{id}]` as the user.

// The `Err` of a `Page` is the answer to send at once (see `pages`).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use imgshare_core::Operation;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::actions::csrf_checked;
use crate::api::encode;
use crate::pages::{
    base_context, call, fetch, may, region_of, render, text, Page, Visit, ALL_REGIONS,
};
use crate::session::Session;
use crate::{Console, MOUNT};

type Fields = HashMap<String, String>;

/// What a page needs of one task.
fn task_view(region: &str, task: &Value) -> Value {
    let input = task.get("input").cloned().unwrap_or(Value::Null);
    let result = task.get("result").cloned().unwrap_or(Value::Null);
    json!({
        "region": region,
        "id": text(task, "id"),
        "type": text(task, "type"),
        "status": text(task, "status"),
        "created": text(task, "created_at"),
        "updated": text(task, "updated_at"),
        "message": text(task, "message"),
        "import_from": text(&input, "import_from"),
        "image_uuid": text(&input, "image_uuid"),
        "container": text(&input, "receiving_swift_container"),
        "image_id": text(&result, "image_id"),
        "export_location": text(&result, "export_location"),
        "running": matches!(text(task, "status").as_str(), "pending" | "processing"),
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct TasksQuery {
    region: Option<String>,
}

/// `GET /console/tasks`: the import form and the account's tasks.
pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Query(query): Query<TasksQuery>,
) -> Page {
    let selected = query.region.unwrap_or_else(|| ALL_REGIONS.to_owned());
    let mut tasks = Vec::new();
    let mut errors = Vec::new();
    for region in &console.config.regions {
        if selected != ALL_REGIONS && selected != region.name {
            continue;
        }
        let answer = call(
            &console,
            &session,
            region,
            Method::GET,
            "/v2/tasks",
            None,
            &back,
        )
        .await?;
        if !answer.status.is_success() {
            errors.push(format!("{}: {}", region.name, answer.message()));
        } else if let Some(page) = answer.body.get("tasks").and_then(Value::as_array) {
            tasks.extend(page.iter().map(|task| task_view(&region.name, task)));
        }
    }
    let mut context = base_context(&console, Some(&session));
    context.insert("tasks".into(), json!(tasks));
    context.insert("errors".into(), json!(errors));
    context.insert("form".into(), import_form(&Fields::new()));
    Ok(form_page(
        &console,
        &session,
        StatusCode::OK,
        "tasks.html",
        context,
        None,
    ))
}

/// A task form (import or export) with the fields as sent and the API's refusal, if any.
fn form_page(
    console: &Console,
    session: &Session,
    status: StatusCode,
    template: &str,
    mut context: Map<String, Value>,
    error: Option<&str>,
) -> axum::response::Response {
    context.insert("error".into(), json!(error));
    context.insert(
        "may_create".into(),
        json!(may(console, session, Operation::CreateTask)),
    );
    render(console, status, template, context)
}

/// Creates the task `body` in `region_name` and goes to its progress page; if the API refuses,
/// the form `template` again with `context` and the API's status and message.
async fn create(
    console: &Console,
    session: &Session,
    region_name: &str,
    body: &Value,
    back: &str,
    template: &str,
    context: Map<String, Value>,
) -> Page {
    let region = region_of(console, session, region_name)?;
    let answer = call(
        console,
        session,
        region,
        Method::POST,
        "/v2/tasks",
        Some(body),
        back,
    )
    .await?;
    if !answer.status.is_success() {
        let message = answer.message();
        return Ok(form_page(
            console,
            session,
            answer.status,
            template,
            context,
            Some(&message),
        ));
    }
    let id = text(&answer.body, "id");
    let progress = format!("{MOUNT}/tasks/{}/{}", encode(region_name), encode(&id));
    Ok(Redirect::to(&progress).into_response())
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map(|value| value.trim()).unwrap_or("")
}

/// The import form's fields as sent (empty when new).
fn import_form(fields: &Fields) -> Value {
    json!({
        "region": field(fields, "region"),
        "container": field(fields, "container"),
        "object": field(fields, "object"),
        "name": field(fields, "name"),
    })
}

/// `POST /console/tasks/import`: an import task from `<container>/<object>` of the account.
pub(crate) async fn import(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Form(fields): Form<Fields>,
) -> Page {
    csrf_checked(&console, &session, &fields)?;
    // Sent as typed: the task reports a bad location with the provider's own message.
    let mut properties = Map::new();
    if !field(&fields, "name").is_empty() {
        properties.insert("name".into(), json!(field(&fields, "name")));
    }
    let body = json!({
        "type": "import",
        "input": {
            "import_from": format!("{}/{}", field(&fields, "container"), field(&fields, "object")),
            "image_properties": properties,
        },
    });
    let mut context = base_context(&console, Some(&session));
    context.insert("tasks".into(), json!([]));
    context.insert("errors".into(), json!([]));
    context.insert("form".into(), import_form(&fields));
    let region = field(&fields, "region");
    create(
        &console,
        &session,
        region,
        &body,
        &back,
        "tasks.html",
        context,
    )
    .await
}

/// What the export form shows: the image, and the container as typed.
fn export_context(
    console: &Console,
    session: &Session,
    region: &str,
    image_id: &str,
    container: &str,
) -> Map<String, Value> {
    let mut context = base_context(console, Some(session));
    context.insert("image".into(), json!({"region": region, "id": image_id}));
    context.insert("container".into(), json!(container));
    context
}

/// `GET /console/images/{region}/{id}/export`: the export form.
pub(crate) async fn export_form(
    State(console): State<Arc<Console>>,
    Visit { session, .. }: Visit,
    Path((region, image_id)): Path<(String, String)>,
) -> Page {
    region_of(&console, &session, &region)?;
    let context = export_context(&console, &session, &region, &image_id, "");
    Ok(form_page(
        &console,
        &session,
        StatusCode::OK,
        "export.html",
        context,
        None,
    ))
}

/// `POST /console/images/{region}/{id}/export`: an export task into a container of the account.
pub(crate) async fn export(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Path((region, image_id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Page {
    csrf_checked(&console, &session, &fields)?;
    let container = field(&fields, "container");
    let body = json!({
        "type": "export",
        "input": {"image_uuid": image_id, "receiving_swift_container": container},
    });
    let context = export_context(&console, &session, &region, &image_id, container);
    create(
        &console,
        &session,
        &region,
        &body,
        &back,
        "export.html",
        context,
    )
    .await
}

/// `GET /console/tasks/{region}/{id}`: one task, refreshed by the page's script while it runs.
pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Path((region_name, task_id)): Path<(String, String)>,
) -> Page {
    let region = region_of(&console, &session, &region_name)?;
    let path = format!("/v2/tasks/{}", encode(&task_id));
    let task = fetch(&console, &session, region, &path, &back).await?;
    let mut context = base_context(&console, Some(&session));
    context.insert("task".into(), task_view(&region.name, &task));
    Ok(render(&console, StatusCode::OK, "task.html", context))
}
