"""The last gate between the node and the robot: every outgoing command, holds included, is checked
here after every other transformation (scaling, clipping, rate limiting, unit conversion).

Why a separate, final check: the limiting functions in safety.py *transform* a command towards the
limits, and a transformation can be wrong (order of clip and rate limit, a non-finite reference, a
measured position already outside the box). The gate does not transform anything; it only answers
"may exactly these numbers go out?" against the same limits, so a bug upstream ends as a refused
command with a reason instead of an unsafe one. It refuses whatever it cannot check: non-finite
values, wrong lengths, a missing reference, malformed or NaN limits.

Pure numpy, no ROS, so it is tested as a property (tests/node/test_gate_properties.py).
"""

from __future__ import annotations

import math

import numpy as np

from .safety import SafetyLimits, UnsafeCommandError

#: Slack for floating-point rounding of values the limiters put exactly on a bound.
TOLERANCE = 1e-9
#: Values in an ee_delta command: dx dy dz droll dpitch dyaw gripper.
EE_DELTA_SIZE = 7


def as_vector(values: object, what: str) -> np.ndarray:
    """`values` as a finite 1-D float64 array; UnsafeCommandError for anything else."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UnsafeCommandError(f"{what} is not numeric: {exc}") from exc
    if arr.ndim != 1:
        raise UnsafeCommandError(f"{what} has shape {arr.shape}; expected a 1-D vector")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise UnsafeCommandError(f"{what} has non-finite values at indices {bad}")
    return arr


class CommandGate:
    """Checks final command values against `limits`; raises UnsafeCommandError naming the breach."""

    def __init__(self, limits: SafetyLimits, period_s: float, linear_m_per_unit: float) -> None:
        self.limits = limits
        self.period_s = period_s
        self.linear_m_per_unit = linear_m_per_unit

    # ------------------------------------------------------------------ joint modes
    def check_joints(self, positions: object, reference: object | None, n_joints: int) -> np.ndarray:
        """Joint positions (rad, (J,)): J == n_joints, inside the box, within one period's speed
        of `reference` (the last command sent, or the measured positions before the first)."""
        pos = as_vector(positions, "joint command")
        if n_joints <= 0 or pos.size != n_joints:
            raise UnsafeCommandError(f"joint command has {pos.size} values for {n_joints} named joints")
        self._check_joint_box(pos)
        self._check_joint_speed(pos, reference)
        return pos

    def _check_joint_box(self, pos: np.ndarray) -> None:
        lo, hi = self.limits.joint_min_rad, self.limits.joint_max_rad
        if lo.size == 0 and hi.size == 0:
            return
        lo = as_vector(lo, "limits.joint_position_min_rad")
        hi = as_vector(hi, "limits.joint_position_max_rad")
        if lo.size != pos.size or hi.size != pos.size:
            raise UnsafeCommandError(f"joint command has {pos.size} joints but the joint limits have "
                                     f"{lo.size} / {hi.size}")
        outside = np.flatnonzero((pos < lo - TOLERANCE) | (pos > hi + TOLERANCE))
        if outside.size:
            i = int(outside[0])
            raise UnsafeCommandError(f"joint {i} command {pos[i]:.4g} rad is outside its limits "
                                     f"[{lo[i]:.4g}, {hi[i]:.4g}]")

    def _check_joint_speed(self, pos: np.ndarray, reference: object | None) -> None:
        max_vel = float(self.limits.max_joint_vel_rad_s)
        if math.isnan(max_vel):
            raise UnsafeCommandError("limits.max_joint_vel_rad_s is NaN: the speed cannot be checked")
        if max_vel == math.inf:
            return
        if reference is None:
            raise UnsafeCommandError("no reference position (last command or joint_states): "
                                     "the joint speed cannot be checked")
        ref = as_vector(reference, "joint reference position")
        if ref.shape != pos.shape:
            raise UnsafeCommandError(f"joint reference has {ref.size} values for {pos.size} joints")
        max_step = max_vel * self._period()
        step = np.abs(pos - ref)
        fast = np.flatnonzero(step > max_step + TOLERANCE)
        if fast.size:
            i = int(fast[0])
            raise UnsafeCommandError(f"joint {i} would move {step[i]:.4g} rad in one period "
                                     f"(limit {max_step:.4g} rad = {max_vel:g} rad/s)")

    # ------------------------------------------------------------------ end-effector modes
    def check_ee_delta(self, action: object, ee_position_m: object | None) -> np.ndarray:
        """A 7-D ee delta in model units: finite, step within max_ee_step_m, target in the box."""
        a = as_vector(action, "ee delta command")
        if a.size != EE_DELTA_SIZE:
            raise UnsafeCommandError(f"ee delta command has {a.size} values; expected {EE_DELTA_SIZE}")
        scale = float(self.linear_m_per_unit)
        if not math.isfinite(scale):
            raise UnsafeCommandError(f"output.ee_linear_m_per_unit {scale!r} is not finite")
        self._check_ee_step(a[:3] * scale if scale > 0 else np.zeros(3), ee_position_m)
        return a

    def check_twist(self, linear_m_s: object, angular_rad_s: object, ee_position_m: object | None) -> None:
        """A twist (m/s, rad/s; (3,) each): one period of it obeys the ee step and box limits."""
        linear = as_vector(linear_m_s, "twist linear")
        angular = as_vector(angular_rad_s, "twist angular")
        if linear.size != 3 or angular.size != 3:
            raise UnsafeCommandError(f"twist has {linear.size} + {angular.size} values; expected 3 + 3")
        self._check_ee_step(linear * self._period(), ee_position_m)

    def check_ee_position(self, ee_position_m: object, slack_m: float = 0.0) -> None:
        """An end-effector position (m, (3,)) that a command will reach is inside the box.

        `slack_m` admits a solver's tolerance (ee_delta_ik: the IK residual), never more."""
        slack = float(slack_m)
        if not (math.isfinite(slack) and 0.0 <= slack <= 0.01):
            raise UnsafeCommandError(f"workspace slack {slack!r} m is not in [0, 0.01]")
        lo, hi = self.limits.workspace_min_m, self.limits.workspace_max_m
        if lo.size == 0 and hi.size == 0:
            return
        lo, hi = as_vector(lo, "limits.workspace_min_m"), as_vector(hi, "limits.workspace_max_m")
        pos = as_vector(ee_position_m, "end-effector position")
        if lo.size != 3 or hi.size != 3 or pos.size != 3:
            raise UnsafeCommandError(f"workspace check needs 3 values each, have {lo.size} / {hi.size} / {pos.size}")
        if np.any(pos < lo - slack - TOLERANCE) or np.any(pos > hi + slack + TOLERANCE):
            raise UnsafeCommandError(f"end-effector position {np.round(pos, 4).tolist()} m at the command is outside "
                                     f"the workspace box {lo.tolist()} .. {hi.tolist()}")

    def _check_ee_step(self, step_m: np.ndarray, ee_position_m: object | None) -> None:
        step_m = as_vector(step_m, "end-effector step")
        max_step = float(self.limits.max_ee_step_m)
        if math.isnan(max_step):
            raise UnsafeCommandError("limits.max_ee_step_m is NaN: the step cannot be checked")
        norm = float(np.linalg.norm(step_m))
        if not norm <= max_step * (1 + TOLERANCE) + TOLERANCE:
            raise UnsafeCommandError(f"end-effector step {norm:.4g} m exceeds limits.max_ee_step_m {max_step:.4g} m")
        self._check_workspace(step_m, ee_position_m)

    def _check_workspace(self, step_m: np.ndarray, ee_position_m: object | None) -> None:
        lo, hi = self.limits.workspace_min_m, self.limits.workspace_max_m
        if lo.size == 0 and hi.size == 0:
            return
        lo, hi = as_vector(lo, "limits.workspace_min_m"), as_vector(hi, "limits.workspace_max_m")
        if lo.size != 3 or hi.size != 3:
            raise UnsafeCommandError(f"workspace limits need 3 values each, have {lo.size} / {hi.size}")
        if ee_position_m is None:
            raise UnsafeCommandError("workspace box configured but no end-effector pose received (ee_pose)")
        pos = as_vector(ee_position_m, "end-effector position")
        if pos.size != 3:
            raise UnsafeCommandError(f"end-effector position has {pos.size} values; expected 3")
        target = pos + step_m
        if np.any(target < lo - TOLERANCE) or np.any(target > hi + TOLERANCE):
            raise UnsafeCommandError(f"end-effector target {np.round(target, 4).tolist()} m is outside the "
                                     f"workspace box {lo.tolist()} .. {hi.tolist()}")

    def _period(self) -> float:
        period = float(self.period_s)
        if not (math.isfinite(period) and period > 0):
            raise UnsafeCommandError(f"control period {period!r} s is not a positive number")
        return period
