//! A consistent copy of a live database file: `VACUUM INTO` a temporary file beside the target,
//! synced, then linked into place only if the target does not exist.
//!
//! `VACUUM INTO` rather than the online backup API: it copies one read transaction's snapshot in
//! a single statement (the backup API restarts its copy whenever another connection writes, so
//! on a busy server it may never finish unless it locks writers out), it runs on a read-only
//! connection, so the source is never written, and the copy comes out compacted. The cost is
//! that the copy is built page by page rather than copied, which is slower on a huge file.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::anchor::{self, Anchor};
use crate::db::StoreError;

/// Why a backup was not made. Nothing is left at the target in any case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The source database does not exist.
    #[error("no database at {0}")]
    NoSource(PathBuf),
    /// Something already exists at the target; a backup never replaces a file.
    #[error("{0} already exists; a backup never overwrites a file")]
    TargetExists(PathBuf),
    /// The copy failed in SQLite.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing, syncing or linking the copy failed.
    #[error("writing the backup: {0}")]
    Io(#[from] std::io::Error),
}

impl BackupError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::NoSource(_) => "backup_no_source",
            BackupError::TargetExists(_) => "backup_target_exists",
            BackupError::Store(error) => error.code(),
            BackupError::Io(_) => "backup_io",
        }
    }
}

/// Removes the temporary copy unless it was linked into place.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Copies the database at `source` to `target` (which must not exist) and returns the copy's
/// log anchor: its last position and hash, to check the copy against later.
pub fn backup(source: &Path, target: &Path) -> Result<Anchor, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoSource(source.to_owned()));
    }
    if target.symlink_metadata().is_ok() {
        return Err(BackupError::TargetExists(target.to_owned()));
    }
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    let partial = Partial(target.with_file_name(name));
    let _ = std::fs::remove_file(&partial.0);

    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::sqlite)?;
    conn.busy_timeout(crate::db::DbOptions::default().busy_timeout)
        .map_err(StoreError::sqlite)?;
    let into = partial.0.to_string_lossy().into_owned();
    conn.execute("VACUUM INTO ?1", [&into])
        .map_err(StoreError::sqlite)?;
    drop(conn);
    // VACUUM INTO does not sync what it wrote; a backup that a crash can lose is no backup.
    std::fs::File::open(&partial.0)?.sync_all()?;
    let copy = Connection::open_with_flags(&partial.0, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(StoreError::sqlite)?;
    let anchor = anchor::current(&copy)?;
    drop(copy);
    // A hard link fails if the target appeared meanwhile, where a rename would replace it.
    match std::fs::hard_link(&partial.0, target) {
        Ok(()) => Ok(anchor),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::TargetExists(target.to_owned()))
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{open_file, DbOptions};

    #[test]
    fn an_empty_file_at_the_target_is_kept_though_sqlite_would_write_into_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        drop(open_file(&source, &DbOptions::default()).unwrap());
        let target = dir.path().join("copy.db");
        std::fs::write(&target, b"").unwrap();
        let error = backup(&source, &target).unwrap_err();
        assert_eq!(error.code(), "backup_target_exists");
        assert_eq!(std::fs::metadata(&target).unwrap().len(), 0);
        let fresh = dir.path().join("fresh.db");
        let anchor = backup(&source, &fresh).unwrap();
        assert_eq!(anchor.position, 0);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.contains(".partial-"))
            .collect();
        assert!(names.is_empty(), "temporary copies left: {names:?}");
    }
}
