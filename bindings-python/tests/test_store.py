"""Store, Capsule and Crate through the binding: paths in as str/PathLike, out as Path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import capsa

CAPSULE_ID = "656796239c1b981568180614"


def test_init_open_and_paths(tmp_path: Path) -> None:
    root = tmp_path / "show"
    created = capsa.Store.init(str(root), padding=4)
    assert isinstance(created.root, Path)
    assert created.root == root
    assert created.padding == 4
    opened = capsa.Store.open(root)  # a PathLike
    assert opened.padding == 4
    assert "show" in repr(opened)


def test_a_custom_pathlike_is_accepted(tmp_path: Path) -> None:
    class Where:
        def __fspath__(self) -> str:
            return str(tmp_path / "s")

    store = capsa.Store.init(Where())
    assert store.root == tmp_path / "s"


def test_capsules_are_sorted(store: capsa.Store) -> None:
    for cid in ["shot-b", "shot-a", CAPSULE_ID]:
        store.create_capsule(cid)
    assert [c.id for c in store.capsules()] == [CAPSULE_ID, "shot-a", "shot-b"]
    assert store.capsule("shot-a") == store.capsules()[1]
    assert len({store.capsule("shot-a"), store.capsule("shot-a")}) == 1


def test_bump_crates_get_latest(capsule: capsa.Capsule) -> None:
    assert capsule.latest() is None
    v1 = capsule.bump(comment="layout", created_by="ana", tags=["wip"])
    v2 = capsule.bump()
    assert (v1.version, v1.number) == ("v001", 1)
    assert v2.version == "v002"
    assert [c.version for c in capsule.crates()] == ["v001", "v002"]
    assert [c.version for c in capsule] == ["v001", "v002"]
    assert capsule.get("v1") == v1
    assert capsule.get(2) == v2
    latest = capsule.latest()
    assert latest is not None and latest.version == "v002"
    meta = v1.metadata
    assert meta["comment"] == "layout"
    assert meta["created_by"] == "ana"
    assert meta["tags"] == ["wip"]
    assert meta["published"] is False
    assert v2.metadata["parent"] == "v001"
    assert v1.capsule_id == CAPSULE_ID
    assert v1.capsule == capsule


def test_sections_are_paths(capsule: capsa.Capsule) -> None:
    crate = capsule.bump()
    for section in (crate.artifacts, crate.publishes, crate.scenes, crate.path):
        assert isinstance(section, Path)
        assert section.is_dir()
    assert crate.section("scenes") == crate.scenes == crate.path / "scenes"
    assert crate.path.parent == capsule.path


def test_carry_over_renames_version_tokens(capsule: capsa.Capsule) -> None:
    v1 = capsule.bump()
    (v1.scenes / "sh010_v001.ma").write_text("scene")
    v2 = capsule.bump(carry_over=["scenes"])
    assert (v2.scenes / "sh010_v002.ma").read_text() == "scene"
    assert not (v2.scenes / "sh010_v001.ma").exists()


def test_publish_file_and_sequence_then_seal(capsule: capsa.Capsule, tmp_path: Path) -> None:
    crate = capsule.bump()
    review = tmp_path / "review.mov"
    review.write_bytes(b"mov")
    published = crate.publish(review)
    assert isinstance(published, Path)
    assert published == crate.publishes / "review.mov"
    assert not published.stat().st_mode & stat.S_IWUSR
    renders = tmp_path / "renders"
    renders.mkdir()
    for f in range(1001, 1006):
        (renders / f"plate.{f:04d}.exr").write_bytes(b"x")
    seq_dir = crate.publish(str(renders / "plate.####.exr"), "final/plate")
    assert seq_dir == crate.publishes / "final" / "plate"
    assert sorted(os.listdir(seq_dir))[0] == "plate.1001.exr"
    [seq] = crate.sequences("publishes")
    assert str(seq) == "final/plate/plate.1001-1005#.exr"
    assert not crate.published
    assert capsule.latest(published=True) is None
    crate.seal()
    assert crate.published
    assert crate.metadata["published"] is True
    assert capsule.latest(published=True) == crate
    with pytest.raises(capsa.SealedError) as info:
        crate.publish(review, "again.mov")
    assert info.value.code == "SEALED"


def test_publish_never_replaces(capsule: capsa.Capsule, tmp_path: Path) -> None:
    crate = capsule.bump()
    src = tmp_path / "a.txt"
    src.write_text("a")
    crate.publish(src)
    with pytest.raises(FileExistsError):
        crate.publish(src)


def test_fsck_on_a_clean_store(capsule: capsa.Capsule, store: capsa.Store) -> None:
    capsule.bump()
    report = store.fsck()
    assert report.clean
    assert report.capsules == 1
    assert report.crates == 1
    assert report.problems == []


def test_fsck_reports_and_repairs(capsule: capsa.Capsule, store: capsa.Store) -> None:
    crate = capsule.bump()
    (crate.path / "artifacts").rmdir()
    report = store.fsck()
    assert not report.clean
    [problem] = report.problems
    assert problem.kind == "missing_section"
    assert isinstance(problem.path, Path)
    assert not problem.repaired
    assert store.fsck(repair=True).problems[0].repaired
    assert store.fsck().clean


def test_store_is_a_context_manager(tmp_path: Path) -> None:
    with capsa.Store.init(tmp_path / "s") as store:
        capsule = store.create_capsule("a")
        capsule.bump()
    assert store.closed
    with pytest.raises(capsa.InvalidArgumentError):
        store.capsules()
