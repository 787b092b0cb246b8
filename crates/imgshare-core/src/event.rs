//! Events: the public, versioned contract of the log.
//!
//! Each event is stored as a type name, a schema version and a JSON object of its fields.
//! A stored event is never rewritten: when a shape must change, the new shape gets a new
//! version and [`Event::from_stored`] upcasts the old one on read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;
use uuid::Uuid;

use crate::model::{MemberStatus, Region, TaskType, Visibility};

/// Everything an image starts with when it is registered (status `queued`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRegistered {
    /// The new image's id.
    pub image_id: Uuid,
    /// The region it lives in, for good.
    pub region: Region,
    /// The owning account; `None` for provider base images.
    pub owner: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Who it is offered to.
    pub visibility: Visibility,
    /// Protected images cannot be deleted.
    pub protected: bool,
    /// Hidden images are left out of default lists (Glance `os_hidden`; Rackspace hidden base images).
    pub os_hidden: bool,
    /// e.g. `ovf`.
    pub container_format: Option<String>,
    /// e.g. `vhd`.
    pub disk_format: Option<String>,
    /// Minimum disk in GB.
    pub min_disk: u64,
    /// Minimum RAM in MB.
    pub min_ram: u64,
    /// Initial tags.
    pub tags: Vec<String>,
    /// Custom properties, e.g. `image_type`, `com.rackspace__1__options`.
    pub properties: BTreeMap<String, String>,
}

/// The image data was written and verified: the image becomes `active`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageActivated {
    /// Bytes of image data.
    pub size: u64,
    /// md5 hex of the data.
    pub checksum: String,
    /// Virtual disk size, where known.
    pub virtual_size: Option<u64>,
    /// Secure hash algorithm, where computed (Glance `os_hash_algo`).
    pub os_hash_algo: Option<String>,
    /// Secure hash value (Glance `os_hash_value`).
    pub os_hash_value: Option<String>,
}

/// One property change made by a PATCH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum PropertyChange {
    /// Set a core field (`name`, `min_disk`, `tags`, ...) or a custom property to a value.
    Set {
        /// Property name.
        key: String,
        /// New value, typed as the API shows it.
        value: Value,
    },
    /// Remove a custom property.
    Removed {
        /// Property name.
        key: String,
    },
}

/// A task was created (status `pending`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCreated {
    /// The task id.
    pub task_id: Uuid,
    /// `import` or `export`.
    pub task_type: TaskType,
    /// The request's `input`, as given.
    pub input: Value,
    /// The creating account.
    pub owner: String,
    /// The creating user.
    pub user_id: String,
    /// The region it runs in.
    pub region: Region,
}

