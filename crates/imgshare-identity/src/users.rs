//! The users file of the built-in identity: accounts, users, roles, and hashed secrets.
//!
//! TOML or JSON, chosen by the extension. Secrets are never stored: only argon2id PHC strings.
//! Every edit rewrites the whole file atomically (a temporary file in the same directory,
//! fsynced, renamed over the old one, the directory fsynced), so a reader sees the old file or
//! the new one, never a mix.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::secret::{generate_api_key, hash_secret, HashStrength};

/// An account (Rackspace tenant): images belong to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The Cloud Files account of this tenant (`MossoCloudFS_…`), used in the `cloudFiles`
    /// endpoints; default `MossoCloudFS_<account id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_account: Option<String>,
    /// A disabled account refuses every user's authentication.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            storage_account: None,
            enabled: true,
        }
    }
}

/// A user of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user's id (`access.user.id`); unique in the file.
    pub id: String,
    /// The account id the user belongs to (`access.token.tenant.id`).
    pub account: String,
    /// Role names, e.g. `cloudImages:admin`, `identity:user-admin`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `RAX-AUTH:defaultRegion`; default: the first region the server serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
    /// A disabled user is refused with 403 `userDisabled`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// The argon2id PHC string of the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_hash: Option<String>,
    /// The argon2id PHC string of the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// What `imgshare users list` shows of a user (no secret, not even hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    /// The user name.
    pub name: String,
    /// The user id.
    pub id: String,
    /// The account id.
    pub account: String,
    /// Role names.
    pub roles: Vec<String>,
    /// False if the user or its account is disabled.
    pub enabled: bool,
    /// Whether an API key is set.
    pub has_api_key: bool,
    /// Whether a password is set.
    pub has_password: bool,
}

/// The file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Accounts by id.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
    /// Users by name (the `username` of the credentials).
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

/// Why a users file could not be read, written or edited.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UsersError {
    /// The file could not be read or written.
    #[error("users file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("users file {path} is not valid TOML: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column included).
        message: String,
    },
    /// The file is not JSON of the expected shape.
    #[error("users file {path} is not valid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column included).
        message: String,
    },
    /// The extension is neither `.toml` nor `.json`.
    #[error("users file {0} must end in .toml or .json")]
    UnknownFormat(PathBuf),
    /// The content parses but breaks a rule.
    #[error("users file: {0}")]
    Invalid(String),
    /// An edit names a user that does not exist.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// An edit would create a user that exists.
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    /// Hashing or the random source failed.
    #[error("{0}")]
    Secret(String),
}

#[derive(Clone, Copy)]
enum Format {
    Toml,
    Json,
}

fn format_of(path: &Path) -> Result<Format, UsersError> {
    match path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("toml") => Ok(Format::Toml),
        Some("json") => Ok(Format::Json),
        _ => Err(UsersError::UnknownFormat(path.to_owned())),
    }
}

fn is_phc(hash: &str) -> bool {
    argon2::password_hash::phc::PasswordHash::new(hash).is_ok()
}

