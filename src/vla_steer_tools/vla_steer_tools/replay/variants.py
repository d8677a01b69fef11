"""Steering variants of an open-loop replay: the unsteered model, each concept at each alpha, and
(for validation) matched random controls and instruction adverbs.

A variant is plain data; `steering_config` turns it into what `SteeredPolicy.update` takes. Alpha 0
means "not steered" (in override mode alpha 0 would zero the neurons, an ablation, which is not
what a dose-response's zero dose is), so it folds into the one unsteered variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import ConfigError
from ..steering.directions import Direction, DirectionLibrary, check_alpha
from ..steering.hooks import SteeringConfig

UNSTEERED = "unsteered"


@dataclass(frozen=True)
class Variant:
    """name: unique label ("unsteered", "fast a=8", "fast random0 a=8", "adverb 'quickly'").
    kind: unsteered | concept | control | adverb. seed: the random control's seed (-1 otherwise)."""

    name: str
    kind: str = "unsteered"
    concept: str = ""
    alpha: float = 0.0
    directions: tuple[Direction, ...] = ()
    instruction_suffix: str = ""
    seed: int = -1

    def steering_config(self, position: str = "") -> SteeringConfig:
        return SteeringConfig(directions=self.directions, enabled=bool(self.directions), position=position)

    def instruction(self, base: str) -> str:
        return base + self.instruction_suffix


def concept_variant(name: str, kind: str, concept: str, direction: Direction, alpha: float,
                    mode: str | None = None, seed: int = -1) -> Variant:
    return Variant(name, kind, concept, float(alpha), (direction.with_options(alpha=alpha, mode=mode),), seed=seed)


def plan_variants(library: DirectionLibrary, concepts: Sequence[str], alphas: Sequence[float],
                  mode: str | None = None) -> list[Variant]:
    """[unsteered] + every concept at every nonzero alpha, in that order."""
    for a in alphas:
        check_alpha(a)
    missing = [c for c in concepts if c not in library]
    if missing:
        raise ConfigError(f"no direction {', '.join(map(repr, missing))} in the direction folders; "
                          f"have: {', '.join(library.names()) or 'none'}")
    out = [Variant(UNSTEERED)]
    for concept in concepts:
        for alpha in alphas:
            if alpha != 0:
                out.append(concept_variant(f"{concept} a={alpha:g}", "concept", concept, library.get(concept), alpha, mode))
    return out
