//! The configured key (`REAUTH_SIGNING_KEY`): one Ed25519 key that an operator manages and shares
//! between instances. It is the root of the key set ([`super::key_set`]): its first signing key,
//! the source of the `rt1.` refresh-token MAC secret, and the key under which the store keeps the
//! rotated keys.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::random_bytes;

/// Failure to load or create the signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("signing key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a PKCS#8 PEM Ed25519 private key.
    #[error("signing key file {path} is not a PKCS#8 PEM Ed25519 private key: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

/// The signing key, its public half and identifier, and the derived refresh MAC key.
#[derive(Clone)]
pub struct Keys {
    signing: SigningKey,
    kid: String,
    refresh_mac_key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// One entry of the JWKS document (RFC 8037 OKP key).
#[derive(Clone, Debug, Serialize)]
pub struct Jwk {
    kty: &'static str,
    crv: &'static str,
    x: String,
    kid: String,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

impl Keys {
    /// Keys from an Ed25519 signing key.
    pub fn from_signing_key(signing: SigningKey) -> Self {
        let kid = jwk_thumbprint(&signing.verifying_key());
        // Domain-separated derivation: the MAC key is independent of the signature key in use, yet
        // reproducible on every instance that holds the same PEM.
        let mut refresh_mac_key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"reauth"), signing.as_bytes())
            .expand(b"refresh-token-mac v1", &mut refresh_mac_key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        Self { signing, kid, refresh_mac_key }
    }

    /// Fresh random keys, never written anywhere (the memory store, tests).
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::from_bytes(&random_bytes::<32>()))
    }

    /// Reads a PKCS#8 PEM Ed25519 private key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.into(), source })?;
        let signing = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|error| KeyError::Invalid { path: path.into(), reason: error.to_string() })?;
        Ok(Self::from_signing_key(signing))
    }

    /// Reads the key at `path`, or creates it there (mode 0600) if there is none. Creation is
    /// exclusive, so two instances starting together end up with the same key.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let keys = Self::generate();
        let pem = keys
            .signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| KeyError::Invalid { path: path.into(), reason: error.to_string() })?;
        let io_error = |source| KeyError::Io { path: path.into(), source };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_error)?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(pem.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error)?;
                tracing::info!(path = %path.display(), kid = %keys.kid, "generated a new signing key");
                Ok(keys)
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(error) => Err(io_error(error)),
        }
    }

    /// The key identifier: the RFC 7638 JWK thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub(crate) fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub(crate) fn refresh_mac_key(&self) -> &[u8; 32] {
        &self.refresh_mac_key
    }
}

impl Jwk {
    /// An Ed25519 public key as a JWK, its `kid` the RFC 7638 thumbprint.
    pub fn from_key(key: &VerifyingKey) -> Self {
        Self {
            kty: "OKP",
            crv: "Ed25519",
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: jwk_thumbprint(key),
            alg: "EdDSA",
            use_: "sig",
        }
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no white space.
pub(crate) fn jwk_thumbprint(key: &VerifyingKey) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(key.as_bytes()));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_read_back_identically_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pem");
        let created = Keys::load_or_create(&path).unwrap();
        let loaded = Keys::load_or_create(&path).unwrap();
        assert_eq!(created.kid(), loaded.kid());
        assert_eq!(created.refresh_mac_key(), loaded.refresh_mac_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.pem");
        fs::write(&path, "not a key").unwrap();
        let error = Keys::load(&path).unwrap_err().to_string();
        assert!(error.contains("bad.pem"), "{error}");
    }

    #[test]
    fn the_mac_key_differs_per_signing_key() {
        assert_ne!(Keys::generate().refresh_mac_key(), Keys::generate().refresh_mac_key());
    }
}
