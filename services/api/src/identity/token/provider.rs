//! The one cryptography backend `jsonwebtoken` gets in the hub: EdDSA (Ed25519) through
//! ed25519-dalek, and nothing else. Every other algorithm is refused when a signer or
//! verifier is asked for, so a token naming HS256, RS256, ES256 or any other cannot verify.

use std::sync::Once;

use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

/// The provider: EdDSA signers and verifiers, no JWK support (the hub reads keys from PEM).
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Makes [`PROVIDER`] the process's `jsonwebtoken` backend, once. If another was installed
/// first, that one stays (`jsonwebtoken` allows one per process).
pub(super) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _already_installed = PROVIDER.install_default();
    });
}

/// The length of an Ed25519 public key.
const PUBLIC_KEY_LEN: usize = 32;

/// An Ed25519 signing key from the PKCS#8 DER a `jsonwebtoken` key holds.
pub(super) fn signing_key(key: &EncodingKey) -> Result<SigningKey> {
    if key.family() != AlgorithmFamily::Ed {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    SigningKey::from_pkcs8_der(key.inner()).map_err(|_| ErrorKind::InvalidEddsaKey.into())
}

/// An Ed25519 public key from the raw 32 bytes a `jsonwebtoken` key holds.
pub(super) fn verifying_key(key: &DecodingKey) -> Result<VerifyingKey> {
    if key.family() != AlgorithmFamily::Ed {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let bytes: &[u8; PUBLIC_KEY_LEN] = key
        .as_bytes()
        .try_into()
        .map_err(|_| ErrorKind::InvalidEddsaKey)?;
    VerifyingKey::from_bytes(bytes).map_err(|_| ErrorKind::InvalidEddsaKey.into())
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::EdDSA => Ok(Box::new(EdDsaSigner(signing_key(key)?))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::EdDSA => Ok(Box::new(EdDsaVerifier(verifying_key(key)?))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

struct EdDsaSigner(SigningKey);

impl Signer<Vec<u8>> for EdDsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

impl JwtSigner for EdDsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct EdDsaVerifier(VerifyingKey);

impl Verifier<Vec<u8>> for EdDsaVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let signature = Signature::from_slice(signature)?;
        // Strict: no malleable signatures or small-order keys.
        self.0.verify_strict(msg, &signature)
    }
}

impl JwtVerifier for EdDsaVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}
