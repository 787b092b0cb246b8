//! `GET /v2/images`: the candidate branches, filters, keyset markers and the page's rendering.

use crate::error::SqlResult as _;
use std::collections::{BTreeMap, BTreeSet};

use imgshare_core::{Image, Profile, Visibility};
use imgshare_sql::{params, Dialect, Flow, RowExt as _, Sql, SqlError};
use serde_json::Value;

use super::{Param, Statement, Viewer};
use crate::page::{ImagePage, ImageView};
use crate::query::{
    first_link, next_link, ImageListQuery, Marker, MemberStatusFilter, SortDir, SortKey,
    TimeFilter, TimeOp, ValueFilter,
};
use crate::tables::{api_time, image_from_row, into_image, ProjectionError, IMAGE_COLUMNS};
use crate::views;

fn member_status_clause(filter: MemberStatusFilter) -> Option<&'static str> {
    match filter {
        MemberStatusFilter::All => None,
        other => Some(other.as_str()),
    }
}

/// Appends the candidate ids: a UNION of branches, one per way the caller may see an image
/// (own, public, unowned, community, shared with it). `tail` (the filters, the marker, the order
/// and the limit) is applied inside every branch, so each branch reads at most one page along
/// its index and the union holds at most a few pages, however many images the caller can see.
fn push_candidates(
    sql: &mut Statement,
    profile: &Profile,
    viewer: &Viewer<'_>,
    query: &ImageListQuery,
    tail: &Statement,
) {
    let region = viewer.region.as_str().to_owned();
    let mut first = true;
    let mut branch = |sql: &mut Statement, head: &mut dyn FnMut(&mut Statement)| {
        if !first {
            sql.push(" UNION ");
        }
        first = false;
        sql.push("SELECT image_id FROM (");
        head(sql);
        // PostgreSQL (before 16) requires a subquery in FROM to have a name.
        sql.append(tail).push(") AS candidates");
    };
    let images = "SELECT i.image_id FROM proj_images i WHERE ";
    let own = |extra: &'static str| {
        let region = region.clone();
        move |sql: &mut Statement| {
            sql.push(images)
                .push("i.owner = ")
                .bind(viewer.tenant_id.to_owned())
                .push(" AND i.region = ")
                .bind(region.clone())
                .push(extra);
        }
    };
    let with_visibility = |visibility: &'static str| {
        let region = region.clone();
        move |sql: &mut Statement| {
            sql.push(images)
                .push("i.visibility = ")
                .bind(visibility.to_owned())
                .push(" AND i.region = ")
                .bind(region.clone());
        }
    };
    let unowned = {
        let region = region.clone();
        move |sql: &mut Statement| {
            sql.push(images)
                .push("i.owner IS NULL AND i.region = ")
                .bind(region.clone());
        }
    };
    let shared_with_me = {
        let region = region.clone();
        move |sql: &mut Statement| {
            let visibility_rule = membership_rule(profile);
            // The caller's shares drive this branch: in SQLite, CROSS JOIN keeps `m` the outer
            // loop. Left to itself, with `member_status=all` (only `member_id` bound) SQLite
            // walks every image of the region in page order through `proj_images_by_visibility`
            // and probes each for a share: 0.7 s at 100k images for a consumer with a few shares,
            // against a range read of its shares. PostgreSQL plans the join from statistics.
            sql.push("SELECT i.image_id FROM proj_members m CROSS JOIN proj_images i WHERE i.image_id = m.image_id AND m.member_id = ")
                .bind(viewer.tenant_id.to_owned());
            if let Some(status) = member_status_clause(query.member_status) {
                sql.push(" AND m.status = ").bind(status.to_owned());
            }
            sql.push(" AND i.region = ")
                .bind(region.clone())
                .push(" AND ")
                .push(&visibility_rule);
        }
    };
    if viewer.is_admin {
        let mut admin = |sql: &mut Statement| {
            sql.push(images).push("i.region = ").bind(region.clone());
            match query.visibility.as_deref() {
                Some("all") => {}
                Some(visibility) => {
                    sql.push(" AND i.visibility = ").bind(visibility.to_owned());
                }
                // Admins still do not get other accounts' community images by default.
                None => {
                    sql.push(" AND (i.visibility <> 'community' OR i.owner = ")
                        .bind(viewer.tenant_id.to_owned())
                        .push(")");
                }
            }
        };
        branch(sql, &mut admin);
        return;
    }
    // `community` and `all` reach here only in a dialect whose parser accepts them.
    let not_public = profile.private_filter_means_not_public();
    match query.visibility.as_deref() {
        Some("public") => {
            branch(sql, &mut with_visibility("public"));
            branch(sql, &mut unowned.clone());
        }
        Some("private") if not_public => {
            // Icehouse: `private` means "not public" within the caller's set.
            branch(sql, &mut own(" AND i.visibility <> 'public'"));
            branch(sql, &mut shared_with_me.clone());
        }
        Some("shared") if not_public => branch(sql, &mut shared_with_me.clone()),
        Some("private") => {
            branch(sql, &mut own(" AND i.visibility = 'private'"));
        }
        Some("shared") => {
            branch(sql, &mut own(" AND i.visibility = 'shared'"));
            branch(sql, &mut shared_with_me.clone());
        }
        Some("community") => branch(sql, &mut with_visibility("community")),
        Some("all") => {
            branch(sql, &mut own(""));
            branch(sql, &mut with_visibility("public"));
            branch(sql, &mut unowned.clone());
            branch(sql, &mut with_visibility("community"));
            branch(sql, &mut shared_with_me.clone());
        }
        _ => {
            branch(sql, &mut own(""));
            branch(sql, &mut with_visibility("public"));
            branch(sql, &mut unowned.clone());
            branch(sql, &mut shared_with_me.clone());
        }
    }
}

