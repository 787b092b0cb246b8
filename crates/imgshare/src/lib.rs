//! imgshare as a library: an event-sourced image catalogue with the rules of Rackspace Cloud
//! Images 2.0 and OpenStack Glance v2, on SQLite. A backend adds one line to its `Cargo.toml`
//! and finds here everything it needs: the [`Engine`], the commands it runs, typed list queries
//! and views, audits, and the ports image data goes through. `docs/embedding.md` is the guide.
//!
//! ```
//! use imgshare::{Actor, Command, Context, Engine, ImageCommand, ImageOrigin, ImageQuery,
//!                NewImage, Region};
//! use imgshare::uuid::Uuid;
//!
//! let engine = Engine::in_memory()?;
//! let dfw = Region::parse("DFW")?;
//! let owner = Actor::tenant("100100", "alice", &["cloudImages:admin"]);
//! let ctx = Context::new(owner, dfw.clone(), imgshare::chrono::Utc::now());
//! let image_id = Uuid::new_v4();
//! let image = NewImage { name: Some("web".into()), ..NewImage::default() };
//! let origin = ImageOrigin::Snapshot { server_id: "server-1".into() };
//! let command = ImageCommand::Register { origin, image };
//! engine.execute(&ctx, Command::Image { image_id, command })?;
//!
//! let page = engine.images(&ctx, &ImageQuery::new().limit(10))?;
//! assert_eq!(page.images[0].image().id, image_id);
//! assert!(!engine.can_boot("200200", image_id, &dfw)?); // private, not shared
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `tokio` adds `AsyncEngine` (every call on tokio's blocking pool); `http` adds
//! `imgshare::http`, the HTTP API as an axum router to mount under a prefix of one's own.

#![warn(missing_docs)]

#[cfg(feature = "tokio")]
mod async_engine;

#[cfg(feature = "tokio")]
pub use async_engine::{AsyncEngine, AsyncError};

/// Times in [`Context`] and audits are `chrono` values.
pub use chrono;
/// The pure domain: commands, states, the rule sets ([`Profile`]) and their errors.
pub use imgshare_core as core;
/// The engine, its storage and its audits, in full.
pub use imgshare_store as store;
/// Image, task and command ids are `uuid` values.
pub use uuid;

/// The HTTP API (axum): [`http::router`] over an [`http::AppState`].
#[cfg(feature = "http")]
pub use imgshare_server as http;

pub use imgshare_core::{
    Actor, Command, Context, DomainError, ErrorKind, Image, ImageActivated, ImageCommand,
    ImageOrigin, ImageStatus, Member, MemberStatus, NewImage, Profile, ProfileKind, Region, Task,
    TaskCommand, TaskStatus, Visibility,
};
pub use imgshare_store::{
    register_vhd, AccessReason, AccessReport, AccountAccess, Anchor, AnchorMismatch, AsOf,
    BatchItem, DbOptions, Durability, Engine, EngineError, EngineOptions, FsImageDataStore,
    HistoryEntry, ImageDataStore, ImagePage, ImageQuery, ImageView, Marker, MemberList,
    MemberStatusFilter, MemberView, Outcome, QueryError, RegisterError, SortDir, SortKey, TaskList,
    TaskPage, TaskQuery, TaskSortKey, TaskStatusFilter, TaskView, VerifyReport,
};
