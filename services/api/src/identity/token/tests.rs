use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const UNIT: &str = "public-security";

/// A fresh Ed25519 key pair as `hub dev-ca` writes it: PKCS#8 PEM and SPKI PEM.
fn key_pair() -> (String, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
    (pair.serialize_pem(), pair.public_key_pem())
}

struct Setup {
    issuer: TokenIssuer,
    private_pem: String,
    verifier: TokenVerifier,
    now: jiff::Timestamp,
    good: String,
}

fn setup() -> Setup {
    let (private_pem, public_pem) = key_pair();
    let issuer = TokenIssuer::from_pkcs8_pem(private_pem.as_bytes()).expect("issuer");
    let verifier = TokenVerifier::from_public_pem(public_pem.as_bytes()).expect("verifier");
    let now: jiff::Timestamp = "2025-03-01T08:00:00Z".parse().expect("time");
    let good = issuer.issue(UNIT, "test", now, DAY).expect("token");
    Setup {
        issuer,
        private_pem,
        verifier,
        now,
        good,
    }
}

impl Setup {
    /// The good token passes in this very setup, so a refusal beside it is the change's.
    fn good_passes(&self) {
        assert_eq!(
            self.verifier.verify(&self.good, self.now).as_deref(),
            Ok(UNIT)
        );
    }

    /// A token with these claims, signed (EdDSA) with this setup's key.
    fn signed(&self, claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_ed_pem(self.private_pem.as_bytes()).expect("key");
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).expect("signed")
    }

    fn claims(&self) -> serde_json::Value {
        let now = self.now.as_second();
        json!({
            "sub": UNIT, "iss": "test", "aud": TOKEN_AUDIENCE,
            "iat": now, "nbf": now, "exp": now + 3600, "jti": "x",
        })
    }
}

/// URL-safe base64 without padding, as JWT segments are written.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn segments(token: &str) -> Vec<&str> {
    token.split('.').collect()
}

/// Every refusal says why without repeating the token.
fn refused(setup: &Setup, token: &str) -> TokenError {
    let err = setup
        .verifier
        .verify(token, setup.now)
        .expect_err("refused");
    let text = err.to_string();
    for part in segments(token).into_iter().filter(|p| p.len() > 8) {
        assert!(!text.contains(part), "{text}");
    }
    err
}

#[test]
fn b64url_writes_jwt_segments() {
    assert_eq!(
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    );
    assert_eq!(b64url(b"ab"), "YWI");
    assert_eq!(b64url(b"a"), "YQ");
}

#[test]
fn an_issued_token_verifies_and_names_its_unit() {
    let setup = setup();
    setup.good_passes();
    let header = jsonwebtoken::decode_header(&setup.good).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let second = setup
        .issuer
        .issue(UNIT, "test", setup.now, DAY)
        .expect("token");
    assert_ne!(second, setup.good, "each token has its own jti");
    // Valid from its first second to the one before exp.
    let last = setup.now + jiff::SignedDuration::from_secs(24 * 60 * 60 - 1);
    assert_eq!(
        setup.verifier.verify(&setup.good, last).as_deref(),
        Ok(UNIT)
    );
}

#[test]
fn an_expired_token_is_refused() {
    let setup = setup();
    setup.good_passes();
    let at_exp = setup.now + jiff::SignedDuration::from_secs(24 * 60 * 60);
    assert_eq!(
        setup.verifier.verify(&setup.good, at_exp),
        Err(TokenError::Expired)
    );
    let later = at_exp + jiff::SignedDuration::from_hours(5);
    assert_eq!(
        setup.verifier.verify(&setup.good, later),
        Err(TokenError::Expired)
    );
}

