"""Forward kinematics and end-effector-delta inverse kinematics of one UR arm.

FK and Jacobians are pinocchio's; the IK step is pink's differential IK (a QP per iteration,
solved by daqp, with the arm's joint position limits as constraints). This module only chains
them and decides when to refuse: a target the solver cannot reach within `position_tolerance_m`
/ `rotation_tolerance_rad` (UnreachableTargetError), or a start or result whose Jacobian's
smallest singular value is under `min_singular_value` (SingularConfigurationError): near a
singularity a small tool motion needs a large, badly defined joint motion, which is the motion
a safety-minded controller must not send.

Conventions: positions in metres and orientations in `base_link` (see ur_models.py); a delta
is a translation of the tool origin in base_link plus an axis-angle rotation about base_link's
axes applied on the left (R_target = exp(delta_rot) @ R_now), the convention of LIBERO / robosuite
end-effector deltas and of a MoveIt Servo twist in the planning frame. Joint vectors are in
ur_models.JOINT_NAMES order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pinocchio as pin
import pink
from pink.limits import ConfigurationLimit
from pink.tasks import FrameTask

from .errors import KinematicsError, SingularConfigurationError, UnreachableTargetError
from .ur_models import JOINT_NAMES, TOOL_FRAME, build_model

#: The QP solver pink hands each differential-IK step to (installed from PyPI as `daqp`).
QP_SOLVER = "daqp"


@dataclass(frozen=True)
class ToolPose:
    """The tool0 pose in base_link: position (3,) m, rotation (3, 3), quaternion (4,) x y z w."""

    position_m: np.ndarray
    rotation: np.ndarray

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        return pin.Quaternion(self.rotation).normalized().coeffs().copy()  # pinocchio stores x y z w


@dataclass(frozen=True)
class IKSettings:
    """When the IK answers and when it refuses. Defaults fit 10-100 Hz steps of a few cm."""

    position_tolerance_m: float = 1e-4
    rotation_tolerance_rad: float = 1e-3
    #: Smallest singular value of the 6x6 tool Jacobian (base_link-aligned, m/rad and rad/rad).
    #: The home pose [0, -pi/2, pi/2, -pi/2, -pi/2, 0] has 0.22 (UR5 and UR5e); a wrist or elbow
    #: singularity has 0.
    min_singular_value: float = 0.01
    max_iterations: int = 60
    #: Levenberg-Marquardt damping of pink's frame task: keeps each step bounded near singularities.
    lm_damping: float = 1e-6


class ArmKinematics:
    """Kinematics of arm `model_name` ("ur5" or "ur5e"); not thread-safe (one pinocchio Data)."""

    def __init__(self, model_name: str, settings: IKSettings | None = None) -> None:
        self.model_name = model_name
        self.settings = settings or IKSettings()
        self.model = build_model(model_name)
        self.data = self.model.createData()
        self.tool_frame_id = self.model.getFrameId(TOOL_FRAME)
        self._limits = [ConfigurationLimit(self.model)]
        self.joint_names = JOINT_NAMES

    # ------------------------------------------------------------------ inputs
    def joint_vector(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """Positions of our six joints, in JOINT_NAMES order, from any (name, position) listing.

        KinematicsError naming the missing joints (another arm's joint_states, a gripper-only
        message) or non-finite positions.
        """
        by_name: Mapping[str, float] = dict(zip(names, positions))
        missing = [n for n in self.joint_names if n not in by_name]
        if missing:
            raise KinematicsError(f"joint positions lack {self.model_name} joints {missing}")
        return self._check_q([by_name[n] for n in self.joint_names])

    def _check_q(self, q: object) -> np.ndarray:
        arr = _finite_vector(q, "joint positions", self.model.nq)
        lo, hi = self.model.lowerPositionLimit, self.model.upperPositionLimit
        outside = np.flatnonzero((arr < lo) | (arr > hi))
        if outside.size:
            i = int(outside[0])
            raise KinematicsError(f"{self.joint_names[i]} at {arr[i]:.4g} rad is outside the {self.model_name} "
                                  f"range [{lo[i]:.4g}, {hi[i]:.4g}]")
        return arr

    # ------------------------------------------------------------------ forward
    def forward(self, q: object) -> ToolPose:
        """The tool0 pose in base_link at joint positions q (rad, (6,))."""
        q = self._check_q(q)
        pin.framesForwardKinematics(self.model, self.data, q)
        placement = self.data.oMf[self.tool_frame_id]
        return ToolPose(placement.translation.copy(), placement.rotation.copy())

    def jacobian(self, q: object) -> np.ndarray:
        """(6, 6) tool Jacobian: rows vx vy vz wx wy wz in base_link axes at the tool origin."""
        q = self._check_q(q)
        return pin.computeFrameJacobian(self.model, self.data, q, self.tool_frame_id,
                                        pin.ReferenceFrame.LOCAL_WORLD_ALIGNED).copy()

    def min_singular_value(self, q: object) -> float:
        """Distance from a singularity: the Jacobian's smallest singular value (0 = singular)."""
        return float(np.linalg.svd(self.jacobian(q), compute_uv=False)[-1])

    # ------------------------------------------------------------------ inverse
    def solve_delta(self, q: object, translation_m: object, rotation_axis_angle_rad: object) -> np.ndarray:
        """Joint targets (rad, (6,)) that move the tool by the delta from joint positions q.

        Raises KinematicsError (bad input), SingularConfigurationError (start or result near a
        singularity) or UnreachableTargetError (residual above the tolerances after the solve).
        """
        q = self._check_q(q)
        dp = _finite_vector(translation_m, "translation delta", 3)
        dr = _finite_vector(rotation_axis_angle_rad, "rotation delta", 3)
        with np.errstate(over="ignore"):  # a norm that overflows is refused as inf
            angle = float(np.linalg.norm(dr))
        if angle > np.pi:  # past pi an axis-angle names the same rotation the short way round
            raise KinematicsError(f"rotation delta of {angle:.4g} rad is more than pi")
        self._check_singularity(q, "current configuration")
        now = self.forward(q)
        target = pin.SE3(pin.exp3(dr) @ now.rotation, now.position_m + dp)
        q_out = self._solve(q, target)
        self._check_residual(q_out, target)
        self._check_singularity(q_out, "IK solution")
        return q_out

    def _solve(self, q: np.ndarray, target: pin.SE3) -> np.ndarray:
        """pink's differential IK iterated to the target (dt = 1: each QP solution is a full step)."""
        s = self.settings
        task = FrameTask(TOOL_FRAME, position_cost=1.0, orientation_cost=1.0, lm_damping=s.lm_damping)
        task.set_target(target)
        configuration = pink.Configuration(self.model, self.data, q)
        for _ in range(s.max_iterations):
            error = task.compute_error(configuration)  # (6,) position then orientation
            if np.linalg.norm(error[:3]) < 0.1 * s.position_tolerance_m and \
                    np.linalg.norm(error[3:]) < 0.1 * s.rotation_tolerance_rad:
                break
            try:
                velocity = pink.solve_ik(configuration, [task], dt=1.0, solver=QP_SOLVER, limits=self._limits)
            except (pink.exceptions.PinkError, ValueError) as exc:
                raise UnreachableTargetError(f"the IK QP has no solution ({type(exc).__name__}: {exc})") from exc
            if not np.all(np.isfinite(velocity)):
                raise UnreachableTargetError(f"the IK QP returned a non-finite step {velocity.tolist()}")
            configuration.integrate_inplace(velocity, 1.0)
        return np.array(configuration.q, dtype=np.float64)

    def _check_residual(self, q: np.ndarray, target: pin.SE3) -> None:
        reached = self.forward(q)
        position_error = float(np.linalg.norm(target.translation - reached.position_m))
        rotation_error = float(np.linalg.norm(pin.log3(target.rotation @ reached.rotation.T)))
        s = self.settings
        if position_error > s.position_tolerance_m or rotation_error > s.rotation_tolerance_rad:
            raise UnreachableTargetError(
                f"{self.model_name} cannot reach the target {np.round(target.translation, 4).tolist()} m: residual "
                f"{position_error * 1000:.2f} mm / {np.degrees(rotation_error):.3f} deg after the solve (tolerance "
                f"{s.position_tolerance_m * 1000:g} mm / {np.degrees(s.rotation_tolerance_rad):.3g} deg)")

    def _check_singularity(self, q: np.ndarray, what: str) -> None:
        sigma = self.min_singular_value(q)
        if sigma < self.settings.min_singular_value:
            raise SingularConfigurationError(
                f"{what} is near a singularity: smallest Jacobian singular value {sigma:.4g} < "
                f"{self.settings.min_singular_value:g} (joints {np.round(q, 3).tolist()} rad)")


def _finite_vector(values: object, what: str, size: int) -> np.ndarray:
    """`values` as a finite float64 vector of `size`; KinematicsError otherwise."""
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise KinematicsError(f"{what} is not numeric: {exc}") from exc
    if arr.size != size:
        raise KinematicsError(f"{what} has {arr.size} values; expected {size}")
    if not np.all(np.isfinite(arr)):
        raise KinematicsError(f"{what} has non-finite values: {arr.tolist()}")
    return arr
