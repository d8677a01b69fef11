"""`vla-steer diff PROJ_A PROJ_B --out OUT`: what changed from model A to model B (same architecture)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..interp.projection import Projection
from ..interp.projection_diff import diff_projections, write_diff


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff", help="compare two projections of one architecture (token z-scores, moved neurons, per-layer change)",
        description="Compare projection B against projection A (e.g. base VLM vs fine-tuned VLA): token-count "
        "z-scores of top-k presence (which tokens gained or lost), each neuron's top-k turnover, per-layer change. "
        "Projections store token ids and scores, not value vectors: give both models' weights (--model-a, "
        "--model-b) to also rank neurons by cos(w_A, w_B). Writes diff.md/.json, neurons.csv, tokens.csv, "
        "token_zscores.png, layer_change.png. Different architectures (FFN shapes, vocabulary, top-k) are an error.",
    )
    p.add_argument("projection_a", type=Path, help="projection of model A (the base)")
    p.add_argument("projection_b", type=Path, help="projection of model B (the changed model)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--model-a", default=None, help="A's weights (as `project --model`: dir, .gguf, 'smollm2')")
    p.add_argument("--model-b", default=None, help="B's weights")
    p.add_argument("--family", default=None, help="VLA family of both models (openvla, pi0, ...); default: text causal LM")
    p.add_argument("--device", default="cpu", help="where the weights are compared (default cpu)")
    p.add_argument("--neurons", type=int, default=100, help="most changed neurons kept in the table (default 100)")
    p.set_defaults(func=run)


def _adapter(model: str, args: argparse.Namespace):
    from .common import load_adapter

    ns = argparse.Namespace(model=model, family=args.family, gguf_file=None, device=args.device)
    return load_adapter(ns)[2]


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    a, b = Projection.load(args.projection_a), Projection.load(args.projection_b)
    if bool(args.model_a) != bool(args.model_b):
        raise ConfigError("give both --model-a and --model-b (value-vector cosines need both models), or neither")
    weights = (_adapter(args.model_a, args), _adapter(args.model_b, args)) if args.model_a else None
    diff = diff_projections(a, b, weights, n_neurons=args.neurons)
    files = write_diff(diff, args.out)
    gained = [t for t in diff.top_tokens(3, True) if t.z > 0]
    lost = [t for t in diff.top_tokens(3, False) if t.z < 0]
    changes = ("; gained " + ", ".join(f"{t.text!r} {t.z:+.1f}" for t in gained) if gained else "") + \
        ("; lost " + ", ".join(f"{t.text!r} {t.z:+.1f}" for t in lost) if lost else "")
    print(f"{diff.model_b} vs {diff.model_a}: {len(diff.compared)} layers" + (changes or "; no token changed its top-k presence"))
    if diff.with_weights:
        print(f"{len(diff.moved())} neurons moved (cos < 0.999) among the {len(diff.neurons)} listed")
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
