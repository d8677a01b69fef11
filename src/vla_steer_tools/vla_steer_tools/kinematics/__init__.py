"""UR5 / UR5e kinematics (pinocchio models, pink IK): tool pose from joints, joints from a tool delta.

No ROS import: the policy node's `ee_delta_ik` mode and its `ee_pose` publisher are thin users."""

from .arm import ArmKinematics, IKSettings, ToolPose
from .errors import KinematicsError, SingularConfigurationError, UnreachableTargetError
from .ur_models import BASE_FRAME, DH_BASE_FRAME, JOINT_NAMES, TOOL_FRAME, UR_MODELS, build_model, ur_parameters

__all__ = ["ArmKinematics", "IKSettings", "ToolPose", "KinematicsError", "SingularConfigurationError",
           "UnreachableTargetError", "BASE_FRAME", "DH_BASE_FRAME", "JOINT_NAMES", "TOOL_FRAME", "UR_MODELS",
           "build_model", "ur_parameters"]
