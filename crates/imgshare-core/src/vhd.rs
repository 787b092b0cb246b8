//! What an import accepts as a VHD, decided from the file's bytes (no I/O here: the caller reads
//! the footer, the header copy and the dynamic disk header and passes them in).
//!
//! Layout (Microsoft "Virtual Hard Disk Image Format Specification"): every VHD ends with a
//! 512-byte footer; a dynamic or differencing disk also starts with a copy of it and has a
//! 1024-byte dynamic disk header at the footer's data offset. All numbers are big-endian.
//! The reasons a file is refused carry the numbered codes of the Cloud Images API
//! (`docs/spec/rackspace.md` §3.7).

use std::fmt;

/// Bytes in a footer (and in its copy at the start of a dynamic disk).
pub const FOOTER_LEN: usize = 512;
/// Bytes in a dynamic disk header.
pub const DYNAMIC_HEADER_LEN: usize = 1024;

const FOOTER_COOKIE: &[u8; 8] = b"conectix";
const DYNAMIC_COOKIE: &[u8; 8] = b"cxsparse";
const FOOTER_CHECKSUM_AT: usize = 64;
const DYNAMIC_CHECKSUM_AT: usize = 36;

/// The two kinds of disk an import accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    /// Disk type 2: the data, then the footer.
    Fixed,
    /// Disk type 3: sparse, with a block allocation table.
    Dynamic,
}

/// The facts an import needs from a valid footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Fixed or dynamic.
    pub disk_type: DiskType,
    /// Where the dynamic disk header starts (meaningless for a fixed disk).
    pub data_offset: u64,
    /// The disk's size as the guest sees it (the virtual size).
    pub current_size: u64,
}

/// Why a file cannot be imported, with the Cloud Images reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VhdProblem {
    /// 111: the file could not be checked (for example it could not be read completely).
    Unspecified,
    /// 396: not a VHD (cookie, checksum, length or dynamic header are wrong).
    NotVhd,
    /// 413: the virtual size exceeds the import limit (bytes).
    VirtualSizeTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// 523: a disk type other than fixed, dynamic or differencing.
    UnsupportedDiskType,
    /// 609: the file itself exceeds the import limit (bytes).
    PhysicalSizeTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// 614: the disk's unique id is all zeros.
    ZeroUuid,
    /// 721: a differencing disk, which needs its parent.
    HasParent,
}

impl VhdProblem {
    /// The numbered reason of the Cloud Images API.
    pub fn code(&self) -> u16 {
        match self {
            VhdProblem::Unspecified => 111,
            VhdProblem::NotVhd => 396,
            VhdProblem::VirtualSizeTooLarge { .. } => 413,
            VhdProblem::UnsupportedDiskType => 523,
            VhdProblem::PhysicalSizeTooLarge { .. } => 609,
            VhdProblem::ZeroUuid => 614,
            VhdProblem::HasParent => 721,
        }
    }
}

/// The task message: the code, then the documented reason.
impl fmt::Display for VhdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        match self {
            VhdProblem::Unspecified => write!(f, "{code}: The VHD failed validation."),
            VhdProblem::NotVhd => write!(f, "{code}: The file is not a valid VHD."),
            VhdProblem::VirtualSizeTooLarge { limit } => write!(
                f,
                "{code}: The virtual size of the VHD exceeds the {} limit.",
                format_limit(*limit)
            ),
            VhdProblem::UnsupportedDiskType => {
                write!(f, "{code}: Only fixed or dynamic disks may be imported.")
            }
            VhdProblem::PhysicalSizeTooLarge { limit } => write!(
                f,
                "{code}: The physical size of the VHD exceeds the {} limit.",
                format_limit(*limit)
            ),
            VhdProblem::ZeroUuid => write!(f, "{code}: The internal UUID of the VHD is all zeros."),
            VhdProblem::HasParent => write!(
                f,
                "{code}: The VHD has a parent disk; only stand-alone VHDs may be imported."
            ),
        }
    }
}

/// A byte count as the API's messages write it: `40GB` for 40 GiB, else the largest whole unit.
pub fn format_limit(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes(slice.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at + 8)?;
    Some(u64::from_be_bytes(slice.try_into().ok()?))
}

/// One's complement of the byte sum, with the stored checksum's four bytes counted as zero.
pub fn checksum(bytes: &[u8], checksum_at: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(index, _)| !(checksum_at..checksum_at + 4).contains(index))
        .fold(0_u32, |sum, (_, byte)| sum.wrapping_add(u32::from(*byte)));
    !sum
}

