//! Import and export (beyond the article): the forms that create the tasks, the list of the
//! account's tasks, and one task's progress until it succeeds or fails with its message. All of it
//! is `POST /v2/tasks` and `GET /v2/tasks[/{id}]` as the user.

// The `Err` of the session helpers is the answer to send at once (see `pages`).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use imgshare_core::Operation;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::actions::checked;
use crate::api::encode;
use crate::pages::{
    base_context, call, error_page, here, may, render, require_session, ALL_REGIONS,
};
use crate::session::Session;
use crate::{Console, MOUNT};

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

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
    headers: HeaderMap,
    uri: OriginalUri,
    Query(query): Query<TasksQuery>,
) -> Response {
    let back = here(&uri);
    let session = match require_session(&console, &headers, &back) {
        Ok(session) => session,
        Err(response) => return response,
    };
    let selected = query.region.unwrap_or_else(|| ALL_REGIONS.to_owned());
    let mut tasks = Vec::new();
    let mut errors = Vec::new();
    for region in &console.config.regions {
        if selected != ALL_REGIONS && selected != region.name {
            continue;
        }
        match call(
            &console,
            &session,
            region,
            Method::GET,
            "/v2/tasks",
            None,
            &back,
        )
        .await
        {
            Ok(answer) if answer.status.is_success() => {
                if let Some(page) = answer.body.get("tasks").and_then(Value::as_array) {
                    tasks.extend(page.iter().map(|task| task_view(&region.name, task)));
                }
            }
            Ok(answer) => errors.push(format!("{}: {}", region.name, answer.message())),
            Err(response) => return response,
        }
    }
    import_page(
        &console,
        &session,
        StatusCode::OK,
        tasks,
        errors,
        None,
        &HashMap::new(),
    )
}

fn import_page(
    console: &Console,
    session: &Session,
    status: StatusCode,
    tasks: Vec<Value>,
    errors: Vec<String>,
    error: Option<&str>,
    fields: &HashMap<String, String>,
) -> Response {
    let mut context: Map<String, Value> = base_context(console, Some(session));
    context.insert("tasks".into(), json!(tasks));
    context.insert("errors".into(), json!(errors));
    context.insert("error".into(), json!(error));
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    context.insert(
        "form".into(),
        json!({
            "region": field("region"),
            "container": field("container"),
            "object": field("object"),
            "name": field("name"),
        }),
    );
    context.insert(
        "may_create".into(),
        json!(may(console, session, Operation::CreateTask)),
    );
    render(console, status, "tasks.html", context)
}

/// Creates a task of `body` in `region_name`; on success goes to its progress page, otherwise
/// returns the API's status and message.
async fn create(
    console: &Console,
    session: &Session,
    region_name: &str,
    body: &Value,
    back: &str,
) -> Result<Result<Response, (StatusCode, String)>, Response> {
    let Some(region) = console.region(region_name) else {
        return Ok(Err((
            StatusCode::NOT_FOUND,
            format!("There is no region {region_name:?}."),
        )));
    };
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
        return Ok(Err((answer.status, answer.message())));
    }
    let id = text(&answer.body, "id");
    Ok(Ok(Redirect::to(&format!(
        "{MOUNT}/tasks/{}/{}",
        encode(region_name),
        encode(&id)
    ))
    .into_response()))
}

/// `POST /console/tasks/import`: an import task from `<container>/<object>` of the account.
pub(crate) async fn import(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    let back = here(&uri);
    let session = match checked(&console, &headers, &fields, &back) {
        Ok(session) => session,
        Err(response) => return response,
    };
    let field = |name: &str| fields.get(name).map(|value| value.trim()).unwrap_or("");
    // Sent as typed: the task reports a bad location with the provider's own message.
    let mut properties = Map::new();
    if !field("name").is_empty() {
        properties.insert("name".into(), json!(field("name")));
    }
    let body = json!({
        "type": "import",
        "input": {
            "import_from": format!("{}/{}", field("container"), field("object")),
            "image_properties": properties,
        },
    });
    match create(&console, &session, field("region"), &body, &back).await {
        Ok(Ok(response)) => response,
        Ok(Err((status, message))) => import_page(
            &console,
            &session,
            status,
            Vec::new(),
            Vec::new(),
            Some(&message),
            &fields,
        ),
        Err(response) => response,
    }
}

/// `GET /console/images/{region}/{id}/export`: the export form.
pub(crate) async fn export_form(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path((region, image_id)): Path<(String, String)>,
) -> Response {
    let back = here(&uri);
    let session = match require_session(&console, &headers, &back) {
        Ok(session) => session,
        Err(response) => return response,
    };
    export_page(
        &console,
        &session,
        StatusCode::OK,
        &region,
        &image_id,
        None,
        "",
    )
}

fn export_page(
    console: &Console,
    session: &Session,
    status: StatusCode,
    region: &str,
    image_id: &str,
    error: Option<&str>,
    container: &str,
) -> Response {
    if console.region(region).is_none() {
        return error_page(
            console,
            Some(session),
            StatusCode::NOT_FOUND,
            "There is no such region.",
        );
    }
    let mut context = base_context(console, Some(session));
    context.insert("image".into(), json!({"region": region, "id": image_id}));
    context.insert("error".into(), json!(error));
    context.insert("container".into(), json!(container));
    render(console, status, "export.html", context)
}

/// `POST /console/images/{region}/{id}/export`: an export task into a container of the account.
pub(crate) async fn export(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path((region, image_id)): Path<(String, String)>,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    let back = here(&uri);
    let session = match checked(&console, &headers, &fields, &back) {
        Ok(session) => session,
        Err(response) => return response,
    };
    let container = fields
        .get("container")
        .map(|value| value.trim())
        .unwrap_or("");
    let body = json!({
        "type": "export",
        "input": {"image_uuid": image_id, "receiving_swift_container": container},
    });
    match create(&console, &session, &region, &body, &back).await {
        Ok(Ok(response)) => response,
        Ok(Err((status, message))) => export_page(
            &console,
            &session,
            status,
            &region,
            &image_id,
            Some(&message),
            container,
        ),
        Err(response) => response,
    }
}

/// `GET /console/tasks/{region}/{id}`: one task, refreshed by the page's script while it runs.
pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path((region_name, task_id)): Path<(String, String)>,
) -> Response {
    let back = here(&uri);
    let session = match require_session(&console, &headers, &back) {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Some(region) = console.region(&region_name) else {
        return error_page(
            &console,
            Some(&session),
            StatusCode::NOT_FOUND,
            "There is no such region.",
        );
    };
    let path = format!("/v2/tasks/{}", encode(&task_id));
    let task = match call(&console, &session, region, Method::GET, &path, None, &back).await {
        Ok(answer) if answer.status.is_success() => answer.body,
        Ok(answer) => {
            return error_page(&console, Some(&session), answer.status, &answer.message())
        }
        Err(response) => return response,
    };
    let mut context = base_context(&console, Some(&session));
    context.insert("task".into(), task_view(&region.name, &task));
    render(&console, StatusCode::OK, "task.html", context)
}
