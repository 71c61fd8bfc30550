//! Signing checkpoints with the hub's audit key (Ed25519), and checking them with its public
//! key alone.
//!
//! The key is a PKCS#8 PEM Ed25519 private key; its public half is an SPKI PEM, which is all
//! an outside verifier needs. A signature covers [`CONTEXT`], the algorithm's name, the key's
//! id and the encoded [`Checkpoint`] exactly as stored (see [`signed_message`]), so nothing is
//! ever re-encoded to be checked and no field of a [`SignedCheckpoint`] is left unsigned.
//! A verifier may hold several public keys (every hub instance's, and earlier keys after a
//! rotation): each checkpoint names the key that signed it by its id.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hub_api::v1::{Checkpoint, SignedCheckpoint};
use prost::Message;
use sha2::{Digest, Sha256};

/// What a checkpoint signature is over, before the checkpoint's bytes: the key signs nothing
/// else, and a signature cannot be taken for one over another kind of message.
pub const CONTEXT: &[u8] = b"gov.hub.v1.Checkpoint\n";

/// The only algorithm so far.
pub const ED25519: &str = "ed25519";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 PEM Ed25519 private key")]
    Private,
    #[error("not an SPKI PEM Ed25519 public key")]
    Public,
}

/// Why a signed checkpoint is not to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    #[error("it is signed with {0:?}, not ed25519")]
    Algorithm(String),
    #[error("it is signed with another key (key id {0})")]
    OtherKey(String),
    #[error("its signature does not verify")]
    Invalid,
    #[error("its content cannot be read: {0}")]
    Unreadable(String),
}

/// SHA-256 of a public key's 32 raw bytes.
pub fn key_id(key: &VerifyingKey) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// What is signed: [`CONTEXT`] || algorithm || `\n` || u32-BE length of the key id || key id
/// || the encoded checkpoint.
pub fn signed_message(algorithm: &str, key_id: &[u8], checkpoint: &[u8]) -> Vec<u8> {
    let mut message =
        Vec::with_capacity(CONTEXT.len() + algorithm.len() + 5 + key_id.len() + checkpoint.len());
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(algorithm.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(&(key_id.len() as u32).to_be_bytes());
    message.extend_from_slice(key_id);
    message.extend_from_slice(checkpoint);
    message
}

/// The hub's audit signing key.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: Vec<u8>,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::Private)?;
        Ok(Self::from_key(key))
    }

    /// From the key's 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self::from_key(SigningKey::from_bytes(secret))
    }

    fn from_key(key: SigningKey) -> Self {
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// The key as PKCS#8 PEM, to store it.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        self.key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|_| KeyError::Private)
    }

    /// The public key a verifier needs, as SPKI PEM.
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        self.key
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|_| KeyError::Public)
    }

    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            keys: vec![(self.key_id.clone(), self.key.verifying_key())],
        }
    }

    pub fn sign(&self, checkpoint: &Checkpoint) -> SignedCheckpoint {
        let bytes = checkpoint.encode_to_vec();
        let signature = self
            .key
            .sign(&signed_message(ED25519, &self.key_id, &bytes));
        SignedCheckpoint {
            checkpoint: bytes,
            algorithm: ED25519.to_owned(),
            key_id: self.key_id.clone(),
            signature: signature.to_bytes().to_vec(),
        }
    }
}

/// Checks checkpoints with the hub's public keys (one per key that signed any).
#[derive(Debug, Clone)]
pub struct CheckpointVerifier {
    keys: Vec<(Vec<u8>, VerifyingKey)>,
}

impl CheckpointVerifier {
    pub fn from_public_pem(pem: &str) -> Result<Self, KeyError> {
        Self::from_public_pems(&[pem])
    }

    /// From several SPKI PEM public keys: a checkpoint verifies with the one its key id names.
    pub fn from_public_pems(pems: &[&str]) -> Result<Self, KeyError> {
        let keys = pems
            .iter()
            .map(|pem| {
                let key = VerifyingKey::from_public_key_pem(pem).map_err(|_| KeyError::Public)?;
                Ok((key_id(&key), key))
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        if keys.is_empty() {
            return Err(KeyError::Public);
        }
        Ok(Self { keys })
    }

    /// The keys' ids, in hex, comma-separated.
    pub fn key_id(&self) -> String {
        let ids: Vec<String> = self.keys.iter().map(|(id, _)| hex(id)).collect();
        ids.join(",")
    }

    /// The checkpoint `signed` vouches for, if one of these keys signed it.
    pub fn verify(&self, signed: &SignedCheckpoint) -> Result<Checkpoint, BadSignature> {
        if signed.algorithm != ED25519 {
            return Err(BadSignature::Algorithm(signed.algorithm.clone()));
        }
        let Some((_, key)) = self.keys.iter().find(|(id, _)| *id == signed.key_id) else {
            return Err(BadSignature::OtherKey(hex(&signed.key_id)));
        };
        let signature =
            Signature::from_slice(&signed.signature).map_err(|_| BadSignature::Invalid)?;
        key.verify_strict(
            &signed_message(&signed.algorithm, &signed.key_id, &signed.checkpoint),
            &signature,
        )
        .map_err(|_| BadSignature::Invalid)?;
        Checkpoint::decode(signed.checkpoint.as_slice())
            .map_err(|e| BadSignature::Unreadable(e.to_string()))
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            instance: "hub-a".into(),
            reason: "export".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_the_public_key_alone_and_nothing_changed_does() {
        let signer = CheckpointSigner::from_bytes(&[7; 32]);
        let pem = signer.public_key_pem().expect("pem");
        let verifier = CheckpointVerifier::from_public_pem(&pem).expect("public key");
        let signed = signer.sign(&checkpoint());
        assert_eq!(verifier.verify(&signed), Ok(checkpoint()));

        // The stored private key reads back as the same key.
        let again = CheckpointSigner::from_pkcs8_pem(&signer.to_pkcs8_pem().expect("pem"))
            .expect("reads back");
        assert_eq!(again.verifier().key_id(), verifier.key_id());

        let mut changed = signed.clone();
        changed.checkpoint[2] ^= 1;
        assert_eq!(verifier.verify(&changed), Err(BadSignature::Invalid));
        let mut resigned = signed.clone();
        resigned.signature = CheckpointSigner::from_bytes(&[8; 32])
            .sign(&checkpoint())
            .signature;
        assert_eq!(verifier.verify(&resigned), Err(BadSignature::Invalid));
        let other = CheckpointSigner::from_bytes(&[8; 32]).sign(&checkpoint());
        assert!(matches!(
            verifier.verify(&other),
            Err(BadSignature::OtherKey(_))
        ));
        let mut algorithm = signed;
        algorithm.algorithm = "sm2".into();
        assert!(matches!(
            verifier.verify(&algorithm),
            Err(BadSignature::Algorithm(_))
        ));
        assert_eq!(
            CheckpointVerifier::from_public_pem("not a key").err(),
            Some(KeyError::Public)
        );
        // A key id changed to another known key's: the signature covers the id.
        let both = CheckpointVerifier::from_public_pems(&[
            &pem,
            &CheckpointSigner::from_bytes(&[8; 32])
                .public_key_pem()
                .expect("pem"),
        ])
        .expect("two keys");
        assert_eq!(
            both.verify(&other),
            Ok(checkpoint()),
            "the second key's own"
        );
        let mut relabelled = other;
        relabelled.key_id = key_id(&CheckpointSigner::from_bytes(&[7; 32]).key.verifying_key());
        assert_eq!(both.verify(&relabelled), Err(BadSignature::Invalid));
    }
}
