//! Value types shared by every aggregate: regions, statuses, visibility, stream ids.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;

/// A region (data centre) such as `DFW`. Every image, share, task and boot check is regional.
///
/// Stored upper-case; parsing is case-insensitive because the seeds write `REGION=dfw`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// The regions of Rackspace Cloud Images 2.0.
    pub const KNOWN: [&'static str; 6] = ["DFW", "ORD", "IAD", "LON", "SYD", "HKG"];

    /// Parses a region name: 2 to 16 ASCII letters or digits, case-insensitive.
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        let trimmed = name.trim();
        let valid =
            (2..=16).contains(&trimmed.len()) && trimmed.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(DomainError::InvalidInput {
                message: format!("Invalid region name: '{name}'"),
            });
        }
        Ok(Self(trimmed.to_ascii_uppercase()))
    }

    /// The upper-case name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Generates `as_str`, `parse` and `Display` for a closed set of lower-case API words.
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $(#[doc = $text] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word the API uses.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the API word (exact, lower-case).
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum!(
    /// Image status (`docs/spec/glance.md` §2).
    ImageStatus {
        Queued => "queued",
        Saving => "saving",
        Active => "active",
        Killed => "killed",
        Deactivated => "deactivated",
        Deleted => "deleted",
        Uploading => "uploading",
        Importing => "importing",
    }
);

api_enum!(
    /// Who an image is offered to. The rackspace profile shows only `public` and `private`.
    Visibility {
        Public => "public",
        Private => "private",
        Shared => "shared",
        Community => "community",
    }
);

api_enum!(
    /// A member's answer to a share.
    MemberStatus {
        Pending => "pending",
        Accepted => "accepted",
        Rejected => "rejected",
    }
);

api_enum!(
    /// Task status: `pending → processing → success | failure`.
    TaskStatus {
        Pending => "pending",
        Processing => "processing",
        Success => "success",
        Failure => "failure",
    }
);

api_enum!(
    /// What a task does.
    TaskType {
        Import => "import",
        Export => "export",
    }
);

/// The identity of an event stream: one per image (with its members and tags), one per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamId {
    /// `image-<uuid>`
    Image(Uuid),
    /// `task-<uuid>`
    Task(Uuid),
}

impl StreamId {
    /// Parses `image-<uuid>` or `task-<uuid>`.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(rest) = text.strip_prefix("image-") {
            return Uuid::parse_str(rest).ok().map(StreamId::Image);
        }
        if let Some(rest) = text.strip_prefix("task-") {
            return Uuid::parse_str(rest).ok().map(StreamId::Task);
        }
        None
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamId::Image(id) => write!(f, "image-{id}"),
            StreamId::Task(id) => write!(f, "task-{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_is_case_insensitive_and_validated() {
        assert_eq!(Region::parse("dfw").unwrap().as_str(), "DFW");
        assert!(Region::parse("").is_err());
        assert!(Region::parse("d f w").is_err());
        assert!(Region::parse("x").is_err());
    }

    #[test]
    fn stream_ids_round_trip() {
        let id = Uuid::from_u128(7);
        for stream in [StreamId::Image(id), StreamId::Task(id)] {
            assert_eq!(StreamId::parse(&stream.to_string()), Some(stream));
        }
        assert_eq!(StreamId::parse("member-1"), None);
        assert_eq!(StreamId::parse("image-not-a-uuid"), None);
    }

    #[test]
    fn api_words_parse_exactly() {
        assert_eq!(
            MemberStatus::parse("accepted"),
            Some(MemberStatus::Accepted)
        );
        assert_eq!(MemberStatus::parse("Accepted"), None);
        assert_eq!(ImageStatus::ALL.len(), 8);
        assert_eq!(Visibility::Shared.to_string(), "shared");
    }
}
