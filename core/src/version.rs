//! Crate versions: `v` followed by a number, zero-padded to the store's padding.
//!
//! Parsing accepts any width (`v1`, `v001`, `v0001` are all version 1); ordering is numeric;
//! `v999` is followed by `v1000`. Version numbers start at 1.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{shown, Error, Result};

/// The padding a store uses unless told otherwise.
pub const DEFAULT_PADDING: usize = 3;
/// The widest padding a store may ask for.
pub const MAX_PADDING: usize = 9;

/// A crate version number (1 and up).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u32);

fn invalid(value: &str, rule: &str) -> Error {
    Error::InvalidVersion {
        value: shown(value),
        rule: rule.to_string(),
    }
}

impl Version {
    /// The first version, `v001`.
    pub const FIRST: Version = Version(1);

    /// A version from its number; 0 is refused.
    pub fn new(number: u32) -> Result<Version> {
        if number == 0 {
            return Err(invalid("v0", "version numbers start at 1"));
        }
        Ok(Version(number))
    }

    /// Parse `vNNN` (any width, lowercase `v`).
    pub fn parse(value: &str) -> Result<Version> {
        let digits = value
            .strip_prefix('v')
            .ok_or_else(|| invalid(value, "must start with 'v' followed by digits, e.g. v001"))?;
        if digits.is_empty() {
            return Err(invalid(value, "has no number after 'v'"));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(value, "may hold only digits after 'v'"));
        }
        let n: u32 = digits
            .parse()
            .map_err(|_| invalid(value, "number is too large"))?;
        if n == 0 {
            return Err(invalid(value, "version numbers start at 1"));
        }
        Ok(Version(n))
    }

    /// The number.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The next version (`v999` → `v1000`).
    pub fn next(self) -> Result<Version> {
        self.0
            .checked_add(1)
            .map(Version)
            .ok_or_else(|| invalid(&self.to_string(), "no version follows the largest one"))
    }

    /// The previous version, if any.
    pub fn prev(self) -> Option<Version> {
        (self.0 > 1).then(|| Version(self.0 - 1))
    }

    /// Format with `padding` digits at least (`padded(3)` of 7 is `v007`).
    pub fn padded(self, padding: usize) -> String {
        format!("v{:0width$}", self.0, width = padding)
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Version::parse(s)
    }
}

/// Formats with the default padding (`v003`); use [`Version::padded`] for a store's padding.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.padded(DEFAULT_PADDING))
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn parses_any_width_and_orders_numerically() {
        assert_eq!(Version::parse("v001").unwrap().number(), 1);
        assert_eq!(
            Version::parse("v1").unwrap(),
            Version::parse("v0001").unwrap()
        );
        assert!(Version::parse("v999").unwrap() < Version::parse("v1000").unwrap());
        assert_eq!(
            Version::parse("v999").unwrap().next().unwrap().padded(3),
            "v1000"
        );
        assert_eq!(Version::new(7).unwrap().padded(4), "v0007");
    }

    #[test]
    fn refuses_bad_versions() {
        for (value, rule) in [
            ("v", "no number"),
            ("v-1", "only digits"),
            ("x001", "start with 'v'"),
            ("v000", "start at 1"),
            ("V001", "start with 'v'"),
            ("v99999999999", "too large"),
            ("v1a", "only digits"),
        ] {
            let err = Version::parse(value).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidVersion, "{value}");
            assert!(err.to_string().contains(rule), "{value}: {err}");
        }
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(n in 1u32.., pad in 0usize..=MAX_PADDING) {
            let v = Version::new(n).unwrap();
            let text = v.padded(pad);
            prop_assert_eq!(Version::parse(&text).unwrap(), v);
            prop_assert!(text.len() > pad);
        }

        #[test]
        fn order_matches_numbers(a in 1u32.., b in 1u32..) {
            let (va, vb) = (Version::new(a).unwrap(), Version::new(b).unwrap());
            prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
            prop_assert_eq!(va.padded(3).len() <= vb.padded(3).len() || a > b, true);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC*") {
            let _ = Version::parse(&s);
        }
    }
}
