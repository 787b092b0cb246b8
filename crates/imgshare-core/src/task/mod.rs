//! The task aggregate: `pending → processing → success | failure`.
//!
//! Creating a task only checks the request's shape; whether the import or export can work is
//! found out by the worker, which then fails the task with a message (the create call still
//! answers 201, as Rackspace does).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::actor::Context;
use crate::error::DomainError;
use crate::event::{Event, ImageActivated, ImageRegistered, TaskCreated};
use crate::model::{Region, StreamId, TaskStatus, TaskType, Visibility};
use crate::profile::{Operation, Profile};
use crate::ApplyError;

/// The state of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Task id.
    pub id: Uuid,
    /// Import or export.
    pub task_type: TaskType,
    /// Lifecycle status.
    pub status: TaskStatus,
    /// The request's input.
    pub input: Value,
    /// Set on success.
    pub result: Option<Value>,
    /// Set on failure.
    pub message: Option<String>,
    /// The creating account.
    pub owner: String,
    /// The creating user.
    pub user_id: String,
    /// The region it runs in.
    pub region: Region,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Set when it finishes; the task disappears after it.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Task {
    /// True if the task may be shown to `tenant_id` in `region` at `now`.
    pub fn is_visible_to(&self, tenant_id: &str, region: &Region, now: DateTime<Utc>) -> bool {
        self.owner == tenant_id && self.region == *region && !self.is_expired(now)
    }

    /// True once `expires_at` has passed.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}

/// The image an import creates, registered in the same commit as the task's success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The new image's id (a new UUID, never the source's).
    pub image_id: Uuid,
    /// From `input.image_properties.name`.
    pub name: Option<String>,
    /// The data facts of the imported VHD.
    pub data: ImageActivated,
}

/// What can be asked of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskCommand {
    /// `POST /v2/tasks`.
    Create {
        /// The body's `type`, as given.
        task_type: String,
        /// The body's `input`, as given.
        input: Value,
    },
    /// The worker picked it up.
    Start,
    /// The worker finished it; an import also registers its image in the same commit.
    Succeed {
        /// The task result.
        result: Value,
        /// The image an import created.
        imported_image: Option<ImportedImage>,
    },
    /// The worker gave up, with the message the user will see.
    Fail {
        /// Why.
        message: String,
    },
}

fn not_found(task_id: Uuid) -> DomainError {
    DomainError::TaskNotFound {
        task_id: task_id.to_string(),
    }
}

/// Decides a task command; returns events for the task's stream and, for an import's success,
/// the new image's stream.
pub fn decide(
    profile: &Profile,
    state: &Option<Task>,
    task_id: Uuid,
    command: &TaskCommand,
    ctx: &Context,
) -> Result<Vec<(StreamId, Event)>, DomainError> {
    let stream = StreamId::Task(task_id);
    match command {
        TaskCommand::Create { task_type, input } => {
            profile.authorize(&ctx.actor, Operation::CreateTask)?;
            let Some(parsed_type) =
                TaskType::parse(task_type).filter(|t| profile.task_types().contains(t))
            else {
                let allowed: Vec<_> = profile.task_types().iter().map(|t| t.as_str()).collect();
                return Err(DomainError::invalid(format!(
                    "Invalid task type '{task_type}': must be one of {}",
                    allowed.join(", ")
                )));
            };
            if !input.is_object() {
                return Err(DomainError::invalid("Task 'input' must be a JSON object"));
            }
            if state.is_some() {
                return Err(DomainError::AlreadyExists {
                    message: format!("Task ID {task_id} already exists!"),
                });
            }
            Ok(vec![(
                stream,
                Event::TaskCreated(TaskCreated {
                    task_id,
                    task_type: parsed_type,
                    input: input.clone(),
                    owner: ctx.actor.tenant_id.clone(),
                    user_id: ctx.actor.user_id.clone(),
                    region: ctx.region.clone(),
                }),
            )])
        }
        TaskCommand::Start => {
            let task = worker_target(state, task_id, ctx)?;
            require_status(task, &[TaskStatus::Pending], "start")?;
            Ok(vec![(stream, Event::TaskStarted {})])
        }
        TaskCommand::Succeed {
            result,
            imported_image,
        } => {
            let task = worker_target(state, task_id, ctx)?;
            require_status(task, &[TaskStatus::Processing], "succeed")?;
            let mut events = vec![(
                stream,
                Event::TaskSucceeded {
                    result: result.clone(),
                    expires_at: ctx.now + profile.task_ttl(),
                },
            )];
            if let Some(imported) = imported_image {
                events.extend(imported_image_events(task, imported));
            }
            Ok(events)
        }
        TaskCommand::Fail { message } => {
            let task = worker_target(state, task_id, ctx)?;
            require_status(task, &[TaskStatus::Pending, TaskStatus::Processing], "fail")?;
            Ok(vec![(
                stream,
                Event::TaskFailed {
                    message: message.clone(),
                    expires_at: ctx.now + profile.task_ttl(),
                },
            )])
        }
    }
}

