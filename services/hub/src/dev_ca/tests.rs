use std::path::Path;

use hub_api::identity::token::{TokenError, TokenVerifier};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::Pem;
use x509_parser::prelude::X509Certificate;

use super::*;

fn now() -> jiff::Timestamp {
    "2025-03-01T08:00:00Z".parse().expect("time")
}

fn options() -> DevCaOptions {
    DevCaOptions {
        hosts: vec![
            "hub.city.example".into(),
            "10.0.0.7".into(),
            "[fd00::7]".into(),
        ],
        token_days: 30,
        now: now(),
    }
}

fn registry() -> Registry {
    crate::load_registry(None).expect("demo data")
}

fn pem(path: &Path) -> Pem {
    let bytes = std::fs::read(path).expect("a certificate file");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).expect("PEM");
    pem
}

fn common_name<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a str> {
    cert.subject().iter_common_name().next()?.as_str().ok()
}

fn key_ids<'a>(cert: &'a X509Certificate<'_>) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
    let (mut subject, mut authority) = (None, None);
    for ext in cert.iter_extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => subject = Some(id.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority = aki.key_identifier.as_ref().map(|id| id.0);
            }
            _ => {}
        }
    }
    (subject, authority)
}

/// `leaf` names `ca` as its issuer, by name and key identifier, and `ca`'s key signed it.
fn issued_by(leaf: &X509Certificate<'_>, ca: &X509Certificate<'_>) -> bool {
    leaf.issuer() == ca.subject()
        && key_ids(leaf).1.is_some()
        && key_ids(leaf).1 == key_ids(ca).0
        && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

#[test]
fn written_again_the_ca_and_the_token_key_are_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = registry();
    let first = write(dir.path(), &registry, &options()).expect("first run");
    let read = |p: &Path| std::fs::read(p).expect("file");
    let (ca, ca_key) = (read(&first.ca_cert), read(&first.ca_key));
    let (token_key, token_pub) = (
        read(&first.token_signing_key),
        read(&first.token_public_key),
    );
    let old_unit_cert = read(&first.units[0].cert);
    let old_token = String::from_utf8(read(&first.units[0].token)).expect("text");

    let later = options().now + jiff::SignedDuration::from_hours(1);
    let second = write(
        dir.path(),
        &registry,
        &DevCaOptions {
            now: later,
            ..options()
        },
    )
    .expect("second run");
    assert_eq!(read(&second.ca_cert), ca);
    assert_eq!(read(&second.ca_key), ca_key);
    assert_eq!(read(&second.token_signing_key), token_key);
    assert_eq!(read(&second.token_public_key), token_pub);
    assert_ne!(read(&second.units[0].cert), old_unit_cert, "new leaves");

    // What the first run handed out still holds under the kept CA and key.
    let ca_pem = pem(&second.ca_cert);
    let ca = ca_pem.parse_x509().expect("CA");
    let (_, old) = x509_parser::pem::parse_x509_pem(&old_unit_cert).expect("PEM");
    assert!(issued_by(&old.parse_x509().expect("cert"), &ca));
    let new_pem = pem(&second.units[0].cert);
    assert!(issued_by(&new_pem.parse_x509().expect("cert"), &ca));
    let verifier = TokenVerifier::from_public_pem(&token_pub).expect("verifier");
    assert_eq!(
        verifier.verify(&old_token, later).as_deref(),
        Ok(second.units[0].code.as_str())
    );
}

#[test]
fn every_unit_gets_a_certificate_named_by_its_code_from_the_ca() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = registry();
    let written = write(dir.path(), &registry, &options()).expect("written");
    let codes: Vec<&str> = registry.units().map(|u| u.code.as_str()).collect();
    assert_eq!(
        written
            .units
            .iter()
            .map(|u| u.code.as_str())
            .collect::<Vec<_>>(),
        codes
    );
    assert!(!codes.is_empty());

    let ca_pem = pem(&written.ca_cert);
    let ca = ca_pem.parse_x509().expect("CA");
    assert_eq!(common_name(&ca), Some(CA_NAME));
    let constraints = ca.basic_constraints().expect("one").expect("present").value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    assert!(ca.verify_signature(None).is_ok(), "self-signed");

    for unit in &written.units {
        assert_eq!(
            unit.cert,
            written.dir.join("units").join(format!("{}.pem", unit.code))
        );
        let leaf_pem = pem(&unit.cert);
        let leaf = leaf_pem.parse_x509().expect("unit certificate");
        assert_eq!(common_name(&leaf), Some(unit.code.as_str()));
        assert!(issued_by(&leaf, &ca), "{}", unit.code);
        let eku = leaf
            .extended_key_usage()
            .expect("one")
            .expect("present")
            .value;
        assert!(eku.client_auth && !eku.server_auth);
        let sans = &leaf
            .subject_alternative_name()
            .expect("one")
            .expect("present")
            .value;
        let uri = format!("urn:city-data-hub:unit:{}", unit.code);
        assert_eq!(sans.general_names, vec![GeneralName::URI(&uri)]);
        // Valid from a little before it was made, for a peer whose clock runs behind.
        assert_eq!(
            leaf.validity().not_before.timestamp(),
            now().as_second() - 300
        );
    }

    let server_pem = pem(&written.server_cert);
    let server = server_pem.parse_x509().expect("server certificate");
    assert!(issued_by(&server, &ca));
    let eku = server
        .extended_key_usage()
        .expect("one")
        .expect("present")
        .value;
    assert!(eku.server_auth && !eku.client_auth);
    let sans = &server
        .subject_alternative_name()
        .expect("one")
        .expect("present")
        .value;
    let expected = [
        GeneralName::DNSName("localhost"),
        GeneralName::IPAddress(&[127, 0, 0, 1]),
        GeneralName::IPAddress(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        GeneralName::DNSName("hub.city.example"),
        GeneralName::IPAddress(&[10, 0, 0, 7]),
        GeneralName::IPAddress(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]),
    ];
    assert_eq!(sans.general_names, expected);
}

