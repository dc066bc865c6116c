"""Frame sequences: parse, format, frames, missing, detection in a directory and a list."""

from __future__ import annotations

from pathlib import Path

import pytest

import capsa


def test_parse_and_format() -> None:
    seq = capsa.Sequence.parse("plate.1001-1100#.exr")
    assert (seq.head, seq.tail, seq.padding) == ("plate.", ".exr", 4)
    assert len(seq) == 100
    assert seq.format("printf") == "plate.%04d.exr 1001-1100"
    assert seq.format("houdini") == "plate.$F4.exr 1001-1100"
    assert seq.pattern("at") == "plate.@@@@.exr"
    assert seq.path(1001) == "plate.1001.exr"
    assert seq.path(-1) == "plate.-001.exr"
    assert seq.paths()[:2] == ["plate.1001.exr", "plate.1002.exr"]
    assert str(seq) == seq.format() == "plate.1001-1100#.exr"
    assert capsa.Sequence.parse(seq.format("printf")) == seq
    assert hash(capsa.Sequence.parse(str(seq))) == hash(seq)


def test_frames_and_missing() -> None:
    seq = capsa.Sequence.parse("plate.1-5,8,10#.exr")
    assert list(seq.frames) == [1, 2, 3, 4, 5, 8, 10]
    assert str(seq.missing()) == "6-7,9"
    assert 8 in seq.frames and 9 not in seq.frames
    assert (seq.frames.min, seq.frames.max) == (1, 10)


def test_frameset() -> None:
    fs = capsa.FrameSet("1-10x3")
    assert list(fs) == [1, 4, 7, 10]
    assert capsa.FrameSet([10, 1, 4, 7]) == fs
    assert capsa.FrameSet(range(1, 4)) == capsa.FrameSet.parse("1-3")
    assert not capsa.FrameSet()
    assert capsa.FrameSet().min is None
    big = capsa.FrameSet("1-5000000")
    assert len(big) == 5_000_000
    it = iter(big)
    assert [next(it), next(it)] == [1, 2]


def test_hostile_ranges_are_refused() -> None:
    with pytest.raises(capsa.InvalidSequenceError):
        capsa.FrameSet("1-99999999999999")
    with pytest.raises(ValueError):
        capsa.Sequence.parse("plate.1-99999999999999#.exr")


def test_sequence_from_parts() -> None:
    seq = capsa.Sequence("shot.", ".exr", 4, "1-3")
    assert str(seq) == "shot.1-3#.exr"
    assert capsa.Sequence("a.", ".exr", 2, [1, 2]).format() == "a.1-2##.exr"
    assert capsa.Sequence("a.", ".exr", frames=capsa.FrameSet("5")).path(5) == "a.0005.exr"


def test_sequences_in_a_list() -> None:
    names = [f"plate.{f:04d}.exr" for f in range(1001, 1011) if f != 1005]
    names += ["notes.txt", "shot_v001.exr"]
    [seq] = capsa.sequences_in(names)
    assert str(seq) == "plate.1001-1004,1006-1010#.exr"
    assert str(seq.missing()) == "1005"
    assert capsa.sequences_in(iter(["a.1.exr", "a.2.exr"]))[0].format() == "a.1-2@.exr"


def test_sequences_in_refuses_a_string() -> None:
    with pytest.raises(capsa.InvalidArgumentError):
        capsa.sequences_in("plate.1001.exr")
    with pytest.raises(capsa.InvalidArgumentError):
        capsa.sequences_in([1, 2])  # type: ignore[list-item]


def test_find_sequences(tmp_path: Path) -> None:
    for f in (1, 2, 3, 5):
        (tmp_path / f"beauty.{f:04d}.exr").write_bytes(b"")
    (tmp_path / ".hidden.0001.exr").write_bytes(b"")
    [seq] = capsa.find_sequences(tmp_path)
    assert str(seq) == "beauty.1-3,5#.exr"
    assert capsa.find_sequences(str(tmp_path)) == [seq]
    with pytest.raises(OSError):
        capsa.find_sequences(tmp_path / "missing")


def test_crate_sequences(store: capsa.Store) -> None:
    crate = store.create_capsule("a").bump()
    (crate.artifacts / "beauty").mkdir()
    for f in range(1, 4):
        (crate.artifacts / "beauty" / f"b.{f:03d}.exr").write_bytes(b"")
    assert [str(s) for s in crate.sequences()] == ["beauty/b.1-3###.exr"]
    assert crate.sequences("scenes") == []
    with pytest.raises(capsa.InvalidArgumentError):
        crate.sequences("nope")  # type: ignore[arg-type]
