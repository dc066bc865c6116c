#!/usr/bin/env python3
"""`make bench`: capsa against the tools people use today, one report with plots.

Generates every data set in a temporary directory, times each tool on the same input in the
same run (warm-up, then several repetitions), and writes ``target/bench/report.md``,
``target/bench/report.json`` and PNG plots next to them. ``QUICK=1`` (environment) scales
every size down; the code is the same.

Run through ``make bench`` (``benches/report/setup.sh`` installs the peers and builds capsa
first). Also the worker for the Python peers: ``run.py --worker KIND ARGS...`` times one
library in its own process, so a peer past the time cap can be stopped.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "bench"
BIN = ROOT / "target" / "release"
QUICK = os.environ.get("QUICK", "") not in ("", "0")

# Every size in one place: (full, quick).
SIZES: dict[str, Any] = {
    "reps": (5, 3),
    "seq_names": ([10_000, 100_000, 1_000_000], [10_000, 100_000]),
    "seq_cap_s": (120.0, 20.0),
    "store": ((200, 5, 5, 100), (20, 5, 5, 100)),  # capsules, crates, layers, frames
    "bump_existing": ([10, 1_000, 10_000], [10, 1_000, 10_000]),
    "bump_reps": (50, 20),
    "race": ((8, 100), (4, 50)),  # processes, bumps each
    "archive": ((200, 8 << 20, 2000), (16, 8 << 20, 200)),  # big files, their bytes, small files
    "staging": ((1000, 5), (200, 3)),  # stagings, repetitions
}


def size(key: str) -> Any:
    full, quick = SIZES[key]
    return quick if QUICK else full


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# Results


class Report:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.notes: dict[str, list[str]] = {}

    def add(
        self,
        comp: str,
        case: str,
        tool: str,
        times: list[float] | None,
        *,
        capsa: bool = False,
        vs: list[str] | None = None,
        status: str = "ok",
        note: str = "",
        x: float | None = None,
        unit: str = "s",
    ) -> None:
        row: dict[str, Any] = {
            "comparison": comp,
            "case": case,
            "tool": tool,
            "capsa": capsa,
            "vs": vs or [],
            "status": status,
            "note": note,
            "x": x,
            "unit": unit,
            "times": times or [],
        }
        if times:
            row.update(
                median=statistics.median(times), min=min(times), max=max(times), reps=len(times)
            )
        self.rows.append(row)
        shown = (
            (f"{row['median']:,.0f} /s" if unit == "/s" else fmt(row["median"]))
            if times
            else status
        )
        log(f"{comp} | {case} | {tool}: {shown} {note}")

    def find(self, comp: str, case: str, tool: str) -> dict[str, Any] | None:
        for r in self.rows:
            if (r["comparison"], r["case"], r["tool"]) == (comp, case, tool):
                return r
        return None

    def note(self, comp: str, text: str) -> None:
        self.notes.setdefault(comp, []).append(text)


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def ratios(report: Report) -> list[dict[str, Any]]:
    """Peer median / capsa median, pair by pair (same comparison, same case): > 1 means
    capsa is faster. A peer stopped at the cap gives a lower bound."""
    out = []
    for r in report.rows:
        for ref_tool in r["vs"]:
            ref = report.find(r["comparison"], r["case"], ref_tool)
            if not ref or "median" not in ref:
                continue
            if r["status"] == "cap":
                value, bound = r["cap_s"] / ref["median"], ">"
            elif "median" in r:
                value, bound = r["median"] / ref["median"], ""
            else:
                continue
            out.append(
                {
                    "comparison": r["comparison"],
                    "case": r["case"],
                    "capsa": ref_tool,
                    "peer": r["tool"],
                    "ratio": value,
                    "bound": bound,
                }
            )
    return out


# ---------------------------------------------------------------------------------------
# Timing


def time_cmd(
    argv: list[str],
    reps: int,
    *,
    warmup: int = 1,
    cwd: Path | None = None,
    before: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> list[float]:
    """Wall-clock seconds of `argv` (output discarded), `warmup` runs then `reps` timed runs;
    `before` runs untimed before each (to remove the previous output)."""
    times: list[float] = []
    runs = warmup + reps
    i = 0
    while i < runs:
        if before:
            before()
        os.sync()  # what earlier steps wrote is not this run's to flush
        t0 = time.perf_counter()
        subprocess.run(
            argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, env=env
        )
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
        elif i == warmup - 1:
            runs = warmup + fewer_reps(reps, dt)
        i += 1
    return times


LONG_RUN_S = 15.0


def fewer_reps(reps: int, warmup_s: float) -> int:
    """Timed runs after a warm-up of `warmup_s`: at most 3 when one run is long (a peer that
    takes a minute per run says what it needs to in 3), so a full run stays within the hour."""
    return min(reps, 3) if warmup_s > LONG_RUN_S else reps


def capped_worker(args: list[str], cap: float) -> tuple[str, list[float], dict[str, Any]]:
    """Run `run.py --worker ARGS` (one JSON line per call: warm-up, then timed runs). Stopped
    when any call takes longer than `cap` seconds: status "cap"."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    times: list[float] = []
    info: dict[str, Any] = {}
    while True:
        try:
            line = lines.get(timeout=cap)
        except queue.Empty:
            proc.kill()
            proc.wait()
            return "cap", times, info
        if line is None:
            break
        msg = json.loads(line)
        if "t" in msg:
            times.append(msg["t"])
        else:
            info.update(msg)
    if proc.wait() != 0:
        return "error", times, info
    return "ok", times, info


