//! The read-model tables: written from the difference between a stream's state before and
//! after a command, and read back into domain values for rendering.
//!
//! Writing from states rather than from each event means the incremental path and
//! [`crate::tables::write_state`] during a rebuild run the same code, so a rebuild gives the
//! same rows by construction; only rows that changed are touched. One shortcut: a command whose
//! events only add, answer or remove members has its rows written by
//! [`crate::tables::write_member_rows`], for the members its events name, still from the state
//! after the command (so the rows are the same as the diff's), without comparing member maps.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use imgshare_core::{
    Aggregate, Image, ImageStatus, Member, MemberStatus, Region, Task, TaskStatus,
    TaskType, Visibility,
};
use imgshare_sql::{params, Dialect, Flow, Row, RowExt as _, Sql, SqlError};

pub use crate::error::ProjectionError;
use crate::error::SqlResult as _;

/// The checkpoint row's name.
pub const CATALOGUE: &str = "catalogue";

/// Formats a time the way the API shows it: `YYYY-MM-DDThh:mm:ssZ`.
pub fn api_time(time: DateTime<Utc>) -> String {
    // Written by hand: chrono's format-string path costs about a microsecond per call, and a page
    // of 25 images formats and parses 100 of these.
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

fn parse_api_time(id: &str, text: &str) -> Result<DateTime<Utc>, ProjectionError> {
    fast_api_time(text).ok_or_else(|| corrupt(id, format!("bad time '{text}'")))
}

/// Parses exactly `YYYY-MM-DDThh:mm:ssZ`, the only form [`api_time`] writes.
fn fast_api_time(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.len() != 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[19] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> { text.get(range)?.parse().ok() };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )?;
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let naive = date.and_hms_opt(number(11..13)?, number(14..16)?, number(17..19)?)?;
    Some(naive.and_utc())
}

fn corrupt(id: &str, reason: impl Into<String>) -> ProjectionError {
    ProjectionError::Corrupt {
        id: id.to_owned(),
        reason: reason.into(),
    }
}

/// The last log position the tables reflect.
pub fn checkpoint<C: Sql + ?Sized>(conn: &C) -> Result<i64, ProjectionError> {
    Ok(conn
        .query_first(
            "SELECT position FROM projection_checkpoints WHERE name = ?1",
            params![CATALOGUE],
            |row| row.get(0),
        )
        .and_then(|position| position)
        .sql()?
        .unwrap_or(0))
}

/// Records that the tables reflect the log up to `position`.
pub fn set_checkpoint<C: Sql + ?Sized>(conn: &C, position: i64) -> Result<(), ProjectionError> {
    conn.execute(
        "INSERT INTO projection_checkpoints (name, position) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        params![CATALOGUE, position],
    )
    .sql()?;
    Ok(())
}

/// Empties every read model and resets the checkpoint, before a rebuild.
pub fn reset<C: Sql + ?Sized>(conn: &C) -> Result<(), ProjectionError> {
    conn.batch(
        "DELETE FROM proj_images; DELETE FROM proj_image_properties; DELETE FROM proj_image_tags;
         DELETE FROM proj_members; DELETE FROM proj_tasks;",
    ).sql()?;
    set_checkpoint(conn, 0)
}

/// Drops the read models' secondary indexes and returns the statements that recreate them: a
/// rebuild loads the tables first and indexes them once at the end, which is several times
/// faster than maintaining every index row by row. Inside the caller's transaction, so a failed
/// rebuild leaves the indexes as they were.
pub fn drop_secondary_indexes<C: Sql + ?Sized>(conn: &C) -> Result<Vec<String>, ProjectionError> {
    let indexes = conn
        .query_all(secondary_indexes_sql(conn.dialect()), params![], |row| {
            Ok::<_, SqlError>((row.get::<String>(0)?, row.get::<String>(1)?))
        })
        .and_then(|indexes| indexes)
        .sql()?;
    for (name, _) in &indexes {
        conn.batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .sql()?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// The read models' secondary indexes, as (name, statement that creates it): the one place the
/// tables read a catalogue, which is per engine. Primary keys are left out on both (SQLite lists
/// them with a NULL `sql`; PostgreSQL's are the `_pkey` indexes behind a constraint, which
/// `DROP INDEX` refuses).
fn secondary_indexes_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND sql IS NOT NULL AND tbl_name LIKE 'proj\\_%' ESCAPE '\\'"
        }
        Dialect::Postgres => {
            "SELECT x.indexname::text, x.indexdef FROM pg_indexes x \
             WHERE x.schemaname = current_schema() AND x.tablename LIKE 'proj\\_%' ESCAPE '\\' \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = \
               (quote_ident(x.schemaname) || '.' || quote_ident(x.indexname))::regclass)"
        }
    }
}

