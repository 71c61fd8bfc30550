//! How a care record's commands and events read in a failure's trace: never the person's
//! name or identity number (`check_secrets` reads the printed trace for them).

use crate::care::*;

/// A command in a few words (never the person).
pub(super) fn command(command: &CareCommand) -> String {
    match command {
        CareCommand::Register(r) => format!(
            "Register {} ({:?} in {}, {}{})",
            r.care_id,
            r.category,
            r.community,
            r.risk_level.as_str(),
            if r.name.trim().is_empty() {
                ", blank name"
            } else {
                ""
            }
        ),
        CareCommand::LogVisit { visited_at, .. } => format!("LogVisit (visited {visited_at})"),
        CareCommand::ChangeRiskLevel { to, .. } => format!("ChangeRiskLevel to {}", to.as_str()),
        CareCommand::Close { .. } => "Close".into(),
    }
}

/// An event in a few words.
pub(super) fn event(event: &CareEvent) -> String {
    match event {
        CareEvent::Registered(e) => format!("Registered ({})", e.risk_level.as_str()),
        CareEvent::VisitLogged(_) => "VisitLogged".into(),
        CareEvent::RiskLevelChanged(e) => {
            format!(
                "RiskLevelChanged ({} -> {})",
                e.from.as_str(),
                e.to.as_str()
            )
        }
        CareEvent::Closed(_) => "Closed".into(),
    }
}
