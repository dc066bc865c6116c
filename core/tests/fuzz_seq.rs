//! Fuzz target: frame sets and sequence patterns from arbitrary strings never panic, never
//! allocate for a huge range, are Ok or INVALID_SEQUENCE, and what they accept round-trips.
mod fuzz_support;

use capsa::seq::{FrameSet, PadStyle, Sequence, MAX_FRAMES};
use capsa::ErrorCode;
use proptest::prelude::*;

fn frame_sets() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9,x-]{0,24}",
        "-?[0-9]{1,13}(--?[0-9]{1,13}(x-?[0-9]{1,4})?)?(,-?[0-9]{1,13}(--?[0-9]{1,13})?){0,3}",
    ]
}

#[test]
fn frame_sets_parse_or_refuse_cleanly() {
    fuzz_support::run("frame_set", 2048, frame_sets(), |s| {
        match FrameSet::parse(&s) {
            Ok(set) => {
                prop_assert!(set.len() as u64 <= MAX_FRAMES);
                let again = FrameSet::parse(&set.to_string()).expect("a formatted set parses");
                prop_assert_eq!(again, set);
            }
            Err(e) => prop_assert_eq!(e.code(), ErrorCode::InvalidSequence),
        }
        Ok(())
    });
}

#[test]
fn sequence_patterns_parse_or_refuse_cleanly() {
    let input = prop_oneof![
        any::<String>(),
        "[a-z._]{0,6}[0-9,x-]{0,16}(#{1,3}|@{1,30}|%0?[0-9]{0,5}d|\\$F[0-9]{0,4}|<UDIM>){1,2}[.a-z]{0,5}( [0-9,x-]{0,16})?",
    ];
    fuzz_support::run("sequence", 2048, input, |s| {
        match Sequence::parse_source(&s) {
            Ok(None) => {}
            Ok(Some(seq)) => {
                prop_assert!(seq.frames.len() as u64 <= MAX_FRAMES);
                for style in [PadStyle::Hash, PadStyle::Printf, PadStyle::Houdini] {
                    let text = seq.format(style);
                    let again = Sequence::parse(&text).expect("a formatted sequence parses");
                    prop_assert_eq!(&again.frames, &seq.frames, "{}", text);
                    prop_assert_eq!(again.padding, seq.padding, "{}", text);
                }
            }
            Err(e) => prop_assert_eq!(e.code(), ErrorCode::InvalidSequence),
        }
        Ok(())
    });
}

/// The hostile patterns of issue 16: each is INVALID_SEQUENCE naming its rule.
#[test]
fn hostile_patterns_are_invalid_sequence_naming_the_rule() {
    for frames in [
        "1-10x0",
        "1-999999999999",
        "1-10x-1",
        "10-1x0",
        "1-5,,",
        "1-2-3",
        "1-9223372036854775807",
        "0-5000000,6000000-20000000",
    ] {
        let e = FrameSet::parse(frames).expect_err(frames);
        assert_eq!(e.code(), ErrorCode::InvalidSequence, "{frames}: {e}");
        for pattern in [
            format!("plate.{frames}#.exr"),
            format!("plate.%04d.exr {frames}"),
        ] {
            match Sequence::parse_source(&pattern) {
                Err(e) => assert_eq!(e.code(), ErrorCode::InvalidSequence, "{pattern}: {e}"),
                Ok(s) => panic!("{pattern} accepted: {s:?}"),
            }
        }
    }
    // `x` alone is no frame set; in a name (`plate.x#.exr`) it is simply part of the head.
    assert_eq!(
        FrameSet::parse("x").unwrap_err().code(),
        ErrorCode::InvalidSequence
    );
    // A descending range is accepted and normalised (the documented `10-1` rule), so `1--5`
    // is the set -5..=1, not an error.
    assert_eq!(
        FrameSet::parse("1--5").unwrap(),
        FrameSet::parse("-5-1").unwrap()
    );
    for pattern in [
        "plate.%0999d.exr",
        "plate.########################################.exr",
        "plate.@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@.exr",
        "plate.%d%d.exr",
        "plate.$F9999.exr",
    ] {
        let e = Sequence::parse_source(pattern).expect_err(pattern);
        assert_eq!(e.code(), ErrorCode::InvalidSequence, "{pattern}: {e}");
        assert!(e.to_string().contains("padding"), "{pattern}: {e}");
    }
}