/// The footer checksum of a 512-byte footer.
pub fn footer_checksum(footer: &[u8]) -> u32 {
    checksum(footer, FOOTER_CHECKSUM_AT)
}

/// Checks a footer (the file's last 512 bytes): cookie, checksum, disk type, unique id.
pub fn parse_footer(footer: &[u8]) -> Result<Footer, VhdProblem> {
    if footer.len() != FOOTER_LEN || !footer.starts_with(FOOTER_COOKIE) {
        return Err(VhdProblem::NotVhd);
    }
    if be_u32(footer, FOOTER_CHECKSUM_AT) != Some(footer_checksum(footer)) {
        return Err(VhdProblem::NotVhd);
    }
    let disk_type = match be_u32(footer, 60) {
        Some(2) => DiskType::Fixed,
        Some(3) => DiskType::Dynamic,
        Some(4) => return Err(VhdProblem::HasParent),
        _ => return Err(VhdProblem::UnsupportedDiskType),
    };
    if footer
        .get(68..84)
        .is_none_or(|id| id.iter().all(|b| *b == 0))
    {
        return Err(VhdProblem::ZeroUuid);
    }
    let data_offset = be_u64(footer, 16).ok_or(VhdProblem::NotVhd)?;
    let current_size = be_u64(footer, 48).ok_or(VhdProblem::NotVhd)?;
    Ok(Footer {
        disk_type,
        data_offset,
        current_size,
    })
}

/// Where a dynamic disk's header must be read from, or `None` for a fixed disk; checks that the
/// footer fits the file's length (`file_len` bytes).
pub fn dynamic_header_offset(footer: &Footer, file_len: u64) -> Result<Option<u64>, VhdProblem> {
    let footer_len = FOOTER_LEN as u64;
    match footer.disk_type {
        // A fixed disk is exactly its data followed by the footer.
        DiskType::Fixed if footer.current_size.checked_add(footer_len) == Some(file_len) => {
            Ok(None)
        }
        DiskType::Fixed => Err(VhdProblem::NotVhd),
        DiskType::Dynamic => {
            let header_end = footer.data_offset.checked_add(DYNAMIC_HEADER_LEN as u64);
            let fits = footer.data_offset >= footer_len
                && header_end.is_some_and(|end| end <= file_len.saturating_sub(footer_len));
            if fits {
                Ok(Some(footer.data_offset))
            } else {
                Err(VhdProblem::NotVhd)
            }
        }
    }
}

/// Checks a dynamic disk's start: the footer copy at offset 0 (`head`, 512 bytes) must equal
/// the footer, and the header (`header`, 1024 bytes) must have its cookie, a valid checksum and
/// no parent.
pub fn check_dynamic(footer: &[u8], head: &[u8], header: &[u8]) -> Result<(), VhdProblem> {
    if head != footer {
        return Err(VhdProblem::NotVhd);
    }
    if header.len() != DYNAMIC_HEADER_LEN || !header.starts_with(DYNAMIC_COOKIE) {
        return Err(VhdProblem::NotVhd);
    }
    if be_u32(header, DYNAMIC_CHECKSUM_AT) != Some(checksum(header, DYNAMIC_CHECKSUM_AT)) {
        return Err(VhdProblem::NotVhd);
    }
    // The parent's unique id: only differencing disks name one.
    if header
        .get(40..56)
        .is_some_and(|id| id.iter().any(|b| *b != 0))
    {
        return Err(VhdProblem::HasParent);
    }
    Ok(())
}

/// The size rules: the file (`physical`) and the disk (`virtual_size`) must both be within the
/// limit. The physical size is checked first, before anything is read.
pub fn check_physical_size(physical: u64, limit: u64) -> Result<(), VhdProblem> {
    if physical > limit {
        Err(VhdProblem::PhysicalSizeTooLarge { limit })
    } else {
        Ok(())
    }
}

/// The virtual size rule (see [`check_physical_size`]).
pub fn check_virtual_size(footer: &Footer, limit: u64) -> Result<(), VhdProblem> {
    if footer.current_size > limit {
        Err(VhdProblem::VirtualSizeTooLarge { limit })
    } else {
        Ok(())
    }
}

