"""One chunk step -> the command message of the configured `output.mode`, through the safety checks.

| output.mode | topic | message | action space needed |
|---|---|---|---|
| joint_trajectory | /scaled_joint_trajectory_controller/joint_trajectory | JointTrajectory | joint_* |
| joint_position | /forward_position_controller/commands | Float64MultiArray (rad) | joint_* |
| ee_twist | /servo_node/delta_twist_cmds (MoveIt Servo) | TwistStamped | ee_delta_* |
| ee_delta | vla/action | Float64MultiArray, 7 values | ee_delta_* |
| ee_delta_ik | /scaled_joint_trajectory_controller/joint_trajectory | JointTrajectory | ee_delta_* |

joint_* = joint_position_* (absolute targets) or joint_delta_* (added to the measured positions);
joint actions beyond the commanded joints (a gripper value) are not part of a joint command.
JointTrajectory carries one point, `time_from_start` = one control period, or longer when the arm is
further from the target than one period at `limits.max_joint_vel_rad_s` (see `trajectory_duration_s`).

ee_delta_ik (needs `robot.model`): the ee step limit and workspace box apply to the delta first
(tool pose from the measured joints by FK), the arm's IK turns it into joint targets (an
unreachable or near-singular target is refused, so the node holds with the reason), the joint
step is scaled down uniformly to the joint speed limit (clipping each joint alone would bend the
tool's path), a target outside the joint box is refused rather than clipped (same reason), and the
tool position at the final command must be in the workspace box.

Every message built here, holds included, passes `gate.CommandGate` last: the numbers that go out
are exactly the numbers the gate checked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, PoseStamped, Quaternion, TwistStamped, Vector3
from std_msgs.msg import Float64MultiArray, Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_steer_tools.errors import ConfigError
from vla_steer_tools.kinematics import BASE_FRAME, JOINT_NAMES, KinematicsError

from .gate import CommandGate, as_vector
from .params import PolicyParams
from .safety import SafetyLimits, UnsafeCommandError, ee_delta_to_twist, limit_ee_action, limit_joint_command

#: output.mode -> (topic, message type).
OUTPUTS: dict[str, tuple[str, type]] = {
    "joint_trajectory": ("/scaled_joint_trajectory_controller/joint_trajectory", JointTrajectory),
    "joint_position": ("/forward_position_controller/commands", Float64MultiArray),
    "ee_twist": ("/servo_node/delta_twist_cmds", TwistStamped),
    "ee_delta": ("vla/action", Float64MultiArray),
    "ee_delta_ik": ("/scaled_joint_trajectory_controller/joint_trajectory", JointTrajectory),
}
#: Longest time_from_start sent (s): a measured arm this far behind its command is a fault for the
#: watchdog and the operator, not a motion to time (and ROS durations must stay finite).
MAX_TRAJECTORY_S = 10.0
#: Modes whose command is a joint vector (their hold is the last joint command).
JOINT_OUTPUT_MODES = ("joint_trajectory", "joint_position", "ee_delta_ik")


@functools.lru_cache(maxsize=None)
def arm_kinematics(model_name: str) -> Any:
    """The ArmKinematics of `model_name`, one per process (builders are rebuilt on every parameter
    change; the model is not). Imported here, not at module load: pinocchio + pink take ~2 s."""
    from vla_steer_tools.kinematics import ArmKinematics

    return ArmKinematics(model_name)


@dataclass
class RobotState:
    """What the node knows about the robot when it commands a step."""

    joint_names: list[str]
    joint_positions: np.ndarray | None  # (J,) rad, in joint_names order; None until joint_states
    ee_position_m: np.ndarray | None  # (3,) from ee_pose; None until received
    #: (J,) rad: the last joint command that passed the gate (so always finite and in the limits).
    last_joint_command: np.ndarray | None = None


@dataclass(frozen=True)
class CommandBuilder:
    """Builds the command for one action vector: limits (safety.py), then the gate (gate.py)."""

    mode: str
    limits: SafetyLimits
    period_s: float
    linear_m_per_unit: float = 1.0
    angular_rad_per_unit: float = 1.0
    #: vla_steer_tools.kinematics.ArmKinematics of robot.model; None = "none" (no FK, no IK).
    kinematics: Any = None

    @classmethod
    def from_params(cls, p: PolicyParams) -> CommandBuilder:
        kinematics = arm_kinematics(p.robot_model) if p.robot_model != "none" else None
        return cls(p.output_mode, SafetyLimits.from_params(p), 1.0 / p.control_hz,
                   p.output_ee_linear_m_per_unit, p.output_ee_angular_rad_per_unit, kinematics)

    def tool_pose(self, names: list[str], positions: object) -> Any | None:
        """tool0 in base_link (kinematics.ToolPose) from a joint_states listing; None without
        kinematics; KinematicsError when the listing lacks the arm's joints or is not finite."""
        if self.kinematics is None:
            return None
        return self.kinematics.forward(self.kinematics.joint_vector(names, positions))

    @property
    def gate(self) -> CommandGate:
        return CommandGate(self.limits, self.period_s, self.linear_m_per_unit)

    def check_action_space(self, action_space: str) -> None:
        """ConfigError when the model's actions cannot drive this output mode."""
        joint = action_space.startswith(("joint_position", "joint_delta"))
        ee = action_space.startswith("ee_delta")
        if (self.mode.startswith("joint") and not joint) or (self.mode.startswith("ee") and not ee):
            raise ConfigError(f"output.mode {self.mode!r} cannot execute actions in space {action_space!r} "
                              f"(joint modes need joint_position_*/joint_delta_*, ee modes need ee_delta_*)")

    def build(self, action: np.ndarray, action_space: str, robot: RobotState, stamp: Time) -> Any:
        """The message for one step; UnsafeCommandError when it must not be sent.

        Only a joint command that passed the gate becomes the next rate-limit reference, so a bad
        step (NaN, out of range) can never poison the commands after it.
        """
        self.check_action_space(action_space)
        action = as_vector(action, "action")
        with np.errstate(all="ignore"):  # overflow to inf is refused by the gate, not warned about
            return self._build(action, action_space, robot, stamp)

    def _build(self, action: np.ndarray, action_space: str, robot: RobotState, stamp: Time) -> Any:
        if self.mode == "ee_delta_ik":
            return self._ik_command(action, robot, stamp)
        if self.mode.startswith("joint"):
            target = self._joint_target(action, action_space, robot)
            checked = self.gate.check_joints(target, self._reference(robot), len(robot.joint_names))
            robot.last_joint_command = checked.copy()
            return self._joint_msg(checked, robot, stamp)
        limited = limit_ee_action(action, robot.ee_position_m, self.limits, self.linear_m_per_unit)  # (7,)
        if self.mode == "ee_delta":
            checked = self.gate.check_ee_delta(limited, robot.ee_position_m)
            return Float64MultiArray(data=[float(v) for v in checked])
        self.gate.check_ee_delta(limited, robot.ee_position_m)
        linear, angular = ee_delta_to_twist(limited, self.period_s, self.linear_m_per_unit,
                                            self.angular_rad_per_unit)
        self.gate.check_twist(linear, angular, robot.ee_position_m)
        msg = TwistStamped(header=Header(stamp=stamp))
        msg.twist.linear, msg.twist.angular = Vector3(x=linear[0], y=linear[1], z=linear[2]), \
            Vector3(x=angular[0], y=angular[1], z=angular[2])
        return msg

    def hold(self, robot: RobotState, stamp: Time) -> Any | None:
        """The command that keeps the robot still, or None where sending nothing is the hold.

        ee_twist: a zero twist. ee_delta: nothing. Joint modes: the last command that passed the
        gate, checked again against the current limits; nothing before the first command. Never
        the measured positions: a sensor fault (NaN, a joint reported past its limit) must not
        become a command.
        """
        if self.mode == "ee_twist":
            return TwistStamped(header=Header(stamp=stamp))
        if self.mode not in JOINT_OUTPUT_MODES or robot.last_joint_command is None:
            return None
        last = robot.last_joint_command
        checked = self.gate.check_joints(last, last, len(robot.joint_names))
        return self._joint_msg(checked, robot, stamp)

    @staticmethod
    def _reference(robot: RobotState) -> np.ndarray | None:
        """Rate-limit reference: the last command sent, else (first command) the measured positions."""
        return robot.last_joint_command if robot.last_joint_command is not None else robot.joint_positions

    def _joint_target(self, action: np.ndarray, action_space: str, robot: RobotState) -> np.ndarray:
        if robot.joint_positions is None:
            raise UnsafeCommandError("no joint_states received: cannot check a joint command")
        n = robot.joint_positions.size
        if action.size < n:
            raise UnsafeCommandError(f"action has {action.size} values for {n} joints")
        target = np.asarray(action[:n], dtype=np.float64)  # (J,)
        if action_space.startswith("joint_delta"):
            target = robot.joint_positions + target
        return limit_joint_command(target, self._reference(robot), self.limits, self.period_s)

    def _ik_command(self, action: np.ndarray, robot: RobotState, stamp: Time) -> Any:
        """ee delta -> limits -> IK -> joint speed / box -> gate -> JointTrajectory (module docstring)."""
        kinematics = self.kinematics
        if kinematics is None:
            raise UnsafeCommandError("output.mode ee_delta_ik without robot.model: no IK to run")
        if robot.joint_positions is None:
            raise UnsafeCommandError("no joint_states received: no tool pose to move from")
        if sorted(robot.joint_names) != sorted(JOINT_NAMES):
            raise UnsafeCommandError(f"ee_delta_ik commands exactly {list(JOINT_NAMES)}; the command joints are "
                                     f"{robot.joint_names}")
        try:
            q_now = kinematics.joint_vector(robot.joint_names, robot.joint_positions)  # (6,) JOINT_NAMES order
            ee_now = kinematics.forward(q_now).position_m  # (3,) base_link
            limited = limit_ee_action(action, ee_now, self.limits, self.linear_m_per_unit)  # (7,)
            self.gate.check_ee_delta(limited, ee_now)
            q_ik = kinematics.solve_delta(q_now, limited[:3] * self.linear_m_per_unit,
                                          limited[3:6] * self.angular_rad_per_unit)
        except KinematicsError as exc:
            raise UnsafeCommandError(f"IK refused: {exc}") from exc
        order = [JOINT_NAMES.index(n) for n in robot.joint_names]
        reference = self._reference(robot)
        target = scale_joint_step(q_ik[order], reference, self.limits, self.period_s)  # (J,) command order
        boxed = limit_joint_command(target, reference, self.limits, self.period_s)
        if not np.allclose(boxed, target, rtol=0.0, atol=1e-9):
            i = int(np.argmax(np.abs(boxed - target)))
            raise UnsafeCommandError(f"IK solution puts {robot.joint_names[i]} at {target[i]:.4g} rad, outside "
                                     "the joint limits (not clipped: that would bend the tool's path)")
        checked = self.gate.check_joints(boxed, reference, len(robot.joint_names))
        reached = kinematics.forward(checked[np.argsort(order)]).position_m
        self.gate.check_ee_position(reached, slack_m=kinematics.settings.position_tolerance_m)
        robot.last_joint_command = checked.copy()
        return self._joint_msg(checked, robot, stamp)

    def _joint_msg(self, positions: np.ndarray, robot: RobotState, stamp: Time) -> Any:
        if self.mode == "joint_position":
            return Float64MultiArray(data=[float(v) for v in positions])
        duration = trajectory_duration_s(positions, robot.joint_positions, self.limits, self.period_s)
        point = JointTrajectoryPoint(positions=[float(v) for v in positions], time_from_start=_duration(duration))
        return JointTrajectory(header=Header(stamp=stamp), joint_names=list(robot.joint_names), points=[point])


