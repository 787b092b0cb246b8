//! Parser for the JSON-patch documents accepted by `PATCH /v2/images/{id}`.
//!
//! Two dialects exist: the RFC 6902 subset (`v2.1`) and the older draft-4
//! form (`v2.0`), which clients such as tempest still send. This module only
//! turns the request into a list of operations on a single top-level image
//! property. Authorization, read-only/reserved property checks (403) and
//! value validation belong to the domain layer, because Glance runs them
//! after the whole body has been parsed. Keeping them out of here keeps the
//! 415 → 400 → 403 ordering of the reference service.
//!
//! Every input is handled without panicking. Allocation is bounded by the size
//! of the input, and the number of operations and key lengths are capped.

use serde_json::{Map, Value};
use thiserror::Error;

/// Media types accepted, in the order for the `Accept-Patch` header.
pub const ACCEPT_PATCH: &str =
    "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch";

/// Maximum number of operations accepted in one patch document.
pub const MAX_OPERATIONS: usize = 1000;

/// Maximum length, in characters, of a decoded pointer segment.
pub const MAX_KEY_CHARS: usize = 255;

/// Client-supplied text is echoed into error messages. This cap stops a huge
/// pointer or op name from being copied back into the response.
const MAX_ECHO_CHARS: usize = 128;

/// Top-level property whose pointer may carry a second segment (the position).
const LOCATIONS: &str = "locations";

/// The JSON-patch dialect of a request, chosen by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchDialect {
    /// `application/openstack-images-v2.0-json-patch`: `{"add": "/x", "value": …}`.
    V2_0,
    /// `application/openstack-images-v2.1-json-patch`: `{"op": "add", "path": "/x", "value": …}`.
    V2_1,
}

impl PatchDialect {
    /// The media type that selects this dialect.
    pub const fn media_type(self) -> &'static str {
        match self {
            PatchDialect::V2_0 => "application/openstack-images-v2.0-json-patch",
            PatchDialect::V2_1 => "application/openstack-images-v2.1-json-patch",
        }
    }
}

/// The supported patch operations. `move`, `copy` and `test` are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// Set a property. In v2.1 this is an upsert; in v2.0 the domain must reject existing properties.
    Add,
    /// Delete a property.
    Remove,
    /// Overwrite an existing property.
    Replace,
}

impl PatchOpKind {
    /// Checked in this order, so v2.0 error messages do not depend on key order.
    const ALL: [PatchOpKind; 3] = [PatchOpKind::Add, PatchOpKind::Remove, PatchOpKind::Replace];

    /// The wire name of the operation (`"add"`, `"remove"` or `"replace"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Glance allows a position segment only for location add/remove; a
    /// location replace takes the whole list.
    fn pointer_depth(self, root: &str) -> usize {
        match self {
            PatchOpKind::Add | PatchOpKind::Remove if root == LOCATIONS => 2,
            _ => 1,
        }
    }
}

/// One parsed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOp {
    /// What to do.
    pub kind: PatchOpKind,
    /// Decoded, whitespace-stripped top-level property name, e.g. `"name"`, `"tricky~1"`.
    pub path: String,
    /// Position for `add`/`remove` on `locations` (`"-"` or a number as written).
    /// `None` for every other operation.
    ///
    /// It is not checked here: Glance reports a bad position only after its
    /// location permission checks, so a parser-level 400 would mask their 403.
    pub index: Option<String>,
    /// The `value` member for `add`/`replace`. It is always `Some` for those and `None` for `remove`.
    pub value: Option<Value>,
}

/// A parsed patch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchDocument {
    /// Dialect the document was written in. v2.0 `add` semantics differ from v2.1.
    pub dialect: PatchDialect,
    /// Operations in request order. There may be none.
    pub ops: Vec<PatchOp>,
}

/// Category of a parse failure, mapping to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchErrorKind {
    /// 400: the body is not a valid patch document.
    BadRequest,
    /// 415: the `Content-Type` is not a patch media type. Respond with `Accept-Patch: ACCEPT_PATCH`.
    UnsupportedMediaType,
}

impl PatchErrorKind {
    /// The HTTP status code for this kind.
    pub const fn status_code(self) -> u16 {
        match self {
            PatchErrorKind::BadRequest => 400,
            PatchErrorKind::UnsupportedMediaType => 415,
        }
    }
}

/// A patch request that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct PatchError {
    /// Which HTTP status the failure maps to.
    pub kind: PatchErrorKind,
    /// Message for the client.
    pub message: String,
}

impl PatchError {
    fn bad_request(message: impl Into<String>) -> Self {
        PatchError {
            kind: PatchErrorKind::BadRequest,
            message: message.into(),
        }
    }

    fn unsupported_media_type() -> Self {
        PatchError {
            kind: PatchErrorKind::UnsupportedMediaType,
            message: format!("Unsupported Content-Type. Supported media types: {ACCEPT_PATCH}."),
        }
    }
}

