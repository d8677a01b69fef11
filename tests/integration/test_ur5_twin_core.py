"""The UR5e twin's core (ur5_sim.trajectory + ur5_sim.twin, no ROS): the controllers' semantics
(time_from_start interpolation, absolute positions), malformed commands rejected and never
applied, tracking and coming to rest within two control periods (sim time: exact), the cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ur5_sim.scene import HOME, UR_JOINTS
from ur5_sim.trajectory import CommandError, Setpoint

pytestmark = pytest.mark.slow  # builds and steps the MuJoCo scene, renders offscreen

PERIOD_S = 0.1


def test_setpoint_interpolates_by_time_from_start_and_holds_the_last_point():
    sp = Setpoint.hold(1.0, np.zeros(2)).follow(1.0, [0.5, 1.0], np.array([[1.0, -1.0], [1.0, 1.0]]))
    pos, vel = sp.sample(1.25)
    assert np.allclose(pos, [0.5, -0.5]) and np.allclose(vel, [2.0, -2.0])
    pos, vel = sp.sample(1.75)
    assert np.allclose(pos, [1.0, 0.0]) and np.allclose(vel, [0.0, 4.0])
    pos, vel = sp.sample(5.0)
    assert np.allclose(pos, [1.0, 1.0]) and np.allclose(vel, 0.0)


def test_a_new_trajectory_starts_from_the_current_setpoint():
    sp = Setpoint.hold(0.0, np.zeros(1)).follow(0.0, [1.0], np.array([[2.0]]))
    sp = sp.follow(0.5, [0.5], np.array([[0.0]]))  # arrives half way (setpoint 1.0)
    assert np.allclose(sp.sample(0.5)[0], [1.0]) and np.allclose(sp.sample(0.75)[0], [0.5])


@pytest.fixture(scope="module")
def twin():
    from ur5_sim.twin import Ur5Twin

    t = Ur5Twin(image_size=32)
    yield t
    t.close()


BAD_TRAJECTORIES = [
    (list(UR_JOINTS[:5]), [0.1], [list(HOME[:5])], "joint_names"),
    (list(UR_JOINTS[:5]) + ["elbow"], [0.1], [list(HOME)], "joint_names"),
    (list(UR_JOINTS), [0.1], [list(HOME[:5])], "positions"),
    (list(UR_JOINTS), [0.1], [[math.nan, *HOME[1:]]], "non-finite"),
    (list(UR_JOINTS), [0.1], [[math.inf, *HOME[1:]]], "non-finite"),
    (list(UR_JOINTS), [0.1], [[HOME[0], HOME[1], 4.0, *HOME[3:]]], "joint range"),  # elbow past pi
    (list(UR_JOINTS), [0.0], [list(HOME)], "time_from_start"),
    (list(UR_JOINTS), [0.2, 0.1], [list(HOME), list(HOME)], "time_from_start"),
    (list(UR_JOINTS), [], [], "no points"),
]


@pytest.mark.parametrize("names,offsets,points,why", BAD_TRAJECTORIES)
def test_malformed_trajectories_are_rejected_and_not_applied(twin, names, offsets, points, why):
    before = twin.setpoint
    with pytest.raises(CommandError, match=why):
        twin.command_trajectory(names, offsets, points)
    assert twin.setpoint is before


@pytest.mark.parametrize("values", [[0.0] * 5, [math.nan] * 6, [0.0, 0.0, 7.0, 0.0, 0.0, 0.0], [0.0] * 7])
def test_malformed_position_commands_are_rejected(twin, values):
    before = twin.setpoint
    with pytest.raises(CommandError):
        twin.command_positions(values)
    assert twin.setpoint is before


@pytest.mark.parametrize("closure", [math.nan, -0.1, 1.5])
def test_malformed_gripper_commands_are_rejected(twin, closure):
    with pytest.raises(CommandError):
        twin.command_gripper(closure)


def test_trajectory_in_any_joint_order_is_followed_then_the_arm_is_still_within_two_periods(twin):
    twin.reset()
    q = np.array(HOME)
    for _ in range(6):  # 0.05 rad per period on the pan and the elbow, like the policy node's steps
        q[0] += 0.05
        q[2] -= 0.05
        order = list(reversed(range(6)))  # names reversed: the twin reorders by name
        twin.command_trajectory([UR_JOINTS[i] for i in order], [PERIOD_S], [[q[i] for i in order]])
        twin.advance(PERIOD_S)
    obs = twin.observe(render=False)
    assert np.allclose(obs.joint_pos, q, atol=2e-3), obs.joint_pos - q  # tracked, no servo lag
    assert obs.joint_vel[0] == pytest.approx(0.5, abs=0.05)
    for _ in range(2):  # no new command: two control periods of sim time
        twin.advance(PERIOD_S)
    obs = twin.observe(render=False)
    assert np.abs(obs.joint_vel).max() < 0.01 and np.allclose(obs.joint_pos, q, atol=2e-3)


def test_position_commands_are_absolute_and_reached(twin):
    twin.reset()
    target = np.array(HOME) + np.array([0.1, -0.05, 0.05, 0.0, 0.1, -0.1])
    twin.command_positions(target)
    twin.advance(1.5)
    obs = twin.observe(render=False)
    assert np.allclose(obs.joint_pos, target, atol=2e-3) and np.abs(obs.joint_vel).max() < 0.01


def test_the_gripper_closes(twin):
    twin.reset()
    twin.command_gripper(1.0)
    twin.advance(1.0)
    assert twin.observe(render=False).gripper > 0.8
    twin.command_gripper(0.0)
    twin.advance(1.0)
    assert twin.observe(render=False).gripper < 0.1


def test_two_cameras_render_different_real_images(twin):
    twin.reset()
    images = twin.observe().images
    assert set(images) == {"front", "wrist"}
    for img in images.values():
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and img.std() > 5.0  # not blank
    assert np.abs(images["front"].astype(int) - images["wrist"].astype(int)).mean() > 5.0
    before = images["wrist"]
    twin.command_positions(np.array(HOME) + np.array([0.6, 0, 0, 0, 0, 0]))
    twin.advance(2.0)
    assert np.abs(twin.observe().images["wrist"].astype(int) - before.astype(int)).mean() > 2.0  # it moves with the arm


def test_params_file_names_exactly_the_declared_parameters():
    from pathlib import Path

    from ur5_sim.params import SPEC_BY_NAME, from_mapping, load_defaults

    values = load_defaults(Path(__file__).resolve().parents[2] / "config/ur5_sim.yaml")
    assert set(values) == set(SPEC_BY_NAME)
    assert from_mapping(values).mode == "lockstep"
