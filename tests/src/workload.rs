//! A deterministic stream of image commands for crash and concurrency tests.
//!
//! Command `index` of a workload `seed` is always the same command, with the same command id,
//! actor and clock, so a run that was killed and resumed must end in exactly the log (same
//! events, same hash chain) that one uninterrupted run gives.

use chrono::{DateTime, Duration, TimeZone, Utc};
use imgshare_core::patch::{PatchDialect, PatchDocument, PatchOp, PatchOpKind};
use imgshare_core::{Actor, Command, Context, ImageCommand, ImageOrigin, NewImage, Region};
use uuid::Uuid;

/// The owner of every workload image.
pub const OWNER: &str = "100000";
/// Accounts the images are shared with.
pub const MEMBERS: [&str; 4] = ["200001", "200002", "200003", "200004"];
/// Images per workload.
pub const IMAGES: u64 = 3;
const TAGS: [&str; 5] = ["web", "db", "gold", "beta", "lts"];
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b4e_8d3a_4c5f_9e7b_1a2d_3c4e_5f60);

/// splitmix64: a tiny, well-mixed generator; the same seed gives the same numbers everywhere.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A small seeded random source for the tests' own choices (kill delays, workers).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }

    /// A number in `low..high` (`high > low`).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low)
    }
}

/// The region every workload command runs in.
pub fn region() -> Region {
    Region::parse("DFW").unwrap_or_else(|_| unreachable!("DFW is a valid region"))
}

/// The clock of command `index`: one second apart, so recorded times are reproducible.
pub fn time_of(index: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        + Duration::seconds(i64::try_from(index).unwrap_or(i64::MAX))
}

/// An admin of `tenant`.
pub fn admin(tenant: &str) -> Actor {
    Actor::tenant(tenant, &format!("admin-{tenant}"), &["cloudImages:admin"])
}

/// The id of workload image `k`.
pub fn image_id(seed: u64, k: u64) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("image {seed} {k}").as_bytes())
}

/// The command id of command `index`.
pub fn command_id(seed: u64, index: u64) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("command {seed} {index}").as_bytes())
}

/// A registered, active snapshot named `name`.
pub fn register(name: &str) -> ImageCommand {
    ImageCommand::Register {
        origin: ImageOrigin::Snapshot {
            server_id: "srv-reliability".to_owned(),
        },
        image: NewImage::snapshot_fixture(name, 1024),
    }
}

/// Command `index` of workload `seed`: the first commands register the images, then a mix of
/// shares, answers, unshares, tags and renames. Some are refused by the domain (accepting a
/// share that does not exist); refusals are part of the workload.
pub fn command_at(seed: u64, index: u64) -> (Context, Uuid, Command) {
    let r = mix(seed ^ mix(index));
    let (actor, k, command) = if index < IMAGES {
        (admin(OWNER), index, register(&format!("image-{index}")))
    } else {
        let k = r % IMAGES;
        let member = MEMBERS[((r >> 8) % MEMBERS.len() as u64) as usize].to_owned();
        let tag = TAGS[((r >> 16) % TAGS.len() as u64) as usize].to_owned();
        match (r >> 24) % 8 {
            0 | 1 => (
                admin(OWNER),
                k,
                ImageCommand::AddMember { member_id: member },
            ),
            2 => (
                admin(&member),
                k,
                ImageCommand::SetMemberStatus {
                    member_id: member.clone(),
                    status: "accepted".to_owned(),
                },
            ),
            3 => (
                admin(&member),
                k,
                ImageCommand::SetMemberStatus {
                    member_id: member.clone(),
                    status: "rejected".to_owned(),
                },
            ),
            4 => (
                admin(OWNER),
                k,
                ImageCommand::RemoveMember { member_id: member },
            ),
            5 => (admin(OWNER), k, ImageCommand::AddTag { tag }),
            6 => (admin(OWNER), k, ImageCommand::RemoveTag { tag }),
            _ => (admin(OWNER), k, rename(&format!("image-{k}-{index}"))),
        }
    };
    let ctx = Context::new(actor, region(), time_of(index));
    let command = Command::Image {
        image_id: image_id(seed, k),
        command,
    };
    (ctx, command_id(seed, index), command)
}

/// A JSON-patch that replaces the name.
pub fn rename(name: &str) -> ImageCommand {
    ImageCommand::Update(PatchDocument {
        dialect: PatchDialect::V2_1,
        ops: vec![PatchOp {
            kind: PatchOpKind::Replace,
            path: "name".to_owned(),
            index: None,
            value: Some(serde_json::Value::String(name.to_owned())),
        }],
    })
}

/// What one contending worker did, line by line, in the format the child process prints:
/// `ok <command id> <events> <what>`, `refused <command id> <code> <what>`, `busy <command id>`
/// (a [`StoreError::Busy`] that the worker retried with the same command id), or
/// `failed <command id> <code> <message>` (anything else; the tests expect none).
///
/// [`StoreError::Busy`]: imgshare_store::StoreError::Busy
pub mod contention {
    use imgshare_core::{Command, Context, ImageCommand};
    use imgshare_store::{Engine, EngineError, StoreError};
    use uuid::Uuid;

    use super::{admin, region, time_of, OWNER};

    /// The account worker `worker` adds as its `j`-th member.
    pub fn own_member(worker: u64, j: u64) -> String {
        format!("3{worker:02}{j:04}")
    }

    /// The account every worker tries to add as its `j`-th shared member: one wins.
    pub fn shared_member(j: u64) -> String {
        format!("4{j:06}")
    }

    /// Runs `count` rounds on `image_id`: add an own member, race the others to add the shared
    /// member, let the own member accept, tag the image. Busy is retried with the same command
    /// id (at most `busy_retries` times), which is safe because a retry of a command that did
    /// commit writes nothing.
    pub fn run(
        engine: &Engine,
        image_id: Uuid,
        worker: u64,
        count: u64,
        busy_retries: u32,
        mut out: impl FnMut(String),
    ) {
        for j in 0..count {
            let own = own_member(worker, j);
            let steps = [
                (
                    OWNER.to_owned(),
                    "add",
                    ImageCommand::AddMember {
                        member_id: own.clone(),
                    },
                ),
                (
                    OWNER.to_owned(),
                    "share",
                    ImageCommand::AddMember {
                        member_id: shared_member(j),
                    },
                ),
                (
                    own.clone(),
                    "accept",
                    ImageCommand::SetMemberStatus {
                        member_id: own.clone(),
                        status: "accepted".to_owned(),
                    },
                ),
                (OWNER.to_owned(), "tag", ImageCommand::AddTag { tag: own }),
            ];
            for (tenant, what, command) in steps {
                let ctx = Context::new(admin(&tenant), region(), time_of(j));
                let command_id = Uuid::new_v4();
                let mut attempts = 0;
                loop {
                    let command = Command::Image {
                        image_id,
                        command: command.clone(),
                    };
                    match engine.execute_idempotent(&ctx, command_id, command) {
                        Ok(outcome) => {
                            out(format!("ok {command_id} {} {what}", outcome.events.len()));
                        }
                        Err(EngineError::Store(StoreError::Busy)) if attempts < busy_retries => {
                            attempts += 1;
                            out(format!("busy {command_id}"));
                            continue;
                        }
                        Err(error @ EngineError::Domain(_)) => {
                            out(format!("refused {command_id} {} {what}", error.code()));
                        }
                        Err(error) => {
                            out(format!("failed {command_id} {} {error}", error.code()));
                        }
                    }
                    break;
                }
            }
        }
    }
}
