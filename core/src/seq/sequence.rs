//! [`Sequence`]: a head, a padded frame number, a tail, and a [`FrameSet`].

use std::fmt;
use std::str::FromStr;

use super::frameset::FrameSet;
use crate::error::{shown, Error, Result};

/// The widest padding accepted (32 digits; an `i64` has at most 19).
pub const MAX_PADDING: usize = 32;

/// How a padding token is written when a [`Sequence`] is formatted.
///
/// | style | padding 1 | padding 4 | padding 6 |
/// | --- | --- | --- | --- |
/// | `Hash` | `@` | `#` | `######` |
/// | `At` | `@` | `@@@@` | `@@@@@@` |
/// | `Printf` | `%d` | `%04d` | `%06d` |
/// | `Houdini` | `$F` | `$F4` | `$F6` |
///
/// In `Hash` style a single `#` means 4 digits (as in fileseq), a run of 2 or more `#` one
/// digit per `#`, and padding 1 (which a lone `#` cannot express) is written `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PadStyle {
    /// `#` (4 digits), `##`…: the fileseq style; frames go before the token.
    Hash,
    /// `@` repeated, one per digit; frames go before the token.
    At,
    /// `%04d`, `%d`: printf style (Nuke); frames follow the pattern after a space.
    Printf,
    /// `$F4`, `$F`: Houdini style; frames follow the pattern after a space.
    Houdini,
}

impl PadStyle {
    /// Every style.
    pub const ALL: [PadStyle; 4] = [
        PadStyle::Hash,
        PadStyle::At,
        PadStyle::Printf,
        PadStyle::Houdini,
    ];

    /// The stable name: `"hash"`, `"at"`, `"printf"`, `"houdini"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PadStyle::Hash => "hash",
            PadStyle::At => "at",
            PadStyle::Printf => "printf",
            PadStyle::Houdini => "houdini",
        }
    }

    /// The padding token for `padding` digits in this style.
    pub fn token(self, padding: usize) -> String {
        let p = padding.max(1);
        match self {
            PadStyle::Hash => match p {
                1 => "@".to_string(),
                4 => "#".to_string(),
                n => "#".repeat(n),
            },
            PadStyle::At => "@".repeat(p),
            PadStyle::Printf if p == 1 => "%d".to_string(),
            PadStyle::Printf => format!("%0{p}d"),
            PadStyle::Houdini if p == 1 => "$F".to_string(),
            PadStyle::Houdini => format!("$F{p}"),
        }
    }

    /// Whether the frame set is written inside the pattern, before the token (`Hash`, `At`),
    /// rather than after it, separated by a space (`Printf`, `Houdini`).
    pub fn frames_inline(self) -> bool {
        matches!(self, PadStyle::Hash | PadStyle::At)
    }
}

impl fmt::Display for PadStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PadStyle {
    type Err = Error;

    fn from_str(s: &str) -> Result<PadStyle> {
        PadStyle::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::InvalidArgument {
                what: "padding style",
                reason: format!("{:?} is not hash, at, printf or houdini", shown(s)),
            })
    }
}

/// A frame sequence: `head` + frame number zero-padded to `padding` digits + `tail`, for each
/// frame of `frames`.
///
/// `plate.1001-1100#.exr` is `head = "plate."`, `frames = 1001-1100`, `padding = 4`,
/// `tail = ".exr"`. A padding of 0 is treated as 1. The width of a negative frame includes its
/// sign, as printf does: frame -1 at padding 4 is `-001`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Sequence {
    /// Everything before the frame number (directories included, if any).
    pub head: String,
    /// Everything after the frame number (the extension, usually).
    pub tail: String,
    /// The minimum width of the frame number, in characters; shorter numbers are zero-padded.
    pub padding: usize,
    /// The frames; may be empty (a pattern without frames, like `plate.#.exr`).
    pub frames: FrameSet,
}

impl Sequence {
    /// A sequence from its parts.
    pub fn new(
        head: impl Into<String>,
        tail: impl Into<String>,
        padding: usize,
        frames: FrameSet,
    ) -> Sequence {
        Sequence {
            head: head.into(),
            tail: tail.into(),
            padding,
            frames,
        }
    }

