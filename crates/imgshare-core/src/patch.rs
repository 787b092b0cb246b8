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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const V20: &str = "application/openstack-images-v2.0-json-patch";
    const V21: &str = "application/openstack-images-v2.1-json-patch";

    fn ok(dialect: PatchDialect, body: Value) -> Vec<PatchOp> {
        parse_patch(dialect, &body).unwrap().ops
    }

    fn err(dialect: PatchDialect, body: Value) -> PatchError {
        let e = parse_patch(dialect, &body).unwrap_err();
        assert_eq!(e.kind, PatchErrorKind::BadRequest, "{e}");
        e
    }

    fn one(dialect: PatchDialect, op: Value) -> PatchOp {
        let mut ops = ok(dialect, json!([op]));
        assert_eq!(ops.len(), 1);
        ops.remove(0)
    }

    fn op21(op: &str, path: &str) -> Value {
        json!({"op": op, "path": path, "value": "v"})
    }

    fn path_of(path: &str) -> String {
        one(PatchDialect::V2_1, op21("replace", path)).path
    }

    fn path_err(path: &str) -> String {
        err(PatchDialect::V2_1, json!([op21("replace", path)])).message
    }

    // --- media types ---

    #[test]
    fn media_types_exact() {
        assert_eq!(
            dialect_for_content_type(Some(V20)).unwrap(),
            PatchDialect::V2_0
        );
        assert_eq!(
            dialect_for_content_type(Some(V21)).unwrap(),
            PatchDialect::V2_1
        );
        assert_eq!(PatchDialect::V2_0.media_type(), V20);
        assert_eq!(PatchDialect::V2_1.media_type(), V21);
        assert_eq!(ACCEPT_PATCH, format!("{V20}, {V21}"));
    }

    #[test]
    fn media_types_case_params_whitespace() {
        for ct in [
            "APPLICATION/OpenStack-Images-V2.1-JSON-Patch",
            "application/openstack-images-v2.1-json-patch; charset=utf-8",
            "  application/openstack-images-v2.1-json-patch  ;charset=UTF-8;x=y",
            "\tapplication/openstack-images-v2.1-json-patch\t",
            "application/openstack-images-v2.1-json-patch;",
        ] {
            assert_eq!(
                dialect_for_content_type(Some(ct)).unwrap(),
                PatchDialect::V2_1,
                "{ct}"
            );
        }
        assert_eq!(
            dialect_for_content_type(Some("Application/OpenStack-Images-v2.0-JSON-PATCH; q=1"))
                .unwrap(),
            PatchDialect::V2_0
        );
    }

    #[test]
    fn media_types_rejected() {
        for ct in [
            None,
            Some(""),
            Some("   "),
            Some(";"),
            Some("application/json"),
            Some("application/json-patch+json"),
            Some("application/openstack-images-v2.2-json-patch"),
            Some("application/openstack-images-v2.1-json-patch-extra"),
            Some("application/openstack-images-v2.1-json-patchx; a=b"),
            Some("text/plain, application/openstack-images-v2.1-json-patch"),
            Some("application/openstack-images-v2.1 -json-patch"),
        ] {
            let e = dialect_for_content_type(ct).unwrap_err();
            assert_eq!(e.kind, PatchErrorKind::UnsupportedMediaType, "{ct:?}");
            assert_eq!(e.kind.status_code(), 415);
            assert!(e.message.starts_with("Unsupported Content-Type"));
            assert_eq!(e.to_string(), e.message);
        }
    }

    #[test]
    fn content_type_checked_before_body() {
        let e = parse_patch_bytes(Some("application/json"), b"not json").unwrap_err();
        assert_eq!(e.kind, PatchErrorKind::UnsupportedMediaType);
        let e = parse_patch_bytes(None, b"[]").unwrap_err();
        assert_eq!(e.kind, PatchErrorKind::UnsupportedMediaType);
    }

    // --- v2.1 ---

    #[test]
    fn v2_1_add_remove_replace() {
        let ops = ok(
            PatchDialect::V2_1,
            json!([
                {"op": "add", "path": "/name", "value": "n"},
                {"op": "remove", "path": "/foo"},
                {"op": "replace", "path": "/tags", "value": ["a", "b"]},
                {"op": "add", "path": "/x", "value": null},
            ]),
        );
        assert_eq!(
            ops,
            vec![
                PatchOp {
                    kind: PatchOpKind::Add,
                    path: "name".into(),
                    index: None,
                    value: Some(json!("n")),
                },
                PatchOp {
                    kind: PatchOpKind::Remove,
                    path: "foo".into(),
                    index: None,
                    value: None,
                },
                PatchOp {
                    kind: PatchOpKind::Replace,
                    path: "tags".into(),
                    index: None,
                    value: Some(json!(["a", "b"])),
                },
                PatchOp {
                    kind: PatchOpKind::Add,
                    path: "x".into(),
                    index: None,
                    value: Some(Value::Null),
                },
            ]
        );
    }

    #[test]
    fn v2_1_remove_ignores_value_and_extra_members() {
        let op = one(
            PatchDialect::V2_1,
            json!({"op": "remove", "path": "/foo", "value": 1, "extra": true}),
        );
        assert_eq!(op.value, None);
        assert_eq!(op.kind, PatchOpKind::Remove);
    }

    #[test]
    fn v2_1_missing_op() {
        for change in [
            json!({"path": "/x", "value": 1}),
            json!({"op": null, "path": "/x"}),
        ] {
            let e = err(PatchDialect::V2_1, json!([change]));
            assert_eq!(e.message, "Unable to find 'op' in JSON Schema change");
        }
    }

    #[test]
    fn v2_1_invalid_op() {
        for name in ["move", "copy", "test", "ADD", "", " add"] {
            let e = err(PatchDialect::V2_1, json!([op21(name, "/x")]));
            assert!(
                e.message
                    .starts_with(&format!("Invalid operation: `{name}`")),
                "{}",
                e.message
            );
        }
        for (op, shown) in [
            (json!(5), "`5`"),
            (json!(true), "`true`"),
            (json!(["add"]), "`[…]`"),
            (json!({"a": 1}), "`{…}`"),
        ] {
            let e = err(PatchDialect::V2_1, json!([{"op": op, "path": "/x"}]));
            assert!(e.message.contains(shown), "{}", e.message);
        }
    }

    #[test]
    fn v2_1_missing_path() {
        let e = err(PatchDialect::V2_1, json!([{"op": "add", "value": 1}]));
        assert_eq!(e.message, "Unable to find 'path' in JSON Schema change");
    }

    #[test]
    fn v2_1_non_string_path() {
        for path in [json!(null), json!(1), json!(["/x"]), json!({"p": "/x"})] {
            let e = err(
                PatchDialect::V2_1,
                json!([{"op": "add", "path": path, "value": 1}]),
            );
            assert!(e.message.contains("must be a JSON string"), "{}", e.message);
        }
    }

    #[test]
    fn v2_1_missing_value() {
        for op in ["add", "replace"] {
            let e = err(PatchDialect::V2_1, json!([{"op": op, "path": "/x"}]));
            assert_eq!(e.message, "Unable to find 'value' in JSON Schema change");
        }
    }

    #[test]
    fn pointer_checked_before_value() {
        let e = err(PatchDialect::V2_1, json!([{"op": "add", "path": "x"}]));
        assert!(e.message.contains("does not start with"));
    }

    // --- v2.0 ---

    #[test]
    fn v2_0_add_remove_replace() {
        let ops = ok(
            PatchDialect::V2_0,
            json!([
                {"add": "/name", "value": "n"},
                {"remove": "/foo"},
                {"replace": "/tags", "value": []},
                {"remove": "/bar", "value": 3},
            ]),
        );
        let kinds: Vec<_> = ops.iter().map(|o| (o.kind, o.path.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (PatchOpKind::Add, "name"),
                (PatchOpKind::Remove, "foo"),
                (PatchOpKind::Replace, "tags"),
                (PatchOpKind::Remove, "bar"),
            ]
        );
        assert_eq!(ops[0].value, Some(json!("n")));
        assert_eq!(ops[1].value, None);
        assert_eq!(ops[2].value, Some(json!([])));
        assert_eq!(ops[3].value, None);
    }

    #[test]
    fn v2_0_exactly_one_op_member() {
        let msg = "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".";
        for change in [
            json!({}),
            json!({"value": 1}),
            json!({"op": "add", "path": "/x", "value": 1}),
            json!({"move": "/x"}),
            json!({"add": "/x", "remove": "/y", "value": 1}),
            json!({"add": "/x", "replace": "/x", "value": 1}),
            json!({"add": "/x", "remove": "/x", "replace": "/x", "value": 1}),
        ] {
            assert_eq!(
                err(PatchDialect::V2_0, json!([change])).message,
                msg,
                "{change}"
            );
        }
    }

    #[test]
    fn v2_0_missing_value_and_bad_pointer() {
        for op in ["add", "replace"] {
            let e = err(PatchDialect::V2_0, json!([{ op: "/x" }]));
            assert_eq!(e.message, "Unable to find 'value' in JSON Schema change");
        }
        let e = err(PatchDialect::V2_0, json!([{"add": 7, "value": 1}]));
        assert!(e.message.contains("must be a JSON string"));
        let e = err(PatchDialect::V2_0, json!([{"remove": "/tags/0"}]));
        assert!(e
            .message
            .starts_with("Invalid JSON pointer for this resource"));
    }

    #[test]
    fn v2_1_form_in_v2_0_dialect_and_vice_versa() {
        err(PatchDialect::V2_0, json!([op21("add", "/x")]));
        let e = err(PatchDialect::V2_1, json!([{"add": "/x", "value": 1}]));
        assert_eq!(e.message, "Unable to find 'op' in JSON Schema change");
    }

    // --- pointer decoding and syntax ---

    #[test]
    fn pointer_decoding() {
        assert_eq!(path_of("/tricky~01"), "tricky~1");
        assert_eq!(path_of("/a~1b"), "a/b");
        assert_eq!(path_of("/a~0b"), "a~b");
        assert_eq!(path_of("/~0~1~00~11"), "~/~0/1");
        assert_eq!(
            path_of("/com.rackspace__1__options"),
            "com.rackspace__1__options"
        );
        assert_eq!(path_of("/ünïcödé"), "ünïcödé");
    }

    #[test]
    fn pointer_whitespace_stripped() {
        assert_eq!(path_of("/  name  "), "name");
        assert_eq!(path_of("/\tname\n"), "name");
        assert_eq!(path_of("/\u{a0}name\u{3000}"), "name");
        assert_eq!(path_of("/\u{1f}name\u{1c}"), "name");
        assert_eq!(path_of("/a b"), "a b");
        // Stripping happens after decoding, so an escaped slash is kept.
        assert_eq!(path_of("/ ~1 "), "/");
    }

    #[test]
    fn pointer_syntax_errors() {
        assert_eq!(
            path_err("name"),
            "Pointer `name` does not start with \"/\"."
        );
        assert_eq!(path_err(""), "Pointer `` does not start with \"/\".");
        assert_eq!(
            path_err(" /name"),
            "Pointer ` /name` does not start with \"/\"."
        );
        for p in ["//x", "/a//b", "/a/ /b", "/a/\t\n/b", "/ /", "///"] {
            assert_eq!(
                path_err(p),
                format!("Pointer `{p}` contains adjacent \"/\"."),
                "{p}"
            );
        }
        assert_eq!(path_err("/name/"), "Pointer `/name/` end with \"/\".");
        for p in ["/a~", "/a~2", "/~", "/a~~1", "/~a", "/x~01~"] {
            assert_eq!(
                path_err(p),
                format!("Pointer `{p}` contains \"~\" not part of a recognized escape sequence."),
                "{p}"
            );
        }
    }

    #[test]
    fn pointer_empty_token() {
        for p in ["/", "/   ", "/\t"] {
            let m = path_err(p);
            assert!(m.contains("does not contain a valid token"), "{p}: {m}");
        }
        let e = err(
            PatchDialect::V2_1,
            json!([{"op": "add", "path": "/locations/ ", "value": {}}]),
        );
        assert!(e.message.contains("does not contain a valid token"));
    }

    #[test]
    fn pointer_depth_rule() {
        for p in ["/tags/-", "/tags/0", "/a/b", "/a/b/c", "/name/x "] {
            for op in ["add", "remove", "replace"] {
                let e = err(PatchDialect::V2_1, json!([op21(op, p)]));
                assert_eq!(
                    e.message,
                    format!("Invalid JSON pointer for this resource: '{p}'")
                );
            }
        }
    }

    #[test]
    fn locations_depth_exceptions() {
        let add = one(PatchDialect::V2_1, op21("add", "/locations/-"));
        assert_eq!(
            (add.path.as_str(), add.index.as_deref()),
            ("locations", Some("-"))
        );
        let rem = one(
            PatchDialect::V2_1,
            json!({"op": "remove", "path": "/locations/1"}),
        );
        assert_eq!(
            (rem.path.as_str(), rem.index.as_deref(), rem.value),
            ("locations", Some("1"), None)
        );
        let spaced = one(
            PatchDialect::V2_0,
            json!({"add": "/ locations / 0 ", "value": {}}),
        );
        assert_eq!(
            (spaced.path.as_str(), spaced.index.as_deref()),
            ("locations", Some("0"))
        );
        let rep = one(PatchDialect::V2_1, op21("replace", "/locations"));
        assert_eq!((rep.path.as_str(), rep.index), ("locations", None));

        for (op, p) in [
            ("add", "/locations"),
            ("remove", "/locations"),
            ("replace", "/locations/0"),
            ("replace", "/locations/-"),
            ("add", "/locations/0/url"),
            ("remove", "/locations/-/x"),
        ] {
            let e = err(PatchDialect::V2_1, json!([op21(op, p)]));
            assert!(
                e.message
                    .starts_with("Invalid JSON pointer for this resource"),
                "{op} {p}: {}",
                e.message
            );
        }
    }

    #[test]
    fn key_length_limit() {
        let max = "k".repeat(MAX_KEY_CHARS);
        assert_eq!(path_of(&format!("/{max}")), max);
        // Counted in characters, not bytes.
        let wide = "é".repeat(MAX_KEY_CHARS);
        assert_eq!(path_of(&format!("/{wide}")), wide);
        // Escapes count once decoded.
        let escaped = "~1".repeat(MAX_KEY_CHARS);
        assert_eq!(path_of(&format!("/{escaped}")).len(), MAX_KEY_CHARS);
        // Surrounding whitespace does not count.
        assert_eq!(path_of(&format!("/  {max}  ")), max);

        let msg = "Property names are limited to 255 characters.";
        assert_eq!(path_err(&format!("/{max}k")), msg);
        let long_index = format!("/locations/{}", "9".repeat(256));
        let e = err(PatchDialect::V2_1, json!([op21("add", &long_index)]));
        assert_eq!(e.message, msg);
    }

    #[test]
    fn long_pointer_is_not_echoed_in_full() {
        let p = format!("x{}", "a".repeat(10_000));
        let m = path_err(&p);
        assert!(m.len() < 400, "{}", m.len());
        assert!(m.contains('…'));
    }

    // --- body shape ---

    #[test]
    fn empty_array_is_valid() {
        for dialect in [PatchDialect::V2_0, PatchDialect::V2_1] {
            let doc = parse_patch(dialect, &json!([])).unwrap();
            assert_eq!(doc.dialect, dialect);
            assert!(doc.ops.is_empty());
        }
        let doc = parse_patch_bytes(Some(V21), b" [ ] ").unwrap();
        assert!(doc.ops.is_empty());
    }

    #[test]
    fn non_array_body() {
        for body in [
            json!({}),
            json!({"op": "add", "path": "/x", "value": 1}),
            json!("[]"),
            json!(1),
            json!(null),
            json!(true),
        ] {
            let e = err(PatchDialect::V2_1, body);
            assert_eq!(
                e.message,
                "Request body must be a JSON array of operation objects."
            );
            assert_eq!(e.kind.status_code(), 400);
        }
    }

    #[test]
    fn non_object_element() {
        for (dialect, valid) in [
            (PatchDialect::V2_0, json!({"add": "/x", "value": 1})),
            (PatchDialect::V2_1, op21("add", "/x")),
        ] {
            for el in [json!(1), json!("add"), json!([]), json!(null)] {
                let e = err(dialect, json!([valid.clone(), el]));
                assert_eq!(e.message, "Operations must be JSON objects.");
            }
        }
    }

    #[test]
    fn first_bad_operation_fails_whole_document() {
        let e = err(
            PatchDialect::V2_1,
            json!([op21("add", "/ok"), op21("move", "/x"), op21("add", "bad")]),
        );
        assert!(e.message.starts_with("Invalid operation"));
    }

    #[test]
    fn operation_count_limit() {
        let at_limit = Value::Array(vec![op21("add", "/x"); MAX_OPERATIONS]);
        assert_eq!(ok(PatchDialect::V2_1, at_limit).len(), MAX_OPERATIONS);
        let over = Value::Array(vec![op21("add", "/x"); MAX_OPERATIONS + 1]);
        assert_eq!(
            err(PatchDialect::V2_1, over).message,
            "Too many operations in the patch (limit 1000)."
        );
    }

    // --- bytes ---

    #[test]
    fn bytes_happy_path() {
        let doc = parse_patch_bytes(
            Some(V20),
            br#"[{"replace": "/name", "value": "x"}, {"remove": "/tricky~01"}]"#,
        )
        .unwrap();
        assert_eq!(doc.dialect, PatchDialect::V2_0);
        assert_eq!(doc.ops[1].path, "tricky~1");
        let doc = parse_patch_bytes(
            Some(V21),
            r#"[{"op":"add","path":"/naïve","value":"é"}]"#.as_bytes(),
        )
        .unwrap();
        assert_eq!(doc.ops[0].path, "naïve");
    }

    #[test]
    fn bytes_malformed() {
        for body in [
            &b"[{"[..],
            b"not json",
            b"[]]",
            b"\xef\xbb\xbf[]",
            b"[\"\xff\"]",
            b"\xff\xfe[\x00]\x00",
            b"[NaN]",
            b" ",
        ] {
            let e = parse_patch_bytes(Some(V21), body).unwrap_err();
            assert_eq!(e.kind, PatchErrorKind::BadRequest);
            assert_eq!(e.message, "Malformed JSON in request body.", "{body:?}");
        }
    }

    #[test]
    fn bytes_empty_and_non_array() {
        let e = parse_patch_bytes(Some(V21), b"").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (PatchErrorKind::BadRequest, "Body expected in request.")
        );
        let e = parse_patch_bytes(Some(V21), b"{\"op\":\"add\"}").unwrap_err();
        assert_eq!(
            e.message,
            "Request body must be a JSON array of operation objects."
        );
    }

    #[test]
    fn bytes_deep_nesting_is_rejected_not_crashing() {
        let mut body = Vec::new();
        body.extend_from_slice(br#"[{"op":"add","path":"/x","value":"#);
        body.extend(std::iter::repeat_n(b'[', 100_000));
        body.extend(std::iter::repeat_n(b']', 100_000));
        body.extend_from_slice(b"}]");
        let e = parse_patch_bytes(Some(V21), &body).unwrap_err();
        assert_eq!(e.message, "Malformed JSON in request body.");
    }

    // --- property tests ---

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            // Values close to real operations reach the deeper code paths.
            prop_oneof![
                Just("add"),
                Just("remove"),
                Just("replace"),
                Just("move"),
                Just("locations"),
                Just("/locations/-"),
                Just("/tags/-"),
            ]
            .prop_map(Value::from),
            "[/~01 \t\u{1f}a-z-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            let key = prop_oneof![
                Just("op".to_owned()),
                Just("path".to_owned()),
                Just("value".to_owned()),
                Just("add".to_owned()),
                Just("remove".to_owned()),
                Just("replace".to_owned()),
                any::<String>(),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn check_invariants(doc: &PatchDocument) {
        assert!(doc.ops.len() <= MAX_OPERATIONS);
        for op in &doc.ops {
            assert!(!op.path.is_empty());
            assert!(op.path.chars().count() <= MAX_KEY_CHARS);
            assert_eq!(op.value.is_some(), op.kind != PatchOpKind::Remove);
            let wants_index = op.path == LOCATIONS && op.kind != PatchOpKind::Replace;
            assert_eq!(op.index.is_some(), wants_index);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn prop_arbitrary_json_never_panics(v in arb_json()) {
            for dialect in [PatchDialect::V2_0, PatchDialect::V2_1] {
                match parse_patch(dialect, &v) {
                    Ok(doc) => check_invariants(&doc),
                    Err(e) => prop_assert_eq!(e.kind, PatchErrorKind::BadRequest),
                }
                // The same value wrapped as a one-element document.
                let wrapped = Value::Array(vec![v.clone()]);
                if let Ok(doc) = parse_patch(dialect, &wrapped) {
                    check_invariants(&doc);
                }
            }
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..256),
            ct in prop_oneof![Just(Some(V20.to_owned())), Just(Some(V21.to_owned())), Just(None), any::<Option<String>>()],
        ) {
            if let Ok(doc) = parse_patch_bytes(ct.as_deref(), &body) {
                check_invariants(&doc);
            }
        }

        #[test]
        fn prop_arbitrary_json_text_never_panics(v in arb_json()) {
            let text = v.to_string();
            for ct in [V20, V21] {
                if let Ok(doc) = parse_patch_bytes(Some(ct), text.as_bytes()) {
                    check_invariants(&doc);
                }
            }
        }

        #[test]
        fn prop_arbitrary_pointer_never_panics(p in any::<String>(), op in "add|remove|replace") {
            let body = json!([{"op": op, "path": p, "value": 0}]);
            if let Ok(doc) = parse_patch(PatchDialect::V2_1, &body) {
                check_invariants(&doc);
            }
        }

        #[test]
        fn prop_escaped_key_round_trips(key in "[^\\s]([^\u{0}]{0,40}[^\\s])?") {
            prop_assume!(!key.starts_with(is_py_space) && !key.ends_with(is_py_space));
            prop_assume!(key != LOCATIONS);
            let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            let op = one(PatchDialect::V2_1, json!({"op": "remove", "path": pointer}));
            prop_assert_eq!(op.path, key);
        }
    }
}
