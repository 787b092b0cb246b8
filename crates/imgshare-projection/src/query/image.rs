//! `GET /v2/images`: filters, sorting and their parsing.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::*;

/// Which shared images (by the caller's member status) join the caller's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatusFilter {
    /// `member_status=pending`
    Pending,
    /// `member_status=accepted` (the default)
    Accepted,
    /// `member_status=rejected`
    Rejected,
    /// `member_status=all`: any status.
    All,
}

impl MemberStatusFilter {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::All => "all",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "accepted" => Some(Self::Accepted),
            "rejected" => Some(Self::Rejected),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// Filter on a column that supports `eq:` and `in:` (`name`, `id`, `status`, formats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFilter {
    /// Exact match (a bare value or `eq:value`).
    Eq(String),
    /// Match any of the values (`in:a,b,"c,d"`).
    In(Vec<String>),
}

/// Comparison operator of a `created_at`/`updated_at` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeOp {
    /// `gt:` strictly after.
    Gt,
    /// `gte:` at or after.
    Gte,
    /// `lt:` strictly before.
    Lt,
    /// `lte:` at or before.
    Lte,
    /// `eq:` (or a bare timestamp) exactly at.
    Eq,
    /// `neq:` not at.
    Neq,
}

impl TimeOp {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Eq => "eq",
            Self::Neq => "neq",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "gt" => Some(Self::Gt),
            "gte" => Some(Self::Gte),
            "lt" => Some(Self::Lt),
            "lte" => Some(Self::Lte),
            "eq" => Some(Self::Eq),
            "neq" => Some(Self::Neq),
            _ => None,
        }
    }
}

/// One timestamp condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFilter {
    /// How the column compares to `at`.
    pub op: TimeOp,
    /// The instant, normalised to UTC.
    pub at: DateTime<Utc>,
}

/// A column images can be sorted by (`images.py` `_available_sort_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// `name`
    Name,
    /// `status`
    Status,
    /// `container_format`
    ContainerFormat,
    /// `disk_format`
    DiskFormat,
    /// `size`
    Size,
    /// `id`
    Id,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
}

impl SortKey {
    /// All keys, in Glance's order (used in the error message).
    pub const ALL: [SortKey; 8] = [
        SortKey::Name,
        SortKey::Status,
        SortKey::ContainerFormat,
        SortKey::DiskFormat,
        SortKey::Size,
        SortKey::Id,
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
    ];

    /// The wire name, which is also the image attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Status => "status",
            Self::ContainerFormat => "container_format",
            Self::DiskFormat => "disk_format",
            Self::Size => "size",
            Self::Id => "id",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }

    fn parse(s: &str) -> Result<Self, QueryError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                QueryError::new(format!(
                    "Invalid sort key: {s}. It must be one of the following: {}.",
                    names.join(", ")
                ))
            })
    }
}

/// A validated `GET /v2/images` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageListQuery {
    /// `visibility`, one of the dialect's values; `None` = the default view.
    pub visibility: Option<String>,
    /// `member_status`, default `accepted`.
    pub member_status: MemberStatusFilter,
    /// `owner` equality.
    pub owner: Option<String>,
    /// `status` (values are not validated: an unknown status just matches nothing).
    pub status: Option<ValueFilter>,
    /// `name`
    pub name: Option<ValueFilter>,
    /// `id`
    pub id: Option<ValueFilter>,
    /// `container_format`
    pub container_format: Option<ValueFilter>,
    /// `disk_format`
    pub disk_format: Option<ValueFilter>,
    /// `checksum` equality.
    pub checksum: Option<String>,
    /// `tag`, repeatable; an image must carry every one (AND). Surrounding whitespace is removed,
    /// as Glance does.
    pub tags: Vec<String>,
    /// `size_min`: size >= this (inclusive).
    pub size_min: Option<u64>,
    /// `size_max`: size <= this (inclusive).
    pub size_max: Option<u64>,
    /// `protected`
    pub protected: Option<bool>,
    /// `os_hidden`; `None` when absent, which the store reads as `false` (hidden images are
    /// excluded by default, even for their owner).
    pub os_hidden: Option<bool>,
    /// `created_at` conditions, ANDed.
    pub created_at: Vec<TimeFilter>,
    /// `updated_at` conditions, ANDed.
    pub updated_at: Vec<TimeFilter>,
    /// Every other key: exact match on a custom property, ANDed, in query order (a repeated key
    /// keeps its first position and its last value). Image columns Glance also accepts here
    /// (`min_ram`, `min_disk`, `os_hash_value`, ...) arrive in this list too.
    pub properties: Vec<(String, String)>,
    /// Sort order; never empty. Ends with `created_at` and `id` unless they were given, so the
    /// order is total and markers are unambiguous.
    pub sort: Vec<(SortKey, SortDir)>,
    /// Page size, already capped at the dialect's maximum; 0 is allowed (empty page, no `next`).
    pub limit: u32,
    /// `marker`: id of the last image of the previous page, not yet checked.
    pub marker: Option<String>,
}

