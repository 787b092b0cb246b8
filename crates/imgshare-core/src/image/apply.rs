//! Folding one event into an image's state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::patch_apply::*;
use super::{Image, Member};
use crate::event::{Event, PropertyChange};
use crate::model::{ImageStatus, MemberStatus};
use crate::ApplyError;

/// Folds one event into an image's state. `at` is the event's recorded time.
pub fn apply(
    state: Option<Image>,
    event: &Event,
    at: DateTime<Utc>,
) -> Result<Option<Image>, ApplyError> {
    let Some(mut image) = state else {
        let Event::ImageRegistered(registered) = event else {
            return Err(ApplyError::new(format!(
                "{} before image_registered",
                event.event_type()
            )));
        };
        return Ok(Some(Image {
            id: registered.image_id,
            region: registered.region.clone(),
            owner: registered.owner.clone(),
            name: registered.name.clone(),
            status: ImageStatus::Queued,
            visibility: registered.visibility,
            protected: registered.protected,
            os_hidden: registered.os_hidden,
            checksum: None,
            size: None,
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
            container_format: registered.container_format.clone(),
            disk_format: registered.disk_format.clone(),
            min_disk: registered.min_disk,
            min_ram: registered.min_ram,
            tags: registered.tags.iter().cloned().collect(),
            properties: registered.properties.clone(),
            members: BTreeMap::new(),
            created_at: at,
            updated_at: at,
        }));
    };
    let mut touches_image = true;
    match event {
        Event::ImageRegistered(_) => return Err(ApplyError::new("image registered twice")),
        Event::ImageSavingStarted {} => image.status = ImageStatus::Saving,
        Event::ImageActivated(data) => {
            image.status = ImageStatus::Active;
            image.size = Some(data.size);
            image.checksum = Some(data.checksum.clone());
            image.virtual_size = data.virtual_size;
            image.os_hash_algo = data.os_hash_algo.clone();
            image.os_hash_value = data.os_hash_value.clone();
        }
        Event::ImageDataStaged { size } => {
            image.status = ImageStatus::Uploading;
            image.size = Some(*size);
        }
        Event::ImageImportStarted { .. } => image.status = ImageStatus::Importing,
        Event::ImageImportFailed { .. } => {
            image.status = ImageStatus::Queued;
            image.size = None;
            image.virtual_size = None;
        }
        Event::ImageKilled { .. } => image.status = ImageStatus::Killed,
        Event::ImageDeactivated {} => image.status = ImageStatus::Deactivated,
        Event::ImageReactivated {} => image.status = ImageStatus::Active,
        Event::ImageUpdated { changes } => {
            for change in changes {
                match change {
                    PropertyChange::Set { key, value } => set_core(&mut image, key, value)?,
                    PropertyChange::Removed { key } => {
                        image.properties.remove(key);
                    }
                }
            }
        }
        Event::ImageTagAdded { tag } => {
            image.tags.insert(tag.clone());
        }
        Event::ImageTagRemoved { tag } => {
            image.tags.remove(tag);
        }
        Event::ImageDeleted {} => image.status = ImageStatus::Deleted,
        Event::MemberAdded { member_id } => {
            touches_image = false;
            image.members.insert(
                member_id.clone(),
                Member {
                    member_id: member_id.clone(),
                    status: MemberStatus::Pending,
                    created_at: at,
                    updated_at: at,
                },
            );
        }
        // `previous_status` is a record for audits; the fold trusts the stream's own order.
        Event::MemberStatusChanged {
            member_id, status, ..
        } => {
            touches_image = false;
            let member = image.members.get_mut(member_id).ok_or_else(|| {
                ApplyError::new(format!("status change of unknown member {member_id}"))
            })?;
            member.status = *status;
            member.updated_at = at;
        }
        Event::MemberRemoved { member_id } => {
            touches_image = false;
            if image.members.remove(member_id).is_none() {
                return Err(ApplyError::new(format!(
                    "removal of unknown member {member_id}"
                )));
            }
        }
        Event::TaskCreated(_)
        | Event::TaskStarted {}
        | Event::TaskSucceeded { .. }
        | Event::TaskFailed { .. } => {
            return Err(ApplyError::new(format!(
                "{} in an image stream",
                event.event_type()
            )));
        }
    }
    if touches_image {
        image.updated_at = at;
    }
    Ok(Some(image))
}