/// Where a disk's first sector (its MBR or boot sector) is stored in the file: offset 0 for a
/// fixed disk; for a dynamic disk, from its header (`header`, 1024 bytes) and the first entry of
/// its block allocation table (`first_block`, read at [`allocation_table_offset`]), after the
/// block's sector bitmap. `None` if the first block is not allocated (the sector reads as zeros).
pub fn first_sector_offset(header: &[u8], first_block: u32) -> Option<u64> {
    if first_block == u32::MAX {
        return None;
    }
    let block_size = u64::from(be_u32(header, 32)?);
    // One bit per sector, padded to whole sectors.
    let bitmap = (block_size / 512).div_ceil(8).div_ceil(512) * 512;
    u64::from(first_block).checked_mul(512)?.checked_add(bitmap)
}

/// Where a dynamic disk's block allocation table starts (its header's "table offset").
pub fn allocation_table_offset(header: &[u8]) -> Option<u64> {
    be_u64(header, 16)
}

/// True if a disk's first sector says Windows: an NTFS boot sector (OEM id `NTFS    `), or an
/// MBR with an NTFS (0x07) or Windows recovery (0x27) partition. Images of Windows cannot be
/// imported (`docs/spec/rackspace.md` §3.2); this is what the disk itself tells without booting.
pub fn first_sector_says_windows(sector: &[u8]) -> bool {
    if sector.get(3..11) == Some(b"NTFS    ".as_slice()) {
        return true;
    }
    let is_mbr = sector.get(510..512) == Some([0x55, 0xAA].as_slice());
    is_mbr
        && (0..4).any(|entry| {
            sector
                .get(446 + 16 * entry + 4)
                .is_some_and(|kind| matches!(kind, 0x07 | 0x27))
        })
}