def rust_json(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(BIN / "capsa_bench"), *args], stdout=subprocess.PIPE, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


# ---------------------------------------------------------------------------------------
# Workers (in their own process)


def names(n: int) -> list[str]:
    """`n` names: sequences of 1,000 frames (a gap every 97 frames) in shot directories."""
    out: list[str] = []
    s = 0
    while len(out) < n:
        frames = [f for f in range(1001, 2200) if f % 97 != 0][:1000]
        out += [f"shot{s:04d}/beauty_{s:04d}.{f:04d}.exr" for f in frames]
        s += 1
    return out[:n]


def worker(kind: str, args: list[str]) -> None:
    def emit(**kw: Any) -> None:
        print(json.dumps(kw), flush=True)

    if kind in ("capsa", "fileseq", "pyseq", "clique"):
        path, reps = args[0], int(args[1])
        items = Path(path).read_text().splitlines()
        if kind == "capsa":
            import capsa

            fn: Callable[[], int] = lambda: len(capsa.sequences_in(items))  # noqa: E731
        elif kind == "fileseq":
            import fileseq

            fn = lambda: len(fileseq.findSequencesInList(items))  # noqa: E731
        elif kind == "pyseq":
            import pyseq

            fn = lambda: len(pyseq.get_sequences(items))  # noqa: E731
        else:
            import clique

            fn = lambda: len(clique.assemble(items)[0])  # noqa: E731
        run_calls(fn, reps, emit)
    elif kind == "walk":
        import fileseq

        root, reps = args[0], int(args[1])

        def walk() -> int:
            found = 0
            for _d, dirs, files in os.walk(root):
                dirs[:] = [x for x in dirs if not x.startswith(".")]
                found += len(fileseq.findSequencesInList(files))
            return found

        run_calls(walk, reps, emit)
    elif kind in ("bump-scan", "bump-scan-fsync"):
        capsule, reps = Path(args[0]), int(args[1])
        for i in range(1 + reps):
            t0 = time.perf_counter()
            path = scan_bump(capsule, durable=kind == "bump-scan-fsync")
            dt = time.perf_counter() - t0
            shutil.rmtree(path)
            if i == 0:
                emit(warmup=dt)
            else:
                emit(t=dt)
    elif kind == "race-scan":
        capsule, count = Path(args[0]), int(args[1])
        time.sleep(max(0.0, float(args[2]) - time.time()))  # start together
        for _ in range(count):
            print(scan_bump(capsule).name, flush=True)
    else:
        raise SystemExit(f"unknown worker {kind}")


def run_calls(fn: Callable[[], int], reps: int, emit: Callable[..., None]) -> None:
    t0 = time.perf_counter()
    found = fn()
    warmup = time.perf_counter() - t0
    emit(warmup=warmup, found=found)
    for _ in range(fewer_reps(reps, warmup)):
        t0 = time.perf_counter()
        fn()
        emit(t=time.perf_counter() - t0)


