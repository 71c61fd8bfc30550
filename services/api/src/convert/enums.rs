//! Enum mappings between protobuf and the domain, both ways.

use hub_domain::case::{ComplaintCategory, DeadlineKind, IncidentCategory, ReportChannel, Urgency};

use crate::v1;

/// Maps a domain enum to its protobuf value and back (an unknown or unspecified number: `None`).
macro_rules! enum_map {
    ($to:ident, $from:ident, $domain:ty, $proto:ty, { $($d:ident => $p:ident),* $(,)? }) => {
        pub fn $to(value: $domain) -> $proto {
            match value { $(<$domain>::$d => <$proto>::$p),* }
        }

        pub fn $from(value: i32) -> Option<$domain> {
            match <$proto>::try_from(value).ok()? {
                $(<$proto>::$p => Some(<$domain>::$d),)*
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
    };
}

enum_map!(incident_category_to_proto, incident_category, IncidentCategory, v1::IncidentCategory, {
    SafetyHazard => SafetyHazard,
    Dispute => Dispute,
    Sanitation => Sanitation,
    IllegalConstruction => IllegalConstruction,
    GroupRenting => GroupRenting,
    FireHazard => FireHazard,
    Other => Other,
});

enum_map!(complaint_category_to_proto, complaint_category, ComplaintCategory, v1::ComplaintCategory, {
    Fees => Fees,
    PublicRevenue => PublicRevenue,
    MaintenanceFund => MaintenanceFund,
    ServiceQuality => ServiceQuality,
    Other => Other,
});

enum_map!(urgency_to_proto, urgency, Urgency, v1::Urgency, {
    Urgent => Urgent,
    Important => Important,
    General => General,
});

enum_map!(deadline_to_proto, deadline, DeadlineKind, v1::DeadlineKind, {
    Accept => Accept,
    Resolve => Resolve,
});

enum_map!(report_channel_to_proto, report_channel, ReportChannel, v1::ReportChannel, {
    GridPatrol => GridPatrol,
    Hotline => Hotline,
    Online => Online,
    WalkIn => WalkIn,
    Department => Department,
    Unrecorded => Unrecorded,
});