#[test]
fn a_token_before_its_not_before_is_refused() {
    let setup = setup();
    setup.good_passes();
    // Valid from CLOCK_SKEW before it was issued, not a second earlier.
    let skew = jiff::SignedDuration::try_from(super::CLOCK_SKEW).expect("skew");
    let behind = setup.now - skew;
    assert_eq!(
        setup.verifier.verify(&setup.good, behind).as_deref(),
        Ok("public-security")
    );
    let before = behind - jiff::SignedDuration::from_secs(1);
    assert_eq!(
        setup.verifier.verify(&setup.good, before),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let setup = setup();
    setup.good_passes();
    let (other_private, _) = key_pair();
    let other = TokenIssuer::from_pkcs8_pem(other_private.as_bytes()).expect("issuer");
    let forged = other.issue(UNIT, "test", setup.now, DAY).expect("token");
    assert_eq!(refused(&setup, &forged), TokenError::BadSignature);
}

#[test]
fn a_tampered_payload_is_refused() {
    let setup = setup();
    setup.good_passes();
    let mut claims = setup.claims();
    claims["sub"] = json!("finance");
    let parts = segments(&setup.good);
    let payload = b64url(claims.to_string().as_bytes());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(refused(&setup, &tampered), TokenError::BadSignature);
}

#[test]
fn a_token_for_another_audience_or_none_is_refused() {
    let setup = setup();
    setup.good_passes();
    let mut claims = setup.claims();
    assert_eq!(
        setup
            .verifier
            .verify(&setup.signed(&claims), setup.now)
            .as_deref(),
        Ok(UNIT),
        "hand-built claims pass as they are"
    );
    claims["aud"] = json!("another-hub");
    assert_eq!(
        refused(&setup, &setup.signed(&claims)),
        TokenError::WrongAudience
    );
    claims.as_object_mut().expect("object").remove("aud");
    assert_eq!(
        refused(&setup, &setup.signed(&claims)),
        TokenError::WrongAudience
    );
}

#[test]
fn a_token_without_a_subject_or_expiry_is_malformed() {
    let setup = setup();
    setup.good_passes();
    let mut claims = setup.claims();
    claims["sub"] = json!("");
    assert_eq!(
        refused(&setup, &setup.signed(&claims)),
        TokenError::Malformed
    );
    claims.as_object_mut().expect("object").remove("sub");
    assert_eq!(
        refused(&setup, &setup.signed(&claims)),
        TokenError::Malformed
    );
    let mut claims = setup.claims();
    claims.as_object_mut().expect("object").remove("exp");
    assert_eq!(
        refused(&setup, &setup.signed(&claims)),
        TokenError::Malformed
    );
}

#[test]
fn a_token_of_another_algorithm_is_refused() {
    let setup = setup();
    setup.good_passes();
    let parts = segments(&setup.good);
    for alg in ["HS256", "HS512", "RS256", "PS256", "ES256", "ES384"] {
        let header = b64url(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let token = format!("{header}.{}.{}", parts[1], parts[2]);
        assert_eq!(refused(&setup, &token), TokenError::BadSignature, "{alg}");
    }
    // An algorithm jsonwebtoken does not know cannot even be read.
    let header = b64url(br#"{"alg":"Ed448","typ":"JWT"}"#);
    let token = format!("{header}.{}.{}", parts[1], parts[2]);
    assert_eq!(refused(&setup, &token), TokenError::Malformed);
    // An HS256 token keyed with the public key's PEM (the classic confusion) is refused too.
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let token = format!("{header}.{}.{}", parts[1], b64url(&[0u8; 32]));
    assert_eq!(refused(&setup, &token), TokenError::BadSignature);
    // No algorithm at all, no signature.
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let token = format!("{header}.{}.", parts[1]);
    assert_eq!(refused(&setup, &token), TokenError::Malformed);
    // Our signer signs nothing but EdDSA.
    let key = EncodingKey::from_ed_pem(setup.private_pem.as_bytes()).expect("key");
    assert!(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &setup.claims(), &key).is_err());
}

#[test]
fn garbage_is_malformed() {
    let setup = setup();
    setup.good_passes();
    for garbage in ["", "abc", "a.b.c", "....", "not a token at all"] {
        assert_eq!(
            refused(&setup, garbage),
            TokenError::Malformed,
            "{garbage:?}"
        );
    }
    let truncated = &setup.good[..setup.good.len() / 2];
    assert!(setup.verifier.verify(truncated, setup.now).is_err());
}

#[test]
fn keys_that_are_not_ed25519_pem_are_refused_without_their_bytes() {
    let (private_pem, public_pem) = key_pair();
    let swapped = TokenVerifier::from_public_pem(private_pem.as_bytes()).expect_err("private");
    assert!(matches!(swapped, TokenError::Key(_)));
    assert!(TokenIssuer::from_pkcs8_pem(public_pem.as_bytes()).is_err());
    let ecdsa = rcgen::KeyPair::generate().expect("P-256 key");
    let err = TokenIssuer::from_pkcs8_pem(ecdsa.serialize_pem().as_bytes()).expect_err("P-256");
    assert!(matches!(err, TokenError::Key(_)));
    assert!(TokenVerifier::from_public_pem(ecdsa.public_key_pem().as_bytes()).is_err());
    assert!(TokenVerifier::from_public_pem(b"garbage").is_err());
    let key_body = private_pem.lines().nth(1).expect("a base64 line");
    assert!(!err.to_string().contains(key_body));
    let verifier = TokenVerifier::from_public_pem(public_pem.as_bytes()).expect("verifier");
    let debug = format!("{verifier:?}");
    let public_body = public_pem.lines().nth(1).expect("a base64 line");
    assert!(!debug.contains(public_body), "{debug}");
}

#[test]
fn an_empty_unit_is_not_issued() {
    let setup = setup();
    assert!(matches!(
        setup.issuer.issue("", "test", setup.now, DAY),
        Err(TokenError::Issue(_))
    ));
    assert!(matches!(
        setup
            .issuer
            .issue(UNIT, "test", setup.now, Duration::from_secs(u64::MAX)),
        Err(TokenError::Issue(_))
    ));
}
