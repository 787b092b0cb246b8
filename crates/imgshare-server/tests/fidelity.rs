//! Rackspace behaviours a user of Cloud Images notices, over HTTP: the provider's public base
//! images (listed for everyone, never shared), the `visibility` list filter (`public`,
//! `private`, `shared`; shared images still show `private`), and the provider's properties that
//! tenants cannot change.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The shared set-up serves several test binaries; this one needs only part of it.
#[allow(dead_code)]
mod common;

use std::sync::Arc;

use axum::http::{header, Method};
use axum::Router;
use common::{
    app_state, call, context, identity, register_snapshot, request, CONSUMER, PATCH_V21, PRODUCER,
    STRANGER,
};
use imgshare_core::{Actor, Command, ImageActivated, ImageCommand, ImageOrigin, NewImage, Region};
use imgshare_server::{router, TokenStore};
use imgshare_store::Engine;
use serde_json::{json, Value};
use uuid::Uuid;

const SAVED: Uuid = Uuid::from_u128(0x5a7e_d000);
const BASE: Uuid = Uuid::from_u128(0xba5e_0001);

/// A DFW endpoint with the producer's saved image and one provider base image.
fn api() -> (Router, tempfile::TempDir) {
    let engine = Arc::new(Engine::in_memory().unwrap());
    register_snapshot(&engine, SAVED, "saved", &[]);
    let base = NewImage {
        name: Some("Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)".to_owned()),
        container_format: Some("ovf".to_owned()),
        disk_format: Some("vhd".to_owned()),
        properties: [
            ("os_type".to_owned(), "linux".to_owned()),
            ("com.rackspace__1__options".to_owned(), "0".to_owned()),
        ]
        .into(),
        data: Some(ImageActivated {
            size: 1024,
            checksum: "0123456789abcdef0123456789abcdef".to_owned(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }),
        ..NewImage::default()
    };
    let command = ImageCommand::Register {
        origin: ImageOrigin::Base,
        image: base,
    };
    let provider = context(Actor::operator("provider"));
    assert_eq!(provider.region, Region::parse("DFW").unwrap());
    engine
        .execute(
            &provider,
            Command::Image {
                image_id: BASE,
                command,
            },
        )
        .unwrap();
    let mut tokens = TokenStore::new();
    for tenant in [PRODUCER, CONSUMER, STRANGER] {
        tokens.insert(format!("tok-{tenant}"), identity(tenant));
    }
    let data_dir = tempfile::tempdir().unwrap();
    let state = app_state(engine, tokens, data_dir.path());
    (router(state), data_dir)
}

async fn ask(
    app: &Router,
    method: Method,
    uri: &str,
    tenant: &str,
    body: Option<(&str, Value)>,
) -> (u16, Value) {
    let mut builder = request(method, uri).header("x-auth-token", format!("tok-{tenant}"));
    let mut bytes = Vec::new();
    if let Some((content_type, value)) = body {
        builder = builder.header(header::CONTENT_TYPE, content_type);
        bytes = value.to_string().into_bytes();
    }
    let (status, _, reply) = call(app, builder, bytes).await;
    let value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
    (status.as_u16(), value)
}

fn ids(page: &Value) -> Vec<String> {
    let mut ids: Vec<String> = page["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn message(reply: &Value) -> &str {
    reply
        .as_object()
        .and_then(|object| object.values().next())
        .and_then(|inner| inner["message"].as_str())
        .unwrap_or_default()
}

#[tokio::test]
async fn base_images_are_listed_for_every_account_and_cannot_be_shared() {
    let (app, _data) = api();
    for tenant in [PRODUCER, CONSUMER, STRANGER] {
        let (status, page) = ask(&app, Method::GET, "/v2/images", tenant, None).await;
        assert_eq!(status, 200);
        assert!(ids(&page).contains(&BASE.to_string()), "{tenant}: {page}");
        let (status, page) = ask(
            &app,
            Method::GET,
            "/v2/images?visibility=public",
            tenant,
            None,
        )
        .await;
        assert_eq!((status, ids(&page)), (200, vec![BASE.to_string()]));
    }
    let (status, image) = ask(
        &app,
        Method::GET,
        &format!("/v2/images/{BASE}"),
        CONSUMER,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(image["visibility"], "public");
    assert_eq!(image["image_type"], "base");
    assert!(image.get("owner").is_none_or(Value::is_null), "{image}");

    let members = format!("/v2/images/{BASE}/members");
    let share = json!({"member": CONSUMER});
    let (status, reply) = ask(
        &app,
        Method::POST,
        &members,
        PRODUCER,
        Some(("application/json", share)),
    )
    .await;
    assert_eq!(
        (status, message(&reply)),
        (403, "Public images do not have members.")
    );
    // Icehouse refuses the member repository of a public image as a whole, listing included.
    let (status, reply) = ask(&app, Method::GET, &members, CONSUMER, None).await;
    assert_eq!(
        (status, message(&reply)),
        (403, "Public images do not have members.")
    );

    // A tenant can neither delete, change nor tag the provider's image.
    let uri = format!("/v2/images/{BASE}");
    let (status, _) = ask(&app, Method::DELETE, &uri, PRODUCER, None).await;
    assert_eq!(status, 403);
    let patch = json!([{"op": "replace", "path": "/name", "value": "mine"}]);
    let (status, _) = ask(
        &app,
        Method::PATCH,
        &uri,
        PRODUCER,
        Some((PATCH_V21, patch)),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_visibility_filter_takes_public_private_and_shared() {
    let (app, _data) = api();
    let share = json!({"member": CONSUMER});
    let members = format!("/v2/images/{SAVED}/members");
    let (status, _) = ask(
        &app,
        Method::POST,
        &members,
        PRODUCER,
        Some(("application/json", share)),
    )
    .await;
    assert_eq!(status, 200);
    let list = |tenant: &'static str, query: &'static str| {
        let app = app.clone();
        async move {
            let (status, page) = ask(
                &app,
                Method::GET,
                &format!("/v2/images?{query}"),
                tenant,
                None,
            )
            .await;
            assert_eq!(status, 200, "{tenant} {query}: {page}");
            ids(&page)
        }
    };
    let saved = vec![SAVED.to_string()];
    // `shared` lists images shared with the caller (here pending), never the caller's own.
    assert_eq!(
        list(CONSUMER, "visibility=shared&member_status=pending").await,
        saved
    );
    assert_eq!(
        list(CONSUMER, "visibility=shared").await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(PRODUCER, "visibility=shared&member_status=all").await,
        Vec::<String>::new()
    );
    assert_eq!(list(PRODUCER, "visibility=private").await, saved);
    assert_eq!(
        list(CONSUMER, "visibility=private").await,
        Vec::<String>::new()
    );
    // The image itself still says `private`: the schema has no `shared`.
    let (_, image) = ask(
        &app,
        Method::GET,
        &format!("/v2/images/{SAVED}"),
        CONSUMER,
        None,
    )
    .await;
    assert_eq!(image["visibility"], "private");
    for bad in ["community", "all", "everyone"] {
        let (status, _) = ask(
            &app,
            Method::GET,
            &format!("/v2/images?visibility={bad}"),
            CONSUMER,
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn the_providers_properties_are_read_only_for_tenants() {
    let (app, _data) = api();
    let uri = format!("/v2/images/{SAVED}");
    let refused = [
        ("replace", "instance_uuid", json!("other-server")),
        ("remove", "instance_uuid", Value::Null),
        ("add", "base_image_ref", json!("x")),
        ("add", "instance_type_flavorid", json!("performance1-1")),
        ("replace", "image_type", json!("base")),
        ("add", "org.openstack__1__os_distro", json!("com.ubuntu")),
        ("add", "com.rackspace__1__options", json!("0")),
        ("replace", "user_id", json!("someone")),
    ];
    for (op, key, value) in refused {
        let mut change = json!({"op": op, "path": format!("/{key}")});
        if !value.is_null() {
            change["value"] = value;
        }
        let (status, reply) = ask(
            &app,
            Method::PATCH,
            &uri,
            PRODUCER,
            Some((PATCH_V21, json!([change]))),
        )
        .await;
        assert_eq!(
            (status, message(&reply)),
            (
                403,
                format!("You are not permitted to modify '{key}' on this image.").as_str()
            ),
            "{op} {key}"
        );
    }
    let (_, image) = ask(&app, Method::GET, &uri, PRODUCER, None).await;
    assert_eq!(image["instance_uuid"], "srv-1");
    // What Rackspace lets tenants set stays writable.
    let allowed = json!([
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/vm_mode", "value": "hvm"},
        {"op": "add", "path": "/os_distro", "value": "ubuntu"},
        {"op": "add", "path": "/xenapi_use_agent", "value": "False"}
    ]);
    let (status, image) = ask(
        &app,
        Method::PATCH,
        &uri,
        PRODUCER,
        Some((PATCH_V21, allowed)),
    )
    .await;
    assert_eq!(status, 200, "{image}");
    assert_eq!(image["vm_mode"], "hvm");
}
