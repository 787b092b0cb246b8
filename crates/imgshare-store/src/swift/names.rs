//! Which account, container and object names the Swift adapter sends, and how they are written
//! into a URL. Every check here runs before any request: a name that fails never reaches Swift.

use std::io;

use imgshare_core::transfer::{valid_container_name, valid_object_name};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Swift's limits (`constraints.py`): container names up to 256 bytes, object names up to 1024.
pub(crate) const MAX_CONTAINER_NAME: usize = 256;
pub(crate) const MAX_OBJECT_NAME: usize = 1024;
/// A tenant id is a Rackspace account number or a project id: short, and plain ASCII.
const MAX_TENANT: usize = 64;

/// Everything but the unreserved characters of RFC 3986 is escaped, `/` and `%` included, so a
/// name can never be read as a path step or an escape by a proxy.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("invalid {what} name"))
}

/// `%` followed by two hex digits: a name that would mean something else once decoded by a
/// proxy or a client (`%2F` for `/`, `%2E%2E` for `..`) is refused rather than escaped.
fn has_escape(name: &str) -> bool {
    name.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn plain(name: &str) -> bool {
    !has_escape(name) && !name.chars().any(char::is_control)
}

/// A tenant id that becomes part of an account name: ASCII letters, digits, `-` and `_` only,
/// so that `<prefix><tenant>` is always exactly one path step of the tenant's own.
pub(crate) fn check_tenant(tenant: &str) -> io::Result<()> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid("account"))
    }
}

pub(crate) fn check_container(container: &str) -> io::Result<()> {
    if valid_container_name(container) && container.len() <= MAX_CONTAINER_NAME && plain(container)
    {
        Ok(())
    } else {
        Err(invalid("container"))
    }
}

pub(crate) fn check_object(object: &str) -> io::Result<()> {
    if valid_object_name(object) && object.len() <= MAX_OBJECT_NAME && plain(object) {
        Ok(())
    } else {
        Err(invalid("object"))
    }
}

/// One path step, escaped.
pub(crate) fn encode(step: &str) -> String {
    utf8_percent_encode(step, SEGMENT).to_string()
}

/// An object name, escaped step by step (its `/` stay: Swift pseudo-directories).
pub(crate) fn encode_object(object: &str) -> String {
    object.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_mean_something_else_are_refused() {
        for bad in [
            "", ".", "..", "a/b", "a\0", "a%2Fb", "%2e%2E", "x\n", "a\\b",
        ] {
            assert!(check_container(bad).is_err(), "{bad:?}");
        }
        assert!(check_container(&"c".repeat(257)).is_err());
        assert!(check_container(&"c".repeat(256)).is_ok());
        for bad in ["", "../x", "a/../b", "/abs", "a//b", "a%2F..", "a\0", "a\r"] {
            assert!(check_object(bad).is_err(), "{bad:?}");
        }
        assert!(check_object(&"o".repeat(1025)).is_err());
        assert!(check_object("dir/image.vhd").is_ok());
        assert!(
            check_object("100% sure.vhd").is_ok(),
            "a bare % is no escape"
        );
        for bad in ["", "1/2", "..", "a b", "AUTH_1/..", &"1".repeat(65)] {
            assert!(check_tenant(bad).is_err(), "{bad:?}");
        }
        assert!(check_tenant("111111").is_ok());
    }

    #[test]
    fn encoding_escapes_everything_but_unreserved() {
        assert_eq!(encode("a b%/?#"), "a%20b%25%2F%3F%23");
        assert_eq!(encode_object("dir/x y.vhd"), "dir/x%20y.vhd");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
