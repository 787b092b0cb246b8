//! The image aggregate: an image with its members and tags, as a state machine.
//!
//! `decide` checks a command against the state and returns events or a [`DomainError`];
//! `apply` folds one event into the state. Check order for every command on an existing
//! image: input shape (400) → existence and visibility (404) → role (403) → ownership and
//! per-rule checks (403/400/409) → quotas (413). Visibility comes before roles so that a
//! caller who cannot see an image always gets 404, never 403 (no existence leak).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::access;
use crate::actor::Context;
use crate::error::DomainError;
use crate::event::{Event, ImageActivated, ImageRegistered, PropertyChange};
use crate::model::{ImageStatus, MemberStatus, Region, Visibility};
use crate::patch::{PatchDialect, PatchDocument, PatchOpKind};
use crate::profile::{Operation, Profile, ProfileKind};
use crate::ApplyError;

/// One account an image is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The consumer account (tenant id).
    pub member_id: String,
    /// Its answer.
    pub status: MemberStatus,
    /// When it was added (re-adding after removal starts again).
    pub created_at: DateTime<Utc>,
    /// Last status change.
    pub updated_at: DateTime<Utc>,
}

/// The state of one image, folded from its stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Image id.
    pub id: Uuid,
    /// The region it lives in.
    pub region: Region,
    /// The owning account; `None` for provider base images.
    pub owner: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Lifecycle status.
    pub status: ImageStatus,
    /// Who it is offered to (as stored; the profile decides how it is shown).
    pub visibility: Visibility,
    /// Protected images cannot be deleted.
    pub protected: bool,
    /// Left out of default lists.
    pub os_hidden: bool,
    /// md5 of the data, once active.
    pub checksum: Option<String>,
    /// Bytes of data, once active.
    pub size: Option<u64>,
    /// Virtual disk size, where known.
    pub virtual_size: Option<u64>,
    /// Secure hash algorithm.
    pub os_hash_algo: Option<String>,
    /// Secure hash value.
    pub os_hash_value: Option<String>,
    /// Container format.
    pub container_format: Option<String>,
    /// Disk format.
    pub disk_format: Option<String>,
    /// Minimum disk, GB.
    pub min_disk: u64,
    /// Minimum RAM, MB.
    pub min_ram: u64,
    /// Tags (a set).
    pub tags: BTreeSet<String>,
    /// Custom properties.
    pub properties: BTreeMap<String, String>,
    /// Members by account id.
    pub members: BTreeMap<String, Member>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change to the image itself (member changes do not count, as in Glance).
    pub updated_at: DateTime<Utc>,
}

/// Where a new image comes from; decides its owner, `image_type` and who may register it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageOrigin {
    /// A snapshot of a tenant's server, registered by the compute service on the tenant's behalf.
    Snapshot {
        /// The server (`instance_uuid`).
        server_id: String,
    },
    /// A provider base image: public, unowned.
    Base,
    /// `POST /v2/images` (Glance profile only).
    Api,
}

/// A request to register an image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewImage {
    /// Display name.
    pub name: Option<String>,
    /// Requested visibility; the profile's default when absent.
    pub visibility: Option<Visibility>,
    /// Protected from deletion.
    pub protected: bool,
    /// Hidden from default lists.
    pub os_hidden: bool,
    /// Container format.
    pub container_format: Option<String>,
    /// Disk format.
    pub disk_format: Option<String>,
    /// Minimum disk, GB.
    pub min_disk: u64,
    /// Minimum RAM, MB.
    pub min_ram: u64,
    /// Initial tags.
    pub tags: Vec<String>,
    /// Custom properties.
    pub properties: BTreeMap<String, String>,
    /// Data already saved, for images registered complete (base images, finished snapshots).
    pub data: Option<ImageActivated>,
}

/// What can be asked of an image.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageCommand {
    /// Register a new image.
    Register {
        /// Where it comes from.
        origin: ImageOrigin,
        /// Its initial fields.
        image: NewImage,
    },
    /// `queued → saving` (a snapshot upload started).
    StartSaving,
    /// `queued|saving → active`.
    Activate(ImageActivated),
    /// `saving → killed`.
    Kill {
        /// Why.
        reason: String,
    },
    /// `PUT /file`: `queued → saving → active` in one step.
    Upload(ImageActivated),
    /// `active → deactivated` (idempotent).
    Deactivate,
    /// `deactivated → active` (idempotent).
    Reactivate,
    /// `PATCH` with a parsed JSON-patch document.
    Update(PatchDocument),
    /// `PUT /tags/{tag}` (adding an existing tag is a no-op).
    AddTag {
        /// The tag.
        tag: String,
    },
    /// `DELETE /tags/{tag}`.
    RemoveTag {
        /// The tag.
        tag: String,
    },
    /// `DELETE /v2/images/{id}`.
    Delete,
    /// Share with an account (`POST /members`).
    AddMember {
        /// Body field `member`, as given.
        member_id: String,
    },
    /// Unshare (`DELETE /members/{m}`).
    RemoveMember {
        /// The member.
        member_id: String,
    },
    /// Accept, reject or reset a share (`PUT /members/{m}`); the status is validated after the
    /// permission checks, as in Glance, so it arrives as text.
    SetMemberStatus {
        /// The member addressed.
        member_id: String,
        /// Body field `status`, as given.
        status: String,
    },
}

