"""output.mode ee_delta_ik (issue 11, part 1): end-effector deltas through the UR IK into a
JointTrajectory, behind the same limits and gate as every command; and the node's own ee_pose
from joint_states. Builder tests need no ROS context; the node test never spins (fake clock)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trajectory_msgs.msg import JointTrajectory

from vla_policy.commands import CommandBuilder, RobotState, tool_pose_msg
from vla_policy.params import from_mapping
from vla_policy.safety import UnsafeCommandError
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.kinematics import JOINT_NAMES, ArmKinematics

HOME = np.array([0.0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0.0])
ARM = ArmKinematics("ur5e")
HOME_XYZ = ARM.forward(HOME).position_m  # (0.4919, 0.1333, 0.4879) m in base_link
BASE = {"output.mode": "ee_delta_ik", "robot.model": "ur5e", "output.joint_names": list(JOINT_NAMES),
        "control_hz": 10.0, "limits.max_joint_vel_rad_s": 1.0, "limits.max_ee_step_m": 0.02,
        "limits.joint_position_min_rad": [-6.2832, -6.2832, -3.1416, -6.2832, -6.2832, -6.2832],
        "limits.joint_position_max_rad": [6.2832, 6.2832, 3.1416, 6.2832, 6.2832, 6.2832],
        "limits.workspace_min_m": [-0.8, -0.8, 0.05], "limits.workspace_max_m": [0.8, 0.8, 1.0],
        "output.ee_linear_m_per_unit": 1.0, "output.ee_angular_rad_per_unit": 1.0}


def builder(**overrides) -> CommandBuilder:
    return CommandBuilder.from_params(from_mapping({**BASE, **overrides}))


def robot(q=HOME, names=JOINT_NAMES) -> RobotState:
    by_name = dict(zip(JOINT_NAMES, q))
    return RobotState(list(names), np.array([by_name[n] for n in names]), None)


def sent_joints(msg: JointTrajectory) -> np.ndarray:
    """The command's joint positions in JOINT_NAMES order."""
    by_name = dict(zip(msg.joint_names, msg.points[0].positions))
    return np.array([by_name[n] for n in JOINT_NAMES])


def test_a_small_x_delta_becomes_a_joint_target_whose_tool_moved_x():
    state = robot()
    msg = builder().build(np.array([0.01, 0, 0, 0, 0, 0, 1.0]), "ee_delta_7d", state, Time())
    assert isinstance(msg, JointTrajectory) and list(msg.joint_names) == list(JOINT_NAMES)
    assert len(msg.points) == 1 and msg.points[0].time_from_start.nanosec == 100_000_000  # one period
    moved = ARM.forward(sent_joints(msg)).position_m - HOME_XYZ
    np.testing.assert_allclose(moved, [0.01, 0.0, 0.0], atol=1e-4)
    np.testing.assert_array_equal(state.last_joint_command, msg.points[0].positions)  # the next reference


def test_the_command_follows_output_joint_names_order():
    names = list(reversed(JOINT_NAMES))
    msg = builder(**{"output.joint_names": names}).build(np.array([0, 0, -0.01, 0, 0, 0, 0]), "ee_delta_7d",
                                                        robot(names=names), Time())
    assert list(msg.joint_names) == names
    np.testing.assert_allclose(ARM.forward(sent_joints(msg)).position_m - HOME_XYZ, [0, 0, -0.01], atol=1e-4)


def test_nan_action_and_singular_or_unreachable_targets_are_refused_with_a_reason():
    b = builder(**{"limits.max_ee_step_m": 1.0})
    with pytest.raises(UnsafeCommandError, match="non-finite"):
        b.build(np.array([math.nan, 0, 0, 0, 0, 0, 0]), "ee_delta_7d", robot(), Time())
    with pytest.raises(UnsafeCommandError, match="IK refused: .*cannot reach"):
        b.build(np.array([0.9, 0, 0, 0, 0, 0, 0]), "ee_delta_7d", robot(), Time())
    wrist_aligned = HOME.copy()
    wrist_aligned[4] = 0.0
    with pytest.raises(UnsafeCommandError, match="IK refused: .*singularity"):
        b.build(np.array([0.01, 0, 0, 0, 0, 0, 0]), "ee_delta_7d", robot(wrist_aligned), Time())
    with pytest.raises(UnsafeCommandError, match="no joint_states"):
        b.build(np.zeros(7), "ee_delta_7d", RobotState(list(JOINT_NAMES), None, None), Time())


