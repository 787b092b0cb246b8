//! `serve`'s Swift flags: which regions keep their import/export objects in Swift (Cloud Files)
//! instead of the `--objects-dir` directory, and the service credential used to reach them.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use imgshare_core::Region;
use imgshare_store::{SwiftAuth, SwiftConfig, SwiftObjectStore};

/// Swift object storage for import and export tasks.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SwiftArgs {
    /// `REGION=URL`: the region's Swift storage endpoint without the account, e.g.
    /// `DFW=http://127.0.0.1:8080/v1` (repeatable; in `IMGSHARE_SWIFT_URL` separated by commas). A served region listed here keeps its
    /// objects in Swift, in each tenant's account `<prefix><tenant>`; others use --objects-dir.
    #[arg(
        long = "swift-url",
        value_name = "REGION=URL",
        env = "IMGSHARE_SWIFT_URL",
        value_delimiter = ','
    )]
    urls: Vec<String>,
    /// The v1.0 auth endpoint of the service user, e.g. `http://127.0.0.1:8080/auth/v1.0`.
    #[arg(long, value_name = "URL", env = "IMGSHARE_SWIFT_AUTH_URL")]
    swift_auth_url: Option<String>,
    /// The service user (`<account>:<user>`), which must be a reseller admin.
    #[arg(long, value_name = "ACCOUNT:USER", env = "IMGSHARE_SWIFT_USER")]
    swift_user: Option<String>,
    /// A file holding the service user's key (first line); a key on the command line would be
    /// visible to every local user.
    #[arg(long, value_name = "PATH", env = "IMGSHARE_SWIFT_KEY_FILE")]
    swift_key_file: Option<PathBuf>,
    /// The reseller prefix of tenant accounts (`MossoCloudFS_` on Rackspace).
    #[arg(long, default_value = "AUTH_", env = "IMGSHARE_SWIFT_RESELLER_PREFIX")]
    swift_reseller_prefix: String,
    /// Bytes per segment of an exported Dynamic Large Object (K, M, G suffixes allowed).
    #[arg(long, default_value = "1048576000", value_parser = crate::parse_size, env = "IMGSHARE_SWIFT_SEGMENT_SIZE")]
    swift_segment_size: u64,
    /// Further attempts after a Swift 5xx, timeout or broken transfer.
    #[arg(long, default_value_t = 4, env = "IMGSHARE_SWIFT_RETRIES")]
    swift_retries: u32,
    /// Seconds each Swift request may stay silent before it counts as timed out.
    #[arg(long, default_value_t = 30, env = "IMGSHARE_SWIFT_TIMEOUT")]
    swift_timeout: u64,
}

impl SwiftArgs {
    /// The `REGION=URL` entries as given: the regions' Cloud Files endpoints for the catalog.
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The URL given for `region`, if any; an entry that is not `REGION=URL` is an error.
    fn url_of(&self, region: &Region) -> anyhow::Result<Option<&str>> {
        let mut found = None;
        for entry in &self.urls {
            let Some((name, url)) = entry.split_once('=') else {
                bail!("--swift-url {entry:?} is not REGION=URL");
            };
            let name = Region::parse(name).with_context(|| format!("--swift-url {entry:?}"))?;
            if &name == region {
                found = Some(url);
            }
        }
        Ok(found)
    }

    /// The Swift store of `region`, or `None` when the region has no `--swift-url`.
    /// Whether `region` keeps its objects in Swift (`--swift-url` names it).
    pub(crate) fn covers(&self, region: &Region) -> anyhow::Result<bool> {
        Ok(self.url_of(region)?.is_some())
    }

    pub(crate) fn store_for(&self, region: &Region) -> anyhow::Result<Option<SwiftObjectStore>> {
        let Some(url) = self.url_of(region)? else {
            return Ok(None);
        };
        let (Some(auth_url), Some(user), Some(key_file)) =
            (&self.swift_auth_url, &self.swift_user, &self.swift_key_file)
        else {
            bail!("--swift-url needs --swift-auth-url, --swift-user and --swift-key-file");
        };
        let key = std::fs::read_to_string(key_file)
            .with_context(|| format!("reading the Swift key file {}", key_file.display()))?;
        let key = key.lines().next().unwrap_or("").trim().to_owned();
        if key.is_empty() {
            bail!("the Swift key file {} is empty", key_file.display());
        }
        let auth = SwiftAuth {
            auth_url: auth_url.clone(),
            user: user.clone(),
            key,
        };
        let config = SwiftConfig {
            reseller_prefix: self.swift_reseller_prefix.clone(),
            segment_size: self.swift_segment_size,
            retries: self.swift_retries,
            timeout: std::time::Duration::from_secs(self.swift_timeout.max(1)),
            ..SwiftConfig::new(url, auth)
        };
        Ok(Some(SwiftObjectStore::new(config)?))
    }
}
