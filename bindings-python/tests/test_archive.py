"""Archives through the binding: archive, verify, restore, offline and back; progress,
cancellation by a raising callback or Ctrl-C, and the GIL released while archiving."""

from __future__ import annotations

import _thread
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

import capsa

CAPSULE = "656796239c1b981568180614"


def filled_capsule(store: capsa.Store, files: int = 20, size: int = 64 * 1024) -> capsa.Capsule:
    capsule = store.create_capsule(CAPSULE)
    crate = capsule.bump(comment="layout")
    (crate.scenes / "sh010_v001.ma").write_text("// scene\n" * 100)
    block = os.urandom(size)
    for i in range(files):
        (crate.artifacts / f"plate.{1001 + i:04d}.exr").write_bytes(block)
    return capsule


def files_in(path: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(path))


def test_archive_verify_restore(store: capsa.Store, tmp_path: Path) -> None:
    capsule = filled_capsule(store)
    n = files_in(capsule.path)  # 21 written, plus capsa's own metadata and hint
    dest = tmp_path / "out" / "sh010.zip"
    dest.parent.mkdir()
    seen: list[capsa.Progress] = []
    report = capsa.archive(capsule, str(dest), progress=seen.append)
    assert isinstance(report.path, Path) and report.path == dest
    assert report.capsule == CAPSULE
    assert report.files == n
    assert report.verified
    assert seen and seen[-1].files_done == seen[-1].files_total == n
    assert zipfile.ZipFile(dest).testzip() is None
    checked = capsa.verify(dest, sha256=True)
    assert checked.files == n
    assert checked.archive_sha256 is not None and len(checked.archive_sha256) == 64
    with pytest.raises(FileExistsError):
        capsa.archive(capsule, dest)
    other = capsa.Store.init(tmp_path / "other")
    restored = other.restore(dest)
    assert restored.id == CAPSULE
    assert [c.version for c in restored.crates()] == ["v001"]
    with pytest.raises(FileExistsError):
        other.restore(dest)
    assert other.restore(dest, replace=True).id == CAPSULE


def test_verify_names_the_bad_entry(store: capsa.Store, tmp_path: Path) -> None:
    capsule = filled_capsule(store, files=3)
    dest = tmp_path / "a.zip"
    capsa.archive(capsule, dest, policy="store")
    data = bytearray(dest.read_bytes())
    i = data.find(b"plate.1002.exr") + 200  # inside the stored data after the local header
    data[i] ^= 0xFF
    dest.write_bytes(bytes(data))
    with pytest.raises(capsa.CorruptArchiveError) as info:
        capsa.verify(dest)
    assert info.value.code == "CORRUPT"


def test_offline_and_back(store: capsa.Store, tmp_path: Path) -> None:
    capsule = filled_capsule(store, files=3)
    dest = store.root / "archives" / "sh010.zip"
    dest.parent.mkdir()
    capsa.archive(capsule, dest)
    stub = capsule.take_offline(dest)
    assert stub.capsule == CAPSULE
    assert stub.archive_path == dest
    assert capsule.offline
    assert capsule.offline_stub is not None
    assert capsule.crates() == []
    back = store.retrieve(CAPSULE)
    assert not back.offline
    assert [c.version for c in back.crates()] == ["v001"]
    with pytest.raises(capsa.InvalidArgumentError):
        store.retrieve(CAPSULE)


def test_a_raising_progress_callback_cancels_cleanly(
    store: capsa.Store, tmp_path: Path
) -> None:
    capsule = filled_capsule(store)
    dest = tmp_path / "a.zip"

    class Stop(Exception):
        pass

    def progress(p: capsa.Progress) -> None:
        raise Stop("enough")

    with pytest.raises(Stop):
        capsa.archive(capsule, dest, progress=progress)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    assert capsa.archive(capsule, dest).files == files_in(capsule.path)  # works again


def test_keyboard_interrupt_cancels_a_long_archive(
    store: capsa.Store, tmp_path: Path, sigint_raises: None
) -> None:
    capsule = filled_capsule(store, files=40, size=1024 * 1024)
    dest = tmp_path / "a.zip"
    started = threading.Event()

    def progress(p: capsa.Progress) -> None:
        started.set()
        time.sleep(0.01)  # a slow UI: the archive cannot finish before the interrupt lands

    def interrupt() -> None:
        started.wait(30)
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        capsa.archive(capsule, dest, policy="deflate", progress=progress)
    assert time.monotonic() - t0 < 60
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_archive_misuse(store: capsa.Store, tmp_path: Path) -> None:
    capsule = filled_capsule(store, files=1)
    with pytest.raises(capsa.InvalidArgumentError):
        capsa.archive(capsule, tmp_path / "a.zip", policy="zstd")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        capsa.verify(tmp_path / "missing.zip")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(capsa.CapsaError):
        capsa.verify(tmp_path / "junk.zip")
    store.close()
    with pytest.raises(capsa.InvalidArgumentError):
        capsa.archive(capsule, tmp_path / "b.zip")


def test_a_raising_callback_cancels_verify_and_restore(
    store: capsa.Store, tmp_path: Path
) -> None:
    capsule = filled_capsule(store, files=5)
    dest = tmp_path / "a.zip"
    capsa.archive(capsule, dest)

    def boom(p: capsa.Progress) -> None:
        raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        capsa.verify(dest, progress=boom)
    other = capsa.Store.init(tmp_path / "other")
    with pytest.raises(ValueError, match="stop"):
        other.restore(dest, progress=boom)
    assert other.capsules() == []
    assert other.restore(dest).id == CAPSULE


def test_bucket_urls_are_parsed_by_core(store: capsa.Store, tmp_path: Path) -> None:
    """s3:// URLs go through as strings; malformed ones are refused before any request, and a
    missing object on an unreachable endpoint fails as an I/O error (no server needed)."""
    capsule = filled_capsule(store, files=1)
    for bad in ["s3://", "s3://bucket-only", "s3://b/", "s3://b/a//x.zip", "gs://b/x.zip"]:
        with pytest.raises(capsa.InvalidArgumentError):
            capsa.archive(capsule, bad)
        with pytest.raises(capsa.InvalidArgumentError):
            capsa.verify(bad)
    os.environ["CAPSA_S3_MAX_RETRIES"] = "0"
    try:
        with pytest.raises(capsa.IoError):
            capsa.verify("s3://b/x.zip?endpoint=http://127.0.0.1:9")
    finally:
        del os.environ["CAPSA_S3_MAX_RETRIES"]
    assert not capsule.offline


def test_archive_beside_fifty_bumps_skips_crates_being_made(
    store: capsa.Store, tmp_path: Path
) -> None:
    """One thread bumps 50 times while another archives: every archive succeeds, and what
    it leaves out is named in ``report.skipped`` (a crate left by a killed bump too)."""
    capsule = filled_capsule(store, files=4)
    killed = capsule.path / "v900"
    killed.mkdir()
    (killed / ".capsa-incomplete").write_text("pid 1")
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(50):
                capsule.bump(carry_over=["scenes"])
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    bumper = threading.Thread(target=bump)
    bumper.start()
    reports: list[capsa.ArchiveReport] = []
    while bumper.is_alive() or not reports:
        reports.append(capsa.archive(capsule, tmp_path / f"live{len(reports)}.zip"))
    bumper.join()
    assert not errors, errors
    assert all(r.verified for r in reports)
    assert all("v900" in r.skipped for r in reports), [r.skipped for r in reports]
    names = zipfile.ZipFile(reports[-1].path).namelist()
    assert not any(n.endswith(".capsa-incomplete") for n in names)
