"""Exceptions: one CapsaError subclass per stable code, each also the matching builtin."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

import capsa
import capsa.exceptions

README = Path(__file__).resolve().parents[2] / "README.md"

BUILTINS: dict[str, type[BaseException]] = {
    "NOT_FOUND": FileNotFoundError,
    "ALREADY_EXISTS": FileExistsError,
    "INVALID_NAME": ValueError,
    "INVALID_VERSION": ValueError,
    "INVALID_SEQUENCE": ValueError,
    "INVALID_ARGUMENT": ValueError,
    "IO": OSError,
    "SEALED": PermissionError,
    "TIMEOUT": TimeoutError,
    "UNSAFE_PATH": PermissionError,
    "TOO_LARGE": ValueError,
}


def rust_codes() -> dict[str, int]:
    """The code table of the README, which documents core's ErrorCode (code → number)."""
    table = re.findall(r"`([A-Z_]+)` \| (\d+)", README.read_text(encoding="utf-8"))
    return {code: int(n) for code, n in table}


def test_one_class_per_code_with_code_and_number() -> None:
    codes = rust_codes()
    assert len(codes) >= 16
    for code, number in codes.items():
        cls = capsa.exceptions.error_class(code)
        assert issubclass(cls, capsa.CapsaError)
        assert cls.code == code
        assert cls.number == number
        assert cls.__module__ == "capsa"
        name = "".join(w.capitalize() for w in code.split("_")) + "Error"
        assert cls.__name__ == name
        assert getattr(capsa, name) is cls
        assert getattr(capsa.exceptions, name) is cls
        if code in BUILTINS:
            assert issubclass(cls, BUILTINS[code])


def test_unknown_code() -> None:
    with pytest.raises(ValueError):
        capsa.exceptions.error_class("NOPE")


def test_corrupt_archive_alias() -> None:
    assert capsa.CorruptArchiveError is capsa.CorruptError


def test_except_file_not_found_catches_a_missing_capsule(store: capsa.Store) -> None:
    try:
        store.capsule("missing-capsule")
    except FileNotFoundError as e:
        assert isinstance(e, capsa.NotFoundError)
        assert isinstance(e, capsa.CapsaError)
        assert e.code == "NOT_FOUND"
        assert e.number == 1
        assert "missing-capsule" in str(e)
    else:
        pytest.fail("no error")


def test_except_capsa_error_catches_every_error(store: capsa.Store, tmp_path: Path) -> None:
    store.create_capsule("a")
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: store.capsule("nope"), "NOT_FOUND"),
        (lambda: store.create_capsule("a"), "ALREADY_EXISTS"),
        (lambda: store.create_capsule("../x"), "INVALID_NAME"),
        (lambda: capsa.Version.parse("3"), "INVALID_VERSION"),
        (lambda: capsa.Sequence.parse("plate.exr"), "INVALID_SEQUENCE"),
        (lambda: capsa.Store.open(tmp_path), "INVALID_STORE"),
        (lambda: capsa.Store.init(tmp_path / "x", padding=0), "INVALID_ARGUMENT"),
        (lambda: capsa.Sequence.parse("a.#.exr").format("nope"), "INVALID_ARGUMENT"),  # type: ignore[arg-type]
    ]
    for call, code in calls:
        with pytest.raises(capsa.CapsaError) as info:
            call()
        assert info.value.code == code
        assert type(info.value) is capsa.exceptions.error_class(code)


def test_sealed_is_a_permission_error(capsule: capsa.Capsule) -> None:
    crate = capsule.bump()
    crate.seal()
    with pytest.raises(PermissionError):
        crate.set_comment("late")


def test_invalid_name_is_a_value_error(store: capsa.Store) -> None:
    with pytest.raises(ValueError, match="path separator"):
        store.create_capsule("a/b")
