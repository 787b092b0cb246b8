//! Who can see and who can boot an image. One place, used by decisions, the engine and tests.

use crate::actor::Actor;
use crate::error::DomainError;
use crate::model::{ImageStatus, MemberStatus, Region, Visibility};
use crate::profile::Profile;
use crate::state::Image;

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

/// True if the caller may manage the image: its owner, or a cloud admin / the provider.
pub fn administers(profile: &Profile, image: &Image, actor: &Actor) -> bool {
    profile.is_cloud_admin(actor) || image.owner.as_deref() == Some(actor.tenant_id.as_str())
}

/// May a caller who can see `image` download its data? Not while it is deactivated, unless the
/// caller is a cloud admin or the provider (`docs/spec/glance.md` §2.2).
pub fn may_download(profile: &Profile, image: &Image, actor: &Actor) -> Result<(), DomainError> {
    if image.status == ImageStatus::Deactivated && !profile.is_cloud_admin(actor) {
        return Err(DomainError::forbidden(
            "The requested image has been deactivated. Image data download is forbidden.",
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Member;
    use chrono::{DateTime, TimeZone, Utc};
    use std::collections::{BTreeMap, BTreeSet};
    use uuid::Uuid;

    const OWNER: &str = "111111";
    const MEMBER: &str = "222222";
    const STRANGER: &str = "333333";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2014, 2, 26, 12, 0, 0).unwrap()
    }

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    /// An image in DFW with the given owner, visibility, status and (optional) member.
    fn image(
        owner: Option<&str>,
        visibility: Visibility,
        status: ImageStatus,
        member: Option<MemberStatus>,
    ) -> Image {
        let members: BTreeMap<String, Member> = member
            .map(|status| {
                (
                    MEMBER.to_owned(),
                    Member {
                        member_id: MEMBER.to_owned(),
                        status,
                        created_at: t0(),
                        updated_at: t0(),
                    },
                )
            })
            .into_iter()
            .collect();
        Image {
            id: Uuid::from_u128(1),
            region: region("DFW"),
            owner: owner.map(str::to_owned),
            name: None,
            status,
            visibility,
            protected: false,
            os_hidden: false,
            checksum: None,
            size: None,
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
            container_format: Some("ovf".to_owned()),
            disk_format: Some("vhd".to_owned()),
            min_disk: 0,
            min_ram: 0,
            tags: BTreeSet::new(),
            properties: BTreeMap::new(),
            members,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn private(status: ImageStatus, member: Option<MemberStatus>) -> Image {
        image(Some(OWNER), Visibility::Private, status, member)
    }

    fn base(status: ImageStatus) -> Image {
        image(None, Visibility::Public, status, None)
    }

    /// Asserts (can_see, can_boot) for `tenant` asking in `region_name`, Rackspace profile.
    fn check(image: &Image, tenant: &str, region_name: &str, see: bool, boot: bool) {
        let profile = Profile::rackspace();
        let actor = Actor::tenant(tenant, "u", &["cloudImages:admin"]);
        let region = region(region_name);
        assert_eq!(
            (
                can_see(&profile, image, &actor, &region),
                can_boot(&profile, image, tenant, &region)
            ),
            (see, boot),
            "(can_see, can_boot) for {tenant} in {region_name}"
        );
    }

    macro_rules! access_rows {
        ($($name:ident: $image:expr, $tenant:expr, $region:literal => see $see:literal, boot $boot:literal;)+) => {
            $(
                #[test]
                fn $name() {
                    check(&$image, $tenant, $region, $see, $boot);
                }
            )+
        };
    }

    use ImageStatus::{Active, Deactivated, Deleted, Killed, Queued, Saving};
    use MemberStatus::{Accepted, Pending, Rejected};

    access_rows! {
        owner_sees_and_boots_its_active_image: private(Active, None), OWNER, "DFW" => see true, boot true;
        owner_sees_but_cannot_boot_a_queued_image: private(Queued, None), OWNER, "DFW" => see true, boot false;
        owner_sees_but_cannot_boot_a_saving_image: private(Saving, None), OWNER, "DFW" => see true, boot false;
        owner_sees_but_cannot_boot_a_killed_image: private(Killed, None), OWNER, "DFW" => see true, boot false;
        owner_sees_but_cannot_boot_a_deactivated_image: private(Deactivated, None), OWNER, "DFW" => see true, boot false;
        owner_neither_sees_nor_boots_a_deleted_image: private(Deleted, None), OWNER, "DFW" => see false, boot false;
        owner_neither_sees_nor_boots_its_image_from_another_region: private(Active, None), OWNER, "ORD" => see false, boot false;
        stranger_sees_and_boots_a_base_image: base(Active), STRANGER, "DFW" => see true, boot true;
        stranger_neither_sees_nor_boots_a_base_image_from_another_region: base(Active), STRANGER, "ORD" => see false, boot false;
        stranger_sees_but_cannot_boot_a_deactivated_base_image: base(Deactivated), STRANGER, "DFW" => see true, boot false;
        stranger_neither_sees_nor_boots_a_deleted_base_image: base(Deleted), STRANGER, "DFW" => see false, boot false;
        stranger_sees_and_boots_an_owned_public_image: image(Some(OWNER), Visibility::Public, Active, None), STRANGER, "DFW" => see true, boot true;
        pending_member_sees_and_boots: private(Active, Some(Pending)), MEMBER, "DFW" => see true, boot true;
        accepted_member_sees_and_boots: private(Active, Some(Accepted)), MEMBER, "DFW" => see true, boot true;
        rejected_member_sees_and_boots: private(Active, Some(Rejected)), MEMBER, "DFW" => see true, boot true;
        accepted_member_neither_sees_nor_boots_from_another_region: private(Active, Some(Accepted)), MEMBER, "ORD" => see false, boot false;
        accepted_member_sees_but_cannot_boot_a_deactivated_image: private(Deactivated, Some(Accepted)), MEMBER, "DFW" => see true, boot false;
        accepted_member_neither_sees_nor_boots_a_deleted_image: private(Deleted, Some(Accepted)), MEMBER, "DFW" => see false, boot false;
        removed_member_neither_sees_nor_boots: private(Active, None), MEMBER, "DFW" => see false, boot false;
        stranger_neither_sees_nor_boots_a_shared_image: private(Active, Some(Accepted)), STRANGER, "DFW" => see false, boot false;
        stranger_neither_sees_nor_boots_a_private_image: private(Active, None), STRANGER, "DFW" => see false, boot false;
    }

    #[test]
    fn the_operator_sees_every_image_of_its_region_only() {
        let profile = Profile::rackspace();
        let operator = Actor::operator("nova");
        let image = private(Active, Some(Pending));
        assert!(can_see(&profile, &image, &operator, &region("DFW")));
        assert!(!can_see(&profile, &image, &operator, &region("ORD")));
        assert!(!can_see(
            &profile,
            &private(Deleted, None),
            &operator,
            &region("DFW")
        ));
    }

    #[test]
    fn relation_names_why_an_account_has_access() {
        let profile = Profile::rackspace();
        let shared = private(Active, Some(Rejected));
        assert_eq!(relation(&profile, &shared, OWNER), Some(Relation::Owner));
        assert_eq!(
            relation(&profile, &shared, MEMBER),
            Some(Relation::Member(Rejected))
        );
        assert_eq!(relation(&profile, &shared, STRANGER), None);
        assert_eq!(
            relation(&profile, &base(Active), STRANGER),
            Some(Relation::Public)
        );
    }

    #[test]
    fn glance_members_get_access_only_to_shared_images() {
        let profile = Profile::glance();
        let member = Actor::tenant(MEMBER, "u", &["member"]);
        let dfw = region("DFW");
        let private_with_row = private(Active, Some(Accepted));
        assert!(!can_see(&profile, &private_with_row, &member, &dfw));
        assert!(!can_boot(&profile, &private_with_row, MEMBER, &dfw));
        let shared = image(Some(OWNER), Visibility::Shared, Active, Some(Pending));
        assert!(can_see(&profile, &shared, &member, &dfw));
        assert!(can_boot(&profile, &shared, MEMBER, &dfw));
        let community = image(Some(OWNER), Visibility::Community, Active, None);
        assert!(can_see(
            &profile,
            &community,
            &Actor::tenant(STRANGER, "u", &["reader"]),
            &dfw
        ));
    }

    #[test]
    fn only_the_owner_or_a_cloud_admin_administers_an_image() {
        let profile = Profile::rackspace();
        let shared = private(ImageStatus::Active, Some(MemberStatus::Accepted));
        assert!(administers(
            &profile,
            &shared,
            &Actor::tenant(OWNER, "u", &[])
        ));
        assert!(!administers(
            &profile,
            &shared,
            &Actor::tenant(MEMBER, "u", &["admin"])
        ));
        assert!(administers(&profile, &shared, &Actor::operator("ops")));
        assert!(!administers(
            &profile,
            &base(ImageStatus::Active),
            &Actor::tenant(OWNER, "u", &[])
        ));
    }

    #[test]
    fn a_deactivated_image_cannot_be_downloaded_except_by_a_cloud_admin() {
        let glance = Profile::glance();
        let owner = Actor::tenant(OWNER, "u", &["member"]);
        assert!(may_download(&glance, &private(ImageStatus::Active, None), &owner).is_ok());
        let refused =
            may_download(&glance, &private(ImageStatus::Deactivated, None), &owner).unwrap_err();
        assert_eq!(crate::error::status_seen_by_clients(refused.kind()), 403);
        assert!(refused.to_string().contains("deactivated"));
        let admin = Actor::tenant("999", "u", &["admin"]);
        assert!(may_download(&glance, &private(ImageStatus::Deactivated, None), &admin).is_ok());
    }

    #[test]
    fn region_names_compare_case_insensitively() {
        check(&private(Active, Some(Accepted)), MEMBER, "dfw", true, true);
    }
}
