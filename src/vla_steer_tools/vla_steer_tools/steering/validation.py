"""May this direction drive the arm? The causal-validation verdict and where it is kept.

The verdict per alpha (`vla-steer validate`): the concept's paired effect vs the unsteered baseline
goes the intended way, its 95% bootstrap CI excludes zero, it exceeds the 95th percentile of the
same effect of the matched random controls (same layers, count, signs, alpha), and success is kept
(the concept's success rate is at most `max_success_drop` below the baseline's; open loop has no
success, which the verdict says). The direction passes only if every tested alpha does: "any alpha"
would let one lucky alpha out of several pass by chance (with 3 controls the 95th percentile is
nearly their maximum), and this stamp gates a robot.

The verdict is written into the direction file's `provenance` text (the field that already says
where a direction came from, and which travels with it through the node's service), as one
bracketed stamp `[validation: PASS ...]` / `[validation: FAIL ...]` replacing any earlier one, so
`steering.require_validated` can refuse a direction without one.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from .directions import Direction

#: Concept -> (metric, sign): the effect each concept should have.
EXPECTED_EFFECTS: dict[str, tuple[str, int]] = {"fast": ("speed", +1), "slow": ("speed", -1),
                                                "up": ("dz", +1), "down": ("dz", -1)}
_STAMP = re.compile(r"\s*\[validation: (PASS|FAIL)[^\]]*\]")


@dataclass(frozen=True)
class AlphaVerdict:
    alpha: float
    effect: float  # mean paired difference concept - baseline
    ci95: tuple[float, float]
    relative: float
    control_effects: tuple[float, ...]
    control_p95: float  # 95th percentile of sign * control effect
    success_baseline: float  # rate, NaN if not measured
    success_concept: float
    intended: bool
    ci_excludes_zero: bool
    beyond_controls: bool
    success_kept: bool | None  # None: not measured (open loop)
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def alpha_verdict(alpha: float, sign: int, baseline: np.ndarray, concept: np.ndarray, controls: Sequence[np.ndarray],
                  success: Mapping[str, float] | None = None, max_success_drop: float = 0.1, seed: int = 0) -> AlphaVerdict:
    """baseline / concept / each control: per-pair metric values (same pairs, same order)."""
    if not controls:
        raise ValueError("a verdict needs at least one matched random control")
    from ..analysis.stats import paired_comparison  # scipy.stats: not at import (the node reads refusal_reason only)

    c = paired_comparison(concept, baseline, seed=seed)
    ctrl = tuple(float(np.nanmean(np.asarray(x, float) - np.asarray(baseline, float))) for x in controls)
    p95 = float(np.percentile([sign * x for x in ctrl], 95))
    intended = sign * c.mean_diff > 0
    excludes = (c.ci95[0] > 0) if sign > 0 else (c.ci95[1] < 0)
    beyond = sign * c.mean_diff > p95
    sb, sc = (success or {}).get("baseline", math.nan), (success or {}).get("concept", math.nan)
    # a baseline that never succeeded (episodes too short) says nothing about success: not measured
    measured = math.isfinite(sb) and math.isfinite(sc) and sb > 0
    kept = bool(sc >= sb - max_success_drop) if measured else None
    passed = bool(intended and excludes and beyond and kept is not False)
    return AlphaVerdict(float(alpha), c.mean_diff, c.ci95, c.relative, ctrl, p95, sb, sc, bool(intended),
                        bool(excludes), bool(beyond), kept, passed)


def summary_line(concept: str, verdicts: Sequence[AlphaVerdict], how: str) -> str:
    """One line for the report and the provenance stamp."""
    failing = [v for v in verdicts if not v.passed]
    best = failing[0] if failing else verdicts[-1]  # the first alpha that fails, else the strongest tested
    word = "FAIL" if failing else "PASS"
    return (f"[validation: {word} {how}; {concept} at alpha {best.alpha:g}: effect {100 * best.relative:+.1f}% "
            f"(95% CI {best.ci95[0]:+.4g}..{best.ci95[1]:+.4g}), controls' 95th pct {best.control_p95:+.4g}, success "
            f"{_success_word(best)}]")


def _success_word(v: AlphaVerdict) -> str:
    if v.success_kept is not None:
        return "kept" if v.success_kept else "lost"
    return "not measured (baseline never succeeded: longer episodes)" if math.isfinite(v.success_baseline) else "not measured"



def mark_validation(direction: Direction, stamp: str) -> Direction:
    """`direction` with `stamp` replacing any earlier validation stamp in its provenance."""
    base = _STAMP.sub("", direction.provenance).strip()
    return replace(direction, provenance=f"{base} {stamp}".strip())


def validation_state(direction: Direction) -> bool | None:
    """True if the newest stamp says PASS, False if FAIL, None if never validated."""
    found = _STAMP.findall(direction.provenance)
    return None if not found else found[-1] == "PASS"


def refusal_reason(direction: Direction) -> str | None:
    """Why `steering.require_validated` refuses `direction` (None: it may drive the arm)."""
    state = validation_state(direction)
    if state:
        return None
    if state is None:
        return (f"direction {direction.name!r} was never validated (no [validation: PASS ...] in its provenance); "
                f"run: vla-steer validate {direction.name} --out DIR, or set steering.require_validated false")
    return (f"direction {direction.name!r} FAILED validation ({_STAMP.search(direction.provenance).group(0).strip()}); "
            "it may not drive the arm while steering.require_validated is true")
