//! Password hashing (argon2id, OWASP parameters) and the rules for usernames and passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::tokens::random_bytes;

/// Passwords longer than this are refused before hashing, so a client cannot make the server hash
/// megabytes.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Shortest acceptable password (NIST SP 800-63B).
pub const MIN_PASSWORD_LEN: usize = 8;

/// The few passwords every guessing list starts with; refused at registration.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "11111111",
    "00000000",
    "abc12345",
    "letmein1",
    "welcome1",
    "admin123",
    "passw0rd",
    "sunshine",
    "football",
    "baseball",
    "princess",
    "starwars",
    "trustno1",
    "12341234",
];

/// argon2id, 19 MiB, 2 passes, 1 lane: the OWASP Password Storage Cheat Sheet's first choice.
#[cfg(not(fuzzing))]
const ARGON2_COST: (u32, u32) = (19 * 1024, 2);
/// Fuzz builds only (`--cfg fuzzing`, set by cargo-fuzz): the smallest cost argon2 allows, so the
/// fuzzer spends its time in the parsers and not in hashing. Never in a release or test build.
#[cfg(fuzzing)]
const ARGON2_COST: (u32, u32) = (argon2::Params::MIN_M_COST, argon2::Params::MIN_T_COST);

fn hasher() -> Argon2<'static> {
    let (memory_kib, passes) = ARGON2_COST;
    let Ok(params) = Params::new(memory_kib, passes, 1, None) else { unreachable!("constant parameters are valid") };
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password to a PHC string. CPU-heavy (tens of ms): call from a blocking thread.
pub fn hash_password(password: &str) -> String {
    let Ok(salt) = SaltString::encode_b64(&random_bytes::<16>()) else { unreachable!("16 bytes is a valid salt") };
    match hasher().hash_password(password.as_bytes(), &salt) {
        Ok(hash) => hash.to_string(),
        Err(error) => unreachable!("argon2 with valid parameters and input cannot fail: {error}"),
    }
}

/// Verifies a password against a PHC string in constant time; false for a malformed hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| hasher().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Canonical form of a username: trimmed and lower-case, so `Alice` and `alice` are one account.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_ascii_lowercase()
}

/// Checks a (normalised) username: 3 to 64 of `a-z 0-9 . _ -`.
pub fn check_username(username: &str) -> Result<(), String> {
    if !(3..=64).contains(&username.len()) {
        return Err("username must be 3 to 64 characters".into());
    }
    if !username.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("username may contain only letters, digits, '.', '_' and '-'".into());
    }
    Ok(())
}

/// Checks a new password: length bounds, not the username, not a top guess.
pub fn check_password(password: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(format!("password must be at least {MIN_PASSWORD_LEN} characters"));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!("password must be at most {MAX_PASSWORD_LEN} bytes"));
    }
    let lower = password.to_lowercase();
    if lower == username || COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err("password is too easy to guess".into());
    }
    if password.chars().all(|c| password.starts_with(c)) {
        return Err("password is too easy to guess".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_the_right_password() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash_password("correct horse battery"), hash_password("correct horse battery"));
    }

    #[test]
    fn weak_passwords_are_refused() {
        for weak in ["short", "password", "Password1", "aaaaaaaaaa", "alice123x"] {
            let username = "alice123x";
            assert!(check_password(weak, username).is_err(), "{weak}");
        }
        assert!(check_password(&"x".repeat(2000), "alice").is_err());
        assert!(check_password("correct horse battery", "alice").is_ok());
    }

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalize_username("  Alice "), "alice");
        assert!(check_username("al").is_err());
        assert!(check_username("alice smith").is_err());
        assert!(check_username("alice<script>").is_err());
        assert!(check_username("alice.smith-2_x").is_ok());
    }
}