/// An imported image: private, owned by the task's account, in the task's region, `image_type`
/// `import`, formats ovf/vhd (`docs/spec/rackspace.md` §3.9).
fn imported_image_events(task: &Task, imported: &ImportedImage) -> Vec<(StreamId, Event)> {
    let properties = [
        ("image_type", "import"),
        ("auto_disk_config", "False"),
        ("os_type", "linux"),
        ("user_id", task.user_id.as_str()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let stream = StreamId::Image(imported.image_id);
    vec![
        (
            stream,
            Event::ImageRegistered(ImageRegistered {
                image_id: imported.image_id,
                region: task.region.clone(),
                owner: Some(task.owner.clone()),
                name: imported.name.clone(),
                visibility: Visibility::Private,
                protected: false,
                os_hidden: false,
                container_format: Some("ovf".to_owned()),
                disk_format: Some("vhd".to_owned()),
                min_disk: 0,
                min_ram: 0,
                tags: Vec::new(),
                properties,
            }),
        ),
        (stream, Event::ImageActivated(imported.data.clone())),
    ]
}

/// Worker commands come from the provider only, in the task's region.
fn worker_target<'a>(
    state: &'a Option<Task>,
    task_id: Uuid,
    ctx: &Context,
) -> Result<&'a Task, DomainError> {
    // Tasks are regional: a task of another region does not exist for the request.
    let task = state
        .as_ref()
        .filter(|task| task.region == ctx.region)
        .ok_or_else(|| not_found(task_id))?;
    if !ctx.actor.is_operator() {
        return Err(DomainError::RoleForbidden {
            message: "Only the task worker changes a task's status".to_owned(),
        });
    }
    Ok(task)
}

fn require_status(task: &Task, allowed: &[TaskStatus], action: &str) -> Result<(), DomainError> {
    if allowed.contains(&task.status) {
        Ok(())
    } else {
        Err(DomainError::InvalidTransition {
            message: format!("Cannot {action} a task in status '{}'", task.status),
        })
    }
}

/// Folds one event into a task's state.
pub fn apply(
    state: Option<Task>,
    event: &Event,
    at: DateTime<Utc>,
) -> Result<Option<Task>, ApplyError> {
    let Some(mut task) = state else {
        let Event::TaskCreated(created) = event else {
            return Err(ApplyError::new(format!(
                "{} before task_created",
                event.event_type()
            )));
        };
        return Ok(Some(Task {
            id: created.task_id,
            task_type: created.task_type,
            status: TaskStatus::Pending,
            input: created.input.clone(),
            result: None,
            message: None,
            owner: created.owner.clone(),
            user_id: created.user_id.clone(),
            region: created.region.clone(),
            created_at: at,
            updated_at: at,
            expires_at: None,
        }));
    };
    match event {
        Event::TaskStarted {} => task.status = TaskStatus::Processing,
        Event::TaskSucceeded { result, expires_at } => {
            task.status = TaskStatus::Success;
            task.result = Some(result.clone());
            task.expires_at = Some(*expires_at);
        }
        Event::TaskFailed {
            message,
            expires_at,
        } => {
            task.status = TaskStatus::Failure;
            task.message = Some(message.clone());
            task.expires_at = Some(*expires_at);
        }
        other => {
            return Err(ApplyError::new(format!(
                "{} in a task stream",
                other.event_type()
            )));
        }
    }
    task.updated_at = at;
    Ok(Some(task))
}

#[cfg(test)]
mod tests;
