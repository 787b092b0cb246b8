#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::secret::verify_secret;

fn sample() -> (UsersFile, String) {
    let mut file = UsersFile::default();
    let key = file
        .add_user(
            "demoauthor",
            "111111",
            vec!["cloudImages:admin".into()],
            Some("DFW".into()),
            None,
            Some("myPassword01"),
            HashStrength::Fast,
        )
        .unwrap();
    (file, key)
}

#[test]
fn added_users_keep_only_hashes_and_get_numeric_ids() {
    let (mut file, key) = sample();
    assert_eq!(key.len(), 32);
    let user = file.user("demoauthor").unwrap();
    assert_eq!(user.id, "100001");
    assert!(verify_secret(&key, user.api_key_hash.as_deref().unwrap()));
    assert!(verify_secret(
        "myPassword01",
        user.password_hash.as_deref().unwrap()
    ));
    assert!(file.account("111111").is_some(), "the account is created");
    let given = file
        .add_user(
            "other",
            "222222",
            vec![],
            None,
            Some("k-1"),
            None,
            HashStrength::Fast,
        )
        .unwrap();
    assert_eq!(given, "k-1");
    assert_eq!(file.user("other").unwrap().id, "100002");
    assert!(matches!(
        file.add_user("other", "2", vec![], None, None, None, HashStrength::Fast),
        Err(UsersError::UserExists(_))
    ));
    assert!(matches!(
        file.add_user("x", "2", vec![], None, Some(""), None, HashStrength::Fast),
        Err(UsersError::Invalid(_))
    ));
}

#[test]
fn reset_key_replaces_the_key_and_remove_drops_the_user() {
    let (mut file, old) = sample();
    let new = file.reset_key("demoauthor", HashStrength::Fast).unwrap();
    assert_ne!(old, new);
    let hash = file
        .user("demoauthor")
        .unwrap()
        .api_key_hash
        .clone()
        .unwrap();
    assert!(verify_secret(&new, &hash));
    assert!(!verify_secret(&old, &hash));
    assert!(matches!(
        file.reset_key("nobody", HashStrength::Fast),
        Err(UsersError::NoSuchUser(_))
    ));
    file.remove_user("demoauthor").unwrap();
    assert!(file.user("demoauthor").is_none());
    assert!(file.account("111111").is_some(), "accounts stay");
    assert!(matches!(
        file.remove_user("demoauthor"),
        Err(UsersError::NoSuchUser(_))
    ));
}

#[test]
fn list_shows_no_secret() {
    let (mut file, _) = sample();
    file.set_enabled("demoauthor", false).unwrap();
    let list = file.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "demoauthor");
    assert!(!list[0].enabled && list[0].has_api_key && list[0].has_password);
    let shown = serde_json::to_string(&list).unwrap();
    assert!(!shown.contains("argon2"), "{shown}");
}

#[test]
fn toml_and_json_round_trip_through_atomic_saves() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = sample();
    for name in ["users.toml", "users.json"] {
        let path = dir.path().join(name);
        file.save(&path).unwrap();
        assert_eq!(UsersFile::load(&path).unwrap(), file, "{name}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        // Saving again replaces the file; no temporary file is left behind.
        file.save(&path).unwrap();
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["users.json", "users.toml"]);
}

#[test]
fn a_hand_written_toml_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let hash = hash_secret("key", HashStrength::Fast).unwrap();
    std::fs::write(
        &path,
        format!(
            "[accounts.111111]\nstorage_account = \"MossoCloudFS_abc\"\n\n\
             [users.alice]\nid = \"1\"\naccount = \"111111\"\nroles = [\"cloudImages:admin\"]\n\
             api_key_hash = \"{hash}\"\n\n\
             [users.bob]\nid = \"2\"\naccount = \"111111\"\nenabled = false\n"
        ),
    )
    .unwrap();
    let file = UsersFile::load(&path).unwrap();
    assert!(file.user("alice").unwrap().enabled, "enabled by default");
    assert!(!file.user("bob").unwrap().enabled);
    assert_eq!(
        file.account("111111").unwrap().storage_account.as_deref(),
        Some("MossoCloudFS_abc")
    );
    assert!(file.load_or_default_is_empty_for(&dir.path().join("absent.toml")));
}

impl UsersFile {
    fn load_or_default_is_empty_for(&self, path: &Path) -> bool {
        UsersFile::load_or_default(path).unwrap() == UsersFile::default()
    }
}

#[test]
fn broken_files_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cases = [
        ("a.toml", "[users.alice\n", "not valid TOML"),
        ("b.json", "{\"users\": {", "not valid JSON"),
        ("c.toml", "[users.alice]\nid = \"1\"\naccount = \"9\"\n", "not in [accounts]"),
        (
            "d.toml",
            "[accounts.9]\n[users.alice]\nid = \"1\"\naccount = \"9\"\napi_key_hash = \"plain\"\n",
            "secrets are never stored in clear",
        ),
        (
            "e.toml",
            "[accounts.9]\n[users.a]\nid = \"1\"\naccount = \"9\"\n[users.b]\nid = \"1\"\naccount = \"9\"\n",
            "the same id",
        ),
        ("f.toml", "[users.a]\nid = \"1\"\naccount = \"9\"\napikey = \"x\"\n", "unknown field"),
        ("g.yaml", "users: {}", "must end in .toml or .json"),
    ];
    for (name, text, expected) in cases {
        let error = UsersFile::load(&write(name, text)).unwrap_err().to_string();
        assert!(error.contains(expected), "{name}: {error}");
    }
    let missing = UsersFile::load(&dir.path().join("missing.toml")).unwrap_err();
    assert!(matches!(missing, UsersError::Io { .. }), "{missing}");
}
