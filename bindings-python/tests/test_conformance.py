"""The shared conformance scenarios (``tests/conformance/*.json``), run through the binding.

Same semantics as the Rust runner (``tests/src/conformance.rs``): each scenario gets a fresh
temporary directory and store (padding 3 unless a ``store.init`` step says otherwise); a step's
``expect`` keys must all be equal in the result (keys not given are not compared); ``error``
is the stable code string the call must raise; a step with neither must simply succeed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import capsa

CONFORMANCE = Path(__file__).resolve().parents[2] / "tests" / "conformance"
LISTED_FRAMES = 1000
HELD_WAIT = 10.0  # seconds mock.wait_held waits for a held call


def _scenarios() -> list[Any]:
    out = []
    for file in sorted(CONFORMANCE.glob("*.json")):
        suite = json.loads(file.read_text(encoding="utf-8"))
        for scenario in suite["scenarios"]:
            out.append(pytest.param(scenario, id=f"{suite['topic']}: {scenario['name']}"))
    return out


class Started:
    """A staging command run on a thread of its own (``staging.start``), until ``staging.wait``."""

    def __init__(self, command: str, work: Callable[[], Any]) -> None:
        self.command = command
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self.result = work()
        except BaseException as e:  # reported by wait()
            self.error = e

    def wait(self) -> Any:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), f"the started {self.command} never finished"
        if self.error is not None:
            raise self.error
        return self.result


class Ctx:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._store: capsa.Store | None = None
        self._manager: capsa.StagingManager | None = None
        self.mock = capsa.MockBackend()
        self.started: dict[str, Started] = {}
        # Every result (JSON text) and error ("CODE: message") so far, for outputs.search.
        self.outputs: list[str] = []

    def open_manager(self, args: dict[str, Any]) -> None:
        self.mock = capsa.MockBackend(min_tag=args.get("min_tag"))
        options: dict[str, Any] = {}
        if "check_interval_ms" in args:
            options["check_interval"] = args["check_interval_ms"] / 1000
        if "retention_ms" in args:
            options["retention"] = args["retention_ms"] / 1000
        self._manager = capsa.StagingManager.open(
            self.root / "staging.db", self.mock, actor="conformance", **options
        )

    @property
    def manager(self) -> capsa.StagingManager:
        if self._manager is None:
            self.open_manager({})
        assert self._manager is not None
        return self._manager

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


# ---- files ----------------------------------------------------------------------------------


def _file_call(ctx: Ctx, call: str, args: dict[str, Any]) -> Any:
    path = ctx.root / args["path"]
    if call == "file.truncate":
        size = args["size"]
        length = path.stat().st_size
        keep = max(0, min(length, length + size if size < 0 else size))
        with open(path, "r+b") as f:
            f.truncate(keep)
        return {}
    if call == "file.flip_byte":
        data = bytearray(path.read_bytes())
        offset = args.get("offset", 0)
        if "find" in args:
            start = data.find(args["find"].encode())
            assert start >= 0, f"{args['find']!r} not in {path}"
            at = start + offset
        else:
            at = len(data) + offset if offset < 0 else offset
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        return {}
    if call == "file.copy":
        shutil.copyfile(path, ctx.root / args["dest"])
        return {}
    if call == "file.remove":
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        return {}
    if call == "file.read":
        return {"text": path.read_text(encoding="utf-8")}
    if call == "file.exists":
        return {"exists": path.exists()}
    raise LookupError(call)


# ---- archives -------------------------------------------------------------------------------


def _stub(stub: capsa.OfflineStub) -> dict[str, Any]:
    return {"capsule": stub.capsule, "files": stub.files}


def _archive_call(ctx: Ctx, call: str, args: dict[str, Any]) -> Any:
    if call == "archive.create":
        r = capsa.archive(
            ctx.store.capsule(args["id"]),
            ctx.root / args["dest"],
            policy=args.get("policy"),
            replace=args.get("replace") is True,
        )
        return {
            "capsule": r.capsule,
            "files": r.files,
            "dirs": r.dirs,
            "symlinks": r.symlinks,
            "deflated": r.deflated,
            "stored": r.stored,
            "zip64": r.zip64,
            "verified": r.verified,
            "skipped": r.skipped,
        }
    if call == "archive.verify":
        v = capsa.verify(ctx.root / args["path"])
        return {
            "capsule": v.capsule,
            "entries": v.entries,
            "files": v.files,
            "dirs": v.dirs,
            "symlinks": v.symlinks,
        }
    if call == "archive.restore":
        c = ctx.store.restore(ctx.root / args["path"], replace=args.get("replace") is True)
        return {"id": c.id}
    if call == "capsule.take_offline":
        return _stub(ctx.store.capsule(args["id"]).take_offline(ctx.root / args["archive"]))
    if call == "capsule.offline":
        capsule = ctx.store.capsule(args["id"])
        stub = capsule.offline_stub
        return {"offline": capsule.offline, "stub": _stub(stub) if stub else None}
    if call == "store.retrieve":
        return {"id": ctx.store.retrieve(args["id"]).id}
    raise LookupError(call)


# ---- stagings -------------------------------------------------------------------------------

COMMANDS = ("create", "update", "delete", "restore", "cleanup")


def _overrides(args: dict[str, Any]) -> list[capsa.Override] | None:
    if "overrides" not in args:
        return None
    out = []
    for o in args["overrides"]:
        visibility = o.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise capsa.InvalidArgumentError(f"{visibility!r} is not public or private")
        out.append(
            capsa.Override(
                o["key"], o["value"], scope=o.get("scope", "app"), private=visibility == "private"
            )
        )
    return out


def _staging(s: capsa.Staging) -> dict[str, Any]:
    return {
        "name": s.name,
        "tag": s.tag,
        "status": s.status.value,
        "reason": s.reason,
        "command_in_progress": s.command_in_progress,
        "overrides": [
            {
                "key": o.key,
                "value": o.value,
                "scope": o.scope,
                "visibility": "private" if o.private else "public",
            }
            for o in s.overrides
        ],
    }


def _event(e: capsa.Event) -> dict[str, Any]:
    if e.kind == "status_changed":
        return {
            "kind": e.kind,
            "name": e.name,
            "from": e.old_status.value if e.old_status else None,
            "to": e.new_status.value if e.new_status else None,
            "reason": e.reason,
        }
    return {
        "kind": e.kind,
        "name": e.name,
        "action": e.action,
        "outcome": e.outcome,
        "reason": e.reason,
    }


def _audit(a: capsa.AuditEntry) -> dict[str, Any]:
    return {
        "name": a.name,
        "action": a.action,
        "actor": a.actor,
        "tag": a.tag,
        "overrides": a.overrides,
        "outcome": a.outcome,
        "status_before": a.status_before.value if a.status_before else None,
        "status_after": a.status_after.value if a.status_after else None,
        "reason": a.reason,
    }


def _command(ctx: Ctx, command: str, args: dict[str, Any]) -> Callable[[], Any]:
    """The command as a call that runs it and gives its conformance result."""
    m, name = ctx.manager, args["name"]
    if command == "create":
        overrides = _overrides(args) or []
        return lambda: _staging(m.create(name, args.get("tag", ""), overrides))
    if command == "update":
        new = _overrides(args)
        return lambda: _staging(m.update(name, args.get("tag", ""), new))
    if command == "delete":
        return lambda: _staging(m.delete(name))
    if command == "restore":
        return lambda: _staging(m.restore(name))
    if command == "cleanup":

        def cleanup() -> dict[str, Any]:
            gone = m.cleanup(name)
            return {"staging": _staging(gone) if gone else None}

        return cleanup
    raise capsa.InvalidArgumentError(f"{command!r} is not a command")


def _raiser(error: BaseException) -> Callable[[], Any]:
    def work() -> Any:
        raise error

    return work


def _staging_call(ctx: Ctx, call: str, args: dict[str, Any]) -> Any:
    if call == "staging.open":
        ctx.open_manager(args)
        return {}
    m, mock = ctx.manager, ctx.mock
    if call in ("mock.push", "mock.set_default"):
        reply = mock.push if call == "mock.push" else mock.set_default
        reply(args["call"], args["outcome"], args.get("reason"))
        return {}
    if call == "mock.hold":
        mock.hold(args["call"])
        return {}
    if call == "mock.release":
        mock.release(args["call"])
        return {}
    if call == "mock.held":
        return {"held": mock.held(args["call"])}
    if call == "mock.wait_held":
        want, deadline = args.get("count", 1), time.monotonic() + HELD_WAIT
        while mock.held(args["call"]) < want and time.monotonic() < deadline:
            time.sleep(0.005)
        return {"held": mock.held(args["call"])}
    if call == "mock.calls":
        return {"calls": [{"call": c, "name": n} for c, n in mock.calls()]}
    if call == "mock.count":
        return {"count": mock.count(args["call"])}
    if call == "staging.start":
        command = args["command"]
        try:
            work = _command(ctx, command, args)
        except capsa.CapsaError as e:  # a bad argument is reported by staging.wait
            work = _raiser(e)
        ctx.started[args["name"]] = Started(command, work)
        return {}
    if call == "staging.wait":
        return ctx.started.pop(args["name"]).wait()
    if call == "staging.get":
        return _staging(m.get(args["name"]))
    if call == "staging.list":
        all_ = m.list()
        return {"names": [s.name for s in all_], "stagings": {s.name: _staging(s) for s in all_}}
    if call == "staging.log":
        entries = m.log(name=args.get("name"), limit=args.get("limit"))
        return {"entries": [_audit(a) for a in entries]}
    if call == "staging.events":
        events = [
            _event(e) for e in m.events_since(0) if args.get("name") in (None, e.name)
        ]
        last = args.get("last")
        return {"events": events[-last:] if last else events}
    if call == "staging.reconcile":
        r = m.reconcile()
        return {
            "checked": r.checked,
            "changed": r.changed,
            "transient_errors": r.transient_errors,
            "resolved_pending": r.resolved_pending,
            "failed_pending": r.failed_pending,
            "archive_problems": r.archive_problems,
        }
    if call == "staging.clean_archived":
        older = args.get("older_than_ms")
        return {"removed": m.clean_archived(None if older is None else older / 1000)}
    command = call.removeprefix("staging.") if call.startswith("staging.") else ""
    if command in COMMANDS:
        return _command(ctx, command, args)()
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
    if call.startswith("file."):
        return _file_call(ctx, call, args)
    if call == "outputs.search":
        return {"found": any(args["text"] in o for o in ctx.outputs)}
    if call.startswith(("staging.", "mock.")):
        return _staging_call(ctx, call, args)
    if call.startswith("archive.") or call in (
        "capsule.take_offline",
        "capsule.offline",
        "store.retrieve",
    ):
        return _archive_call(ctx, call, args)
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
            ctx.outputs.append(f"{e.code}: {e}")
            assert error is not None, f"{at}: unexpected error {e.code} ({e})"
            assert e.code == error, f"{at}: got error {e.code} ({e}), expected {error}"
            continue
        ctx.outputs.append(json.dumps(result, default=str))
        assert error is None, f"{at}: got {result!r}, expected error {error}"
        if expect is not None:
            assert matches(expect, result), f"{at}: got {result!r}, expected {expect!r}"


@pytest.mark.parametrize("scenario", _scenarios())
def test_conformance(scenario: dict[str, Any], tmp_path: Path) -> None:
    run_scenario(scenario, tmp_path)


def test_every_suite_is_found() -> None:
    topics = {p.stem for p in CONFORMANCE.glob("*.json")}
    assert {"ids", "versions", "store", "seq", "staging", "archive"} <= topics


def test_the_runner_can_fail(tmp_path: Path) -> None:
    bad: list[dict[str, Any]] = [
        {"name": "wrong value", "steps": [{"call": "id.parse", "args": {"value": "abc"},
                                           "expect": {"kind": "uuid"}}]},
        {"name": "missing error", "steps": [{"call": "id.parse", "args": {"value": "abc"},
                                             "error": "INVALID_NAME"}]},
        {"name": "wrong code", "steps": [{"call": "id.parse", "args": {"value": ".."},
                                          "error": "NOT_FOUND"}]},
        {"name": "wrong status", "steps": [{"call": "staging.create",
                                            "args": {"name": "web", "tag": "1"},
                                            "expect": {"status": "Failure"}}]},
        {"name": "a value shown", "steps": [
            {"call": "staging.create",
             "args": {"name": "web", "tag": "1", "overrides": [{"key": "K", "value": "shown"}]}},
            {"call": "outputs.search", "args": {"text": "shown"}, "expect": {"found": False}}]},
        {"name": "an intact archive", "steps": [
            {"call": "store.create_capsule", "args": {"id": "shot"}},
            {"call": "archive.create", "args": {"id": "shot", "dest": "a.zip"}},
            {"call": "archive.verify", "args": {"path": "a.zip"}, "error": "CORRUPT"}]},
    ]
    for i, scenario in enumerate(bad):
        root = tmp_path / str(i)
        root.mkdir()
        with pytest.raises(AssertionError):
            run_scenario(scenario, root)
    # The same steps with the right expectations pass, so the failures above are about values.
    good = {"name": "right", "steps": [
        {"call": "staging.create", "args": {"name": "web", "tag": "1"},
         "expect": {"status": "Running"}},
        {"call": "outputs.search", "args": {"text": "nowhere"}, "expect": {"found": False}}]}
    (tmp_path / "good").mkdir()
    run_scenario(good, tmp_path / "good")
