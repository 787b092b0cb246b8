//! `imgshare serve`: the HTTP API over a database file, one listener per region.
//!
//! Identity (see the `identity` module and docs/identity.md): the built-in Rackspace identity
//! over a users file (`--users`), Keystone, or a static tokens file (`--tokens`). With `--demo`
//! (a try-out) and no `--tokens`, the built-in identity runs over `imgshare-users.toml` next to
//! the database, with a producer (account 111111) and a consumer (222222), both
//! `cloudImages:admin` (`member` on the Glance profile), whose new API keys are printed with the
//! quickstart's `curl` authentication line. `--demo` also registers the producer's saved image
//! `my-saved-image-name` when the log is empty, and prints tokens, the shell variables and a
//! `curl` line for the seed walkthrough. Outside `--demo` no secret is printed.
//! With `--demo` the provider's base images are also published in each region that has no public
//! image yet (real bytes: small generated VHDs, like the saved image's).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use imgshare_core::{Actor, Context, ImageOrigin, NewImage, Region};
use imgshare_server::{AppState, ServeConfig};
use imgshare_store::{
    register_vhd, Engine, FsImageDataStore, FsObjectStore, ImageDataStore, TaskEnvironment,
};
use serde_json::Value;
use uuid::Uuid;

use crate::console::ConsoleState;
use crate::identity::{IdentityBanner, IdentitySetup, RegionListener};
use crate::images;

/// The producer account of the seed walkthrough.
pub(crate) const PRODUCER: &str = "111111";
/// The consumer account of the seed walkthrough.
pub(crate) const CONSUMER: &str = "222222";
/// The name of the producer's saved image registered in an empty database.
const DEMO_IMAGE_NAME: &str = "my-saved-image-name";

/// What `serve` was asked to do.
pub(crate) struct ServeOptions {
    /// One bound listener per region; the first region is the default one.
    pub(crate) listeners: Vec<RegionListener>,
    pub(crate) identity: IdentitySetup,
    /// Demo accounts and image, and secrets printed.
    pub(crate) demo: bool,
    /// Resolved by [`data_dir`] before the database is opened.
    pub(crate) data_dir: PathBuf,
    /// Resolved by [`objects_dir`] before the database is opened; `None` when every region
    /// keeps its objects in Swift.
    pub(crate) objects_dir: Option<PathBuf>,
    pub(crate) swift: crate::swift_args::SwiftArgs,
    /// `GET /metrics` on its own address instead of the API's.
    pub(crate) metrics_listen: Option<String>,
    /// Checked by [`parse_public_endpoint`]: no trailing slash.
    pub(crate) public_endpoint: Option<String>,
    pub(crate) shutdown_timeout: Duration,
    /// Checked by [`parse_interval`]: never zero.
    pub(crate) task_poll_interval: Duration,
    /// Serve the Control Panel at `/console` (unless `--no-console`).
    pub(crate) console: bool,
}

/// `--public-endpoint`: an absolute `http` or `https` URL with a host, optionally a path
/// prefix, no query or fragment; returned without a trailing slash (links append `/v2/...`).
pub(crate) fn parse_public_endpoint(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!("not a public endpoint URL: {text:?} ({why}; e.g. https://images.example.com)")
    };
    let uri: axum::http::Uri = text.trim().parse().map_err(|_| bad("does not parse"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("the scheme must be http or https")),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => {}
        _ => return Err(bad("it has no host")),
    }
    if uri.query().is_some() || text.contains('#') {
        return Err(bad("it may not have a query or fragment"));
    }
    if uri
        .authority()
        .is_some_and(|authority| authority.as_str().contains('@'))
    {
        return Err(bad("it may not carry credentials"));
    }
    Ok(text.trim().trim_end_matches('/').to_owned())
}

/// `--shutdown-timeout`: whole seconds, optionally with an `s` or `m` suffix.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let (digits, unit) = if let Some(minutes) = trimmed.strip_suffix('m') {
        (minutes, 60)
    } else {
        (trimmed.strip_suffix('s').unwrap_or(trimmed), 1)
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(unit))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("not a duration: {text:?} (e.g. 30, 30s, 2m)"))
}

/// `--task-poll-interval`: a duration as [`parse_timeout`] reads it, or milliseconds with an
/// `ms` suffix; zero is refused (the worker would never rest).
pub(crate) fn parse_interval(text: &str) -> Result<Duration, String> {
    let bad = || format!("not an interval: {text:?} (e.g. 500ms, 2s, 1m; more than zero)");
    let interval = match text.trim().strip_suffix("ms") {
        Some(millis) => millis
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| bad())?,
        None => parse_timeout(text).map_err(|_| bad())?,
    };
    if interval.is_zero() {
        return Err(bad());
    }
    Ok(interval)
}

