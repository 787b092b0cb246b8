//! The JSON schemas served at `/v2/schemas/{kind}` (`docs/spec/glance.md` §10).
//!
//! The documents start from the ones a real Glance 33 publishes (copied verbatim into `schemas/`
//! from `shared/reference/`), and the profile patches the few values that differ. Clients such as
//! python-glanceclient validate every response against these documents, so every property the
//! server returns with a non-string value must be declared here with a type that accepts it; extra
//! keys are only covered by `additionalProperties: {"type": "string"}`.
//!
//! No type had to be widened: the reference already accepts everything the server returns.
//! `owner`, `name`, `checksum`, `os_hash_algo`, `os_hash_value` are `["null", "string"]`, `size` and
//! `virtual_size` are `["null", "integer"]`, `container_format` and `disk_format` list `null` in
//! their enums, `min_disk`/`min_ram` are integers, `protected`/`os_hidden` booleans, `tags` an array
//! of strings, timestamps strings. The test `server_shaped_documents_validate` keeps it that way.

use serde_json::{Map, Value};

pub use imgshare_core::profile::SchemaProfile;

/// The reference documents. The collections are derived from these in code so that
/// `images.items == image` (and the same for members and tasks) holds by construction.
const IMAGE_JSON: &str = include_str!("../schemas/image.json");
const MEMBER_JSON: &str = include_str!("../schemas/member.json");
const TASK_JSON: &str = include_str!("../schemas/task.json");

/// Task properties that the list view omits, so the `tasks` collection does not declare them
/// (`_format_task_stub` in Glance).
const TASK_DETAIL_ONLY: [&str; 3] = ["input", "result", "message"];

/// One of the six schema documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    /// `/v2/schemas/image`
    Image,
    /// `/v2/schemas/images`
    Images,
    /// `/v2/schemas/member`
    Member,
    /// `/v2/schemas/members`
    Members,
    /// `/v2/schemas/task`
    Task,
    /// `/v2/schemas/tasks`
    Tasks,
}

impl SchemaKind {
    /// Every kind, in path order.
    pub const ALL: [SchemaKind; 6] = [
        SchemaKind::Image,
        SchemaKind::Images,
        SchemaKind::Member,
        SchemaKind::Members,
        SchemaKind::Task,
        SchemaKind::Tasks,
    ];

    /// The kind named by the last segment of `/v2/schemas/{segment}`; `None` for anything else
    /// (the router answers 404). Matching is exact: Glance's routes are case-sensitive.
    pub fn from_path_segment(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "images" => Some(Self::Images),
            "member" => Some(Self::Member),
            "members" => Some(Self::Members),
            "task" => Some(Self::Task),
            "tasks" => Some(Self::Tasks),
            _ => None,
        }
    }

    /// The path segment, which is also the document's `name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Images => "images",
            Self::Member => "member",
            Self::Members => "members",
            Self::Task => "task",
            Self::Tasks => "tasks",
        }
    }
}

/// The schema document of `kind` as the given profile serves it.
pub fn schema_document(kind: SchemaKind, profile: SchemaProfile) -> Value {
    match kind {
        SchemaKind::Image => image_schema(profile),
        SchemaKind::Images => collection(
            "images",
            image_schema(profile),
            &["first", "next"],
            vec![
                link("first", "{first}"),
                link("next", "{next}"),
                link("describedby", "{schema}"),
            ],
        ),
        SchemaKind::Member => parse(MEMBER_JSON),
        SchemaKind::Members => collection(
            "members",
            parse(MEMBER_JSON),
            &[],
            vec![link("describedby", "{schema}")],
        ),
        SchemaKind::Task => task_schema(profile),
        SchemaKind::Tasks => {
            let mut item = task_schema(profile);
            if let Some(props) = item.get_mut("properties").and_then(Value::as_object_mut) {
                for key in TASK_DETAIL_ONLY {
                    props.shift_remove(key);
                }
            }
            collection("tasks", item, &[], vec![link("describedby", "{schema}")])
        }
    }
}

/// Image keys of modern Glance that the Rackspace profile never serves: it has no hidden images,
/// no sha512 multihash, one store and no locations. A schema that declared them would invite
/// clients to read or patch keys that never appear (and `additionalProperties` still accepts any
/// string property, so a document the server sends stays valid).
pub const GLANCE_ONLY_IMAGE_KEYS: [&str; 6] = [
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
    "stores",
    "locations",
    "direct_url",
];

fn image_schema(profile: SchemaProfile) -> Value {
    let mut doc = parse(IMAGE_JSON);
    if profile == SchemaProfile::Rackspace {
        // Rackspace never shows `shared` or `community`: a shared image reads `private`
        // (docs/spec/rackspace.md §4.8, §9 #7). `shared` survives only as a list filter.
        set_enum(&mut doc, "visibility", &["public", "private"]);
        if let Some(props) = doc.get_mut("properties").and_then(Value::as_object_mut) {
            for key in GLANCE_ONLY_IMAGE_KEYS {
                props.shift_remove(key);
            }
        }
    }
    doc
}