def test_an_out_of_limit_step_is_shortened_and_the_box_holds():
    b = builder()  # max_ee_step_m 0.02
    msg = b.build(np.array([1.0, 0, 0, 0, 0, 0, 0]), "ee_delta_7d", robot(), Time())
    np.testing.assert_allclose(ARM.forward(sent_joints(msg)).position_m - HOME_XYZ, [0.02, 0, 0], atol=1e-4)
    wall = HOME_XYZ[0] + 0.005
    boxed = builder(**{"limits.workspace_max_m": [wall, 0.8, 1.0]})
    msg = boxed.build(np.array([0.02, 0, 0, 0, 0, 0, 0]), "ee_delta_7d", robot(), Time())
    assert ARM.forward(sent_joints(msg)).position_m[0] == pytest.approx(wall, abs=1e-4)


def test_the_joint_speed_limit_scales_the_whole_step_keeping_its_direction():
    state = robot()
    msg = builder(**{"limits.max_joint_vel_rad_s": 0.05}).build(np.array([0.02, 0, 0, 0, 0, 0, 0]), "ee_delta_7d",
                                                                 state, Time())
    step = sent_joints(msg) - HOME
    assert np.max(np.abs(step)) == pytest.approx(0.005, abs=1e-9)  # 0.05 rad/s for 0.1 s on the fastest joint
    moved = ARM.forward(sent_joints(msg)).position_m - HOME_XYZ
    assert 0.001 < moved[0] < 0.02 and np.dot(moved, [1, 0, 0]) / np.linalg.norm(moved) > 0.99


def test_an_ik_target_past_a_joint_limit_is_refused_not_clipped():
    lo = list(BASE["limits.joint_position_min_rad"])
    hi = list(BASE["limits.joint_position_max_rad"])
    hi[0] = HOME[0] + 0.001  # shoulder pan may barely turn
    b = builder(**{"limits.joint_position_min_rad": lo, "limits.joint_position_max_rad": hi})
    with pytest.raises(UnsafeCommandError, match="shoulder_pan_joint .* outside the joint limits"):
        b.build(np.array([0, 0.02, 0, 0, 0, 0, 0]), "ee_delta_7d", robot(), Time())


def test_hold_is_the_last_gated_command():
    b, state = builder(), robot()
    assert b.hold(state, Time()) is None  # nothing sent yet: silence holds
    first = b.build(np.array([0.01, 0, 0, 0, 0, 0, 0]), "ee_delta_7d", state, Time())
    with pytest.raises(UnsafeCommandError):
        b.build(np.array([0, math.inf, 0, 0, 0, 0, 0]), "ee_delta_7d", state, Time())
    hold = b.hold(state, Time())
    assert list(hold.points[0].positions) == list(first.points[0].positions)


def test_parameters_refuse_ee_delta_ik_without_an_arm_or_with_other_joints():
    with pytest.raises(ConfigError, match="needs robot.model"):
        from_mapping({**BASE, "robot.model": "none"})
    with pytest.raises(ConfigError, match="output.joint_names"):
        from_mapping({**BASE, "output.joint_names": ["j1", "j2"], "limits.joint_position_min_rad": [],
                      "limits.joint_position_max_rad": []})
    with pytest.raises(ConfigError, match="'ee_delta_ik' cannot execute actions in space 'joint_position_7d'"):
        builder().check_action_space("joint_position_7d")


def test_tool_pose_from_joint_states_and_its_message():
    b = builder()
    names = ["finger_joint", *reversed(JOINT_NAMES)]
    pose = b.tool_pose(names, [0.3, *reversed(HOME.tolist())])
    np.testing.assert_allclose(pose.position_m, HOME_XYZ, atol=1e-12)
    msg = tool_pose_msg(pose, Time(sec=5))
    assert msg.header.frame_id == "base_link" and msg.header.stamp.sec == 5
    assert (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z) == tuple(HOME_XYZ)
    assert builder(**{"robot.model": "none", "output.mode": "ee_twist"}).tool_pose(names, [0.0] * 7) is None


NASTY = [math.nan, math.inf, -math.inf, 1e300, -1e300, 2.0, 4.0]