/// A fixed VHD holding `data` (zero-padded to whole 512-byte sectors), with `unique_id` as its
/// disk id and `creator` as its creator application: the smallest file an import, a download
/// and an export treat as a real disk (demo images, tests).
pub fn fixed_vhd(data: &[u8], unique_id: [u8; 16], creator: [u8; 4]) -> Vec<u8> {
    let sectors = data.len().div_ceil(512).max(1);
    let size = (sectors * 512) as u64;
    let mut bytes = data.to_vec();
    bytes.resize(sectors * 512, 0);
    let mut footer = vec![0_u8; FOOTER_LEN];
    footer[..8].copy_from_slice(FOOTER_COOKIE);
    footer[8..12].copy_from_slice(&2_u32.to_be_bytes());
    footer[12..16].copy_from_slice(&0x0001_0000_u32.to_be_bytes());
    // A fixed disk has no dynamic header.
    footer[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
    footer[28..32].copy_from_slice(&creator);
    footer[32..36].copy_from_slice(&0x0001_0000_u32.to_be_bytes());
    footer[40..48].copy_from_slice(&size.to_be_bytes());
    footer[48..56].copy_from_slice(&size.to_be_bytes());
    // CHS geometry as the VHD specification computes it for small disks: 4 heads, 17 sectors.
    let cylinders = u16::try_from(sectors.div_ceil(4 * 17)).unwrap_or(u16::MAX);
    footer[56..58].copy_from_slice(&cylinders.to_be_bytes());
    footer[58] = 4;
    footer[59] = 17;
    footer[60..64].copy_from_slice(&2_u32.to_be_bytes());
    footer[68..84].copy_from_slice(&unique_id);
    let sum = footer_checksum(&footer);
    footer[FOOTER_CHECKSUM_AT..FOOTER_CHECKSUM_AT + 4].copy_from_slice(&sum.to_be_bytes());
    bytes.extend_from_slice(&footer);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A footer as qemu-img writes one: cookie, features, version, data offset, sizes, type,
    /// checksum, unique id.
    fn footer(disk_type: u32, data_offset: u64, current_size: u64) -> Vec<u8> {
        let mut bytes = vec![0_u8; FOOTER_LEN];
        bytes[..8].copy_from_slice(FOOTER_COOKIE);
        bytes[8..12].copy_from_slice(&2_u32.to_be_bytes());
        bytes[12..16].copy_from_slice(&0x0001_0000_u32.to_be_bytes());
        bytes[16..24].copy_from_slice(&data_offset.to_be_bytes());
        bytes[40..48].copy_from_slice(&current_size.to_be_bytes());
        bytes[48..56].copy_from_slice(&current_size.to_be_bytes());
        bytes[60..64].copy_from_slice(&disk_type.to_be_bytes());
        bytes[68..84].copy_from_slice(&[7_u8; 16]);
        seal(&mut bytes, FOOTER_CHECKSUM_AT);
        bytes
    }

    fn seal(bytes: &mut [u8], at: usize) {
        let sum = checksum(bytes, at);
        bytes[at..at + 4].copy_from_slice(&sum.to_be_bytes());
    }

    fn dynamic_header(parent: [u8; 16]) -> Vec<u8> {
        let mut bytes = vec![0_u8; DYNAMIC_HEADER_LEN];
        bytes[..8].copy_from_slice(DYNAMIC_COOKIE);
        bytes[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        bytes[40..56].copy_from_slice(&parent);
        seal(&mut bytes, DYNAMIC_CHECKSUM_AT);
        bytes
    }

    /// An MBR with one partition of type `kind`.
    fn mbr(kind: u8) -> Vec<u8> {
        let mut sector = vec![0_u8; 512];
        sector[446 + 4] = kind;
        sector[510] = 0x55;
        sector[511] = 0xAA;
        sector
    }

    #[test]
    fn ntfs_partitions_and_boot_sectors_say_windows() {
        assert!(first_sector_says_windows(&mbr(0x07)));
        assert!(first_sector_says_windows(&mbr(0x27)));
        assert!(!first_sector_says_windows(&mbr(0x83)));
        let mut no_signature = mbr(0x07);
        no_signature[511] = 0;
        assert!(!first_sector_says_windows(&no_signature));
        let mut boot = vec![0_u8; 512];
        boot[3..11].copy_from_slice(b"NTFS    ");
        assert!(first_sector_says_windows(&boot));
        assert!(!first_sector_says_windows(&[0_u8; 512]));
        assert!(!first_sector_says_windows(&[]));
    }

    #[test]
    fn a_dynamic_disks_first_sector_follows_the_bitmap_of_its_first_block() {
        let mut header = dynamic_header([0; 16]);
        header[16..24].copy_from_slice(&1536_u64.to_be_bytes());
        header[32..36].copy_from_slice(&(2_u32 << 20).to_be_bytes());
        assert_eq!(allocation_table_offset(&header), Some(1536));
        // 2 MiB blocks: 4096 sectors, a 512-byte bitmap.
        assert_eq!(first_sector_offset(&header, 10), Some(10 * 512 + 512));
        assert_eq!(first_sector_offset(&header, u32::MAX), None);
    }

    #[test]
    fn a_generated_fixed_vhd_is_its_data_and_a_valid_footer() {
        let bytes = fixed_vhd(b"hello", [9; 16], *b"imgs");
        assert_eq!(bytes.len(), 1024);
        let footer = parse_footer(&bytes[512..]).unwrap();
        assert_eq!(footer.disk_type, DiskType::Fixed);
        assert_eq!(footer.current_size, 512);
        assert_eq!(dynamic_header_offset(&footer, 1024), Ok(None));
        assert_eq!(&bytes[..5], b"hello");
        assert!(bytes[5..512].iter().all(|b| *b == 0));
        assert_eq!(fixed_vhd(&[], [9; 16], *b"imgs").len(), 1024);
    }

    #[test]
    fn a_fixed_footer_parses_and_fits_a_file_of_size_plus_512() {
        let bytes = footer(2, u64::MAX, 1 << 20);
        let parsed = parse_footer(&bytes).unwrap();
        assert_eq!(parsed.disk_type, DiskType::Fixed);
        assert_eq!(parsed.current_size, 1 << 20);
        assert_eq!(dynamic_header_offset(&parsed, (1 << 20) + 512), Ok(None));
        assert_eq!(
            dynamic_header_offset(&parsed, 1 << 20),
            Err(VhdProblem::NotVhd)
        );
    }

    #[test]
    fn a_dynamic_footer_points_at_a_header_inside_the_file() {
        let bytes = footer(3, 512, 64 << 20);
        let parsed = parse_footer(&bytes).unwrap();
        assert_eq!(parsed.disk_type, DiskType::Dynamic);
        assert_eq!(dynamic_header_offset(&parsed, 2560), Ok(Some(512)));
        assert_eq!(
            dynamic_header_offset(&parsed, 2047),
            Err(VhdProblem::NotVhd)
        );
        let past_end = parse_footer(&footer(3, u64::MAX - 10, 1)).unwrap();
        assert_eq!(
            dynamic_header_offset(&past_end, 1 << 30),
            Err(VhdProblem::NotVhd)
        );
    }

    #[test]
    fn cookie_checksum_and_length_are_checked() {
        let good = footer(2, u64::MAX, 4096);
        let mut cookie = good.clone();
        cookie[0] = b'C';
        assert_eq!(parse_footer(&cookie), Err(VhdProblem::NotVhd));
        let mut flipped = good.clone();
        flipped[50] ^= 1;
        assert_eq!(parse_footer(&flipped), Err(VhdProblem::NotVhd));
        assert_eq!(parse_footer(&good[..511]), Err(VhdProblem::NotVhd));
        assert_eq!(parse_footer(b"not a vhd"), Err(VhdProblem::NotVhd));
    }

    #[test]
    fn disk_types_other_than_fixed_and_dynamic_are_refused() {
        assert_eq!(
            parse_footer(&footer(4, 512, 4096)),
            Err(VhdProblem::HasParent)
        );
        for other in [0, 1, 5, 6, 0xffff_ffff] {
            assert_eq!(
                parse_footer(&footer(other, 512, 4096)),
                Err(VhdProblem::UnsupportedDiskType),
                "type {other}"
            );
        }
    }

    #[test]
    fn an_all_zero_unique_id_is_refused() {
        let mut bytes = footer(2, u64::MAX, 4096);
        bytes[68..84].fill(0);
        seal(&mut bytes, FOOTER_CHECKSUM_AT);
        assert_eq!(parse_footer(&bytes), Err(VhdProblem::ZeroUuid));
    }

    #[test]
    fn the_dynamic_header_and_the_footer_copy_are_checked() {
        let foot = footer(3, 512, 64 << 20);
        assert_eq!(
            check_dynamic(&foot, &foot, &dynamic_header([0; 16])),
            Ok(())
        );
        assert_eq!(
            check_dynamic(&foot, &foot, &dynamic_header([1; 16])),
            Err(VhdProblem::HasParent)
        );
        let mut other_copy = foot.clone();
        other_copy[100] = 1;
        assert_eq!(
            check_dynamic(&foot, &other_copy, &dynamic_header([0; 16])),
            Err(VhdProblem::NotVhd)
        );
        let mut bad_sum = dynamic_header([0; 16]);
        bad_sum[20] ^= 1;
        assert_eq!(
            check_dynamic(&foot, &foot, &bad_sum),
            Err(VhdProblem::NotVhd)
        );
        let mut bad_cookie = dynamic_header([0; 16]);
        bad_cookie[0] = b'X';
        seal(&mut bad_cookie, DYNAMIC_CHECKSUM_AT);
        assert_eq!(
            check_dynamic(&foot, &foot, &bad_cookie),
            Err(VhdProblem::NotVhd)
        );
    }

    #[test]
    fn sizes_are_checked_against_the_limit_inclusively() {
        let parsed = parse_footer(&footer(3, 512, 1000)).unwrap();
        assert_eq!(check_virtual_size(&parsed, 1000), Ok(()));
        assert_eq!(
            check_virtual_size(&parsed, 999),
            Err(VhdProblem::VirtualSizeTooLarge { limit: 999 })
        );
        assert_eq!(check_physical_size(10, 10), Ok(()));
        assert_eq!(
            check_physical_size(11, 10),
            Err(VhdProblem::PhysicalSizeTooLarge { limit: 10 })
        );
    }

    #[test]
    fn messages_carry_the_code_and_the_configured_limit() {
        assert_eq!(
            VhdProblem::VirtualSizeTooLarge { limit: 40 << 30 }.to_string(),
            "413: The virtual size of the VHD exceeds the 40GB limit."
        );
        assert_eq!(
            VhdProblem::PhysicalSizeTooLarge { limit: 64 << 10 }.to_string(),
            "609: The physical size of the VHD exceeds the 64KB limit."
        );
        assert_eq!(format_limit(1000), "1000 bytes");
        assert_eq!(format_limit(3 << 20), "3MB");
        assert_eq!(
            VhdProblem::HasParent.to_string(),
            "721: The VHD has a parent disk; only stand-alone VHDs may be imported."
        );
        assert_eq!(
            VhdProblem::NotVhd.to_string(),
            "396: The file is not a valid VHD."
        );
    }
}
