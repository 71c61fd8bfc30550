//! NATS accounts: how the departments are kept apart on the hub's NATS.
//!
//! Isolation is by account, not by subject prefix. Measured on nats-server 2.15.1: with the
//! feeds in one account, a department allowed on its API reads everyone's feed through direct
//! get, message get, consumers of its own or another's durable, and snoops `_INBOX.>`; and even
//! with tight per-user permissions the reply subject of a permitted request and a push
//! consumer's delivery subject are not checked, so a department could make the server write
//! into `gov.events.>` or another department's feed.
//!
//! So the hub's streams (GOV_EVENTS, the feeds `FEED_<DEPT>`) live in the hub's account
//! ([`HUB_ACCOUNT`]), the only one with JetStream. Each unit of the registry (departments and
//! dispatch units) is an account of its own, without JetStream, that imports from the hub's
//! account only what its own feed needs, each exported to that account alone:
//!
//! - its feed subjects `gov.feed.<dept>.>` (a stream import);
//! - the next-message and info API of the durable pull consumer the hub made for it, as
//!   services under its own API prefix [`DEPARTMENT_JS_API_PREFIX`]
//!   (`$JS.hub.API.CONSUMER.MSG.NEXT.FEED_<DEPT>.feed-<dept>` and `...CONSUMER.INFO...`);
//! - that consumer's acknowledgements, `$JS.ACK.FEED_<DEPT>.feed-<dept>.>` (a service).
//!
//! Its user may publish to those services alone and subscribe to its feed subjects and its
//! own inbox prefix `_INBOX_<dept>.>`; everything else is denied. A reply subject it names
//! (`gov.events.case.x`, say) lands in its own account, where no stream listens. Users
//! authenticate with NKeys: the configuration lists public keys, the seed is the credential.

use std::fmt::Write as _;

use crate::names::{
    DEPARTMENT_JS_API_PREFIX, JS_API_PREFIX, department_inbox_prefix, feed_ack_subjects,
    feed_info_subject, feed_next_subject, feed_subjects,
};

/// The hub's own account: its streams and consumers, and the only one with JetStream.
pub const HUB_ACCOUNT: &str = "HUB";

/// What the accounts are rendered from.
#[derive(Debug, Clone)]
pub struct AccountsSpec {
    /// The public nkey (`U...`) of the hub's user.
    pub hub_user: String,
    /// One account per unit of the registry.
    pub units: Vec<UnitAccount>,
}

/// A unit's account.
#[derive(Debug, Clone)]
pub struct UnitAccount {
    /// The unit's code (`civil-affairs`, `dcc-310104`): the account's name.
    pub code: String,
    /// The public nkey (`U...`) of the unit's user.
    pub user: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountsError {
    #[error("the user key of {owner} ({key:?}) is not a NATS user's public nkey")]
    NotAUserKey { owner: String, key: String },
    #[error(
        "unit code {0:?} cannot name a NATS account and its subjects \
         (lowercase ASCII letters, digits and `-`, starting with a letter or digit)"
    )]
    BadCode(String),
    #[error("unit {0} is listed twice")]
    Duplicate(String),
}

/// One export of the hub's account or the matching import of a unit's: the subject in the
/// hub's account, and where the unit reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub kind: SharedKind,
    /// The subject in the hub's account.
    pub subject: String,
    /// The subject in the unit's account (the same for streams and acknowledgements).
    pub local: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedKind {
    /// Messages flow from the hub's account into the unit's.
    Stream,
    /// Requests flow from the unit's account to the hub's, the answers back; `streamed` when
    /// one request may get many answers (a pull request's messages).
    Service { streamed: bool },
}

/// Everything the hub's account shares with the unit `code`, and nothing else.
pub fn shared_with(code: &str) -> Vec<Shared> {
    let service = |streamed, subject: String, local: String| Shared {
        kind: SharedKind::Service { streamed },
        subject,
        local,
    };
    vec![
        Shared {
            kind: SharedKind::Stream,
            subject: feed_subjects(code),
            local: feed_subjects(code),
        },
        service(
            true,
            feed_next_subject(JS_API_PREFIX, code),
            feed_next_subject(DEPARTMENT_JS_API_PREFIX, code),
        ),
        service(
            false,
            feed_info_subject(JS_API_PREFIX, code),
            feed_info_subject(DEPARTMENT_JS_API_PREFIX, code),
        ),
        service(false, feed_ack_subjects(code), feed_ack_subjects(code)),
    ]
}

/// What the user of unit `code` may publish to: the services it imports, nothing else.
pub fn unit_publish(code: &str) -> Vec<String> {
    shared_with(code)
        .into_iter()
        .filter(|s| matches!(s.kind, SharedKind::Service { .. }))
        .map(|s| s.local)
        .collect()
}

