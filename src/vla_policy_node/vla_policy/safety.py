"""Limits applied to a model's action on its way to the robot: finite values, joint position and
velocity limits, an end-effector step limit and workspace box, and a watchdog on input ages.
The functions here move a command towards the limits; gate.py then checks the final numbers.

Pure numpy, no ROS: the node calls these on every command, tests call them directly. Every check is
conservative: a value that cannot be checked (NaN, unknown pose with a box configured) is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .params import PolicyParams


@dataclass(frozen=True)
class SafetyLimits:
    """Limits from the node's parameters; empty arrays mean "no limit of that kind"."""

    joint_min_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))
    joint_max_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))
    max_joint_vel_rad_s: float = math.inf
    workspace_min_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    workspace_max_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    max_ee_step_m: float = math.inf

    @classmethod
    def from_params(cls, p: PolicyParams) -> SafetyLimits:
        return cls(
            joint_min_rad=np.asarray(p.limits_joint_position_min_rad, dtype=np.float64),
            joint_max_rad=np.asarray(p.limits_joint_position_max_rad, dtype=np.float64),
            max_joint_vel_rad_s=p.limits_max_joint_vel_rad_s,
            workspace_min_m=np.asarray(p.limits_workspace_min_m, dtype=np.float64),
            workspace_max_m=np.asarray(p.limits_workspace_max_m, dtype=np.float64),
            max_ee_step_m=p.limits_max_ee_step_m,
        )

    @property
    def has_workspace(self) -> bool:
        return self.workspace_min_m.size == 3 and self.workspace_max_m.size == 3


class UnsafeCommandError(ValueError):
    """A command that must not be sent (the message says why)."""


def require_finite(values: np.ndarray, what: str) -> None:
    """Raise UnsafeCommandError if any value is NaN or infinite."""
    values = np.asarray(values)
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values.reshape(-1)))
        raise UnsafeCommandError(f"{what} has non-finite values at flat indices {bad.tolist()}")


def limit_joint_command(target: np.ndarray, previous: np.ndarray | None, limits: SafetyLimits,
                        period_s: float) -> np.ndarray:
    """Rate-limit joint targets (rad, (J,)) from `previous`, then clip them to the position box.

    The box comes last so that the result is always inside it, whatever `previous` was (a measured
    position outside the box used to pull the rate-limited command out of it). A result that then
    moves faster than the limit (`previous` far outside the box) is refused by the gate (gate.py).
    `previous` is the last command sent (or the measured position before the first); None skips
    the rate limit.
    """
    require_finite(target, "joint target")
    out = np.asarray(target, dtype=np.float64).copy()  # (J,)
    if previous is not None and math.isfinite(limits.max_joint_vel_rad_s):
        previous = np.asarray(previous, dtype=np.float64)
        if previous.shape != out.shape:
            raise UnsafeCommandError(f"joint target shape {out.shape} != current joints {previous.shape}")
        require_finite(previous, "joint reference position")
        max_step = limits.max_joint_vel_rad_s * period_s
        out = previous + np.clip(out - previous, -max_step, max_step)
    if limits.joint_min_rad.size:
        if limits.joint_min_rad.size != out.size or limits.joint_max_rad.size != out.size:
            raise UnsafeCommandError(f"joint target has {out.size} joints but limits have "
                                     f"{limits.joint_min_rad.size}")
        out = np.clip(out, limits.joint_min_rad, limits.joint_max_rad)
    return out


def limit_ee_translation(delta_m: np.ndarray, ee_pos_m: np.ndarray | None,
                         limits: SafetyLimits) -> np.ndarray:
    """Scale an xyz step (m, (3,)) down to max_ee_step_m, then clip so the target stays in the box.

    With a workspace box configured and no known end-effector position, raises: the step cannot
    be checked.
    """
    require_finite(delta_m, "end-effector step")
    delta = np.asarray(delta_m, dtype=np.float64).copy()  # (3,)
    norm = float(np.linalg.norm(delta))
    if norm > limits.max_ee_step_m and norm > 0:
        delta *= limits.max_ee_step_m / norm
    if limits.has_workspace:
        if ee_pos_m is None:
            raise UnsafeCommandError("workspace box configured but no end-effector pose received (ee_pose)")
        pos = np.asarray(ee_pos_m, dtype=np.float64)
        if pos.shape != (3,):
            raise UnsafeCommandError(f"end-effector position has shape {pos.shape}; expected (3,)")
        require_finite(pos, "end-effector position")
        target = np.clip(pos + delta, limits.workspace_min_m, limits.workspace_max_m)
        # Already outside the box: allow only motion back towards it.
        delta = target - pos
    return delta


