//! Tokens and secrets: the token format (`ROLE:SECRET`, sent as
//! `authorization: Bearer ROLE:SECRET`), generating a secret, and hashing /
//! verifying it with argon2id (PHC strings; the secret itself is never
//! stored).
//!
//! Must not: cache or decide permissions (that is `cache.rs` and `model.rs`).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine as _;

/// The gRPC metadata key / HTTP header that carries a token.
pub const AUTHORIZATION: &str = "authorization";

/// A token split into its role and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub role: String,
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}:***)", self.role)
    }
}

impl Token {
    /// Parses `ROLE:SECRET` (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Option<Token> {
        let (role, secret) = s.trim().split_once(':')?;
        (!role.is_empty() && !secret.is_empty()).then(|| Token {
            role: role.to_string(),
            secret: secret.to_string(),
        })
    }

    /// Parses an `authorization` value: `Bearer ROLE:SECRET`.
    pub fn from_bearer(header: &str) -> Option<Token> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| Token::parse(rest))
            .flatten()
    }

    /// `ROLE:SECRET`.
    pub fn render(&self) -> String {
        format!("{}:{}", self.role, self.secret)
    }
}

/// A fresh random secret: 32 bytes, base64url without padding (no `:`).
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("hashing a secret: {0}")]
pub struct HashError(String);

/// The argon2id PHC string of `secret` (random salt, the crate's default
/// cost: 19 MiB, 2 passes).
pub fn hash(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `secret` matches the PHC string `phc` (false for a malformed one).
pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_from_bearer_headers() {
        let t = Token::from_bearer("Bearer app:s3cr3t").unwrap();
        assert_eq!((t.role.as_str(), t.secret.as_str()), ("app", "s3cr3t"));
        assert_eq!(Token::from_bearer("bearer  app:x:y").unwrap().secret, "x:y");
        assert!(Token::from_bearer("Basic app:x").is_none());
        assert!(Token::from_bearer("Bearer app").is_none());
        assert!(Token::from_bearer("Bearer :x").is_none());
        assert_eq!(
            format!("{t:?}"),
            "Token(app:***)",
            "secrets stay out of logs"
        );
    }

    #[test]
    fn a_hash_verifies_its_secret_only_and_holds_no_plaintext() {
        let secret = generate_secret();
        assert!(!secret.contains(':') && secret.len() >= 40);
        let phc = hash(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains(&secret));
        assert!(verify(&secret, &phc));
        assert!(!verify("wrong", &phc));
        assert!(!verify(&secret, "not a phc string"));
        assert_ne!(hash(&secret).unwrap(), phc, "salted");
    }
}
