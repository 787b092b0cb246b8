//! The object store port over OpenStack Swift / Rackspace Cloud Files.
//!
//! One [`SwiftObjectStore`] serves one region. It authenticates as a service user with
//! reseller-admin rights (tempauth v1.0: `GET <auth_url>` with `X-Auth-User`/`X-Auth-Key`) and
//! addresses each tenant's own account, `<storage_url>/<reseller_prefix><tenant>`: the tenant
//! never gives imgshare its password, and an account name is built only from the task's owner,
//! never from the task's input. Names are checked before any request (`names`), manifests
//! before their bytes are read (`manifest`).
//!
//! Reading streams (`client::ObjectReader`, resumed with `Range` after a broken transfer).
//! Writing follows the Rackspace export layout (`docs/spec/cloud-files.md` §5): a Dynamic Large Object of
//! segments `<object>-00001`, `-00002`, … of `segment_size` bytes in the same container, then
//! the 0-byte manifest `<object>` with `X-Object-Manifest: <container>/<object>-`, created with
//! `If-None-Match: *`. The manifest is written last, so no reader ever sees a partial object;
//! when a segment cannot be written the segments already written are deleted. A process that
//! stops mid-export leaves segments but no manifest; running the export again rewrites the same
//! segment names, so nothing is left over.

mod client;
mod manifest;
mod names;

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};

use crate::objects::{ObjectSource, ObjectStore};
use client::{classify, read_small, Client, Failure, ObjectReader};
pub use manifest::UNBOUNDED;
use manifest::{ListedObject, Walk};
use names::{check_container, check_object, check_tenant, encode, encode_object};

/// Segment size of an export when none is configured: 1,048,576,000 bytes, as in the exports
/// Rackspace documents (`docs/spec/cloud-files.md` §5).
pub const DEFAULT_SEGMENT_SIZE: u64 = 1_048_576_000;
/// The largest single object imgshare writes (5 GiB; Swift's limit is 2 bytes more).
pub const MAX_SEGMENT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The service credential (tempauth v1.0 or any auth endpoint speaking it).
#[derive(Clone)]
pub struct SwiftAuth {
    /// e.g. `http://127.0.0.1:8080/auth/v1.0`.
    pub auth_url: String,
    /// `<account>:<user>` of a user in the reseller-admin group.
    pub user: String,
    /// The user's key (never shown by `Debug`).
    pub key: String,
}

