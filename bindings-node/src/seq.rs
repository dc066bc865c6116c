//! Frame sequences and frame sets: parsing and formatting are synchronous, reading a
//! directory returns a Promise.

use napi::bindgen_prelude::Object;
use napi::Env;
use napi_derive::napi;

use crate::error::{guard, promise_blocking};

/// A set of frames (`1-100x2,105`), kept as compact ranges.
#[napi(js_name = "FrameSet")]
pub struct JsFrameSet {
    inner: capsa::FrameSet,
}

#[napi]
impl JsFrameSet {
    /// Parse a frame set: `1-100`, `1-100x2`, `1,3,7-9`, `-5--1`; throws `INVALID_SEQUENCE`
    /// for bad or too large sets.
    #[napi]
    pub fn parse(env: Env, spec: String) -> napi::Result<JsFrameSet> {
        guard(&env, || {
            let inner = capsa::FrameSet::parse(&spec)?;
            Ok(JsFrameSet { inner })
        })
    }

    /// How many frames.
    #[napi(getter)]
    pub fn count(&self, env: Env) -> napi::Result<f64> {
        guard(&env, || Ok(self.inner.len() as f64))
    }

    /// The first frame, or `null` when empty.
    #[napi(getter)]
    pub fn min(&self, env: Env) -> napi::Result<Option<i64>> {
        guard(&env, || Ok(self.inner.min()))
    }

    /// The last frame, or `null` when empty.
    #[napi(getter)]
    pub fn max(&self, env: Env) -> napi::Result<Option<i64>> {
        guard(&env, || Ok(self.inner.max()))
    }

    /// Is `frame` in the set?
    #[napi]
    pub fn contains(&self, env: Env, frame: i64) -> napi::Result<bool> {
        guard(&env, || Ok(self.inner.contains(frame)))
    }

    /// The frames missing between the first and the last.
    #[napi]
    pub fn missing(&self, env: Env) -> napi::Result<JsFrameSet> {
        guard(&env, || {
            Ok(JsFrameSet {
                inner: self.inner.missing(),
            })
        })
    }

    /// Every frame, ascending.
    #[napi]
    pub fn to_array(&self, env: Env) -> napi::Result<Vec<i64>> {
        guard(&env, || Ok(self.inner.iter().collect()))
    }

    /// The canonical text (`1-3,7`); `""` when empty.
    #[napi(js_name = "toString")]
    pub fn to_js_string(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.to_string()))
    }
}

/// A frame sequence: `head` + zero-padded frame + `tail` for each frame.
#[napi(js_name = "Sequence")]
pub struct JsSequence {
    inner: capsa::Sequence,
}

impl From<capsa::Sequence> for JsSequence {
    fn from(inner: capsa::Sequence) -> Self {
        JsSequence { inner }
    }
}

#[napi]
impl JsSequence {
    /// Parse a pattern: `plate.1001-1100#.exr`, `plate.@@@@.exr`, `plate.%04d.exr 1-10`,
    /// `plate.$F4.exr`, `tex.<UDIM>.exr`; throws `INVALID_SEQUENCE`.
    #[napi]
    pub fn parse(env: Env, pattern: String) -> napi::Result<JsSequence> {
        guard(&env, || {
            Ok(capsa::Sequence::parse(&pattern).map(JsSequence::from)?)
        })
    }

    /// Everything before the frame number.
    #[napi(getter)]
    pub fn head(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.head.clone()))
    }

    /// Everything after the frame number.
    #[napi(getter)]
    pub fn tail(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.tail.clone()))
    }

    /// The minimum width of the frame number.
    #[napi(getter)]
    pub fn padding(&self, env: Env) -> napi::Result<u32> {
        guard(&env, || Ok(self.inner.padding as u32))
    }

    /// The frames (may be empty).
    #[napi(getter)]
    pub fn frames(&self, env: Env) -> napi::Result<JsFrameSet> {
        guard(&env, || {
            Ok(JsFrameSet {
                inner: self.inner.frames.clone(),
            })
        })
    }

    /// How many frames.
    #[napi(getter)]
    pub fn count(&self, env: Env) -> napi::Result<f64> {
        guard(&env, || Ok(self.inner.frames.len() as f64))
    }

    /// The pattern in `style` with its frames (`plate.1001-1100#.exr`,
    /// `plate.%04d.exr 1001-1100`); throws `INVALID_ARGUMENT` for an unknown style.
    #[napi(ts_args_type = "style?: 'hash' | 'at' | 'printf' | 'houdini'")]
    pub fn format(&self, env: Env, style_name: Option<String>) -> napi::Result<String> {
        guard(&env, || match style_name {
            Some(name) => Ok(self.inner.format(name.parse()?)),
            None => Ok(self.inner.to_string()),
        })
    }

    /// The pattern in `style` without frames (`plate.%04d.exr`).
    #[napi(ts_args_type = "style: 'hash' | 'at' | 'printf' | 'houdini'")]
    pub fn pattern(&self, env: Env, style_name: String) -> napi::Result<String> {
        guard(&env, || {
            let s: capsa::PadStyle = style_name.parse()?;
            Ok(self.inner.pattern(s))
        })
    }

    /// The file name of `frame`, zero-padded (`plate.1001.exr`).
    #[napi]
    pub fn path(&self, env: Env, frame: i64) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.path(frame)))
    }

    /// The frames missing between the first and the last.
    #[napi]
    pub fn missing(&self, env: Env) -> napi::Result<JsFrameSet> {
        guard(&env, || {
            Ok(JsFrameSet {
                inner: self.inner.missing(),
            })
        })
    }

    /// The hash form with frames (`plate.1001-1100#.exr`).
    #[napi(js_name = "toString")]
    pub fn to_js_string(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.to_string()))
    }
}

/// Detect the sequences among file names, in one linear pass (synchronous: no disk access).
/// Names without a frame are left out; sorted by head, tail, padding.
#[napi]
pub fn sequences_in(env: Env, names: Vec<String>) -> napi::Result<Vec<JsSequence>> {
    guard(&env, || {
        Ok(capsa::sequences_in(names)
            .into_iter()
            .map(JsSequence::from)
            .collect())
    })
}

/// The sequences among the files directly in `dir` (hidden names skipped).
#[napi(ts_return_type = "Promise<Array<Sequence>>")]
pub fn find_sequences<'e>(env: &'e Env, dir: String) -> napi::Result<Object<'e>> {
    guard(env, || {
        promise_blocking(env, move || {
            capsa::find_sequences(dir.as_ref())
                .map(|v| v.into_iter().map(JsSequence::from).collect::<Vec<_>>())
        })
    })
}
