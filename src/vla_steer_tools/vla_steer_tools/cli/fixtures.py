"""`vla-steer fixtures write`: write a tiny RANDOM-WEIGHT test checkpoint in an official format.

The demo and the tests use these to run offline; their actions are meaningless.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..fixtures.tiny_checkpoints import DEFAULT_DEMO_DIRS, WRITERS

    p = sub.add_parser("fixtures", help="write tiny random-weight test checkpoints (official formats)")
    fsub = p.add_subparsers(dest="fixtures_command", metavar="ACTION")
    fsub.required = True
    w = fsub.add_parser("write", help="write one tiny checkpoint (OpenVLA, LeRobot pi0 or LeRobot pi0_fast layout; "
                        "pi0fast trains its format for about 20 s)")
    w.add_argument("--family", required=True, choices=sorted(WRITERS), help="whose official layout to write")
    w.add_argument("--out", default=None,
                   help="output directory (default: the demo path, " +
                   ", ".join(f"{k}: {v}" for k, v in sorted(DEFAULT_DEMO_DIRS.items())) + ")")
    w.set_defaults(func=run_write)


def run_write(args: argparse.Namespace) -> int:
    from ..fixtures.tiny_checkpoints import DEFAULT_DEMO_DIRS, WRITERS

    out = args.out or DEFAULT_DEMO_DIRS[args.family]
    path = WRITERS[args.family](out)
    files = sorted(p.name for p in path.iterdir())
    print(f"wrote tiny {args.family} TEST FIXTURE (RANDOM weights) to {path}: {', '.join(files)}")
    return 0
