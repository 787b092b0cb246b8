//! `serve`'s identity and regions: which [`TokenValidator`] checks the API's tokens (built-in
//! identity over a users file, Keystone, or a static tokens file), the regions served with
//! their listeners, and the service catalog the built-in identity hands out.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{Duration, Utc};
use clap::{Args, ValueEnum};
use imgshare_core::{Profile, Region};
use imgshare_identity::{
    AuthRequest, BuiltinIdentity, BuiltinOptions, Catalog, Credential, HashStrength,
    KeystoneOptions, KeystoneValidator, RegionEndpoints, TokenValidator, UsersFile,
};
use imgshare_server::TokenStore;

use crate::serve::{CONSUMER, PRODUCER};

/// The users file created next to the database by `--demo` without `--users` or `--tokens`.
const DEFAULT_USERS_FILE: &str = "imgshare-users.toml";

/// Where the API's tokens come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum IdentityMode {
    /// The embedded Rackspace Cloud Identity v2.0 (`POST /v2.0/tokens`) over `--users`.
    Builtin,
    /// A Keystone v3 (`--keystone-url`, `--keystone-service-credentials`).
    Keystone,
    /// A static tokens file (`--tokens`), for tests and scripts.
    Tokens,
}

/// `serve`'s identity and region options.
#[derive(Args)]
pub(crate) struct IdentityArgs {
    /// Where tokens come from: `builtin` (needs --users, or --demo), `keystone` (needs
    /// --keystone-url and --keystone-service-credentials) or `tokens` (needs --tokens).
    /// Default: `tokens` with --tokens, else `builtin` with --users or --demo.
    #[arg(long, env = "IMGSHARE_IDENTITY", value_enum)]
    pub(crate) identity: Option<IdentityMode>,
    /// The built-in identity's users file (.toml or .json; `imgshare users` edits it). A file
    /// that does not load is refused at start. `--demo` without it uses `imgshare-users.toml` next
    /// to the database file; with a PostgreSQL URL it must be given.
    #[arg(long, env = "IMGSHARE_USERS")]
    pub(crate) users: Option<PathBuf>,
    /// How long a built-in identity token lives, in seconds (Rackspace: 24 h).
    #[arg(long, env = "IMGSHARE_TOKEN_LIFETIME", default_value_t = 86_400)]
    pub(crate) token_lifetime: u32,
    /// Keystone's URL, e.g. http://keystone:5000 (for --identity keystone).
    #[arg(long, env = "IMGSHARE_KEYSTONE")]
    pub(crate) keystone_url: Option<String>,
    /// A TOML file with the service user imgshare validates tokens as: `user`, `password`,
    /// optionally `project` (service), `user_domain`, `project_domain` (default).
    #[arg(long, env = "IMGSHARE_KEYSTONE_SERVICE_CREDENTIALS")]
    pub(crate) keystone_service_credentials: Option<PathBuf>,
    /// How long a token Keystone validated is trusted without asking again, in seconds (never
    /// past its expiry; 0: ask every time).
    #[arg(long, env = "IMGSHARE_KEYSTONE_CACHE_SECONDS", default_value_t = 300)]
    pub(crate) keystone_cache_seconds: u64,
    /// The public URL of a region's image endpoint in the catalog, `REGION=URL` (repeatable),
    /// for a server behind a proxy; default: `http://<its listen address>/v2`.
    #[arg(
        long = "region-endpoint",
        env = "IMGSHARE_REGION_ENDPOINTS",
        value_delimiter = ','
    )]
    pub(crate) region_endpoints: Vec<String>,
    /// A region's object store (Cloud Files) base URL, `REGION=URL` (repeatable): the
    /// catalog's `cloudFiles` endpoint is `<URL>/<storage account>`; none: no `cloudFiles`.
    #[arg(
        long = "object-store-url",
        env = "IMGSHARE_OBJECT_STORE_URLS",
        value_delimiter = ','
    )]
    pub(crate) object_store_urls: Vec<String>,
}

/// One region's endpoint: its listener (already bound) and the URL the catalog gives it.
pub(crate) struct RegionListener {
    pub(crate) region: Region,
    pub(crate) listener: TcpListener,
    pub(crate) addr: SocketAddr,
    pub(crate) public_url: String,
}

