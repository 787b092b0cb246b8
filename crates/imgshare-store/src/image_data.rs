//! The image data port: an image's bytes, keyed by image id, and its file-system adapter.
//!
//! [`FsImageDataStore`] uses the layout of the HTTP server's upload and download
//! (`<data_dir>/<image_id>`), so an imported image's bytes are what `GET /v2/images/{id}/file`
//! serves and what an export writes out.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Where image data lives.
pub trait ImageDataStore: Send + Sync + fmt::Debug {
    /// Stores `data` as the image's bytes (replacing any, atomically) and returns its length.
    fn put(&self, image_id: Uuid, data: &mut dyn Read) -> io::Result<u64>;

    /// The image's bytes, or `None` if it has none.
    fn open(&self, image_id: Uuid) -> io::Result<Option<Box<dyn Read + Send>>>;

    /// Forgets the image's bytes (no error if there are none).
    fn remove(&self, image_id: Uuid) -> io::Result<()>;
}

/// One file per image, `<dir>/<image_id>`, written as a temporary file then renamed.
#[derive(Debug, Clone)]
pub struct FsImageDataStore {
    dir: PathBuf,
}

impl FsImageDataStore {
    /// The store in `dir` (created on the first write if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FsImageDataStore { dir: dir.into() }
    }

    /// The file holding an image's bytes in `dir`.
    pub fn path_in(dir: &Path, image_id: Uuid) -> PathBuf {
        dir.join(image_id.to_string())
    }

    /// The file holding an image's bytes.
    pub fn path(&self, image_id: Uuid) -> PathBuf {
        Self::path_in(&self.dir, image_id)
    }
}

impl ImageDataStore for FsImageDataStore {
    fn put(&self, image_id: Uuid, data: &mut dyn Read) -> io::Result<u64> {
        fs::create_dir_all(&self.dir)?;
        let temp = self.dir.join(format!(".import-{}", Uuid::new_v4()));
        let result = (|| {
            let mut file = File::create(&temp)?;
            let written = io::copy(data, &mut file)?;
            file.flush()?;
            file.sync_all()?;
            fs::rename(&temp, self.path(image_id))?;
            Ok(written)
        })();
        if result.is_err() {
            // Best effort: the failure being reported matters more than the leftover file.
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn open(&self, image_id: Uuid) -> io::Result<Option<Box<dyn Read + Send>>> {
        match File::open(self.path(image_id)) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn remove(&self, image_id: Uuid) -> io::Result<()> {
        match fs::remove_file(self.path(image_id)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bytes_are_kept_as_data_dir_slash_image_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsImageDataStore::new(dir.path().join("data"));
        let image_id = Uuid::from_u128(42);
        assert!(store.open(image_id).unwrap().is_none());
        assert_eq!(store.put(image_id, &mut &b"abc"[..]).unwrap(), 3);
        assert_eq!(store.put(image_id, &mut &b"abcd"[..]).unwrap(), 4);
        let file = dir.path().join("data").join(image_id.to_string());
        assert_eq!(fs::read(&file).unwrap(), b"abcd");
        let mut read = Vec::new();
        store
            .open(image_id)
            .unwrap()
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, b"abcd");
        store.remove(image_id).unwrap();
        store.remove(image_id).unwrap();
        assert!(!file.exists());
        assert_eq!(fs::read_dir(dir.path().join("data")).unwrap().count(), 0);
    }
}