impl UsersFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let format = format_of(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Io {
            path: path.to_owned(),
            source,
        })?;
        let file: UsersFile = match format {
            Format::Toml => toml::from_str(&text).map_err(|error| UsersError::Toml {
                path: path.to_owned(),
                message: error.to_string(),
            })?,
            Format::Json => serde_json::from_str(&text).map_err(|error| UsersError::Json {
                path: path.to_owned(),
                message: error.to_string(),
            })?,
        };
        file.check()?;
        Ok(file)
    }

    /// The file at `path`, or an empty one if there is none yet.
    pub fn load_or_default(path: &Path) -> Result<Self, UsersError> {
        format_of(path)?;
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile::default()),
            _ => Self::load(path),
        }
    }

    /// The rules `load` enforces: non-empty names and ids, unique user ids, every user's
    /// account listed, every stored hash a PHC string.
    pub fn check(&self) -> Result<(), UsersError> {
        let invalid = |message: String| Err(UsersError::Invalid(message));
        let mut ids = BTreeMap::new();
        for id in self.accounts.keys() {
            if id.trim().is_empty() {
                return invalid("an account id is empty".into());
            }
        }
        for (name, user) in &self.users {
            if name.trim().is_empty() || user.id.trim().is_empty() {
                return invalid(format!("user {name:?} has an empty name or id"));
            }
            if let Some(other) = ids.insert(user.id.as_str(), name) {
                return invalid(format!(
                    "users {other:?} and {name:?} have the same id {:?}",
                    user.id
                ));
            }
            if !self.accounts.contains_key(&user.account) {
                return invalid(format!(
                    "user {name:?} belongs to account {:?}, which is not in [accounts]",
                    user.account
                ));
            }
            for (what, hash) in [
                ("api_key_hash", &user.api_key_hash),
                ("password_hash", &user.password_hash),
            ] {
                if hash.as_deref().is_some_and(|hash| !is_phc(hash)) {
                    return invalid(format!(
                        "user {name:?}: {what} is not a PHC hash string ($argon2id$…); \
                         secrets are never stored in clear"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes the file atomically (temporary file, fsync, rename, directory fsync), readable
    /// by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        self.check()?;
        let text = match format_of(path)? {
            Format::Toml => toml::to_string_pretty(self)
                .map_err(|error| UsersError::Invalid(format!("cannot encode TOML: {error}")))?,
            Format::Json => {
                let mut text = serde_json::to_string_pretty(self)
                    .map_err(|error| UsersError::Invalid(format!("cannot encode JSON: {error}")))?;
                text.push('\n');
                text
            }
        };
        write_atomically(path, text.as_bytes()).map_err(|source| UsersError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// The user `name`, if any.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// The account `id`, if any.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Adds a user to `account` (created if missing) and returns its API key: `api_key` if
    /// given, else a new random one (shown to the operator once; only its hash is kept).
    #[allow(clippy::too_many_arguments)]
    pub fn add_user(
        &mut self,
        name: &str,
        account: &str,
        roles: Vec<String>,
        default_region: Option<String>,
        api_key: Option<&str>,
        password: Option<&str>,
        strength: HashStrength,
    ) -> Result<String, UsersError> {
        if self.users.contains_key(name) {
            return Err(UsersError::UserExists(name.to_owned()));
        }
        if name.trim().is_empty() || account.trim().is_empty() {
            return Err(UsersError::Invalid(
                "the user name and the account must not be empty".into(),
            ));
        }
        let key = match api_key {
            Some("") => return Err(UsersError::Invalid("the API key must not be empty".into())),
            Some(key) => key.to_owned(),
            None => generate_api_key().map_err(|error| UsersError::Secret(error.to_string()))?,
        };
        let hash = |secret: &str| {
            hash_secret(secret, strength).map_err(|error| UsersError::Secret(error.to_string()))
        };
        let user = User {
            id: self.next_user_id(),
            account: account.to_owned(),
            roles,
            default_region,
            enabled: true,
            api_key_hash: Some(hash(&key)?),
            password_hash: password.map(hash).transpose()?,
        };
        self.accounts.entry(account.to_owned()).or_default();
        self.users.insert(name.to_owned(), user);
        Ok(key)
    }

    /// Removes the user `name`; its account stays.
    pub fn remove_user(&mut self, name: &str) -> Result<User, UsersError> {
        self.users
            .remove(name)
            .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))
    }

    /// Replaces the API key of `name` with a new random one, returned once.
    pub fn reset_key(&mut self, name: &str, strength: HashStrength) -> Result<String, UsersError> {
        let user = self
            .users
            .get_mut(name)
            .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))?;
        let key = generate_api_key().map_err(|error| UsersError::Secret(error.to_string()))?;
        user.api_key_hash = Some(
            hash_secret(&key, strength).map_err(|error| UsersError::Secret(error.to_string()))?,
        );
        Ok(key)
    }

    /// Enables or disables the user `name`.
    pub fn set_enabled(&mut self, name: &str, enabled: bool) -> Result<(), UsersError> {
        let user = self
            .users
            .get_mut(name)
            .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))?;
        user.enabled = enabled;
        Ok(())
    }

    /// Every user, in name order, without secrets.
    pub fn list(&self) -> Vec<UserSummary> {
        self.users
            .iter()
            .map(|(name, user)| UserSummary {
                name: name.clone(),
                id: user.id.clone(),
                account: user.account.clone(),
                roles: user.roles.clone(),
                enabled: user.enabled
                    && self.accounts.get(&user.account).is_some_and(|a| a.enabled),
                has_api_key: user.api_key_hash.is_some(),
                has_password: user.password_hash.is_some(),
            })
            .collect()
    }

    /// The smallest numeric id above every numeric user id (Rackspace user ids are numbers).
    fn next_user_id(&self) -> String {
        let highest = self
            .users
            .values()
            .filter_map(|user| user.id.parse::<u64>().ok())
            .max()
            .unwrap_or(100_000);
        (highest + 1).to_string()
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users".into());
    let suffix = crate::secret::generate_token()
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let temp = dir.join(format!(".{name}.{}.tmp", &suffix[..12]));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        // The rename itself must reach the disk, or a crash could bring the old file back.
        #[cfg(unix)]
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests;