/// `REGION=VALUE` pairs into a map by region; a value without `REGION=` is `None`'s.
fn by_region(
    entries: &[String],
    what: &str,
    regions: &[Region],
) -> anyhow::Result<BTreeMap<Option<Region>, String>> {
    let mut map = BTreeMap::new();
    for entry in entries {
        let (region, value) = match entry.split_once('=') {
            Some((region, value)) => {
                let region = Region::parse(region)?;
                if !regions.contains(&region) {
                    anyhow::bail!(
                        "{what} {entry:?} names region {region}, which is not served (--region)"
                    );
                }
                (Some(region), value.trim())
            }
            None => (None, entry.trim()),
        };
        if value.is_empty() {
            anyhow::bail!("{what} {entry:?} has no value");
        }
        if map.insert(region.clone(), value.to_owned()).is_some() {
            anyhow::bail!(
                "{what} given twice for {}",
                region.map_or("every region".into(), |r| r.to_string())
            );
        }
    }
    Ok(map)
}

/// The regions to serve: each `--region` once, in order (the first is the default region).
pub(crate) fn regions(given: &[String]) -> anyhow::Result<Vec<Region>> {
    let mut regions: Vec<Region> = Vec::new();
    for name in given {
        let region = Region::parse(name)?;
        if regions.contains(&region) {
            anyhow::bail!("region {region} is given twice");
        }
        regions.push(region);
    }
    if regions.is_empty() {
        anyhow::bail!("no region to serve: give --region (e.g. --region DFW)");
    }
    Ok(regions)
}

/// Binds one listener per region: `--listen REGION=ADDR` for that region, a plain `--listen
/// ADDR` for the others (port 0: a free port each). Two regions cannot share a port.
pub(crate) fn bind_regions(
    regions: &[Region],
    listen: &[String],
    endpoints: &[String],
) -> anyhow::Result<Vec<RegionListener>> {
    let listen = by_region(listen, "--listen", regions)?;
    let endpoints = by_region(endpoints, "--region-endpoint", regions)?;
    if let Some(url) = endpoints.get(&None) {
        anyhow::bail!("--region-endpoint {url:?} must name its region: REGION=URL");
    }
    let mut bound = Vec::with_capacity(regions.len());
    for region in regions {
        let addr = listen
            .get(&Some(region.clone()))
            .or_else(|| listen.get(&None))
            .with_context(|| {
                format!("no address for region {region}: give --listen {region}=HOST:PORT")
            })?;
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("listening on {addr} for region {region}"))?;
        let addr = listener.local_addr()?;
        let public_url = match endpoints.get(&Some(region.clone())) {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}/v2", reachable(addr)),
        };
        bound.push(RegionListener {
            region: region.clone(),
            listener,
            addr,
            public_url,
        });
    }
    Ok(bound)
}

/// The address a client on this machine reaches a listener on (a wildcard bind is reached on
/// loopback; behind a proxy, --region-endpoint says the real URL).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// The built-in identity's catalog: every region's image endpoint, and its object store where
/// one is configured.
pub(crate) fn catalog(
    listeners: &[RegionListener],
    object_store_urls: &[String],
) -> anyhow::Result<Catalog> {
    let regions: Vec<Region> = listeners.iter().map(|l| l.region.clone()).collect();
    let stores = by_region(object_store_urls, "--object-store-url", &regions)?;
    if let Some(url) = stores.get(&None) {
        anyhow::bail!("--object-store-url {url:?} must name its region: REGION=URL");
    }
    Ok(Catalog {
        regions: listeners
            .iter()
            .map(|listener| RegionEndpoints {
                region: listener.region.to_string(),
                images_url: listener.public_url.clone(),
                object_store_url: stores.get(&Some(listener.region.clone())).cloned(),
            })
            .collect(),
    })
}

/// A demo user's credentials and a token issued at start, for the banner.
pub(crate) struct DemoUser {
    pub(crate) name: String,
    pub(crate) account: String,
    pub(crate) api_key: String,
    pub(crate) token: Option<String>,
}

/// What the banner says about identity.
pub(crate) enum IdentityBanner {
    /// A static tokens file.
    Tokens(PathBuf),
    /// The built-in identity over a users file, with the demo users in demo mode.
    Builtin { users: PathBuf, demo: Vec<DemoUser> },
    /// Keystone.
    Keystone(String),
}

