"""`vla-steer report BAG`: metrics before/after steering and a trajectory figure from a bag."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.bag_repair import BACKUP_SUFFIX
from ..analysis.bags import bag_topics
from ..analysis.report import format_report, write_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="analyse a recorded rosbag2 run (before/after steering metrics, trajectory PNG)",
        description="Read a bag recorded by `vla-steer demo` / `vla-steer record` (or ros2 bag record "
        "of the same topics) and write report.txt, report.json and trajectory.png. "
        "(`vla-steer report layers PROJ_DIR --out OUT` reads a projection instead: see its --help.)",
    )
    p.add_argument("bag", type=Path, help="rosbag2 directory (MCAP or sqlite3)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: BAG/../report)")
    p.add_argument("--topics", action="store_true", help="only list the bag's topics and counts")
    p.set_defaults(func=run)


def recovery_note(bag: Path) -> str:
    """Say so when the bag is what `bag reindex` recovered: the recording ends where the data stopped."""
    damaged = sorted(p.name for p in bag.glob(f"*{BACKUP_SUFFIX}*")) if bag.is_dir() else []
    if not damaged:
        return ""
    return (f"note: this bag was recovered by `vla-steer bag reindex` from a recording that was not closed "
            f"cleanly ({', '.join(damaged)} kept): it holds what was readable, the end may be missing")


def run(args: argparse.Namespace) -> int:
    if args.topics:
        for topic, (msgtype, count) in sorted(bag_topics(args.bag).items()):
            print(f"{topic:40s} {msgtype:45s} {count:6d}")
        note = recovery_note(args.bag)
        if note:
            print(note)
        return 0
    report, out = write_report(args.bag, args.out or args.bag.parent / "report")
    print(format_report(report))
    note = recovery_note(args.bag)
    if note:
        print(note)
    print(f"wrote {out}/report.txt, report.json, trajectory.png")
    return 0
