//! The one error type of the domain. Each variant has an [`ErrorKind`] and a stable code; which
//! HTTP status a kind answers with is the server's business, not the domain's.

use thiserror::Error;

/// What sort of failure an error is, independent of any protocol. Every error of core,
/// projection and store names one; adapters (the HTTP server, the CLI) map kinds to what their
/// callers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed or out-of-range input.
    Invalid,
    /// The caller may not do this (role or ownership).
    Forbidden,
    /// The thing does not exist for the caller.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// A quota or size limit would be exceeded.
    OverLimit,
    /// The request body's media type is not accepted.
    UnsupportedMediaType,
    /// The storage cannot serve now (busy, read-only); retry later or fix the file's permissions.
    Unavailable,
    /// The storage is full; nothing was written.
    StorageFull,
    /// Anything else: a fault that needs an operator, not a retry.
    Internal,
}

/// Why a command was refused. Messages follow the Cloud Images / Glance wording where one is known.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Malformed or out-of-range input.
    #[error("{message}")]
    InvalidInput {
        /// Human-readable reason.
        message: String,
    },
    /// The caller's roles do not allow the operation at all (403).
    #[error("{message}")]
    RoleForbidden {
        /// Human-readable reason, naming the role needed.
        message: String,
    },
    /// The caller can see the resource but may not do this to it (403).
    #[error("{message}")]
    Forbidden {
        /// Human-readable reason.
        message: String,
    },
    /// The image does not exist, is deleted, lives in another region, or the caller cannot see it (404).
    #[error("No image found with ID {image_id}")]
    ImageNotFound {
        /// The id asked for.
        image_id: String,
    },
    /// No such member row visible to the caller (404).
    #[error("{member_id} is not a member of image {image_id}")]
    MemberNotFound {
        /// The image.
        image_id: String,
        /// The member asked for.
        member_id: String,
    },
    /// The image has no such tag (404).
    #[error("Tag {tag} not found")]
    TagNotFound {
        /// The tag asked for.
        tag: String,
    },
    /// The task does not exist, belongs to someone else, lives in another region, or expired (404).
    #[error("No task found with ID {task_id}")]
    TaskNotFound {
        /// The id asked for.
        task_id: String,
    },
    /// The member is already on the image (409).
    #[error("Member {member_id} already exists for image {image_id}")]
    MemberExists {
        /// The image.
        image_id: String,
        /// The duplicate member.
        member_id: String,
    },
    /// A JSON-patch operation conflicts with the image's properties (409).
    #[error("{message}")]
    PropertyConflict {
        /// Human-readable reason.
        message: String,
    },
    /// The aggregate's status does not allow this transition (409).
    #[error("{message}")]
    InvalidTransition {
        /// Human-readable reason.
        message: String,
    },
    /// Creating something whose id is already taken (409).
    #[error("{message}")]
    AlreadyExists {
        /// Human-readable reason.
        message: String,
    },
    /// A quota (members, tags, properties) would be exceeded (413).
    #[error("{message}")]
    OverLimit {
        /// Human-readable reason.
        message: String,
    },
    /// The request body's media type is not one the operation accepts (415).
    #[error("{message}")]
    UnsupportedMediaType {
        /// Human-readable reason.
        message: String,
    },
}

impl DomainError {
    /// What sort of refusal this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::InvalidInput { .. } => ErrorKind::Invalid,
            DomainError::RoleForbidden { .. } | DomainError::Forbidden { .. } => {
                ErrorKind::Forbidden
            }
            DomainError::ImageNotFound { .. }
            | DomainError::MemberNotFound { .. }
            | DomainError::TagNotFound { .. }
            | DomainError::TaskNotFound { .. } => ErrorKind::NotFound,
            DomainError::MemberExists { .. }
            | DomainError::PropertyConflict { .. }
            | DomainError::InvalidTransition { .. }
            | DomainError::AlreadyExists { .. } => ErrorKind::Conflict,
            DomainError::OverLimit { .. } => ErrorKind::OverLimit,
            DomainError::UnsupportedMediaType { .. } => ErrorKind::UnsupportedMediaType,
        }
    }

    /// A stable machine-readable code; never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidInput { .. } => "invalid_input",
            DomainError::RoleForbidden { .. } => "role_forbidden",
            DomainError::Forbidden { .. } => "forbidden",
            DomainError::ImageNotFound { .. } => "image_not_found",
            DomainError::MemberNotFound { .. } => "member_not_found",
            DomainError::TagNotFound { .. } => "tag_not_found",
            DomainError::TaskNotFound { .. } => "task_not_found",
            DomainError::MemberExists { .. } => "member_exists",
            DomainError::PropertyConflict { .. } => "property_conflict",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::AlreadyExists { .. } => "already_exists",
            DomainError::OverLimit { .. } => "over_limit",
            DomainError::UnsupportedMediaType { .. } => "unsupported_media_type",
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        DomainError::InvalidInput {
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        DomainError::Forbidden {
            message: message.into(),
        }
    }
}

/// The statuses the API answers each kind with, so the domain's test tables can keep naming the
/// status a client sees; the mapping that serves requests is the server's.
#[cfg(test)]
pub(crate) fn status_seen_by_clients(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Invalid => 400,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::OverLimit => 413,
        ErrorKind::UnsupportedMediaType => 415,
        ErrorKind::Internal => 500,
        ErrorKind::Unavailable => 503,
        ErrorKind::StorageFull => 507,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_distinct_code() {
        let samples = [
            DomainError::invalid("x"),
            DomainError::RoleForbidden {
                message: "x".into(),
            },
            DomainError::forbidden("x"),
            DomainError::ImageNotFound {
                image_id: "i".into(),
            },
            DomainError::MemberNotFound {
                image_id: "i".into(),
                member_id: "m".into(),
            },
            DomainError::TagNotFound { tag: "t".into() },
            DomainError::TaskNotFound {
                task_id: "t".into(),
            },
            DomainError::MemberExists {
                image_id: "i".into(),
                member_id: "m".into(),
            },
            DomainError::PropertyConflict {
                message: "x".into(),
            },
            DomainError::InvalidTransition {
                message: "x".into(),
            },
            DomainError::AlreadyExists {
                message: "x".into(),
            },
            DomainError::OverLimit {
                message: "x".into(),
            },
            DomainError::UnsupportedMediaType {
                message: "x".into(),
            },
        ];
        let mut codes: Vec<_> = samples.iter().map(DomainError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), samples.len());
        assert_eq!(samples[3].to_string(), "No image found with ID i");
        assert_eq!(samples[3].kind(), ErrorKind::NotFound);
    }
}
