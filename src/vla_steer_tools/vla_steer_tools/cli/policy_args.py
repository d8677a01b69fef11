"""Arguments that load a VLA policy and a direction library (replay, validate)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ..errors import ConfigError

#: The shipped mini-VLA (README "The mini-VLA"): the default model of the steering experiments.
DEFAULT_FAMILY = "minivla"
DEFAULT_MODEL = "vla-steer/minivla-libero-object"


def add_policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-family", default=DEFAULT_FAMILY,
                   help=f"minivla, openvla, pi0 or pi0fast (default {DEFAULT_FAMILY}, the shipped mini-VLA)")
    p.add_argument("--model-path", default=DEFAULT_MODEL,
                   help=f"checkpoint dir or id (default {DEFAULT_MODEL}; a tiny fixture: .state/checkpoints/tiny-openvla)")
    p.add_argument("--model-options", default="", help="family options as YAML, e.g. \"{center_crop: true}\"")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--direction-dir", action="append", type=Path, default=None,
                   help="folder of direction files (repeatable; default for minivla: config/directions/smollm2)")
    p.add_argument("--mode", default=None, choices=("override", "add", "scale"), help="override each direction's mode")
    p.add_argument("--position", default="", help="steering position ('' = the family's own)")


def parse_list(text: str, kind=str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"bad list {text!r}: {exc}") from None


def load_policy_from_args(args: argparse.Namespace):
    from ..models.registry import load_policy

    try:
        options = yaml.safe_load(args.model_options) if args.model_options else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--model-options is not YAML: {exc}") from None
    if not isinstance(options, dict):
        raise ConfigError(f"--model-options must be a mapping, got {options!r}")
    return load_policy(args.model_family, args.model_path, device=args.device, **options)


def direction_dirs(args: argparse.Namespace) -> list[Path]:
    from ..replay.pipeline import default_direction_dir

    if args.direction_dir:
        return list(args.direction_dir)
    default = default_direction_dir(args.model_family)
    if default is None:
        raise ConfigError(f"give --direction-dir for model family {args.model_family!r} "
                          "(e.g. config/directions/tiny-openvla)")
    return [default]
