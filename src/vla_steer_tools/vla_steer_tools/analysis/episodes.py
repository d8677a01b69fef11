"""Closed-loop evaluation results: per-episode motion metrics, success rate with its confidence
interval, and the evaluation figure. Plain numpy/scipy, shared by `vla-steer eval` and the
steering study."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

#: Steps counted as the "early phase" (the approach to the object, before any grasp).
EARLY_STEPS = 40


@dataclass(frozen=True)
class EpisodeOutcome:
    """One evaluated episode. early_speed_m_s: mean end-effector speed over the first
    EARLY_STEPS steps; carry_height_m: highest hand position above the table while the fingers are
    closed on something (nan if never); mean_speed_m_s over the whole episode."""

    label: str
    instruction: str
    success: bool
    steps: int
    early_speed_m_s: float
    mean_speed_m_s: float
    carry_height_m: float
    max_height_m: float
    condition: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def motion_metrics(positions: np.ndarray, openings: np.ndarray, fps: float, table_z_m: float,
                   min_hold_opening_m: float, open_m: float = 0.07) -> dict[str, float]:
    """positions (T, 3) m; openings (T,) finger opening m. Speeds in m/s."""
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if len(pos) < 2:
        return {"early_speed_m_s": float("nan"), "mean_speed_m_s": float("nan"),
                "carry_height_m": float("nan"), "max_height_m": float("nan")}
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) * fps
    op = np.asarray(openings, dtype=np.float64).reshape(-1)[: len(pos)]
    holding = (op > min_hold_opening_m) & (op < open_m)
    carry = float(pos[: len(op)][holding, 2].max() - table_z_m) if holding.any() else float("nan")
    return {"early_speed_m_s": float(speed[:EARLY_STEPS].mean()), "mean_speed_m_s": float(speed.mean()),
            "carry_height_m": carry, "max_height_m": float(pos[:, 2].max() - table_z_m)}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sane at 0/n and n/n, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarize(outcomes: Sequence[EpisodeOutcome]) -> dict:
    n = len(outcomes)
    k = sum(o.success for o in outcomes)
    lo, hi = wilson_interval(k, n)
    ok_steps = [o.steps for o in outcomes if o.success]
    return {"episodes": n, "successes": k, "success_rate": k / n if n else float("nan"), "ci95": [lo, hi],
            "mean_steps_successful": float(np.mean(ok_steps)) if ok_steps else float("nan"),
            "mean_early_speed_m_s": float(np.nanmean([o.early_speed_m_s for o in outcomes])) if n else float("nan"),
            "mean_carry_height_m": _nanmean([o.carry_height_m for o in outcomes])}


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def format_summary(title: str, outcomes: Sequence[EpisodeOutcome]) -> str:
    s = summarize(outcomes)
    lines = [title,
             f"success: {s['successes']}/{s['episodes']} = {100 * s['success_rate']:.0f}% "
             f"(95% CI {100 * s['ci95'][0]:.0f}-{100 * s['ci95'][1]:.0f}%, Wilson)",
             f"mean steps (successful): {s['mean_steps_successful']:.0f}   early-phase speed: "
             f"{s['mean_early_speed_m_s']:.3f} m/s   carry height: {s['mean_carry_height_m']:.3f} m", "",
             f"{'episode':14s} {'ok':>3s} {'steps':>6s} {'early m/s':>10s} {'carry m':>8s}  instruction"]
    for o in outcomes:
        lines.append(f"{o.label:14s} {'yes' if o.success else 'no':>3s} {o.steps:6d} {o.early_speed_m_s:10.3f} "
                     f"{o.carry_height_m:8.3f}  {o.instruction}")
    return "\n".join(lines)


def plot_outcomes(outcomes: Sequence[EpisodeOutcome], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summarize(outcomes)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    x = np.arange(len(outcomes))
    colors = ["tab:green" if o.success else "tab:red" for o in outcomes]
    axes[0].bar(x, [o.steps for o in outcomes], color=colors)
    axes[0].set_xticks(x, [o.label for o in outcomes], rotation=90, fontsize=7)
    axes[0].set_ylabel("steps (green = success)")
    axes[0].set_title(f"success {s['successes']}/{s['episodes']} (95% CI {100 * s['ci95'][0]:.0f}-{100 * s['ci95'][1]:.0f}%)")
    axes[1].scatter([o.early_speed_m_s for o in outcomes], [o.carry_height_m for o in outcomes], c=colors)
    axes[1].set_xlabel("early-phase speed (m/s)")
    axes[1].set_ylabel("carry height above table (m)")
    axes[1].set_title("motion per episode")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
