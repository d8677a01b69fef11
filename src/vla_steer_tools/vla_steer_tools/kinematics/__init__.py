"""UR5 / UR5e kinematics (pinocchio models, pink IK): tool pose from joints, joints from a tool delta.

No ROS import: the policy node's `ee_delta_ik` mode and its `ee_pose` publisher are thin users.
The solver (pinocchio + pink + qpsolvers, about 2 s to import) loads on first use of
`ArmKinematics`, so parameter validation can read the joint names and model choices for free.
"""

from __future__ import annotations

from typing import Any

from .errors import KinematicsError, SingularConfigurationError, UnreachableTargetError
from .ur_models import BASE_FRAME, DH_BASE_FRAME, JOINT_NAMES, TOOL_FRAME, UR_MODELS, build_model, ur_parameters

_SOLVER_NAMES = ("ArmKinematics", "IKSettings", "ToolPose")

__all__ = ["ArmKinematics", "IKSettings", "ToolPose", "KinematicsError", "SingularConfigurationError",
           "UnreachableTargetError", "BASE_FRAME", "DH_BASE_FRAME", "JOINT_NAMES", "TOOL_FRAME", "UR_MODELS",
           "build_model", "ur_parameters"]


def __getattr__(name: str) -> Any:
    """Import the solver module on first use of one of its names (PEP 562)."""
    if name in _SOLVER_NAMES:
        from . import arm

        return getattr(arm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
