//! Deciding a command: the events it produces, or why it is refused.

use jiff::Timestamp;

use super::events::*;
use super::state::{CaseState, CaseStatus};
use super::{CaseCommand, CaseKind, ReportCase};
use crate::Ctx;
use crate::actor::Actor;
use crate::codes::DepartmentCode;
use crate::policy::{Policy, TOP_TIER};
use crate::refusal::Refusal;
use crate::registry::{Registry, UnitKind};
use crate::violation::Violations;

/// Whether `actor` may act on the case at all: the department that reported it, its district
/// command centre, the department holding it, one asked to take it over, and the hub itself.
/// Checked before anything about the case is revealed (its existence, version or state), so
/// any other department gets [`Refusal::no_role`] whether the case exists or not (AIP-211).
/// A report creates the case in the caller's own name, which `decide` checks.
pub fn authorise(
    state: Option<&CaseState>,
    command: &CaseCommand,
    actor: &Actor,
) -> Result<(), Refusal> {
    if matches!(command, CaseCommand::Report(_)) || *actor == Actor::System {
        return Ok(());
    }
    let has_role = state.is_some_and(|s| {
        [&s.reported_by, &s.dispatch_unit, &s.holder]
            .into_iter()
            .chain(&s.pending_transfer)
            .any(|code| actor.is(code))
    });
    if has_role {
        Ok(())
    } else {
        Err(Refusal::no_role("case"))
    }
}

/// Decides what a command does to a case (`None`: the case does not exist yet).
pub fn decide(
    state: Option<&CaseState>,
    command: CaseCommand,
    ctx: Ctx<'_>,
) -> Result<Vec<CaseEvent>, Refusal> {
    let s = match (state, command) {
        (None, CaseCommand::Report(report)) => return report_case(report, ctx).map(|e| vec![e]),
        (Some(_), CaseCommand::Report(_)) => return Err(Refusal::AlreadyExists("case")),
        (None, _) => return Err(Refusal::NotFound("case")),
        (Some(s), command) => (s, command),
    };
    let (s, command) = s;
    let case_id = s.id.clone();
    let now = ctx.now;
    let event = match command {
        CaseCommand::Report(_) => return Err(Refusal::AlreadyExists("case")),
        CaseCommand::Dispatch { department } => {
            require(
                ctx.actor,
                &s.dispatch_unit,
                "only the case's district command centre dispatches it",
            )?;
            require_status(s, "dispatch", &[CaseStatus::Reported])?;
            require_department(ctx.registry, "department", &department)?;
            let level = ctx.policy.level(s.urgency);
            CaseEvent::Dispatched(CaseDispatched {
                case_id,
                department,
                dispatched_by: s.dispatch_unit.clone(),
                dispatched_at: now,
                accept_by: ctx.policy.calendar.add(now, level.accept),
                resolve_by: ctx.policy.calendar.add(now, level.resolve),
            })
        }
        CaseCommand::Accept => {
            require(
                ctx.actor,
                &s.holder,
                "only the department holding the case accepts it",
            )?;
            require_status(s, "accept", &[CaseStatus::Dispatched])?;
            CaseEvent::Accepted(CaseAccepted {
                case_id,
                department: s.holder.clone(),
                accepted_at: now,
            })
        }
        CaseCommand::RequestTransfer { to, reason } => {
            require(
                ctx.actor,
                &s.holder,
                "only the department holding the case asks to transfer it",
            )?;
            require_status(
                s,
                "request a transfer of",
                &[CaseStatus::Dispatched, CaseStatus::Accepted],
            )?;
            if let Some(pending) = &s.pending_transfer {
                return Err(Refusal::Illegal(format!(
                    "cannot request a transfer: one to {pending} is pending"
                )));
            }
            require_department(ctx.registry, "to_department", &to)?;
            if to == s.holder {
                return Err(Refusal::field(
                    "to_department",
                    "must be another department than the holder",
                ));
            }
            CaseEvent::TransferRequested(TransferRequested {
                case_id,
                from: s.holder.clone(),
                to,
                reason,
                requested_at: now,
            })
        }
        CaseCommand::AcceptTransfer => {
            let to = pending(s)?;
            require(
                ctx.actor,
                to,
                "only the department asked to take the case accepts the transfer",
            )?;
            let level = ctx.policy.level(s.urgency);
            CaseEvent::TransferAccepted(TransferAccepted {
                case_id,
                from: s.holder.clone(),
                to: to.clone(),
                accepted_at: now,
                resolve_by: ctx.policy.calendar.add(now, level.resolve),
            })
        }
        CaseCommand::RejectTransfer { reason } => {
            let to = pending(s)?;
            require(
                ctx.actor,
                to,
                "only the department asked to take the case rejects the transfer",
            )?;
            CaseEvent::TransferRejected(TransferRejected {
                case_id,
                from: s.holder.clone(),
                to: to.clone(),
                reason,
                rejected_at: now,
            })
        }
        CaseCommand::Escalate => {
            if *ctx.actor != Actor::System {
                return Err(Refusal::Forbidden(
                    "only the hub's deadline supervision escalates a case".into(),
                ));
            }
            let Some((tier, at, deadline, due)) = next_escalation(s, ctx.policy) else {
                return Err(Refusal::Illegal(format!(
                    "cannot escalate: the case is {} with no deadline running, or at the top tier",
                    s.status.as_str()
                )));
            };
            if at > now {
                return Err(Refusal::Illegal(format!(
                    "cannot escalate: tier {tier} is due at {at}"
                )));
            }
            CaseEvent::Escalated(CaseEscalated {
                case_id,
                tier,
                deadline,
                due,
                holder: s.holder.clone(),
                escalated_at: now,
            })
        }
        CaseCommand::Resolve { outcome } => {
            require(
                ctx.actor,
                &s.holder,
                "only the department holding the case resolves it",
            )?;
            require_status(s, "resolve", &[CaseStatus::Accepted])?;
            if let Some(pending) = &s.pending_transfer {
                return Err(Refusal::Illegal(format!(
                    "cannot resolve: a transfer to {pending} is pending"
                )));
            }
            CaseEvent::Resolved(CaseResolved {
                case_id,
                department: s.holder.clone(),
                outcome,
                resolved_at: now,
            })
        }
        CaseCommand::Rate { rating } => {
            require(
                ctx.actor,
                &s.reported_by,
                "only the department that reported the case rates it",
            )?;
            require_status(s, "rate", &[CaseStatus::Resolved])?;
            if !(1..=5).contains(&rating) {
                return Err(Refusal::field("rating", "must be 1 to 5"));
            }
            let rated = CaseEvent::Rated(CaseRated {
                case_id: case_id.clone(),
                rating,
                rated_by: s.reported_by.clone(),
                rated_at: now,
            });
            if rating <= 2 {
                // A poor rating reopens the case with its holder, whose resolve clock restarts.
                let level = ctx.policy.level(s.urgency);
                let reopened = CaseEvent::Reopened(CaseReopened {
                    case_id,
                    holder: s.holder.clone(),
                    reopened_at: now,
                    resolve_by: ctx.policy.calendar.add(now, level.resolve),
                });
                return Ok(vec![rated, reopened]);
            }
            rated
        }
        CaseCommand::Close => {
            require(
                ctx.actor,
                &s.dispatch_unit,
                "only the case's district command centre closes it",
            )?;
            require_status(s, "close", &[CaseStatus::Resolved, CaseStatus::Rated])?;
            CaseEvent::Closed(CaseClosed {
                case_id,
                closed_by: s.dispatch_unit.clone(),
                closed_at: now,
            })
        }
    };
    Ok(vec![event])
}