def scan_bump(capsule: Path, durable: bool = False) -> Path:
    """What pipeline tools do: list the versions, take max + 1, create it (a directory that
    already exists is fine), its sections and a metadata file (`durable`: fsync'd, as capsa
    does)."""
    top = 0
    for name in os.listdir(capsule):
        if name[:1] == "v" and name[1:].isdigit():
            top = max(top, int(name[1:]))
    path = capsule / f"v{top + 1:03d}"
    path.mkdir(exist_ok=True)
    for section in ("artifacts", "publishes", "scenes"):
        (path / section).mkdir(exist_ok=True)
    with open(path / "metadata.json", "w") as f:
        f.write(json.dumps({"version": top + 1, "user": "bench"}))
        if durable:
            f.flush()
            os.fsync(f.fileno())
    return path


# ---------------------------------------------------------------------------------------
# The comparisons


def bench_seq(rep: Report, work: Path) -> None:
    comp = "1. sequence detection"
    reps = size("reps")
    cap = size("seq_cap_s")
    for n in size("seq_names"):
        case = f"{n:,} names"
        f = work / f"names-{n}.txt"
        f.write_text("\n".join(names(n)) + "\n")
        r = rust_json("seq", str(f), "1", str(reps))
        rep.add(
            comp,
            case,
            "capsa (Rust)",
            r["times"],
            capsa=True,
            x=n,
            note=f"{r['sequences']} sequences",
        )
        for kind, tool in [
            ("capsa", "capsa (Python)"),
            ("fileseq", "fileseq findSequencesInList"),
            ("pyseq", "pyseq get_sequences"),
            ("clique", "clique assemble"),
        ]:
            status, times, info = capped_worker([kind, str(f), str(reps)], cap)
            is_capsa = kind == "capsa"
            vs = [] if is_capsa else ["capsa (Rust)", "capsa (Python)"]
            note = f"{info['found']} sequences" if "found" in info else ""
            if status == "cap":
                note = f"stopped after {cap:.0f} s"
            rep.add(
                comp,
                case,
                tool,
                times if status == "ok" else None,
                capsa=is_capsa,
                vs=vs,
                status=status,
                note=note,
                x=n,
            )
            if status == "cap":
                rep.rows[-1]["cap_s"] = cap
        f.unlink()
    rep.note(
        comp,
        f"Names: sequences of 1,000 frames with a gap every 97 frames, in "
        f"`shotNNNN/` directories. Time cap per call: {cap:.0f} s "
        f"(a peer past it is stopped and reported as > cap).",
    )


def bench_store(rep: Report, work: Path) -> None:
    comp = "2. store scan"
    capsules, crates, layers, frames = size("store")
    store = work / "store"
    t0 = time.perf_counter()
    files = rust_json(
        "store-fixture", str(store), str(capsules), str(crates), str(layers), str(frames)
    )["files"]
    log(f"store fixture: {files:,} files in {time.perf_counter() - t0:.1f} s")
    case = f"{capsules} capsules x {crates} crates, {files:,} files"
    reps = max(size("reps"), 5)  # quick and noisy: a few more runs
    subprocess.run(["find", str(store), "-type", "f"], stdout=subprocess.DEVNULL, check=True)
    capsa_cmd = [str(BIN / "capsa"), "--store", str(store), "seq", "--all"]
    find_cmd = ["find", str(store), "-type", "f"]
    # Interleaved runs (capsa, find, capsa, find...): on a shared machine, load comes and goes
    # and should fall on both alike.
    capsa_t: list[float] = []
    find_t: list[float] = []
    for _ in range(reps):
        capsa_t += time_cmd(capsa_cmd, 1)
        find_t += time_cmd(find_cmd, 1)
    rep.add(comp, case, "capsa seq --all", capsa_t, capsa=True)
    rep.add(comp, case, "find -type f", find_t, vs=["capsa seq --all"])
    status, times, info = capped_worker(["walk", str(store), str(reps)], 600)
    rep.add(
        comp,
        case,
        "os.walk + fileseq",
        times if status == "ok" else None,
        vs=["capsa seq --all"],
        status=status,
        note=f"{info.get('found', '?')} sequences",
    )
    rep.note(
        comp,
        f"{capsules} capsules x {crates} crates x {layers} sequences of {frames} "
        f"frames (a gap every 97), empty files, page cache warm. capsa lists every "
        f"crate's sequences (`capsa seq --all`, output to /dev/null); `find` only "
        f"lists the files. Profile (perf record / perf stat on `capsa seq --all`): both read "
        f"the same directories; capsa's extra CPU is parsing every name into sequences "
        f"(hashing, sorting) and one allocation per entry, plus a larger binary to start; on "
        f"2 shared cores its parallel directory reads gain little. At this size the ratio "
        f"moves with the machine's load from run to run.",
    )


