"""`vla-steer train`: train the mini-VLA head on demonstration datasets (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ..errors import ConfigError


def _run(args: argparse.Namespace) -> int:
    from ..training.minivla_trainer import TrainConfig, Trainer

    raw: dict = {}
    if args.config:
        try:
            raw = yaml.safe_load(Path(args.config).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read training config {args.config}: {exc}") from exc
    for key in ("steps", "batch", "lr", "seed", "threads", "out"):
        value = getattr(args, key)
        if value is not None:
            raw[key] = value
    if args.dataset:
        raw["datasets"] = list(args.dataset)
    if args.tasks:
        raw["tasks"] = args.tasks.split(",")
    if args.bf16:
        raw["bf16"] = True
    if not raw.get("datasets") or not raw.get("out"):
        raise ConfigError("give --dataset DIR (repeatable) and --out DIR, or --config FILE with both")
    unknown = sorted(set(raw) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"unknown training config keys {unknown}; valid: {', '.join(TrainConfig.__dataclass_fields__)}")
    raw["datasets"] = tuple(raw["datasets"])
    raw["tasks"] = tuple(raw.get("tasks", ()))
    trainer = Trainer(TrainConfig(**raw))
    out = trainer.run()
    print(f"exported {out} (loss curve: {Path(raw['out']) / 'loss.png'})")
    print(f"evaluate: vla-steer eval --model-path {out} --suite libero_object --task 1 --init-states 30-49")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the mini-VLA on demonstrations (resumable)",
                       description="Trains the mini-VLA's image encoders and action head; the SmolLM2 backbone stays "
                       "frozen (its FFN weights exactly pretrained, so SmolLM2's concept neurons are the policy's). "
                       "Re-running the same command resumes from OUT/checkpoint.pt. Writes OUT/export (the "
                       "checkpoint), OUT/loss.png and OUT/history.json.")
    p.add_argument("--config", help="recipe YAML (e.g. config/train/minivla.yaml); flags override it")
    p.add_argument("--dataset", action="append", help="LeRobot v3 dataset dir (repeatable: demos + relabelled rollouts)")
    p.add_argument("--tasks", help="only these tasks, e.g. libero_object:1")
    p.add_argument("--out", help="run directory")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads (default 2)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (helps on CPUs with AMX/AVX512-bf16)")
    p.set_defaults(func=_run)
