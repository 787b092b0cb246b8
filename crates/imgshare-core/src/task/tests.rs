use super::*;
use crate::actor::Actor;
use crate::image::{self, Image};
use crate::model::ImageStatus;
use crate::Aggregate;
use chrono::{Duration, TimeZone};
use serde_json::json;
use std::collections::BTreeMap;

const TASK: Uuid = Uuid::from_u128(0x7a5c);
const NEW_IMAGE: Uuid = Uuid::from_u128(0x1e00);
const OWNER: &str = "111111";

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2014, 2, 26, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

fn dfw() -> Region {
    Region::parse("DFW").unwrap()
}

fn ctx(actor: Actor) -> Context {
    Context::new(actor, dfw(), at(100))
}

fn admin() -> Actor {
    Actor::tenant(OWNER, "alice", &["cloudImages:admin"])
}

fn worker() -> Actor {
    Actor::operator("task-worker")
}

fn data() -> ImageActivated {
    ImageActivated {
        size: 4096,
        checksum: "fedcba9876543210fedcba9876543210".to_owned(),
        virtual_size: Some(8192),
        os_hash_algo: None,
        os_hash_value: None,
    }
}

fn import_input() -> Value {
    json!({"image_properties": {"name": "imported"}, "import_from": "exports/image.vhd"})
}

fn created(task_type: TaskType) -> Event {
    Event::TaskCreated(TaskCreated {
        task_id: TASK,
        task_type,
        input: import_input(),
        owner: OWNER.to_owned(),
        user_id: "alice".to_owned(),
        region: dfw(),
    })
}

fn fold(mut state: Option<Task>, events: &[Event]) -> Option<Task> {
    for (minute, event) in (0..).zip(events) {
        state = apply(state, event, at(minute)).unwrap();
    }
    state
}

fn task_in(task_type: TaskType, status: TaskStatus) -> Option<Task> {
    let expires_at = at(50);
    let history = match status {
        TaskStatus::Pending => vec![],
        TaskStatus::Processing => vec![Event::TaskStarted {}],
        TaskStatus::Success => vec![
            Event::TaskStarted {},
            Event::TaskSucceeded {
                result: json!({}),
                expires_at,
            },
        ],
        TaskStatus::Failure => vec![Event::TaskFailed {
            message: "Container not found. Container: exports".to_owned(),
            expires_at,
        }],
    };
    let mut events = vec![created(task_type)];
    events.extend(history);
    let state = fold(None, &events);
    assert_eq!(state.as_ref().map(|task| task.status), Some(status));
    state
}

fn run(
    state: &Option<Task>,
    actor: Actor,
    command: &TaskCommand,
) -> Result<Vec<(StreamId, Event)>, DomainError> {
    decide(&Profile::rackspace(), state, TASK, command, &ctx(actor))
}

fn succeed() -> TaskCommand {
    TaskCommand::Succeed {
        result: json!({"export_location": "exports/x.vhd"}),
        imported_image: None,
    }
}

fn fail() -> TaskCommand {
    TaskCommand::Fail {
        message: "Container not found. Container: exports".to_owned(),
    }
}

fn error_of<T: std::fmt::Debug>(result: Result<T, DomainError>) -> (u16, &'static str) {
    let error = result.expect_err("expected an error");
    (
        crate::error::status_seen_by_clients(error.kind()),
        error.code(),
    )
}

// ---- transition table: pending → processing → success | failure ----------------------

fn check(from: TaskStatus, command: TaskCommand, expected: Option<TaskStatus>) {
    let state = task_in(TaskType::Export, from);
    let result = run(&state, worker(), &command);
    match expected {
        Some(next) => {
            let events = result.unwrap_or_else(|error| panic!("{command:?}: {error}"));
            let task_events: Vec<Event> = events
                .into_iter()
                .map(|(stream, event)| {
                    assert_eq!(stream, StreamId::Task(TASK));
                    event
                })
                .collect();
            let task = fold(state, &task_events).unwrap();
            assert_eq!(task.status, next);
        }
        None => assert_eq!(
            error_of(result),
            (409, "invalid_transition"),
            "{command:?} from {from}"
        ),
    }
}

