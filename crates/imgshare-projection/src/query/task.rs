//! `GET /v2/tasks`: filters, sorting and their parsing.

use super::*;

/// Task status filter values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatusFilter {
    /// `pending`
    Pending,
    /// `processing`
    Processing,
    /// `success`
    Success,
    /// `failure`
    Failure,
}

impl TaskStatusFilter {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "processing" => Some(Self::Processing),
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// A column tasks can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskSortKey {
    /// `created_at` (the default)
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `id`
    Id,
    /// `type`
    Type,
    /// `status`
    Status,
}

impl TaskSortKey {
    /// All keys.
    pub const ALL: [TaskSortKey; 5] = [
        TaskSortKey::CreatedAt,
        TaskSortKey::UpdatedAt,
        TaskSortKey::Id,
        TaskSortKey::Type,
        TaskSortKey::Status,
    ];

    /// The wire name, which is also the task attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::Id => "id",
            Self::Type => "type",
            Self::Status => "status",
        }
    }
}

/// A validated `GET /v2/tasks` query. The store appends the tie-breakers `created_at`, `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskListQuery {
    /// `status`
    pub status: Option<TaskStatusFilter>,
    /// `type`, one of the profile's task types.
    pub type_: Option<String>,
    /// `sort_key`, default `created_at`.
    pub sort_key: TaskSortKey,
    /// `sort_dir`, default `desc`.
    pub sort_dir: SortDir,
    /// Page size, capped at the dialect's maximum.
    pub limit: u32,
    /// `marker`, a UUID in canonical hyphenated lowercase form.
    pub marker: Option<String>,
}

/// Parses and validates the query string of `GET /v2/tasks`. `task_types` are the profile's
/// task types (the `type` filter accepts only those). Unknown keys are ignored, as in Glance.
pub fn parse_task_list_query(
    raw: &str,
    dialect: &QueryDialect,
    task_types: &[&str],
) -> Result<TaskListQuery, QueryError> {
    let params = decode_params(raw)?;
    let mut status = None;
    let mut type_ = None;
    let mut sort_key = None;
    let mut sort_dir = None;
    let mut limit = None;
    let mut marker = None;
    for (key, value) in params {
        match key.as_str() {
            "status" => status = Some(value),
            "type" => type_ = Some(value),
            "sort_key" => sort_key = Some(value),
            "sort_dir" => sort_dir = Some(value),
            "limit" => limit = Some(value),
            "marker" => marker = Some(value),
            _ => {}
        }
    }

    // Glance's order: sort_dir, filters, marker, limit, then the sort key in the DB layer.
    let sort_dir = match sort_dir {
        None => SortDir::Desc,
        Some(v) => SortDir::parse(&v)?,
    };
    let status = status
        .map(|v| {
            TaskStatusFilter::parse(&v)
                .ok_or_else(|| QueryError::new(format!("Invalid status value: {v}")))
        })
        .transpose()?;
    if let Some(v) = &type_ {
        if !task_types.contains(&v.as_str()) {
            return Err(QueryError::new(format!("Invalid type value: {v}")));
        }
    }
    let marker = marker
        .map(|v| {
            uuid::Uuid::try_parse(&v)
                .map(|u| u.hyphenated().to_string())
                .map_err(|_| QueryError::new("Invalid marker format"))
        })
        .transpose()?;
    let limit = match limit {
        None => dialect.limit_default.min(dialect.limit_max),
        Some(v) => parse_limit(&v, dialect)?,
    };
    let sort_key = match sort_key {
        None => TaskSortKey::CreatedAt,
        Some(v) => TaskSortKey::ALL
            .into_iter()
            .find(|k| k.as_str() == v)
            .ok_or_else(|| {
                let names: Vec<&str> = TaskSortKey::ALL.iter().map(|k| k.as_str()).collect();
                QueryError::new(format!(
                    "Invalid sort key: {v}. It must be one of the following: {}.",
                    names.join(", ")
                ))
            })?,
    };
    Ok(TaskListQuery {
        status,
        type_,
        sort_key,
        sort_dir,
        limit,
        marker,
    })
}