impl fmt::Debug for SwiftAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftAuth")
            .field("auth_url", &self.auth_url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A region's Swift.
#[derive(Debug, Clone)]
pub struct SwiftConfig {
    /// The storage endpoint without the account: `http://127.0.0.1:8080/v1`.
    pub storage_url: String,
    /// The service credential the worker authenticates with.
    pub auth: SwiftAuth,
    /// Prepended to the tenant id to name its account (`AUTH_` for tempauth and keystoneauth,
    /// `MossoCloudFS_` on Rackspace).
    pub reseller_prefix: String,
    /// Bytes per export segment.
    pub segment_size: u64,
    /// Further attempts after a transient failure (5xx, timeout, broken connection).
    pub retries: u32,
    /// Pause before the first retry; each further one waits twice as long.
    pub backoff: Duration,
    /// Connect, read and write timeout of each request.
    pub timeout: Duration,
}

impl SwiftConfig {
    /// A configuration with the defaults: prefix `AUTH_`, 1,048,576,000-byte segments, 4 retries
    /// from 500 ms, 30 s timeouts.
    pub fn new(storage_url: impl Into<String>, auth: SwiftAuth) -> Self {
        SwiftConfig {
            storage_url: storage_url.into(),
            auth,
            reseller_prefix: "AUTH_".to_owned(),
            segment_size: DEFAULT_SEGMENT_SIZE,
            retries: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SwiftConfigError {
    /// A URL with a scheme this build cannot speak.
    #[error("the Swift URL {0:?} must start with http:// (https:// needs the `tls` feature)")]
    Scheme(String),
    /// A segment size Swift would refuse.
    #[error("the segment size must be between 1 byte and 5 GiB, not {0}")]
    SegmentSize(u64),
    /// A reseller prefix that cannot start an account name.
    #[error("the reseller prefix {0:?} may hold only ASCII letters, digits and '_'")]
    Prefix(String),
}

/// Swift as the task worker's object store (see the module docs).
#[derive(Clone)]
pub struct SwiftObjectStore {
    client: Arc<Client>,
}

impl fmt::Debug for SwiftObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.client.config();
        f.debug_struct("SwiftObjectStore")
            .field("storage_url", &config.storage_url)
            .field("reseller_prefix", &config.reseller_prefix)
            .finish_non_exhaustive()
    }
}

fn check_url(url: &str) -> Result<(), SwiftConfigError> {
    let https = cfg!(feature = "tls") && url.starts_with("https://");
    if url.starts_with("http://") || https {
        Ok(())
    } else {
        Err(SwiftConfigError::Scheme(url.to_owned()))
    }
}

impl SwiftObjectStore {
    /// Checks `config` (URL schemes, segment size, reseller prefix) and builds the store; no
    /// request is made until a task needs one.
    pub fn new(mut config: SwiftConfig) -> Result<Self, SwiftConfigError> {
        check_url(&config.storage_url)?;
        check_url(&config.auth.auth_url)?;
        if config.segment_size == 0 || config.segment_size > MAX_SEGMENT_SIZE {
            return Err(SwiftConfigError::SegmentSize(config.segment_size));
        }
        let prefix = &config.reseller_prefix;
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(SwiftConfigError::Prefix(prefix.clone()));
        }
        config.storage_url = config.storage_url.trim_end_matches('/').to_owned();
        Ok(SwiftObjectStore {
            client: Arc::new(Client::new(config)),
        })
    }

    fn account_url(&self, tenant: &str) -> io::Result<String> {
        check_tenant(tenant)?;
        let config = self.client.config();
        Ok(format!(
            "{}/{}",
            config.storage_url,
            encode(&format!("{}{tenant}", config.reseller_prefix))
        ))
    }

    fn container_url(&self, tenant: &str, container: &str) -> io::Result<String> {
        check_container(container)?;
        Ok(format!(
            "{}/{}",
            self.account_url(tenant)?,
            encode(container)
        ))
    }

    fn object_url(&self, tenant: &str, container: &str, object: &str) -> io::Result<String> {
        check_object(object)?;
        Ok(format!(
            "{}/{}",
            self.container_url(tenant, container)?,
            encode_object(object)
        ))
    }

    /// One request without a body, with retries and token renewal.
    fn call(
        &self,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<ureq::Response> {
        self.client.with_retries(what, |token| {
            let mut request = self.client.request(method, url, token);
            for (name, value) in headers {
                request = request.set(name, value);
            }
            classify(request.call())
        })
    }

    /// HEAD of an object as stored (a manifest's own headers, not its segments'), or `None`.
    fn head_object(&self, url: &str) -> io::Result<Option<ureq::Response>> {
        let url = format!("{url}?multipart-manifest=get");
        let response = self.call("HEAD of the object", "HEAD", &url, &[])?;
        match response.status() {
            200..=299 => Ok(Some(response)),
            404 => Ok(None),
            status => Err(io::Error::other(format!(
                "Swift answered {status} to a HEAD"
            ))),
        }
    }

    /// The length of the object named, after checking what its manifest (if any) points to.
    fn checked_len(
        &self,
        tenant: &str,
        container: &str,
        object: &str,
        walk: &mut Walk,
        depth: usize,
    ) -> io::Result<Option<u64>> {
        let url = self.object_url(tenant, container, object)?;
        let Some(head) = self.head_object(&url)? else {
            return Ok(None);
        };
        let slo = head
            .header("X-Static-Large-Object")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if slo {
            return self
                .slo_len(tenant, container, object, walk, depth)
                .map(Some);
        }
        if let Some(dlo) = head.header("X-Object-Manifest") {
            let (segments, prefix) = manifest::parse_dlo(dlo)?;
            if segments == container && object.starts_with(&prefix) {
                // The manifest is one of its own segments: Swift would serve it in a loop's
                // stead; there is no length to give.
                return Ok(Some(UNBOUNDED));
            }
            return self.dlo_len(tenant, &segments, &prefix).map(Some);
        }
        let len = head
            .header("Content-Length")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| io::Error::other("Swift gave no Content-Length"))?;
        Ok(Some(len))
    }

    fn slo_len(
        &self,
        tenant: &str,
        container: &str,
        object: &str,
        walk: &mut Walk,
        depth: usize,
    ) -> io::Result<u64> {
        if depth >= manifest::MAX_SLO_DEPTH
            || !walk.seen.insert((container.to_owned(), object.to_owned()))
        {
            return Ok(UNBOUNDED);
        }
        let url = format!(
            "{}?multipart-manifest=get",
            self.object_url(tenant, container, object)?
        );
        let response = self.call("reading the SLO manifest", "GET", &url, &[])?;
        if response.status() == 404 {
            return Err(io::ErrorKind::NotFound.into());
        }
        let entries =
            manifest::parse_slo(&read_small(response, manifest::MAX_SLO_MANIFEST_BYTES)?)?;
        // Check every name before following any.
        let segments = entries
            .iter()
            .map(|entry| entry.segment())
            .collect::<io::Result<Vec<_>>>()?;
        let mut total: u64 = 0;
        for (entry, (segment_container, segment)) in entries.iter().zip(segments) {
            let len = if entry.sub_slo {
                self.slo_len(tenant, &segment_container, &segment, walk, depth + 1)?
            } else {
                entry.len()
            };
            total = total.saturating_add(len);
        }
        walk.seen.remove(&(container.to_owned(), object.to_owned()));
        Ok(total)
    }

    /// The sum of a DLO's segments, from listings of its container (the length Swift gives the
    /// manifest), or [`UNBOUNDED`] past [`manifest::MAX_DLO_SEGMENTS`].
    fn dlo_len(&self, tenant: &str, container: &str, prefix: &str) -> io::Result<u64> {
        let base = self.container_url(tenant, container)?;
        let mut total: u64 = 0;
        let mut count = 0;
        let mut marker = String::new();
        loop {
            let url = format!(
                "{base}?format=json&prefix={}&marker={}",
                encode(prefix),
                encode(&marker)
            );
            let response = self.call("listing the DLO segments", "GET", &url, &[])?;
            let page: Vec<ListedObject> = match response.status() {
                204 | 404 => Vec::new(),
                200 => serde_json::from_slice(&read_small(response, manifest::LISTING_PAGE_BYTES)?)
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?,
                status => {
                    return Err(io::Error::other(format!(
                        "Swift answered {status} to a listing"
                    )))
                }
            };
            let Some(last) = page.last() else {
                return Ok(total);
            };
            marker = last.name.clone();
            count += page.len();
            if count > manifest::MAX_DLO_SEGMENTS {
                return Ok(UNBOUNDED);
            }
            total = page
                .iter()
                .fold(total, |sum, o| sum.saturating_add(o.bytes));
        }
    }

    fn segment_name(object: &str, index: u64) -> String {
        format!("{object}-{index:05}")
    }

    /// PUTs one segment from `source`, verifying Swift's `Etag` against the md5 of what was
    /// sent; a transient failure sends the segment again from its start.
    fn put_segment(
        &self,
        url: &str,
        source: &dyn ObjectSource,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.client.with_retries("writing a segment", |token| {
            let mut hashing = Md5Reader {
                inner: source.open_at(offset)?.take(len),
                md5: Md5::new(),
                sent: 0,
            };
            let result = self
                .client
                .request("PUT", url, token)
                .set("Content-Length", &len.to_string())
                .set("Content-Type", "application/octet-stream")
                .send(&mut hashing);
            let response = classify(result)?;
            match response.status() {
                201 => {}
                404 => return Err(Failure::Fatal(io::ErrorKind::NotFound.into())),
                status => {
                    return Err(Failure::Fatal(io::Error::other(format!(
                        "Swift answered {status} to a segment PUT"
                    ))))
                }
            }
            let md5 = hex::encode(hashing.md5.finalize());
            let etag = response.header("Etag").unwrap_or("").trim_matches('"');
            if hashing.sent != len || !etag.eq_ignore_ascii_case(&md5) {
                return Err(Failure::Transient(
                    "a segment arrived damaged (its Etag is not the md5 sent)".to_owned(),
                ));
            }
            Ok(())
        })
    }

    fn delete_segments(&self, container_url: &str, object: &str, count: u64) {
        for index in 1..=count {
            let url = format!(
                "{container_url}/{}",
                encode_object(&Self::segment_name(object, index))
            );
            // Best effort: a segment that stays is not part of any object.
            let _ = self.call("deleting a segment", "DELETE", &url, &[]);
        }
    }
}

struct Md5Reader<R> {
    inner: R,
    md5: Md5,
    sent: u64,
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.sent += n as u64;
        Ok(n)
    }
}

