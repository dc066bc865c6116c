"""The examples under examples/python/ run as they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def test_version_up_runs_as_is() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "version_up.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "latest: v001" in done.stdout
    assert "bumped to v002" in done.stdout
    assert "scene carried over: sh010_v002.ma" in done.stdout
    assert "publishes/plate/plate.1001-1010#.exr" in done.stdout


def test_version_up_on_a_store(tmp_path: Path) -> None:
    import capsa

    store = capsa.Store.init(tmp_path / "show")
    store.create_capsule("sh010").bump()
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "version_up.py"), "--store", str(store.root),
         "--capsule", "sh010"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    latest = store.capsule("sh010").latest()
    assert latest is not None and latest.version == "v002"
    missing = subprocess.run(
        [sys.executable, str(EXAMPLES / "version_up.py"), "--store", str(store.root),
         "--capsule", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode != 0
    assert "capsule not found: nope" in missing.stderr