const MAX_TEXT: usize = 255;
const MAX_INT: u64 = i32::MAX as u64;
const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
const READ_ONLY: &[&str] = &[
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
const RESERVED: &[&str] = &["location", "locations", "deleted", "deleted_at"];

/// Core fields a PATCH may target, besides custom properties.
fn is_core_key(profile: &Profile, key: &str) -> bool {
    match key {
        "name" | "visibility" | "protected" | "container_format" | "disk_format" | "min_disk"
        | "min_ram" | "tags" | "owner" => true,
        // Icehouse (Rackspace) has no os_hidden; there it is an ordinary custom property.
        "os_hidden" => profile.kind == ProfileKind::Glance,
        _ => false,
    }
}

/// Checks a piece of text the API stores: length and no 4-byte UTF-8 (Glance refuses those).
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
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), DomainError> {
    if tag.is_empty() {
        return Err(DomainError::invalid("Tag can't be empty"));
    }
    validate_text("Tag", tag)
}

fn validate_format(kind: &str, allowed: &[&str], value: Option<&str>) -> Result<(), DomainError> {
    match value {
        Some(format) if !allowed.contains(&format) => Err(DomainError::invalid(format!(
            "Invalid value '{format}' for {kind}: must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

fn not_found(image_id: Uuid) -> DomainError {
    DomainError::ImageNotFound {
        image_id: image_id.to_string(),
    }
}

/// The image if the caller may see it in this region; 404 otherwise.
fn visible<'a>(
    profile: &Profile,
    state: &'a Option<Image>,
    image_id: Uuid,
    ctx: &Context,
) -> Result<&'a Image, DomainError> {
    match state {
        Some(image) if access::can_see(profile, image, &ctx.actor, &ctx.region) => Ok(image),
        _ => Err(not_found(image_id)),
    }
}

fn is_owner_or_admin(profile: &Profile, image: &Image, ctx: &Context) -> bool {
    profile.is_cloud_admin(&ctx.actor)
        || image.owner.as_deref() == Some(ctx.actor.tenant_id.as_str())
}

/// Decides a command against an image's state.
pub fn decide(
    profile: &Profile,
    state: &Option<Image>,
    image_id: Uuid,
    command: &ImageCommand,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    match command {
        ImageCommand::Register { origin, image } => {
            decide_register(profile, state, image_id, origin, image, ctx)
        }
        ImageCommand::StartSaving => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            require_status(image, &[ImageStatus::Queued], "start saving")?;
            require_formats(image)?;
            Ok(vec![Event::ImageSavingStarted {}])
        }
        ImageCommand::Activate(data) => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            require_status(
                image,
                &[ImageStatus::Queued, ImageStatus::Saving],
                "activate",
            )?;
            require_formats(image)?;
            validate_data(data)?;
            Ok(vec![Event::ImageActivated(data.clone())])
        }
        ImageCommand::Kill { reason } => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            require_status(image, &[ImageStatus::Saving], "kill")?;
            Ok(vec![Event::ImageKilled {
                reason: reason.clone(),
            }])
        }
        ImageCommand::Upload(data) => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            require_status(image, &[ImageStatus::Queued], "upload data to")?;
            require_formats(image)?;
            validate_data(data)?;
            Ok(vec![
                Event::ImageSavingStarted {},
                Event::ImageActivated(data.clone()),
            ])
        }
        ImageCommand::Deactivate => {
            let image = owned_for(profile, state, image_id, ctx, Operation::ChangeActivation)?;
            match image.status {
                ImageStatus::Deactivated => Ok(Vec::new()),
                ImageStatus::Active => Ok(vec![Event::ImageDeactivated {}]),
                other => Err(DomainError::forbidden(format!(
                    "Not allowed to deactivate image in status '{other}'"
                ))),
            }
        }
        ImageCommand::Reactivate => {
            let image = owned_for(profile, state, image_id, ctx, Operation::ChangeActivation)?;
            match image.status {
                ImageStatus::Active => Ok(Vec::new()),
                ImageStatus::Deactivated => Ok(vec![Event::ImageReactivated {}]),
                other => Err(DomainError::forbidden(format!(
                    "Not allowed to reactivate image in status '{other}'"
                ))),
            }
        }
        ImageCommand::Update(document) => decide_update(profile, state, image_id, document, ctx),
        ImageCommand::AddTag { tag } => {
            validate_tag(tag)?;
            let image = tag_target(profile, state, image_id, ctx)?;
            if image.tags.contains(tag) {
                return Ok(Vec::new());
            }
            if image.tags.len() >= profile.tag_quota {
                return Err(DomainError::OverLimit {
                    message: format!("Maximum number of tags ({}) exceeded", profile.tag_quota),
                });
            }
            Ok(vec![Event::ImageTagAdded { tag: tag.clone() }])
        }
        ImageCommand::RemoveTag { tag } => {
            let image = tag_target(profile, state, image_id, ctx)?;
            if !image.tags.contains(tag) {
                return Err(DomainError::TagNotFound { tag: tag.clone() });
            }
            Ok(vec![Event::ImageTagRemoved { tag: tag.clone() }])
        }
        ImageCommand::Delete => {
            let image = visible(profile, state, image_id, ctx)?;
            profile.authorize(&ctx.actor, Operation::DeleteImage)?;
            if !is_owner_or_admin(profile, image, ctx) {
                return Err(DomainError::forbidden(
                    "You are not permitted to delete this image.",
                ));
            }
            if image.protected {
                return Err(DomainError::forbidden(format!(
                    "Image {image_id} is protected and cannot be deleted."
                )));
            }
            Ok(vec![Event::ImageDeleted {}])
        }
        ImageCommand::AddMember { member_id } => {
            decide_add_member(profile, state, image_id, member_id, ctx)
        }
        ImageCommand::RemoveMember { member_id } => {
            let image = member_target(profile, state, image_id, member_id, ctx)?;
            profile.authorize(&ctx.actor, Operation::DeleteMember)?;
            if !is_owner_or_admin(profile, image, ctx) {
                return Err(DomainError::forbidden(
                    "You are not permitted to delete members of this image.",
                ));
            }
            Ok(vec![Event::MemberRemoved {
                member_id: member_id.clone(),
            }])
        }
        ImageCommand::SetMemberStatus { member_id, status } => {
            member_target(profile, state, image_id, member_id, ctx)?;
            profile.authorize(&ctx.actor, Operation::UpdateMember)?;
            let is_the_member = ctx.actor.tenant_id == *member_id;
            if !(is_the_member || profile.is_cloud_admin(&ctx.actor)) {
                return Err(DomainError::forbidden(
                    "You are not permitted to modify 'status' on this image.",
                ));
            }
            let Some(status) = MemberStatus::parse(status) else {
                return Err(DomainError::invalid(format!(
                    "Status must be one of pending, accepted, rejected; got '{status}'"
                )));
            };
            Ok(vec![Event::MemberStatusChanged {
                member_id: member_id.clone(),
                status,
            }])
        }
    }
}

