//! A database that cannot grow, cannot be written or is damaged: each gives a typed error with a
//! stable code, and a refused command leaves the log and the read models as they were.
//!
//! The disk-full and read-only cases on a real file system need a small tmpfs, which only root
//! may mount; elsewhere they print `SKIP` and the reason, and the portable `max_page_count`
//! case still runs. Details in `docs/RELIABILITY.md`.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use imgshare_core::{Command, Context, ImageCommand};
use imgshare_projection::tables;
use imgshare_store::engine::event_id_for;
use imgshare_store::{
    find_by_event_ids, head, verify_chain, BatchItem, DbOptions, Engine, EngineError,
    EngineOptions, StoreError,
};
use imgshare_tests::workload;
use uuid::Uuid;

fn ctx() -> Context {
    Context::new(
        workload::admin(workload::OWNER),
        workload::region(),
        workload::time_of(0),
    )
}

fn register(name: &str) -> (Uuid, Command) {
    let image_id = Uuid::new_v4();
    let command = Command::Image {
        image_id,
        command: workload::register(name),
    };
    (image_id, command)
}

fn open_with(path: &Path, db: DbOptions) -> Result<Engine, EngineError> {
    Engine::open(
        path,
        EngineOptions {
            db,
            ..EngineOptions::default()
        },
    )
}

/// The log head and all read-model rows: what a refused command must leave untouched.
fn snapshot(engine: &Engine) -> (Option<(i64, String)>, Vec<String>) {
    engine
        .read(|conn| Ok((head(conn)?, tables::dump(conn)?)))
        .unwrap()
}

fn chain_is_intact(engine: &Engine) {
    let report = engine.read(|conn| Ok(verify_chain(conn)?)).unwrap();
    assert_eq!(report.first_mismatch, None);
}

/// Registers images with long names until the database refuses one; returns the refused
/// command's id and the error, after checking the refusal changed nothing.
fn fill_until_refused(engine: &Engine) -> (Uuid, Command, EngineError) {
    for index in 0..100_000 {
        let before = snapshot(engine);
        let name = format!("{index:08}-{}", "n".repeat(240));
        let (_, command) = register(&name);
        let command_id = Uuid::new_v4();
        if let Err(error) = engine.execute_idempotent(&ctx(), command_id, command.clone()) {
            assert_eq!(snapshot(engine), before, "a refused command left a trace");
            return (command_id, command, error);
        }
    }
    panic!("the database never filled up");
}

#[test]
fn a_database_at_its_page_limit_refuses_with_storage_full_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.db");
    let pages: u32 = {
        let engine = open_with(&path, DbOptions::default()).unwrap();
        let (_, command) = register("first");
        engine.execute(&ctx(), command).unwrap();
        engine
            .read(|conn| Ok(conn.pragma_query_value(None, "page_count", |r| r.get(0))?))
            .unwrap()
    };
    let capped = DbOptions {
        max_page_count: Some(pages + 8),
        ..DbOptions::default()
    };
    let engine = open_with(&path, capped).unwrap();
    let (command_id, command, error) = fill_until_refused(&engine);
    assert!(
        matches!(error, EngineError::Store(StoreError::Full)),
        "{error:?}"
    );
    assert_eq!(
        (
            error.code(),
            imgshare_server::error::status_of(error.kind()).as_u16()
        ),
        ("storage_full", 507)
    );
    chain_is_intact(&engine);
    // Reads still work on a full database.
    assert!(engine.list_images(&ctx(), "").is_ok());
    drop(engine);

    // With room again, the same command id is a first execution: nothing of it was stored.
    let engine = open_with(&path, DbOptions::default()).unwrap();
    let outcome = engine
        .execute_idempotent(&ctx(), command_id, command)
        .unwrap();
    assert!(!outcome.already_applied);
    chain_is_intact(&engine);
}

/// Group commit runs several commands in one transaction; SQLite rolls that whole transaction
/// back when the database is full, and each command must still get its own typed answer.
#[test]
fn a_batch_that_fills_the_database_gives_each_command_its_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped-batch.db");
    let pages: u32 = open_with(&path, DbOptions::default())
        .unwrap()
        .read(|conn| Ok(conn.pragma_query_value(None, "page_count", |r| r.get(0))?))
        .unwrap();
    let capped = DbOptions {
        max_page_count: Some(pages + 8),
        ..DbOptions::default()
    };
    let engine = open_with(&path, capped).unwrap();
    let items: Vec<BatchItem> = (0..200)
        .map(|index| BatchItem {
            ctx: ctx(),
            command_id: Uuid::new_v4(),
            command: register(&format!("{index:04}-{}", "b".repeat(240))).1,
        })
        .collect();
    let ids: Vec<Uuid> = items.iter().map(|item| item.command_id).collect();
    let results = engine.execute_batch(items).unwrap();
    let accepted = results.iter().take_while(|result| result.is_ok()).count();
    assert!(accepted > 0 && accepted < results.len(), "{accepted}");
    for result in &results[accepted..] {
        let error = result.as_ref().unwrap_err();
        assert!(
            matches!(error, EngineError::Store(StoreError::Full)),
            "{error:?}"
        );
    }
    chain_is_intact(&engine);
    let stored = engine
        .read(|conn| {
            let first: Vec<Uuid> = ids.iter().map(|id| event_id_for(*id, 0)).collect();
            Ok(find_by_event_ids(conn, &first)?)
        })
        .unwrap();
    assert_eq!(
        stored.len(),
        accepted,
        "stored commands differ from the answers"
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at a new directory under `parent`, or says why it cannot.
    fn mount(parent: &Path, size: &str) -> Result<Tmpfs, String> {
        let dir = parent.join("tmpfs");
        std::fs::create_dir(&dir).map_err(|error| error.to_string())?;
        let output = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|error| format!("cannot run mount: {error}"))?;
        if output.status.success() {
            Ok(Tmpfs(dir))
        } else {
            Err(format!(
                "mount -t tmpfs is not permitted here: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn remount_read_only(&self) {
        let status = Process::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount read-only failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_file_system_refuses_with_storage_full_and_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = match Tmpfs::mount(dir.path(), "1m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            println!("SKIP disk-full on a real file system: {reason}");
            return;
        }
    };
    let path = tmpfs.0.join("full.db");
    // Space to give back once the disk is full.
    let ballast = tmpfs.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 128 * 1024]).unwrap();
    let engine = open_with(&path, DbOptions::default()).unwrap();
    let (command_id, command, error) = fill_until_refused(&engine);
    assert!(
        matches!(error, EngineError::Store(StoreError::Full)),
        "{error:?}"
    );
    assert_eq!(error.code(), "storage_full");
    chain_is_intact(&engine);

    std::fs::remove_file(&ballast).unwrap();
    let outcome = engine
        .execute_idempotent(&ctx(), command_id, command)
        .unwrap();
    assert!(!outcome.already_applied);
    chain_is_intact(&engine);
    drop(engine);
    let reopened = open_with(&path, DbOptions::default()).unwrap();
    chain_is_intact(&reopened);
}

