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