/// Visible, role allowed, and owned (or the caller is a cloud admin / the provider).
fn owned_for<'a>(
    profile: &Profile,
    state: &'a Option<Image>,
    image_id: Uuid,
    ctx: &Context,
    operation: Operation,
) -> Result<&'a Image, DomainError> {
    let image = visible(profile, state, image_id, ctx)?;
    profile.authorize(&ctx.actor, operation)?;
    if !is_owner_or_admin(profile, image, ctx) {
        return Err(DomainError::forbidden(
            "You are not permitted to modify this image.",
        ));
    }
    Ok(image)
}

fn tag_target<'a>(
    profile: &Profile,
    state: &'a Option<Image>,
    image_id: Uuid,
    ctx: &Context,
) -> Result<&'a Image, DomainError> {
    let image = visible(profile, state, image_id, ctx)?;
    profile.authorize(&ctx.actor, Operation::ChangeTag)?;
    if !is_owner_or_admin(profile, image, ctx) {
        return Err(DomainError::forbidden(
            "You are not permitted to modify tags on this image.",
        ));
    }
    Ok(image)
}

/// The image, checked for member operations, when the caller may address `member_id`'s row:
/// the owner (and admins) see every row, a member only its own; anyone else gets 404.
fn member_target<'a>(
    profile: &Profile,
    state: &'a Option<Image>,
    image_id: Uuid,
    member_id: &str,
    ctx: &Context,
) -> Result<&'a Image, DomainError> {
    if member_id.is_empty() {
        return Err(DomainError::invalid("Member can't be empty"));
    }
    let image = visible(profile, state, image_id, ctx)?;
    profile.members_allowed(image.visibility)?;
    let may_address = is_owner_or_admin(profile, image, ctx) || ctx.actor.tenant_id == member_id;
    if !may_address || !image.members.contains_key(member_id) {
        return Err(DomainError::MemberNotFound {
            image_id: image_id.to_string(),
            member_id: member_id.to_owned(),
        });
    }
    Ok(image)
}

