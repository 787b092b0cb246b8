//! Tokens issued by the built-in identity: held in memory, validated by a map lookup.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::secret::generate_token;
use crate::IdentityError;

/// What a token was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token id (128 random bits, hex).
    pub id: String,
    /// The user's name: the key of the users file.
    pub user_name: String,
    /// The tenant the token is scoped to.
    pub tenant: String,
    /// When it was issued.
    pub issued: DateTime<Utc>,
    /// When it stops being valid.
    pub expires: DateTime<Utc>,
    /// How the user authenticated (`APIKEY`, `PASSWORD`, `TOKEN`).
    pub authenticated_by: &'static str,
}

/// Issued tokens by id. Expired tokens are dropped when met and in periodic sweeps.
#[derive(Debug, Default)]
pub struct TokenTable {
    tokens: HashMap<String, IssuedToken>,
    issued_since_sweep: usize,
}

/// How many issues between two sweeps of expired tokens: keeps memory bounded by the tokens
/// issued within one lifetime without scanning the table on every request.
const SWEEP_EVERY: usize = 1024;

impl TokenTable {
    /// An empty table.
    pub fn new() -> Self {
        TokenTable::default()
    }

    /// Issues a new random token valid for `lifetime` from `now`.
    pub fn issue(
        &mut self,
        user_name: &str,
        tenant: &str,
        authenticated_by: &'static str,
        now: DateTime<Utc>,
        lifetime: Duration,
    ) -> Result<IssuedToken, IdentityError> {
        self.issued_since_sweep += 1;
        if self.issued_since_sweep >= SWEEP_EVERY {
            self.sweep(now);
        }
        let token = IssuedToken {
            id: generate_token()?,
            user_name: user_name.to_owned(),
            tenant: tenant.to_owned(),
            issued: now,
            expires: now + lifetime,
            authenticated_by,
        };
        self.tokens.insert(token.id.clone(), token.clone());
        Ok(token)
    }

    /// The token `id` if it is known and not expired at `now`; an expired one is dropped.
    pub fn get(&mut self, id: &str, now: DateTime<Utc>) -> Option<IssuedToken> {
        match self.tokens.get(id) {
            Some(token) if token.expires > now => Some(token.clone()),
            Some(_) => {
                self.tokens.remove(id);
                None
            }
            None => None,
        }
    }

    /// Revokes `id`; false if it was not known (or already expired).
    pub fn revoke(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        match self.tokens.remove(id) {
            Some(token) => token.expires > now,
            None => false,
        }
    }

    /// Revokes every token of `user_name` (a removed or disabled user, a reset key).
    pub fn revoke_user(&mut self, user_name: &str) -> usize {
        let before = self.tokens.len();
        self.tokens.retain(|_, token| token.user_name != user_name);
        before - self.tokens.len()
    }

    /// Drops every token expired at `now`.
    pub fn sweep(&mut self, now: DateTime<Utc>) {
        self.tokens.retain(|_, token| token.expires > now);
        self.issued_since_sweep = 0;
    }

    /// How many tokens are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True if no token is held.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn tokens_expire_and_are_dropped() {
        let mut table = TokenTable::new();
        let token = table
            .issue("alice", "111111", "APIKEY", at(0), Duration::seconds(60))
            .unwrap();
        assert_eq!(token.expires, at(60));
        assert_eq!(table.get(&token.id, at(59)).unwrap().tenant, "111111");
        assert!(table.get(&token.id, at(60)).is_none());
        assert!(table.is_empty(), "the expired token is dropped when met");
        assert!(table.get("unknown", at(0)).is_none());
    }

    #[test]
    fn revocation_is_immediate_and_per_user() {
        let mut table = TokenTable::new();
        let life = Duration::hours(24);
        let a1 = table.issue("alice", "1", "APIKEY", at(0), life).unwrap();
        let a2 = table.issue("alice", "1", "PASSWORD", at(0), life).unwrap();
        let b = table.issue("bob", "2", "APIKEY", at(0), life).unwrap();
        assert_ne!(a1.id, a2.id, "a new token per authentication");
        assert!(table.revoke(&a1.id, at(1)));
        assert!(!table.revoke(&a1.id, at(1)), "already revoked");
        assert!(table.get(&a1.id, at(1)).is_none());
        assert!(table.get(&a2.id, at(1)).is_some());
        assert_eq!(table.revoke_user("alice"), 1);
        assert!(table.get(&a2.id, at(1)).is_none());
        assert!(table.get(&b.id, at(1)).is_some());
    }

    #[test]
    fn sweeps_bound_the_table() {
        let mut table = TokenTable::new();
        for i in 0..SWEEP_EVERY - 1 {
            table
                .issue("u", "1", "APIKEY", at(i as i64), Duration::seconds(1))
                .unwrap();
        }
        assert_eq!(table.len(), SWEEP_EVERY - 1);
        table
            .issue("u", "1", "APIKEY", at(10_000), Duration::seconds(1))
            .unwrap();
        assert_eq!(table.len(), 1, "the sweep dropped every expired token");
    }
}
