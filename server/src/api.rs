//! The request bodies of the API, one definition for the server that reads them and the
//! CLI's remote mode that writes them (`capsa --server`). Every body refuses unknown fields.

use capsa::staging::{Expiry, Override, OverrideEdit, Scope, Visibility};
use capsa::Section;
use serde::{Deserialize, Serialize};

/// An override: `{"key", "value", "scope": "app"|"staging", "private": bool}`, the real value
/// (a request only; answers show `***`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// `app` (default) or `staging`.
    #[serde(default = "app_scope")]
    pub scope: String,
    /// Private: stored sealed, never shown.
    #[serde(default)]
    pub private: bool,
}

fn app_scope() -> String {
    Scope::App.as_str().into()
}

impl OverrideBody {
    /// The body of `o`, with its real value.
    pub fn of(o: &Override) -> OverrideBody {
        OverrideBody {
            key: o.key.clone(),
            value: o.value.expose().to_string(),
            scope: o.scope.as_str().into(),
            private: o.visibility == Visibility::Private,
        }
    }

    /// The override; `InvalidArgument` for a scope core does not spell so.
    pub fn to_core(&self) -> capsa::Result<Override> {
        let scope = Scope::parse(&self.scope)?;
        Ok(if self.private {
            Override::private(scope, &self.key, &self.value)
        } else {
            Override::public(scope, &self.key, &self.value)
        })
    }
}

/// The overrides of a request.
pub fn overrides(list: &[OverrideBody]) -> capsa::Result<Vec<Override>> {
    list.iter().map(OverrideBody::to_core).collect()
}

/// `{"key", "scope"}`: a key to remove.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsetBody {
    /// The key.
    pub key: String,
    /// `app` (default) or `staging`.
    #[serde(default = "app_scope")]
    pub scope: String,
}

/// `POST /v1/stagings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStaging {
    /// The staging name.
    pub name: String,
    /// The tag.
    pub tag: String,
    /// Its overrides.
    #[serde(default)]
    pub overrides: Vec<OverrideBody>,
    /// A time to live (`3d`, `12h`) or `never` ([`Expiry::parse`]).
    pub ttl: Option<String>,
}

/// `POST /v1/stagings/NAME/update`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaging {
    /// The new tag.
    pub tag: String,
    /// The whole new set; absent: keep the stored one.
    pub overrides: Option<Vec<OverrideBody>>,
    /// Keys to set, keeping the others.
    #[serde(default)]
    pub set: Vec<OverrideBody>,
    /// Keys to remove, keeping the others.
    #[serde(default)]
    pub unset: Vec<UnsetBody>,
    /// As [`CreateStaging::ttl`].
    pub ttl: Option<String>,
}

impl UpdateStaging {
    /// The per-key changes, in order: sets, then unsets.
    pub fn edits(&self) -> capsa::Result<Vec<OverrideEdit>> {
        let mut edits: Vec<OverrideEdit> = overrides(&self.set)?
            .into_iter()
            .map(OverrideEdit::Set)
            .collect();
        for u in &self.unset {
            edits.push(OverrideEdit::Unset {
                scope: Scope::parse(&u.scope)?,
                key: u.key.clone(),
            });
        }
        Ok(edits)
    }

    /// The body of per-key `edits` (the inverse of [`UpdateStaging::edits`]).
    pub fn split_edits(edits: &[OverrideEdit]) -> (Vec<OverrideBody>, Vec<UnsetBody>) {
        let (mut set, mut unset) = (Vec::new(), Vec::new());
        for e in edits {
            match e {
                OverrideEdit::Set(o) => set.push(OverrideBody::of(o)),
                OverrideEdit::Unset { scope, key } => unset.push(UnsetBody {
                    key: key.clone(),
                    scope: scope.as_str().into(),
                }),
            }
        }
        (set, unset)
    }
}

/// `POST /v1/stagings/NAME/restore` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreStaging {
    /// As [`CreateStaging::ttl`].
    pub ttl: Option<String>,
}

/// A request's `ttl` as the command's expiry (absent: keep).
pub fn expiry(ttl: Option<&str>) -> capsa::Result<Expiry> {
    ttl.map(Expiry::parse)
        .transpose()
        .map(Option::unwrap_or_default)
}

/// `POST /v1/capsules`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCapsule {
    /// The capsule id.
    pub id: String,
}

/// `POST /v1/capsules/ID/crates`: a bump.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bump {
    /// The new crate's comment.
    pub comment: Option<String>,
    /// The sections whose files are carried over from the previous crate.
    #[serde(default)]
    pub carry_over: Vec<Section>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
}
