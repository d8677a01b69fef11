"""Joint commands the way ur_robot_driver's controllers take them, as plain numpy (no ROS, no MuJoCo).

- `JointTrajectory` (scaled_joint_trajectory_controller): points reached at their `time_from_start`,
  linearly interpolated from the setpoint held when the trajectory arrived; the last point is held.
- `Float64MultiArray` (forward_position_controller): absolute positions, held from now on.
Every command is checked before it replaces the current one (`CommandError` says why it was not);
a rejected command changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


class CommandError(ValueError):
    """A malformed command (names, length, NaN, timing, limits); it is never applied."""


def check_positions(values: Sequence[float], lo: np.ndarray, hi: np.ndarray, what: str) -> np.ndarray:
    """(J,) finite positions within [lo, hi], else CommandError."""
    q = np.asarray(values, dtype=np.float64)
    if q.shape != lo.shape:
        raise CommandError(f"{what}: {q.size} values for {lo.size} joints")
    if not np.all(np.isfinite(q)):
        raise CommandError(f"{what}: non-finite value in {q.tolist()}")
    if np.any(q < lo) or np.any(q > hi):
        raise CommandError(f"{what}: {q.round(4).tolist()} outside the joint range")
    return q


def reorder(names: Sequence[str], expected: Sequence[str], rows: Sequence[Sequence[float]]) -> list[list[float]]:
    """Rows given in `names` order -> in `expected` order; CommandError unless names == set(expected)."""
    if len(names) != len(expected) or set(names) != set(expected):
        raise CommandError(f"joint_names {list(names)} must be exactly {list(expected)}")
    index = [list(names).index(n) for n in expected]
    out = []
    for row in rows:
        if len(row) != len(names):
            raise CommandError(f"a point has {len(row)} positions for {len(names)} joint_names")
        out.append([row[i] for i in index])
    return out


@dataclass
class Setpoint:
    """The joint setpoint as a function of (sim) time: a piecewise-linear path, held after its end."""

    times: np.ndarray  # (P+1,) absolute s, increasing; times[0] = when the command arrived
    positions: np.ndarray  # (P+1, J) rad; positions[0] = the setpoint at arrival

    @classmethod
    def hold(cls, now_s: float, q: np.ndarray) -> Setpoint:
        return cls(np.array([now_s]), np.asarray(q, np.float64)[None, :].copy())

    def sample(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(position (J,), velocity (J,)) of the setpoint at `t_s`."""
        times, pos = self.times, self.positions
        if t_s >= times[-1] or times.size == 1:
            return pos[-1].copy(), np.zeros(pos.shape[1])
        k = int(np.searchsorted(times, t_s, side="right")) - 1
        k = max(k, 0)
        span = times[k + 1] - times[k]
        frac = (t_s - times[k]) / span
        vel = (pos[k + 1] - pos[k]) / span
        return pos[k] + frac * (pos[k + 1] - pos[k]), vel

    def follow(self, now_s: float, offsets_s: Sequence[float], targets: np.ndarray) -> Setpoint:
        """A trajectory arriving at `now_s`: from here to each target at now + its offset."""
        offsets = np.asarray(offsets_s, dtype=np.float64)
        if offsets.size == 0:
            raise CommandError("trajectory has no points")
        if not np.all(np.isfinite(offsets)) or offsets[0] <= 0 or np.any(np.diff(offsets) <= 0):
            raise CommandError(f"time_from_start must be > 0 and increasing, got {offsets.tolist()}")
        start, _ = self.sample(now_s)
        return Setpoint(np.concatenate([[now_s], now_s + offsets]), np.vstack([start, targets]))
