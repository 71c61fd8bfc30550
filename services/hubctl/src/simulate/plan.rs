//! The plan: a seed and a city in, the commands of a simulated stretch of days out, in the
//! order they happen, each with the command it must wait for. Pure: no clock, no I/O.
//!
//! Every aggregate (a case, a care record, a grant) is a chain of commands, each a fixed
//! time after the one before; a command that would fall after the simulated days is left out,
//! with everything after it, so the plan ends with cases in every state, as a city at
//! midnight has them. Request ids are `<scenario>-<aggregate>-<step>`, the scenario id a
//! digest of everything the commands depend on: the same scenario sends the same commands
//! with the same ids (the hub answers a repeat with its first answer), another scenario
//! sends others under other ids.

use std::collections::BTreeMap;

use hub_api::v1;
use jiff::Timestamp;
use jiff::civil::Date;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::city::{
    CIVIL_AFFAIRS, City, District, Grid, HOUSING, PUBLIC_SECURITY, URBAN_MANAGEMENT,
};
use super::people::{self, pick, weighted};
use super::words::{self, both};

/// The city's offset from UTC (China Standard Time): simulated days run midnight to midnight.
pub const CITY_OFFSET_HOURS: i64 = 8;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// What to simulate: how long, how busy, and the mix of what happens. The same values and
/// seed give the same commands.
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(next_help_heading = "Scenario")]
pub struct Scenario {
    /// The seed: the same seed (with the same options and city) sends the same commands.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Days to simulate, the last ending at the start of --until.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// The simulated days end at the start of this day (YYYY-MM-DD, China time; at most
    /// today, at least 300 days ago). Default: today, so the same seed run again another
    /// day is another stretch of days; name the day to repeat a run exactly.
    #[arg(long, value_name = "DATE")]
    pub until: Option<Date>,
    /// Reports per grid per day (Poisson-distributed).
    #[arg(long, default_value_t = 3.0, value_parser = rate)]
    pub rate: f64,
    /// Share of reports that are property complaints (against a property company).
    #[arg(long, default_value_t = 0.15, value_parser = share, help_heading = "Mix")]
    pub complaint_share: f64,
    /// Share of grid incidents reported by residents (the rest by grid workers).
    #[arg(long, default_value_t = 0.3, value_parser = share, help_heading = "Mix")]
    pub resident_share: f64,
    /// Share of dispatched cases that go through a transfer: misrouted and handed on
    /// (accepted), or pushed to another department that declines (rejected).
    #[arg(long, default_value_t = 0.08, value_parser = share, help_heading = "Mix")]
    pub transfer_share: f64,
    /// Share of those transfers accepted.
    #[arg(long, default_value_t = 0.6, value_parser = share, help_heading = "Mix")]
    pub transfer_accept_share: f64,
    /// Share of dispatched cases the department never accepts: the hub's deadline
    /// supervision escalates them once their accept deadline has passed on its clock.
    #[arg(long, default_value_t = 0.05, value_parser = share, help_heading = "Mix")]
    pub miss_share: f64,
    /// Share of resolved cases the command centre gets a rating for (the rest it closes
    /// unrated).
    #[arg(long, default_value_t = 0.85, value_parser = share, help_heading = "Mix")]
    pub rated_share: f64,
    /// Share of ratings that are poor (1 or 2), which reopens the case; twice as many for
    /// property complaints.
    #[arg(long, default_value_t = 0.1, value_parser = share, help_heading = "Mix")]
    pub poor_rating_share: f64,
    /// People civil affairs cares for per community (registered in the first two days).
    #[arg(long, default_value_t = 2, help_heading = "Mix")]
    pub care_per_community: u32,
    /// Grants on the care roster public security asks for per district.
    #[arg(long, default_value_t = 1, help_heading = "Mix")]
    pub grants_per_district: u32,
    /// Share of those grants civil affairs approves (the rest it rejects).
    #[arg(long, default_value_t = 0.75, value_parser = share, help_heading = "Mix")]
    pub grant_approval_share: f64,
    /// Share of approved grants revoked later.
    #[arg(long, default_value_t = 0.1, value_parser = share, help_heading = "Mix")]
    pub revoke_share: f64,
    /// Property companies per district (complaints favour a few of them).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50), help_heading = "Mix")]
    pub companies_per_district: u32,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            days: 1,
            until: None,
            rate: 3.0,
            complaint_share: 0.15,
            resident_share: 0.3,
            transfer_share: 0.08,
            transfer_accept_share: 0.6,
            miss_share: 0.05,
            rated_share: 0.85,
            poor_rating_share: 0.1,
            care_per_community: 2,
            grants_per_district: 1,
            grant_approval_share: 0.75,
            revoke_share: 0.1,
            companies_per_district: 3,
        }
    }
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("must be a number from 0 to 1".into()),
    }
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=10_000.0).contains(&v) => Ok(v),
        _ => Err("must be a number from 0 to 10000".into()),
    }
}

