"""The GIL is released around calls that touch the disk: two threads' calls overlap in time.

The switch interval is raised to an hour for these tests, so a thread gives up the GIL only
when it blocks, i.e. inside a call that releases it. Each thread records, in Python, the time
before and after each call. A timestamp of one thread that falls strictly inside a call of the
other thread can only have been taken while that call was running without the GIL. The
control test shows the same measurement finds no overlap for a call that keeps the GIL.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

import capsa

Interval = tuple[float, float]


@pytest.fixture(autouse=True)
def long_switch_interval() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(3600.0)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_together(a: Callable[[], object], b: Callable[[], object], n_a: int, n_b: int) -> int:
    """Run `a` n_a times in one thread and `b` n_b times in another; count overlaps."""
    spans: dict[str, list[Interval]] = {"a": [], "b": []}
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(name: str, call: Callable[[], object], n: int) -> None:
        try:
            start.wait()
            for _ in range(n):
                t0 = time.perf_counter()
                call()
                spans[name].append((t0, time.perf_counter()))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=worker, args=("a", a, n_a)),
        threading.Thread(target=worker, args=("b", b, n_b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    stamps_b = sorted(t for span in spans["b"] for t in span)
    stamps_a = sorted(t for span in spans["a"] for t in span)
    inside = sum(1 for s, e in spans["a"] for t in stamps_b if s < t < e)
    inside += sum(1 for s, e in spans["b"] for t in stamps_a if s < t < e)
    return inside


def test_bumps_and_sequence_scans_overlap(tmp_path: Path) -> None:
    store = capsa.Store.init(tmp_path / "store")
    capsule = store.create_capsule("busy")
    renders = tmp_path / "renders"
    renders.mkdir()
    for f in range(3000):
        (renders / f"plate.{f:04d}.exr").write_bytes(b"")
    overlaps = run_together(
        lambda: capsule.bump(comment="gil"),
        lambda: capsa.find_sequences(renders),
        n_a=150,
        n_b=150,
    )
    assert overlaps > 0
    assert len(capsule.crates()) == 150


def test_bumps_on_two_capsules_overlap(tmp_path: Path) -> None:
    store = capsa.Store.init(tmp_path / "store")
    a, b = store.create_capsule("a"), store.create_capsule("b")
    overlaps = run_together(lambda: a.bump(), lambda: b.bump(), n_a=200, n_b=200)
    assert overlaps > 0
    assert (len(a.crates()), len(b.crates())) == (200, 200)


def test_control_a_call_holding_the_gil_never_overlaps(tmp_path: Path) -> None:
    def hold_gil() -> None:
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass

    assert run_together(hold_gil, hold_gil, n_a=50, n_b=50) == 0


def test_an_archive_and_many_bumps_overlap(tmp_path: Path) -> None:
    store = capsa.Store.init(tmp_path / "store")
    big = store.create_capsule("big")
    crate = big.bump()
    block = os.urandom(1024 * 1024)
    for i in range(8):
        (crate.artifacts / f"plate.{i:04d}.exr").write_bytes(block)
    other = store.create_capsule("busy")
    dests = iter(tmp_path / f"big-{i}.zip" for i in range(100))
    overlaps = run_together(
        lambda: capsa.archive(big, next(dests)),
        lambda: other.bump(comment="while archiving"),
        n_a=2,
        n_b=200,
    )
    assert overlaps > 0
    assert len(other.crates()) == 200
