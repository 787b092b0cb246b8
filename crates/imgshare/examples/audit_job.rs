//! An audit job: "which accounts could use image X on date D, and why?", answered from the log
//! as it stood then, followed by a check of the hash chain and the read models.
//!
//! The story: on 1 March a tenant snapshots a server and shares it with a partner; the partner
//! accepts on 2 March; on 5 March the tenant removes the share. An auditor asks about 3 March
//! (the partner could use it, as an accepted member) and 6 March (only the owner could).
//!
//! `cargo run -p imgshare --example audit_job` exits 0 when every answer is the expected one
//! and 1 (with the reason) otherwise.

use std::error::Error;

use imgshare::chrono::{DateTime, TimeZone, Utc};
use imgshare::uuid::Uuid;
use imgshare::{
    AccessReason, AccessReport, Actor, AsOf, Command, Context, Engine, EngineOptions,
    ImageActivated, ImageCommand, ImageOrigin, MemberStatus, NewImage, Region,
};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const OWNER: &str = "100100";
const PARTNER: &str = "200200";

fn day(d: u32) -> Result<DateTime<Utc>> {
    Ok(Utc
        .with_ymd_and_hms(2026, 3, d, 12, 0, 0)
        .single()
        .ok_or("no such day")?)
}

fn run(
    engine: &Engine,
    actor: &Actor,
    when: DateTime<Utc>,
    image_id: Uuid,
    command: ImageCommand,
) -> Result<()> {
    let ctx = Context::new(actor.clone(), Region::parse("DFW")?, when);
    engine.execute(&ctx, Command::Image { image_id, command })?;
    Ok(())
}

/// The job itself: who could use the image at `when`, one line per account.
fn who_could_use(engine: &Engine, image_id: Uuid, when: DateTime<Utc>) -> Result<AccessReport> {
    let report = engine.access_at(image_id, AsOf::Time(when))?;
    println!(
        "image {image_id} on {when} (log position {}):",
        report.position
    );
    for account in &report.accounts {
        println!(
            "  {}: can boot {}, because {:?}",
            account.tenant_id, account.can_boot, account.why
        );
    }
    Ok(report)
}

fn bootable_by(report: &AccessReport) -> Vec<(&str, Option<AccessReason>)> {
    report
        .accounts
        .iter()
        .filter(|account| account.can_boot)
        .map(|account| (account.tenant_id.as_str(), account.why))
        .collect()
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&dir.path().join("images.db"), EngineOptions::default())?;
    let owner = Actor::tenant(OWNER, "alice", &["cloudImages:admin"]);
    let partner = Actor::tenant(PARTNER, "bob", &["cloudImages:admin"]);
    let image_id = Uuid::new_v4();

    let image = NewImage {
        name: Some("build server".to_owned()),
        container_format: Some("ovf".to_owned()),
        disk_format: Some("vhd".to_owned()),
        data: Some(ImageActivated {
            size: 512,
            checksum: "0123456789abcdef0123456789abcdef".to_owned(),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        }),
        ..NewImage::default()
    };
    let origin = ImageOrigin::Snapshot {
        server_id: "server-7".to_owned(),
    };
    run(
        &engine,
        &owner,
        day(1)?,
        image_id,
        ImageCommand::Register { origin, image },
    )?;
    let share = ImageCommand::AddMember {
        member_id: PARTNER.to_owned(),
    };
    run(&engine, &owner, day(1)?, image_id, share)?;
    let accept = ImageCommand::SetMemberStatus {
        member_id: PARTNER.to_owned(),
        status: "accepted".to_owned(),
    };
    run(&engine, &partner, day(2)?, image_id, accept)?;
    let unshare = ImageCommand::RemoveMember {
        member_id: PARTNER.to_owned(),
    };
    run(&engine, &owner, day(5)?, image_id, unshare)?;

    let on_third = who_could_use(&engine, image_id, day(3)?)?;
    let want = vec![
        (OWNER, Some(AccessReason::Owner)),
        (
            PARTNER,
            Some(AccessReason::Member {
                member_status: MemberStatus::Accepted,
            }),
        ),
    ];
    if bootable_by(&on_third) != want {
        return Err(format!(
            "3 March: expected {want:?}, got {:?}",
            bootable_by(&on_third)
        )
        .into());
    }
    let on_sixth = who_could_use(&engine, image_id, day(6)?)?;
    let want = vec![(OWNER, Some(AccessReason::Owner))];
    if bootable_by(&on_sixth) != want {
        return Err(format!(
            "6 March: expected {want:?}, got {:?}",
            bootable_by(&on_sixth)
        )
        .into());
    }

    let verified = engine.verify()?;
    if !verified.is_ok() {
        return Err(format!("the log does not verify: {:?}", verified.first_difference).into());
    }
    println!(
        "chain and read models verified: {} events up to position {}",
        verified.events_checked, verified.head
    );
    Ok(())
}
