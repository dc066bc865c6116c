//! Overrides (`key=value` for the app or the staging, public or private), the [`Secret`]
//! that holds their values, and the masking of private values in any text ([`redact`]).

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{shown, Error, Result};

/// Where an override applies: the application's environment or the staging's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Passed to scripts as `--app-env-override K=V`.
    App,
    /// Passed to scripts as `--staging-override K=V`.
    Staging,
}

super::spelling::spelled!(Scope, "override scope", { App => "app", Staging => "staging" });

/// Whether an override's value may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// Shown in logs, events and output.
    Public,
    /// Stored, passed to the backend, masked (`***`) everywhere else.
    Private,
}

super::spelling::spelled!(Visibility, "override visibility", { Public => "public", Private => "private" });

/// The mask printed in place of a private value.
pub const MASK: &str = "***";

/// A value that must not be shown: `Debug`, `Display` and `Serialize` print `***`.
///
/// The real value is only available through [`Secret::expose`], which is called where the
/// backend needs it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The real value. Call only to hand it to a backend or the state store.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// One override: `key=value` in a scope, public or private.
///
/// `Debug` and `Serialize` show the value only when it is public; `Serialize` spells scope and
/// visibility as every binding does (`"app"`, `"private"`).
#[derive(Clone, PartialEq, Eq)]
pub struct Override {
    /// The key (a non-empty string without `=`).
    pub key: String,
    /// The value; shown only when `visibility` is public.
    pub value: Secret,
    /// App environment or staging setting.
    pub scope: Scope,
    /// Public or private.
    pub visibility: Visibility,
}

impl Override {
    /// A public override.
    pub fn public(scope: Scope, key: impl Into<String>, value: impl Into<String>) -> Override {
        Override {
            key: key.into(),
            value: Secret::new(value),
            scope,
            visibility: Visibility::Public,
        }
    }

    /// A private override: its value is masked everywhere but the backend call.
    pub fn private(scope: Scope, key: impl Into<String>, value: impl Into<String>) -> Override {
        Override {
            key: key.into(),
            value: Secret::new(value),
            scope,
            visibility: Visibility::Private,
        }
    }

    /// Parse `KEY=VALUE` (the value may itself contain `=`).
    pub fn parse(scope: Scope, visibility: Visibility, kv: &str) -> Result<Override> {
        let (k, v) = kv.split_once('=').ok_or_else(|| Error::InvalidArgument {
            what: "override",
            reason: format!(
                "expected KEY=VALUE, got {:?}",
                shown(kv.split('=').next().unwrap_or(""))
            ),
        })?;
        let o = Override {
            key: k.to_string(),
            value: Secret::new(v),
            scope,
            visibility,
        };
        o.validate()?;
        Ok(o)
    }

    /// Check the key: non-empty, no `=`, no control characters, at most 256 characters.
    pub fn validate(&self) -> Result<()> {
        let k = &self.key;
        if k.is_empty() || k.len() > 256 || k.contains('=') || k.chars().any(char::is_control) {
            return Err(Error::InvalidArgument {
                what: "override key",
                reason: format!(
                    "{:?}: must be 1 to 256 characters without '=' or control characters",
                    shown(k)
                ),
            });
        }
        Ok(())
    }

    /// The value as it may be shown: the real value if public, `***` if private.
    pub fn shown_value(&self) -> &str {
        match self.visibility {
            Visibility::Public => self.value.expose(),
            Visibility::Private => MASK,
        }
    }

    /// `KEY=VALUE` with the real value, as passed to a backend.
    pub fn to_arg(&self) -> String {
        format!("{}={}", self.key, self.value.expose())
    }
}

impl fmt::Debug for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Override")
            .field("key", &self.key)
            .field("value", &self.shown_value())
            .field("scope", &self.scope)
            .field("visibility", &self.visibility)
            .finish()
    }
}

impl Serialize for Override {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Override", 4)?;
        st.serialize_field("key", &self.key)?;
        st.serialize_field("value", self.shown_value())?;
        st.serialize_field("scope", self.scope.as_str())?;
        st.serialize_field("visibility", self.visibility.as_str())?;
        st.end()
    }
}

/// The JSON form [`Override`]'s `Serialize` writes (a private value reads back as `***`).
impl<'de> Deserialize<'de> for Override {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Override, D::Error> {
        #[derive(Deserialize)]
        struct Form {
            key: String,
            value: String,
            scope: String,
            visibility: String,
        }
        let f = Form::deserialize(d)?;
        let bad = |e: crate::Error| serde::de::Error::custom(e.to_string());
        Ok(Override {
            key: f.key,
            value: Secret(f.value),
            scope: Scope::parse(&f.scope).map_err(bad)?,
            visibility: Visibility::parse(&f.visibility).map_err(bad)?,
        })
    }
}

/// One per-key change to a staging's overrides, as DM's and Octopod's CLIs make them
/// (`--set-app-env-override`, `--unset-app-env-override`): the other keys are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideEdit {
    /// Set the key of this override in its scope (replacing a stored value, or added).
    Set(Override),
    /// Remove the key from the scope; `InvalidArgument` if there is no such key.
    Unset {
        /// The scope.
        scope: Scope,
        /// The key.
        key: String,
    },
}

