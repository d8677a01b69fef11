"""`vla-steer steer-text`: steer a text causal LM and compare continuations with and without."""

from __future__ import annotations

import argparse

import torch

from ..models.hf_causal_lm import generate_text, load_causal_lm, next_token_probs
from ..steering.directions import MODES
from ..steering.hooks import FAMILY_DEFAULT, POSITIONS, Steerer, SteeringConfig, as_directions
from .common import random_weights_banner


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("steer-text", help="generate text with and without steering directions")
    p.add_argument("--model", required=True, help="local dir, .gguf file, or 'smollm2'")
    p.add_argument("--gguf-file", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--directions", action="append", required=True, metavar="YAML", help="direction YAML file (repeat for several)")
    p.add_argument("--alpha", type=float, default=None, help="override every direction's alpha")
    p.add_argument("--mode", default=None, choices=MODES, help="override every direction's mode")
    p.add_argument("--position", default=FAMILY_DEFAULT, choices=POSITIONS,
                   help="forward passes steered (default: the model's own; all for text models)")
    p.add_argument("--max-new-tokens", type=int, default=20)
    p.add_argument("--top", type=int, default=5, help="next-token candidates to list")
    p.add_argument("prompt")
    p.set_defaults(func=run)


def _top(tokenizer, probs: torch.Tensor, n: int) -> str:
    values, ids = probs.topk(n)
    return ", ".join(f"{tokenizer.decode([int(i)])!r} {float(v):.3f}" for v, i in zip(values, ids))


def run(args: argparse.Namespace) -> int:
    model, tokenizer, adapter = load_causal_lm(args.model, gguf_file=args.gguf_file, device=args.device)
    random_weights_banner(adapter)
    directions = tuple(d.with_options(args.alpha, args.mode) for d in as_directions(args.directions))
    with Steerer(adapter, SteeringConfig(directions, enabled=False)) as steerer:
        for label, enabled in (("unsteered", False), ("steered", True)):
            steerer.apply(SteeringConfig(directions, enabled=enabled, position=args.position))
            steerer.begin_inference()
            probs = next_token_probs(model, tokenizer, args.prompt)
            text = generate_text(model, tokenizer, args.prompt, args.max_new_tokens, on_start=steerer.begin_inference)
            stats = steerer.activations()
            print(f"== {label}: {args.prompt}{text}")
            print(f"   next token: {_top(tokenizer, probs, args.top)}")
            for s in stats.values():
                print(f"   {s.name}: mean {s.mean:+.3f} max {s.max:+.3f} over {s.count} values (pre-edit), steered={s.steered}")
        position = steerer.position  # "" resolved for this model
    names = ", ".join(f"{d.name} ({d.mode}, alpha {d.alpha:g}, {len(d.neurons)} neurons)" for d in directions)
    print(f"directions: {names}; position {position}")
    return 0
