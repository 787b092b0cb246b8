//! Server-side sessions: the browser holds a random id in an `HttpOnly`, `SameSite=Strict`
//! cookie; the token, its expiry and the session's CSRF token stay here. A session ends with its
//! token (the identity's expiry), at logout, or when the API stops accepting the token.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};

use crate::login::LoginGrant;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "imgshare_console";
/// The cookie that carries the login form's CSRF token before there is a session.
pub(crate) const LOGIN_COOKIE: &str = "imgshare_console_login";
/// Live sessions kept at most; the oldest-expiring is dropped beyond (a bound on memory, not a
/// feature: tokens last hours, so this is only reached under a flood of logins).
const MAX_SESSIONS: usize = 10_000;

/// A message shown once, on the next page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Flash {
    /// `ok`, `warn` or `error` (the CSS class and the ARIA role depend on it).
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl Flash {
    pub(crate) fn ok(message: impl Into<String>) -> Self {
        Flash {
            kind: "ok",
            message: message.into(),
        }
    }

    pub(crate) fn warn(message: impl Into<String>) -> Self {
        Flash {
            kind: "warn",
            message: message.into(),
        }
    }

    pub(crate) fn error(message: impl Into<String>) -> Self {
        Flash {
            kind: "error",
            message: message.into(),
        }
    }
}

/// One logged-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) grant: LoginGrant,
    /// Sent back in every state-changing form; compared in constant time.
    pub(crate) csrf: String,
    pub(crate) flash: Option<Flash>,
}

/// Why a request has no usable session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSession {
    /// No cookie, or an id this server does not know (e.g. after a restart).
    Missing,
    /// The token has expired.
    Expired,
}

/// Every live session.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `grant`; returns it (with its new id and CSRF token).
    pub(crate) fn start(
        &self,
        grant: LoginGrant,
        now: DateTime<Utc>,
    ) -> Result<Session, crate::ConsoleError> {
        let session = Session {
            id: random_id()?,
            grant,
            csrf: random_id()?,
            flash: None,
        };
        let mut map = self.lock();
        map.retain(|_, session| session.grant.expires > now);
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .values()
                .min_by_key(|session| session.grant.expires)
                .map(|session| session.id.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// The session of a request's cookie, if live at `now`; an expired one is removed.
    pub(crate) fn find(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Session, NoSession> {
        let id = cookie(headers, SESSION_COOKIE).ok_or(NoSession::Missing)?;
        let mut map = self.lock();
        let session = map.get(&id).ok_or(NoSession::Missing)?;
        if session.grant.expires <= now {
            map.remove(&id);
            return Err(NoSession::Expired);
        }
        Ok(session.clone())
    }

    /// Ends a session.
    pub(crate) fn end(&self, id: &str) -> Option<Session> {
        self.lock().remove(id)
    }

    /// Sets the message the next page shows.
    pub(crate) fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(session) = self.lock().get_mut(id) {
            session.flash = Some(flash);
        }
    }

    /// Takes the pending message, if any.
    pub(crate) fn take_flash(&self, id: &str) -> Option<Flash> {
        self.lock()
            .get_mut(id)
            .and_then(|session| session.flash.take())
    }
}

/// 128 random bits, hex.
pub(crate) fn random_id() -> Result<String, crate::ConsoleError> {
    imgshare_identity::generate_token()
        .map_err(|error| crate::ConsoleError::Random(error.to_string()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, scoped to the console, `Secure` when
/// served over TLS. `max_age` `None` makes a browser-session cookie; `Some(0)` deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = max_age
        .map(|seconds| format!("; Max-Age={}", seconds.max(0)))
        .unwrap_or_default();
    format!("{name}={value}; Path=/console{max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// True if `given` equals `expected`, in time independent of where they differ.
pub(crate) fn same_token(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    if given.len() != expected.len() || expected.is_empty() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}