    /// Parse a pattern.
    ///
    /// Padding tokens (the **last** token in the pattern is the frame's):
    /// - `#`: a single `#` is 4 digits; a run of 2 or more is one digit per `#` (`##` = 2,
    ///   `####` = 4, `######` = 6);
    /// - `@`: one digit each (`@` = 1, `@@@@` = 4); a run mixing `#` and `@` is refused;
    /// - `%0Nd` = N digits, `%d` = 1 (`%Nd`, space padding, is refused);
    /// - `$FN` = N digits, `$F` = 1;
    /// - `<UDIM>` = 4 digits (read as padding 4: there is no UDIM [`PadStyle`], so formatting
    ///   writes the style's 4-digit token).
    ///
    /// Frames may be given (fileseq style) right before the token, `plate.1001-1100#.exr`,
    /// or after the pattern and one space, `plate.%04d.exr 1001-1100` (pyseq / Nuke style);
    /// both at once is refused. Before the token, the frame set is the longest run of
    /// `0-9 , - x` that starts with a digit, or with a `-` not preceded by a letter or digit
    /// (so `shot-1001-1100#` is head `shot-`, frames `1001-1100`, while `plate.-10--1#` has
    /// frames `-10--1`). Without frames the sequence has an empty frame set.
    ///
    /// Errors ([`Error::InvalidSequence`]): no padding token, a bad frame set (see
    /// [`FrameSet::parse`]), padding wider than [`MAX_PADDING`], a mixed `#@` run, `%4d`, `$F0`.
    pub fn parse(pattern: &str) -> Result<Sequence> {
        let token = last_token(pattern)?.ok_or_else(|| {
            invalid(
                pattern,
                "no padding token (expected #, @, %04d, $F4 or <UDIM>)",
            )
        })?;
        let padding = token.padding;
        let mut head = &pattern[..token.start];
        let mut tail = &pattern[token.end..];

        let mut frames_text: Option<&str> = None;
        if let Some(sp) = tail.rfind(' ') {
            let rest = &tail[sp + 1..];
            if looks_like_frames(rest) {
                frames_text = Some(rest);
                tail = &tail[..sp];
            }
        }
        let inline_start = inline_frames_start(head);
        if inline_start < head.len() {
            if frames_text.is_some() {
                return Err(invalid(
                    pattern,
                    "frames given twice (before the padding token and after the pattern)",
                ));
            }
            frames_text = Some(&head[inline_start..]);
            head = &head[..inline_start];
            if matches!(last_token(head), Ok(Some(t)) if t.end == head.len()) {
                return Err(invalid(
                    pattern,
                    "a padding token on each side of the frames (like @1-5@): the frame \
                     number's place is ambiguous",
                ));
            }
        }
        let frames = match frames_text {
            Some(text) => FrameSet::parse(text).map_err(|e| match e {
                Error::InvalidSequence { rule, .. } => {
                    invalid(pattern, format!("bad frame set {:?}: {rule}", shown(text)))
                }
                other => other,
            })?,
            None => FrameSet::new(),
        };
        Ok(Sequence {
            head: head.to_string(),
            tail: tail.to_string(),
            padding,
            frames,
        })
    }

    /// Parse `name` if it is meant as a pattern: `Ok(None)` when it holds no padding token at
    /// all (`#`, `@`, `%d`, `$F`, `<UDIM>`; a plain file name such as `plate.1001.exr`),
    /// otherwise the result of [`Sequence::parse`] — so a name that *is* a pattern but breaks
    /// a rule (`plate.1-10x0#.exr`, `plate.%0999d.exr`) is an [`Error::InvalidSequence`]
    /// naming the rule, never taken for a missing file.
    ///
    /// Callers that accept "a file or a sequence pattern" (`publish`) use this instead of
    /// treating any parse error as "not a pattern".
    pub fn parse_source(name: &str) -> Result<Option<Sequence>> {
        if !has_padding_token(name) {
            return Ok(None);
        }
        Sequence::parse(name).map(Some)
    }

    /// The pattern in `style` with its frames: `plate.1001-1100#.exr` (`Hash`),
    /// `plate.1001-1100@@@@.exr` (`At`), `plate.%04d.exr 1001-1100` (`Printf`),
    /// `plate.$F4.exr 1001-1100` (`Houdini`). Without frames, the same as
    /// [`pattern`](Self::pattern). [`Sequence::parse`] reads every form back.
    ///
    /// Frames that would not read back inline (negative frames after a letter, `a-1-0#`
    /// reads as head `a-`) are written after the pattern in every style: `a# -1-0`.
    pub fn format(&self, style: PadStyle) -> String {
        let token = self.token(style);
        let inline = format!("{}{}", self.head, self.frames);
        if self.frames.is_empty() {
            format!("{}{token}{}", self.head, self.tail)
        } else if style.frames_inline() && inline_frames_start(&inline) == self.head.len() {
            format!("{inline}{token}{}", self.tail)
        } else {
            format!("{}{token}{} {}", self.head, self.tail, self.frames)
        }
    }