def tool_pose_msg(pose: Any, stamp: Time) -> PoseStamped:
    """A kinematics.ToolPose as the PoseStamped the node publishes on ee_pose (frame base_link)."""
    (px, py, pz), (qx, qy, qz, qw) = (float(v) for v in pose.position_m), (float(v) for v in pose.quaternion_xyzw)
    msg = PoseStamped(header=Header(stamp=stamp, frame_id=BASE_FRAME))
    msg.pose.position = Point(x=px, y=py, z=pz)
    msg.pose.orientation = Quaternion(x=qx, y=qy, z=qz, w=qw)
    return msg


def scale_joint_step(target: np.ndarray, reference: np.ndarray | None, limits: SafetyLimits,
                     period_s: float) -> np.ndarray:
    """Shrink the whole step from `reference` so no joint exceeds one period at max speed.

    Unlike the per-joint clip of limit_joint_command, a uniform scale keeps the step's direction in
    joint space, so the tool still moves (to first order) along the commanded Cartesian direction.
    """
    max_vel = float(limits.max_joint_vel_rad_s)
    if reference is None or not np.isfinite(max_vel):
        return target
    step = target - np.asarray(reference, dtype=np.float64)  # (J,)
    largest = float(np.max(np.abs(step))) if step.size else 0.0
    max_step = max_vel * period_s
    if largest <= max_step:
        return target
    return reference + step * (max_step / largest)


