//! The read models' SQL run on a real SQLite database with the store's schema: what must hold
//! on every backend (upserts that keep every column, where images without a value sort). Each
//! case takes any [`Sql`] connection, so another backend runs the same cases.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use imgshare_core::{
    Aggregate, Image, ImageStatus, Profile, Region, Task, TaskStatus, TaskType, Visibility,
};
use imgshare_sql::Sql;
use rusqlite::Connection;
use uuid::Uuid;

use crate::listing::{list_images, Viewer};
use crate::query::parse_image_list_query;
use crate::tables;

fn database() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(include_str!(
        "../../imgshare-store/migrations/0002_projections.sql"
    ))
    .unwrap();
    conn
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn image(number: u128, name: Option<&str>, size: Option<u64>) -> Image {
    Image {
        id: Uuid::from_u128(number),
        region: Region::parse("DFW").unwrap(),
        owner: Some("111".to_owned()),
        name: name.map(str::to_owned),
        status: ImageStatus::Active,
        visibility: Visibility::Private,
        protected: false,
        os_hidden: false,
        checksum: None,
        size,
        virtual_size: None,
        os_hash_algo: None,
        os_hash_value: None,
        container_format: None,
        disk_format: None,
        min_disk: 0,
        min_ram: 0,
        tags: BTreeSet::new(),
        properties: BTreeMap::new(),
        members: BTreeMap::new(),
        created_at: at(i64::try_from(number).unwrap()),
        updated_at: at(i64::try_from(number).unwrap()),
    }
}

fn write(conn: &(impl Sql + ?Sized), before: Option<&Image>, after: &Image) {
    tables::write_diff(
        conn,
        &Aggregate::Image(before.cloned()),
        &Aggregate::Image(Some(after.clone())),
    )
    .unwrap();
}

#[test]
fn an_upsert_replaces_every_column_of_an_image_row() {
    upsert_image_case(&database());
}

fn upsert_image_case(conn: &(impl Sql + ?Sized)) {
    let mut full = image(1, Some("full"), Some(10));
    full.protected = true;
    full.os_hidden = true;
    full.checksum = Some("c".to_owned());
    full.virtual_size = Some(20);
    full.os_hash_algo = Some("sha512".to_owned());
    full.os_hash_value = Some("v".to_owned());
    full.container_format = Some("bare".to_owned());
    full.disk_format = Some("vhd".to_owned());
    full.min_disk = 3;
    full.min_ram = 4;
    full.tags.insert("t".to_owned());
    full.properties.insert("k".to_owned(), "v".to_owned());
    write(conn, None, &full);
    assert_eq!(
        tables::read_image(conn, &full.id.to_string()).unwrap(),
        Some(full.clone())
    );
    // Every column changes, several to NULL: nothing of the old row may survive.
    let mut emptied = image(1, None, None);
    emptied.owner = None;
    emptied.region = Region::parse("ORD").unwrap();
    emptied.status = ImageStatus::Queued;
    emptied.visibility = Visibility::Public;
    emptied.created_at = at(100);
    emptied.updated_at = at(200);
    write(conn, Some(&full), &emptied);
    assert_eq!(
        tables::read_image(conn, &full.id.to_string()).unwrap(),
        Some(emptied.clone())
    );
    let rows: Vec<String> = tables::dump(conn)
        .unwrap()
        .into_iter()
        .filter(|row| row.starts_with("proj_images"))
        .collect();
    assert_eq!(
        rows,
        [format!(
            "proj_images: Text(\"{}\") | Text(\"ORD\") | Null | Null | Text(\"queued\") | \
             Text(\"public\") | Integer(0) | Integer(0) | Null | Null | Null | Null | Null | \
             Null | Null | Integer(0) | Integer(0) | Text(\"2026-01-01T01:40:00Z\") | \
             Text(\"2026-01-01T03:20:00Z\")",
            full.id
        )]
    );
}

#[test]
fn an_upsert_replaces_every_column_of_a_task_row() {
    upsert_task_case(&database());
}

fn upsert_task_case(conn: &(impl Sql + ?Sized)) {
    let first = Task {
        id: Uuid::from_u128(7),
        region: Region::parse("DFW").unwrap(),
        owner: "111".to_owned(),
        user_id: "u".to_owned(),
        task_type: TaskType::parse("import").unwrap(),
        status: TaskStatus::parse("success").unwrap(),
        input: serde_json::json!({"a": 1}),
        result: Some(serde_json::json!({"image_id": "x"})),
        message: Some("done".to_owned()),
        created_at: at(1),
        updated_at: at(2),
        expires_at: Some(at(3)),
    };
    let state = |task: &Task| Aggregate::Task(Some(task.clone()));
    tables::write_state(conn, &state(&first)).unwrap();
    let second = Task {
        region: Region::parse("ORD").unwrap(),
        owner: "222".to_owned(),
        user_id: "v".to_owned(),
        task_type: TaskType::parse("export").unwrap(),
        status: TaskStatus::parse("pending").unwrap(),
        input: serde_json::json!({"b": 2}),
        result: None,
        message: None,
        created_at: at(4),
        updated_at: at(5),
        expires_at: None,
        ..first.clone()
    };
    tables::write_diff(conn, &state(&first), &state(&second)).unwrap();
    assert_eq!(
        tables::read_task(conn, &first.id.to_string()).unwrap(),
        Some(second)
    );
}

/// Every page of `raw` (one image a page, following `next`): the names in page order.
fn walk(conn: &(impl Sql + ?Sized), raw: &str) -> Vec<Option<String>> {
    let profile = Profile::glance();
    let region = Region::parse("DFW").unwrap();
    let viewer = Viewer {
        tenant_id: "111",
        region: &region,
        is_admin: false,
    };
    let mut names = Vec::new();
    let mut query_string = format!("{raw}&limit=1");
    loop {
        let query = parse_image_list_query(&query_string, &profile.query_dialect()).unwrap();
        let page = list_images(conn, &profile, &viewer, &query, &query_string).unwrap();
        let images = page["images"].as_array().unwrap();
        names.extend(
            images
                .iter()
                .map(|image| image["name"].as_str().map(str::to_owned)),
        );
        let Some(next) = page["next"].as_str() else {
            return names;
        };
        let marker = next.split("marker=").nth(1).unwrap();
        query_string = format!("{raw}&limit=1&marker={marker}");
    }
}

#[test]
fn images_without_a_name_or_size_sort_as_empty_and_zero_both_ways_and_across_pages() {
    null_order_case(&database());
}

fn null_order_case(conn: &(impl Sql + ?Sized)) {
    for (number, name, size) in [
        (1, Some("b"), Some(5)),
        (2, None, None),
        (3, Some("a"), Some(9)),
    ] {
        write(conn, None, &image(number, name, size));
    }
    let some = |name: &str| Some(name.to_owned());
    assert_eq!(
        walk(conn, "sort_key=name&sort_dir=asc"),
        [None, some("a"), some("b")]
    );
    assert_eq!(
        walk(conn, "sort_key=name&sort_dir=desc"),
        [some("b"), some("a"), None]
    );
    assert_eq!(
        walk(conn, "sort_key=size&sort_dir=asc"),
        [None, some("b"), some("a")]
    );
    assert_eq!(
        walk(conn, "sort_key=size&sort_dir=desc"),
        [some("a"), some("b"), None]
    );
}
