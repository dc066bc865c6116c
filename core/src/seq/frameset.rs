//! [`FrameSet`]: a set of frame numbers kept as stepped ranges.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

use crate::error::{shown, Error, Result};

/// The most frames a frame set *parsed from text* may hold (10,000,000).
///
/// The limit counts every frame each part names before duplicates are removed, so
/// `1-99999999999999` or a million copies of `1-100` are refused before any work is done.
/// Sets built in code ([`FrameSet::from_frames`], [`FrameSet::missing`]) are not limited: their
/// caller already holds the frames.
pub const MAX_FRAMES: u64 = 10_000_000;

/// One stepped range of a [`FrameSet`]: `start`, `start + step`, … up to `end` (inclusive).
///
/// Always ascending: `start <= end`, `step >= 1`, `end` is a frame of the range, and a range
/// of one frame has `step == 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRange {
    start: i64,
    end: i64,
    step: i64,
}

impl FrameRange {
    fn single(frame: i64) -> FrameRange {
        FrameRange {
            start: frame,
            end: frame,
            step: 1,
        }
    }

    /// The first (lowest) frame.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The last (highest) frame, included.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// The distance between consecutive frames (1 or more).
    pub fn step(&self) -> i64 {
        self.step
    }

    /// How many frames the range holds.
    pub fn count(&self) -> u64 {
        ((i128::from(self.end) - i128::from(self.start)) / i128::from(self.step) + 1) as u64
    }

    fn nth(&self, k: u64) -> i64 {
        (i128::from(self.start) + i128::from(k) * i128::from(self.step)) as i64
    }

    fn contains(&self, frame: i64) -> bool {
        frame >= self.start
            && frame <= self.end
            && (i128::from(frame) - i128::from(self.start)) % i128::from(self.step) == 0
    }
}

impl fmt::Display for FrameRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else if self.step == 1 {
            write!(f, "{}-{}", self.start, self.end)
        } else {
            write!(f, "{}-{}x{}", self.start, self.end, self.step)
        }
    }
}

/// A set of frame numbers (`i64`), stored compactly as ascending stepped ranges.
///
/// It is a *set*: order and duplicates in the text are not kept. `10-1` is the same set as
/// `1-10` (descending ranges are accepted and normalised), `1,1,2` the same as `1-2`.
///
/// Text form (parsing, see [`FrameSet::parse`]): parts separated by `,`, each a frame `N`,
/// a range `N-M` or a stepped range `N-MxS` (`S >= 1`); frames may be negative (`-5--1`,
/// `-3-3`); spaces around a part are ignored; the empty string is the empty set.
///
/// The canonical text ([`Display`](fmt::Display)) is compact and depends only on the frames:
/// frames are grouped greedily in ascending order into runs with a constant step. A run of
/// three or more frames prints as `a-b` (step 1) or `a-bxS`; a run of two consecutive frames as
/// `a-b`; two frames further apart as `a,b`. So `{1,2,3,5,7,9}` prints `1-3,5-9x2` and
/// `{1,3,4,5}` prints `1,3-5`. Parsing that text gives the same set back.
///
/// Two sets with the same frames are equal (the stored ranges are canonical).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FrameSet {
    ranges: Vec<FrameRange>,
}

impl FrameSet {
    /// The empty set.
    pub fn new() -> FrameSet {
        FrameSet::default()
    }