def trajectory_duration_s(target: np.ndarray, measured: np.ndarray | None, limits: SafetyLimits,
                          period_s: float) -> float:
    """How long the trajectory controller gets to reach `target`: one period, or the time the
    farthest joint needs from where the arm IS (measured) at max_joint_vel_rad_s, if longer.

    Why: the rate limit bounds each command against the previous command, not against the arm. A
    controller that receives two commands within one period (a late-then-early pair on a loaded
    machine) replaces the first trajectory with the second from its current setpoint and must cover
    two steps in one period: the twin measured 0.86-1.0 rad/s under a 0.5 rad/s limit. Timing
    each trajectory from the measured joints keeps the implied speed at the limit."""
    max_vel = float(limits.max_joint_vel_rad_s)
    if measured is None or not (np.isfinite(max_vel) and max_vel > 0):
        return float(period_s)
    target, measured = np.asarray(target, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if target.shape != measured.shape or target.size == 0:
        return float(period_s)  # joint_states that do not match the command: nothing to time it by
    with np.errstate(all="ignore"):
        gap = np.abs(target - measured)
    if not np.all(np.isfinite(gap)):
        return float(period_s)
    return float(min(MAX_TRAJECTORY_S, max(period_s, float(np.max(gap)) / max_vel)))


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))
