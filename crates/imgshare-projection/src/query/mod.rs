//! Parsers for the query strings of `GET /v2/images` and `GET /v2/tasks`, and the `first`/`next`
//! links built from them (`docs/spec/glance.md` §5.2–§5.5, §9.4).
//!
//! Pure functions: no SQL and no store access. Whether a `marker` exists and is visible is for the
//! store to decide (an unknown or invisible marker is a 400 there). Every error here is a
//! 400 Bad Request whose message follows Glance's wording where Glance has one.
//!
//! Choices where Glance is loose or silent, made on purpose:
//! * A non-repeatable parameter given several times: the last one wins (Glance's `dict(params)`
//!   view does the same for most keys). Repeatable: `tag`, `sort_key`, `sort_dir`, and
//!   `created_at`/`updated_at` (each occurrence is one more condition, ANDed, so a range can be
//!   written as `created_at=gte:A&created_at=lt:B`).
//! * An empty `visibility` is a 400, like any other value outside the dialect's list (Glance lets
//!   it through and matches nothing).
//! * A negative `size_min`/`size_max` is a 400: sizes are unsigned, and Glance's
//!   "matches everything but NULL sizes" / "matches nothing" meanings are not worth keeping.
//! * Links keep every repeated parameter (Glance collapses `tag=a&tag=b` to `tag=b`, which makes
//!   the next page answer a different query).
//! * At most [`MAX_PARAMS`] parameters, each key and value at most [`MAX_PARAM_BYTES`] bytes once
//!   decoded, so a request cannot make the parser allocate without bound.

pub use imgshare_core::profile::QueryDialect;

use crate::percent;

mod image;
mod link;
mod task;
#[cfg(test)]
mod tests;
mod typed;

pub use self::image::{
    parse_image_list_query, ImageListQuery, MemberStatusFilter, SortKey, TimeFilter, TimeOp,
    ValueFilter,
};
pub use link::{first_link, next_link};
pub use task::{parse_task_list_query, TaskListQuery, TaskSortKey, TaskStatusFilter};
pub use typed::{ImageQuery, Marker, TaskQuery};

/// The most parameters a list query may carry.
pub const MAX_PARAMS: usize = 100;
/// The longest key or value, in bytes after percent-decoding.
pub const MAX_PARAM_BYTES: usize = 1024;

/// A rejected query: always answered with 400 Bad Request and this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// Human-readable explanation, sent in the error body.
    pub message: String,
}

impl From<QueryError> for crate::ProjectionError {
    fn from(error: QueryError) -> Self {
        Self::BadQuery(error.message)
    }
}

impl QueryError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortDir {
    /// Ascending.
    Asc,
    /// Descending (the default).
    Desc,
}

impl SortDir {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }

    fn parse(s: &str) -> Result<Self, QueryError> {
        match s {
            "asc" => Ok(Self::Asc),
            "desc" => Ok(Self::Desc),
            _ => Err(QueryError::new(format!("Invalid sort direction: {s}"))),
        }
    }
}

pub(super) fn split_pair(segment: &str) -> (&str, &str) {
    // A segment without `=` is a key with an empty value (Python's keep_blank_values).
    segment.split_once('=').unwrap_or((segment, ""))
}

/// Splits and decodes the query, enforcing the size caps before allocating decoded copies.
pub(super) fn decode_params(raw: &str) -> Result<Vec<(String, String)>, QueryError> {
    let mut params = Vec::new();
    for segment in raw.split('&').filter(|s| !s.is_empty()) {
        if params.len() == MAX_PARAMS {
            return Err(QueryError::new(format!(
                "Too many query parameters (the maximum is {MAX_PARAMS})."
            )));
        }
        let (key, value) = split_pair(segment);
        params.push((decode_component(key)?, decode_component(value)?));
    }
    Ok(params)
}

pub(super) fn decode_component(encoded: &str) -> Result<String, QueryError> {
    let too_long = || {
        QueryError::new(format!(
            "Query parameter too long (the maximum is {MAX_PARAM_BYTES} bytes)."
        ))
    };
    // Each decoded byte takes at most three encoded ones, so this bounds work before decoding.
    if encoded.len() > 3 * MAX_PARAM_BYTES {
        return Err(too_long());
    }
    let bytes = percent::decode_form(encoded);
    if bytes.len() > MAX_PARAM_BYTES {
        return Err(too_long());
    }
    String::from_utf8(bytes)
        .map_err(|_| QueryError::new("Query parameters must be valid UTF-8 once percent-decoded."))
}

/// Python's `int()` on the value: surrounding whitespace and a sign are allowed. Too large a
/// value is capped like any other value above the maximum.
pub(super) fn parse_limit(v: &str, dialect: &QueryDialect) -> Result<u32, QueryError> {
    let (negative, digits) = split_sign(v.trim());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::new("limit param must be an integer"));
    }
    if negative && digits.bytes().any(|b| b != b'0') {
        return Err(QueryError::new("limit param must be positive"));
    }
    // All digits, so parsing fails only on overflow: such a value is above any maximum.
    let n = digits.parse::<u64>().unwrap_or(u64::MAX);
    let capped = n.min(u64::from(dialect.limit_max));
    Ok(u32::try_from(capped).unwrap_or(dialect.limit_max))
}

pub(super) fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

pub(super) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

pub(super) fn invalid_bool(filter: &str, value: &str) -> QueryError {
    QueryError::new(format!(
        "Invalid value '{value}' for '{filter}' filter. Valid values are 'true' or 'false'."
    ))
}

pub(super) fn unknown_operator(op: &str) -> QueryError {
    QueryError::new(format!("Unable to filter by unknown operator '{op}'."))
}
