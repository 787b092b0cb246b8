//! The image's state, folded from its stream, and what a new image is registered from. Separate
//! from the image's decisions so that `access` and `queries` can read images without depending
//! on them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::ImageActivated;
use crate::model::{ImageStatus, MemberStatus, Region, Visibility};

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
    /// `POST /v2/images` body `owner`: the caller's own tenant, or any tenant for a cloud admin
    /// (Glance); `None` is the caller's tenant.
    pub owner: Option<String>,
}

/// What tests and benchmarks register: a saved server snapshot.
#[cfg(feature = "fixtures")]
impl NewImage {
    /// A snapshot named `name`, `ovf`/`vhd`, with `size` bytes of data and a made-up md5, so it
    /// registers `active`.
    pub fn snapshot_fixture(name: impl Into<String>, size: u64) -> NewImage {
        NewImage {
            name: Some(name.into()),
            container_format: Some("ovf".to_owned()),
            disk_format: Some("vhd".to_owned()),
            data: Some(ImageActivated::fixture(size)),
            ..NewImage::default()
        }
    }
}

#[cfg(feature = "fixtures")]
impl ImageActivated {
    /// Data facts of `size` bytes with a made-up md5 and no sha512.
    pub fn fixture(size: u64) -> ImageActivated {
        ImageActivated {
            size,
            checksum: "0123456789abcdef0123456789abcdef".to_owned(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }
    }
}
