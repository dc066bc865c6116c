"""Misuse raises a Python exception; it never crashes, hangs or corrupts the interpreter."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

import capsa


def raises_capsa_error(call: Callable[[], object]) -> capsa.CapsaError:
    with pytest.raises(capsa.CapsaError) as info:
        call()
    return info.value


def test_deleted_capsule_directory(store: capsa.Store) -> None:
    capsule = store.create_capsule("gone")
    crate = capsule.bump()
    shutil.rmtree(capsule.path)
    assert isinstance(raises_capsa_error(capsule.bump), FileNotFoundError)
    raises_capsa_error(capsule.crates)
    raises_capsa_error(lambda: capsule.get("v001"))
    assert isinstance(raises_capsa_error(lambda: crate.metadata), FileNotFoundError)
    raises_capsa_error(lambda: crate.published)
    raises_capsa_error(crate.seal)
    raises_capsa_error(lambda: crate.publish(store.root / "nothing.txt"))
    raises_capsa_error(crate.sequences)
    with pytest.raises(FileNotFoundError):
        store.capsule("gone")
    # latest() on a deleted capsule is the same NOT_FOUND as crates(), never None or a crash.
    assert isinstance(raises_capsa_error(capsule.latest), FileNotFoundError)


def test_deleted_store_root(tmp_path: Path) -> None:
    store = capsa.Store.init(tmp_path / "s")
    capsule = store.create_capsule("a")
    shutil.rmtree(tmp_path / "s")
    raises_capsa_error(store.capsules)
    raises_capsa_error(capsule.bump)
    raises_capsa_error(lambda: store.create_capsule("b"))
    raises_capsa_error(store.fsck)
    with pytest.raises(capsa.InvalidStoreError):
        capsa.Store.open(tmp_path / "s")


def test_closed_store_refuses_everything_reached_through_it(tmp_path: Path) -> None:
    store = capsa.Store.init(tmp_path / "s")
    capsule = store.create_capsule("a")
    crate = capsule.bump()
    store.close()
    store.close()  # twice is fine
    calls: list[Callable[[], Any]] = [
        store.capsules,
        lambda: store.capsule("a"),
        lambda: store.create_capsule("b"),
        store.fsck,
        capsule.bump,
        capsule.crates,
        capsule.latest,
        lambda: capsule.get(1),
        lambda: crate.metadata,
        crate.seal,
        lambda: crate.publish(tmp_path / "x"),
        crate.sequences,
    ]
    for call in calls:
        err = raises_capsa_error(call)
        assert err.code == "INVALID_ARGUMENT"
        assert "closed" in str(err)
    assert not (tmp_path / "s" / "b").exists()
    assert "closed" in repr(store)
    # Reopening gives a working store again.
    assert [c.id for c in capsa.Store.open(tmp_path / "s").capsules()] == ["a"]


def test_wrong_types_raise_type_errors(store: capsa.Store) -> None:
    capsule = store.create_capsule("a")
    bad: list[Callable[[], Any]] = [
        lambda: capsa.Store.open(42),  # type: ignore[arg-type]
        lambda: store.capsule(None),  # type: ignore[arg-type]
        lambda: capsule.bump(carry_over="scenes"),  # type: ignore[arg-type]
        lambda: capsule.get(1.5),  # type: ignore[arg-type]
        lambda: capsa.sequences_in(42),  # type: ignore[arg-type]
    ]
    for call in bad:
        with pytest.raises(TypeError):
            call()


def test_out_of_range_values(store: capsa.Store) -> None:
    capsule = store.create_capsule("a")
    with pytest.raises(capsa.InvalidVersionError):
        capsa.Version(0)
    with pytest.raises((OverflowError, TypeError)):
        capsa.Version(-1)
    with pytest.raises((OverflowError, TypeError)):
        capsule.get(2**70)
    with pytest.raises(capsa.InvalidArgumentError):
        capsule.bump(carry_over=["nope"])  # type: ignore[list-item]
    with pytest.raises(capsa.InvalidNameError):
        store.create_capsule("x" * 100_000)
    with pytest.raises(ValueError):
        store.create_capsule("a\0b")


def test_store_init_twice(tmp_path: Path) -> None:
    capsa.Store.init(tmp_path)
    with pytest.raises(FileExistsError):
        capsa.Store.init(tmp_path)
