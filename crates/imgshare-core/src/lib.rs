//! The pure domain of imgshare: images (with their members and tags) and tasks, each an
//! event-sourced state machine.
//!
//! Brief overview:
//! - [`Command`] is what a caller asks; [`decide`] checks it against the current state of the
//!   streams it touches and returns [`Event`]s or a [`DomainError`].
//! - [`Aggregate::apply`] folds one event into a state; the state is the fold of its stream.
//! - [`Profile`] carries the rules that differ between Rackspace Cloud Images and Glance.
//! - [`access`] answers who can see and boot an image.
//!
//! Nothing here does I/O or reads a clock: time, region and caller come in a [`Context`], ids in
//! the [`Command`].

#![warn(missing_docs)]

pub mod access;
pub mod actor;
pub mod error;
pub mod event;
pub mod image;
pub mod model;
pub mod patch;
pub mod profile;
pub mod queries;
pub mod state;
pub mod task;
pub mod transfer;
pub mod vhd;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

pub use actor::{Actor, ActorKind, Context};
pub use error::{DomainError, ErrorKind};
pub use event::{Event, ImageActivated, ImageRegistered, PropertyChange, TaskCreated, UpcastError};
pub use image::{Image, ImageCommand, ImageOrigin, Member, NewImage};
pub use model::{ImageStatus, MemberStatus, Region, StreamId, TaskStatus, TaskType, Visibility};
pub use profile::{Operation, Profile, ProfileKind, TagPermissions};
pub use task::{ImportedImage, Task, TaskCommand};

/// A stream could not be folded: an event does not fit the state (a corrupt or foreign stream).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot apply event: {message}")]
pub struct ApplyError {
    /// What did not fit.
    pub message: String,
}

impl ApplyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ApplyError {
            message: message.into(),
        }
    }
}

/// A command to one aggregate, addressed by id.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A command to an image (its members and tags included).
    Image {
        /// The image.
        image_id: Uuid,
        /// What to do.
        command: ImageCommand,
    },
    /// A command to a task.
    Task {
        /// The task.
        task_id: Uuid,
        /// What to do.
        command: TaskCommand,
    },
}

impl Command {
    /// A stable name of the command's kind (`image.add_member`, `task.start`), for counting
    /// commands by kind; never stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Image { command, .. } => match command {
                ImageCommand::Register { .. } => "image.register",
                ImageCommand::StartSaving => "image.start_saving",
                ImageCommand::Activate(_) => "image.activate",
                ImageCommand::Kill { .. } => "image.kill",
                ImageCommand::Upload(_) => "image.upload",
                ImageCommand::Stage { .. } => "image.stage",
                ImageCommand::StartImport { .. } => "image.start_import",
                ImageCommand::FinishImport(_) => "image.finish_import",
                ImageCommand::FailImport { .. } => "image.fail_import",
                ImageCommand::Deactivate => "image.deactivate",
                ImageCommand::Reactivate => "image.reactivate",
                ImageCommand::Update(_) => "image.update",
                ImageCommand::AddTag { .. } => "image.add_tag",
                ImageCommand::RemoveTag { .. } => "image.remove_tag",
                ImageCommand::Delete => "image.delete",
                ImageCommand::AddMember { .. } => "image.add_member",
                ImageCommand::RemoveMember { .. } => "image.remove_member",
                ImageCommand::SetMemberStatus { .. } => "image.set_member_status",
            },
            Command::Task { command, .. } => match command {
                TaskCommand::Create { .. } => "task.create",
                TaskCommand::Start => "task.start",
                TaskCommand::Succeed { .. } => "task.succeed",
                TaskCommand::Fail { .. } => "task.fail",
            },
        }
    }

    /// The streams whose state the decision needs; the first is the addressed aggregate.
    pub fn streams(&self) -> Vec<StreamId> {
        match self {
            Command::Image { image_id, .. } => vec![StreamId::Image(*image_id)],
            Command::Task { task_id, command } => {
                let mut streams = vec![StreamId::Task(*task_id)];
                if let TaskCommand::Succeed {
                    imported_image: Some(imported),
                    ..
                } = command
                {
                    streams.push(StreamId::Image(imported.image_id));
                }
                streams
            }
        }
    }
}

/// The state of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aggregate {
    /// An image stream (`None` before registration).
    Image(Option<Image>),
    /// A task stream (`None` before creation).
    Task(Option<Task>),
}

impl Aggregate {
    /// The empty state of a stream.
    pub fn empty(stream: StreamId) -> Self {
        match stream {
            StreamId::Image(_) => Aggregate::Image(None),
            StreamId::Task(_) => Aggregate::Task(None),
        }
    }

    /// Folds one event recorded at `at`.
    pub fn apply(self, event: &Event, at: DateTime<Utc>) -> Result<Self, ApplyError> {
        match self {
            Aggregate::Image(state) => image::apply(state, event, at).map(Aggregate::Image),
            Aggregate::Task(state) => task::apply(state, event, at).map(Aggregate::Task),
        }
    }

    /// True before the first event.
    pub fn is_empty(&self) -> bool {
        matches!(self, Aggregate::Image(None) | Aggregate::Task(None))
    }

    /// The image, if this is an existing image stream.
    pub fn as_image(&self) -> Option<&Image> {
        match self {
            Aggregate::Image(image) => image.as_ref(),
            Aggregate::Task(_) => None,
        }
    }

    /// The task, if this is an existing task stream.
    pub fn as_task(&self) -> Option<&Task> {
        match self {
            Aggregate::Task(task) => task.as_ref(),
            Aggregate::Image(_) => None,
        }
    }
}

/// Decides `command` given the current state of each stream in [`Command::streams`].
/// A stream missing from `states` counts as empty.
pub fn decide(
    profile: &Profile,
    states: &BTreeMap<StreamId, Aggregate>,
    command: &Command,
    ctx: &Context,
) -> Result<Vec<(StreamId, Event)>, DomainError> {
    match command {
        Command::Image { image_id, command } => {
            let stream = StreamId::Image(*image_id);
            let none = None;
            // Borrowed: an image with many members is costly to copy for each decision.
            let state = match states.get(&stream) {
                Some(Aggregate::Image(state)) => state,
                _ => &none,
            };
            let events = image::decide(profile, state, *image_id, command, ctx)?;
            Ok(events.into_iter().map(|event| (stream, event)).collect())
        }
        Command::Task { task_id, command } => {
            let none = None;
            let state = match states.get(&StreamId::Task(*task_id)) {
                Some(Aggregate::Task(state)) => state,
                _ => &none,
            };
            if let TaskCommand::Succeed {
                imported_image: Some(imported),
                ..
            } = command
            {
                if states
                    .get(&StreamId::Image(imported.image_id))
                    .is_some_and(|state| !state.is_empty())
                {
                    return Err(DomainError::AlreadyExists {
                        message: format!("Image ID {} already exists!", imported.image_id),
                    });
                }
            }
            task::decide(profile, state, *task_id, command, ctx)
        }
    }
}
