//! Stellar wallet sign-in: account ids, the challenge message, and SEP-53 signatures.
//!
//! A wallet proves control of an account by signing a message the server issued. The message has a
//! fixed, human-readable layout in the spirit of EIP-4361 / CAIP-122 (docs/API.md), so that a
//! wallet can show the user what is being signed, and so that a signature made for another site,
//! another account or another time is worthless here:
//!
//! ```text
//! app.example.com wants you to sign in with your Stellar account:
//! GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H
//!
//! Sign in to app.example.com. This proves you control the account and authorises no transaction.
//!
//! URI: https://app.example.com
//! Version: 1
//! Nonce: 3f0c5b8e0e2a4d9c9b1f6a7d2c4e8b10
//! Issued At: 2026-11-24T09:00:00Z
//! Expiration Time: 2026-11-24T09:05:00Z
//! ```
//!
//! Signatures follow SEP-53, the Stellar message-signing convention: Ed25519 over
//! `SHA-256("Stellar Signed Message:\n" ‖ message)`, sent base64-encoded.

use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::store::UnixTime;

/// The prefix SEP-53 puts before the message before hashing it.
const SEP53_PREFIX: &[u8] = b"Stellar Signed Message:\n";
/// What a user's name looks like for a wallet user: this prefix, then the account id. Password
/// usernames cannot contain `:`, so the two kinds never collide.
pub const WALLET_USERNAME_PREFIX: &str = "stellar:";
/// Longest message accepted at login; issued messages are about 400 bytes.
pub const MAX_MESSAGE_LEN: usize = 2048;
const NONCE_LINE: &str = "Nonce: ";

/// A Stellar account id (`G…` strkey), checked: version byte, length and CRC16 checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountId {
    strkey: String,
    key: [u8; 32],
}

/// Why an account id, message or signature is refused before any cryptography.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WalletInputError {
    /// Not a `G…` account strkey.
    #[error("account must be a Stellar account id (G… strkey with a valid checksum)")]
    Account,
    /// Not shaped like a challenge of this server.
    #[error("message is not a sign-in challenge (no Nonce line, or too long)")]
    Message,
    /// Not a base64 Ed25519 signature.
    #[error("signature must be a base64-encoded 64-byte Ed25519 signature")]
    Signature,
}

impl AccountId {
    /// Decodes and checks a `G…` strkey (seeds `S…`, contracts `C…` and muxed `M…` ids are refused).
    pub fn parse(text: &str) -> Result<Self, WalletInputError> {
        let key = stellar_strkey::ed25519::PublicKey::from_string(text).map_err(|_| WalletInputError::Account)?;
        Ok(Self { strkey: key.to_string().as_str().to_owned(), key: key.0 })
    }

    /// Recognises a wallet user's name as typed on the command line: the account id alone or with
    /// the [`WALLET_USERNAME_PREFIX`].
    pub fn from_username(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::parse(name.strip_prefix(WALLET_USERNAME_PREFIX).unwrap_or(name)).ok()
    }

    /// The canonical strkey.
    pub fn as_str(&self) -> &str {
        &self.strkey
    }

    /// The username of the account's user (`stellar:G…`).
    pub fn username(&self) -> String {
        format!("{WALLET_USERNAME_PREFIX}{}", self.strkey)
    }

    /// Checks a base64 SEP-53 signature of `message` by this account's key. Strict verification:
    /// non-canonical signatures and weak (small-order) keys are refused.
    pub fn verify_sep53(&self, message: &str, signature: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.key) else { return false };
        key.verify_strict(&sep53_hash(message), signature).is_ok()
    }
}

/// `SHA-256("Stellar Signed Message:\n" ‖ message)`: the bytes an SEP-53 signature signs.
pub fn sep53_hash(message: &str) -> [u8; 32] {
    Sha256::new().chain_update(SEP53_PREFIX).chain_update(message.as_bytes()).finalize().into()
}

/// Decodes a base64 (standard alphabet, padded) Ed25519 signature.
pub fn parse_signature(text: &str) -> Result<Signature, WalletInputError> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| WalletInputError::Signature)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| WalletInputError::Signature)?;
    Ok(Signature::from_bytes(&bytes))
}

/// A challenge as issued: the exact message text and what it binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeMessage {
    /// The full text the wallet signs.
    pub text: String,
    /// Its single-use nonce, the key under which the store keeps it.
    pub nonce: String,
}

impl ChallengeMessage {
    /// The message for `account`, binding `origin` (its host is the `domain`), `nonce`, the issue
    /// time and the expiry.
    pub fn new(origin: &str, account: &AccountId, nonce: &str, issued_at: UnixTime, expires_at: UnixTime) -> Self {
        let domain = domain_of(origin);
        let text = format!(
            "{domain} wants you to sign in with your Stellar account:\n{account}\n\n\
             Sign in to {domain}. This proves you control the account and authorises no transaction.\n\n\
             URI: {origin}\nVersion: 1\n{NONCE_LINE}{nonce}\nIssued At: {issued}\nExpiration Time: {expires}",
            account = account.as_str(),
            issued = rfc3339(issued_at),
            expires = rfc3339(expires_at),
        );
        Self { text, nonce: nonce.to_owned() }
    }

