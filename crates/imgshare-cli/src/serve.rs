//! `imgshare serve`: the HTTP API over a database file, with a tokens file.
//!
//! It needs a tokens file (`--tokens`) and prints no secret. With `--demo` (a try-out) and no
//! `--tokens`, it creates `imgshare-tokens.json` next to the database (a producer, account
//! 111111, and a consumer, account 222222, both `cloudImages:admin` (`member` on the Glance
//! profile), with random tokens); with `--demo` it also registers the producer's saved image
//! `my-saved-image-name` when the log is empty and the provider's base images in a region that
//! has no public image yet (both with real bytes, small generated VHDs), and prints the tokens,
//! the shell variables and a `curl` line for the seed walkthrough.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use imgshare_core::{Actor, Context, ImageOrigin, NewImage, ProfileKind, Region, Visibility};
use imgshare_server::{AppState, TokenStore};
use imgshare_store::{
    register_vhd, Engine, FsImageDataStore, FsObjectStore, ImageDataStore, TaskEnvironment,
};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::images;

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
    pub(crate) swift: crate::swift_args::SwiftArgs,
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
pub(crate) fn data_dir(db: &Path, given: Option<PathBuf>) -> PathBuf {
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

/// Registers the producer's saved image of seed 000 (a snapshot, active, ovf/vhd) with real
/// bytes, a small generated VHD, so that its download and export work. On the Glance profile it
/// is `shared`, since only shared images have members there.
pub(crate) fn seed_demo_image(
    engine: &Engine,
    store: &dyn ImageDataStore,
    region: &Region,
) -> anyhow::Result<Uuid> {
    let profile = engine.profile().kind;
    let ctx = Context::new(
        Actor::tenant(PRODUCER, "producer", &[account_role(profile)]),
        region.clone(),
        Utc::now(),
    );
    let image = NewImage {
        name: Some(DEMO_IMAGE_NAME.into()),
        min_disk: 20,
        min_ram: 512,
        properties: [("com.rackspace__1__options".to_owned(), "0".to_owned())].into(),
        visibility: (profile == ProfileKind::Glance).then_some(Visibility::Shared),
        ..NewImage::default()
    };
    let origin = ImageOrigin::Snapshot {
        server_id: Uuid::new_v4().to_string(),
    };
    let bytes = images::fixed_vhd(&demo_contents(DEMO_IMAGE_NAME));
    let image_id = Uuid::new_v4();
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
        let id = Uuid::new_v4();
        register_vhd(
            engine,
            store,
            &ctx,
            id,
            ImageOrigin::Base,
            image,
            &mut Cursor::new(bytes),
        )?;
        ids.push(id);
    }
    Ok(ids)
}

/// True if `region` has a public image already (the demo's base images are published once).
fn has_public_images(engine: &Engine, region: &Region) -> bool {
    let ctx = Context::new(
        Actor::tenant(PRODUCER, "producer", &[account_role(engine.profile().kind)]),
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
    let swift = options.swift.store_for(&region)?;
    let (tasks, objects_root) = match swift {
        Some(store) => {
            let env = TaskEnvironment::new(Arc::new(FsImageDataStore::new(&data_dir)))
                .with_region(region.clone(), Arc::new(store));
            (env, None)
        }
        None => {
            let objects_dir = objects_dir(db, options.objects_dir);
            let objects_root = FsObjectStore::for_region(&objects_dir, &region)
                .root()
                .to_owned();
            std::fs::create_dir_all(&objects_root)
                .with_context(|| format!("creating object store {}", objects_root.display()))?;
            let env =
                TaskEnvironment::filesystem(&objects_dir, &data_dir, std::slice::from_ref(&region));
            (env, Some(objects_root))
        }
    };
    let empty = engine
        .read(|conn| Ok(imgshare_store::head(conn)?))?
        .is_none();
    let image_data = FsImageDataStore::new(data_dir);
    let seeded = match (options.demo, empty) {
        (false, _) => None,
        (true, true) => Some(seed_demo_image(&engine, &image_data, &region)?),
        (true, false) => find_demo_image(&engine, &region),
    };
    // Each region a demo serves gets the provider's base images once.
    if options.demo && !has_public_images(&engine, &region) {
        seed_base_images(&engine, &image_data, &region)?;
    }

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| format!("listening on {}", options.listen))?;
        let addr: SocketAddr = listener.local_addr()?;
        // Before the banner, whose last line (`listening on`) is what scripts wait for.
        print_object_store(
            objects_root.as_deref(),
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
        state.image_data = Some(Arc::new(image_data));
        state.tasks = Some(Arc::new(tasks));
        imgshare_server::serve(listener, state).await?;
        eprintln!("imgshare: shut down");
        anyhow::Ok(())
    })
}

/// Where import and export tasks find and put objects, and how to give an import its VHD.
fn print_object_store(root: Option<&Path>, import_size_limit: u64, demo: bool) {
    let Some(root) = root else {
        println!(
            "object store: Swift, each tenant's own account (import limit {})",
            imgshare_core::vhd::format_limit(import_size_limit)
        );
        return;
    };
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
}