/// The commands a simulation sends, one per hub RPC it calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    ReportCase(v1::ReportCaseRequest),
    DispatchCase(v1::DispatchCaseRequest),
    AcceptCase(v1::AcceptCaseRequest),
    RequestCaseTransfer(v1::RequestCaseTransferRequest),
    AcceptCaseTransfer(v1::AcceptCaseTransferRequest),
    RejectCaseTransfer(v1::RejectCaseTransferRequest),
    ResolveCase(v1::ResolveCaseRequest),
    RateCase(v1::RateCaseRequest),
    CloseCase(v1::CloseCaseRequest),
    RegisterCare(v1::RegisterCareRequest),
    LogCareVisit(v1::LogCareVisitRequest),
    ChangeCareRiskLevel(v1::ChangeCareRiskLevelRequest),
    CloseCare(v1::CloseCareRequest),
    RequestGrant(v1::RequestGrantRequest),
    ApproveGrant(v1::ApproveGrantRequest),
    RejectGrant(v1::RejectGrantRequest),
    RevokeGrant(v1::RevokeGrantRequest),
}

/// Every RPC a plan calls, in lifecycle order (the summary lists them so).
pub const RPCS: [&str; 17] = [
    "ReportCase",
    "DispatchCase",
    "AcceptCase",
    "RequestCaseTransfer",
    "AcceptCaseTransfer",
    "RejectCaseTransfer",
    "ResolveCase",
    "RateCase",
    "CloseCase",
    "RegisterCare",
    "LogCareVisit",
    "ChangeCareRiskLevel",
    "CloseCare",
    "RequestGrant",
    "ApproveGrant",
    "RejectGrant",
    "RevokeGrant",
];

macro_rules! each {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            Command::ReportCase($m) => $body,
            Command::DispatchCase($m) => $body,
            Command::AcceptCase($m) => $body,
            Command::RequestCaseTransfer($m) => $body,
            Command::AcceptCaseTransfer($m) => $body,
            Command::RejectCaseTransfer($m) => $body,
            Command::ResolveCase($m) => $body,
            Command::RateCase($m) => $body,
            Command::CloseCase($m) => $body,
            Command::RegisterCare($m) => $body,
            Command::LogCareVisit($m) => $body,
            Command::ChangeCareRiskLevel($m) => $body,
            Command::CloseCare($m) => $body,
            Command::RequestGrant($m) => $body,
            Command::ApproveGrant($m) => $body,
            Command::RejectGrant($m) => $body,
            Command::RevokeGrant($m) => $body,
        }
    };
}

