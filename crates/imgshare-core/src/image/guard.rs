//! Who may address an image at all: visible (else 404), then the role (403), then ownership
//! (403), in that order, so a caller who cannot see an image never learns it exists.

use uuid::Uuid;

use super::Image;
use crate::access;
use crate::actor::Context;
use crate::error::DomainError;
use crate::profile::{Operation, Profile};

pub(super) fn not_found(image_id: Uuid) -> DomainError {
    DomainError::ImageNotFound {
        image_id: image_id.to_string(),
    }
}

/// The image if the caller may see it in this region; 404 otherwise.
pub(super) fn visible<'a>(
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

/// The role check, then ownership, on an image the caller can see: may the caller attempt
/// `operation` at all (403 naming the role), and does it administer the image (403 `refusal`)?
pub(super) fn require_admin(
    profile: &Profile,
    image: &Image,
    ctx: &Context,
    operation: Operation,
    refusal: &str,
) -> Result<(), DomainError> {
    profile.authorize(&ctx.actor, operation)?;
    if !access::administers(profile, image, &ctx.actor) {
        return Err(DomainError::forbidden(refusal));
    }
    Ok(())
}

/// Visible, role allowed, and administered (owned, or the caller is a cloud admin / the
/// provider); `refusal` is the 403's message.
pub(super) fn administered<'a>(
    profile: &Profile,
    state: &'a Option<Image>,
    image_id: Uuid,
    ctx: &Context,
    operation: Operation,
    refusal: &str,
) -> Result<&'a Image, DomainError> {
    let image = visible(profile, state, image_id, ctx)?;
    require_admin(profile, image, ctx, operation, refusal)?;
    Ok(image)
}

/// [`administered`] for changes to the image itself.
pub(super) fn owned_for<'a>(
    profile: &Profile,
    state: &'a Option<Image>,
    image_id: Uuid,
    ctx: &Context,
    operation: Operation,
) -> Result<&'a Image, DomainError> {
    administered(
        profile,
        state,
        image_id,
        ctx,
        operation,
        "You are not permitted to modify this image.",
    )
}

/// The image, checked for member operations, when the caller may address `member_id`'s row:
/// the owner (and admins) see every row, a member only its own; anyone else gets 404.
pub(super) fn member_target<'a>(
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
    let may_address =
        access::administers(profile, image, &ctx.actor) || ctx.actor.tenant_id == member_id;
    if !may_address || !image.members.contains_key(member_id) {
        return Err(DomainError::MemberNotFound {
            image_id: image_id.to_string(),
            member_id: member_id.to_owned(),
        });
    }
    Ok(image)
}
