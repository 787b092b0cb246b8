//! Input checks shared by the image's decisions: text, tags, formats, property names, statuses
//! and uploaded data.

use super::Image;
use crate::error::DomainError;
use crate::event::ImageActivated;
use crate::model::ImageStatus;
use crate::profile::Profile;

pub(super) const MAX_TEXT: usize = 255;
/// The interoperable-import methods served: only `glance-direct` (the data comes from `/stage`),
/// since `web-download` would fetch from arbitrary URLs and `copy-image` needs several stores.
pub const IMPORT_METHODS: &[&str] = &["glance-direct"];
pub(super) const MAX_INT: u64 = i32::MAX as u64;
pub(super) const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
pub(super) const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
pub(super) const READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
    "stores",
];
pub(super) const RESERVED: &[&str] = &["location", "locations", "deleted", "deleted_at"];

/// Core fields a PATCH may target, besides custom properties.
pub(super) fn is_core_key(profile: &Profile, key: &str) -> bool {
    match key {
        "name" | "visibility" | "protected" | "container_format" | "disk_format" | "min_disk"
        | "min_ram" | "tags" | "owner" => true,
        // Icehouse (Rackspace) has no os_hidden; there it is an ordinary custom property.
        "os_hidden" => profile.has_os_fields(),
        _ => false,
    }
}

/// Checks a piece of text the API stores: length, no 4-byte UTF-8 (Glance refuses those) and no
/// NUL character, which PostgreSQL cannot store in text: refused on every backend, so that a
/// catalogue behaves the same on SQLite and PostgreSQL and its log can move between them.
pub fn validate_text(what: &str, text: &str) -> Result<(), DomainError> {
    if text.chars().count() > MAX_TEXT {
        return Err(DomainError::invalid(format!(
            "{what} is too long: at most {MAX_TEXT} characters"
        )));
    }
    if text.chars().any(|c| c.len_utf8() == 4) {
        return Err(DomainError::invalid(format!(
            "{what} contains 4-byte UTF-8 characters, which are not supported"
        )));
    }
    if text.contains('\0') {
        return Err(DomainError::invalid(format!(
            "{what} contains the NUL character, which is not supported"
        )));
    }
    Ok(())
}

pub(super) fn validate_tag(tag: &str) -> Result<(), DomainError> {
    if tag.is_empty() {
        return Err(DomainError::invalid("Tag can't be empty"));
    }
    validate_text("Tag", tag)
}

pub(super) fn validate_format(
    kind: &str,
    allowed: &[&str],
    value: Option<&str>,
) -> Result<(), DomainError> {
    match value {
        Some(format) if !allowed.contains(&format) => Err(DomainError::invalid(format!(
            "Invalid value '{format}' for {kind}: must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Checks a property name a client wants to write: non-empty, at most 255 characters, no 4-byte
/// UTF-8, and not a read-only (`status`, `checksum`, …) or reserved (`location`, `os_glance*`)
/// name (403). Adapters that parse bodies call it before building a command.
pub fn validate_property_key(key: &str) -> Result<(), DomainError> {
    if key.is_empty() {
        return Err(DomainError::invalid("Property names can't be empty"));
    }
    validate_text("Property name", key)?;
    if READ_ONLY.contains(&key) {
        return Err(DomainError::forbidden(format!(
            "Attribute '{key}' is read-only."
        )));
    }
    if RESERVED.contains(&key) || key.starts_with("os_glance") {
        return Err(DomainError::forbidden(format!(
            "Attribute '{key}' is reserved."
        )));
    }
    Ok(())
}

pub(super) fn require_status(
    image: &Image,
    allowed: &[ImageStatus],
    action: &str,
) -> Result<(), DomainError> {
    if allowed.contains(&image.status) {
        Ok(())
    } else {
        Err(DomainError::InvalidTransition {
            message: format!("Cannot {action} an image in status '{}'", image.status),
        })
    }
}

pub(super) fn require_formats(image: &Image) -> Result<(), DomainError> {
    if image.container_format.is_none() || image.disk_format.is_none() {
        return Err(DomainError::invalid(
            "Property(ies) container_format and disk_format must be set prior to saving data.",
        ));
    }
    Ok(())
}

pub(super) fn validate_data(data: &ImageActivated) -> Result<(), DomainError> {
    let is_md5 = data.checksum.len() == 32 && data.checksum.chars().all(|c| c.is_ascii_hexdigit());
    if !is_md5 {
        return Err(DomainError::invalid(
            "checksum must be 32 hexadecimal characters (md5)",
        ));
    }
    Ok(())
}
