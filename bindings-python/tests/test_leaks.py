"""Repeated calls, errors and subscriptions do not grow the process (Linux: /proc)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import capsa


def rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_growth_over_many_calls(tmp_path: Path) -> None:
    store = capsa.Store.init(tmp_path / "s")
    capsule = store.create_capsule("a")
    capsule.bump()
    manager = capsa.StagingManager.open(tmp_path / "st.db", capsa.MockBackend())

    def loop(n: int) -> None:
        for _ in range(n):
            try:
                store.capsule("missing")
            except FileNotFoundError:
                pass
            capsule.latest()
            manager.subscribe(lambda e: None).unsubscribe()
            manager.subscribe().unsubscribe()
            capsa.sequences_in(["a.0001.exr", "a.0002.exr"])

    loop(2000)  # warm up caches and the allocator
    before = rss()
    loop(10_000)
    grown = rss() - before
    # 10,000 rounds of 5 calls: a leak of even 100 bytes a round would show as 1 MB+.
    assert grown < 4 * 1024 * 1024, f"grew by {grown} bytes"
