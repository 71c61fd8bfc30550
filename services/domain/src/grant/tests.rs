//! Given events, when a command, then events or a refusal.

use jiff::Timestamp;

use super::*;
use crate::fixture::{actor, days, dept, later, policy, registry};
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::registry::Registry;

/// Public security asks civil affairs for two fields of the care roster for 30 days.
fn request() -> RequestGrant {
    RequestGrant {
        grant_id: GrantId::new("g1"),
        requester: dept("public-security"),
        dataset: "care_roster".into(),
        fields: vec!["name".into(), "community_code".into()],
        purpose: "joint visits to people in drug rehabilitation".into(),
        expires_at: later(days(30)),
    }
}

fn reason() -> String {
    "case closed".into()
}

/// A scenario: the events so far, and the state they fold to.
struct Grant {
    events: Vec<GrantEvent>,
    registry: Registry,
    policy: Policy,
}

impl Grant {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            registry: registry(),
            policy: policy(),
        }
    }

    fn state(&self) -> Option<GrantState> {
        self.events.iter().fold(None, apply)
    }

    fn when(
        &self,
        by: &str,
        command: GrantCommand,
        now: Timestamp,
    ) -> Result<Vec<GrantEvent>, Refusal> {
        let actor = actor(by);
        let ctx = Ctx {
            actor: &actor,
            now,
            registry: &self.registry,
            policy: &self.policy,
        };
        decide(self.state().as_ref(), command, ctx)
    }

    fn given(&self, by: &str, command: GrantCommand, now: Timestamp) -> Self {
        let events = self.when(by, command, now).expect("given command succeeds");
        Self {
            events: self.events.iter().cloned().chain(events).collect(),
            registry: self.registry.clone(),
            policy: self.policy.clone(),
        }
    }

    fn requested() -> Self {
        Self::new().given(
            "public-security",
            GrantCommand::Request(request()),
            later(0),
        )
    }

    fn approved() -> Self {
        Self::requested().given("civil-affairs", GrantCommand::Approve, later(60))
    }

    fn status(&self) -> GrantStatus {
        self.state().expect("grant exists").status
    }
}

fn forbidden(result: Result<Vec<GrantEvent>, Refusal>) {
    assert!(
        matches!(result, Err(Refusal::Forbidden(_))),
        "expected permission denied, got {result:?}"
    );
}

fn illegal(result: Result<Vec<GrantEvent>, Refusal>) -> String {
    match result {
        Err(Refusal::Illegal(reason)) => reason,
        other => panic!("expected an illegal transition, got {other:?}"),
    }
}

