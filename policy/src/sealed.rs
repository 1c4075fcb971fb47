//! Sealed secrets: XChaCha20-Poly1305 under a named 256-bit key, as text
//! `tg1.<key id>.<base64url(nonce ‖ ciphertext)>`.
//!
//! The key id travels in the blob so that a ring of keys (`k2:<base64>,k1:<base64>`,
//! the first one sealing) opens blobs sealed under any of them while a key is
//! rotated. Associated data binds a blob to where it belongs (an org, a provider):
//! copied anywhere else it does not open. Nothing here does I/O or draws random
//! numbers: the caller passes the nonce in, so the same code runs in the admin
//! service and inside the WASI component.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
pub use zeroize::Zeroizing;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce (XChaCha20's 192 bits: random nonces never collide in practice).
pub const NONCE_LEN: usize = 24;
/// Format tag that starts every sealed blob.
const TAG: &str = "tg1";
/// Longest key id.
const MAX_ID_LEN: usize = 32;

/// A key ring or sealed blob that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A ring entry is not `[id:]<base64 of 32 bytes>`; carries its position.
    #[error("key entry {0} is not [id:]<base64 of 32 bytes> (id: 1-32 of A-Z a-z 0-9 _ -)")]
    BadKey(usize),
    /// Two ring entries have the same id.
    #[error("key id {0:?} appears twice")]
    DuplicateId(String),
    /// The ring is empty: there is nothing to seal with.
    #[error("no key configured")]
    NoKey,
    /// The text is not a sealed blob.
    #[error("not a sealed value")]
    Malformed,
    /// The blob names a key the ring does not hold.
    #[error("sealed under key {0:?}, which is not configured")]
    UnknownKey(String),
    /// Wrong key, wrong associated data, or tampered bytes.
    #[error("sealed value does not open (wrong key, wrong owner or tampered)")]
    Forged,
}

/// One named key.
#[derive(Clone)]
pub struct SealKey {
    id: String,
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl SealKey {
    /// A key from its id and bytes.
    pub fn new(id: &str, bytes: [u8; KEY_LEN]) -> Result<SealKey, SealError> {
        if !valid_id(id) {
            return Err(SealError::BadKey(0));
        }
        Ok(SealKey {
            id: id.to_string(),
            bytes: Zeroizing::new(bytes),
        })
    }

    /// A key named by its fingerprint (`<prefix><8 hex of sha256(key)>`).
    pub fn fingerprinted(prefix: &str, bytes: [u8; KEY_LEN]) -> Result<SealKey, SealError> {
        SealKey::new(&format!("{prefix}{}", fingerprint(&bytes)), bytes)
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The ring entry text `id:<base64>` (for a key file).
    pub fn to_entry(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}:{}", self.id, STANDARD.encode(*self.bytes)))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.bytes).into())
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealKey({:?}, <redacted>)", self.id)
    }
}

/// The first 8 hex digits of the key's SHA-256: an id that names no secret.
fn fingerprint(bytes: &[u8; KEY_LEN]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Keys by id; the first seals, every one opens.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<SealKey>,
}

impl KeyRing {
    /// Parses `[id:]<base64>` entries separated by commas or whitespace; an entry
    /// without an id is named by its fingerprint. Empty text is an empty ring.
    pub fn parse(text: &str) -> Result<KeyRing, SealError> {
        let mut keys: Vec<SealKey> = Vec::new();
        let entries = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty());
        for (i, entry) in entries.enumerate() {
            let (id, b64) = match entry.split_once(':') {
                Some((id, b64)) => (Some(id), b64),
                None => (None, entry),
            };
            let decoded = Zeroizing::new(STANDARD.decode(b64).map_err(|_| SealError::BadKey(i))?);
            let bytes: [u8; KEY_LEN] = decoded
                .as_slice()
                .try_into()
                .map_err(|_| SealError::BadKey(i))?;
            let key = match id {
                Some(id) => SealKey::new(id, bytes),
                None => SealKey::fingerprinted("", bytes),
            }
            .map_err(|_| SealError::BadKey(i))?;
            if keys.iter().any(|k| k.id == key.id) {
                return Err(SealError::DuplicateId(key.id));
            }
            keys.push(key);
        }
        Ok(KeyRing { keys })
    }

    /// A ring of `keys`, the first sealing.
    pub fn of(keys: Vec<SealKey>) -> KeyRing {
        KeyRing { keys }
    }

    /// This ring followed by the keys of `older` it lacks (by id): seals like
    /// this one, opens what either opens.
    pub fn with_fallback(&self, older: &KeyRing) -> KeyRing {
        let mut keys = self.keys.clone();
        keys.extend(
            older
                .keys
                .iter()
                .filter(|o| !self.keys.iter().any(|k| k.id == o.id))
                .cloned(),
        );
        KeyRing { keys }
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that seals.
    pub fn current(&self) -> Option<&SealKey> {
        self.keys.first()
    }

    /// The ids, sealing key first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// The ring as text for a key file or an edge setting (`id:<base64>,…`).
    pub fn to_text(&self) -> Zeroizing<String> {
        let entries: Vec<Zeroizing<String>> = self.keys.iter().map(SealKey::to_entry).collect();
        let mut text = String::new();
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(e);
        }
        Zeroizing::new(text)
    }

