//! How a case's commands and events read in a failure's trace.

use crate::case::*;

/// A command in a few words.
pub(super) fn command(command: &CaseCommand) -> String {
    match command {
        CaseCommand::Report(r) => {
            let what = match &r.kind {
                CaseKind::GridIncident(i) => format!("{:?} on grid {}", i.category, i.grid),
                CaseKind::PropertyComplaint(c) => {
                    format!("{:?} complaint in {}", c.category, c.district)
                }
            };
            format!("Report {} ({what}) by {}", r.case_id, r.reported_by)
        }
        CaseCommand::Dispatch { department } => format!("Dispatch to {department}"),
        CaseCommand::RequestTransfer { to, .. } => format!("RequestTransfer to {to}"),
        CaseCommand::RejectTransfer { .. } => "RejectTransfer".into(),
        CaseCommand::Resolve { .. } => "Resolve".into(),
        CaseCommand::Rate { rating } => format!("Rate {rating}"),
        other => format!("{other:?}"),
    }
}

/// An event in a few words.
pub(super) fn event(event: &CaseEvent) -> String {
    match event {
        CaseEvent::Reported(e) => format!("Reported (queue {}, {:?})", e.dispatch_unit, e.urgency),
        CaseEvent::Dispatched(e) => format!(
            "Dispatched (to {}, accept by {}, resolve by {})",
            e.department, e.accept_by, e.resolve_by
        ),
        CaseEvent::Accepted(_) => "Accepted".into(),
        CaseEvent::TransferRequested(e) => format!("TransferRequested (to {})", e.to),
        CaseEvent::TransferAccepted(e) => {
            format!(
                "TransferAccepted (to {}, resolve by {})",
                e.to, e.resolve_by
            )
        }
        CaseEvent::TransferRejected(_) => "TransferRejected".into(),
        CaseEvent::Escalated(e) => format!(
            "Escalated (tier {}, {:?} deadline due {})",
            e.tier, e.deadline, e.due
        ),
        CaseEvent::Resolved(_) => "Resolved".into(),
        CaseEvent::Rated(e) => format!("Rated ({})", e.rating),
        CaseEvent::Reopened(e) => format!("Reopened (resolve by {})", e.resolve_by),
        CaseEvent::Closed(_) => "Closed".into(),
    }
}