    /// Parse a frame set: `1-100`, `1-100x2`, `1,3,7-9`, `-5--1`, `10-1`, `1-100x2,105`.
    ///
    /// Refused with [`Error::InvalidSequence`] (naming the problem): an empty part (`1,,2`),
    /// a zero step (`5-1x0`), a number outside `i64`, more than [`MAX_FRAMES`] frames in
    /// total, or anything else that is not the grammar above.
    pub fn parse(spec: &str) -> Result<FrameSet> {
        if spec.trim().is_empty() {
            return Ok(FrameSet::new());
        }
        let mut pieces: Vec<FrameRange> = Vec::new();
        let mut total: u64 = 0;
        for part in spec.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(invalid(
                    spec,
                    "empty part (two commas, or a comma at an end)",
                ));
            }
            let (range, count) = parse_part(spec, part)?;
            total = total.saturating_add(count);
            if total > MAX_FRAMES {
                return Err(invalid(
                    spec,
                    format!("too many frames: more than the limit of {MAX_FRAMES}"),
                ));
            }
            pieces.push(range);
        }
        Ok(FrameSet::from_pieces(pieces))
    }

    /// The set of the given frames (any order, duplicates allowed).
    ///
    /// Not limited by [`MAX_FRAMES`]: the frames are already in memory.
    pub fn from_frames<I: IntoIterator<Item = i64>>(frames: I) -> FrameSet {
        let mut frames: Vec<i64> = frames.into_iter().collect();
        frames.sort_unstable();
        FrameSet::from_sorted_frames(&frames)
    }

    /// The set of already sorted frames (duplicates allowed).
    pub(crate) fn from_sorted_frames(frames: &[i64]) -> FrameSet {
        let mut c = Compactor::default();
        let mut last = None;
        for &f in frames {
            if last != Some(f) {
                c.push(f);
                last = Some(f);
            }
        }
        c.finish()
    }

    /// Build from ranges in any order, possibly overlapping.
    fn from_pieces(mut pieces: Vec<FrameRange>) -> FrameSet {
        pieces.sort_unstable_by_key(|r| (r.start, r.end));
        let disjoint = pieces.windows(2).all(|w| w[0].end < w[1].start);
        let mut c = Compactor::default();
        if disjoint {
            for r in &pieces {
                c.push_range(*r);
            }
        } else {
            // Overlapping ranges: merge them frame by frame (bounded by MAX_FRAMES when the
            // pieces come from text) without expanding them into memory.
            let mut heap: BinaryHeap<Reverse<(i64, usize, u64)>> = pieces
                .iter()
                .enumerate()
                .map(|(i, r)| Reverse((r.start, i, 0)))
                .collect();
            let mut last = None;
            while let Some(Reverse((f, i, k))) = heap.pop() {
                if last != Some(f) {
                    c.push(f);
                    last = Some(f);
                }
                let r = pieces[i];
                if k + 1 < r.count() {
                    heap.push(Reverse((r.nth(k + 1), i, k + 1)));
                }
            }
        }
        c.finish()
    }

    /// How many frames.
    pub fn len(&self) -> usize {
        let n: u64 = self
            .ranges
            .iter()
            .fold(0u64, |acc, r| acc.saturating_add(r.count()));
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// True when the set holds no frame.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The lowest frame.
    pub fn min(&self) -> Option<i64> {
        self.ranges.first().map(|r| r.start)
    }

    /// The highest frame.
    pub fn max(&self) -> Option<i64> {
        self.ranges.last().map(|r| r.end)
    }

    /// Whether `frame` is in the set (a binary search over the ranges).
    pub fn contains(&self, frame: i64) -> bool {
        let i = self.ranges.partition_point(|r| r.start <= frame);
        i > 0 && self.ranges[i - 1].contains(frame)
    }

    /// The frames in ascending order.
    pub fn iter(&self) -> Frames<'_> {
        Frames {
            ranges: &self.ranges,
            index: 0,
            k: 0,
            count: self.ranges.first().map_or(0, FrameRange::count),
        }
    }

    /// The canonical ranges, ascending and disjoint.
    pub fn ranges(&self) -> &[FrameRange] {
        &self.ranges
    }

    /// The frames between [`min`](Self::min) and [`max`](Self::max) that are not in the set
    /// (empty for an empty set). Works on the ranges: cost grows with the number of frames
    /// of stepped ranges and of ranges, never with the size of a gap.
    pub fn missing(&self) -> FrameSet {
        let mut c = Compactor::default();
        let mut prev_end: Option<i64> = None;
        for r in &self.ranges {
            if let Some(p) = prev_end {
                // a gap p+1 ..= r.start-1
                if diff(p, r.start) > 1 {
                    c.push_range(FrameRange {
                        start: p + 1,
                        end: r.start - 1,
                        step: 1,
                    });
                }
            }
            if r.step > 1 {
                let n = r.count();
                for k in 0..n - 1 {
                    let f = r.nth(k);
                    c.push_range(FrameRange {
                        start: f + 1,
                        end: f + r.step - 1,
                        step: 1,
                    });
                }
            }
            prev_end = Some(r.end);
        }
        c.finish()
    }
}

