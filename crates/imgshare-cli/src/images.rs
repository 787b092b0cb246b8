//! `imgshare images publish` and `imgshare images snapshot`: the two ways an image enters the
//! catalogue that no tenant API call offers on the Rackspace profile (its API has no image
//! create). `publish` is the provider releasing a base image (public, unowned,
//! `image_type: base`); `snapshot` is what the compute service does when a tenant saves a
//! server (private to the tenant, `image_type: snapshot`, `instance_uuid` = the server). Both
//! take real bytes from a VHD file, stored through the `ImageDataStore` port like an upload
//! (size, md5 `checksum`, sha512 `os_hash_value` computed from the bytes), so that the image can
//! be downloaded and exported.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::Utc;
use imgshare_core::{vhd, Actor, Context, ImageOrigin, NewImage, Profile, Region};
use imgshare_store::{register_vhd, FsImageDataStore};
use uuid::Uuid;

use crate::{choose_profile, open_with, serve, DbArgs};

/// The user the provider's actions are recorded under.
pub(crate) const PROVIDER_USER: &str = "provider";

/// `imgshare images …`.
#[derive(clap::Subcommand)]
pub(crate) enum ImagesCommand {
    /// Publish a provider base image from a VHD file: public to every account of the region,
    /// owned by nobody, `image_type: base`. Prints the new image id.
    Publish(PublishArgs),
    /// Register a snapshot of a tenant's server from a VHD file, as the compute service does when
    /// a server is saved: private to the tenant, `image_type: snapshot`, `instance_uuid` = the
    /// server. Prints the new image id.
    Snapshot(SnapshotArgs),
}

/// What both commands take.
#[derive(clap::Args)]
pub(crate) struct ImageArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Where image data is kept; default: `<db file>.data` next to the database (as `serve`).
    #[arg(long, env = "IMGSHARE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The region the image lives in.
    #[arg(long, env = "IMGSHARE_REGION", default_value = "DFW")]
    region: String,
    /// The image's bytes: a fixed or dynamic VHD.
    #[arg(long, value_name = "FILE.vhd")]
    from: PathBuf,
    /// A custom property, `KEY=VALUE` (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// Minimum disk, GB.
    #[arg(long, default_value_t = 0)]
    min_disk: u64,
    /// Minimum RAM, MB.
    #[arg(long, default_value_t = 0)]
    min_ram: u64,
}

/// `imgshare images publish`.
#[derive(clap::Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// The image's name.
    #[arg(long)]
    name: String,
}

/// `imgshare images snapshot`.
#[derive(clap::Args)]
pub(crate) struct SnapshotArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// The account that owns the server (and will own the snapshot).
    #[arg(long)]
    tenant: String,
    /// The server the snapshot was taken of (its `instance_uuid`).
    #[arg(long)]
    server: String,
    /// The user who asked for the snapshot (its `user_id`); default: the tenant.
    #[arg(long)]
    user: Option<String>,
    /// The snapshot's name; default: the file name without its extension.
    #[arg(long)]
    name: Option<String>,
}

pub(crate) fn run(command: &ImagesCommand) -> anyhow::Result<()> {
    let (args, origin, actor, name) = match command {
        ImagesCommand::Publish(publish) => (
            &publish.image,
            ImageOrigin::Base,
            Actor::operator(PROVIDER_USER),
            publish.name.clone(),
        ),
        ImagesCommand::Snapshot(snapshot) => {
            // The engine takes any tenant a token names; here a person typed it.
            anyhow::ensure!(
                !snapshot.tenant.trim().is_empty(),
                "--tenant must name the account that owns the server"
            );
            let profile = choose_profile(&snapshot.image.db.db, snapshot.image.db.options.profile);
            let user = snapshot.user.as_deref().unwrap_or(&snapshot.tenant);
            let actor = Actor::tenant(
                &snapshot.tenant,
                user,
                &[profile.profile().full_access_role()],
            );
            let name = snapshot.name.clone().unwrap_or_else(|| {
                snapshot
                    .image
                    .from
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let origin = ImageOrigin::Snapshot {
                server_id: snapshot.server.clone(),
            };
            (&snapshot.image, origin, actor, name)
        }
    };
    let profile = choose_profile(&args.db.db, args.db.options.profile).profile();
    let region = checked_region(&profile, &args.region)?;
    let properties = parse_properties(&args.properties)?;
    let mut file =
        File::open(&args.from).with_context(|| format!("opening {}", args.from.display()))?;
    // Before the open: a missing --data-dir (PostgreSQL) must leave the database untouched.
    let store = data_store(&args.db.db, args.data_dir.clone())?;
    let engine = open_with(&args.db.db, &args.db.options, profile)?;
    let image = NewImage {
        name: Some(name),
        min_disk: args.min_disk,
        min_ram: args.min_ram,
        properties,
        ..NewImage::default()
    };
    let ctx = Context::new(actor, region, Utc::now());
    let image_id = Uuid::new_v4();
    register_vhd(&engine, &store, &ctx, image_id, origin, image, &mut file)
        .with_context(|| format!("registering {}", args.from.display()))?;
    println!("{image_id}");
    Ok(())
}

/// The region named `name`, if the profile serves it (Rackspace: its six regions).
pub(crate) fn checked_region(profile: &Profile, name: &str) -> anyhow::Result<Region> {
    let region = Region::parse(name)?;
    profile.check_region(&region)?;
    Ok(region)
}

/// `KEY=VALUE` pairs; the engine checks the names and values themselves.
fn parse_properties(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut properties = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            anyhow::bail!("--property {pair:?}: expected KEY=VALUE");
        };
        if properties
            .insert(key.to_owned(), value.to_owned())
            .is_some()
        {
            anyhow::bail!("--property {key:?} given twice");
        }
    }
    Ok(properties)
}

/// A fixed VHD holding `data`, with a fresh disk id: the bytes of a demo image.
pub(crate) fn fixed_vhd(data: &[u8]) -> Vec<u8> {
    vhd::fixed_vhd(data, *Uuid::new_v4().as_bytes(), *b"imgs")
}

/// Opens the data store a command keeps image bytes in.
pub(crate) fn data_store(db: &Path, given: Option<PathBuf>) -> anyhow::Result<FsImageDataStore> {
    let dir = serve::data_dir(db, given)?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    Ok(FsImageDataStore::new(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgshare_store::Engine;

    #[test]
    fn properties_are_key_equals_value() {
        let parsed = parse_properties(&["a=b".into(), "c=d=e".into(), "f=".into()]).unwrap();
        assert_eq!(parsed["a"], "b");
        assert_eq!(parsed["c"], "d=e");
        assert_eq!(parsed["f"], "");
        assert!(parse_properties(&["novalue".into()]).is_err());
        assert!(parse_properties(&["a=1".into(), "a=2".into()]).is_err());
    }

    #[test]
    fn a_file_that_is_not_a_vhd_registers_nothing() {
        let engine = Engine::in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FsImageDataStore::new(dir.path());
        let ctx = Context::new(
            Actor::tenant("111111", "u", &["cloudImages:admin"]),
            Region::parse("DFW").unwrap(),
            Utc::now(),
        );
        let origin = ImageOrigin::Snapshot {
            server_id: "srv".into(),
        };
        for bytes in [vec![0_u8; 10], vec![7_u8; 2048]] {
            let mut file = std::io::Cursor::new(bytes);
            let result = register_vhd(
                &engine,
                &store,
                &ctx,
                Uuid::new_v4(),
                origin.clone(),
                NewImage::default(),
                &mut file,
            );
            assert!(result.is_err());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