fn task_schema(profile: SchemaProfile) -> Value {
    let mut doc = parse(TASK_JSON);
    let types: &[&str] = match profile {
        SchemaProfile::Rackspace => &["import", "export"],
        SchemaProfile::Glance => &["import", "api_image_import", "location_import"],
    };
    set_enum(&mut doc, "type", types);
    doc
}

/// Builds a collection document in Glance's `CollectionSchema` shape. Keys are inserted in sorted
/// order because that is how Glance serialises them and the reference files show them.
fn collection(name: &str, item: Value, string_props: &[&str], links: Vec<Value>) -> Value {
    let mut props = Map::new();
    let mut keys: Vec<&str> = string_props.to_vec();
    keys.push(name);
    keys.push("schema");
    keys.sort_unstable();
    for key in keys {
        let value = if key == name {
            let mut array = Map::new();
            array.insert("items".into(), item.clone());
            array.insert("type".into(), Value::from("array"));
            Value::Object(array)
        } else {
            let mut string = Map::new();
            string.insert("type".into(), Value::from("string"));
            Value::Object(string)
        };
        props.insert(key.into(), value);
    }
    let mut doc = Map::new();
    doc.insert("links".into(), Value::Array(links));
    doc.insert("name".into(), Value::from(name));
    doc.insert("properties".into(), Value::Object(props));
    Value::Object(doc)
}

fn link(rel: &str, href: &str) -> Value {
    let mut map = Map::new();
    map.insert("href".into(), Value::from(href));
    map.insert("rel".into(), Value::from(rel));
    Value::Object(map)
}

fn set_enum(doc: &mut Value, property: &str, values: &[&str]) {
    if let Some(prop) = doc
        .get_mut("properties")
        .and_then(|p| p.get_mut(property))
        .and_then(Value::as_object_mut)
    {
        prop.insert(
            "enum".into(),
            Value::Array(values.iter().map(|v| Value::from(*v)).collect()),
        );
    }
}

