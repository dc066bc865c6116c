//! Frame sequences, frame sets, capsule ids and crate versions.

use capsa::{CapsuleId, FrameSet, PadStyle, Sequence, Version};

use super::{ffi, g, path, safe, text, R};
use crate::error::{bad_arg, Failure};

/// A sequence.
pub struct RustSequence(pub(super) Sequence);
/// A list of sequences.
pub struct RustSequenceList(pub(super) Vec<Sequence>);
/// A frame set.
pub struct RustFrameSet(FrameSet);
/// A list of strings.
#[derive(Default)]
pub struct RustStringList(Vec<String>);

fn style(s: ffi::PadStyle) -> Result<PadStyle, Failure> {
    match s {
        ffi::PadStyle::Hash => Ok(PadStyle::Hash),
        ffi::PadStyle::At => Ok(PadStyle::At),
        ffi::PadStyle::Printf => Ok(PadStyle::Printf),
        ffi::PadStyle::Houdini => Ok(PadStyle::Houdini),
        other => Err(bad_arg(format!("{} is not a capsa::PadStyle", other.repr))),
    }
}

pub(super) fn sequence_parse(pattern: &[u8]) -> R<Box<RustSequence>> {
    g(|| {
        Ok(Box::new(RustSequence(Sequence::parse(text(
            pattern, "pattern",
        )?)?)))
    })
}

pub(super) fn pad_style_parse(name: &[u8]) -> R<ffi::PadStyle> {
    g(|| {
        Ok(match text(name, "style")?.parse::<PadStyle>()? {
            PadStyle::Hash => ffi::PadStyle::Hash,
            PadStyle::At => ffi::PadStyle::At,
            PadStyle::Printf => ffi::PadStyle::Printf,
            PadStyle::Houdini => ffi::PadStyle::Houdini,
        })
    })
}

impl RustSequence {
    pub(super) fn head(&self) -> String {
        safe(String::new(), || self.0.head.clone())
    }
    pub(super) fn tail(&self) -> String {
        safe(String::new(), || self.0.tail.clone())
    }
    pub(super) fn padding(&self) -> usize {
        self.0.padding
    }
    pub(super) fn frames(&self) -> String {
        safe(String::new(), || self.0.frames.to_string())
    }
    pub(super) fn frame_count(&self) -> usize {
        safe(0, || self.0.frames.len())
    }
    pub(super) fn missing(&self) -> String {
        safe(String::new(), || self.0.missing().to_string())
    }
    pub(super) fn format(&self, s: ffi::PadStyle) -> R<String> {
        g(|| Ok(self.0.format(style(s)?)))
    }
    pub(super) fn pattern(&self, s: ffi::PadStyle) -> R<String> {
        g(|| Ok(self.0.pattern(style(s)?)))
    }
    pub(super) fn path(&self, frame: i64) -> String {
        safe(String::new(), || self.0.path(frame))
    }
}

impl RustSequenceList {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
    pub(super) fn get(&self, index: usize) -> R<Box<RustSequence>> {
        g(|| {
            self.0
                .get(index)
                .map(|s| Box::new(RustSequence(s.clone())))
                .ok_or_else(|| bad_arg(format!("index {index} is out of range")))
        })
    }
}

pub(super) fn new_string_list() -> Box<RustStringList> {
    Box::default()
}

impl RustStringList {
    pub(super) fn push(&mut self, item: &[u8]) -> R<()> {
        g(|| {
            self.0.push(text(item, "item")?.to_owned());
            Ok(())
        })
    }
}

pub(super) fn sequences_in(names: &RustStringList) -> R<Box<RustSequenceList>> {
    g(|| Ok(Box::new(RustSequenceList(capsa::sequences_in(&names.0)))))
}

pub(super) fn find_sequences(dir: &[u8]) -> R<Box<RustSequenceList>> {
    g(|| {
        Ok(Box::new(RustSequenceList(capsa::find_sequences(&path(
            dir, "dir",
        )?)?)))
    })
}

pub(super) fn frameset_parse(spec: &[u8]) -> R<Box<RustFrameSet>> {
    g(|| {
        Ok(Box::new(RustFrameSet(FrameSet::parse(text(
            spec, "spec",
        )?)?)))
    })
}

impl RustFrameSet {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
    pub(super) fn text(&self) -> String {
        safe(String::new(), || self.0.to_string())
    }
    pub(super) fn frames(&self, limit: usize) -> Vec<i64> {
        safe(Vec::new(), || self.0.iter().take(limit).collect())
    }
}

pub(super) fn capsule_id_kind(value: &[u8]) -> R<String> {
    g(|| {
        Ok(CapsuleId::parse(text(value, "value")?)?
            .kind()
            .as_str()
            .to_owned())
    })
}

pub(super) fn version_parse(value: &[u8]) -> R<u32> {
    g(|| Ok(Version::parse(text(value, "value")?)?.number()))
}

pub(super) fn version_format(number: u32, padding: u32) -> R<String> {
    g(|| Ok(Version::new(number)?.padded(padding as usize)))
}

pub(super) fn version_compare(a: &[u8], b: &[u8]) -> R<i32> {
    g(|| {
        let a = Version::parse(text(a, "a")?)?;
        let b = Version::parse(text(b, "b")?)?;
        Ok(a.cmp(&b) as i32)
    })
}

pub(super) fn version_next(value: &[u8], padding: u32) -> R<String> {
    g(|| {
        Ok(Version::parse(text(value, "value")?)?
            .next()?
            .padded(padding as usize))
    })
}
