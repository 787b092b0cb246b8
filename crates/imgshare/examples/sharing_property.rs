//! A property test of one sharing rule, written against the public API only, in the style of
//! `docs/invariants.md`: after every step of a random sequence of shares, answers and unshares,
//! an account can boot an image exactly when, in the image's region, it owns it or is a member
//! (in any status), and its default list holds the image exactly when it owns it or accepted.
//! The model is the reader's own: a map of who holds which share in which status.
//!
//! `cargo run -p imgshare --example sharing_property` runs 64 cases (`PROPTEST_CASES` changes
//! that) and exits 1 with the shrunk failing sequence if the rule is broken.

use std::collections::BTreeMap;
use std::process::ExitCode;

use imgshare::chrono::{TimeZone, Utc};
use imgshare::uuid::Uuid;
use imgshare::{
    Actor, Command, Context, Engine, ImageActivated, ImageCommand, ImageOrigin, ImageQuery,
    NewImage, Region,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const OWNER: &str = "t0";
const ACCOUNTS: [&str; 3] = ["t1", "t2", "t3"];

/// One step: the owner shares or unshares, or an account answers its share.
#[derive(Debug, Clone)]
enum Step {
    Share(usize),
    Unshare(usize),
    Answer(usize, &'static str),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..ACCOUNTS.len()).prop_map(Step::Share),
        (0..ACCOUNTS.len()).prop_map(Step::Unshare),
        (
            0..ACCOUNTS.len(),
            prop_oneof![Just("accepted"), Just("rejected"), Just("pending")]
        )
            .prop_map(|(account, status)| Step::Answer(account, status)),
    ]
}

fn actor(tenant: &str) -> Actor {
    Actor::tenant(tenant, &format!("user-{tenant}"), &["cloudImages:admin"])
}

fn check(steps: &[Step]) -> Result<(), TestCaseError> {
    let fail = |error: &dyn std::fmt::Display| TestCaseError::fail(error.to_string());
    let engine = Engine::in_memory().map_err(|e| fail(&e))?;
    let dfw = Region::parse("DFW").map_err(|e| fail(&e))?;
    let ord = Region::parse("ORD").map_err(|e| fail(&e))?;
    let now = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| TestCaseError::fail("bad time"))?;
    let image_id = Uuid::from_u128(1);
    let ctx = |tenant: &str| Context::new(actor(tenant), dfw.clone(), now);
    let image = NewImage {
        name: Some("shared".to_owned()),
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
        server_id: "server-1".to_owned(),
    };
    let register = ImageCommand::Register { origin, image };
    engine
        .execute(
            &ctx(OWNER),
            Command::Image {
                image_id,
                command: register,
            },
        )
        .map_err(|e| fail(&e))?;

    // The model: account -> status of its share.
    let mut shares: BTreeMap<&str, &str> = BTreeMap::new();
    for step in steps {
        let (caller, command) = match step {
            Step::Share(a) => (
                OWNER,
                ImageCommand::AddMember {
                    member_id: ACCOUNTS[*a].to_owned(),
                },
            ),
            Step::Unshare(a) => (
                OWNER,
                ImageCommand::RemoveMember {
                    member_id: ACCOUNTS[*a].to_owned(),
                },
            ),
            Step::Answer(a, status) => (
                ACCOUNTS[*a],
                ImageCommand::SetMemberStatus {
                    member_id: ACCOUNTS[*a].to_owned(),
                    status: (*status).to_owned(),
                },
            ),
        };
        let result = engine.execute(&ctx(caller), Command::Image { image_id, command });
        // What the model expects the engine to accept, and the model's next state.
        let accepted = match step {
            // Sharing twice is refused (409) and leaves the share as it was.
            Step::Share(a) if shares.contains_key(ACCOUNTS[*a]) => false,
            Step::Share(a) => shares.insert(ACCOUNTS[*a], "pending").is_none(),
            Step::Unshare(a) => shares.remove(ACCOUNTS[*a]).is_some(),
            Step::Answer(a, status) => match shares.get_mut(ACCOUNTS[*a]) {
                Some(current) => {
                    *current = status;
                    true
                }
                None => false,
            },
        };
        prop_assert_eq!(
            result.is_ok(),
            accepted,
            "step {:?}: {:?}",
            step,
            result.err()
        );

        for account in ACCOUNTS.iter().copied().chain([OWNER]) {
            let member = shares.get(account).copied();
            let may_boot = account == OWNER || member.is_some();
            let boots = engine
                .can_boot(account, image_id, &dfw)
                .map_err(|e| fail(&e))?;
            prop_assert_eq!(boots, may_boot, "{} may boot after {:?}", account, step);
            let elsewhere = engine
                .can_boot(account, image_id, &ord)
                .map_err(|e| fail(&e))?;
            prop_assert!(!elsewhere, "{} boots in ORD", account);
            let listed = engine
                .images(&ctx(account), &ImageQuery::new())
                .map_err(|e| fail(&e))?
                .images
                .iter()
                .any(|view| view.image().id == image_id);
            let should_list = account == OWNER || member == Some("accepted");
            prop_assert_eq!(listed, should_list, "{} lists it after {:?}", account, step);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    match runner.run(&proptest::collection::vec(step(), 1..24), |steps| {
        check(&steps)
    }) {
        Ok(()) => {
            println!("sharing rule held in {cases} random sequences");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sharing rule broken: {error}");
            ExitCode::FAILURE
        }
    }
}
