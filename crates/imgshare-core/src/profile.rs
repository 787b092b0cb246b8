//! Policy profiles: the rules that differ between Rackspace Cloud Images 2.0 and modern Glance.
//!
//! The domain asks the profile; no other module branches on the dialect.
//! The permission tables are `docs/spec/rackspace.md` §1.2 and `docs/spec/glance.md` §11.1.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::error::DomainError;
use crate::model::{Region, TaskType, Visibility};

/// Which dialect of the API the engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// Rackspace Cloud Images 2.0, as in the seeds (the default).
    Rackspace,
    /// Modern OpenStack Glance (tempest, current clients).
    Glance,
}

/// Which dialect's schema documents (`/v2/schemas/*`) to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaProfile {
    /// Rackspace Cloud Images 2.0: visibility `public|private`, task types `import|export`.
    Rackspace,
    /// Modern Glance: the upstream documents unchanged.
    Glance,
}

/// The profile-dependent parts of list-query validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryDialect {
    /// Accepted values of the `visibility` filter.
    pub visibility_filters: &'static [&'static str],
    /// Page size when `limit` is absent.
    pub limit_default: u32,
    /// Larger `limit` values are silently lowered to this.
    pub limit_max: u32,
}

impl QueryDialect {
    /// Rackspace Cloud Images 2.0: `shared` exists only as a filter; no `community`/`all`.
    pub const RACKSPACE: Self = Self {
        visibility_filters: &["public", "private", "shared"],
        limit_default: 25,
        limit_max: 1000,
    };
    /// Modern Glance (`images.py` `_get_filters`).
    pub const GLANCE: Self = Self {
        visibility_filters: &["public", "private", "shared", "community", "all"],
        limit_default: 25,
        limit_max: 1000,
    };
}

/// Which version of the Rackspace permission matrix governs tag changes (the matrix changed in 2016).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagPermissions {
    /// 2016-12 onwards: any Cloud Images role may add or delete tags (the default).
    Matrix2016,
    /// 2014-01 to 2016-11: admin only.
    Matrix2014,
}

/// An API operation, as the permission matrix names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET /v2/images`
    ListImages,
    /// `GET /v2/images/{id}`
    GetImage,
    /// `POST /v2/images` or a server snapshot.
    CreateImage,
    /// `PATCH /v2/images/{id}`
    UpdateImage,
    /// `DELETE /v2/images/{id}`
    DeleteImage,
    /// `PUT /v2/images/{id}/file`
    UploadImage,
    /// `POST /v2/images/{id}/actions/deactivate` and `reactivate`
    ChangeActivation,
    /// `POST /v2/images/{id}/members`
    AddMember,
    /// `GET /v2/images/{id}/members` and `.../members/{m}`
    ReadMembers,
    /// `PUT /v2/images/{id}/members/{m}`
    UpdateMember,
    /// `DELETE /v2/images/{id}/members/{m}`
    DeleteMember,
    /// `PUT` and `DELETE /v2/images/{id}/tags/{tag}`
    ChangeTag,
    /// `GET /v2/tasks` and `/v2/tasks/{id}`
    ReadTasks,
    /// `POST /v2/tasks`
    CreateTask,
}

/// Access level of a Rackspace caller: the most permissive of its global and product roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RackspaceLevel {
    None,
    Observer,
    Creator,
    Admin,
    /// Above every tenant role: only the provider reaches it.
    Provider,
}

fn rackspace_level(actor: &Actor) -> RackspaceLevel {
    actor
        .roles
        .iter()
        .map(|role| match role.to_ascii_lowercase().as_str() {
            "identity:user-admin" | "admin" | "cloudimages:admin" => RackspaceLevel::Admin,
            "cloudimages:creator" => RackspaceLevel::Creator,
            "observer" | "cloudimages:observer" => RackspaceLevel::Observer,
            _ => RackspaceLevel::None,
        })
        .max()
        .unwrap_or(RackspaceLevel::None)
}

/// Access level of a Glance caller (`reader` < `member` < `admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GlanceLevel {
    None,
    Reader,
    Member,
    Admin,
}

fn glance_level(actor: &Actor) -> GlanceLevel {
    actor
        .roles
        .iter()
        .map(|role| match role.to_ascii_lowercase().as_str() {
            "admin" => GlanceLevel::Admin,
            "member" | "_member_" => GlanceLevel::Member,
            "reader" => GlanceLevel::Reader,
            _ => GlanceLevel::None,
        })
        .max()
        .unwrap_or(GlanceLevel::None)
}

