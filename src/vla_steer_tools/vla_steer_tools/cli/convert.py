"""`vla-steer convert openpi-pi0fast SRC DST`: checkpoints from other frameworks -> the layouts
`load_policy` reads. The readers (orbax/jax for openpi) are imported only when a conversion runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert checkpoints of other frameworks (openpi pi0-FAST) to LeRobot layouts")
    csub = p.add_subparsers(dest="convert_command", metavar="KIND")
    csub.required = True
    from ..models.pi0fast.convert_openpi import DTYPES, NORM_MODES, OPENPI_CAMERAS

    o = csub.add_parser(
        "openpi-pi0fast", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="openpi (JAX, orbax) pi0-FAST checkpoint -> LeRobot pi0_fast (safetensors + config + statistics)",
        description="Read an openpi pi0-FAST checkpoint (SRC/params/ written by orbax, SRC/assets/<asset_id>/"
        "norm_stats.json) and write DST in LeRobot's pi0_fast layout, which `--family pi0fast` loads.\n"
        "openpi keeps the action horizon and dim in its Python train config, not in the checkpoint, so give "
        "them:\n  pi0_fast_libero: --chunk-size 10 --action-dim 7    pi0_fast_droid: --chunk-size 10 --action-dim 8\n"
        "A wrong pair is caught at inference (FAST decoding fails), never turned into commands.\n"
        "Needs orbax-checkpoint + jax (in requirements/requirements.txt); gemma_2b takes ~3x its size in RAM.")
    o.add_argument("src", type=Path, help="openpi checkpoint directory (holds params/ and assets/)")
    o.add_argument("dst", type=Path, help="output directory (LeRobot pi0_fast layout)")
    o.add_argument("--chunk-size", type=int, required=True, help="the model's action_horizon (Pi0FASTConfig)")
    o.add_argument("--action-dim", type=int, required=True, help="the model's action_dim (Pi0FASTConfig)")
    o.add_argument("--cameras", nargs="+", default=list(OPENPI_CAMERAS),
                   help="camera names in the order the model was trained with (default: openpi's %(default)s); "
                   "they become observation.images.<name>")
    o.add_argument("--state-dim", type=int, default=None,
                   help="state length in the prompt (default: the length of the state statistics)")
    o.add_argument("--asset-id", default=None, help="which assets/<asset_id>/norm_stats.json (default: the only one)")
    o.add_argument("--max-token-len", type=int, default=250, help="prompt token limit (openpi max_token_len; "
                   "pi0_fast_libero 180; default %(default)s)")
    o.add_argument("--max-decoding-steps", type=int, default=256, help="generation cap (default %(default)s)")
    o.add_argument("--normalization", choices=NORM_MODES, default="QUANTILES",
                   help="how openpi normalised state and actions (pi0-FAST: quantiles; default %(default)s)")
    o.add_argument("--dtype", choices=DTYPES, default="keep", help="weight dtype written (default: as stored)")
    o.add_argument("--tokenizer", type=Path, default=None,
                   help="local PaliGemma tokenizer dir to copy into DST/tokenizer (default: load google/"
                   "paligemma-3b-pt-224 from the hub at load time)")
    o.add_argument("--fast-tokenizer", type=Path, default=None,
                   help="local FAST tokenizer dir (processor_config.json + tokenizer.json) to copy into "
                   "DST/fast_tokenizer (default: physical-intelligence/fast from the hub at load time)")
    o.add_argument("--overwrite", action="store_true", help="replace a non-empty DST")
    o.set_defaults(func=run_openpi_pi0fast)


def run_openpi_pi0fast(args: argparse.Namespace) -> int:
    from ..models.pi0fast.convert_openpi import ConvertOptions, convert_openpi_pi0fast

    options = ConvertOptions(
        chunk_size=args.chunk_size, action_dim=args.action_dim, cameras=tuple(args.cameras),
        state_dim=args.state_dim, asset_id=args.asset_id, max_token_len=args.max_token_len,
        max_decoding_steps=args.max_decoding_steps, normalization=args.normalization, dtype=args.dtype,
        tokenizer=args.tokenizer, fast_tokenizer=args.fast_tokenizer,
    )
    record = convert_openpi_pi0fast(args.src, args.dst, options, overwrite=args.overwrite)
    print(f"converted openpi pi0-FAST {args.src} -> {args.dst}: {record['paligemma_variant']}, "
          f"{record['parameters']:,} parameters ({record['openpi_keys']} openpi arrays, stored "
          f"{'/'.join(record['stored_dtypes'])}, written {record['dtype']}), image {record['image_size']}px, "
          f"chunk {record['chunk_size']} x {record['action_dim']}, state {record['state_dim']}, "
          f"statistics from assets/{record['asset_id']} ({record['normalization']})")
    print(f"load it with: --family pi0fast --model {args.dst}")
    return 0
