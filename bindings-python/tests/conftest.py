"""Shared fixtures: a fresh store in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

import capsa

CAPSULE_ID = "656796239c1b981568180614"


@pytest.fixture
def store(tmp_path: Path) -> capsa.Store:
    return capsa.Store.init(tmp_path / "store")


@pytest.fixture
def capsule(store: capsa.Store) -> capsa.Capsule:
    return store.create_capsule(CAPSULE_ID)