/// The chosen identity, ready to serve.
pub(crate) struct IdentitySetup {
    pub(crate) validator: Arc<dyn TokenValidator>,
    pub(crate) builtin: Option<Arc<BuiltinIdentity>>,
    /// The Keystone client, which the console also logs users in with.
    pub(crate) keystone: Option<KeystoneValidator>,
    pub(crate) banner: IdentityBanner,
}

/// The identity mode `serve` runs with, or why it cannot start (nothing written yet).
pub(crate) fn mode(
    args: &IdentityArgs,
    tokens: Option<&Path>,
    demo: bool,
) -> anyhow::Result<IdentityMode> {
    let mode = match args.identity {
        Some(mode) => mode,
        None if tokens.is_some() => IdentityMode::Tokens,
        None if args.users.is_some() || demo => IdentityMode::Builtin,
        None => anyhow::bail!(
            "no identity: `imgshare serve` needs --users FILE (the built-in identity's users, \
             edited with `imgshare users`), --identity keystone with --keystone-url and \
             --keystone-service-credentials, or --tokens FILE (static tokens, format in \
             docs/identity.md); for a try-out with demo accounts and a demo image, run \
             `imgshare serve --demo`. Nothing was started or written."
        ),
    };
    match mode {
        IdentityMode::Tokens if tokens.is_none() => {
            anyhow::bail!("--identity tokens needs --tokens FILE. Nothing was started or written.")
        }
        IdentityMode::Builtin if args.users.is_none() && !demo => anyhow::bail!(
            "--identity builtin needs --users FILE (create it with `imgshare users --users FILE \
             add NAME --account ID`). Nothing was started or written."
        ),
        IdentityMode::Keystone
            if args.keystone_url.is_none() || args.keystone_service_credentials.is_none() =>
        {
            anyhow::bail!(
                "--identity keystone needs --keystone-url URL and --keystone-service-credentials \
                 FILE. Nothing was started or written."
            )
        }
        _ => Ok(mode),
    }
}

/// Loads the users file of the built-in identity (refusing one that does not load); in demo
/// mode creates it next to the database if needed and gives the demo users new API keys.
pub(crate) fn load_users(
    args: &IdentityArgs,
    db: &Path,
    demo: bool,
    profile: &Profile,
) -> anyhow::Result<(PathBuf, UsersFile, Vec<DemoUser>)> {
    let path = match &args.users {
        Some(path) => path.clone(),
        None if crate::postgres_url(db).is_some() => anyhow::bail!(
            "--users is required with a PostgreSQL database and the built-in identity (its \
             default, {DEFAULT_USERS_FILE} next to a SQLite file, has no meaning for a URL), or \
             give --tokens; nothing was started"
        ),
        None => db
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."))
            .join(DEFAULT_USERS_FILE),
    };
    if !demo {
        let users = UsersFile::load(&path).with_context(|| {
            format!("reading users file {}; nothing was started", path.display())
        })?;
        return Ok((path, users, Vec::new()));
    }
    let mut users = UsersFile::load_or_default(&path)
        .with_context(|| format!("reading users file {}; nothing was started", path.display()))?;
    let role = profile.full_access_role();
    let mut demo_users = Vec::new();
    for (name, account) in [("producer", PRODUCER), ("consumer", CONSUMER)] {
        // The keys are kept only as hashes, so a demo start shows new ones each time. Demo
        // users are throwaway: the cheap hash keeps the start quick.
        let api_key = if users.user(name).is_some() {
            users.reset_key(name, HashStrength::Fast)?
        } else {
            users.add_user(
                name,
                account,
                vec![role.to_owned()],
                None,
                None,
                None,
                HashStrength::Fast,
            )?
        };
        demo_users.push(DemoUser {
            name: name.to_owned(),
            account: account.to_owned(),
            api_key,
            token: None,
        });
    }
    users
        .save(&path)
        .with_context(|| format!("writing users file {}", path.display()))?;
    Ok((path, users, demo_users))
}

