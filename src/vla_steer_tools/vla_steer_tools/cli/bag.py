"""`vla-steer bag reindex DIR`: rebuild a bag's metadata.yaml from its MCAP data (`ros2 bag reindex`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.bag_repair import ReindexResult, reindex_bag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bag", help="bag maintenance (reindex a bag that was not closed cleanly)")
    verbs = p.add_subparsers(dest="bag_command", metavar="VERB")
    verbs.required = True
    r = verbs.add_parser(
        "reindex", help="rebuild metadata.yaml from whatever MCAP data is readable (= ros2 bag reindex)",
        description="For a bag whose recorder was killed, or whose files were cut short: reads every "
        "whole record of the MCAP files sequentially, rewrites a file that was not closed cleanly as a "
        "valid MCAP (the original is kept as <name>.mcap.damaged) and writes metadata.yaml, with the "
        "publishers' QoS profiles. Prints how many messages were recovered per topic.",
    )
    r.add_argument("bag", type=Path, help="rosbag2 directory (MCAP storage)")
    r.set_defaults(func=run_reindex)


def run_reindex(args: argparse.Namespace) -> int:
    print(format_reindex(reindex_bag(args.bag)))
    return 0


def format_reindex(result: ReindexResult) -> str:
    """What was recovered, per topic, and what was repaired; says plainly when nothing was readable."""
    lines = []
    for f in result.files:
        if f.backup is None:
            lines.append(f"{f.path.name}: intact ({f.messages} messages)")
        else:
            lost = f.scan.size - f.scan.read_upto
            lines.append(f"{f.path.name}: not closed cleanly: {f.scan.error}; rewrote it with the {f.messages} "
                         f"messages that were readable ({lost} bytes at the end unreadable); original kept as "
                         f"{f.backup.name}")
    lines.append(f"recovered {result.messages} messages on {len(result.topic_counts())} topics:")
    for topic, (msgtype, count) in sorted(result.topic_counts().items()):
        lines.append(f"  {topic:40s} {msgtype:45s} {count:6d}")
    lines.append(f"wrote {result.bag / 'metadata.yaml'}")
    return "\n".join(lines)
