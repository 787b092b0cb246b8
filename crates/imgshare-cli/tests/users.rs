//! `imgshare users`: the file it writes, the key it prints once, its refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn users(file: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .arg("users")
        .arg("--users")
        .arg(file)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn printed_key(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let line = stdout
        .lines()
        .find(|line| line.starts_with("API key of"))
        .unwrap();
    line.rsplit(' ').next().unwrap().to_owned()
}

#[test]
fn users_are_added_listed_reset_and_removed_with_only_hashes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let add = users(
        &file,
        &[
            "add",
            "demoauthor",
            "--account",
            "111111",
            "--role",
            "cloudImages:admin",
        ],
        "",
    );
    let key = printed_key(&add);
    assert_eq!(key.len(), 32);
    let consumer = users(
        &file,
        &["add", "consumer", "--account", "222222", "--password-stdin"],
        "pw-1\n",
    );
    printed_key(&consumer);

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&key) && !text.contains("pw-1"), "{text}");
    assert_eq!(text.matches("$argon2id$").count(), 3, "{text}");
    let loaded = imgshare_identity::UsersFile::load(&file).unwrap();
    let hash = loaded
        .user("demoauthor")
        .unwrap()
        .api_key_hash
        .clone()
        .unwrap();
    assert!(imgshare_identity::verify_secret(&key, &hash));

    let list = users(&file, &["list", "--json"], "");
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[1]["name"], "demoauthor");
    assert_eq!(list[0]["has_password"], true);
    assert!(!list.to_string().contains("argon2"));
    let table = String::from_utf8(users(&file, &["list"], "").stdout).unwrap();
    assert!(!table.contains(&key), "the key is printed only once");

    let new_key = printed_key(&users(&file, &["reset-key", "demoauthor"], ""));
    assert_ne!(new_key, key);
    let loaded = imgshare_identity::UsersFile::load(&file).unwrap();
    let hash = loaded
        .user("demoauthor")
        .unwrap()
        .api_key_hash
        .clone()
        .unwrap();
    assert!(imgshare_identity::verify_secret(&new_key, &hash));
    assert!(!imgshare_identity::verify_secret(&key, &hash));

    assert!(users(&file, &["disable", "consumer"], "").status.success());
    assert!(
        !imgshare_identity::UsersFile::load(&file)
            .unwrap()
            .user("consumer")
            .unwrap()
            .enabled
    );
    assert!(users(&file, &["remove", "consumer"], "").status.success());
    assert!(imgshare_identity::UsersFile::load(&file)
        .unwrap()
        .user("consumer")
        .is_none());
}

#[test]
fn bad_edits_fail_with_a_message_and_leave_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    printed_key(&users(&file, &["add", "a", "--account", "1"], ""));
    let before = std::fs::read(&file).unwrap();
    for (args, stdin, expected) in [
        (&["add", "a", "--account", "1"][..], "", "already exists"),
        (&["remove", "nobody"][..], "", "no user named"),
        (&["reset-key", "nobody"][..], "", "no user named"),
        (
            &["add", "b", "--account", "1", "--password-stdin"][..],
            "\n",
            "password",
        ),
    ] {
        let output = users(&file, args, stdin);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}");
    }
    std::fs::write(&file, "[users.a\n").unwrap();
    let output = users(&file, &["list"], "");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid TOML"));
}
