//! What every aggregate type brings to the command side and to `command_state`: its rules
//! (decide, apply), its wire format (encode, decode), and when the hub must act on it
//! by itself.

use std::fmt::Debug;

use hub_domain::policy::Policy;
use hub_domain::registry::Sensitivity;
use hub_domain::{Actor, Ctx, Refusal, care, case, grant};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    DecodeError, EventType, decode_care_event, decode_case_event, decode_grant_event,
    encode_care_event, encode_case_event, encode_grant_event,
};

pub trait Aggregate: Send + Sync + 'static {
    type State: Clone + Debug + Serialize + DeserializeOwned + Send + Sync;
    type Command: Clone + Debug + Send + Sync;
    type Event: Clone + Debug + Send + Sync;

    /// The aggregate type: the subject token (`gov.events.<type>.<id>`) and key prefix.
    const TYPE: &'static str;
    /// What people call one, in refusals and alarms: "case", "care record", "grant".
    const NOUN: &'static str;
    /// How sensitive its events are (`ce-classification`).
    const SENSITIVITY: Sensitivity;

    /// Whether `actor` may act on the aggregate at all; the same refusal whether it exists
    /// or not. Checked before its version, existence or state is compared to anything.
    fn authorise(
        state: Option<&Self::State>,
        command: &Self::Command,
        actor: &Actor,
    ) -> Result<(), Refusal>;
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
    /// The department that owns the aggregate in `state` (`ce-department`), whoever issued
    /// the command: feeds and masking follow it. A case is owned by its holder (its district
    /// command centre until dispatched), a care record by civil affairs, a grant by the
    /// dataset's owner.
    fn owner(state: &Self::State) -> String;
}

/// Cases: grid incidents and property complaints.
#[derive(Debug, Clone, Copy)]
pub struct Case;

impl Aggregate for Case {
    type State = case::CaseState;
    type Command = case::CaseCommand;
    type Event = case::CaseEvent;

    const TYPE: &'static str = "case";
    const NOUN: &'static str = "case";
    const SENSITIVITY: Sensitivity = Sensitivity::Internal;

    fn authorise(
        state: Option<&Self::State>,
        command: &Self::Command,
        actor: &Actor,
    ) -> Result<(), Refusal> {
        case::authorise(state, command, actor)
    }

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

    fn owner(state: &Self::State) -> String {
        state.holder.to_string()
    }
}

/// Key-population care records: sensitive personal information, owned by civil affairs.
#[derive(Debug, Clone, Copy)]
pub struct Care;

impl Aggregate for Care {
    type State = care::CareState;
    type Command = care::CareCommand;
    type Event = care::CareEvent;

    const TYPE: &'static str = "care";
    const NOUN: &'static str = "care record";
    const SENSITIVITY: Sensitivity = Sensitivity::Sensitive;

    fn authorise(
        state: Option<&Self::State>,
        command: &Self::Command,
        actor: &Actor,
    ) -> Result<(), Refusal> {
        care::authorise(state, command, actor)
    }

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
        ctx: Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Refusal> {
        care::decide(state, command, ctx)
    }

    fn apply(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        care::apply(state, event)
    }

    fn encode(event: &Self::Event) -> (EventType, Vec<u8>) {
        encode_care_event(event)
    }

    fn decode(event_type: &str, body: &[u8]) -> Result<Option<Self::Event>, DecodeError> {
        decode_care_event(event_type, body)
    }

    fn due(_: &Self::State, _: &Policy) -> Option<Timestamp> {
        None
    }

    fn creates(command: &Self::Command) -> bool {
        matches!(command, care::CareCommand::Register(_))
    }

    fn owner(_state: &Self::State) -> String {
        care::CIVIL_AFFAIRS.to_owned()
    }
}

/// Data-sharing grants between departments.
#[derive(Debug, Clone, Copy)]
pub struct Grant;

impl Aggregate for Grant {
    type State = grant::GrantState;
    type Command = grant::GrantCommand;
    type Event = grant::GrantEvent;

    const TYPE: &'static str = "grant";
    const NOUN: &'static str = "grant";
    const SENSITIVITY: Sensitivity = Sensitivity::Internal;

    fn authorise(
        state: Option<&Self::State>,
        command: &Self::Command,
        actor: &Actor,
    ) -> Result<(), Refusal> {
        grant::authorise(state, command, actor)
    }

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
        ctx: Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Refusal> {
        grant::decide(state, command, ctx)
    }

    fn apply(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        grant::apply(state, event)
    }

    fn encode(event: &Self::Event) -> (EventType, Vec<u8>) {
        encode_grant_event(event)
    }

    fn decode(event_type: &str, body: &[u8]) -> Result<Option<Self::Event>, DecodeError> {
        decode_grant_event(event_type, body)
    }

    /// A grant requested or in force lapses at its expiry.
    fn due(state: &Self::State, _: &Policy) -> Option<Timestamp> {
        matches!(
            state.status,
            grant::GrantStatus::Requested | grant::GrantStatus::Approved
        )
        .then_some(state.expires_at)
    }

    fn creates(command: &Self::Command) -> bool {
        matches!(command, grant::GrantCommand::Request(_))
    }

    fn owner(state: &Self::State) -> String {
        state.owner.to_string()
    }
}
