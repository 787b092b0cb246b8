//! Who is calling: the caller's [`Identity`] as the handlers see it, and the static tokens file
//! that maps each `X-Auth-Token` to an account, a user and roles (one of the three
//! [`TokenValidator`]s; the others are in `imgshare-identity`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use imgshare_identity::{IdentityError, TokenValidator, ValidateFuture};

use imgshare_core::Actor;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The identity a token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The account (tenant) id, e.g. `"111111"`.
    pub tenant_id: String,
    /// The user within the account.
    pub user_id: String,
    /// Role names as an identity service would give them, e.g. `"cloudImages:admin"`.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Identity {
    /// The domain's view of this caller (always a tenant user, never the operator).
    pub fn actor(&self) -> Actor {
        let roles: Vec<&str> = self.roles.iter().map(String::as_str).collect();
        Actor::tenant(&self.tenant_id, &self.user_id, &roles)
    }
}

impl From<imgshare_identity::Identity> for Identity {
    fn from(identity: imgshare_identity::Identity) -> Self {
        Identity {
            tenant_id: identity.tenant,
            user_id: identity.user_id,
            roles: identity.roles,
        }
    }
}

/// The file layout: one table of tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: BTreeMap<String, Identity>,
}

/// Why a tokens file could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TokenStoreError {
    /// The file could not be read.
    #[error("cannot read tokens file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("invalid JSON tokens file: {0}")]
    Json(#[from] serde_json::Error),
    /// The file is not valid TOML of the expected shape.
    #[error("invalid TOML tokens file: {0}")]
    Toml(#[from] toml::de::Error),
    /// The extension is neither `.json` nor `.toml`.
    #[error("tokens file {0} must end in .json or .toml")]
    UnknownFormat(PathBuf),
    /// A token or identity field is empty.
    #[error("tokens file has an empty token, tenant_id or user_id")]
    EmptyField,
}

/// Known tokens. Lookups compare the whole token exactly. Static tokens never expire.
///
/// Cheap to clone (shared state); [`TokenValidator::reload`] re-reads the file it was loaded
/// from, keeping the tokens in use if the file no longer loads.
#[derive(Clone, Default)]
pub struct TokenStore {
    tokens: Arc<RwLock<BTreeMap<String, Identity>>>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for TokenStore {
    // Never print the tokens themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("tokens", &self.len())
            .field("path", &self.path)
            .finish()
    }
}

impl TokenStore {
    /// An empty store: every request is 401.
    pub fn new() -> Self {
        TokenStore::default()
    }

    /// Loads a tokens file; the format is chosen by the extension (`.json` or `.toml`).
    pub fn load(path: &Path) -> Result<Self, TokenStoreError> {
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        let text = std::fs::read_to_string(path).map_err(|source| TokenStoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut store = match extension.as_deref() {
            Some("json") => Self::from_json(&text),
            Some("toml") => Self::from_toml(&text),
            _ => Err(TokenStoreError::UnknownFormat(path.to_owned())),
        }?;
        store.path = Some(path.to_owned());
        Ok(store)
    }

    /// Re-reads the file this store was loaded from; on error the tokens in use are kept.
    pub fn reload_file(&self) -> Result<usize, TokenStoreError> {
        let Some(path) = &self.path else {
            return Ok(self.len());
        };
        let fresh = Self::load(path)?;
        let tokens = std::mem::take(&mut *write(&fresh.tokens));
        let count = tokens.len();
        *write(&self.tokens) = tokens;
        Ok(count)
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, TokenStoreError> {
        let file: TokensFile = serde_json::from_str(text)?;
        Self::from_map(file.tokens)
    }

    /// Parses the TOML form.
    pub fn from_toml(text: &str) -> Result<Self, TokenStoreError> {
        let file: TokensFile = toml::from_str(text)?;
        Self::from_map(file.tokens)
    }

    fn from_map(tokens: BTreeMap<String, Identity>) -> Result<Self, TokenStoreError> {
        let empty = tokens.iter().any(|(token, identity)| {
            token.is_empty() || identity.tenant_id.is_empty() || identity.user_id.is_empty()
        });
        if empty {
            return Err(TokenStoreError::EmptyField);
        }
        Ok(TokenStore {
            tokens: Arc::new(RwLock::new(tokens)),
            path: None,
        })
    }

    /// Adds (or replaces) a token.
    pub fn insert(&mut self, token: impl Into<String>, identity: Identity) {
        write(&self.tokens).insert(token.into(), identity);
    }

    /// The identity behind `token`, if known.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        read(&self.tokens).get(token).cloned()
    }

    /// Number of known tokens.
    pub fn len(&self) -> usize {
        read(&self.tokens).len()
    }

    /// True if no token is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A panic while holding the lock leaves a whole map behind: keep serving it.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl TokenValidator for TokenStore {
    fn validate<'a>(&'a self, token: &'a str) -> ValidateFuture<'a> {
        let result = self
            .identify(token)
            .map(|identity| imgshare_identity::Identity {
                tenant: identity.tenant_id,
                user_name: identity.user_id.clone(),
                user_id: identity.user_id,
                roles: identity.roles,
                // Static tokens do not expire.
                expires: DateTime::<Utc>::MAX_UTC,
            })
            .ok_or_else(|| {
                IdentityError::Unauthorized(
                    "The request you have made requires authentication.".into(),
                )
            });
        Box::pin(std::future::ready(result))
    }

    fn reload(&self) -> Result<String, IdentityError> {
        match (&self.path, self.reload_file()) {
            (None, _) => Ok("no tokens file to reload".into()),
            (Some(path), Ok(count)) => Ok(format!(
                "tokens file {} reloaded: {count} tokens",
                path.display()
            )),
            (Some(_), Err(error)) => Err(IdentityError::Internal(format!(
                "{error}; the tokens in use are kept"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_and_toml_forms_agree() {
        let json = r#"{"tokens": {"tok-a": {"tenant_id": "111111", "user_id": "alice",
            "roles": ["cloudImages:admin"]}}}"#;
        let toml = "[tokens.tok-a]\ntenant_id = \"111111\"\nuser_id = \"alice\"\nroles = [\"cloudImages:admin\"]\n";
        let a = TokenStore::from_json(json).unwrap();
        let b = TokenStore::from_toml(toml).unwrap();
        assert_eq!(a.identify("tok-a"), b.identify("tok-a"));
        assert_eq!(a.identify("tok-a").unwrap().actor().tenant_id, "111111");
        assert!(a.identify("tok-b").is_none());
        assert!(!format!("{a:?}").contains("tok-a"));
    }

    #[test]
    fn empty_fields_and_unknown_extensions_are_refused() {
        let json = r#"{"tokens": {"": {"tenant_id": "1", "user_id": "u"}}}"#;
        assert!(matches!(
            TokenStore::from_json(json),
            Err(TokenStoreError::EmptyField)
        ));
        let dir = std::env::temp_dir().join(format!("imgshare-tokens-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("tokens.yaml");
        std::fs::write(&yaml, "tokens: {}").unwrap();
        assert!(matches!(
            TokenStore::load(&yaml),
            Err(TokenStoreError::UnknownFormat(_))
        ));
        let toml = dir.join("tokens.TOML");
        std::fs::write(&toml, "[tokens.t]\ntenant_id = \"1\"\nuser_id = \"u\"\n").unwrap();
        assert_eq!(TokenStore::load(&toml).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reload_rereads_the_file_and_keeps_the_tokens_on_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, "[tokens.t1]\ntenant_id = \"1\"\nuser_id = \"u\"\n").unwrap();
        let store = TokenStore::load(&path).unwrap();
        let shared = store.clone();
        std::fs::write(&path, "[tokens.t2]\ntenant_id = \"2\"\nuser_id = \"v\"\n").unwrap();
        let summary = TokenValidator::reload(&store).unwrap();
        assert!(summary.contains("1 tokens"), "{summary}");
        assert!(shared.identify("t1").is_none());
        assert_eq!(shared.identify("t2").unwrap().tenant_id, "2");
        std::fs::write(&path, "[tokens.t3\n").unwrap();
        assert!(TokenValidator::reload(&store).is_err());
        assert_eq!(shared.identify("t2").unwrap().tenant_id, "2");
    }
}
