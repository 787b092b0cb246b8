//! HTTP to Swift: the service token (tempauth v1.0), one request with its retries, and a
//! streaming object reader that resumes where a broken transfer stopped.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use crate::objects::StoreUnavailable;

use super::SwiftConfig;

/// How one attempt ended, when it did not end with an answer the caller reads.
pub(crate) enum Failure {
    /// 401: the service token expired or was revoked.
    Unauthorized,
    /// 5xx, 408, 429, a timeout or a broken connection: worth another attempt.
    Transient(String),
    /// Anything else that is not worth repeating.
    Fatal(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Fatal(error)
    }
}

/// An answer, or why there was none. 4xx other than 401, 408 and 429 are answers: the caller
/// decides what 404 or 412 mean.
pub(crate) fn classify(
    result: Result<ureq::Response, ureq::Error>,
) -> Result<ureq::Response, Failure> {
    match result {
        Ok(response) => Ok(response),
        Err(ureq::Error::Status(401, _)) => Err(Failure::Unauthorized),
        Err(ureq::Error::Status(status, response))
            if status >= 500 || status == 408 || status == 429 =>
        {
            Err(Failure::Transient(format!(
                "HTTP {status} from {}",
                response.get_url()
            )))
        }
        Err(ureq::Error::Status(_, response)) => Ok(response),
        Err(ureq::Error::Transport(transport)) => Err(Failure::Transient(transport.to_string())),
    }
}

/// The Swift connection of one region: an HTTP agent, the service credentials and the token.
pub(crate) struct Client {
    agent: ureq::Agent,
    config: SwiftConfig,
    token: Mutex<Option<String>>,
}

impl Client {
    pub(crate) fn new(config: SwiftConfig) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.timeout)
            .timeout_read(config.timeout)
            .timeout_write(config.timeout)
            .redirects(0)
            .build();
        Client {
            agent,
            config,
            token: Mutex::new(None),
        }
    }

    pub(crate) fn config(&self) -> &SwiftConfig {
        &self.config
    }

    pub(crate) fn request(&self, method: &str, url: &str, token: &str) -> ureq::Request {
        self.agent.request(method, url).set("X-Auth-Token", token)
    }

    /// The cached token, or a new one from the auth endpoint.
    fn token(&self) -> Result<String, Failure> {
        let mut cached = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let auth = &self.config.auth;
        let response = classify(
            self.agent
                .get(&auth.auth_url)
                .set("X-Auth-User", &auth.user)
                .set("X-Auth-Key", &auth.key)
                .call(),
        );
        let response = match response {
            Ok(response) => response,
            Err(Failure::Unauthorized) => {
                return Err(Failure::Fatal(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "Swift refused the service credentials",
                )))
            }
            Err(other) => return Err(other),
        };
        let token = response
            .header("X-Auth-Token")
            .or_else(|| response.header("X-Storage-Token"))
            .filter(|_| (200..300).contains(&response.status()))
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::Transient(format!(
                    "the auth endpoint answered {} without a token",
                    response.status()
                ))
            })?;
        *cached = Some(token.clone());
        Ok(token)
    }

    fn forget_token(&self, token: &str) {
        let mut cached = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.as_deref() == Some(token) {
            *cached = None;
        }
    }

    /// Runs `attempt` with the service token until it answers: a 401 gets one new token (and
    /// one more attempt); a transient failure is tried again after a pause that doubles each
    /// time, at most `retries` times; then the store is unavailable.
    pub(crate) fn with_retries<T>(
        &self,
        what: &str,
        mut attempt: impl FnMut(&str) -> Result<T, Failure>,
    ) -> io::Result<T> {
        let mut reauthenticated = false;
        let mut failures = 0;
        loop {
            let result = self.token().and_then(|token| {
                attempt(&token).map_err(|failure| {
                    if matches!(failure, Failure::Unauthorized) {
                        self.forget_token(&token);
                    }
                    failure
                })
            });
            match result {
                Ok(value) => return Ok(value),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Unauthorized) if !reauthenticated => reauthenticated = true,
                Err(Failure::Unauthorized) => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("{what}: Swift refused a fresh service token"),
                    ))
                }
                Err(Failure::Transient(reason)) => {
                    if failures >= self.config.retries {
                        return Err(StoreUnavailable(format!(
                            "{what}: {reason} (after {} attempts)",
                            failures + 1
                        ))
                        .into_io());
                    }
                    self.pause(failures);
                    failures += 1;
                }
            }
        }
    }

    /// The pause before retry number `failures` + 1: `backoff`, then twice as long each time.
    pub(crate) fn pause(&self, failures: u32) {
        thread::sleep(self.config.backoff.saturating_mul(1 << failures.min(10)));
    }
}

