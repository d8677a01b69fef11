"""One chunk step -> the command message of the configured `output.mode`, through the safety checks.

| output.mode | topic | message | action space needed |
|---|---|---|---|
| joint_trajectory | /scaled_joint_trajectory_controller/joint_trajectory | JointTrajectory | joint_* |
| joint_position | /forward_position_controller/commands | Float64MultiArray (rad) | joint_* |
| ee_twist | /servo_node/delta_twist_cmds (MoveIt Servo) | TwistStamped | ee_delta_* |
| ee_delta | vla/action | Float64MultiArray, 7 values | ee_delta_* |

joint_* = joint_position_* (absolute targets) or joint_delta_* (added to the measured positions);
joint actions beyond the commanded joints (a gripper value) are not part of a joint command.
JointTrajectory carries one point, `time_from_start` = one control period.

Every message built here, holds included, passes `gate.CommandGate` last: the numbers that go out
are exactly the numbers the gate checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import TwistStamped, Vector3
from std_msgs.msg import Float64MultiArray, Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_steer_tools.errors import ConfigError

from .gate import CommandGate, as_vector
from .params import PolicyParams
from .safety import SafetyLimits, UnsafeCommandError, ee_delta_to_twist, limit_ee_action, limit_joint_command

#: output.mode -> (topic, message type).
OUTPUTS: dict[str, tuple[str, type]] = {
    "joint_trajectory": ("/scaled_joint_trajectory_controller/joint_trajectory", JointTrajectory),
    "joint_position": ("/forward_position_controller/commands", Float64MultiArray),
    "ee_twist": ("/servo_node/delta_twist_cmds", TwistStamped),
    "ee_delta": ("vla/action", Float64MultiArray),
}


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

    @classmethod
    def from_params(cls, p: PolicyParams) -> CommandBuilder:
        return cls(p.output_mode, SafetyLimits.from_params(p), 1.0 / p.control_hz,
                   p.output_ee_linear_m_per_unit, p.output_ee_angular_rad_per_unit)

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
        if self.mode.startswith("joint"):
            target = self._joint_target(action, action_space, robot)
            checked = self.gate.check_joints(target, self._reference(robot), len(robot.joint_names))
            robot.last_joint_command = checked.copy()
            return self._joint_msg(checked, robot.joint_names, stamp)
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
        if not self.mode.startswith("joint") or robot.last_joint_command is None:
            return None
        last = robot.last_joint_command
        checked = self.gate.check_joints(last, last, len(robot.joint_names))
        return self._joint_msg(checked, robot.joint_names, stamp)

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

    def _joint_msg(self, positions: np.ndarray, names: list[str], stamp: Time) -> Any:
        if self.mode == "joint_position":
            return Float64MultiArray(data=[float(v) for v in positions])
        point = JointTrajectoryPoint(positions=[float(v) for v in positions],
                                     time_from_start=_duration(self.period_s))
        return JointTrajectory(header=Header(stamp=stamp), joint_names=list(names), points=[point])


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))
