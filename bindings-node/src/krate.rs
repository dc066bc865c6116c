//! Crates: publish, seal, metadata, sequences.

use napi::bindgen_prelude::AsyncTask;
use napi::Env;
use napi_derive::napi;

use crate::error::{sync, Work};
use crate::seq::JsSequence;

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
}

impl From<capsa::Crate> for JsCrate {
    fn from(inner: capsa::Crate) -> Self {
        JsCrate { inner }
    }
}

#[napi]
impl JsCrate {
    /// The version as its directory name (`'v003'`).
    #[napi(getter)]
    pub fn version(&self) -> String {
        self.inner.version_str()
    }

    /// The version number (3).
    #[napi(getter)]
    pub fn number(&self) -> u32 {
        self.inner.version().number()
    }

    /// The crate directory.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.inner.path().to_string_lossy().into_owned()
    }

    /// The id of its capsule.
    #[napi(getter)]
    pub fn capsule_id(&self) -> String {
        self.inner.capsule().id().to_string()
    }

    /// The directory of a section; throws `INVALID_ARGUMENT` for an unknown one.
    #[napi(ts_args_type = "section: 'artifacts' | 'publishes' | 'scenes'")]
    pub fn section(&self, env: Env, section: String) -> napi::Result<String> {
        let s: capsa::Section = sync(&env, section.parse())?;
        Ok(self.inner.section(s).to_string_lossy().into_owned())
    }

    /// Copy a file or a whole frame sequence (`/renders/plate.####.exr`) into `publishes/`
    /// (at `dest`, relative to it, when given); resolves to the published path. Published
    /// files are read-only and never overwritten (`ALREADY_EXISTS`); a sealed crate refuses
    /// with `SEALED`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn publish(&self, src: String, dest: Option<String>) -> AsyncTask<Work<String>> {
        let krate = self.inner.clone();
        AsyncTask::new(Work::new(move || {
            let dest = dest.map(std::path::PathBuf::from);
            krate
                .publish(&src, dest.as_deref())
                .map(|p| p.to_string_lossy().into_owned())
        }))
    }

    /// Release the crate: it is then published and refuses further writes.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn seal(&self) -> AsyncTask<Work<()>> {
        let krate = self.inner.clone();
        AsyncTask::new(Work::new(move || krate.seal()))
    }

    /// Is the crate sealed?
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn is_published(&self) -> AsyncTask<Work<bool>> {
        let krate = self.inner.clone();
        AsyncTask::new(Work::new(move || krate.is_published()))
    }

    /// The crate's metadata.
    #[napi(ts_return_type = "Promise<CrateMetadata>")]
    pub fn metadata(&self) -> AsyncTask<Work<CrateMetadata>> {
        let krate = self.inner.clone();
        AsyncTask::new(Work::new(move || {
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
        }))
    }

    /// The frame sequences among the files of a section.
    #[napi(
        ts_args_type = "section: 'artifacts' | 'publishes' | 'scenes'",
        ts_return_type = "Promise<Array<Sequence>>"
    )]
    pub fn sequences(&self, section: String) -> AsyncTask<Work<Vec<JsSequence>>> {
        let krate = self.inner.clone();
        AsyncTask::new(Work::new(move || {
            let s: capsa::Section = section.parse()?;
            krate
                .sequences(s)
                .map(|v| v.into_iter().map(JsSequence::from).collect())
        }))
    }
}