/// A streaming GET of an object (or a byte range of it). When the transfer breaks (a timeout, a
/// reset, a short body), it asks again from the byte it got to with a `Range` request, at most
/// `retries` times over the whole read, and refuses to mix two versions of the object (the
/// `Etag` of every answer must be the first one's).
pub(crate) struct ObjectReader {
    client: Arc<Client>,
    url: String,
    position: u64,
    /// The last byte wanted (inclusive), for a range read.
    last: Option<u64>,
    etag: Option<String>,
    body: Option<Box<dyn Read + Send + Sync>>,
    failures: u32,
    done: bool,
}

impl ObjectReader {
    /// Opens the object at `url` from `first` to `last` (inclusive; `None`: to the end). The first
    /// request is made here, so a missing object is `NotFound` at once.
    pub(crate) fn open(
        client: Arc<Client>,
        url: String,
        first: u64,
        last: Option<u64>,
    ) -> io::Result<Self> {
        let mut reader = ObjectReader {
            client,
            url,
            position: first,
            last,
            etag: None,
            body: None,
            failures: 0,
            done: false,
        };
        reader.connect()?;
        Ok(reader)
    }

    fn connect(&mut self) -> io::Result<()> {
        let range = match (self.position, self.last) {
            (0, None) => None,
            (first, None) => Some(format!("bytes={first}-")),
            (first, Some(last)) => Some(format!("bytes={first}-{last}")),
        };
        let client = Arc::clone(&self.client);
        let response = client.with_retries("reading the object", |token| {
            let mut request = client.request("GET", &self.url, token);
            if let Some(range) = &range {
                request = request.set("Range", range);
            }
            classify(request.call())
        })?;
        match response.status() {
            200 | 206 => {}
            404 => return Err(io::ErrorKind::NotFound.into()),
            416 => {
                // Asked from past the end: nothing (more) to read.
                self.done = true;
                return Ok(());
            }
            status => {
                return Err(io::Error::other(format!(
                    "Swift answered {status} to a GET of the object"
                )))
            }
        }
        if response.status() == 200 && self.position > 0 {
            return Err(io::Error::other("Swift ignored the Range of a resumed GET"));
        }
        let etag = response.header("Etag").map(str::to_owned);
        match (&self.etag, &etag) {
            (Some(first), Some(now)) if first != now => {
                return Err(io::Error::other("the object changed during the transfer"))
            }
            (None, _) => self.etag = etag,
            _ => {}
        }
        self.body = Some(response.into_reader());
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if self.last.is_some_and(|last| self.position > last) {
                return Ok(0);
            }
            if self.body.is_none() {
                self.connect()?;
                continue;
            }
            let result = match self.body.as_mut() {
                Some(body) => body.read(buf),
                None => continue,
            };
            match result {
                Ok(0) => {
                    self.done = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.position += n as u64;
                    return Ok(n);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.body = None;
                    if self.failures >= self.client.config().retries {
                        return Err(StoreUnavailable(format!(
                            "reading the object broke off at byte {} ({error}) after {} attempts",
                            self.position,
                            self.failures + 1
                        ))
                        .into_io());
                    }
                    self.client.pause(self.failures);
                    self.failures += 1;
                }
            }
        }
    }
}

/// Reads a small body whole (a manifest listing, a container listing), refusing one over
/// `limit` bytes.
pub(crate) fn read_small(response: ureq::Response, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a listing from Swift is larger than allowed",
        ));
    }
    Ok(bytes)
}
