//! Detection of sequences in a list of file names or a directory.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::frameset::FrameSet;
use super::sequence::{Sequence, MAX_PADDING};
use crate::error::{Error, Result};

/// Where the frame number sits in a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameMatch {
    /// Byte offset where the frame text starts (its `-` sign included).
    pub start: usize,
    /// Byte offset just after the last digit.
    pub end: usize,
    /// The frame number.
    pub frame: i64,
    /// The width of the frame text, sign included.
    pub width: usize,
    /// The digits begin with a `0` and there are two or more of them (`0001`, `-01`).
    pub zero_padded: bool,
}

/// Find the frame number in a file name.
///
/// The rule (documented on [`sequences_in`]): the extension is the text after the last `.`,
/// unless that text is empty or all digits; the frame is the last group of ASCII digits before
/// the extension; a group directly after `v` or `V` is a version, never a frame (the name
/// then has no frame); a `-` right before the group is a minus sign when it does not follow a
/// letter or digit and the number is not zero; groups wider than [`MAX_PADDING`] or outside
/// `i64` are not frames.
pub(crate) fn frame_in(name: &str) -> Option<FrameMatch> {
    let b = name.as_bytes();
    let stem_end = match name.rfind('.') {
        Some(dot) => {
            let ext = &b[dot + 1..];
            if ext.is_empty() || ext.iter().all(u8::is_ascii_digit) {
                b.len()
            } else {
                dot
            }
        }
        None => b.len(),
    };
    let end = b[..stem_end].iter().rposition(u8::is_ascii_digit)? + 1;
    let mut digits_start = end - 1;
    while digits_start > 0 && b[digits_start - 1].is_ascii_digit() {
        digits_start -= 1;
    }
    if digits_start > 0 && matches!(b[digits_start - 1], b'v' | b'V') {
        return None;
    }
    let digits = &b[digits_start..end];
    if digits.len() > MAX_PADDING {
        return None;
    }
    let mut value: i128 = 0;
    for &d in digits {
        value = value * 10 + i128::from(d - b'0');
    }
    let signed = digits_start > 0
        && b[digits_start - 1] == b'-'
        && !name[..digits_start - 1]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
        && value != 0;
    let (start, value) = if signed {
        (digits_start - 1, -value)
    } else {
        (digits_start, value)
    };
    let frame = i64::try_from(value).ok()?;
    Some(FrameMatch {
        start,
        end,
        frame,
        width: end - start,
        zero_padded: digits.len() > 1 && digits[0] == b'0',
    })
}

/// Frames of one (head, tail) pair, split by how they are padded.
struct Group {
    head: String,
    tail: String,
    /// Zero-padded frames by width (usually one width).
    padded: Vec<(usize, Vec<i64>)>,
    /// Frames without a leading zero, and the narrowest of their widths.
    unpadded: Vec<i64>,
    unpadded_min_width: usize,
}

