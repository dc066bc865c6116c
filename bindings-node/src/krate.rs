//! Crates: publish, seal, metadata, sequences.

use napi::bindgen_prelude::Object;
use napi::Env;
use napi_derive::napi;

use crate::error::guard;
use crate::seq::JsSequence;
use crate::store::OpenFlag;

/// The metadata of a crate (`.capsa-crate.json`).
#[napi(object)]
pub struct CrateMetadata {
    /// Metadata schema version.
    pub schema: u32,
    /// The version text (`v003`).
    pub version: String,
    /// Who made the crate.
    pub created_by: String,
    /// When (ISO 8601, UTC).
    pub created_at: String,
    /// Free-form comment.
    pub comment: Option<String>,
    /// The version this crate followed.
    pub parent: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Sealed (released)?
    pub published: bool,
    /// When it was sealed (ISO 8601, UTC).
    pub published_at: Option<String>,
}

/// A crate of a capsule: `artifacts/`, `publishes/`, `scenes/` and its metadata.
#[napi(js_name = "Crate")]
pub struct JsCrate {
    inner: capsa::Crate,
    open: OpenFlag,
}

impl JsCrate {
    /// The crate `inner`, reached through the store whose flag is `open`.
    pub(crate) fn new(inner: capsa::Crate, open: OpenFlag) -> Self {
        JsCrate { inner, open }
    }
}

#[napi]
impl JsCrate {
    /// The version as its directory name (`'v003'`).
    #[napi(getter)]
    pub fn version(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.version_str()))
    }

    /// The version number (3).
    #[napi(getter)]
    pub fn number(&self, env: Env) -> napi::Result<u32> {
        guard(&env, || Ok(self.inner.version().number()))
    }

    /// The crate directory.
    #[napi(getter)]
    pub fn path(&self, env: Env) -> napi::Result<String> {
        guard(&env, || {
            Ok(self.inner.path().to_string_lossy().into_owned())
        })
    }

    /// The id of its capsule.
    #[napi(getter)]
    pub fn capsule_id(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.capsule().id().to_string()))
    }

    /// The directory of a section; throws `INVALID_ARGUMENT` for an unknown one.
    #[napi(ts_args_type = "section: 'artifacts' | 'publishes' | 'scenes'")]
    pub fn section(&self, env: Env, section: String) -> napi::Result<String> {
        guard(&env, || {
            let s: capsa::Section = section.parse()?;
            Ok(self.inner.section(s).to_string_lossy().into_owned())
        })
    }

    /// Copy a file or a whole frame sequence (`/renders/plate.####.exr`) into `publishes/`
    /// (at `dest`, relative to it, when given); resolves to the published path. Published
    /// files are read-only and never overwritten (`ALREADY_EXISTS`); a sealed crate refuses
    /// with `SEALED`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn publish<'e>(
        &self,
        env: &'e Env,
        src: String,
        dest: Option<String>,
    ) -> napi::Result<Object<'e>> {
        let krate = self.inner.clone();
        guard(env, || {
            self.open.promise(env, move || {
                let dest = dest.map(std::path::PathBuf::from);
                krate
                    .publish(&src, dest.as_deref())
                    .map(|p| p.to_string_lossy().into_owned())
            })
        })
    }

    /// Release the crate: it is then published and refuses further writes.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn seal<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let krate = self.inner.clone();
        guard(env, || self.open.promise(env, move || krate.seal()))
    }

    /// Is the crate sealed?
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn is_published<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let krate = self.inner.clone();
        guard(env, || self.open.promise(env, move || krate.is_published()))
    }

    /// The crate's metadata.
    #[napi(ts_return_type = "Promise<CrateMetadata>")]
    pub fn metadata<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let krate = self.inner.clone();
        guard(env, || {
            self.open.promise(env, move || {
                let m = krate.metadata()?;
                Ok(CrateMetadata {
                    schema: m.schema,
                    version: m.version,
                    created_by: m.created_by,
                    created_at: m.created_at.to_rfc3339(),
                    comment: m.comment,
                    parent: m.parent,
                    tags: m.tags,
                    published: m.published,
                    published_at: m.published_at.map(|t| t.to_rfc3339()),
                })
            })
        })
    }

    /// The frame sequences among the files of a section.
    #[napi(
        ts_args_type = "section: 'artifacts' | 'publishes' | 'scenes'",
        ts_return_type = "Promise<Array<Sequence>>"
    )]
    pub fn sequences<'e>(&self, env: &'e Env, section: String) -> napi::Result<Object<'e>> {
        let krate = self.inner.clone();
        guard(env, || {
            self.open.promise(env, move || {
                let s: capsa::Section = section.parse()?;
                krate
                    .sequences(s)
                    .map(|v| v.into_iter().map(JsSequence::from).collect::<Vec<_>>())
            })
        })
    }
}
