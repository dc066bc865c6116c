//! Frame sequences and frame sets, capsule ids and crate versions.

use std::ffi::c_char;
use std::ptr::null_mut;

use capsa::{CapsuleId, FrameSet, IdKind, PadStyle, Sequence, Version};

use crate::error::{bad_arg, capsa_status, Failure};
use crate::strings::{free_box, handle, owned, path_arg, str_arg, str_array, with_out};

/// A frame sequence: head + zero-padded frame + tail, for each frame of a frame set.
pub struct capsa_sequence {
    inner: Sequence,
}

/// A list of sequences.
pub struct capsa_sequence_list {
    items: Vec<capsa_sequence>,
}

impl capsa_sequence_list {
    /// A boxed list from core sequences.
    pub fn boxed(seqs: Vec<Sequence>) -> *mut capsa_sequence_list {
        Box::into_raw(Box::new(capsa_sequence_list {
            items: seqs
                .into_iter()
                .map(|inner| capsa_sequence { inner })
                .collect(),
        }))
    }
}

/// A set of frames (`1-100x2,105`).
pub struct capsa_frameset {
    inner: FrameSet,
}

/// How a sequence's padding is written.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum capsa_pad_style {
    /// `#` (4 digits), `##`…; frames before the token: `plate.1001-1100#.exr`.
    Hash = 0,
    /// `@` per digit; frames before the token.
    At = 1,
    /// `%04d`; frames after the pattern and a space: `plate.%04d.exr 1001-1100`.
    Printf = 2,
    /// `$F4`; frames after the pattern and a space.
    Houdini = 3,
}

/// Which form a capsule id has.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum capsa_id_kind {
    /// 24 hexadecimal digits.
    ObjectId = 0,
    /// A UUID (8-4-4-4-12).
    Uuid = 1,
    /// Any other slug `[A-Za-z0-9][A-Za-z0-9_-]{0,127}`.
    Slug = 2,
}

fn style_arg(value: u32) -> Result<PadStyle, Failure> {
    match value {
        0 => Ok(PadStyle::Hash),
        1 => Ok(PadStyle::At),
        2 => Ok(PadStyle::Printf),
        3 => Ok(PadStyle::Houdini),
        n => Err(bad_arg(format!("{n} is not a capsa_pad_style"))),
    }
}

/// Parse a sequence pattern (`plate.1001-1100#.exr`, `plate.%04d.exr`, `tex.<UDIM>.exr`).
///
/// # Safety
/// `pattern` is NULL or a string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_parse(
    pattern: *const c_char,
    out: *mut *mut capsa_sequence,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let pattern = unsafe { str_arg(pattern, "pattern") }?;
        Ok(Box::into_raw(Box::new(capsa_sequence {
            inner: Sequence::parse(pattern)?,
        })))
    })
}

/// Free a sequence. NULL is ignored. Do not free sequences borrowed from a list.
///
/// # Safety
/// `seq` is NULL or a sequence from `capsa_sequence_parse`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_free(seq: *mut capsa_sequence) {
    free_box(seq);
}

/// Everything before the frame number (owned string).
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_head(
    seq: *const capsa_sequence,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let s = &unsafe { handle(seq, "seq") }?.inner;
        owned(s.head.clone())
    })
}

/// Everything after the frame number (owned string).
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_tail(
    seq: *const capsa_sequence,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let s = &unsafe { handle(seq, "seq") }?.inner;
        owned(s.tail.clone())
    })
}

/// The frame set in canonical text (`"1001-1100"`, `""` when empty).
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_frames(
    seq: *const capsa_sequence,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let s = &unsafe { handle(seq, "seq") }?.inner;
        owned(s.frames.to_string())
    })
}

/// The frames missing between the first and the last, canonical text (`""` when none).
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_missing(
    seq: *const capsa_sequence,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let s = &unsafe { handle(seq, "seq") }?.inner;
        owned(s.missing().to_string())
    })
}

/// The sequence written in `style` (a `capsa_pad_style`), with its frames.
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_format(
    seq: *const capsa_sequence,
    style: u32,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let s = &unsafe { handle(seq, "seq") }?.inner;
        owned(s.format(style_arg(style)?))
    })
}

/// The pattern in `style` without frames (`plate.%04d.exr`).
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_pattern(
    seq: *const capsa_sequence,
    style: u32,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let s = &unsafe { handle(seq, "seq") }?.inner;
        owned(s.pattern(style_arg(style)?))
    })
}

/// The path of one frame (zero-padded; a negative frame's sign counts in the width).
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_path(
    seq: *const capsa_sequence,
    frame: i64,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let s = &unsafe { handle(seq, "seq") }?.inner;
        owned(s.path(frame))
    })
}

/// The padding width in digits.
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_padding(
    seq: *const capsa_sequence,
    out: *mut usize,
) -> capsa_status {
    with_out(out, 0, || {
        // SAFETY: per the contract.
        Ok(unsafe { handle(seq, "seq") }?.inner.padding)
    })
}

/// The number of frames.
///
/// # Safety
/// `seq` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_frame_count(
    seq: *const capsa_sequence,
    out: *mut usize,
) -> capsa_status {
    with_out(out, 0, || {
        // SAFETY: per the contract.
        Ok(unsafe { handle(seq, "seq") }?.inner.frames.len())
    })
}

