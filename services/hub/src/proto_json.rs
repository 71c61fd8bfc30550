//! Messages of the hub's API as proto3 JSON (the mapping `buf curl` and grpcurl print): field
//! names in lowerCamelCase, 64-bit numbers as strings, times in RFC 3339, an event's `Any`
//! body decoded with its `@type`; fields at their default value (0, "", false, an empty list)
//! are left out, as proto3 JSON does, so a withheld field of a masked body is absent rather
//! than shown as a default. The web console and `hubctl` print with this.

use std::sync::LazyLock;

use hub_api::ApiError;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tracing::error;

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(hub_api::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
});

/// `message`, of the protobuf type `full_name` (e.g. `gov.hub.v1.GetStatusResponse`), as
/// JSON; INTERNAL (logged) if the API's descriptors cannot write it.
pub fn to_json<M: prost::Message>(
    full_name: &str,
    message: &M,
) -> Result<serde_json::Value, ApiError> {
    let failed = |what: &str, err: &dyn std::fmt::Display| {
        error!(message = full_name, error = %err, "proto3 JSON: {what}");
        ApiError::Internal
    };
    let pool = POOL
        .as_ref()
        .map_err(|e| failed("the API's descriptors cannot be read", e))?;
    let descriptor = pool
        .get_message_by_name(full_name)
        .ok_or_else(|| failed("no such message in the API", &full_name))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| failed("a message cannot be decoded", &e))?;
    let options = SerializeOptions::new().skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| failed("a message cannot be written as JSON", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_body_is_decoded_and_defaults_are_left_out() {
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
        assert_eq!(json["body"]["caseId"], "c-1");
        assert_eq!(
            json["body"]["@type"],
            "type.googleapis.com/gov.hub.v1.CaseAccepted"
        );
        for absent in ["schemaVersion", "masked", "time"] {
            assert!(json.get(absent).is_none(), "{absent} is left out: {json}");
        }
    }
}
