//! Password hashing (argon2id, OWASP parameters) and the rules for usernames and passwords.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;

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

/// Memory cost of new hashes in KiB: 19 MiB.
const MEMORY_KIB: u32 = 19 * 1024;
/// The largest memory cost a stored hash may ask for (64 MiB): verifying a hash from elsewhere (an
/// import, an edited row) must not let it claim unbounded memory.
const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// argon2id, 19 MiB, 2 passes, 1 lane: the OWASP Password Storage Cheat Sheet's first choice.
/// Fuzz builds (`--cfg fuzzing`, set by cargo-fuzz) use the smallest cost argon2 allows, so the
/// fuzzer spends its time in the parsers and not in hashing. Never in a release or test build.
const ARGON2_COST: (u32, u32) = if cfg!(fuzzing) { (Params::MIN_M_COST, Params::MIN_T_COST) } else { (MEMORY_KIB, 2) };

fn params() -> Params {
    let (memory_kib, passes) = ARGON2_COST;
    let Ok(params) = Params::new(memory_kib, passes, 1, None) else { unreachable!("constant parameters are valid") };
    params
}

/// The working memory of argon2, kept and reused by one hashing thread. Allocating 19 MiB per hash
/// and freeing it leaves the allocator holding pages per thread; reusing one buffer per worker keeps
/// the process's peak at (workers × 19 MiB), whatever the number of requests.
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.0.len() < needed {
            self.0.resize(needed, Block::new());
        }
        &mut self.0[..needed]
    }
}

/// Hashes a password to a PHC string. CPU-heavy (tens of ms): call from a blocking thread, or
/// better through the server's bounded hashing pool.
pub fn hash_password(password: &str) -> String {
    hash_password_with(&mut HashMemory::default(), password)
}

/// [`hash_password`] in `memory`.
pub fn hash_password_with(memory: &mut HashMemory, password: &str) -> String {
    let Ok(salt) = SaltString::encode_b64(&random_bytes::<16>()) else { unreachable!("16 bytes is a valid salt") };
    let params = params();
    let mut salt_bytes = [0u8; 64];
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let phc = salt.decode_b64(&mut salt_bytes).map_err(|error| error.to_string()).and_then(|salt_bytes| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory.blocks(&params))
            .map_err(|error| error.to_string())?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|error| error.to_string())?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|error| error.to_string())?),
        };
        Ok(hash.to_string())
    });
    phc.unwrap_or_else(|error| unreachable!("argon2 with valid parameters and input cannot fail: {error}"))
}

/// Verifies a password against a PHC string in constant time; false for a malformed hash, another
/// algorithm, or one asking for more than 64 MiB.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_with(&mut HashMemory::default(), password, phc)
}

/// [`verify_password`] in `memory`.
pub fn verify_password_with(memory: &mut HashMemory, password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else { return false };
    let version = hash.version.map_or(Ok(Version::V0x13), Version::try_from);
    let (Ok(version), Ok(params)) = (version, Params::try_from(&hash)) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory.blocks(&params)).is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
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
    fn hashes_verify_with_the_reference_implementation_and_the_other_way_round() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_password("correct horse battery");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse battery", &parsed).is_ok());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let mut memory = HashMemory::default();
        assert!(verify_password_with(&mut memory, "correct horse battery", &reference));
        assert!(!verify_password_with(&mut memory, "correct horse batterx", &reference));
        // A hash asking for 1 GiB is refused rather than computed.
        let greedy = reference.replace("m=19456", "m=1048576");
        assert!(!verify_password_with(&mut memory, "correct horse battery", &greedy));
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
