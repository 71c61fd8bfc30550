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

/// FNV-1a, 64 bits: a digest that stays the same across platforms and releases.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The seed's random stream named `name`: each part of the city draws from its own, so
/// one part's options do not change another's draws.
fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(fnv(name));
    rng
}

/// A draw from Poisson(`mean`).
fn poisson<R: Rng>(rng: &mut R, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p: f64 = rng.r#gen();
        while p > limit {
            k += 1;
            p *= rng.r#gen::<f64>();
        }
        return k;
    }
    // Normal approximation (Box-Muller).
    let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.r#gen());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (mean + mean.sqrt() * z).round().max(0.0) as u32
}

/// A duration of `lo` to `hi` seconds: uniform, or log-uniform when `skew` (as service
/// times are: most short, a long tail).
fn span<R: Rng>(rng: &mut R, lo: i64, hi: i64, skew: bool) -> i64 {
    let u: f64 = rng.r#gen();
    if skew && lo > 0 {
        (lo as f64 * (hi as f64 / lo as f64).powf(u)) as i64
    } else {
        lo + ((hi - lo) as f64 * u) as i64
    }
}

/// Seconds since midnight in the city.
fn time_of_day(t: i64) -> i64 {
    (t + CITY_OFFSET_HOURS * HOUR).rem_euclid(DAY)
}

/// `t`, moved into working hours (08:00 to 18:00) if it falls outside them.
fn working_hours(t: i64) -> i64 {
    let tod = time_of_day(t);
    if tod < 8 * HOUR {
        t + 8 * HOUR
    } else if tod >= 18 * HOUR {
        t - tod + DAY + 8 * HOUR + (tod - 18 * HOUR) * 10 / 6
    } else {
        t
    }
}

fn timestamp(t: i64) -> Timestamp {
    Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn proto_time(t: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t,
        nanos: 0,
    }
}

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

/// The department that handles a category, and the one a case of it is mistaken for.
fn route(category: Option<v1::IncidentCategory>) -> (&'static str, &'static str) {
    use v1::IncidentCategory as C;
    match category {
        None => (HOUSING, URBAN_MANAGEMENT),
        Some(C::FireHazard) => (PUBLIC_SECURITY, URBAN_MANAGEMENT),
        Some(C::Dispute) => (PUBLIC_SECURITY, CIVIL_AFFAIRS),
        Some(C::GroupRenting) => (HOUSING, PUBLIC_SECURITY),
        Some(C::IllegalConstruction) => (URBAN_MANAGEMENT, HOUSING),
        Some(C::Sanitation) | Some(C::SafetyHazard) => (URBAN_MANAGEMENT, HOUSING),
        Some(C::Other) | Some(C::Unspecified) => (CIVIL_AFFAIRS, URBAN_MANAGEMENT),
    }
}

fn urgency(category: Option<v1::IncidentCategory>) -> v1::Urgency {
    use v1::IncidentCategory as C;
    match category {
        Some(C::FireHazard | C::SafetyHazard) => v1::Urgency::Urgent,
        Some(C::Dispute | C::GroupRenting | C::IllegalConstruction) => v1::Urgency::Important,
        _ => v1::Urgency::General,
    }
}

const INCIDENTS: [(v1::IncidentCategory, u32); 7] = [
    (v1::IncidentCategory::Sanitation, 35),
    (v1::IncidentCategory::SafetyHazard, 12),
    (v1::IncidentCategory::FireHazard, 8),
    (v1::IncidentCategory::Dispute, 12),
    (v1::IncidentCategory::IllegalConstruction, 10),
    (v1::IncidentCategory::GroupRenting, 8),
    (v1::IncidentCategory::Other, 15),
];

const COMPLAINTS: [(v1::ComplaintCategory, u32); 5] = [
    (v1::ComplaintCategory::Fees, 30),
    (v1::ComplaintCategory::ServiceQuality, 35),
    (v1::ComplaintCategory::MaintenanceFund, 15),
    (v1::ComplaintCategory::PublicRevenue, 10),
    (v1::ComplaintCategory::Other, 10),
];

/// Reports by hour of the day: few at night, most in working hours.
const HOURS: [u32; 24] = [
    1, 1, 1, 1, 1, 1, 2, 4, 8, 9, 9, 8, 5, 6, 8, 8, 8, 7, 5, 4, 3, 2, 2, 1,
];

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

