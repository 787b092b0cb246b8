//! The rules of import and export tasks that need no I/O: reading a task's input, naming
//! containers and objects, who may export which image, and the failure messages users see
//! (`docs/spec/rackspace.md` §3.2–§3.7). The worker in `imgshare-store` does the reading and
//! writing and fails the task with these messages.

use serde_json::Value;
use uuid::Uuid;

use crate::model::ImageStatus;
use crate::state::Image;
use crate::task::Task;

/// Import source missing, unreadable or not a valid location (the docs' text, §9 choice 5).
pub const IMPORT_NOT_FOUND: &str = "Error: Image not found for import. Possible invalid location";
/// `image_properties` holds a key other than `name`.
pub const UNSUPPORTED_PROPERTY: &str =
    "Unsupported element in image_properties, please consult the documentation.";
/// Export of an image the caller does not own (or cannot see, or that does not exist).
pub const NOT_OWNER: &str = "An image may only be exported by the image owner.";
/// An import of a Windows image (§3.2: licensing; the task message is not documented, so it
/// gives the rule and Rackspace's reason).
pub const WINDOWS_NOT_IMPORTABLE: &str = "Image import is not available for Windows images: \
     Microsoft product use rights do not allow the use of License Mobility for Windows licenses.";
/// The property whose value decides whether an image may leave the cloud.
pub const LICENSE_PROPERTY: &str = "com.rackspace__1__options";

/// The export target container does not exist.
pub fn container_not_found(container: &str) -> String {
    format!("Container not found. Container: {container}")
}

/// The export target object exists already (the tests' text, §9 choice 4).
pub fn object_exists(container: &str, object: &str) -> String {
    format!("Object already exists in user's container. Container/Object: {container}/{object}")
}

/// A licensed (Windows, Red Hat) image, or a snapshot of one.
pub fn licensed(value: &str) -> String {
    format!(
        "Image cannot be exported due to licensing or billing restrictions ({LICENSE_PROPERTY}: '{value}')"
    )
}

/// What an import task asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    /// The container holding the VHD.
    pub container: String,
    /// The VHD object (may contain `/`, as Swift pseudo-directories).
    pub object: String,
    /// The new image's name.
    pub name: Option<String>,
}

/// What an export task asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// The image to export.
    pub image_id: Uuid,
    /// Where the `<image_id>.vhd` object goes.
    pub container: String,
}

impl ExportRequest {
    /// The object an export writes: `<image_id>.vhd`.
    pub fn object(&self) -> String {
        format!("{}.vhd", self.image_id)
    }

    /// `<container>/<image_id>.vhd`, the task's `export_location`.
    pub fn location(&self) -> String {
        format!("{}/{}", self.container, self.object())
    }
}

/// A container name an object store may be asked about: 1 to 256 bytes, no `/`, no NUL, not `.`
/// or `..` (which would name a directory outside the account on a file system).
pub fn valid_container_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.contains(['/', '\0', '\\'])
        && name != "."
        && name != ".."
}

/// An object name: 1 to 1024 bytes, relative, no NUL or backslash, and no empty, `.` or `..`
/// segment between slashes (so it can never leave its container on a file system).
pub fn valid_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && !name.contains(['\0', '\\'])
        && name
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// True if image properties describe Windows: `os_type` or `os_distro` `windows`, or
/// `org.openstack__1__os_distro` `com.microsoft…` (how Rackspace's own Windows images are
/// labelled), case-insensitively.
pub fn properties_say_windows(properties: &serde_json::Map<String, Value>) -> bool {
    let value = |key: &str| {
        properties
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    value("os_type").as_deref() == Some("windows")
        || value("os_distro").as_deref() == Some("windows")
        || value("org.openstack__1__os_distro")
            .is_some_and(|distro| distro.starts_with("com.microsoft"))
}

/// Reads an import task's input: `import_from` = `<container>/<object>`, optional
/// `image_properties` with `name` only, optional legacy `import_from_format` = `vhd`.
pub fn parse_import_input(input: &Value) -> Result<ImportRequest, String> {
    let mut name = None;
    match input.get("image_properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(properties)) => {
            // Before the "name only" rule: saying Windows gets the reason that matters.
            if properties_say_windows(properties) {
                return Err(WINDOWS_NOT_IMPORTABLE.to_owned());
            }
            for (key, value) in properties {
                match (key.as_str(), value) {
                    ("name", Value::String(text)) => name = Some(text.clone()),
                    ("name", Value::Null) => {}
                    _ => return Err(UNSUPPORTED_PROPERTY.to_owned()),
                }
            }
        }
        Some(_) => return Err(UNSUPPORTED_PROPERTY.to_owned()),
    }
    match input.get("import_from_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(format)) if format.eq_ignore_ascii_case("vhd") => {}
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Err(format!(
                "Unsupported import_from_format '{shown}': only 'vhd' images can be imported."
            ));
        }
    }
    let location = input
        .get("import_from")
        .and_then(Value::as_str)
        .ok_or_else(|| IMPORT_NOT_FOUND.to_owned())?;
    let (container, object) = location
        .split_once('/')
        .filter(|(container, object)| valid_container_name(container) && valid_object_name(object))
        .ok_or_else(|| IMPORT_NOT_FOUND.to_owned())?;
    Ok(ImportRequest {
        container: container.to_owned(),
        object: object.to_owned(),
        name,
    })
}

