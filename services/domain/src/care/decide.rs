//! Deciding a care command: the events it produces, or why it is refused.

use super::events::*;
use super::state::{CareState, CareStatus};
use super::{CIVIL_AFFAIRS, CareCommand, RegisterCare};
use crate::Ctx;
use crate::actor::Actor;
use crate::codes::DepartmentCode;
use crate::refusal::Refusal;
use crate::violation::Violations;

/// Whether `actor` may act on care records at all: civil affairs alone, for every record.
/// It depends on nothing about the record, so another department learns nothing of it.
pub fn authorise(
    _state: Option<&CareState>,
    _command: &CareCommand,
    actor: &Actor,
) -> Result<(), Refusal> {
    civil_affairs_code(actor).map(|_| ())
}

/// Decides what a command does to a care record (`None`: it does not exist yet).
///
/// Who asks is checked first, so a department that may not see care records does not
/// learn from NOT_FOUND or ALREADY_EXISTS whether one exists.
pub fn decide(
    state: Option<&CareState>,
    command: CareCommand,
    ctx: Ctx<'_>,
) -> Result<Vec<CareEvent>, Refusal> {
    let by = civil_affairs_code(ctx.actor)?;
    let s = match (state, command) {
        (None, CareCommand::Register(register)) => {
            return register_care(register, by, ctx).map(|e| vec![e]);
        }
        (Some(_), CareCommand::Register(_)) => return Err(Refusal::AlreadyExists("care record")),
        (None, _) => return Err(Refusal::NotFound("care record")),
        (Some(s), command) => (s, command),
    };
    let (s, command) = s;
    if s.status == CareStatus::Closed {
        return Err(Refusal::Illegal(
            "the care record is closed: no command applies to it any more".into(),
        ));
    }
    let care_id = s.id.clone();
    let now = ctx.now;
    let event = match command {
        CareCommand::Register(_) => return Err(Refusal::AlreadyExists("care record")),
        CareCommand::LogVisit {
            visited_at,
            visitor,
            notes,
        } => {
            if visited_at > now {
                return Err(Refusal::field("visited_at", "must not be in the future"));
            }
            CareEvent::VisitLogged(CareVisitLogged {
                care_id,
                visited_at,
                visitor,
                notes,
                logged_by: by,
                logged_at: now,
            })
        }
        CareCommand::ChangeRiskLevel { to, reason } => {
            if to == s.risk_level {
                return Err(Refusal::Illegal(format!(
                    "cannot change the risk level: it is {} already",
                    to.as_str()
                )));
            }
            CareEvent::RiskLevelChanged(CareRiskLevelChanged {
                care_id,
                from: s.risk_level,
                to,
                reason,
                changed_by: by,
                changed_at: now,
            })
        }
        CareCommand::Close { reason } => CareEvent::Closed(CareClosed {
            care_id,
            reason,
            closed_by: by,
            closed_at: now,
        }),
    };
    Ok(vec![event])
}

fn civil_affairs_code(actor: &Actor) -> Result<DepartmentCode, Refusal> {
    match actor.department() {
        Some(code) if code.as_str() == CIVIL_AFFAIRS => Ok(code.clone()),
        _ => Err(Refusal::Forbidden(
            "only civil affairs manages key-population care records".into(),
        )),
    }
}

fn register_care(
    register: RegisterCare,
    by: DepartmentCode,
    ctx: Ctx<'_>,
) -> Result<CareEvent, Refusal> {
    let mut violations = Violations::new();
    if register.name.trim().is_empty() {
        violations.push("name", "must not be empty");
    }
    let district = register.community.division();
    if ctx.registry.district(&district).is_none() {
        violations.push("community_code", "no such district in the registry");
    }
    if !violations.is_empty() {
        return Err(Refusal::Invalid(violations));
    }
    Ok(CareEvent::Registered(CareRegistered {
        care_id: register.care_id,
        name: register.name,
        identity_number: register.identity_number,
        category: register.category,
        community: register.community,
        district,
        risk_level: register.risk_level,
        registered_by: by,
        registered_at: ctx.now,
        phone: register.phone,
        address: register.address,
    }))
}
