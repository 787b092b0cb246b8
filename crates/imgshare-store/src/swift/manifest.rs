//! What a large object's manifest may point to, checked before its bytes are read: a Dynamic
//! Large Object's `X-Object-Manifest` and a Static Large Object's segment list. Both name
//! segments relative to the account the manifest is in; a name that would step out of it
//! (`..`, an escaped `/`, another account's name smuggled into the container part) is refused,
//! and a listing too long to add up is reported as unbounded, which the importer refuses with
//! its size message.

use std::collections::BTreeSet;
use std::io;

use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::names::{check_container, check_object};

/// Swift's own limits: an SLO manifest holds at most 1,000 segments (`max_manifest_segments`)
/// in at most 8 MiB; nested SLOs go at most 10 deep. A DLO listing is read 10,000 names a page;
/// past [`MAX_DLO_SEGMENTS`] Swift itself stops giving a length, and so does this check.
pub(crate) const MAX_SLO_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;
pub(crate) const MAX_SLO_DEPTH: usize = 10;
pub(crate) const MAX_DLO_SEGMENTS: usize = 10_000;
pub(crate) const LISTING_PAGE_BYTES: u64 = 16 * 1024 * 1024;

/// The length of a manifest that can never be read to its end (a loop, too many segments).
pub const UNBOUNDED: u64 = u64::MAX;

pub(crate) fn outside_account() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "the manifest names segments outside the object's account",
    )
}

/// A DLO manifest header `<container>/<prefix>` (each part URL-encoded), decoded and checked.
pub(crate) fn parse_dlo(header: &str) -> io::Result<(String, String)> {
    let (container, prefix) = header.split_once('/').ok_or_else(outside_account)?;
    let decode = |part: &str| {
        percent_decode_str(part)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| outside_account())
    };
    let (container, prefix) = (decode(container)?, decode(prefix)?);
    check_container(&container).map_err(|_| outside_account())?;
    // A prefix is the start of the segments' names (python-swiftclient's ends in `/`): a name
    // that begins with it must be a valid object name, so it may not climb.
    check_object(&format!("{prefix}x")).map_err(|_| outside_account())?;
    Ok((container, prefix))
}

/// One entry of `GET <slo>?multipart-manifest=get`.
#[derive(Debug, Deserialize)]
pub(crate) struct SloEntry {
    pub(crate) name: String,
    pub(crate) bytes: u64,
    #[serde(default)]
    pub(crate) sub_slo: bool,
    #[serde(default)]
    pub(crate) range: Option<String>,
}

impl SloEntry {
    /// `(container, object)` of a segment path `/<container>/<object>` (the leading `/`
    /// optional), decoded and checked.
    pub(crate) fn segment(&self) -> io::Result<(String, String)> {
        let name = percent_decode_str(&self.name)
            .decode_utf8()
            .map_err(|_| outside_account())?;
        let path = name.strip_prefix('/').unwrap_or(&name);
        let (container, object) = path.split_once('/').ok_or_else(outside_account)?;
        check_container(container).map_err(|_| outside_account())?;
        check_object(object).map_err(|_| outside_account())?;
        Ok((container.to_owned(), object.to_owned()))
    }

    /// The bytes this entry adds: its range's length when it has one.
    pub(crate) fn len(&self) -> u64 {
        self.range
            .as_deref()
            .and_then(|range| range.split_once('-'))
            .and_then(|(first, last)| {
                let (first, last) = (
                    first.trim().parse::<u64>().ok()?,
                    last.trim().parse::<u64>().ok()?,
                );
                last.checked_sub(first)?.checked_add(1)
            })
            .unwrap_or(self.bytes)
    }
}

pub(crate) fn parse_slo(body: &[u8]) -> io::Result<Vec<SloEntry>> {
    serde_json::from_slice(body).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unreadable SLO manifest: {error}"),
        )
    })
}

/// The SLOs already being walked: meeting one again is a loop.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub(crate) seen: BTreeSet<(String, String)>,
}

/// One entry of a container listing (`?format=json`).
#[derive(Debug, Deserialize)]
pub(crate) struct ListedObject {
    pub(crate) name: String,
    pub(crate) bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlo_headers_stay_in_the_account() {
        assert_eq!(
            parse_dlo("exports/abc.vhd-").unwrap(),
            ("exports".to_owned(), "abc.vhd-".to_owned())
        );
        assert_eq!(
            parse_dlo("c_segments/dlo.vhd/1796.2/2560/1024/").unwrap(),
            (
                "c_segments".to_owned(),
                "dlo.vhd/1796.2/2560/1024/".to_owned()
            )
        );
        assert!(parse_dlo("c/a//").is_err());
        assert_eq!(
            parse_dlo("my%20segs/a%20b").unwrap(),
            ("my segs".to_owned(), "a b".to_owned())
        );
        for bad in [
            "nocontainer",
            "../AUTH_222222/segs/x",
            "..%2FAUTH_222222%2Fsegs/x",
            "%2E%2E/x",
            "segs/../../AUTH_2/c/x",
            "segs/%2E%2E/x",
            "/segs/x",
        ] {
            let error = parse_dlo(bad).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{bad}");
        }
    }

    #[test]
    fn slo_segments_stay_in_the_account() {
        let entry = |name: &str| SloEntry {
            name: name.to_owned(),
            bytes: 10,
            sub_slo: false,
            range: None,
        };
        assert_eq!(
            entry("/segs/a/b").segment().unwrap(),
            ("segs".to_owned(), "a/b".to_owned())
        );
        for bad in [
            "/../AUTH_2/c/o",
            "/%2E%2E/AUTH_2/c/o",
            "/segs/../../AUTH_2/o",
            "noslash",
            "/c/",
        ] {
            assert!(entry(bad).segment().is_err(), "{bad}");
        }
        let ranged = SloEntry {
            range: Some("10-19".to_owned()),
            ..entry("/c/o")
        };
        assert_eq!(ranged.len(), 10);
    }
}
