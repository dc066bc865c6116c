"""Shared fixtures: a fresh store in a temporary directory."""

from __future__ import annotations

import signal
from collections.abc import Iterator
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


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt for the test, even where it started ignored.

    A shell starts a background job (``make test &``, CI runners) with SIGINT ignored, and
    Python then leaves it ignored: ``_thread.interrupt_main()`` does nothing. Tests of Ctrl-C
    install the default handler they rely on, and put back what was there.
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
