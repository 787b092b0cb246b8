//! PATCH: a JSON-patch document applied to a copy of the image, op by op; any failure aborts
//! the whole request.

use std::collections::BTreeSet;

use serde_json::Value;
use uuid::Uuid;

use super::Image;
use super::{guard::*, validate::*};
use crate::actor::Context;
use crate::error::DomainError;
use crate::event::{Event, PropertyChange};
use crate::model::{ImageStatus, Visibility};
use crate::patch::{PatchDialect, PatchDocument, PatchOpKind};
use crate::profile::{Operation, Profile};
use crate::ApplyError;

/// Applies a PATCH to a copy of the image, op by op; any failure aborts the whole request.
pub(super) fn decide_update(
    profile: &Profile,
    state: &Option<Image>,
    image_id: Uuid,
    document: &PatchDocument,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    let image = owned_for(profile, state, image_id, ctx, Operation::UpdateImage)?;
    let mut working = image.clone();
    let mut changes = Vec::new();
    let mut added_new_property = false;
    for op in &document.ops {
        let key = op.path.as_str();
        validate_property_key(key)?;
        if op.index.is_some() {
            return Err(DomainError::forbidden(format!(
                "Attribute '{key}' is reserved."
            )));
        }
        if profile.is_protected_property(key) && !profile.is_cloud_admin(&ctx.actor) {
            return Err(DomainError::forbidden(format!(
                "You are not permitted to modify '{key}' on this image."
            )));
        }
        if is_core_key(profile, key) {
            match op.kind {
                PatchOpKind::Remove => {
                    return Err(DomainError::forbidden(format!(
                        "Property {key} may not be removed."
                    )));
                }
                PatchOpKind::Add if document.dialect == PatchDialect::V2_0 => {
                    return Err(DomainError::PropertyConflict {
                        message: format!("Property {key} already present."),
                    });
                }
                PatchOpKind::Add | PatchOpKind::Replace => {
                    let value = op.value.clone().unwrap_or(Value::Null);
                    let value = check_core_value(profile, &working, key, value, ctx)?;
                    set_core(&mut working, key, &value)
                        .map_err(|error| DomainError::invalid(error.message))?;
                    changes.push(PropertyChange::Set {
                        key: key.to_owned(),
                        value,
                    });
                }
            }
            continue;
        }
        let exists = working.properties.contains_key(key);
        match op.kind {
            PatchOpKind::Remove => {
                if !exists {
                    return Err(DomainError::PropertyConflict {
                        message: format!("Property {key} does not exist."),
                    });
                }
                working.properties.remove(key);
                changes.push(PropertyChange::Removed {
                    key: key.to_owned(),
                });
            }
            PatchOpKind::Add | PatchOpKind::Replace => {
                if op.kind == PatchOpKind::Replace && !exists {
                    return Err(DomainError::PropertyConflict {
                        message: format!("Property {key} does not exist."),
                    });
                }
                if op.kind == PatchOpKind::Add && exists && document.dialect == PatchDialect::V2_0 {
                    return Err(DomainError::PropertyConflict {
                        message: format!("Property {key} already present."),
                    });
                }
                let Some(Value::String(text)) = &op.value else {
                    return Err(DomainError::invalid(format!(
                        "Invalid value for '{key}': custom property values must be strings"
                    )));
                };
                validate_text("Property value", text)?;
                added_new_property |= !exists;
                working.properties.insert(key.to_owned(), text.clone());
                changes.push(PropertyChange::Set {
                    key: key.to_owned(),
                    value: Value::String(text.clone()),
                });
            }
        }
    }
    if added_new_property && working.properties.len() > profile.property_quota {
        return Err(DomainError::OverLimit {
            message: format!(
                "Maximum number of properties ({}) exceeded",
                profile.property_quota
            ),
        });
    }
    if working.tags.len() > profile.tag_quota && working.tags != image.tags {
        return Err(DomainError::OverLimit {
            message: format!("Maximum number of tags ({}) exceeded", profile.tag_quota),
        });
    }
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ImageUpdated { changes }])
}

