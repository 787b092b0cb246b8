//! A compute service embedding imgshare: it saves a tenant's server as a snapshot (the disk as a
//! VHD, through the image data port), the tenant shares the snapshot with a second account, and
//! before booting anything the service asks `can_boot` for the account and the region.
//!
//! `cargo run -p imgshare --example compute_service` exits 0 when every answer is the expected
//! one and 1 (with the reason) otherwise.

use std::error::Error;
use std::io::Cursor;
use std::path::Path;

use imgshare::chrono::{DateTime, TimeZone, Utc};
use imgshare::core::vhd::fixed_vhd;
use imgshare::uuid::Uuid;
use imgshare::{
    register_vhd, Actor, Command, Context, Engine, EngineOptions, FsImageDataStore, ImageCommand,
    ImageOrigin, ImageStatus, NewImage, Region,
};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The compute service's own view of a boot request.
struct Boot<'a> {
    tenant: &'a str,
    image_id: Uuid,
    region: &'a Region,
}

/// The service: one engine (one database file) and the directory image bytes live in.
struct ComputeService {
    engine: Engine,
    data: FsImageDataStore,
}

impl ComputeService {
    fn open(dir: &Path) -> Result<Self> {
        let engine = Engine::open(&dir.join("images.db"), EngineOptions::default())?;
        let data_dir = dir.join("image-data");
        std::fs::create_dir_all(&data_dir)?;
        let data = FsImageDataStore::new(data_dir);
        Ok(Self { engine, data })
    }

    /// Saves `server_id`'s disk as a snapshot owned by the server's tenant.
    fn snapshot(&self, ctx: &Context, server_id: &str, name: &str, disk: &[u8]) -> Result<Uuid> {
        let image_id = Uuid::new_v4();
        let vhd = fixed_vhd(disk, *image_id.as_bytes(), *b"cmpt");
        let image = NewImage {
            name: Some(name.to_owned()),
            ..NewImage::default()
        };
        let origin = ImageOrigin::Snapshot {
            server_id: server_id.to_owned(),
        };
        register_vhd(
            &self.engine,
            &self.data,
            ctx,
            image_id,
            origin,
            image,
            &mut Cursor::new(vhd),
        )?;
        Ok(image_id)
    }

    /// Boots only what the catalogue allows: the answer is the engine's, never the service's.
    fn boot(&self, request: &Boot<'_>) -> Result<bool> {
        Ok(self
            .engine
            .can_boot(request.tenant, request.image_id, request.region)?)
    }

    /// Asks before booting and fails unless the answer is `want`.
    fn check(&self, what: &str, request: &Boot<'_>, want: bool) -> Result<()> {
        expect(what, self.boot(request)?, want)
    }
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn expect(what: &str, got: bool, want: bool) -> Result<()> {
    if got == want {
        println!("ok: {what}: {got}");
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {got}").into())
    }
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let service = ComputeService::open(dir.path())?;
    let dfw = Region::parse("DFW")?;
    let ord = Region::parse("ORD")?;
    let owner = Actor::tenant("100100", "alice", &["cloudImages:admin"]);
    let friend = "200200";
    let stranger = "300300";

    let ctx = Context::new(owner, dfw.clone(), at(9));
    let image_id = service.snapshot(&ctx, "server-1", "web-01 before upgrade", b"a disk")?;
    let image = service
        .engine
        .image_state(image_id)?
        .ok_or("the snapshot is not in the catalogue")?;
    expect(
        "the snapshot is active",
        image.status == ImageStatus::Active,
        true,
    )?;
    let asked = Boot {
        tenant: "100100",
        image_id,
        region: &dfw,
    };
    service.check("the owner may boot its snapshot in DFW", &asked, true)?;
    let asked = Boot {
        tenant: friend,
        image_id,
        region: &dfw,
    };
    service.check(
        "another account may not boot it before it is shared",
        &asked,
        false,
    )?;

    let share = ImageCommand::AddMember {
        member_id: friend.to_owned(),
    };
    let ctx = Context::new(ctx.actor.clone(), dfw.clone(), at(10));
    service.engine.execute(
        &ctx,
        Command::Image {
            image_id,
            command: share,
        },
    )?;
    let asked = Boot {
        tenant: friend,
        image_id,
        region: &dfw,
    };
    service.check(
        "the member may boot the shared snapshot in DFW",
        &asked,
        true,
    )?;
    let asked = Boot {
        tenant: friend,
        image_id,
        region: &ord,
    };
    service.check("nobody boots it in another region", &asked, false)?;
    let asked = Boot {
        tenant: stranger,
        image_id,
        region: &dfw,
    };
    service.check(
        "an account it is not shared with may not boot it",
        &asked,
        false,
    )?;
    println!("compute service: every boot decision as expected");
    Ok(())
}
