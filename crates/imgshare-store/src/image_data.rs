//! The image data port: an image's bytes, keyed by image id, and its file-system adapter.
//!
//! [`FsImageDataStore`] uses the layout of the HTTP server's upload and download
//! (`<data_dir>/<image_id>`), so an imported image's bytes are what `GET /v2/images/{id}/file`
//! serves and what an export writes out.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use imgshare_core::ImageActivated;
use md5::Md5;
use sha2::{Digest, Sha512};
use uuid::Uuid;

/// The running size and hashes of image data, as every path that stores bytes reports them
/// (upload, staged import, import task): md5 for `checksum`, sha512 for `os_hash_value`.
#[derive(Default)]
pub struct DataHashes {
    size: u64,
    md5: Md5,
    sha512: Sha512,
}

impl DataHashes {
    /// Adds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.size = self.size.saturating_add(chunk.len() as u64);
        self.md5.update(chunk);
        self.sha512.update(chunk);
    }

    /// Bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The data facts of everything seen (`virtual_size` unknown).
    pub fn finish(self) -> ImageActivated {
        ImageActivated {
            size: self.size,
            checksum: hex::encode(self.md5.finalize()),
            virtual_size: None,
            os_hash_algo: Some("sha512".to_owned()),
            os_hash_value: Some(hex::encode(self.sha512.finalize())),
        }
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hashes: DataHashes,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hashes: DataHashes::default(),
        }
    }

    /// The hashes of what was read.
    pub fn hashes(self) -> DataHashes {
        self.hashes
    }

    /// Bytes read so far.
    pub fn size(&self) -> u64 {
        self.hashes.size()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hashes.update(buffer.get(..read).unwrap_or_default());
        Ok(read)
    }
}

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
    fn hashes_are_the_same_by_chunks_and_through_a_reader() {
        let mut hashes = DataHashes::default();
        hashes.update(b"a");
        hashes.update(b"bc");
        let by_chunks = hashes.finish();
        assert_eq!(by_chunks.size, 3);
        assert_eq!(by_chunks.checksum, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(by_chunks.os_hash_value.as_deref().map(str::len), Some(128));
        let mut reader = HashingReader::new(&b"abc"[..]);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert_eq!(reader.size(), 3);
        assert_eq!(reader.hashes().finish(), by_chunks);
    }

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
