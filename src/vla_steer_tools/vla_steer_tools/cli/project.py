"""`vla-steer project`: every FFN value vector -> its top/bottom tokens, saved to a directory."""

from __future__ import annotations

import argparse

from ..interp.projection import DTYPES, ProjectionOptions, project
from .common import add_model_args, load_adapter, parse_int_list, random_weights_banner

_D = ProjectionOptions()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("project", help="project FFN value vectors onto the token matrix (top-k tokens per neuron)")
    add_model_args(p)
    p.add_argument("--out", required=True, help="output directory (re-run to resume)")
    p.add_argument("--top-k", type=int, default=_D.top_k, help=f"tokens kept per neuron and side (default {_D.top_k})")
    p.add_argument("--final-norm", action="store_true", help="apply the model's final norm first (the paper does not)")
    p.add_argument("--token-matrix", default=_D.token_matrix, help="token matrix to project onto (default: the model's)")
    p.add_argument("--dtype", default=_D.dtype, choices=sorted(DTYPES))
    p.add_argument("--chunk-size", type=int, default=_D.chunk_size, help="neurons per chunk (0: from --chunk-mib)")
    p.add_argument("--chunk-mib", type=int, default=_D.chunk_mib, help=f"logits buffer budget (default {_D.chunk_mib})")
    p.add_argument("--components", default="", help="comma list (default: all)")
    p.add_argument("--layers", default="", help="e.g. '0-3,20' (default: all)")
    p.add_argument("--no-token-matrix-copy", action="store_true", help="do not save E (semantic search then impossible)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _, _, adapter = load_adapter(args)
    random_weights_banner(adapter)
    options = ProjectionOptions(
        top_k=args.top_k, final_norm=args.final_norm, token_matrix=args.token_matrix, dtype=args.dtype,
        device=args.device, chunk_size=args.chunk_size, chunk_mib=args.chunk_mib,
        components=tuple(c for c in args.components.split(",") if c), layers=parse_int_list(args.layers),
        save_token_matrix=not args.no_token_matrix_copy,
    )
    out = project(adapter, args.out, options)
    print(f"projection of {adapter.model_id} written to {out} (top tokens: {out / 'top_tokens.txt'})")
    return 0
