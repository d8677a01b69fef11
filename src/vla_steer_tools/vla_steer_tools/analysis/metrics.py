"""Episode metrics on plain arrays: how fast and where the end effector moved.

These are the measures the steering paper reports (METHOD.md section 4): the mean 3-D end-effector
displacement per control step (speed), the mean y / z displacement per step and the max height
(direction), plus path length and min height. Inputs are numpy arrays of end-effector positions,
one row per control step, in metres; nothing here knows about ROS or the simulator, so the LIBERO
bridge, the bag reader and the demo report all compute them the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class EpisodeMetrics:
    """Motion summary of one trajectory (or one slice of it).

    steps: number of steps = rows - 1. mean_step_displacement: mean |p[t+1] - p[t]|, m per step.
    path_length: sum of those, m. max_height / min_height: extreme z, m.
    mean_dx / mean_dy / mean_dz: mean signed per-step displacement along each axis, m per step
    (the paper's y / z displacement). net_displacement: |p[-1] - p[0]|, m.
    """

    steps: int
    mean_step_displacement: float
    path_length: float
    max_height: float
    min_height: float
    mean_dx: float
    mean_dy: float
    mean_dz: float
    net_displacement: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def as_positions(positions: np.ndarray) -> np.ndarray:
    """Validate positions: float64 (T, 3), T >= 1, all finite."""
    arr = np.asarray(positions, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise ValueError(f"positions must have shape (T >= 1, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        rows = np.unique(np.nonzero(~np.isfinite(arr))[0]).tolist()
        raise ValueError(f"positions contain NaN/inf at rows {rows}")
    return arr


def step_displacements(positions: np.ndarray) -> np.ndarray:
    """Euclidean distance moved at each step: (T - 1,) from positions (T, 3)."""
    pos = as_positions(positions)
    return np.linalg.norm(np.diff(pos, axis=0), axis=1)  # (T-1,)


def episode_metrics(positions: np.ndarray) -> EpisodeMetrics:
    """All metrics of one trajectory. A single position gives zero motion, not NaN."""
    pos = as_positions(positions)  # (T, 3)
    deltas = np.diff(pos, axis=0)  # (T-1, 3)
    dists = np.linalg.norm(deltas, axis=1)  # (T-1,)
    steps = int(deltas.shape[0])
    mean_delta = deltas.mean(axis=0) if steps else np.zeros(3)  # (3,)
    return EpisodeMetrics(
        steps=steps,
        mean_step_displacement=float(dists.mean()) if steps else 0.0,
        path_length=float(dists.sum()),
        max_height=float(pos[:, 2].max()),
        min_height=float(pos[:, 2].min()),
        mean_dx=float(mean_delta[0]),
        mean_dy=float(mean_delta[1]),
        mean_dz=float(mean_delta[2]),
        net_displacement=float(np.linalg.norm(pos[-1] - pos[0])),
    )


def relative_change(baseline: float, value: float) -> float:
    """(value - baseline) / |baseline|, e.g. +0.277 for the paper's +27.7 % speed-up.

    NaN when the baseline is zero: "no motion before" has no meaningful ratio.
    """
    if baseline == 0.0:
        return float("nan")
    return (value - baseline) / abs(baseline)


def compare(baseline: EpisodeMetrics, other: EpisodeMetrics) -> dict[str, float]:
    """Relative change of each float metric from `baseline` to `other` (e.g. before vs after
    steering was switched on)."""
    base, new = baseline.as_dict(), other.as_dict()
    return {k: relative_change(float(base[k]), float(new[k])) for k in base if k != "steps"}