class Watchdog:
    """Ages of named inputs against per-input maximum ages (seconds, monotonic clock).

    An input never seen is stale. A maximum age of 0 means "must have been seen once" (a latched
    instruction does not expire). An input whose last message was rejected (non-finite values, an
    over-long instruction) is invalid until a good one arrives, whether or not its age is watched:
    the node must not keep acting on the value before the bad one as if nothing happened.
    """

    def __init__(self, max_age_s: dict[str, float]) -> None:
        self._max_age_s = dict(max_age_s)
        self._last: dict[str, float] = {}
        self._invalid: dict[str, str] = {}

    def set_max_ages(self, max_age_s: dict[str, float]) -> None:
        self._max_age_s = dict(max_age_s)

    def feed(self, name: str, now_s: float) -> None:
        self._last[name] = now_s
        self._invalid.pop(name, None)

    def invalidate(self, name: str, reason: str) -> None:
        """Mark `name` bad (its last message was rejected) until the next `feed`."""
        self._invalid[name] = reason

    def last(self, name: str) -> float | None:
        return self._last.get(name)

    def stale(self, now_s: float) -> list[str]:
        """Reasons, one per stale input, e.g. "joint_states: 0.82 s old (max 0.50 s)"."""
        reasons = [f"{name}: {why}" for name, why in self._invalid.items()]
        for name, max_age in self._max_age_s.items():
            if name in self._invalid:
                continue
            last = self._last.get(name)
            if last is None:
                reasons.append(f"{name}: never received")
            elif max_age > 0 and now_s - last > max_age:
                reasons.append(f"{name}: {now_s - last:.2f} s old (max {max_age:.2f} s)")
        return reasons

    def ages(self, now_s: float, names: Iterable[str] | None = None) -> dict[str, float]:
        """Age of each input seen so far (seconds)."""
        names = self._max_age_s if names is None else names
        return {n: now_s - self._last[n] for n in names if n in self._last}


def ee_delta_to_twist(action: Sequence[float], period_s: float, linear_m_per_unit: float,
                      angular_rad_per_unit: float) -> tuple[np.ndarray, np.ndarray]:
    """A 7-D ee delta action (dx dy dz droll dpitch dyaw gripper) as (linear m/s, angular rad/s)."""
    a = np.asarray(action, dtype=np.float64)
    require_finite(a, "ee delta action")
    linear = a[:3] * linear_m_per_unit / period_s  # (3,)
    angular = a[3:6] * angular_rad_per_unit / period_s  # (3,)
    return linear, angular


def limit_ee_action(action: np.ndarray, ee_pos_m: np.ndarray | None, limits: SafetyLimits,
                    linear_m_per_unit: float) -> np.ndarray:
    """Apply the ee step limit and workspace box to a 7-D ee delta action, in the model's units.

    The xyz part is converted to metres with `linear_m_per_unit`, limited, and converted back;
    rotation and gripper pass unchanged (after the finiteness check). A step the limits leave
    alone is returned bit for bit: converting it to metres and back would change its last bits,
    and "the command is the model's row unless a limit acted" should hold exactly.
    """
    a = np.asarray(action, dtype=np.float64).copy()  # (7,)
    if a.shape != (7,):
        raise UnsafeCommandError(f"ee delta action has shape {a.shape}; expected (7,)")
    require_finite(a, "ee delta action")
    if linear_m_per_unit <= 0:
        return a
    step_m = a[:3] * linear_m_per_unit
    limited_m = limit_ee_translation(step_m, ee_pos_m, limits)  # (3,)
    if not np.array_equal(limited_m, step_m):
        a[:3] = limited_m / linear_m_per_unit
    return a