impl Command {
    /// The RPC's name, e.g. `ReportCase`.
    pub fn rpc(&self) -> &'static str {
        let index = match self {
            Command::ReportCase(_) => 0,
            Command::DispatchCase(_) => 1,
            Command::AcceptCase(_) => 2,
            Command::RequestCaseTransfer(_) => 3,
            Command::AcceptCaseTransfer(_) => 4,
            Command::RejectCaseTransfer(_) => 5,
            Command::ResolveCase(_) => 6,
            Command::RateCase(_) => 7,
            Command::CloseCase(_) => 8,
            Command::RegisterCare(_) => 9,
            Command::LogCareVisit(_) => 10,
            Command::ChangeCareRiskLevel(_) => 11,
            Command::CloseCare(_) => 12,
            Command::RequestGrant(_) => 13,
            Command::ApproveGrant(_) => 14,
            Command::RejectGrant(_) => 15,
            Command::RevokeGrant(_) => 16,
        };
        RPCS[index]
    }

    pub fn request_id(&self) -> &str {
        each!(self, m => &m.request_id)
    }

    fn set_request_id(&mut self, id: String) {
        each!(self, m => m.request_id = id)
    }

    /// Whether the command brings its aggregate into being (the hub answers with its id).
    pub fn creates(&self) -> bool {
        matches!(
            self,
            Command::ReportCase(_) | Command::RegisterCare(_) | Command::RequestGrant(_)
        )
    }

    /// Names the aggregate the command acts on (the id the hub gave it).
    pub fn set_target(&mut self, id: &str) {
        let id = id.to_owned();
        match self {
            Command::ReportCase(_) | Command::RegisterCare(_) | Command::RequestGrant(_) => {}
            Command::DispatchCase(m) => m.case_id = id,
            Command::AcceptCase(m) => m.case_id = id,
            Command::RequestCaseTransfer(m) => m.case_id = id,
            Command::AcceptCaseTransfer(m) => m.case_id = id,
            Command::RejectCaseTransfer(m) => m.case_id = id,
            Command::ResolveCase(m) => m.case_id = id,
            Command::RateCase(m) => m.case_id = id,
            Command::CloseCase(m) => m.case_id = id,
            Command::LogCareVisit(m) => m.care_id = id,
            Command::ChangeCareRiskLevel(m) => m.care_id = id,
            Command::CloseCare(m) => m.care_id = id,
            Command::ApproveGrant(m) => m.grant_id = id,
            Command::RejectGrant(m) => m.grant_id = id,
            Command::RevokeGrant(m) => m.grant_id = id,
        }
    }

    /// The request as proto3 JSON.
    pub fn to_json(&self) -> anyhow::Result<serde_json::Value> {
        let name = format!("gov.hub.v1.{}Request", self.rpc());
        each!(self, m => Ok(hub::proto_json::to_json(&name, m)?))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateKind {
    Case,
    Care,
    Grant,
}

impl AggregateKind {
    /// The prefix of the purpose a command on such an aggregate names (`case:<id>`).
    pub fn purpose_prefix(self) -> &'static str {
        match self {
            AggregateKind::Case => "case",
            AggregateKind::Care => "care",
            AggregateKind::Grant => "grant",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The plan's own name for it: `c12` (a case), `p3` (a person in care), `g1` (a grant).
    pub key: String,
    pub kind: AggregateKind,
}

/// One command of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When it happens in the simulated days (the hub stamps its own time on the events).
    pub at: Timestamp,
    /// Index into [`Plan::aggregates`].
    pub aggregate: usize,
    /// The step it waits for (the one before it on the same aggregate), by index.
    pub after: Option<usize>,
    /// The unit sending it (x-hub-department).
    pub unit: String,
    /// The person acting (x-hub-user).
    pub person: String,
    /// The request, its aggregate's id left empty until the hub has given it.
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `s<seed>-<digest>`: the prefix of every request id.
    pub scenario: String,
    /// The simulated days: from the start of the first to the start of --until.
    pub from: Timestamp,
    pub until: Timestamp,
    pub aggregates: Vec<Aggregate>,
    /// In the order they happen.
    pub steps: Vec<Step>,
}

/// What a plan holds, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub grid_incidents: u64,
    pub property_complaints: u64,
    pub care_records: u64,
    pub grants: u64,
    /// Cases by the state their last command leaves them in.
    pub cases_at_end: BTreeMap<&'static str, u64>,
}

impl Plan {
    /// The first and the last simulated day (the city's dates).
    pub fn days(&self) -> (Date, Date) {
        let last = timestamp(self.until.as_second() - DAY);
        (city_date(self.from), city_date(last))
    }

    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        let mut last: Vec<Option<&Command>> = vec![None; self.aggregates.len()];
        for step in &self.steps {
            last[step.aggregate] = Some(&step.command);
            match &step.command {
                Command::ReportCase(r) => match r.kind {
                    Some(v1::report_case_request::Kind::PropertyComplaint(_)) => {
                        tally.property_complaints += 1
                    }
                    _ => tally.grid_incidents += 1,
                },
                Command::RegisterCare(_) => tally.care_records += 1,
                Command::RequestGrant(_) => tally.grants += 1,
                _ => {}
            }
        }
        for command in last.into_iter().flatten() {
            let state = match command {
                Command::ReportCase(_) => "awaiting dispatch",
                Command::DispatchCase(_) => "awaiting acceptance",
                Command::AcceptCase(_)
                | Command::AcceptCaseTransfer(_)
                | Command::RejectCaseTransfer(_) => "being handled",
                Command::RequestCaseTransfer(_) => "transfer pending",
                Command::ResolveCase(_) => "resolved",
                Command::RateCase(r) if r.rating <= 2 => "being handled",
                Command::RateCase(_) => "rated",
                Command::CloseCase(_) => "closed",
                _ => continue,
            };
            *tally.cases_at_end.entry(state).or_default() += 1;
        }
        tally
    }
}

