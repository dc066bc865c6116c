"""The Ctrl-C tests hold however pytest is started, also as a background job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _sigint_ignored() -> None:
    # What a shell does for `make test &`: the job starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_tests_pass_when_sigint_starts_ignored(tmp_path: Path) -> None:
    tests = [
        f"{HERE / 'test_archive.py'}::test_keyboard_interrupt_cancels_a_long_archive",
        f"{HERE / 'test_staging.py'}::test_ctrl_c_during_a_slow_command_returns_at_once",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=_sigint_ignored,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout, run.stdout
