//! Who issues a command.

use crate::codes::DepartmentCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A department's or dispatch unit's system.
    Department(DepartmentCode),
    /// The hub itself: deadline supervision, expiry.
    System,
}

impl Actor {
    pub fn department(&self) -> Option<&DepartmentCode> {
        match self {
            Actor::Department(code) => Some(code),
            Actor::System => None,
        }
    }

    pub fn is(&self, code: &DepartmentCode) -> bool {
        self.department() == Some(code)
    }
}