/// What the user of unit `code` may subscribe to: its feed subjects and its own inbox prefix.
pub fn unit_subscribe(code: &str) -> Vec<String> {
    shared_with(code)
        .into_iter()
        .filter(|s| s.kind == SharedKind::Stream)
        .map(|s| s.local)
        .chain([format!("{}.>", department_inbox_prefix(code))])
        .collect()
}

/// A unit code fit to name an account and sit in subjects: lowercase ASCII letters, digits
/// and `-`, not starting with `-`.
fn code_is_fit(code: &str) -> bool {
    code.bytes().next().is_some_and(|b| b != b'-')
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_user_key(owner: &str, key: &str) -> Result<(), AccountsError> {
    let is_user = key.starts_with('U') && nkeys::KeyPair::from_public_key(key).is_ok();
    if is_user {
        Ok(())
    } else {
        Err(AccountsError::NotAUserKey {
            owner: owner.to_owned(),
            key: key.to_owned(),
        })
    }
}

/// A string in the configuration's syntax (a JSON string is one).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The `accounts { ... }` block of a nats-server configuration for `spec`: the hub's account
/// with JetStream and its exports, and one account per unit with its user, permissions and
/// imports. Checks every key and code first.
pub fn render(spec: &AccountsSpec) -> Result<String, AccountsError> {
    check_user_key("the hub", &spec.hub_user)?;
    let mut seen = std::collections::BTreeSet::new();
    for unit in &spec.units {
        if !code_is_fit(&unit.code) {
            return Err(AccountsError::BadCode(unit.code.clone()));
        }
        if !seen.insert(unit.code.as_str()) {
            return Err(AccountsError::Duplicate(unit.code.clone()));
        }
        check_user_key(&unit.code, &unit.user)?;
    }

    let hub = quoted(HUB_ACCOUNT);
    // Writing into a String cannot fail.
    let mut out = String::from(
        "# Written by the hub (hub_log::accounts). Each unit is an account of its own, without\n\
         # JetStream, that reaches only its own feed in the hub's account.\n\
         accounts {\n",
    );
    let _ = writeln!(out, "  {hub}: {{");
    out.push_str("    jetstream: enabled\n");
    let _ = writeln!(
        out,
        "    users: [\n      {{ nkey: {} }}\n    ]",
        quoted(&spec.hub_user)
    );
    out.push_str("    exports: [\n");
    for unit in &spec.units {
        let to = list(std::slice::from_ref(&unit.code));
        let _ = writeln!(out, "      # {}", unit.code);
        for shared in shared_with(&unit.code) {
            let subject = quoted(&shared.subject);
            let _ = match shared.kind {
                SharedKind::Stream => {
                    writeln!(out, "      {{ stream: {subject}, accounts: {to} }}")
                }
                SharedKind::Service { streamed: true } => writeln!(
                    out,
                    "      {{ service: {subject}, response_type: stream, accounts: {to} }}"
                ),
                SharedKind::Service { streamed: false } => {
                    writeln!(out, "      {{ service: {subject}, accounts: {to} }}")
                }
            };
        }
    }
    out.push_str("    ]\n  }\n");

    for unit in &spec.units {
        let _ = writeln!(out, "  {}: {{", quoted(&unit.code));
        out.push_str("    jetstream: disabled\n");
        let _ = writeln!(
            out,
            "    users: [\n      {{\n        nkey: {}\n        permissions: {{\n          \
             publish: {{ allow: {} }}\n          subscribe: {{ allow: {} }}\n        }}\n      }}\n    ]",
            quoted(&unit.user),
            list(&unit_publish(&unit.code)),
            list(&unit_subscribe(&unit.code)),
        );
        out.push_str("    imports: [\n");
        for shared in shared_with(&unit.code) {
            let subject = quoted(&shared.subject);
            let _ = match shared.kind {
                SharedKind::Stream => writeln!(
                    out,
                    "      {{ stream: {{ account: {hub}, subject: {subject} }} }}"
                ),
                SharedKind::Service { .. } if shared.local == shared.subject => writeln!(
                    out,
                    "      {{ service: {{ account: {hub}, subject: {subject} }} }}"
                ),
                SharedKind::Service { .. } => writeln!(
                    out,
                    "      {{ service: {{ account: {hub}, subject: {subject} }}, to: {} }}",
                    quoted(&shared.local)
                ),
            };
        }
        out.push_str("    ]\n  }\n");
    }
    out.push_str("}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> String {
        nkeys::KeyPair::new_user().public_key()
    }

    fn spec(codes: &[&str]) -> AccountsSpec {
        AccountsSpec {
            hub_user: user(),
            units: codes
                .iter()
                .map(|c| UnitAccount {
                    code: (*c).to_owned(),
                    user: user(),
                })
                .collect(),
        }
    }

    /// The lines of `text` from the one that starts the block `header` to its closing brace
    /// at the same indentation.
    fn block<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
        let lines: Vec<&str> = text.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.trim_start().starts_with(header))
            .unwrap_or_else(|| panic!("no block {header} in\n{text}"));
        let indent = lines[start].len() - lines[start].trim_start().len();
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.len() - l.trim_start().len() == indent && l.trim() == "}")
            .map(|e| start + 1 + e)
            .unwrap_or_else(|| panic!("block {header} not closed"));
        lines[start..=end].to_vec()
    }

    #[test]
    fn only_the_hub_account_has_jetstream_and_exports_each_feed_to_its_unit_alone() {
        let spec = spec(&["civil-affairs", "dcc-310104"]);
        let text = render(&spec).expect("renders");
        let hub = block(&text, "\"HUB\": {").join("\n");
        assert!(hub.contains("jetstream: enabled"), "{hub}");
        assert!(
            hub.contains(&format!("nkey: \"{}\"", spec.hub_user)),
            "{hub}"
        );
        assert!(
            !hub.contains("permissions"),
            "the hub's user is not limited: {hub}"
        );
        for line in [
            r#"{ stream: "gov.feed.civil-affairs.>", accounts: ["civil-affairs"] }"#,
            r#"{ service: "$JS.API.CONSUMER.MSG.NEXT.FEED_CIVIL_AFFAIRS.feed-civil-affairs", response_type: stream, accounts: ["civil-affairs"] }"#,
            r#"{ service: "$JS.API.CONSUMER.INFO.FEED_CIVIL_AFFAIRS.feed-civil-affairs", accounts: ["civil-affairs"] }"#,
            r#"{ service: "$JS.ACK.FEED_CIVIL_AFFAIRS.feed-civil-affairs.>", accounts: ["civil-affairs"] }"#,
            r#"{ stream: "gov.feed.dcc-310104.>", accounts: ["dcc-310104"] }"#,
        ] {
            assert!(hub.contains(line), "missing {line} in\n{hub}");
        }
        assert_eq!(hub.matches("accounts: [").count(), 8, "{hub}");
        assert_eq!(text.matches("jetstream: enabled").count(), 1, "{text}");
        assert_eq!(text.matches("jetstream: disabled").count(), 2, "{text}");
        assert!(
            !text.contains("gov.events"),
            "the log is never shared: {text}"
        );
    }

    #[test]
    fn a_unit_imports_its_own_feed_under_its_api_prefix_and_may_use_nothing_else() {
        let spec = spec(&["civil-affairs", "housing"]);
        let text = render(&spec).expect("renders");
        let unit = block(&text, "\"housing\": {").join("\n");
        assert!(unit.contains(&format!("nkey: \"{}\"", spec.units[1].user)));
        assert!(unit.contains("jetstream: disabled"), "{unit}");
        for line in [
            r#"{ stream: { account: "HUB", subject: "gov.feed.housing.>" } }"#,
            r#"{ service: { account: "HUB", subject: "$JS.API.CONSUMER.MSG.NEXT.FEED_HOUSING.feed-housing" }, to: "$JS.hub.API.CONSUMER.MSG.NEXT.FEED_HOUSING.feed-housing" }"#,
            r#"{ service: { account: "HUB", subject: "$JS.API.CONSUMER.INFO.FEED_HOUSING.feed-housing" }, to: "$JS.hub.API.CONSUMER.INFO.FEED_HOUSING.feed-housing" }"#,
            r#"{ service: { account: "HUB", subject: "$JS.ACK.FEED_HOUSING.feed-housing.>" } }"#,
            r#"publish: { allow: ["$JS.hub.API.CONSUMER.MSG.NEXT.FEED_HOUSING.feed-housing", "$JS.hub.API.CONSUMER.INFO.FEED_HOUSING.feed-housing", "$JS.ACK.FEED_HOUSING.feed-housing.>"] }"#,
            r#"subscribe: { allow: ["gov.feed.housing.>", "_INBOX_housing.>"] }"#,
        ] {
            assert!(unit.contains(line), "missing {line} in\n{unit}");
        }
        assert!(!unit.contains("civil-affairs"), "{unit}");
        assert!(!unit.contains("exports"), "{unit}");
        assert!(!unit.contains("deny"), "allow lists deny the rest: {unit}");
    }

    #[test]
    fn bad_keys_codes_and_duplicates_are_refused() {
        let mut bad = spec(&["housing"]);
        bad.hub_user = nkeys::KeyPair::new_account().public_key();
        assert!(matches!(
            render(&bad),
            Err(AccountsError::NotAUserKey { owner, .. }) if owner == "the hub"
        ));
        let mut bad = spec(&["housing"]);
        bad.units[0].user = "SUAFAKE".into();
        assert!(matches!(
            render(&bad),
            Err(AccountsError::NotAUserKey { .. })
        ));
        for code in ["Housing", "ho.using", "ho using", "-x", "", "a>"] {
            assert_eq!(
                render(&spec(&[code])),
                Err(AccountsError::BadCode(code.to_owned())),
                "{code:?}"
            );
        }
        assert_eq!(
            render(&spec(&["housing", "housing"])),
            Err(AccountsError::Duplicate("housing".into()))
        );
    }
}