/// Validates a value for a core field and returns it in canonical form (tags deduplicated).
pub(super) fn check_core_value(
    profile: &Profile,
    image: &Image,
    key: &str,
    value: Value,
    ctx: &Context,
) -> Result<Value, DomainError> {
    let bad = |expected: &str| {
        DomainError::invalid(format!("Invalid value for '{key}': expected {expected}"))
    };
    match key {
        "name" => match &value {
            Value::Null => Ok(value),
            Value::String(text) => validate_text("Name", text).map(|()| value),
            _ => Err(bad("a string or null")),
        },
        "protected" | "os_hidden" => match value {
            Value::Bool(_) => Ok(value),
            _ => Err(bad("a boolean")),
        },
        "min_disk" | "min_ram" => match value.as_u64() {
            Some(number) if number <= MAX_INT => Ok(value),
            _ => Err(bad("an integer from 0 to 2147483647")),
        },
        "container_format" | "disk_format" => {
            let replaceable = matches!(image.status, ImageStatus::Queued | ImageStatus::Importing);
            if !replaceable && !profile.is_cloud_admin(&ctx.actor) {
                return Err(DomainError::forbidden(format!(
                    "Attribute {key} can be only replaced for a queued image."
                )));
            }
            let allowed = if key == "container_format" {
                CONTAINER_FORMATS
            } else {
                DISK_FORMATS
            };
            match &value {
                Value::Null => Ok(value),
                Value::String(text) => validate_format(key, allowed, Some(text)).map(|()| value),
                _ => Err(bad("a string or null")),
            }
        }
        "tags" => {
            let Value::Array(items) = value else {
                return Err(bad("an array of strings"));
            };
            let mut tags = BTreeSet::new();
            for item in items {
                let Value::String(tag) = item else {
                    return Err(bad("an array of strings"));
                };
                validate_tag(&tag)?;
                tags.insert(tag);
            }
            Ok(Value::Array(tags.into_iter().map(Value::String).collect()))
        }
        "visibility" => {
            let Some(visibility) = value.as_str().and_then(Visibility::parse) else {
                return Err(bad("one of public, private, shared, community"));
            };
            profile.may_set_visibility(&ctx.actor, visibility)?;
            Ok(value)
        }
        "owner" => {
            if !profile.is_cloud_admin(&ctx.actor) {
                return Err(DomainError::forbidden(
                    "Owner can't be updated by non admin.",
                ));
            }
            match &value {
                Value::String(text) if !text.is_empty() => {
                    validate_text("Owner", text).map(|()| value)
                }
                _ => Err(bad("a non-empty string")),
            }
        }
        _ => Err(DomainError::invalid(format!(
            "Unknown core property '{key}'"
        ))),
    }
}

/// Sets a core field or a custom property from an already validated value.
pub(super) fn set_core(image: &mut Image, key: &str, value: &Value) -> Result<(), ApplyError> {
    let wrong = || ApplyError::new(format!("invalid stored value for '{key}': {value}"));
    let text = |value: &Value| -> Result<Option<String>, ApplyError> {
        match value {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text.clone())),
            _ => Err(wrong()),
        }
    };
    match key {
        "name" => image.name = text(value)?,
        "container_format" => image.container_format = text(value)?,
        "disk_format" => image.disk_format = text(value)?,
        "owner" => image.owner = text(value)?,
        "protected" => image.protected = value.as_bool().ok_or_else(wrong)?,
        // On Rackspace `os_hidden` is an ordinary custom property, stored as a string.
        "os_hidden" if value.is_boolean() => image.os_hidden = value.as_bool().ok_or_else(wrong)?,
        "min_disk" => image.min_disk = value.as_u64().ok_or_else(wrong)?,
        "min_ram" => image.min_ram = value.as_u64().ok_or_else(wrong)?,
        "visibility" => {
            image.visibility = value
                .as_str()
                .and_then(Visibility::parse)
                .ok_or_else(wrong)?;
        }
        "tags" => {
            let items = value.as_array().ok_or_else(wrong)?;
            image.tags = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
                .collect::<Result<_, _>>()?;
        }
        _ => {
            let text = value.as_str().ok_or_else(wrong)?;
            image.properties.insert(key.to_owned(), text.to_owned());
        }
    }
    Ok(())
}
