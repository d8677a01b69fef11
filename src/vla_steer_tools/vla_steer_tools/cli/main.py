"""`vla-steer`: one command, many subcommands.

Offline subcommands live in this package (`cli/<name>.py`, each with `register(subparsers)`).
Subcommands that need ROS (steer a running node, param get/set, record, demo) live in the ROS
packages and plug in through the `vla_steer.cli` entry-point group, so this core never imports
rclpy: on a machine without ROS they are simply absent from `--help`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import entry_points
from typing import Sequence

#: Core subcommand modules, in the order `--help` lists them.
CORE_COMMANDS: tuple[str, ...] = ("project", "concepts", "steer_text", "directions", "fixtures", "report", "train")
CORE_COMMANDS += ("bag",)  # bag maintenance (reindex)
CORE_COMMANDS += ("report_layers", "diff", "browse")  # reading a model: layer report, projection diff, neuron browser
CORE_COMMANDS += ("replay", "analyze")  # open-loop replay of bags, analysis of replays and runs
CORE_COMMANDS += ("convert",)  # checkpoints of other frameworks (openpi pi0-FAST) -> LeRobot layouts

#: Two-word commands that cannot be argparse sub-subcommands (`report BAG` takes a positional).
ALIASES: dict[tuple[str, str], str] = {("report", "layers"): "report-layers"}

PLUGIN_GROUP = "vla_steer.cli"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vla-steer",
        description="Look inside vision-language-action models and steer them: project FFN value "
        "vectors onto tokens, find concept neurons, steer text models, policies and ROS nodes.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in CORE_COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except ImportError as exc:  # ROS not importable here: leave the ROS subcommands out
            logging.getLogger(__name__).debug("subcommand %s unavailable: %s", ep.name, exc)
        except argparse.ArgumentError as exc:  # a plugin reusing a core command name: core wins
            logging.getLogger(__name__).warning("plugin subcommand %s skipped: %s", ep.name, exc)
    return parser


def resolve_aliases(argv: list[str]) -> list[str]:
    """`report layers ...` -> `report-layers ...` (global flags such as -v may come first)."""
    for i, word in enumerate(argv):
        if not word.startswith("-"):
            if i + 1 < len(argv) and (word, argv[i + 1]) in ALIASES:
                return argv[:i] + [ALIASES[(word, argv[i + 1])]] + argv[i + 2:]
            break
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(resolve_aliases(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from ..errors import VlaSteerError

    try:
        return int(args.func(args) or 0)
    except VlaSteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
