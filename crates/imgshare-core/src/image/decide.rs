//! `decide`: one command against an image's state, in the documented check order.

use uuid::Uuid;

use super::{guard::*, patch_apply::*, register::*, validate::*};
use super::{Image, ImageCommand};
use crate::actor::Context;
use crate::error::DomainError;
use crate::event::Event;
use crate::model::{ImageStatus, MemberStatus};
use crate::profile::{Operation, Profile};

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
        ImageCommand::Stage { size } => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            require_status(image, &[ImageStatus::Queued], "stage data for")?;
            Ok(vec![Event::ImageDataStaged { size: *size }])
        }
        ImageCommand::StartImport { method } => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            if !IMPORT_METHODS.contains(&method.as_str()) {
                return Err(DomainError::invalid(format!(
                    "Import method {method} is not supported: supported methods are {}",
                    IMPORT_METHODS.join(", ")
                )));
            }
            require_status(image, &[ImageStatus::Uploading], "import")?;
            require_formats(image)?;
            Ok(vec![Event::ImageImportStarted {
                method: method.clone(),
            }])
        }
        ImageCommand::FinishImport(data) => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            require_status(image, &[ImageStatus::Importing], "finish importing")?;
            validate_data(data)?;
            Ok(vec![Event::ImageActivated(data.clone())])
        }
        ImageCommand::FailImport { reason } => {
            let image = owned_for(profile, state, image_id, ctx, Operation::UploadImage)?;
            require_status(image, &[ImageStatus::Importing], "fail the import of")?;
            Ok(vec![Event::ImageImportFailed {
                reason: reason.clone(),
            }])
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
            let image = administered(
                profile,
                state,
                image_id,
                ctx,
                Operation::ChangeTag,
                "You are not permitted to modify tags on this image.",
            )?;
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
            let image = administered(
                profile,
                state,
                image_id,
                ctx,
                Operation::ChangeTag,
                "You are not permitted to modify tags on this image.",
            )?;
            if !image.tags.contains(tag) {
                return Err(DomainError::TagNotFound { tag: tag.clone() });
            }
            Ok(vec![Event::ImageTagRemoved { tag: tag.clone() }])
        }
        ImageCommand::Delete => {
            let image = administered(
                profile,
                state,
                image_id,
                ctx,
                Operation::DeleteImage,
                "You are not permitted to delete this image.",
            )?;
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
            require_admin(
                profile,
                image,
                ctx,
                Operation::DeleteMember,
                "You are not permitted to delete members of this image.",
            )?;
            Ok(vec![Event::MemberRemoved {
                member_id: member_id.clone(),
            }])
        }
        ImageCommand::SetMemberStatus { member_id, status } => {
            let image = member_target(profile, state, image_id, member_id, ctx)?;
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
                previous_status: image.members.get(member_id).map(|member| member.status),
            }])
        }
    }
}

pub(super) fn decide_add_member(
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
    require_admin(
        profile,
        image,
        ctx,
        Operation::AddMember,
        "You are not permitted to create image members for the image.",
    )?;
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
