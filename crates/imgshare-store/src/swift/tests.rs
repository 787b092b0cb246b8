#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The adapter against a scripted stand-in for Swift on loopback: what it sends, in which order,
//! and how it reacts to faults that a real Swift produces only by accident (5xx, 401 after a
//! token expired, a transfer cut or stalled halfway, hostile manifests).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use md5::{Digest, Md5};

use super::*;
use crate::objects::StoreUnavailable;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

enum Reply {
    Full(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Headers announcing `declared` bytes, then `body` (shorter), then the connection closes.
    Cut(u16, Vec<(&'static str, String)>, u64, Vec<u8>),
    /// Like `Cut`, but the connection stays silent for a second before closing.
    Stall(u16, Vec<(&'static str, String)>, u64, Vec<u8>),
}

fn ok(status: u16) -> Reply {
    Reply::Full(status, Vec::new(), Vec::new())
}

type Handler = Box<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// The stand-in: answers each request with `handler(request, number of earlier requests with
/// the same method and target)`; auth requests get a token `tok-<n>` unless the handler answers
/// them.
struct Mock {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(Box::new(handler));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                thread::spawn(move || serve(stream, &handler, &log));
            }
        });
        Mock { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }

    fn store(&self, adjust: impl FnOnce(&mut SwiftConfig)) -> SwiftObjectStore {
        let auth = SwiftAuth {
            auth_url: format!("{}/auth/v1.0", self.url),
            user: "imgshare:service".into(),
            key: "servicepw".into(),
        };
        let mut config = SwiftConfig::new(format!("{}/v1", self.url), auth);
        config.retries = 2;
        config.backoff = Duration::from_millis(1);
        config.timeout = Duration::from_millis(300);
        adjust(&mut config);
        SwiftObjectStore::new(config).unwrap()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let request = Seen {
        method,
        target,
        headers,
        body,
    };
    let earlier = {
        let mut log = log.lock().unwrap();
        let earlier = log
            .iter()
            .filter(|s| s.method == request.method && s.target == request.target)
            .count();
        log.push(request.clone());
        earlier
    };
    let reply = if request.target.starts_with("/auth/") {
        let auths = log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.target.starts_with("/auth/"))
            .count();
        Reply::Full(
            200,
            vec![("X-Auth-Token", format!("tok-{auths}"))],
            Vec::new(),
        )
    } else {
        handler(&request, earlier)
    };
    let mut stream = stream;
    let (status, headers, declared, body, stall) = match reply {
        Reply::Full(status, headers, body) => (status, headers, body.len() as u64, body, false),
        Reply::Cut(status, headers, declared, body) => (status, headers, declared, body, false),
        Reply::Stall(status, headers, declared, body) => (status, headers, declared, body, true),
    };
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
    {
        head.push_str(&format!("Content-Length: {declared}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if request.method != "HEAD" {
        let _ = stream.write_all(&body);
    }
    let _ = stream.flush();
    if stall {
        thread::sleep(Duration::from_secs(1));
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[test]
fn bad_names_are_refused_before_any_request() {
    let mock = Mock::start(|_, _| ok(204));
    let store = mock.store(|_| {});
    for (tenant, container, object) in [
        ("111111", "..", "x.vhd"),
        ("111111", "a/b", "x.vhd"),
        ("111111", "c%2F..", "x.vhd"),
        ("111111", "c", "../AUTH_222222/c/x.vhd"),
        ("111111", "c", "%2E%2E/%2E%2E/AUTH_222222/c/x"),
        ("111111", "c", "x\0.vhd"),
        ("111111", "c", &"o".repeat(1025)),
        ("111111", &"c".repeat(257), "x"),
        ("111111/../AUTH_222222", "c", "x"),
        ("222222%2F", "c", "x"),
        ("", "c", "x"),
    ] {
        let kinds = [
            store
                .object_len(tenant, container, object)
                .unwrap_err()
                .kind(),
            store.open(tenant, container, object).err().unwrap().kind(),
            store
                .read_range(tenant, container, object, 0, 10)
                .unwrap_err()
                .kind(),
            store
                .create(tenant, container, object, &&b"x"[..])
                .unwrap_err()
                .kind(),
        ];
        assert!(
            kinds.iter().all(|k| *k == io::ErrorKind::InvalidInput),
            "{tenant} {container} {object}"
        );
    }
    // An object name that fits but whose segment names would not.
    let long = "o".repeat(1020);
    assert_eq!(
        store
            .create("111111", "c", &long, &&b"x"[..])
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    assert!(mock.seen().is_empty(), "{:?}", mock.requests());
}

#[test]
fn each_tenant_is_addressed_in_its_own_account_with_the_service_token() {
    let mock =
        Mock::start(|_, _| Reply::Full(200, vec![("Content-Length", "7".into())], Vec::new()));
    let store = mock.store(|config| config.reseller_prefix = "MossoCloudFS_".into());
    assert_eq!(
        store.object_len("111111", "my c", "d/x y.vhd").unwrap(),
        Some(7)
    );
    let seen = mock.seen();
    assert_eq!(seen[0].target, "/auth/v1.0");
    assert_eq!(seen[0].header("X-Auth-User"), Some("imgshare:service"));
    assert_eq!(
        seen[1].target,
        "/v1/MossoCloudFS_111111/my%20c/d/x%20y.vhd?multipart-manifest=get"
    );
    assert_eq!(seen[1].header("X-Auth-Token"), Some("tok-1"));
}

#[test]
fn an_expired_token_is_renewed_once() {
    let mock = Mock::start(|request, _| match request.header("X-Auth-Token") {
        Some("tok-1") => ok(401),
        _ => Reply::Full(200, vec![("Content-Length", "5".into())], Vec::new()),
    });
    let store = mock.store(|_| {});
    assert_eq!(store.object_len("111111", "c", "x").unwrap(), Some(5));
    assert_eq!(store.object_len("111111", "c", "x").unwrap(), Some(5));
    let auths = mock
        .seen()
        .iter()
        .filter(|s| s.target.starts_with("/auth/"))
        .count();
    assert_eq!(
        auths,
        2,
        "one token, then one renewal: {:?}",
        mock.requests()
    );

    let refused = Mock::start(|_, _| ok(401));
    let store = refused.store(|_| {});
    let error = store.object_len("111111", "c", "x").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
    let auths = refused
        .seen()
        .iter()
        .filter(|s| s.target.starts_with("/auth/"))
        .count();
    assert_eq!(auths, 2, "renewed once, not in a loop");
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let mock = Mock::start(|_, earlier| {
        if earlier < 2 {
            ok(503)
        } else {
            Reply::Full(200, vec![("Content-Length", "3".into())], Vec::new())
        }
    });
    let store = mock.store(|_| {});
    assert_eq!(store.object_len("111111", "c", "x").unwrap(), Some(3));

    let down = Mock::start(|_, _| ok(500));
    let store = down.store(|config| config.retries = 3);
    let error = store.container_exists("111111", "c").unwrap_err();
    let reason = StoreUnavailable::of(&error).expect("reported as unavailable");
    assert!(
        reason.0.contains("HTTP 500") && reason.0.contains("4 attempts"),
        "{reason}"
    );
    assert_eq!(down.seen().iter().filter(|s| s.method == "HEAD").count(), 4);
}

fn object_bytes() -> Vec<u8> {
    (0..10_000u32).map(|i| (i % 251) as u8).collect()
}

/// Serves `object_bytes` at any path, honouring `Range: bytes=N-`; `first` answers the first GET.
fn ranged(first: impl Fn(&[u8]) -> Reply + Send + Sync + 'static) -> Mock {
    Mock::start(move |request, _| {
        let bytes = object_bytes();
        let etag = ("Etag", "\"abc\"".to_owned());
        match request.header("Range") {
            None => first(&bytes),
            Some(range) => {
                let start: usize = range["bytes=".len()..]
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                Reply::Full(206, vec![etag], bytes[start..].to_vec())
            }
        }
    })
}

#[test]
fn a_download_cut_short_resumes_where_it_stopped() {
    let mock = ranged(|bytes| {
        Reply::Cut(
            200,
            vec![("Etag", "\"abc\"".into())],
            10_000,
            bytes[..4_000].to_vec(),
        )
    });
    let store = mock.store(|_| {});
    let mut got = Vec::new();
    store
        .open("111111", "c", "x")
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, object_bytes());
    let ranges: Vec<_> = mock
        .seen()
        .iter()
        .filter_map(|s| s.header("Range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, ["bytes=4000-"]);
}

#[test]
fn a_download_that_stalls_times_out_and_resumes() {
    let mock = ranged(|bytes| {
        Reply::Stall(
            200,
            vec![("Etag", "\"abc\"".into())],
            10_000,
            bytes[..1_000].to_vec(),
        )
    });
    let store = mock.store(|config| config.timeout = Duration::from_millis(200));
    let mut got = Vec::new();
    store
        .open("111111", "c", "x")
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, object_bytes());
}

#[test]
fn a_download_that_keeps_breaking_fails_as_unavailable() {
    let mock = Mock::start(|request, _| {
        let status = if request.header("Range").is_some() {
            206
        } else {
            200
        };
        Reply::Cut(status, vec![("Etag", "\"abc\"".into())], 100, vec![1; 10])
    });
    let store = mock.store(|_| {});
    let mut reader = store.open("111111", "c", "x").unwrap();
    let error = io::copy(&mut reader, &mut io::sink()).unwrap_err();
    assert!(StoreUnavailable::of(&error).is_some(), "{error}");
}

#[test]
fn a_resumed_download_of_a_changed_object_is_refused() {
    let mock = Mock::start(|request, _| match request.header("Range") {
        None => Reply::Cut(200, vec![("Etag", "\"v1\"".into())], 100, vec![1; 10]),
        Some(_) => Reply::Full(206, vec![("Etag", "\"v2\"".into())], vec![2; 90]),
    });
    let store = mock.store(|_| {});
    let mut reader = store.open("111111", "c", "x").unwrap();
    let error = io::copy(&mut reader, &mut io::sink()).unwrap_err();
    assert!(error.to_string().contains("changed"), "{error}");
}

#[test]
fn a_dlo_manifest_naming_another_account_is_refused_before_reading() {
    for header in [
        "..%2FAUTH_222222%2Fsegs/x",
        "../AUTH_222222/segs/x",
        "%2E%2E/AUTH_222222",
    ] {
        let mock = Mock::start(move |_, _| {
            Reply::Full(
                200,
                vec![
                    ("X-Object-Manifest", header.to_owned()),
                    ("Content-Length", "0".into()),
                ],
                Vec::new(),
            )
        });
        let store = mock.store(|_| {});
        let error = store.object_len("111111", "c", "x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{header}");
        assert!(
            mock.seen()
                .iter()
                .all(|s| s.method != "GET" || s.target.starts_with("/auth/")),
            "{:?}",
            mock.requests()
        );
    }
}

#[test]
fn a_dlo_length_is_the_sum_of_its_listed_segments() {
    let mock = Mock::start(|request, _| {
        if request.method == "HEAD" {
            return Reply::Full(
                200,
                vec![("X-Object-Manifest", "segs/x-".into())],
                Vec::new(),
            );
        }
        if request.target.contains("marker=&") || request.target.ends_with("marker=") {
            let page = r#"[{"name":"x-00001","bytes":100},{"name":"x-00002","bytes":23}]"#;
            return Reply::Full(200, Vec::new(), page.as_bytes().to_vec());
        }
        ok(204)
    });
    let store = mock.store(|_| {});
    assert_eq!(store.object_len("111111", "c", "x").unwrap(), Some(123));
    assert!(
        mock.requests()[2].starts_with("GET /v1/AUTH_111111/segs?format=json&prefix=x-&marker=")
    );
}

#[test]
fn a_dlo_that_is_its_own_segment_has_no_length() {
    let mock =
        Mock::start(|_, _| Reply::Full(200, vec![("X-Object-Manifest", "c/x".into())], Vec::new()));
    let store = mock.store(|_| {});
    assert_eq!(
        store.object_len("111111", "c", "x.vhd").unwrap(),
        Some(UNBOUNDED)
    );
}

fn slo(manifest: &'static str) -> Mock {
    Mock::start(move |request, _| match request.method.as_str() {
        "HEAD" => Reply::Full(
            200,
            vec![("X-Static-Large-Object", "True".into())],
            Vec::new(),
        ),
        _ => Reply::Full(200, Vec::new(), manifest.as_bytes().to_vec()),
    })
}

#[test]
fn slo_manifests_are_summed_and_checked() {
    let mock =
        slo(r#"[{"name":"/segs/a","bytes":1048576},{"name":"/segs/b","bytes":5,"hash":"x"}]"#);
    assert_eq!(
        mock.store(|_| {}).object_len("111111", "c", "x").unwrap(),
        Some(1_048_581)
    );

    let outside =
        slo(r#"[{"name":"/segs/a","bytes":1},{"name":"/../AUTH_222222/segs/b","bytes":5}]"#);
    let error = outside
        .store(|_| {})
        .object_len("111111", "c", "x")
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);

    // Every nested SLO answers with this same listing: a loop.
    let looping = slo(r#"[{"name":"/c/x","bytes":0,"sub_slo":true}]"#);
    assert_eq!(
        looping
            .store(|_| {})
            .object_len("111111", "c", "x")
            .unwrap(),
        Some(UNBOUNDED)
    );
    let deep = slo(r#"[{"name":"/c/y","bytes":0,"sub_slo":true}]"#);
    assert_eq!(
        deep.store(|_| {}).object_len("111111", "c", "x").unwrap(),
        Some(UNBOUNDED)
    );
}

/// Answers an export: container there, object not, segments stored with their md5 as Etag.
fn export_target(fail_segment: Option<&'static str>) -> Mock {
    Mock::start(move |request, _| match request.method.as_str() {
        "HEAD" if request.target.ends_with("/c") => ok(204),
        "HEAD" => ok(404),
        "PUT" if fail_segment.is_some_and(|s| request.target.ends_with(s)) => ok(503),
        "PUT" => Reply::Full(201, vec![("Etag", md5_hex(&request.body))], Vec::new()),
        "DELETE" => ok(204),
        _ => ok(400),
    })
}

#[test]
fn an_export_writes_segments_then_the_manifest() {
    let mock = export_target(None);
    let store = mock.store(|config| config.segment_size = 4);
    let data = b"0123456789".to_vec();
    assert_eq!(
        store.create("111111", "c", "img.vhd", &&data[..]).unwrap(),
        10
    );
    let puts: Vec<_> = mock
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect();
    let targets: Vec<_> = puts.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/v1/AUTH_111111/c/img.vhd-00001",
            "/v1/AUTH_111111/c/img.vhd-00002",
            "/v1/AUTH_111111/c/img.vhd-00003",
            "/v1/AUTH_111111/c/img.vhd"
        ]
    );
    assert_eq!(puts[2].body, b"89");
    assert_eq!(puts[3].header("X-Object-Manifest"), Some("c/img.vhd-"));
    assert_eq!(puts[3].header("If-None-Match"), Some("*"));
    assert!(puts[3].body.is_empty());
}

#[test]
fn a_failed_export_removes_its_segments_and_writes_no_manifest() {
    let mock = export_target(Some("-00002"));
    let store = mock.store(|config| config.segment_size = 4);
    let error = store
        .create("111111", "c", "img.vhd", &&b"0123456789"[..])
        .unwrap_err();
    assert!(StoreUnavailable::of(&error).is_some(), "{error}");
    let requests = mock.requests();
    assert!(
        !requests.contains(&"PUT /v1/AUTH_111111/c/img.vhd".to_owned()),
        "{requests:?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("PUT /v1/AUTH_111111/c/img.vhd-00002"))
            .count(),
        3,
        "first try and two retries"
    );
    for segment in ["00001", "00002"] {
        assert!(
            requests.contains(&format!("DELETE /v1/AUTH_111111/c/img.vhd-{segment}")),
            "{requests:?}"
        );
    }
}

#[test]
fn a_damaged_segment_is_sent_again() {
    let mock = Mock::start(|request, earlier| match request.method.as_str() {
        "HEAD" if request.target.ends_with("/c") => ok(204),
        "HEAD" => ok(404),
        "PUT" if earlier == 0 && request.target.ends_with("-00001") => {
            Reply::Full(201, vec![("Etag", "0".repeat(32))], Vec::new())
        }
        "PUT" => Reply::Full(201, vec![("Etag", md5_hex(&request.body))], Vec::new()),
        _ => ok(400),
    });
    let store = mock.store(|_| {});
    store
        .create("111111", "c", "img.vhd", &&b"abc"[..])
        .unwrap();
    let segment_puts = mock
        .requests()
        .iter()
        .filter(|r| r.ends_with("-00001"))
        .count();
    assert_eq!(segment_puts, 2);
}

#[test]
fn an_existing_object_or_a_missing_container_writes_nothing() {
    let exists = Mock::start(|_, _| ok(200));
    let error = exists
        .store(|_| {})
        .create("111111", "c", "img.vhd", &&b"abc"[..])
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    assert!(exists.seen().iter().all(|s| s.method != "PUT"));

    let missing = Mock::start(|_, _| ok(404));
    let error = missing
        .store(|_| {})
        .create("111111", "c", "img.vhd", &&b"abc"[..])
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
    assert!(missing.seen().iter().all(|s| s.method != "PUT"));
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let auth = SwiftAuth {
        auth_url: "http://127.0.0.1:1/auth/v1.0".into(),
        user: "u:s".into(),
        key: "k".into(),
    };
    let base = SwiftConfig::new("http://127.0.0.1:1/v1", auth);
    assert!(SwiftObjectStore::new(base.clone()).is_ok());
    for config in [
        SwiftConfig {
            storage_url: "ftp://x/v1".into(),
            ..base.clone()
        },
        SwiftConfig {
            segment_size: 0,
            ..base.clone()
        },
        SwiftConfig {
            segment_size: MAX_SEGMENT_SIZE + 1,
            ..base.clone()
        },
        SwiftConfig {
            reseller_prefix: "AUTH/".into(),
            ..base.clone()
        },
    ] {
        assert!(SwiftObjectStore::new(config).is_err());
    }
    assert!(
        !format!("{base:?}").contains("\"k\""),
        "the key is never printed"
    );
}