/// Runs the statements [`drop_secondary_indexes`] returned.
pub fn recreate_indexes<C: Sql + ?Sized>(
    conn: &C,
    statements: &[String],
) -> Result<(), ProjectionError> {
    for sql in statements {
        conn.batch(sql).sql()?;
    }
    Ok(())
}

/// Writes the rows that differ between `before` and `after` (the same stream's states).
pub fn write_diff<C: Sql + ?Sized>(
    conn: &C,
    before: &Aggregate,
    after: &Aggregate,
) -> Result<(), ProjectionError> {
    match (before, after) {
        (Aggregate::Image(before), Aggregate::Image(after)) => {
            write_image_diff(conn, before.as_ref(), after.as_ref())
        }
        (Aggregate::Task(_), Aggregate::Task(Some(after))) => write_task(conn, after),
        _ => Ok(()),
    }
}

/// Writes a stream's whole state as if it were new (rebuilds).
pub fn write_state<C: Sql + ?Sized>(conn: &C, state: &Aggregate) -> Result<(), ProjectionError> {
    write_diff(conn, &empty_like(state), state)
}

fn empty_like(state: &Aggregate) -> Aggregate {
    match state {
        Aggregate::Image(_) => Aggregate::Image(None),
        Aggregate::Task(_) => Aggregate::Task(None),
    }
}

/// Deleted images leave the read models: they no longer exist for anyone.
fn live(image: Option<&Image>) -> Option<&Image> {
    image.filter(|image| image.status != ImageStatus::Deleted)
}

fn write_image_diff<C: Sql + ?Sized>(
    conn: &C,
    before: Option<&Image>,
    after: Option<&Image>,
) -> Result<(), ProjectionError> {
    let (before, after) = (live(before), live(after));
    let Some(after) = after else {
        if let Some(before) = before {
            delete_image(conn, &before.id.to_string())?;
        }
        return Ok(());
    };
    let id = after.id.to_string();
    if before.is_none_or(|before| image_columns_differ(before, after)) {
        upsert_image_row(conn, &id, after)?;
    }
    let empty_properties = BTreeMap::new();
    let empty_tags = BTreeSet::new();
    let empty_members = BTreeMap::new();
    let (old_properties, old_tags, old_members) = match before {
        Some(before) => (&before.properties, &before.tags, &before.members),
        None => (&empty_properties, &empty_tags, &empty_members),
    };
    for (key, value) in &after.properties {
        if old_properties.get(key) != Some(value) {
            conn.execute(
                "INSERT INTO proj_image_properties (image_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (image_id, key) DO UPDATE SET value = excluded.value",
                params![&id, key, value],
            )
            .sql()?;
        }
    }
    for key in old_properties
        .keys()
        .filter(|key| !after.properties.contains_key(*key))
    {
        conn.execute(
            "DELETE FROM proj_image_properties WHERE image_id = ?1 AND key = ?2",
            params![&id, key],
        )
        .sql()?;
    }
    for tag in after.tags.difference(old_tags) {
        conn.execute(
            "INSERT INTO proj_image_tags (image_id, tag) VALUES (?1, ?2)",
            params![&id, tag],
        )
        .sql()?;
    }
    for tag in old_tags.difference(&after.tags) {
        conn.execute(
            "DELETE FROM proj_image_tags WHERE image_id = ?1 AND tag = ?2",
            params![&id, tag],
        )
        .sql()?;
    }
    for (member_id, member) in &after.members {
        if old_members.get(member_id) != Some(member) {
            upsert_member(conn, &id, member_id, member)?;
        }
    }
    for member_id in old_members
        .keys()
        .filter(|key| !after.members.contains_key(*key))
    {
        delete_member_row(conn, &id, member_id)?;
    }
    Ok(())
}