fn sort_expression(key: SortKey) -> &'static str {
    // NULLs compare as '' or 0, as Glance coalesces them in marker comparisons. Every expression
    // is therefore non-NULL (a NOT NULL column or a COALESCE): where NULLs sort, which differs
    // between SQLite (first ascending) and PostgreSQL (last ascending), never arises, in the
    // ORDER BY or in the keyset comparison, so no `NULLS FIRST/LAST` is needed.
    match key {
        SortKey::Name => "COALESCE(i.name, '')",
        SortKey::Status => "i.status",
        SortKey::ContainerFormat => "COALESCE(i.container_format, '')",
        SortKey::DiskFormat => "COALESCE(i.disk_format, '')",
        SortKey::Size => "COALESCE(i.size, 0)",
        SortKey::Id => "i.image_id",
        SortKey::CreatedAt => "i.created_at",
        SortKey::UpdatedAt => "i.updated_at",
    }
}

/// Whether [`sort_expression`] is an integer (else text), to read a marker's value by its type.
fn sort_is_integer(key: SortKey) -> bool {
    matches!(key, SortKey::Size)
}

fn push_value_filter(sql: &mut Statement, column: &str, filter: &ValueFilter) {
    sql.push(" AND ").push(column);
    match filter {
        ValueFilter::Eq(value) => {
            sql.push(" = ").bind(value.clone());
        }
        ValueFilter::In(values) => {
            sql.push(" IN ").bind_list(values);
        }
    }
}

fn push_time_filters(sql: &mut Statement, column: &str, filters: &[TimeFilter]) {
    for filter in filters {
        let op = match filter.op {
            TimeOp::Gt => " > ",
            TimeOp::Gte => " >= ",
            TimeOp::Lt => " < ",
            TimeOp::Lte => " <= ",
            TimeOp::Eq => " = ",
            TimeOp::Neq => " <> ",
        };
        sql.push(" AND ")
            .push(column)
            .push(op)
            .bind(api_time(filter.at));
    }
}

fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn push_property_filter(sql: &mut Statement, key: &str, value: &str) -> Result<(), ProjectionError> {
    let integer_column = match key {
        "min_ram" => Some("i.min_ram"),
        "min_disk" => Some("i.min_disk"),
        "virtual_size" => Some("i.virtual_size"),
        "size" => Some("i.size"),
        _ => None,
    };
    if let Some(column) = integer_column {
        match value.parse::<u64>() {
            Ok(number) => sql
                .push(" AND ")
                .push(column)
                .push(" = ")
                .bind(sql_int(number)),
            // A non-number can equal no integer column: an empty result, as in Glance. A
            // comparison, since PostgreSQL does not take an integer as a condition.
            Err(_) => sql.push(" AND 1 = 0"),
        };
        return Ok(());
    }
    let range = match key {
        "virtual_size_min" => Some(" >= "),
        "virtual_size_max" => Some(" <= "),
        _ => None,
    };
    if let Some(op) = range {
        let number = value.parse::<u64>().map_err(|_| {
            ProjectionError::BadQuery(
                "Unable to filter on a range with a non-numeric value.".to_owned(),
            )
        })?;
        sql.push(" AND i.virtual_size")
            .push(op)
            .bind(sql_int(number));
        return Ok(());
    }
    if matches!(key, "os_hash_value" | "os_hash_algo") {
        sql.push(" AND i.")
            .push(key)
            .push(" = ")
            .bind(value.to_owned());
        return Ok(());
    }
    sql.push(" AND EXISTS (SELECT 1 FROM proj_image_properties p WHERE p.image_id = i.image_id AND p.key = ")
        .bind(key.to_owned())
        .push(" AND p.value = ")
        .bind(value.to_owned())
        .push(")");
    Ok(())
}

