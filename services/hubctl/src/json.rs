//! Messages of the hub's API as proto3 JSON (the mapping `buf curl` and grpcurl print): field
//! names in lowerCamelCase, 64-bit numbers as strings, an event's `Any` body decoded with its
//! `@type`. Decoded from the descriptors the API carries, so every message type prints.

use std::sync::LazyLock;

use anyhow::Context;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(hub_api::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
});

/// `message`, of the protobuf type `full_name` (e.g. `gov.hub.v1.HistoryEvent`), as JSON.
pub fn to_json<M: prost::Message>(
    full_name: &str,
    message: &M,
) -> anyhow::Result<serde_json::Value> {
    let pool = POOL
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the API's descriptors: {e}"))?;
    let descriptor = pool
        .get_message_by_name(full_name)
        .with_context(|| format!("no message {full_name} in the API"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .with_context(|| format!("decoding a {full_name}"))?;
    let options = SerializeOptions::new().skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .with_context(|| format!("a {full_name} as JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_body_prints_decoded_with_its_type_and_positions_as_strings() {
        let body = hub_api::v1::CaseAccepted {
            case_id: "c-1".into(),
            department: "urban-management".into(),
            ..Default::default()
        };
        let event = hub_api::v1::HistoryEvent {
            position: 7,
            event_type: "gov.hub.case.accepted.v1".into(),
            body: Some(prost_types::Any {
                type_url: "type.googleapis.com/gov.hub.v1.CaseAccepted".into(),
                value: prost::Message::encode_to_vec(&body),
            }),
            ..Default::default()
        };
        let json = to_json("gov.hub.v1.HistoryEvent", &event).expect("json");
        assert_eq!(json["position"], "7");
        assert_eq!(json["eventType"], "gov.hub.case.accepted.v1");
        assert_eq!(
            json["body"]["@type"],
            "type.googleapis.com/gov.hub.v1.CaseAccepted"
        );
        assert_eq!(json["body"]["caseId"], "c-1");
        assert_eq!(json["body"]["department"], "urban-management");
        assert!(
            json.get("masked").is_none(),
            "empty fields are left out: {json}"
        );
    }
}