/// Detect the sequences among `len` file names (one linear pass; names without a frame are
/// left out).
///
/// # Safety
/// `names` is NULL (with `len == 0`) or points to `len` strings; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequences_in(
    names: *const *const c_char,
    len: usize,
    out: *mut *mut capsa_sequence_list,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let names = unsafe { str_array(names, len, "names") }?;
        Ok(capsa_sequence_list::boxed(capsa::sequences_in(names)))
    })
}

/// Detect the sequences in a directory.
///
/// # Safety
/// `dir` is NULL or a string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_find_sequences(
    dir: *const c_char,
    out: *mut *mut capsa_sequence_list,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let dir = unsafe { path_arg(dir, "dir") }?;
        Ok(capsa_sequence_list::boxed(capsa::find_sequences(&dir)?))
    })
}

/// The number of sequences in `list` (0 for NULL).
///
/// # Safety
/// `list` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_list_len(list: *const capsa_sequence_list) -> usize {
    std::panic::catch_unwind(|| {
        // SAFETY: per the contract.
        unsafe { list.as_ref() }.map_or(0, |l| l.items.len())
    })
    .unwrap_or(0)
}

/// The sequence at `index`, borrowed from `list` (valid until the list is freed; do not free
/// it), or NULL when `list` is NULL or `index` is out of range.
///
/// # Safety
/// `list` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_list_get(
    list: *const capsa_sequence_list,
    index: usize,
) -> *const capsa_sequence {
    std::panic::catch_unwind(|| {
        // SAFETY: per the contract.
        unsafe { list.as_ref() }
            .and_then(|l| l.items.get(index))
            .map_or(std::ptr::null(), |s| s as *const capsa_sequence)
    })
    .unwrap_or(std::ptr::null())
}

/// Free a sequence list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or a live list, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_sequence_list_free(list: *mut capsa_sequence_list) {
    free_box(list);
}

/// Parse a frame set (`1-100x2,105`, negative frames allowed; hostile sizes are refused).
///
/// # Safety
/// `spec` is NULL or a string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_frameset_parse(
    spec: *const c_char,
    out: *mut *mut capsa_frameset,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let spec = unsafe { str_arg(spec, "spec") }?;
        Ok(Box::into_raw(Box::new(capsa_frameset {
            inner: FrameSet::parse(spec)?,
        })))
    })
}

/// Free a frame set. NULL is ignored.
///
/// # Safety
/// `set` is NULL or live, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_frameset_free(set: *mut capsa_frameset) {
    free_box(set);
}

/// The number of frames in the set.
///
/// # Safety
/// `set` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_frameset_len(
    set: *const capsa_frameset,
    out: *mut usize,
) -> capsa_status {
    with_out(out, 0, || {
        // SAFETY: per the contract.
        Ok(unsafe { handle(set, "set") }?.inner.len())
    })
}

/// The canonical text of the set (owned string).
///
/// # Safety
/// `set` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_frameset_text(
    set: *const capsa_frameset,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        owned(unsafe { handle(set, "set") }?.inner.to_string())
    })
}

/// Copy the first `capacity` frames, ascending, into `frames`; `written` receives how many
/// were copied.
///
/// # Safety
/// `set` is NULL or live; `frames` is NULL (with `capacity == 0`) or has room for `capacity`
/// values; `written` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_frameset_frames(
    set: *const capsa_frameset,
    frames: *mut i64,
    capacity: usize,
    written: *mut usize,
) -> capsa_status {
    with_out(written, 0, || {
        // SAFETY: per the contract.
        let set = unsafe { handle(set, "set") }?;
        if capacity == 0 {
            return Ok(0);
        }
        if frames.is_null() {
            return Err(bad_arg("`frames` is NULL but `capacity` is not 0"));
        }
        // SAFETY: room for `capacity` values per the contract.
        let buf = unsafe { std::slice::from_raw_parts_mut(frames, capacity) };
        let mut n = 0;
        for (slot, frame) in buf.iter_mut().zip(set.inner.iter()) {
            *slot = frame;
            n += 1;
        }
        Ok(n)
    })
}

/// Validate a capsule id; `kind` (may be NULL) receives its form (`capsa_id_kind`).
///
/// # Safety
/// `value` is NULL or a string; `kind` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_id_validate(
    value: *const c_char,
    kind: *mut u32,
) -> capsa_status {
    crate::error::guard(|| {
        // SAFETY: per the contract.
        let id = CapsuleId::parse(unsafe { str_arg(value, "value") }?)?;
        let k = match id.kind() {
            IdKind::ObjectId => capsa_id_kind::ObjectId,
            IdKind::Uuid => capsa_id_kind::Uuid,
            IdKind::Slug => capsa_id_kind::Slug,
        };
        if !kind.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *kind = k as u32 };
        }
        Ok(())
    })
}

/// Parse a crate version (`"v7"`, `"v007"`, `"v1000"`) into its number.
///
/// # Safety
/// `value` is NULL or a string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_version_parse(
    value: *const c_char,
    out: *mut u32,
) -> capsa_status {
    with_out(out, 0, || {
        // SAFETY: per the contract.
        Ok(Version::parse(unsafe { str_arg(value, "value") }?)?.number())
    })
}

/// Format a crate version number at `padding` digits (`7`, 3 → `"v007"`).
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_version_format(
    number: u32,
    padding: u32,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        owned(Version::new(number)?.padded(padding as usize))
    })
}
