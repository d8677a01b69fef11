"""Property tests of the command path (issue 9, item 1): whatever the state, action and limits —
NaN, inf, huge values, wrong lengths, malformed limits — every command the builder emits, holds
included, is finite and inside the limits, and no unchecked value becomes the next reference.

The oracle below re-checks each emitted message from its raw fields, independently of gate.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_policy.commands import MAX_TRAJECTORY_S, CommandBuilder, RobotState
from vla_policy.safety import SafetyLimits, UnsafeCommandError
from vla_steer_tools.errors import ConfigError

TOL = 1e-6
MODES = ("joint_trajectory", "joint_position", "ee_twist", "ee_delta")
SPACES = ("joint_position_7d", "joint_delta_7d", "ee_delta_7d")
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

nasty = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 7.0, -7.0, 1e-320, 0.0])
value = st.one_of(st.floats(-4.0, 4.0), nasty, st.floats(allow_nan=True, allow_infinity=True))
plain = st.floats(-4.0, 4.0)


def vectors(elements=value, min_size: int = 0, max_size: int = 8):
    return st.lists(elements, min_size=min_size, max_size=max_size).map(lambda v: np.array(v, dtype=np.float64))


@st.composite
def limits(draw) -> SafetyLimits:
    """Sane, odd and malformed limits: empty boxes, lo > hi, NaN bounds, wrong sizes, inf/NaN rates."""
    n = draw(st.integers(0, 7))
    kind = draw(st.sampled_from(["none", "box", "odd"]))
    if kind == "none":
        jlo = jhi = np.zeros(0)
    elif kind == "box":
        lo = draw(vectors(st.floats(-3.0, 0.0), n, n))
        jlo, jhi = lo, lo + draw(vectors(st.floats(0.01, 3.0), n, n))
    else:
        jlo, jhi = draw(vectors()), draw(vectors())
    wkind = draw(st.sampled_from(["none", "box", "odd"]))
    if wkind == "none":
        wlo = whi = np.zeros(0)
    elif wkind == "box":
        wlo = draw(vectors(st.floats(-1.0, 0.5), 3, 3))
        whi = wlo + draw(vectors(st.floats(0.01, 1.0), 3, 3))
    else:
        wlo, whi = draw(vectors(max_size=4)), draw(vectors(max_size=4))
    rate = draw(st.one_of(st.floats(0.0, 5.0), nasty))
    step = draw(st.one_of(st.floats(0.0, 0.5), nasty))
    return SafetyLimits(joint_min_rad=jlo, joint_max_rad=jhi, max_joint_vel_rad_s=rate,
                        workspace_min_m=wlo, workspace_max_m=whi, max_ee_step_m=step)


@st.composite
def robots(draw) -> RobotState:
    n = draw(st.integers(0, 7))
    names = [f"j{i}" for i in range(n)]
    joints = draw(st.one_of(st.none(), vectors(value, n, n), vectors()))
    ee = draw(st.one_of(st.none(), vectors(value, 3, 3), vectors(max_size=4)))
    last = draw(st.one_of(st.none(), vectors(plain, n, n)))  # what an earlier gated command left
    return RobotState(names, joints, ee, last)


@st.composite
def builders(draw) -> CommandBuilder:
    return CommandBuilder(draw(st.sampled_from(MODES)), draw(limits()), draw(st.floats(1e-3, 2.0)),
                          draw(st.one_of(st.floats(0.0, 2.0), nasty)), draw(st.one_of(st.floats(0.0, 2.0), nasty)))


def _finite(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    assert np.all(np.isfinite(arr)), f"non-finite command {arr.tolist()}"
    return arr


def _box_ok(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """An emitted command with a configured box must lie inside a well-formed box."""
    if lo.size == 0 and hi.size == 0:
        return
    assert lo.size == hi.size == values.size, "command sent against a malformed box"
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)), "command sent against a NaN box"
    assert np.all(values >= lo - TOL) and np.all(values <= hi + TOL), (values, lo, hi)


def _ee_step_ok(step_m: np.ndarray, builder: CommandBuilder, robot: RobotState) -> None:
    lim = builder.limits
    assert not math.isnan(lim.max_ee_step_m), "command sent with a NaN step limit"
    assert float(np.linalg.norm(step_m)) <= lim.max_ee_step_m + TOL
    if lim.workspace_min_m.size or lim.workspace_max_m.size:
        assert robot.ee_position_m is not None and robot.ee_position_m.size == 3
        _box_ok(_finite(robot.ee_position_m) + step_m, lim.workspace_min_m, lim.workspace_max_m)


def check_emitted(msg, builder: CommandBuilder, robot: RobotState, reference: np.ndarray | None) -> None:
    """The oracle: `msg` (built for `robot`, whose rate reference was `reference`) is safe."""
    lim = builder.limits
    if builder.mode.startswith("joint"):
        values = _finite(msg.points[0].positions if isinstance(msg, JointTrajectory) else msg.data)
        if isinstance(msg, JointTrajectory):
            assert list(msg.joint_names) == robot.joint_names
            d = msg.points[0].time_from_start
            seconds = d.sec + 1e-9 * d.nanosec
            # never faster than one period, never unbounded; and from a finite measured arm of the
            # command's shape, never faster than the speed limit
            assert builder.period_s - 1e-9 <= seconds <= MAX_TRAJECTORY_S + 1e-9, seconds
            q = robot.joint_positions
            if (q is not None and np.shape(q) == np.shape(values) and np.all(np.isfinite(q))
                    and math.isfinite(lim.max_joint_vel_rad_s) and lim.max_joint_vel_rad_s > 0):
                implied = float(np.max(np.abs(values - q))) / seconds
                assert implied <= lim.max_joint_vel_rad_s * (1 + 1e-6) + TOL or seconds >= MAX_TRAJECTORY_S - 1e-9
        assert values.size == len(robot.joint_names) > 0
        _box_ok(values, lim.joint_min_rad, lim.joint_max_rad)
        assert not math.isnan(lim.max_joint_vel_rad_s), "command sent with a NaN rate limit"
        if math.isfinite(lim.max_joint_vel_rad_s):
            assert reference is not None, "rate limit without a reference"
            ref = _finite(reference)
            assert np.all(np.abs(values - ref) <= lim.max_joint_vel_rad_s * builder.period_s + TOL)
    elif builder.mode == "ee_delta":
        assert isinstance(msg, Float64MultiArray)
        values = _finite(msg.data)
        assert values.size == 7
        scale = builder.linear_m_per_unit
        _ee_step_ok(values[:3] * scale if scale > 0 else np.zeros(3), builder, robot)
    else:
        t = msg.twist
        linear = _finite([t.linear.x, t.linear.y, t.linear.z])
        _finite([t.angular.x, t.angular.y, t.angular.z])
        _ee_step_ok(linear * builder.period_s, builder, robot)


def _reference(robot: RobotState) -> np.ndarray | None:
    return robot.last_joint_command if robot.last_joint_command is not None else robot.joint_positions


@SETTINGS
@given(builder=builders(), robot=robots(), action=vectors(max_size=9), space=st.sampled_from(SPACES))
def test_every_built_command_is_finite_and_inside_the_limits(builder, robot, action, space):
    reference = _reference(robot)
    reference = None if reference is None else reference.copy()
    try:
        msg = builder.build(action, space, robot, Time())
    except (UnsafeCommandError, ConfigError):
        return  # refused: nothing is sent
    check_emitted(msg, builder, robot, reference)
    if builder.mode.startswith("joint"):  # what was sent is the next reference, exactly
        sent = msg.points[0].positions if isinstance(msg, JointTrajectory) else msg.data
        assert np.array_equal(robot.last_joint_command, np.asarray(sent, dtype=np.float64))


@SETTINGS
@given(builder=builders(), robot=robots())
def test_every_hold_is_finite_inside_the_limits_and_never_the_sensor(builder, robot):
    last = None if robot.last_joint_command is None else robot.last_joint_command.copy()
    try:
        msg = builder.hold(robot, Time())
    except UnsafeCommandError:
        return
    if msg is None:
        return
    if builder.mode == "ee_twist":
        t = msg.twist
        assert [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z] == [0.0] * 6
        return
    assert builder.mode.startswith("joint")
    check_emitted(msg, builder, robot, last)
    sent = np.asarray(msg.points[0].positions if isinstance(msg, JointTrajectory) else msg.data)
    assert last is not None and np.array_equal(sent, last), "a joint hold must be the last command sent"


@SETTINGS
@given(builder=builders().filter(lambda b: b.mode.startswith("joint")),
       steps=st.lists(st.tuples(vectors(value, 3, 3), vectors(max_size=8), st.sampled_from(SPACES[:2])),
                      min_size=1, max_size=12))
def test_a_bad_step_never_poisons_the_reference(builder, steps):
    """A stream of joint states and actions (some NaN, some huge): the stored reference stays
    finite, and each command sent is within one period's speed of the previous one sent."""
    robot = RobotState(["a", "b", "c"], None, None)
    previous = None
    for joints, action, space in steps:
        robot.joint_positions = joints
        reference = _reference(robot)
        reference = None if reference is None else reference.copy()
        try:
            msg = builder.build(action, space, robot, Time())
        except (UnsafeCommandError, ConfigError):
            pass
        else:
            check_emitted(msg, builder, robot, reference)
            sent = np.asarray(msg.points[0].positions if isinstance(msg, JointTrajectory) else msg.data)
            if previous is not None and math.isfinite(builder.limits.max_joint_vel_rad_s):
                assert np.all(np.abs(sent - previous) <= builder.limits.max_joint_vel_rad_s * builder.period_s + TOL)
            previous = sent
        if robot.last_joint_command is not None:
            assert np.all(np.isfinite(robot.last_joint_command))