def bench_bump(rep: Report, work: Path) -> None:
    comp = "3. bump"
    reps = size("bump_reps")
    for existing in size("bump_existing"):
        case = f"{existing:,} crates"
        d = work / "bump"  # one capsule, grown from size to size
        r = rust_json("bump", str(d), str(existing), "1", str(reps))
        rep.add(comp, case, "capsa bump", r["times"], capsa=True, x=existing)
        for kind, tool in [
            ("bump-scan", "scan + max+1 (Python)"),
            ("bump-scan-fsync", "scan + max+1 + fsync (Python)"),
        ]:
            status, times, _ = capped_worker([kind, r["capsule_dir"], str(reps)], 300)
            rep.add(
                comp,
                case,
                tool,
                times if status == "ok" else None,
                vs=["capsa bump"],
                status=status,
                x=existing,
            )
    procs, each = size("race")
    case = f"race: {procs} processes x {each} bumps"
    # capsa
    store = work / "race-store"
    subprocess.run(
        [str(BIN / "capsa"), "--store", str(store), "init"], check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        [str(BIN / "capsa"), "--store", str(store), "capsule", "create", "race"],
        check=True,
        stdout=subprocess.DEVNULL,
    )

    def race(argv: list[str]) -> tuple[list[str], float]:
        # Every process waits for the same start time (after all of them have started up),
        # so they really bump at once; the time is from that start to the last one's end.
        start = time.time() + 2.0
        argv = [*argv, f"{start:.6f}"]
        ps = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
        got = []
        for p in ps:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"race worker failed: {argv}")
            got += out.split()
        return got, time.time() - start

    got, dt = race([str(BIN / "capsa_bench"), "bump-loop", str(store), "race", str(each)])
    dups = len(got) - len(set(got))
    exact = sorted(int(v) for v in got) == list(range(1, procs * each + 1))
    rep.add(
        comp,
        case,
        "capsa bump",
        [dt],
        capsa=True,
        note=f"{dups} duplicate versions; versions 1..{procs * each} exactly: {exact}",
    )
    rep.rows[-1]["duplicates"] = dups
    peer_dir = work / "race-scan"
    peer_dir.mkdir()
    got, dt = race(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "race-scan",
            str(peer_dir),
            str(each),
        ]
    )
    pdups = len(got) - len(set(got))
    rep.add(
        comp,
        case,
        "scan + max+1 (Python)",
        [dt],
        vs=["capsa bump"],
        note=f"{pdups} duplicate versions (two processes handed the same crate)",
    )
    rep.rows[-1]["duplicates"] = pdups
    rep.note(
        comp,
        f"One bump, timed alone, the capsule put back to exactly N crates between "
        f"runs ({reps} runs). The Python peer lists the capsule directory, takes "
        f"max + 1, `mkdir(exist_ok=True)` with three sections and a metadata file (the "
        f"`+ fsync` row also fsyncs it). capsa writes its metadata durably (temp "
        f"file, fsync, rename) and its version hint: on a small capsule that fsync "
        f"is most of its cost, as the profile of `capsa_bench bump-loop` shows "
        f"(perf stat: a fraction of a CPU used, the rest waiting on the disk). "
        f"Race: {procs} processes at once, {each} bumps each; time is for all of "
        f"them.",
    )


