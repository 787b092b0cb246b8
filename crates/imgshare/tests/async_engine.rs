//! The async facade: concurrent commands from many tokio tasks all land, each call runs off the
//! async workers, and an engine error comes back typed.
#![allow(clippy::unwrap_used)]

use imgshare::chrono::{TimeZone, Utc};
use imgshare::uuid::Uuid;
use imgshare::{
    Actor, AsyncEngine, AsyncError, Command, Context, Engine, ErrorKind, ImageCommand, ImageOrigin,
    ImageQuery, NewImage, Region,
};

fn ctx(tenant: &str) -> Context {
    let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    Context::new(
        Actor::tenant(tenant, "user", &["cloudImages:admin"]),
        Region::parse("DFW").unwrap(),
        now,
    )
}

fn register(name: &str) -> Command {
    let image = NewImage {
        name: Some(name.to_owned()),
        ..NewImage::default()
    };
    Command::Image {
        image_id: Uuid::new_v4(),
        command: ImageCommand::Register {
            origin: ImageOrigin::Snapshot {
                server_id: "server-1".to_owned(),
            },
            image,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_from_many_tasks_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(&dir.path().join("catalogue.db"), Default::default()).unwrap();
    let engine = AsyncEngine::new(engine);
    let mut handles = Vec::new();
    for i in 0..16 {
        let engine = engine.clone();
        handles.push(tokio::spawn(async move {
            engine
                .execute(ctx("100100"), register(&format!("image-{i}")))
                .await
        }));
    }
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let page = engine
        .images(ctx("100100"), ImageQuery::new().limit(100))
        .await
        .unwrap();
    assert_eq!(page.images.len(), 16);
    assert!(engine.verify().await.unwrap().is_ok());
}

#[tokio::test(flavor = "current_thread")]
async fn calls_leave_the_async_thread_and_errors_stay_typed() {
    let engine = AsyncEngine::new(Engine::in_memory().unwrap());
    let caller = std::thread::current().id();
    let worker = engine
        .run(|_| Ok(std::thread::current().id()))
        .await
        .unwrap();
    assert_ne!(caller, worker, "the call ran on the async thread");

    let missing = engine.image(ctx("100100"), Uuid::new_v4()).await;
    match missing {
        Err(AsyncError::Engine(error)) => assert_eq!(error.kind(), ErrorKind::NotFound),
        other => panic!("expected a typed not-found, got {other:?}"),
    }
    let refused = engine
        .images(ctx("100100"), ImageQuery::new().param("limit", "-1"))
        .await;
    match refused {
        Err(AsyncError::Engine(error)) => {
            assert_eq!(error.kind(), ErrorKind::Invalid);
            assert_eq!(error.to_string(), "limit param must be positive");
        }
        other => panic!("expected a refused query, got {other:?}"),
    }
}
