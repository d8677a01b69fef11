"""`vla-steer analyze DIR... --out OUT`: metrics, paired tests, PNGs and a report over replays and runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..analysis.compare_runs import analyze

    text = analyze(args.dirs, args.out, common_steps=args.common_steps)
    print(text)
    print(f"wrote {args.out}/report.md, analysis.json and the PNGs it names")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="report over replay outputs and closed-loop run dirs: metrics, paired bootstrap CIs, PNGs",
        description="Reads `vla-steer replay` outputs (predictions.parquet), demo/record run dirs (a rosbag2 `bag`), "
        "and eval/study dirs (results.json). Per episode and variant: mean 3-D end-effector displacement per step, "
        "per-axis displacement, path length, max/min height, episode length, success; a length-controlled "
        "comparison over the first steps every episode has; paired comparisons (same observation or same init "
        "state) with Cohen's d_z and scipy bootstrap 95% CIs; dose-response and trajectory PNGs; report.md.")
    p.add_argument("dirs", nargs="+", type=Path, help="replay outputs and run directories")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--common-steps", type=int, default=0,
                   help="length control: compare over the first N steps (default: the shortest episode's length)")
    p.set_defaults(func=run)