def bench_archive(rep: Report, work: Path) -> None:
    comp = "4. archive"
    n_big, big_bytes, n_small = size("archive")
    reps = size("reps")
    src = work / "arch"
    subprocess.run(
        [
            str(BIN / "archive_fixture"),
            str(src / "store"),
            "bench",
            "--noise",
            str(n_big),
            str(big_bytes),
            "--text",
            str(n_small),
            "4096",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cwd = src / "store"
    total = sum(p.stat().st_size for p in (cwd / "bench").rglob("*") if p.is_file())
    subprocess.run(["tar", "-cf", "/dev/null", "bench"], cwd=cwd, check=True)
    capsa = str(BIN / "capsa")
    seven = shutil.which("7z") or shutil.which("7zz") or "7z"

    def rm(*paths: Path) -> Callable[[], None]:
        def go() -> None:
            for p in paths:
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()

        return go

    z = {k: work / f"{k}.zip" for k in ("cs", "cd", "z0", "z6", "7z", "ps", "pd")}
    pyzip = (
        "import os, sys, zipfile\n"
        "m = zipfile.ZIP_STORED if sys.argv[1] == 's' else zipfile.ZIP_DEFLATED\n"
        "with zipfile.ZipFile(sys.argv[2], 'w', m, compresslevel=6) as z:\n"
        "    for d, dirs, files in os.walk(sys.argv[3]):\n"
        "        dirs.sort()\n"
        "        z.write(d)\n"
        "        for f in sorted(files):\n"
        "            z.write(os.path.join(d, f))\n"
    )
    ref = {"archive, store": "capsa archive --policy store",
           "archive, deflate": "capsa archive --policy deflate"}  # fmt: skip
    tar = work / "t.tar"
    runs = [  # case, tool, command, what it writes
        ("archive, store", ref["archive, store"],
         [capsa, "--store", ".", "archive", "bench", "-o", str(z["cs"]), "--policy", "store"],
         z["cs"]),
        ("archive, store", "capsa archive --policy store --no-verify",
         [capsa, "--store", ".", "archive", "bench", "-o", str(z["cs"]), "--policy", "store",
          "--no-verify"], z["cs"]),
        ("archive, store", "zip -0 -r", ["zip", "-q", "-0", "-r", str(z["z0"]), "bench"], z["z0"]),
        ("archive, store", "Python zipfile (stored)",
         [sys.executable, "-c", pyzip, "s", str(z["ps"]), "bench"], z["ps"]),
        ("archive, store", "tar -cf", ["tar", "-cf", str(tar), "bench"], tar),
        ("archive, deflate", ref["archive, deflate"],
         [capsa, "--store", ".", "archive", "bench", "-o", str(z["cd"]), "--policy", "deflate"],
         z["cd"]),
        ("archive, deflate", "zip -6 -r", ["zip", "-q", "-6", "-r", str(z["z6"]), "bench"],
         z["z6"]),
        ("archive, deflate", "7z a -tzip", [seven, "a", "-tzip", "-bd", str(z["7z"]), "bench"],
         z["7z"]),
        ("archive, deflate", "Python zipfile (deflated)",
         [sys.executable, "-c", pyzip, "d", str(z["pd"]), "bench"], z["pd"]),
    ]  # fmt: skip
    for case, tool, argv, out in runs:
        is_capsa = tool.startswith("capsa")
        times = time_cmd(argv, reps, cwd=cwd, before=rm(out))
        rep.add(comp, case, tool, times, capsa=is_capsa, vs=[] if is_capsa else [ref[case]],
                note=f"{out.stat().st_size / total:.3f} of the input size")  # fmt: skip
    for label, zipf in (("verify (deflated zip)", z["cd"]), ("verify (stored zip)", z["cs"])):
        rep.add(
            comp, label, "capsa verify", time_cmd([capsa, "verify", str(zipf)], reps), capsa=True
        )
        rep.add(
            comp,
            label,
            "unzip -t",
            time_cmd(["unzip", "-tq", str(zipf)], reps),
            vs=["capsa verify"],
        )
    dest = work / "restore"
    subprocess.run(
        [str(BIN / "archive_fixture"), str(dest / "store"), "placeholder"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rep.add(
        comp,
        "restore (deflated zip)",
        "capsa restore",
        time_cmd(
            [capsa, "--store", str(dest / "store"), "restore", str(z["cd"])],
            reps,
            before=rm(dest / "store" / "bench"),
        ),
        capsa=True,
    )
    rep.add(
        comp,
        "restore (deflated zip)",
        "unzip",
        time_cmd(["unzip", "-q", str(z["cd"]), "-d", str(dest / "x")], reps, before=rm(dest / "x")),
        vs=["capsa restore"],
    )
    rep.note(
        comp,
        f"One capsule: {n_big} incompressible files of {big_bytes >> 20} MiB plus "
        f"{n_small} text files of 4 KiB ({total / 1e6:,.0f} MB), page cache warm. "
        f"capsa's archive time includes its own verify pass of the written zip (the "
        f"`--no-verify` row leaves it out) and an fsync of the zip before it is renamed into "
        f"place; zip, 7z, tar and Python `zipfile` neither verify nor fsync. That is why tar "
        f"and Python's stored zip can be faster than capsa on a small capsule held in the page "
        f"cache: strace -T shows the fsync alone taking tens of milliseconds on this disk. "
        f"7z: its default zip level (deflate, -mx5).",
    )
    rm(src, dest, *z.values())()


def bench_staging(rep: Report, work: Path) -> None:
    comp = "5. staging"
    count, reps = size("staging")
    d = work / "staging"
    d.mkdir()
    r = rust_json("staging", str(d), str(count), str(reps))
    for phase, times in r["phases"].items():
        rate = [count / t for t in times]
        rep.add(comp, f"{count} stagings", f"{phase} (commands/s)", rate, capsa=True, unit="/s")
    rep.note(
        comp,
        f"SQLite state store, mock backend: {count} stagings created, updated, "
        f"deleted (archived) and restored, one command at a time, waiting for each; "
        f"{reps} runs on a fresh database each. Figures are commands per second.",
    )


# ---------------------------------------------------------------------------------------
# Report files


TARGETS = [
    # comparison, case (None: the largest/first that exists), capsa tool, peer, bound, label
    (
        "1. sequence detection",
        "100,000 names",
        "capsa (Python)",
        "fileseq findSequencesInList",
        30.0,
        "sequence detection from Python ≥ 30× fileseq at 100k names",
    ),
    (
        "2. store scan",
        None,
        "capsa seq --all",
        "find -type f",
        1 / 1.5,
        "store scan within 1.5× of `find`",
    ),
    (
        "4. archive",
        "archive, store",
        "capsa archive --policy store",
        "zip -0 -r",
        1.5,
        "archive store mode ≥ 1.5× `zip -0 -r`",
    ),
    (
        "4. archive",
        "archive, deflate",
        "capsa archive --policy deflate",
        "zip -6 -r",
        1.8,
        "deflate ≥ 1.8× `zip -6 -r`",
    ),
    (
        "4. archive",
        "verify (deflated zip)",
        "capsa verify",
        "unzip -t",
        1.5,
        "verify ≥ 1.5× `unzip -t` (deflated zip)",
    ),
    (
        "4. archive",
        "verify (stored zip)",
        "capsa verify",
        "unzip -t",
        1.5,
        "verify ≥ 1.5× `unzip -t` (stored zip)",
    ),
]


def targets(rep: Report, rat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for comp, case, tool, peer, bound, label in TARGETS:
        hit = [
            r
            for r in rat
            if r["comparison"] == comp
            and r["capsa"] == tool
            and r["peer"] == peer
            and (case is None or r["case"] == case)
        ]
        if not hit:
            out.append({"target": label, "figure": "not measured", "met": None})
            continue
        r = hit[-1]
        figure = f"{r['bound']}{r['ratio']:.2f}×"
        if bound < 1:  # "within N× of the peer": capsa's time over the peer's
            figure = f"capsa takes {1 / r['ratio']:.2f}× the peer's time"
        out.append({"target": label, "figure": figure, "met": r["ratio"] >= bound})
    # Bump flat: 10,000 vs 10 within 1.5x, and the scan peer grows.
    sizes = [r for r in rep.rows if r["comparison"] == "3. bump" and r["x"] is not None]
    capsa_rows = sorted((r for r in sizes if r["capsa"] and "median" in r), key=lambda r: r["x"])
    peer_rows = sorted(
        (r for r in sizes if r["tool"] == "scan + max+1 (Python)" and "median" in r),
        key=lambda r: r["x"],
    )
    if len(capsa_rows) >= 2 and len(peer_rows) >= 2:
        g = capsa_rows[-1]["median"] / capsa_rows[0]["median"]
        pg = peer_rows[-1]["median"] / peer_rows[0]["median"]
        out.append(
            {
                "target": f"bump flat: {capsa_rows[-1]['x']:,} vs {capsa_rows[0]['x']:,} crates "
                f"within 1.5×, while the scan-based peer grows",
                "figure": f"capsa {g:.2f}×, peer {pg:.2f}×",
                "met": g <= 1.5 and pg > g,
            }
        )
    race = [r for r in rep.rows if r["comparison"] == "3. bump" and "duplicates" in r]
    if race:
        c = next((r["duplicates"] for r in race if r["capsa"]), None)
        p = next((r["duplicates"] for r in race if not r["capsa"]), None)
        out.append(
            {
                "target": "concurrent bumps: no duplicates from capsa (the scan peer's counted)",
                "figure": f"capsa {c}, peer {p}",
                "met": c == 0,
            }
        )
    return out


def machine() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in read("/proc/cpuinfo").splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (ln.split()[1] for ln in read("/proc/meminfo").splitlines() if ln.startswith("MemTotal")),
        "0",
    )
    osname = next(
        (
            ln.split("=", 1)[1].strip('"')
            for ln in read("/etc/os-release").splitlines()
            if ln.startswith("PRETTY_NAME")
        ),
        platform.system(),
    )

    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
            ).stdout.strip()
        except OSError:
            return ""

    fs = cmd("findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", tempfile.gettempdir())
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / (1 << 20), 1),
        "os": osname,
        "kernel": platform.release(),
        "tmp_filesystem": fs,
        "python": platform.python_version(),
        "rustc": cmd("rustc", "--version"),
        "commit": cmd("git", "rev-parse", "--short", "HEAD"),
        "dirty": bool(cmd("git", "status", "--porcelain", "--untracked-files=no")),
    }


def cell(r: dict[str, Any], key: str) -> str:
    if key not in r:
        return "> cap" if r["status"] == "cap" else r["status"]
    v = r[key]
    return f"{v:,.0f} /s" if r["unit"] == "/s" else fmt(v)


def targets_md(rows: list[dict[str, Any]]) -> list[str]:
    """The targets as a Markdown table (also used for README.md by readme.py)."""
    out = ["| target | figure | met |", "| --- | --- | --- |"]
    for t in rows:
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        out.append(f"| {t['target']} | {t['figure']} | {met} |")
    return out


def write_md(data: dict[str, Any], path: Path) -> None:
    m = data["machine"]
    lines = [
        "# capsa benchmark report",
        "",
        f"{'Quick run (`make bench QUICK=1`)' if data['quick'] else 'Full run (`make bench`)'}"
        f", {data['date']}, commit {m['commit']}{' (uncommitted changes)' if m['dirty'] else ''}"
        f", {data['duration_s']:.0f} s in all.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']} "
        f"(kernel {m['kernel']}), temporary files on {m['tmp_filesystem']}; "
        f"{m['rustc']}, Python {m['python']}. Load average at the start "
        f"{data['load'][0]:.1f}, at the end {data['load'][1]:.1f}.",
        "",
        "Ratios are the peer's median over capsa's median on the same input in the same run: "
        "above 1, capsa is faster.",
        "",
        "## Targets",
        "",
        *targets_md(data["targets"]),
    ]
    comps: list[str] = []
    for r in data["rows"]:
        if r["comparison"] not in comps:
            comps.append(r["comparison"])
    for comp in comps:
        lines += ["", f"## {comp}", ""]
        lines += [f"{n}" for n in data["notes"].get(comp, [])]
        lines += [
            "",
            "| case | tool | median | min | max | runs | capsa is faster by | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in data["rows"]:
            if r["comparison"] != comp:
                continue
            rs = [
                x
                for x in data["ratios"]
                if x["comparison"] == comp and x["case"] == r["case"] and x["peer"] == r["tool"]
            ]
            ratio = ", ".join(f"{x['bound']}{x['ratio']:.2f}× (vs {x['capsa']})" for x in rs)
            tool = f"**{r['tool']}**" if r["capsa"] else r["tool"]
            lines.append(
                f"| {r['case']} | {tool} | {cell(r, 'median')} | {cell(r, 'min')} | "
                f"{cell(r, 'max')} | {r.get('reps', 0)} | {ratio} | {r['note']} |"
            )
    lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in data["plots"]), ""]
    path.write_text("\n".join(lines))


