//! The JSON the Cloud Images v2 API returns, rendered from domain values.
//!
//! Rackspace (Icehouse) omits base attributes whose value is null and knows no `os_hidden` or
//! `os_hash_*`; modern Glance shows every base key, null included (`docs/spec/glance.md` §1.3).

use imgshare_core::{Image, Member, Profile, Task, TaskStatus};
use serde_json::{json, Map, Value};

use crate::tables::api_time;

/// The image document of `GET /v2/images/{id}`.
pub fn image(profile: &Profile, image: &Image) -> Value {
    let mut view = Map::new();
    // Custom properties first, so a base attribute of the same name always wins.
    for (key, value) in &image.properties {
        view.insert(key.clone(), Value::String(value.clone()));
    }
    let id = image.id.to_string();
    let mut base: Vec<(&str, Value)> = vec![
        ("name", json!(image.name)),
        ("disk_format", json!(image.disk_format)),
        ("container_format", json!(image.container_format)),
        (
            "visibility",
            json!(profile.shown_visibility(image.visibility).as_str()),
        ),
        ("size", json!(image.size)),
        ("virtual_size", json!(image.virtual_size)),
        ("status", json!(image.status.as_str())),
        ("checksum", json!(image.checksum)),
        ("protected", json!(image.protected)),
        ("min_ram", json!(image.min_ram)),
        ("min_disk", json!(image.min_disk)),
        ("owner", json!(image.owner)),
    ];
    if profile.has_os_fields() {
        base.push(("os_hidden", json!(image.os_hidden)));
        base.push(("os_hash_algo", json!(image.os_hash_algo)));
        base.push(("os_hash_value", json!(image.os_hash_value)));
    }
    for (key, value) in base {
        if value.is_null() && !profile.shows_null_keys() {
            view.remove(key);
        } else {
            view.insert(key.to_owned(), value);
        }
    }
    view.insert("id".to_owned(), json!(id));
    view.insert("created_at".to_owned(), json!(api_time(image.created_at)));
    view.insert("updated_at".to_owned(), json!(api_time(image.updated_at)));
    view.insert("tags".to_owned(), json!(image.tags));
    view.insert("self".to_owned(), json!(format!("/v2/images/{id}")));
    view.insert("file".to_owned(), json!(format!("/v2/images/{id}/file")));
    view.insert("schema".to_owned(), json!("/v2/schemas/image"));
    sorted(view)
}

/// Keys in alphabetical order, as the seeds' samples print them (python -mjson.tool sorts).
fn sorted(view: Map<String, Value>) -> Value {
    let mut entries: Vec<(String, Value)> = view.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

/// One member row.
pub fn member(image_id: &str, member: &Member) -> Value {
    json!({
        "created_at": api_time(member.created_at),
        "image_id": image_id,
        "member_id": member.member_id,
        "schema": "/v2/schemas/member",
        "status": member.status.as_str(),
        "updated_at": api_time(member.updated_at),
    })
}

/// `GET /v2/images/{id}/members`.
pub fn members(image_id: &str, members: &[Member]) -> Value {
    let rows: Vec<Value> = members.iter().map(|row| member(image_id, row)).collect();
    json!({"members": rows, "schema": "/v2/schemas/members"})
}

/// The task document of `GET /v2/tasks/{id}` and `POST /v2/tasks`.
pub fn task(profile: &Profile, task: &Task) -> Value {
    let mut view = stub_fields(task);
    view.insert("input".to_owned(), task.input.clone());
    let message = match (&task.message, task.status) {
        (Some(message), TaskStatus::Failure) => message.clone(),
        _ => profile.task_success_message().to_owned(),
    };
    view.insert("message".to_owned(), json!(message));
    match &task.result {
        Some(result) => {
            view.insert("result".to_owned(), result.clone());
        }
        // Glance always has the key (null until success); Rackspace shows it only on success.
        None if profile.shows_null_keys() => {
            view.insert("result".to_owned(), Value::Null);
        }
        None => {}
    }
    sorted(view)
}

/// An entry of `GET /v2/tasks`: no input, result or message.
pub fn task_stub(task: &Task) -> Value {
    sorted(stub_fields(task))
}

fn stub_fields(task: &Task) -> Map<String, Value> {
    let id = task.id.to_string();
    let mut view = Map::new();
    view.insert("id".to_owned(), json!(id));
    view.insert("type".to_owned(), json!(task.task_type.as_str()));
    view.insert("status".to_owned(), json!(task.status.as_str()));
    view.insert("owner".to_owned(), json!(task.owner));
    view.insert("created_at".to_owned(), json!(api_time(task.created_at)));
    view.insert("updated_at".to_owned(), json!(api_time(task.updated_at)));
    if let Some(expires_at) = task.expires_at {
        view.insert("expires_at".to_owned(), json!(api_time(expires_at)));
    }
    view.insert("self".to_owned(), json!(format!("/v2/tasks/{id}")));
    view.insert("schema".to_owned(), json!("/v2/schemas/task"));
    view
}
