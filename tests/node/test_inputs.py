"""Latest-input store: state vector per `state.source`, freshness for lockstep, watchdog names."""

from __future__ import annotations

import math

import numpy as np

from vla_policy.inputs import LatestInputs, quat_to_axis_angle, watchdog_ages
from vla_policy.params import from_mapping


def _store(**params) -> LatestInputs:
    return LatestInputs(from_mapping({"cameras.topics": ["a", "b"], "cameras.keys": ["front", "wrist"], **params}))


def test_quaternion_to_axis_angle_matches_robosuite_convention():
    half = math.pi / 4  # 90 degrees about z, quaternion x y z w
    assert np.allclose(quat_to_axis_angle([0.0, 0.0, math.sin(half), math.cos(half)]), [0, 0, math.pi / 2])
    assert np.allclose(quat_to_axis_angle([0.0, 0.0, 0.0, 1.0]), 0.0)


def test_snapshot_waits_for_every_camera_and_keeps_only_the_newest_frame():
    s = _store(**{"state.source": "none"})
    frame = np.zeros((2, 2, 3), np.uint8)
    s.set_instruction("go", 0.0)
    s.set_image("front", frame, 5.0, 0.0)
    assert s.snapshot() is None and not s.all_fresh()
    s.set_image("wrist", frame, 6.0, 0.0)
    newer = np.ones((2, 2, 3), np.uint8)
    s.set_image("front", newer, 7.0, 0.1)
    obs = s.snapshot()
    assert obs.images["front"] is newer and obs.stamp_s == 7.0 and obs.state.size == 0 and s.all_fresh()
    s.consume_fresh()
    assert not s.all_fresh()


def test_state_from_joint_states_in_configured_order():
    s = _store(**{"output.joint_names": ["b", "a"]})
    assert s.set_joints(["a", "c"], [1.0, 3.0], 0.0) == ["b"]  # missing joint: refused
    assert s.set_joints(["a", "b", "c"], [1.0, 2.0, 3.0], 0.0) == []
    frame = np.zeros((2, 2, 3), np.uint8)
    s.set_image("front", frame, 0.0, 0.0)
    s.set_image("wrist", frame, 0.0, 0.0)
    assert s.snapshot().state.tolist() == [2.0, 1.0]


def test_state_from_ee_pose_and_gripper_is_the_libero_layout():
    p = from_mapping({"cameras.topics": ["a"], "cameras.keys": ["front"], "state.source": "ee_pose_gripper"})
    assert {"ee_pose", "gripper_state"} <= set(watchdog_ages(p))
    s = LatestInputs(p)
    s.set_image("front", np.zeros((2, 2, 3), np.uint8), 0.0, 0.0)
    s.set_ee_pose([0.1, 0.2, 0.3], [0.0, 0.0, 0.0, 1.0], 0.0)
    assert s.snapshot() is None  # gripper still missing
    s.set_gripper([0.04, -0.04], 0.0)
    state = s.snapshot().state
    assert state.dtype == np.float32 and np.allclose(state, [0.1, 0.2, 0.3, 0, 0, 0, 0.04, -0.04])
