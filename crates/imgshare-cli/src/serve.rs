//! `imgshare serve`: the HTTP API over a database file, with a tokens file.
//!
//! It needs a tokens file (`--tokens`) and prints no secret. With `--demo` (a try-out) and no
//! `--tokens`, it creates `imgshare-tokens.json` next to the database (a producer, account
//! 111111, and a consumer, account 222222, both `cloudImages:admin` (`member` on the Glance
//! profile), with random tokens); with `--demo` it also registers the producer's saved image
//! `my-saved-image-name` when the log is empty, and prints the tokens, the shell variables and a
//! `curl` line for the seed walkthrough.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use imgshare_core::{
    Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage, ProfileKind,
    Region, Visibility,
};
use imgshare_server::{AppState, ServeConfig, TokenStore};
use imgshare_store::{Engine, FsImageDataStore, FsObjectStore, TaskEnvironment};
use serde_json::{json, Value};
use uuid::Uuid;

/// The producer account of the seed walkthrough.
pub(crate) const PRODUCER: &str = "111111";
/// The consumer account of the seed walkthrough.
pub(crate) const CONSUMER: &str = "222222";
/// The name of the producer's saved image registered in an empty database.
const DEMO_IMAGE_NAME: &str = "my-saved-image-name";
/// The tokens file created next to the database when `--tokens` is not given.
const DEFAULT_TOKENS_FILE: &str = "imgshare-tokens.json";

/// The tokens file `serve` uses.
pub(crate) struct TokensFile {
    pub(crate) path: PathBuf,
}

/// What `serve` was asked to do.
pub(crate) struct ServeOptions {
    pub(crate) listen: String,
    pub(crate) region: String,
    pub(crate) tokens: TokensFile,
    pub(crate) token_store: TokenStore,
    /// Demo accounts and image, and secrets printed.
    pub(crate) demo: bool,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) objects_dir: Option<PathBuf>,
    /// `GET /metrics` on its own address instead of the API's.
    pub(crate) metrics_listen: Option<String>,
    /// Checked by [`parse_public_endpoint`]: no trailing slash.
    pub(crate) public_endpoint: Option<String>,
    pub(crate) shutdown_timeout: Duration,
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

/// The role the walkthrough's accounts get: full image rights in each profile.
pub(crate) fn account_role(profile: ProfileKind) -> &'static str {
    match profile {
        ProfileKind::Rackspace => "cloudImages:admin",
        ProfileKind::Glance => "member",
    }
}

/// The given directory, or `<db file name><suffix>` next to the database.
fn beside_db(db: &Path, given: Option<PathBuf>, suffix: &str) -> PathBuf {
    given.unwrap_or_else(|| {
        let mut name = db
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_else(|| "imgshare.db".into());
        name.push(suffix);
        db.with_file_name(name)
    })
}

/// The image data directory: the given one, or `<db file name>.data` next to the database.
fn data_dir(db: &Path, given: Option<PathBuf>) -> PathBuf {
    beside_db(db, given, ".data")
}

/// The object store directory (one subdirectory per region): the given one, or
/// `<db file name>.objects` next to the database.
fn objects_dir(db: &Path, given: Option<PathBuf>) -> PathBuf {
    beside_db(db, given, ".objects")
}

/// The tokens file to use: the given one; in demo mode without one, `imgshare-tokens.json` next
/// to the database, created with a producer and a consumer account if it does not exist yet.
/// Without either, `serve` refuses to start: a server nobody configured must not invent accounts.
pub(crate) fn tokens_file(
    db: &Path,
    given: Option<PathBuf>,
    demo: bool,
    profile: ProfileKind,
) -> anyhow::Result<TokensFile> {
    if let Some(path) = given {
        return Ok(TokensFile { path });
    }
    if !demo {
        anyhow::bail!(
            "no tokens file: `imgshare serve` needs --tokens FILE (or IMGSHARE_TOKENS=FILE), the \
             accounts that may call the API (format in the imgshare-server crate docs and \
             docs/operations.md); for a try-out with demo accounts and a demo image, run \
             `imgshare serve --demo`. Nothing was started or written."
        );
    }
    let dir = db
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let path = dir.join(DEFAULT_TOKENS_FILE);
    if !path.exists() {
        let role = account_role(profile);
        let account = |tenant: &str, user: &str| json!({"tenant_id": tenant, "user_id": user, "roles": [role]});
        let file = json!({"tokens": {
            Uuid::new_v4().to_string(): account(PRODUCER, "producer"),
            Uuid::new_v4().to_string(): account(CONSUMER, "consumer"),
        }});
        let text = serde_json::to_string_pretty(&file)?;
        write_private(&path, &(text + "\n"))
            .with_context(|| format!("creating tokens file {}", path.display()))?;
        eprintln!("created tokens file {}", path.display());
    }
    Ok(TokensFile { path })
}

/// Creates `path` (which must not exist) readable by its owner only: it holds credentials.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
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

