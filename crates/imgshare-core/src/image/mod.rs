//! The image aggregate: an image with its members and tags, as a state machine.
//!
//! `decide` checks a command against the state and returns events or a [`DomainError`](crate::DomainError);
//! `apply` folds one event into the state. Check order for every command on an existing
//! image: input shape (400) → existence and visibility (404) → role (403) → ownership and
//! per-rule checks (403/400/409) → quotas (413). Visibility comes before roles so that a
//! caller who cannot see an image always gets 404, never 403 (no existence leak).

use crate::event::ImageActivated;
use crate::patch::PatchDocument;

mod apply;
mod decide;
mod guard;
mod patch_apply;
mod register;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::state::{Image, ImageOrigin, Member, NewImage};
pub use apply::apply;
pub use decide::decide;
pub use validate::{validate_property_key, validate_text, IMPORT_METHODS};

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
    /// `PUT /stage`: `queued → uploading`, data staged for an interoperable import.
    Stage {
        /// Bytes staged.
        size: u64,
    },
    /// `POST /import`: `uploading → importing` (`glance-direct` is the one method served).
    StartImport {
        /// Body field `method.name`, as given.
        method: String,
    },
    /// The import finished: `importing → active` with the data facts.
    FinishImport(ImageActivated),
    /// The import failed: `importing → queued`, as Glance reverts it.
    FailImport {
        /// Why.
        reason: String,
    },
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