impl fmt::Display for FrameSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for FrameSet {
    type Err = Error;

    fn from_str(s: &str) -> Result<FrameSet> {
        FrameSet::parse(s)
    }
}

impl FromIterator<i64> for FrameSet {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> FrameSet {
        FrameSet::from_frames(iter)
    }
}

impl<'a> IntoIterator for &'a FrameSet {
    type Item = i64;
    type IntoIter = Frames<'a>;

    fn into_iter(self) -> Frames<'a> {
        self.iter()
    }
}

/// Iterator over the frames of a [`FrameSet`], ascending. See [`FrameSet::iter`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    ranges: &'a [FrameRange],
    index: usize,
    k: u64,
    /// Frames in `ranges[index]`.
    count: u64,
}

impl Iterator for Frames<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        loop {
            let r = self.ranges.get(self.index)?;
            if self.k < self.count {
                let f = r.nth(self.k);
                self.k += 1;
                return Some(f);
            }
            self.index += 1;
            self.k = 0;
            self.count = self.ranges.get(self.index).map_or(0, FrameRange::count);
        }
    }
}

fn invalid(value: &str, rule: impl Into<String>) -> Error {
    Error::InvalidSequence {
        value: shown(value),
        rule: rule.into(),
    }
}

/// Parse one part (`N`, `N-M`, `N-MxS`) into an ascending range and its frame count.
fn parse_part(spec: &str, part: &str) -> Result<(FrameRange, u64)> {
    let b = part.as_bytes();
    let mut pos = 0;
    let a = parse_number(spec, part, b, &mut pos, true)?;
    if pos == b.len() {
        return Ok((FrameRange::single(a), 1));
    }
    expect(spec, part, b, &mut pos, b'-')?;
    let e = parse_number(spec, part, b, &mut pos, true)?;
    let step = if pos == b.len() {
        1
    } else {
        expect(spec, part, b, &mut pos, b'x')?;
        let s = parse_number(spec, part, b, &mut pos, false)?;
        if s == 0 {
            return Err(invalid(
                spec,
                format!("zero step in {:?}: the step must be 1 or more", shown(part)),
            ));
        }
        s
    };
    if pos != b.len() {
        return Err(unexpected(spec, part, b, pos));
    }
    let (lo, hi, s) = (i128::from(a), i128::from(e), i128::from(step));
    let n = (hi - lo).abs() / s; // frames after the first
    let count = n + 1;
    if count > i128::from(MAX_FRAMES) {
        return Err(invalid(
            spec,
            format!(
                "too many frames: {:?} holds {count}, more than the limit of {MAX_FRAMES}",
                shown(part)
            ),
        ));
    }
    let (start, end) = if lo <= hi {
        (lo, lo + n * s)
    } else {
        (lo - n * s, lo)
    };
    let range = if start == end {
        FrameRange::single(start as i64)
    } else {
        FrameRange {
            start: start as i64,
            end: end as i64,
            step,
        }
    };
    Ok((range, count as u64))
}

fn expect(spec: &str, part: &str, b: &[u8], pos: &mut usize, want: u8) -> Result<()> {
    if b.get(*pos) == Some(&want) {
        *pos += 1;
        Ok(())
    } else {
        Err(unexpected(spec, part, b, *pos))
    }
}

fn unexpected(spec: &str, part: &str, b: &[u8], pos: usize) -> Error {
    let found = match part.get(pos..).and_then(|s| s.chars().next()) {
        Some(c) => format!("{c:?}"),
        None if pos >= b.len() => "the end".to_string(),
        None => "a non-ASCII character".to_string(),
    };
    invalid(
        spec,
        format!(
            "unexpected {found} at offset {pos} of part {:?} (expected N, N-M or N-MxS)",
            shown(part)
        ),
    )
}

