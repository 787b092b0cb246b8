//! The object store port (the shape of a Swift / Cloud Files account) and its file-system
//! adapter, the embedded default.
//!
//! One [`ObjectStore`] serves one region. Objects are addressed by account (the tenant id),
//! container and object name; object names may contain `/` (Swift pseudo-directories). A real
//! object store plugs in by implementing the trait: `container_exists` is `HEAD
//! /v1/<account>/<container>`, `object_len` a `HEAD` of the object, `read_range` a `GET` with a
//! `Range` header, `open` a streaming `GET`, and `create` a `PUT` with `If-None-Match: *`
//! (segmented as a DLO for large images): [`crate::swift::SwiftObjectStore`].

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use imgshare_core::transfer::{valid_container_name, valid_object_name};
use imgshare_core::Region;
use uuid::Uuid;

/// A region's object storage.
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// True if the account has the container.
    fn container_exists(&self, account: &str, container: &str) -> io::Result<bool>;

    /// The object's length in bytes, or `None` if there is no such object.
    fn object_len(&self, account: &str, container: &str, object: &str) -> io::Result<Option<u64>>;

    /// `len` bytes of the object from `offset` (fewer only at its end).
    fn read_range(
        &self,
        account: &str,
        container: &str,
        object: &str,
        offset: u64,
        len: usize,
    ) -> io::Result<Vec<u8>>;

    /// The object's bytes from the start (`NotFound` if there is no such object).
    fn open(
        &self,
        account: &str,
        container: &str,
        object: &str,
    ) -> io::Result<Box<dyn Read + Send>>;

    /// Creates the object from `data` and returns its length. Readers never see a partial
    /// object; if the object exists already, nothing is written and the error kind is
    /// `AlreadyExists`; if the container does not exist, `NotFound`.
    fn create(
        &self,
        account: &str,
        container: &str,
        object: &str,
        data: &dyn ObjectSource,
    ) -> io::Result<u64>;
}

/// The bytes an object is created from. They can be read again from any offset, so that an
/// upload interrupted by a network fault starts over from the failed part, not from the start.
pub trait ObjectSource: Sync {
    /// The number of bytes.
    fn len(&self) -> u64;

    /// True if there are no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes from `offset` to the end.
    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + Send + '_>>;
}

impl ObjectSource for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let start = usize::try_from(offset).map_or(<[u8]>::len(self), |o| o.min(<[u8]>::len(self)));
        Ok(Box::new(&self[start..]))
    }
}

/// An error that says the object store did not answer in time or kept failing (after its
/// retries), as opposed to an answer such as "no such object". The task worker reports it with
/// its own message ([`crate::tasks::STORE_UNAVAILABLE`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreUnavailable(pub String);

impl StoreUnavailable {
    /// The io error that carries it.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// The unavailability an io error carries, if any.
    pub fn of(error: &io::Error) -> Option<&StoreUnavailable> {
        error.get_ref()?.downcast_ref::<StoreUnavailable>()
    }
}

/// Objects as files: `<root>/<account>/<container>/<object>`, where `root` is one region's
/// directory (`<objects dir>/<REGION>`). A container is a directory; creating one is `mkdir`.
#[derive(Debug, Clone)]
pub struct FsObjectStore {
    root: PathBuf,
}

fn invalid_name() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "invalid account, container or object name",
    )
}

impl FsObjectStore {
    /// The store rooted at `root` (one region's directory).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsObjectStore { root: root.into() }
    }

    /// The store of `region` under a directory of regions: `<objects_dir>/<REGION>`.
    pub fn for_region(objects_dir: &Path, region: &Region) -> Self {
        Self::new(objects_dir.join(region.as_str()))
    }

    /// The region's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a container. Names that could leave the root are refused, so no path
    /// built here is outside it.
    pub fn container_path(&self, account: &str, container: &str) -> io::Result<PathBuf> {
        if !valid_container_name(account) || !valid_container_name(container) {
            return Err(invalid_name());
        }
        Ok(self.root.join(account).join(container))
    }

    /// The file of an object (see [`FsObjectStore::container_path`]).
    pub fn object_path(&self, account: &str, container: &str, object: &str) -> io::Result<PathBuf> {
        if !valid_object_name(object) {
            return Err(invalid_name());
        }
        let mut path = self.container_path(account, container)?;
        path.extend(object.split('/'));
        Ok(path)
    }
}