fn invalid_fields(result: Result<Vec<GrantEvent>, Refusal>) -> Vec<String> {
    match result {
        Err(Refusal::Invalid(v)) => v.into_vec().into_iter().map(|v| v.field).collect(),
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

#[test]
fn a_grant_is_requested_approved_and_revoked_by_the_owner() {
    let grant = Grant::requested();
    let [GrantEvent::Requested(r)] = grant.events.as_slice() else {
        panic!("{:?}", grant.events)
    };
    assert_eq!(
        (r.owner.as_str(), r.requested_at, r.expires_at),
        ("civil-affairs", later(0), later(days(30)))
    );
    let state = grant.state().expect("grant exists");
    assert_eq!(
        (
            state.status,
            state.dataset.as_str(),
            state.fields.len(),
            state.events
        ),
        (GrantStatus::Requested, "care_roster", 2, 1)
    );
    assert!(!state.in_force(later(1)));

    let grant = Grant::approved();
    let Some(GrantEvent::Approved(a)) = grant.events.last() else {
        panic!("{:?}", grant.events)
    };
    assert_eq!((a.by.as_str(), a.at), ("civil-affairs", later(60)));
    let state = grant.state().expect("grant exists");
    assert!(state.in_force(later(61)) && !state.in_force(later(days(30))));

    let grant = grant.given(
        "civil-affairs",
        GrantCommand::Revoke { reason: reason() },
        later(120),
    );
    assert_eq!(grant.status(), GrantStatus::Revoked);
    assert_eq!(grant.state().expect("grant exists").events, 3);
}

#[test]
fn a_request_is_made_in_ones_own_name_and_only_once() {
    let grant = Grant::new();
    forbidden(grant.when("housing", GrantCommand::Request(request()), later(0)));
    forbidden(grant.when("system", GrantCommand::Request(request()), later(0)));
    let grant = Grant::requested();
    assert_eq!(
        grant.when(
            "public-security",
            GrantCommand::Request(request()),
            later(1)
        ),
        Err(Refusal::AlreadyExists("grant"))
    );
}

#[test]
fn a_request_names_another_departments_dataset_its_fields_a_purpose_and_a_near_expiry() {
    let grant = Grant::new();
    let ask = |by: &str, request: RequestGrant| {
        invalid_fields(grant.when(by, GrantCommand::Request(request), later(0)))
    };
    let unknown = RequestGrant {
        dataset: "tax_records".into(),
        ..request()
    };
    assert_eq!(ask("public-security", unknown), ["dataset"]);
    let own = RequestGrant {
        requester: dept("civil-affairs"),
        ..request()
    };
    assert_eq!(ask("civil-affairs", own), ["dataset"]);
    for fields in [vec![], vec!["name", "name"], vec!["name", "salary"]] {
        let bad = RequestGrant {
            fields: fields.into_iter().map(String::from).collect(),
            ..request()
        };
        assert_eq!(ask("public-security", bad), ["fields"]);
    }
    let aimless = RequestGrant {
        purpose: " ".into(),
        ..request()
    };
    assert_eq!(ask("public-security", aimless), ["purpose"]);
    for expires_at in [later(0), later(-1), later(days(366) + 1)] {
        let bad = RequestGrant {
            expires_at,
            ..request()
        };
        assert_eq!(ask("public-security", bad), ["expires_at"]);
    }
    let everything = RequestGrant {
        fields: vec![],
        purpose: String::new(),
        expires_at: later(0),
        ..request()
    };
    assert_eq!(
        ask("public-security", everything),
        ["fields", "purpose", "expires_at"],
        "every problem is reported at once"
    );
    let longest = RequestGrant {
        expires_at: later(days(366)),
        fields: vec!["complaints".into()],
        dataset: "property_complaint_stats".into(),
        ..request()
    };
    let ok = grant.given("public-security", GrantCommand::Request(longest), later(0));
    assert_eq!(ok.state().expect("grant").owner.as_str(), "housing");
}

#[test]
fn commands_on_a_grant_that_does_not_exist_are_not_found() {
    let grant = Grant::new();
    assert_eq!(
        grant.when("civil-affairs", GrantCommand::Approve, later(0)),
        Err(Refusal::NotFound("grant"))
    );
    assert!(
        Grant::requested()
            .when("civil-affairs", GrantCommand::Approve, later(0))
            .is_ok()
    );
}

#[test]
fn only_the_owner_answers_a_request_and_only_once() {
    let grant = Grant::requested();
    forbidden(grant.when("public-security", GrantCommand::Approve, later(1)));
    forbidden(grant.when(
        "housing",
        GrantCommand::Reject { reason: reason() },
        later(1),
    ));
    illegal(grant.when(
        "civil-affairs",
        GrantCommand::Revoke { reason: reason() },
        later(1),
    ));

    let rejected = grant.given(
        "civil-affairs",
        GrantCommand::Reject { reason: reason() },
        later(2),
    );
    assert_eq!(rejected.status(), GrantStatus::Rejected);
    let why = illegal(rejected.when("civil-affairs", GrantCommand::Approve, later(3)));
    assert!(
        why.contains("cannot approve a grant that is rejected"),
        "{why}"
    );

    let approved = grant.given("civil-affairs", GrantCommand::Approve, later(2));
    illegal(approved.when("civil-affairs", GrantCommand::Approve, later(3)));
    illegal(approved.when(
        "civil-affairs",
        GrantCommand::Reject { reason: reason() },
        later(3),
    ));
    forbidden(approved.when(
        "public-security",
        GrantCommand::Revoke { reason: reason() },
        later(3),
    ));
    let revoked = approved.given(
        "civil-affairs",
        GrantCommand::Revoke { reason: reason() },
        later(3),
    );
    illegal(revoked.when(
        "civil-affairs",
        GrantCommand::Revoke { reason: reason() },
        later(4),
    ));
}

#[test]
fn a_request_past_its_expiry_is_not_approved() {
    let grant = Grant::requested();
    let why = illegal(grant.when("civil-affairs", GrantCommand::Approve, later(days(30))));
    assert!(why.contains("expiry has passed"), "{why}");
    assert!(
        grant
            .when("civil-affairs", GrantCommand::Approve, later(days(30) - 1))
            .is_ok()
    );
}

#[test]
fn the_hub_expires_a_grant_once_it_is_due() {
    let due = later(days(30));
    for grant in [Grant::requested(), Grant::approved()] {
        forbidden(grant.when("civil-affairs", GrantCommand::Expire, due));
        let why = illegal(grant.when(
            "system",
            GrantCommand::Expire,
            due - jiff::SignedDuration::from_secs(1),
        ));
        assert!(
            why.contains("due to expire at 2026-12-23T02:00:00Z"),
            "{why}"
        );
        let expired = grant.given("system", GrantCommand::Expire, due);
        let Some(GrantEvent::Expired(e)) = expired.events.last() else {
            panic!("{:?}", expired.events)
        };
        assert_eq!(e.at, due);
        assert_eq!(expired.status(), GrantStatus::Expired);
        illegal(expired.when("system", GrantCommand::Expire, later(days(31))));
    }
    let rejected = Grant::requested().given(
        "civil-affairs",
        GrantCommand::Reject { reason: reason() },
        later(1),
    );
    let why = illegal(rejected.when("system", GrantCommand::Expire, later(days(31))));
    assert!(why.contains("requested or approved"), "{why}");
}