/// A decimal integer (optionally negative) that must fit in `i64`.
fn parse_number(spec: &str, part: &str, b: &[u8], pos: &mut usize, signed: bool) -> Result<i64> {
    let negative = signed && b.get(*pos) == Some(&b'-');
    if negative {
        *pos += 1;
    }
    let begin = *pos;
    let mut value: i128 = 0;
    while let Some(&d) = b.get(*pos) {
        if !d.is_ascii_digit() {
            break;
        }
        value = value * 10 + i128::from(d - b'0');
        if value > i128::from(i64::MAX) + 1 {
            return Err(invalid(
                spec,
                format!("frame number out of range (i64) in {:?}", shown(part)),
            ));
        }
        *pos += 1;
    }
    if *pos == begin {
        return Err(unexpected(spec, part, b, *pos));
    }
    let value = if negative { -value } else { value };
    i64::try_from(value).map_err(|_| {
        invalid(
            spec,
            format!("frame number out of range (i64) in {:?}", shown(part)),
        )
    })
}

/// Greedy compaction of ascending unique frames into canonical runs.
#[derive(Default)]
struct Compactor {
    out: Vec<FrameRange>,
    state: State,
}

#[derive(Default, Clone, Copy)]
enum State {
    #[default]
    Empty,
    One(i64),
    Two(i64, i64),
    Run {
        start: i64,
        last: i64,
        step: i64,
    },
}

fn diff(a: i64, b: i64) -> i128 {
    i128::from(b) - i128::from(a)
}

impl Compactor {
    /// Feed the next frame (greater than every frame fed before).
    fn push(&mut self, f: i64) {
        self.state = match self.state {
            State::Empty => State::One(f),
            State::One(x) => State::Two(x, f),
            State::Two(x, y) => {
                let d1 = diff(x, y);
                if d1 == diff(y, f) {
                    State::Run {
                        start: x,
                        last: f,
                        step: d1 as i64,
                    }
                } else if d1 == 1 {
                    self.out.push(FrameRange {
                        start: x,
                        end: y,
                        step: 1,
                    });
                    State::One(f)
                } else {
                    self.out.push(FrameRange::single(x));
                    State::Two(y, f)
                }
            }
            State::Run { start, last, step } => {
                if diff(last, f) == i128::from(step) {
                    State::Run {
                        start,
                        last: f,
                        step,
                    }
                } else {
                    self.out.push(FrameRange {
                        start,
                        end: last,
                        step,
                    });
                    State::One(f)
                }
            }
        };
    }

    /// Feed a whole range (every frame greater than every frame fed before), jumping over it
    /// once it continues the current run: at most three single pushes per range.
    fn push_range(&mut self, r: FrameRange) {
        let s = i128::from(r.step);
        let mut f = r.start;
        loop {
            match self.state {
                State::Run { start, last, step } if step == r.step && diff(last, f) == s => {
                    self.state = State::Run {
                        start,
                        last: r.end,
                        step,
                    };
                    return;
                }
                State::Two(x, y) if diff(x, y) == s && diff(y, f) == s => {
                    self.state = State::Run {
                        start: x,
                        last: r.end,
                        step: r.step,
                    };
                    return;
                }
                _ => {}
            }
            self.push(f);
            if f == r.end {
                return;
            }
            f += r.step;
        }
    }