    /// The pattern in `style` without frames: `plate.#.exr`, `plate.%04d.exr`, `plate.$F4.exr`.
    pub fn pattern(&self, style: PadStyle) -> String {
        format!("{}{}{}", self.head, self.token(style), self.tail)
    }

    /// The padding token in `style`, unless a digit starting the tail would be read as part of
    /// it (`$F4` then `9.exr` reads back as `$F49`): then the printf token, which ends in `d`.
    fn token(&self, style: PadStyle) -> String {
        if style == PadStyle::Houdini && self.tail.starts_with(|c: char| c.is_ascii_digit()) {
            return PadStyle::Printf.token(self.padding);
        }
        style.token(self.padding)
    }

    /// The file name of `frame` (whether or not it is in the set): `plate.1001.exr`;
    /// negative frames keep their sign inside the width, `plate.-001.exr` at padding 4.
    pub fn path(&self, frame: i64) -> String {
        let width = self.padding.max(1);
        format!("{}{frame:0width$}{}", self.head, self.tail)
    }

    /// The file names of every frame, in ascending frame order.
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.frames.iter().map(move |f| self.path(f))
    }

    /// The frames missing between the first and the last frame (see [`FrameSet::missing`]).
    pub fn missing(&self) -> FrameSet {
        self.frames.missing()
    }
}

impl fmt::Display for Sequence {
    /// The [`PadStyle::Hash`] form, with frames.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(PadStyle::Hash))
    }
}

impl FromStr for Sequence {
    type Err = Error;

    fn from_str(s: &str) -> Result<Sequence> {
        Sequence::parse(s)
    }
}

fn invalid(value: &str, rule: impl Into<String>) -> Error {
    Error::InvalidSequence {
        value: shown(value),
        rule: rule.into(),
    }
}

struct Token {
    start: usize,
    end: usize,
    padding: usize,
}

fn check_padding(pattern: &str, padding: usize) -> Result<usize> {
    if padding > MAX_PADDING {
        Err(invalid(
            pattern,
            format!("padding of {padding} digits is wider than the limit of {MAX_PADDING}"),
        ))
    } else {
        Ok(padding)
    }
}

/// `pattern` holds something that is read as a padding token, valid or not.
fn has_padding_token(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    b.iter().any(|&c| c == b'#' || c == b'@')
        || pattern.contains("$F")
        || pattern.contains("<UDIM>")
        || b.iter().enumerate().any(|(i, &c)| {
            c == b'%' && {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                b.get(i + 1 + digits) == Some(&b'd')
            }
        })
}

