//! Who reads what of a dataset: deny by default.
//!
//! - An open dataset (无条件开放) is read by anyone, the anonymous public included.
//! - Otherwise the reader must be a department: the owning department reads its dataset
//!   whole; a dataset the hub keeps across departments is read row by row, each department
//!   the rows naming it as a party.
//! - Another department reads an unconditionally shared dataset (无条件共享), a conditionally
//!   shared one (有条件共享) only under a grant in force (approved, not expired, not revoked),
//!   and a not-shared one (不予共享) not at all.
//! - What a department reads of another's dataset is masked: a field the grants in force name
//!   is shown as stored; any other field by its masking form ([`Mask`]), personal ones dropped
//!   when they have none. The rows are masked before they leave the read model's thread, so the
//!   cleartext never reaches the answer's bytes.

use std::collections::BTreeSet;

use hub_domain::masking::{mask_identity_number, mask_name, mask_phone};
use jiff::Timestamp;
use serde_json::Value;

use super::grant_register::GrantRow;
use super::rows::Row;
use super::{Dataset, Mask, OpenType, Owner, ShareType};

/// What a reader gets of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every row as stored.
    Full,
    /// The rows naming this department as a party, as stored.
    Party(String),
    /// Every row, each field not in `granted` masked by its form.
    Masked {
        granted: BTreeSet<String>,
        /// The grants in force it reads under (empty for an unconditionally shared dataset).
        grants: Vec<String>,
    },
}

/// Why a reader gets nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The anonymous public reads open datasets only.
    Anonymous,
    /// A not-shared dataset: its owner alone reads it.
    NotShared,
    /// A conditionally shared dataset, and no grant of the reader's is in force for it.
    NoGrant,
}

impl Denied {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Anonymous => {
                "this dataset is not open: the caller must identify as a department (client certificate or signed token)"
            }
            Self::NotShared => "this dataset is not shared: its owning department alone reads it",
            Self::NoGrant => {
                "this dataset is shared only under an approved grant in force, and the calling \
                 department has none for it"
            }
        }
    }
}

/// What `reader` (`None`: the anonymous public) may read of `dataset` at `now`, given the
/// grants it asked for (`grants`, in any state; those of other requesters or datasets are
/// ignored).
pub fn access(
    dataset: &Dataset,
    reader: Option<&str>,
    grants: &[GrantRow],
    now: Timestamp,
) -> Result<Access, Denied> {
    if dataset.open == OpenType::Open {
        return Ok(Access::Full);
    }
    let Some(reader) = reader else {
        return Err(Denied::Anonymous);
    };
    match dataset.owner {
        Owner::Department(owner) if owner == reader => return Ok(Access::Full),
        Owner::Department(_) => {}
        Owner::Hub => return Ok(Access::Party(reader.to_owned())),
    }
    let live: Vec<&GrantRow> = grants
        .iter()
        .filter(|g| g.requester == reader && g.dataset == dataset.id && g.in_force(now))
        .collect();
    let masked = || Access::Masked {
        granted: live.iter().flat_map(|g| g.fields.iter().cloned()).collect(),
        grants: live.iter().map(|g| g.grant_id.clone()).collect(),
    };
    match dataset.share {
        ShareType::Unconditional => Ok(masked()),
        ShareType::Conditional if !live.is_empty() => Ok(masked()),
        ShareType::Conditional => Err(Denied::NoGrant),
        ShareType::NotShared => Err(Denied::NotShared),
    }
}

/// `row` as `access` lets it out: unchanged for full and party access, masked otherwise.
pub fn release(dataset: &Dataset, access: &Access, row: Row) -> Row {
    match access {
        Access::Full | Access::Party(_) => row,
        Access::Masked { granted, .. } => mask_row(dataset, granted, row),
    }
}

/// Masks every field of `row` that `granted` does not name. A field the dataset does not
/// declare is dropped: what is not described is not shared.
pub fn mask_row(dataset: &Dataset, granted: &BTreeSet<String>, row: Row) -> Row {
    let mut out = Row::new();
    for (name, value) in &row {
        let Some(field) = dataset.field(name) else {
            continue;
        };
        if granted.contains(name.as_str()) {
            out.insert(name.clone(), value.clone());
            continue;
        }
        let text = value.as_str();
        let masked = match (field.mask, text) {
            (Mask::Clear, _) => Some(value.clone()),
            (_, None) if value.is_null() => Some(Value::Null),
            (Mask::Name, Some(t)) => Some(Value::from(mask_name(t))),
            (Mask::IdentityNumber, Some(t)) => Some(Value::from(mask_identity_number(t))),
            (Mask::Phone, Some(t)) => Some(Value::from(mask_phone(t))),
            (Mask::Community(source), Some(_)) => {
                Some(row.get(source).cloned().unwrap_or(Value::Null))
            }
            // A masking form for text on a value that is not text, or no form at all.
            _ => None,
        };
        if let Some(masked) = masked {
            out.insert(name.clone(), masked);
        }
    }
    out
}

#[cfg(test)]
mod tests;
