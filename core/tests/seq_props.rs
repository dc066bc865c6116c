//! Property tests for `capsa::seq`: round trips, a reference model, detection, hostile input.

use std::collections::BTreeSet;

use capsa::seq::{sequences_in, FrameSet, PadStyle, Sequence};
use proptest::prelude::*;

/// A part of a frame-set spec and the frames it names (the reference model).
fn part() -> impl Strategy<Value = (String, Vec<i64>)> {
    prop_oneof![
        (-200i64..200).prop_map(|a| (a.to_string(), vec![a])),
        (-200i64..200, -200i64..200, 1i64..9).prop_map(|(a, b, s)| {
            let frames: Vec<i64> = if a <= b {
                (a..=b).step_by(s as usize).collect()
            } else {
                (b..=a).rev().step_by(s as usize).collect()
            };
            let text = if s == 1 {
                format!("{a}-{b}")
            } else {
                format!("{a}-{b}x{s}")
            };
            (text, frames)
        }),
    ]
}

fn spec() -> impl Strategy<Value = (String, BTreeSet<i64>)> {
    prop::collection::vec(part(), 0..6).prop_map(|parts| {
        let text = parts
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let frames = parts.into_iter().flat_map(|(_, f)| f).collect();
        (text, frames)
    })
}

fn frame_sets() -> impl Strategy<Value = FrameSet> {
    prop_oneof![
        prop::collection::vec(-300i64..300, 0..60).prop_map(FrameSet::from_frames),
        spec().prop_map(|(text, _)| FrameSet::parse(&text).unwrap()),
        prop::collection::vec(any::<i64>(), 0..8).prop_map(FrameSet::from_frames),
    ]
}

proptest! {
    #[test]
    fn parse_matches_the_reference_model((text, want) in spec()) {
        let fs = FrameSet::parse(&text).unwrap();
        let got: Vec<i64> = fs.iter().collect();
        let want: Vec<i64> = want.into_iter().collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(fs.len(), want.len());
        prop_assert_eq!(fs.min(), want.first().copied());
        prop_assert_eq!(fs.max(), want.last().copied());
        for f in -210..210 {
            prop_assert_eq!(fs.contains(f), want.binary_search(&f).is_ok());
        }
        if let (Some(&lo), Some(&hi)) = (want.first(), want.last()) {
            let missing: Vec<i64> = (lo..=hi).filter(|f| want.binary_search(f).is_err()).collect();
            prop_assert_eq!(fs.missing().iter().collect::<Vec<_>>(), missing);
        } else {
            prop_assert!(fs.missing().is_empty());
        }
        prop_assert_eq!(FrameSet::from_frames(want.iter().copied()), fs);
    }

    #[test]
    fn frameset_text_round_trips(fs in frame_sets()) {
        let text = fs.to_string();
        let back = FrameSet::parse(&text).unwrap();
        prop_assert_eq!(&back, &fs, "text {}", text);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn sequence_round_trips_in_every_style(
        head in "([a-zA-Z0-9 /]{0,8}[._/])?",
        tail in "([._][a-z]{1,4}){0,2}",
        padding in 1usize..12,
        frames in frame_sets(),
    ) {
        let seq = Sequence::new(head, tail, padding, frames);
        for style in PadStyle::ALL {
            let text = seq.format(style);
            let back = Sequence::parse(&text).unwrap();
            prop_assert_eq!(&back, &seq, "{} in {}", text, style);
            let pattern = Sequence::parse(&seq.pattern(style)).unwrap();
            prop_assert!(pattern.frames.is_empty());
            prop_assert_eq!(pattern.padding, padding);
        }
    }

    #[test]
    fn detection_recovers_generated_sequences(
        specs in prop::collection::vec(
            ("[a-z]{1,5}", "[a-z]{1,4}", 1usize..7,
             prop::collection::btree_set(-120i64..20_000, 1..40)),
            1..6),
        seed in any::<u64>(),
    ) {
        let mut made = Vec::new();
        let mut names = Vec::new();
        for (i, (stem, ext, padding, frames)) in specs.into_iter().enumerate() {
            let seq = Sequence::new(
                format!("{stem}{i}_"),
                format!(".{ext}"),
                padding,
                FrameSet::from_frames(frames),
            );
            names.extend(seq.paths());
            made.push(seq);
        }
        // A deterministic shuffle.
        let mut state = seed | 1;
        for i in (1..names.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            names.swap(i, (state % (i as u64 + 1)) as usize);
        }
        names.push("shot_v001.exr".to_string());
        names.push("README".to_string());
        let found = sequences_in(&names);
        prop_assert_eq!(found.len(), made.len());
        for seq in &made {
            let got = found.iter().find(|s| s.head == seq.head).unwrap();
            prop_assert_eq!(&got.tail, &seq.tail);
            prop_assert_eq!(&got.frames, &seq.frames);
            prop_assert_eq!(got.paths().collect::<Vec<_>>(), seq.paths().collect::<Vec<_>>());
        }
        let mut sorted = found.clone();
        sorted.sort_by(|a, b| (&a.head, &a.tail, a.padding).cmp(&(&b.head, &b.tail, b.padding)));
        prop_assert_eq!(sorted, found);
    }

    #[test]
    fn hostile_strings_never_panic(s in any::<String>()) {
        let _ = FrameSet::parse(&s);
        let _ = Sequence::parse(&s);
        let _ = sequences_in([&s]);
    }

    #[test]
    fn near_miss_strings_never_panic(s in "[0-9,x #@%$F<UDIM>.vV_-]{0,40}") {
        if let Ok(fs) = FrameSet::parse(&s) {
            prop_assert_eq!(FrameSet::parse(&fs.to_string()).unwrap(), fs);
        }
        if let Ok(seq) = Sequence::parse(&s) {
            let _ = seq.format(PadStyle::Hash);
            let _ = seq.missing();
        }
        for seq in sequences_in([&s]) {
            prop_assert_eq!(seq.paths().collect::<Vec<_>>(), vec![s.clone()]);
        }
    }

    #[test]
    fn huge_numbers_are_refused_not_overflowed(a in any::<i64>(), b in any::<i64>(), s in any::<i64>()) {
        let text = format!("{a}-{b}x{s}");
        match FrameSet::parse(&text) {
            Ok(fs) => prop_assert!(fs.len() as u64 <= capsa::seq::MAX_FRAMES),
            Err(e) => prop_assert_eq!(e.code(), capsa::ErrorCode::InvalidSequence),
        }
    }
}
