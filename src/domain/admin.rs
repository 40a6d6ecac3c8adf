//! Admin accounts of the web UI: usernames, passwords and their argon2 hashes (PHC
//! strings, Argon2id with the crate's defaults: 19 MiB, two passes).

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::text::clean_line;

pub const MAX_USERNAME_CHARS: usize = 64;
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Argon2 takes any length, but hashing megabytes per login attempt is a denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A username as typed, trimmed; compared exactly (case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, String> {
        let name = clean_line(raw);
        if name.is_empty() {
            return Err("the username must not be empty".into());
        }
        if name.chars().count() > MAX_USERNAME_CHARS {
            return Err(format!("the username is longer than {MAX_USERNAME_CHARS} characters"));
        }
        if name.contains(' ') {
            return Err("the username must not contain spaces".into());
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password, checked before it is hashed.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("the password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("the password is longer than {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// The PHC string stored for `password`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string; a malformed one matches nothing.
pub fn verify_password(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash no password is known for, verified against when the username is unknown so
/// that a wrong username costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut random = [0u8; 32];
        let _ = getrandom::fill(&mut random);
        hash_password(&hex::encode(random)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_only() {
        let hash = hash_password("mật khẩu dài đủ").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("mật khẩu dài đủ", &hash));
        assert!(!verify_password("mật khẩu dài sai", &hash));
        assert!(!verify_password("mật khẩu dài đủ", "not a phc string"));
        assert!(!verify_password("anything at all", decoy_hash()));
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert_eq!(Username::parse("  lan ").unwrap().as_str(), "lan");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("two words").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough!").is_ok());
        assert!(check_new_password(&"x".repeat(2000)).is_err());
    }
}