/// Parses and validates the query string of `GET /v2/images` (without the `?`).
pub fn parse_image_list_query(
    raw: &str,
    dialect: &QueryDialect,
) -> Result<ImageListQuery, QueryError> {
    let params = decode_params(raw)?;

    let mut visibility = None;
    let mut changes_since = false;
    let mut member_status = None;
    let mut limit = None;
    let mut marker = None;
    let mut owner = None;
    let mut checksum = None;
    let mut status = None;
    let mut name = None;
    let mut id = None;
    let mut container_format = None;
    let mut disk_format = None;
    let mut size_min = None;
    let mut size_max = None;
    let mut protected = None;
    let mut os_hidden = None;
    let mut created_at = Vec::new();
    let mut updated_at = Vec::new();
    let mut tags = Vec::new();
    let mut sort_new = None;
    let mut sort_keys = Vec::new();
    let mut sort_dirs = Vec::new();
    let mut properties: Vec<(String, String)> = Vec::new();

    for (key, value) in params {
        match key.as_str() {
            "visibility" => visibility = Some(value),
            "changes-since" => changes_since = true,
            "member_status" => member_status = Some(value),
            "limit" => limit = Some(value),
            "marker" => marker = Some(value),
            "owner" => owner = Some(value),
            "checksum" => checksum = Some(value),
            "status" => status = Some(value),
            "name" => name = Some(value),
            "id" => id = Some(value),
            "container_format" => container_format = Some(value),
            "disk_format" => disk_format = Some(value),
            "size_min" => size_min = Some(value),
            "size_max" => size_max = Some(value),
            "protected" => protected = Some(value),
            "os_hidden" => os_hidden = Some(value),
            "created_at" => created_at.push(value),
            "updated_at" => updated_at.push(value),
            "tag" => tags.push(value.trim().to_owned()),
            "sort" => sort_new = Some(value),
            "sort_key" => sort_keys.push(value),
            "sort_dir" => sort_dirs.push(value),
            _ => match properties.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => properties.push((key, value)),
            },
        }
    }

    // Checked in Glance's order (deserializer, then controller, then DB layer) so that a query
    // with several faults reports the same one Glance would.
    if let Some(v) = &visibility {
        if !dialect.visibility_filters.contains(&v.as_str()) {
            return Err(QueryError::new(format!("Invalid visibility value: {v}")));
        }
    }
    if changes_since {
        return Err(QueryError::new(
            "The \"changes-since\" filter is no longer available on v2.",
        ));
    }
    let member_status = match member_status {
        None => MemberStatusFilter::Accepted,
        Some(v) => MemberStatusFilter::parse(&v)
            .ok_or_else(|| QueryError::new(format!("Invalid status: {v}")))?,
    };
    let limit = match limit {
        None => dialect.limit_default.min(dialect.limit_max),
        Some(v) => parse_limit(&v, dialect)?,
    };
    let sort = parse_sort(sort_new, sort_keys, sort_dirs)?;
    let os_hidden = os_hidden
        .map(|v| {
            // Glance lowercases before comparing, and reports the lowercased value.
            let lower = v.to_lowercase();
            parse_bool(&lower).ok_or_else(|| invalid_bool("os_hidden", &lower))
        })
        .transpose()?;
    let protected = protected
        .map(|v| parse_bool(&v).ok_or_else(|| invalid_bool("protected", &v)))
        .transpose()?;
    let size_min = size_min.map(|v| parse_size(&v)).transpose()?;
    let size_max = size_max.map(|v| parse_size(&v)).transpose()?;
    let created_at = created_at
        .iter()
        .map(|v| parse_time_filter("created_at", v))
        .collect::<Result<Vec<_>, _>>()?;
    let updated_at = updated_at
        .iter()
        .map(|v| parse_time_filter("updated_at", v))
        .collect::<Result<Vec<_>, _>>()?;
    let value_filter = |v: Option<String>| v.map(|v| parse_value_filter(&v)).transpose();

    Ok(ImageListQuery {
        visibility,
        member_status,
        owner,
        status: value_filter(status)?,
        name: value_filter(name)?,
        id: value_filter(id)?,
        container_format: value_filter(container_format)?,
        disk_format: value_filter(disk_format)?,
        checksum,
        tags,
        size_min,
        size_max,
        protected,
        os_hidden,
        created_at,
        updated_at,
        properties,
        sort,
        limit,
        marker,
    })
}