#[test]
fn a_read_only_database_refuses_writes_with_a_typed_error_and_can_still_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let is_root = Process::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    // Root writes through file permissions, so as root the file system itself is made
    // read-only; anyone else gets a read-only directory and file.
    let (tmpfs, home) = if is_root {
        match Tmpfs::mount(dir.path(), "4m") {
            Ok(tmpfs) => {
                let home = tmpfs.0.clone();
                (Some(tmpfs), home)
            }
            Err(reason) => {
                println!("SKIP read-only database: running as root and {reason}");
                return;
            }
        }
    } else {
        (None, dir.path().join("ro"))
    };
    std::fs::create_dir_all(&home).unwrap();
    let path = home.join("ro.db");
    let (image_id, before) = {
        let engine = open_with(&path, DbOptions::default()).unwrap();
        let (image_id, command) = register("kept");
        engine.execute(&ctx(), command).unwrap();
        (image_id, snapshot(&engine))
    };
    match &tmpfs {
        Some(tmpfs) => tmpfs.remount_read_only(),
        None => {
            use std::os::unix::fs::PermissionsExt as _;
            for file in [&path, &home] {
                let mode = if file == &home { 0o555 } else { 0o444 };
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    }

    let tag = Command::Image {
        image_id,
        command: ImageCommand::AddTag {
            tag: "new".to_owned(),
        },
    };
    let error = match open_with(&path, DbOptions::default()) {
        Err(error) => error,
        Ok(engine) => {
            let error = engine.execute(&ctx(), tag).unwrap_err();
            assert_eq!(snapshot(&engine), before);
            error
        }
    };
    assert!(
        matches!(error, EngineError::Store(StoreError::ReadOnly)),
        "{error:?}"
    );
    assert_eq!(
        (
            error.code(),
            imgshare_server::error::status_of(error.kind()).as_u16()
        ),
        ("database_read_only", 503)
    );
    // Reading still works: the audit tools' read-only open.
    let reader = Engine::open_read_only(&path, imgshare_core::Profile::default());
    match reader {
        Ok(reader) => assert!(reader.image_state(image_id).unwrap().is_some()),
        // A read-only directory without the WAL's shared-memory file can only be reported.
        Err(error) => assert!(tmpfs.is_none() && error.code() == "database_read_only"),
    }
    if tmpfs.is_none() {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_damaged_header_is_reported_as_a_corrupt_database_and_the_file_is_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    {
        let engine = open_with(&path, DbOptions::default()).unwrap();
        let (_, command) = register("lost");
        engine.execute(&ctx(), command).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..16].copy_from_slice(b"not a database!!");
    std::fs::write(&path, &bytes).unwrap();

    let error = open_with(&path, DbOptions::default()).unwrap_err();
    assert!(
        matches!(error, EngineError::Store(StoreError::DatabaseCorrupt(_))),
        "{error:?}"
    );
    assert_eq!(
        (
            error.code(),
            imgshare_server::error::status_of(error.kind()).as_u16()
        ),
        ("database_corrupt", 500)
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "opening changed the file"
    );
}

#[test]
fn a_damaged_page_is_reported_as_corruption_never_as_a_silent_success() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    {
        let engine = open_with(&path, DbOptions::default()).unwrap();
        for index in 0..200 {
            let (_, command) = register(&format!("{index:04}-{}", "x".repeat(200)));
            engine.execute(&ctx(), command).unwrap();
        }
    }
    // Closing the last connection checkpointed the WAL into the file; overwrite every page
    // after the first few with garbage, as a failing disk might.
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page, "database too small to damage");
    for byte in &mut bytes[4 * page..] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();

    let error = match open_with(&path, DbOptions::default()) {
        Err(error) => error,
        Ok(engine) => engine
            .read(|conn| Ok(verify_chain(conn)?))
            .err()
            .or_else(|| engine.rebuild(|_| {}).err())
            .expect("a damaged database verified and rebuilt without an error"),
    };
    assert!(
        matches!(
            error.code(),
            "database_corrupt" | "corrupt_event" | "corrupt_stream"
        ),
        "{error:?}"
    );
    assert_eq!(
        imgshare_server::error::status_of(error.kind()).as_u16(),
        500
    );
}
