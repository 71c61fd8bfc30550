//! Identifiers the cities use, validated for real: an invalid code never gets past the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a code was refused. The text never repeats the value (it may be personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("must not be empty")]
    Empty,
    #[error("must be {0} characters long")]
    Length(usize),
    #[error("must be digits only")]
    NotDigits,
    #[error("has a character outside the code's alphabet")]
    Alphabet,
    #[error("check character does not match")]
    CheckCharacter,
    #[error("must be 2 to 40 lowercase letters, digits or dashes")]
    DepartmentCode,
    #[error("has no real calendar date in positions 7 to 14")]
    BirthDate,
}

fn exact_digits(s: &str, len: usize) -> Result<(), CodeError> {
    if s.is_empty() {
        return Err(CodeError::Empty);
    }
    if s.len() != len {
        return Err(CodeError::Length(len));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::NotDigits);
    }
    Ok(())
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(code: $name) -> String {
                code.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                Self::parse(&s)
            }
        }
    };
}

code_type!(
    /// Administrative division code of a district (GB/T 2260): 6 digits, e.g. `310104`.
    DivisionCode
);

impl DivisionCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        exact_digits(s, 6)?;
        Ok(Self(s.to_owned()))
    }
}

code_type!(
    /// Unit grid code (GB/T 30428 series): 15 digits, the district's division code (6), the
    /// street (3), the community (3) and the grid's number (3).
    GridCode
);

impl GridCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        exact_digits(s, 15)?;
        Ok(Self(s.to_owned()))
    }

    /// The district the grid lies in.
    pub fn division(&self) -> DivisionCode {
        DivisionCode(self.0[..6].to_owned())
    }
}

code_type!(
    /// Unified social credit code of an organisation (GB 32100): 18 characters from a
    /// 31-character alphabet, the last a check character over the first 17.
    CreditCode
);

const CREDIT_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

impl CreditCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.is_empty() {
            return Err(CodeError::Empty);
        }
        if s.len() != 18 {
            return Err(CodeError::Length(18));
        }
        let mut values = [0u32; 18];
        for (value, byte) in values.iter_mut().zip(s.bytes()) {
            let index = CREDIT_ALPHABET
                .iter()
                .position(|&c| c == byte)
                .ok_or(CodeError::Alphabet)?;
            *value = index as u32;
        }
        let sum: u32 = CREDIT_WEIGHTS.iter().zip(&values).map(|(w, v)| w * v).sum();
        let check = (31 - sum % 31) % 31;
        if values[17] != check {
            return Err(CodeError::CheckCharacter);
        }
        Ok(Self(s.to_owned()))
    }
}

code_type!(
    /// Community code (GB/T 10114 extended): 12 digits, the district's division code (6),
    /// the street (3) and the community (3).
    CommunityCode
);

impl CommunityCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        exact_digits(s, 12)?;
        Ok(Self(s.to_owned()))
    }

    /// The district the community lies in.
    pub fn division(&self) -> DivisionCode {
        DivisionCode(self.0[..6].to_owned())
    }
}

/// Resident identity number (居民身份证号码, GB 11643): 17 digits, the 7th to 14th a date of
/// birth (YYYYMMDD), and an ISO 7064 MOD 11-2 check character (`0`-`9` or `X`).
///
/// Sensitive personal data: `Debug` and `Display` never print it, errors never repeat it.
/// Encoders call [`IdentityNumber::expose`]; people are shown [`IdentityNumber::masked`].
/// It has no serde impls on purpose, so it cannot leak into JSON by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdentityNumber(String);

const IDENTITY_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const IDENTITY_CHECK: &[u8; 11] = b"0123456789X";

impl IdentityNumber {
    /// Parses a number; a lowercase `x` check character is normalised to `X`.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.is_empty() {
            return Err(CodeError::Empty);
        }
        if s.len() != 18 {
            return Err(CodeError::Length(18));
        }
        let bytes = s.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit) {
            return Err(CodeError::NotDigits);
        }
        let last = bytes[17].to_ascii_uppercase();
        if !IDENTITY_CHECK.contains(&last) {
            return Err(CodeError::Alphabet);
        }
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0i16, |n, b| n * 10 + i16::from(b - b'0'))
        };
        let (year, month, day) = (number(6..10), number(10..12), number(12..14));
        let month = i8::try_from(month).map_err(|_| CodeError::BirthDate)?;
        let day = i8::try_from(day).map_err(|_| CodeError::BirthDate)?;
        jiff::civil::Date::new(year, month, day).map_err(|_| CodeError::BirthDate)?;
        let sum: u32 = IDENTITY_WEIGHTS
            .iter()
            .zip(&bytes[..17])
            .map(|(w, b)| w * u32::from(b - b'0'))
            .sum();
        let check = IDENTITY_CHECK[((12 - sum % 11) % 11) as usize];
        if last != check {
            return Err(CodeError::CheckCharacter);
        }
        let mut number = s[..17].to_owned();
        number.push(char::from(last));
        Ok(Self(number))
    }

    /// The full number, for encoding into events and messages only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The number as it may be shown: the first 6 and the last 4 characters, e.g.
    /// `110105********002X`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