macro_rules! task_transitions {
    ($($name:ident: $from:ident, $command:expr => $expected:expr;)+) => {
        $(
            #[test]
            fn $name() {
                check(TaskStatus::$from, $command, $expected);
            }
        )+
    };
}

task_transitions! {
    pending_start_goes_to_processing: Pending, TaskCommand::Start => Some(TaskStatus::Processing);
    pending_succeed_is_409: Pending, succeed() => None;
    pending_fail_goes_to_failure: Pending, fail() => Some(TaskStatus::Failure);
    processing_start_is_409: Processing, TaskCommand::Start => None;
    processing_succeed_goes_to_success: Processing, succeed() => Some(TaskStatus::Success);
    processing_fail_goes_to_failure: Processing, fail() => Some(TaskStatus::Failure);
    success_start_is_409: Success, TaskCommand::Start => None;
    success_succeed_is_409: Success, succeed() => None;
    success_fail_is_409: Success, fail() => None;
    failure_start_is_409: Failure, TaskCommand::Start => None;
    failure_succeed_is_409: Failure, succeed() => None;
    failure_fail_is_409: Failure, fail() => None;
}

#[test]
fn only_the_operator_drives_transitions() {
    let pending = task_in(TaskType::Export, TaskStatus::Pending);
    let processing = task_in(TaskType::Export, TaskStatus::Processing);
    for actor in [
        admin(),
        Actor::tenant(OWNER, "root", &["identity:user-admin"]),
    ] {
        assert_eq!(
            error_of(run(&pending, actor.clone(), &TaskCommand::Start)),
            (403, "role_forbidden")
        );
        assert_eq!(
            error_of(run(&processing, actor.clone(), &succeed())),
            (403, "role_forbidden")
        );
        assert_eq!(
            error_of(run(&processing, actor, &fail())),
            (403, "role_forbidden")
        );
    }
}

#[test]
fn worker_commands_on_a_missing_task_are_404() {
    for command in [TaskCommand::Start, succeed(), fail()] {
        assert_eq!(
            error_of(run(&None, worker(), &command)),
            (404, "task_not_found")
        );
    }
}

#[test]
fn worker_commands_from_another_region_are_404() {
    let pending = task_in(TaskType::Export, TaskStatus::Pending);
    let processing = task_in(TaskType::Export, TaskStatus::Processing);
    let ord = Context::new(worker(), Region::parse("ORD").unwrap(), at(100));
    for (state, command) in [
        (&pending, TaskCommand::Start),
        (&processing, succeed()),
        (&processing, fail()),
    ] {
        let result = decide(&Profile::rackspace(), state, TASK, &command, &ord);
        assert_eq!(error_of(result), (404, "task_not_found"), "{command:?}");
    }
}

#[test]
fn success_sets_expires_at_48_hours_after_now() {
    let state = task_in(TaskType::Export, TaskStatus::Processing);
    let events = run(&state, worker(), &succeed()).unwrap();
    let expected = at(100) + Duration::hours(48);
    assert_eq!(
        events,
        vec![(
            StreamId::Task(TASK),
            Event::TaskSucceeded {
                result: json!({"export_location": "exports/x.vhd"}),
                expires_at: expected,
            }
        )]
    );
    let task = fold(state, &[events[0].1.clone()]).unwrap();
    assert_eq!(task.expires_at, Some(expected));
    assert_eq!(
        task.result,
        Some(json!({"export_location": "exports/x.vhd"}))
    );
    assert_eq!(task.message, None);
}