/// Writes the `proj_members` rows of `member_ids` as `image` has them now: a member it has is
/// upserted, one it no longer has is deleted. For a change that touched nothing of the image but
/// these members (the engine checks its events), this writes what [`write_diff`] would, without
/// walking the image's whole member map: its cost follows the members named, not the members
/// the image has.
pub fn write_member_rows<C: Sql + ?Sized>(
    conn: &C,
    image: &Image,
    member_ids: &[&str],
) -> Result<(), ProjectionError> {
    // As in `write_image_diff`: a deleted image has no rows.
    let Some(image) = live(Some(image)) else {
        return Ok(());
    };
    let id = image.id.to_string();
    for member_id in member_ids {
        match image.members.get(*member_id) {
            Some(member) => upsert_member(conn, &id, member_id, member)?,
            None => delete_member_row(conn, &id, member_id)?,
        }
    }
    Ok(())
}

/// The `proj_members` row of `member` as the state has it.
fn upsert_member<C: Sql + ?Sized>(
    conn: &C,
    image_id: &str,
    member_id: &str,
    member: &Member,
) -> Result<(), ProjectionError> {
    upsert_member_row(
        conn,
        image_id,
        member_id,
        member.status.as_str(),
        member.created_at,
        member.updated_at,
    )
}

fn delete_member_row<C: Sql + ?Sized>(
    conn: &C,
    image_id: &str,
    member_id: &str,
) -> Result<(), ProjectionError> {
    conn.execute(
        "DELETE FROM proj_members WHERE image_id = ?1 AND member_id = ?2",
        params![image_id, member_id],
    )
    .sql()?;
    Ok(())
}

/// Writes one `proj_members` row (public so the benchmark's bare ceiling writes exactly what the
/// engine writes).
pub fn upsert_member_row<C: Sql + ?Sized>(
    conn: &C,
    image_id: &str,
    member_id: &str,
    status: &str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    conn.execute(
        "INSERT INTO proj_members (image_id, member_id, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (image_id, member_id) DO UPDATE SET status = excluded.status,
           created_at = excluded.created_at, updated_at = excluded.updated_at",
        params![
            image_id,
            member_id,
            status,
            &api_time(created_at),
            &api_time(updated_at)
        ],
    )
    .sql()?;
    Ok(())
}

fn image_columns_differ(before: &Image, after: &Image) -> bool {
    // Everything but the collections, which have their own tables. Destructured field by field
    // (no clone of a large member map on every command), exhaustively, so a new field cannot
    // be forgotten here.
    let Image {
        id,
        region,
        owner,
        name,
        status,
        visibility,
        protected,
        os_hidden,
        checksum,
        size,
        virtual_size,
        os_hash_algo,
        os_hash_value,
        container_format,
        disk_format,
        min_disk,
        min_ram,
        tags: _,
        properties: _,
        members: _,
        created_at,
        updated_at,
    } = before;
    *id != after.id
        || *region != after.region
        || *owner != after.owner
        || *name != after.name
        || *status != after.status
        || *visibility != after.visibility
        || *protected != after.protected
        || *os_hidden != after.os_hidden
        || *checksum != after.checksum
        || *size != after.size
        || *virtual_size != after.virtual_size
        || *os_hash_algo != after.os_hash_algo
        || *os_hash_value != after.os_hash_value
        || *container_format != after.container_format
        || *disk_format != after.disk_format
        || *min_disk != after.min_disk
        || *min_ram != after.min_ram
        || *created_at != after.created_at
        || *updated_at != after.updated_at
}

fn delete_image<C: Sql + ?Sized>(conn: &C, id: &str) -> Result<(), ProjectionError> {
    for sql in [
        "DELETE FROM proj_images WHERE image_id = ?1",
        "DELETE FROM proj_image_properties WHERE image_id = ?1",
        "DELETE FROM proj_image_tags WHERE image_id = ?1",
        "DELETE FROM proj_members WHERE image_id = ?1",
    ] {
        conn.execute(sql, params![id]).sql()?;
    }
    Ok(())
}

fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn upsert_image_row<C: Sql + ?Sized>(conn: &C, id: &str, image: &Image) -> Result<(), ProjectionError> {
    // `ON CONFLICT … DO UPDATE` of every column rather than SQLite's `INSERT OR REPLACE`, which
    // PostgreSQL lacks: the row ends up the same, and on SQLite it is one update in place instead
    // of a delete and an insert.
    conn.execute(
        "INSERT INTO proj_images (image_id, region, owner, name, status, visibility,
           protected, os_hidden, checksum, size, virtual_size, os_hash_algo, os_hash_value,
           container_format, disk_format, min_disk, min_ram, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (image_id) DO UPDATE SET region = excluded.region, owner = excluded.owner,
           name = excluded.name, status = excluded.status, visibility = excluded.visibility,
           protected = excluded.protected, os_hidden = excluded.os_hidden,
           checksum = excluded.checksum, size = excluded.size,
           virtual_size = excluded.virtual_size, os_hash_algo = excluded.os_hash_algo,
           os_hash_value = excluded.os_hash_value, container_format = excluded.container_format,
           disk_format = excluded.disk_format, min_disk = excluded.min_disk,
           min_ram = excluded.min_ram, created_at = excluded.created_at,
           updated_at = excluded.updated_at",
        params![
            id,
            image.region.as_str(),
            image.owner.as_ref(),
            image.name.as_ref(),
            image.status.as_str(),
            image.visibility.as_str(),
            image.protected,
            image.os_hidden,
            image.checksum.as_ref(),
            image.size.map(to_sql_int),
            image.virtual_size.map(to_sql_int),
            image.os_hash_algo.as_ref(),
            image.os_hash_value.as_ref(),
            image.container_format.as_ref(),
            image.disk_format.as_ref(),
            to_sql_int(image.min_disk),
            to_sql_int(image.min_ram),
            &api_time(image.created_at),
            &api_time(image.updated_at),
        ],
    )
    .sql()?;
    Ok(())
}

fn write_task<C: Sql + ?Sized>(conn: &C, task: &Task) -> Result<(), ProjectionError> {
    let json = |value: &serde_json::Value| value.to_string();
    let result = task.result.as_ref().map(json);
    let expires_at = task.expires_at.map(api_time);
    // Every column on conflict, as `upsert_image_row` (same reason).
    conn.execute(
        "INSERT INTO proj_tasks (task_id, region, owner, user_id, task_type, status,
           input, result, message, created_at, updated_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (task_id) DO UPDATE SET region = excluded.region, owner = excluded.owner,
           user_id = excluded.user_id, task_type = excluded.task_type, status = excluded.status,
           input = excluded.input, result = excluded.result, message = excluded.message,
           created_at = excluded.created_at, updated_at = excluded.updated_at,
           expires_at = excluded.expires_at",
        params![
            &task.id.to_string(),
            task.region.as_str(),
            &task.owner,
            &task.user_id,
            task.task_type.as_str(),
            task.status.as_str(),
            &json(&task.input),
            result.as_ref(),
            task.message.as_ref(),
            &api_time(task.created_at),
            &api_time(task.updated_at),
            expires_at.as_ref(),
        ],
    )
    .sql()?;
    Ok(())
}

/// The columns [`image_from_row`] reads, in order.
pub const IMAGE_COLUMNS: &str =
    "image_id, region, owner, name, status, visibility, protected, os_hidden, \
     checksum, size, virtual_size, os_hash_algo, os_hash_value, container_format, disk_format, \
     min_disk, min_ram, created_at, updated_at";

/// Raw image columns, converted to domain values by [`into_image`].
pub struct ImageRow {
    values: [Cell; 19],
}

/// One column of an [`ImageRow`] as read.
enum Cell {
    Null,
    Integer(i64),
    Text(String),
}

/// The integer columns among [`IMAGE_COLUMNS`] (protected, os_hidden, size, virtual_size,
/// min_disk, min_ram); the others are text. A row is read by the columns' declared types, so
/// every backend returns the same cells.
fn image_column_is_integer(index: usize) -> bool {
    matches!(index, 6 | 7 | 9 | 10 | 15 | 16)
}

impl ImageRow {
    /// The image id column.
    pub fn id(&self) -> &str {
        match &self.values[0] {
            Cell::Text(text) => text,
            _ => "",
        }
    }
}

