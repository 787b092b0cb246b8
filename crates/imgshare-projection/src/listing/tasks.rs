//! `GET /v2/tasks` and an image's tasks: the caller's unexpired tasks in its region.

use crate::error::SqlResult as _;
use chrono::{DateTime, Utc};
use imgshare_core::Task;
use imgshare_sql::{params, RowExt as _, Sql};
use serde_json::Value;

use super::{Statement, Viewer};
use crate::page::{TaskPage, TaskView};
use crate::query::{first_link, next_link, Marker, SortDir, TaskListQuery, TaskSortKey};
use crate::tables::{api_time, into_task, task_from_row, ProjectionError, TASK_COLUMNS};

fn task_sort_expression(key: TaskSortKey) -> &'static str {
    match key {
        TaskSortKey::CreatedAt => "created_at",
        TaskSortKey::UpdatedAt => "updated_at",
        TaskSortKey::Id => "task_id",
        TaskSortKey::Type => "task_type",
        TaskSortKey::Status => "status",
    }
}

/// Every task the caller sees (unexpired, its own, in this region) in `GET /v2/tasks`'s default
/// order (newest first), unpaged: for queries that filter on a task's input or result.
pub fn visible_tasks<C: Sql + ?Sized>(
    conn: &C,
    viewer: &Viewer<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Task>, ProjectionError> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM proj_tasks WHERE owner = ?1 AND region = ?2 \
         AND (expires_at IS NULL OR expires_at > ?3) ORDER BY created_at DESC, task_id DESC"
    );
    let rows = conn
        .query_all(
            &sql,
            params![viewer.tenant_id, viewer.region.as_str(), &api_time(now)],
            |row| task_from_row(row),
        )
        .and_then(|rows| rows)
        .sql()?;
    rows.into_iter().map(into_task).collect()
}

/// One page of `GET /v2/tasks`: the caller's unexpired tasks in this region.
pub fn list_tasks<C: Sql + ?Sized>(
    conn: &C,
    viewer: &Viewer<'_>,
    now: DateTime<Utc>,
    query: &TaskListQuery,
    raw_query: &str,
) -> Result<Value, ProjectionError> {
    Ok(task_page(conn, viewer, now, query, raw_query)?.into_json())
}

/// One page of `GET /v2/tasks`, typed; `raw_query` is the query string its links repeat.
pub fn task_page<C: Sql + ?Sized>(
    conn: &C,
    viewer: &Viewer<'_>,
    now: DateTime<Utc>,
    query: &TaskListQuery,
    raw_query: &str,
) -> Result<TaskPage, ProjectionError> {
    let mut sql = Statement::default();
    sql.push("SELECT ")
        .push(TASK_COLUMNS)
        .push(" FROM proj_tasks WHERE owner = ")
        .bind(viewer.tenant_id.to_owned())
        .push(" AND region = ")
        .bind(viewer.region.as_str().to_owned())
        .push(" AND (expires_at IS NULL OR expires_at > ")
        .bind(api_time(now))
        .push(")");
    if let Some(status) = query.status {
        sql.push(" AND status = ").bind(status.as_str().to_owned());
    }
    if let Some(task_type) = &query.type_ {
        sql.push(" AND task_type = ").bind(task_type.clone());
    }
    let key = task_sort_expression(query.sort_key);
    let (op, dir) = match query.sort_dir {
        SortDir::Asc => (" > ", " ASC"),
        SortDir::Desc => (" < ", " DESC"),
    };
    if let Some(marker) = &query.marker {
        // Every task sort key is a NOT NULL text column.
        let marker_row: Option<String> = conn
            .query_first(
                &format!("SELECT {key} FROM proj_tasks WHERE task_id = ?1 AND owner = ?2 AND region = ?3"),
                params![marker, viewer.tenant_id, viewer.region.as_str()],
                |row| row.get::<String>(0),
            )
            .and_then(|value| value)
            .sql()?;
        let Some(marker_value) = marker_row else {
            return Err(ProjectionError::BadQuery(format!(
                "Invalid marker. Task {marker} could not be found."
            )));
        };
        sql.push(" AND (")
            .push(key)
            .push(op)
            .bind(marker_value.clone());
        sql.push(" OR (").push(key).push(" = ").bind(marker_value);
        sql.push(" AND task_id")
            .push(op)
            .bind(marker.clone())
            .push("))");
    }
    sql.push(" ORDER BY ")
        .push(key)
        .push(dir)
        .push(", task_id")
        .push(dir);
    sql.push(" LIMIT ").bind(i64::from(query.limit));
    let rows = conn
        .query_all(&sql.text, &sql.values(), |row| task_from_row(row))
        .and_then(|rows| rows)
        .sql()?;
    let page_full = query.limit > 0 && rows.len() == query.limit as usize;
    let tasks: Vec<TaskView> = rows
        .into_iter()
        .map(|row| into_task(row).map(TaskView::entry))
        .collect::<Result<_, _>>()?;
    let last = tasks.last().map(|view| view.task().id);
    let next = last.filter(|_| page_full);
    let first = first_link("/v2/tasks", raw_query);
    let next_link = next.map(|id| next_link("/v2/tasks", raw_query, &id.to_string()));
    Ok(TaskPage::new(tasks, next.map(Marker), first, next_link))
}