mod care;
mod cases;
mod draws;

use care::*;
use cases::*;
use draws::*;

/// One command of an aggregate before it has its request id.
struct Draft {
    at: i64,
    step: String,
    unit: String,
    person: String,
    command: Command,
}

/// An aggregate's chain of commands, in time order.
struct Chain {
    kind: AggregateKind,
    /// Orders chains of one kind (their keys count in this order).
    sort: (i64, String),
    drafts: Vec<Draft>,
}

impl Chain {
    fn new(kind: AggregateKind, at: i64, tie: String) -> Chain {
        Chain {
            kind,
            sort: (at, tie),
            drafts: Vec::new(),
        }
    }

    fn push(
        &mut self,
        at: i64,
        step: impl Into<String>,
        unit: &str,
        person: &str,
        command: Command,
    ) {
        // Strictly after the step before, so the order of the plan is the chain's.
        let at = self.drafts.last().map_or(at, |d| at.max(d.at + 60));
        self.drafts.push(Draft {
            at,
            step: step.into(),
            unit: unit.to_owned(),
            person: person.to_owned(),
            command,
        });
    }

    /// The time of the last step (where the next one counts from).
    fn last(&self) -> i64 {
        self.drafts.last().map_or(0, |d| d.at)
    }
}

/// A property company and the compounds it manages, in one district.
struct Company {
    credit_code: String,
    compounds: Vec<String>,
    /// How often its residents complain (a few companies draw most complaints).
    weight: u32,
}

/// What the generator knows of a district: its places, companies and staff.
struct Place<'a> {
    district: &'a District,
    /// Three digits that name the district in staff ids.
    short: &'a str,
    roads: Vec<&'static str>,
    companies: Vec<Company>,
    base: (f64, f64),
}