impl ObjectStore for FsObjectStore {
    fn container_exists(&self, account: &str, container: &str) -> io::Result<bool> {
        match fs::metadata(self.container_path(account, container)?) {
            Ok(metadata) => Ok(metadata.is_dir()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn object_len(&self, account: &str, container: &str, object: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.object_path(account, container, object)?) {
            Ok(metadata) if metadata.is_file() => Ok(Some(metadata.len())),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn read_range(
        &self,
        account: &str,
        container: &str,
        object: &str,
        offset: u64,
        len: usize,
    ) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.object_path(account, container, object)?)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn open(
        &self,
        account: &str,
        container: &str,
        object: &str,
    ) -> io::Result<Box<dyn Read + Send>> {
        let path = self.object_path(account, container, object)?;
        if !path.is_file() {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(Box::new(File::open(path)?))
    }

    fn create(
        &self,
        account: &str,
        container: &str,
        object: &str,
        data: &dyn ObjectSource,
    ) -> io::Result<u64> {
        let target = self.object_path(account, container, object)?;
        if !self.container_exists(account, container)? {
            return Err(io::ErrorKind::NotFound.into());
        }
        let parent = target.parent().ok_or_else(invalid_name)?;
        fs::create_dir_all(parent)?;
        let temp = TempPath(parent.join(format!(".partial-{}", Uuid::new_v4())));
        let mut file = File::create(&temp.0)?;
        let written = io::copy(&mut data.open_at(0)?, &mut file)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        // A hard link creates the name only if it is free, atomically: two exports racing for
        // the same name cannot both win, and neither overwrites an object that exists.
        fs::hard_link(&temp.0, &target)?;
        Ok(written)
    }
}

/// Removes a temporary file when dropped (after a hard link, the object keeps the data).
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        // Best effort: a leftover `.partial-*` file is not an object anyone asked for.
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store() -> (tempfile::TempDir, FsObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsObjectStore::for_region(dir.path(), &Region::parse("DFW").unwrap());
        fs::create_dir_all(store.root().join("111/exports")).unwrap();
        (dir, store)
    }

    #[test]
    fn objects_are_files_under_region_account_and_container() {
        let (dir, store) = store();
        assert!(store.container_exists("111", "exports").unwrap());
        assert!(!store.container_exists("111", "other").unwrap());
        assert!(!store.container_exists("222", "exports").unwrap());
        let written = store
            .create("111", "exports", "a/b.vhd", &&b"0123456789"[..])
            .unwrap();
        assert_eq!(written, 10);
        assert_eq!(
            fs::read(dir.path().join("DFW/111/exports/a/b.vhd")).unwrap(),
            b"0123456789"
        );
        assert_eq!(
            store.object_len("111", "exports", "a/b.vhd").unwrap(),
            Some(10)
        );
        assert_eq!(store.object_len("111", "exports", "a").unwrap(), None);
        assert_eq!(
            store
                .read_range("111", "exports", "a/b.vhd", 7, 512)
                .unwrap(),
            b"789"
        );
        let mut all = Vec::new();
        store
            .open("111", "exports", "a/b.vhd")
            .unwrap()
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn create_never_overwrites_and_needs_the_container() {
        let (dir, store) = store();
        store
            .create("111", "exports", "x.vhd", &&b"first"[..])
            .unwrap();
        let again = store
            .create("111", "exports", "x.vhd", &&b"second"[..])
            .unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            fs::read(dir.path().join("DFW/111/exports/x.vhd")).unwrap(),
            b"first"
        );
        let missing = store
            .create("111", "nope", "x.vhd", &&b"x"[..])
            .unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("DFW/111/exports"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["x.vhd"]);
    }

    #[test]
    fn names_that_could_leave_the_root_are_refused() {
        let (_dir, store) = store();
        for (account, container, object) in [
            ("..", "exports", "x"),
            ("111", "..", "x"),
            ("111", "exports", "../../../etc/passwd"),
            ("111", "exports", "/etc/passwd"),
            ("111", "exports", "a/../../x"),
            ("111", "a/b", "x"),
            ("111", "exports", "nul\0"),
        ] {
            let error = store.object_len(account, container, object).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{object}");
            let error = store
                .create(account, container, object, &&b"x"[..])
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{object}");
        }
    }
}
