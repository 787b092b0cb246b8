//! The `first` and `next` links of a list page, encoded as Glance encodes them.

use super::*;

/// The `first` link: `base_path` plus the original parameters without `marker`, or `base_path`
/// alone when nothing is left. Values are re-encoded (`application/x-www-form-urlencoded`, as
/// Python's `urlencode` does); parameter order and repeats are kept.
pub fn first_link(base_path: &str, raw: &str) -> String {
    build_link(base_path, raw, None)
}

/// The `next` link: the original parameters without `marker`, then `marker=<last_id>`.
pub fn next_link(base_path: &str, raw: &str, last_id: &str) -> String {
    build_link(base_path, raw, Some(last_id))
}

pub(super) fn build_link(base_path: &str, raw: &str, marker: Option<&str>) -> String {
    let mut out = String::from(base_path);
    let mut separator = '?';
    let pairs = raw
        .split('&')
        .filter(|s| !s.is_empty())
        .map(split_pair)
        // Links are built only after the query parsed, so lossy decoding never changes a value
        // here; it keeps the function total for any other caller.
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&crate::percent::decode_form(k)).into_owned(),
                String::from_utf8_lossy(&crate::percent::decode_form(v)).into_owned(),
            )
        })
        .filter(|(k, _)| k != "marker");
    for (key, value) in pairs {
        out.push(separator);
        separator = '&';
        encode_into(&key, &mut out);
        out.push('=');
        encode_into(&value, &mut out);
    }
    if let Some(marker) = marker {
        out.push(separator);
        out.push_str("marker=");
        encode_into(marker, &mut out);
    }
    out
}

/// Python's `quote_plus` with no extra safe characters, so links match what Glance emits.
pub(super) fn encode_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}