/// The given directory, or `<db file name><suffix>` next to the database file; a PostgreSQL
/// URL has no "next to", so there the directory must be given (`option` names the flag).
fn beside_db(
    db: &Path,
    given: Option<PathBuf>,
    suffix: &str,
    option: &str,
) -> anyhow::Result<PathBuf> {
    if let Some(given) = given {
        return Ok(given);
    }
    if crate::postgres_url(db).is_some() {
        anyhow::bail!(
            "{option} is required with a PostgreSQL database (its default, `<db file>{suffix}` \
             next to a SQLite file, has no meaning for a URL); nothing was started"
        );
    }
    let mut name = db
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_else(|| "imgshare.db".into());
    name.push(suffix);
    Ok(db.with_file_name(name))
}

/// The image data directory: the given one, or `<db file name>.data` next to a database file.
pub(crate) fn data_dir(db: &Path, given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    beside_db(db, given, ".data", "--data-dir")
}

/// The object store directory (one subdirectory per region): the given one, or
/// `<db file name>.objects` next to a database file.
pub(crate) fn objects_dir(db: &Path, given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    beside_db(db, given, ".objects", "--objects-dir")
}

/// The first token of a JSON tokens file that belongs to `tenant` (for printing).
fn token_of(path: &Path, tenant: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let file: Value = serde_json::from_str(&text).ok()?;
    file.get("tokens")?
        .as_object()?
        .iter()
        .find(|(_, identity)| identity.get("tenant_id").and_then(Value::as_str) == Some(tenant))
        .map(|(token, _)| token.clone())
}

/// Registers the producer's saved image of seed 000 (a snapshot, active, ovf/vhd) with real
/// bytes, a small generated VHD, so that its download and export work. On the Glance profile it
/// is `shared`, since only shared images have members there.
pub(crate) fn seed_demo_image(
    engine: &Engine,
    store: &dyn ImageDataStore,
    region: &Region,
    image_id: Uuid,
) -> anyhow::Result<Uuid> {
    let profile = engine.profile();
    let ctx = Context::new(
        Actor::tenant(PRODUCER, "producer", &[profile.full_access_role()]),
        region.clone(),
        Utc::now(),
    );
    let image = NewImage {
        name: Some(DEMO_IMAGE_NAME.into()),
        min_disk: 20,
        min_ram: 512,
        properties: [("com.rackspace__1__options".to_owned(), "0".to_owned())].into(),
        visibility: profile.visibility_for_members(),
        ..NewImage::default()
    };
    let origin = ImageOrigin::Snapshot {
        server_id: Uuid::new_v4().to_string(),
    };
    let bytes = images::fixed_vhd(&demo_contents(DEMO_IMAGE_NAME));
    register_vhd(
        engine,
        store,
        &ctx,
        image_id,
        origin,
        image,
        &mut Cursor::new(bytes),
    )?;
    Ok(image_id)
}

/// 64 KiB of recognisable text: the disk contents of a demo image.
fn demo_contents(name: &str) -> Vec<u8> {
    format!("imgshare demo disk: {name}\n")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(64 * 1024)
        .collect()
}

