//! The hash of a command's content: what tells a retry (same content) from a request id
//! reused for something else.
//!
//! It is a keyed HMAC-SHA-256 under a secret of the hub's, never a plain digest: the hash
//! travels in the event's `ce-commandhash` header and is kept in `command_state`, and a plain
//! digest of a care registration would let anyone who reads headers confirm a guessed person
//! by hashing the guess. Each hash names the key it was made with, so the key can be rotated:
//! hashes under the previous key are still recognised while it is configured.

use hmac::{Hmac, Mac};
use prost::Message;
use sha2::{Digest, Sha256};

/// A hub secret for command hashes.
#[derive(Clone)]
pub struct HashKey {
    /// A short public name of the key (of a digest of the key, which is random).
    id: String,
    /// The HMAC keyed with the secret, ready to be cloned for each hash.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a command hash key must be at least {MIN_SECRET} bytes long")]
pub struct ShortKey;

impl HashKey {
    pub fn new(secret: &[u8]) -> Result<Self, ShortKey> {
        if secret.len() < MIN_SECRET {
            return Err(ShortKey);
        }
        let id = hex(&Sha256::digest([b"gov.hub command hash key\n", secret].concat())[..4]);
        let keyed = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| ShortKey)?;
        Ok(Self { id, keyed })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `<key id>.<hex of the first 16 bytes of the HMAC>` over the parts.
    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        format!("{}.{}", self.id, hex(&mac.finalize().into_bytes()[..16]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes commands under the current key and recognises hashes under the previous one.
#[derive(Debug, Clone)]
pub struct CommandHasher {
    current: HashKey,
    previous: Option<HashKey>,
}

/// A command's hash under the current key, and under the previous one during a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandHash {
    current: String,
    previous: Option<String>,
}

impl CommandHash {
    /// What is stored with the command's events.
    pub fn as_str(&self) -> &str {
        &self.current
    }

    /// Whether `stored` (a record's hash) is this command's, under either key.
    pub fn matches(&self, stored: &str) -> bool {
        stored == self.current || self.previous.as_deref() == Some(stored)
    }
}

impl CommandHasher {
    pub fn new(current: HashKey, previous: Option<HashKey>) -> Self {
        Self { current, previous }
    }

    /// Over the RPC's name and the request without its request id.
    pub fn hash<M: Message + Clone>(
        &self,
        rpc: &str,
        request: &M,
        clear_request_id: impl FnOnce(&mut M),
    ) -> CommandHash {
        let mut content = request.clone();
        clear_request_id(&mut content);
        let body = content.encode_to_vec();
        self.hash_parts(&[rpc.as_bytes(), &body])
    }

    /// Over any parts (the hub's own commands hash what fell due).
    pub fn hash_parts(&self, parts: &[&[u8]]) -> CommandHash {
        CommandHash {
            current: self.current.mac(parts),
            previous: self.previous.as_ref().map(|key| key.mac(parts)),
        }
    }
}

#[cfg(test)]
mod tests {
    use hub_api::v1::RateCaseRequest;

    use super::*;

    fn rate(request_id: &str, rating: u32) -> RateCaseRequest {
        RateCaseRequest {
            request_id: request_id.into(),
            case_id: "c".into(),
            expected_version: None,
            rating,
        }
    }

    fn key(byte: u8) -> HashKey {
        HashKey::new(&[byte; 32]).expect("32 bytes")
    }

    #[test]
    fn the_hash_ignores_the_request_id_and_sees_the_content_the_rpc_and_the_key() {
        let hasher = CommandHasher::new(key(1), None);
        let clear = |r: &mut RateCaseRequest| r.request_id.clear();
        let a = hasher.hash("RateCase", &rate("r1", 4), clear);
        assert_eq!(a, hasher.hash("RateCase", &rate("r2", 4), clear));
        assert_ne!(a, hasher.hash("RateCase", &rate("r1", 5), clear));
        assert_ne!(a, hasher.hash("OtherRpc", &rate("r1", 4), clear));
        let other_key = CommandHasher::new(key(2), None);
        assert!(
            !other_key
                .hash("RateCase", &rate("r1", 4), clear)
                .matches(a.as_str()),
            "without the key, the hash cannot be made again"
        );
        // The digest alone, as anyone could compute it, is not what is stored.
        let plain = hex(&Sha256::digest(rate("", 4).encode_to_vec()));
        assert!(!a.as_str().contains(&plain[..32]));
        assert_eq!(a.as_str().len(), 8 + 1 + 32);
    }

    #[test]
    fn a_hash_under_the_previous_key_is_recognised_during_a_rotation_only() {
        let clear = |r: &mut RateCaseRequest| r.request_id.clear();
        let before = CommandHasher::new(key(1), None);
        let stored = before.hash("RateCase", &rate("r", 4), clear);
        let rotating = CommandHasher::new(key(2), Some(key(1)));
        let now = rotating.hash("RateCase", &rate("r", 4), clear);
        assert!(
            now.matches(stored.as_str()),
            "recognised during the rotation"
        );
        assert_ne!(now.as_str(), stored.as_str(), "new hashes use the new key");
        let after = CommandHasher::new(key(2), None);
        assert!(
            !after
                .hash("RateCase", &rate("r", 4), clear)
                .matches(stored.as_str())
        );
        assert_eq!(HashKey::new(&[0; 31]).map(|_| ()), Err(ShortKey));
    }
}
