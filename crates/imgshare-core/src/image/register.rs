//! Registering an image: who may register what, and the shape of a new image.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::validate::*;
use super::{Image, ImageOrigin, NewImage};
use crate::actor::Context;
use crate::error::DomainError;
use crate::event::{Event, ImageRegistered};
use crate::model::Visibility;
use crate::profile::{Operation, Profile};

pub(super) fn decide_register(
    profile: &Profile,
    state: &Option<Image>,
    image_id: Uuid,
    origin: &ImageOrigin,
    new: &NewImage,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    let actor = &ctx.actor;
    let (owner, image_type, default_visibility) = match origin {
        ImageOrigin::Snapshot { .. } => {
            profile.authorize(actor, Operation::CreateImage)?;
            if actor.is_operator() {
                return Err(DomainError::invalid(
                    "A snapshot belongs to a tenant's server",
                ));
            }
            (
                Some(actor.tenant_id.clone()),
                "snapshot",
                Visibility::Private,
            )
        }
        ImageOrigin::Base => {
            if !actor.is_operator() {
                return Err(DomainError::RoleForbidden {
                    message: "Only the provider publishes base images".to_owned(),
                });
            }
            (None, "base", Visibility::Public)
        }
        ImageOrigin::Api => {
            if profile.api_registration_is_provider_only() && !actor.is_operator() {
                return Err(DomainError::forbidden(
                    "Images are created from servers or by import tasks on this cloud.",
                ));
            }
            profile.authorize(actor, Operation::CreateImage)?;
            let owner = match &new.owner {
                None => actor.tenant_id.clone(),
                Some(owner) => {
                    if owner.is_empty() {
                        return Err(DomainError::invalid("Owner must be a non-empty string"));
                    }
                    validate_text("Owner", owner)?;
                    if *owner != actor.tenant_id && !profile.is_cloud_admin(actor) {
                        return Err(DomainError::forbidden(format!(
                            "You are not permitted to create images owned by '{owner}'."
                        )));
                    }
                    owner.clone()
                }
            };
            (Some(owner), "", profile.default_visibility())
        }
    };
    if new.owner.is_some() && *origin != ImageOrigin::Api {
        return Err(DomainError::invalid(
            "Only an image created through the API may name its owner",
        ));
    }
    if state.is_some() {
        return Err(DomainError::AlreadyExists {
            message: format!("Image ID {image_id} already exists!"),
        });
    }
    let visibility = new.visibility.unwrap_or(default_visibility);
    // A visibility the caller chose needs the profile's permission. A snapshot is registered
    // with the tenant's own context, so anything but its private default is the tenant
    // publishing (rackspace: nobody but the provider sets visibility).
    let chosen = match origin {
        ImageOrigin::Api => new.visibility.is_some(),
        ImageOrigin::Snapshot { .. } => visibility != default_visibility,
        ImageOrigin::Base => false,
    };
    if chosen {
        profile.may_set_visibility(actor, visibility)?;
    }
    if let Some(name) = &new.name {
        validate_text("Name", name)?;
    }
    validate_format(
        "container_format",
        CONTAINER_FORMATS,
        new.container_format.as_deref(),
    )?;
    validate_format("disk_format", DISK_FORMATS, new.disk_format.as_deref())?;
    if new.min_disk > MAX_INT || new.min_ram > MAX_INT {
        return Err(DomainError::invalid(
            "min_disk and min_ram must be at most 2147483647",
        ));
    }
    let tags: BTreeSet<String> = new.tags.iter().cloned().collect();
    for tag in &tags {
        validate_tag(tag)?;
    }
    if tags.len() > profile.tag_quota {
        return Err(DomainError::OverLimit {
            message: format!("Maximum number of tags ({}) exceeded", profile.tag_quota),
        });
    }
    let mut properties = new.properties.clone();
    for (key, value) in &properties {
        validate_property_key(key)?;
        validate_text("Property value", value)?;
        // Only the API path is untrusted: snapshots inherit provider properties from their base
        // image, passed by the compute service, and the provider sets what it likes.
        if *origin == ImageOrigin::Api
            && (profile.is_protected_property(key) || is_core_key(profile, key))
        {
            return Err(DomainError::forbidden(format!(
                "You are not permitted to set '{key}' on this image."
            )));
        }
    }
    if properties.len() > profile.property_quota {
        return Err(DomainError::OverLimit {
            message: format!(
                "Maximum number of properties ({}) exceeded",
                profile.property_quota
            ),
        });
    }
    if !image_type.is_empty() {
        properties.insert("image_type".to_owned(), image_type.to_owned());
    }
    if let ImageOrigin::Snapshot { server_id } = origin {
        validate_text("Server id", server_id)?;
        properties.insert("instance_uuid".to_owned(), server_id.clone());
        properties.insert("user_id".to_owned(), actor.user_id.clone());
    }
    let registered = ImageRegistered {
        image_id,
        region: ctx.region.clone(),
        owner,
        name: new.name.clone(),
        visibility,
        protected: new.protected,
        os_hidden: new.os_hidden,
        container_format: new.container_format.clone(),
        disk_format: new.disk_format.clone(),
        min_disk: new.min_disk,
        min_ram: new.min_ram,
        tags: tags.into_iter().collect(),
        properties,
    };
    let mut events = vec![Event::ImageRegistered(registered)];
    if let Some(data) = &new.data {
        if new.container_format.is_none() || new.disk_format.is_none() {
            return Err(DomainError::invalid(
                "Property(ies) container_format and disk_format must be set prior to saving data.",
            ));
        }
        validate_data(data)?;
        events.push(Event::ImageActivated(data.clone()));
    }
    Ok(events)
}