pub(super) fn parse_size(v: &str) -> Result<u64, QueryError> {
    let (negative, digits) = split_sign(v.trim());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::new(
            "Unable to filter on a range with a non-numeric value.",
        ));
    }
    if negative && digits.bytes().any(|b| b != b'0') {
        return Err(QueryError::new(
            "Unable to filter on a range with a negative value.",
        ));
    }
    // Beyond u64 no image can match `size_min`, and `size_max` matches everything: saturating
    // keeps both meanings.
    Ok(digits.parse::<u64>().unwrap_or(u64::MAX))
}

/// `utils.split_filter_op` + the `eq`/`in` handling of the DB layer. A value that is itself an
/// ISO 8601 timestamp is not split at its colons.
pub(super) fn parse_value_filter(v: &str) -> Result<ValueFilter, QueryError> {
    let Some((op, rest)) = v.split_once(':') else {
        return Ok(ValueFilter::Eq(v.to_owned()));
    };
    if parse_timestamp(v).is_some() {
        return Ok(ValueFilter::Eq(v.to_owned()));
    }
    match op {
        "eq" => Ok(ValueFilter::Eq(rest.to_owned())),
        "in" => Ok(ValueFilter::In(split_quoted_list(rest)?)),
        _ => Err(unknown_operator(op)),
    }
}

/// Splits `a,b,"c,d"` into `["a", "b", "c,d"]` (`utils.split_filter_value_for_quotes`).
///
/// As in Glance, a quote must open at the start or right after a comma and close at the end or
/// right before one; `\"` inside quotes is a literal quote. Unlike Glance, the backslash of such
/// an escape is removed, so a value can contain a quote and still be matched exactly. As in
/// Glance, `a,,b` yields an empty middle value and a trailing comma adds nothing.
pub(super) fn split_quoted_list(s: &str) -> Result<Vec<String>, QueryError> {
    let mut values = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ',' => {
                chars.next();
                values.push(String::new());
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(escaped @ ('"' | '\\')) => value.push(escaped),
                            Some(other) => {
                                value.push('\\');
                                value.push(other);
                            }
                            None => value.push('\\'),
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => value.push(c),
                    }
                }
                if !closed {
                    return Err(QueryError::new(format!(
                        "Invalid filter value {s}. The quote is not closed."
                    )));
                }
                match chars.next() {
                    None | Some(',') => {}
                    Some(_) => {
                        return Err(QueryError::new(format!(
                        "Invalid filter value {s}. There is no comma after closing quotation mark."
                    )))
                    }
                }
                values.push(value);
            }
            _ => {
                let mut value = String::new();
                let mut previous = None;
                for c in chars.by_ref() {
                    if c == ',' {
                        break;
                    }
                    if c == '"' && previous != Some('\\') {
                        return Err(QueryError::new(format!(
                            "Invalid filter value {s}. There is no comma before opening quotation mark."
                        )));
                    }
                    value.push(c);
                    previous = Some(c);
                }
                values.push(value);
            }
        }
    }
    Ok(values)
}

