//! Capsule ids: validated before they ever touch a path.
//!
//! A Capsule is named by its project-management entry: a 24-hex MongoDB ObjectId
//! (`656796239c1b981568180614`), a UUID, or a slug `[A-Za-z0-9][A-Za-z0-9_-]{0,127}`.
//! Anything else (`..`, `/`, `\`, NUL, empty, too long, leading dot, Windows device names)
//! is refused with [`ErrorCode::InvalidName`](crate::ErrorCode::InvalidName) naming the rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{shown, Error, Result};

/// The longest id accepted (slug rule).
pub const MAX_ID_LEN: usize = 128;

/// Which of the accepted forms an id has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdKind {
    /// 24 hexadecimal digits (a MongoDB / ShotGrid-style ObjectId).
    ObjectId,
    /// A UUID in its 8-4-4-4-12 hexadecimal form.
    Uuid,
    /// Any other slug `[A-Za-z0-9][A-Za-z0-9_-]{0,127}`.
    Slug,
}

impl IdKind {
    /// `"objectid"`, `"uuid"` or `"slug"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::ObjectId => "objectid",
            IdKind::Uuid => "uuid",
            IdKind::Slug => "slug",
        }
    }
}

/// A validated Capsule id, safe to use as one path component on every platform.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CapsuleId(String);

/// Names Windows reserves for devices: a directory named so is unusable from a Windows DCC.
const WINDOWS_DEVICES: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

fn invalid(value: &str, rule: &str) -> Error {
    Error::InvalidName {
        what: "capsule id",
        value: shown(value),
        rule: rule.to_string(),
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && is_hex(p))
}

impl CapsuleId {
    /// Validate `value` as a capsule id.
    pub fn parse(value: &str) -> Result<CapsuleId> {
        if value.is_empty() {
            return Err(invalid(value, "must not be empty"));
        }
        if value.contains('\0') {
            return Err(invalid(value, "must not contain a NUL byte"));
        }
        if value.contains('/') || value.contains('\\') {
            return Err(invalid(
                value,
                "must not contain a path separator ('/' or '\\')",
            ));
        }
        if value.contains("..") {
            return Err(invalid(value, "must not contain '..'"));
        }
        if value.starts_with('.') {
            return Err(invalid(value, "must not start with a dot"));
        }
        if value.len() > MAX_ID_LEN {
            return Err(invalid(
                value,
                &format!("must be at most {MAX_ID_LEN} characters"),
            ));
        }
        let first = value.as_bytes()[0];
        if !first.is_ascii_alphanumeric() {
            return Err(invalid(value, "must start with a letter or a digit"));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(invalid(
                value,
                &format!("may hold only ASCII letters, digits, '_' and '-' (found {bad:?})"),
            ));
        }
        if WINDOWS_DEVICES.contains(&value.to_ascii_lowercase().as_str()) {
            return Err(invalid(value, "is a reserved device name on Windows"));
        }
        Ok(CapsuleId(value.to_string()))
    }

    /// The id as a string (also its directory name).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Which form the id has.
    pub fn kind(&self) -> IdKind {
        if self.0.len() == 24 && is_hex(&self.0) {
            IdKind::ObjectId
        } else if is_uuid(&self.0) {
            IdKind::Uuid
        } else {
            IdKind::Slug
        }
    }
}

impl FromStr for CapsuleId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        CapsuleId::parse(s)
    }
}

impl TryFrom<String> for CapsuleId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        CapsuleId::parse(&s)
    }
}

impl From<CapsuleId> for String {
    fn from(id: CapsuleId) -> String {
        id.0
    }
}

impl AsRef<str> for CapsuleId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CapsuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CapsuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CapsuleId({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn accepts_the_three_forms() {
        let oid = CapsuleId::parse("656796239c1b981568180614").unwrap();
        assert_eq!(oid.kind(), IdKind::ObjectId);
        let uuid = CapsuleId::parse("123e4567-e89b-12d3-a456-426614174000").unwrap();
        assert_eq!(uuid.kind(), IdKind::Uuid);
        let slug = CapsuleId::parse("sh010_comp-A").unwrap();
        assert_eq!(slug.kind(), IdKind::Slug);
        assert!(CapsuleId::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn refuses_hostile_names_naming_the_rule() {
        let cases: [(&str, &str); 9] = [
            ("../x", "separator"),
            ("a/b", "separator"),
            ("a\\b", "separator"),
            ("", "empty"),
            (".hidden", "dot"),
            ("a\0b", "NUL"),
            ("a..b", "'..'"),
            ("-x", "start with a letter"),
            ("CON", "reserved"),
        ];
        for (value, rule) in cases {
            let err = CapsuleId::parse(value).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidName, "{value:?}");
            assert!(err.to_string().contains(rule), "{value:?}: {err}");
        }
        let long = "a".repeat(200);
        let err = CapsuleId::parse(&long).unwrap_err();
        assert!(err.to_string().contains("at most 128"), "{err}");
        assert!(
            err.to_string().len() < 200,
            "message must not echo 200 chars"
        );
        assert!(CapsuleId::parse("a b")
            .unwrap_err()
            .to_string()
            .contains("' '"));
    }
}
