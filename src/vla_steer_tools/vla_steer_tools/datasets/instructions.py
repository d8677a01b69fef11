"""Instruction wordings that match what a demonstration did (config/instructions.yaml).

Why a config file: the mapping from executed setting (slow / normal / fast speed, low / normal /
high carry height) to words is part of the experiment — the steering study compares neurons with
these adverbs — so it must be one reviewable file, not strings spread through the code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from ..errors import ConfigError, UnknownChoiceError

DEFAULT_INSTRUCTIONS = Path(__file__).resolve().parents[4] / "config" / "instructions.yaml"


@dataclass(frozen=True)
class Wordings:
    """The phrases per setting, the expert values per setting and the templates."""

    speed: Mapping[str, Sequence[str]]
    height: Mapping[str, Sequence[str]]
    speed_values: Mapping[str, float]
    height_values: Mapping[str, float]
    templates: Sequence[str]

    def speed_value(self, name: str) -> float:
        if name not in self.speed_values:
            raise UnknownChoiceError("speed setting", name, self.speed_values)
        return float(self.speed_values[name])

    def height_value(self, name: str) -> float:
        if name not in self.height_values:
            raise UnknownChoiceError("height setting", name, self.height_values)
        return float(self.height_values[name])

    def all_for(self, task: str, speed: str, height: str) -> list[str]:
        """Every wording of (task, speed, height), deduplicated, in a stable order."""
        out: list[str] = []
        for template in self.templates:
            for s in self.speed[speed]:
                for h in self.height[height]:
                    text = " ".join(template.format(task=task, speed=s, height=h).split())
                    if text not in out:
                        out.append(text)
        return out

    def pick(self, task: str, speed: str, height: str, rng: random.Random) -> str:
        return rng.choice(self.all_for(task, speed, height))


def load_wordings(path: str | Path | None = None) -> Wordings:
    """Read and check the wordings file (every setting has phrases and a value)."""
    path = Path(path) if path else DEFAULT_INSTRUCTIONS
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read instruction wordings {path}: {exc}") from exc
    try:
        w = Wordings(speed=raw["speed"], height=raw["height"], speed_values=raw["speed_values"],
                     height_values=raw["height_values"], templates=raw["templates"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: missing key {exc}; needs speed, height, speed_values, "
                          "height_values, templates") from exc
    for axis, phrases, values in (("speed", w.speed, w.speed_values), ("height", w.height, w.height_values)):
        if set(phrases) != set(values):
            raise ConfigError(f"{path}: {axis} phrases {sorted(phrases)} and values {sorted(values)} differ")
        for name, items in phrases.items():
            if not items or not all(isinstance(p, str) for p in items):
                raise ConfigError(f"{path}: {axis}.{name} needs a list of phrases")
    return w