/// Reads one row selected with [`IMAGE_COLUMNS`].
pub fn image_from_row(row: &(impl Row + ?Sized)) -> Result<ImageRow, SqlError> {
    let mut values: [Cell; 19] = std::array::from_fn(|_| Cell::Null);
    for (index, slot) in values.iter_mut().enumerate() {
        let cell = if image_column_is_integer(index) {
            row.int(index)?.map(Cell::Integer)
        } else {
            row.text(index)?.map(Cell::Text)
        };
        *slot = cell.unwrap_or(Cell::Null);
    }
    Ok(ImageRow { values })
}

fn text(value: &Cell) -> Option<String> {
    match value {
        Cell::Text(text) => Some(text.clone()),
        _ => None,
    }
}

fn integer(value: &Cell) -> Option<u64> {
    match value {
        Cell::Integer(number) => u64::try_from(*number).ok(),
        _ => None,
    }
}

/// Turns a row into an [`Image`] without members; tags and properties are loaded separately.
pub fn into_image(
    row: ImageRow,
    tags: BTreeSet<String>,
    properties: BTreeMap<String, String>,
) -> Result<Image, ProjectionError> {
    let v = &row.values;
    let id_text = text(&v[0]).unwrap_or_default();
    let id =
        uuid::Uuid::parse_str(&id_text).map_err(|error| corrupt(&id_text, error.to_string()))?;
    let required = |index: usize, what: &str| {
        text(&v[index]).ok_or_else(|| corrupt(&id_text, format!("{what} missing")))
    };
    let region = Region::parse(&required(1, "region")?)
        .map_err(|error| corrupt(&id_text, error.to_string()))?;
    let status_text = required(4, "status")?;
    let status = ImageStatus::parse(&status_text)
        .ok_or_else(|| corrupt(&id_text, format!("status {status_text}")))?;
    let visibility_text = required(5, "visibility")?;
    let visibility = Visibility::parse(&visibility_text)
        .ok_or_else(|| corrupt(&id_text, format!("visibility {visibility_text}")))?;
    Ok(Image {
        id,
        region,
        owner: text(&v[2]),
        name: text(&v[3]),
        status,
        visibility,
        protected: integer(&v[6]).unwrap_or(0) != 0,
        os_hidden: integer(&v[7]).unwrap_or(0) != 0,
        checksum: text(&v[8]),
        size: integer(&v[9]),
        virtual_size: integer(&v[10]),
        os_hash_algo: text(&v[11]),
        os_hash_value: text(&v[12]),
        container_format: text(&v[13]),
        disk_format: text(&v[14]),
        min_disk: integer(&v[15]).unwrap_or(0),
        min_ram: integer(&v[16]).unwrap_or(0),
        tags,
        properties,
        members: BTreeMap::new(),
        created_at: parse_api_time(&id_text, &required(17, "created_at")?)?,
        updated_at: parse_api_time(&id_text, &required(18, "updated_at")?)?,
    })
}

/// Loads one image's tags and properties.
pub fn image_extras<C: Sql + ?Sized>(
    conn: &C,
    image_id: &str,
) -> Result<(BTreeSet<String>, BTreeMap<String, String>), ProjectionError> {
    let mut tags = BTreeSet::new();
    conn.query_each(
        "SELECT tag FROM proj_image_tags WHERE image_id = ?1",
        params![image_id],
        |row| {
            tags.insert(row.get::<String>(0)?);
            Ok::<_, SqlError>(Flow::Continue)
        },
    )
    .and_then(|visited| visited)
    .sql()?;
    let mut properties = BTreeMap::new();
    conn.query_each(
        "SELECT key, value FROM proj_image_properties WHERE image_id = ?1",
        params![image_id],
        |row| {
            properties.insert(row.get::<String>(0)?, row.get::<String>(1)?);
            Ok::<_, SqlError>(Flow::Continue)
        },
    )
    .and_then(|visited| visited)
    .sql()?;
    Ok((tags, properties))
}

