//! The hash of a command: what tells a retry (the same command again) from a request id
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

    /// Over the RPC's name, the caller (`source`) and the whole request, its request id
    /// included: a retry of the command hashes alike, anything else does not, and two commands
    /// of the same content under different request ids cannot be linked by their hashes.
    pub fn hash<M: Message>(&self, rpc: &str, source: &str, request: &M) -> CommandHash {
        let body = request.encode_to_vec();
        self.hash_parts(&[rpc.as_bytes(), source.as_bytes(), &body])
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

    const BY: &str = "/departments/housing";

    #[test]
    fn the_hash_sees_the_content_the_request_id_the_caller_the_rpc_and_the_key() {
        let hasher = CommandHasher::new(key(1), None);
        let a = hasher.hash("RateCase", BY, &rate("r1", 4));
        assert_eq!(a, hasher.hash("RateCase", BY, &rate("r1", 4)), "a retry");
        assert_ne!(a, hasher.hash("RateCase", BY, &rate("r1", 5)));
        assert_ne!(
            a,
            hasher.hash("RateCase", BY, &rate("r2", 4)),
            "the same content under another request id is not linkable"
        );
        assert_ne!(
            a,
            hasher.hash("RateCase", "/departments/other", &rate("r1", 4))
        );
        assert_ne!(a, hasher.hash("OtherRpc", BY, &rate("r1", 4)));
        let other_key = CommandHasher::new(key(2), None);
        assert!(
            !other_key
                .hash("RateCase", BY, &rate("r1", 4))
                .matches(a.as_str()),
            "without the key, the hash cannot be made again"
        );
        // What the hub stored before keyed hashes (a plain digest anyone could compute from
        // a guess) is not what it stores now.
        let mut content = rate("r1", 4);
        content.request_id.clear();
        let plain: String =
            Sha256::digest([b"RateCase".as_slice(), &[0], &content.encode_to_vec()].concat())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
        assert!(!a.as_str().contains(&plain[..32]));
        assert_eq!(a.as_str().len(), 8 + 1 + 32);
    }

    #[test]
    fn a_hash_under_the_previous_key_is_recognised_during_a_rotation_only() {
        let before = CommandHasher::new(key(1), None);
        let stored = before.hash("RateCase", BY, &rate("r", 4));
        let rotating = CommandHasher::new(key(2), Some(key(1)));
        let now = rotating.hash("RateCase", BY, &rate("r", 4));
        assert!(
            now.matches(stored.as_str()),
            "recognised during the rotation"
        );
        assert_ne!(now.as_str(), stored.as_str(), "new hashes use the new key");
        let after = CommandHasher::new(key(2), None);
        assert!(
            !after
                .hash("RateCase", BY, &rate("r", 4))
                .matches(stored.as_str())
        );
        assert_eq!(HashKey::new(&[0; 31]).map(|_| ()), Err(ShortKey));
    }
}
