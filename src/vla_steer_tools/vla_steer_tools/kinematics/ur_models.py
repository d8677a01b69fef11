"""UR5 and UR5e kinematic models for pinocchio, built from Universal Robots' published DH parameters.

Why DH and not a URDF: the parameters are six numbers per arm (UR's "DH parameters for
calculations of kinematics and dynamics"), no mesh or xacro is needed, and the two arms differ
only in them (the UR5e's d1 is 7 cm longer than the UR5's, so using the wrong model moves the
computed tool pose by centimetres: pick the one that matches the arm).

Frames, as ur_robot_driver / ur_description name them:
- `base`: UR's DH base frame, the one the teach pendant and the controller report poses in;
- `base_link`: the ROS base frame, `base` turned 180 degrees about z (ur_description's
  base_link -> base joint is rpy 0 0 pi). Everything here is expressed in `base_link`, the frame
  the joint trajectory controller, MoveIt and tf users work in, so x/y are negated against the
  pendant's numbers;
- `tool0`: the flange frame with no TCP offset (z out of the flange), equal to DH frame 6.
Joint angles are UR's own (the DH theta, no offsets), named as ur_robot_driver publishes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from vla_steer_tools.errors import UnknownChoiceError

if TYPE_CHECKING:  # pinocchio is imported where a model is built: the names here cost nothing to import
    import pinocchio as pin

#: ur_robot_driver's joint names, in kinematic-chain order.
JOINT_NAMES: tuple[str, ...] = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                                "wrist_1_joint", "wrist_2_joint", "wrist_3_joint")
BASE_FRAME = "base_link"
DH_BASE_FRAME = "base"
TOOL_FRAME = "tool0"
#: Standard-DH twist of each link (rad), the same for the whole UR series.
UR_ALPHA_RAD: tuple[float, ...] = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)


@dataclass(frozen=True)
class URParameters:
    """Standard-DH lengths (m) of one UR arm plus ur_description's joint limits."""

    name: str
    d: tuple[float, ...]  # (6,) offsets along z_{i-1}
    a: tuple[float, ...]  # (6,) lengths along x_i
    position_limit_rad: tuple[float, ...] = (2 * math.pi,) * 6  # (6,) symmetric, |q_i| <= limit
    velocity_limit_rad_s: tuple[float, ...] = (math.pi,) * 6  # (6,) both arms: 180 deg/s per joint


#: UR's published values (universal-robots.com, "DH parameters for calculations of kinematics").
#: Elbow limited to +-pi as in ur_description (the cable forbids more).
UR_MODELS: dict[str, URParameters] = {
    "ur5": URParameters("ur5", d=(0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823),
                        a=(0.0, -0.425, -0.39225, 0.0, 0.0, 0.0),
                        position_limit_rad=(2 * math.pi, 2 * math.pi, math.pi, 2 * math.pi, 2 * math.pi, 2 * math.pi)),
    "ur5e": URParameters("ur5e", d=(0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996),
                         a=(0.0, -0.425, -0.3922, 0.0, 0.0, 0.0),
                         position_limit_rad=(2 * math.pi, 2 * math.pi, math.pi, 2 * math.pi, 2 * math.pi, 2 * math.pi)),
}


def ur_parameters(name: str) -> URParameters:
    """The parameters of arm `name` ("ur5" or "ur5e"); UnknownChoiceError lists the others."""
    try:
        return UR_MODELS[name]
    except KeyError:
        raise UnknownChoiceError("arm model", name, UR_MODELS) from None


def _dh_link(d: float, a: float, alpha: float) -> pin.SE3:
    """The fixed part Tz(d) Tx(a) Rx(alpha) of one standard-DH link (the joint adds Rz(theta))."""
    import pinocchio as pin

    return pin.SE3(pin.utils.rotate("x", alpha), np.array([a, 0.0, d]))


def build_model(name: str) -> pin.Model:
    """A pinocchio model of arm `name`: universe = base_link, frames `base` and `tool0`.

    Joint i turns about the z axis of DH frame i-1 (pinocchio's revolute-z joint), placed by the
    fixed part of link i-1; base_link -> base is the 180-degree turn about z. Inertias are zero:
    only kinematics is asked of this model.
    """
    import pinocchio as pin

    params = ur_parameters(name)
    model = pin.Model()
    model.name = params.name
    base_to_dh = pin.SE3(pin.utils.rotate("z", math.pi), np.zeros(3))
    model.addFrame(pin.Frame(DH_BASE_FRAME, 0, 0, base_to_dh, pin.FrameType.OP_FRAME))
    parent, placement = 0, base_to_dh
    for i, joint_name in enumerate(JOINT_NAMES):
        limit, velocity = params.position_limit_rad[i], params.velocity_limit_rad_s[i]
        parent = model.addJoint(parent, pin.JointModelRZ(), placement, joint_name,
                                np.array([150.0]), np.array([velocity]), np.array([-limit]), np.array([limit]))
        model.appendBodyToJoint(parent, pin.Inertia.Zero(), pin.SE3.Identity())
        placement = _dh_link(params.d[i], params.a[i], UR_ALPHA_RAD[i])
    model.addFrame(pin.Frame(TOOL_FRAME, parent, 0, placement, pin.FrameType.OP_FRAME))
    return model
