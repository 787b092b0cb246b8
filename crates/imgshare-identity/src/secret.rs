//! Hashing of API keys and passwords (argon2id, PHC strings), and random tokens and keys.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::IdentityError;

/// The cost of a new hash. Verification always uses the parameters stored in the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashStrength {
    /// argon2id with the crate's recommended parameters (19 MiB, 2 passes): for real files.
    #[default]
    Standard,
    /// A cheap argon2id (8 KiB, 1 pass), for tests and throwaway demo users only.
    Fast,
}

fn hasher(strength: HashStrength) -> Result<Argon2<'static>, IdentityError> {
    let params = match strength {
        HashStrength::Standard => Params::default(),
        HashStrength::Fast => Params::new(8, 1, 1, None)
            .map_err(|error| IdentityError::Internal(format!("argon2 parameters: {error}")))?,
    };
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `secret`, with a random salt.
pub fn hash_secret(secret: &str, strength: HashStrength) -> Result<String, IdentityError> {
    let hash = hasher(strength)?
        .hash_password(secret.as_bytes())
        .map_err(|error| IdentityError::Internal(format!("argon2: {error}")))?;
    Ok(hash.to_string())
}

/// True if `secret` matches the PHC string `hash`. The comparison of the derived outputs is
/// constant-time (password-hash's `Output`); a hash that does not parse never matches.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(secret.as_bytes(), hash)
        .is_ok()
}

fn random_hex(bytes: usize) -> Result<String, IdentityError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|error| IdentityError::Internal(format!("random source: {error}")))?;
    Ok(hex::encode(buffer))
}

/// A new token id: 128 random bits as 32 lower-case hex digits, the shape of Rackspace's samples.
pub fn generate_token() -> Result<String, IdentityError> {
    random_hex(16)
}

/// A new API key: 128 random bits as 32 hex digits.
pub fn generate_api_key() -> Result<String, IdentityError> {
    random_hex(16)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_verify_only_their_secret() {
        for strength in [HashStrength::Fast, HashStrength::Standard] {
            let hash = hash_secret("s3cret-key", strength).unwrap();
            assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
            assert!(!hash.contains("s3cret-key"));
            assert!(verify_secret("s3cret-key", &hash));
            assert!(!verify_secret("s3cret-kez", &hash));
            assert!(!verify_secret("", &hash));
        }
        // Same secret, different salt: different strings, both valid.
        let a = hash_secret("k", HashStrength::Fast).unwrap();
        let b = hash_secret("k", HashStrength::Fast).unwrap();
        assert_ne!(a, b);
        assert!(verify_secret("k", &a) && verify_secret("k", &b));
    }

    #[test]
    fn malformed_hashes_never_match() {
        for bad in [
            "",
            "plain",
            "$argon2id$",
            "$argon2id$v=19$m=8,t=1,p=1$xx$yy",
        ] {
            assert!(!verify_secret("plain", bad), "{bad}");
        }
    }

    #[test]
    fn tokens_are_128_bit_hex_and_distinct() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(generate_api_key().unwrap().len(), 32);
    }
}
