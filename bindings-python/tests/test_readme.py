"""The Python example of the root README runs as written (in a temporary directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python example in the README's Python section"
    code = match.group(1).replace('"/tmp/show"', repr(str(tmp_path / "show")))
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "v002 v001" in out
    assert "NOT_FOUND 1" in out
    assert "Running [Override(\"DB_PASSWORD\", \"***\"" in out
    assert "hunter2" not in out