fn decide_add_member(
    profile: &Profile,
    state: &Option<Image>,
    image_id: Uuid,
    member_id: &str,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    if member_id.is_empty() {
        return Err(DomainError::invalid("Member can't be empty"));
    }
    validate_text("Member", member_id)?;
    let image = visible(profile, state, image_id, ctx)?;
    profile.members_allowed(image.visibility)?;
    profile.authorize(&ctx.actor, Operation::AddMember)?;
    if !is_owner_or_admin(profile, image, ctx) {
        return Err(DomainError::forbidden(
            "You are not permitted to create image members for the image.",
        ));
    }
    // Glance checks the quota before the duplicate: a duplicate on a full image is 413.
    if image.members.len() >= profile.member_quota {
        return Err(DomainError::OverLimit {
            message: format!(
                "Maximum number of image members ({}) exceeded",
                profile.member_quota
            ),
        });
    }
    if image.members.contains_key(member_id) {
        return Err(DomainError::MemberExists {
            image_id: image_id.to_string(),
            member_id: member_id.to_owned(),
        });
    }
    Ok(vec![Event::MemberAdded {
        member_id: member_id.to_owned(),
    }])
}

fn require_status(image: &Image, allowed: &[ImageStatus], action: &str) -> Result<(), DomainError> {
    if allowed.contains(&image.status) {
        Ok(())
    } else {
        Err(DomainError::InvalidTransition {
            message: format!("Cannot {action} an image in status '{}'", image.status),
        })
    }
}

fn require_formats(image: &Image) -> Result<(), DomainError> {
    if image.container_format.is_none() || image.disk_format.is_none() {
        return Err(DomainError::invalid(
            "Property(ies) container_format and disk_format must be set prior to saving data.",
        ));
    }
    Ok(())
}

fn validate_data(data: &ImageActivated) -> Result<(), DomainError> {
    let is_md5 = data.checksum.len() == 32 && data.checksum.chars().all(|c| c.is_ascii_hexdigit());
    if !is_md5 {
        return Err(DomainError::invalid(
            "checksum must be 32 hexadecimal characters (md5)",
        ));
    }
    Ok(())
}

fn decide_register(
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
            if profile.kind == ProfileKind::Rackspace && !actor.is_operator() {
                return Err(DomainError::forbidden(
                    "Images are created from servers or by import tasks on this cloud.",
                ));
            }
            profile.authorize(actor, Operation::CreateImage)?;
            (
                Some(actor.tenant_id.clone()),
                "",
                profile.default_visibility(),
            )
        }
    };
    if state.is_some() {
        return Err(DomainError::AlreadyExists {
            message: format!("Image ID {image_id} already exists!"),
        });
    }
    let visibility = new.visibility.unwrap_or(default_visibility);
    if new.visibility.is_some() && *origin == ImageOrigin::Api {
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

fn validate_property_key(key: &str) -> Result<(), DomainError> {
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

/// Applies a PATCH to a copy of the image, op by op; any failure aborts the whole request.
fn decide_update(
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
fn check_core_value(
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
            if !matches!(image.status, ImageStatus::Queued) && !profile.is_cloud_admin(&ctx.actor) {
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

/// Sets a core field from an already validated value.
fn set_core(image: &mut Image, key: &str, value: &Value) -> Result<(), ApplyError> {
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
        "os_hidden" => image.os_hidden = value.as_bool().ok_or_else(wrong)?,
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

fn set_property(image: &mut Image, key: &str, value: &Value) -> Result<(), ApplyError> {
    if matches!(
        key,
        "name"
            | "container_format"
            | "disk_format"
            | "owner"
            | "protected"
            | "os_hidden"
            | "min_disk"
            | "min_ram"
            | "visibility"
            | "tags"
    ) && !(key == "os_hidden" && value.is_string())
    {
        set_core(image, key, value)
    } else {
        let text = value
            .as_str()
            .ok_or_else(|| ApplyError::new(format!("custom property '{key}' is not a string")))?;
        image.properties.insert(key.to_owned(), text.to_owned());
        Ok(())
    }
}

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
        Event::ImageKilled { .. } => image.status = ImageStatus::Killed,
        Event::ImageDeactivated {} => image.status = ImageStatus::Deactivated,
        Event::ImageReactivated {} => image.status = ImageStatus::Active,
        Event::ImageUpdated { changes } => {
            for change in changes {
                match change {
                    PropertyChange::Set { key, value } => set_property(&mut image, key, value)?,
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
        Event::MemberStatusChanged { member_id, status } => {
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