/// Every event of every stream. The serde tag is the stored `event_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An image was registered (snapshot, base image, API create or import).
    ImageRegistered(ImageRegistered),
    /// `queued → saving`: data is being written.
    ImageSavingStarted {},
    /// `→ active` with its data facts.
    ImageActivated(ImageActivated),
    /// `queued → uploading`: data was staged for an interoperable import (`PUT /stage`).
    ImageDataStaged {
        /// Bytes staged.
        size: u64,
    },
    /// `uploading → importing`: `POST /import` accepted.
    ImageImportStarted {
        /// The import method, e.g. `glance-direct`.
        method: String,
    },
    /// `importing → queued`: the import could not finish; staged data is gone.
    ImageImportFailed {
        /// Why.
        reason: String,
    },
    /// `saving → killed`: the data could not be saved.
    ImageKilled {
        /// Why.
        reason: String,
    },
    /// `active → deactivated`.
    ImageDeactivated {},
    /// `deactivated → active`.
    ImageReactivated {},
    /// Properties changed through PATCH, applied in order.
    ImageUpdated {
        /// The changes.
        changes: Vec<PropertyChange>,
    },
    /// A tag was added.
    ImageTagAdded {
        /// The tag.
        tag: String,
    },
    /// A tag was removed.
    ImageTagRemoved {
        /// The tag.
        tag: String,
    },
    /// The image was deleted; it no longer exists for anyone.
    ImageDeleted {},
    /// An account was added as a member (status `pending`).
    MemberAdded {
        /// The consumer account.
        member_id: String,
    },
    /// The member changed its status (v2; v1 had no `previous_status`).
    MemberStatusChanged {
        /// The consumer account.
        member_id: String,
        /// The new status.
        status: MemberStatus,
        /// The status it changed from, so that a history shows each answer as a transition.
        /// `None` only for events stored at v1, which did not record it.
        previous_status: Option<MemberStatus>,
    },
    /// The owner removed the member.
    MemberRemoved {
        /// The consumer account.
        member_id: String,
    },
    /// A task was created.
    TaskCreated(TaskCreated),
    /// `pending → processing`.
    TaskStarted {},
    /// `processing → success`.
    TaskSucceeded {
        /// e.g. `{"image_id": ...}` or `{"export_location": ...}`.
        result: Value,
        /// When the task stops being visible.
        expires_at: DateTime<Utc>,
    },
    /// `→ failure`.
    TaskFailed {
        /// Why, in the words of `docs/spec/rackspace.md` §3.7.
        message: String,
        /// When the task stops being visible.
        expires_at: DateTime<Utc>,
    },
}

/// A stored event could not be read as any known version.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot read event {event_type} v{schema_version}: {reason}")]
pub struct UpcastError {
    /// Stored type.
    pub event_type: String,
    /// Stored version.
    pub schema_version: u32,
    /// What went wrong.
    pub reason: String,
}

impl Event {
    /// The stored type name, e.g. `member_added`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::ImageRegistered(_) => "image_registered",
            Event::ImageSavingStarted {} => "image_saving_started",
            Event::ImageActivated(_) => "image_activated",
            Event::ImageDataStaged { .. } => "image_data_staged",
            Event::ImageImportStarted { .. } => "image_import_started",
            Event::ImageImportFailed { .. } => "image_import_failed",
            Event::ImageKilled { .. } => "image_killed",
            Event::ImageDeactivated {} => "image_deactivated",
            Event::ImageReactivated {} => "image_reactivated",
            Event::ImageUpdated { .. } => "image_updated",
            Event::ImageTagAdded { .. } => "image_tag_added",
            Event::ImageTagRemoved { .. } => "image_tag_removed",
            Event::ImageDeleted {} => "image_deleted",
            Event::MemberAdded { .. } => "member_added",
            Event::MemberStatusChanged { .. } => "member_status_changed",
            Event::MemberRemoved { .. } => "member_removed",
            Event::TaskCreated(_) => "task_created",
            Event::TaskStarted {} => "task_started",
            Event::TaskSucceeded { .. } => "task_succeeded",
            Event::TaskFailed { .. } => "task_failed",
        }
    }

    /// The schema version this code writes for the event's type.
    pub fn schema_version(&self) -> u32 {
        current_schema_version(self.event_type())
    }

    /// The JSON object stored in the `data` column (the fields, without the type tag).
    pub fn to_data(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut value {
            fields.remove("type");
        }
        value
    }

    /// Reads a stored event of any known version, upcasting old shapes to the current one.
    pub fn from_stored(
        event_type: &str,
        schema_version: u32,
        data: &Value,
    ) -> Result<Self, UpcastError> {
        Self::from_stored_value(event_type, schema_version, data.clone())
    }

    /// [`Event::from_stored`] taking the data by value, which saves a copy when replaying.
    pub fn from_stored_value(
        event_type: &str,
        schema_version: u32,
        data: Value,
    ) -> Result<Self, UpcastError> {
        let fail = |reason: String| UpcastError {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        };
        let current = current_schema_version(event_type);
        if schema_version == 0 || schema_version > current {
            return Err(fail(format!("unknown schema version {schema_version}")));
        }
        let Value::Object(mut tagged) = data else {
            return Err(fail("data is not a JSON object".to_owned()));
        };
        // The upcaster chain: each step turns version n into n + 1, until the current version.
        for version in schema_version..current {
            tagged = upcast_step(event_type, version, tagged).map_err(fail)?;
        }
        tagged.insert("type".to_owned(), Value::String(event_type.to_owned()));
        serde_json::from_value(Value::Object(tagged)).map_err(|error| fail(error.to_string()))
    }
}

