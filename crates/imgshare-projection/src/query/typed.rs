//! [`ImageQuery`] and [`TaskQuery`]: list queries a Rust caller builds with methods, or parses
//! from an HTTP query string, without writing URLs.
//!
//! A query keeps its parameters in query-string form, because the API's `first` and `next` links
//! repeat the caller's parameters in the caller's order; the validation with the profile's
//! dialect ([`ImageQuery::validate`]) is the same function the HTTP adapter used before, so the
//! rules and every error message are the HTTP query's.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::link::encode_into;
use super::{
    decode_params, parse_image_list_query, parse_task_list_query, ImageListQuery,
    MemberStatusFilter, QueryDialect, QueryError, SortDir, SortKey, TaskListQuery, TaskSortKey,
    TaskStatusFilter,
};

/// Where a page ends: the id of its last entry. Passing it to [`ImageQuery::after`] (or
/// [`TaskQuery::after`]) asks for the following page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Marker(pub Uuid);

impl Marker {
    /// The id of the last entry of the page.
    pub fn id(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Parameters in query-string form, appended in call order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Params {
    raw: String,
}

impl Params {
    fn parse(raw: &str) -> Result<Self, QueryError> {
        // Decoding is the dialect-independent part of validation (size caps, UTF-8).
        decode_params(raw)?;
        Ok(Self {
            raw: raw.to_owned(),
        })
    }

    fn push(&mut self, key: &str, value: &str) {
        if !self.raw.is_empty() {
            self.raw.push('&');
        }
        encode_into(key, &mut self.raw);
        self.raw.push('=');
        encode_into(value, &mut self.raw);
    }
}

/// A `GET /v2/images` query: the default list, or filters, sort keys, a marker, a limit, a
/// `member_status` and a `visibility`.
///
/// ```
/// use imgshare_projection::query::{ImageQuery, MemberStatusFilter, SortDir, SortKey};
///
/// let built = ImageQuery::new()
///     .member_status(MemberStatusFilter::All)
///     .sort(SortKey::Name, SortDir::Asc)
///     .limit(25);
/// let parsed: ImageQuery = "member_status=all&sort_key=name&sort_dir=asc&limit=25".parse()?;
/// assert_eq!(built, parsed);
/// # Ok::<(), imgshare_projection::query::QueryError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageQuery {
    params: Params,
}

impl ImageQuery {
    /// The default list: the caller's own images, public ones and accepted shares, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Any parameter the HTTP API accepts, e.g. `("name", "in:a,b")`, `("os_distro", "ubuntu")`
    /// (a custom property) or `("created_at", "gte:2024-01-01T00:00:00Z")`.
    pub fn param(mut self, key: &str, value: &str) -> Self {
        self.params.push(key, value);
        self
    }

    /// At most `limit` images (capped at the profile's maximum).
    pub fn limit(self, limit: u32) -> Self {
        self.param("limit", &limit.to_string())
    }

    /// The page after `marker`.
    pub fn after(self, marker: Marker) -> Self {
        self.param("marker", &marker.to_string())
    }

    /// Shares in this member status (`accepted` when not given).
    pub fn member_status(self, status: MemberStatusFilter) -> Self {
        self.param("member_status", status.as_str())
    }

    /// Only images of this visibility (`public`, `private`, `shared`, ... as the profile names
    /// them).
    pub fn visibility(self, visibility: &str) -> Self {
        self.param("visibility", visibility)
    }

    /// Images carrying `tag` (repeatable: every tag must be present).
    pub fn tag(self, tag: &str) -> Self {
        self.param("tag", tag)
    }

    /// One more sort key and its direction.
    pub fn sort(self, key: SortKey, dir: SortDir) -> Self {
        self.param("sort_key", key.as_str())
            .param("sort_dir", dir.as_str())
    }

    /// The query string (without `?`), as the API's links repeat it.
    pub fn as_query_string(&self) -> &str {
        &self.params.raw
    }

    /// Validates the query with a profile's dialect: the HTTP query's rules and messages.
    pub fn validate(&self, dialect: &QueryDialect) -> Result<ImageListQuery, QueryError> {
        parse_image_list_query(&self.params.raw, dialect)
    }
}

impl FromStr for ImageQuery {
    type Err = QueryError;

    /// Parses a query string (without `?`). Only what every profile refuses is refused here
    /// (too many or too long parameters, bad UTF-8); the profile's rules apply when the engine
    /// runs the query.
    fn from_str(raw: &str) -> Result<Self, QueryError> {
        Ok(Self {
            params: Params::parse(raw)?,
        })
    }
}

/// A `GET /v2/tasks` query: status and type filters, one sort key, a marker and a limit.
///
/// ```
/// use imgshare_projection::query::{TaskQuery, TaskStatusFilter};
///
/// let query = TaskQuery::new().status(TaskStatusFilter::Success).limit(10);
/// assert_eq!(query.as_query_string(), "status=success&limit=10");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    params: Params,
}

impl TaskQuery {
    /// The caller's unexpired tasks in the region, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Any parameter the HTTP API accepts.
    pub fn param(mut self, key: &str, value: &str) -> Self {
        self.params.push(key, value);
        self
    }

    /// Only tasks in this status.
    pub fn status(self, status: TaskStatusFilter) -> Self {
        self.param("status", status.as_str())
    }

    /// Only tasks of this type (`import`, `export`).
    pub fn task_type(self, task_type: &str) -> Self {
        self.param("type", task_type)
    }

    /// The sort key and direction.
    pub fn sort(self, key: TaskSortKey, dir: SortDir) -> Self {
        self.param("sort_key", key.as_str())
            .param("sort_dir", dir.as_str())
    }

    /// At most `limit` tasks.
    pub fn limit(self, limit: u32) -> Self {
        self.param("limit", &limit.to_string())
    }

    /// The page after `marker`.
    pub fn after(self, marker: Marker) -> Self {
        self.param("marker", &marker.to_string())
    }

    /// The query string (without `?`).
    pub fn as_query_string(&self) -> &str {
        &self.params.raw
    }

    /// Validates the query with a profile's dialect and task types.
    pub fn validate(
        &self,
        dialect: &QueryDialect,
        task_types: &[&str],
    ) -> Result<TaskListQuery, QueryError> {
        parse_task_list_query(&self.params.raw, dialect, task_types)
    }
}

impl FromStr for TaskQuery {
    type Err = QueryError;

    /// Parses a query string (without `?`); see [`ImageQuery::from_str`].
    fn from_str(raw: &str) -> Result<Self, QueryError> {
        Ok(Self {
            params: Params::parse(raw)?,
        })
    }
}