def test_regressions_from_the_review():
    """The reproduced cases of issue 9: NaN/inf/7-rad joint states, rate limit out of the box."""
    limits = SafetyLimits(joint_min_rad=np.full(6, -3.1416), joint_max_rad=np.full(6, 3.1416),
                          max_joint_vel_rad_s=0.5)
    b = CommandBuilder("joint_position", limits, 0.1)
    names = [f"j{i}" for i in range(6)]
    for joints in (np.full(6, np.nan), np.array([0.1, np.inf, 0, 0, 0, 0]), np.array([0, 0, 7.0, 0, 0, 0])):
        robot = RobotState(names, joints, None)
        assert b.hold(robot, Time()) is None  # nothing was commanded yet: the hold sends nothing
        with pytest.raises(UnsafeCommandError):
            b.build(np.zeros(7), "joint_position_7d", robot, Time())
        assert robot.last_joint_command is None
    robot = RobotState(names, np.array([0, 0, 3.1, 0, 0, 0.0]), None)
    msg = b.build(np.array([0, 0, 9.0, 0, 0, 0, 0]), "joint_position_7d", robot, Time())
    assert max(msg.data) <= 3.1416  # rate-limited from 3.1 then clipped: inside the box
    robot.joint_positions = np.full(6, np.nan)  # the sensor fails after a good command
    assert b.hold(robot, Time()).data == msg.data  # the hold is the last safe command
