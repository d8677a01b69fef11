"""`vla-steer directions import|export`: convert the paper's flat-index dictionaries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import DirectionError
from ..steering.directions import Direction, export_flat_dict, import_flat_dict, load_direction, read_flat_dict, save_direction
from ..types import COMPONENTS

_D = Direction(name="_", neurons=())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directions", help="import/export the paper's flat-index neuron dictionaries")
    dsub = p.add_subparsers(dest="directions_command", metavar="ACTION")
    dsub.required = True

    i = dsub.add_parser("import", help="flat-index JSON/YAML {name: [layer*width+neuron, ...]} -> direction YAMLs")
    i.add_argument("flat_file")
    i.add_argument("--width", type=int, required=True, help="FFN width (OpenVLA 11008, PaliGemma 16384)")
    i.add_argument("--layers", type=int, default=None, help="number of layers (recorded; bounds the ids)")
    i.add_argument("--component", default="backbone", choices=COMPONENTS)
    i.add_argument("--alpha", type=float, default=_D.alpha)
    i.add_argument("--model-id", default="")
    i.add_argument("--out-dir", required=True)
    i.set_defaults(func=run_import)

    e = dsub.add_parser("export", help="direction YAMLs -> one flat-index JSON")
    e.add_argument("directions", nargs="+")
    e.add_argument("--width", type=int, default=None, help="FFN width (default: from the files' model_shapes)")
    e.add_argument("--out", required=True)
    e.set_defaults(func=run_export)


def run_import(args: argparse.Namespace) -> int:
    data = read_flat_dict(args.flat_file)
    dirs = import_flat_dict(data, args.width, args.layers, args.component, args.alpha, args.model_id, source=Path(args.flat_file).name)
    for d in dirs:
        path = save_direction(d, Path(args.out_dir) / f"{d.name}.yaml")
        print(f"wrote {path} ({len(d.neurons)} neurons)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    dirs = [load_direction(p) for p in args.directions]
    width = args.width
    if width is None:
        widths = {w for d in dirs for _, _, w in d.model_shapes}
        if len(widths) != 1:
            raise DirectionError(f"cannot infer the layer width from the files (found {sorted(widths) or 'none'}); pass --width")
        width = widths.pop()
    flat = export_flat_dict(dirs, width)
    atomic_write_text(args.out, json.dumps(flat, indent=1) + "\n")
    print(f"wrote {args.out} ({len(flat)} directions, width {width})")
    return 0
