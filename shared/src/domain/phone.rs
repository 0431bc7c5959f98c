//! Phone numbers in E.164, as employees type them and as Meta's `wa_id` carries them.

use serde::{Deserialize, Serialize};

/// An E.164 number: `+` then 8 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Accepts `+447700900123`; spaces, hyphens, dots and parentheses are dropped first.
    pub fn parse(input: &str) -> Result<Phone, String> {
        let trimmed = input.trim();
        let Some(rest) = trimmed.strip_prefix('+') else {
            return Err("phone must be in E.164 form, starting with +".into());
        };
        let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
            return Err("phone must be + and 8 to 15 digits, the first not 0".into());
        }
        Ok(Phone(format!("+{digits}")))
    }

    /// Meta's `wa_id` form of a number: digits only.
    pub fn from_wa_id(wa_id: &str) -> Result<Phone, String> {
        Phone::parse(&format!("+{wa_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits only: the key a contact is stored under and the `wa_id` Meta uses.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl TryFrom<String> for Phone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_e164_with_separators() {
        assert_eq!(Phone::parse("+44 7700-900(123)").unwrap().as_str(), "+447700900123");
    }

    #[test]
    fn refuses_missing_plus_letters_and_bad_lengths() {
        for bad in ["447700900123", "+44abc", "+1234567", "+1234567890123456", "+0447700900", "", "+"] {
            assert!(Phone::parse(bad).is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in ".{0,40}") {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert_eq!(Phone::parse(p.as_str()).unwrap(), p.clone());
                prop_assert_eq!(Phone::from_wa_id(p.digits()).unwrap(), p);
            }
        }
    }
}