/// Scan for padding tokens and keep the last one. Two tokens in a row (`%d%d`, `$F4#`) are
/// refused: the frame number's place is ambiguous. An error in the last token is returned;
/// errors in earlier ones are ignored (they are part of the head).
fn last_token(pattern: &str) -> Result<Option<Token>> {
    let b = pattern.as_bytes();
    let mut last: Option<Result<Token>> = None;
    // (start, end) of the last two tokens, to refuse a token glued to the one before.
    let mut spans: [Option<(usize, usize)>; 2] = [None, None];
    let mut i = 0;
    while i < b.len() {
        let start = i;
        match b[i] {
            b'#' | b'@' => {
                while i < b.len() && (b[i] == b'#' || b[i] == b'@') {
                    i += 1;
                }
                let run = &b[start..i];
                let hashes = run.iter().filter(|&&c| c == b'#').count();
                let tok = if hashes > 0 && hashes < run.len() {
                    Err(invalid(pattern, "padding token mixes # and @"))
                } else if hashes == 1 {
                    Ok(4)
                } else {
                    check_padding(pattern, run.len())
                };
                spans = [spans[1], Some((start, i))];
                last = Some(tok.map(|padding| Token {
                    start,
                    end: i,
                    padding,
                }));
                continue;
            }
            b'%' => {
                let mut j = i + 1;
                let zero = b.get(j) == Some(&b'0');
                let digits_start = j;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if b.get(j) == Some(&b'd') {
                    let digits = &pattern[digits_start..j];
                    let tok = if digits.is_empty() {
                        Ok(1)
                    } else if !zero {
                        Err(invalid(
                            pattern,
                            "printf padding without a leading 0 (like %4d) pads with spaces: use %04d",
                        ))
                    } else {
                        width(pattern, digits)
                    };
                    i = j + 1;
                    spans = [spans[1], Some((start, i))];
                    last = Some(tok.map(|padding| Token {
                        start,
                        end: i,
                        padding,
                    }));
                    continue;
                }
            }
            b'$' if b.get(i + 1) == Some(&b'F') => {
                let mut j = i + 2;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let digits = &pattern[i + 2..j];
                let tok = if digits.is_empty() {
                    Ok(1)
                } else {
                    width(pattern, digits)
                };
                i = j;
                spans = [spans[1], Some((start, i))];
                last = Some(tok.map(|padding| Token {
                    start,
                    end: i,
                    padding,
                }));
                continue;
            }
            b'<' if b[i..].starts_with(b"<UDIM>") => {
                i += 6;
                spans = [spans[1], Some((start, i))];
                last = Some(Ok(Token {
                    start,
                    end: i,
                    padding: 4,
                }));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if let [Some((_, prev_end)), Some((start, _))] = spans {
        if prev_end == start && last.as_ref().is_some_and(|t| t.is_ok()) {
            return Err(invalid(
                pattern,
                "two padding tokens in a row (like %d%d): the frame number's place is ambiguous",
            ));
        }
    }
    last.transpose()
}

/// The number of digits of `%0Nd` or `$FN` (leading zeros of N skipped): 1 to MAX_PADDING.
fn width(pattern: &str, digits: &str) -> Result<usize> {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Err(invalid(pattern, "padding must be 1 digit or more"));
    }
    if trimmed.len() > 3 {
        return Err(invalid(
            pattern,
            format!(
                "padding {} is wider than the limit of {MAX_PADDING}",
                shown(digits)
            ),
        ));
    }
    let n: usize = trimmed.parse().unwrap_or(usize::MAX);
    check_padding(pattern, n)
}

fn is_frame_char(c: u8) -> bool {
    c.is_ascii_digit() || c == b'-' || c == b',' || c == b'x'
}

/// `rest` is a frame set written after the pattern: only frame-set characters, starting
/// with a digit or `-`.
fn looks_like_frames(rest: &str) -> bool {
    let b = rest.as_bytes();
    !b.is_empty() && (b[0].is_ascii_digit() || b[0] == b'-') && b.iter().all(|&c| is_frame_char(c))
}

/// Where an inline frame set starts at the end of `head` (`head.len()` when there is none).
fn inline_frames_start(head: &str) -> usize {
    let b = head.as_bytes();
    let mut start = b.len();
    while start > 0 && is_frame_char(b[start - 1]) {
        start -= 1;
    }
    // Drop leading characters until the candidate starts with a digit, or with a `-` that is
    // not glued to a letter or digit before it.
    while start < b.len() {
        let c = b[start];
        if c.is_ascii_digit() {
            break;
        }
        if c == b'-'
            && !head[..start]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
        {
            break;
        }
        start += 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn p(s: &str) -> Sequence {
        Sequence::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn parts(s: &str) -> (String, String, usize, String) {
        let q = p(s);
        (q.head, q.tail, q.padding, q.frames.to_string())
    }

    fn t(h: &str, t: &str, pad: usize, f: &str) -> (String, String, usize, String) {
        (h.into(), t.into(), pad, f.into())
    }

    #[test]
    fn parses_every_token() {
        assert_eq!(
            parts("plate.1001-1100#.exr"),
            t("plate.", ".exr", 4, "1001-1100")
        );
        assert_eq!(parts("plate.#.exr"), t("plate.", ".exr", 4, ""));
        assert_eq!(parts("plate.####.exr"), t("plate.", ".exr", 4, ""));
        assert_eq!(parts("plate.##.exr"), t("plate.", ".exr", 2, ""));
        assert_eq!(parts("plate.@@@@.exr"), t("plate.", ".exr", 4, ""));
        assert_eq!(parts("plate.@.exr"), t("plate.", ".exr", 1, ""));
        assert_eq!(parts("plate.%04d.exr"), t("plate.", ".exr", 4, ""));
        assert_eq!(parts("plate.%d.exr"), t("plate.", ".exr", 1, ""));
        assert_eq!(parts("plate.$F4.exr"), t("plate.", ".exr", 4, ""));
        assert_eq!(parts("plate.$F.exr"), t("plate.", ".exr", 1, ""));
        assert_eq!(parts("tex.<UDIM>.exr"), t("tex.", ".exr", 4, ""));
        assert_eq!(
            parts("tex.1001-1010<UDIM>.exr"),
            t("tex.", ".exr", 4, "1001-1010")
        );
        assert_eq!(parts("plate.-10--1#.exr"), t("plate.", ".exr", 4, "-10--1"));
        assert_eq!(
            parts("shot-1001-1100#.exr"),
            t("shot-", ".exr", 4, "1001-1100")
        );
        assert_eq!(parts("box1-3#.exr"), t("box", ".exr", 4, "1-3"));
        assert_eq!(parts("é-5#.exr"), t("é-", ".exr", 4, "5"));
        assert_eq!(parts("-5#.exr"), t("", ".exr", 4, "-5"));
        assert_eq!(
            parts("plate.%04d.exr 1001-1100"),
            t("plate.", ".exr", 4, "1001-1100")
        );
        assert_eq!(
            parts("a/b c/plate.$F4.exr 1-3"),
            t("a/b c/plate.", ".exr", 4, "1-3")
        );
        assert_eq!(parts("my plate.#.exr"), t("my plate.", ".exr", 4, ""));
        assert_eq!(parts("$FOO/plate.#.exr"), t("$FOO/plate.", ".exr", 4, ""));
    }

    #[test]
    fn formats_every_style() {
        let s = p("plate.1001-1100#.exr");
        assert_eq!(s.format(PadStyle::Hash), "plate.1001-1100#.exr");
        assert_eq!(s.format(PadStyle::At), "plate.1001-1100@@@@.exr");
        assert_eq!(s.format(PadStyle::Printf), "plate.%04d.exr 1001-1100");
        assert_eq!(s.format(PadStyle::Houdini), "plate.$F4.exr 1001-1100");
        assert_eq!(s.pattern(PadStyle::Printf), "plate.%04d.exr");
        assert_eq!(s.to_string(), "plate.1001-1100#.exr");
        let one = Sequence::new("a.", ".png", 1, FrameSet::parse("1-10").unwrap());
        assert_eq!(one.format(PadStyle::Hash), "a.1-10@.png");
        assert_eq!(one.format(PadStyle::Printf), "a.%d.png 1-10");
        assert_eq!(one.format(PadStyle::Houdini), "a.$F.png 1-10");
        assert_eq!(
            Sequence::new("a.", ".png", 6, FrameSet::new()).to_string(),
            "a.######.png"
        );
    }

    /// Found by `make fuzz` (fuzz_seq, seed 1796305804): `a0,-1$F` formatted as
    /// `a-1-0@`, which reads back as head `a-` and frames 0-1.
    #[test]
    fn negative_frames_after_a_letter_round_trip() {
        let s = p("a0,-1$F");
        assert_eq!(s.head, "a");
        for style in [
            PadStyle::Hash,
            PadStyle::At,
            PadStyle::Printf,
            PadStyle::Houdini,
        ] {
            let text = s.format(style);
            let again = p(&text);
            assert_eq!((&again.head, &again.frames), (&s.head, &s.frames), "{text}");
        }
        assert_eq!(s.format(PadStyle::Hash), "a@ -1-0");
        // Where inline reads back, it stays inline.
        assert_eq!(p("plate.-10--1#").format(PadStyle::Hash), "plate.-10--1#");
    }

    #[test]
    fn paths_pad_and_keep_the_sign() {
        let s = p("plate.#.exr");
        assert_eq!(s.path(1001), "plate.1001.exr");
        assert_eq!(s.path(7), "plate.0007.exr");
        assert_eq!(s.path(-1), "plate.-001.exr");
        assert_eq!(s.path(12345), "plate.12345.exr");
        assert_eq!(p("plate.%d.exr").path(7), "plate.7.exr");
        let q = p("a.1-3@@.b");
        assert_eq!(
            q.paths().collect::<Vec<_>>(),
            ["a.01.b", "a.02.b", "a.03.b"]
        );
        assert_eq!(p("a.1-3,7,9#.b").missing().to_string(), "4-6,8");
    }

    fn refused(pattern: &str, needle: &str) {
        let e = Sequence::parse(pattern).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidSequence, "{pattern}");
        assert!(e.to_string().contains(needle), "{pattern}: {e}");
    }

    #[test]
    fn refuses_bad_patterns() {
        refused("plate.exr", "no padding token");
        refused("plate.1001.exr", "no padding token");
        refused("", "no padding token");
        refused("plate.1-99999999999999#.exr", "too many frames");
        refused("plate.5-1x0#.exr", "zero step");
        refused("plate.1-#.exr", "bad frame set");
        refused("plate.#@.exr", "mixes");
        refused("plate.%4d.exr", "%04d");
        refused("plate.$F0.exr", "padding");
        refused("plate.%099d.exr", "limit");
        refused("plate.%0999999999999999999999d.exr", "limit");
        refused(&format!("plate.{}.exr", "#".repeat(33)), "limit");
        refused("plate.1-3#.exr 1-3", "twice");
        refused("plate.%d%d.exr", "two padding tokens in a row");
        // Found by make fuzz (seed 1796305927): `@0@` read as head `@`, which no other
        // style could write back.
        refused("@0@", "each side of the frames");
        refused("plate.#1-5#.exr", "each side of the frames");
        refused("plate.$F4#.exr", "two padding tokens in a row");
        refused("plate.1-10x0#.exr", "zero step");
        refused("plate.1-10x-1#.exr", "bad frame set");
        refused("plate.1-5,,#.exr", "empty part");
        refused("plate.1-2-3#.exr", "bad frame set");
        refused("plate.1-999999999999#.exr", "too many frames");
        refused(&format!("plate.{}.exr", "@".repeat(33)), "limit");
    }

    /// A name that is a pattern but breaks a rule is an INVALID_SEQUENCE naming the rule
    /// (issue 16: `publish` reported these as `[NOT_FOUND] file not found`); a plain file
    /// name is not a pattern at all.
    #[test]
    fn parse_source_tells_a_bad_pattern_from_a_plain_name() {
        for plain in [
            "plate.1001.exr",
            "notes.txt",
            "",
            "x",
            "1-2-3",
            "a%b.exr",
            "$HOME",
        ] {
            assert_eq!(Sequence::parse_source(plain).unwrap(), None, "{plain:?}");
        }
        assert_eq!(
            Sequence::parse_source("plate.1-3#.exr").unwrap(),
            Some(p("plate.1-3#.exr"))
        );
        for (bad, rule) in [
            ("plate.1-10x0#.exr", "zero step"),
            ("plate.%0999d.exr", "limit"),
            ("plate.1-999999999999#.exr", "too many frames"),
            ("plate.1-10x-1#.exr", "bad frame set"),
            ("plate.10-1x0#.exr", "zero step"),
            ("plate.%d%d.exr", "in a row"),
            ("plate.1-5,,#.exr", "empty part"),
            ("plate.1-2-3#.exr", "bad frame set"),
            ("plate.#@.exr", "mixes"),
            ("plate.%4d.exr", "%04d"),
        ] {
            let e = Sequence::parse_source(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidSequence, "{bad}");
            assert!(e.to_string().contains(rule), "{bad}: {e}");
        }
        let many = format!("plate.{}.exr", "#".repeat(40));
        let e = Sequence::parse_source(&many).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidSequence);
    }
}

/// A sequence as the CLI's `--json` and the server's API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SequenceInfo {
    /// The pattern, after a location prefix (`shot010/v003/artifacts/`) if any.
    pub pattern: String,
    /// [`Sequence::head`].
    pub head: String,
    /// [`Sequence::tail`].
    pub tail: String,
    /// [`Sequence::padding`].
    pub padding: usize,
    /// The frames, as a frame set (`1-10,12`).
    pub frames: String,
    /// How many frames.
    pub count: u64,
    /// The frames missing between the first and the last, as a frame set.
    pub missing: String,
}

impl Sequence {
    /// The sequence as the CLI and the server show it, its pattern in `style` after `prefix`.
    pub fn info(&self, prefix: &str, style: PadStyle) -> SequenceInfo {
        SequenceInfo {
            pattern: format!("{prefix}{}", self.format(style)),
            head: self.head.clone(),
            tail: self.tail.clone(),
            padding: self.padding,
            frames: self.frames.to_string(),
            count: self.frames.len() as u64,
            missing: self.missing().to_string(),
        }
    }
}
