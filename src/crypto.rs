//! Encryption of secrets at rest (tenant passwords, client and webhook secrets, cached
//! tokens) with AES-256-GCM.
//!
//! A sealed value reads `enc:v1:<key id>:<base64(nonce || ciphertext)>`. The key id
//! lets the operator rotate: new values are sealed with the current key, values sealed
//! with an older key still open as long as that key stays configured.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("encryption key `{0}`: expected base64 of exactly 32 bytes")]
    BadKey(String),
    #[error("sealed value was encrypted with key id `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("sealed value is malformed or was tampered with")]
    Malformed,
}

/// Seals and opens secrets. Cheap to clone.
#[derive(Clone)]
pub struct Cipher {
    current: String,
    keys: Arc<HashMap<String, Aes256Gcm>>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn parse_key(id: &str, b64: &SecretString) -> Result<Aes256Gcm, CryptoError> {
    let bytes = B64
        .decode(b64.expose_secret().trim())
        .map_err(|_| CryptoError::BadKey(id.to_owned()))?;
    if bytes.len() != 32 {
        return Err(CryptoError::BadKey(id.to_owned()));
    }
    Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)))
}

impl Cipher {
    /// `current` seals new values; `older` (id → base64 key) only opens old ones.
    pub fn new(
        current_id: &str,
        current_key: &SecretString,
        older: &HashMap<String, SecretString>,
    ) -> Result<Self, CryptoError> {
        let mut keys = HashMap::new();
        for (id, key) in older {
            keys.insert(id.clone(), parse_key(id, key)?);
        }
        keys.insert(current_id.to_owned(), parse_key(current_id, current_key)?);
        Ok(Self {
            current: current_id.to_owned(),
            keys: Arc::new(keys),
        })
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let Some(key) = self.keys.get(&self.current) else {
            // `new` always inserts the current key.
            return String::new();
        };
        let ct = key
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("enc:v1:{}:{}", self.current, B64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<SecretString, CryptoError> {
        let rest = sealed
            .strip_prefix("enc:v1:")
            .ok_or(CryptoError::Malformed)?;
        let (kid, data) = rest.split_once(':').ok_or(CryptoError::Malformed)?;
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| CryptoError::UnknownKey(kid.to_owned()))?;
        let bytes = B64.decode(data).map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(12);
        let pt = key
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| CryptoError::Malformed)?;
        String::from_utf8(pt)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Malformed)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 32-byte key for one purpose (`label`) derived from a secret, so one configured
/// secret can key several things without them sharing a key.
pub fn derive_key(label: &str, secret: &SecretString) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(label.as_bytes());
    h.update(b":");
    h.update(secret.expose_secret().as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(B64.encode([byte; 32]))
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let c = Cipher::new("k1", &key(1), &HashMap::new()).unwrap();
        let sealed = c.seal("hunter2-password");
        assert!(sealed.starts_with("enc:v1:k1:"));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(c.open(&sealed).unwrap().expose_secret(), "hunter2-password");
        assert_ne!(c.seal("same"), c.seal("same"), "fresh nonce each time");
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = Cipher::new("k1", &key(1), &HashMap::new()).unwrap();
        let sealed_old = old.seal("s3cret");
        let mut older = HashMap::new();
        older.insert("k1".to_owned(), key(1));
        let new = Cipher::new("k2", &key(2), &older).unwrap();
        assert_eq!(new.open(&sealed_old).unwrap().expose_secret(), "s3cret");
        assert!(new.seal("x").starts_with("enc:v1:k2:"));
        let without_old = Cipher::new("k2", &key(2), &HashMap::new()).unwrap();
        assert!(
            matches!(without_old.open(&sealed_old), Err(CryptoError::UnknownKey(k)) if k == "k1")
        );
    }

    #[test]
    fn tampering_and_bad_keys_are_refused() {
        let c = Cipher::new("k1", &key(1), &HashMap::new()).unwrap();
        let sealed = c.seal("value");
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(c.open(&String::from_utf8(bytes).unwrap()).is_err());
        assert!(c.open("plain").is_err());
        assert!(Cipher::new("k", &SecretString::from("c2hvcnQ="), &HashMap::new()).is_err());
    }
}
