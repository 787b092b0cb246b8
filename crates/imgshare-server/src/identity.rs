//! Who is calling: the tokens file that maps each `X-Auth-Token` to an account, a user and roles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

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

/// Known tokens. Lookups compare the whole token exactly.
#[derive(Clone, Default)]
pub struct TokenStore {
    tokens: BTreeMap<String, Identity>,
}

impl std::fmt::Debug for TokenStore {
    // Never print the tokens themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("tokens", &self.tokens.len())
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
        match extension.as_deref() {
            Some("json") => Self::from_json(&text),
            Some("toml") => Self::from_toml(&text),
            _ => Err(TokenStoreError::UnknownFormat(path.to_owned())),
        }
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
        Ok(TokenStore { tokens })
    }

    /// Adds (or replaces) a token.
    pub fn insert(&mut self, token: impl Into<String>, identity: Identity) {
        self.tokens.insert(token.into(), identity);
    }

    /// The identity behind `token`, if known.
    pub fn identify(&self, token: &str) -> Option<&Identity> {
        self.tokens.get(token)
    }

    /// Number of known tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True if no token is known.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// The tokens a running server checks requests against. Reloading (SIGHUP) swaps the whole
/// store at once, so a request sees the old file or the new one, never a mix, and requests in
/// flight are not disturbed.
#[derive(Debug, Clone, Default)]
pub struct SharedTokens(Arc<RwLock<Arc<TokenStore>>>);

impl SharedTokens {
    /// Starts with `store`.
    pub fn new(store: Arc<TokenStore>) -> Self {
        SharedTokens(Arc::new(RwLock::new(store)))
    }

    /// The store in use now.
    pub fn current(&self) -> Arc<TokenStore> {
        // A panic while swapping cannot leave a half-written `Arc`: the old value is still whole.
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The identity behind `token` in the store in use now.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        self.current().identify(token).cloned()
    }

    /// Replaces the store for every later request.
    pub fn replace(&self, store: TokenStore) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(store);
    }

    /// Loads `path` and, only if it loads, replaces the store; on error the old one stays.
    pub fn reload(&self, path: &Path) -> Result<usize, TokenStoreError> {
        let store = TokenStore::load(path)?;
        let count = store.len();
        self.replace(store);
        Ok(count)
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
    fn a_reload_that_fails_keeps_the_old_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let one = r#"{"tokens": {"tok-a": {"tenant_id": "1", "user_id": "a"}}}"#;
        std::fs::write(&path, one).unwrap();
        let shared = SharedTokens::new(Arc::new(TokenStore::load(&path).unwrap()));
        std::fs::write(&path, "{not json").unwrap();
        assert!(shared.reload(&path).is_err());
        assert_eq!(shared.identify("tok-a").unwrap().tenant_id, "1");
        let two = r#"{"tokens": {"tok-b": {"tenant_id": "2", "user_id": "b"}}}"#;
        std::fs::write(&path, two).unwrap();
        assert_eq!(shared.reload(&path).unwrap(), 1);
        assert!(shared.identify("tok-a").is_none());
        assert_eq!(shared.identify("tok-b").unwrap().tenant_id, "2");
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
}
