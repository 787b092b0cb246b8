//! The image data port: an image's bytes, keyed by image id, and its file-system adapter.
//!
//! Every path that stores or serves bytes goes through [`ImageDataStore`]: the HTTP server's
//! upload, stage, download and removal, its staged import, and the task worker. A new storage
//! backend is a new adapter of this trait.
//!
//! [`FsImageDataStore`] keeps an image's bytes as `<data_dir>/<image_id>` and the bytes staged
//! for an interoperable import as `<data_dir>/.staged-<image_id>`; bytes being received are
//! written to a temporary file in the same directory (`.upload-<uuid>`, `.import-<uuid>`) and
//! renamed into place, so a reader never sees a partial file.

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

/// Which bytes of an image: the image's data, or the data staged for an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSlot {
    /// The bytes `GET /v2/images/{id}/file` serves.
    Image,
    /// The bytes `PUT /v2/images/{id}/stage` received, until the import moves them.
    Staged,
}

/// Stored bytes being read, with their length.
pub struct StoredData {
    /// The length in bytes.
    pub size: u64,
    /// The bytes.
    pub reader: Box<dyn Read + Send>,
}

/// Bytes being received into a slot, hashed as they pass. Nothing is visible in the slot until
/// [`DataWriter::commit`]; a writer dropped before that leaves nothing behind.
pub trait DataWriter: Send {
    /// Appends a chunk.
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;

    /// Bytes written so far.
    fn size(&self) -> u64;

    /// Makes what was written durable and returns its facts (size and hashes).
    fn finish(&mut self) -> io::Result<ImageActivated>;

    /// Puts the bytes in their slot, replacing any there.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// Where image data lives.
pub trait ImageDataStore: Send + Sync + fmt::Debug {
    /// Stores `data` as the image's bytes (replacing any, atomically) and returns its length.
    fn put(&self, image_id: Uuid, data: &mut dyn Read) -> io::Result<u64>;

    /// The image's bytes, or `None` if it has none.
    fn open(&self, image_id: Uuid) -> io::Result<Option<Box<dyn Read + Send>>>;

    /// Forgets the image's bytes (no error if there are none).
    fn remove(&self, image_id: Uuid) -> io::Result<()>;

    /// Starts receiving bytes for the image's `slot` (see [`DataWriter`]).
    fn writer(&self, image_id: Uuid, slot: DataSlot) -> io::Result<Box<dyn DataWriter>>;

    /// The bytes in the image's `slot`; an error (`NotFound` when there are none) otherwise,
    /// whose text says why.
    fn read(&self, image_id: Uuid, slot: DataSlot) -> io::Result<StoredData>;

    /// Makes the staged bytes the image's bytes, replacing any.
    fn promote_staged(&self, image_id: Uuid) -> io::Result<()>;

    /// Forgets the bytes in the image's `slot` (no error if there are none).
    fn remove_slot(&self, image_id: Uuid, slot: DataSlot) -> io::Result<()>;
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

    /// The file holding the bytes of an image's `slot`.
    pub fn slot_path(&self, image_id: Uuid, slot: DataSlot) -> PathBuf {
        match slot {
            DataSlot::Image => self.path(image_id),
            DataSlot::Staged => self.dir.join(format!(".staged-{image_id}")),
        }
    }
}

impl fmt::Debug for StoredData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredData")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A [`DataWriter`] into a temporary file of an [`FsImageDataStore`].
struct FsDataWriter {
    file: File,
    /// The temporary file; `None` once renamed into place.
    temp: Option<PathBuf>,
    target: PathBuf,
    hashes: DataHashes,
}

impl DataWriter for FsDataWriter {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hashes.update(chunk);
        self.file.write_all(chunk)
    }

    fn size(&self) -> u64 {
        self.hashes.size()
    }

    fn finish(&mut self) -> io::Result<ImageActivated> {
        self.file.sync_all()?;
        Ok(std::mem::take(&mut self.hashes).finish())
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        if let Some(temp) = &self.temp {
            fs::rename(temp, &self.target)?;
        }
        self.temp = None;
        Ok(())
    }
}

impl Drop for FsDataWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Best effort: nothing more can be done about a file that will not go away.
            let _ = fs::remove_file(temp);
        }
    }
}

fn remove_file_if_any(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
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
        remove_file_if_any(&self.path(image_id))
    }

    fn writer(&self, image_id: Uuid, slot: DataSlot) -> io::Result<Box<dyn DataWriter>> {
        // The directory is not created here: the server creates it at start, and a missing one
        // is a storage failure the client is told about.
        let temp = self.dir.join(format!(".upload-{}", Uuid::new_v4()));
        let file = File::create(&temp)?;
        Ok(Box::new(FsDataWriter {
            file,
            temp: Some(temp),
            target: self.slot_path(image_id, slot),
            hashes: DataHashes::default(),
        }))
    }

    fn read(&self, image_id: Uuid, slot: DataSlot) -> io::Result<StoredData> {
        let file = File::open(self.slot_path(image_id, slot))?;
        let size = file.metadata()?.len();
        Ok(StoredData {
            size,
            reader: Box::new(file),
        })
    }

    fn promote_staged(&self, image_id: Uuid) -> io::Result<()> {
        fs::rename(
            self.slot_path(image_id, DataSlot::Staged),
            self.slot_path(image_id, DataSlot::Image),
        )
    }

    fn remove_slot(&self, image_id: Uuid, slot: DataSlot) -> io::Result<()> {
        remove_file_if_any(&self.slot_path(image_id, slot))
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

    #[test]
    fn written_bytes_appear_only_when_committed_and_staged_bytes_are_promoted() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsImageDataStore::new(dir.path());
        let image_id = Uuid::from_u128(7);
        let names = || -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };

        let mut dropped = store.writer(image_id, DataSlot::Image).unwrap();
        dropped.write(b"lost").unwrap();
        assert_eq!(dropped.size(), 4);
        drop(dropped);
        assert!(names().is_empty());

        let mut staged = store.writer(image_id, DataSlot::Staged).unwrap();
        staged.write(b"a").unwrap();
        staged.write(b"bc").unwrap();
        let facts = staged.finish().unwrap();
        assert_eq!(facts.checksum, "900150983cd24fb0d6963f7d28e17f72");
        assert!(matches!(
            store.read(image_id, DataSlot::Staged).err().unwrap().kind(),
            io::ErrorKind::NotFound
        ));
        staged.commit().unwrap();
        assert_eq!(names(), vec![format!(".staged-{image_id}")]);
        assert_eq!(store.read(image_id, DataSlot::Staged).unwrap().size, 3);

        store.promote_staged(image_id).unwrap();
        assert_eq!(names(), vec![image_id.to_string()]);
        let mut read = Vec::new();
        let data = store.read(image_id, DataSlot::Image).unwrap();
        assert_eq!(data.size, 3);
        { data.reader }.read_to_end(&mut read).unwrap();
        assert_eq!(read, b"abc");
        store.remove_slot(image_id, DataSlot::Staged).unwrap();
        store.remove_slot(image_id, DataSlot::Image).unwrap();
        assert!(names().is_empty());
    }
}