/// Registers the producer's saved image of seed 000 (a snapshot, active, ovf/vhd). On the
/// Glance profile it is `shared`, since only shared images have members there.
pub(crate) fn seed_demo_image(engine: &Engine, region: &Region) -> anyhow::Result<Uuid> {
    let profile = engine.profile().kind;
    let ctx = Context::new(
        Actor::tenant(PRODUCER, "producer", &[account_role(profile)]),
        region.clone(),
        Utc::now(),
    );
    let image_id = Uuid::new_v4();
    let image = NewImage {
        name: Some(DEMO_IMAGE_NAME.into()),
        container_format: Some("ovf".into()),
        disk_format: Some("vhd".into()),
        min_disk: 20,
        min_ram: 512,
        properties: [("com.rackspace__1__options".to_owned(), "0".to_owned())].into(),
        visibility: (profile == ProfileKind::Glance).then_some(Visibility::Shared),
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
            image_id,
            command: ImageCommand::Register { origin, image },
        },
    )?;
    Ok(image_id)
}

/// The id of the producer's saved image in an existing database, if it is there.
fn find_demo_image(engine: &Engine, region: &Region) -> Option<Uuid> {
    let ctx = Context::new(
        Actor::tenant(PRODUCER, "producer", &[account_role(engine.profile().kind)]),
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
    let region = Region::parse(&options.region)?;
    let tokens_path = options.tokens.path;
    let tokens = options.token_store;
    let data_dir = data_dir(db, options.data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let objects_dir = objects_dir(db, options.objects_dir);
    let objects_root = FsObjectStore::for_region(&objects_dir, &region)
        .root()
        .to_owned();
    std::fs::create_dir_all(&objects_root)
        .with_context(|| format!("creating object store {}", objects_root.display()))?;
    let tasks = TaskEnvironment::filesystem(&objects_dir, &data_dir, std::slice::from_ref(&region));
    let empty = engine
        .read(|conn| Ok(imgshare_store::head(conn)?))?
        .is_none();
    let seeded = match (options.demo, empty) {
        (false, _) => None,
        (true, true) => Some(seed_demo_image(&engine, &region)?),
        (true, false) => find_demo_image(&engine, &region),
    };

    let metrics = imgshare_server::metrics::install().context("starting the metrics exporter")?;

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| format!("listening on {}", options.listen))?;
        let addr: SocketAddr = listener.local_addr()?;
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
        // Before the banner, whose last line (`listening on`) is what scripts wait for.
        print_object_store(
            &objects_root,
            engine.profile().import_size_limit,
            options.demo,
        );
        print_banner(
            addr,
            &region,
            db,
            &tokens_path,
            options.demo.then_some(seeded),
        );
        let mut state = AppState::new(Arc::new(engine), Arc::new(tokens), region);
        state.image_data = Some(Arc::new(FsImageDataStore::new(data_dir)));
        state.tasks = Some(Arc::new(tasks));
        state.public_endpoint = options.public_endpoint;
        if metrics_listener.is_none() {
            state.metrics = Some(metrics.clone());
        }
        let config = ServeConfig {
            shutdown_timeout: options.shutdown_timeout,
            tokens_file: Some(tokens_path),
            metrics: metrics_listener.map(|listener| (listener, metrics)),
        };
        tracing::info!(address = %addr, "serving");
        imgshare_server::serve_with(listener, state, config).await?;
        tracing::info!("shut down");
        anyhow::Ok(())
    })
}

/// Where import and export tasks find and put objects, and how to give an import its VHD.
fn print_object_store(root: &Path, import_size_limit: u64, demo: bool) {
    println!(
        "object store: {}/<account>/<container>/<object> (import limit {})",
        root.display(),
        imgshare_core::vhd::format_limit(import_size_limit)
    );
    // Outside demo mode there are no known accounts to name.
    let account = if demo { PRODUCER } else { "<account>" };
    println!(
        "# to import: mkdir -p {root}/{account}/exports && cp my-image.vhd {root}/{account}/exports/",
        root = root.display()
    );
}

/// The banner; `demo` is `Some(the demo image)` in demo mode, the only mode that prints tokens.
fn print_banner(
    addr: SocketAddr,
    region: &Region,
    db: &Path,
    tokens_path: &Path,
    demo: Option<Option<Uuid>>,
) {
    let base = format!("http://{addr}");
    println!("imgshare: region {region}, database {}", db.display());
    println!("tokens file: {}", tokens_path.display());
    if let Some(seeded) = demo {
        print_demo_accounts(&base, tokens_path, seeded);
    }
    println!();
    println!("listening on {base}");
}

/// Demo mode: the demo accounts' tokens and the walkthrough's shell variables.
fn print_demo_accounts(base: &str, tokens_path: &Path, seeded: Option<Uuid>) {
    let producer = token_of(tokens_path, PRODUCER);
    let consumer = token_of(tokens_path, CONSUMER);
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
        "curl -s -H \"X-Auth-Token: $TOKEN_PRODUCER\" \"$ENDPOINT_IMAGES_PRODUCER/images\" | python -mjson.tool"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_defaults_to_the_db_name_with_data() {
        assert_eq!(
            data_dir(Path::new("/srv/x/images.db"), None),
            PathBuf::from("/srv/x/images.db.data")
        );
        assert_eq!(
            data_dir(Path::new("imgshare.db"), None),
            PathBuf::from("imgshare.db.data")
        );
        assert_eq!(
            data_dir(Path::new("a.db"), Some(PathBuf::from("/d"))),
            PathBuf::from("/d")
        );
        assert_eq!(
            objects_dir(Path::new("/srv/x/images.db"), None),
            PathBuf::from("/srv/x/images.db.objects")
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
}
