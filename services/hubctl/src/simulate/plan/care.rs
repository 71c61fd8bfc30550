//! A care record's chain (registration, visits, risk changes, close) and a grant's
//! (request, decision, revocation).

use super::*;

/// A person civil affairs cares for: registered, visited as often as their risk asks,
/// reassessed now and then, rarely closed.
pub(super) fn care(
    place: &Place<'_>,
    community: &str,
    end: i64,
    rng: &mut ChaCha8Rng,
    at: i64,
    tie: String,
) -> Chain {
    use v1::{CareCategory as C, RiskLevel as R};
    let mut chain = Chain::new(AggregateKind::Care, at, tie);
    let category = [
        C::ElderlyInHardship,
        C::LeftBehindChild,
        C::SevereMentalDisorder,
        C::DrugRehabilitation,
    ][weighted(rng, &[40, 20, 25, 15])];
    let (born_from, born_to, risks) = match category {
        C::ElderlyInHardship => (1930, 1956, [60, 30, 10]),
        C::LeftBehindChild => (2011, 2020, [60, 30, 10]),
        C::SevereMentalDisorder => (1950, 2004, [30, 40, 30]),
        _ => (1965, 2004, [20, 40, 40]),
    };
    let mut risk = [R::Low, R::Medium, R::High][weighted(rng, &risks)];
    let female = rng.gen_bool(0.5);
    let birth = people::birth_date(rng, born_from, born_to);
    let division = &place.district.code;
    let person = civil_affairs_staff(place, rng);
    let register = v1::RegisterCareRequest {
        request_id: String::new(),
        name: people::person_name(rng, female),
        identity_number: people::identity_number(rng, division, birth, female),
        category: category as i32,
        community_code: community.to_owned(),
        risk_level: risk as i32,
        // A child's or an elderly person's number is often a guardian's; some give none.
        phone: if rng.gen_bool(0.85) {
            people::mobile(rng)
        } else {
            String::new()
        },
        address: if rng.gen_bool(0.9) {
            people::home_address(rng, &place.roads)
        } else {
            String::new()
        },
    };
    chain.push(
        at,
        "reg",
        CIVIL_AFFAIRS,
        &person,
        Command::RegisterCare(register),
    );
    let visitor = format!("CA-{}-{}", &community[3..12], rng.gen_range(1..=2));
    for visit in 1.. {
        let every = match risk {
            R::High => DAY,
            R::Medium => 3 * DAY,
            _ => 7 * DAY,
        };
        // The first visit soon after the registration, then about every `every`.
        let (lo, hi) = if visit == 1 {
            (HOUR, every / 2)
        } else {
            (every * 6 / 10, every * 14 / 10)
        };
        let t = working_hours(chain.last() + span(rng, lo, hi, false));
        if t >= end {
            break;
        }
        let notes = *pick(rng, words::visit_notes(category));
        chain.push(
            t,
            format!("vis{visit}"),
            CIVIL_AFFAIRS,
            &visitor,
            Command::LogCareVisit(v1::LogCareVisitRequest {
                visited_at: Some(proto_time(t)),
                visitor: visitor.clone(),
                notes: both(notes),
                ..Default::default()
            }),
        );
        if rng.gen_bool(0.08) {
            let up = match risk {
                R::High => false,
                R::Low => true,
                _ => rng.gen_bool(0.5),
            };
            let (to, reason) = match (risk, up) {
                (R::Low, _) => (R::Medium, words::RISK_UP),
                (R::Medium, true) => (R::High, words::RISK_UP),
                (R::Medium, false) => (R::Low, words::RISK_DOWN),
                _ => (R::Medium, words::RISK_DOWN),
            };
            risk = to;
            let t = chain.last() + 30 * 60;
            chain.push(
                t,
                format!("rsk{visit}"),
                CIVIL_AFFAIRS,
                &person,
                Command::ChangeCareRiskLevel(v1::ChangeCareRiskLevelRequest {
                    risk_level: to as i32,
                    reason: both(reason),
                    ..Default::default()
                }),
            );
        }
        if rng.gen_bool(0.02) {
            let t = chain.last() + 2 * HOUR;
            chain.push(
                t,
                "clo",
                CIVIL_AFFAIRS,
                &person,
                Command::CloseCare(v1::CloseCareRequest {
                    reason: both(words::care_close(category)),
                    ..Default::default()
                }),
            );
            break;
        }
    }
    chain
}

pub(super) fn civil_affairs_staff(place: &Place<'_>, rng: &mut impl Rng) -> String {
    place.staff(CIVIL_AFFAIRS, rng)
}

/// A grant on the care roster: public security asks, civil affairs answers, sometimes
/// revokes it later.
pub(super) fn grant(
    s: &Scenario,
    place: &Place<'_>,
    end: i64,
    rng: &mut ChaCha8Rng,
    at: i64,
    tie: String,
) -> Chain {
    let mut chain = Chain::new(AggregateKind::Grant, at, tie);
    let mut fields: Vec<String> = ["care_id", "name", "community_code", "risk_level"]
        .map(String::from)
        .to_vec();
    for extra in ["phone", "address", "last_visit_at"] {
        if rng.gen_bool(0.4) {
            fields.push(extra.to_owned());
        }
    }
    // Valid for about a year from the end of the simulated days: in the future when the
    // commands are sent (--until is at most today), at most 366 days ahead.
    let expires = end + span(rng, 335 * DAY, 365 * DAY, false) / DAY * DAY;
    let officer = place.staff(PUBLIC_SECURITY, rng);
    chain.push(
        at,
        "req",
        PUBLIC_SECURITY,
        &officer,
        Command::RequestGrant(v1::RequestGrantRequest {
            request_id: String::new(),
            dataset: "care_roster".into(),
            fields,
            purpose: format!("{} ({})", both(words::GRANT_PURPOSE), place.district.code),
            expires_at: Some(proto_time(expires)),
        }),
    );
    let person = civil_affairs_staff(place, rng);
    let t = working_hours(chain.last() + span(rng, 2 * HOUR, 30 * HOUR, false));
    if !rng.gen_bool(s.grant_approval_share) {
        chain.push(
            t,
            "rej",
            CIVIL_AFFAIRS,
            &person,
            Command::RejectGrant(v1::RejectGrantRequest {
                reason: both(words::GRANT_REJECT),
                ..Default::default()
            }),
        );
        return chain;
    }
    chain.push(
        t,
        "apv",
        CIVIL_AFFAIRS,
        &person,
        Command::ApproveGrant(v1::ApproveGrantRequest::default()),
    );
    if rng.gen_bool(s.revoke_share) {
        let t = working_hours(chain.last() + span(rng, DAY, 5 * DAY, false));
        chain.push(
            t,
            "rvk",
            CIVIL_AFFAIRS,
            &person,
            Command::RevokeGrant(v1::RevokeGrantRequest {
                reason: both(words::GRANT_REVOKE),
                ..Default::default()
            }),
        );
    }
    chain
}
