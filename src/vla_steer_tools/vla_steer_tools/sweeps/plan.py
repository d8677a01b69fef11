"""What a sweep runs, decided before the first episode: cells x episodes.

A cell is one steering condition: the unsteered baseline, a concept's first `size` neurons at one
alpha, a matched random control of that set (same layers, count, signs, alpha; the control's seed
picks other neurons, and the same seed gives the same neurons at every alpha, so a control's
dose-response is one set's), or the prompt baseline (the concept's word added to the instruction,
unsteered). Cell names follow the grammar `vla-steer analyze` parses: "baseline", "fast n=5 a=4",
"fast n=5 random0 a=4", "adverb 'quickly'".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

from ..errors import ConfigError
from ..interp.concepts import random_control
from ..steering.directions import Direction, DirectionLibrary, check_alpha

#: The word a prompt baseline adds for a concept (the concept itself when not listed).
PROMPT_WORDS = {"fast": "quickly", "slow": "slowly", "up": "high", "down": "low"}


@dataclass(frozen=True)
class Cell:
    """One condition. kind: baseline | concept | control | adverb. size: neurons steered (0: none)."""

    name: str
    kind: str
    concept: str = ""
    alpha: float = 0.0
    size: int = 0
    seed: int = -1
    instruction_suffix: str = ""
    directions: tuple[Direction, ...] = ()

    def label(self) -> dict:
        """The cell's identity as plain data (what the results table stores; no neuron lists)."""
        d = asdict(self)
        d.pop("directions")
        return d


@dataclass(frozen=True)
class EpisodeKey:
    """One episode start: a fixed init state or a seeded random placement."""

    label: str
    init_state: int | None = None
    placement_seed: int | None = None


def subset(direction: Direction, size: int) -> Direction:
    """The direction's first `size` neurons (files list them best first) with their signs."""
    n = len(direction.neurons)
    if not 1 <= size <= n:
        raise ConfigError(f"set size {size} for {direction.name!r}: its file has {n} neurons (sizes 1..{n}); "
                          "build a larger set with `vla-steer concepts ... --size N`")
    signs = direction.signs[:size] if direction.signs else ()
    return replace(direction, name=f"{direction.name}_n{size}", neurons=direction.neurons[:size], signs=signs)


def concept_cell_name(concept: str, size: int, alpha: float, seed: int | None = None) -> str:
    ctrl = f" random{seed}" if seed is not None else ""
    return f"{concept} n={size}{ctrl} a={alpha:g}"


def plan_cells(library: DirectionLibrary, widths: Mapping[tuple[str, int], int], concepts: Sequence[str],
               alphas: Sequence[float], sizes: Sequence[int], controls: int, prompt_baseline: bool,
               mode: str | None = None) -> list[Cell]:
    """baseline, then per concept x size x alpha the concept and its `controls` random sets, then
    (with `prompt_baseline`) one prompt cell per concept. sizes: empty = each file's own size."""
    if controls < 0:
        raise ConfigError(f"--controls {controls} must be >= 0")
    for a in alphas:
        check_alpha(a)
    if any(a == 0 for a in alphas):
        raise ConfigError("alpha 0 is the baseline cell (always run); list nonzero alphas")
    missing = [c for c in concepts if c not in library]
    if missing:
        raise ConfigError(f"no direction {', '.join(map(repr, missing))} in the direction folders; "
                          f"have: {', '.join(library.names()) or 'none'}")
    cells = [Cell("baseline", "baseline")]
    for concept in concepts:
        full = library.get(concept)
        for size in (sizes or [len(full.neurons)]):
            base = subset(full, int(size))
            ctrls = [random_control(base, dict(widths), seed=k, name=f"{base.name}_random{k}") for k in range(controls)]
            for alpha in alphas:
                cells.append(Cell(concept_cell_name(concept, size, alpha), "concept", concept, float(alpha), int(size),
                                  directions=(base.with_options(alpha=alpha, mode=mode),)))
                for k, ctrl in enumerate(ctrls):
                    cells.append(Cell(concept_cell_name(concept, size, alpha, k), "control", concept, float(alpha),
                                      int(size), seed=k, directions=(ctrl.with_options(alpha=alpha, mode=mode),)))
    if prompt_baseline:
        for concept in concepts:
            word = PROMPT_WORDS.get(concept, concept)
            cells.append(Cell(f"adverb '{word}'", "adverb", concept, instruction_suffix=f" {word}"))
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise ConfigError("duplicate cells in the plan (a concept, size or alpha listed twice)")
    return cells


def parse_episodes(text: str, seed: int) -> list[EpisodeKey]:
    """"30-39", "3,5" and/or "random:10" (placements seed*1000+k) -> episode starts, in order."""
    out: list[EpisodeKey] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            if part.startswith("random:"):
                out += [EpisodeKey(f"rand{seed}-{k}", placement_seed=seed * 1000 + k) for k in range(int(part[7:]))]
            elif "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                out += [EpisodeKey(f"init{i}", init_state=i) for i in range(lo, hi + 1)]
            else:
                out.append(EpisodeKey(f"init{int(part)}", init_state=int(part)))
        except ValueError as exc:
            raise ConfigError(f"bad --init-states item {part!r}: expected 30-39, 7 or random:10") from exc
    if not out:
        raise ConfigError("no episodes: --init-states selected none")
    if len({k.label for k in out}) != len(out):
        raise ConfigError("an episode start is listed twice in --init-states")
    return out
