//! Typed results: [`ImageView`], [`MemberView`], [`TaskView`] and the pages and lists that hold
//! them. Each keeps the domain value a Rust caller reads ([`ImageView::image`], ...) beside the
//! document the API shows for it, and serializes to exactly that document, so the HTTP adapter
//! renders these types like any other embedder.

use imgshare_core::{Image, Member, Profile, Task};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::query::Marker;
use crate::views;

/// An image as the caller's profile shows it (`GET /v2/images/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageView {
    image: Image,
    document: Value,
}

impl ImageView {
    /// Renders `image` as `profile` shows it.
    pub fn new(profile: &Profile, image: Image) -> Self {
        let document = views::image(profile, &image);
        Self { image, document }
    }

    /// The image's state.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The image's state, without the document.
    pub fn into_image(self) -> Image {
        self.image
    }

    /// The API's JSON document.
    pub fn json(&self) -> &Value {
        &self.document
    }

    /// The API's JSON document, without the state.
    pub fn into_json(self) -> Value {
        self.document
    }
}

impl Serialize for ImageView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.document.serialize(serializer)
    }
}

/// One share of an image (`GET /v2/images/{id}/members/{member_id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    image_id: Uuid,
    member: Member,
    document: Value,
}

impl MemberView {
    /// Renders `member`, a share of `image_id`.
    pub fn new(image_id: Uuid, member: Member) -> Self {
        let document = views::member(&image_id.to_string(), &member);
        Self {
            image_id,
            member,
            document,
        }
    }

    /// The shared image.
    pub fn image_id(&self) -> Uuid {
        self.image_id
    }

    /// The share: the member account, its status and times.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The API's JSON document.
    pub fn json(&self) -> &Value {
        &self.document
    }

    /// The API's JSON document, without the state.
    pub fn into_json(self) -> Value {
        self.document
    }
}

impl Serialize for MemberView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.document.serialize(serializer)
    }
}

/// An image's members (`GET /v2/images/{id}/members`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberList {
    /// The members the caller may read.
    pub members: Vec<MemberView>,
}

impl MemberList {
    /// The API's JSON document.
    pub fn into_json(self) -> Value {
        let members: Vec<Value> = self
            .members
            .into_iter()
            .map(MemberView::into_json)
            .collect();
        json!({"members": members, "schema": "/v2/schemas/members"})
    }
}

impl Serialize for MemberList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("members", &self.members)?;
        map.serialize_entry("schema", "/v2/schemas/members")?;
        map.end()
    }
}

/// A task: in full (`GET /v2/tasks/{id}`) or as a list entry (`GET /v2/tasks`: no input, result
/// or message).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    task: Task,
    document: Value,
}

impl TaskView {
    /// The task in full, as `profile` shows it.
    pub fn full(profile: &Profile, task: Task) -> Self {
        let document = views::task(profile, &task);
        Self { task, document }
    }

    /// The task as a list entry.
    pub fn entry(task: Task) -> Self {
        let document = views::task_stub(&task);
        Self { task, document }
    }

    /// The task's state.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The API's JSON document.
    pub fn json(&self) -> &Value {
        &self.document
    }

    /// The API's JSON document, without the state.
    pub fn into_json(self) -> Value {
        self.document
    }
}

impl Serialize for TaskView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.document.serialize(serializer)
    }
}

/// An image's tasks (`GET /v2/images/{id}/tasks`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskList {
    /// The caller's tasks about the image, newest first.
    pub tasks: Vec<TaskView>,
}

impl TaskList {
    /// The API's JSON document.
    pub fn into_json(self) -> Value {
        let tasks: Vec<Value> = self.tasks.into_iter().map(TaskView::into_json).collect();
        json!({ "tasks": tasks })
    }
}

impl Serialize for TaskList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("tasks", &self.tasks)?;
        map.end()
    }
}

/// The links of a page, derived from the query that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Links {
    first: String,
    next: Option<String>,
}

/// One page of `GET /v2/images`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePage {
    /// The images of the page, in the query's order.
    pub images: Vec<ImageView>,
    /// Where the next page starts; `None` when this page is not full (the last one).
    pub next: Option<Marker>,
    links: Links,
}

/// One page of `GET /v2/tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    /// The tasks of the page, as list entries.
    pub tasks: Vec<TaskView>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Marker>,
    links: Links,
}

impl ImagePage {
    pub(crate) fn new(
        images: Vec<ImageView>,
        next: Option<Marker>,
        first: String,
        next_link: Option<String>,
    ) -> Self {
        Self {
            images,
            next,
            links: Links {
                first,
                next: next_link,
            },
        }
    }

    /// The API's JSON document.
    pub fn into_json(self) -> Value {
        let images: Vec<Value> = self.images.into_iter().map(ImageView::into_json).collect();
        page_json("images", images, "/v2/schemas/images", self.links)
    }
}

impl TaskPage {
    pub(crate) fn new(
        tasks: Vec<TaskView>,
        next: Option<Marker>,
        first: String,
        next_link: Option<String>,
    ) -> Self {
        Self {
            tasks,
            next,
            links: Links {
                first,
                next: next_link,
            },
        }
    }

    /// The API's JSON document.
    pub fn into_json(self) -> Value {
        let tasks: Vec<Value> = self.tasks.into_iter().map(TaskView::into_json).collect();
        page_json("tasks", tasks, "/v2/schemas/tasks", self.links)
    }
}

fn page_json(key: &str, entries: Vec<Value>, schema: &str, links: Links) -> Value {
    let mut page = json!({ key: entries, "first": links.first, "schema": schema });
    if let Some(next) = links.next {
        page["next"] = json!(next);
    }
    page
}

fn serialize_page<S: Serializer, T: Serialize>(
    serializer: S,
    key: &str,
    entries: &[T],
    schema: &str,
    links: &Links,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(3 + usize::from(links.next.is_some())))?;
    map.serialize_entry(key, entries)?;
    map.serialize_entry("first", &links.first)?;
    map.serialize_entry("schema", schema)?;
    if let Some(next) = &links.next {
        map.serialize_entry("next", next)?;
    }
    map.end()
}

impl Serialize for ImagePage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_page(
            serializer,
            "images",
            &self.images,
            "/v2/schemas/images",
            &self.links,
        )
    }
}

impl Serialize for TaskPage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_page(
            serializer,
            "tasks",
            &self.tasks,
            "/v2/schemas/tasks",
            &self.links,
        )
    }
}