/// A provider base image of the demo, in the shape of seed 002's Ubuntu image.
struct BaseImage {
    name: &'static str,
    os_type: &'static str,
    /// `org.openstack__1__os_distro`, `os_distro` and `org.openstack__1__os_version`.
    distro: (&'static str, &'static str, &'static str),
    /// `com.rackspace__1__options`: "0" exportable, else licensed (Windows, Red Hat).
    options: &'static str,
    min_disk: u64,
    min_ram: u64,
}

const BASE_IMAGES: [BaseImage; 3] = [
    BaseImage {
        name: "Ubuntu 12.04 LTS (Precise Pangolin) (PVHVM)",
        os_type: "linux",
        distro: ("com.ubuntu", "ubuntu", "12.04"),
        options: "0",
        min_disk: 20,
        min_ram: 512,
    },
    BaseImage {
        name: "CentOS 6.5 (PVHVM)",
        os_type: "linux",
        distro: ("org.centos", "centos", "6.5"),
        options: "0",
        min_disk: 20,
        min_ram: 512,
    },
    BaseImage {
        name: "Windows Server 2012 R2",
        os_type: "windows",
        distro: ("com.microsoft.server", "windows", "2012.2"),
        options: "4",
        min_disk: 40,
        min_ram: 1024,
    },
];

/// Publishes the demo's provider base images (public, `image_type: base`, the properties of seed
/// 002's list) in `region`, with real bytes; their ids.
pub(crate) fn seed_base_images(
    engine: &Engine,
    store: &dyn ImageDataStore,
    region: &Region,
) -> anyhow::Result<Vec<Uuid>> {
    let ctx = Context::new(
        Actor::operator(images::PROVIDER_USER),
        region.clone(),
        Utc::now(),
    );
    let release_date = ctx.now.format("%Y-%m-%d_%H-%M-%S").to_string();
    let mut ids = Vec::with_capacity(BASE_IMAGES.len());
    for (release, base) in (1001_u32..).zip(BASE_IMAGES.iter()) {
        let (rackspace_distro, distro, version) = base.distro;
        let properties: BTreeMap<String, String> = [
            ("auto_disk_config", "disabled"),
            ("cache_in_nova", "True"),
            ("com.rackspace__1__build_core", "1"),
            ("com.rackspace__1__build_managed", "1"),
            ("com.rackspace__1__build_rackconnect", "1"),
            ("com.rackspace__1__options", base.options),
            ("com.rackspace__1__platform_target", "PublicCloud"),
            ("com.rackspace__1__release_build_date", &release_date),
            ("com.rackspace__1__release_id", &release.to_string()),
            ("com.rackspace__1__release_version", "1"),
            ("com.rackspace__1__source", "kickstart"),
            ("com.rackspace__1__visible_core", "1"),
            ("com.rackspace__1__visible_managed", "0"),
            ("com.rackspace__1__visible_rackconnect", "1"),
            ("org.openstack__1__architecture", "x64"),
            ("org.openstack__1__os_distro", rackspace_distro),
            ("org.openstack__1__os_version", version),
            ("os_distro", distro),
            ("os_type", base.os_type),
            ("vm_mode", "hvm"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        let image = NewImage {
            name: Some(base.name.to_owned()),
            min_disk: base.min_disk,
            min_ram: base.min_ram,
            properties,
            ..NewImage::default()
        };
        let bytes = images::fixed_vhd(&demo_contents(base.name));
        let id = demo_image_id(region, base.name);
        let registered = register_vhd(
            engine,
            store,
            &ctx,
            id,
            ImageOrigin::Base,
            image,
            &mut Cursor::new(bytes),
        );
        seeded_once(engine, id, registered)?;
        ids.push(id);
    }
    Ok(ids)
}

/// The id of a demo image: derived from its region and name, so that servers started with
/// `--demo` at the same moment on one empty database (PostgreSQL) register each image once.
fn demo_image_id(region: &Region, name: &str) -> Uuid {
    const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x1d3c_5a0e_8f4b_4e6a_9c2d_7b1e_0a5f_3c88);
    Uuid::new_v5(&DEMO_NAMESPACE, format!("{region}/{name}").as_bytes())
}

/// A demo image's registration: done, or refused because another server registered the same
/// image first (its derived id exists now).
fn seeded_once<T, E: Into<anyhow::Error>>(
    engine: &Engine,
    image_id: Uuid,
    registered: Result<T, E>,
) -> anyhow::Result<()> {
    match registered {
        Ok(_) => Ok(()),
        Err(_) if engine.image_state(image_id)?.is_some() => {
            tracing::info!(image_id = %image_id, "demo image registered by another server");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// True if `region` has a public image already (the demo's base images are published once).
fn has_public_images(engine: &Engine, region: &Region) -> bool {
    let ctx = Context::new(
        Actor::tenant(PRODUCER, "producer", &[engine.profile().full_access_role()]),
        region.clone(),
        Utc::now(),
    );
    engine
        .list_images(&ctx, "visibility=public&limit=1")
        .ok()
        .and_then(|page| page.get("images")?.as_array().map(|list| !list.is_empty()))
        .unwrap_or(false)
}

/// The id of the producer's saved image in an existing database, if it is there.
fn find_demo_image(engine: &Engine, region: &Region) -> Option<Uuid> {
    let ctx = Context::new(
        Actor::tenant(PRODUCER, "producer", &[engine.profile().full_access_role()]),
        region.clone(),
        Utc::now(),
    );
    let page = engine
        .list_images(&ctx, &format!("name={DEMO_IMAGE_NAME}"))
        .ok()?;
    let id = page.get("images")?.get(0)?.get("id")?.as_str()?;
    Uuid::try_parse(id).ok()
}

/// Runs the server until Ctrl-C or SIGTERM.
pub(crate) fn serve(engine: Engine, db: &Path, options: ServeOptions) -> anyhow::Result<()> {
    let regions: Vec<Region> = options.listeners.iter().map(|l| l.region.clone()).collect();
    let first = regions.first().cloned().context("no region to serve")?;
    let data_dir = options.data_dir;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    // Each region keeps its objects in Swift when one is configured for it, else under
    // `<objects_dir>/<REGION>`.
    let mut tasks = TaskEnvironment::new(Arc::new(FsImageDataStore::new(&data_dir)));
    let mut object_stores = Vec::with_capacity(regions.len());
    for region in &regions {
        match options.swift.store_for(region)? {
            Some(store) => {
                tasks = tasks.with_region(region.clone(), Arc::new(store));
                object_stores.push((region.clone(), None));
            }
            None => {
                let objects_dir = options
                    .objects_dir
                    .as_deref()
                    .context("no object store directory for a region without Swift")?;
                let store = FsObjectStore::for_region(objects_dir, region);
                let root = store.root().to_owned();
                std::fs::create_dir_all(&root)
                    .with_context(|| format!("creating object store {}", root.display()))?;
                tasks = tasks.with_region(region.clone(), Arc::new(store));
                object_stores.push((region.clone(), Some(root)));
            }
        }
    }
    let empty = engine.head()?.is_none();
    let image_data = FsImageDataStore::new(data_dir);
    let seeded = match (options.demo, empty) {
        (false, _) => None,
        (true, true) => {
            let image_id = demo_image_id(&first, DEMO_IMAGE_NAME);
            let seeded = seed_demo_image(&engine, &image_data, &first, image_id);
            seeded_once(&engine, image_id, seeded)?;
            Some(image_id)
        }
        (true, false) => find_demo_image(&engine, &first),
    };
    // Each region a demo serves gets the provider's base images once.
    if options.demo {
        for region in &regions {
            if !has_public_images(&engine, region) {
                seed_base_images(&engine, &image_data, region)?;
            }
        }
    }

    let metrics = imgshare_server::metrics::install().context("starting the metrics exporter")?;

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let metrics_listener = match &options.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("listening for metrics on {address}"))?,
            ),
            None => None,
        };
        if let Some(listener) = &metrics_listener {
            println!("metrics on http://{}/metrics", listener.local_addr()?);
        }
        let engine = Arc::new(engine);
        // Behind a TLS proxy the browser speaks https: the console's cookies must say Secure.
        let secure_cookies = options
            .public_endpoint
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"));
        let mut base = AppState::new(
            Arc::clone(&engine),
            Arc::clone(&options.identity.validator),
            first,
        );
        base.builtin_identity = options.identity.builtin.clone();
        base.image_data = Some(Arc::new(image_data));
        base.tasks = Some(Arc::new(tasks));
        base.public_endpoint = options.public_endpoint;
        if metrics_listener.is_none() {
            base.metrics = Some(metrics.clone());
        }
        let mut endpoints = Vec::with_capacity(options.listeners.len());
        let mut shown = Vec::with_capacity(options.listeners.len());
        for bound in options.listeners {
            bound.listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(bound.listener)?;
            shown.push((bound.region.clone(), bound.addr, bound.public_url));
            let state = AppState {
                region: bound.region,
                ..base.clone()
            };
            endpoints.push((listener, state));
        }
        let states: Vec<AppState> = endpoints.iter().map(|(_, state)| state.clone()).collect();
        let (pages, console) = crate::console::pages(
            options.console,
            &options.identity,
            &states,
            engine.profile(),
            secure_cookies,
        )?;
        // Before the banner, whose last line (`listening on`) is what scripts wait for.
        print_object_store(
            &object_stores,
            engine.profile().import_size_limit,
            options.demo,
        );
        print_banner(
            &shown,
            db,
            &options.identity.banner,
            &console,
            options.demo.then_some(seeded),
        );
        let config = ServeConfig {
            shutdown_timeout: options.shutdown_timeout,
            reload_on_hangup: true,
            metrics: metrics_listener.map(|listener| (listener, metrics)),
            pages,
            task_poll_interval: options.task_poll_interval,
        };
        imgshare_server::serve_regions(endpoints, config).await?;
        tracing::info!("shut down");
        anyhow::Ok(())
    })
}