#[test]
fn failure_sets_expires_at_48_hours_after_now_and_keeps_the_message() {
    for from in [TaskStatus::Pending, TaskStatus::Processing] {
        let state = task_in(TaskType::Export, from);
        let events = run(&state, worker(), &fail()).unwrap();
        let task = fold(state, &[events[0].1.clone()]).unwrap();
        assert_eq!(
            task.expires_at,
            Some(at(100) + Duration::hours(48)),
            "from {from}"
        );
        assert_eq!(
            task.message.as_deref(),
            Some("Container not found. Container: exports")
        );
        assert_eq!(task.result, None);
    }
}

#[test]
fn a_task_is_visible_only_to_its_owner_in_its_region_until_it_expires() {
    let task = task_in(TaskType::Export, TaskStatus::Success).unwrap();
    let expires_at = task.expires_at.unwrap();
    let before = expires_at - Duration::seconds(1);
    assert!(task.is_visible_to(OWNER, &dfw(), before));
    assert!(!task.is_visible_to("222222", &dfw(), before));
    assert!(!task.is_visible_to(OWNER, &Region::parse("ORD").unwrap(), before));
    assert!(!task.is_visible_to(OWNER, &dfw(), expires_at));
    let pending = task_in(TaskType::Export, TaskStatus::Pending).unwrap();
    assert!(
        pending.is_visible_to(OWNER, &dfw(), at(1_000_000)),
        "no expiry while pending"
    );
}

#[test]
fn an_import_success_registers_its_image_in_the_same_decision() {
    let state = task_in(TaskType::Import, TaskStatus::Processing);
    let command = TaskCommand::Succeed {
        result: json!({"image_id": NEW_IMAGE.to_string()}),
        imported_image: Some(ImportedImage {
            image_id: NEW_IMAGE,
            name: Some("imported".to_owned()),
            data: data(),
        }),
    };
    let events = run(&state, worker(), &command).unwrap();
    let streams: Vec<StreamId> = events.iter().map(|(stream, _)| *stream).collect();
    assert_eq!(
        streams,
        vec![
            StreamId::Task(TASK),
            StreamId::Image(NEW_IMAGE),
            StreamId::Image(NEW_IMAGE)
        ]
    );
    let mut image: Option<Image> = None;
    for (_, event) in &events[1..] {
        image = image::apply(image, event, at(100)).unwrap();
    }
    let image = image.unwrap();
    assert_eq!(image.id, NEW_IMAGE);
    assert_eq!(image.status, ImageStatus::Active);
    assert_eq!(image.visibility, Visibility::Private);
    assert_eq!(image.owner.as_deref(), Some(OWNER));
    assert_eq!(image.region, dfw());
    assert_eq!(image.name.as_deref(), Some("imported"));
    assert_eq!(image.container_format.as_deref(), Some("ovf"));
    assert_eq!(image.disk_format.as_deref(), Some("vhd"));
    assert!(!image.protected);
    assert_eq!(image.checksum.as_deref(), Some(data().checksum.as_str()));
    assert_eq!(image.properties["image_type"], "import");
    assert_eq!(image.properties["os_type"], "linux");
    assert_eq!(image.properties["auto_disk_config"], "False");
    assert_eq!(image.properties["user_id"], "alice");
    assert!(image.members.is_empty());
}

#[test]
fn an_import_success_onto_an_existing_image_id_is_409() {
    let mut states = BTreeMap::new();
    states.insert(
        StreamId::Task(TASK),
        Aggregate::Task(task_in(TaskType::Import, TaskStatus::Processing)),
    );
    let taken = image::apply(
        None,
        &Event::ImageRegistered(crate::event::ImageRegistered {
            image_id: NEW_IMAGE,
            region: dfw(),
            owner: Some("999999".to_owned()),
            name: None,
            visibility: Visibility::Private,
            protected: false,
            os_hidden: false,
            container_format: None,
            disk_format: None,
            min_disk: 0,
            min_ram: 0,
            tags: Vec::new(),
            properties: BTreeMap::new(),
        }),
        at(0),
    )
    .unwrap();
    states.insert(StreamId::Image(NEW_IMAGE), Aggregate::Image(taken));
    let command = crate::Command::Task {
        task_id: TASK,
        command: TaskCommand::Succeed {
            result: json!({"image_id": NEW_IMAGE.to_string()}),
            imported_image: Some(ImportedImage {
                image_id: NEW_IMAGE,
                name: None,
                data: data(),
            }),
        },
    };
    let result = crate::decide(&Profile::rackspace(), &states, &command, &ctx(worker()));
    assert_eq!(error_of(result), (409, "already_exists"));
}

