//! Facts a database keeps about itself (`crates/imgshare-store/migrations/0004_database_meta.sql`): the profile it was
//! created with.
//!
//! The same events mean different things under the two rule sets (a `shared` image, a member's
//! access), so a database is pinned to one profile: the first read-write open records it, every
//! later open must ask for the same one, and audits read it instead of assuming one. A database
//! created before the record existed gets the profile of its first read-write open after the
//! upgrade.

use crate::error::SqlResult as _;
use std::path::Path;

use imgshare_core::ProfileKind;
use imgshare_sql::{params, RowExt as _, Sql};

use crate::db::{self, StoreError};
use crate::write_tx::WriteTx;

/// The `database_meta` key of the profile.
const PROFILE_KEY: &str = "profile";

/// The stored name of a profile kind (also what `--profile` takes).
pub fn profile_name(kind: ProfileKind) -> &'static str {
    match kind {
        ProfileKind::Rackspace => "rackspace",
        ProfileKind::Glance => "glance",
    }
}

pub(crate) fn parse_profile(name: &str) -> Option<ProfileKind> {
    match name {
        "rackspace" => Some(ProfileKind::Rackspace),
        "glance" => Some(ProfileKind::Glance),
        _ => None,
    }
}

fn stored_name<C: Sql + ?Sized>(conn: &C) -> Result<Option<String>, StoreError> {
    conn.query_first(
        "SELECT value FROM database_meta WHERE key = ?1",
        params![PROFILE_KEY],
        |row| row.get(0),
    )
    .sql()?
    .sql()
}

/// The profile recorded in the database, `None` if none is recorded yet. A value this code does
/// not know is refused as [`StoreError::ProfileMismatch`], since no profile of ours matches it.
pub fn stored_profile<C: Sql + ?Sized>(conn: &C) -> Result<Option<ProfileKind>, StoreError> {
    match stored_name(conn)? {
        None => Ok(None),
        Some(name) => parse_profile(&name)
            .map(Some)
            .ok_or_else(|| StoreError::ProfileMismatch {
                stored: name,
                requested: "any known".to_owned(),
            }),
    }
}

/// Refuses `requested` if the database records another profile; a database without a record
/// passes (a read-only open cannot record one).
pub fn check_profile<C: Sql + ?Sized>(conn: &C, requested: ProfileKind) -> Result<(), StoreError> {
    match stored_name(conn)? {
        Some(stored) if stored != profile_name(requested) => Err(StoreError::ProfileMismatch {
            stored,
            requested: profile_name(requested).to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Records `requested` if the database has no profile yet, and refuses it if the database records
/// another one. In one write transaction, so two processes creating a database at the same time
/// with different profiles cannot both succeed.
pub fn pin_profile<C: Sql + ?Sized>(conn: &C, requested: ProfileKind) -> Result<(), StoreError> {
    // A plain read first: a database already pinned to this profile is the common case, and a
    // write lock for it would make every open wait for a busy writer.
    if stored_name(conn)?.as_deref() == Some(profile_name(requested)) {
        return Ok(());
    }
    let tx = WriteTx::begin(conn)?;
    tx.execute(
        "INSERT INTO database_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![PROFILE_KEY, profile_name(requested)],
    )
    .sql()?;
    check_profile(&*tx, requested)?;
    tx.commit()?;
    Ok(())
}

/// The profile recorded in the database file at `path`, read without writing (see
/// [`db::open_read_only`]); `None` if none is recorded.
pub fn stored_profile_of(path: &Path) -> Result<Option<ProfileKind>, StoreError> {
    stored_profile(&db::open_read_only(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{open_file, open_in_memory, DbOptions};

    #[test]
    fn the_first_profile_is_kept_and_another_is_refused() {
        let conn = open_in_memory().unwrap();
        assert_eq!(stored_profile(&conn).unwrap(), None);
        check_profile(&conn, ProfileKind::Glance).unwrap();
        pin_profile(&conn, ProfileKind::Glance).unwrap();
        pin_profile(&conn, ProfileKind::Glance).unwrap();
        assert_eq!(stored_profile(&conn).unwrap(), Some(ProfileKind::Glance));
        let error = pin_profile(&conn, ProfileKind::Rackspace).unwrap_err();
        assert_eq!(error.code(), "profile_mismatch");
        assert_eq!(
            error.to_string(),
            "the database was created with the glance profile and cannot be opened with the rackspace profile"
        );
        assert!(conn.is_autocommit(), "the refused pin left no transaction");
        assert_eq!(stored_profile(&conn).unwrap(), Some(ProfileKind::Glance));
        assert!(check_profile(&conn, ProfileKind::Rackspace).is_err());
    }

    #[test]
    fn the_record_cannot_be_changed_and_an_unknown_one_is_refused() {
        let conn = open_in_memory().unwrap();
        pin_profile(&conn, ProfileKind::Rackspace).unwrap();
        assert!(conn
            .execute("UPDATE database_meta SET value = 'glance'", [])
            .is_err());
        conn.execute("DELETE FROM database_meta", []).unwrap();
        conn.execute(
            "INSERT INTO database_meta (key, value) VALUES ('profile', 'openstack-2031')",
            [],
        )
        .unwrap();
        let error = stored_profile(&conn).unwrap_err();
        assert!(error.to_string().contains("openstack-2031"), "{error}");
        assert!(pin_profile(&conn, ProfileKind::Rackspace).is_err());
    }

    #[test]
    fn an_engine_on_a_glance_database_refuses_the_rackspace_profile() {
        use crate::{Engine, EngineOptions};
        use imgshare_core::Profile;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glance.db");
        let glance = || EngineOptions {
            profile: Profile::glance(),
            ..EngineOptions::default()
        };
        drop(Engine::open(&path, glance()).unwrap());
        let Err(refused) = Engine::open(&path, EngineOptions::default()) else {
            panic!("opened a glance database as rackspace");
        };
        assert_eq!(refused.code(), "profile_mismatch");
        let Err(refused) = Engine::open_read_only(&path, Profile::rackspace()) else {
            panic!("audited a glance database as rackspace");
        };
        assert_eq!(refused.code(), "profile_mismatch");
        Engine::open(&path, glance()).unwrap();
        Engine::open_read_only(&path, Profile::glance()).unwrap();
    }

    #[test]
    fn a_database_from_before_the_record_gets_the_profile_of_its_first_open() {
        use crate::{Engine, EngineOptions};
        use imgshare_core::Profile;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            crate::db::migrations().to_version(&mut conn, 3).unwrap();
        }
        let glance = EngineOptions {
            profile: Profile::glance(),
            ..EngineOptions::default()
        };
        drop(Engine::open(&path, glance).unwrap());
        assert_eq!(stored_profile_of(&path).unwrap(), Some(ProfileKind::Glance));
        assert!(Engine::open(&path, EngineOptions::default()).is_err());
    }

    #[test]
    fn a_file_reports_its_profile_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let conn = open_file(&path, &DbOptions::default()).unwrap();
        assert_eq!(stored_profile_of(&path).unwrap(), None);
        pin_profile(&conn, ProfileKind::Glance).unwrap();
        assert_eq!(stored_profile_of(&path).unwrap(), Some(ProfileKind::Glance));
    }
}