/// Selects the dialect from a `Content-Type` header value.
///
/// The media type is compared case-insensitively, with parameters and
/// surrounding whitespace ignored. Any other value, including
/// `application/json` or no header at all, is `UnsupportedMediaType`.
pub fn dialect_for_content_type(content_type: Option<&str>) -> Result<PatchDialect, PatchError> {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    [PatchDialect::V2_0, PatchDialect::V2_1]
        .into_iter()
        .find(|d| essence.eq_ignore_ascii_case(d.media_type()))
        .ok_or_else(PatchError::unsupported_media_type)
}

/// Parses raw request bytes after checking the `Content-Type`.
///
/// The media type is checked before the body, so an unsupported type is
/// reported as 415 even when the body is also malformed, as Glance does.
pub fn parse_patch_bytes(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<PatchDocument, PatchError> {
    let dialect = dialect_for_content_type(content_type)?;
    if body.is_empty() {
        // Glance tells a missing body apart from a malformed one.
        return Err(PatchError::bad_request("Body expected in request."));
    }
    let malformed = || PatchError::bad_request("Malformed JSON in request body.");
    // The reference decodes strictly as UTF-8 before parsing. Checking here
    // makes sure invalid bytes outside string literals are rejected for the
    // same reason.
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    // serde_json's recursion limit turns pathologically deep nesting into an
    // error rather than a stack overflow.
    let value: Value = serde_json::from_str(text).map_err(|_| malformed())?;
    parse_patch(dialect, &value)
}

/// Parses an already-decoded JSON body in the given dialect.
pub fn parse_patch(dialect: PatchDialect, body: &Value) -> Result<PatchDocument, PatchError> {
    let Value::Array(items) = body else {
        return Err(PatchError::bad_request(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    if items.len() > MAX_OPERATIONS {
        return Err(PatchError::bad_request(format!(
            "Too many operations in the patch (limit {MAX_OPERATIONS})."
        )));
    }
    let ops = items
        .iter()
        .map(|item| parse_operation(dialect, item))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PatchDocument { dialect, ops })
}

/// Follows Glance's check order for one operation: op, then path, then value.
/// With several problems, the client sees the same first error as with Glance.
fn parse_operation(dialect: PatchDialect, item: &Value) -> Result<PatchOp, PatchError> {
    let Value::Object(change) = item else {
        return Err(PatchError::bad_request("Operations must be JSON objects."));
    };
    let (kind, raw_pointer) = match dialect {
        PatchDialect::V2_1 => read_op_v2_1(change)?,
        PatchDialect::V2_0 => read_op_v2_0(change)?,
    };
    let Value::String(pointer) = raw_pointer else {
        return Err(PatchError::bad_request(format!(
            "Pointer `{}` must be a JSON string.",
            describe(raw_pointer)
        )));
    };
    let (path, index) = resolve_pointer(kind, pointer)?;
    let value = match kind {
        // A stray `value` on remove is ignored, as in Glance.
        PatchOpKind::Remove => None,
        PatchOpKind::Add | PatchOpKind::Replace => match change.get("value") {
            // An explicit `null` counts as present; whether null is allowed is a domain question.
            Some(v) => Some(v.clone()),
            None => {
                return Err(PatchError::bad_request(
                    "Unable to find 'value' in JSON Schema change",
                ))
            }
        },
    };
    Ok(PatchOp {
        kind,
        path,
        index,
        value,
    })
}

fn read_op_v2_1(change: &Map<String, Value>) -> Result<(PatchOpKind, &Value), PatchError> {
    // Glance uses `dict.get`, so an explicit null op is treated as missing.
    let op = match change.get("op") {
        None | Some(Value::Null) => {
            return Err(PatchError::bad_request(
                "Unable to find 'op' in JSON Schema change",
            ))
        }
        Some(op) => op,
    };
    let kind = op
        .as_str()
        .and_then(PatchOpKind::from_name)
        .ok_or_else(|| {
            PatchError::bad_request(format!(
                "Invalid operation: `{}`. It must be one of the following: add, remove, replace.",
                describe(op)
            ))
        })?;
    let path = change
        .get("path")
        .ok_or_else(|| PatchError::bad_request("Unable to find 'path' in JSON Schema change"))?;
    Ok((kind, path))
}

fn read_op_v2_0(change: &Map<String, Value>) -> Result<(PatchOpKind, &Value), PatchError> {
    let mut found = None;
    for kind in PatchOpKind::ALL {
        if let Some(pointer) = change.get(kind.as_str()) {
            if found.is_some() {
                return Err(v2_0_op_count_error());
            }
            found = Some((kind, pointer));
        }
    }
    found.ok_or_else(v2_0_op_count_error)
}

fn v2_0_op_count_error() -> PatchError {
    PatchError::bad_request(
        "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".",
    )
}

/// Validates and decodes a restricted JSON pointer into (root, position).
///
/// At most two segments are decoded. Any further segments are only counted,
/// so a pointer with many segments costs no per-segment allocation.
fn resolve_pointer(
    kind: PatchOpKind,
    pointer: &str,
) -> Result<(String, Option<String>), PatchError> {
    validate_pointer_syntax(pointer)?;
    let Some(tokens) = pointer.strip_prefix('/') else {
        // validate_pointer_syntax rejects this already. Handling it again avoids indexing.
        return Err(not_rooted(pointer));
    };
    let mut segments = tokens.split('/');
    let root = decode_segment(segments.next().unwrap_or_default());
    if root.is_empty() {
        return Err(empty_token(pointer));
    }
    let expected_depth = kind.pointer_depth(&root);
    let second = segments.next();
    let depth = 1 + usize::from(second.is_some()) + segments.count();
    if depth != expected_depth {
        return Err(PatchError::bad_request(format!(
            "Invalid JSON pointer for this resource: '{}'",
            echo(pointer)
        )));
    }
    check_key_length(&root)?;
    let index = match second {
        None => None,
        Some(raw) => {
            let index = decode_segment(raw);
            if index.is_empty() {
                return Err(empty_token(pointer));
            }
            check_key_length(&index)?;
            Some(index)
        }
    };
    Ok((root, index))
}

/// Syntax checks, in Glance's order, so the first error reported matches.
fn validate_pointer_syntax(pointer: &str) -> Result<(), PatchError> {
    if !pointer.starts_with('/') {
        return Err(not_rooted(pointer));
    }
    // Glance skips the first character here, which lets `//x` through as `x`.
    // We scan the whole pointer and reject that case too.
    if has_adjacent_slashes(pointer) {
        return Err(PatchError::bad_request(format!(
            "Pointer `{}` contains adjacent \"/\".",
            echo(pointer)
        )));
    }
    // A lone "/" is not a trailing slash. It is reported later as an empty token.
    if pointer.len() > 1 && pointer.ends_with('/') {
        return Err(PatchError::bad_request(format!(
            "Pointer `{}` end with \"/\".",
            echo(pointer)
        )));
    }
    // Glance only checks that some valid escape exists somewhere, so `/a~~1`
    // passes there. We require every `~` to start a valid escape, as RFC 6901 does.
    if has_bad_escape(pointer) {
        return Err(PatchError::bad_request(format!(
            "Pointer `{}` contains \"~\" not part of a recognized escape sequence.",
            echo(pointer)
        )));
    }
    Ok(())
}

/// Mirrors the regex `/\s*?/`: two slashes with only whitespace between them.
fn has_adjacent_slashes(pointer: &str) -> bool {
    let mut after_slash = false;
    for c in pointer.chars() {
        if c == '/' {
            if after_slash {
                return true;
            }
            after_slash = true;
        } else if !is_py_space(c) {
            after_slash = false;
        }
    }
    false
}

fn has_bad_escape(pointer: &str) -> bool {
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        // Consume the escaped digit, so `~01` is `~0` followed by a literal `1`.
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return true;
        }
    }
    false
}

/// Decodes `~1` before `~0`, as Glance does, so `~01` becomes `~1` and not `/`.
/// The result is then stripped, because Glance strips each token.
fn decode_segment(raw: &str) -> String {
    let decoded = raw.replace("~1", "/").replace("~0", "~");
    decoded.trim_matches(is_py_space).to_owned()
}

/// Python's `str.strip()` and `\s` also treat the ASCII separators U+001C to
/// U+001F as whitespace, but Rust's `char::is_whitespace` does not. Matching
/// Python keeps pointer handling the same as the reference.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn check_key_length(key: &str) -> Result<(), PatchError> {
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(PatchError::bad_request(format!(
            "Property names are limited to {MAX_KEY_CHARS} characters."
        )));
    }
    Ok(())
}

fn not_rooted(pointer: &str) -> PatchError {
    PatchError::bad_request(format!(
        "Pointer `{}` does not start with \"/\".",
        echo(pointer)
    ))
}

fn empty_token(pointer: &str) -> PatchError {
    PatchError::bad_request(format!(
        "Pointer `{}` does not contain a valid token.",
        echo(pointer)
    ))
}

/// Shortens client text for use in a message, cutting on a char boundary.
fn echo(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        // `cut` is a char boundary, so `get` always succeeds. It is used
        // only so that no slicing path could panic.
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// Renders a non-string member for a message. Containers are shown only by
/// their shape: serializing them would recurse and could copy arbitrary
/// amounts of data.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => echo(s),
        Value::Array(_) => "[…]".to_owned(),
        Value::Object(_) => "{…}".to_owned(),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a test failure, which is what we want here.
mod tests;