    /// The nonce of a presented message, which names the stored challenge; everything else about
    /// the message is checked by comparing it with the stored text byte for byte.
    pub fn nonce_of(text: &str) -> Result<&str, WalletInputError> {
        if text.len() > MAX_MESSAGE_LEN {
            return Err(WalletInputError::Message);
        }
        text.lines()
            .find_map(|line| line.strip_prefix(NONCE_LINE))
            .filter(|nonce| (16..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or(WalletInputError::Message)
    }

    /// The domain on the message's first line, as the wallet shows it.
    pub fn domain_of_text(text: &str) -> Option<&str> {
        text.lines().next()?.strip_suffix(" wants you to sign in with your Stellar account:")
    }

    /// The account on the message's second line.
    pub fn account_of_text(text: &str) -> Option<&str> {
        text.lines().nth(1)
    }
}

/// The host (and port) of an origin such as `https://app.example.com:8443`.
pub fn domain_of(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, authority)| authority)
}

/// `2026-11-24T09:00:00Z`: RFC 3339 in UTC, whole seconds, as EIP-4361 writes times.
fn rfc3339(time: UnixTime) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(time.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;

    fn account_of(key: &SigningKey) -> AccountId {
        let strkey = stellar_strkey::ed25519::PublicKey(key.verifying_key().to_bytes()).to_string();
        AccountId::parse(strkey.as_str()).unwrap()
    }

    #[test]
    fn the_message_has_the_documented_layout() {
        let account = account_of(&SigningKey::from_bytes(&[7; 32]));
        let message = ChallengeMessage::new("https://app.example.com", &account, "abcdef0123456789", 0, 300);
        let expected = format!(
            "app.example.com wants you to sign in with your Stellar account:\n{}\n\n\
             Sign in to app.example.com. This proves you control the account and authorises no transaction.\n\n\
             URI: https://app.example.com\nVersion: 1\nNonce: abcdef0123456789\n\
             Issued At: 1970-01-01T00:00:00Z\nExpiration Time: 1970-01-01T00:05:00Z",
            account.as_str()
        );
        assert_eq!(message.text, expected);
        assert_eq!(ChallengeMessage::nonce_of(&message.text), Ok("abcdef0123456789"));
        assert_eq!(ChallengeMessage::domain_of_text(&message.text), Some("app.example.com"));
        assert_eq!(ChallengeMessage::account_of_text(&message.text), Some(account.as_str()));
    }

    #[test]
    fn a_sep53_signature_verifies_only_for_its_message_and_key() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let account = account_of(&key);
        let signature = key.sign(&sep53_hash("hello"));
        let encoded = STANDARD.encode(signature.to_bytes());
        assert!(account.verify_sep53("hello", &parse_signature(&encoded).unwrap()));
        assert!(!account.verify_sep53("hellp", &signature));
        assert!(!account_of(&SigningKey::from_bytes(&[8; 32])).verify_sep53("hello", &signature));
        // Signing the bare message (no SEP-53 prefix) is not accepted.
        assert!(!account.verify_sep53("hello", &key.sign(b"hello")));
    }

    #[test]
    fn account_ids_are_checked() {
        let account = account_of(&SigningKey::from_bytes(&[7; 32]));
        let good = account.as_str();
        assert!(good.starts_with('G'));
        let mut bad_checksum = good.to_owned();
        let last = if bad_checksum.ends_with('A') { "B" } else { "A" };
        bad_checksum.replace_range(55.., last);
        let seed = stellar_strkey::ed25519::PrivateKey([7; 32]);
        let seed = seed.as_unredacted().to_string();
        for bad in [bad_checksum.as_str(), seed.as_str(), &good.to_lowercase(), "", "GABC", &good[1..]] {
            assert_eq!(AccountId::parse(bad), Err(WalletInputError::Account), "{bad}");
        }
        assert_eq!(AccountId::from_username(&format!("stellar:{good}")), Some(account.clone()));
        assert_eq!(AccountId::from_username(good), Some(account));
        assert_eq!(AccountId::from_username("alice"), None);
    }

    #[test]
    fn malformed_messages_and_signatures_are_refused() {
        assert!(ChallengeMessage::nonce_of("hello").is_err());
        assert!(ChallengeMessage::nonce_of("Nonce: short").is_err());
        assert!(ChallengeMessage::nonce_of(&format!("Nonce: {}", "a".repeat(MAX_MESSAGE_LEN))).is_err());
        assert!(parse_signature("not base64!").is_err());
        assert!(parse_signature(&STANDARD.encode([0u8; 63])).is_err());
    }
}
