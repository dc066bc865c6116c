#!/usr/bin/env python3
"""A DCC-style "version up" with capsa: find the latest crate, bump with the scenes carried
over (``sh010_v002.ma`` becomes ``sh010_v003.ma``), and publish a rendered frame sequence.

Runs as is: without arguments it makes a temporary store with a first crate and a few
rendered frames, then versions up. Inside a DCC, point it at the show::

    python version_up.py --store /mnt/show --capsule 656796239c1b981568180614 \
        --renders /renders/sh010/plate.####.exr
"""

from __future__ import annotations

import argparse
import getpass
import tempfile
from pathlib import Path

import capsa


def version_up(
    capsule: capsa.Capsule, renders: Path | None, comment: str
) -> capsa.Crate:
    """Bump `capsule` carrying the scenes over, publish `renders` (a sequence pattern)."""
    previous = capsule.latest()
    print(f"latest: {previous.version if previous else 'none'}")
    crate = capsule.bump(comment=comment, carry_over=["scenes"], created_by=getpass.getuser())
    print(f"bumped to {crate.version} ({crate.path})")
    for scene in sorted(crate.scenes.iterdir()):
        print(f"  scene carried over: {scene.name}")
    if renders is not None:
        found = capsa.find_sequences(renders.parent)
        for seq in found:
            missing = seq.missing()
            note = f", missing {missing}" if missing else ""
            print(f"  render: {seq} ({len(seq)} frames{note})")
        published = crate.publish(renders)
        print(f"published {renders.name} -> {published.relative_to(crate.path)}")
        for seq in crate.sequences("publishes"):
            print(f"  publishes/{seq}")
    return crate


def demo_store(root: Path) -> tuple[capsa.Capsule, Path]:
    """A store with one capsule, a first crate holding a scene, and rendered frames."""
    store = capsa.Store.init(root / "show")
    capsule = store.create_capsule("656796239c1b981568180614")
    first = capsule.bump(comment="layout")
    (first.scenes / "sh010_v001.ma").write_text("// Maya scene\n")
    renders = root / "renders"
    renders.mkdir()
    for frame in range(1001, 1011):
        (renders / f"plate.{frame:04d}.exr").write_bytes(b"EXR")
    return capsule, renders / "plate.####.exr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--store", type=Path, help="the store (default: a temporary demo)")
    parser.add_argument("--capsule", help="the capsule id")
    parser.add_argument("--renders", type=Path, help="a frame sequence pattern to publish")
    parser.add_argument("--comment", default="version up")
    args = parser.parse_args()

    if args.store is None:
        with tempfile.TemporaryDirectory(prefix="capsa-version-up-") as tmp:
            capsule, renders = demo_store(Path(tmp))
            crate = version_up(capsule, renders, args.comment)
            assert (crate.scenes / f"sh010_{crate.version}.ma").exists()
        return
    if not args.capsule:
        parser.error("--capsule is required with --store")
    try:
        capsule = capsa.Store.open(args.store).capsule(args.capsule)
    except FileNotFoundError as e:
        raise SystemExit(f"version_up: {e}") from None
    version_up(capsule, args.renders, args.comment)


if __name__ == "__main__":
    main()
