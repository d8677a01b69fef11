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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