#[cfg(unix)]
#[test]
fn private_keys_and_tokens_are_the_owners_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let written = write(dir.path(), &registry(), &options()).expect("written");
    let mut private = vec![
        &written.ca_key,
        &written.server_key,
        &written.token_signing_key,
    ];
    for unit in &written.units {
        private.extend([&unit.key, &unit.token]);
    }
    for path in private {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(written.dir.join("units"))
        .expect("units")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn every_unit_token_verifies_with_the_public_key_and_names_the_unit() {
    let dir = tempfile::tempdir().expect("dir");
    let written = write(dir.path(), &registry(), &options()).expect("written");
    let public = std::fs::read(&written.token_public_key).expect("public key");
    let verifier = TokenVerifier::from_public_pem(&public).expect("verifier");
    let expiry = now() + jiff::SignedDuration::from_hours(30 * 24);
    for unit in &written.units {
        let token = std::fs::read_to_string(&unit.token).expect("token");
        assert_eq!(
            verifier.verify(&token, now()).as_deref(),
            Ok(unit.code.as_str())
        );
        assert_eq!(verifier.verify(&token, expiry), Err(TokenError::Expired));
    }
}

#[test]
fn identity_toml_names_the_files_by_absolute_path() {
    let dir = tempfile::tempdir().expect("dir");
    // A folder named through `..` is written as canonical absolute paths.
    let relative = dir.path().join("a/../b");
    let written = write(&relative, &registry(), &options()).expect("written");
    assert!(written.dir.is_absolute());
    let text = std::fs::read_to_string(&written.config).expect("identity.toml");
    let value: toml::Table = toml::from_str(&text).expect("TOML");
    let identity = value["identity"].as_table().expect("[identity]");
    assert_eq!(identity["mode"].as_str(), Some("production"));
    let path = |key: &str| PathBuf::from(identity[key].as_str().expect(key));
    assert_eq!(path("tls_cert_file"), written.server_cert);
    assert_eq!(path("tls_key_file"), written.server_key);
    assert_eq!(path("client_ca_file"), written.ca_cert);
    assert_eq!(path("token_public_key_file"), written.token_public_key);
    assert_eq!(identity.len(), 5);
    assert!(written.server_cert.starts_with(&written.dir) && written.dir.is_absolute());
}

#[test]
fn half_a_ca_or_tokens_of_no_days_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = registry();
    let no_days = DevCaOptions {
        token_days: 0,
        ..options()
    };
    assert!(write(dir.path(), &registry, &no_days).is_err());
    let written = write(dir.path(), &registry, &options()).expect("written");
    std::fs::remove_file(&written.ca_key).expect("remove");
    let err = write(dir.path(), &registry, &options()).expect_err("half a CA");
    assert!(err.to_string().contains("go together"), "{err}");
    assert!(
        written.ca_cert.exists(),
        "the old CA certificate is left alone"
    );
}

#[test]
fn a_ca_key_that_is_not_the_certificates_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = registry();
    let written = write(dir.path(), &registry, &options()).expect("written");
    let other = KeyPair::generate().expect("key");
    std::fs::write(&written.ca_key, other.serialize_pem()).expect("swap");
    let err = write(dir.path(), &registry, &options()).expect_err("mismatch");
    assert!(err.to_string().contains("is not the key of"), "{err}");
}

#[test]
fn a_foreign_ca_is_another_ca() {
    let dir = tempfile::tempdir().expect("dir");
    let written = write(dir.path(), &registry(), &options()).expect("written");
    let unit = written.units[0].code.clone();
    let (foreign_ca, cert, key) = write_foreign(dir.path(), &unit).expect("foreign");
    assert!(key.exists());
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    assert_ne!(
        std::fs::read(&foreign_ca).expect("foreign CA"),
        std::fs::read(&written.ca_cert).expect("CA")
    );
    let (ours_pem, foreign_pem, leaf_pem) = (pem(&written.ca_cert), pem(&foreign_ca), pem(&cert));
    let ours = ours_pem.parse_x509().expect("CA");
    let foreign = foreign_pem.parse_x509().expect("foreign CA");
    let leaf = leaf_pem.parse_x509().expect("leaf");
    assert_eq!(common_name(&leaf), Some(unit.as_str()));
    assert!(issued_by(&leaf, &foreign));
    assert!(leaf.verify_signature(Some(ours.public_key())).is_err());
    assert!(write_foreign(dir.path(), "../escape").is_err());
}
