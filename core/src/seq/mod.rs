//! Frame sequences: parse, format and detect them the way pipeline users expect.
//!
//! - [`FrameSet`]: a set of `i64` frames kept as stepped ranges, parsed from and printed as
//!   `1-100`, `1-100x2`, `1,3,7-9`, `-5--1`; parsing refuses more than [`MAX_FRAMES`] frames.
//! - [`Sequence`]: head + padded frame + tail, parsed from `plate.1001-1100#.exr`,
//!   `plate.@@@@.exr`, `plate.%04d.exr 1001-1100`, `plate.$F4.exr`, `tex.<UDIM>.exr`, and
//!   formatted in any [`PadStyle`].
//! - [`sequences_in`] / [`find_sequences`]: group file names into sequences in one linear
//!   pass; the frame is the last digit group before the extension, and `_v001` is never a
//!   frame.
//!
//! ```
//! use capsa::seq::{FrameSet, PadStyle, Sequence, sequences_in};
//!
//! let s = Sequence::parse("plate.1001-1003,1005#.exr")?;
//! assert_eq!(s.path(1001), "plate.1001.exr");
//! assert_eq!(s.missing().to_string(), "1004");
//! assert_eq!(s.format(PadStyle::Printf), "plate.%04d.exr 1001-1003,1005");
//!
//! let found = sequences_in(["a.0001.exr", "a.0002.exr", "shot_v001.exr"]);
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].to_string(), "a.1-2#.exr");
//! assert_eq!(found[0].frames, FrameSet::parse("1-2")?);
//! # Ok::<(), capsa::Error>(())
//! ```
//!
//! Errors are [`Error::InvalidSequence`](crate::Error::InvalidSequence), whose `rule` names
//! the problem; the offending value is shortened in messages.

mod detect;
mod frameset;
mod sequence;

pub(crate) use detect::list_dir;
pub use detect::{find_sequences, sequences_in};
pub use frameset::{FrameRange, FrameSet, Frames, MAX_FRAMES};
pub use sequence::{PadStyle, Sequence, SequenceInfo, MAX_PADDING};
