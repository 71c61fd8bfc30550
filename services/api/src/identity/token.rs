//! Department identity by signed token, for callers that cannot present a client
//! certificate. The hub's development CA (`hub dev-ca`) issues one token per unit with an
//! Ed25519 key; every hub checks it with the public half.
//!
//! A token is a JWT signed with EdDSA (Ed25519) and nothing else: a token naming any other
//! algorithm (`none`, HS256, RS256, ES256, ...) is refused. It carries the unit code as
//! `sub`, [`TOKEN_AUDIENCE`] as `aud`, and `iat`, `nbf`, `exp` in seconds since the epoch.
//! Times are checked against the clock the caller passes in, with no leeway.

mod provider;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Audience every hub token carries and every hub checks.
pub const TOKEN_AUDIENCE: &str = "city-data-hub";

/// How far behind the issuer's clock a verifying hub's may run: tokens are valid from this
/// long before they were issued.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Why a token or a token key was refused. The messages are safe to show the caller: they
/// never hold the token's text or any key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or its header or claims cannot be read, or a claim the hub needs (`exp`,
    /// a non-empty `sub`) is missing.
    #[error("the token is not a well-formed hub token")]
    Malformed,
    /// The signature does not verify with the hub's key, or the token is not signed with
    /// EdDSA.
    #[error("the token's signature does not verify with the hub's token key (EdDSA only)")]
    BadSignature,
    /// The token's `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` is still to come.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token's `aud` is missing or is not [`TOKEN_AUDIENCE`].
    #[error("the token is not meant for this hub (audience)")]
    WrongAudience,
    /// A signing or public key that cannot be used; says what is wrong, never the key.
    #[error("token key: {0}")]
    Key(String),
    /// A token could not be issued (an empty unit code, a validity too long to represent).
    #[error("cannot issue a token: {0}")]
    Issue(String),
}

/// The claims of a hub token as issued.
#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

/// The claims the verifier reads itself (`aud` is checked by `jsonwebtoken`).
#[derive(Deserialize)]
struct CheckedClaims {
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

/// Issues hub tokens with an Ed25519 signing key.
pub struct TokenIssuer {
    key: EncodingKey,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("algorithm", &Algorithm::EdDSA)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// From a PKCS#8 PEM Ed25519 private key (as rcgen's `KeyPair::serialize_pem()` writes
    /// for `PKCS_ED25519`).
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, TokenError> {
        provider::install();
        let key = EncodingKey::from_ed_pem(pem)
            .map_err(|_| TokenError::Key("not a PKCS#8 PEM Ed25519 private key".to_owned()))?;
        provider::signing_key(&key).map_err(|_| {
            TokenError::Key("the PKCS#8 PEM does not hold a usable Ed25519 private key".to_owned())
        })?;
        Ok(Self { key })
    }

    /// A token naming `unit` (a unit code such as `public-security`) as `sub`, with `iss` =
    /// `issuer`, `aud` = [`TOKEN_AUDIENCE`], `iat` = `now`, `nbf` = `now` less
    /// [`CLOCK_SKEW`] (a hub whose clock runs a little behind the issuer's still takes it),
    /// `exp` = `now` + `valid_for` (whole seconds) and a random `jti`.
    pub fn issue(
        &self,
        unit: &str,
        issuer: &str,
        now: jiff::Timestamp,
        valid_for: Duration,
    ) -> Result<String, TokenError> {
        if unit.is_empty() {
            return Err(TokenError::Issue("the unit code is empty".to_owned()));
        }
        let iat = now.as_second();
        let exp = i64::try_from(valid_for.as_secs())
            .ok()
            .and_then(|secs| iat.checked_add(secs))
            .ok_or_else(|| TokenError::Issue("the validity is too long".to_owned()))?;
        let claims = IssuedClaims {
            sub: unit,
            iss: issuer,
            aud: TOKEN_AUDIENCE,
            iat,
            nbf: iat.saturating_sub(CLOCK_SKEW.as_secs().try_into().unwrap_or(i64::MAX)),
            exp,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(|e| TokenError::Issue(format!("signing failed ({})", kind_name(e.kind()))))
    }
}

/// Checks hub tokens with the Ed25519 public key of their issuer.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &Algorithm::EdDSA)
            .field("audience", &TOKEN_AUDIENCE)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// From an SPKI PEM Ed25519 public key (rcgen's `KeyPair::public_key_pem()`).
    pub fn from_public_pem(pem: &[u8]) -> Result<Self, TokenError> {
        provider::install();
        let key = DecodingKey::from_ed_pem(pem)
            .map_err(|_| TokenError::Key("not an SPKI PEM Ed25519 public key".to_owned()))?;
        provider::verifying_key(&key).map_err(|_| {
            TokenError::Key("the SPKI PEM does not hold a usable Ed25519 public key".to_owned())
        })?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Time is checked here against the caller's clock, not jsonwebtoken's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.validate_aud = true;
        validation.set_audience(&[TOKEN_AUDIENCE]);
        validation.set_required_spec_claims(&["aud"]);
        Ok(Self { key, validation })
    }

    /// The unit code (`sub`) of a token signed with this verifier's key (EdDSA only), meant
    /// for [`TOKEN_AUDIENCE`], with `exp` after `now` and `nbf` (if given) not after `now`.
    /// Whether that unit exists is for the caller to check against the registry.
    pub fn verify(&self, token: &str, now: jiff::Timestamp) -> Result<String, TokenError> {
        let data = jsonwebtoken::decode::<CheckedClaims>(token, &self.key, &self.validation)
            .map_err(|e| refusal(e.kind()))?;
        let claims = data.claims;
        let now = now.as_second();
        let exp = claims.exp.ok_or(TokenError::Malformed)?;
        if exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(TokenError::NotYetValid);
        }
        match claims.sub {
            Some(sub) if !sub.is_empty() => Ok(sub),
            _ => Err(TokenError::Malformed),
        }
    }
}

/// The refusal a `jsonwebtoken` error stands for.
fn refusal(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidClaimFormat(_) => TokenError::Malformed,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => TokenError::Malformed,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        // InvalidSignature, InvalidAlgorithm, key errors and whatever comes later: refused.
        _ => TokenError::BadSignature,
    }
}

/// A short name for a `jsonwebtoken` error, without any of the data it carries.
fn kind_name(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidEddsaKey | ErrorKind::InvalidKeyFormat => "unusable key",
        ErrorKind::InvalidAlgorithm => "algorithm not supported",
        ErrorKind::Json(_) => "claims not serializable",
        _ => "jsonwebtoken error",
    }
}
