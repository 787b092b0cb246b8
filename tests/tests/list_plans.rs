//! Every image-list page is served by indexes: no branch of its query scans a table.
//! (docs/ARCHITECTURE.md; the figures are in docs/PERFORMANCE.md.)

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use imgshare_core::{
    Actor, Command, Context, ImageCommand, ImageOrigin, NewImage, Profile, Region,
};
use imgshare_projection::query::{parse_image_list_query, QueryDialect};
use imgshare_projection::{explain_image_list, Viewer};
use imgshare_store::Engine;
use uuid::Uuid;

fn ctx(actor: Actor) -> Context {
    Context::new(
        actor,
        Region::parse("DFW").unwrap(),
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    )
}

/// A small catalogue, so the plans are those of a real database (the planner sees the indexes).
fn catalogue(profile: Profile, roles: &[&str]) -> (Engine, Uuid) {
    let engine = Engine::in_memory_with(profile).unwrap();
    let image_id = Uuid::from_u128(1);
    let image = NewImage::snapshot_fixture("web", 1);
    let owner = ctx(Actor::tenant("111", "u", roles));
    let origin = ImageOrigin::Snapshot {
        server_id: "srv".into(),
    };
    engine
        .execute(
            &owner,
            Command::Image {
                image_id,
                command: ImageCommand::Register { origin, image },
            },
        )
        .unwrap();
    (engine, image_id)
}

fn assert_indexed(
    engine: &Engine,
    tenant: &str,
    is_admin: bool,
    dialect: &QueryDialect,
    raw: &str,
) {
    let query = parse_image_list_query(raw, dialect).unwrap();
    let region = Region::parse("DFW").unwrap();
    let viewer = Viewer {
        tenant_id: tenant,
        region: &region,
        is_admin,
    };
    let plan = engine
        .read(|conn| Ok(explain_image_list(conn, engine.profile(), &viewer, &query)?))
        .unwrap();
    assert!(!plan.is_empty());
    for line in &plan {
        // `SCAN candidates` (a branch of the union, named for PostgreSQL's sake; `SCAN
        // (subquery-n)` unnamed) reads a branch's already limited rows; any other SCAN reads a
        // table or a whole index.
        let full_scan =
            line.starts_with("SCAN ") && !line.starts_with("SCAN (") && line != "SCAN candidates";
        assert!(
            !full_scan,
            "query {raw:?} (admin: {is_admin}) scans: {line}\nplan: {plan:#?}"
        );
        // The shares branch reads the caller's shares and then their images. Probing each image
        // of the region for a share instead (`m` by its primary key) reads every image in page
        // order when the caller has few shares: 0.7 s at 100k images.
        assert!(
            !line.starts_with("SEARCH m USING PRIMARY KEY"),
            "query {raw:?} (admin: {is_admin}) probes images for shares: {line}\nplan: {plan:#?}"
        );
    }
}

const RACKSPACE_QUERIES: &[&str] = &[
    "",
    "limit=25",
    "member_status=all",
    "member_status=pending&visibility=shared",
    "visibility=public",
    "visibility=private",
    "sort=name:asc",
    "sort_key=size&sort_dir=asc",
    "tag=web&tag=db",
    "name=web&status=active",
    "image_type=snapshot",
    "created_at=gte:2025-01-01T00:00:00Z",
    "size_min=1&size_max=10&protected=false",
];

#[test]
fn rackspace_list_queries_use_indexes() {
    let (engine, image_id) = catalogue(Profile::rackspace(), &["cloudImages:admin"]);
    for raw in RACKSPACE_QUERIES {
        assert_indexed(&engine, "222", false, &QueryDialect::RACKSPACE, raw);
    }
    assert_indexed(
        &engine,
        "111",
        false,
        &QueryDialect::RACKSPACE,
        &format!("marker={image_id}"),
    );
}

#[test]
fn glance_list_queries_use_indexes_for_tenants_and_admins() {
    let (engine, image_id) = catalogue(Profile::glance(), &["member"]);
    let queries = [
        "",
        "visibility=all",
        "visibility=community",
        "visibility=shared",
        "os_hidden=true",
    ];
    for raw in queries {
        assert_indexed(&engine, "222", false, &QueryDialect::GLANCE, raw);
        assert_indexed(&engine, "999", true, &QueryDialect::GLANCE, raw);
    }
    assert_indexed(
        &engine,
        "111",
        true,
        &QueryDialect::GLANCE,
        &format!("marker={image_id}"),
    );
}