    /// Seals `plaintext` under the current key with `nonce` (fresh random bytes:
    /// reusing one under the same key breaks the cipher) and `aad`.
    pub fn seal(
        &self,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<String, SealError> {
        let key = self.current().ok_or(SealError::NoKey)?;
        let ciphertext = key
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Forged)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        Ok(format!("{TAG}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Opens a blob sealed under any key of the ring with the same `aad`.
    pub fn open(&self, blob: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (id, body) = split(blob).ok_or(SealError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        key.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Forged)
    }
}

/// `(key id, payload)` of a sealed blob; `None` for anything else.
fn split(blob: &str) -> Option<(&str, &str)> {
    let rest = blob.strip_prefix(TAG)?.strip_prefix('.')?;
    let (id, body) = rest.split_once('.')?;
    valid_id(id).then_some((id, body))
}

/// Whether `text` has the shape of a sealed blob (it may still not open).
pub fn is_sealed(text: &str) -> bool {
    split(text).is_some()
}

/// The id of the key a blob was sealed under.
pub fn key_id(blob: &str) -> Option<&str> {
    split(blob).map(|(id, _)| id)
}

/// Associated data of a provider credential in an edge record: the org and the
/// provider it belongs to, so a blob copied into another org's (or provider's)
/// record does not open.
pub fn provider_credential_aad(org_id: &str, provider: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + org_id.len() + provider.len());
    aad.extend_from_slice(b"tollgate/edge-credential/v1\0");
    aad.extend_from_slice(org_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(provider.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(text: &str) -> KeyRing {
        KeyRing::parse(text).unwrap()
    }

    const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    #[test]
    fn seals_and_opens_with_the_same_key_and_owner() {
        let r = ring(K1);
        let blob = r.seal([7; NONCE_LEN], b"sk-secret", b"org_a").unwrap();
        assert!(blob.starts_with("tg1.k1.") && !blob.contains("sk-secret"));
        assert_eq!(key_id(&blob), Some("k1"));
        assert_eq!(r.open(&blob, b"org_a").unwrap().as_slice(), b"sk-secret");
    }

    #[test]
    fn another_owner_key_or_tampered_byte_does_not_open() {
        let r = ring(K1);
        let blob = r.seal([7; NONCE_LEN], b"sk-secret", b"org_a").unwrap();
        assert_eq!(r.open(&blob, b"org_b"), Err(SealError::Forged));
        let other = ring("k1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
        assert_eq!(other.open(&blob, b"org_a"), Err(SealError::Forged));
        assert_eq!(
            ring(K2).open(&blob, b"org_a"),
            Err(SealError::UnknownKey("k1".into()))
        );
        let mut tampered = blob.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(r.open(&tampered, b"org_a"), Err(SealError::Forged));
        assert_eq!(r.open("sk-plaintext", b"org_a"), Err(SealError::Malformed));
        assert_eq!(r.open("tg1.k1.", b"org_a"), Err(SealError::Malformed));
        assert_eq!(
            KeyRing::default().seal([0; NONCE_LEN], b"x", b""),
            Err(SealError::NoKey)
        );
    }

    #[test]
    fn a_ring_opens_blobs_of_every_key_and_seals_with_the_first() {
        let old = ring(K1).seal([1; NONCE_LEN], b"v", b"").unwrap();
        let both = ring(&format!("{K2}, {K1}"));
        assert_eq!(both.open(&old, b"").unwrap().as_slice(), b"v");
        assert_eq!(
            key_id(&both.seal([2; NONCE_LEN], b"v", b"").unwrap()),
            Some("k2")
        );
        assert_eq!(both.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(KeyRing::parse(&both.to_text()).unwrap().ids().count(), 2);
        let merged = ring(K2).with_fallback(&ring(&format!("{K1},{K2}")));
        assert_eq!(merged.ids().collect::<Vec<_>>(), ["k2", "k1"]);
    }

    #[test]
    fn bad_rings_are_refused_and_never_echo_key_bytes() {
        assert_eq!(
            KeyRing::parse("k1:short").unwrap_err(),
            SealError::BadKey(0)
        );
        assert_eq!(
            KeyRing::parse(&format!(
                "{K1},bad id:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
            ))
            .unwrap_err(),
            SealError::BadKey(1)
        );
        assert_eq!(
            KeyRing::parse(&format!("{K1},{K1}")).unwrap_err(),
            SealError::DuplicateId("k1".into())
        );
        assert!(KeyRing::parse("").unwrap().is_empty());
        let unnamed = ring("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
        assert_eq!(unnamed.current().unwrap().id().len(), 8);
        assert!(!format!("{:?}", ring(K1)).contains("AQEB"));
    }
}