impl OverrideEdit {
    /// Check the key (and, for `Set`, the override) as [`Override::validate`] does.
    pub fn validate(&self) -> Result<()> {
        match self {
            OverrideEdit::Set(o) => o.validate(),
            OverrideEdit::Unset { scope, key } => {
                Override::public(*scope, key.as_str(), "").validate()
            }
        }
    }
}

/// `base` with `edits` applied in order: a set replaces the value (and visibility) of the key
/// in place, or appends it; an unset removes it. `InvalidArgument` naming the key for an unset
/// of a key that is not there, so that a typo never passes for a change.
pub fn apply_edits(base: &[Override], edits: &[OverrideEdit]) -> Result<Vec<Override>> {
    let mut out = base.to_vec();
    for edit in edits {
        edit.validate()?;
        match edit {
            OverrideEdit::Set(o) => {
                match out
                    .iter_mut()
                    .find(|x| x.scope == o.scope && x.key == o.key)
                {
                    Some(x) => *x = o.clone(),
                    None => out.push(o.clone()),
                }
            }
            OverrideEdit::Unset { scope, key } => {
                let before = out.len();
                out.retain(|x| !(x.scope == *scope && &x.key == key));
                if out.len() == before {
                    return Err(Error::InvalidArgument {
                        what: "override",
                        reason: format!("no {scope} override {:?} to unset", shown(key)),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Replace every private value of `overrides` found in `text` by `***`.
pub fn redact(text: &str, overrides: &[Override]) -> String {
    let mut out = text.to_string();
    for o in overrides {
        if o.visibility == Visibility::Private && !o.value.expose().is_empty() {
            out = out.replace(o.value.expose(), MASK);
        }
    }
    out
}

/// [`redact`] for a piece of a longer text that was cut: besides every whole private value,
/// a fragment of one left at a cut edge is masked too (`cut_start`: the piece begins where
/// something was cut off before it; `cut_end`: the piece ends where something was cut off
/// after it). Masking must always happen before cutting: this is for the cuts that happen while
/// a stream is read, before the whole text exists.
pub fn redact_cut(text: &str, overrides: &[Override], cut_start: bool, cut_end: bool) -> String {
    let mut out = redact(text, overrides);
    for o in overrides {
        let v = o.value.expose();
        if o.visibility != Visibility::Private || v.is_empty() {
            continue;
        }
        // The shortest fragment worth masking: 2 bytes (a single character says little).
        let min = 2.min(v.len());
        if cut_end {
            let longest = (min..v.len())
                .rev()
                .filter(|&k| v.is_char_boundary(k))
                .find(|&k| out.ends_with(&v[..k]));
            if let Some(k) = longest {
                out.truncate(out.len() - k);
                out.push_str(MASK);
            }
        }
        if cut_start {
            let longest = (min..v.len())
                .rev()
                .filter(|&k| v.is_char_boundary(v.len() - k))
                .find(|&k| out.starts_with(&v[v.len() - k..]));
            if let Some(k) = longest {
                out = format!("{MASK}{}", &out[k..]);
            }
        }
        // A piece shorter than the value may be an inner fragment of it.
        if (cut_start || cut_end) && out.len() >= min && v.contains(out.as_str()) {
            out = MASK.to_string();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_change_one_key_and_keep_the_rest() {
        let base = vec![
            Override::public(Scope::App, "A", "1"),
            Override::private(Scope::App, "PW", "old"),
            Override::public(Scope::Staging, "A", "s"),
        ];
        let out = apply_edits(
            &base,
            &[
                OverrideEdit::Set(Override::public(Scope::App, "A", "2")),
                OverrideEdit::Unset {
                    scope: Scope::Staging,
                    key: "A".into(),
                },
                OverrideEdit::Set(Override::public(Scope::App, "NEW", "n")),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                Override::public(Scope::App, "A", "2"),
                Override::private(Scope::App, "PW", "old"),
                Override::public(Scope::App, "NEW", "n"),
            ]
        );
        let e = apply_edits(
            &base,
            &[OverrideEdit::Unset {
                scope: Scope::Staging,
                key: "PW".into(),
            }],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid override: no staging override \"PW\" to unset"
        );
        let e = apply_edits(
            &base,
            &[OverrideEdit::Unset {
                scope: Scope::App,
                key: "A=B".into(),
            }],
        )
        .unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
    }

    #[test]
    fn secrets_are_masked() {
        let o = Override::private(Scope::App, "PASSWORD", "hunter2");
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(!format!("{}", o.value).contains("hunter2"));
        assert!(!serde_json::to_string(&o).unwrap().contains("hunter2"));
        assert_eq!(o.to_arg(), "PASSWORD=hunter2");
        let p = Override::public(Scope::App, "A", "b=c");
        assert!(serde_json::to_string(&p).unwrap().contains("b=c"));
        assert_eq!(redact("x hunter2 y", &[o]), "x *** y");
    }

    #[test]
    fn override_parse_keeps_equals_in_value() {
        let o = Override::parse(Scope::Staging, Visibility::Public, "K=a=b c").unwrap();
        assert_eq!(o.key, "K");
        assert_eq!(o.value.expose(), "a=b c");
        assert!(Override::parse(Scope::Staging, Visibility::Public, "novalue").is_err());
    }
}
