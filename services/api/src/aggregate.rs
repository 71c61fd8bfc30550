//! What every aggregate type brings to the command side and to `command_state`: its rules
//! (decide, apply), its wire format (encode, decode), and when the hub must act on it
//! by itself.

use std::fmt::Debug;

use hub_domain::policy::Policy;
use hub_domain::registry::Sensitivity;
use hub_domain::{Ctx, Refusal, case};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{DecodeError, EventType, decode_case_event, encode_case_event};

pub trait Aggregate: Send + Sync + 'static {
    type State: Clone + Debug + Serialize + DeserializeOwned + Send + Sync;
    type Command: Clone + Debug + Send + Sync;
    type Event: Clone + Debug + Send + Sync;

    /// The aggregate type: the subject token (`gov.events.<type>.<id>`) and key prefix.
    const TYPE: &'static str;
    /// How sensitive its events are (`ce-classification`).
    const SENSITIVITY: Sensitivity;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
        ctx: Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Refusal>;
    fn apply(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State>;
    fn encode(event: &Self::Event) -> (EventType, Vec<u8>);
    fn decode(event_type: &str, body: &[u8]) -> Result<Option<Self::Event>, DecodeError>;
    /// When the hub must next act on the aggregate by itself (escalate, expire), if ever.
    fn due(state: &Self::State, policy: &Policy) -> Option<Timestamp>;
    /// Whether the command creates the aggregate (so it expects no events before it).
    fn creates(command: &Self::Command) -> bool;
}

/// Cases: grid incidents and property complaints.
#[derive(Debug, Clone, Copy)]
pub struct Case;

impl Aggregate for Case {
    type State = case::CaseState;
    type Command = case::CaseCommand;
    type Event = case::CaseEvent;

    const TYPE: &'static str = "case";
    const SENSITIVITY: Sensitivity = Sensitivity::Internal;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
        ctx: Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Refusal> {
        case::decide(state, command, ctx)
    }

    fn apply(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        case::apply(state, event)
    }

    fn encode(event: &Self::Event) -> (EventType, Vec<u8>) {
        encode_case_event(event)
    }

    fn decode(event_type: &str, body: &[u8]) -> Result<Option<Self::Event>, DecodeError> {
        decode_case_event(event_type, body)
    }

    fn due(state: &Self::State, policy: &Policy) -> Option<Timestamp> {
        case::next_escalation(state, policy).map(|(_, at, _, _)| at)
    }

    fn creates(command: &Self::Command) -> bool {
        matches!(command, case::CaseCommand::Report(_))
    }
}