impl<'a> Place<'a> {
    fn new(seed: u64, district: &'a District, companies: u32) -> Place<'a> {
        let mut rng = stream(seed, &format!("places/{}", district.code));
        let mut roads = people::ROADS.to_vec();
        roads.shuffle(&mut rng);
        roads.truncate(10);
        let companies = (0..companies)
            .map(|rank| Company {
                credit_code: people::credit_code(&mut rng, &district.code),
                compounds: (0..rng.gen_range(2..=3))
                    .map(|_| {
                        let name = people::compound_name(&mut rng, &roads);
                        format!("{} ({})", name, people::company_name(&mut rng))
                    })
                    .collect(),
                weight: 60 / (rank + 1),
            })
            .collect();
        // Around the centre of Shanghai, a few kilometres apart.
        let base = (
            121.30 + rng.gen_range(0.0..0.35),
            31.05 + rng.gen_range(0.0..0.30),
        );
        Place {
            district,
            short: &district.code[3..6],
            roads,
            companies,
            base,
        }
    }

    fn staff(&self, department: &str, rng: &mut impl Rng) -> String {
        format!("{department}-{}-{:02}", self.short, rng.gen_range(1..=12))
    }

    fn operator(&self, rng: &mut impl Rng) -> String {
        format!(
            "{}-op{}",
            self.district.command_centre,
            rng.gen_range(1..=4)
        )
    }
}

/// Plans the scenario `s` in `city` for the days ending at the start of `until`.
pub fn plan(city: &City, s: &Scenario, until: Date) -> Plan {
    let end = until_second(until);
    let start = end - i64::from(s.days) * DAY;
    let mut resolved = s.clone();
    resolved.until = Some(until);
    let digest = fnv(&format!("{resolved:?}|{}", city.fingerprint()));
    let scenario = format!(
        "s{}-{:08x}",
        s.seed,
        (digest >> 32) ^ (digest & 0xffff_ffff)
    );
    let places: Vec<Place<'_>> = city
        .districts
        .iter()
        .map(|d| Place::new(s.seed, d, s.companies_per_district))
        .collect();

    let mut chains: Vec<Chain> = Vec::new();
    for day in 0..s.days {
        let midnight = start + i64::from(day) * DAY;
        for place in &places {
            for grid in &place.district.grids {
                let mut rng = stream(s.seed, &format!("cases/{day}/{}", grid.code));
                for n in 0..poisson(&mut rng, s.rate) {
                    let hour = weighted(&mut rng, &HOURS) as i64;
                    let at = midnight + hour * HOUR + rng.gen_range(0..HOUR);
                    let tie = format!("{}/{n:05}", grid.code);
                    chains.push(case(s, place, grid, &mut rng, at, tie));
                }
            }
        }
    }
    for place in &places {
        for community in &place.district.communities {
            let mut rng = stream(s.seed, &format!("care/{community}"));
            for n in 0..s.care_per_community {
                let window = i64::from(s.days.min(2)) * DAY;
                let at = working_hours(start + rng.gen_range(0..window));
                let tie = format!("{community}/{n}");
                chains.push(care(place, community, end, &mut rng, at, tie));
            }
        }
        let mut rng = stream(s.seed, &format!("grants/{}", place.district.code));
        for n in 0..s.grants_per_district {
            let at = working_hours(start + rng.gen_range(0..i64::from(s.days) * DAY));
            let tie = format!("{}/{n}", place.district.code);
            chains.push(grant(s, place, end, &mut rng, at, tie));
        }
    }

    // What would happen after the simulated days does not happen (yet).
    for chain in &mut chains {
        if let Some(cut) = chain.drafts.iter().position(|d| d.at >= end) {
            chain.drafts.truncate(cut);
        }
    }
    chains.retain(|c| !c.drafts.is_empty());
    chains.sort_by(|a, b| a.sort.cmp(&b.sort));

    let mut aggregates = Vec::with_capacity(chains.len());
    let mut timed: Vec<(i64, usize, usize, Step)> = Vec::new();
    let mut counters = [0u32; 3];
    for (index, chain) in chains.into_iter().enumerate() {
        let (letter, counter) = match chain.kind {
            AggregateKind::Case => ("c", &mut counters[0]),
            AggregateKind::Care => ("p", &mut counters[1]),
            AggregateKind::Grant => ("g", &mut counters[2]),
        };
        *counter += 1;
        let key = format!("{letter}{counter}");
        for (ordinal, draft) in chain.drafts.into_iter().enumerate() {
            let mut command = draft.command;
            command.set_request_id(format!("{scenario}-{key}-{}", draft.step));
            timed.push((
                draft.at,
                index,
                ordinal,
                Step {
                    at: timestamp(draft.at),
                    aggregate: index,
                    after: None,
                    unit: draft.unit,
                    person: draft.person,
                    command,
                },
            ));
        }
        aggregates.push(Aggregate {
            key,
            kind: chain.kind,
        });
    }
    timed.sort_by_key(|(at, index, ordinal, _)| (*at, *index, *ordinal));
    let mut last_of: Vec<Option<usize>> = vec![None; aggregates.len()];
    let steps = timed
        .into_iter()
        .enumerate()
        .map(|(i, (_, aggregate, _, mut step))| {
            step.after = last_of[aggregate].replace(i);
            step
        })
        .collect();
    Plan {
        scenario,
        from: timestamp(start),
        until: timestamp(end),
        aggregates,
        steps,
    }
}

/// The instant `date` starts in the city.
pub fn until_second(date: Date) -> i64 {
    let midnight = date.to_datetime(jiff::civil::Time::midnight());
    let utc = midnight
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .unwrap_or(0);
    utc - CITY_OFFSET_HOURS * HOUR
}

/// The city's date of the instant `t`.
pub fn city_date(t: Timestamp) -> Date {
    let shifted = timestamp(t.as_second() + CITY_OFFSET_HOURS * HOUR);
    shifted.to_zoned(jiff::tz::TimeZone::UTC).date()
}

#[cfg(test)]
mod tests;
