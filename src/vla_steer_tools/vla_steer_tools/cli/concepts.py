"""`vla-steer concepts find|show`: discover concept neurons in a projection; inspect one neuron."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..interp.concepts import (
    METHODS, POOLS, direction_from_hits, find_concept, neuron_report, projection_widths, random_control,
)
from ..interp.projection import Projection
from ..steering.directions import MODES, Direction, save_direction
from ..types import COMPONENTS, NeuronRef

_D = Direction(name="_", neurons=())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("concepts", help="find concept neurons in a projection, or show one neuron's tokens")
    csub = p.add_subparsers(dest="concepts_command", metavar="ACTION")
    csub.required = True

    f = csub.add_parser("find", help="keyword or semantic search; writes a direction YAML")
    f.add_argument("--projection", required=True, help="directory written by `vla-steer project`")
    f.add_argument("--concept", required=True, help="e.g. fast, slow, up, down")
    f.add_argument("--size", type=int, default=10, help="neurons in the direction (paper: 10/20/40)")
    f.add_argument("--pool", default="full", choices=POOLS, help="layers searched: early/late half or all")
    f.add_argument("--method", default="keyword", choices=METHODS)
    f.add_argument("--component", default="backbone", choices=COMPONENTS)
    f.add_argument("--min-hits", type=int, default=1, help="keyword: concept tokens a neuron needs among its top-k")
    f.add_argument("--alpha", type=float, default=_D.alpha, help=f"default alpha stored in the file ({_D.alpha:g})")
    f.add_argument("--mode", default=_D.mode, choices=MODES)
    f.add_argument("--name", default=None, help="direction name (default: the concept)")
    f.add_argument("--out", default=None, help="direction YAML to write (default: print only)")
    f.add_argument("--controls", type=int, default=0, help="also write N matched random controls next to --out")
    f.set_defaults(func=run_find)

    s = csub.add_parser("show", help="top and bottom tokens of one neuron")
    s.add_argument("projection", help="directory written by `vla-steer project`")
    s.add_argument("--layer", type=int, required=True)
    s.add_argument("--neuron", type=int, required=True)
    s.add_argument("--component", default="backbone", choices=COMPONENTS)
    s.add_argument("--k", type=int, default=None, help="tokens per side (default: all kept)")
    s.set_defaults(func=run_show)


def run_find(args: argparse.Namespace) -> int:
    proj = Projection.load(args.projection)
    if proj.manifest.get("random_weights"):
        print(f"NOTE: projection {proj.id} is of a RANDOM-weight model: matches are chance.")
    hits = find_concept(proj, args.concept, args.size, args.pool, args.method, args.component, args.min_hits)
    how = f"{args.method} search for {args.concept!r}, pool {args.pool}, size {args.size}"
    direction = direction_from_hits(proj, args.name or args.concept, hits, how, args.alpha, args.mode)
    print(f"{direction.name}: {len(hits)} neurons ({how}) in projection {proj.id} of {proj.model_id}")
    for h in hits:
        toks = ", ".join(repr(t) for t in h.tokens[:6])
        print(f"  {str(h.ref):24s} sign {int(h.sign):+d} score {h.score:7.3f}  {toks}")
    if args.out:
        out = save_direction(direction, args.out)
        print(f"wrote {out}")
        widths = projection_widths(proj)
        for seed in range(args.controls):
            control = random_control(direction, widths, seed=seed)
            path = Path(args.out).with_name(f"{control.name}.yaml")
            save_direction(control, path)
            print(f"wrote {path}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    proj = Projection.load(args.projection)
    print(neuron_report(proj, NeuronRef(args.component, args.layer, args.neuron), args.k))
    return 0