/// A case's life: reported, dispatched, accepted (or handed on), resolved, rated, closed.
fn case(
    s: &Scenario,
    place: &Place<'_>,
    grid: &Grid,
    rng: &mut ChaCha8Rng,
    at: i64,
    tie: String,
) -> Chain {
    let mut chain = Chain::new(AggregateKind::Case, at, tie);
    let centre = place.district.command_centre.as_str();
    let complaint = rng.gen_bool(s.complaint_share);
    let (report, category) = if complaint {
        let weights: Vec<u32> = place.companies.iter().map(|c| c.weight).collect();
        let company = &place.companies[weighted(rng, &weights)];
        let compound = pick(rng, &company.compounds).clone();
        let weights: Vec<u32> = COMPLAINTS.iter().map(|c| c.1).collect();
        let category = COMPLAINTS[weighted(rng, &weights)].0;
        let text = *pick(rng, words::complaint(category));
        let request = v1::ReportCaseRequest {
            request_id: String::new(),
            kind: Some(v1::report_case_request::Kind::PropertyComplaint(
                v1::PropertyComplaint {
                    company_credit_code: company.credit_code.clone(),
                    compound: compound.clone(),
                    category: category as i32,
                    district_code: place.district.code.clone(),
                },
            )),
            description: format!("{compound}: {}", both(text)),
            reporter: Some(v1::Reporter {
                kind: v1::ReporterKind::Resident as i32,
                grid_worker_id: String::new(),
            }),
            // Residents complain through the 12345 hotline.
            channel: v1::ReportChannel::Hotline as i32,
        };
        (request, None)
    } else {
        let weights: Vec<u32> = INCIDENTS.iter().map(|c| c.1).collect();
        let category = INCIDENTS[weighted(rng, &weights)].0;
        let text = *pick(rng, words::incident(category));
        let resident = rng.gen_bool(s.resident_share);
        // Each grid somewhere near its district's centre.
        let offset = fnv(&grid.code);
        let (lon, lat) = (
            place.base.0 + (offset % 1000) as f64 / 50_000.0 + rng.gen_range(0.0..0.002),
            place.base.1 + (offset / 1000 % 1000) as f64 / 50_000.0 + rng.gen_range(0.0..0.002),
        );
        let address = format!(
            "{}路{}号附近",
            pick(rng, &place.roads),
            rng.gen_range(1..=800)
        );
        let request = v1::ReportCaseRequest {
            request_id: String::new(),
            kind: Some(v1::report_case_request::Kind::GridIncident(
                v1::GridIncident {
                    grid_code: grid.code.clone(),
                    category: category as i32,
                    location: Some(v1::Location {
                        longitude: (lon * 1e5).round() / 1e5,
                        latitude: (lat * 1e5).round() / 1e5,
                        address,
                    }),
                },
            )),
            description: both(text),
            channel: if resident {
                v1::ReportChannel::Hotline
            } else {
                v1::ReportChannel::GridPatrol
            } as i32,
            reporter: Some(if resident {
                v1::Reporter {
                    kind: v1::ReporterKind::Resident as i32,
                    grid_worker_id: String::new(),
                }
            } else {
                v1::Reporter {
                    kind: v1::ReporterKind::GridWorker as i32,
                    grid_worker_id: grid_worker(grid),
                }
            }),
        };
        (request, Some(category))
    };
    // Grid workers report from their app, residents through the hotline: both reach the
    // district's command centre, which also calls the reporter back for the rating.
    let reporter = match report.reporter.as_ref() {
        Some(r) if !r.grid_worker_id.is_empty() => r.grid_worker_id.clone(),
        _ => format!("{centre}-hotline{}", rng.gen_range(1..=3)),
    };
    chain.push(at, "rep", centre, &reporter, Command::ReportCase(report));

    let urgency = urgency(category);
    let (right, wrong) = route(category);
    let minutes = |lo: i64, hi: i64| (lo * 60, hi * 60);
    let (dispatch, accept, resolve) = match urgency {
        v1::Urgency::Urgent => (minutes(3, 20), minutes(3, 25), minutes(30, 12 * 60)),
        v1::Urgency::Important => (minutes(10, 90), minutes(10, 100), (2 * HOUR, 36 * HOUR)),
        _ => (minutes(10, 180), minutes(20, 360), (2 * HOUR, 72 * HOUR)),
    };
    let transfer = rng.gen_bool(s.transfer_share);
    let handed_on = transfer && rng.gen_bool(s.transfer_accept_share);
    let first = if handed_on { wrong } else { right };
    let operator = place.operator(rng);
    let t = chain.last() + span(rng, dispatch.0, dispatch.1, false);
    chain.push(
        t,
        "dsp",
        centre,
        &operator,
        Command::DispatchCase(v1::DispatchCaseRequest {
            department: first.to_owned(),
            ..Default::default()
        }),
    );
    if rng.gen_bool(s.miss_share) {
        // Never accepted: left for the hub's deadline supervision.
        return chain;
    }
    let handler = place.staff(right, rng);
    if handed_on {
        let t = chain.last() + span(rng, 10 * 60, 120 * 60, false);
        chain.push(
            t,
            "trq",
            wrong,
            &place.staff(wrong, rng),
            Command::RequestCaseTransfer(v1::RequestCaseTransferRequest {
                to_department: right.to_owned(),
                reason: format!("不属于本部门职责 not our remit: for {right}"),
                ..Default::default()
            }),
        );
        let t = chain.last() + span(rng, 15 * 60, 240 * 60, false);
        chain.push(
            t,
            "tra",
            right,
            &handler,
            Command::AcceptCaseTransfer(v1::AcceptCaseTransferRequest::default()),
        );
    } else {
        let t = chain.last() + span(rng, accept.0, accept.1, false);
        chain.push(
            t,
            "acc",
            right,
            &handler,
            Command::AcceptCase(v1::AcceptCaseRequest::default()),
        );
        if transfer {
            let t = chain.last() + span(rng, 30 * 60, 480 * 60, false);
            chain.push(
                t,
                "trq",
                right,
                &handler,
                Command::RequestCaseTransfer(v1::RequestCaseTransferRequest {
                    to_department: wrong.to_owned(),
                    reason: format!("建议由对方牵头处理 suggest {wrong} takes the lead"),
                    ..Default::default()
                }),
            );
            let t = chain.last() + span(rng, 15 * 60, 240 * 60, false);
            chain.push(
                t,
                "trj",
                wrong,
                &place.staff(wrong, rng),
                Command::RejectCaseTransfer(v1::RejectCaseTransferRequest {
                    reason: both(words::REJECT_TRANSFER),
                    ..Default::default()
                }),
            );
        }
    }
    let outcome = match category {
        Some(category) => words::incident_outcome(category),
        None => words::COMPLAINT_OUTCOME,
    };
    let t = chain.last() + span(rng, resolve.0, resolve.1, true);
    chain.push(t, "res", right, &handler, resolve_command(outcome));
    if !rng.gen_bool(s.rated_share) {
        let t = chain.last() + span(rng, 12 * HOUR, 36 * HOUR, false);
        chain.push(t, "cls", centre, &place.operator(rng), close_case());
        return chain;
    }
    let poor = (s.poor_rating_share * if complaint { 2.0 } else { 1.0 }).min(1.0);
    let t = chain.last() + span(rng, HOUR, 12 * HOUR, false);
    if rng.gen_bool(poor) {
        let rating = rng.gen_range(1..=2);
        chain.push(t, "rat", centre, &place.operator(rng), rate_command(rating));
        let t = chain.last() + span(rng, 4 * HOUR, 30 * HOUR, true);
        chain.push(
            t,
            "res2",
            right,
            &handler,
            resolve_command(words::SECOND_OUTCOME),
        );
        let t = chain.last() + span(rng, HOUR, 12 * HOUR, false);
        chain.push(
            t,
            "rat2",
            centre,
            &place.operator(rng),
            rate_command(good(rng)),
        );
    } else {
        chain.push(
            t,
            "rat",
            centre,
            &place.operator(rng),
            rate_command(good(rng)),
        );
    }
    let t = chain.last() + span(rng, 30 * 60, 8 * HOUR, false);
    chain.push(t, "cls", centre, &place.operator(rng), close_case());
    chain
}

