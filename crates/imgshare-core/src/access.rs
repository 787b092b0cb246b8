//! Who can see and who can boot an image. One place, used by decisions, the engine and tests.

use crate::actor::Actor;
use crate::image::Image;
use crate::model::{ImageStatus, MemberStatus, Region, Visibility};
use crate::profile::Profile;

/// Why an account can use an image; `None` from [`relation`] means it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The account owns the image.
    Owner,
    /// The image is public (or unowned).
    Public,
    /// The image is a community image (Glance).
    Community,
    /// The account is a member, with this status.
    Member(MemberStatus),
}

/// How `tenant_id` relates to `image`, ignoring region and status.
pub fn relation(profile: &Profile, image: &Image, tenant_id: &str) -> Option<Relation> {
    match &image.owner {
        Some(owner) if owner == tenant_id => return Some(Relation::Owner),
        None => return Some(Relation::Public),
        Some(_) => {}
    }
    match image.visibility {
        Visibility::Public => return Some(Relation::Public),
        Visibility::Community => return Some(Relation::Community),
        Visibility::Private | Visibility::Shared => {}
    }
    if profile.membership_grants_access(image.visibility) {
        if let Some(member) = image.members.get(tenant_id) {
            return Some(Relation::Member(member.status));
        }
    }
    None
}

/// True if the image exists for the caller in `region`: not deleted, in that region, and
/// owned, public, community, or shared with the caller in any member status.
pub fn can_see(profile: &Profile, image: &Image, actor: &Actor, region: &Region) -> bool {
    if image.status == ImageStatus::Deleted || image.region != *region {
        return false;
    }
    profile.is_cloud_admin(actor) || relation(profile, image, &actor.tenant_id).is_some()
}

/// True if `tenant_id` may boot a new server from `image` in `region`.
///
/// Members may boot in any status (pending, accepted or rejected): the status only decides
/// whether the image is listed. Only active images boot; a deactivated one does not.
pub fn can_boot(profile: &Profile, image: &Image, tenant_id: &str, region: &Region) -> bool {
    image.status == ImageStatus::Active
        && image.region == *region
        && relation(profile, image, tenant_id).is_some()
}
