use super::*;

fn demo() -> City {
    City::load(None).expect("demo city")
}

fn scenario(seed: u64, days: u32) -> Scenario {
    Scenario {
        seed,
        days,
        ..Scenario::default()
    }
}

const UNTIL: Date = jiff::civil::date(2026, 12, 2);

#[test]
fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
    let city = demo();
    let a = plan(&city, &scenario(7, 3), UNTIL);
    assert!(a.steps.len() > 100, "{} steps", a.steps.len());
    assert_eq!(a, plan(&city, &scenario(7, 3), UNTIL));
    let b = plan(&city, &scenario(8, 3), UNTIL);
    assert_ne!(a.scenario, b.scenario);
    assert_ne!(a.steps, b.steps);
    let ids = |p: &Plan| -> Vec<String> {
        p.steps
            .iter()
            .map(|s| s.command.request_id().to_owned())
            .collect()
    };
    assert!(
        ids(&a).iter().all(|id| !ids(&b).contains(id)),
        "another seed, other request ids"
    );
    // Any option that changes the commands changes their ids too.
    let busier = Scenario {
        rate: 4.0,
        ..scenario(7, 3)
    };
    assert_ne!(plan(&city, &busier, UNTIL).scenario, a.scenario);
    let later = plan(&city, &scenario(7, 3), jiff::civil::date(2026, 12, 3));
    assert_ne!(later.scenario, a.scenario);
}

#[test]
fn every_step_comes_after_the_one_it_waits_for_and_ids_are_unique_and_safe() {
    let p = plan(&demo(), &scenario(3, 5), UNTIL);
    let mut seen = std::collections::BTreeSet::new();
    for (i, step) in p.steps.iter().enumerate() {
        let id = step.command.request_id();
        assert!(seen.insert(id.to_owned()), "{id} twice");
        assert!(hub_api::is_safe_id(id, 64), "{id}");
        assert!(hub_api::is_safe_id(&step.person, 64), "{}", step.person);
        let digits = step
            .person
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max();
        assert!(
            digits < Some(11),
            "{} looks like a phone number",
            step.person
        );
        assert!(p.from <= step.at && step.at < p.until);
        match step.after {
            None => assert!(step.command.creates(), "{i} waits for nothing"),
            Some(before) => {
                assert!(before < i);
                assert_eq!(p.steps[before].aggregate, step.aggregate);
                assert!(p.steps[before].at < step.at);
                assert!(!step.command.creates());
            }
        }
    }
}

#[test]
fn the_mix_is_realistic() {
    let s = Scenario {
        grants_per_district: 6,
        ..scenario(11, 14)
    };
    let p = plan(&demo(), &s, UNTIL);
    let tally = p.tally();
    let reports = tally.grid_incidents + tally.property_complaints;
    // 7 grids, 3 a day, 14 days.
    assert!((230..=360).contains(&reports), "{reports} reports");
    let complaints = tally.property_complaints as f64 / reports as f64;
    assert!((0.08..0.25).contains(&complaints), "{complaints}");
    let count = |rpc: &str| p.steps.iter().filter(|s| s.command.rpc() == rpc).count();
    for rpc in RPCS {
        assert!(
            count(rpc) > 0 || rpc == "RevokeGrant" || rpc == "CloseCare",
            "no {rpc}"
        );
    }
    assert!(count("AcceptCase") > 5 * count("RequestCaseTransfer"));
    assert!(count("RateCase") > count("ResolveCase") / 2);
    assert!(tally.cases_at_end["closed"] > reports / 2);
    assert!(
        tally.cases_at_end["awaiting acceptance"] > 0,
        "some miss their deadline"
    );
    assert_eq!(tally.care_records, 2 * 5, "two per community");
    assert_eq!(tally.grants, 12, "six per district");
    // Cases go to the right department, and the command centres dispatch.
    for step in &p.steps {
        if let Command::DispatchCase(_) = &step.command {
            assert!(step.unit.starts_with("dcc-"));
        }
        if let Command::ReportCase(r) = &step.command
            && let Some(v1::report_case_request::Kind::PropertyComplaint(c)) = &r.kind
        {
            hub_domain::codes::CreditCode::parse(&c.company_credit_code).expect("credit code");
        }
        if let Command::RegisterCare(r) = &step.command {
            hub_domain::codes::IdentityNumber::parse(&r.identity_number).expect("identity");
            assert!(r.community_code.starts_with(&r.identity_number[..6]));
        }
    }
}

#[test]
fn a_day_ends_with_cases_in_every_state() {
    let p = plan(&demo(), &scenario(5, 1), UNTIL);
    let tally = p.tally();
    assert!(tally.cases_at_end.len() >= 3, "{tally:?}");
    assert_eq!(p.until.as_second() - p.from.as_second(), DAY);
    assert_eq!(city_date(p.until), UNTIL);
}

#[test]
fn poisson_draws_have_the_mean_asked_for() {
    let mut rng = stream(1, "test");
    for mean in [0.5, 3.0, 50.0] {
        let n = 4000;
        let sum: u32 = (0..n).map(|_| poisson(&mut rng, mean)).sum();
        let got = f64::from(sum) / f64::from(n);
        assert!((got - mean).abs() < mean * 0.1 + 0.05, "{mean}: {got}");
    }
}
