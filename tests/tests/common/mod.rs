//! Helpers shared by the seed scenario tests: a fixed clock that advances one minute per request,
//! the seeds' accounts, and short ways to send image and task commands through an `Engine` on
//! the selected backend (`imgshare_tests::backend`: SQLite, or PostgreSQL when
//! `IMGSHARE_TESTS_BACKEND=postgres`).

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::cell::Cell;

use chrono::{DateTime, Duration, TimeZone, Utc};
use imgshare_core::{
    Actor, Command, Context, DomainError, Image, ImageActivated, ImageCommand, ImageOrigin,
    NewImage, Profile, Region, TaskCommand,
};
use imgshare_store::{EngineError, Outcome};
use imgshare_tests::backend::TestEngine;
use uuid::Uuid;

/// The producer's account in seed 000 ("the account doing the sharing").
pub(crate) const PRODUCER: &str = "111111";
/// The consumer's account ("the account receiving the share").
pub(crate) const CONSUMER: &str = "222222";
/// An account that has nothing to do with the image.
pub(crate) const STRANGER: &str = "333333";

/// The exact 403 text a consumer gets when deleting a shared image (seed 000).
pub(crate) const NOT_PERMITTED_TO_DELETE: &str = "You are not permitted to delete this image.";
/// The exact 403 text a producer gets when setting a member's status (seed 001, §4.2).
pub(crate) const NOT_PERMITTED_TO_MODIFY_STATUS: &str =
    "You are not permitted to modify 'status' on this image.";

/// A region by name.
pub(crate) fn region(name: &str) -> Region {
    Region::parse(name).expect("valid region name")
}

/// A user of `tenant` holding `cloudImages:admin`: may share, accept, unshare, update, delete.
pub(crate) fn admin_of(tenant: &str) -> Actor {
    Actor::tenant(tenant, &format!("admin-{tenant}"), &["cloudImages:admin"])
}

/// A user of `tenant` holding `cloudImages:creator`: may share but not unshare or accept.
pub(crate) fn creator_of(tenant: &str) -> Actor {
    Actor::tenant(
        tenant,
        &format!("creator-{tenant}"),
        &["cloudImages:creator"],
    )
}

/// A user of `tenant` holding `cloudImages:observer`: reads and tags only.
pub(crate) fn observer_of(tenant: &str) -> Actor {
    Actor::tenant(
        tenant,
        &format!("observer-{tenant}"),
        &["cloudImages:observer"],
    )
}

/// Data facts of a saved snapshot.
pub(crate) fn snapshot_data() -> ImageActivated {
    ImageActivated::fixture(2_147_483_648)
}

/// A finished snapshot (ovf/vhd with data), so it registers `active`.
pub(crate) fn snapshot(name: &str) -> NewImage {
    NewImage::snapshot_fixture(name, 2_147_483_648)
}

/// The HTTP status of an engine error.
pub(crate) fn status(error: &EngineError) -> u16 {
    imgshare_server::error::status_of(error.kind()).as_u16()
}

/// The domain error inside an engine error.
pub(crate) fn domain(error: &EngineError) -> &DomainError {
    match error {
        EngineError::Domain(inner) => inner,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

/// An engine (in memory on SQLite, a new database on PostgreSQL) with a clock that starts at
/// 2014-02-26T12:00:00Z and advances one minute per request, so every event has its own,
/// increasing time.
pub(crate) struct World {
    /// The engine under test.
    pub(crate) engine: TestEngine,
    minutes: Cell<i64>,
}

impl World {
    /// A fresh engine with the Rackspace profile.
    pub(crate) fn new() -> Self {
        World {
            engine: TestEngine::new(Profile::default()),
            minutes: Cell::new(0),
        }
    }

    /// The time of the next request, then advances the clock one minute.
    pub(crate) fn tick(&self) -> DateTime<Utc> {
        let minutes = self.minutes.get();
        self.minutes.set(minutes + 1);
        Utc.with_ymd_and_hms(2014, 2, 26, 12, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    /// Moves the clock forward without a request.
    pub(crate) fn advance(&self, by: Duration) {
        self.minutes.set(self.minutes.get() + by.num_minutes());
    }

    /// A context for `actor` in `region_name` at the next tick.
    pub(crate) fn ctx(&self, actor: &Actor, region_name: &str) -> Context {
        let mut ctx = Context::new(actor.clone(), region(region_name), self.tick());
        ctx.request_id = Some(format!("req-{}", self.minutes.get()));
        ctx
    }

    /// Sends an image command.
    pub(crate) fn image(
        &self,
        actor: &Actor,
        region_name: &str,
        image_id: Uuid,
        command: ImageCommand,
    ) -> Result<Outcome, EngineError> {
        self.engine.execute(
            &self.ctx(actor, region_name),
            Command::Image { image_id, command },
        )
    }

    /// Sends a task command.
    pub(crate) fn task(
        &self,
        actor: &Actor,
        region_name: &str,
        task_id: Uuid,
        command: TaskCommand,
    ) -> Result<Outcome, EngineError> {
        self.engine.execute(
            &self.ctx(actor, region_name),
            Command::Task { task_id, command },
        )
    }

    /// GET the image as `actor` in `region_name`.
    pub(crate) fn get(
        &self,
        actor: &Actor,
        region_name: &str,
        image_id: Uuid,
    ) -> Result<Image, EngineError> {
        self.engine
            .get_image(&self.ctx(actor, region_name), image_id)
    }

    /// May `tenant` boot `image_id` in `region_name`?
    pub(crate) fn can_boot(&self, tenant: &str, image_id: Uuid, region_name: &str) -> bool {
        self.engine
            .can_boot(tenant, image_id, &region(region_name))
            .expect("can_boot reads the log")
    }

    /// Registers a finished snapshot of `server` owned by `owner`'s account in `region_name`.
    pub(crate) fn snapshot(
        &self,
        owner: &Actor,
        region_name: &str,
        image_id: Uuid,
        name: &str,
    ) -> Image {
        let outcome = self
            .image(
                owner,
                region_name,
                image_id,
                ImageCommand::Register {
                    origin: ImageOrigin::Snapshot {
                        server_id: format!("server-of-{name}"),
                    },
                    image: snapshot(name),
                },
            )
            .expect("snapshot registers");
        outcome.image().cloned().expect("an image")
    }

    /// Shares the image with `member`.
    pub(crate) fn share(&self, owner: &Actor, region_name: &str, image_id: Uuid, member: &str) {
        self.image(
            owner,
            region_name,
            image_id,
            ImageCommand::AddMember {
                member_id: member.to_owned(),
            },
        )
        .expect("share succeeds");
    }

    /// The member sets its own status.
    pub(crate) fn answer(
        &self,
        member: &Actor,
        region_name: &str,
        image_id: Uuid,
        answer: &str,
    ) -> Result<Outcome, EngineError> {
        self.image(
            member,
            region_name,
            image_id,
            ImageCommand::SetMemberStatus {
                member_id: member.tenant_id.clone(),
                status: answer.to_owned(),
            },
        )
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}