/// Group file names into sequences, in one pass (linear in the number of names).
///
/// A name's frame is the **last digit group before the extension** (the extension is what
/// follows the last `.`, unless that is all digits): `plate.1001.exr`, `plate_1001.exr`,
/// `plate1001.exr` and `plate.1001` all have frame 1001, `cache.0001.bgeo.sc` has frame 1
/// and tail `.bgeo.sc`, `shot_v001.1001.exr` has frame 1001. A digit group directly after
/// `v`/`V` is a version and never a frame, so `shot_v001.exr` has **no** frame. A `-` before
/// the digits is a minus sign unless it follows a letter or digit: `plate.-001.exr` is frame
/// -1, `shot-0001.exr` is frame 1 with head `shot-`. Names without a frame are left out;
/// a single name with a frame is a sequence of one frame.
///
/// Padding: a number written with leading zeros (`0042`, `-001`) has padding = its width
/// (sign included). Numbers without a leading zero are padded to the narrowest of them
/// (`1`…`10` → padding 1, `1001`…`1100` → padding 4): they join the zero-padded frames of
/// the same head and tail with the widest padding that is not wider than that, so
/// `0998, 0999, 1000, 1001` is one sequence at padding 4. Every frame's
/// [`Sequence::path`] gives back exactly its name. Frames of the same head and tail with
/// different zero padding (`a.01.exr`, `a.001.exr`) are separate sequences.
///
/// The result is sorted by head, then tail, then padding.
pub fn sequences_in<I>(names: I) -> Vec<Sequence>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut key = String::new();
    for name in names {
        let name = name.as_ref();
        let Some(m) = frame_in(name) else {
            continue;
        };
        let (head, tail) = (&name[..m.start], &name[m.end..]);
        // Unambiguous key: length of the head, then head and tail.
        key.clear();
        let _ = write!(key, "{}:{head}{tail}", head.len());
        let gi = match index.get(key.as_str()) {
            Some(&gi) => gi,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Group {
                    head: head.to_string(),
                    tail: tail.to_string(),
                    padded: Vec::new(),
                    unpadded: Vec::new(),
                    unpadded_min_width: usize::MAX,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[gi];
        if m.zero_padded {
            match g.padded.iter_mut().find(|(w, _)| *w == m.width) {
                Some((_, frames)) => frames.push(m.frame),
                None => g.padded.push((m.width, vec![m.frame])),
            }
        } else {
            g.unpadded.push(m.frame);
            g.unpadded_min_width = g.unpadded_min_width.min(m.width);
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        g.padded.sort_unstable_by_key(|(w, _)| *w);
        if !g.unpadded.is_empty() {
            let min = g.unpadded_min_width;
            match g.padded.iter().rposition(|(w, _)| *w <= min) {
                Some(i) => g.padded[i].1.append(&mut g.unpadded),
                None => g.padded.push((min, std::mem::take(&mut g.unpadded))),
            }
        }
        for (padding, mut frames) in g.padded {
            frames.sort_unstable();
            out.push(Sequence {
                head: g.head.clone(),
                tail: g.tail.clone(),
                padding,
                frames: FrameSet::from_sorted_frames(&frames),
            });
        }
    }
    out.sort_by(|a, b| {
        (a.head.as_str(), a.tail.as_str(), a.padding).cmp(&(
            b.head.as_str(),
            b.tail.as_str(),
            b.padding,
        ))
    });
    out
}

/// The sequences among the files of `dir` (see [`sequences_in`] for the rules).
///
/// Not recursive: only regular files (symbolic links to files included) directly in `dir`;
/// hidden names (starting with `.`) and names that are not valid UTF-8 are skipped.
pub fn find_sequences(dir: &Path) -> Result<Vec<Sequence>> {
    Ok(sequences_in(list_dir(dir)?.files))
}

/// What one read of a directory gives: its visible files and subdirectories.
pub(crate) struct Listing {
    /// Regular files and symbolic links to files: not hidden, valid UTF-8 names.
    pub files: Vec<String>,
    /// Subdirectories (not followed through symbolic links), not hidden.
    pub dirs: Vec<PathBuf>,
}

/// Read `dir` once: its files (for [`sequences_in`]) and its subdirectories (to recurse).
/// The entry types come from the directory read itself; only symbolic links cost a `stat`.
pub(crate) fn list_dir(dir: &Path) -> Result<Listing> {
    let mut out = Listing {
        files: Vec::new(),
        dirs: Vec::new(),
    };
    for entry in std::fs::read_dir(dir).map_err(Error::io_at("read directory", dir))? {
        let entry = entry.map_err(Error::io_at("read directory", dir))?;
        let file_name = entry.file_name();
        if file_name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let file_type = entry
            .file_type()
            .map_err(Error::io_at("read file type", &entry.path()))?;
        if file_type.is_dir() {
            out.dirs.push(entry.path());
            continue;
        }
        let Ok(name) = file_name.into_string() else {
            continue;
        };
        let is_file = if file_type.is_symlink() {
            std::fs::metadata(entry.path())
                .map(|m| m.is_file())
                .unwrap_or(false)
        } else {
            file_type.is_file()
        };
        if is_file {
            out.files.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fm(name: &str) -> Option<(String, i64, String, usize)> {
        frame_in(name).map(|m| {
            (
                name[..m.start].to_string(),
                m.frame,
                name[m.end..].to_string(),
                m.width,
            )
        })
    }

    fn at(h: &str, f: i64, t: &str, w: usize) -> Option<(String, i64, String, usize)> {
        Some((h.into(), f, t.into(), w))
    }

    #[test]
    fn finds_the_frame() {
        assert_eq!(fm("plate.1001.exr"), at("plate.", 1001, ".exr", 4));
        assert_eq!(fm("plate_1001.exr"), at("plate_", 1001, ".exr", 4));
        assert_eq!(fm("plate1001.exr"), at("plate", 1001, ".exr", 4));
        assert_eq!(fm("plate.1001"), at("plate.", 1001, "", 4));
        assert_eq!(fm("shot_v001.1001.exr"), at("shot_v001.", 1001, ".exr", 4));
        assert_eq!(fm("cache.0001.bgeo.sc"), at("cache.", 1, ".bgeo.sc", 4));
        assert_eq!(fm("clip.0001.mp4"), at("clip.", 1, ".mp4", 4));
        assert_eq!(fm("plate.-001.exr"), at("plate.", -1, ".exr", 4));
        assert_eq!(fm("plate_-5.exr"), at("plate_", -5, ".exr", 2));
        assert_eq!(fm("shot-0001.exr"), at("shot-", 1, ".exr", 4));
        assert_eq!(fm("é-0001.exr"), at("é-", 1, ".exr", 4));
        assert_eq!(fm("-5"), at("", -5, "", 2));
        assert_eq!(fm("plate.-0.exr"), at("plate.-", 0, ".exr", 1));
        assert_eq!(fm("12.exr"), at("", 12, ".exr", 2));
        assert_eq!(fm("shot_v001.exr"), None);
        assert_eq!(fm("shot_V12"), None);
        assert_eq!(fm("readme.txt"), None);
        assert_eq!(fm(""), None);
        assert_eq!(fm("x.99999999999999999999.exr"), None);
        assert_eq!(fm(&format!("x.{}.exr", "0".repeat(40))), None);
    }

    fn detected(names: &[&str]) -> Vec<String> {
        sequences_in(names).iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn groups_names() {
        assert_eq!(
            detected(&[
                "b.0002.exr",
                "b.0001.exr",
                "a.1.png",
                "a.2.png",
                "a.10.png",
                "shot_v001.exr",
                "notes.txt",
                "b.0004.exr",
            ]),
            ["a.1-2,10@.png", "b.1-2,4#.exr"]
        );
        assert_eq!(
            detected(&["p.0998.exr", "p.0999.exr", "p.1000.exr", "p.1001.exr"]),
            ["p.998-1001#.exr"]
        );
        assert_eq!(
            detected(&["p.1001.exr", "p.1002.exr", "p.1003.exr"]),
            ["p.1001-1003#.exr"]
        );
        assert_eq!(
            detected(&["p.01.exr", "p.001.exr", "p.002.exr"]),
            ["p.1##.exr", "p.1-2###.exr"]
        );
        assert_eq!(
            detected(&["p.-002.exr", "p.-001.exr", "p.0000.exr", "p.0001.exr"]),
            ["p.-2-1#.exr"]
        );
        assert_eq!(detected(&["p.5.exr", "p.5.exr"]), ["p.5@.exr"]);
    }

    #[test]
    fn every_detected_path_is_a_given_name() {
        let names = [
            "p.0998.exr",
            "p.1000.exr",
            "q.-001.exr",
            "q.0003.exr",
            "r.1.png",
            "r.10.png",
            "r.-3.png",
            "s_7",
        ];
        let seqs = sequences_in(names);
        let mut paths: Vec<String> = seqs.iter().flat_map(|s| s.paths()).collect();
        paths.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(paths, want);
    }

    #[test]
    fn finds_sequences_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "plate.0001.exr",
            "plate.0002.exr",
            ".hidden.0003.exr",
            "shot_v001.exr",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("plate.0003.exr")).unwrap();
        let found = find_sequences(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].to_string(), "plate.1-2#.exr");
        let e = find_sequences(&dir.path().join("absent")).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Io);
    }
}
