//! Generators: who sends each command, what it asks, how far the clock moves before it, and
//! the sequences of such steps the properties play.
//!
//! `Sender::Expected` and `Pick::Next` are resolved against the case's current state when a
//! step is played, so that random sequences get past the report and deep into the lifecycle.

use proptest::prelude::*;
use proptest::sample::select;

use super::{STRANGER, UNITS};
use crate::actor::Actor;
use crate::case::tests::{dept, incident, report_by};
use crate::case::*;
use crate::codes::{CreditCode, DepartmentCode, DivisionCode};
use crate::props::sequence;

/// Who sends a command: any unit of the registry, the hub itself, or (`Expected`) the party
/// the rules name for the command in the case's current state, resolved when the step is
/// played, so that sequences get past the report. For a report that party is the department
/// it names, which may be one the registry does not know (`STRANGER`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Sender {
    Expected,
    Unit(usize),
    System,
}

impl Sender {
    pub(super) fn actor(self, state: Option<&CaseState>, command: &CaseCommand) -> Actor {
        match self {
            Sender::Unit(i) => Actor::Department(dept(UNITS[i])),
            Sender::System => Actor::System,
            Sender::Expected => party(state, command),
        }
    }
}

/// The party the rules allow to send `command` in `state` (the one `Sender::Expected` picks).
pub(super) fn party(state: Option<&CaseState>, command: &CaseCommand) -> Actor {
    let unit = |code: &DepartmentCode| Actor::Department(code.clone());
    match (state, command) {
        (_, CaseCommand::Report(report)) => unit(&report.reported_by),
        (_, CaseCommand::Escalate) | (None, _) => Actor::System,
        (Some(s), CaseCommand::Dispatch { .. } | CaseCommand::Close) => unit(&s.dispatch_unit),
        (
            Some(s),
            CaseCommand::Accept | CaseCommand::RequestTransfer { .. } | CaseCommand::Resolve { .. },
        ) => unit(&s.holder),
        (Some(s), CaseCommand::AcceptTransfer | CaseCommand::RejectTransfer { .. }) => {
            unit(s.pending_transfer.as_ref().unwrap_or(&s.holder))
        }
        (Some(s), CaseCommand::Rate { .. }) => unit(&s.reported_by),
    }
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        3 => Just(Sender::Expected),
        2 => (0..UNITS.len()).prop_map(Sender::Unit),
        1 => Just(Sender::System),
    ]
}

/// A unit of the registry (dispatch unit or department), or now and then one that is not.
fn code() -> impl Strategy<Value = DepartmentCode> {
    prop_oneof![
        6 => select(&UNITS[..]),
        1 => Just(STRANGER),
    ]
    .prop_map(dept)
}

/// What is reported: grid incidents on a known grid, on an unknown grid of a known district,
/// in a known district without grids, in an unknown district; property complaints in known
/// and unknown districts.
fn kind() -> impl Strategy<Value = CaseKind> {
    let grid = prop_oneof![
        4 => Just("310104001001001"),
        1 => Just("310104009009009"),
        1 => Just("310105001001001"),
        1 => Just("110101001001001"),
    ];
    let category = select(
        &[
            IncidentCategory::FireHazard,
            IncidentCategory::SafetyHazard,
            IncidentCategory::Dispute,
            IncidentCategory::GroupRenting,
            IncidentCategory::IllegalConstruction,
            IncidentCategory::Sanitation,
            IncidentCategory::Other,
        ][..],
    );
    let district = prop_oneof![
        2 => Just("310105"),
        1 => Just("310104"),
        1 => Just("110101"),
    ];
    let complaint_category = select(
        &[
            ComplaintCategory::Fees,
            ComplaintCategory::PublicRevenue,
            ComplaintCategory::MaintenanceFund,
            ComplaintCategory::ServiceQuality,
            ComplaintCategory::Other,
        ][..],
    );
    prop_oneof![
        3 => (grid, category).prop_map(|(grid, category)| incident(grid, category)),
        1 => (district, complaint_category).prop_map(|(district, category)| {
            CaseKind::PropertyComplaint(PropertyComplaint {
                company: CreditCode::parse("91350100M000100Y43").expect("credit code"),
                compound: "garden estate".into(),
                category,
                district: DivisionCode::parse(district).expect("division code"),
            })
        }),
    ]
}

