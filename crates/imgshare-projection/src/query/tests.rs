use super::image::*;
use super::*;
use super::{link::*, task::*};
use chrono::TimeZone;
use chrono::{DateTime, Utc};
use proptest::prelude::*;

const RS: QueryDialect = QueryDialect::RACKSPACE;
const GL: QueryDialect = QueryDialect::GLANCE;
const TASK_TYPES: &[&str] = &["import", "export"];
const UUID: &str = "1bea47ed-f6a9-463b-b423-14b9cca9ad27";

fn ok(raw: &str) -> ImageListQuery {
    match parse_image_list_query(raw, &GL) {
        Ok(q) => q,
        Err(e) => panic!("{raw}: {e}"),
    }
}

fn err(raw: &str) -> String {
    match parse_image_list_query(raw, &GL) {
        Ok(q) => panic!("{raw} parsed: {q:?}"),
        Err(e) => e.message,
    }
}

fn task_ok(raw: &str) -> TaskListQuery {
    match parse_task_list_query(raw, &RS, TASK_TYPES) {
        Ok(q) => q,
        Err(e) => panic!("{raw}: {e}"),
    }
}

fn task_err(raw: &str) -> String {
    match parse_task_list_query(raw, &RS, TASK_TYPES) {
        Ok(q) => panic!("{raw} parsed: {q:?}"),
        Err(e) => e.message,
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .unwrap_or_default()
}

use SortDir::{Asc, Desc};
use SortKey::*;

#[test]
fn empty_query_gives_defaults() {
    let q = ok("");
    assert_eq!(q.visibility, None);
    assert_eq!(q.member_status, MemberStatusFilter::Accepted);
    assert_eq!(q.limit, 25);
    assert_eq!(q.marker, None);
    assert_eq!(q.os_hidden, None);
    assert_eq!(q.sort, vec![(CreatedAt, Desc), (Id, Desc)]);
    assert!(q.tags.is_empty() && q.properties.is_empty());
    assert!(q.created_at.is_empty() && q.updated_at.is_empty());
}

#[test]
fn visibility_follows_the_dialect() {
    for v in ["public", "private", "shared", "community", "all"] {
        assert_eq!(
            ok(&format!("visibility={v}")).visibility.as_deref(),
            Some(v)
        );
    }
    for v in ["public", "private", "shared"] {
        assert!(parse_image_list_query(&format!("visibility={v}"), &RS).is_ok());
    }
    for v in ["community", "all"] {
        let e = parse_image_list_query(&format!("visibility={v}"), &RS);
        assert_eq!(
            e.map_err(|e| e.message),
            Err(format!("Invalid visibility value: {v}"))
        );
    }
    assert_eq!(err("visibility=bogus"), "Invalid visibility value: bogus");
    assert_eq!(err("visibility="), "Invalid visibility value: ");
    assert_eq!(err("visibility=Public"), "Invalid visibility value: Public");
}

#[test]
fn member_status_values() {
    assert_eq!(
        ok("member_status=pending").member_status,
        MemberStatusFilter::Pending
    );
    assert_eq!(
        ok("member_status=accepted").member_status,
        MemberStatusFilter::Accepted
    );
    assert_eq!(
        ok("member_status=rejected").member_status,
        MemberStatusFilter::Rejected
    );
    assert_eq!(
        ok("member_status=all").member_status,
        MemberStatusFilter::All
    );
    assert_eq!(err("member_status=bogus"), "Invalid status: bogus");
    assert_eq!(err("member_status="), "Invalid status: ");
}

#[test]
fn limit_rules() {
    assert_eq!(ok("limit=0").limit, 0);
    assert_eq!(ok("limit=7").limit, 7);
    assert_eq!(ok("limit=+7").limit, 7);
    assert_eq!(ok("limit=%207%20").limit, 7);
    assert_eq!(ok("limit=-0").limit, 0);
    assert_eq!(ok("limit=1000").limit, 1000);
    assert_eq!(ok("limit=1001").limit, 1000);
    assert_eq!(ok("limit=99999999999999999999999999").limit, 1000);
    for bad in ["abc", "1.5", "1.0", "", "1e3", "0x10", "--1"] {
        assert_eq!(
            err(&format!("limit={bad}")),
            "limit param must be an integer",
            "{bad}"
        );
    }
    assert_eq!(err("limit=-1"), "limit param must be positive");
    assert_eq!(
        err("limit=-99999999999999999999999"),
        "limit param must be positive"
    );
    let small = QueryDialect {
        limit_default: 10,
        limit_max: 5,
        ..QueryDialect::RACKSPACE
    };
    assert_eq!(parse_image_list_query("", &small).map(|q| q.limit), Ok(5));
}

#[test]
fn marker_is_kept_verbatim() {
    assert_eq!(
        ok("marker=not-a-uuid").marker.as_deref(),
        Some("not-a-uuid")
    );
    assert_eq!(ok(&format!("marker={UUID}")).marker.as_deref(), Some(UUID));
}

#[test]
fn value_filters_eq_and_in() {
    assert_eq!(
        ok("name=cirros").name,
        Some(ValueFilter::Eq("cirros".into()))
    );
    assert_eq!(
        ok("name=eq:foo:bar").name,
        Some(ValueFilter::Eq("foo:bar".into()))
    );
    assert_eq!(ok("name=").name, Some(ValueFilter::Eq(String::new())));
    assert_eq!(
        ok("status=in:active,queued").status,
        Some(ValueFilter::In(vec!["active".into(), "queued".into()]))
    );
    assert_eq!(
        ok("id=in:a,b").id,
        Some(ValueFilter::In(vec!["a".into(), "b".into()]))
    );
    assert_eq!(
        ok("container_format=bare").container_format,
        Some(ValueFilter::Eq("bare".into()))
    );
    assert_eq!(
        ok("disk_format=in:vhd").disk_format,
        Some(ValueFilter::In(vec!["vhd".into()]))
    );
    // A bare timestamp is one value, not an operator and a value.
    assert_eq!(
        ok("name=2014-01-01T00:00:00Z").name,
        Some(ValueFilter::Eq("2014-01-01T00:00:00Z".into()))
    );
}

#[test]
fn value_filter_unknown_operator() {
    assert_eq!(
        err("name=foo:bar"),
        "Unable to filter by unknown operator 'foo'."
    );
    assert_eq!(
        err("status=gt:active"),
        "Unable to filter by unknown operator 'gt'."
    );
    assert_eq!(err("id=:x"), "Unable to filter by unknown operator ''.");
    assert_eq!(
        err("disk_format=IN:vhd"),
        "Unable to filter by unknown operator 'IN'."
    );
    assert_eq!(
        err("container_format=x:y"),
        "Unable to filter by unknown operator 'x'."
    );
}

#[test]
fn quoted_in_values() {
    let split = |s: &str| split_quoted_list(s).map_err(|e| e.message);
    assert_eq!(
        split(r#"a,b,"c,d""#),
        Ok(vec!["a".into(), "b".into(), "c,d".into()])
    );
    assert_eq!(split(r#""c,d",e"#), Ok(vec!["c,d".into(), "e".into()]));
    assert_eq!(split(r#""say \"hi\"""#), Ok(vec![r#"say "hi""#.into()]));
    assert_eq!(
        split("a,,b"),
        Ok(vec!["a".into(), String::new(), "b".into()])
    );
    assert_eq!(split("a,"), Ok(vec!["a".into()]));
    assert_eq!(split(",a"), Ok(vec![String::new(), "a".into()]));
    assert_eq!(split(""), Ok(vec![]));
    assert_eq!(split(r#""""#), Ok(vec![String::new()]));
    assert!(split(r#""abc"#).is_err_and(|m| m.ends_with("The quote is not closed.")));
    assert!(split(r#""a\""#).is_err_and(|m| m.ends_with("The quote is not closed.")));
    assert!(split(r#"a"b""#).is_err_and(|m| m.contains("no comma before")));
    assert!(split(r#""a"b"#).is_err_and(|m| m.contains("no comma after")));
    // Through the whole parser, with the query encoding of `"` and `,`.
    assert_eq!(
        ok("name=in:a,b,%22c,d%22").name,
        Some(ValueFilter::In(vec!["a".into(), "b".into(), "c,d".into()]))
    );
    assert!(err("name=in:%22abc").contains("The quote is not closed."));
}

#[test]
fn size_range() {
    let q = ok("size_min=10&size_max=%2020");
    assert_eq!((q.size_min, q.size_max), (Some(10), Some(20)));
    assert_eq!(ok("size_min=0").size_min, Some(0));
    assert_eq!(
        ok("size_max=999999999999999999999999").size_max,
        Some(u64::MAX)
    );
    for bad in ["size_min=abc", "size_max=1.5", "size_min=", "size_max=1e9"] {
        assert_eq!(
            err(bad),
            "Unable to filter on a range with a non-numeric value."
        );
    }
    assert_eq!(
        err("size_min=-1"),
        "Unable to filter on a range with a negative value."
    );
}

#[test]
fn protected_is_exact_lowercase() {
    assert_eq!(ok("protected=true").protected, Some(true));
    assert_eq!(ok("protected=false").protected, Some(false));
    assert_eq!(ok("").protected, None);
    assert_eq!(
        err("protected=False"),
        "Invalid value 'False' for 'protected' filter. Valid values are 'true' or 'false'."
    );
    assert!(err("protected=1").contains("'protected'"));
    assert!(err("protected=").contains("'protected'"));
}

#[test]
fn os_hidden_is_case_insensitive() {
    assert_eq!(ok("os_hidden=true").os_hidden, Some(true));
    assert_eq!(ok("os_hidden=TRUE").os_hidden, Some(true));
    assert_eq!(ok("os_hidden=False").os_hidden, Some(false));
    assert_eq!(
        err("os_hidden=Yes"),
        "Invalid value 'yes' for 'os_hidden' filter. Valid values are 'true' or 'false'."
    );
    assert!(err("os_hidden=").contains("'os_hidden'"));
}

#[test]
fn time_filters() {
    let at = utc(2014, 1, 1, 0, 0, 0);
    assert_eq!(
        ok("created_at=2014-01-01T00:00:00Z").created_at,
        vec![TimeFilter { op: TimeOp::Eq, at }]
    );
    let ops = [
        ("gt", TimeOp::Gt),
        ("gte", TimeOp::Gte),
        ("lt", TimeOp::Lt),
        ("lte", TimeOp::Lte),
        ("eq", TimeOp::Eq),
        ("neq", TimeOp::Neq),
    ];
    for (text, op) in ops {
        assert_eq!(
            ok(&format!("updated_at={text}:2014-01-01T00:00:00Z")).updated_at,
            vec![TimeFilter { op, at }]
        );
    }
    // Offsets (encoded and unencoded `+`), fractions, no zone, date only.
    let forms = [
        "2014-01-01T01:00:00%2B01:00",
        "2014-01-01T01:00:00+01:00",
        "2014-01-01T01:00:00%2B0100",
        "2013-12-31T19:00:00-05:00",
        "2014-01-01T00:00:00.000Z",
        "2014-01-01T00:00:00",
        "2014-01-01T00:00",
        "2014-01-01",
    ];
    for form in forms {
        assert_eq!(
            ok(&format!("created_at=gte:{form}")).created_at,
            vec![TimeFilter {
                op: TimeOp::Gte,
                at
            }],
            "{form}"
        );
    }
    assert_eq!(
        ok("created_at=2014-01-01T00:00:00.5Z").created_at[0].at,
        at + chrono::Duration::milliseconds(500)
    );
    // Repeatable: a range.
    let q = ok("created_at=gte:2014-01-01T00:00:00Z&created_at=lt:2015-01-01T00:00:00Z");
    assert_eq!(q.created_at.len(), 2);
    assert_eq!(
        err("created_at=yesterday"),
        "Bad \"created_at\" query filter format. Use ISO 8601 DateTime notation."
    );
    assert_eq!(
        err("updated_at=gt:2014-13-01T00:00:00Z"),
        "Bad \"updated_at\" query filter format. Use ISO 8601 DateTime notation."
    );
    assert_eq!(
        err("created_at=after:2014-01-01T00:00:00Z"),
        "Unable to filter by unknown operator 'after'."
    );
    assert!(err("created_at=").starts_with("Bad \"created_at\""));
}

#[test]
fn changes_since_is_gone() {
    assert_eq!(
        err("changes-since=2014-01-01T00:00:00Z"),
        "The \"changes-since\" filter is no longer available on v2."
    );
    assert_eq!(
        err("changes-since="),
        "The \"changes-since\" filter is no longer available on v2."
    );
}

#[test]
fn sorting_new_syntax() {
    assert_eq!(
        ok("sort=name").sort,
        vec![(Name, Desc), (CreatedAt, Desc), (Id, Desc)]
    );
    assert_eq!(
        ok("sort=name:asc").sort,
        vec![(Name, Asc), (CreatedAt, Asc), (Id, Asc)]
    );
    assert_eq!(
        ok("sort=name:asc,size:desc").sort,
        vec![(Name, Asc), (Size, Desc), (CreatedAt, Desc), (Id, Desc)]
    );
    assert_eq!(
        ok("sort=%20status%20:%20asc%20,id").sort,
        vec![(Status, Asc), (Id, Desc), (CreatedAt, Desc)]
    );
    assert_eq!(
        ok("sort=updated_at:asc,created_at:asc,id:asc").sort,
        vec![(UpdatedAt, Asc), (CreatedAt, Asc), (Id, Asc)]
    );
    assert_eq!(
        ok("sort=container_format,disk_format").sort,
        vec![
            (ContainerFormat, Desc),
            (DiskFormat, Desc),
            (CreatedAt, Desc),
            (Id, Desc)
        ]
    );
    assert!(err("sort=min_ram").starts_with("Invalid sort key: min_ram. It must be one of"));
    assert_eq!(
        err("sort=visibility"),
        "Invalid sort key: visibility. It must be one of the following: name, status, \
         container_format, disk_format, size, id, created_at, updated_at."
    );
    assert_eq!(err("sort="), err("sort_key="));
    assert_eq!(err("sort=name:up"), "Invalid sort direction: up");
    assert_eq!(
        err("sort=name:asc:desc"),
        "Invalid sort direction: asc:desc"
    );
    assert_eq!(err("sort=name,"), err("sort_key="));
}

#[test]
fn sorting_classic_syntax() {
    assert_eq!(
        ok("sort_key=name").sort,
        vec![(Name, Desc), (CreatedAt, Desc), (Id, Desc)]
    );
    assert_eq!(
        ok("sort_key=name&sort_dir=asc").sort,
        vec![(Name, Asc), (CreatedAt, Asc), (Id, Asc)]
    );
    assert_eq!(
        ok("sort_key=name&sort_key=size&sort_dir=asc").sort,
        vec![(Name, Asc), (Size, Asc), (CreatedAt, Asc), (Id, Asc)]
    );
    assert_eq!(
        ok("sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc").sort,
        vec![(Name, Asc), (Size, Desc), (CreatedAt, Desc), (Id, Desc)]
    );
    assert_eq!(ok("sort_dir=asc").sort, vec![(CreatedAt, Asc), (Id, Asc)]);
    assert_eq!(
        ok("sort_key=id&sort_dir=asc").sort,
        vec![(Id, Asc), (CreatedAt, Asc)]
    );
    assert_eq!(
        err("sort_key=name&sort_dir=asc&sort_dir=desc&sort_dir=asc"),
        "Number of sort dirs does not match the number of sort keys"
    );
    assert_eq!(
        err("sort_dir=asc&sort_dir=desc"),
        "Number of sort dirs does not match the number of sort keys"
    );
    assert!(err("sort_key=bogus").starts_with("Invalid sort key: bogus."));
    assert_eq!(err("sort_dir=DESC"), "Invalid sort direction: DESC");
}

#[test]
fn sorting_syntaxes_cannot_mix() {
    for raw in [
        "sort=name&sort_key=size",
        "sort_dir=asc&sort=name",
        "sort=name:asc&sort_dir=asc",
    ] {
        assert_eq!(
            err(raw),
            "Old and new sorting syntax cannot be combined",
            "{raw}"
        );
    }
}

#[test]
fn tags_are_repeatable_and_trimmed() {
    assert_eq!(ok("tag=a&tag=b+c&tag=%20d%20").tags, vec!["a", "b c", "d"]);
}

#[test]
fn other_keys_are_property_filters() {
    let q = ok("owner=123&checksum=abc&os_distro=ubuntu&min_ram=512&foo=1&foo=2&page=3");
    assert_eq!(q.owner.as_deref(), Some("123"));
    assert_eq!(q.checksum.as_deref(), Some("abc"));
    assert_eq!(
        q.properties,
        vec![
            ("os_distro".to_owned(), "ubuntu".to_owned()),
            ("min_ram".to_owned(), "512".to_owned()),
            ("foo".to_owned(), "2".to_owned()),
            ("page".to_owned(), "3".to_owned()),
        ]
    );
    // Rackspace property names survive decoding; a bare key has an empty value.
    assert_eq!(
        ok("com.rackspace__1__options=0&flag").properties,
        vec![
            ("com.rackspace__1__options".to_owned(), "0".to_owned()),
            ("flag".to_owned(), String::new()),
        ]
    );
}

#[test]
fn repeated_non_repeatable_parameters_last_wins() {
    let q =
        ok("limit=5&limit=7&visibility=bogus&visibility=public&name=a&name=b&marker=x&marker=y");
    assert_eq!(q.limit, 7);
    assert_eq!(q.visibility.as_deref(), Some("public"));
    assert_eq!(q.name, Some(ValueFilter::Eq("b".into())));
    assert_eq!(q.marker.as_deref(), Some("y"));
    assert_eq!(ok("sort=size&sort=name:asc").sort[0], (Name, Asc));
}

#[test]
fn decoding_and_utf8() {
    assert_eq!(
        ok("name=a+b%20c").name,
        Some(ValueFilter::Eq("a b c".into()))
    );
    assert_eq!(
        ok("name=caf%C3%A9").name,
        Some(ValueFilter::Eq("café".into()))
    );
    assert_eq!(ok("name=100%").name, Some(ValueFilter::Eq("100%".into())));
    assert_eq!(ok("name=%zz").name, Some(ValueFilter::Eq("%zz".into())));
    assert_eq!(ok("%6Eame=x").name, Some(ValueFilter::Eq("x".into())));
    assert_eq!(ok("&&name=x&").name, Some(ValueFilter::Eq("x".into())));
    assert_eq!(ok("name=a=b").name, Some(ValueFilter::Eq("a=b".into())));
    let utf8 = "Query parameters must be valid UTF-8 once percent-decoded.";
    assert_eq!(err("name=%FF"), utf8);
    assert_eq!(err("%C3=x"), utf8);
    assert_eq!(err("foo=%C3%28"), utf8);
}

#[test]
fn size_caps() {
    let many: Vec<String> = (0..MAX_PARAMS).map(|i| format!("k{i}=v")).collect();
    assert_eq!(ok(&many.join("&")).properties.len(), MAX_PARAMS);
    let too_many = format!("{}&one=more", many.join("&"));
    assert!(err(&too_many).starts_with("Too many query parameters"));
    let long = "x".repeat(MAX_PARAM_BYTES);
    assert!(parse_image_list_query(&format!("name={long}"), &GL).is_ok());
    assert!(err(&format!("name={long}x")).starts_with("Query parameter too long"));
    assert!(err(&format!("{long}x=1")).starts_with("Query parameter too long"));
    let encoded = "%41".repeat(MAX_PARAM_BYTES + 1);
    assert!(err(&format!("name={encoded}")).starts_with("Query parameter too long"));
    assert!(task_err(&too_many).starts_with("Too many query parameters"));
}

#[test]
fn task_defaults_and_values() {
    let q = task_ok("");
    assert_eq!(
        q,
        TaskListQuery {
            status: None,
            type_: None,
            sort_key: TaskSortKey::CreatedAt,
            sort_dir: SortDir::Desc,
            limit: 25,
            marker: None,
        }
    );
    let q = task_ok(&format!(
        "status=success&type=export&sort_key=updated_at&sort_dir=asc&limit=2000&marker={}&owner=ignored",
        UUID.to_uppercase()
    ));
    assert_eq!(q.status, Some(TaskStatusFilter::Success));
    assert_eq!(q.type_.as_deref(), Some("export"));
    assert_eq!(q.sort_key, TaskSortKey::UpdatedAt);
    assert_eq!(q.sort_dir, SortDir::Asc);
    assert_eq!(q.limit, 1000);
    assert_eq!(q.marker.as_deref(), Some(UUID));
    for key in TaskSortKey::ALL {
        assert_eq!(task_ok(&format!("sort_key={}", key.as_str())).sort_key, key);
    }
    for s in ["pending", "processing", "success", "failure"] {
        assert_eq!(
            task_ok(&format!("status={s}")).status.map(|s| s.as_str()),
            Some(s)
        );
    }
}

#[test]
fn task_errors() {
    assert_eq!(task_err("status=done"), "Invalid status value: done");
    assert_eq!(task_err("status="), "Invalid status value: ");
    assert_eq!(
        task_err("type=api_image_import"),
        "Invalid type value: api_image_import"
    );
    assert!(parse_task_list_query(
        "type=api_image_import",
        &GL,
        &["import", "api_image_import"]
    )
    .is_ok());
    assert!(parse_task_list_query("type=export", &GL, &["import"]).is_err());
    assert!(task_err("sort_key=owner").starts_with("Invalid sort key: owner."));
    assert_eq!(task_err("sort_dir=up"), "Invalid sort direction: up");
    assert_eq!(task_err("marker=abc"), "Invalid marker format");
    assert_eq!(task_err("marker="), "Invalid marker format");
    assert_eq!(task_err("limit=x"), "limit param must be an integer");
    assert_eq!(task_err("limit=-3"), "limit param must be positive");
    assert_eq!(task_err("limit=3.0"), "limit param must be an integer");
    assert_eq!(task_ok("limit=0").limit, 0);
    assert_eq!(
        task_err("status=%FF"),
        "Query parameters must be valid UTF-8 once percent-decoded."
    );
}

#[test]
fn first_link_drops_the_marker() {
    assert_eq!(first_link("/v2/images", ""), "/v2/images");
    assert_eq!(first_link("/v2/images", "marker=abc"), "/v2/images");
    assert_eq!(
        first_link("/v2/images", "visibility=shared&member_status=pending"),
        "/v2/images?visibility=shared&member_status=pending"
    );
    assert_eq!(
        first_link("/v2/images", "limit=2&marker=abc&tag=a&tag=b"),
        "/v2/images?limit=2&tag=a&tag=b"
    );
    assert_eq!(first_link("/v2/tasks", "&&"), "/v2/tasks");
}

#[test]
fn next_link_replaces_the_marker() {
    assert_eq!(
        next_link("/v2/images", "", UUID),
        format!("/v2/images?marker={UUID}")
    );
    assert_eq!(
        next_link("/v2/images", "marker=old&limit=2&sort=name:asc", UUID),
        format!("/v2/images?limit=2&sort=name%3Aasc&marker={UUID}")
    );
    assert_eq!(
        next_link("/v2/tasks", "limit=1&marker=a&marker=b", "x y"),
        "/v2/tasks?limit=1&marker=x+y"
    );
}

#[test]
fn links_round_trip_through_the_parser() {
    let raw = "name=in:%22a,b%22,c&tag=caf%C3%A9+au+lait&os_distro=%E6%97%A5%E6%9C%AC&created_at=gt:2014-01-01T00:00:00%2B01:00&flag";
    let original = ok(raw);
    let next = next_link("/v2/images", raw, UUID);
    let query = next.strip_prefix("/v2/images?").unwrap_or_default();
    let reparsed = ok(query);
    assert_eq!(reparsed.marker.as_deref(), Some(UUID));
    assert_eq!(
        ImageListQuery {
            marker: None,
            ..reparsed
        },
        original
    );
    assert_eq!(original.tags, vec!["café au lait"]);
    // The link is stable: parsing and re-emitting changes nothing.
    assert_eq!(next_link("/v2/images", query, UUID), next);
    let first = first_link("/v2/images", raw);
    assert_eq!(
        ok(first.strip_prefix("/v2/images?").unwrap_or_default()),
        original
    );
    assert!(next.is_ascii());
}

proptest! {
    #[test]
    fn parsers_never_panic(raw in any::<String>()) {
        let _ = parse_image_list_query(&raw, &GL);
        let _ = parse_image_list_query(&raw, &RS);
        let _ = parse_task_list_query(&raw, &RS, TASK_TYPES);
        let _ = first_link("/v2/images", &raw);
        let _ = next_link("/v2/images", &raw, &raw);
    }

    #[test]
    fn query_shaped_input_never_panics(
        raw in r#"((name|id|status|sort|sort_key|sort_dir|limit|created_at|size_min|tag|os_hidden|marker|x)=([a-z0-9:,"\\%+\-.TZ]|%[0-9A-Fa-f]{2}){0,20}&?){0,8}"#
    ) {
        let image = parse_image_list_query(&raw, &GL);
        let _ = parse_task_list_query(&raw, &GL, TASK_TYPES);
        if let Ok(q) = image {
            // Links of an accepted query parse back to the same query.
            let next = next_link("/v2/images", &raw, UUID);
            let again = parse_image_list_query(
                next.strip_prefix("/v2/images?").unwrap_or_default(), &GL);
            prop_assert_eq!(again.map(|a| ImageListQuery { marker: q.marker.clone(), ..a }), Ok(q));
        }
    }
}