/// Reads an export task's input: `image_uuid` and `receiving_swift_container`. An id that is not
/// a UUID names no image the caller owns; a container name with `/`, `?` or `.` is refused as
/// Rackspace refuses it (§3.4).
pub fn parse_export_input(input: &Value) -> Result<ExportRequest, String> {
    let image_id = input
        .get("image_uuid")
        .and_then(Value::as_str)
        .and_then(|text| Uuid::try_parse(text).ok())
        .ok_or_else(|| NOT_OWNER.to_owned())?;
    let container = match input.get("receiving_swift_container") {
        Some(Value::String(container)) => container.clone(),
        _ => return Err(container_not_found("")),
    };
    if container.contains(['/', '?', '.']) {
        return Err(format!(
            "Invalid container name '{container}': it may not contain '/', '?' or '.'."
        ));
    }
    if !valid_container_name(&container) {
        return Err(container_not_found(&container));
    }
    Ok(ExportRequest {
        image_id,
        container,
    })
}

/// May the task's account export `image` (as folded, `None` if it never existed)? Only the
/// owner, in the task's region, an active image, and only without licensing restrictions.
pub fn check_export(task: &Task, image: Option<&Image>) -> Result<(), String> {
    let owned = image.filter(|image| {
        image.status != ImageStatus::Deleted
            && image.region == task.region
            && image.owner.as_deref() == Some(task.owner.as_str())
    });
    let Some(image) = owned else {
        return Err(NOT_OWNER.to_owned());
    };
    if let Some(value) = image.properties.get(LICENSE_PROPERTY) {
        if value != "0" {
            return Err(licensed(value));
        }
    }
    match image.status {
        ImageStatus::Active => Ok(()),
        ImageStatus::Deactivated => Err("A deactivated image cannot be exported.".to_owned()),
        other => Err(format!(
            "Image has no data to export: its status is '{other}'."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, ImageActivated, ImageRegistered};
    use crate::model::{Region, TaskStatus, TaskType, Visibility};
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use std::collections::BTreeMap;

    const IMAGE: Uuid = Uuid::from_u128(0xabc);

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn task(owner: &str) -> Task {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Task {
            id: Uuid::from_u128(1),
            task_type: TaskType::Export,
            status: TaskStatus::Processing,
            input: json!({}),
            result: None,
            message: None,
            owner: owner.to_owned(),
            user_id: "alice".to_owned(),
            region: region("DFW"),
            created_at: at,
            updated_at: at,
            expires_at: None,
        }
    }

    fn image(owner: &str, options: Option<&str>, events: &[Event]) -> Image {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut properties = BTreeMap::new();
        if let Some(value) = options {
            properties.insert(LICENSE_PROPERTY.to_owned(), value.to_owned());
        }
        let registered = Event::ImageRegistered(ImageRegistered {
            image_id: IMAGE,
            region: region("DFW"),
            owner: Some(owner.to_owned()),
            name: None,
            visibility: Visibility::Private,
            protected: false,
            os_hidden: false,
            container_format: Some("ovf".to_owned()),
            disk_format: Some("vhd".to_owned()),
            min_disk: 0,
            min_ram: 0,
            tags: Vec::new(),
            properties,
        });
        let activated = Event::ImageActivated(ImageActivated {
            size: 1,
            checksum: "00".repeat(16),
            virtual_size: None,
            os_hash_algo: None,
            os_hash_value: None,
        });
        let mut state = None;
        for event in [registered, activated].iter().chain(events) {
            state = crate::image::apply(state, event, at).unwrap();
        }
        state.unwrap()
    }

    #[test]
    fn an_import_input_names_a_container_and_an_object() {
        let input = json!({"import_from": "exports/dir/my.vhd", "image_properties": {"name": "n"}, "import_from_format": "vhd"});
        assert_eq!(
            parse_import_input(&input),
            Ok(ImportRequest {
                container: "exports".to_owned(),
                object: "dir/my.vhd".to_owned(),
                name: Some("n".to_owned()),
            })
        );
        let bare = parse_import_input(&json!({"import_from": "c/o.vhd", "image_properties": {}}));
        assert_eq!(bare.map(|request| request.name), Ok(None));
    }

    #[test]
    fn only_name_is_allowed_in_image_properties() {
        for properties in [
            json!({"name": "n", "image_type": "import"}),
            json!({"visibility": "public"}),
            json!({"name": 3}),
            json!(["name"]),
        ] {
            let input = json!({"import_from": "c/o.vhd", "image_properties": properties});
            assert_eq!(
                parse_import_input(&input),
                Err(UNSUPPORTED_PROPERTY.to_owned())
            );
        }
    }

    #[test]
    fn properties_that_say_windows_fail_with_the_licensing_reason() {
        for properties in [
            json!({"name": "w", "os_type": "windows"}),
            json!({"os_type": "Windows"}),
            json!({"os_distro": "windows"}),
            json!({"org.openstack__1__os_distro": "com.microsoft.server"}),
        ] {
            let input = json!({"import_from": "c/o.vhd", "image_properties": properties});
            assert_eq!(
                parse_import_input(&input),
                Err(WINDOWS_NOT_IMPORTABLE.to_owned()),
                "{input}"
            );
        }
        let linux = json!({"import_from": "c/o.vhd", "image_properties": {"os_type": "linux"}});
        assert_eq!(
            parse_import_input(&linux),
            Err(UNSUPPORTED_PROPERTY.to_owned())
        );
    }

    #[test]
    fn the_legacy_format_must_be_vhd() {
        let input = json!({"import_from": "c/o", "import_from_format": "qcow2"});
        assert_eq!(
            parse_import_input(&input),
            Err(
                "Unsupported import_from_format 'qcow2': only 'vhd' images can be imported."
                    .to_owned()
            )
        );
        let upper = json!({"import_from": "c/o", "import_from_format": "VHD"});
        assert!(parse_import_input(&upper).is_ok());
    }

    #[test]
    fn bad_or_escaping_locations_are_not_found() {
        for location in [
            json!("no-slash.vhd"),
            json!("/abs/path.vhd"),
            json!("../etc/passwd"),
            json!("c/../../etc/passwd"),
            json!("c/a/./b"),
            json!("c//double"),
            json!("c/trailing/"),
            json!("c/nul\u{0}.vhd"),
            json!("c/back\\slash"),
            json!(".."),
            json!(7),
        ] {
            assert_eq!(
                parse_import_input(&json!({"import_from": location})),
                Err(IMPORT_NOT_FOUND.to_owned()),
                "{location}"
            );
        }
        assert_eq!(
            parse_import_input(&json!({})),
            Err(IMPORT_NOT_FOUND.to_owned())
        );
    }

    #[test]
    fn an_export_input_names_an_image_and_a_container() {
        let input =
            json!({"image_uuid": IMAGE.to_string(), "receiving_swift_container": "exports"});
        let request = parse_export_input(&input).unwrap();
        assert_eq!(request.image_id, IMAGE);
        assert_eq!(request.location(), format!("exports/{IMAGE}.vhd"));
        assert_eq!(
            parse_export_input(&json!({"image_uuid": "nope", "receiving_swift_container": "c"})),
            Err(NOT_OWNER.to_owned())
        );
        for bad in ["a/b", "what?", "my.container"] {
            let input = json!({"image_uuid": IMAGE.to_string(), "receiving_swift_container": bad});
            let message = parse_export_input(&input).unwrap_err();
            assert!(message.starts_with("Invalid container name"), "{message}");
        }
        assert_eq!(
            parse_export_input(&json!({"image_uuid": IMAGE.to_string()})),
            Err(container_not_found(""))
        );
    }

    #[test]
    fn only_the_owner_exports_an_active_unlicensed_image_of_the_region() {
        assert_eq!(
            check_export(&task("111"), Some(&image("111", None, &[]))),
            Ok(())
        );
        assert_eq!(
            check_export(&task("111"), Some(&image("111", Some("0"), &[]))),
            Ok(())
        );
        assert_eq!(
            check_export(&task("222"), Some(&image("111", None, &[]))),
            Err(NOT_OWNER.to_owned())
        );
        assert_eq!(check_export(&task("111"), None), Err(NOT_OWNER.to_owned()));
        let mut elsewhere = image("111", None, &[]);
        elsewhere.region = region("ORD");
        assert_eq!(
            check_export(&task("111"), Some(&elsewhere)),
            Err(NOT_OWNER.to_owned())
        );
        assert_eq!(
            check_export(&task("111"), Some(&image("111", Some("4"), &[]))),
            Err(
                "Image cannot be exported due to licensing or billing restrictions (com.rackspace__1__options: '4')"
                    .to_owned()
            )
        );
        let deactivated = image("111", None, &[Event::ImageDeactivated {}]);
        assert_eq!(
            check_export(&task("111"), Some(&deactivated)),
            Err("A deactivated image cannot be exported.".to_owned())
        );
        let deleted = image("111", None, &[Event::ImageDeleted {}]);
        assert_eq!(
            check_export(&task("111"), Some(&deleted)),
            Err(NOT_OWNER.to_owned())
        );
    }
}