    fn finish(mut self) -> FrameSet {
        match self.state {
            State::Empty => {}
            State::One(x) => self.out.push(FrameRange::single(x)),
            State::Two(x, y) => {
                if diff(x, y) == 1 {
                    self.out.push(FrameRange {
                        start: x,
                        end: y,
                        step: 1,
                    });
                } else {
                    self.out.push(FrameRange::single(x));
                    self.out.push(FrameRange::single(y));
                }
            }
            State::Run { start, last, step } => self.out.push(FrameRange {
                start,
                end: last,
                step,
            }),
        }
        FrameSet { ranges: self.out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn fs(s: &str) -> FrameSet {
        FrameSet::parse(s).unwrap()
    }

    fn frames(s: &str) -> Vec<i64> {
        fs(s).iter().collect()
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(frames("1-5"), vec![1, 2, 3, 4, 5]);
        assert_eq!(frames("1-10x3"), vec![1, 4, 7, 10]);
        assert_eq!(frames("1-10x4"), vec![1, 5, 9]);
        assert_eq!(frames("1,3,7-9"), vec![1, 3, 7, 8, 9]);
        assert_eq!(frames("-5--1"), vec![-5, -4, -3, -2, -1]);
        assert_eq!(frames("-2-2"), vec![-2, -1, 0, 1, 2]);
        assert_eq!(frames("10-1"), frames("1-10"));
        assert_eq!(frames("10-1x3"), vec![1, 4, 7, 10]);
        assert_eq!(frames("1-9x2,10"), vec![1, 3, 5, 7, 9, 10]);
        assert_eq!(frames(" 1 , 3 "), vec![1, 3]);
        assert_eq!(frames("0005"), vec![5]);
        assert!(fs("").is_empty());
        assert_eq!(fs("1-100x2,105").len(), 51);
    }

    #[test]
    fn canonical_text_is_compact() {
        assert_eq!(fs("1-100").to_string(), "1-100");
        assert_eq!(fs("1,2,3,5,7,9").to_string(), "1-3,5-9x2");
        assert_eq!(fs("1,3,4,5").to_string(), "1,3-5");
        assert_eq!(fs("1,3").to_string(), "1,3");
        assert_eq!(fs("1,2").to_string(), "1-2");
        assert_eq!(fs("1,3,5").to_string(), "1-5x2");
        assert_eq!(fs("3,2,1,1").to_string(), "1-3");
        assert_eq!(fs("1-10,5-20").to_string(), "1-20");
        assert_eq!(fs("1-10x2,2-10x2").to_string(), "1-10");
        assert_eq!(fs("1-99x2,101-199x2").to_string(), "1-199x2");
        assert_eq!(fs("10-1").to_string(), "1-10");
        assert_eq!(fs("-3--1,0,1-3").to_string(), "-3-3");
        assert_eq!(fs("5").to_string(), "5");
        assert_eq!(fs("").to_string(), "");
    }

    #[test]
    fn queries() {
        let s = fs("1-9x2,20-22");
        assert_eq!(s.min(), Some(1));
        assert_eq!(s.max(), Some(22));
        assert!(s.contains(5) && s.contains(21) && !s.contains(4) && !s.contains(23));
        assert!(!s.contains(0) && !s.contains(10));
        assert_eq!(s.len(), 8);
        assert_eq!(s.missing().to_string(), "2-10x2,11-19");
        assert_eq!(fs("1-10x3").missing().to_string(), "2-3,5-6,8-9");
        assert!(fs("1-10").missing().is_empty());
        assert!(FrameSet::new().missing().is_empty());
        assert_eq!(FrameSet::from_frames([5, 1, 3]), fs("1-5x2"));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let s = FrameSet::from_frames([i64::MIN, 0, i64::MAX]);
        assert_eq!(s.len(), 3);
        assert_eq!(FrameSet::parse(&s.to_string()).unwrap(), s);
        let m = FrameSet::from_frames([i64::MIN, i64::MAX]).missing();
        assert_eq!(m.min(), Some(i64::MIN + 1));
        assert_eq!(m.max(), Some(i64::MAX - 1));
        assert!(FrameSet::parse(&format!("{}", i64::MIN)).is_ok());
        assert!(FrameSet::parse(&format!("{}-{}", i64::MAX - 2, i64::MAX)).is_ok());
    }

    fn refused(spec: &str, needle: &str) {
        let e = FrameSet::parse(spec).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidSequence, "{spec}");
        assert!(e.to_string().contains(needle), "{spec}: {e}");
    }

    #[test]
    fn refuses_hostile_input() {
        refused("1-99999999999999", "too many frames");
        refused("1-10000001", "too many frames");
        refused(&["1-1000000"; 11].join(","), "too many frames");
        refused("5-1x0", "zero step");
        refused("99999999999999999999", "out of range");
        refused("1-9223372036854775808", "out of range");
        refused("1,,2", "empty part");
        refused(",1", "empty part");
        refused("1,", "empty part");
        refused("abc", "unexpected");
        refused("1-", "unexpected");
        refused("1x2", "unexpected");
        refused("1-5x", "unexpected");
        refused("1-5x-2", "unexpected");
        refused("1-5x2y", "unexpected");
        refused("--1", "unexpected");
        refused("1-é", "unexpected");
        assert!(FrameSet::parse("1-10000000").is_ok());
    }
}
