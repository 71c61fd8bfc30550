//! Service levels and escalation tiers, with a default for each, configurable per city.

use jiff::Timestamp;

use crate::calendar::{Calendar, Span};
use crate::case::Urgency;

/// How long a department has to accept and to resolve a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLevel {
    pub accept: Span,
    pub resolve: Span,
}

/// Escalation tiers (督办): a missed deadline puts the case under the district command
/// centre (tier 1); `tier2_after` later under the district leadership (tier 2, 挂牌督办);
/// `tier3_after` after the deadline under the city (tier 3).
#[derive(Debug, Clone)]
pub struct Policy {
    pub calendar: Calendar,
    pub urgent: ServiceLevel,
    pub important: ServiceLevel,
    pub general: ServiceLevel,
    pub tier2_after: Span,
    pub tier3_after: Span,
}

/// The highest escalation tier.
pub const TOP_TIER: u8 = 3;

impl Policy {
    /// The default service levels and escalation tiers, on `calendar`.
    pub fn with_defaults(calendar: Calendar) -> Self {
        Self {
            calendar,
            urgent: ServiceLevel {
                accept: Span::Minutes(30),
                resolve: Span::Minutes(24 * 60),
            },
            important: ServiceLevel {
                accept: Span::Minutes(120),
                resolve: Span::WorkingDays(3),
            },
            general: ServiceLevel {
                accept: Span::WorkingDays(1),
                resolve: Span::WorkingDays(5),
            },
            tier2_after: Span::WorkingDays(1),
            tier3_after: Span::WorkingDays(3),
        }
    }

    /// Everything that decides deadlines and escalation times, as stable text: what a derived
    /// index of due times remembers, to reschedule when the policy changes.
    pub fn describe(&self) -> String {
        format!(
            "{} urgent={:?} important={:?} general={:?} tier2={:?} tier3={:?}",
            self.calendar.describe(),
            self.urgent,
            self.important,
            self.general,
            self.tier2_after,
            self.tier3_after
        )
    }

    pub fn level(&self, urgency: Urgency) -> ServiceLevel {
        match urgency {
            Urgency::Urgent => self.urgent,
            Urgency::Important => self.important,
            Urgency::General => self.general,
        }
    }

    /// When a missed deadline `due` reaches `tier` (1 to 3).
    pub fn tier_at(&self, due: Timestamp, tier: u8) -> Timestamp {
        match tier {
            0 | 1 => due,
            2 => self.calendar.add(due, self.tier2_after),
            _ => self.calendar.add(due, self.tier3_after),
        }
    }
}