def plots(data: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    made = []
    comps: list[str] = []
    for r in data["rows"]:
        if r["comparison"] not in comps:
            comps.append(r["comparison"])
    for comp in comps:
        rows = [r for r in data["rows"] if r["comparison"] == comp]
        fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.4))
        labels, med, lo, hi, colors = [], [], [], [], []
        for r in reversed(rows):
            labels.append(f"{r['case']}: {r['tool']}")
            if "median" in r:
                med.append(r["median"])
                lo.append(r["median"] - r["min"])
                hi.append(r["max"] - r["median"])
            else:
                med.append(r.get("cap_s", 0))
                lo.append(0)
                hi.append(0)
                labels[-1] += " (> cap)"
            colors.append("#d95f02" if r["capsa"] else "#7570b3")
        ax.barh(range(len(rows)), med, xerr=[lo, hi], color=colors, capsize=2)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=8)
        unit = rows[0]["unit"]
        if unit == "/s":
            ax.set_xlabel("commands per second (median, min–max)")
        else:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("seconds, log scale (median, min–max); shorter is faster")
        for i, r in enumerate(reversed(rows)):
            label = cell(r, "median")
            ax.text(med[i] + hi[i], i, f"  {label}", va="center", fontsize=7)
        ax.margins(x=0.15)
        ax.set_title(f"{comp} (orange: capsa)")
        fig.tight_layout()
        name = f"{comp.split('.')[0]}-{comp.split('. ')[1].replace(' ', '-')}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append(name)
    for comp, xlabel, name in [
        ("1. sequence detection", "names", "scaling-sequence-detection.png"),
        ("3. bump", "existing crates", "scaling-bump.png"),
    ]:
        rows = [r for r in data["rows"] if r["comparison"] == comp and r["x"] is not None]
        tools: list[str] = []
        for r in rows:
            if r["tool"] not in tools:
                tools.append(r["tool"])
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for tool in tools:
            pts = [(r["x"], r["median"]) for r in rows if r["tool"] == tool and "median" in r]
            if not pts:
                continue
            capsa_tool = any(r["capsa"] for r in rows if r["tool"] == tool)
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="o",
                label=tool,
                linewidth=2.5 if capsa_tool else 1.5,
                linestyle="-" if capsa_tool else "--",
            )
            capped = [r for r in rows if r["tool"] == tool and r["status"] == "cap"]
            for r in capped:  # stopped at the cap: an open marker at the cap, labelled
                ax.plot([r["x"]], [r["cap_s"]], marker="^", fillstyle="none", color="black")
                ax.annotate(f"{tool} > cap", (r["x"], r["cap_s"]), fontsize=7,
                            xytext=(-60, 6), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{xlabel} (log)")
        ax.set_ylabel("seconds, median (log)")
        ax.set_title(f"{comp}: cost versus size")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append(name)
    return made


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3:])
        return
    only = sys.argv[1:]  # optional: run only these comparisons (numbers: 1 3)
    start = time.time()
    load0 = os.getloadavg()[0]
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    rep = Report()
    log(f"{'quick' if QUICK else 'full'} run, results in {OUT}")
    work = Path(tempfile.mkdtemp(prefix="capsa-bench-"))
    try:
        for n, fn in enumerate(
            [bench_seq, bench_store, bench_bump, bench_archive, bench_staging], 1
        ):
            if only and str(n) not in only:
                continue
            fn(rep, work)
    finally:
        # Removed in the background: deleting many directories is slow on a disk mounted
        # with `discard`, and none of it is measured.
        subprocess.Popen(["rm", "-rf", str(work)], start_new_session=True)
    rat = ratios(rep)
    data: dict[str, Any] = {
        "quick": QUICK,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "duration_s": time.time() - start,
        "load": [load0, os.getloadavg()[0]],
        "machine": machine(),
        "sizes": {k: size(k) for k in SIZES},
        "rows": rep.rows,
        "ratios": rat,
        "targets": targets(rep, rat),
        "notes": rep.notes,
    }
    data["plots"] = plots(data, OUT)
    (OUT / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    write_md(data, OUT / "report.md")
    log(
        f"wrote {OUT / 'report.md'}, report.json and {len(data['plots'])} plots "
        f"in {data['duration_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
