"""`vla-steer report layers PROJ_DIR --out OUT` (also `report-layers`): per-layer shares of
action-token, token-category and "meaningful" neurons in a projection, as PNG figures + markdown.

`report BAG` already takes a positional path, so `report layers` is routed here by main.py's
alias table rather than as an argparse sub-subcommand (which would break `report BAG`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..interp.layer_report import SIDES, LayerReportOptions, layer_report, write_layer_report
from ..interp.projection import Projection
from ..interp.token_categories import DEFAULT_CATEGORIES, load_categories, parse_action_range

_D = LayerReportOptions()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report-layers", aliases=[],
        help="per-layer shares of action-token / category / meaningful neurons (= `report layers`)",
        description="Read a projection (from `vla-steer project`) layer by layer: the share of neurons "
        "whose top-k tokens are action tokens, fall in word categories (direction, speed, height, gripper, "
        "colour, objects: editable word lists), or are 'meaningful' (>= 4 of the top 30 share one pattern: "
        "a category, action tokens, or one word stem; scaled to the kept k). Writes layer_report.md/.json/.csv, "
        "layer_report.png and layer_heatmap.png. No model is loaded.",
    )
    p.add_argument("projection", type=Path, help="directory written by `vla-steer project`")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--categories", type=Path, default=None, help=f"word-list YAML (default {DEFAULT_CATEGORIES.name} in config/)")
    p.add_argument("--action-range", default=None,
                   help="action-token ids FIRST-LAST (default: tokens printed as [action: x] / [fast: N])")
    p.add_argument("--action-min", type=int, default=_D.action_min, help="action tokens a neuron needs in its top-k (0: a majority)")
    p.add_argument("--category-min", type=int, default=_D.category_min, help=f"category words a neuron needs in its top-k (default {_D.category_min})")
    p.add_argument("--meaningful-window", type=int, default=_D.meaningful_window, help=f"top tokens judged (default {_D.meaningful_window})")
    p.add_argument("--meaningful-min", type=int, default=_D.meaningful_min, help=f"of them sharing a pattern (default {_D.meaningful_min})")
    p.add_argument("--sides", default=_D.sides, choices=SIDES, help="top: promoted tokens only; both: bottom tokens may qualify too")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    proj = Projection.load(args.projection)
    options = LayerReportOptions(
        action_min=args.action_min, category_min=args.category_min, meaningful_window=args.meaningful_window,
        meaningful_min=args.meaningful_min, sides=args.sides, action_range=parse_action_range(args.action_range),
    )
    report = layer_report(proj, load_categories(args.categories), options)
    files = write_layer_report(proj, args.out, report)
    if report.random_weights:
        print(f"NOTE: projection {proj.id} is of a RANDOM-weight model: shares carry no meaning.")
    last = report.rows[-1]
    print(f"{len(report.rows)} layers of {report.model_id}; last layer: action {last.action:.3f}, "
          f"meaningful {last.meaningful:.3f}")
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
