//! A care event as a department reading under a grant receives it: the protobuf body of the
//! same type, each field shown as the care roster's policy says (see `datasets::access`): in
//! clear when the grant names the roster field it feeds, else masked by the field's form, else
//! left at its default (empty text, an unspecified enum). Free text the roster does not
//! describe (visit notes, reasons) never goes out.

use std::collections::BTreeSet;

use hub_api::{CARE_CLOSED, CARE_REGISTERED, CARE_RISK_LEVEL_CHANGED, CARE_VISIT_LOGGED, v1};
use hub_domain::masking::{mask_identity_number, mask_name, mask_phone};
use hub_domain::registry::Sensitivity;
use prost::Message;

use crate::datasets::care::ROSTER;
use crate::datasets::{Dataset, Mask};

/// What masking did to an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masked {
    pub body: Vec<u8>,
    /// Fields shown in a masked form.
    pub masked: Vec<&'static str>,
    /// Fields left out (at their default).
    pub withheld: Vec<&'static str>,
    /// Personal fields the event carries that go out in clear.
    pub clear: Vec<&'static str>,
}

struct Masker<'a> {
    dataset: &'static Dataset,
    granted: &'a BTreeSet<String>,
    masked: Vec<&'static str>,
    withheld: Vec<&'static str>,
    clear: Vec<&'static str>,
}

impl Masker<'_> {
    /// Notes that `field` went out in clear, if it is personal.
    fn in_clear(&mut self, field: &'static str) {
        let personal = self
            .dataset
            .field(field)
            .is_some_and(|f| f.sensitivity >= Sensitivity::Personal);
        if personal {
            self.clear.push(field);
        }
    }

    /// A text field feeding roster field `field`; `community` replaces an address.
    fn text(&mut self, field: &'static str, value: &mut String, community: &str) {
        if value.is_empty() {
            return;
        }
        if self.granted.contains(field) {
            self.in_clear(field);
            return;
        }
        let mask = self.dataset.field(field).map_or(Mask::Drop, |f| f.mask);
        *value = match mask {
            Mask::Clear => {
                self.in_clear(field);
                return;
            }
            Mask::Name => mask_name(value),
            Mask::IdentityNumber => mask_identity_number(value),
            Mask::Phone => mask_phone(value),
            Mask::Community(_) => community.to_owned(),
            Mask::Drop => {
                self.withheld.push(field);
                value.clear();
                return;
            }
        };
        self.masked.push(field);
    }

    /// An enum field feeding roster field `field`: shown when clear or granted, else left out.
    fn code(&mut self, field: &'static str, value: &mut i32) {
        let clear = self
            .dataset
            .field(field)
            .is_some_and(|f| f.mask == Mask::Clear);
        if *value == 0 {
            return;
        }
        if clear || self.granted.contains(field) {
            self.in_clear(field);
        } else {
            self.withheld.push(field);
            *value = 0;
        }
    }

    /// Free text no roster field describes: never shared.
    fn free_text(&mut self, field: &'static str, value: &mut String) {
        if !value.is_empty() {
            self.withheld.push(field);
            value.clear();
        }
    }
}

/// The care event `body` of type `event_type`, masked for a reader granted `granted`;
/// `None` when the type is unknown or the body does not decode (it is then not shared).
pub fn mask_care_event(
    event_type: &str,
    body: &[u8],
    granted: &BTreeSet<String>,
) -> Option<Masked> {
    let mut m = Masker {
        dataset: &ROSTER,
        granted,
        masked: Vec::new(),
        withheld: Vec::new(),
        clear: Vec::new(),
    };
    let body = match event_type {
        t if t == CARE_REGISTERED.name => {
            let mut e = v1::CareRegistered::decode(body).ok()?;
            let community = e.community_code.clone();
            m.text("name", &mut e.name, &community);
            m.text("identity_number", &mut e.identity_number, &community);
            m.text("phone", &mut e.phone, &community);
            m.text("address", &mut e.address, &community);
            m.code("category", &mut e.category);
            m.code("risk_level", &mut e.risk_level);
            e.encode_to_vec()
        }
        t if t == CARE_VISIT_LOGGED.name => {
            let mut e = v1::CareVisitLogged::decode(body).ok()?;
            m.free_text("notes", &mut e.notes);
            m.free_text("visitor", &mut e.visitor);
            e.encode_to_vec()
        }
        t if t == CARE_RISK_LEVEL_CHANGED.name => {
            let mut e = v1::CareRiskLevelChanged::decode(body).ok()?;
            m.code("risk_level", &mut e.from_risk_level);
            m.code("risk_level", &mut e.to_risk_level);
            m.free_text("reason", &mut e.reason);
            e.encode_to_vec()
        }
        t if t == CARE_CLOSED.name => {
            let mut e = v1::CareClosed::decode(body).ok()?;
            m.free_text("reason", &mut e.reason);
            e.encode_to_vec()
        }
        _ => return None,
    };
    m.masked.dedup();
    m.withheld.dedup();
    m.clear.dedup();
    Some(Masked {
        body,
        masked: m.masked,
        withheld: m.withheld,
        clear: m.clear,
    })
}