@st.composite
def actions(draw) -> list[float]:
    """Plausible 7-D deltas (steps up to 5 cm, 0.3 rad), a third of them with one hostile value."""
    action = draw(st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=3)) + \
        draw(st.lists(st.floats(-0.3, 0.3), min_size=4, max_size=4))
    if draw(st.integers(0, 2)) == 0:
        action[draw(st.integers(0, 6))] = draw(st.sampled_from(NASTY))
    return action


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(action=actions(), joint_noise=st.lists(st.floats(-0.3, 0.3), min_size=6, max_size=6))
def test_every_emitted_command_is_finite_in_limits_and_keeps_the_tool_in_the_box(action, joint_noise):
    b = builder(**{"limits.workspace_min_m": [0.3, -0.2, 0.3], "limits.workspace_max_m": [0.6, 0.4, 0.6]})
    q = HOME + np.array(joint_noise)
    state = robot(q)
    try:
        msg = b.build(np.array(action), "ee_delta_7d", state, Time())
    except UnsafeCommandError:
        assert state.last_joint_command is None  # a refused step never becomes the reference
        return
    sent = sent_joints(msg)
    assert np.all(np.isfinite(sent)) and np.max(np.abs(sent - q)) <= 0.1 + 1e-9  # 1 rad/s for 0.1 s
    tool = ARM.forward(sent).position_m
    assert np.all(tool >= np.array([0.3, -0.2, 0.3]) - 1e-4) and np.all(tool <= np.array([0.6, 0.4, 0.6]) + 1e-4)


@pytest.mark.ros
def test_the_node_computes_ee_pose_from_joint_states_and_sends_ik_joint_targets(tmp_path):
    """No external ee_pose: the node's FK feeds the workspace box, the policy state and the
    ee_pose topic; a +x model delta leaves as a JointTrajectory whose FK moved +x; a NaN joint
    reading holds on the last command."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from vla_policy.conversions import rgb_to_image
    from vla_steer_tools.types import ActionChunk

    from .conftest import CountingPolicy
    from .test_policy_node_logic import Recorder, _active, _level, built, diag, step

    policy = CountingPolicy()
    policy.infer = lambda obs: (policy.calls.append(obs),
                                ActionChunk(np.array([[0.2, 0, 0, 0, 0, 0, 0]], np.float32), "ee_delta_7d"))[1]
    with built(tmp_path, policy, **{**BASE, "output.ee_linear_m_per_unit": 0.05}) as node:
        assert node._ee_pose_pub is not None
        node._ee_pose_pub = Recorder()
        _active(node)

        def feed(q) -> None:
            frame = rgb_to_image(np.zeros((224, 224, 3), np.uint8))
            for key in ("agentview", "wrist"):
                node._image_cb(key)(frame)
            node._on_joint_states(JointState(name=list(JOINT_NAMES), position=list(q)))
            node._on_gripper(JointState(name=["l", "r"], position=[0.04, -0.04]))
            node._on_instruction(String(data="push the bowl"))

        feed(HOME)
        [pose] = node._ee_pose_pub.msgs
        assert pose.header.frame_id == "base_link"
        np.testing.assert_allclose([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z], HOME_XYZ)
        step(node)
        step(node)
        np.testing.assert_allclose(policy.calls[0].state[:3], HOME_XYZ, atol=1e-6)  # FK is the policy state
        [cmd] = node._cmd_pub.msgs
        assert isinstance(cmd, JointTrajectory)
        np.testing.assert_allclose(ARM.forward(sent_joints(cmd)).position_m - HOME_XYZ, [0.01, 0, 0], atol=1e-4)
        feed([math.nan, *HOME[1:]])
        step(node)
        assert len(node._ee_pose_pub.msgs) == 1  # no pose from a faulty reading
        assert list(node._cmd_pub.msgs[-1].points[0].positions) == list(cmd.points[0].positions)  # the hold
        wrist_aligned = HOME.copy()
        wrist_aligned[4] = 0.0
        sent = len(node._cmd_pub.msgs)
        for _ in range(3):
            feed(wrist_aligned)
            step(node)
        level, message = diag(node)
        assert level == _level("WARN") and "IK refused" in message and "singularity" in message
        for msg in node._cmd_pub.msgs[sent:]:  # only holds: the last command that passed the gate
            assert list(msg.points[0].positions) == list(cmd.points[0].positions)