/// Where import and export tasks find and put objects, and how to give an import its VHD.
fn print_object_store(stores: &[(Region, Option<PathBuf>)], import_size_limit: u64, demo: bool) {
    let limit = imgshare_core::vhd::format_limit(import_size_limit);
    for (region, root) in stores {
        match root {
            Some(root) => println!(
                "object store of {region}: {}/<account>/<container>/<object> (import limit {limit})",
                root.display()
            ),
            None => println!(
                "object store of {region}: Swift, each tenant's own account (import limit {limit})"
            ),
        }
    }
    if let Some((_, Some(root))) = stores.first() {
        // Outside demo mode there are no known accounts to name.
        let account = if demo { PRODUCER } else { "<account>" };
        println!(
            "# to import: mkdir -p {root}/{account}/exports && cp my-image.vhd {root}/{account}/exports/",
            root = root.display()
        );
    }
}

/// The banner; `demo` is `Some(the demo image)` in demo mode, the only mode that prints
/// secrets. Its last line is `listening on <the first region's base URL>`.
fn print_banner(
    regions: &[(Region, SocketAddr, String)],
    db: &Path,
    identity: &IdentityBanner,
    console: &ConsoleState,
    demo: Option<Option<Uuid>>,
) {
    let names: Vec<String> = regions
        .iter()
        .map(|(region, ..)| region.to_string())
        .collect();
    println!(
        "imgshare: regions {}, database {}",
        names.join(", "),
        crate::shown_db(db)
    );
    match identity {
        IdentityBanner::Tokens(path) => println!("identity: static tokens file {}", path.display()),
        IdentityBanner::Builtin { users, .. } => println!(
            "identity: built-in (POST /v2.0/tokens on every listener), users file {}",
            users.display()
        ),
        IdentityBanner::Keystone(url) => println!("identity: Keystone at {url}"),
    }
    for (region, addr, public_url) in regions {
        println!("region {region} listening on http://{addr} (catalog publicURL {public_url})");
    }
    let Some((first_region, first_addr, _)) = regions.first() else {
        return;
    };
    let base = format!("http://{first_addr}");
    match console {
        ConsoleState::On => println!(
            "console (Control Panel): {base}/console on every region's listener (--no-console: off)"
        ),
        ConsoleState::Off => println!("console: off (--no-console)"),
        ConsoleState::NoLogin => {
            println!("console: off (a static tokens file has no passwords to log in with)")
        }
    }
    if let Some(seeded) = demo {
        match identity {
            IdentityBanner::Tokens(path) => {
                let producer = token_of(path, PRODUCER);
                let consumer = token_of(path, CONSUMER);
                print_demo_accounts(&base, producer, consumer, seeded);
            }
            IdentityBanner::Builtin { demo: users, .. } => {
                for user in users {
                    println!(
                        "demo user {} (account {}): API key {}",
                        user.name, user.account, user.api_key
                    );
                }
                let token = |account: &str| {
                    users
                        .iter()
                        .find(|user| user.account == account)
                        .and_then(|user| user.token.clone())
                };
                print_demo_accounts(&base, token(PRODUCER), token(CONSUMER), seeded);
                if let Some(user) = users.first() {
                    print_quickstart(&base, first_region, &user.name, &user.api_key);
                }
            }
            IdentityBanner::Keystone(_) => {
                if let Some(image_id) = seeded {
                    println!("the producer's saved image \"{DEMO_IMAGE_NAME}\": {image_id}");
                }
            }
        }
    }
    println!();
    println!("listening on {base}");
}

