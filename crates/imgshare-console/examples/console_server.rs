//! A throwaway server for the browser test (`tests/console/run.sh`): the API of two regions on
//! one database, the built-in identity with fixed demo users, and the console at `/console`.
//!
//! The API's auth layer still reads a static tokens file, so this example puts a small bridge in
//! front of each region's API: a token the built-in identity issued is validated there and
//! swapped for a per-user internal token the API knows. Once `serve` validates built-in tokens
//! itself, the bridge goes and `serve` mounts the console the same way.
//!
//! Import and export tasks run against `DIR/objects/<region>/<account>/<container>/<object>`.
//!
//! Usage: `console_server --dir DIR [--listen 127.0.0.1:0] [--regions DFW,ORD]`; prints
//! `listening on http://ADDR` when ready.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use chrono::Utc;
use clap::Parser;
use imgshare_console::{BuiltinAuthenticator, ConsoleConfig, RegionApi};
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, Region,
};
use imgshare_identity::{BuiltinIdentity, BuiltinOptions, HashStrength, UsersFile};
use imgshare_server::{AppState, Identity, TokenStore};
use imgshare_store::{Engine, EngineOptions, FsImageDataStore, TaskEnvironment};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Where the database and the users file go.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The regions, first is the default.
    #[arg(long, default_value = "DFW,ORD")]
    regions: String,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: i64,
}

/// (user, account, roles, password): the accounts of the article's story.
const USERS: [(&str, &str, &str, &str); 4] = [
    ("producer", "111111", "cloudImages:admin", "producer-pass"),
    (
        "observer",
        "111111",
        "cloudImages:observer",
        "observer-pass",
    ),
    ("consumer", "222222", "cloudImages:admin", "consumer-pass"),
    ("creator", "222222", "cloudImages:creator", "creator-pass"),
];

#[derive(Clone)]
struct Bridge {
    identity: Arc<BuiltinIdentity>,
    internal: Arc<HashMap<String, String>>,
}

async fn bridge(State(bridge): State<Bridge>, mut request: Request, next: Next) -> Response {
    let internal = request
        .headers()
        .get("x-auth-token")
        .and_then(|token| token.to_str().ok())
        .and_then(|token| bridge.identity.identify(token, Utc::now()).ok())
        .and_then(|identity| bridge.internal.get(&identity.user_name).cloned());
    match internal.and_then(|token| HeaderValue::from_str(&token).ok()) {
        Some(value) => {
            request.headers_mut().insert("x-auth-token", value);
        }
        // An unknown or expired token must not pass as an internal one.
        None => {
            request.headers_mut().remove("x-auth-token");
        }
    }
    next.run(request).await
}

/// Registers an active image of `owner` as a server snapshot would (the Rackspace API has no
/// image create for tenants): test data, written before any request is served.
fn seed_image(
    engine: &Engine,
    region: &Region,
    owner: &str,
    name: &str,
    properties: &[(&str, &str)],
) -> anyhow::Result<()> {
    let ctx = Context::new(
        Actor::tenant(owner, "seed", &["cloudImages:admin"]),
        region.clone(),
        Utc::now(),
    );
    let image = NewImage {
        name: Some(name.into()),
        container_format: Some("ovf".into()),
        disk_format: Some("vhd".into()),
        properties: properties
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        data: Some(ImageActivated {
            size: 647_449_489,
            checksum: "acd9be13a17af33ec8f66ac5b1afc44a".into(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }),
        ..NewImage::default()
    };
    let origin = ImageOrigin::Snapshot {
        server_id: Uuid::new_v4().to_string(),
    };
    engine.execute(
        &ctx,
        Command::Image {
            image_id: Uuid::new_v4(),
            command: ImageCommand::Register { origin, image },
        },
    )?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let mut users = UsersFile::default();
    let mut internal = HashMap::new();
    let mut tokens = TokenStore::new();
    for (name, account, role, password) in USERS {
        users.add_user(
            name,
            account,
            vec![role.to_owned()],
            None,
            None,
            Some(password),
            HashStrength::Fast,
        )?;
        let token = format!("internal-{}", imgshare_identity::generate_token()?);
        let user_id = users.user(name).context("user just added")?.id.clone();
        tokens.insert(
            token.clone(),
            Identity {
                tenant_id: account.to_owned(),
                user_id,
                roles: vec![role.to_owned()],
            },
        );
        internal.insert(name.to_owned(), token);
    }
    let options = BuiltinOptions {
        token_lifetime: chrono::Duration::seconds(args.token_lifetime),
        ..BuiltinOptions::default()
    };
    let identity = Arc::new(BuiltinIdentity::new(users, options)?);
    let bridge = Bridge {
        identity: Arc::clone(&identity),
        internal: Arc::new(internal.clone()),
    };
    let engine = Arc::new(Engine::open(
        &args.dir.join("console.db"),
        EngineOptions::default(),
    )?);
    let tokens = Arc::new(tokens);
    // Import and export: objects under DIR/objects/<region>/<account>/<container>/<object>,
    // image bytes under DIR/data; one worker runs the tasks of every region.
    let region_list = args
        .regions
        .split(',')
        .map(|name| Region::parse(name.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let tasks = Arc::new(TaskEnvironment::filesystem(
        &args.dir.join("objects"),
        &args.dir.join("data"),
        &region_list,
    ));
    let image_data = Arc::new(FsImageDataStore::new(args.dir.join("data")));
    let wakeup = Arc::new(tokio::sync::Notify::new());
    let mut worker = None;
    let mut regions = Vec::new();
    for region in region_list {
        let name = region.as_str().to_owned();
        let mut state = AppState::new(Arc::clone(&engine), Arc::clone(&tokens), region.clone());
        state.tasks = Some(Arc::clone(&tasks));
        state.image_data = Some(image_data.clone());
        state.task_wakeup = Arc::clone(&wakeup);
        if worker.is_none() {
            worker =
                imgshare_server::spawn_task_worker(&state, imgshare_server::DEFAULT_POLL_INTERVAL);
        }
        let api = imgshare_server::router(state);
        // The producer's images: plain ones, and one whose name and property carry HTML.
        seed_image(
            &engine,
            &region,
            "111111",
            &format!("web-base-{}", name.to_lowercase()),
            &[],
        )?;
        if regions.is_empty() {
            seed_image(
                &engine,
                &region,
                "111111",
                "<script>alert('x')</script>",
                &[("note", "<b>not bold</b>")],
            )?;
        }
        let api = api.layer(middleware::from_fn_with_state(
            bridge.clone(),
            bridge_layer_fn,
        ));
        regions.push(RegionApi { name, api });
    }
    let console = imgshare_console::router(ConsoleConfig::new(
        Arc::new(BuiltinAuthenticator::new(Arc::clone(&identity))),
        regions,
    ))?;
    let app = console.merge(imgshare_identity::router(identity));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn bridge_layer_fn(state: State<Bridge>, request: Request, next: Next) -> Response {
    bridge(state, request, next).await
}