/// The schema version this code writes (and reads without upcasting) for an event type.
pub fn current_schema_version(event_type: &str) -> u32 {
    match event_type {
        "member_status_changed" => 2,
        _ => 1,
    }
}

/// One step of the upcaster chain: `data` of `event_type` at `version`, as `version + 1`.
fn upcast_step(
    event_type: &str,
    version: u32,
    data: Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    match (event_type, version) {
        ("member_status_changed", 1) => Ok(member_status_changed_v1_to_v2(data)),
        _ => Err(format!("no upcaster from version {version}")),
    }
}

/// `member_status_changed` v1 → v2: v1 did not record the status the member changed from, so
/// `previous_status` is `null` ("not recorded"), never a guess from the stream.
pub fn member_status_changed_v1_to_v2(mut data: Map<String, Value>) -> Map<String, Value> {
    data.insert("previous_status".to_owned(), Value::Null);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_has_no_type_tag_and_reads_back() {
        let event = Event::MemberStatusChanged {
            member_id: "554433".into(),
            status: MemberStatus::Accepted,
            previous_status: Some(MemberStatus::Pending),
        };
        let data = event.to_data();
        assert_eq!(
            data,
            serde_json::json!({"member_id": "554433", "status": "accepted", "previous_status": "pending"})
        );
        assert_eq!(event.event_type(), "member_status_changed");
        assert_eq!(event.schema_version(), 2);
        assert_eq!(
            Event::from_stored("member_status_changed", 2, &data).unwrap(),
            event
        );
    }

    #[test]
    fn member_status_changed_v1_reads_as_v2_with_no_previous_status() {
        let v1 = serde_json::json!({"member_id": "554433", "status": "rejected"});
        assert_eq!(
            Event::from_stored("member_status_changed", 1, &v1).unwrap(),
            Event::MemberStatusChanged {
                member_id: "554433".into(),
                status: MemberStatus::Rejected,
                previous_status: None,
            }
        );
        // The stored v1 data is not what v2 would write: upcasting changes the reading only.
        assert_ne!(
            Event::from_stored("member_status_changed", 1, &v1)
                .unwrap()
                .to_data(),
            v1
        );
        assert!(Event::from_stored("member_status_changed", 3, &v1).is_err());
        assert!(Event::from_stored("member_status_changed", 0, &v1).is_err());
        // Types that never had a second version still refuse version 2.
        assert!(
            Event::from_stored("member_added", 2, &serde_json::json!({"member_id": "1"})).is_err()
        );
    }

    #[test]
    fn empty_events_store_an_empty_object() {
        assert_eq!(Event::ImageDeleted {}.to_data(), serde_json::json!({}));
        assert_eq!(
            Event::from_stored("image_deleted", 1, &serde_json::json!({})).unwrap(),
            Event::ImageDeleted {}
        );
    }

    #[test]
    fn unknown_types_versions_and_shapes_are_errors_not_panics() {
        assert!(Event::from_stored("image_exploded", 1, &serde_json::json!({})).is_err());
        assert!(Event::from_stored("image_deleted", 9, &serde_json::json!({})).is_err());
        assert!(Event::from_stored("member_added", 1, &serde_json::json!([])).is_err());
        assert!(Event::from_stored("member_added", 1, &serde_json::json!({"member": 1})).is_err());
    }
}
