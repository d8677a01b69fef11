"""Safety checks and command building: finite values, joint/ee limits, watchdog, output modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_policy.commands import CommandBuilder, RobotState
from vla_policy.params import from_mapping
from vla_policy.safety import (SafetyLimits, UnsafeCommandError, Watchdog, limit_ee_action,
                               limit_ee_translation, limit_joint_command, require_finite)
from vla_steer_tools.errors import ConfigError

BOX = SafetyLimits(workspace_min_m=np.array([0.0, 0.0, 0.0]), workspace_max_m=np.array([1.0, 1.0, 1.0]),
                   max_ee_step_m=0.1)


def test_require_finite_names_the_bad_index():
    require_finite(np.ones(3), "x")
    with pytest.raises(UnsafeCommandError, match=r"\[1, 2\]"):
        require_finite(np.array([0.0, np.nan, np.inf]), "x")


def test_joint_position_and_velocity_limits():
    limits = SafetyLimits(joint_min_rad=np.array([-1.0, -1.0]), joint_max_rad=np.array([1.0, 1.0]),
                          max_joint_vel_rad_s=2.0)
    out = limit_joint_command(np.array([5.0, -0.05]), np.array([0.95, 0.0]), limits, period_s=0.1)
    assert np.allclose(out, [1.0, -0.05])  # clipped to the box; the small move passes
    out = limit_joint_command(np.array([0.9, -0.9]), np.array([0.0, 0.0]), limits, period_s=0.1)
    assert np.allclose(out, [0.2, -0.2])  # 2 rad/s * 0.1 s
    with pytest.raises(UnsafeCommandError):
        limit_joint_command(np.array([np.nan, 0.0]), None, limits, 0.1)
    with pytest.raises(UnsafeCommandError, match="3 joints"):
        limit_joint_command(np.zeros(3), None, limits, 0.1)


def test_ee_step_is_scaled_down_keeping_direction():
    out = limit_ee_translation(np.array([0.3, 0.4, 0.0]), None, SafetyLimits(max_ee_step_m=0.1))
    assert math.isclose(float(np.linalg.norm(out)), 0.1) and math.isclose(out[0] / out[1], 0.75)


def test_workspace_box_clips_and_needs_a_pose():
    out = limit_ee_translation(np.array([0.0, 0.0, 0.05]), np.array([0.5, 0.5, 0.98]), BOX)
    assert np.allclose(out, [0.0, 0.0, 0.02])
    with pytest.raises(UnsafeCommandError, match="ee_pose"):
        limit_ee_translation(np.zeros(3), None, BOX)


def test_ee_action_limits_in_model_units():
    action = np.array([1.0, 0.0, 0.0, 0.1, 0.2, 0.3, -1.0])
    out = limit_ee_action(action, None, SafetyLimits(max_ee_step_m=0.02), linear_m_per_unit=0.05)
    assert np.allclose(out, [0.4, 0.0, 0.0, 0.1, 0.2, 0.3, -1.0])
    with pytest.raises(UnsafeCommandError):
        limit_ee_action(np.full(7, np.inf), None, SafetyLimits(), 0.05)


def test_watchdog_ages_and_latched_inputs():
    wd = Watchdog({"camera a": 0.5, "instruction": 0.0})
    assert len(wd.stale(0.0)) == 2 and "never received" in wd.stale(0.0)[0]
    wd.feed("camera a", 10.0)
    wd.feed("instruction", 0.0)
    assert wd.stale(10.4) == []
    assert wd.stale(10.6) == ["camera a: 0.60 s old (max 0.50 s)"]
    assert wd.stale(1000.0)[0].startswith("camera a")  # instruction with max age 0 never expires
    assert set(wd.ages(10.5)) == {"camera a", "instruction"}


def _builder(mode: str, **params) -> CommandBuilder:
    p = from_mapping({"output.mode": mode, **params})
    return CommandBuilder(mode, SafetyLimits.from_params(p), 0.1, p.output_ee_linear_m_per_unit,
                          p.output_ee_angular_rad_per_unit)


def test_ee_delta_and_twist_commands():
    robot = RobotState([], None, None)
    action = np.array([0.01, 0.0, -0.02, 0.0, 0.0, 0.1, 1.0])
    msg = _builder("ee_delta").build(action, "ee_delta_7d", robot, Time())
    assert isinstance(msg, Float64MultiArray) and np.allclose(msg.data, action)
    twist = _builder("ee_twist").build(action, "ee_delta_7d", robot, Time())
    assert isinstance(twist, TwistStamped)
    assert math.isclose(twist.twist.linear.z, -0.2) and math.isclose(twist.twist.angular.z, 1.0)
    assert _builder("ee_twist").hold(robot, Time()).twist.linear.x == 0.0
    assert _builder("ee_delta").hold(robot, Time()) is None


def test_joint_commands_are_limited_and_named():
    b = _builder("joint_trajectory", **{"limits.max_joint_vel_rad_s": 1.0,
                                        "limits.joint_position_min_rad": [-1.0, -1.0],
                                        "limits.joint_position_max_rad": [1.0, 1.0]})
    robot = RobotState(["a", "b"], np.array([0.0, 0.5]), None)
    msg = b.build(np.array([0.5, 2.0, 1.0]), "joint_position_7d", robot, Time())  # 3rd value: gripper
    assert isinstance(msg, JointTrajectory) and msg.joint_names == ["a", "b"]
    assert np.allclose(msg.points[0].positions, [0.1, 0.6])
    msg = b.build(np.array([0.05, 0.0, 0.0]), "joint_delta_7d", robot, Time())
    assert np.allclose(msg.points[0].positions, [0.05, 0.5])  # delta from measured, vel-limited from last
    # the hold is the last command that went out, never the measured positions
    assert np.allclose(b.hold(robot, Time()).points[0].positions, [0.05, 0.5])
    assert b.hold(RobotState(["a", "b"], np.array([0.0, 0.5]), None), Time()) is None  # nothing sent yet
    with pytest.raises(UnsafeCommandError, match="joint_states"):
        b.build(np.zeros(3), "joint_position_7d", RobotState(["a", "b"], None, None), Time())


def _seconds(msg: JointTrajectory) -> float:
    d = msg.points[0].time_from_start
    return d.sec + 1e-9 * d.nanosec


def test_a_trajectory_is_timed_from_where_the_arm_is_so_a_lagging_arm_never_exceeds_the_speed_limit():
    """The rate limit is command to command; a controller handed two commands within one period
    would cover both steps in one period (0.86-1.0 rad/s measured on the twin under 0.5 rad/s).
    time_from_start covers the gap from the MEASURED joints at max_joint_vel_rad_s."""
    b = _builder("joint_trajectory", **{"limits.max_joint_vel_rad_s": 0.5,
                                        "limits.joint_position_min_rad": [-3.0, -3.0],
                                        "limits.joint_position_max_rad": [3.0, 3.0]})
    arm = RobotState(["a", "b"], np.array([0.0, 0.0]), None)
    first = b.build(np.array([1.0, 0.0, 0.0]), "joint_position_7d", arm, Time())
    assert np.allclose(first.points[0].positions, [0.05, 0.0]) and _seconds(first) == pytest.approx(0.1)
    # the next command comes before the arm moved: 0.1 rad from it -> 0.2 s, never 0.1 s
    second = b.build(np.array([1.0, 0.0, 0.0]), "joint_position_7d", arm, Time())
    assert np.allclose(second.points[0].positions, [0.10, 0.0]) and _seconds(second) == pytest.approx(0.2)
    for lag in np.linspace(0.0, 0.3, 7):  # whatever the lag, the implied speed is at most the limit
        arm.joint_positions = np.array([float(second.points[0].positions[0]) - lag, 0.0])
        msg = b.build(np.array([1.0, 0.0, 0.0]), "joint_position_7d", arm, Time())
        gap = abs(msg.points[0].positions[0] - arm.joint_positions[0])
        assert gap / _seconds(msg) <= 0.5 + 1e-6 and _seconds(msg) >= 0.1 - 1e-9
    # the hold is timed the same way (the arm still has to get there)
    arm.joint_positions = np.array([0.0, 0.0])
    held = b.hold(arm, Time())
    assert _seconds(held) == pytest.approx(abs(held.points[0].positions[0]) / 0.5)


def test_incompatible_action_space_is_a_config_error():
    with pytest.raises(ConfigError, match="joint_position"):
        _builder("joint_position").check_action_space("ee_delta_7d")
    with pytest.raises(ConfigError, match="ee_delta"):
        _builder("ee_delta").check_action_space("joint_position_7d")


def test_ee_action_within_the_limits_passes_bit_for_bit():
    """A step the limits leave alone is the model's row exactly (no metres round trip: x * 0.05 /
    0.05 != x in the last bit for many x); a longer one is scaled to exactly the step limit."""
    limits = SafetyLimits.from_params(from_mapping({"limits.max_ee_step_m": 0.05}))
    row = np.array([0.1, 0.23104501, 0.13142347, 0.00918198, 0.06352796, 0.03120117, 0.35355341])
    assert (row[:3] * 0.05 / 0.05 != row[:3]).any()  # the round trip this guards against
    assert np.array_equal(limit_ee_action(row, None, limits, 0.05), row)
    long = row * [4.0, 4.0, 4.0, 1, 1, 1, 1]
    out = limit_ee_action(long, None, limits, 0.05)
    assert math.isclose(np.linalg.norm(out[:3]) * 0.05, 0.05, rel_tol=1e-12) and np.array_equal(out[3:], long[3:])
