//! The profiles' rules, one table or rule per test.

use super::*;
use Operation::*;

fn rackspace_allows(roles: &[&str], operation: Operation) -> bool {
    Profile::rackspace()
        .authorize(&Actor::tenant("1", "u", roles), operation)
        .is_ok()
}

/// Each row of the permission matrix (`docs/spec/rackspace.md` §1.2): observer, creator, admin.
#[test]
fn rackspace_matrix_rows() {
    let rows: &[(Operation, [bool; 3])] = &[
        (ListImages, [true, true, true]),
        (GetImage, [true, true, true]),
        (UpdateImage, [false, false, true]),
        (DeleteImage, [false, false, true]),
        (AddMember, [false, true, true]),
        (ReadMembers, [true, true, true]),
        (UpdateMember, [false, false, true]),
        (DeleteMember, [false, false, true]),
        (ChangeTag, [true, true, true]),
        (ReadTasks, [true, true, true]),
        (CreateTask, [false, false, true]),
        (UploadImage, [false, false, false]),
        (ChangeActivation, [false, false, false]),
    ];
    for (operation, expected) in rows {
        let got = [
            rackspace_allows(&["cloudImages:observer"], *operation),
            rackspace_allows(&["cloudImages:creator"], *operation),
            rackspace_allows(&["cloudImages:admin"], *operation),
        ];
        assert_eq!(&got, expected, "{operation:?}");
    }
}

#[test]
fn global_roles_and_user_admin_follow_their_columns() {
    for operation in [
        UpdateImage,
        DeleteImage,
        UpdateMember,
        DeleteMember,
        CreateTask,
    ] {
        assert!(rackspace_allows(&["admin"], operation));
        assert!(rackspace_allows(&["identity:user-admin"], operation));
        assert!(!rackspace_allows(&["observer"], operation));
    }
    assert!(rackspace_allows(&["observer"], GetImage));
    assert!(!rackspace_allows(&["observer"], AddMember));
}

#[test]
fn the_most_permissive_role_wins() {
    assert!(rackspace_allows(
        &["observer", "cloudImages:admin"],
        DeleteImage
    ));
    assert!(rackspace_allows(
        &["admin", "cloudImages:observer"],
        DeleteImage
    ));
    assert!(rackspace_allows(
        &["cloudImages:observer", "cloudImages:creator"],
        AddMember
    ));
}

#[test]
fn role_names_compare_case_insensitively() {
    assert!(rackspace_allows(&["cloudimages:admin"], DeleteImage));
    assert!(rackspace_allows(&["CLOUDIMAGES:CREATOR"], AddMember));
}

#[test]
fn there_is_no_global_creator_and_unknown_roles_grant_nothing() {
    assert!(!rackspace_allows(&["creator"], AddMember));
    assert!(!rackspace_allows(&["compute:admin"], ListImages));
    assert!(!rackspace_allows(&[], ListImages));
}

#[test]
fn the_2014_matrix_makes_tags_admin_only() {
    let profile = Profile {
        tag_permissions: TagPermissions::Matrix2014,
        ..Profile::rackspace()
    };
    let observer = Actor::tenant("1", "u", &["cloudImages:observer"]);
    let admin = Actor::tenant("1", "u", &["cloudImages:admin"]);
    assert!(profile.authorize(&observer, ChangeTag).is_err());
    assert!(profile.authorize(&admin, ChangeTag).is_ok());
}

#[test]
fn role_denials_are_403_with_the_role_named() {
    let err = Profile::rackspace()
        .authorize(
            &Actor::tenant("1", "u", &["cloudImages:creator"]),
            DeleteMember,
        )
        .unwrap_err();
    assert_eq!(crate::error::status_seen_by_clients(err.kind()), 403);
    assert!(err.to_string().contains("cloudImages:admin"), "{err}");
}

#[test]
fn the_operator_passes_every_role_check() {
    assert!(Profile::rackspace()
        .authorize(&Actor::operator("worker"), UploadImage)
        .is_ok());
}

#[test]
fn glance_roles() {
    let profile = Profile::glance();
    let reader = Actor::tenant("1", "u", &["reader"]);
    let member = Actor::tenant("1", "u", &["reader", "member"]);
    let admin = Actor::tenant("1", "u", &["admin"]);
    assert!(profile.authorize(&reader, GetImage).is_ok());
    assert!(profile.authorize(&reader, UpdateImage).is_err());
    assert!(profile.authorize(&member, UpdateImage).is_ok());
    assert!(profile.authorize(&member, CreateTask).is_err());
    assert!(profile.authorize(&admin, CreateTask).is_ok());
    assert!(profile.is_cloud_admin(&admin));
    assert!(!Profile::rackspace().is_cloud_admin(&Actor::tenant("1", "u", &["admin"])));
}

#[test]
fn the_provider_sets_only_public_or_private_on_rackspace() {
    let rackspace = Profile::rackspace();
    let provider = Actor::operator("ops");
    for visibility in [Visibility::Public, Visibility::Private] {
        assert!(rackspace.may_set_visibility(&provider, visibility).is_ok());
    }
    for visibility in [Visibility::Shared, Visibility::Community] {
        let refused = rackspace
            .may_set_visibility(&provider, visibility)
            .unwrap_err();
        assert_eq!(
            crate::error::status_seen_by_clients(refused.kind()),
            400,
            "{visibility}"
        );
    }
    let glance = Profile::glance();
    assert!(glance
        .may_set_visibility(&provider, Visibility::Community)
        .is_ok());
}

#[test]
fn visibility_rules_differ_by_profile() {
    let rackspace = Profile::rackspace();
    let glance = Profile::glance();
    assert_eq!(
        rackspace.shown_visibility(Visibility::Shared),
        Visibility::Private
    );
    assert_eq!(
        glance.shown_visibility(Visibility::Shared),
        Visibility::Shared
    );
    assert!(rackspace.members_allowed(Visibility::Private).is_ok());
    assert!(rackspace.members_allowed(Visibility::Public).is_err());
    assert!(glance.members_allowed(Visibility::Private).is_err());
    assert!(glance.members_allowed(Visibility::Shared).is_ok());
    assert!(rackspace.is_protected_property("com.rackspace__1__options"));
    assert!(rackspace.is_protected_property("image_type"));
    assert!(!rackspace.is_protected_property("os_distro"));
    for key in [
        "instance_uuid",
        "base_image_ref",
        "instance_type_flavorid",
        "org.openstack__1__os_distro",
    ] {
        assert!(rackspace.is_protected_property(key), "{key}");
        assert!(!glance.is_protected_property(key), "{key}");
    }
    for key in [
        "vm_mode",
        "img_config_drive",
        "xenapi_use_agent",
        "auto_disk_config",
    ] {
        assert!(!rackspace.is_protected_property(key), "{key}");
    }
}

#[test]
fn rackspace_serves_its_six_regions_and_glance_any() {
    let rackspace = Profile::rackspace();
    for name in ["DFW", "ord", "IAD", "LON", "SYD", "hkg"] {
        assert!(rackspace
            .check_region(&Region::parse(name).unwrap())
            .is_ok());
    }
    let error = rackspace
        .check_region(&Region::parse("RegionOne").unwrap())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Unknown region 'REGIONONE': Rackspace Cloud Images serves DFW, ORD, IAD, LON, SYD, HKG"
    );
    assert_eq!(crate::error::status_seen_by_clients(error.kind()), 400);
    assert!(Profile::glance()
        .check_region(&Region::parse("RegionOne").unwrap())
        .is_ok());
}