impl ObjectStore for SwiftObjectStore {
    fn container_exists(&self, account: &str, container: &str) -> io::Result<bool> {
        let url = self.container_url(account, container)?;
        let response = self.call("HEAD of the container", "HEAD", &url, &[])?;
        match response.status() {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => Err(io::Error::other(format!(
                "Swift answered {status} to a HEAD"
            ))),
        }
    }

    fn object_len(&self, account: &str, container: &str, object: &str) -> io::Result<Option<u64>> {
        self.checked_len(account, container, object, &mut Walk::default(), 0)
    }

    fn read_range(
        &self,
        account: &str,
        container: &str,
        object: &str,
        offset: u64,
        len: usize,
    ) -> io::Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let url = self.object_url(account, container, object)?;
        let last = offset.saturating_add(len as u64 - 1);
        let reader = ObjectReader::open(Arc::clone(&self.client), url, offset, Some(last))?;
        let mut bytes = Vec::with_capacity(len);
        reader.take(len as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn open(
        &self,
        account: &str,
        container: &str,
        object: &str,
    ) -> io::Result<Box<dyn Read + Send>> {
        let url = self.object_url(account, container, object)?;
        Ok(Box::new(ObjectReader::open(
            Arc::clone(&self.client),
            url,
            0,
            None,
        )?))
    }

    fn create(
        &self,
        account: &str,
        container: &str,
        object: &str,
        data: &dyn ObjectSource,
    ) -> io::Result<u64> {
        let segment_size = self.client.config().segment_size;
        let manifest_url = self.object_url(account, container, object)?;
        // The segment names must be valid object names too (they are 6 bytes longer).
        check_object(&Self::segment_name(object, 1))?;
        let container_url = self.container_url(account, container)?;
        if !self.container_exists(account, container)? {
            return Err(io::ErrorKind::NotFound.into());
        }
        if self.head_object(&manifest_url)?.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let total = data.len();
        let count = total.div_ceil(segment_size).max(1);
        for index in 1..=count {
            let offset = (index - 1) * segment_size;
            let len = segment_size.min(total - offset);
            let url = format!(
                "{container_url}/{}",
                encode_object(&Self::segment_name(object, index))
            );
            if let Err(error) = self.put_segment(&url, data, offset, len) {
                self.delete_segments(&container_url, object, index);
                return Err(error);
            }
        }
        let value = format!("{}/{}", encode(container), encode(&format!("{object}-")));
        let response = self.client.with_retries("writing the manifest", |token| {
            classify(
                self.client
                    .request("PUT", &manifest_url, token)
                    .set("X-Object-Manifest", &value)
                    .set("If-None-Match", "*")
                    .set("Content-Type", "application/octet-stream")
                    .send_bytes(&[]),
            )
        });
        match response.map(|response| response.status()) {
            Ok(201) => Ok(total),
            // Another export of the same image won the race; the segments are its too.
            Ok(412) => Err(io::ErrorKind::AlreadyExists.into()),
            Ok(status) => {
                self.delete_segments(&container_url, object, count);
                Err(io::Error::other(format!(
                    "Swift answered {status} to the manifest PUT"
                )))
            }
            Err(error) => {
                self.delete_segments(&container_url, object, count);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests;