// ---- create ---------------------------------------------------------------------------

fn create(task_type: &str, input: Value) -> TaskCommand {
    TaskCommand::Create {
        task_type: task_type.to_owned(),
        input,
    }
}

#[test]
fn an_admin_creates_a_pending_task_owned_by_its_account_in_its_region() {
    for (task_type, parsed) in [("import", TaskType::Import), ("export", TaskType::Export)] {
        let events = run(&None, admin(), &create(task_type, import_input())).unwrap();
        assert_eq!(events.len(), 1);
        let (stream, event) = &events[0];
        assert_eq!(*stream, StreamId::Task(TASK));
        let task = fold(None, std::slice::from_ref(event)).unwrap();
        assert_eq!(task.status, TaskStatus::Pending);
        assert_eq!(task.task_type, parsed);
        assert_eq!(task.owner, OWNER);
        assert_eq!(task.user_id, "alice");
        assert_eq!(task.region, dfw());
        assert_eq!(task.input, import_input());
        assert_eq!(task.expires_at, None);
    }
}

#[test]
fn creating_a_task_needs_an_admin_role() {
    for role in ["cloudImages:creator", "cloudImages:observer", "observer"] {
        let actor = Actor::tenant(OWNER, "bob", &[role]);
        assert_eq!(
            error_of(run(&None, actor, &create("import", import_input()))),
            (403, "role_forbidden"),
            "{role}"
        );
    }
    let global_admin = Actor::tenant(OWNER, "root", &["admin"]);
    assert!(run(&None, global_admin, &create("import", import_input())).is_ok());
}

#[test]
fn an_unknown_task_type_is_400() {
    for task_type in ["", "Import", "copy", "clone"] {
        assert_eq!(
            error_of(run(&None, admin(), &create(task_type, import_input()))),
            (400, "invalid_input"),
            "{task_type:?}"
        );
    }
}

#[test]
fn glance_creates_import_tasks_only() {
    let profile = Profile::glance();
    let glance_admin = Actor::tenant(OWNER, "root", &["admin"]);
    let export = decide(
        &profile,
        &None,
        TASK,
        &create("export", import_input()),
        &ctx(glance_admin.clone()),
    );
    assert_eq!(error_of(export), (400, "invalid_input"));
    let import = decide(
        &profile,
        &None,
        TASK,
        &create("import", import_input()),
        &ctx(glance_admin),
    );
    assert!(import.is_ok());
}

#[test]
fn task_input_must_be_an_object_400() {
    for input in [json!(null), json!("exports/x.vhd"), json!([1]), json!(3)] {
        assert_eq!(
            error_of(run(&None, admin(), &create("import", input))),
            (400, "invalid_input")
        );
    }
}

#[test]
fn creating_over_an_existing_task_id_is_409() {
    let state = task_in(TaskType::Import, TaskStatus::Pending);
    assert_eq!(
        error_of(run(&state, admin(), &create("import", import_input()))),
        (409, "already_exists")
    );
}

#[test]
fn a_doomed_input_still_creates_a_task() {
    // An export of an image the caller does not own, with a bad container: 201, failed later.
    let input = json!({"image_uuid": "not-mine", "receiving_swift_container": "a/b?c."});
    assert!(run(&None, admin(), &create("export", input)).is_ok());
}