/// The embedded documents are compile-time constants that the tests parse, so the fallback is
/// unreachable in a tested build; it exists only so that no code path can panic.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;
    use serde_json::json;

    const PROFILES: [SchemaProfile; 2] = [SchemaProfile::Rackspace, SchemaProfile::Glance];

    fn pretty(value: Option<&Value>) -> String {
        serde_json::to_string(&value.cloned().unwrap_or(Value::Null)).unwrap_or_default()
    }

    #[test]
    fn embedded_documents_parse() {
        for text in [IMAGE_JSON, MEMBER_JSON, TASK_JSON] {
            assert!(serde_json::from_str::<Value>(text).is_ok());
        }
    }

    #[test]
    fn path_segments_round_trip() {
        for kind in SchemaKind::ALL {
            assert_eq!(SchemaKind::from_path_segment(kind.as_str()), Some(kind));
        }
        assert_eq!(SchemaKind::from_path_segment("Image"), None);
        assert_eq!(SchemaKind::from_path_segment(""), None);
        assert_eq!(SchemaKind::from_path_segment("images/"), None);
    }

    #[test]
    fn every_document_is_an_object_named_after_its_kind() {
        for profile in PROFILES {
            for kind in SchemaKind::ALL {
                let doc = schema_document(kind, profile);
                assert!(doc.is_object(), "{kind:?} {profile:?}");
                assert_eq!(doc["name"], kind.as_str(), "{kind:?} {profile:?}");
                assert!(doc["properties"].is_object(), "{kind:?} {profile:?}");
            }
        }
    }

    #[test]
    fn collection_items_equal_the_item_schema() {
        for profile in PROFILES {
            let image = schema_document(SchemaKind::Image, profile);
            let images = schema_document(SchemaKind::Images, profile);
            assert_eq!(images["properties"]["images"]["items"], image);
            let member = schema_document(SchemaKind::Member, profile);
            let members = schema_document(SchemaKind::Members, profile);
            assert_eq!(members["properties"]["members"]["items"], member);
        }
    }

    #[test]
    fn glance_documents_equal_the_reference() {
        let reference = [
            (SchemaKind::Image, include_str!("../schemas/image.json")),
            (SchemaKind::Images, include_str!("../schemas/images.json")),
            (SchemaKind::Member, include_str!("../schemas/member.json")),
            (SchemaKind::Members, include_str!("../schemas/members.json")),
            (SchemaKind::Task, include_str!("../schemas/task.json")),
            (SchemaKind::Tasks, include_str!("../schemas/tasks.json")),
        ];
        for (kind, text) in reference {
            let expected: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            let actual = schema_document(kind, SchemaProfile::Glance);
            assert_eq!(actual, expected, "{kind:?}");
            // Same key order too, so the served bytes look like Glance's.
            assert_eq!(
                serde_json::to_string(&actual).ok(),
                serde_json::to_string(&expected).ok(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn rackspace_differs_from_glance_in_the_two_enums_and_the_glance_only_keys() {
        let mut image = schema_document(SchemaKind::Image, SchemaProfile::Rackspace);
        set_enum(
            &mut image,
            "visibility",
            &["community", "public", "private", "shared"],
        );
        let mut glance = schema_document(SchemaKind::Image, SchemaProfile::Glance);
        let props = glance["properties"].as_object_mut().unwrap();
        for key in GLANCE_ONLY_IMAGE_KEYS {
            assert!(props.shift_remove(key).is_some(), "{key}");
            assert!(image["properties"].get(key).is_none(), "{key}");
        }
        assert_eq!(image, glance);
        let mut task = schema_document(SchemaKind::Task, SchemaProfile::Rackspace);
        set_enum(
            &mut task,
            "type",
            &["import", "api_image_import", "location_import"],
        );
        assert_eq!(
            task,
            schema_document(SchemaKind::Task, SchemaProfile::Glance)
        );
    }

    #[test]
    fn rackspace_image_visibility_snapshot() {
        let image = schema_document(SchemaKind::Image, SchemaProfile::Rackspace);
        expect![[r#"{"description":"Scope of image accessibility","enum":["public","private"],"type":"string"}"#]]
            .assert_eq(&pretty(image.pointer("/properties/visibility")));
        let images = schema_document(SchemaKind::Images, SchemaProfile::Rackspace);
        expect![[r#"["public","private"]"#]].assert_eq(&pretty(
            images.pointer("/properties/images/items/properties/visibility/enum"),
        ));
    }

    #[test]
    fn glance_image_visibility_snapshot() {
        let image = schema_document(SchemaKind::Image, SchemaProfile::Glance);
        expect![[r#"["community","public","private","shared"]"#]]
            .assert_eq(&pretty(image.pointer("/properties/visibility/enum")));
    }

    #[test]
    fn task_type_snapshots() {
        let rackspace = schema_document(SchemaKind::Task, SchemaProfile::Rackspace);
        expect![[r#"{"description":"The type of task represented by this content","enum":["import","export"],"type":"string"}"#]]
            .assert_eq(&pretty(rackspace.pointer("/properties/type")));
        let rackspace_list = schema_document(SchemaKind::Tasks, SchemaProfile::Rackspace);
        expect![[r#"["import","export"]"#]].assert_eq(&pretty(
            rackspace_list.pointer("/properties/tasks/items/properties/type/enum"),
        ));
        let glance = schema_document(SchemaKind::Task, SchemaProfile::Glance);
        expect![[r#"["import","api_image_import","location_import"]"#]]
            .assert_eq(&pretty(glance.pointer("/properties/type/enum")));
    }

    #[test]
    fn task_list_items_omit_detail_fields() {
        for profile in PROFILES {
            let tasks = schema_document(SchemaKind::Tasks, profile);
            let props = &tasks["properties"]["tasks"]["items"]["properties"];
            for key in TASK_DETAIL_ONLY {
                assert!(props.get(key).is_none(), "{key}");
            }
            assert!(props.get("expires_at").is_some());
        }
    }

    /// Just enough JSON Schema (`type`, `enum`, `items`, `additionalProperties`) to check the
    /// response shapes clients validate.
    fn accepts(schema: &Value, value: &Value) -> bool {
        let type_ok = match schema.get("type") {
            None => true,
            Some(Value::String(t)) => type_matches(t, value),
            Some(Value::Array(ts)) => ts
                .iter()
                .any(|t| t.as_str().is_some_and(|t| type_matches(t, value))),
            Some(_) => false,
        };
        let enum_ok = match schema.get("enum") {
            Some(Value::Array(allowed)) => allowed.contains(value),
            _ => true,
        };
        let items_ok = match (schema.get("items"), value) {
            (Some(item), Value::Array(values)) => values.iter().all(|v| accepts(item, v)),
            _ => true,
        };
        let props_ok = match value {
            Value::Object(map) if schema.get("properties").is_some() => {
                map.iter().all(|(k, v)| match schema["properties"].get(k) {
                    Some(prop) => accepts(prop, v),
                    None => match schema.get("additionalProperties") {
                        Some(extra) if extra.is_object() => accepts(extra, v),
                        Some(Value::Bool(false)) => false,
                        // Glance's minimal schemas (member, task) carry no
                        // additionalProperties: undeclared keys are allowed.
                        _ => true,
                    },
                })
            }
            _ => true,
        };
        type_ok && enum_ok && items_ok && props_ok
    }

    fn type_matches(t: &str, value: &Value) -> bool {
        match t {
            "null" => value.is_null(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        }
    }

    #[test]
    fn server_shaped_documents_validate() {
        let base_image = json!({
            "id": "1bea47ed-f6a9-463b-b423-14b9cca9ad27", "name": null, "status": "queued",
            "visibility": "private", "protected": false, "os_hidden": false,
            "checksum": null, "os_hash_algo": null, "os_hash_value": null,
            "size": null, "virtual_size": null, "min_disk": 0, "min_ram": 512,
            "container_format": null, "disk_format": null, "owner": null,
            "created_at": "2014-05-05T17:15:10Z", "updated_at": "2014-05-05T17:15:11Z",
            "tags": ["a", "b"], "self": "/v2/images/1bea47ed-f6a9-463b-b423-14b9cca9ad27",
            "file": "/v2/images/1bea47ed-f6a9-463b-b423-14b9cca9ad27/file",
            "schema": "/v2/schemas/image", "com.rackspace__1__options": "0", "image_type": "base"
        });
        let mut active = base_image.clone();
        active["name"] = json!("Ubuntu");
        active["status"] = json!("active");
        active["checksum"] = json!("64d7c1cd2b6f60c92c14662941cb7913");
        active["size"] = json!(13_167_616_u64);
        active["container_format"] = json!("ovf");
        active["disk_format"] = json!("vhd");
        active["owner"] = json!("123456");
        for profile in PROFILES {
            let image = schema_document(SchemaKind::Image, profile);
            // What each profile's view sends: Rackspace has none of Glance's `os_*` keys.
            let (mut base_image, mut active) = (base_image.clone(), active.clone());
            if profile == SchemaProfile::Rackspace {
                for key in GLANCE_ONLY_IMAGE_KEYS {
                    base_image.as_object_mut().unwrap().remove(key);
                    active.as_object_mut().unwrap().remove(key);
                }
            }
            assert!(accepts(&image, &base_image), "{profile:?}");
            assert!(accepts(&image, &active), "{profile:?}");
            let list = json!({"images": [base_image, active], "first": "/v2/images",
                              "next": "/v2/images?marker=x", "schema": "/v2/schemas/images"});
            assert!(accepts(
                &schema_document(SchemaKind::Images, profile),
                &list
            ));
            // A non-string custom property would break clients; the schema must say so.
            let mut bad = active.clone();
            bad["custom"] = json!(1);
            assert!(!accepts(&image, &bad));
        }
        let mut shared = active.clone();
        shared["visibility"] = json!("shared");
        assert!(!accepts(
            &schema_document(SchemaKind::Image, SchemaProfile::Rackspace),
            &shared
        ));
        assert!(accepts(
            &schema_document(SchemaKind::Image, SchemaProfile::Glance),
            &shared
        ));

        let member = json!({"image_id": "1bea47ed-f6a9-463b-b423-14b9cca9ad27", "member_id": "654321",
            "status": "pending", "created_at": "2014-05-05T17:15:10Z",
            "updated_at": "2014-05-05T17:15:10Z", "schema": "/v2/schemas/member"});
        for profile in PROFILES {
            assert!(accepts(
                &schema_document(SchemaKind::Member, profile),
                &member
            ));
            let members = json!({"members": [member], "schema": "/v2/schemas/members"});
            assert!(accepts(
                &schema_document(SchemaKind::Members, profile),
                &members
            ));
        }

        let export = json!({"id": "1bea47ed-f6a9-463b-b423-14b9cca9ad27", "type": "export",
            "status": "success", "input": {"image_uuid": "x", "receiving_swift_container": "c"},
            "result": {"export_location": "c/x.vhd"}, "message": "None", "owner": "123456",
            "expires_at": "2014-05-07T17:15:10Z", "created_at": "2014-05-05T17:15:10Z",
            "updated_at": "2014-05-05T17:15:10Z", "self": "/v2/tasks/1bea47ed-f6a9-463b-b423-14b9cca9ad27",
            "schema": "/v2/schemas/task"});
        let task_rs = schema_document(SchemaKind::Task, SchemaProfile::Rackspace);
        assert!(accepts(&task_rs, &export));
        assert!(!accepts(
            &schema_document(SchemaKind::Task, SchemaProfile::Glance),
            &export
        ));
        let mut pending = export.clone();
        pending["type"] = json!("import");
        pending["status"] = json!("pending");
        pending["result"] = Value::Null;
        pending["expires_at"] = Value::Null;
        pending["message"] = json!("");
        for profile in PROFILES {
            assert!(accepts(
                &schema_document(SchemaKind::Task, profile),
                &pending
            ));
        }
    }
}