/// A grid's worker's staff number (at most 10 digits in a row, as headers require).
fn grid_worker(grid: &Grid) -> String {
    format!("GW-{}-{}", &grid.code[3..6], &grid.code[6..15])
}

/// A satisfied rating: mostly 5, some 4, a few 3.
fn good<R: Rng>(rng: &mut R) -> u32 {
    [5, 4, 3][weighted(rng, &[55, 30, 15])]
}

fn resolve_command(outcome: words::Text) -> Command {
    Command::ResolveCase(v1::ResolveCaseRequest {
        outcome: both(outcome),
        ..Default::default()
    })
}

fn rate_command(rating: u32) -> Command {
    Command::RateCase(v1::RateCaseRequest {
        rating,
        ..Default::default()
    })
}

fn close_case() -> Command {
    Command::CloseCase(v1::CloseCaseRequest::default())
}

/// A person civil affairs cares for: registered, visited as often as their risk asks,
/// reassessed now and then, rarely closed.
fn care(
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

fn civil_affairs_staff(place: &Place<'_>, rng: &mut impl Rng) -> String {
    place.staff(CIVIL_AFFAIRS, rng)
}

/// A grant on the care roster: public security asks, civil affairs answers, sometimes
/// revokes it later.
fn grant(
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

#[cfg(test)]
mod tests {
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
}
