"""The shared conformance scenarios (``tests/conformance/*.json``), run through the binding.

Same semantics as the Rust runner (``tests/src/conformance.rs``): each scenario gets a fresh
temporary directory and store (padding 3 unless a ``store.init`` step says otherwise); a step's
``expect`` keys must all be equal in the result (keys not given are not compared); ``error``
is the stable code string the call must raise; a step with neither must simply succeed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

import capsa

CONFORMANCE = Path(__file__).resolve().parents[2] / "tests" / "conformance"
LISTED_FRAMES = 1000


def _scenarios() -> list[Any]:
    out = []
    for file in sorted(CONFORMANCE.glob("*.json")):
        suite = json.loads(file.read_text(encoding="utf-8"))
        for scenario in suite["scenarios"]:
            out.append(pytest.param(scenario, id=f"{suite['topic']}: {scenario['name']}"))
    return out


class Ctx:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._store: capsa.Store | None = None

    @property
    def store(self) -> capsa.Store:
        if self._store is None:
            self._store = capsa.Store.init(self.root / "store")
        return self._store

    def crate(self, args: dict[str, Any]) -> capsa.Crate:
        return self.store.capsule(args["id"]).get(args["version"])


def _walk(root: Path) -> list[str]:
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(files)


def _seq_call(call: str, args: dict[str, Any]) -> dict[str, Any]:
    if call == "sequence.parse":
        s = capsa.Sequence.parse(args["pattern"])
        return {
            "head": s.head,
            "tail": s.tail,
            "padding": s.padding,
            "frames": str(s.frames),
            "count": len(s.frames),
        }
    if call == "sequence.format":
        return {"text": capsa.Sequence.parse(args["pattern"]).format(args["style"])}
    if call == "sequence.pattern":
        return {"text": capsa.Sequence.parse(args["pattern"]).pattern(args["style"])}
    if call == "sequence.missing":
        return {"frames": str(capsa.Sequence.parse(args["pattern"]).missing())}
    if call == "sequence.path":
        return {"path": capsa.Sequence.parse(args["pattern"]).path(args["frame"])}
    if call == "frameset.parse":
        fs = capsa.FrameSet.parse(args["spec"])
        frames = list(fs) if len(fs) <= LISTED_FRAMES else None
        return {"frames": frames, "text": str(fs), "count": len(fs)}
    if call == "sequences_in":
        return {"sequences": [s.format("hash") for s in capsa.sequences_in(args["names"])]}
    raise LookupError(call)


def _call(ctx: Ctx, call: str, args: dict[str, Any]) -> Any:
    if call == "id.parse":
        cid = capsa.CapsuleId.parse(args["value"])
        return {"id": str(cid), "kind": cid.kind}
    if call == "version.parse":
        v = capsa.Version.parse(args["value"])
        return {"number": v.number, "text": v.padded(args.get("padding", 3))}
    if call == "version.next":
        return {"text": capsa.Version.parse(args["value"]).next().padded(args.get("padding", 3))}
    if call == "version.compare":
        a, b = capsa.Version.parse(args["a"]), capsa.Version.parse(args["b"])
        return {"order": (a > b) - (a < b)}
    if call == "store.init":
        ctx._store = capsa.Store.init(ctx.root / "store", padding=args.get("padding", 3))
        return {}
    if call == "store.create_capsule":
        return {"id": ctx.store.create_capsule(args["id"]).id}
    if call == "store.capsules":
        return {"ids": [c.id for c in ctx.store.capsules()]}
    if call == "capsule.bump":
        crate = ctx.store.capsule(args["id"]).bump(
            comment=args.get("comment"),
            carry_over=args.get("carry_over", ()),
            created_by=args.get("created_by"),
        )
        return {"version": crate.version}
    if call == "capsule.crates":
        return {"versions": [c.version for c in ctx.store.capsule(args["id"]).crates()]}
    if call == "capsule.latest":
        latest = ctx.store.capsule(args["id"]).latest(published=args.get("published") is True)
        return {"version": latest.version if latest else None}
    if call == "file.write":
        path = ctx.root / args["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(args.get("text", ""), encoding="utf-8")
        return {}
    if call == "crate.publish":
        crate = ctx.crate(args)
        published = crate.publish(ctx.root / args["src"], args.get("dest"))
        return {"path": published.relative_to(crate.path).as_posix()}
    if call == "crate.seal":
        ctx.crate(args).seal()
        return {}
    if call == "crate.metadata":
        return ctx.crate(args).metadata
    if call == "crate.files":
        return {"files": _walk(ctx.crate(args).section(args["section"]))}
    return _seq_call(call, args)


def matches(expected: Any, actual: Any) -> bool:
    """Every key of ``expected`` is in ``actual`` with an equal value (recursively)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    # JSON equality: no bool/int confusion (True == 1 in Python, not in JSON).
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def run_scenario(scenario: dict[str, Any], root: Path) -> None:
    ctx = Ctx(root)
    for i, step in enumerate(scenario["steps"], 1):
        at = f"step {i} ({step['call']})"
        args = step.get("args") or {}
        expect, error = step.get("expect"), step.get("error")
        try:
            result = _call(ctx, step["call"], args)
        except capsa.CapsaError as e:
            assert error is not None, f"{at}: unexpected error {e.code} ({e})"
            assert e.code == error, f"{at}: got error {e.code} ({e}), expected {error}"
            continue
        assert error is None, f"{at}: got {result!r}, expected error {error}"
        if expect is not None:
            assert matches(expect, result), f"{at}: got {result!r}, expected {expect!r}"


@pytest.mark.parametrize("scenario", _scenarios())
def test_conformance(scenario: dict[str, Any], tmp_path: Path) -> None:
    run_scenario(scenario, tmp_path)


def test_every_suite_is_found() -> None:
    topics = {p.stem for p in CONFORMANCE.glob("*.json")}
    assert {"ids", "versions", "store", "seq"} <= topics


def test_the_runner_can_fail(tmp_path: Path) -> None:
    bad: list[dict[str, Any]] = [
        {"name": "wrong value", "steps": [{"call": "id.parse", "args": {"value": "abc"},
                                           "expect": {"kind": "uuid"}}]},
        {"name": "missing error", "steps": [{"call": "id.parse", "args": {"value": "abc"},
                                             "error": "INVALID_NAME"}]},
        {"name": "wrong code", "steps": [{"call": "id.parse", "args": {"value": ".."},
                                          "error": "NOT_FOUND"}]},
    ]
    check: Callable[[dict[str, Any]], None] = lambda s: run_scenario(s, tmp_path)  # noqa: E731
    for scenario in bad:
        with pytest.raises(AssertionError):
            check(scenario)