/// The next escalation of the running deadline: (tier, when, which deadline, its due time).
pub fn next_escalation(
    s: &CaseState,
    policy: &Policy,
) -> Option<(u8, Timestamp, super::DeadlineKind, Timestamp)> {
    let (deadline, due) = s.running_deadline()?;
    let tier = s.escalation_tier + 1;
    (tier <= TOP_TIER).then(|| (tier, policy.tier_at(due, tier), deadline, due))
}

fn report_case(report: ReportCase, ctx: Ctx<'_>) -> Result<CaseEvent, Refusal> {
    if !ctx.actor.is(&report.reported_by) {
        return Err(Refusal::Forbidden(
            "a department reports cases in its own name only".into(),
        ));
    }
    let mut violations = Violations::new();
    if let CaseKind::GridIncident(incident) = &report.kind
        && !ctx.registry.has_grid(&incident.grid)
    {
        violations.push("grid_incident.grid_code", "no such grid in the registry");
    }
    let district = report.kind.district();
    let centre = ctx
        .registry
        .district(&district)
        .map(|d| d.command_centre.clone());
    if centre.is_none() && matches!(report.kind, CaseKind::PropertyComplaint(_)) {
        violations.push(
            "property_complaint.district_code",
            "no such district in the registry",
        );
    }
    if !report.channel.fits(&report.reporter) {
        violations.push("channel", "grid patrol is a grid worker's channel only");
    }
    if ctx.registry.unit(&report.reported_by).is_none() {
        violations.push("x-hub-department", "no such department in the registry");
    }
    let Some(dispatch_unit) = centre.filter(|_| violations.is_empty()) else {
        return Err(Refusal::Invalid(violations));
    };
    Ok(CaseEvent::Reported(CaseReported {
        urgency: report.kind.urgency(),
        case_id: report.case_id,
        kind: report.kind,
        description: report.description,
        reporter: report.reporter,
        channel: report.channel,
        district,
        dispatch_unit,
        reported_at: ctx.now,
        reported_by: report.reported_by,
    }))
}

fn require(actor: &Actor, who: &DepartmentCode, rule: &str) -> Result<(), Refusal> {
    if actor.is(who) {
        Ok(())
    } else {
        Err(Refusal::Forbidden(rule.to_owned()))
    }
}

fn require_status(s: &CaseState, action: &str, allowed: &[CaseStatus]) -> Result<(), Refusal> {
    if allowed.contains(&s.status) {
        return Ok(());
    }
    let wanted: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
    Err(Refusal::Illegal(format!(
        "cannot {action} a case that is {}: it must be {}",
        s.status.as_str(),
        wanted.join(" or ")
    )))
}

fn require_department(
    registry: &Registry,
    field: &str,
    code: &DepartmentCode,
) -> Result<(), Refusal> {
    match registry.unit(code) {
        Some(unit) if unit.kind == UnitKind::Department => Ok(()),
        Some(_) => Err(Refusal::field(
            field,
            "is a dispatch unit, not a department that handles cases",
        )),
        None => Err(Refusal::field(field, "no such department in the registry")),
    }
}

fn pending(s: &CaseState) -> Result<&DepartmentCode, Refusal> {
    s.pending_transfer
        .as_ref()
        .ok_or_else(|| Refusal::Illegal("no transfer of this case is pending".into()))
}
