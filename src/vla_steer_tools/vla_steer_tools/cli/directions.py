"""`vla-steer directions import|export`: convert the paper's flat-index dictionaries.

The flat format (`{cluster: [layer * width + neuron, ...]}`, or `{cluster: {flat: [tokens]}}`)
holds neuron ids only. Export therefore writes a sidecar (`<out stem>.meta.json`) with what it
cannot hold (signs, alpha, mode, shapes, text) and says so; import reads the sidecar next to the
flat file when there is one, so export -> import gives back the same directions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import DirectionError
from ..steering.directions import (
    Direction, direction_file, export_flat_dict, export_sidecar, import_flat_dict, load_direction, lossy_fields,
    read_flat_dict, read_json_or_yaml, save_direction, sidecar_path,
)
from ..types import COMPONENTS

_D = Direction(name="_", neurons=())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directions", help="import/export the paper's flat-index neuron dictionaries")
    dsub = p.add_subparsers(dest="directions_command", metavar="ACTION")
    dsub.required = True

    i = dsub.add_parser("import", help="flat-index JSON/YAML {name: [layer*width+neuron, ...]} -> direction YAMLs")
    i.add_argument("flat_file")
    i.add_argument("--width", type=int, default=None,
                   help="FFN width (OpenVLA 11008, PaliGemma 16384); default: the sidecar's")
    i.add_argument("--layers", type=int, default=None, help="number of layers (recorded; bounds the ids)")
    i.add_argument("--component", default="backbone", choices=COMPONENTS)
    i.add_argument("--alpha", type=float, default=None,
                   help=f"alpha of every cluster (default: the sidecar's, else {_D.alpha:g})")
    i.add_argument("--model-id", default="")
    i.add_argument("--sidecar", default=None, help="sidecar file (default: <flat file stem>.meta.json if it exists)")
    i.add_argument("--no-sidecar", action="store_true", help="ignore the sidecar next to the flat file")
    i.add_argument("--out-dir", required=True)
    i.set_defaults(func=run_import)

    e = dsub.add_parser("export", help="direction YAMLs -> one flat-index JSON (+ sidecar .meta.json)")
    e.add_argument("directions", nargs="+")
    e.add_argument("--width", type=int, default=None, help="FFN width (default: from the files' model_shapes)")
    e.add_argument("--out", required=True)
    e.set_defaults(func=run_export)


def _sidecar(args: argparse.Namespace) -> tuple[dict | None, Path | None]:
    """The sidecar to import with: --sidecar, else the one next to the flat file, else none."""
    if args.no_sidecar:
        return None, None
    path = Path(args.sidecar) if args.sidecar else sidecar_path(args.flat_file)
    if args.sidecar is None and (not path.is_file() or path == Path(args.flat_file)):
        return None, None
    return read_json_or_yaml(path, "sidecar file"), path


def run_import(args: argparse.Namespace) -> int:
    data = read_flat_dict(args.flat_file)
    sidecar, side_path = _sidecar(args)
    width = args.width
    if width is None:
        if sidecar is None or not isinstance(sidecar.get("width"), int):
            raise DirectionError("pass --width (the model's FFN width; there is no sidecar that records it)")
        width = sidecar["width"]
    if sidecar is not None and args.alpha is not None:
        sidecar = {**sidecar, "directions": {k: {**v, "alpha": args.alpha} if isinstance(v, dict) else v
                                             for k, v in (sidecar.get("directions") or {}).items()}}
        print(f"note: --alpha {args.alpha:g} replaces the alphas recorded in {side_path}", file=sys.stderr)
    alpha = _D.alpha if args.alpha is None else args.alpha
    dirs = import_flat_dict(data, width, args.layers, args.component, alpha, args.model_id,
                            source=Path(args.flat_file).name, sidecar=sidecar)
    out_dir = Path(args.out_dir)
    paths = [direction_file(out_dir, d.name) for d in dirs]  # every name checked before any write
    for d, path in zip(dirs, paths):
        save_direction(d, path)
        print(f"wrote {path} ({len(d.neurons)} neurons)")
    if side_path is not None:
        print(f"read signs, alpha and mode from {side_path}")
    return 0


def _load_unique(paths: list[str]) -> list[Direction]:
    """Load the files; two holding the same direction name is an error (one would overwrite)."""
    dirs, seen = [], {}
    for p in paths:
        d = load_direction(p)
        if d.name in seen:
            raise DirectionError(f"{seen[d.name]} and {p} both hold direction {d.name!r}; a flat-index dict "
                                 "holds one cluster per name (rename one)")
        seen[d.name] = p
        dirs.append(d)
    return dirs


def run_export(args: argparse.Namespace) -> int:
    dirs = _load_unique(args.directions)
    width = args.width
    if width is None:
        widths = {w for d in dirs for _, _, w in d.model_shapes}
        if len(widths) != 1:
            raise DirectionError(f"cannot infer the layer width from the files (found {sorted(widths) or 'none'}); pass --width")
        width = widths.pop()
    flat = export_flat_dict(dirs, width)  # checks an explicit --width against recorded shapes
    side = sidecar_path(args.out)
    if side == Path(args.out):
        raise DirectionError(f"--out {args.out!r} would be its own sidecar; use another name")
    atomic_write_text(side, json.dumps(export_sidecar(dirs, width), indent=1) + "\n")
    atomic_write_text(args.out, json.dumps(flat, indent=1) + "\n")
    print(f"wrote {args.out} ({len(flat)} directions, width {width}) and sidecar {side}")
    lost = [f"{d.name} ({', '.join(fields)})" for d in dirs if (fields := lossy_fields(d, _D.alpha))]
    if lost:
        print(f"warning: the flat format holds neuron ids only; {'; '.join(lost)} are kept in {side} "
              "only (`directions import` reads it back when it lies next to the flat file)", file=sys.stderr)
    return 0
