#!/usr/bin/env python3
"""Per-call cost of the Python binding, against fileseq from PyPI in the same run.

- ``capsule.latest()`` on a capsule with 200 crates (a stat or two plus the binding's
  conversion), and a trivial binding call (``Version(1)``) for the pure call overhead;
- ``capsa.sequences_in`` on 100,000 names (100 sequences of 1,000 frames, with gaps) against
  ``fileseq.findSequencesInList`` on the same list;
- Ctrl-C latency: how long a staging command held at the mock backend takes to raise
  ``KeyboardInterrupt`` after SIGINT (the test asserts only that it does, with a generous
  bound; the figure is here).

Run by ``make bench-python`` (which installs the wheel and fileseq into target/py-venv).
A benchmark, not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import _thread
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import capsa


def per_call(fn: Callable[[], object], min_time: float = 0.5) -> float:
    """Median seconds per call over a few rounds of at least `min_time` / 5 each."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time / 5:
            break
        n *= 2
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n)
    return statistics.median(rounds)


def names_100k() -> list[str]:
    names = []
    for s in range(100):
        frames = [f for f in range(1001, 2100) if f % 97 != 0][:1000]  # with gaps
        names += [f"shot{s:03d}/beauty_{s:03d}.{f:04d}.exr" for f in frames]
    return names


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def ctrl_c_latency(tmp: Path, runs: int = 20) -> float:
    """Median time from SIGINT to ``KeyboardInterrupt`` in a command held at the backend."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    backend = capsa.MockBackend()
    manager = capsa.StagingManager.open(tmp / "staging.db", backend, actor="bench")
    backend.hold("create")
    times = []
    for i in range(runs):
        sent: list[float] = []

        def interrupt(sent: list[float] = sent) -> None:
            sent.append(time.perf_counter())
            _thread.interrupt_main()

        timer = threading.Timer(0.05, interrupt)
        timer.start()
        try:
            manager.create(f"web{i}", "1.0.0")
        except KeyboardInterrupt:
            times.append(time.perf_counter() - sent[0])
        timer.join()
    backend.release("create")
    return statistics.median(times)


def main() -> None:
    print(f"capsa {capsa.__version__} (Python binding)")
    with tempfile.TemporaryDirectory() as tmp:
        store = capsa.Store.init(Path(tmp) / "store")
        capsule = store.create_capsule("bench")
        for _ in range(200):
            capsule.bump()
        t_latest = per_call(capsule.latest)
        t_pub = per_call(lambda: capsule.latest(published=True), min_time=0.3)
    t_trivial = per_call(lambda: capsa.Version(1))
    print(f"binding call overhead (Version(1))          {fmt(t_trivial)}")
    print(f"capsule.latest() (200 crates)               {fmt(t_latest)}")
    print(f"capsule.latest(published=True) (200, none)  {fmt(t_pub)}")

    with tempfile.TemporaryDirectory() as tmp:
        print(f"Ctrl-C during a held staging command         {fmt(ctrl_c_latency(Path(tmp)))}")

    names = names_100k()
    # Detection in names split to a flat list, as fileseq takes them.
    t_capsa = per_call(lambda: capsa.sequences_in(names), min_time=2.0)
    found = capsa.sequences_in(names)
    print(f"capsa.sequences_in, 100k names              {fmt(t_capsa)} ({len(found)} sequences)")
    try:
        import fileseq  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print("fileseq not installed: no comparison (make bench-python installs it)")
        return
    t0 = time.perf_counter()
    theirs = fileseq.findSequencesInList(names)
    t_fileseq = time.perf_counter() - t0
    if t_fileseq < 10:
        t_fileseq = per_call(
            lambda: fileseq.findSequencesInList(names), min_time=max(2.0, t_fileseq * 3)
        )
    from importlib.metadata import version as dist_version

    version = dist_version("fileseq")
    print(
        f"fileseq {version} findSequencesInList, 100k  {fmt(t_fileseq)} ({len(theirs)} sequences)"
    )
    print(f"speed-up: {t_fileseq / t_capsa:.1f}x")


if __name__ == "__main__":
    main()
