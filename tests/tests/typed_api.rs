//! The typed list and view API against the query-string one: a query built with methods is the
//! same query as its string, pages serialize to exactly the HTTP documents, and the `next`
//! markers walk the whole list once.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use imgshare_core::{Command, Context, ImageCommand};
use imgshare_store::{Engine, ImageQuery, Marker, MemberStatusFilter, SortDir, SortKey, TaskQuery};
use imgshare_tests::workload::{admin, image_id, region, register, time_of};

fn ctx(tenant: &str) -> Context {
    Context::new(admin(tenant), region(), time_of(1000))
}

/// An engine with `n` images of tenant `owner`, the even ones shared with `member` (pending).
fn catalogue(n: u64) -> Engine {
    let engine = Engine::in_memory().unwrap();
    for k in 0..n {
        let id = image_id(7, k);
        let ctx = Context::new(admin("owner"), region(), time_of(k));
        engine
            .execute(
                &ctx,
                Command::Image {
                    image_id: id,
                    command: register(&format!("image-{k:02}")),
                },
            )
            .unwrap();
        if k % 2 == 0 {
            let command = ImageCommand::AddMember {
                member_id: "member".to_owned(),
            };
            engine
                .execute(
                    &ctx,
                    Command::Image {
                        image_id: id,
                        command,
                    },
                )
                .unwrap();
        }
    }
    engine
}

#[test]
fn a_built_query_is_its_query_string_and_serializes_to_the_http_document() {
    let engine = catalogue(6);
    let built = ImageQuery::new()
        .member_status(MemberStatusFilter::All)
        .sort(SortKey::Name, SortDir::Asc)
        .limit(2);
    let raw = "member_status=all&sort_key=name&sort_dir=asc&limit=2";
    assert_eq!(built, raw.parse::<ImageQuery>().unwrap());
    assert_eq!(built.as_query_string(), raw);

    let page = engine.images(&ctx("member"), &built).unwrap();
    let names: Vec<_> = page
        .images
        .iter()
        .map(|view| view.image().name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["image-00", "image-02"]);
    assert_eq!(page.next, Some(Marker(image_id(7, 2))));
    let http = engine.list_images(&ctx("member"), raw).unwrap();
    assert_eq!(
        serde_json::to_string(&page).unwrap(),
        serde_json::to_string(&http).unwrap()
    );
    assert_eq!(page.into_json(), http);
}

#[test]
fn next_markers_walk_every_visible_image_once() {
    let engine = catalogue(7);
    let mut seen = BTreeSet::new();
    let mut query = ImageQuery::new().limit(3);
    let mut pages = 0;
    loop {
        let page = engine.images(&ctx("owner"), &query).unwrap();
        pages += 1;
        for view in &page.images {
            assert!(seen.insert(view.image().id), "{} twice", view.image().id);
        }
        match page.next {
            Some(marker) => query = ImageQuery::new().limit(3).after(marker),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(pages, 3);
}

#[test]
fn a_refused_query_has_the_http_message() {
    let engine = catalogue(1);
    let typed = engine
        .images(&ctx("owner"), &ImageQuery::new().param("limit", "x"))
        .unwrap_err();
    let http = engine.list_images(&ctx("owner"), "limit=x").unwrap_err();
    assert_eq!(typed.to_string(), http.to_string());
    assert_eq!(typed.kind(), http.kind());
    assert_eq!(typed.to_string(), "limit param must be an integer");

    let too_many = vec!["a=b"; 101].join("&");
    let parsed = too_many.parse::<ImageQuery>().unwrap_err();
    let http = engine.list_images(&ctx("owner"), &too_many).unwrap_err();
    assert_eq!(parsed.to_string(), http.to_string());
    let tasks = TaskQuery::new().param("sort_dir", "sideways");
    let typed = engine.tasks(&ctx("owner"), &tasks).unwrap_err();
    assert_eq!(typed.to_string(), "Invalid sort direction: sideways");
}

#[test]
fn members_and_views_keep_the_state_beside_the_document() {
    let engine = catalogue(1);
    let id = image_id(7, 0);
    let view = engine.image(&ctx("owner"), id).unwrap();
    assert_eq!(view.image().id, id);
    assert_eq!(view.json(), &engine.image_view(&ctx("owner"), id).unwrap());
    let members = engine.members(&ctx("owner"), id).unwrap();
    assert_eq!(members.members.len(), 1);
    assert_eq!(members.members[0].member().member_id, "member");
    assert_eq!(
        serde_json::to_value(&members).unwrap(),
        engine.members_view(&ctx("owner"), id).unwrap()
    );
    let tasks = engine.tasks(&ctx("owner"), &TaskQuery::new()).unwrap();
    assert!(tasks.tasks.is_empty());
    assert_eq!(tasks.next, None);
}