fn report() -> impl Strategy<Value = CaseCommand> {
    (select(&["c1", "c2"][..]), code(), kind()).prop_map(|(id, by, kind)| {
        let CaseCommand::Report(mut report) = report_by(by.as_str(), kind) else {
            unreachable!("report_by builds a report")
        };
        report.case_id = CaseId::new(id);
        CaseCommand::Report(report)
    })
}

fn command() -> impl Strategy<Value = CaseCommand> {
    prop_oneof![
        1 => report(),
        2 => code().prop_map(|department| CaseCommand::Dispatch { department }),
        2 => Just(CaseCommand::Accept),
        2 => code().prop_map(|to| CaseCommand::RequestTransfer {
            to,
            reason: "not ours".into(),
        }),
        2 => Just(CaseCommand::AcceptTransfer),
        1 => Just(CaseCommand::RejectTransfer {
            reason: "not ours either".into(),
        }),
        5 => Just(CaseCommand::Escalate),
        2 => Just(CaseCommand::Resolve {
            outcome: "done".into(),
        }),
        2 => (0u8..=6).prop_map(|rating| CaseCommand::Rate { rating }),
        2 => Just(CaseCommand::Close),
    ]
}

/// Minutes the clock moves before a step: often minutes, sometimes hours, now and then days
/// (so every escalation tier, three working days after a deadline, can become due).
fn advance() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0i64..=60,
        3 => 60i64..=24 * 60,
        2 => 24 * 60i64..=6 * 24 * 60,
    ]
}

/// What a step asks: a command drawn blind, or the command that moves the case along its
/// lifecycle from wherever it is (resolved when the step is played, like `Sender::Expected`),
/// so that random sequences get deep into the lifecycle within 40 steps.
#[derive(Debug, Clone)]
pub(super) enum Pick {
    Command(CaseCommand),
    /// Dispatch to `UNITS[department]`, accept, ask to transfer to `UNITS[department]` (if
    /// `transfer`), answer a pending transfer (accept if `yes`), resolve, rate `rating`, close.
    Next {
        department: usize,
        transfer: bool,
        yes: bool,
        rating: u8,
    },
}

impl Pick {
    pub(super) fn command(&self, state: Option<&CaseState>) -> CaseCommand {
        let (department, transfer, yes, rating) = match self {
            Pick::Command(command) => return command.clone(),
            Pick::Next {
                department,
                transfer,
                yes,
                rating,
            } => (*department, *transfer, *yes, *rating),
        };
        let Some(s) = state else {
            return report_by(
                "urban-management",
                incident("310104001001001", IncidentCategory::FireHazard),
            );
        };
        match s.status {
            _ if s.pending_transfer.is_some() && yes => CaseCommand::AcceptTransfer,
            _ if s.pending_transfer.is_some() => CaseCommand::RejectTransfer {
                reason: "not ours".into(),
            },
            CaseStatus::Dispatched | CaseStatus::Accepted if transfer => {
                CaseCommand::RequestTransfer {
                    to: dept(UNITS[department]),
                    reason: "not ours".into(),
                }
            }
            CaseStatus::Reported => CaseCommand::Dispatch {
                department: dept(UNITS[department]),
            },
            CaseStatus::Dispatched => CaseCommand::Accept,
            CaseStatus::Accepted => CaseCommand::Resolve {
                outcome: "done".into(),
            },
            CaseStatus::Resolved => CaseCommand::Rate { rating },
            CaseStatus::Rated | CaseStatus::Closed => CaseCommand::Close,
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => command().prop_map(Pick::Command),
        1 => (2..UNITS.len(), prop::bool::weighted(0.3), any::<bool>(), 1u8..=5).prop_map(
            |(department, transfer, yes, rating)| Pick::Next {
                department,
                transfer,
                yes,
                rating,
            }
        ),
    ]
}

#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) sender: Sender,
    pub(super) pick: Pick,
    pub(super) advance: i64,
}

fn step(
    sender: impl Strategy<Value = Sender>,
    pick: impl Strategy<Value = Pick>,
) -> impl Strategy<Value = Step> {
    (sender, pick, advance()).prop_map(|(sender, pick, advance)| Step {
        sender,
        pick,
        advance,
    })
}

/// Up to 40 steps; the first is a report (valid or not, mostly in the right name).
pub(super) fn steps() -> impl Strategy<Value = Vec<Step>> {
    let first_sender = prop_oneof![
        8 => Just(Sender::Expected),
        1 => (0..UNITS.len()).prop_map(Sender::Unit),
        1 => Just(Sender::System),
    ];
    let first = step(first_sender, report().prop_map(Pick::Command));
    sequence(first, step(sender(), pick()), 40)
}