/// The ids of a region's images in `status` (for work left in that status by a stopped process).
pub fn image_ids_in_status<C: Sql + ?Sized>(
    conn: &C,
    region: &Region,
    status: ImageStatus,
) -> Result<Vec<String>, ProjectionError> {
    conn.query_all(
        "SELECT image_id FROM proj_images WHERE region = ?1 AND status = ?2 ORDER BY created_at",
        params![region.as_str(), status.as_str()],
        |row| row.get::<String>(0),
    )
    .and_then(|ids| ids)
    .sql()
}

/// Reads one image (with its members) from the read models; `None` if absent or deleted.
pub fn read_image<C: Sql + ?Sized>(conn: &C, image_id: &str) -> Result<Option<Image>, ProjectionError> {
    let row = conn
        .query_first(
            &format!("SELECT {IMAGE_COLUMNS} FROM proj_images WHERE image_id = ?1"),
            params![image_id],
            |row| image_from_row(row),
        )
        .and_then(|row| row)
        .sql()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (tags, properties) = image_extras(conn, image_id)?;
    let mut image = into_image(row, tags, properties)?;
    image.members = read_members(conn, image_id)?
        .into_iter()
        .map(|member| (member.member_id.clone(), member))
        .collect();
    Ok(Some(image))
}

/// An image's member rows, by member id.
pub fn read_members<C: Sql + ?Sized>(conn: &C, image_id: &str) -> Result<Vec<Member>, ProjectionError> {
    let rows = conn
        .query_all(
            "SELECT member_id, status, created_at, updated_at FROM proj_members
             WHERE image_id = ?1 ORDER BY member_id",
            params![image_id],
            |row| {
                Ok::<_, SqlError>((
                    row.get::<String>(0)?,
                    row.get::<String>(1)?,
                    row.get::<String>(2)?,
                    row.get::<String>(3)?,
                ))
            },
        )
        .and_then(|rows| rows)
        .sql()?;
    rows.into_iter()
        .map(|(member_id, status, created_at, updated_at)| {
            Ok(Member {
                status: MemberStatus::parse(&status)
                    .ok_or_else(|| corrupt(image_id, format!("member status {status}")))?,
                created_at: parse_api_time(image_id, &created_at)?,
                updated_at: parse_api_time(image_id, &updated_at)?,
                member_id,
            })
        })
        .collect()
}

/// The columns [`task_from_row`] reads, in order.
pub const TASK_COLUMNS: &str =
    "task_id, region, owner, user_id, task_type, status, input, result, message, created_at, updated_at, expires_at";

/// Reads one row selected with [`TASK_COLUMNS`].
pub fn task_from_row(row: &(impl Row + ?Sized)) -> Result<[Option<String>; 12], SqlError> {
    let mut values: [Option<String>; 12] = Default::default();
    for (index, slot) in values.iter_mut().enumerate() {
        *slot = row.text(index)?;
    }
    Ok(values)
}

/// Turns a task row into a [`Task`].
pub fn into_task(values: [Option<String>; 12]) -> Result<Task, ProjectionError> {
    let [id, region, owner, user_id, task_type, status, input, result, message, created_at, updated_at, expires_at] =
        values;
    let id_text = id.unwrap_or_default();
    let need = |value: Option<String>, what: &str| {
        value.ok_or_else(|| corrupt(&id_text, format!("{what} missing")))
    };
    let json = |text: String| {
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|error| corrupt(&id_text, error.to_string()))
    };
    let task_type_text = need(task_type, "type")?;
    let status_text = need(status, "status")?;
    Ok(Task {
        id: uuid::Uuid::parse_str(&id_text)
            .map_err(|error| corrupt(&id_text, error.to_string()))?,
        region: Region::parse(&need(region, "region")?)
            .map_err(|error| corrupt(&id_text, error.to_string()))?,
        owner: need(owner, "owner")?,
        user_id: need(user_id, "user_id")?,
        task_type: TaskType::parse(&task_type_text)
            .ok_or_else(|| corrupt(&id_text, "task type"))?,
        status: TaskStatus::parse(&status_text).ok_or_else(|| corrupt(&id_text, "task status"))?,
        input: json(need(input, "input")?)?,
        result: result.map(json).transpose()?,
        message,
        created_at: parse_api_time(&id_text, &need(created_at, "created_at")?)?,
        updated_at: parse_api_time(&id_text, &need(updated_at, "updated_at")?)?,
        expires_at: expires_at
            .map(|text| parse_api_time(&id_text, &text))
            .transpose()?,
    })
}