impl fmt::Debug for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityNumber(****)")
    }
}

impl fmt::Display for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

code_type!(
    /// A department's or dispatch unit's code in the registry, e.g. `urban-management`.
    DepartmentCode
);

impl DepartmentCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.is_empty() {
            return Err(CodeError::Empty);
        }
        let ok = (2..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(CodeError::DepartmentCode)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_code_check_character() {
        // Published example codes with valid check characters.
        for good in ["91350100M000100Y43", "91110000802100433B"] {
            assert!(CreditCode::parse(good).is_ok(), "{good}");
        }
        // The same codes with the check character changed.
        assert_eq!(
            CreditCode::parse("91350100M000100Y44"),
            Err(CodeError::CheckCharacter)
        );
        assert_eq!(
            CreditCode::parse("91110000802100433C"),
            Err(CodeError::CheckCharacter)
        );
        // I, O, S, V and Z are not in the alphabet.
        assert_eq!(
            CreditCode::parse("91350100M00010OY43"),
            Err(CodeError::Alphabet)
        );
        assert_eq!(CreditCode::parse("9135"), Err(CodeError::Length(18)));
        assert_eq!(CreditCode::parse(""), Err(CodeError::Empty));
    }

    #[test]
    fn grid_code_names_its_district() {
        let grid = GridCode::parse("310104001002003").expect("valid grid code");
        assert_eq!(grid.division().as_str(), "310104");
        assert_eq!(
            GridCode::parse("31010400100200"),
            Err(CodeError::Length(15))
        );
        assert_eq!(
            GridCode::parse("31010400100200x"),
            Err(CodeError::NotDigits)
        );
    }

    /// A published example number (GB 11643), valid check character `X`.
    const GOOD_ID: &str = "11010519491231002X";

    #[test]
    fn identity_number_check_character_and_date() {
        let id = IdentityNumber::parse(GOOD_ID).expect("valid identity number");
        assert_eq!(id.expose(), GOOD_ID);
        assert_eq!(id.masked(), "110105********002X");
        let lower = IdentityNumber::parse("11010519491231002x").expect("lowercase x");
        assert_eq!(lower, id, "a lowercase x is normalised");
        // Wrong check character.
        assert_eq!(
            IdentityNumber::parse("110105194912310021"),
            Err(CodeError::CheckCharacter)
        );
        assert_eq!(
            IdentityNumber::parse("11010519491231002Y"),
            Err(CodeError::Alphabet)
        );
        // 1949-02-30 and month 13 do not exist (the check character is not reached).
        for bad_date in ["11010519490230002X", "11010519491331002X"] {
            assert_eq!(
                IdentityNumber::parse(bad_date),
                Err(CodeError::BirthDate),
                "{bad_date}"
            );
        }
        assert_eq!(
            IdentityNumber::parse("11010519491231002"),
            Err(CodeError::Length(18))
        );
        assert_eq!(
            IdentityNumber::parse("11010519491231002X0"),
            Err(CodeError::Length(18))
        );
        assert_eq!(
            IdentityNumber::parse("1101051949123100AX"),
            Err(CodeError::NotDigits)
        );
        assert_eq!(IdentityNumber::parse(""), Err(CodeError::Empty));
    }

    #[test]
    fn identity_number_is_never_printed() {
        let id = IdentityNumber::parse(GOOD_ID).expect("valid identity number");
        for shown in [
            format!("{id:?}"),
            format!("{id}"),
            format!("{:?}", Some(&id)),
        ] {
            assert!(!shown.contains("19491231"), "{shown}");
            assert!(!shown.contains("110105"), "{shown}");
        }
        assert_eq!(format!("{id:?}"), "IdentityNumber(****)");
        for bad in ["110105194912310021", "11010519490230002X", "1101051949"] {
            let err = IdentityNumber::parse(bad).expect_err("invalid").to_string();
            assert!(!err.contains("1101"), "{err}");
        }
    }

    #[test]
    fn community_code_names_its_district() {
        let community = CommunityCode::parse("310104001002").expect("valid community code");
        assert_eq!(community.division().as_str(), "310104");
        assert_eq!(
            CommunityCode::parse("310104001002003"),
            Err(CodeError::Length(12))
        );
        assert_eq!(
            CommunityCode::parse("31010400100x"),
            Err(CodeError::NotDigits)
        );
        assert_eq!(CommunityCode::parse(""), Err(CodeError::Empty));
    }

    #[test]
    fn department_codes_are_slugs() {
        assert!(DepartmentCode::parse("urban-management").is_ok());
        assert!(DepartmentCode::parse("dcc-310104").is_ok());
        for bad in ["", "U", "Urban", "urban management", "-x", "x-", "民政"] {
            assert!(DepartmentCode::parse(bad).is_err(), "{bad}");
        }
    }
}