/// The quickstart's first step against this server: authenticate, then take `TOKEN` and the
/// region's `ENDPOINT` from the catalog.
fn print_quickstart(base: &str, region: &Region, user: &str, key: &str) {
    println!();
    println!("# the quickstart: authenticate, then export TOKEN and ENDPOINT from the catalog");
    println!("export IDENTITY={base}");
    println!(
        "curl -s -X POST $IDENTITY/v2.0/tokens -H 'Content-Type: application/json' -d '{{\"auth\": {{\"RAX-KSKEY:apiKeyCredentials\": {{\"username\": \"{user}\", \"apiKey\": \"{key}\"}}}}}}' | python3 -m json.tool"
    );
    println!(
        "eval \"$(curl -s -X POST $IDENTITY/v2.0/tokens -H 'Content-Type: application/json' -d '{{\"auth\": {{\"RAX-KSKEY:apiKeyCredentials\": {{\"username\": \"{user}\", \"apiKey\": \"{key}\"}}}}}}' | python3 -c 'import json,sys; a=json.load(sys.stdin)[\"access\"]; print(\"export TOKEN=\" + a[\"token\"][\"id\"]); print(\"export ENDPOINT=\" + [e[\"publicURL\"] for s in a[\"serviceCatalog\"] if s[\"type\"] == \"image\" for e in s[\"endpoints\"] if e[\"region\"] == \"{region}\"][0])')\""
    );
    println!("curl -s $ENDPOINT/images -H \"X-Auth-Token: $TOKEN\" | python3 -m json.tool");
}