/// `op:timestamp` or a bare timestamp (`utils.split_filter_op`, then the DB layer's date parse
/// before the operator check).
pub(super) fn parse_time_filter(column: &str, v: &str) -> Result<TimeFilter, QueryError> {
    if let Some(at) = parse_timestamp(v) {
        return Ok(TimeFilter { op: TimeOp::Eq, at });
    }
    let (op, stamp) = v.split_once(':').unwrap_or(("eq", v));
    let at = parse_timestamp(stamp).ok_or_else(|| {
        QueryError::new(format!(
            "Bad \"{column}\" query filter format. Use ISO 8601 DateTime notation."
        ))
    })?;
    let op = TimeOp::parse(op).ok_or_else(|| unknown_operator(op))?;
    Ok(TimeFilter { op, at })
}

/// ISO 8601 as Glance's `iso8601.parse_date` reads it, minus its rarer forms: RFC 3339, an offset
/// without a colon, no offset (UTC, Glance's default), minutes precision, or a date alone.
pub(super) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    parse_timestamp_exact(s).or_else(|| {
        // An unencoded `+01:00` offset arrives as ` 01:00` because `+` means space in a query.
        let (head, tail) = s.rsplit_once(' ')?;
        parse_timestamp_exact(&format!("{head}+{tail}"))
    })
}

pub(super) fn parse_timestamp_exact(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(at) = DateTime::parse_from_str(s, format) {
            return Some(at.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(s, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

/// `_get_sorting_params` of the deserializer followed by `_image_get_all`'s expansion of the
/// directions and its tie-breakers.
pub(super) fn parse_sort(
    sort_new: Option<String>,
    sort_keys: Vec<String>,
    sort_dirs: Vec<String>,
) -> Result<Vec<(SortKey, SortDir)>, QueryError> {
    let mut keys = Vec::new();
    let mut dirs = Vec::new();
    if let Some(sort) = sort_new {
        if !sort_keys.is_empty() || !sort_dirs.is_empty() {
            return Err(QueryError::new(
                "Old and new sorting syntax cannot be combined",
            ));
        }
        for item in sort.trim().split(',') {
            let (key, dir) = item.split_once(':').unwrap_or((item, ""));
            keys.push(SortKey::parse(key.trim())?);
            let dir = dir.trim();
            dirs.push(if dir.is_empty() {
                SortDir::Desc
            } else {
                SortDir::parse(dir)?
            });
        }
    } else {
        for key in &sort_keys {
            keys.push(SortKey::parse(key.trim())?);
        }
        for dir in &sort_dirs {
            dirs.push(SortDir::parse(dir.trim())?);
        }
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(QueryError::new(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
    }
    if keys.is_empty() {
        keys.push(SortKey::CreatedAt);
    }
    // One direction applies to every key and to the tie-breakers; otherwise they use `desc`.
    let default_dir = match dirs.as_slice() {
        [single] => *single,
        _ => SortDir::Desc,
    };
    let mut sort: Vec<(SortKey, SortDir)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let dir = if dirs.len() > 1 {
                dirs.get(i).copied().unwrap_or(default_dir)
            } else {
                default_dir
            };
            (*key, dir)
        })
        .collect();
    for tie_breaker in [SortKey::CreatedAt, SortKey::Id] {
        if !keys.contains(&tie_breaker) {
            sort.push((tie_breaker, default_dir));
        }
    }
    Ok(sort)
}