/// Reads one task from the read models.
pub fn read_task<C: Sql + ?Sized>(conn: &C, task_id: &str) -> Result<Option<Task>, ProjectionError> {
    let row = conn
        .query_first(
            &format!("SELECT {TASK_COLUMNS} FROM proj_tasks WHERE task_id = ?1"),
            params![task_id],
            |row| task_from_row(row),
        )
        .and_then(|row| row)
        .sql()?;
    row.map(into_task).transpose()
}

/// The read-model tables, in a fixed order.
pub const TABLES: [&str; 6] = [
    "proj_images",
    "proj_image_properties",
    "proj_image_tags",
    "proj_members",
    "proj_tasks",
    "projection_checkpoints",
];

/// Each read-model table's columns in declaration order, and whether each is an integer (the
/// others are text): what [`dump`] reads, by type, from any backend.
fn table_columns(table: &str) -> &'static [(&'static str, bool)] {
    match table {
        "proj_images" => &[
            ("image_id", false),
            ("region", false),
            ("owner", false),
            ("name", false),
            ("status", false),
            ("visibility", false),
            ("protected", true),
            ("os_hidden", true),
            ("checksum", false),
            ("size", true),
            ("virtual_size", true),
            ("os_hash_algo", false),
            ("os_hash_value", false),
            ("container_format", false),
            ("disk_format", false),
            ("min_disk", true),
            ("min_ram", true),
            ("created_at", false),
            ("updated_at", false),
        ],
        "proj_image_properties" => &[("image_id", false), ("key", false), ("value", false)],
        "proj_image_tags" => &[("image_id", false), ("tag", false)],
        "proj_members" => &[
            ("image_id", false),
            ("member_id", false),
            ("status", false),
            ("created_at", false),
            ("updated_at", false),
        ],
        "proj_tasks" => &[
            ("task_id", false),
            ("region", false),
            ("owner", false),
            ("user_id", false),
            ("task_type", false),
            ("status", false),
            ("input", false),
            ("result", false),
            ("message", false),
            ("created_at", false),
            ("updated_at", false),
            ("expires_at", false),
        ],
        "projection_checkpoints" => &[("name", false), ("position", true)],
        _ => &[],
    }
}

/// Every read-model row as text (`table: v1 | v2 | …`), table by table in key order: for
/// comparing two states of the read models, such as a rebuild against the live tables. Values
/// are written `Integer(n)`, `Text("…")` or `Null`, whatever the backend.
pub fn dump<C: Sql + ?Sized>(conn: &C) -> Result<Vec<String>, ProjectionError> {
    let mut rows = Vec::new();
    for table in TABLES {
        let columns = table_columns(table);
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        // The first two columns are NOT NULL key columns: no NULL placement to pin down.
        let sql = format!("SELECT {} FROM {table} ORDER BY 1, 2", names.join(", "));
        conn.query_each(&sql, params![], |row| {
            let mut values = Vec::with_capacity(columns.len());
            for (index, (_, is_integer)) in columns.iter().enumerate() {
                values.push(if *is_integer {
                    row.int(index)?
                        .map_or_else(|| "Null".to_owned(), |n| format!("Integer({n})"))
                } else {
                    row.text(index)?
                        .map_or_else(|| "Null".to_owned(), |t| format!("Text({t:?})"))
                });
            }
            rows.push(format!("{table}: {}", values.join(" | ")));
            Ok::<_, SqlError>(Flow::Continue)
        })
        .and_then(|visited| visited)
        .sql()?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn api_times_round_trip_and_bad_ones_are_refused() {
        let time = Utc.with_ymd_and_hms(2014, 3, 9, 7, 5, 3).unwrap();
        assert_eq!(api_time(time), "2014-03-09T07:05:03Z");
        assert_eq!(fast_api_time("2014-03-09T07:05:03Z"), Some(time));
        for bad in [
            "2014-03-09T07:05:03",
            "2014-13-09T07:05:03Z",
            "2014-03-09 07:05:03Z",
            "x",
            "2014-03-09T07:05:63Z",
        ] {
            assert_eq!(fast_api_time(bad), None, "{bad}");
        }
    }
}