/// Demo mode: the demo accounts' tokens and the walkthrough's shell variables.
fn print_demo_accounts(
    base: &str,
    producer: Option<String>,
    consumer: Option<String>,
    seeded: Option<Uuid>,
) {
    if let Some(token) = &producer {
        println!("producer ({PRODUCER}) token: {token}");
    }
    if let Some(token) = &consumer {
        println!("consumer ({CONSUMER}) token: {token}");
    }
    if let Some(image_id) = seeded {
        println!("the producer's saved image \"{DEMO_IMAGE_NAME}\": {image_id}");
    }
    println!();
    println!("# paste into a shell:");
    println!(
        "export TOKEN_PRODUCER={} TOKEN_CONSUMER={}",
        producer.as_deref().unwrap_or("<token>"),
        consumer.as_deref().unwrap_or("<token>")
    );
    println!("export ACCOUNT_PRODUCER={PRODUCER} ACCOUNT_CONSUMER={CONSUMER}");
    println!(
        "export ENDPOINT_IMAGES_PRODUCER={base}/v2/{PRODUCER} ENDPOINT_IMAGES_CONSUMER={base}/v2/{CONSUMER}"
    );
    if let Some(image_id) = seeded {
        println!("export IMAGE_ID_PRODUCER={image_id}");
    }
    println!(
        "curl -s -H \"X-Auth-Token: $TOKEN_PRODUCER\" \"$ENDPOINT_IMAGES_PRODUCER/images\" | python3 -m json.tool"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_defaults_to_the_db_name_with_data() {
        assert_eq!(
            data_dir(Path::new("/srv/x/images.db"), None).unwrap(),
            PathBuf::from("/srv/x/images.db.data")
        );
        assert_eq!(
            data_dir(Path::new("imgshare.db"), None).unwrap(),
            PathBuf::from("imgshare.db.data")
        );
        assert_eq!(
            data_dir(Path::new("a.db"), Some(PathBuf::from("/d"))).unwrap(),
            PathBuf::from("/d")
        );
        assert_eq!(
            objects_dir(Path::new("/srv/x/images.db"), None).unwrap(),
            PathBuf::from("/srv/x/images.db.objects")
        );
    }

    #[test]
    fn a_postgres_url_needs_its_directories_given() {
        let url = Path::new("postgres://app@db.example.com/imgshare");
        let error = data_dir(url, None).unwrap_err().to_string();
        assert!(error.contains("--data-dir is required"), "{error}");
        let error = objects_dir(url, None).unwrap_err().to_string();
        assert!(error.contains("--objects-dir is required"), "{error}");
        assert_eq!(
            data_dir(url, Some(PathBuf::from("/srv/data"))).unwrap(),
            PathBuf::from("/srv/data")
        );
    }

    #[test]
    fn public_endpoints_must_be_http_urls_with_a_host() {
        assert_eq!(
            parse_public_endpoint("https://images.example.com/").as_deref(),
            Ok("https://images.example.com")
        );
        assert_eq!(
            parse_public_endpoint("https://proxy.example.com:8443/image").as_deref(),
            Ok("https://proxy.example.com:8443/image")
        );
        for bad in [
            "",
            "images.example.com",
            "ftp://images.example.com",
            "https://",
            "https://images.example.com/?x=1",
            "https://images.example.com/#top",
            "https://user:pw@images.example.com",
            "not a url",
        ] {
            assert!(parse_public_endpoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts_take_seconds_or_minutes() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "s", "1.5s", "-1", "3h"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn poll_intervals_take_milliseconds_too_and_never_zero() {
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "0", "0ms", "0s", "ms", "1.5ms", "-5ms", "3h"] {
            let refused = parse_interval(bad).unwrap_err();
            assert!(refused.contains("not an interval"), "{bad:?}: {refused}");
        }
    }
}
