//! Read rules for member rows: who may list or fetch which rows of an image it can see.

use crate::access::administers;
use crate::actor::Actor;
use crate::error::DomainError;
use crate::profile::{Operation, Profile};
use crate::state::{Image, Member};

/// `GET /v2/images/{id}/members` for a caller who can see the image: the owner gets every row,
/// a member only its own (`docs/spec/rackspace.md` §4.2).
pub fn readable_members<'a>(
    profile: &Profile,
    image: &'a Image,
    actor: &Actor,
) -> Result<Vec<&'a Member>, DomainError> {
    profile.members_allowed(image.visibility)?;
    profile.authorize(actor, Operation::ReadMembers)?;
    if administers(profile, image, actor) {
        return Ok(image.members.values().collect());
    }
    Ok(image.members.get(&actor.tenant_id).into_iter().collect())
}

/// `GET /v2/images/{id}/members/{member_id}`: every refusal is a 404, as in Glance, so that a
/// member cannot learn who else an image is shared with.
pub fn readable_member<'a>(
    profile: &Profile,
    image: &'a Image,
    actor: &Actor,
    member_id: &str,
) -> Result<&'a Member, DomainError> {
    let not_found = || DomainError::MemberNotFound {
        image_id: image.id.to_string(),
        member_id: member_id.to_owned(),
    };
    let rows = readable_members(profile, image, actor).map_err(|error| match error {
        DomainError::RoleForbidden { .. } => error,
        _ => not_found(),
    })?;
    rows.into_iter()
        .find(|member| member.member_id == member_id)
        .ok_or_else(not_found)
}
