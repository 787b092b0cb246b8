//! Registering an image whose bytes come from a VHD file: what the compute service does when a
//! tenant saves a server, and what the provider does to publish a base image (the Rackspace API
//! has no image create). The bytes go through the [`ImageDataStore`] port like an upload, so
//! `size`, md5 `checksum` and sha512 `os_hash_value` are those of the file.

use std::io::{self, Read, Seek, SeekFrom};

use imgshare_core::vhd::{self, VhdProblem};
use imgshare_core::{Command, Context, ImageActivated, ImageCommand, ImageOrigin, NewImage};
use uuid::Uuid;

use crate::engine::{Engine, EngineError};
use crate::image_data::{DataSlot, ImageDataStore};

/// Why an image could not be registered from a VHD file. Nothing is registered and no bytes are
/// left behind in any case.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The file is not a VHD the cloud can use.
    #[error("not a usable VHD: {0}")]
    NotVhd(VhdProblem),
    /// Reading the file or writing the data store failed.
    #[error("reading or storing the image data: {0}")]
    Io(#[from] io::Error),
    /// The engine refused the registration (who may register what, names, properties).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Registers `image_id` from the VHD in `file`: checks its footer (and that a fixed disk is its
/// size plus the footer), copies it into `store` while hashing it, registers the image active
/// (`ovf`/`vhd`, `virtual_size` = the disk's size), and only then makes the bytes visible.
pub fn register_vhd<F: Read + Seek>(
    engine: &Engine,
    store: &dyn ImageDataStore,
    ctx: &Context,
    image_id: Uuid,
    origin: ImageOrigin,
    mut image: NewImage,
    file: &mut F,
) -> Result<ImageActivated, RegisterError> {
    let length = file.seek(SeekFrom::End(0))?;
    let footer_at = length
        .checked_sub(vhd::FOOTER_LEN as u64)
        .ok_or(RegisterError::NotVhd(VhdProblem::NotVhd))?;
    file.seek(SeekFrom::Start(footer_at))?;
    let mut footer = vec![0_u8; vhd::FOOTER_LEN];
    file.read_exact(&mut footer)?;
    let parsed = vhd::parse_footer(&footer).map_err(RegisterError::NotVhd)?;
    vhd::dynamic_header_offset(&parsed, length).map_err(RegisterError::NotVhd)?;
    file.seek(SeekFrom::Start(0))?;

    let mut writer = store.writer(image_id, DataSlot::Image)?;
    let mut buffer = vec![0_u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        writer.write(buffer.get(..read).unwrap_or_default())?;
    }
    let mut data = writer.finish()?;
    data.virtual_size = Some(parsed.current_size);
    image.container_format = Some("ovf".to_owned());
    image.disk_format = Some("vhd".to_owned());
    image.data = Some(data.clone());
    let command = ImageCommand::Register { origin, image };
    // A refused command drops the writer, which removes the bytes it received.
    engine.execute(ctx, Command::Image { image_id, command })?;
    writer.commit()?;
    Ok(data)
}
