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
    obs, observed = s.snapshot()
    assert observed == 0.0  # receive time of the oldest frame (wrist, at 0.0)
    assert obs.images["front"] is newer and obs.stamp_s == 7.0 and obs.state.size == 0 and s.all_fresh()
    s.consume_fresh()
    assert not s.all_fresh()


def test_state_from_joint_states_in_configured_order():
    s = _store(**{"output.joint_names": ["b", "a"]})
    assert "['b']" in s.set_joints(["a", "c"], [1.0, 3.0], 0.0)  # missing joint: refused
    assert s.set_joints(["a", "b", "c"], [1.0, 2.0, 3.0], 0.0) == ""
    frame = np.zeros((2, 2, 3), np.uint8)
    s.set_image("front", frame, 0.0, 0.0)
    s.set_image("wrist", frame, 0.0, 0.0)
    assert s.snapshot()[0].state.tolist() == [2.0, 1.0]


def test_state_from_ee_pose_and_gripper_is_the_libero_layout():
    p = from_mapping({"cameras.topics": ["a"], "cameras.keys": ["front"], "state.source": "ee_pose_gripper"})
    assert {"ee_pose", "gripper_state"} <= set(watchdog_ages(p))
    s = LatestInputs(p)
    s.set_image("front", np.zeros((2, 2, 3), np.uint8), 0.0, 0.0)
    s.set_ee_pose([0.1, 0.2, 0.3], [0.0, 0.0, 0.0, 1.0], 0.0)
    assert s.snapshot() is None  # gripper still missing
    s.set_gripper([0.04, -0.04], 0.0)
    state = s.snapshot()[0].state
    assert state.dtype == np.float32 and np.allclose(state, [0.1, 0.2, 0.3, 0, 0, 0, 0.04, -0.04])


def test_non_finite_readings_are_never_stored_and_invalidate_their_input():
    """Issue 9: NaN / inf joint states, poses and gripper readings were stored and echoed."""
    s = _store(**{"output.joint_names": ["a", "b"], "state.source": "ee_pose_gripper"})
    assert s.set_joints(["a", "b"], [0.1, 0.2], 0.0) == ""
    for bad in ([math.nan, 0.2], [0.1, math.inf], [-math.inf, math.nan]):
        assert "non-finite" in s.set_joints(["a", "b"], bad, 1.0)
        assert s.robot.joint_positions.tolist() == [0.1, 0.2]  # the last good reading stays
        assert any(r.startswith("joint_states: non-finite") for r in s.stale(1.0))
    assert "non-finite" in s.set_ee_pose([0.0, math.nan, 0.0], [0, 0, 0, 1], 1.0)
    assert "non-finite" in s.set_ee_pose([0.0, 0.0, 0.0], [0, 0, math.inf, 1], 1.0)
    assert "non-finite" in s.set_gripper([math.nan, 0.0], 1.0)
    assert s.robot.ee_position_m is None
    reasons = " ".join(s.stale(1.0))
    assert "ee_pose: non-finite" in reasons and "gripper_state: non-finite" in reasons
    assert s.set_joints(["a", "b"], [0.3, 0.4], 2.0) == ""  # a good reading clears it
    assert not any(r.startswith("joint_states") for r in s.stale(2.0))


def test_an_over_long_or_empty_instruction_is_rejected_and_holds():
    s = _store(**{"instruction.max_chars": 20, "state.source": "none"})
    assert s.set_instruction("pick up the bowl", 0.0) == ""
    reason = s.set_instruction("x" * 100_000, 1.0)
    assert "100000 characters" in reason and "instruction.max_chars is 20" in reason
    assert s.instruction == "pick up the bowl"
    assert any("instruction: rejected" in r for r in s.stale(1.0))
    assert "empty" in s.set_instruction("   ", 1.0)
    assert s.set_instruction("put it down", 2.0) == "" and not any("instruction" in r for r in s.stale(2.0))


def test_in_lockstep_a_step_is_fresh_only_once_its_state_arrived_too():
    """The bridge publishes a step's images before its ee_pose/gripper_state: in lockstep the
    images alone must not start an inference on the previous step's state (replay found 6 of 17)."""
    frame = np.zeros((2, 2, 3), np.uint8)
    for source, feed in (("ee_pose_gripper", lambda s: (s.set_ee_pose([0, 0, 1], [0, 0, 0, 1], 0.0),
                                                        s.set_gripper([0.02, -0.02], 0.0))),
                         ("joint_states", lambda s: s.set_joints(["j"], [0.1], 0.0))):
        s = _store(**{"state.source": source, "output.lockstep": True, "output.joint_names": ["j"]})
        feed(s)
        s.consume_fresh()  # the previous step was used
        s.set_image("front", frame, 1.0, 0.0)
        s.set_image("wrist", frame, 1.0, 0.0)
        assert not s.all_fresh(), source
        feed(s)
        assert s.all_fresh(), source
    realtime = _store(**{"state.source": "ee_pose_gripper"})
    realtime.set_image("front", frame, 1.0, 0.0)
    realtime.set_image("wrist", frame, 1.0, 0.0)
    assert realtime.all_fresh()  # realtime: the newest state is used, as before