/// Appends `AND (rows strictly after the marker in the sort order)`.
fn push_keyset(sql: &mut Statement, sort: &[(SortKey, SortDir)], marker_values: &[Param]) {
    sql.push(" AND (");
    for (index, (key, dir)) in sort.iter().enumerate() {
        if index > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for (equal_key, _) in &sort[..index] {
            let position = sort.iter().position(|(k, _)| k == equal_key).unwrap_or(0);
            sql.push(sort_expression(*equal_key))
                .push(" = ")
                .bind(marker_values[position].clone())
                .push(" AND ");
        }
        let op = match dir {
            SortDir::Asc => " > ",
            SortDir::Desc => " < ",
        };
        sql.push(sort_expression(*key))
            .push(op)
            .bind(marker_values[index].clone())
            .push(")");
    }
    sql.push(")");
}

/// The SQL condition on `i.visibility` under which a member row grants access, built from
/// [`Profile::membership_visibilities`] (the rule's one source): `<> 'x'` when it is every
/// visibility but one, `= 'x'` for one, `IN (…)` otherwise.
fn membership_rule(profile: &Profile) -> String {
    const ALL: [Visibility; 4] = [
        Visibility::Public,
        Visibility::Private,
        Visibility::Shared,
        Visibility::Community,
    ];
    let granting = profile.membership_visibilities();
    let quoted = |v: &Visibility| format!("'{}'", v.as_str());
    let excluded: Vec<_> = ALL.iter().filter(|v| !granting.contains(v)).collect();
    match (granting, excluded.as_slice()) {
        (_, [only]) => format!("i.visibility <> {}", quoted(only)),
        ([only], _) => format!("i.visibility = {}", quoted(only)),
        _ => format!(
            "i.visibility IN ({})",
            granting.iter().map(quoted).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// True if the caller may see `image_id` at all (any member status): a usable marker.
fn marker_visible<C: Sql + ?Sized>(
    conn: &C,
    profile: &Profile,
    viewer: &Viewer<'_>,
    image_id: &str,
) -> Result<bool, ProjectionError> {
    let membership_rule = membership_rule(profile);
    let sql = format!(
        "SELECT 1 FROM proj_images i WHERE i.image_id = ?1 AND i.region = ?2 AND (?3 = 1 OR i.owner = ?4
           OR i.owner IS NULL OR i.visibility IN ('public', 'community')
           OR ({membership_rule} AND EXISTS (SELECT 1 FROM proj_members m
                 WHERE m.image_id = i.image_id AND m.member_id = ?4)))"
    );
    Ok(conn
        .query_first(
            &sql,
            params![
                image_id,
                viewer.region.as_str(),
                viewer.is_admin,
                viewer.tenant_id
            ],
            |_| Ok::<_, SqlError>(()),
        )
        .and_then(|found| found)
        .sql()?
        .is_some())
}

/// One page of `GET /v2/images` as the API returns it.
pub fn list_images<C: Sql + ?Sized>(
    conn: &C,
    profile: &Profile,
    viewer: &Viewer<'_>,
    query: &ImageListQuery,
    raw_query: &str,
) -> Result<Value, ProjectionError> {
    Ok(image_page(conn, profile, viewer, query, raw_query)?.into_json())
}

/// One page of `GET /v2/images`, typed; `raw_query` is the query string its links repeat.
pub fn image_page<C: Sql + ?Sized>(
    conn: &C,
    profile: &Profile,
    viewer: &Viewer<'_>,
    query: &ImageListQuery,
    raw_query: &str,
) -> Result<ImagePage, ProjectionError> {
    let sql = image_list_sql(conn, profile, viewer, query)?;
    let rows = conn
        .query_all(&sql.text, &sql.values(), |row| image_from_row(row))
        .and_then(|rows| rows)
        .sql()?;
    render_image_page(conn, profile, query, raw_query, rows)
}

/// The plan of the SQL that [`list_images`] runs for this query, one line per plan step
/// (SQLite's `EXPLAIN QUERY PLAN` details, PostgreSQL's `EXPLAIN` lines): for tests and
/// benchmarks that check a page is served by indexes.
pub fn explain_image_list<C: Sql + ?Sized>(
    conn: &C,
    profile: &Profile,
    viewer: &Viewer<'_>,
    query: &ImageListQuery,
) -> Result<Vec<String>, ProjectionError> {
    let sql = image_list_sql(conn, profile, viewer, query)?;
    // Each engine has its own way to show a plan: the only statement of the listing that differs.
    let (explain, detail_column) = match conn.dialect() {
        Dialect::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
        Dialect::Postgres => ("EXPLAIN ", 0),
    };
    conn.query_all(
        &format!("{explain}{}", sql.text),
        &sql.values(),
        |row| row.get::<String>(detail_column),
    )
    .and_then(|lines| lines)
    .sql()
}

/// The page query: candidate branches, each already filtered, ordered and limited.
fn image_list_sql<C: Sql + ?Sized>(
    conn: &C,
    profile: &Profile,
    viewer: &Viewer<'_>,
    query: &ImageListQuery,
) -> Result<Statement, ProjectionError> {
    // The filters, marker, order and limit, applied inside each candidate branch.
    let mut sql = Statement::default();
    sql.push(" AND i.status <> 'killed'");
    match query.os_hidden {
        Some(true) => sql.push(" AND i.os_hidden = 1"),
        Some(false) | None => sql.push(" AND i.os_hidden = 0"),
    };
    if let Some(owner) = &query.owner {
        sql.push(" AND i.owner = ").bind(owner.clone());
    }
    for (column, filter) in [
        ("i.status", &query.status),
        ("i.name", &query.name),
        ("i.image_id", &query.id),
        ("i.container_format", &query.container_format),
        ("i.disk_format", &query.disk_format),
    ] {
        if let Some(filter) = filter {
            push_value_filter(&mut sql, column, filter);
        }
    }
    if let Some(checksum) = &query.checksum {
        sql.push(" AND i.checksum = ").bind(checksum.clone());
    }
    for tag in &query.tags {
        sql.push(" AND EXISTS (SELECT 1 FROM proj_image_tags t WHERE t.image_id = i.image_id AND t.tag = ")
            .bind(tag.clone())
            .push(")");
    }
    if let Some(size_min) = query.size_min {
        sql.push(" AND i.size >= ").bind(sql_int(size_min));
    }
    if let Some(size_max) = query.size_max {
        sql.push(" AND i.size <= ").bind(sql_int(size_max));
    }
    if let Some(protected) = query.protected {
        sql.push(" AND i.protected = ").bind(i64::from(protected));
    }
    push_time_filters(&mut sql, "i.created_at", &query.created_at);
    push_time_filters(&mut sql, "i.updated_at", &query.updated_at);
    for (key, value) in &query.properties {
        push_property_filter(&mut sql, key, value)?;
    }
    if let Some(marker) = &query.marker {
        if !marker_visible(conn, profile, viewer, marker)? {
            return Err(ProjectionError::BadQuery(format!(
                "Invalid marker. Image {marker} could not be found."
            )));
        }
        let columns: Vec<&str> = query
            .sort
            .iter()
            .map(|(key, _)| sort_expression(*key))
            .collect();
        let marker_sql = format!(
            "SELECT {} FROM proj_images i WHERE i.image_id = ?1",
            columns.join(", ")
        );
        let values: Option<Vec<Param>> = conn
            .query_first(&marker_sql, params![marker], |row| {
                query
                    .sort
                    .iter()
                    .enumerate()
                    .map(|(index, (key, _))| {
                        Ok(if sort_is_integer(*key) {
                            Param::from(row.int(index)?)
                        } else {
                            Param::from(row.text(index)?)
                        })
                    })
                    .collect::<Result<Vec<_>, SqlError>>()
            })
            .and_then(|values| values)
            .sql()?;
        // The marker was just found visible, in the same read transaction.
        let values = values.ok_or_else(|| {
            ProjectionError::BadQuery(format!(
                "Invalid marker. Image {marker} could not be found."
            ))
        })?;
        push_keyset(&mut sql, &query.sort, &values);
    }
    let mut order = String::from(" ORDER BY ");
    for (index, (key, dir)) in query.sort.iter().enumerate() {
        if index > 0 {
            order.push_str(", ");
        }
        order.push_str(sort_expression(*key));
        order.push_str(match dir {
            SortDir::Asc => " ASC",
            SortDir::Desc => " DESC",
        });
    }
    // A literal limit: a bound LIMIT makes SQLite re-prepare the statement on every call.
    let order_and_limit = format!("{order} LIMIT {}", query.limit);
    sql.push(&order_and_limit);
    let tail = sql;

    let mut sql = Statement::default();
    sql.push("SELECT ")
        .push(
            &IMAGE_COLUMNS
                .split(", ")
                .map(|c| format!("i.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
        .push(" FROM proj_images i WHERE i.image_id IN (");
    push_candidates(&mut sql, profile, viewer, query, &tail);
    sql.push(")").push(&order_and_limit);
    Ok(sql)
}

fn render_image_page<C: Sql + ?Sized>(
    conn: &C,
    profile: &Profile,
    query: &ImageListQuery,
    raw_query: &str,
    rows: Vec<crate::tables::ImageRow>,
) -> Result<ImagePage, ProjectionError> {
    let page_full = query.limit > 0 && rows.len() == query.limit as usize;
    let ids: Vec<String> = rows.iter().map(|row| row.id().to_owned()).collect();
    let extras = page_extras(conn, &ids)?;
    let images: Vec<ImageView> = decode_rows(rows, extras)?
        .into_iter()
        .map(|image| ImageView::new(profile, image))
        .collect();
    let last = images.last().map(|view| view.image().id);
    let next = last.filter(|_| page_full);
    let first = first_link("/v2/images", raw_query);
    let next_link = next.map(|id| next_link("/v2/images", raw_query, &id.to_string()));
    Ok(ImagePage::new(images, next.map(Marker), first, next_link))
}

/// Decodes a page's rows with their tags and properties into images and renders each as the
/// API shows it (public so the benchmark can time this part alone).
pub fn render_rows(
    profile: &Profile,
    rows: Vec<crate::tables::ImageRow>,
    extras: PageExtras,
) -> Result<Vec<Value>, ProjectionError> {
    Ok(decode_rows(rows, extras)?
        .iter()
        .map(|image| views::image(profile, image))
        .collect())
}

fn decode_rows(
    rows: Vec<crate::tables::ImageRow>,
    (mut tags, mut properties): PageExtras,
) -> Result<Vec<Image>, ProjectionError> {
    let mut images = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id().to_owned();
        images.push(into_image(
            row,
            tags.remove(&id).unwrap_or_default(),
            properties.remove(&id).unwrap_or_default(),
        )?);
    }
    Ok(images)
}

/// A page's tags and custom properties, by image id.
pub type PageExtras = (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeMap<String, String>>,
);

/// Tags and properties of a whole page in two queries (public so the benchmark can time them
/// alone).
pub fn page_extras<C: Sql + ?Sized>(conn: &C, ids: &[String]) -> Result<PageExtras, ProjectionError> {
    let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut properties: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok((tags, properties));
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let values: Vec<imgshare_sql::Value<'_>> = ids.iter().map(Into::into).collect();
    conn.query_each(
        &format!("SELECT image_id, tag FROM proj_image_tags WHERE image_id IN ({placeholders})"),
        &values,
        |row| {
            tags.entry(row.get(0)?)
                .or_default()
                .insert(row.get(1)?);
            Ok::<_, SqlError>(Flow::Continue)
        },
    )
    .and_then(|visited| visited)
    .sql()?;
    conn.query_each(
        &format!(
            "SELECT image_id, key, value FROM proj_image_properties WHERE image_id IN ({placeholders})"
        ),
        &values,
        |row| {
            properties
                .entry(row.get(0)?)
                .or_default()
                .insert(row.get(1)?, row.get(2)?);
            Ok::<_, SqlError>(Flow::Continue)
        },
    )
    .and_then(|visited| visited)
    .sql()?;
    Ok((tags, properties))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_membership_condition_is_built_from_the_profile() {
        assert_eq!(
            membership_rule(&Profile::rackspace()),
            "i.visibility <> 'public'"
        );
        assert_eq!(
            membership_rule(&Profile::glance()),
            "i.visibility = 'shared'"
        );
    }
}