/// The rules an engine is opened with: dialect, quotas and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The dialect.
    pub kind: ProfileKind,
    /// Members per image (Glance `image_member_quota`); 413 beyond.
    pub member_quota: usize,
    /// Tags per image; 413 beyond.
    pub tag_quota: usize,
    /// Custom properties per image; 413 beyond.
    pub property_quota: usize,
    /// Largest VHD an import accepts, in bytes (40 GB by default, as the API's messages say).
    pub import_size_limit: u64,
    /// How long a finished task stays visible, in seconds (48 h).
    pub task_ttl_seconds: i64,
    /// Which Rackspace matrix governs tag changes.
    pub tag_permissions: TagPermissions,
    /// Property names nobody may write through the API (403), beyond the read-only core fields.
    pub protected_properties: BTreeSet<String>,
    /// Property name prefixes nobody may write through the API (403).
    pub protected_prefixes: Vec<String>,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Profile {
    /// Rackspace Cloud Images 2.0: the seeds' behaviour.
    pub fn rackspace() -> Self {
        Profile {
            kind: ProfileKind::Rackspace,
            member_quota: 128,
            tag_quota: 128,
            property_quota: 128,
            import_size_limit: 40 * GIB,
            task_ttl_seconds: 48 * 3600,
            tag_permissions: TagPermissions::Matrix2016,
            // Set by the provider or the compute service, never by the tenant (§5.4): the
            // tests' reserved keys, the snapshot's provenance, and the provider's namespaces.
            // `vm_mode`, `img_config_drive`, `xenapi_use_agent`, `auto_disk_config`, `os_distro`
            // and `os_version` stay writable: Rackspace asks users to set them after an import.
            protected_properties: [
                "image_type",
                "os_type",
                "owner",
                "user_id",
                "visibility",
                "instance_uuid",
                "base_image_ref",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            protected_prefixes: vec![
                "com.rackspace__".to_owned(),
                "org.openstack__".to_owned(),
                "instance_type_".to_owned(),
            ],
        }
    }

    /// Modern Glance defaults.
    pub fn glance() -> Self {
        Profile {
            kind: ProfileKind::Glance,
            protected_properties: BTreeSet::new(),
            protected_prefixes: Vec::new(),
            ..Profile::rackspace()
        }
    }

    /// The task lifetime after it finishes.
    pub fn task_ttl(&self) -> Duration {
        Duration::seconds(self.task_ttl_seconds)
    }

    /// True if the caller bypasses ownership and visibility (the provider, or a Glance admin).
    pub fn is_cloud_admin(&self, actor: &Actor) -> bool {
        actor.is_operator()
            || (self.kind == ProfileKind::Glance && glance_level(actor) == GlanceLevel::Admin)
    }

    /// The role check made before any ownership rule: may this caller attempt `operation` at all?
    pub fn authorize(&self, actor: &Actor, operation: Operation) -> Result<(), DomainError> {
        if actor.is_operator() {
            return Ok(());
        }
        let allowed = match self.kind {
            ProfileKind::Rackspace => {
                let needed = self.rackspace_requirement(operation);
                rackspace_level(actor) >= needed
            }
            ProfileKind::Glance => glance_level(actor) >= glance_requirement(operation),
        };
        if allowed {
            Ok(())
        } else {
            Err(DomainError::RoleForbidden {
                message: format!(
                    "You are not authorized to {}: {}",
                    operation_phrase(operation),
                    self.requirement_phrase(operation)
                ),
            })
        }
    }

    fn rackspace_requirement(&self, operation: Operation) -> RackspaceLevel {
        use Operation::*;
        match operation {
            ListImages | GetImage | ReadMembers | ReadTasks => RackspaceLevel::Observer,
            ChangeTag => match self.tag_permissions {
                TagPermissions::Matrix2016 => RackspaceLevel::Observer,
                TagPermissions::Matrix2014 => RackspaceLevel::Admin,
            },
            CreateImage | AddMember => RackspaceLevel::Creator,
            UpdateImage | DeleteImage | UpdateMember | DeleteMember | CreateTask => {
                RackspaceLevel::Admin
            }
            // Image data comes from Cloud Servers snapshots and imports, and deactivation is an
            // operator action: the Rackspace API offers neither to tenants.
            UploadImage | ChangeActivation => RackspaceLevel::Provider,
        }
    }

    fn requirement_phrase(&self, operation: Operation) -> String {
        match self.kind {
            ProfileKind::Rackspace => match self.rackspace_requirement(operation) {
                RackspaceLevel::Observer | RackspaceLevel::None => {
                    "requires a Cloud Images role (cloudImages:observer or above)".to_owned()
                }
                RackspaceLevel::Creator => "requires role cloudImages:creator or above".to_owned(),
                RackspaceLevel::Admin => "requires role cloudImages:admin or admin".to_owned(),
                RackspaceLevel::Provider => "this operation is reserved to the provider".to_owned(),
            },
            ProfileKind::Glance => match glance_requirement(operation) {
                GlanceLevel::Reader | GlanceLevel::None => "requires role reader".to_owned(),
                GlanceLevel::Member => "requires role member".to_owned(),
                GlanceLevel::Admin => "requires role admin".to_owned(),
            },
        }
    }

    /// The visibility values a response may show; a shared Rackspace image shows `private`.
    pub fn shown_visibility(&self, visibility: Visibility) -> Visibility {
        match (self.kind, visibility) {
            (ProfileKind::Rackspace, Visibility::Shared | Visibility::Community) => {
                Visibility::Private
            }
            (_, shown) => shown,
        }
    }

    /// The default visibility of an image a tenant creates.
    pub fn default_visibility(&self) -> Visibility {
        match self.kind {
            ProfileKind::Rackspace => Visibility::Private,
            ProfileKind::Glance => Visibility::Shared,
        }
    }

    /// True if an image of this visibility may carry members.
    pub fn members_allowed(&self, visibility: Visibility) -> Result<(), DomainError> {
        match (self.kind, visibility) {
            (ProfileKind::Rackspace, Visibility::Public) => {
                Err(DomainError::forbidden("Public images do not have members."))
            }
            (ProfileKind::Rackspace, _) | (ProfileKind::Glance, Visibility::Shared) => Ok(()),
            (ProfileKind::Glance, _) => {
                Err(DomainError::forbidden("Only shared images have members."))
            }
        }
    }

    /// The visibility to register an image with so that it may carry members: none needed on
    /// Rackspace (every image but a public one may), `shared` on Glance (only shared images
    /// have members).
    pub fn visibility_for_members(&self) -> Option<Visibility> {
        match self.kind {
            ProfileKind::Rackspace => None,
            ProfileKind::Glance => Some(Visibility::Shared),
        }
    }

    /// True if the provider's proxy folded `//` in a path (Rackspace): a blank image id then
    /// names a resource whose methods are `GET, PATCH, DELETE`, so a POST there is 405.
    pub fn folds_double_slashes(&self) -> bool {
        self.kind == ProfileKind::Rackspace
    }

    /// A tenant role that allows every image, member and task operation of this profile (what
    /// demo and walkthrough accounts get).
    pub fn full_access_role(&self) -> &'static str {
        match self.kind {
            ProfileKind::Rackspace => "cloudImages:admin",
            ProfileKind::Glance => "member",
        }
    }

    /// The visibilities at which a member row grants access: every one but `public` on
    /// Rackspace (a shared image shows as `private` there), only `shared` on Glance. The one
    /// source of the rule; the list queries build their SQL from it.
    pub fn membership_visibilities(&self) -> &'static [Visibility] {
        match self.kind {
            ProfileKind::Rackspace => &[
                Visibility::Private,
                Visibility::Shared,
                Visibility::Community,
            ],
            ProfileKind::Glance => &[Visibility::Shared],
        }
    }

    /// True if a member row grants access to an image of this visibility.
    pub fn membership_grants_access(&self, visibility: Visibility) -> bool {
        self.membership_visibilities().contains(&visibility)
    }

    /// How list query strings are validated in this dialect.
    pub fn query_dialect(&self) -> QueryDialect {
        match self.kind {
            ProfileKind::Rackspace => QueryDialect::RACKSPACE,
            ProfileKind::Glance => QueryDialect::GLANCE,
        }
    }

    /// Which schema documents this dialect serves.
    pub fn schema_profile(&self) -> SchemaProfile {
        match self.kind {
            ProfileKind::Rackspace => SchemaProfile::Rackspace,
            ProfileKind::Glance => SchemaProfile::Glance,
        }
    }

    /// True if API views show a key whose value is null (Glance); Rackspace omits it.
    pub fn shows_null_keys(&self) -> bool {
        self.kind == ProfileKind::Glance
    }

    /// True if images carry Glance's `os_hidden`, `os_hash_algo` and `os_hash_value` fields.
    pub fn has_os_fields(&self) -> bool {
        self.kind == ProfileKind::Glance
    }

    /// True if only the provider registers images through the API (Rackspace: tenants create
    /// images from servers or by import tasks).
    pub fn api_registration_is_provider_only(&self) -> bool {
        self.kind == ProfileKind::Rackspace
    }

    /// True if the `private` list filter means "not public" and `shared` means "shared with me"
    /// (Rackspace, as Icehouse); Glance filters on the stored visibility.
    pub fn private_filter_means_not_public(&self) -> bool {
        self.kind == ProfileKind::Rackspace
    }

    /// May `actor` set `visibility` through the API? Rackspace: only the provider, and only to
    /// `public` or `private`. Glance: `public` needs admin.
    pub fn may_set_visibility(
        &self,
        actor: &Actor,
        visibility: Visibility,
    ) -> Result<(), DomainError> {
        match self.kind {
            ProfileKind::Rackspace if !actor.is_operator() => Err(DomainError::forbidden(
                "You are not permitted to modify 'visibility' on this image.",
            )),
            // The Rackspace schema knows only these two (`shared` is a list filter). A stored
            // `community` would let every account read an image that shows as `private`.
            ProfileKind::Rackspace => match visibility {
                Visibility::Public | Visibility::Private => Ok(()),
                other => Err(DomainError::InvalidInput {
                    message: format!(
                        "Invalid visibility value: {other} (must be public or private)"
                    ),
                }),
            },
            ProfileKind::Glance => {
                if visibility == Visibility::Public && !self.is_cloud_admin(actor) {
                    Err(DomainError::forbidden(
                        "You are not authorized to complete publicize_image action.",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Task types this profile creates.
    pub fn task_types(&self) -> &'static [TaskType] {
        match self.kind {
            ProfileKind::Rackspace => &[TaskType::Import, TaskType::Export],
            ProfileKind::Glance => &[TaskType::Import],
        }
    }

    /// The `message` of a task that has not failed: `"None"` on Rackspace (seed 002), `""` on Glance.
    pub fn task_success_message(&self) -> &'static str {
        match self.kind {
            ProfileKind::Rackspace => "None",
            ProfileKind::Glance => "",
        }
    }

    /// The regions this profile serves, or `None` if any well-formed name will do (Glance
    /// deployments name their regions freely, e.g. `RegionOne`).
    pub fn known_regions(&self) -> Option<&'static [&'static str]> {
        match self.kind {
            ProfileKind::Rackspace => Some(&Region::KNOWN),
            ProfileKind::Glance => None,
        }
    }

    /// Refuses a region the profile does not serve, naming the ones it does (400).
    pub fn check_region(&self, region: &Region) -> Result<(), DomainError> {
        match self.known_regions() {
            Some(known) if !known.contains(&region.as_str()) => Err(DomainError::InvalidInput {
                message: format!(
                    "Unknown region '{region}': Rackspace Cloud Images serves {}",
                    known.join(", ")
                ),
            }),
            _ => Ok(()),
        }
    }

    /// True if `key` is protected from writes through the API (403).
    pub fn is_protected_property(&self, key: &str) -> bool {
        self.protected_properties.contains(key)
            || self
                .protected_prefixes
                .iter()
                .any(|prefix| key.starts_with(prefix.as_str()))
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::rackspace()
    }
}

fn glance_requirement(operation: Operation) -> GlanceLevel {
    use Operation::*;
    match operation {
        ListImages | GetImage | ReadMembers => GlanceLevel::Reader,
        CreateImage | UpdateImage | DeleteImage | UploadImage | ChangeActivation | AddMember
        | UpdateMember | DeleteMember | ChangeTag => GlanceLevel::Member,
        ReadTasks | CreateTask => GlanceLevel::Admin,
    }
}

fn operation_phrase(operation: Operation) -> &'static str {
    use Operation::*;
    match operation {
        ListImages => "list images",
        GetImage => "get images",
        CreateImage => "create images",
        UpdateImage => "update images",
        DeleteImage => "delete images",
        UploadImage => "upload image data",
        ChangeActivation => "deactivate or reactivate images",
        AddMember => "share images",
        ReadMembers => "read image members",
        UpdateMember => "accept or reject shared images",
        DeleteMember => "remove image members",
        ChangeTag => "change image tags",
        ReadTasks => "read tasks",
        CreateTask => "create tasks",
    }
}

#[cfg(test)]
mod tests;