/// The identity for `mode`, with the catalog of the regions served.
pub(crate) fn setup(
    mode: IdentityMode,
    args: &IdentityArgs,
    tokens: Option<&Path>,
    users: Option<(PathBuf, UsersFile, Vec<DemoUser>)>,
    catalog: Catalog,
) -> anyhow::Result<IdentitySetup> {
    match mode {
        IdentityMode::Tokens => {
            let path = tokens.context("--identity tokens needs --tokens FILE")?;
            let store = TokenStore::load(path)
                .with_context(|| format!("reading tokens file {}", path.display()))?;
            Ok(IdentitySetup {
                validator: Arc::new(store),
                builtin: None,
                keystone: None,
                banner: IdentityBanner::Tokens(path.to_owned()),
            })
        }
        IdentityMode::Keystone => {
            let url = args
                .keystone_url
                .as_deref()
                .context("--keystone-url is missing")?;
            let credentials = args
                .keystone_service_credentials
                .as_deref()
                .context("--keystone-service-credentials is missing")?;
            let mut options = KeystoneOptions::from_credentials_file(url, credentials)?;
            options.cache_ttl = std::time::Duration::from_secs(args.keystone_cache_seconds);
            let keystone = KeystoneValidator::new(options);
            Ok(IdentitySetup {
                validator: Arc::new(keystone.clone()),
                builtin: None,
                keystone: Some(keystone),
                banner: IdentityBanner::Keystone(url.to_owned()),
            })
        }
        IdentityMode::Builtin => {
            let (path, file, mut demo) = users.context("the users file was not loaded")?;
            let options = BuiltinOptions {
                token_lifetime: Duration::seconds(i64::from(args.token_lifetime.max(1))),
                catalog,
                ..BuiltinOptions::default()
            };
            let identity = BuiltinIdentity::new(file, options)?.with_users_path(&path);
            // A token for each demo user, so that the walkthrough can start without a POST.
            for user in &mut demo {
                let request = AuthRequest {
                    credential: Credential::ApiKey {
                        username: user.name.clone(),
                        api_key: user.api_key.clone(),
                    },
                    tenant: None,
                };
                user.token = identity
                    .authenticate(&request, Utc::now())
                    .ok()
                    .map(|access| access.token.id);
            }
            let identity = Arc::new(identity);
            Ok(IdentitySetup {
                validator: identity.clone(),
                builtin: Some(identity),
                keystone: None,
                banner: IdentityBanner::Builtin { users: path, demo },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn each_region_gets_its_own_or_the_default_listener_and_url() {
        let regions = regions(&names(&["dfw", "ORD"])).unwrap();
        let bound = bind_regions(
            &regions,
            &names(&["127.0.0.1:0"]),
            &names(&["ORD=https://ord.images.example.com/v2/"]),
        )
        .unwrap();
        assert_eq!(bound.len(), 2);
        assert_ne!(bound[0].addr.port(), bound[1].addr.port());
        assert_eq!(bound[0].public_url, format!("http://{}/v2", bound[0].addr));
        assert_eq!(bound[1].public_url, "https://ord.images.example.com/v2");
        let catalog = catalog(&bound, &names(&["ORD=https://storage.ord.example.com/v1"])).unwrap();
        assert_eq!(catalog.default_region(), Some("DFW"));
        assert_eq!(catalog.regions[0].object_store_url, None);
        assert_eq!(
            catalog.regions[1].object_store_url.as_deref(),
            Some("https://storage.ord.example.com/v1")
        );
    }

    #[test]
    fn bad_region_options_are_refused() {
        assert!(regions(&names(&["DFW", "dfw"])).is_err());
        assert!(regions(&[]).is_err());
        let dfw = regions(&names(&["DFW"])).unwrap();
        let two = regions(&names(&["DFW", "ORD"])).unwrap();
        // A region not served, an address without a region for a second one, a URL without one.
        assert!(bind_regions(&dfw, &names(&["IAD=127.0.0.1:0"]), &[]).is_err());
        assert!(bind_regions(&two, &names(&["DFW=127.0.0.1:0"]), &[]).is_err());
        assert!(bind_regions(&dfw, &names(&["127.0.0.1:0"]), &names(&["http://x/v2"])).is_err());
        assert!(bind_regions(
            &dfw,
            &names(&["127.0.0.1:0", "DFW=127.0.0.1:0", "127.0.0.1:1"]),
            &[]
        )
        .is_err());
    }
}
