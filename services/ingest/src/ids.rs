//! Deterministic ids: the same (department, request id) always gives the same case and
//! event ids, so a retried command cannot create a second case or a second event.

use uuid::Uuid;

/// Namespace of the hub's name-based (v5) UUIDs.
const NAMESPACE: Uuid = Uuid::from_u128(0x8c1f_6a2e_4b7d_4f0a_9e35_2d6b_1c0f_7a41);

/// The id of the aggregate of type `aggregate_type` that a department's creating command
/// (a report, a care registration, a grant request) brings into being.
pub fn aggregate_id(aggregate_type: &str, department: &str, request_id: &str) -> String {
    Uuid::new_v5(
        &NAMESPACE,
        format!("{aggregate_type}\n{department}\n{request_id}").as_bytes(),
    )
    .to_string()
}

pub fn case_id(department: &str, request_id: &str) -> String {
    aggregate_id("case", department, request_id)
}

/// The id of the `index`-th event a command produced; also its `Nats-Msg-Id`.
pub fn event_id(department: &str, request_id: &str, index: usize) -> String {
    Uuid::new_v5(
        &NAMESPACE,
        format!("event\n{department}\n{request_id}\n{index}").as_bytes(),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(case_id("a", "r1"), case_id("a", "r1"));
        assert_ne!(
            case_id("a", "r1"),
            case_id("b", "r1"),
            "departments have their own request ids"
        );
        assert_ne!(case_id("a", "r1"), case_id("a", "r2"));
        assert_ne!(event_id("a", "r1", 0), event_id("a", "r1", 1));
        // No separator games: ("a\nb", "c") and ("a", "b\nc") cannot both be valid inputs,
        // because department codes have no newline.
        assert_ne!(event_id("a", "r1", 0), case_id("a", "r1"));
    }
}
