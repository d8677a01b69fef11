"""LiberoEnv without ROS: action checks, motion direction, reset, step limits, fast render."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from libero_sim_bridge.env import (
    SUITE_MAX_STEPS,
    ActionError,
    EpisodeOverError,
    LiberoEnv,
    max_steps_for,
    orient,
    validate_action,
)
from libero_sim_bridge.render import FAST_RENDER_OFF_FLAGS
from vla_steer_tools.errors import ConfigError, UnknownChoiceError

from .conftest import TEST_IMAGE_SIZE


# -- no simulator ------------------------------------------------------------------------------
@pytest.mark.parametrize(("action", "match"), [
    ([0.0] * 6, "has 6 values"),
    ([0.0] * 8, "has 8 values"),
    ([0, 0, float("nan"), 0, 0, 0, 1], r"non-finite values at index \[2\]"),
    ([0, 0, 0, float("inf"), 0, 0, -float("inf")], r"index \[3, 6\]"),
    (["a"] * 7, "not numeric"),
])
def test_malformed_actions_are_named(action: list, match: str) -> None:
    with pytest.raises(ActionError, match=match):
        validate_action(action)


def test_valid_action_is_float64_vector() -> None:
    out = validate_action([1, 0, 0, 0, 0, 0, -1])
    assert out.dtype == np.float64 and out.shape == (7,)


def test_protocol_step_limits() -> None:
    assert SUITE_MAX_STEPS == {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300,
                               "libero_10": 520, "libero_90": 400}
    with pytest.raises(UnknownChoiceError, match="did you mean 'libero_10'"):
        max_steps_for("libero_1O")


def test_orientations() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(orient(img, "rot180")[0, 0], img[1, 2])
    np.testing.assert_array_equal(orient(img, "vflip")[0, 0], img[1, 0])
    np.testing.assert_array_equal(orient(img, "raw"), img)
    with pytest.raises(UnknownChoiceError):
        orient(img, "hflip")


def test_bad_task_ids_are_refused_before_building() -> None:
    with pytest.raises(ConfigError, match="task_id 10 out of range for libero_spatial: 0..9"):
        LiberoEnv("libero_spatial", 10)
    with pytest.raises(UnknownChoiceError):
        LiberoEnv("libero_100", 0)


# -- with the simulator (one env for the session) ---------------------------------------------
def _move(env: LiberoEnv, axis: int, sign: float, steps: int = 4) -> np.ndarray:
    """Command `steps` steps along one axis; return the end-effector displacement."""
    start = env.last_observation.ee_pos.copy()
    action = np.zeros(7)
    action[axis], action[6] = sign, -1.0
    for _ in range(steps):
        obs = env.step(action)
    return obs.ee_pos - start


@pytest.mark.slow
def test_reset_observation(libero_env: LiberoEnv) -> None:
    obs = libero_env.reset(init_state_id=0)
    assert libero_env.instruction.startswith("pick up the black bowl")
    assert libero_env.max_steps == 220
    assert obs.step == 0 and not obs.done and not obs.success
    for name in ("agentview", "wrist"):
        img = obs.images[name]
        assert img.shape == (TEST_IMAGE_SIZE, TEST_IMAGE_SIZE, 3) and img.dtype == np.uint8
        assert img.std() > 10, f"{name} image looks blank"
    assert obs.joint_pos.shape == (7,) and obs.gripper.shape == (2,)
    assert np.linalg.norm(obs.ee_quat) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_actions_move_the_end_effector_in_the_commanded_direction(libero_env: LiberoEnv) -> None:
    first = libero_env.reset(init_state_id=0)
    up = _move(libero_env, 2, +1.0)
    assert up[2] > 0.02, f"+z action moved z by {up[2]:.4f} m"
    moved = libero_env.last_observation
    change = {cam: np.abs(moved.images[cam].astype(int) - first.images[cam].astype(int)).mean()
              for cam in ("wrist", "agentview")}
    assert change["wrist"] > 2 and change["agentview"] > 0.2, f"images did not change: {change}"
    for axis in (0, 1):
        for sign in (+1.0, -1.0):
            delta = _move(libero_env, axis, sign)
            assert sign * delta[axis] > 0.015, f"axis {axis} sign {sign}: moved {delta}"
            assert abs(delta[axis]) > 2 * np.delete(np.abs(delta), axis).max()


@pytest.mark.slow
def test_reset_restores_the_init_state(libero_env: LiberoEnv) -> None:
    first = libero_env.reset(init_state_id=0)
    _move(libero_env, 2, +1.0, steps=3)
    assert np.linalg.norm(libero_env.last_observation.ee_pos - first.ee_pos) > 0.01
    again = libero_env.reset(init_state_id=0)
    np.testing.assert_allclose(again.ee_pos, first.ee_pos, atol=1e-9)
    np.testing.assert_allclose(again.joint_pos, first.joint_pos, atol=1e-9)
    np.testing.assert_array_equal(again.images["agentview"], first.images["agentview"])
    assert again.step == 0
    other = libero_env.reset(init_state_id=1)
    assert np.abs(other.images["agentview"].astype(int) - first.images["agentview"]).mean() > 0.1


@pytest.mark.slow
def test_fast_render_is_reapplied_after_reset(libero_env: LiberoEnv) -> None:
    libero_env.reset()
    sim = libero_env._env.sim
    assert sim.model._model.vis.quality.offsamples == 0
    assert sim.model._model.vis.global_.offwidth == TEST_IMAGE_SIZE
    assert all(sim._render_context_offscreen.scn.flags[f] == 0 for f in FAST_RENDER_OFF_FLAGS)
    assert sim._render_context_offscreen.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] == 1


@pytest.mark.slow
def test_step_limit_and_malformed_action(libero_env: LiberoEnv) -> None:
    libero_env.reset()
    with pytest.raises(ActionError):
        libero_env.step([0.0, float("nan"), 0, 0, 0, 0, -1])
    assert libero_env.last_observation.step == 0, "a malformed action must not step the sim"
    libero_env.max_steps_override = 3
    try:
        obs = [libero_env.step(np.zeros(7)) for _ in range(3)]
        assert [o.done for o in obs] == [False, False, True] and obs[-1].step == 3
        with pytest.raises(EpisodeOverError, match="reset first"):
            libero_env.step(np.zeros(7))
    finally:
        libero_env.max_steps_override = 0
    with pytest.raises(ConfigError, match="init_state_id 50 out of range"):
        libero_env.reset(init_state_id=50)
