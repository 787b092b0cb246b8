//! Architecture invariants checked mechanically (docs/ARCHITECTURE.md, "Invariants").

// Test helpers may unwrap: a failure here is a broken checkout, reported by the panic.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn dependencies_of(crate_dir: &str) -> String {
    let manifest = workspace_root().join(crate_dir).join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    // Only the normal dependencies count: test tools may be anything.
    let start = text.find("[dependencies]").unwrap();
    let rest = &text[start + "[dependencies]".len()..];
    let end = rest.find("\n[").unwrap_or(rest.len());
    rest[..end].to_owned()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_domain_crate_does_no_io() {
    let dependencies = dependencies_of("crates/imgshare-core");
    for forbidden in [
        "rusqlite",
        "tokio",
        "axum",
        "imgshare-store",
        "imgshare-projection",
    ] {
        assert!(
            !dependencies.contains(forbidden),
            "imgshare-core must stay pure, but depends on {forbidden}"
        );
    }
}

#[test]
fn dependencies_point_one_way() {
    let projection = dependencies_of("crates/imgshare-projection");
    assert!(
        !projection.contains("imgshare-store"),
        "projection must not depend on store"
    );
    let store = dependencies_of("crates/imgshare-store");
    assert!(!store.contains("axum"), "only the server knows HTTP");
}

#[test]
fn no_ignored_tests_no_should_panic_no_stubs() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let banned = [
        concat!("#[", "ignore"),
        concat!("#[", "should_panic"),
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
    ];
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for pattern in banned {
            assert!(
                !text.contains(pattern),
                "{} contains {pattern}: assert the current behaviour with a FIXME instead",
                file.display()
            );
        }
    }
}
