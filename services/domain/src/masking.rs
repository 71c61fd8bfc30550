//! Masking of personal fields (数据脱敏), applied before data leaves the hub for a department
//! whose grant does not name the field.
//!
//! Each personal or sensitive field has a form: a name keeps its first character (`张*`,
//! whatever its length, so the length is not told either); an identity number its first 6
//! (the region of registration) and last 4 characters; a phone number its first 3 and last 4
//! digits; an address is generalised to the community it lies in; any other sensitive field is
//! dropped. Masking is total: every input, however malformed, gives a value that holds no more
//! of the cleartext than the form allows (a value too short to keep its ends is starred whole).

/// How a field is shown to a reader whose grant does not name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// Shown as stored: the field is not personal.
    Clear,
    /// A person's name: first character, then `*`.
    Name,
    /// A resident identity number: first 6 and last 4 characters, the 8 between starred.
    IdentityNumber,
    /// A phone number: first 3 and last 4 digits, the rest starred.
    Phone,
    /// An address: replaced by the value of the named field, the community it lies in.
    Community(&'static str),
    /// Left out of what the reader gets.
    Drop,
}

/// A name as `张*`: the first character and one star, whatever the length.
pub fn mask_name(name: &str) -> String {
    match name.trim().chars().next() {
        Some(first) => format!("{first}*"),
        None => String::new(),
    }
}

/// Keeps the first `head` and last `tail` characters, starring the rest; a value with no more
/// than `head + tail` characters is starred whole.
fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut masked: String = chars[..head].iter().collect();
    masked.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    masked.extend(&chars[chars.len() - tail..]);
    masked
}

/// An identity number as `310104********123X`.
pub fn mask_identity_number(number: &str) -> String {
    keep_ends(number, 6, 4)
}

/// A phone number as `138****5678`.
pub fn mask_phone(phone: &str) -> String {
    keep_ends(phone, 3, 4)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn each_form_shows_what_the_policy_allows() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳小明"), "欧*");
        assert_eq!(mask_name(""), "");
        assert_eq!(
            mask_identity_number("11010519491231002X"),
            "110105********002X"
        );
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("1234567"), "*******");
        assert_eq!(mask_identity_number("12345"), "*****");
    }

    proptest! {
        /// Whatever the input, the masked value keeps at most the allowed ends and never the
        /// middle: no run of the cleartext longer than the kept ends survives.
        #[test]
        fn masking_never_reveals_the_middle(value in "[0-9A-Za-z\\u{4e00}-\\u{4e20}]{0,30}") {
            let chars: Vec<char> = value.chars().collect();
            for (masked, head, tail) in [
                (mask_identity_number(&value), 6, 4),
                (mask_phone(&value), 3, 4),
            ] {
                let kept: Vec<char> = masked.chars().collect();
                prop_assert_eq!(kept.len(), chars.len());
                let stars = kept.iter().filter(|c| **c == '*').count();
                prop_assert!(stars >= chars.len().saturating_sub(head + tail));
                if chars.len() > head + tail {
                    prop_assert_eq!(&kept[..head], &chars[..head]);
                    prop_assert!(kept[head..chars.len() - tail].iter().all(|c| *c == '*'));
                } else {
                    prop_assert!(kept.iter().all(|c| *c == '*'));
                }
            }
            let name = mask_name(&value);
            prop_assert!(name.chars().count() <= 2);
        }
    }
}
