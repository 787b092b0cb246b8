//! Percent-decoding, in one place for every caller: query strings are form-encoded (`+` is a
//! space and a `%` not followed by two hex digits stays literal, as in Python's `unquote_plus`);
//! path segments are strict (a bad escape or non-UTF-8 text is refused).

/// Decodes a form-encoded query component: `+` is a space, `%XX` a byte, any other `%` literal.
pub fn decode_form(s: &str) -> Vec<u8> {
    decode(s, Mode::Form).unwrap_or_default()
}

/// Decodes a path segment: `%XX` escapes only; `None` for a bad escape or text that is not UTF-8.
pub fn decode_path(segment: &str) -> Option<String> {
    decode(segment, Mode::Path).and_then(|bytes| String::from_utf8(bytes).ok())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Form,
    Path,
}

/// The one decoder; `None` only in [`Mode::Path`], for a `%` without two hex digits after it.
fn decode(s: &str, mode: Mode) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' if mode == Mode::Form => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| hex_value(*c));
                let lo = bytes.get(i + 2).and_then(|c| hex_value(*c));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 3;
                } else if mode == Mode::Form {
                    out.push(b'%');
                    i += 1;
                } else {
                    return None;
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_path_decoding_differ_only_in_plus_and_bad_escapes() {
        assert_eq!(decode_form("a+b%20c%zz%4"), b"a b c%zz%4");
        assert_eq!(decode_path("a+b%20c").as_deref(), Some("a+b c"));
        assert_eq!(decode_path("bad%zz"), None);
        assert_eq!(decode_path("short%4"), None);
        assert_eq!(decode_path("%ff"), None);
        assert_eq!(decode_path("%C3%A9").as_deref(), Some("é"));
    }
}
